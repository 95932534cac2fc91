package ops

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/funcapp"
	"github.com/hotswap/hotswap/internal/runtime"
)

// This file is the service's part in a cluster: several nodes sharing a
// PostgreSQL store, each running every slot's process sets and serving every
// host name (as the instances of an App Service plan do).
//
// The store is the truth. A node that runs an operation does what a single
// server does, plus two waits: before its flip it asks every live node to
// prepare (start and warm the process sets of the new configuration, kept
// parked by configuration key) and waits for their reports; after the flip
// it waits until every live node has acknowledged the store generation the
// flip made. Every other node hears the change by NOTIFY (and a periodic
// reconcile, the safety net for a notification lost with a connection),
// reads the slots from the store, switches to the parked sets (or starts
// what is missing), publishes its routing table and acknowledges. A node
// that cannot catch up within AckTimeout fails its load balancer health
// check until it does, so it stops serving what the cluster moved away from.

// Defaults of the cluster timing knobs.
const (
	defaultLiveness   = 10 * time.Second
	defaultAckTimeout = 15 * time.Second
	defaultReconcile  = 5 * time.Second
	heartbeatEvery    = time.Second
	// silentAfter: a node whose last heartbeat is older than this is
	// probably dead, so operations neither wait for it nor name it, even
	// before the liveness window (which ends its operations) has passed.
	// Alive but stalled, it finds itself behind and fails its health
	// check until it catches up.
	silentAfter = 3 * heartbeatEvery
	// prepareTTL bounds how long a node looks at a prepare request.
	prepareTTL = 5 * time.Minute
)

// Cluster channels notified through the store.
const (
	channelChanges = "hotswap_changes"
	channelPrepare = "hotswap_prepare"
)

// clusterNode is this server's part in a cluster; nil on a single server.
type clusterNode struct {
	self      hotswap.Node // the static fields
	served    atomic.Int64 // the generation whose routing this node publishes
	behind    atomic.Bool  // the store moved on and this node did not follow within AckTimeout
	storeLost atomic.Bool  // heartbeats failed for longer than the liveness window
	// lastHeartbeat is when the store last took a heartbeat (Unix ns).
	lastHeartbeat atomic.Int64
	reconcile     chan struct{}
	prepare       chan struct{}
	prepared      map[string]bool // op IDs handled; prepare loop only
}

func (n *clusterNode) heartbeatAt() time.Time { return time.Unix(0, n.lastHeartbeat.Load()) }

// mayFlip refuses an operation's flip on a node whose heartbeats have not
// reached the store for half the liveness window: the others end the
// operations of a node silent for the whole window (recoverDead), and a
// flip after that would race an operation they allowed meanwhile.
func (s *Service) mayFlip() error {
	if s.node == nil {
		return nil
	}
	if age := time.Since(s.node.heartbeatAt()); age > s.cfg.Liveness/2 {
		return hotswap.Errorf(hotswap.Unavailable, "this node has not reached the store for %v; nothing was changed, try again shortly", age.Round(time.Second))
	}
	return nil
}

// catchUp brings the given slots of app to what the store says before an
// operation of this node reads them: a change made through another node a
// moment ago may not have reached this node's memory yet, and an
// operation computed from the old state would write it back.
func (s *Service) catchUp(ctx context.Context, app string, slots ...string) error {
	if s.node == nil {
		return nil
	}
	for _, slot := range slots {
		if err := s.converge(ctx, slotKey{app, slot}); err != nil {
			return fmt.Errorf("catch up with the store on slot %s/%s: %w", app, slot, err)
		}
	}
	return nil
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Draining reports whether the node is draining (see Drain).
func (s *Service) Draining() bool { return s.draining.Load() }

// Drain makes the node fail its health check from now on, so a load
// balancer stops sending it requests; the caller then stops the server,
// which finishes the requests in flight.
func (s *Service) Drain() {
	if s.draining.Swap(true) {
		return
	}
	s.log.Info("draining: the health check fails from now on")
	if s.node != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.cfg.Cluster.Heartbeat(ctx, s.nodeRecord(hotswap.NodeDraining))
	}
}

