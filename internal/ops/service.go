// Package ops carries out what changes a slot: creating apps and slots,
// deploying, changing keys and settings. It keeps the store, the artifact
// store, the running process sets and the data plane's routing table in step:
// the store is the source of truth, and every change is committed there before
// the routing table is replaced.
package ops

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/artifact"
	"github.com/hotswap/hotswap/internal/funcapp"
	"github.com/hotswap/hotswap/internal/metrics"
	"github.com/hotswap/hotswap/internal/router"
	"github.com/hotswap/hotswap/internal/runtime"
)

// Config configures a Service.
type Config struct {
	Domain       string // e.g. "localhost"
	PublicAddr   string // the functions listener's address, for URLs, e.g. ":8080"
	Store        Store
	Artifacts    *artifact.Store
	Runtime      *runtime.Manager
	Router       *router.Handler
	Metrics      *metrics.Registry // request metrics per slot; nil records none
	Logger       *slog.Logger      // nil discards
	StartTimeout time.Duration     // handler readiness; zero = 60s
	DrainGrace   time.Duration     // in-flight requests on a retired process set; zero = 30s
	// RevertWindow is how long a process set that a swap, deploy or rollback
	// retired stays warm, so that going back starts no process. Zero = 10m;
	// negative disables.
	RevertWindow time.Duration
	// IdleTimeout is how long a slot other than production may serve
	// nothing before its process set is stopped until the next request
	// (scale to zero); a slot's HOTSWAP_IDLE_TIMEOUT setting overrides it.
	// Zero is DefaultIdleTimeout; negative is never.
	IdleTimeout time.Duration
	// IdleTick is how often idle sets are looked for; zero is 1s.
	IdleTick time.Duration
	// MaxWarmSets bounds the retired process sets kept warm (memory); the
	// oldest is stopped first. Zero = 16.
	MaxWarmSets int
	// Retention is how many successful deployments per app are kept (see
	// pruneable: failed ones are kept apart); deployments a slot serves or
	// served before, the last Retention production served, and those warm
	// for a revert are always kept. Zero = 20.
	Retention int
	// Outputs writes the queue and blob outputs of functions the service
	// invokes itself (timers); nil leaves such functions failing.
	Outputs OutputWriter
	// Triggers runs the queue and blob triggers of the serving process
	// sets (see Triggers); nil runs none.
	Triggers Triggers
	// Cluster is the store shared by the nodes of a cluster (PostgreSQL);
	// nil on a single server. See node.go.
	Cluster Cluster
	// NodeID names this node in the cluster; empty makes a random one.
	NodeID   string
	NodeName string // shown in hotswap nodes; e.g. the host name
	Version  string // the binary's version, shown in hotswap nodes
	// Liveness is how old a node's last heartbeat may be for it to count
	// as alive; zero = 10s.
	Liveness time.Duration
	// AckTimeout bounds the wait for every live node to serve a flip; a
	// node that takes longer fails its health check until it catches up.
	// Zero = 15s.
	AckTimeout time.Duration
	// ReconcileEvery is how often a node compares itself with the store
	// when no notification came; zero = 5s.
	ReconcileEvery time.Duration
	// CrashPoint, for crash-safety tests only, names a point in an operation
	// at which the server kills itself with SIGKILL (see crash).
	CrashPoint string
}

// Service is the control plane's engine.
type Service struct {
	// beforeAutoSwap, set by tests only, runs between a deploy's end and
	// its auto swap: where another deploy can land.
	beforeAutoSwap func()

	cfg    Config
	store  Store
	log    *slog.Logger
	port   string // ":8080" or "" for port 80
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	holder   atomic.Pointer[holderBox]   // release holds; nil: none (SetHolder)
	versions atomic.Pointer[versionsBox] // artifact versions for quarantines; nil: none (SetVersions)

	ends   unrecorded  // operation ends the store refused, see finish
	events events      // operations' phases in memory, see events.go
	phases phaseWrites // and in the store, written in the background

	node     *clusterNode // nil on a single server
	draining atomic.Bool
	started  time.Time

	mu     sync.Mutex
	slots  map[slotKey]*slotState
	parked map[string]*parkedSet // by configuration key
	// traffic holds the traffic routing rules of each app's production
	// slot (see traffic.go); never edited in place.
	traffic map[string][]hotswap.TrafficShare
}

type slotKey struct{ app, slot string }

