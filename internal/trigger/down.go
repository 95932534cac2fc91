package trigger

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hotswap/hotswap/internal/invoke"
)

// A try the function never had does not count: while a set's handler is
// down (crashed, waiting to restart), or once its listener stopped, a
// fetched message or blob is released without a try, and its dequeue is
// not counted towards maxDequeueCount (notRunCounts). The pollers wait
// while the handler is down before fetching at all (readyWait), so a
// restart does not use up the dequeue counts of the messages waiting.

// notRunError is errNotRun with how long to wait before the next try.
type notRunError struct {
	why   string
	after time.Duration
	cut   bool // the invocation was sent, and cut off by the server: say so in the log
}

func (e *notRunError) Error() string        { return "not run: " + e.why }
func (e *notRunError) Is(target error) bool { return target == errNotRun }

// retryDelay is how long a message or blob that was not run waits before
// it is offered again: zero unless err says so.
func retryDelay(err error) time.Duration {
	var e *notRunError
	if errors.As(err, &e) {
		return e.after
	}
	return 0
}

// handlerSet is the part of a runtime.Set that tells whether its handler is
// up, and starts it when it sleeps (scaled to zero).
type handlerSet interface {
	Addr() (addr string, ok bool)
	Stopped() bool
	RetryAfter() time.Duration
	Idle() bool
	Wake(ctx context.Context) (string, error)
}

// minDownRetry is the least time a message that found the handler down
// stays hidden (Set.RetryAfter is zero while a restart is under way).
const minDownRetry = time.Second

// handlerAddr returns the set's handler address, starting a set that
// sleeps first (work wakes it, as a request does), or, while it is down, a
// notRunError telling to come back after the expected restart.
func handlerAddr(ctx context.Context, set handlerSet) (string, error) {
	if addr, ok := set.Addr(); ok {
		return addr, nil
	}
	if set.Idle() {
		addr, err := set.Wake(ctx)
		if err == nil {
			return addr, nil
		}
		return "", &notRunError{why: "the handler did not start: " + err.Error(), after: max(set.RetryAfter(), minDownRetry)}
	}
	return "", &notRunError{why: "the handler is down (restarting)", after: max(set.RetryAfter(), minDownRetry)}
}

// notReached returns a notRunError when an invocation that failed with err
// was not the function's failure, so it is not a try: the handler could
// not be dialled (it crashed after its address was read; the request was
// never sent), or the server stopped the set under the invocation (a
// retired set whose drain grace ran out: Stopped, not merely retiring),
// as the server's shutdown cuts one off. Otherwise, the handler answered,
// failed mid-request or timed out, it returns nil: that is a try.
func notReached(err error, set handlerSet) error {
	if invoke.Answered(err) {
		return nil
	}
	if set.Stopped() {
		return &notRunError{why: "cut off: the process set was stopped while the function ran: " + err.Error(), cut: true}
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return &notRunError{why: "the handler could not be reached: " + err.Error(), after: max(set.RetryAfter(), minDownRetry)}
	}
	return nil
}

// readyWait returns a func telling how long to wait before fetching work
// for set: zero while its handler is up or asleep (the work wakes it),
// unless its last start failed and the next waits for its back-off.
func readyWait(set handlerSet) func() time.Duration {
	return func() time.Duration {
		if _, ok := set.Addr(); ok || set.Idle() && set.RetryAfter() == 0 {
			return 0
		}
		return min(max(set.RetryAfter(), 100*time.Millisecond), time.Second)
	}
}

// notRunCounts counts, per message ID, the dequeues of messages released
// without a try, so DequeueCount minus it is the tries that ran. One count
// serves all of a server's pollers (Manager.notRun): a message goes from a
// retiring set's poller to the next set's at every flip. Another node's
// releases are not in it, so on a cluster a message handed between nodes
// may count some dequeues it did not run. An entry goes when its message
// is settled here; one settled elsewhere (another node, another consumer)
// stays until the map is full, when the quarter released longest ago is
// dropped: those messages would count their untried dequeues again.
type notRunCounts struct {
	mu sync.Mutex
	m  map[string]notRunEntry
}

type notRunEntry struct {
	n    int64     // untried dequeues
	last time.Time // of the latest
}

const maxNotRunIDs = 10000

func (c *notRunCounts) add(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]notRunEntry)
	}
	if _, ok := c.m[id]; !ok && len(c.m) >= maxNotRunIDs {
		c.evictLocked()
	}
	e := c.m[id]
	c.m[id] = notRunEntry{n: e.n + 1, last: time.Now()}
}

// evictLocked drops the quarter of the entries released longest ago.
func (c *notRunCounts) evictLocked() {
	times := make([]time.Time, 0, len(c.m))
	for _, e := range c.m {
		times = append(times, e.last)
	}
	slices.SortFunc(times, time.Time.Compare)
	cut := times[len(times)/4]
	for id, e := range c.m {
		if !e.last.After(cut) {
			delete(c.m, id)
		}
	}
}

// tries returns how many of dequeueCount dequeues of id were real tries
// (this one included).
func (c *notRunCounts) tries(id string, dequeueCount int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return max(dequeueCount-c.m[id].n, 1)
}

func (c *notRunCounts) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}
