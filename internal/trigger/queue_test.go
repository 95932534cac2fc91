package trigger

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/hotswap/hotswap/internal/azstorage"
	"github.com/hotswap/hotswap/internal/azurite"
	"github.com/hotswap/hotswap/internal/funcapp"
)

// testQueue creates a queue in a new Azurite and returns it with its
// poison queue (not created).
func testQueue(t testing.TB, name string) (q, poison *azqueue.QueueClient) {
	t.Helper()
	srv := azurite.Start(t)
	acct, err := azstorage.ParseConnectionString(srv.ConnectionString())
	if err != nil {
		t.Fatal(err)
	}
	if q, err = acct.Queue(name); err != nil {
		t.Fatal(err)
	}
	if poison, err = acct.Queue(name + "-poison"); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Create(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return q, poison
}

func enqueue(t testing.TB, q *azqueue.QueueClient, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if _, err := q.EnqueueMessage(context.Background(), base64.StdEncoding.EncodeToString([]byte(s)), nil); err != nil {
			t.Fatal(err)
		}
	}
}

// count returns the messages in q, visible or not.
func count(t testing.TB, q *azqueue.QueueClient) int {
	t.Helper()
	p, err := q.GetProperties(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return int(deref(p.ApproximateMessagesCount))
}

// runPoller runs p until the test ends.
func runPoller(t testing.TB, p *poller) (stop func()) {
	t.Helper()
	pull, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.run(pull, context.Background(), &wg)
	}()
	stop = sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(stop)
	return stop
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testOptions() funcapp.QueueOptions {
	o := funcapp.DefaultQueueOptions()
	o.MaxPollingInterval = 200 * time.Millisecond
	return o
}

func TestPollerDeletesAfterSuccess(t *testing.T) {
	t.Parallel()
	q, poison := testQueue(t, "work")
	var mu sync.Mutex
	var got []string
	var counts []int64
	p := &poller{fn: "Work", queue: "work", q: q, poison: poison, opts: testOptions(), stats: new(Stats), notRun: new(notRunCounts), log: func(string) {},
		handle: func(ctx context.Context, m *message) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, string(m.Text))
			counts = append(counts, m.DequeueCount)
			return nil
		}}
	runPoller(t, p)
	enqueue(t, q, `{"order":1}`)
	waitFor(t, "the message to be processed and deleted", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1 && count(t, q) == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if got[0] != `{"order":1}` || counts[0] != 1 {
		t.Errorf("handled %q with DequeueCount %d, want the text once with 1", got[0], counts[0])
	}
	var st State
	p.stats.state(&st)
	if st.Invocations != 1 || st.Failures != 0 {
		t.Errorf("state = %+v, want 1 invocation, no failure", st)
	}
}