// Health reports whether the node should take traffic, and if not, why:
// it is draining, it lost the store, or it is behind the cluster.
func (s *Service) Health() (ok bool, reason string) {
	if s.draining.Load() {
		return false, "draining"
	}
	if n := s.node; n != nil {
		if n.behind.Load() {
			return false, fmt.Sprintf("this node is behind the cluster (it serves generation %d) and is catching up", n.served.Load())
		}
	}
	return true, "ok"
}

// NodeID returns this node's ID; "" on a single server.
func (s *Service) NodeID() string {
	if s.node == nil {
		return ""
	}
	return s.node.self.ID
}

// Nodes lists the nodes of the cluster; a single server lists itself.
func (s *Service) Nodes(ctx context.Context) ([]hotswap.Node, error) {
	if s.node == nil {
		n := hotswap.Node{Name: s.cfg.NodeName, Addr: s.cfg.PublicAddr, Version: s.cfg.Version, State: hotswap.NodeServing, StartedAt: s.started, HeartbeatAt: time.Now().UTC()}
		if s.draining.Load() {
			n.State = hotswap.NodeDraining
		}
		return []hotswap.Node{n}, nil
	}
	nodes, err := s.cfg.Cluster.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	// A node gets a new ID at each start: those gone for an hour are
	// history, not the cluster.
	out := nodes[:0]
	for _, n := range nodes {
		if n.Age < time.Hour {
			out = append(out, n)
		}
	}
	return out, nil
}

func (s *Service) nodeRecord(state hotswap.NodeState) hotswap.Node {
	n := s.node.self
	n.State = state
	n.Generation = s.node.served.Load()
	return n
}

func (s *Service) nodeState() hotswap.NodeState {
	if s.draining.Load() {
		return hotswap.NodeDraining
	}
	return hotswap.NodeServing
}

// initCluster registers the node before the slots are loaded and returns
// the generation they are loaded at.
func (s *Service) initCluster(ctx context.Context) (int64, error) {
	c := s.cfg
	if c.NodeID == "" {
		c.NodeID = newID("n-")
	}
	s.node = &clusterNode{
		self:      hotswap.Node{ID: c.NodeID, Name: c.NodeName, Addr: c.PublicAddr, Version: c.Version, StartedAt: time.Now().UTC()},
		reconcile: make(chan struct{}, 1),
		prepare:   make(chan struct{}, 1),
		prepared:  make(map[string]bool),
	}
	if err := c.Cluster.Heartbeat(ctx, s.nodeRecord(hotswap.NodeStarting)); err != nil {
		return 0, fmt.Errorf("register node: %w", err)
	}
	s.node.lastHeartbeat.Store(time.Now().UnixNano())
	gen, err := c.Cluster.Generation(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the cluster generation: %w", err)
	}
	return gen, nil
}

// startCluster starts the node's loops once its slots serve generation gen.
func (s *Service) startCluster(gen int64) {
	n := s.node
	n.served.Store(gen)
	ctx := s.ctx
	_ = s.cfg.Cluster.Heartbeat(ctx, s.nodeRecord(hotswap.NodeServing))
	_ = s.cfg.Cluster.AckGeneration(ctx, n.self.ID, gen)
	s.wg.Add(4)
	go s.heartbeatLoop()
	go s.listenLoop()
	go s.reconcileLoop()
	go s.prepareLoop()
	signal(n.reconcile) // whatever changed while the slots were loading
	signal(n.prepare)
}

func (s *Service) stopCluster() {
	if s.node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.cfg.Cluster.Heartbeat(ctx, s.nodeRecord(hotswap.NodeStopped))
}

