package storetest

import (
	"context"
	"testing"

	"github.com/hotswap/hotswap"
)

// testBadText checks that both stores refuse text with a NUL byte or
// invalid UTF-8 in the free-text fields users fill (PostgreSQL cannot store
// it, SQLite could), as Invalid naming the field, and store nothing.
func testBadText(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	mustCreateApp(t, db, "orders")
	const want = "text contains a NUL byte or invalid UTF-8"
	for _, bad := range []string{"fix\x00", "caf\xe9"} {
		checkErrCases(t, []errCase{
			{"deployment message " + bad, db.CreateDeployment(ctx, hotswap.Deployment{ID: "d1", App: "orders", Slot: "production", Message: bad}),
				hotswap.Invalid, "deployment message: " + want},
			{"deployment author " + bad, db.CreateDeployment(ctx, hotswap.Deployment{ID: "d1", App: "orders", Slot: "production", Author: bad}),
				hotswap.Invalid, "deployment author: " + want},
			{"activity detail " + bad, db.AddActivity(ctx, hotswap.Activity{App: "orders", Action: "deploy", Detail: bad}),
				hotswap.Invalid, "activity detail: " + want},
			{"activity actor " + bad, db.AddActivity(ctx, hotswap.Activity{App: "orders", Actor: bad, Action: "deploy"}),
				hotswap.Invalid, "activity actor: " + want},
		})
	}
	if ds, err := db.ListDeployments(ctx, "orders", ""); err != nil || len(ds) != 0 {
		t.Errorf("ListDeployments = %d deployments, %v; want none stored", len(ds), err)
	}
	if as, err := db.ListActivity(ctx, "orders", 0); err != nil || len(as) != 0 {
		t.Errorf("ListActivity = %d entries, %v; want none stored", len(as), err)
	}
	// Good text, accents and all, is stored as given.
	msg := "fix the cart, café ☕"
	if err := db.CreateDeployment(ctx, hotswap.Deployment{ID: "d2", App: "orders", Slot: "production", Message: msg}); err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	if d, err := db.GetDeployment(ctx, "orders", "d2"); err != nil || d.Message != msg {
		t.Errorf("GetDeployment = message %q, %v; want %q", d.Message, err, msg)
	}
}
