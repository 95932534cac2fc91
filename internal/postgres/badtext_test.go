package postgres

import (
	"context"
	"testing"

	"github.com/hotswap/hotswap"
)

// Text PostgreSQL cannot store in a field the stores do not check (SQLite
// stores it as given) is Invalid, with a message that says why, not an
// internal error.
func TestBadTextIsInvalid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	if err := db.CreateApp(ctx, hotswap.App{Name: "orders"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.BeginOperation(ctx, hotswap.Operation{ID: "op1", App: "orders", Kind: "deploy"}); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"operation detail with NUL": db.SetOperationPhase(ctx, "op1", "start", "exit\x00"),
		"setting value not UTF-8":   db.SetSettings(ctx, "orders", "production", []hotswap.Setting{{Name: "CITY", Value: "M\xfcnchen"}}),
	} {
		if hotswap.ErrorKind(err) != hotswap.Invalid || hotswap.ErrorMessage(err) != "text contains a NUL byte or invalid UTF-8" {
			t.Errorf("%s: %v (kind %v), want Invalid: text contains a NUL byte or invalid UTF-8", name, err, hotswap.ErrorKind(err))
		}
	}
}
