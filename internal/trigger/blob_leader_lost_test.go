package trigger

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestBlobScannerStopsDispatchingWhenLeadLost: a node that loses the lead
// in the middle of a scan dispatches no further blob of it (the new leader
// scans them), instead of going on to the end of the listing.
func TestBlobScannerStopsDispatchingWhenLeadLost(t *testing.T) {
	t.Parallel()
	e := testBlobs(t, "uploads")
	const n = blobConcurrency + 4
	for i := range n {
		e.upload(t, fmt.Sprintf("b%02d.txt", i), "x")
	}
	var leads atomic.Bool
	leads.Store(true)
	release := make(chan struct{})
	s, got := e.scanner(t, "app", func(*blobItem) error { <-release; return nil })
	s.leader = leads.Load
	runScanner(t, s)
	// blobConcurrency blobs are in flight; the scan waits for a slot.
	waitFor(t, "a full set of blobs in flight", 30*time.Second, func() bool { return len(got()) == blobConcurrency })
	leads.Store(false)
	close(release)
	time.Sleep(2 * time.Second)
	if g := got(); len(g) != blobConcurrency {
		t.Errorf("handled %d blobs, want the %d in flight when the lead was lost: %q", len(g), blobConcurrency, g)
	}
}