func (s *Service) heartbeatLoop() {
	defer s.wg.Done()
	n := s.node
	tick := time.NewTicker(heartbeatEvery)
	defer tick.Stop()
	var behindSince time.Time // when the node was first seen behind target
	var target int64          // the generation it then had to reach
	// published is what this node last told the others of its requests.
	var published metricsPublished
	for i := 0; ; i++ {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Liveness/2)
		err := s.cfg.Cluster.Heartbeat(ctx, s.nodeRecord(s.nodeState()))
		if err == nil {
			n.lastHeartbeat.Store(time.Now().UnixNano())
			if n.storeLost.Swap(false) {
				s.log.Info("the store answers heartbeats again")
				signal(n.reconcile)
			}
			s.publishMetrics(ctx, &published)
		} else if time.Since(n.heartbeatAt()) > s.cfg.Liveness && !n.storeLost.Swap(true) {
			// The node keeps serving what it served: the request path
			// needs no store, and a failover of the store would
			// otherwise take every node out of its load balancer.
			s.log.Error("heartbeats fail: serving the last routing known; no operation runs on this node until the store answers", "err", err)
		}
		gen, err := s.cfg.Cluster.Generation(ctx)
		if err == nil {
			served := n.served.Load()
			switch {
			case behindSince.IsZero() && gen > served:
				// Behind now; fine if it reaches gen within the
				// acknowledgement timeout, whatever changes meanwhile.
				behindSince, target = time.Now(), gen
				signal(n.reconcile)
			case !behindSince.IsZero() && served >= target:
				behindSince = time.Time{}
				if gen > served {
					behindSince, target = time.Now(), gen
				}
				if n.behind.Swap(false) {
					s.log.Info("caught up with the cluster", "generation", served)
				}
			case !behindSince.IsZero() && time.Since(behindSince) > s.cfg.AckTimeout && !n.behind.Swap(true):
				s.log.Error("behind the cluster: this node fails its health check until it catches up", "serves", served, "store", gen)
			}
		}
		if i%5 == 0 {
			s.recoverDead(ctx)
		}
		cancel()
	}
}

