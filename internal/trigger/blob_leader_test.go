package trigger

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestBlobScannerStandsByWhenNotLeader: in a cluster only the node that
// leads scans a container; a node that does not stands by (its state says
// so), and starts scanning as soon as it leads.
func TestBlobScannerStandsByWhenNotLeader(t *testing.T) {
	t.Parallel()
	e := testBlobs(t, "uploads")
	e.upload(t, "a.txt", "one")
	var leads atomic.Bool
	s, got := e.scanner(t, "app", nil)
	s.leader = leads.Load
	runScanner(t, s)
	time.Sleep(3 * time.Second)
	if g := got(); len(g) != 0 {
		t.Fatalf("a node that does not lead handled %q", g)
	}
	var st State
	s.stats.state(&st)
	if st.Note != standbyNote {
		t.Errorf("state note while standing by = %q, want %q", st.Note, standbyNote)
	}
	leads.Store(true)
	waitFor(t, "a.txt to be processed once the node leads", 30*time.Second, func() bool { return len(got()) == 1 })
	s.stats.state(&st)
	if st.Note != "" {
		t.Errorf("state note while scanning = %q, want none", st.Note)
	}
}
