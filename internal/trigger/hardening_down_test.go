package trigger

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/azstorage"
)

// fakeSet is a handler set whose handler can be taken down and brought
// back, as runtime.Set's is while it restarts a crashed handler.
type fakeSet struct{ down, stopped atomic.Bool }

func (f *fakeSet) Stopped() bool { return f.stopped.Load() }

func (f *fakeSet) Addr() (string, bool) {
	if f.down.Load() {
		return "", false
	}
	return "127.0.0.1:1", true
}

// Idle: a fakeSet never sleeps (scale to zero is runtime.Set's, tested there
// and end to end).
func (f *fakeSet) Idle() bool { return false }

func (f *fakeSet) Wake(context.Context) (string, error) { return "", errors.New("not asleep") }

func (f *fakeSet) RetryAfter() time.Duration {
	if f.down.Load() {
		return 300 * time.Millisecond
	}
	return 0
}

// Messages that arrive while the handler is down (restarting) do not
// use up their dequeue count: none reaches the poison queue, and each runs
// once the handler is back. Part of them is fetched while the handler is
// up and dispatched after it went down (dispatchDown), the rest waits.
func TestPollerHandlerDown(t *testing.T) {
	t.Parallel()
	q, poison := testQueue(t, "restarting")
	set := &fakeSet{}
	var refusals atomic.Int32 // dispatches that found the handler down
	var mu sync.Mutex
	ran := map[string]int{}
	opts := testOptions()
	opts.MaxDequeueCount = 2
	// The first dispatches find the handler down although the fetch found
	// it up (it crashed in between).
	var dispatchDown atomic.Int32
	dispatchDown.Store(4)
	p := &poller{fn: "R", queue: "restarting", q: q, poison: poison, opts: opts, stats: new(Stats), notRun: new(notRunCounts), log: func(string) {},
		ready: readyWait(set),
		handle: func(ctx context.Context, m *message) error {
			if dispatchDown.Add(-1) >= 0 {
				set.down.Store(true)
			}
			if _, err := handlerAddr(context.Background(), set); err != nil {
				refusals.Add(1)
				return err
			}
			mu.Lock()
			ran[string(m.Text)]++
			mu.Unlock()
			return nil
		}}
	runPoller(t, p)
	enqueue(t, q, "a", "b", "c")
	waitFor(t, "the down handler to refuse a message", 30*time.Second, func() bool { return refusals.Load() > 0 })
	time.Sleep(3 * time.Second) // the handler stays down: restarts back off
	for range 3 {               // it comes up, crashes again at once (dispatchDown), comes back
		set.down.Store(false)
		time.Sleep(1500 * time.Millisecond)
	}
	set.down.Store(false)
	waitFor(t, "every message to run", 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ran) == 3 && count(t, q) == 0
	})
	if _, err := poison.GetProperties(context.Background(), nil); !isQueueNotFound(err) {
		t.Errorf("messages went to the poison queue while the handler was down")
	}
	mu.Lock()
	defer mu.Unlock()
	for k, n := range ran {
		if n != 1 {
			t.Errorf("message %s ran %d times, want once", k, n)
		}
	}
	var st State
	p.stats.state(&st)
	if st.Failures != 0 || st.Poisoned != 0 {
		t.Errorf("state = %+v, want no failure and nothing poisoned", st)
	}
}

// A blob found while the handler is down is neither counted as a failure
// nor reported as poison; it runs once the handler is back.
func TestBlobScannerHandlerDown(t *testing.T) {
	t.Parallel()
	e := testBlobs(t, "uploads")
	set := &fakeSet{}
	set.down.Store(true)
	var refusals atomic.Int32
	s, got := e.scanner(t, "host", nil)
	inner := s.handle
	s.handle = func(ctx context.Context, b *blobItem) error {
		if _, err := handlerAddr(context.Background(), set); err != nil {
			refusals.Add(1)
			return err
		}
		return inner(ctx, b)
	}
	runScanner(t, s)
	e.upload(t, "x.txt", "x")
	waitFor(t, "the down handler to refuse the blob", 30*time.Second, func() bool { return refusals.Load() > 0 })
	time.Sleep(4 * time.Second) // more than blobMaxTries refusals before the fix
	set.down.Store(false)
	waitFor(t, "the blob to run", 60*time.Second, func() bool { return len(got()) == 1 })
	if _, err := e.poison.GetProperties(context.Background(), nil); !isQueueNotFound(err) {
		t.Errorf("the blob was reported to %s while the handler was down", blobPoisonQueue)
	}
	var st State
	s.stats.state(&st)
	if st.Failures != 0 || st.Poisoned != 0 || st.Invocations != 1 {
		t.Errorf("state = %+v, want one invocation, no failure", st)
	}
}

// With a SAS connection pointing at a closed port, the SDK's network
// errors (*url.Error, holding the request's URL) reach neither the slot
// log nor the listener state with the signature.
func TestTriggerErrorsHideSAS(t *testing.T) {
	t.Parallel()
	acct, err := azstorage.ParseConnectionString("BlobEndpoint=http://127.0.0.1:1/acct;QueueEndpoint=http://127.0.0.1:1/acct;SharedAccessSignature=sv=2022-11-02&ss=bq&sig=SECRETSIG")
	if err != nil {
		t.Fatal(err)
	}
	q, err := acct.Queue("work")
	if err != nil {
		t.Fatal(err)
	}
	poisonQ, _ := acct.Queue("work-poison")
	var mu sync.Mutex
	var lines []string
	logf := func(s string) { mu.Lock(); lines = append(lines, s); mu.Unlock() }
	p := &poller{fn: "W", queue: "work", q: q, poison: poisonQ, opts: testOptions(), stats: new(Stats), notRun: new(notRunCounts), log: logf,
		handle: func(ctx context.Context, m *message) error { return nil }}
	runPoller(t, p)
	c, _ := acct.Container("uploads")
	rc, _ := acct.Container(receiptsContainer)
	pattern, _ := azstorage.ParseBlobPattern("uploads/{name}")
	s := &blobScanner{fn: "B", hostID: "h", pattern: pattern, c: c, receipts: rc, poison: poisonQ, log: logf, stats: new(Stats),
		done: make(map[string]bool), busy: make(map[string]bool), later: make(map[string]time.Time),
		handle: func(ctx context.Context, b *blobItem) error { return nil }}
	runScanner(t, s)
	var pst, bst State
	waitFor(t, "both listeners to fail", 90*time.Second, func() bool {
		p.stats.state(&pst)
		s.stats.state(&bst)
		return pst.Error != "" && bst.Error != ""
	})
	mu.Lock()
	defer mu.Unlock()
	all := append([]string{pst.Error, bst.Error}, lines...)
	for _, l := range all {
		if strings.Contains(l, "SECRETSIG") || strings.Contains(l, "sig=") {
			t.Errorf("the SAS leaked: %s", l)
		}
	}
	if !strings.Contains(pst.Error, "127.0.0.1:1") {
		t.Errorf("queue error %q does not say where", pst.Error)
	}
	// A blob's URI (Metadata.Uri, binding values) has no SAS either.
	if u := stripQuery(c.NewBlobClient("a.txt").URL()); strings.Contains(u, "sig=") {
		t.Errorf("blob URL %s", u)
	}
}
