package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
)

// rolloutIDs returns the IDs of list, in order.
func rolloutIDs(list []hotswap.Rollout) []string {
	ids := make([]string, len(list))
	for i, r := range list {
		ids[i] = r.ID
	}
	return ids
}

// newRollout returns a running rollout of app with every field set.
func newRollout(id, app string, created time.Time) hotswap.Rollout {
	return hotswap.Rollout{
		ID: id, App: app, Slot: "staging", Target: "production",
		Strategy: hotswap.Strategy{Name: "canary:10,50", Steps: []hotswap.RolloutStep{
			{Percent: 10, Duration: hotswap.Duration(2 * time.Minute)},
			{Percent: 50.5, Duration: hotswap.Duration(90 * time.Second)},
		}},
		Analysis: hotswap.Analysis{MaxErrorRate: 0.015, MaxP95: hotswap.Duration(300 * time.Millisecond), MinRequests: 200},
		State:    hotswap.RolloutRunning,
		Step:     1, StepStarted: created.Add(2 * time.Minute),
		Deployment: "d2", TargetDeployment: "d1", Actor: "alice", Release: "rel-7",
		Results: []hotswap.StepResult{{
			Step: 0, Percent: 10, At: created.Add(2 * time.Minute), Verdict: "passed", Detail: "p95 120ms ≤ 300ms",
			Requests: 250, Errors: 1, P95: hotswap.Duration(120 * time.Millisecond),
			Base: 2250, BaseErrs: 3, BaseP95: hotswap.Duration(110*time.Millisecond + 7),
		}},
		Created: created, Updated: created.Add(2 * time.Minute),
	}
}

// mustRollout returns rollout id as stored.
func mustRollout(t testing.TB, db Store, id string) hotswap.Rollout {
	t.Helper()
	r, err := db.Rollout(context.Background(), id)
	if err != nil {
		t.Fatalf("Rollout(%q) = %v", id, err)
	}
	return r
}

