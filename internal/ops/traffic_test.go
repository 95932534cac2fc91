package ops

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/pgtest"
	"github.com/hotswap/hotswap/internal/router"
)

// TestTraffic: the rules are set, replaced, refused whole when bad, logged,
// kept over a restart, dropped with their slot and cleared.
func TestTraffic(t *testing.T) {
	ctx := context.Background()
	s, _ := testService(t, 0)
	if _, err := s.CreateApp(ctx, "t", "shop"); err != nil {
		t.Fatal(err)
	}
	for _, slot := range []string{"staging", "canary"} {
		if _, err := s.CreateSlot(ctx, "t", "shop", slot, ""); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Traffic(ctx, "shop"); err != nil || len(got) != 0 {
		t.Fatalf("Traffic of a new app = %v, %v", got, err)
	}
	shares := []hotswap.TrafficShare{{Slot: "staging", Percent: 10}, {Slot: "canary", Percent: 5}}
	if err := s.SetTraffic(ctx, "alice", "shop", shares); err != nil {
		t.Fatal(err)
	}
	want := []hotswap.TrafficShare{{Slot: "canary", Percent: 5}, {Slot: "staging", Percent: 10}}
	if got, _ := s.Traffic(ctx, "shop"); !cmp.Equal(got, want) {
		t.Errorf("Traffic = %v, want %v", got, want)
	}
	if got, want := s.cfg.Router.Table().Slot("shop").Shares, []router.Share{{Slot: "canary", Percent: 5}, {Slot: "staging", Percent: 10}}; !cmp.Equal(got, want) {
		t.Errorf("production's routing slot has shares %v, want %v", got, want)
	}
	if got := s.cfg.Router.Table().Slot("shop-staging").Shares; got != nil {
		t.Errorf("staging's routing slot has shares %v; only production has", got)
	}
	acts, err := s.Activity(ctx, "shop", 1)
	if err != nil || len(acts) != 1 {
		t.Fatal(acts, err)
	}
	if a := acts[0]; a.Action != "traffic.set" || a.Actor != "alice" || a.Detail != "traffic set canary=5% staging=10%" {
		t.Errorf("activity = %+v", a)
	}

	for _, bad := range [][]hotswap.TrafficShare{
		{{Slot: "nope", Percent: 1}},
		{{Slot: "staging", Percent: 70}, {Slot: "canary", Percent: 31}},
		{{Slot: hotswap.ProductionSlot, Percent: 1}},
	} {
		if err := s.SetTraffic(ctx, "alice", "shop", bad); err == nil {
			t.Errorf("SetTraffic(%v) = nil, want an error", bad)
		}
	}
	if got, _ := s.Traffic(ctx, "shop"); !cmp.Equal(got, want) {
		t.Errorf("a refused rule changed the traffic: %v", got)
	}
	if _, err := s.Traffic(ctx, "nope"); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("Traffic of a missing app = %v", err)
	}

	// Deleting a slot drops its share, in memory as in the store.
	if err := s.DeleteSlot(ctx, "t", "shop", "canary", HoldOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSlot(ctx, "t", "shop", "canary", ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Traffic(ctx, "shop"); !cmp.Equal(got, want[1:]) {
		t.Errorf("Traffic after deleting canary = %v, want %v", got, want[1:])
	}
	if got, _ := s.store.Traffic(ctx, "shop"); !cmp.Equal(got, want[1:]) {
		t.Errorf("stored traffic after deleting canary = %v, want %v", got, want[1:])
	}

	if err := s.ClearTraffic(ctx, "bob", "shop"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Traffic(ctx, "shop"); len(got) != 0 {
		t.Errorf("Traffic after clearing = %v", got)
	}
	if got := s.cfg.Router.Table().Slot("shop").Shares; got != nil {
		t.Errorf("production's routing slot has shares %v after clearing", got)
	}
	if acts, _ := s.Activity(ctx, "shop", 1); len(acts) != 1 || acts[0].Action != "traffic.clear" || !strings.Contains(acts[0].Detail, "cleared") {
		t.Errorf("activity of the clear = %+v", acts)
	}
}

// TestClusterTraffic: a rule set through one node is the other's when the
// call returns, and so is its clearing.
func TestClusterTraffic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, _ := openNode(t, dsn, "a")
	b, rb := openNode(t, dsn, "b")
	waitFor(t, 5*time.Second, "both nodes live", func() bool {
		n, err := a.cfg.Cluster.LiveNodes(ctx, a.cfg.Liveness)
		return err == nil && len(n) == 2
	})
	if _, err := a.CreateApp(ctx, "t", "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateSlot(ctx, "t", "shop", "staging", ""); err != nil {
		t.Fatal(err)
	}
	want := []hotswap.TrafficShare{{Slot: "staging", Percent: 10}}
	if err := a.SetTraffic(ctx, "t", "shop", want); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Traffic(ctx, "shop"); !cmp.Equal(got, want) {
		t.Fatalf("after the rule was set through a, node b has %v, want %v", got, want)
	}
	if got := rb.Table().Slot("shop").Shares; !cmp.Equal(got, []router.Share{{Slot: "staging", Percent: 10}}) {
		t.Fatalf("after the rule was set through a, node b routes production with shares %v", got)
	}
	if err := b.ClearTraffic(ctx, "t", "shop"); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Traffic(ctx, "shop"); len(got) != 0 {
		t.Fatalf("after the rule was cleared through b, node a has %v", got)
	}
}