// slotState is what the service knows of a running slot; guarded by mu.
type slotState struct {
	slot     hotswap.Slot
	keys     []hotswap.Key
	settings []hotswap.Setting
	log      *ring

	// Set while something is deployed.
	pkg     *funcapp.App
	routes  *funcapp.Router
	set     *runtime.Set
	cfgKey  string // configuration key of set
	started time.Time
	err     string // why the process set is not running, at start-up

	preview *preview // set while a swap of this slot is in preview
	// failedKey is the configuration whose process set failed to start
	// when the cluster switched to it (see converge); tried again when the
	// store changes.
	failedKey string
}

// Open loads every slot from the store, finishes what a crash interrupted,
// starts the deployed slots' handler processes and publishes the routing table.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DrainGrace == 0 {
		cfg.DrainGrace = 30 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.IdleTick == 0 {
		cfg.IdleTick = time.Second
	}
	if cfg.RevertWindow == 0 {
		cfg.RevertWindow = 10 * time.Minute
	}
	if cfg.MaxWarmSets == 0 {
		cfg.MaxWarmSets = 16
	}
	if cfg.Retention == 0 {
		cfg.Retention = 20
	}
	if cfg.Liveness == 0 {
		cfg.Liveness = defaultLiveness
	}
	if cfg.AckTimeout == 0 {
		cfg.AckTimeout = defaultAckTimeout
	}
	if cfg.ReconcileEvery == 0 {
		cfg.ReconcileEvery = defaultReconcile
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	s := &Service{cfg: cfg, store: cfg.Store, log: cfg.Logger, slots: make(map[slotKey]*slotState), parked: make(map[string]*parkedSet), traffic: make(map[string][]hotswap.TrafficShare), started: time.Now().UTC()}
	if _, port, err := net.SplitHostPort(cfg.PublicAddr); err == nil && port != "80" && port != "" {
		s.port = ":" + port
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	var gen int64
	if cfg.Cluster != nil {
		var err error
		if gen, err = s.initCluster(ctx); err != nil {
			return nil, err
		}
	}
	if err := s.recover(ctx); err != nil {
		return nil, err
	}
	slots, err := s.store.ListAllSlots(ctx)
	if err != nil {
		return nil, fmt.Errorf("load slots: %w", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, sl := range slots {
		st, err := s.loadSlot(ctx, sl)
		if err != nil {
			return nil, err
		}
		s.slots[slotKey{sl.App, sl.Name}] = st
		if sl.DeploymentID == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.startDeployed(ctx, st)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				st.err = err.Error()
				s.log.Error("start slot", "app", sl.App, "slot", sl.Name, "err", err)
			}
		}()
	}
	wg.Wait()
	if err := s.loadTraffic(ctx, appsOf(slots)); err != nil {
		return nil, fmt.Errorf("load traffic rules: %w", err)
	}
	s.mu.Lock()
	s.publishLocked()
	s.mu.Unlock()
	s.phases.wake = make(chan struct{}, 1)
	s.wg.Add(5)
	go s.phaseLoop()
	go s.reapLoop()
	go s.idleLoop()
	go s.timerLoop()
	go s.endLoop()
	if s.node != nil {
		s.startCluster(gen)
	}
	return s, nil
}

// Close stops the service's background work. Process sets are stopped by the
// runtime manager's Close.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	s.stopCluster()
	return nil
}

// recover ends the operations a crash left running. A deploy that did not
// reach its flip is failed; one that did is complete, since the flip is the
// store transaction that points the slot at the deployment.
func (s *Service) recover(ctx context.Context) error {
	ops, err := s.store.RunningOperations(ctx)
	if err != nil {
		return fmt.Errorf("recover operations: %w", err)
	}
	var alive map[string]bool
	if s.node != nil {
		live, err := s.cfg.Cluster.LiveNodes(ctx, s.cfg.Liveness)
		if err != nil {
			return fmt.Errorf("recover operations: %w", err)
		}
		alive = make(map[string]bool, len(live))
		for _, n := range live {
			alive[n.ID] = n.ID != s.node.self.ID
		}
	}
	for _, op := range ops {
		if alive[op.Node] {
			continue // another node runs it
		}
		if err := s.recoverOp(ctx, op, "interrupted by a server restart before it completed"); err != nil {
			return err
		}
	}
	return nil
}

