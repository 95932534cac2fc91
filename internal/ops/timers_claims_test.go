package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/artifact"
	"github.com/hotswap/hotswap/internal/pgtest"
	"github.com/hotswap/hotswap/internal/postgres"
	"github.com/hotswap/hotswap/internal/router"
	"github.com/hotswap/hotswap/internal/runtime"
)

// claimFault is the real store whose ClaimTimer fails once, as during a
// store restart, for the first occurrence claimed once armed.
type claimFault struct {
	Cluster
	mu     sync.Mutex
	armed  bool
	failed time.Time // the occurrence whose claim failed; zero: none yet
}

func (f *claimFault) ClaimTimer(ctx context.Context, app, slot, function string, at time.Time, nodeID string, stale time.Duration) (bool, error) {
	f.mu.Lock()
	if f.armed && f.failed.IsZero() {
		f.failed = at
		f.mu.Unlock()
		return false, errors.New("connection reset: the store is restarting")
	}
	f.mu.Unlock()
	return f.Cluster.ClaimTimer(ctx, app, slot, function, at, nodeID, stale)
}

func (f *claimFault) failedAt() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// openClusterTimerNode is openTimerNode with the store seen through wrap.
func openClusterTimerNode(t *testing.T, dsn, pkgs, id string, wrap func(Cluster) Cluster) *timerNode {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	arts, err := artifact.Open(pkgs, artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	n := &timerNode{rt: runtime.NewManager(nil), db: db}
	n.svc, err = Open(ctx, Config{
		Domain: "localhost", PublicAddr: "127.0.0.1:8080", Store: db, Artifacts: arts, Runtime: n.rt,
		Router: router.New(router.Config{Domain: "localhost"}), DrainGrace: time.Second,
		Cluster: wrap(db), NodeID: id, NodeName: id,
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	n.close = func() {
		if !stopped {
			stopped = true
			n.svc.Close()
			n.rt.Close()
			db.Close()
		}
	}
	t.Cleanup(n.close)
	return n
}

// deployTimer deploys testdata/<pkg> to cron/production on n, its runs
// written to ticks.
func deployTimer(t *testing.T, n *timerNode, pkg, ticks string, settings ...hotswap.Setting) {
	t.Helper()
	ctx := context.Background()
	if _, err := n.svc.CreateApp(ctx, "test", "cron"); err != nil {
		t.Fatal(err)
	}
	settings = append(settings, hotswap.Setting{Name: "TICKS_FILE", Value: ticks})
	if _, err := n.svc.UpdateSettings(ctx, "test", "cron", "production", settings, nil, HoldOptions{}); err != nil {
		t.Fatal(err)
	}
	var zip bytes.Buffer
	if err := artifact.ZipDir(filepath.Join("testdata", pkg), &zip); err != nil {
		t.Fatal(err)
	}
	if _, err := n.svc.Deploy(ctx, DeployRequest{App: "cron", Slot: "production", Actor: "test", Package: &zip}); err != nil {
		t.Fatal(err)
	}
}

// TestTimerClaimErrorIsClaimedAgain: the store fails a node's claim of an
// occurrence (it restarts). The node keeps the occurrence and claims it
// again later; alone in the cluster, it fires it, past due, instead of
// losing it.
func TestTimerClaimErrorIsClaimedAgain(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	pkgs, ticks := filepath.Join(dir, "packages"), filepath.Join(dir, "ticks")
	fault := &claimFault{}
	a := openClusterTimerNode(t, dsn, pkgs, "node-a", func(c Cluster) Cluster { fault.Cluster = c; return fault })
	deployTimer(t, a, "clustertick", ticks)
	deadline := time.Now().Add(30 * time.Second)
	for len(readTicks(t, ticks)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the timer did not run in 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	fault.mu.Lock()
	fault.armed = true
	fault.mu.Unlock()
	for fault.failedAt().IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("no claim was made in 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	failed := fault.failedAt().UTC()
	t.Logf("the claim of the occurrence at %s failed", failed.Format(time.RFC3339))
	deadline = time.Now().Add(timerStale + 30*time.Second)
	for {
		if runs := byOccurrence(readTicks(t, ticks)); len(runs[failed]) > 0 {
			if !runs[failed][0].PastDue {
				t.Errorf("the occurrence claimed again ran without IsPastDue: %+v", runs[failed])
			}
			if d := doubled(runs); len(d) > 0 {
				t.Errorf("occurrences fired more than once: %v", d)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the occurrence at %s whose claim failed never ran", failed.Format(time.RFC3339))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// slowRun is one line of the clusterslow handler: one run of its timer.
type slowRun struct {
	Start, End int64 // ms since the epoch
	PID        int
}

func readSlowRuns(t *testing.T, path string) []slowRun {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []slowRun
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r slowRun
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("runs file line %q: %v", line, err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out
}

// TestTimerRunsOneAtATimeAcrossNodes: a timer whose run (3s) outlasts its
// schedule (every 2s) runs one at a time on one server, the occurrences
// due during a run skipped. Two nodes keep that: the node running the
// previous occurrence holds the next, and the other does not fire it
// meanwhile.
func TestTimerRunsOneAtATimeAcrossNodes(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	pkgs, runs := filepath.Join(dir, "packages"), filepath.Join(dir, "runs")
	same := func(c Cluster) Cluster { return c }
	a := openClusterTimerNode(t, dsn, pkgs, "node-a", same)
	deployTimer(t, a, "clusterslow", runs)
	openClusterTimerNode(t, dsn, pkgs, "node-b", same)
	deadline := time.Now().Add(60 * time.Second)
	for len(readSlowRuns(t, runs)) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d runs in 60s, want 4", len(readSlowRuns(t, runs)))
		}
		time.Sleep(200 * time.Millisecond)
	}
	got := readSlowRuns(t, runs)
	pids := make(map[int]bool)
	for i, r := range got {
		pids[r.PID] = true
		if i > 0 && r.Start < got[i-1].End {
			t.Errorf("run %d (pid %d) started %dms before run %d (pid %d) ended: two runs at once", i, r.PID, got[i-1].End-r.Start, i-1, got[i-1].PID)
		}
	}
	t.Logf("%d runs by %d handler processes", len(got), len(pids))
}
