package ops

import (
	"bytes"
	"context"
	"testing"

	"github.com/hotswap/hotswap"
)

// TestBackgroundPanics: an operation run apart from its request (?wait=false)
// that panics is an internal error for its caller, not the end of the
// server.
func TestBackgroundPanics(t *testing.T) {
	t.Parallel()
	s, _ := testService(t, 0)
	_, err := s.Background(context.Background(), func(context.Context) error { panic("boom (test)") })
	if hotswap.ErrorKind(err) != hotswap.Internal {
		t.Fatalf("Background of a panicking operation = %v, want an internal error", err)
	}
}

// TestCancelledPreviewEndsCancelled: a swap preview cancelled on purpose
// ends with the phase "cancelled", not "failed" (its state stays failed:
// nothing was swapped).
func TestCancelledPreviewEndsCancelled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pkg := shopWithStaging(t)
	if _, err := s.Deploy(ctx, DeployRequest{App: "shop", Slot: "staging", Actor: "t", Package: bytes.NewReader(pkg)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Swap(ctx, SwapRequest{App: "shop", Source: "staging", Actor: "t", Preview: true}); err != nil {
		t.Fatal(err)
	}
	ops, err := s.Operations(ctx, "shop", 1)
	if err != nil || len(ops) != 1 || ops[0].Kind != "swap" {
		t.Fatalf("the preview's operation: %+v, %v", ops, err)
	}
	if _, err := s.CancelSwap(ctx, "t", "shop", HoldOptions{}); err != nil {
		t.Fatal(err)
	}
	evs := s.Events(ops[0].ID)
	if len(evs) == 0 || !evs[len(evs)-1].End || evs[len(evs)-1].Phase != PhaseCancelled {
		t.Fatalf("events of the cancelled preview: %+v; want it to end %q", evs, PhaseCancelled)
	}
}
