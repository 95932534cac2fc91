package rollout

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/metrics"
)

var _ Metrics = (*ClusterMetrics)(nil)

// fakeSource is the store's node_metrics in memory: each set is a publish,
// stamped with a time that grows.
type fakeSource struct {
	mu        sync.Mutex
	rows      map[[3]string]hotswap.SlotTotals // node, app, slot
	stamp     time.Time
	err       error
	slotReads int
	allReads  int
}

func newFakeSource() *fakeSource {
	return &fakeSource{rows: map[[3]string]hotswap.SlotTotals{}, stamp: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
}

// set publishes node's counts of app/slot: fast requests (2ms), slow ones
// (1s), and errors among them.
func (f *fakeSource) set(node, app, slot string, fast, slow, errs uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stamp = f.stamp.Add(time.Millisecond)
	f.rows[[3]string{node, app, slot}] = f.row(node, app, slot, fast, slow, errs, f.stamp)
}

func (f *fakeSource) row(node, app, slot string, fast, slow, errs uint64, at time.Time) hotswap.SlotTotals {
	var t metrics.Totals
	t.Hist[3] = fast  // 2ms
	t.Hist[13] = slow // 1.5s
	t.Errors = errs
	return hotswap.SlotTotals{Node: node, App: app, Slot: slot, Hist: slices.Clone(t.Hist[:]), Errors: errs, Updated: at}
}

func (f *fakeSource) remove(node, app, slot string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.rows, [3]string{node, app, slot})
}

func (f *fakeSource) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeSource) reads() (slot, all int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.slotReads, f.allReads
}

