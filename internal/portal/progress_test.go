package portal

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/hotswap/hotswap/internal/artifact"
	"github.com/hotswap/hotswap/internal/ops"
)

// TestStatusOperation: while a deploy runs, the status of the app's page
// and of the deployed slot's page carry its phase for every viewer; another
// slot's page does not; after the end they say how it ended.
func TestStatusOperation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.ops.CreateApp(ctx, "admin", "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ops.CreateSlot(ctx, "admin", "orders", "staging", ""); err != nil {
		t.Fatal(err)
	}
	var zip bytes.Buffer
	if err := artifact.ZipDir(filepath.Join("..", "httpapi", "testdata", "slowstart"), &zip); err != nil {
		t.Fatal(err)
	}
	// Someone else deploys (a handler that takes 3s to listen).
	d, done, err := e.ops.StartDeploy(ctx, ops.DeployRequest{App: "orders", Slot: "staging", Actor: "ci", Package: &zip})
	if err != nil {
		t.Fatal(err)
	}
	viewer := e.browser()
	viewer.signIn(adminToken)
	status := func(path string) *ops.OperationProgress {
		t.Helper()
		code, body := viewer.get(path)
		var st struct{ Operation *ops.OperationProgress }
		if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
			t.Fatalf("%s = %d %s (%v)", path, code, body, err)
		}
		return st.Operation
	}
	var op *ops.OperationProgress
	waitFor(t, "the app's status to show the deploy starting", func() bool {
		op = status("/portal/apps/orders/status.json")
		return op != nil && op.Phase == "starting"
	})
	if op.Kind != "deploy" || op.Slot != "staging" || op.Target != d.ID || op.End || op.State != "running" || len(op.Phases) < 2 || op.Phases[0].Phase != "receiving" {
		t.Errorf("app status operation = %+v, want the running deploy of %s to staging with its phases from receiving", op, d.ID)
	}
	if op := status("/portal/apps/orders/slots/staging/status.json"); op == nil || op.Kind != "deploy" {
		t.Errorf("staging's status operation = %+v, want the deploy", op)
	}
	if op := status("/portal/apps/orders/slots/production/status.json"); op != nil {
		t.Errorf("production's status operation = %+v, want none: the deploy does not change production", op)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	op = status("/portal/apps/orders/slots/staging/status.json")
	if op == nil || !op.End || op.Phase != "done" || op.State != "succeeded" || op.Elapsed < 2000 {
		t.Errorf("after the deploy: %+v, want its end, done, after the 3s start", op)
	}
}
