package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
)

func testQuarantine(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	mustCreateApp(t, db, "q")
	mustCreateApp(t, db, "other")

	if _, ok, err := db.QuarantineOf(ctx, "q", "sha256:aa"); ok || err != nil {
		t.Fatalf("QuarantineOf of nothing = %v, %v; want false, nil", ok, err)
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	first := hotswap.Quarantine{App: "q", DeploymentID: "d1", Digest: "sha256:aa", Version: "1.0.0",
		Reason: "500s after the swap", Actor: "alice", At: at}
	second := hotswap.Quarantine{App: "q", DeploymentID: "d2", Digest: "sha256:aa",
		Reason: "again", Actor: "bob", At: at.Add(time.Minute)}
	for _, q := range []hotswap.Quarantine{first, second} {
		if err := db.Quarantine(ctx, q); err != nil {
			t.Fatalf("Quarantine(%s) = %v", q.DeploymentID, err)
		}
	}
	if err := db.Quarantine(ctx, first); hotswap.ErrorKind(err) != hotswap.Conflict {
		t.Errorf("Quarantine twice = %v; want Conflict", err)
	}
	if err := db.Quarantine(ctx, hotswap.Quarantine{App: "nope", DeploymentID: "d", Digest: "sha256:aa"}); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("Quarantine in a missing app = %v; want NotFound", err)
	}
	if err := db.Quarantine(ctx, hotswap.Quarantine{App: "q", DeploymentID: "d3"}); hotswap.ErrorKind(err) != hotswap.Invalid {
		t.Errorf("Quarantine without a digest = %v; want Invalid", err)
	}
	got, ok, err := db.QuarantineOf(ctx, "q", "sha256:aa")
	if err != nil || !ok {
		t.Fatalf("QuarantineOf = %v, %v", ok, err)
	}
	if diff := cmp.Diff(got, second); diff != "" {
		t.Errorf("QuarantineOf is not the newest (-got +want):\n%s", diff)
	}
	if _, ok, _ := db.QuarantineOf(ctx, "other", "sha256:aa"); ok {
		t.Error("a quarantine in one app holds in another")
	}
	list, err := db.ListQuarantines(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(list, []hotswap.Quarantine{second, first}); diff != "" {
		t.Errorf("ListQuarantines (-got +want):\n%s", diff)
	}

	if err := db.LiftQuarantine(ctx, "q", "d2"); err != nil {
		t.Fatalf("LiftQuarantine = %v", err)
	}
	if err := db.LiftQuarantine(ctx, "q", "d2"); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("LiftQuarantine twice = %v; want NotFound", err)
	}
	if got, ok, _ := db.QuarantineOf(ctx, "q", "sha256:aa"); !ok || got.DeploymentID != "d1" {
		t.Errorf("after lifting d2, QuarantineOf = %+v, %v; want d1's", got, ok)
	}
	if err := db.LiftQuarantine(ctx, "q", "d1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.QuarantineOf(ctx, "q", "sha256:aa"); ok {
		t.Error("content still quarantined after lifting every quarantine")
	}

	// Deleting the app drops its quarantines.
	if err := db.Quarantine(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteApp(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	mustCreateApp(t, db, "q")
	if list, _ := db.ListQuarantines(ctx, "q"); len(list) != 0 {
		t.Errorf("a new app of the same name inherits quarantines: %+v", list)
	}
}
