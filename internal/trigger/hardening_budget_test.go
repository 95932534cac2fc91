package trigger

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Blob trigger payloads share one byte budget: with room for one blob (and
// its copies) at a time, two blobs run one after the other, not together.
func TestBlobScannerMemoryBudget(t *testing.T) {
	t.Parallel()
	e := testBlobs(t, "uploads")
	var running, peak atomic.Int32
	s, got := e.scanner(t, "host", func(b *blobItem) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(1500 * time.Millisecond)
		return nil
	})
	s.maxSize = 4000
	s.budget = newBudget(payloadCopies * 1000)
	e.upload(t, "a.txt", strings.Repeat("a", 1000))
	e.upload(t, "b.txt", strings.Repeat("b", 1000))
	runScanner(t, s)
	waitFor(t, "both blobs to run", 60*time.Second, func() bool { return len(got()) == 2 })
	if p := peak.Load(); p != 1 {
		t.Errorf("%d blobs ran at once, want 1 (the budget holds one)", p)
	}
}

// A blob larger than the payload limit fails with a clear error, without
// being read.
func TestBlobScannerMaxPayload(t *testing.T) {
	t.Parallel()
	e := testBlobs(t, "uploads")
	s, got := e.scanner(t, "host", nil)
	s.maxSize = 100
	e.upload(t, "big.txt", strings.Repeat("x", 101))
	runScanner(t, s)
	var st State
	waitFor(t, "the blob to fail", 60*time.Second, func() bool {
		s.stats.state(&st)
		return st.Failures > 0
	})
	if len(got()) != 0 || !strings.Contains(st.Error, "101 bytes, more than the 100") {
		t.Errorf("ran %v, state %+v; want no run and the size in the error", got(), st)
	}
}

func TestBudget(t *testing.T) {
	b := newBudget(10)
	ctx := context.Background()
	n, _ := b.acquire(ctx, 8)
	if big, _ := b.acquire(ctx, 0); big != 0 {
		t.Fatal("acquire(0) took bytes")
	}
	var wg sync.WaitGroup
	var took atomic.Int64
	wg.Add(1)
	go func() { defer wg.Done(); m, _ := b.acquire(ctx, 50); took.Store(m) }() // capped at 10: waits for the 8
	time.Sleep(100 * time.Millisecond)
	if took.Load() != 0 {
		t.Fatal("acquire did not wait for the budget")
	}
	b.release(n)
	wg.Wait()
	if took.Load() != 10 {
		t.Errorf("took %d, want the whole budget (10)", took.Load())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.acquire(cctx, 1); err == nil {
		t.Error("acquire on a full budget with an ended context succeeded")
	}
}
