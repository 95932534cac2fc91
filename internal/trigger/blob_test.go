package trigger

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/hotswap/hotswap/internal/azstorage"
	"github.com/hotswap/hotswap/internal/azurite"
)

type blobEnv struct {
	acct     azstorage.Account
	c        *container.Client
	receipts *container.Client
	poison   *azqueue.QueueClient
}

func testBlobs(t testing.TB, name string) *blobEnv {
	t.Helper()
	srv := azurite.Start(t)
	acct, err := azstorage.ParseConnectionString(srv.ConnectionString())
	if err != nil {
		t.Fatal(err)
	}
	e := &blobEnv{acct: acct}
	if e.c, err = acct.Container(name); err != nil {
		t.Fatal(err)
	}
	if e.receipts, err = acct.Container(receiptsContainer); err != nil {
		t.Fatal(err)
	}
	if e.poison, err = acct.Queue(blobPoisonQueue); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Create(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *blobEnv) upload(t testing.TB, name, content string) {
	t.Helper()
	if _, err := e.c.NewBlockBlobClient(name).UploadBuffer(context.Background(), []byte(content), nil); err != nil {
		t.Fatal(err)
	}
}

// scanner returns a scanner of uploads/{name} for host id, recording what
// it handles; handle may be nil to succeed.
func (e *blobEnv) scanner(t testing.TB, id string, handle func(b *blobItem) error) (*blobScanner, func() []string) {
	t.Helper()
	pattern, err := azstorage.ParseBlobPattern("uploads/{name}")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	s := &blobScanner{fn: "Thumb", hostID: id, pattern: pattern, c: e.c, receipts: e.receipts, poison: e.poison, base64: true,
		log: func(string) {}, stats: new(Stats),
		done: make(map[string]bool), busy: make(map[string]bool), later: make(map[string]time.Time),
		handle: func(ctx context.Context, b *blobItem) error {
			mu.Lock()
			got = append(got, b.Vals["name"]+"="+string(b.Content))
			mu.Unlock()
			if handle != nil {
				return handle(b)
			}
			return nil
		}}
	return s, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

func runScanner(t testing.TB, s *blobScanner) (stop func()) {
	t.Helper()
	pull, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.run(pull, context.Background(), &wg)
	}()
	stop = sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(stop)
	return stop
}

// A blob version is processed once per host ID: a new scanner (a restart)
// skips it, another slot's host ID runs it, and a new version runs again.
func TestBlobScannerOncePerHost(t *testing.T) {
	t.Parallel()
	e := testBlobs(t, "uploads")
	e.upload(t, "a.txt", "one")
	first, got := e.scanner(t, "app", nil)
	stop := runScanner(t, first)
	waitFor(t, "a.txt to be processed", 30*time.Second, func() bool { return len(got()) == 1 })
	stop()
	if g := got(); g[0] != "a.txt=one" {
		t.Errorf("handled %q, want a.txt=one", g)
	}

	restarted, got2 := e.scanner(t, "app", nil)
	runScanner(t, restarted)
	e.upload(t, "b.txt", "two")
	waitFor(t, "b.txt to be processed after the restart", 30*time.Second, func() bool { return len(got2()) >= 1 })
	time.Sleep(time.Second)
	if g := got2(); len(g) != 1 || g[0] != "b.txt=two" {
		t.Errorf("after a restart handled %q, want only the new blob b.txt=two", g)
	}

	e.upload(t, "a.txt", "changed")
	waitFor(t, "the new version of a.txt", 30*time.Second, func() bool { return len(got2()) == 2 })
	if g := got2(); g[1] != "a.txt=changed" {
		t.Errorf("handled %q, want the new version a.txt=changed", g)
	}

	other, got3 := e.scanner(t, "app-staging", nil)
	runScanner(t, other)
	waitFor(t, "the other slot to process both blobs", 30*time.Second, func() bool { return len(got3()) == 2 })
}

// Two scanners of the same host ID (a retiring and a new process set) run
// each blob once between them.
func TestBlobScannerLease(t *testing.T) {
	t.Parallel()
	e := testBlobs(t, "uploads")
	slow := func(*blobItem) error { time.Sleep(300 * time.Millisecond); return nil }
	a, gotA := e.scanner(t, "app", slow)
	b, gotB := e.scanner(t, "app", slow)
	runScanner(t, a)
	runScanner(t, b)
	names := []string{"1", "2", "3", "4", "5", "6", "7", "8"}
	for _, n := range names {
		e.upload(t, n, "x")
	}
	waitFor(t, "all blobs", 60*time.Second, func() bool { return len(gotA())+len(gotB()) >= len(names) })
	time.Sleep(2 * time.Second)
	seen := map[string]int{}
	for _, g := range append(gotA(), gotB()...) {
		seen[g]++
	}
	for _, n := range names {
		if seen[n+"=x"] != 1 {
			t.Errorf("blob %s ran %d times, want once", n, seen[n+"=x"])
		}
	}
}

// A blob that fails every try is reported to webjobs-blobtrigger-poison
// after 5 tries and not tried again.
func TestBlobScannerPoison(t *testing.T) {
	t.Parallel()
	e := testBlobs(t, "uploads")
	var tries atomic.Int32
	s, _ := e.scanner(t, "app", func(*blobItem) error { tries.Add(1); return errors.New("boom") })
	runScanner(t, s)
	e.upload(t, "bad.txt", "x")
	waitFor(t, "the poison report", 60*time.Second, func() bool {
		p, err := e.poison.GetProperties(context.Background(), nil)
		return err == nil && deref(p.ApproximateMessagesCount) == 1
	})
	time.Sleep(1500 * time.Millisecond)
	if n := tries.Load(); n != blobMaxTries {
		t.Errorf("tries = %d, want %d", n, blobMaxTries)
	}
	resp, err := e.poison.PeekMessage(context.Background(), nil)
	if err != nil || len(resp.Messages) != 1 {
		t.Fatalf("peek: %v", err)
	}
	raw, _ := base64.StdEncoding.DecodeString(deref(resp.Messages[0].MessageText))
	var msg map[string]string
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatalf("poison message %q: %v", raw, err)
	}
	if msg["Type"] != "BlobTrigger" || msg["FunctionId"] != "Host.Functions.Thumb" || msg["ContainerName"] != "uploads" || msg["BlobName"] != "bad.txt" {
		t.Errorf("poison message = %v", msg)
	}
}

func TestHostID(t *testing.T) {
	tests := []struct {
		app, slot string
		settings  map[string]string
		want      string
	}{
		{"Orders", "production", nil, "orders"},
		{"orders", "staging", nil, "orders-staging"},
		{"a-very-long-application-name-xx", "staging", nil, "a-very-long-application-name-xx"},
		{"orders", "staging", map[string]string{"AzureFunctionsWebHost__hostid": "shared"}, "shared"},
	}
	for _, tc := range tests {
		if got := hostID(tc.app, tc.slot, tc.settings); got != tc.want {
			t.Errorf("hostID(%q, %q) = %q, want %q", tc.app, tc.slot, got, tc.want)
		}
	}
}
