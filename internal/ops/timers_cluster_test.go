package ops

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/artifact"
	"github.com/hotswap/hotswap/internal/pgtest"
	"github.com/hotswap/hotswap/internal/postgres"
	"github.com/hotswap/hotswap/internal/router"
	"github.com/hotswap/hotswap/internal/runtime"
)

// claimWatch is the real store with a window on the nodes' timer claims:
// it tells the test which node won which occurrence.
type claimWatch struct {
	Cluster
	won chan claimWon
}

type claimWon struct {
	node string
	at   time.Time
}

func (w claimWatch) ClaimTimer(ctx context.Context, app, slot, function string, at time.Time, nodeID string, stale time.Duration) (bool, error) {
	ok, err := w.Cluster.ClaimTimer(ctx, app, slot, function, at, nodeID, stale)
	if ok && err == nil {
		select {
		case w.won <- claimWon{nodeID, at}:
		default:
		}
	}
	return ok, err
}

// timerNode is one node of a cluster on a shared PostgreSQL database:
// its own pool, service and handler processes.
type timerNode struct {
	svc   *Service
	rt    *runtime.Manager
	db    *postgres.DB
	close func()
}

func openTimerNode(t *testing.T, dsn, pkgs, id string, won chan claimWon) *timerNode {
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
		Cluster: claimWatch{Cluster: db, won: won}, NodeID: id, NodeName: id,
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

// tick is one line of the clustertick handler: one run of its timer.
type tick struct {
	Next    time.Time `json:"next"`
	PastDue bool      `json:"pastDue"`
	PID     int       `json:"pid"`
}

func readTicks(t *testing.T, path string) []tick {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []tick
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var tk tick
		if err := json.Unmarshal(sc.Bytes(), &tk); err != nil {
			t.Fatalf("ticks file line %q: %v", sc.Text(), err)
		}
		out = append(out, tk)
	}
	return out
}

// byOccurrence groups runs by the occurrence they were for: the one before
// their ScheduleStatus.Next on a two-second schedule.
func byOccurrence(ticks []tick) map[time.Time][]tick {
	runs := make(map[time.Time][]tick)
	for _, tk := range ticks {
		at := tk.Next.Add(-2 * time.Second).UTC()
		runs[at] = append(runs[at], tk)
	}
	return runs
}

func doubled(runs map[time.Time][]tick) []string {
	var out []string
	for at, tks := range runs {
		if len(tks) > 1 {
			out = append(out, fmt.Sprintf("%s×%d", at.Format("15:04:05"), len(tks)))
		}
	}
	sort.Strings(out)
	return out
}

// TestTimerFiresOncePerOccurrenceAcrossNodes: three nodes run the same
// every-two-seconds timer; each occurrence is fired by exactly one of them.
// The node holding a claim stops in the middle of that run (its handler
// never finishes it): another node takes the claim over once the stopped
// node is silent, and fires it, past due. No occurrence is lost or doubled.
func TestTimerFiresOncePerOccurrenceAcrossNodes(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	pkgs, ticks := filepath.Join(dir, "packages"), filepath.Join(dir, "ticks")
	ctx := context.Background()

	won := make(chan claimWon, 1)
	a := openTimerNode(t, dsn, pkgs, "node-a", won)
	if _, err := a.svc.CreateApp(ctx, "test", "cron"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.svc.UpdateSettings(ctx, "test", "cron", "production", []hotswap.Setting{{Name: "TICKS_FILE", Value: ticks}}, nil, HoldOptions{}); err != nil {
		t.Fatal(err)
	}
	var zip bytes.Buffer // its timer runs every two seconds
	if err := artifact.ZipDir(filepath.Join("testdata", "clustertick"), &zip); err != nil {
		t.Fatal(err)
	}
	if _, err := a.svc.Deploy(ctx, DeployRequest{App: "cron", Slot: "production", Actor: "test", Package: &zip}); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*timerNode{
		"node-a": a,
		"node-b": openTimerNode(t, dsn, pkgs, "node-b", won),
		"node-c": openTimerNode(t, dsn, pkgs, "node-c", won),
	}
	from := time.Now().Add(2 * time.Second)
	time.Sleep(6 * time.Second)
	if d := doubled(byOccurrence(readTicks(t, ticks))); len(d) > 0 {
		t.Fatalf("with three nodes up, occurrences fired more than once: %v", d)
	}

	// Stop the node that wins the next claim right after it won, while
	// the handler is in the run (it answers after 300ms).
	for len(won) > 0 {
		<-won
	}
	var w claimWon
	select {
	case w = <-won:
	case <-time.After(30 * time.Second):
		t.Fatalf("no node won a claim in 30s; %d runs in all", len(readTicks(t, ticks)))
	}
	nodes[w.node].close()
	stoppedAt := w.at
	t.Logf("%s stopped in its run of the occurrence at %s", w.node, stoppedAt.Format(time.RFC3339))

	// The takeover comes once A has been silent for timerStale.
	deadline := time.Now().Add(timerStale + 45*time.Second)
	to := stoppedAt.Add(4 * time.Second)
	for {
		runs := byOccurrence(readTicks(t, ticks))
		if d := doubled(runs); len(d) > 0 {
			t.Fatalf("occurrences fired more than once: %v", d)
		}
		var missing []string
		for at := from.Truncate(2 * time.Second).Add(2 * time.Second).UTC(); !at.After(to); at = at.Add(2 * time.Second) {
			if len(runs[at]) == 0 {
				missing = append(missing, at.Format("15:04:05"))
			}
		}
		if len(missing) == 0 {
			taken := runs[stoppedAt.UTC()]
			if !taken[0].PastDue {
				t.Errorf("the occurrence %s stopped in was fired again without IsPastDue: %+v", w.node, taken)
			}
			break
		}
		if time.Now().After(deadline) {
			var all []string
			for at, tks := range runs {
				all = append(all, fmt.Sprintf("%s×%d", at.Format("15:04:05"), len(tks)))
			}
			sort.Strings(all)
			t.Fatalf("occurrences never fired: %v (fired: %v)", missing, all)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
