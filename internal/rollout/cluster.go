package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/metrics"
)

// This file gives the analyses the requests of every node of a cluster:
// each node publishes its registry's lifetime counts per slot to the store
// at its heartbeats (ops), and the node running the rollouts and releases
// reads them, keeps samples of their sum per slot in memory, and answers a
// window as the difference of two samples.

// Source reads the request counts the nodes of a cluster publish;
// *postgres.DB implements it.
type Source interface {
	// SlotTotals returns every node's row of one slot.
	SlotTotals(ctx context.Context, app, slot string) ([]hotswap.SlotTotals, error)
	// AllSlotTotals returns every node's rows of every slot.
	AllSlotTotals(ctx context.Context) ([]hotswap.SlotTotals, error)
}

// ClusterConfig configures a ClusterMetrics.
type ClusterConfig struct {
	Source Source
	// Now is the clock of the samples; nil is time.Now.
	Now func() time.Time
	// Every is how often every slot of the cluster is read, so that a
	// window asked for the first time (a release's metric gate, a step
	// after a pause) reaches back before the question; zero is 5s.
	// Negative reads only the slots asked about, when asked: tests call
	// Sample themselves.
	Every time.Duration
	// Fresh is how old a slot's last reading may be for a Window call to
	// answer from it without reading the store again; zero is 500ms.
	Fresh time.Duration
	// Timeout bounds one read of the store; zero is 2s.
	Timeout time.Duration
	// Active tells whether this node needs the samples (it runs the
	// rollouts and releases); the others read nothing in the background,
	// and drop their samples when it turns false. Nil is always.
	Active func() bool
	Logger *slog.Logger
}

// clusterKeep is how long the reading of a node that published no more
// (gone, or silent) is kept: as long as the store keeps its rows
// (postgres.NodeMetricsKeep), so that a node back from a silence continues
// from its last counts instead of counting its whole life again.
const clusterKeep = time.Hour

// ClusterMetrics gives the requests of every node of a cluster: Totals for
// the rollout engine (Metrics), Window for release metric gates. It keeps,
// per slot, the sum over the nodes of what each counted since the slot was
// first read (a node's counts that went down started from zero again, and
// count from there), sampled at each reading; a window of d is the
// difference between the newest sample and the newest one at least d old.
//
// The samples begin with the first reading: after this node started or
// took over (Active), a window reaching further back answers from the
// oldest sample, so it covers less time than asked until d has passed. A
// progressive swap's step starts again on the node that takes it over
// anyway (Rollout.Runner). Between readings of every slot (Every) the far
// end of a window may be up to that much older than d.
type ClusterMetrics struct {
	cfg    ClusterConfig
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	slots map[metrics.SlotKey]*clusterSlot
	// baseline: a reading of every slot was taken since the samples were
	// last dropped, so a slot first seen later is new: all its counts
	// came since.
	baseline   bool
	baselineAt time.Time // the last reading of every slot
	failing    bool      // the last reading failed; its error was logged
}

// clusterSlot is what ClusterMetrics keeps of one slot.
type clusterSlot struct {
	nodes map[string]nodeReading // the last reading of each node's row
	// total counts the requests of all nodes since the slot was first
	// read; it only grows.
	total   metrics.Totals
	samples []clusterSample // oldest first; a new one when total changed
	read    time.Time       // when the slot was last read
	// counting: the slot was read since the samples were last dropped, so
	// a node first seen on it is new (all its counts came since).
	counting bool
}

type nodeReading struct {
	totals  metrics.Totals
	updated time.Time // the row's time, by the store's clock
	seen    time.Time // when a reading last had the row
}

type clusterSample struct {
	at    time.Time
	total metrics.Totals
}

// OpenClusterMetrics starts a ClusterMetrics, reading every slot every
// cfg.Every from now on while cfg.Active says so.
func OpenClusterMetrics(ctx context.Context, cfg ClusterConfig) (*ClusterMetrics, error) {
	if cfg.Source == nil {
		return nil, errors.New("rollout: cluster metrics need a Source")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Every == 0 {
		cfg.Every = 5 * time.Second
	}
	if cfg.Fresh == 0 {
		cfg.Fresh = 500 * time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &ClusterMetrics{cfg: cfg, log: cfg.Logger, slots: map[metrics.SlotKey]*clusterSlot{}}
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if cfg.Every > 0 {
		c.wg.Add(1)
		go c.loop()
	}
	return c, nil
}

// Close stops the background readings and waits for them. It may be
// called more than once.
func (c *ClusterMetrics) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}

func (c *ClusterMetrics) loop() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.Every)
	defer t.Stop()
	for {
		if c.cfg.Active == nil || c.cfg.Active() {
			_ = c.Sample(c.ctx) // logged there
		} else {
			c.drop()
		}
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// drop forgets the samples and the nodes' readings: a node that no longer
// runs the analyses needs none, and when it runs them again, what it
// missed meanwhile must not look new (the next readings start counting
// again). Each slot's total stays, so that Totals never goes back.
func (c *ClusterMetrics) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cs := range c.slots {
		cs.samples, cs.nodes, cs.counting = nil, map[string]nodeReading{}, false
	}
	c.baseline = false
}

// Sample reads every slot of the cluster once and takes a sample of each:
// what the background loop does every Every.
func (c *ClusterMetrics) Sample(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	rows, err := c.cfg.Source.AllSlotTotals(ctx)
	if c.failed(err) {
		return err
	}
	bySlot := make(map[metrics.SlotKey][]hotswap.SlotTotals)
	for _, r := range rows {
		k := metrics.SlotKey{App: r.App, Slot: r.Slot}
		bySlot[k] = append(bySlot[k], r)
	}
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.slots {
		if _, ok := bySlot[k]; !ok {
			bySlot[k] = nil // no node has a row of it now
		}
	}
	for k, rs := range bySlot {
		c.applyLocked(k, rs, now)
	}
	for k, cs := range c.slots {
		// A slot no node counts any more, and nobody asked about within a
		// window's length, goes.
		if len(cs.nodes) == 0 && now.Sub(cs.read) > metrics.MaxWindow {
			delete(c.slots, k)
		}
	}
	c.baseline, c.baselineAt = true, now
	return nil
}

