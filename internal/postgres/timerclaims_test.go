package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
)

func TestClaimTimerOnceAmongConcurrentNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	for round := range 10 {
		at := time.Date(2026, 12, 1, 12, 0, round, 0, time.UTC)
		start := make(chan struct{})
		var wg sync.WaitGroup
		got := make([]bool, 3)
		errs := make([]error, 3)
		for i := range got {
			wg.Go(func() {
				<-start
				got[i], errs[i] = db.ClaimTimer(ctx, "shop", "production", "tick", at, fmt.Sprintf("node%d", i), time.Minute)
			})
		}
		close(start)
		wg.Wait()
		n := 0
		for i := range got {
			if errs[i] != nil {
				t.Fatalf("round %d, node%d: %v", round, i, errs[i])
			}
			if got[i] {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("round %d: %d claims succeeded (%v), want 1", round, n, got)
		}
	}
}

func TestClaimTimerTakeOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	claim := func(node string) bool {
		t.Helper()
		ok, err := db.ClaimTimer(ctx, "shop", "production", "tick", at, node, time.Minute)
		if err != nil {
			t.Fatalf("ClaimTimer(%s): %v", node, err)
		}
		return ok
	}
	heartbeat := func(id string) {
		t.Helper()
		if err := db.Heartbeat(ctx, hotswap.Node{ID: id, State: hotswap.NodeServing}); err != nil {
			t.Fatal(err)
		}
	}
	age := func(d time.Duration) {
		t.Helper()
		sqlExec(t, db, "UPDATE timer_claims SET claimed_at = claimed_at - $1 * interval '1 second'", d.Seconds())
		sqlExec(t, db, "UPDATE nodes SET heartbeat_at = heartbeat_at - $1 * interval '1 second'", d.Seconds())
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		heartbeat(id)
	}

	if !claim("a") {
		t.Fatal("first claim failed")
	}
	if claim("b") {
		t.Fatal("a fresh claim was taken")
	}
	// a's claim is old but a is alive: it is still firing.
	age(2 * time.Minute)
	heartbeat("a")
	heartbeat("b")
	heartbeat("c")
	if claim("b") {
		t.Fatal("the old claim of a live node was taken over")
	}
	// a went silent: its claim is taken over, once.
	age(2 * time.Minute)
	heartbeat("b")
	heartbeat("c")
	if !claim("b") {
		t.Fatal("the claim of a silent node was not taken over")
	}
	if claim("c") {
		t.Fatal("a claim was taken over twice")
	}
	// A claim marked done is never taken over.
	if err := db.DoneTimer(ctx, "shop", "production", "tick", at); err != nil {
		t.Fatal(err)
	}
	age(10 * time.Minute)
	heartbeat("d")
	if claim("d") {
		t.Fatal("a done claim was taken over")
	}
	// A node that never sent a heartbeat counts as silent, and another
	// occurrence, slot or function is another claim.
	other := at.Add(time.Second)
	for _, k := range [][2]string{{"production", "tick"}, {"staging", "tick"}, {"production", "tock"}} {
		if ok, err := db.ClaimTimer(ctx, "shop", k[0], k[1], other, "ghost", time.Minute); err != nil || !ok {
			t.Fatalf("ClaimTimer(%v) = %v, %v; want a new claim", k, ok, err)
		}
	}
	age(2 * time.Minute)
	heartbeat("d")
	if ok, err := db.ClaimTimer(ctx, "shop", "production", "tick", other, "d", time.Minute); err != nil || !ok {
		t.Fatalf("ClaimTimer of a ghost's old claim = %v, %v; want taken over", ok, err)
	}

	if err := db.DoneTimer(ctx, "shop", "production", "tick", at.Add(time.Hour)); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("DoneTimer of an unclaimed occurrence = %v, want NotFound", err)
	}
	for _, tc := range []struct {
		node  string
		stale time.Duration
	}{{"", time.Minute}, {"a", 0}} {
		if _, err := db.ClaimTimer(ctx, "shop", "production", "tick", at, tc.node, tc.stale); hotswap.ErrorKind(err) != hotswap.Invalid {
			t.Errorf("ClaimTimer(node %q, stale %v) = %v, want Invalid", tc.node, tc.stale, err)
		}
	}
}

func TestClaimTimerPrunesOldClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		if ok, err := db.ClaimTimer(ctx, "shop", "production", "tick", at.Add(time.Duration(i)*time.Second), "a", time.Minute); err != nil || !ok {
			t.Fatalf("claim %d: %v, %v", i, ok, err)
		}
	}
	sqlExec(t, db, "UPDATE timer_claims SET claimed_at = now() - interval '25 hours' WHERE occurrence < $1", at.Add(2*time.Second))
	if ok, err := db.ClaimTimer(ctx, "shop", "production", "tick", at.Add(time.Hour), "a", time.Minute); err != nil || !ok {
		t.Fatalf("claim: %v, %v", ok, err)
	}
	if got := countRows(t, db, "SELECT count(*) FROM timer_claims"); got != 2 {
		t.Errorf("%d claims left, want 2 (those claimed within a day)", got)
	}
	// An old claim of the occurrence being claimed is not pruned under it.
	sqlExec(t, db, "UPDATE timer_claims SET claimed_at = now() - interval '25 hours', done = true")
	if ok, err := db.ClaimTimer(ctx, "shop", "production", "tick", at.Add(time.Hour), "b", time.Minute); err != nil || ok {
		t.Fatalf("claim of a done occurrence claimed 25 hours ago = %v, %v; want false", ok, err)
	}
}

// A node that claimed an occurrence but lost the answer (a timeout after
// the commit) and claims it again gets it: otherwise nobody fires it while
// that node lives, since its fresh heartbeat keeps others from taking over.
func TestClaimTimerRetryBySameNode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	if err := db.Heartbeat(ctx, hotswap.Node{ID: "a", State: hotswap.NodeServing}); err != nil {
		t.Fatal(err)
	}
	if err := db.Heartbeat(ctx, hotswap.Node{ID: "b", State: hotswap.NodeServing}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	claim := func(node string) bool {
		t.Helper()
		ok, err := db.ClaimTimer(ctx, "orders", "production", "tick", at, node, 15*time.Second)
		if err != nil {
			t.Fatalf("ClaimTimer(%s): %v", node, err)
		}
		return ok
	}
	if !claim("a") {
		t.Fatal("first claim by a = false, want true")
	}
	if !claim("a") {
		t.Error("claim retried by its holder a = false, want true: nobody fires the occurrence while a lives")
	}
	if claim("b") {
		t.Error("claim by b of a's live claim = true, want false")
	}
	if err := db.DoneTimer(ctx, "orders", "production", "tick", at); err != nil {
		t.Fatal(err)
	}
	if claim("a") {
		t.Error("claim by a of its occurrence marked done = true, want false: it would fire twice")
	}
}