func testRollouts(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	mustCreateApp(t, db, "shop")
	mustCreateApp(t, db, "other")
	// A time not in UTC, with nanoseconds: it reads back as the same
	// instant in UTC.
	at := time.Date(2026, 12, 1, 11, 0, 0, 123456789, time.FixedZone("CET", 3600))

	// Create stores every field and starts at version 1 whatever it is
	// given; Rollout reads back what Create returned.
	in := newRollout("r1", "shop", at)
	in.Version = 7
	r1, err := db.CreateRollout(ctx, in)
	if err != nil {
		t.Fatalf("CreateRollout: %v", err)
	}
	want := newRollout("r1", "shop", at)
	want.Version = 1
	if diff := cmp.Diff(r1, want); diff != "" {
		t.Errorf("CreateRollout returned (-got +want):\n%s", diff)
	}
	got := mustRollout(t, db, "r1")
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Rollout after create (-got +want):\n%s", diff)
	}
	for name, tm := range map[string]time.Time{"Created": got.Created, "Updated": got.Updated, "StepStarted": got.StepStarted, "Results[0].At": got.Results[0].At} {
		if tm.Location() != time.UTC {
			t.Errorf("stored %s is in %v, want UTC", name, tm.Location())
		}
	}
	// A zero Created is the store's clock's time; AllAtOnce's empty steps
	// and no results read back as they were.
	o1, err := db.CreateRollout(ctx, hotswap.Rollout{ID: "o1", App: "other", Slot: "staging", Target: "production",
		Strategy: hotswap.Strategy{Name: "AllAtOnce", Steps: []hotswap.RolloutStep{}}, State: hotswap.RolloutPaused})
	if err != nil {
		t.Fatalf("CreateRollout with a zero Created: %v", err)
	}
	if o1.Created.IsZero() || o1.Version != 1 {
		t.Errorf("CreateRollout with a zero Created = Created %v, Version %d; want the clock's time, 1", o1.Created, o1.Version)
	}
	if diff := cmp.Diff(mustRollout(t, db, "o1"), o1); diff != "" {
		t.Errorf("Rollout(o1) (-got +want):\n%s", diff)
	}

	// An update names the version it read and gets the next one.
	up := r1
	up.State, up.Step, up.Reason = hotswap.RolloutPaused, 2, "paused by bob"
	up.Results = append(up.Results, hotswap.StepResult{Step: 1, Percent: 50.5, At: at.Add(4 * time.Minute), Verdict: "held", Detail: "12 of 200 requests"})
	up.Updated = at.Add(5 * time.Minute)
	r1v2, err := db.UpdateRollout(ctx, up)
	if err != nil {
		t.Fatalf("UpdateRollout: %v", err)
	}
	wantV2 := up
	wantV2.Version = 2
	if diff := cmp.Diff(r1v2, wantV2); diff != "" {
		t.Errorf("UpdateRollout returned (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(mustRollout(t, db, "r1"), wantV2); diff != "" {
		t.Errorf("Rollout after update (-got +want):\n%s", diff)
	}

	// A write from a stale read is refused and changes nothing; so is one
	// that moves the rollout to another app, or names one that is not.
	stale := r1 // version 1
	stale.State = hotswap.RolloutAborted
	moved := r1v2
	moved.App = "other"
	checkErrCases(t, []errCase{
		{"stale update", second(db.UpdateRollout(ctx, stale)), hotswap.Conflict, `rollout "r1" changed since it was read (version 1, now 2)`},
		{"update to another app", second(db.UpdateRollout(ctx, moved)), hotswap.Invalid, `rollout "r1" is of app "shop", not "other"`},
		{"update of an unknown id", second(db.UpdateRollout(ctx, newRollout("nope", "shop", at))), hotswap.NotFound, `rollout "nope" not found`},
		{"get an unknown id", second(db.Rollout(ctx, "nope")), hotswap.NotFound, `rollout "nope" not found`},
		{"create in an unknown app", second(db.CreateRollout(ctx, newRollout("n1", "nope", at))), hotswap.NotFound, `app "nope" not found`},
		{"create without an id", second(db.CreateRollout(ctx, newRollout("", "shop", at))), hotswap.Invalid, "rollout has no id"},
		{"create with a taken id", second(db.CreateRollout(ctx, func() hotswap.Rollout {
			r := newRollout("r1", "other", at)
			r.State = hotswap.RolloutSucceeded
			return r
		}())), hotswap.Conflict, `rollout "r1" already exists`},
	})
	if diff := cmp.Diff(mustRollout(t, db, "r1"), wantV2); diff != "" {
		t.Errorf("refused updates changed the rollout (-got +want):\n%s", diff)
	}

	// One rollout per app is not done: a second is refused, naming the
	// first, while the first is running or paused; another app may have
	// one; once the first is done, another may start.
	checkErrCases(t, []errCase{
		{"second running", second(db.CreateRollout(ctx, newRollout("r2", "shop", at.Add(time.Hour)))), hotswap.Conflict,
			`app "shop" has a progressive swap running (r1)`},
		{"second in other", second(db.CreateRollout(ctx, newRollout("o2", "other", at.Add(time.Hour)))), hotswap.Conflict,
			`app "other" has a progressive swap running (o1)`},
	})
	if _, err := db.Rollout(ctx, "r2"); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("a refused rollout was stored: Rollout(r2) = %v", err)
	}
	// Oldest first by Created, not by when they were stored: o1 (created
	// by the clock, in 2025) before r1.
	active, err := db.ActiveRollouts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rolloutIDs(active), []string{"o1", "r1"}); diff != "" {
		t.Errorf("ActiveRollouts (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(active[1], wantV2); diff != "" {
		t.Errorf("ActiveRollouts' r1 (-got +want):\n%s", diff)
	}

	done := r1v2
	done.State = hotswap.RolloutSucceeded
	if _, err := db.UpdateRollout(ctx, done); err != nil {
		t.Fatalf("UpdateRollout to succeeded: %v", err)
	}
	r2, err := db.CreateRollout(ctx, newRollout("r2", "shop", at.Add(-time.Hour)))
	if err != nil {
		t.Fatalf("CreateRollout after the first is done: %v", err)
	}
	// A done rollout cannot run again beside the new one.
	again := mustRollout(t, db, "r1")
	again.State = hotswap.RolloutRunning
	checkErrCases(t, []errCase{{"rerun beside another", second(db.UpdateRollout(ctx, again)), hotswap.Conflict,
		`app "shop" has a progressive swap running (r2)`}})
	if got := mustRollout(t, db, "r1"); got.State != hotswap.RolloutSucceeded || got.Version != 3 {
		t.Errorf("after a refused rerun r1 is %s at version %d, want succeeded at 3", got.State, got.Version)
	}
	active, err = db.ActiveRollouts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rolloutIDs(active), []string{"o1", "r2"}); diff != "" {
		t.Errorf("ActiveRollouts after r1 is done (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(active[1], r2); diff != "" {
		t.Errorf("ActiveRollouts' r2 (-got +want):\n%s", diff)
	}

	// Rollouts lists an app's, newest first (stored later first among
	// equal times), at most limit.
	for i, h := range []struct {
		id    string
		state hotswap.RolloutState
		after time.Duration
	}{
		{"h1", hotswap.RolloutFailed, time.Hour},
		{"h2", hotswap.RolloutAborted, 2 * time.Hour},
		{"h3", hotswap.RolloutSucceeded, 2 * time.Hour},
	} {
		r := newRollout(h.id, "shop", at.Add(h.after))
		r.State = h.state
		if _, err := db.CreateRollout(ctx, r); err != nil {
			t.Fatalf("CreateRollout %d (%s): %v", i, h.id, err)
		}
	}
	for _, tc := range []struct {
		app   string
		limit int
		want  []string
	}{
		{"shop", 0, []string{"h3", "h2", "h1", "r1", "r2"}},
		{"shop", 2, []string{"h3", "h2"}},
		{"shop", 100, []string{"h3", "h2", "h1", "r1", "r2"}},
		{"other", 0, []string{"o1"}},
		{"", 0, []string{"h3", "h2", "h1", "r1", "r2", "o1"}},
		{"nope", 0, []string{}},
	} {
		list, err := db.Rollouts(ctx, tc.app, tc.limit)
		if err != nil {
			t.Errorf("Rollouts(%q, %d) = %v", tc.app, tc.limit, err)
			continue
		}
		if diff := cmp.Diff(rolloutIDs(list), tc.want); diff != "" {
			t.Errorf("Rollouts(%q, %d) (-got +want):\n%s", tc.app, tc.limit, diff)
		}
	}
	// Done ones are not active.
	if active, _ := db.ActiveRollouts(ctx); len(active) != 2 {
		t.Errorf("ActiveRollouts with done ones stored = %v, want o1 and r2", rolloutIDs(active))
	}

	// Deleting the app deletes its rollouts; a new app of the same name
	// has none and may start one under a reused id.
	if err := db.DeleteApp(ctx, "shop"); err != nil {
		t.Fatalf("DeleteApp with rollouts: %v", err)
	}
	for _, id := range []string{"r1", "r2", "h1"} {
		if _, err := db.Rollout(ctx, id); hotswap.ErrorKind(err) != hotswap.NotFound {
			t.Errorf("Rollout(%s) of a deleted app = %v, want NotFound", id, err)
		}
	}
	if _, err := db.UpdateRollout(ctx, r2); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("UpdateRollout of a deleted app's rollout = %v, want NotFound", err)
	}
	if active, _ := db.ActiveRollouts(ctx); !cmp.Equal(rolloutIDs(active), []string{"o1"}) {
		t.Errorf("ActiveRollouts after deleting shop = %v, want [o1]", rolloutIDs(active))
	}
	mustCreateApp(t, db, "shop")
	if list, _ := db.Rollouts(ctx, "shop", 0); len(list) != 0 {
		t.Errorf("a recreated app has the deleted one's rollouts: %v", rolloutIDs(list))
	}
	if _, err := db.CreateRollout(ctx, newRollout("r1", "shop", at)); err != nil {
		t.Errorf("CreateRollout in the recreated app: %v", err)
	}

	// A closed and reopened store has them as they were.
	o1 = mustRollout(t, db, "o1")
	db.Close()
	db2 := db.reopen()
	if diff := cmp.Diff(mustRollout(t, db2, "o1"), o1); diff != "" {
		t.Errorf("Rollout(o1) after reopening (-got +want):\n%s", diff)
	}
}