// recoverOp ends an operation whose server stopped before it completed:
// a deploy that reached its flip succeeded, anything else failed.
func (s *Service) recoverOp(ctx context.Context, op hotswap.Operation, why string) error {
	state, detail := hotswap.OpFailed, why
	if op.Kind == "deploy" && op.Target != "" {
		d, err := s.store.GetDeployment(ctx, op.App, op.Target)
		if err == nil && d.Status == hotswap.DeploySuccess {
			state, detail = hotswap.OpSucceeded, "completed before a server restart"
		} else if err == nil && d.Status != hotswap.DeployFailed {
			d.Status, d.StatusText, d.EndedAt = hotswap.DeployFailed, "interrupted by a server restart", time.Now().UTC()
			if err := s.store.UpdateDeployment(ctx, d); err != nil {
				return fmt.Errorf("recover deployment %s: %w", d.ID, err)
			}
		}
	}
	if err := s.store.EndOperation(ctx, op.ID, state, detail); err != nil {
		return fmt.Errorf("recover operation %s: %w", op.ID, err)
	}
	s.activity(ctx, op.App, "system", "recover", op.Slot, fmt.Sprintf("%s %s: %s", op.Kind, op.ID, detail), string(state))
	s.log.Warn("recovered operation", "app", op.App, "op", op.ID, "kind", op.Kind, "state", state)
	return nil
}

func (s *Service) loadSlot(ctx context.Context, sl hotswap.Slot) (*slotState, error) {
	keys, err := s.store.ListKeys(ctx, sl.App, sl.Name)
	if err != nil {
		return nil, fmt.Errorf("load keys of %s/%s: %w", sl.App, sl.Name, err)
	}
	settings, err := s.store.ListSettings(ctx, sl.App, sl.Name)
	if err != nil {
		return nil, fmt.Errorf("load settings of %s/%s: %w", sl.App, sl.Name, err)
	}
	return &slotState{slot: sl, keys: keys, settings: settings, log: newRing()}, nil
}

// startDeployed starts the process set of a slot's current deployment.
func (s *Service) startDeployed(ctx context.Context, st *slotState) error {
	d, err := s.store.GetDeployment(ctx, st.slot.App, st.slot.DeploymentID)
	if err != nil {
		return err
	}
	pkg, routes, err := s.loadPackage(ctx, d)
	if err != nil {
		return err
	}
	// A slot that may idle starts asleep: a server with many slots starts
	// only what production needs, and each other slot on its first
	// request (or trigger, or warm-up).
	if to, err := idleTimeout(st.settings, st.slot.Name, s.cfg.IdleTimeout); err == nil && to > 0 {
		set, err := s.startSetMode(ctx, st.slot, d, s.cfg.Artifacts.Dir(d.Digest), pkg, st.settings, st.log, true)
		if err != nil {
			return err
		}
		st.pkg, st.routes, st.set, st.cfgKey, st.started = pkg, routes, set, configKey(st.slot.App, st.slot.Name, d.ID, st.settings), time.Now()
		return nil
	}
	set, key, _, err := s.acquireSet(ctx, st.slot, d, pkg, st.settings, st.log)
	if err != nil {
		return err
	}
	st.pkg, st.routes, st.set, st.cfgKey, st.started = pkg, routes, set, key, time.Now()
	return nil
}

// acquireSet returns a ready process set for deployment d under the slot's
// identity and settings: a warm one kept from before when the configuration
// is the same (reused), else a new one.
func (s *Service) acquireSet(ctx context.Context, sl hotswap.Slot, d hotswap.Deployment, pkg *funcapp.App, settings []hotswap.Setting, log *ring) (set *runtime.Set, key string, reused bool, err error) {
	key = configKey(sl.App, sl.Name, d.ID, settings)
	if set := s.unpark(key); set != nil {
		log.add("host", fmt.Sprintf("reusing the warm handler of deployment %s", d.ID))
		return set, key, true, nil
	}
	set, err = s.startSet(ctx, sl, d, s.cfg.Artifacts.Dir(d.Digest), pkg, settings, log)
	return set, key, false, err
}

// startSet starts and waits for the handler process of deployment d (stored
// in dir) with the slot's identity and settings.
func (s *Service) startSet(ctx context.Context, sl hotswap.Slot, d hotswap.Deployment, dir string, pkg *funcapp.App, settings []hotswap.Setting, log *ring) (*runtime.Set, error) {
	return s.startSetMode(ctx, sl, d, dir, pkg, settings, log, false)
}

