package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
)

// testOrdering checks that names sort bytewise (as SQLite's BINARY
// collation does, whatever a PostgreSQL database's locale) and that records
// with equal times come in insertion order.
func testOrdering(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	for _, name := range []string{"ab", "a-c", "a0"} {
		mustCreateApp(t, db, name)
	}
	apps, err := db.ListApps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range apps {
		names = append(names, a.Name)
	}
	if diff := cmp.Diff(names, []string{"a-c", "a0", "ab"}); diff != "" {
		t.Errorf("ListApps order (-got +want):\n%s", diff)
	}
	for _, name := range []string{"sb", "s-c", "s0"} {
		mustCreateSlot(t, db, "ab", name)
	}
	slots, err := db.ListSlots(ctx, "ab")
	if err != nil {
		t.Fatal(err)
	}
	names = nil
	for _, s := range slots {
		names = append(names, s.Name)
	}
	if diff := cmp.Diff(names, []string{"production", "s-c", "s0", "sb"}); diff != "" {
		t.Errorf("ListSlots order (-got +want):\n%s", diff)
	}

	set := []hotswap.Setting{{Name: "abc", Value: "1"}, {Name: "_under", Value: "2"}, {Name: "ZED", Value: "3"}, {Name: "B_x", Value: "4"}}
	if err := db.SetSettings(ctx, "ab", "production", set); err != nil {
		t.Fatal(err)
	}
	settings, err := db.ListSettings(ctx, "ab", "production")
	if err != nil {
		t.Fatal(err)
	}
	names = nil
	for _, s := range settings {
		names = append(names, s.Name)
	}
	if diff := cmp.Diff(names, []string{"B_x", "ZED", "_under", "abc"}); diff != "" {
		t.Errorf("ListSettings order (-got +want):\n%s", diff)
	}

	for _, k := range []hotswap.Key{
		{Scope: hotswap.ScopeFunction, Function: "alpha", Name: "default", Value: "1"},
		{Scope: hotswap.ScopeFunction, Function: "Zeta", Name: "default", Value: "2"},
		{Scope: hotswap.ScopeHost, Name: "b-2", Value: "3"},
		{Scope: hotswap.ScopeHost, Name: "b1", Value: "4"},
	} {
		if err := db.PutKey(ctx, "ab", "production", k); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := db.ListKeys(ctx, "ab", "production")
	if err != nil {
		t.Fatal(err)
	}
	names = nil
	for _, k := range keys {
		names = append(names, k.Scope+"/"+k.Function+"/"+k.Name)
	}
	want := []string{"function/Zeta/default", "function/alpha/default", "host//b-2", "host//b1", "master//_master"}
	if diff := cmp.Diff(names, want); diff != "" {
		t.Errorf("ListKeys order (-got +want):\n%s", diff)
	}

	for _, name := range []string{"bob1", "bob", "Carl", "bob-2"} {
		if err := db.CreateUser(ctx, hotswap.User{Name: name, Role: "admin", TokenHash: "h-" + name}); err != nil {
			t.Fatal(err)
		}
	}
	users, err := db.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names = nil
	for _, u := range users {
		names = append(names, u.Name)
	}
	if diff := cmp.Diff(names, []string{"Carl", "bob", "bob-2", "bob1"}); diff != "" {
		t.Errorf("ListUsers order (-got +want):\n%s", diff)
	}

	// Equal times: the later insert is the newer.
	same := t0.Add(time.Hour)
	for _, id := range []string{"e2", "e1", "e3"} {
		if err := db.CreateDeployment(ctx, hotswap.Deployment{ID: id, App: "ab", Slot: "production", CreatedAt: same}); err != nil {
			t.Fatal(err)
		}
		if err := db.AddActivity(ctx, hotswap.Activity{App: "ab", Action: id, Time: same}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.PutArtifact(ctx, hotswap.Artifact{Feed: "f", Version: id, Digest: "sha256:" + id, CreatedAt: same}); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := db.ListDeployments(ctx, "ab", "")
	if err != nil {
		t.Fatal(err)
	}
	names = nil
	for _, d := range ds {
		names = append(names, d.ID)
	}
	if diff := cmp.Diff(names, []string{"e3", "e1", "e2"}); diff != "" {
		t.Errorf("ListDeployments with equal times (-got +want):\n%s", diff)
	}
	if d, err := db.LatestDeployment(ctx, "ab", "production"); err != nil || d.ID != "e3" {
		t.Errorf("LatestDeployment with equal times = %s, %v; want e3", d.ID, err)
	}
	acts, err := db.ListActivity(ctx, "ab", 0)
	if err != nil {
		t.Fatal(err)
	}
	names = nil
	for _, a := range acts {
		names = append(names, a.Action)
	}
	if diff := cmp.Diff(names, []string{"e3", "e1", "e2"}); diff != "" {
		t.Errorf("ListActivity with equal times (-got +want):\n%s", diff)
	}
	arts, err := db.ListArtifacts(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	names = nil
	for _, a := range arts {
		names = append(names, a.Version)
	}
	if diff := cmp.Diff(names, []string{"e3", "e1", "e2"}); diff != "" {
		t.Errorf("ListArtifacts with equal times (-got +want):\n%s", diff)
	}
	if a, err := db.GetArtifact(ctx, "f", ""); err != nil || a.Version != "e3" {
		t.Errorf("GetArtifact(newest) with equal times = %s, %v; want e3", a.Version, err)
	}
	for _, id := range []string{"o2", "o1"} {
		if err := db.BeginOperation(ctx, hotswap.Operation{ID: id, App: "app-" + id, Kind: "deploy", StartedAt: same}); err != nil {
			t.Fatal(err)
		}
	}
	running, err := db.RunningOperations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(running) != 2 || running[0].ID != "o2" || running[1].ID != "o1" {
		t.Errorf("RunningOperations with equal times = %+v, want o2 then o1", running)
	}
	ops, err := db.ListOperations(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2 || ops[0].ID != "o1" || ops[1].ID != "o2" {
		t.Errorf("ListOperations with equal times = %+v, want o1 then o2", ops)
	}
}

func testEndOperationAt(t *testing.T, open func(t *testing.T) *env) {
	db := open(t)
	ctx := context.Background()
	if err := db.BeginOperation(ctx, hotswap.Operation{ID: "op-1", App: "shop", Kind: "deploy"}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := db.EndOperationAt(ctx, "op-1", hotswap.OpSucceeded, "late", at); err != nil {
		t.Fatal(err)
	}
	ops, err := db.ListOperations(ctx, "shop", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 1 || ops[0].State != hotswap.OpSucceeded || !ops[0].EndedAt.Equal(at) || ops[0].Detail != "late" {
		t.Fatalf("operations = %+v, want op-1 succeeded at %v", ops, at)
	}
	checkKind(t, db.EndOperationAt(ctx, "op-1", hotswap.OpFailed, "", at), hotswap.FailedPrecondition)
}

func testCreatedAndHasApps(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	e := open(t)
	if !e.Created() {
		t.Error("Created() = false for a new store")
	}
	if ok, err := e.HasApps(ctx); err != nil || ok {
		t.Errorf("HasApps() = %v, %v on a new store, want false", ok, err)
	}
	mustCreateApp(t, e, "shop")
	if ok, err := e.HasApps(ctx); err != nil || !ok {
		t.Errorf("HasApps() = %v, %v with an app, want true", ok, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	db := e.reopen()
	if db.Created() {
		t.Error("Created() = true on reopening")
	}
	if err := db.DeleteApp(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.HasApps(ctx); err != nil || ok {
		t.Errorf("HasApps() = %v, %v after deleting the only app, want false", ok, err)
	}
}

// swapFixture is an app "shop" whose production serves d1 and staging d2,
// with settings in both.
func swapFixture(t *testing.T, db Store) {
	t.Helper()
	ctx := context.Background()
	mustCreateApp(t, db, "shop")
	mustCreateSlot(t, db, "shop", "staging")
	for _, d := range []hotswap.Deployment{
		{ID: "d1", App: "shop", Slot: "production", Digest: "sha256:1"},
		{ID: "d2", App: "shop", Slot: "staging", Digest: "sha256:2"},
	} {
		if err := db.CreateDeployment(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := db.DeployTo(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SetSettings(ctx, "shop", "production", []hotswap.Setting{
		{Name: "A", Value: "prod"}, {Name: "S", Value: "sticky-prod", Sticky: true},
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetSettings(ctx, "shop", "staging", []hotswap.Setting{
		{Name: "A", Value: "stage"}, {Name: "B", Value: "only-stage"}, {Name: "S", Value: "sticky-stage", Sticky: true},
	}); err != nil {
		t.Fatal(err)
	}
}

// swapState is what a swap changes.
type swapState struct {
	Deployment map[string]string
	Settings   map[string][]hotswap.Setting
}

func readSwapState(t *testing.T, db Store) swapState {
	t.Helper()
	ctx := context.Background()
	s := swapState{Deployment: map[string]string{}, Settings: map[string][]hotswap.Setting{}}
	for _, slot := range []string{"production", "staging"} {
		sl, err := db.GetSlot(ctx, "shop", slot)
		if err != nil {
			t.Fatal(err)
		}
		s.Deployment[slot] = sl.DeploymentID
		s.Settings[slot], err = db.ListSettings(ctx, "shop", slot)
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func testSwap(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	swapFixture(t, db)
	before := readSwapState(t, db)
	if err := db.BeginOperation(ctx, hotswap.Operation{ID: "op1", App: "shop", Kind: "swap", Slot: "staging", Target: "production"}); err != nil {
		t.Fatal(err)
	}
	defer db.clock.set(t0.Add(time.Hour))()
	if err := db.Swap(ctx, "shop", "staging", "production", "op1"); err != nil {
		t.Fatalf("Swap: %v", err)
	}
	want := swapState{
		Deployment: map[string]string{"production": "d2", "staging": "d1"},
		Settings: map[string][]hotswap.Setting{
			"production": {{Name: "A", Value: "stage"}, {Name: "B", Value: "only-stage"}, {Name: "S", Value: "sticky-prod", Sticky: true}},
			"staging":    {{Name: "A", Value: "prod"}, {Name: "S", Value: "sticky-stage", Sticky: true}},
		},
	}
	if diff := cmp.Diff(readSwapState(t, db), want); diff != "" {
		t.Errorf("after Swap (-got +want):\n%s", diff)
	}
	ops, err := db.ListOperations(ctx, "shop", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 1 || ops[0].ID != "op1" || ops[0].State != hotswap.OpSucceeded || ops[0].Detail != "swapped" || !ops[0].EndedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("operation after Swap = %+v, want op1 succeeded, swapped, at %v", ops, t0.Add(time.Hour))
	}
	// Swapping back restores the start.
	if err := db.Swap(ctx, "shop", "production", "staging", ""); err != nil {
		t.Fatalf("Swap back: %v", err)
	}
	if diff := cmp.Diff(readSwapState(t, db), before); diff != "" {
		t.Errorf("after swapping back (-got +want):\n%s", diff)
	}

	// A refused swap changes nothing, not even its operation.
	checkErrCases(t, []errCase{
		{"missing source", db.Swap(ctx, "shop", "nope", "production", ""), hotswap.NotFound, `slot "nope" of app "shop" not found`},
		{"missing target", db.Swap(ctx, "shop", "staging", "nope", ""), hotswap.NotFound, `slot "nope" of app "shop" not found`},
		{"ended operation", db.Swap(ctx, "shop", "production", "staging", "op1"), hotswap.FailedPrecondition, "operation op1 has ended (succeeded)"},
		{"missing operation", db.Swap(ctx, "shop", "production", "staging", "op9"), hotswap.NotFound, `operation "op9" not found`},
	})
	if diff := cmp.Diff(readSwapState(t, db), before); diff != "" {
		t.Errorf("after refused swaps (-got +want):\n%s", diff)
	}
	if err := db.SetSettings(ctx, "shop", "staging", []hotswap.Setting{{Name: "A", Value: "stage", Sticky: true}}); err != nil {
		t.Fatal(err)
	}
	before = readSwapState(t, db)
	if err := db.BeginOperation(ctx, hotswap.Operation{ID: "op2", App: "shop", Kind: "swap"}); err != nil {
		t.Fatal(err)
	}
	checkErrCases(t, []errCase{
		{"sticky conflict", db.Swap(ctx, "shop", "staging", "production", "op2"), hotswap.Conflict,
			"setting A is a slot setting of staging and would arrive there from production as a normal setting; make it a slot setting in both slots or in neither"},
	})
	if diff := cmp.Diff(readSwapState(t, db), before); diff != "" {
		t.Errorf("after refused swaps (-got +want):\n%s", diff)
	}
	running, err := db.RunningOperations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(running) != 1 || running[0].ID != "op2" {
		t.Errorf("RunningOperations after a refused swap = %+v, want op2 still running", running)
	}
}

// testSwapConcurrent checks that concurrent swaps of one app are applied
// one after the other: none is lost and none sees half of another.
func testSwapConcurrent(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	swapFixture(t, db)
	before := readSwapState(t, db)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if i%2 == 0 {
				errs[i] = db.Swap(ctx, "shop", "staging", "production", "")
			} else {
				errs[i] = db.Swap(ctx, "shop", "production", "staging", "")
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Swap %d: %v", i, err)
		}
	}
	if diff := cmp.Diff(readSwapState(t, db), before); diff != "" {
		t.Errorf("after %d swaps (-got +want):\n%s", n, diff)
	}
}

func testAutoSwap(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	mustCreateApp(t, db, "shop")
	mustCreateSlot(t, db, "shop", "staging")
	if err := db.SetAutoSwap(ctx, "shop", "staging", "production"); err != nil {
		t.Fatalf("SetAutoSwap: %v", err)
	}
	if s, err := db.GetSlot(ctx, "shop", "staging"); err != nil || s.AutoSwapTarget != "production" {
		t.Errorf("AutoSwapTarget = %q, %v; want production", s.AutoSwapTarget, err)
	}
	all, err := db.ListAllSlots(ctx)
	if err != nil || len(all) != 2 || all[1].AutoSwapTarget != "production" {
		t.Errorf("ListAllSlots = %+v, %v; want staging with its target", all, err)
	}
	if err := db.SetAutoSwap(ctx, "shop", "staging", ""); err != nil {
		t.Fatalf("SetAutoSwap off: %v", err)
	}
	if s, _ := db.GetSlot(ctx, "shop", "staging"); s.AutoSwapTarget != "" {
		t.Errorf("AutoSwapTarget after disabling = %q", s.AutoSwapTarget)
	}
	checkErrCases(t, []errCase{
		{"missing target", db.SetAutoSwap(ctx, "shop", "staging", "nope"), hotswap.NotFound, `slot "nope" of app "shop" not found`},
		{"missing slot", db.SetAutoSwap(ctx, "shop", "nope", "production"), hotswap.NotFound, `slot "nope" of app "shop" not found`},
		{"missing app", db.SetAutoSwap(ctx, "nope", "staging", ""), hotswap.NotFound, `app "nope" not found`},
	})
}

func testServingAndDeleteDeployment(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	swapFixture(t, db)
	if err := db.Swap(ctx, "shop", "staging", "production", ""); err != nil {
		t.Fatal(err)
	}
	hist, err := db.ServingHistory(ctx, "shop")
	if err != nil {
		t.Fatalf("ServingHistory: %v", err)
	}
	var got []string
	for _, s := range hist {
		state := "open"
		if !s.To.IsZero() {
			state = "ended"
			if s.To.Before(s.From) {
				t.Errorf("serving %+v ends before it starts", s)
			}
		}
		got = append(got, s.Slot+"/"+s.DeploymentID+"/"+state)
	}
	want := []string{"production/d2/open", "staging/d1/open", "staging/d2/ended", "production/d1/ended"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("ServingHistory (-got +want):\n%s", diff)
	}
	if h, err := db.ServingHistory(ctx, "nope"); err != nil || len(h) != 0 {
		t.Errorf("ServingHistory of a missing app = %v, %v; want none", h, err)
	}

	d3 := hotswap.Deployment{ID: "d3", App: "shop", Slot: "staging", Digest: "sha256:3"}
	if err := db.CreateDeployment(ctx, d3); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		digest string
		want   bool
	}{{"sha256:1", true}, {"sha256:3", true}, {"sha256:9", false}} {
		if got, err := db.DigestInUse(ctx, tc.digest); err != nil || got != tc.want {
			t.Errorf("DigestInUse(%s) = %v, %v; want %v", tc.digest, got, err, tc.want)
		}
	}
	checkErrCases(t, []errCase{
		{"served", db.DeleteDeployment(ctx, "shop", "d1"), hotswap.FailedPrecondition, "deployment d1 is served by a slot"},
		{"missing", db.DeleteDeployment(ctx, "shop", "d9"), hotswap.NotFound, `deployment "d9" of app "shop" not found`},
		{"other app's", db.DeleteDeployment(ctx, "other", "d3"), hotswap.NotFound, ""},
	})
	if err := db.DeleteDeployment(ctx, "shop", "d3"); err != nil {
		t.Fatalf("DeleteDeployment: %v", err)
	}
	if _, err := db.GetDeployment(ctx, "shop", "d3"); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("GetDeployment after delete = %v, want NotFound", err)
	}
	if used, _ := db.DigestInUse(ctx, "sha256:3"); used {
		t.Error("the deleted deployment's package is still in use")
	}
	// A package an artifact names stays in use: a release may deploy it.
	if _, err := db.PutArtifact(ctx, hotswap.Artifact{Feed: "shop", Version: "1.0.0", Digest: "sha256:3", Actor: "ci"}); err != nil {
		t.Fatal(err)
	}
	if used, err := db.DigestInUse(ctx, "sha256:3"); err != nil || !used {
		t.Errorf("DigestInUse of an artifact's package = %v, %v; want true", used, err)
	}
	// Deleting a deployment that served once drops its serving history.
	if err := db.SetSlotDeployment(ctx, "shop", "staging", "d2"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteDeployment(ctx, "shop", "d1"); err != nil {
		t.Fatalf("DeleteDeployment of a former deployment: %v", err)
	}
	hist, err = db.ServingHistory(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range hist {
		if s.DeploymentID == "d1" {
			t.Errorf("serving history of the deleted d1 is left: %+v", s)
		}
	}
}

func testUsers(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	ann := hotswap.User{Name: "ann", Role: "admin", TokenHash: "h1"}
	bob := hotswap.User{Name: "bob", Role: "approver", TokenHash: "h2", CreatedAt: t0.Add(time.Hour)}
	for _, u := range []hotswap.User{bob, ann} {
		if err := db.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser(%s): %v", u.Name, err)
		}
	}
	ann.CreatedAt = t0
	users, err := db.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(users, []hotswap.User{ann, bob}); diff != "" {
		t.Errorf("ListUsers (-got +want):\n%s", diff)
	}
	if u, err := db.UserByTokenHash(ctx, "h2"); err != nil || u.Name != "bob" {
		t.Errorf("UserByTokenHash(h2) = %+v, %v; want bob", u, err)
	}
	if u, err := db.GetUser(ctx, "ann"); err != nil || !cmp.Equal(u, ann) {
		t.Errorf("GetUser(ann) = %+v, %v; want %+v", u, err, ann)
	}
	u, err := db.SetUserToken(ctx, "bob", "h3")
	if err != nil {
		t.Fatalf("SetUserToken: %v", err)
	}
	bob.TokenHash = "h3"
	if diff := cmp.Diff(u, bob); diff != "" {
		t.Errorf("SetUserToken (-got +want):\n%s", diff)
	}
	checkErrCases(t, []errCase{
		{"duplicate", db.CreateUser(ctx, hotswap.User{Name: "ann", Role: "admin", TokenHash: "h9"}), hotswap.Conflict, `user "ann" already exists`},
		{"old token", func() error { _, err := db.UserByTokenHash(ctx, "h2"); return err }(), hotswap.Unauthorized, "unknown token"},
		{"get missing", func() error { _, err := db.GetUser(ctx, "nope"); return err }(), hotswap.NotFound, `user "nope" not found`},
		{"token of missing", func() error { _, err := db.SetUserToken(ctx, "nope", "h"); return err }(), hotswap.NotFound, `user "nope" not found`},
		{"delete missing", db.DeleteUser(ctx, "nope"), hotswap.NotFound, `user "nope" not found`},
	})
	if err := db.CreateUser(ctx, hotswap.User{Name: "eve", Role: "root", TokenHash: "h8"}); err == nil {
		t.Error("CreateUser with role root succeeded")
	}
	if err := db.DeleteUser(ctx, "ann"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if _, err := db.UserByTokenHash(ctx, "h1"); hotswap.ErrorKind(err) != hotswap.Unauthorized {
		t.Errorf("deleted user's token = %v, want Unauthorized", err)
	}
}

func testArtifacts(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	a1 := hotswap.Artifact{Feed: "web", Version: "1.0.0", Branch: "main", Commit: "c1", Digest: "sha256:1", Actor: "ci"}
	a2 := hotswap.Artifact{Feed: "web", Version: "1.1.0", Branch: "main", Commit: "c2", Digest: "sha256:2", Actor: "ci"}
	for _, a := range []hotswap.Artifact{a1, a2} {
		created, err := db.PutArtifact(ctx, a)
		if err != nil || !created {
			t.Fatalf("PutArtifact(%s) = %v, %v; want created", a.Version, created, err)
		}
	}
	a1.CreatedAt, a2.CreatedAt = t0, t0.Add(time.Second)
	// The same content again is accepted and changes nothing.
	if created, err := db.PutArtifact(ctx, hotswap.Artifact{Feed: "web", Version: "1.0.0", Digest: "sha256:1", Actor: "other"}); err != nil || created {
		t.Errorf("PutArtifact of the same version again = %v, %v; want false, nil", created, err)
	}
	list, err := db.ListArtifacts(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(list, []hotswap.Artifact{a2, a1}); diff != "" {
		t.Errorf("ListArtifacts (-got +want):\n%s", diff)
	}
	if a, err := db.GetArtifact(ctx, "web", ""); err != nil || !cmp.Equal(a, a2) {
		t.Errorf("GetArtifact(newest) = %+v, %v; want %+v", a, err, a2)
	}
	if a, err := db.GetArtifact(ctx, "web", "1.0.0"); err != nil || !cmp.Equal(a, a1) {
		t.Errorf("GetArtifact(1.0.0) = %+v, %v; want %+v", a, err, a1)
	}
	if list, err := db.ListArtifacts(ctx, "nope"); err != nil || len(list) != 0 {
		t.Errorf("ListArtifacts of an empty feed = %v, %v", list, err)
	}
	checkErrCases(t, []errCase{
		{"other content", func() error {
			_, err := db.PutArtifact(ctx, hotswap.Artifact{Feed: "web", Version: "1.0.0", Digest: "sha256:x"})
			return err
		}(), hotswap.Conflict, "feed web already has version 1.0.0 with other content; versions are immutable"},
		{"missing version", func() error { _, err := db.GetArtifact(ctx, "web", "9"); return err }(), hotswap.NotFound, `feed "web" has no version "9"`},
		{"empty feed", func() error { _, err := db.GetArtifact(ctx, "nope", ""); return err }(), hotswap.NotFound, `feed "nope" has no artifact`},
	})
}

func testPipelines(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	p1, err := db.ApplyPipeline(ctx, "id-1", "web", "def v1", "ann")
	if err != nil {
		t.Fatalf("ApplyPipeline: %v", err)
	}
	want := hotswap.Pipeline{ID: "id-1", Name: "web", Version: 1, Definition: "def v1", CreatedAt: t0, UpdatedAt: t0}
	if diff := cmp.Diff(p1, want); diff != "" {
		t.Errorf("ApplyPipeline (-got +want):\n%s", diff)
	}
	// A new version under a new name keeps the id and the history.
	p1, err = db.ApplyPipeline(ctx, "id-1", "site", "def v2", "bob")
	if err != nil {
		t.Fatalf("ApplyPipeline rename: %v", err)
	}
	want = hotswap.Pipeline{ID: "id-1", Name: "site", Version: 2, Definition: "def v2", CreatedAt: t0, UpdatedAt: t0.Add(time.Second)}
	if diff := cmp.Diff(p1, want); diff != "" {
		t.Errorf("ApplyPipeline rename (-got +want):\n%s", diff)
	}
	if _, err := db.ApplyPipeline(ctx, "id-2", "api", "def api", "ann"); err != nil {
		t.Fatal(err)
	}
	checkErrCases(t, []errCase{
		{"taken name", func() error { _, err := db.ApplyPipeline(ctx, "id-2", "site", "x", "ann"); return err }(), hotswap.Conflict, `another pipeline is named "site"`},
		{"former name", func() error { _, err := db.ApplyPipeline(ctx, "id-3", "web", "x", "ann"); return err }(), hotswap.Conflict,
			`pipeline name "web" was the name of pipeline site, whose releases still answer to it; choose another name`},
		{"get missing", func() error { _, err := db.GetPipeline(ctx, "nope", false); return err }(), hotswap.NotFound, `pipeline "nope" not found`},
		{"old name is not a name", func() error { _, err := db.GetPipeline(ctx, "web", false); return err }(), hotswap.NotFound, ""},
	})
	// The pipeline may take back a name it had.
	if p, err := db.ApplyPipeline(ctx, "id-1", "web", "def v3", "ann"); err != nil || p.Version != 3 {
		t.Fatalf("ApplyPipeline back to its old name = %+v, %v", p, err)
	}
	if p, err := db.GetPipeline(ctx, "id-1", true); err != nil || p.Name != "web" || p.Definition != "def v3" {
		t.Errorf("GetPipeline by id = %+v, %v", p, err)
	}
	if p, err := db.GetPipeline(ctx, "web", false); err != nil || p.ID != "id-1" {
		t.Errorf("GetPipeline by name = %+v, %v", p, err)
	}
	list, err := db.ListPipelines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list {
		names = append(names, fmt.Sprintf("%s:%s:v%d", p.Name, p.ID, p.Version))
	}
	if diff := cmp.Diff(names, []string{"api:id-2:v1", "web:id-1:v3"}); diff != "" {
		t.Errorf("ListPipelines (-got +want):\n%s", diff)
	}
	versions, err := db.PipelineVersions(ctx, "id-1")
	if err != nil {
		t.Fatal(err)
	}
	wantVersions := []hotswap.PipelineVersion{
		// The refused applies above read the clock too.
		{Version: 3, Name: "web", Definition: "def v3", Actor: "ann", CreatedAt: t0.Add(5 * time.Second)},
		{Version: 2, Name: "site", Definition: "def v2", Actor: "bob", CreatedAt: t0.Add(time.Second)},
		{Version: 1, Name: "web", Definition: "def v1", Actor: "ann", CreatedAt: t0},
	}
	if diff := cmp.Diff(versions, wantVersions); diff != "" {
		t.Errorf("PipelineVersions (-got +want):\n%s", diff)
	}
	for _, tc := range []struct {
		name string
		want []string
	}{{"web", []string{"id-1"}}, {"site", []string{"id-1"}}, {"api", []string{"id-2"}}, {"nope", nil}} {
		ids, err := db.PipelineIDsNamed(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ids, tc.want); diff != "" {
			t.Errorf("PipelineIDsNamed(%s) (-got +want):\n%s", tc.name, diff)
		}
	}
}

func testReleases(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	for _, id := range []string{"p1", "p2"} {
		if _, err := db.ApplyPipeline(ctx, id, "pipe-"+id, "def", "ann"); err != nil {
			t.Fatal(err)
		}
	}
	create := func(id, pipeline, state string) hotswap.ReleaseRow {
		t.Helper()
		n, err := db.CreateRelease(ctx, hotswap.ReleaseRow{ID: id, PipelineID: pipeline, State: state}, func(number int) (string, error) {
			return fmt.Sprintf(`{"number":%d}`, number), nil
		})
		if err != nil {
			t.Fatalf("CreateRelease(%s): %v", id, err)
		}
		r, err := db.GetRelease(ctx, id)
		if err != nil {
			t.Fatalf("GetRelease(%s): %v", id, err)
		}
		if r.Number != n || r.Doc != fmt.Sprintf(`{"number":%d}`, n) {
			t.Errorf("release %s = %+v, want number %d in the row and its document", id, r, n)
		}
		return r
	}
	r1 := create("r1", "p1", "running")
	r2 := create("r2", "p1", "waiting")
	r3 := create("r3", "p2", "running")
	if r1.Number != 1 || r2.Number != 2 || r3.Number != 1 {
		t.Errorf("numbers = %d, %d, %d; want 1, 2 and 1 (per pipeline)", r1.Number, r2.Number, r3.Number)
	}
	if !r1.CreatedAt.Equal(t0.Add(2 * time.Second)) {
		t.Errorf("r1.CreatedAt = %v, want the clock's %v", r1.CreatedAt, t0.Add(2*time.Second))
	}
	if err := db.SaveRelease(ctx, "r1", "succeeded", `{"done":true}`); err != nil {
		t.Fatalf("SaveRelease: %v", err)
	}
	r1.State, r1.Doc = "succeeded", `{"done":true}`
	if got, err := db.GetRelease(ctx, "r1"); err != nil || !cmp.Equal(got, r1) {
		t.Errorf("GetRelease after save = %+v, %v; want %+v", got, err, r1)
	}
	for _, tc := range []struct {
		name            string
		pipeline, state string
		limit           int
		want            []hotswap.ReleaseRow
	}{
		{"all", "", "", 0, []hotswap.ReleaseRow{r3, r2, r1}},
		{"pipeline", "p1", "", 0, []hotswap.ReleaseRow{r2, r1}},
		{"state", "", "running", 0, []hotswap.ReleaseRow{r3}},
		{"both", "p1", "waiting", 0, []hotswap.ReleaseRow{r2}},
		{"limit", "", "", 2, []hotswap.ReleaseRow{r3, r2}},
		{"none", "p9", "", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.ListReleases(ctx, tc.pipeline, tc.state, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("ListReleases(%q, %q, %d) (-got +want):\n%s", tc.pipeline, tc.state, tc.limit, diff)
			}
		})
	}
	failed := fmt.Errorf("no document")
	if _, err := db.CreateRelease(ctx, hotswap.ReleaseRow{ID: "r4", PipelineID: "p1", State: "running"}, func(int) (string, error) { return "", failed }); err == nil {
		t.Error("CreateRelease with a failing document succeeded")
	}
	checkErrCases(t, []errCase{
		{"get missing", func() error { _, err := db.GetRelease(ctx, "r4"); return err }(), hotswap.NotFound, `release "r4" not found`},
		{"save missing", db.SaveRelease(ctx, "r9", "x", "{}"), hotswap.NotFound, `release "r9" not found`},
	})
}

// testReleaseNumbersConcurrent checks that releases created at the same
// time get distinct numbers.
func testReleaseNumbersConcurrent(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	if _, err := db.ApplyPipeline(ctx, "p1", "pipe", "def", "ann"); err != nil {
		t.Fatal(err)
	}
	const n = 10
	numbers := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			numbers[i], errs[i] = db.CreateRelease(ctx, hotswap.ReleaseRow{ID: fmt.Sprintf("r%d", i), PipelineID: "p1", State: "running"},
				func(number int) (string, error) { return "{}", nil })
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("CreateRelease r%d: %v", i, errs[i])
			continue
		}
		if seen[numbers[i]] || numbers[i] < 1 || numbers[i] > n {
			t.Errorf("release r%d got number %d, a duplicate or out of 1..%d", i, numbers[i], n)
		}
		seen[numbers[i]] = true
	}
}