func (s *Service) listenLoop() {
	defer s.wg.Done()
	n := s.node
	for s.ctx.Err() == nil {
		err := s.cfg.Cluster.Listen(s.ctx, func(channel, payload string) {
			switch channel {
			case channelChanges:
				signal(n.reconcile)
			case channelPrepare:
				signal(n.prepare)
			case "": // (re)connected: something may have been missed
				signal(n.reconcile)
				signal(n.prepare)
			}
		})
		if s.ctx.Err() != nil {
			return
		}
		s.log.Warn("listening to the store stopped; retrying", "err", err)
		select {
		case <-s.ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (s *Service) reconcileLoop() {
	defer s.wg.Done()
	n := s.node
	tick := time.NewTicker(s.cfg.ReconcileEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-n.reconcile:
		case <-tick.C:
		}
		if err := s.reconcile(s.ctx); err != nil && s.ctx.Err() == nil {
			s.log.Warn("reconcile with the store", "err", err)
		}
	}
}

// slotWant is a slot as the store has it.
type slotWant struct {
	slot     hotswap.Slot
	keys     []hotswap.Key
	settings []hotswap.Setting
}

func (s *Service) readSlot(ctx context.Context, app, slot string) (slotWant, error) {
	sl, err := s.store.GetSlot(ctx, app, slot)
	if err != nil {
		return slotWant{}, err
	}
	keys, err := s.store.ListKeys(ctx, app, slot)
	if err != nil {
		return slotWant{}, err
	}
	settings, err := s.store.ListSettings(ctx, app, slot)
	if err != nil {
		return slotWant{}, err
	}
	return slotWant{sl, keys, settings}, nil
}

// sameKeys reports whether two key lists hold the same keys in any order.
func sameKeys(a, b []hotswap.Key) bool {
	if len(a) != len(b) {
		return false
	}
	m := make(map[hotswap.Key]int, len(a))
	for _, k := range a {
		m[k]++
	}
	for _, k := range b {
		if m[k] == 0 {
			return false
		}
		m[k]--
	}
	return true
}

// matchesLocked reports whether st already is what w says.
func (st *slotState) matchesLocked(w slotWant) bool {
	if st.slot.DeploymentID != w.slot.DeploymentID || st.slot.AutoSwapTarget != w.slot.AutoSwapTarget {
		return false
	}
	if !sameKeys(st.keys, w.keys) {
		return false
	}
	if w.slot.DeploymentID == "" {
		return st.set == nil && slices.Equal(st.settings, w.settings)
	}
	key := configKey(w.slot.App, w.slot.Name, w.slot.DeploymentID, w.settings)
	if st.set == nil && st.failedKey == key {
		return true // failed to start here; tried again when the store changes
	}
	return st.set != nil && st.cfgKey == key
}

// reconcile makes this node's slots what the store says, publishes the
// routing table and acknowledges the generation it read first. Slots in a
// swap preview run by this node are left to that operation.
func (s *Service) reconcile(ctx context.Context) error {
	n := s.node
	gen, err := s.cfg.Cluster.Generation(ctx)
	if err != nil {
		return err
	}
	slots, err := s.store.ListAllSlots(ctx)
	if err != nil {
		return err
	}
	inStore := make(map[slotKey]bool, len(slots))
	var failed []string
	for _, sl := range slots {
		k := slotKey{sl.App, sl.Name}
		inStore[k] = true
		w, err := s.readSlot(ctx, sl.App, sl.Name)
		if err != nil {
			if hotswap.ErrorKind(err) == hotswap.NotFound {
				continue // deleted since the list
			}
			return err
		}
		s.mu.Lock()
		st := s.slots[k]
		if st != nil && st.preview != nil && !sameKeys(st.keys, w.keys) {
			// The preview is this node's own operation's; keys still
			// follow the store.
			st.keys = w.keys
			s.publishLocked()
		}
		same := st != nil && (st.preview != nil || st.matchesLocked(w))
		s.mu.Unlock()
		if same {
			continue
		}
		if err := s.converge(ctx, k); err != nil {
			failed = append(failed, fmt.Sprintf("%s/%s: %s", k.app, k.slot, hotswap.ErrorMessage(err)))
		}
	}
	// Slots deleted elsewhere.
	s.mu.Lock()
	var gone []slotKey
	for k := range s.slots {
		if !inStore[k] {
			gone = append(gone, k)
		}
	}
	s.mu.Unlock()
	for _, k := range gone {
		if err := s.converge(ctx, k); err != nil {
			failed = append(failed, fmt.Sprintf("%s/%s: %s", k.app, k.slot, hotswap.ErrorMessage(err)))
		}
	}
	if err := s.reconcileTraffic(ctx, slots); err != nil {
		failed = append(failed, "traffic rules: "+hotswap.ErrorMessage(err))
	}
	if len(failed) > 0 {
		return fmt.Errorf("generation %d not served: %s", gen, strings.Join(failed, "; "))
	}
	if gen > n.served.Load() {
		n.served.Store(gen)
	}
	return s.cfg.Cluster.AckGeneration(ctx, n.self.ID, n.served.Load())
}

// converge brings one slot to what the store says. The store is read again
// under the service's lock, which this node's own operations hold across
// their store write and the matching change in memory, so the two agree.
func (s *Service) converge(ctx context.Context, k slotKey) error {
	s.mu.Lock()
	w, err := s.readSlot(ctx, k.app, k.slot)
	st := s.slots[k]
	switch {
	case hotswap.ErrorKind(err) == hotswap.NotFound:
		if st != nil {
			delete(s.slots, k)
			if st.preview == nil {
				s.publishLocked()
			}
			set := st.set
			s.mu.Unlock()
			st.log.add("host", "slot deleted on another node")
			s.retire(set)
			return nil
		}
		s.mu.Unlock()
		return nil
	case err != nil:
		s.mu.Unlock()
		return err
	}
	if st == nil {
		st = &slotState{slot: w.slot, keys: w.keys, settings: w.settings, log: newRing()}
		st.slot.DeploymentID = "" // set once its process set runs
		s.slots[k] = st
		s.publishLocked() // its host name answers (nothing deployed yet)
	}
	if st.preview != nil || st.matchesLocked(w) {
		s.mu.Unlock()
		return nil
	}
	st.slot.AutoSwapTarget, st.keys = w.slot.AutoSwapTarget, w.keys
	from := st.cfgKey
	wantKey := ""
	if w.slot.DeploymentID != "" {
		wantKey = configKey(k.app, k.slot, w.slot.DeploymentID, w.settings)
	}
	if wantKey == from && (wantKey == "" || st.set != nil) {
		// Only keys or the auto-swap target changed.
		st.settings = w.settings
		s.publishLocked()
		s.mu.Unlock()
		return nil
	}
	if w.slot.DeploymentID == "" {
		// Emptied (a swap with an empty slot).
		old, oldDep := st.set, st.slot.DeploymentID
		st.slot.DeploymentID, st.settings, st.pkg, st.routes, st.set, st.cfgKey = "", w.settings, nil, nil, nil, ""
		s.publishLocked()
		s.mu.Unlock()
		s.park(from, oldDep, old)
		return nil
	}
	log := st.log
	s.mu.Unlock()

	// Start (or take the prepared warm) set without the lock.
	d, err := s.store.GetDeployment(ctx, k.app, w.slot.DeploymentID)
	if err != nil {
		return err
	}
	pkg, routes, err := s.loadPackage(ctx, d)
	if err != nil {
		return err
	}
	set, key, _, err := s.acquireSet(ctx, w.slot, d, pkg, w.settings, log)
	if err != nil {
		// The handler does not start here: the slot keeps what it served
		// and says why, as a single server's slot does at start-up, and
		// the next round tries again. The operation's prepare step failed
		// on such a node before its flip, so this is a restart or a
		// failure since; the generation is still acknowledged, or one bad
		// deployment would take every node out of its load balancer.
		// The old set leaves the routing table all the same: an
		// acknowledged flip never leaves a node serving the old
		// deployment. Requests get 503 here (a load balancer retries
		// them on another node) until the store changes again.
		s.mu.Lock()
		st := s.slots[k]
		var old *runtime.Set
		var oldKey, oldDep string
		if st != nil && st.cfgKey == from && st.preview == nil {
			old, oldKey, oldDep = st.set, st.cfgKey, st.slot.DeploymentID
			st.slot, st.keys, st.settings = w.slot, w.keys, w.settings
			st.pkg, st.routes, st.set, st.cfgKey = nil, nil, nil, ""
			st.err, st.failedKey = hotswap.ErrorMessage(err), configKey(k.app, k.slot, w.slot.DeploymentID, w.settings)
			s.publishLocked()
		}
		s.mu.Unlock()
		s.park(oldKey, oldDep, old)
		s.log.Error("start a slot's process set for the cluster's change", "app", k.app, "slot", k.slot, "deployment", d.ID, "err", err)
		return nil
	}

	s.mu.Lock()
	now, err := s.readSlot(ctx, k.app, k.slot)
	st = s.slots[k]
	if err != nil || st == nil || st.cfgKey != from || st.preview != nil ||
		now.slot.DeploymentID != w.slot.DeploymentID || configKey(k.app, k.slot, now.slot.DeploymentID, now.settings) != key {
		// Changed meanwhile: the next round sees the new state.
		s.mu.Unlock()
		s.park(key, d.ID, set)
		if err != nil {
			return err
		}
		return fmt.Errorf("changed while its process set started")
	}
	old, oldDep := st.set, st.slot.DeploymentID
	st.slot, st.keys, st.settings = now.slot, now.keys, now.settings
	st.pkg, st.routes, st.set, st.cfgKey, st.started, st.err, st.failedKey = pkg, routes, set, key, time.Now(), "", ""
	s.publishLocked()
	s.mu.Unlock()
	log.add("host", fmt.Sprintf("slot now serves deployment %s (changed through another node)", d.ID))
	s.park(from, oldDep, old)
	return nil
}

// loadPackage makes sure deployment d's package is on this node, fetching it
// from the store when needed, and loads it.
func (s *Service) loadPackage(ctx context.Context, d hotswap.Deployment) (*funcapp.App, *funcapp.Router, error) {
	if err := s.ensurePackage(ctx, d.Digest); err != nil {
		return nil, nil, err
	}
	pkg, err := funcapp.Load(s.cfg.Artifacts.Dir(d.Digest))
	if err != nil {
		return nil, nil, fmt.Errorf("load deployment %s: %w", d.ID, err)
	}
	routes, err := funcapp.NewRouter(pkg.Host.RoutePrefix, pkg.Functions)
	if err != nil {
		return nil, nil, fmt.Errorf("routes of deployment %s: %w", d.ID, err)
	}
	return pkg, routes, nil
}

// ensurePackage fetches the package of digest from the cluster's store into
// the local artifact store when it is not there yet; the local store checks
// the digest of what it reads.
func (s *Service) ensurePackage(ctx context.Context, digest string) error {
	if s.cfg.Artifacts.Has(digest) || s.cfg.Cluster == nil {
		return nil
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(s.cfg.Cluster.GetPackage(ctx, digest, pw))
	}()
	got, err := s.cfg.Artifacts.Put(ctx, pr, func(dir string) error {
		p, err := funcapp.Load(dir)
		if err != nil {
			return err
		}
		return makeExecutable(dir, p.Host)
	})
	pr.CloseWithError(io.EOF)
	if err != nil {
		return fmt.Errorf("fetch package %s from the store: %w", digest, err)
	}
	if got != digest {
		return fmt.Errorf("fetch package %s from the store: its content has digest %s", digest, got)
	}
	s.log.Info("fetched package from the store", "digest", digest)
	return nil
}

func (s *Service) prepareLoop() {
	defer s.wg.Done()
	n := s.node
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-n.prepare:
		case <-tick.C:
		}
		ps, err := s.cfg.Cluster.PendingPrepares(s.ctx, n.self.ID, prepareTTL)
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("read prepare requests", "err", err)
			}
			continue
		}
		for _, p := range ps {
			if n.prepared[p.OpID] {
				continue
			}
			errText := ""
			if err := s.prepareWants(s.ctx, p); err != nil {
				errText = hotswap.ErrorMessage(err)
				s.log.Warn("prepare for another node's operation failed", "app", p.App, "op", p.OpID, "err", err)
			}
			if err := s.cfg.Cluster.ReportPrepared(s.ctx, p.OpID, n.self.ID, errText); err != nil {
				s.log.Warn("report prepare; trying again", "op", p.OpID, "err", err)
				continue // the sets are parked: the next round reports at once
			}
			n.prepared[p.OpID] = true
		}
	}
}

