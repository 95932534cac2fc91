package ops

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
)

// TestSwapExpect: a swap told what its slots must serve refuses, before
// anything changes, when either slot serves something else, and swaps when
// both serve what it expects.
func TestSwapExpect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, zip := shopWithStaging(t)
	dep := map[string]string{}
	for _, slot := range []string{hotswap.ProductionSlot, "staging"} {
		res, err := s.Deploy(ctx, DeployRequest{App: "shop", Slot: slot, Actor: "t", Package: bytes.NewReader(zip)})
		if err != nil {
			t.Fatalf("deploy to %s: %v", slot, err)
		}
		dep[slot] = res.Deployment.ID
	}
	serving := func() (string, string) {
		t.Helper()
		src, err := s.SlotDeployment(ctx, "shop", "staging")
		if err != nil {
			t.Fatal(err)
		}
		tgt, err := s.SlotDeployment(ctx, "shop", hotswap.ProductionSlot)
		if err != nil {
			t.Fatal(err)
		}
		return src, tgt
	}

	for _, tc := range []struct {
		name   string
		expect SwapExpect
		says   string
	}{
		{"source differs", SwapExpect{Source: "d-analysed", Target: dep[hotswap.ProductionSlot]}, "shop/staging serves " + dep["staging"] + ", not d-analysed"},
		{"target differs", SwapExpect{Source: dep["staging"], Target: "d-before"}, "shop/production serves " + dep[hotswap.ProductionSlot] + ", not d-before"},
		{"target expected empty", SwapExpect{Source: dep["staging"]}, "not nothing"},
		{"source differs, any target", SwapExpect{Source: "d-analysed", AnyTarget: true}, "shop/staging serves " + dep["staging"] + ", not d-analysed"},
	} {
		_, err := s.Swap(ctx, SwapRequest{App: "shop", Source: "staging", Actor: "t", Expect: &tc.expect})
		if hotswap.ErrorKind(err) != hotswap.FailedPrecondition || !strings.Contains(hotswap.ErrorMessage(err), tc.says) {
			t.Errorf("%s: swap = %v; want FailedPrecondition saying %q", tc.name, err, tc.says)
		}
		if src, tgt := serving(); src != dep["staging"] || tgt != dep[hotswap.ProductionSlot] {
			t.Fatalf("%s: after the refused swap staging serves %s and production %s; want them as they were", tc.name, src, tgt)
		}
	}
	waitNoRunning(t, s, 5*time.Second)

	// The expectation is checked inside the swap's operation: while
	// another operation on the app runs (a deploy that may change what
	// the slots serve), the swap waits its turn (Conflict) and is not
	// judged on what the slots serve yet.
	other := hotswap.Operation{ID: "op-other-deploy", App: "shop", Kind: "deploy", Slot: "staging", Actor: "t", State: hotswap.OpRunning, StartedAt: time.Now().UTC()}
	if err := s.store.BeginOperation(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Swap(ctx, SwapRequest{App: "shop", Source: "staging", Actor: "t", Expect: &SwapExpect{Source: "d-analysed", AnyTarget: true}}); hotswap.ErrorKind(err) != hotswap.Conflict {
		t.Errorf("swap while another operation runs = %v; want Conflict", err)
	}
	if err := s.store.EndOperation(ctx, other.ID, hotswap.OpSucceeded, ""); err != nil {
		t.Fatal(err)
	}

	if _, err := s.Swap(ctx, SwapRequest{App: "shop", Source: "staging", Actor: "t", Expect: &SwapExpect{Source: dep["staging"], Target: dep[hotswap.ProductionSlot]}}); err != nil {
		t.Fatalf("swap with what the slots serve expected: %v", err)
	}
	if src, tgt := serving(); src != dep[hotswap.ProductionSlot] || tgt != dep["staging"] {
		t.Fatalf("after the swap staging serves %s and production %s; want them exchanged", src, tgt)
	}
	// AnyTarget: only the source is checked (an auto swap's way).
	if _, err := s.Swap(ctx, SwapRequest{App: "shop", Source: "staging", Actor: "t", Expect: &SwapExpect{Source: dep[hotswap.ProductionSlot], Target: "d-whatever", AnyTarget: true}}); err != nil {
		t.Fatalf("swap expecting the source only: %v", err)
	}
	if src, tgt := serving(); src != dep["staging"] || tgt != dep[hotswap.ProductionSlot] {
		t.Fatalf("after the swap back staging serves %s and production %s; want them as at first", src, tgt)
	}
}

// TestAutoSwapOvertaken: a deploy that lands on an auto-swap slot between
// another deploy's end and that deploy's auto swap is the one production
// ends up serving; the overtaken auto swap is refused, not run on the
// slots the later one left.
func TestAutoSwapOvertaken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, zip := shopWithStaging(t)
	first, err := s.Deploy(ctx, DeployRequest{App: "shop", Slot: hotswap.ProductionSlot, Actor: "t", Package: bytes.NewReader(zip)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetAutoSwap(ctx, "t", "shop", "staging", hotswap.ProductionSlot); err != nil {
		t.Fatal(err)
	}
	var later DeployResult
	landed := false
	s.beforeAutoSwap = func() {
		if landed {
			return
		}
		landed = true
		var err error
		if later, err = s.Deploy(ctx, DeployRequest{App: "shop", Slot: "staging", Actor: "t", Package: bytes.NewReader(zip)}); err != nil {
			t.Errorf("the deploy that lands first: %v", err)
		}
	}
	res, err := s.Deploy(ctx, DeployRequest{App: "shop", Slot: "staging", Actor: "t", Package: bytes.NewReader(zip)})
	if err != nil {
		t.Fatal(err)
	}
	if !landed || later.AutoSwap == nil {
		t.Fatalf("the later deploy did not land or did not auto swap: %+v", later)
	}
	if !strings.Contains(res.AutoSwapError, "not "+res.Deployment.ID) {
		t.Errorf("the overtaken auto swap: error %q, swap %+v; want refused, naming its deployment", res.AutoSwapError, res.AutoSwap)
	}
	got, err := s.SlotDeployment(ctx, "shop", hotswap.ProductionSlot)
	if err != nil {
		t.Fatal(err)
	}
	if got != later.Deployment.ID {
		t.Errorf("production serves %s, want %s, the later deploy (the first production build was %s)", got, later.Deployment.ID, first.Deployment.ID)
	}
}

// shopWithStaging opens a service with app shop, its production slot and a
// staging slot, nothing deployed; it returns the package to deploy.
func shopWithStaging(t *testing.T) (*Service, []byte) {
	t.Helper()
	ctx := context.Background()
	s, _ := testService(t, 0)
	if _, err := s.CreateApp(ctx, "t", "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSlot(ctx, "t", "shop", "staging", ""); err != nil {
		t.Fatal(err)
	}
	return s, forwardPackage(t)
}