// startSetMode is startSet, or with asleep a set started asleep (see
// runtime.Manager.StartAsleep): nothing runs until its first Wake.
func (s *Service) startSetMode(ctx context.Context, sl hotswap.Slot, d hotswap.Deployment, dir string, pkg *funcapp.App, settings []hotswap.Setting, log *ring, asleep bool) (*runtime.Set, error) {
	env := make([]string, 0, len(settings)+8)
	lookup := make(map[string]string, len(settings))
	for _, st := range settings {
		env = append(env, st.Name+"="+st.Value)
		lookup[st.Name] = st.Value
	}
	slotName := sl.Name
	if slotName == hotswap.ProductionSlot {
		slotName = "Production"
	}
	env = append(env,
		"FUNCTIONS_APP_ROOT_PATH="+dir,
		"WEBSITE_SITE_NAME="+sl.App,
		"WEBSITE_SLOT_NAME="+slotName,
		"WEBSITE_HOSTNAME="+s.hostName(sl.App, sl.Name)+s.port,
		"HOTSWAP_DEPLOYMENT_ID="+d.ID,
	)
	workDir := dir
	if pkg.Host.WorkingDirectory != "" {
		workDir = filepath.Join(dir, filepath.FromSlash(pkg.Host.WorkingDirectory))
	}
	path := pkg.Host.ExecutablePath
	if p := filepath.Join(workDir, filepath.FromSlash(path)); fileExists(p) {
		path = p
	} else if p := filepath.Join(dir, filepath.FromSlash(path)); fileExists(p) {
		path = p
	}
	args := funcapp.ExpandArgs(pkg.Host.Arguments, func(name string) (string, bool) {
		v, ok := lookup[name]
		return v, ok
	})
	if err := checkExecutable(path, s.cfg.Runtime.User); err != nil {
		log.add("host", "handler cannot start: "+err.Error())
		return nil, hotswap.Errorf(hotswap.FailedPrecondition, "the handler of deployment %s cannot start: %v", d.ID, err)
	}
	spec := runtime.Spec{
		Dir:          workDir,
		Path:         path,
		Args:         args,
		Env:          env,
		StartTimeout: s.cfg.StartTimeout,
		Log:          log.add,
	}
	if asleep {
		set, err := s.cfg.Runtime.StartAsleep(spec)
		if err != nil {
			return nil, hotswap.Errorf(hotswap.FailedPrecondition, "the handler of deployment %s: %v", d.ID, err)
		}
		log.add("host", fmt.Sprintf("handler of deployment %s idle (scaled to zero) until its first request", d.ID))
		return set, nil
	}
	set, err := s.cfg.Runtime.Start(ctx, spec)
	if err != nil {
		log.add("host", "handler failed to start: "+err.Error())
		return nil, hotswap.Errorf(hotswap.FailedPrecondition, "the handler of deployment %s did not start: %v", d.ID, err)
	}
	log.add("host", fmt.Sprintf("handler of deployment %s ready (pid %d)", d.ID, set.PID()))
	return set, nil
}

// publishLocked builds a routing table from the slots and publishes it.
func (s *Service) publishLocked() {
	slots := make([]*router.Slot, 0, len(s.slots))
	for _, st := range s.slots {
		rs := &router.Slot{
			App:      st.slot.App,
			Name:     st.slot.Name,
			HostName: s.hostName(st.slot.App, st.slot.Name),
			BaseURL:  s.baseURL(st.slot.App, st.slot.Name),
			Keys:     router.NewKeys(st.keys),
			Log:      st.log.add,
		}
		if st.slot.Name == hotswap.ProductionSlot {
			rs.Shares = s.sharesLocked(st.slot.App)
		}
		switch {
		case st.preview != nil:
			// The source slot's URL serves the source content under the
			// target's slot settings.
			p := st.preview
			rs.Deployment = st.slot.DeploymentID
			rs.Package, rs.Routes, rs.Upstream, rs.Started = st.pkg, st.routes, p.targetNew.set, p.since
			rs.Disabled = disabled(p.targetNew.settings, st.pkg)
			rs.Settings = settingsMap(p.targetNew.settings)
			rs.Broken = broken(st.pkg, rs.Settings)
		case st.set != nil:
			if s.cfg.Metrics != nil {
				rs.Metrics = s.cfg.Metrics.Series(st.slot.App, st.slot.Name, st.slot.DeploymentID)
			}
			rs.Deployment = st.slot.DeploymentID
			rs.Package = st.pkg
			rs.Routes = st.routes
			rs.Upstream = st.set
			rs.Started = st.started
			rs.Disabled = disabled(st.settings, st.pkg)
			rs.Settings = settingsMap(st.settings)
			rs.Broken = broken(st.pkg, rs.Settings)
		}
		slots = append(slots, rs)
	}
	s.cfg.Router.Publish(router.NewTable(s.cfg.Domain, slots, s.cfg.Router.Transport()))
	s.serveTriggersLocked()
}