func (f *fakeSource) SlotTotals(ctx context.Context, app, slot string) ([]hotswap.SlotTotals, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.slotReads++
	if f.err != nil {
		return nil, f.err
	}
	var out []hotswap.SlotTotals
	for k, r := range f.rows {
		if k[1] == app && k[2] == slot {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeSource) AllSlotTotals(ctx context.Context) ([]hotswap.SlotTotals, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.allReads++
	if f.err != nil {
		return nil, f.err
	}
	var out []hotswap.SlotTotals
	for _, r := range f.rows {
		out = append(out, r)
	}
	return out, nil
}

// newClusterMetrics returns a ClusterMetrics on a fake source and clock
// that reads only when asked.
func newClusterMetrics(t *testing.T) (*ClusterMetrics, *fakeSource, *clock) {
	t.Helper()
	src := newFakeSource()
	clk := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	c, err := OpenClusterMetrics(context.Background(), ClusterConfig{Source: src, Now: clk.Now, Every: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, src, clk
}

// stats is what Window says of fast and slow requests with errs errors.
func stats(fast, slow, errs int64) metrics.Stats {
	var t metrics.Totals
	t.Hist[3], t.Hist[13], t.Errors = uint64(fast), uint64(slow), uint64(errs)
	return metrics.StatsOf(t)
}

func TestClusterMetricsWindow(t *testing.T) {
	c, src, clk := newClusterMetrics(t)
	window := func(d time.Duration, want metrics.Stats) {
		t.Helper()
		if diff := cmp.Diff(c.Window("shop", "staging", d), want); diff != "" {
			t.Errorf("Window(%v) at %v (-got +want):\n%s", d, clk.Now().Format(time.TimeOnly), diff)
		}
	}
	src.set("a", "shop", "staging", 100, 0, 0)
	src.set("b", "shop", "staging", 50, 0, 5)
	src.set("a", "shop", "production", 1000, 0, 0)
	// The first reading is where the counting starts: what the nodes
	// counted before is of unknown time.
	window(time.Minute, metrics.Stats{})

	clk.add(10 * time.Second)
	src.set("a", "shop", "staging", 160, 0, 0)
	src.set("b", "shop", "staging", 90, 0, 9)
	window(time.Minute, stats(100, 0, 4))

	clk.add(60 * time.Second)
	src.set("a", "shop", "staging", 190, 10, 3) // 10 slow ones, 3 errors
	// The last 30s: from the reading 60s ago.
	window(30*time.Second, stats(30, 10, 3))
	// Longer than the samples reach: from the first reading.
	window(5*time.Minute, stats(130, 10, 7))
	// 70s back is the first reading exactly.
	window(70*time.Second, stats(130, 10, 7))
	// Less than a second is a second, as the registry's Window.
	window(0, stats(30, 10, 3))
	if got := c.Window("shop", "nope", time.Minute); got != (metrics.Stats{}) {
		t.Errorf("Window of a slot no node counts = %+v, want zero", got)
	}
}

// A node whose counts went down started again from zero; a node first seen
// on a known slot counts from zero; a reading older than one applied is
// skipped.
func TestClusterMetricsRestartsAndNewNodes(t *testing.T) {
	c, src, clk := newClusterMetrics(t)
	src.set("a", "shop", "staging", 100, 0, 0)
	src.set("b", "shop", "staging", 90, 0, 9)
	c.Window("shop", "staging", time.Minute)

	clk.add(time.Second)
	old := src.row("a", "shop", "staging", 100, 0, 0, time.Date(2026, 12, 1, 0, 0, 0, 1, time.UTC))
	src.set("b", "shop", "staging", 10, 0, 1) // b's counts restarted: 10 since
	src.set("c", "shop", "staging", 7, 0, 0)  // c is new: 7 since
	src.set("a", "shop", "staging", 105, 0, 0)
	if got, want := c.Window("shop", "staging", time.Minute), stats(22, 0, 1); got != want {
		t.Errorf("Window after b restarted and c came = %+v, want %+v", got, want)
	}

	// A reading that crossed a newer one brings a's older row back: it is
	// not a restart of a.
	clk.add(time.Second)
	src.mu.Lock()
	src.rows[[3]string{"a", "shop", "staging"}] = old
	src.mu.Unlock()
	if got, want := c.Window("shop", "staging", time.Minute), stats(22, 0, 1); got != want {
		t.Errorf("Window after an older reading of a = %+v, want %+v", got, want)
	}

	// A node whose row went (its slot was forgotten) and came back with
	// fewer counts counts them all.
	clk.add(time.Second)
	src.remove("c", "shop", "staging")
	c.Window("shop", "staging", time.Minute)
	clk.add(time.Second)
	src.set("c", "shop", "staging", 3, 0, 0)
	if got, want := c.Window("shop", "staging", time.Minute), stats(25, 0, 1); got != want {
		t.Errorf("Window after c's row came back = %+v, want %+v", got, want)
	}
}

// After a reading of every slot, a slot first seen is new: all its counts
// came since. Without one, its first reading is where counting starts.
func TestClusterMetricsNewSlotAfterFullReading(t *testing.T) {
	ctx := context.Background()
	c, src, clk := newClusterMetrics(t)
	src.set("a", "shop", "production", 500, 0, 0)
	if err := c.Sample(ctx); err != nil {
		t.Fatal(err)
	}
	clk.add(5 * time.Second)
	src.set("a", "shop", "production", 600, 0, 0)
	src.set("a", "shop", "canary", 30, 0, 2)
	if got, want := c.Window("shop", "canary", time.Minute), stats(30, 0, 2); got != want {
		t.Errorf("Window of a slot new since a full reading = %+v, want %+v", got, want)
	}
	// The background reading takes samples of every slot, so a window
	// asked for the first time reaches back before the question.
	if got, want := c.Window("shop", "production", time.Minute), stats(100, 0, 0); got != want {
		t.Errorf("Window of production, first asked now = %+v, want %+v", got, want)
	}

	fresh, src2, _ := newClusterMetrics(t)
	src2.set("a", "shop", "canary", 30, 0, 2)
	if got := fresh.Window("shop", "canary", time.Minute); got != (metrics.Stats{}) {
		t.Errorf("Window of a slot read for the first time, no full reading before = %+v, want zero", got)
	}
}

// A Window call reads the store once within Fresh; when the store fails,
// it answers from the samples it has, and reads again at the next call.
func TestClusterMetricsFreshAndFailing(t *testing.T) {
	c, src, clk := newClusterMetrics(t)
	src.set("a", "shop", "staging", 10, 0, 0)
	c.Window("shop", "staging", time.Minute)
	clk.add(10 * time.Second)
	src.set("a", "shop", "staging", 30, 0, 0)
	c.Window("shop", "staging", time.Minute)
	clk.add(100 * time.Millisecond)
	c.Window("shop", "staging", time.Minute)
	if slot, _ := src.reads(); slot != 2 {
		t.Errorf("%d reads of the store for three calls, two within 500ms, want 2", slot)
	}

	src.fail(errors.New("connection refused"))
	clk.add(time.Second)
	src.set("a", "shop", "staging", 50, 0, 0) // not readable
	if got, want := c.Window("shop", "staging", time.Minute), stats(20, 0, 0); got != want {
		t.Errorf("Window with the store failing = %+v, want the samples' %+v", got, want)
	}
	clk.add(time.Second)
	src.fail(nil)
	if got, want := c.Window("shop", "staging", time.Minute), stats(40, 0, 0); got != want {
		t.Errorf("Window with the store back = %+v, want %+v", got, want)
	}
	if slot, _ := src.reads(); slot != 4 {
		t.Errorf("%d reads of the store, want 4 (every call reads again after a failure)", slot)
	}
}

// Samples are kept for the longest window, not longer.
func TestClusterMetricsKeepsLongestWindow(t *testing.T) {
	ctx := context.Background()
	c, src, clk := newClusterMetrics(t)
	var n uint64
	for i := range 80 { // 20 minutes, a reading every 15s, 10 requests between
		src.set("a", "shop", "staging", n, 0, 0)
		if err := c.Sample(ctx); err != nil {
			t.Fatal(err)
		}
		if i < 79 {
			n += 10
			clk.add(15 * time.Second)
		}
	}
	if got, want := c.Window("shop", "staging", metrics.MaxWindow), stats(400, 0, 0); got != want {
		t.Errorf("Window(MaxWindow) = %+v, want %+v", got, want)
	}
	if got, want := c.Window("shop", "staging", time.Hour), stats(400, 0, 0); got != want {
		t.Errorf("Window(1h), clamped to MaxWindow = %+v, want %+v", got, want)
	}
	c.mu.Lock()
	kept := len(c.slots[metrics.SlotKey{App: "shop", Slot: "staging"}].samples)
	c.mu.Unlock()
	if kept > 42 {
		t.Errorf("%d samples kept, want at most 41 (10 minutes of 15s, and the one before)", kept)
	}
}

// The background readings run while Active says so; when it turns false
// the samples go.
func TestClusterMetricsActive(t *testing.T) {
	src := newFakeSource()
	src.set("a", "shop", "staging", 10, 0, 0)
	var active atomic.Bool
	active.Store(true)
	var logs strings.Builder
	var logMu sync.Mutex
	c, err := OpenClusterMetrics(context.Background(), ClusterConfig{Source: src, Every: 10 * time.Millisecond, Active: active.Load,
		Logger: slogTo(&logMu, &logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	known := func() int { // slots with samples
		c.mu.Lock()
		defer c.mu.Unlock()
		n := 0
		for _, cs := range c.slots {
			if len(cs.samples) > 0 {
				n++
			}
		}
		return n
	}
	waitUntil(t, "the background reading takes a sample", func() bool { return known() == 1 })
	active.Store(false)
	waitUntil(t, "the samples go when no longer active", func() bool { return known() == 0 })
	_, before := src.reads()
	time.Sleep(100 * time.Millisecond)
	if _, after := src.reads(); after != before {
		t.Errorf("%d background readings while not active", after-before)
	}
	src.fail(errors.New("connection refused"))
	active.Store(true)
	time.Sleep(100 * time.Millisecond)
	logMu.Lock()
	n := strings.Count(logs.String(), "connection refused")
	logMu.Unlock()
	if n != 1 {
		t.Errorf("a run of failed readings logged %d times, want once:\n%s", n, logs.String())
	}
	c.Close()
	c.Close() // twice is fine
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// slogTo returns a logger writing text to b, under mu.
func slogTo(mu *sync.Mutex, b *strings.Builder) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{mu, b}, nil))
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Totals only grow, so that the engine subtracts a step's start from them;
// a failed read is an error; after the samples were dropped (the node no
// longer led) the next reading starts counting again from the same total.
func TestClusterMetricsTotals(t *testing.T) {
	ctx := context.Background()
	c, src, clk := newClusterMetrics(t)
	totals := func() metrics.Totals {
		t.Helper()
		got, err := c.Totals(ctx, "shop", "staging")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	src.set("a", "shop", "staging", 100, 0, 0)
	src.set("b", "shop", "staging", 40, 0, 4)
	start := totals()
	if start != (metrics.Totals{}) {
		t.Errorf("Totals at the first reading = %+v, want zero: the counting starts there", start)
	}
	clk.add(time.Second)
	src.set("a", "shop", "staging", 150, 2, 1)
	src.set("b", "shop", "staging", 5, 0, 0) // restarted
	now := totals()
	d, ok := now.Sub(start)
	if got, want := metrics.StatsOf(d), stats(55, 2, 1); !ok || got != want {
		t.Errorf("Totals' difference = %+v (ok %v), want %+v", got, ok, want)
	}

	clk.add(time.Second)
	src.fail(errors.New("connection refused"))
	if _, err := c.Totals(ctx, "shop", "staging"); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Totals with the store failing: err = %v, want it", err)
	}
	src.fail(nil)

	c.drop()
	clk.add(time.Second)
	src.set("a", "shop", "staging", 900, 2, 1) // while this node did not lead
	if got := totals(); got != now {
		t.Errorf("Totals at the first reading after a drop = %+v, want the total before, %+v", got, now)
	}
	clk.add(time.Second)
	src.set("a", "shop", "staging", 910, 2, 1)
	d, ok = totals().Sub(now)
	if got, want := metrics.StatsOf(d), stats(10, 0, 0); !ok || got != want {
		t.Errorf("Totals' difference after a drop = %+v (ok %v), want %+v", got, ok, want)
	}
}