func TestPollerPoison(t *testing.T) {
	t.Parallel()
	q, poison := testQueue(t, "orders")
	var tries atomic.Int32
	var lines []string
	var mu sync.Mutex
	opts := testOptions()
	opts.MaxDequeueCount = 3
	p := &poller{fn: "Orders", queue: "orders", q: q, poison: poison, opts: opts, stats: new(Stats), notRun: new(notRunCounts),
		log: func(s string) { mu.Lock(); lines = append(lines, s); mu.Unlock() },
		handle: func(ctx context.Context, m *message) error {
			tries.Add(1)
			return errors.New("boom")
		}}
	runPoller(t, p)
	enqueue(t, q, "bad order")
	waitFor(t, "the message to move to orders-poison", 60*time.Second, func() bool {
		return count(t, q) == 0 && tries.Load() >= 3
	})
	resp, err := poison.PeekMessages(context.Background(), &azqueue.PeekMessagesOptions{NumberOfMessages: ptr(int32(5))})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Messages) != 1 || deref(resp.Messages[0].MessageText) != base64.StdEncoding.EncodeToString([]byte("bad order")) {
		t.Fatalf("poison queue holds %d messages, want the one message with its text unchanged", len(resp.Messages))
	}
	time.Sleep(500 * time.Millisecond) // no further try
	if n := tries.Load(); n != 3 {
		t.Errorf("tries = %d, want 3 (maxDequeueCount)", n)
	}
	var st State
	p.stats.state(&st)
	if st.Failures != 3 || st.Poisoned != 1 || st.Error != "boom" {
		t.Errorf("state = %+v, want 3 failures, 1 poisoned, error boom", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 3 {
		t.Errorf("log = %q, want a line per failure", lines)
	}
}

// A message already dequeued more than maxDequeueCount times (its last try
// was cut off by a crash) moves to the poison queue without a try.
func TestPollerPoisonBeforeTry(t *testing.T) {
	t.Parallel()
	q, poison := testQueue(t, "jobs")
	enqueue(t, q, "crashy")
	for range 2 { // dequeued twice, never settled
		resp, err := q.DequeueMessage(context.Background(), &azqueue.DequeueMessageOptions{VisibilityTimeout: ptr(int32(1))})
		if err != nil || len(resp.Messages) != 1 {
			t.Fatalf("dequeue: %v", err)
		}
		time.Sleep(1200 * time.Millisecond)
	}
	opts := testOptions()
	opts.MaxDequeueCount = 2
	var tries atomic.Int32
	p := &poller{fn: "Jobs", queue: "jobs", q: q, poison: poison, opts: opts, stats: new(Stats), notRun: new(notRunCounts), log: func(string) {},
		handle: func(ctx context.Context, m *message) error { tries.Add(1); return nil }}
	runPoller(t, p)
	waitFor(t, "the message to move to jobs-poison", 30*time.Second, func() bool {
		return count(t, q) == 0
	})
	if n := count(t, poison); n != 1 || tries.Load() != 0 {
		t.Errorf("poison holds %d, tries = %d; want 1 message and no try", n, tries.Load())
	}
}

// At most batchSize+newBatchThreshold invocations run at once, and the
// next batch is fetched as soon as the running ones drop to the threshold.
func TestPollerBatches(t *testing.T) {
	t.Parallel()
	q, poison := testQueue(t, "batch")
	var texts []string
	for i := range 20 {
		texts = append(texts, fmt.Sprint(i))
	}
	enqueue(t, q, texts...)
	opts := testOptions()
	opts.BatchSize, opts.NewBatchThreshold = 4, 2
	var running, peak, done atomic.Int32
	release := make(chan struct{})
	p := &poller{fn: "Batch", queue: "batch", q: q, poison: poison, opts: opts, stats: new(Stats), notRun: new(notRunCounts), log: func(string) {},
		handle: func(ctx context.Context, m *message) error {
			n := running.Add(1)
			for {
				old := peak.Load()
				if n <= old || peak.CompareAndSwap(old, n) {
					break
				}
			}
			<-release
			running.Add(-1)
			done.Add(1)
			return nil
		}}
	runPoller(t, p)
	// 4 fetched, 4 > 2 so the poller waits: exactly one batch runs.
	waitFor(t, "the first batch", 30*time.Second, func() bool { return running.Load() == 4 })
	time.Sleep(700 * time.Millisecond)
	if n := running.Load(); n != 4 {
		t.Fatalf("running = %d with all blocked, want 4 (one batch: the running ones exceed newBatchThreshold 2)", n)
	}
	// Letting two finish brings the count to the threshold: one more batch.
	release <- struct{}{}
	release <- struct{}{}
	waitFor(t, "the second batch", 30*time.Second, func() bool { return running.Load() == 6 })
	time.Sleep(700 * time.Millisecond)
	if n := running.Load(); n != 6 {
		t.Fatalf("running = %d, want 6 (2 left of the first batch and a new batch of 4)", n)
	}
	close(release)
	waitFor(t, "all messages", 60*time.Second, func() bool { return done.Load() == 20 && count(t, q) == 0 })
	if n := peak.Load(); n > 6 {
		t.Errorf("peak concurrency = %d, want at most batchSize+newBatchThreshold = 6", n)
	}
}

// A message the handler did not run (its set is retiring) is visible again
// at once, so another listener takes it without waiting out the lease.
func TestPollerReleasesUnrun(t *testing.T) {
	t.Parallel()
	q, poison := testQueue(t, "handoff")
	var refused atomic.Int32
	old := &poller{fn: "H", queue: "handoff", q: q, poison: poison, opts: testOptions(), stats: new(Stats), notRun: new(notRunCounts), log: func(string) {},
		handle: func(ctx context.Context, m *message) error { refused.Add(1); return errNotRun }}
	stopOld := runPoller(t, old)
	enqueue(t, q, "hello")
	waitFor(t, "the retiring poller to refuse the message", 30*time.Second, func() bool { return refused.Load() > 0 })
	stopOld()
	got := make(chan string, 1)
	next := &poller{fn: "H", queue: "handoff", q: q, poison: poison, opts: testOptions(), stats: new(Stats), notRun: new(notRunCounts), log: func(string) {},
		handle: func(ctx context.Context, m *message) error {
			select {
			case got <- string(m.Text):
			default:
			}
			return nil
		}}
	runPoller(t, next)
	select {
	case s := <-got:
		if s != "hello" {
			t.Errorf("got %q, want hello", s)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the refused message was not visible again at once (it waited for its lease)")
	}
	var st State
	old.stats.state(&st)
	if st.Failures != 0 {
		t.Errorf("refused messages counted as %d failures, want none", st.Failures)
	}
}

// A poll of a queue that does not exist yet is empty, not a failure.
func TestPollerMissingQueue(t *testing.T) {
	t.Parallel()
	q, poison := testQueue(t, "exists")
	if _, err := q.Delete(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	p := &poller{fn: "M", queue: "exists", q: q, poison: poison, opts: testOptions(), stats: new(Stats), notRun: new(notRunCounts), log: func(string) {},
		handle: func(ctx context.Context, m *message) error { return nil }}
	runPoller(t, p)
	waitFor(t, "a poll", 30*time.Second, func() bool {
		var st State
		p.stats.state(&st)
		return st.Note != ""
	})
	var st State
	p.stats.state(&st)
	if st.State != StateIdle || st.Note != "queue exists does not exist yet" {
		t.Errorf("state = %+v, want idle with a note that the queue does not exist", st)
	}
}

// A message whose function runs longer than the lease stays hidden: the
// lease is extended while it runs, so no other poll takes it again.
func TestPollerRenewsLease(t *testing.T) {
	t.Parallel()
	q, poison := testQueue(t, "long")
	var calls atomic.Int32
	// A 10s lease, renewed every third, leaves over 6s for a renewal late
	// on a loaded machine (a 6s lease failed once in CI there).
	p := &poller{fn: "Long", queue: "long", q: q, poison: poison, opts: testOptions(), lease: 10 * time.Second, stats: new(Stats), notRun: new(notRunCounts), log: func(string) {},
		handle: func(ctx context.Context, m *message) error {
			calls.Add(1)
			time.Sleep(22 * time.Second) // more than two leases
			return nil
		}}
	runPoller(t, p)
	enqueue(t, q, "long job")
	waitFor(t, "the message to be done", 60*time.Second, func() bool { return count(t, q) == 0 })
	time.Sleep(time.Second)
	if n := calls.Load(); n != 1 {
		t.Errorf("the function ran %d times, want once (its lease was not extended)", n)
	}
}

// A poller whose queue service fails says so once in the slot log, shows
// failing with the error, and says so again once it polls again.
func TestPollerFailingAndRecovered(t *testing.T) {
	t.Parallel()
	srv := azurite.Start(t)
	target, err := url.Parse(srv.QueueEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	down.Store(true)
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "storage is down", http.StatusForbidden)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	acct, err := azstorage.ParseConnectionString(srv.ConnectionString())
	if err != nil {
		t.Fatal(err)
	}
	acct.QueueEndpoint = front.URL + target.Path
	q, _ := acct.Queue("flaky")
	poison, _ := acct.Queue("flaky-poison")
	var mu sync.Mutex
	var lines []string
	logged := func(prefix string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				n++
			}
		}
		return n
	}
	p := &poller{fn: "Flaky", queue: "flaky", q: q, poison: poison, opts: testOptions(), stats: new(Stats), notRun: new(notRunCounts),
		log:    func(s string) { mu.Lock(); lines = append(lines, s); mu.Unlock() },
		handle: func(ctx context.Context, m *message) error { return nil }}
	runPoller(t, p)
	waitFor(t, "a failed poll", 30*time.Second, func() bool { return logged("queue function Flaky is failing: ") == 1 })
	time.Sleep(time.Second) // more failed polls, no more lines
	var st State
	p.stats.state(&st)
	if st.State != StateFailing || !strings.Contains(st.Error, "403") || logged("queue function Flaky is failing: ") != 1 {
		t.Errorf("state = %+v, log %q; want failing with the error, said once", st, lines)
	}
	down.Store(false)
	waitFor(t, "the poller to recover", 30*time.Second, func() bool { return logged("queue function Flaky polls queue flaky again") == 1 })
	p.stats.state(&st)
	if st.State == StateFailing {
		t.Errorf("state after recovery = %+v", st)
	}
}