// prepareWants starts and warms the sets another node's operation is about
// to switch to, and parks them for the flip.
func (s *Service) prepareWants(ctx context.Context, p hotswap.Prepare) error {
	for _, w := range p.Wants {
		key := configKey(p.App, w.Slot, w.DeploymentID, w.Settings)
		s.mu.Lock()
		st := s.slots[slotKey{p.App, w.Slot}]
		have := s.parked[key] != nil || st != nil && st.cfgKey == key && st.set != nil
		var sl hotswap.Slot
		var log *ring
		var keys []hotswap.Key
		if st != nil {
			sl, log, keys = st.slot, st.log, st.keys
		}
		s.mu.Unlock()
		if have {
			continue
		}
		if st == nil {
			got, err := s.store.GetSlot(ctx, p.App, w.Slot)
			if err != nil {
				return err
			}
			sl, log = got, newRing()
		}
		d, err := s.store.GetDeployment(ctx, p.App, w.DeploymentID)
		if err != nil {
			return err
		}
		pkg, routes, err := s.loadPackage(ctx, d)
		if err != nil {
			return err
		}
		x, err := s.prepare(ctx, sl, d.ID, pkg, routes, w.Settings, keys, log)
		if err != nil {
			return err
		}
		s.park(x.key, x.deployment, x.set) // warm for the flip
	}
	return nil
}