// testRolloutsDefaultLimit checks that Rollouts without a limit returns
// the newest 50.
func testRolloutsDefaultLimit(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	mustCreateApp(t, db, "many")
	const n = 52
	for i := range n {
		r := newRollout(fmt.Sprintf("m%02d", i), "many", T0.Add(time.Duration(i)*time.Minute))
		r.State = hotswap.RolloutAborted
		if _, err := db.CreateRollout(ctx, r); err != nil {
			t.Fatalf("CreateRollout %d: %v", i, err)
		}
	}
	for _, limit := range []int{0, -1} {
		list, err := db.Rollouts(ctx, "many", limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 50 || list[0].ID != "m51" || list[49].ID != "m02" {
			t.Errorf("Rollouts(many, %d) = %d rollouts, %s..., want the newest 50, m51 to m02", limit, len(list), strings.Join(rolloutIDs(list[:min(3, len(list))]), ", "))
		}
	}
}

// testRolloutsConcurrent checks the rules under concurrent writers: of
// many rollouts started at once in one app one is stored, and of many
// updates from one read one is written.
func testRolloutsConcurrent(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	mustCreateApp(t, db, "race")
	const n = 20
	wins := func(what string, errs []error) {
		t.Helper()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case hotswap.ErrorKind(err) != hotswap.Conflict:
				t.Errorf("%s %d = %v, want nil or Conflict", what, i, err)
			}
		}
		if won != 1 {
			t.Errorf("%d of %d concurrent %s calls succeeded, want exactly 1", won, n, what)
		}
	}

	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = db.CreateRollout(ctx, newRollout(fmt.Sprintf("c%d", i), "race", T0))
		})
	}
	wg.Wait()
	wins("CreateRollout", errs)
	active, err := db.ActiveRollouts(ctx)
	if err != nil || len(active) != 1 {
		t.Fatalf("ActiveRollouts = %v, %v; want one", rolloutIDs(active), err)
	}

	read := active[0]
	for i := range n {
		wg.Go(func() {
			r := read
			r.Step, r.Reason = i, fmt.Sprint("writer ", i)
			_, errs[i] = db.UpdateRollout(ctx, r)
		})
	}
	wg.Wait()
	wins("UpdateRollout", errs)
	if got := mustRollout(t, db, read.ID); got.Version != 2 || errs[got.Step] != nil || got.Reason != fmt.Sprint("writer ", got.Step) {
		t.Errorf("after concurrent updates the rollout is version %d by %q (step %d), want version 2 by the one writer that won", got.Version, got.Reason, got.Step)
	}
}

// second returns the error of a call that returns a value and an error.
func second[T any](_ T, err error) error { return err }
