package trigger

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/funcapp"
)

// A message released without a try (its set retiring, its handler down)
// does not count towards maxDequeueCount: with maxDequeueCount 1, two
// refusals still leave it its one real try.
func TestPollerNotRunIsNotATry(t *testing.T) {
	t.Parallel()
	q, poison := testQueue(t, "notrun")
	var refused, ran atomic.Int32
	opts := testOptions()
	opts.MaxDequeueCount = 1
	p := &poller{fn: "N", queue: "notrun", q: q, poison: poison, opts: opts, stats: new(Stats), notRun: new(notRunCounts), log: func(string) {},
		handle: func(ctx context.Context, m *message) error {
			if refused.Add(1) <= 2 {
				return errNotRun
			}
			ran.Add(1)
			return nil
		}}
	runPoller(t, p)
	enqueue(t, q, "once")
	waitFor(t, "the message to be settled", 30*time.Second, func() bool { return count(t, q) == 0 })
	if _, err := poison.GetProperties(context.Background(), nil); !isQueueNotFound(err) {
		t.Error("the message went to the poison queue without a try")
	}
	if n := ran.Load(); n != 1 {
		t.Errorf("the function ran %d times, want once", n)
	}
}

// A batch fetched across the flip (the pull ended while the fetch was under
// way) is released at once, not run by the retiring set.
func TestPollerBatchAcrossFlip(t *testing.T) {
	t.Parallel()
	q, poison := testQueue(t, "flip")
	enqueue(t, q, "a", "b")
	pull, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ran atomic.Int32
	p := &poller{fn: "F", queue: "flip", q: q, poison: poison, opts: testOptions(), stats: new(Stats), notRun: new(notRunCounts), log: func(string) {},
		// The flip comes right after the readiness check, so during the fetch.
		ready:  func() time.Duration { cancel(); return 0 },
		handle: func(ctx context.Context, m *message) error { ran.Add(1); return nil }}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.run(pull, context.Background(), &wg) }()
	wg.Wait()
	if n := ran.Load(); n != 0 {
		t.Errorf("the retiring poller ran %d messages fetched across the flip", n)
	}
	// Released at once: the next listener gets both without waiting for the lease.
	var got atomic.Int32
	next := &poller{fn: "F", queue: "flip", q: q, poison: poison, opts: testOptions(), stats: new(Stats), notRun: new(notRunCounts), log: func(string) {},
		handle: func(ctx context.Context, m *message) error { got.Add(1); return nil }}
	runPoller(t, next)
	waitFor(t, "the next listener to run both", 20*time.Second, func() bool { return got.Load() == 2 })
}

// The untried dequeues are counted across sets: a message that several
// retiring sets released untried (a stream of swaps) is still tried by the
// set that finally takes it, not moved to the poison queue with no try.
func TestPollerNotRunAcrossSets(t *testing.T) {
	t.Parallel()
	q, poison := testQueue(t, "handed")
	opts := testOptions()
	opts.MaxDequeueCount = 2
	counts := new(notRunCounts)
	for i := range 3 { // three retiring sets, one untried dequeue each
		var refused atomic.Int32
		old := &poller{fn: "H", queue: "handed", q: q, poison: poison, opts: opts, stats: new(Stats), notRun: counts, log: func(string) {},
			handle: func(ctx context.Context, m *message) error { refused.Add(1); return errNotRun }}
		stop := runPoller(t, old)
		if i == 0 {
			enqueue(t, q, "hello")
		}
		// (Or to settle it without a try, which the checks below report.)
		waitFor(t, "a retiring set to release the message untried", 30*time.Second, func() bool { return refused.Load() > 0 || count(t, q) == 0 })
		stop()
	}
	var ran atomic.Int32
	next := &poller{fn: "H", queue: "handed", q: q, poison: poison, opts: opts, stats: new(Stats), notRun: counts, log: func(string) {},
		handle: func(ctx context.Context, m *message) error { ran.Add(1); return nil }}
	runPoller(t, next)
	waitFor(t, "the message to be settled", 30*time.Second, func() bool { return count(t, q) == 0 })
	if n := ran.Load(); n != 1 {
		t.Errorf("the next set ran the message %d times, want once", n)
	}
	if _, err := poison.GetProperties(context.Background(), nil); !isQueueNotFound(err) {
		t.Error("the message went to the poison queue without a try")
	}
}

// When the counts are full, the entries released longest ago go, not all
// of them: a message released untried just before keeps its count.
func TestNotRunCountsEvictOldest(t *testing.T) {
	t.Parallel()
	var c notRunCounts
	for i := range maxNotRunIDs - 1 {
		c.add(fmt.Sprintf("old-%d", i))
	}
	for range 3 {
		c.add("hot")
	}
	c.add("new") // full: evicts
	if got := c.tries("hot", 4); got != 1 {
		t.Errorf("after the eviction a message released untried 3 times, dequeued 4, counts %d tries, want 1", got)
	}
	if n := len(c.m); n > maxNotRunIDs*3/4+1 || n < maxNotRunIDs/2 {
		t.Errorf("%d entries after the eviction, want about three quarters of %d", n, maxNotRunIDs)
	}
	if got := c.tries("old-0", 2); got != 2 {
		t.Errorf("the oldest entry was kept (tries %d, want 2)", got)
	}
}

// The Manager gives every poller it makes, of any set, the same counts.
func TestManagerPollersShareNotRun(t *testing.T) {
	t.Parallel()
	m := New(Config{})
	defer m.Close(context.Background())
	fn := &funcapp.Function{Name: "Relay"}
	var pollers []*poller
	for _, slot := range []string{"production", "staging"} {
		s := Serving{App: "a", Slot: slot, Package: &funcapp.App{Host: &funcapp.Host{}}}
		pollers = append(pollers, m.newPoller(s, fn, endpoints{queue: "q"}, &fnListener{}, func(string) {}))
	}
	if pollers[0].notRun == nil || pollers[0].notRun != pollers[1].notRun {
		t.Errorf("the pollers of two sets count untried dequeues apart (%p, %p)", pollers[0].notRun, pollers[1].notRun)
	}
}