// clusterPrepare asks every other live node to prepare wants and
// waits for their reports. A node that reports failure fails the operation
// before its flip; one that does not answer within the start timeout is
// left behind (it fails its health check until it catches up).
func (s *Service) clusterPrepare(ctx context.Context, app string, wants []hotswap.PrepareWant) error {
	if s.node == nil || len(wants) == 0 {
		return nil
	}
	self := s.node.self.ID
	peers, err := s.peers(ctx)
	if err != nil || len(peers) == 0 {
		return err
	}
	p := hotswap.Prepare{OpID: newID("p-"), App: app, Wants: wants, By: self}
	if err := s.cfg.Cluster.RequestPrepare(ctx, p); err != nil {
		return err
	}
	deadline := time.Now().Add(s.cfg.StartTimeout + 10*time.Second)
	var wait time.Duration
	for {
		res, err := s.cfg.Cluster.PrepareResults(ctx, p.OpID)
		if err != nil {
			return err
		}
		peers, err = s.peers(ctx) // a node that died meanwhile is not waited for
		if err != nil {
			return err
		}
		var waiting []string
		for _, n := range peers {
			e, ok := res[n.ID]
			switch {
			case !ok:
				waiting = append(waiting, nodeLabel(n))
			case e != "":
				return hotswap.Errorf(hotswap.FailedPrecondition, "node %s could not prepare: %s", nodeLabel(n), e)
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			s.log.Warn("nodes did not prepare in time; they catch up after the flip", "app", app, "nodes", waiting)
			return nil
		}
		wait = poll(wait)
	}
}

// clusterAck waits until every live node serves the store's current
// generation (which includes the caller's flip) and returns the names of the nodes
// that did not within AckTimeout; those fail their health check until they
// catch up.
func (s *Service) clusterAck(ctx context.Context, app, slot, action string) []string {
	if s.node == nil {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	gen, err := s.cfg.Cluster.Generation(ctx)
	if err != nil {
		s.log.Warn("read the cluster generation after a flip", "app", app, "err", err)
		return nil
	}
	signal(s.node.reconcile)
	deadline := time.Now().Add(s.cfg.AckTimeout)
	var wait time.Duration
	for {
		nodes, err := s.cfg.Cluster.LiveNodes(ctx, s.cfg.Liveness)
		var lag []string
		if err == nil {
			for _, n := range nodes {
				// A starting node loads the slots as they are once it
				// is up, and its health check fails until then. A silent
				// one is probably dead (see silentAfter).
				if n.Generation < gen && n.State != hotswap.NodeStarting && n.Age <= silentAfter {
					lag = append(lag, nodeLabel(n))
				}
			}
			if len(lag) == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				lag = []string{"unknown (the store did not list the nodes: " + err.Error() + ")"}
			}
			sort.Strings(lag)
			s.log.Warn("nodes did not acknowledge a flip in time; they fail their health check until they catch up", "app", app, "slot", slot, "nodes", lag)
			s.activity(ctx, app, "system", action, slot, "nodes not yet serving the change: "+strings.Join(lag, ", "), "lagging")
			return lag
		}
		wait = poll(wait)
	}
}

// poll sleeps before the next look at the other nodes' reports: 1 ms at
// first (warm sets report at once), doubling to 20 ms (a set that starts
// takes its time).
func poll(wait time.Duration) time.Duration {
	wait = min(max(2*wait, time.Millisecond), 20*time.Millisecond)
	time.Sleep(wait)
	return wait
}

// peers lists the other live nodes that heartbeat.
func (s *Service) peers(ctx context.Context) ([]hotswap.Node, error) {
	nodes, err := s.cfg.Cluster.LiveNodes(ctx, s.cfg.Liveness)
	if err != nil {
		return nil, err
	}
	out := nodes[:0]
	for _, n := range nodes {
		if n.ID != s.node.self.ID && n.State != hotswap.NodeStarting && n.Age <= silentAfter {
			out = append(out, n)
		}
	}
	return out, nil
}

func nodeLabel(n hotswap.Node) string {
	if n.Name != "" {
		return n.Name + " (" + n.ID + ")"
	}
	return n.ID
}

// recoverDead ends the running operations of nodes that died: their flips
// happened or not, as recover decides for a restarted single server.
func (s *Service) recoverDead(ctx context.Context) {
	ops, err := s.store.RunningOperations(ctx)
	if err != nil || len(ops) == 0 {
		return
	}
	live, err := s.cfg.Cluster.LiveNodes(ctx, s.cfg.Liveness)
	if err != nil {
		return
	}
	alive := make(map[string]bool, len(live))
	for _, n := range live {
		alive[n.ID] = true
	}
	for _, op := range ops {
		if op.Node == "" || alive[op.Node] || op.Node == s.node.self.ID {
			continue
		}
		if err := s.recoverOp(ctx, op, "its node stopped before it completed"); err != nil {
			s.log.Warn("recover the operation of a dead node", "op", op.ID, "err", err)
		}
	}
}