// failed logs the first error of a run of failed readings and the return
// to normal, and reports whether err is one.
func (c *ClusterMetrics) failed(err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		if c.failing {
			c.log.Info("the cluster's request counts can be read again")
		}
		c.failing = false
		return false
	}
	if !c.failing && c.ctx.Err() == nil {
		c.log.Warn("read the cluster's request counts: analyses see only what was read before", "err", err)
	}
	c.failing = true
	return true
}

// applyLocked takes a reading of slot k (rows: every node's row of it) at
// now into the slot's total and samples. c.mu must be held.
func (c *ClusterMetrics) applyLocked(k metrics.SlotKey, rows []hotswap.SlotTotals, now time.Time) {
	cs := c.slots[k]
	// A slot first read after a reading of every slot had no row then:
	// its counts all came since. Otherwise the first reading is where the
	// counting starts.
	if cs == nil {
		cs = &clusterSlot{nodes: map[string]nodeReading{}}
		c.slots[k] = cs
	}
	countAll := cs.counting || c.baseline
	if !cs.counting && c.baseline {
		// Nothing was counted at the last reading of every slot.
		cs.samples = append(cs.samples, clusterSample{at: c.baselineAt, total: cs.total})
	}
	cs.counting = true
	for _, r := range rows {
		if len(r.Hist) != metrics.Buckets {
			continue // counted with other bounds: not comparable
		}
		var t metrics.Totals
		copy(t.Hist[:], r.Hist)
		t.Errors = r.Errors
		prev, known := cs.nodes[r.Node]
		switch {
		case known && r.Updated.Before(prev.updated):
			continue // a reading older than one applied already
		case known:
			// Sub returns t itself when the node's counts went down:
			// they started again from zero.
			d, _ := t.Sub(prev.totals)
			cs.total = cs.total.Add(d)
		case countAll:
			cs.total = cs.total.Add(t)
		}
		cs.nodes[r.Node] = nodeReading{totals: t, updated: r.Updated, seen: now}
	}
	for id, n := range cs.nodes {
		if now.Sub(n.seen) > clusterKeep {
			delete(cs.nodes, id)
		}
	}
	cs.read = now
	if n := len(cs.samples); n == 0 || cs.samples[n-1].total != cs.total {
		cs.samples = append(cs.samples, clusterSample{at: now, total: cs.total})
	}
	// Keep the newest sample older than the longest window: it is that
	// window's start.
	i := 0
	for i+1 < len(cs.samples) && !cs.samples[i+1].at.After(now.Add(-metrics.MaxWindow)) {
		i++
	}
	if i > 0 {
		cs.samples = append(cs.samples[:0], cs.samples[i:]...)
	}
}

// refresh reads slot k from the store unless it did within Fresh.
func (c *ClusterMetrics) refresh(ctx context.Context, k metrics.SlotKey) error {
	c.mu.Lock()
	cs := c.slots[k]
	stale := cs == nil || c.cfg.Now().Sub(cs.read) >= c.cfg.Fresh
	c.mu.Unlock()
	if !stale {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	rows, err := c.cfg.Source.SlotTotals(ctx, k.App, k.Slot)
	if c.failed(err) {
		return fmt.Errorf("read the cluster's request counts of %s/%s: %w", k.App, k.Slot, err)
	}
	c.mu.Lock()
	c.applyLocked(k, rows, c.cfg.Now())
	c.mu.Unlock()
	return nil
}

// Totals returns the requests every node served on a slot since this
// ClusterMetrics first read it, all deployments together: counts that only
// grow, so that two calls subtract into the requests between them, as the
// registry's Totals of one node do. It reads the slot from the store first
// unless it did within Fresh, and fails when that read fails.
func (c *ClusterMetrics) Totals(ctx context.Context, app, slot string) (metrics.Totals, error) {
	k := metrics.SlotKey{App: app, Slot: slot}
	if err := c.refresh(ctx, k); err != nil {
		return metrics.Totals{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs := c.slots[k]; cs != nil {
		return cs.total, nil
	}
	return metrics.Totals{}, nil
}

// Window returns the requests every node served on a slot over the last d
// (rounded up to a second and clamped to 1s..metrics.MaxWindow, as the
// registry's Window), all deployments together. It reads the slot from the
// store first unless it did within Fresh; when that fails, it answers from
// the samples it has.
func (c *ClusterMetrics) Window(app, slot string, d time.Duration) metrics.Stats {
	k := metrics.SlotKey{App: app, Slot: slot}
	n := (d + time.Second - 1) / time.Second
	d = min(max(n, 1)*time.Second, metrics.MaxWindow)
	_ = c.refresh(c.ctx, k) // logged there

	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := c.slots[k]
	if cs == nil || len(cs.samples) == 0 {
		return metrics.Stats{}
	}
	newest := cs.samples[len(cs.samples)-1]
	// The newest sample at least d old holds the total as last read
	// before now-d; with none that old, the oldest: the window is then
	// shorter than d.
	base := cs.samples[0]
	for i := len(cs.samples) - 1; i >= 0; i-- {
		if !cs.samples[i].at.After(now.Add(-d)) {
			base = cs.samples[i]
			break
		}
	}
	delta, _ := newest.total.Sub(base.total) // total only grows
	return metrics.StatsOf(delta)
}