// disabled returns the functions disabled by AzureWebJobs.<name>.Disabled
// (true or 1). The name matches pkg's functions ignoring case, as Azure's
// app settings and the trigger listeners (trigger.disabledFunctions) do;
// the map holds each function's own name (and the name as the setting
// spells it).
func disabled(settings []hotswap.Setting, pkg *funcapp.App) map[string]bool {
	m := disabledNames(settings)
	if m == nil || pkg == nil {
		return m
	}
	lower := make(map[string]bool, len(m))
	for n := range m {
		lower[strings.ToLower(n)] = true
	}
	for _, f := range pkg.Functions {
		if lower[strings.ToLower(f.Name)] {
			m[f.Name] = true
		}
	}
	return m
}

// disabledNames returns the names AzureWebJobs.<name>.Disabled disables,
// as the settings spell them.
func disabledNames(settings []hotswap.Setting) map[string]bool {
	var m map[string]bool
	for _, st := range settings {
		name, ok := strings.CutPrefix(st.Name, "AzureWebJobs.")
		if !ok {
			continue
		}
		fn, ok := strings.CutSuffix(name, ".Disabled")
		if !ok {
			continue
		}
		if v := strings.ToLower(strings.TrimSpace(st.Value)); v == "true" || v == "1" {
			if m == nil {
				m = make(map[string]bool)
			}
			m[fn] = true
		}
	}
	return m
}

// retire stops routing to set (already replaced in the table), lets its
// in-flight requests finish within the drain grace, then stops it.
func (s *Service) retire(set *runtime.Set) {
	if set == nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.DrainGrace)
		defer cancel()
		_ = set.Retire(ctx)
		if err := set.Stop(5 * time.Second); err != nil {
			s.log.Warn("stop retired process set", "err", err)
		}
	}()
}

func (s *Service) hostName(app, slot string) string { return hotswap.HostName(app, slot, s.cfg.Domain) }

func (s *Service) baseURL(app, slot string) string {
	return "http://" + s.hostName(app, slot) + s.port
}

func (s *Service) activity(ctx context.Context, app, actor, action, slot, detail, result string) {
	err := s.store.AddActivity(context.WithoutCancel(ctx), hotswap.Activity{App: app, Actor: hotswap.CleanText(actor), Action: action, Slot: slot, Detail: hotswap.CleanText(detail), Result: hotswap.CleanText(result)})
	if err != nil {
		s.log.Error("record activity", "app", app, "action", action, "err", err)
	}
}

// newKey returns a fresh random key value: 40 bytes, URL-safe base64.
func newKey() string {
	var b [40]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns a time-ordered random identifier with the given prefix.
func newID(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + time.Now().UTC().Format("20060102t150405") + "-" + idEncoding.EncodeToString(b[:])
}

func sortedKeys(keys []hotswap.Key) []hotswap.Key {
	order := map[string]int{hotswap.ScopeMaster: 0, hotswap.ScopeHost: 1, hotswap.ScopeFunction: 2}
	sort.SliceStable(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if order[a.Scope] != order[b.Scope] {
			return order[a.Scope] < order[b.Scope]
		}
		if a.Function != b.Function {
			return a.Function < b.Function
		}
		return a.Name < b.Name
	})
	return keys
}

var errClosed = errors.New("service is closed")

// crash kills the server at the named point when the crash-safety tests ask
// for it: SIGKILL, so nothing is cleaned up, as in a real crash.
func (s *Service) crash(point string) {
	if s.cfg.CrashPoint != "" && s.cfg.CrashPoint == point {
		s.log.Error("crashing on purpose", "point", point)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // never returns
	}
}
