package ops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/artifact"
	"github.com/hotswap/hotswap/internal/pgtest"
	"github.com/hotswap/hotswap/internal/postgres"
	"github.com/hotswap/hotswap/internal/router"
	"github.com/hotswap/hotswap/internal/runtime"
)

// The tests below come from a review of the cluster code; each failed
// before its fix.

// TestClusterNotBehindUnderChurn: a node that follows a steady stream of
// small changes within milliseconds passes its health check, although
// almost every sample finds it a change or two behind.
func TestClusterNotBehindUnderChurn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, _ := openNode(t, dsn, "a")
	b, _ := openNode(t, dsn, "b")
	if _, err := a.CreateApp(ctx, "t", "shop"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b knows shop", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.slots[slotKey{"shop", hotswap.ProductionSlot}] != nil
	})
	for i := 0; i < 60; i++ {
		if _, err := a.CreateSlot(ctx, "t", "shop", fmt.Sprintf("s%d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second)
	t0 := time.Now()
	if err := b.reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("one reconcile of 61 slots: %v", time.Since(t0))
	var maxLag time.Duration
	unhealthy := ""
	type w struct {
		gen int64
		at  time.Time
	}
	var pending []w
	end := time.Now().Add(10 * time.Second)
	for i := 0; time.Now().Before(end); i++ {
		// a change every 5ms, whatever b does
		if err := a.store.PutKey(ctx, "shop", hotswap.ProductionSlot, hotswap.Key{Scope: hotswap.ScopeHost, Name: "k", Value: fmt.Sprintf("value-%040d", i)}); err != nil {
			t.Fatal(err)
		}
		g, _ := a.cfg.Cluster.Generation(ctx)
		pending = append(pending, w{g, time.Now()})
		served := b.node.served.Load()
		for len(pending) > 0 && pending[0].gen <= served {
			maxLag = max(maxLag, time.Since(pending[0].at))
			pending = pending[1:]
		}
		if len(pending) > 0 {
			maxLag = max(maxLag, time.Since(pending[0].at))
		}
		if ok, why := b.Health(); !ok && unhealthy == "" {
			unhealthy = why
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("b's worst lag behind a change: %v", maxLag)
	if unhealthy != "" {
		t.Errorf("b failed its health check although it served every change within %v: %s", maxLag, unhealthy)
	}
}

type stallReconcile struct {
	Store
	on *atomic.Bool
}

func (s stallReconcile) ListAllSlots(ctx context.Context) ([]hotswap.Slot, error) {
	if s.on.Load() {
		return nil, errors.New("stalled (test)")
	}
	return s.Store.ListAllSlots(ctx)
}

// TestClusterOperationCatchesUp: an operation run through a node that lags
// behind the store (its reconcile fails) starts from what the store says,
// not from the node's memory: the swap publishes production with the
// settings a change through another node stored a moment before.
func TestClusterOperationCatchesUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	var stall atomic.Bool
	a, ra := openNodeWith(t, dsn, "a", func(db Store) Store { return stallReconcile{db, &stall} })
	b, _ := openNode(t, dsn, "b")
	if _, err := a.CreateApp(ctx, "t", "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateSlot(ctx, "t", "shop", "staging", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Deploy(ctx, DeployRequest{App: "shop", Slot: "staging", Actor: "t", Package: bytes.NewReader(forwardPackage(t))}); err != nil {
		t.Fatal(err)
	}
	stall.Store(true) // a stops following the store (a slow or failing reconcile)
	if _, err := b.UpdateSettings(ctx, "t", "shop", "staging", []hotswap.Setting{{Name: "DB", Value: "new"}}, nil, HoldOptions{}); err != nil {
		t.Fatal(err)
	}
	ok, why := a.Health()
	t.Logf("b's settings change returned; a healthy=%v (%s)", ok, why)
	a.mu.Lock()
	t.Logf("a's memory of staging settings before the swap: %v", a.slots[slotKey{"shop", "staging"}].settings)
	a.mu.Unlock()
	sw, err := a.Swap(ctx, SwapRequest{App: "shop", Source: "staging", Actor: "t"})
	if err != nil {
		t.Fatal(err)
	}
	got := ra.Table().Slot(hotswap.HostLabel("shop", hotswap.ProductionSlot)).Settings["DB"]
	want, _ := a.store.ListSettings(ctx, "shop", hotswap.ProductionSlot)
	t.Logf("swap through a: %+v; a publishes production DB=%q; store has %v", sw, got, want)
	if got != "new" {
		t.Errorf("after the swap through a returned, a serves production with DB=%q, the store says \"new\"", got)
	}
}

type flakyBeat struct {
	Cluster
	off *atomic.Bool
}

func (c flakyBeat) Heartbeat(ctx context.Context, n hotswap.Node) error {
	if c.off.Load() {
		return errors.New("heartbeat lost (test)")
	}
	return c.Cluster.Heartbeat(ctx, n)
}

type slowDeployment struct {
	Store
	slow *atomic.Bool
}

func (s slowDeployment) GetDeployment(ctx context.Context, app, id string) (hotswap.Deployment, error) {
	if s.slow.Swap(false) {
		time.Sleep(9 * time.Second)
	}
	return s.Store.GetDeployment(ctx, app, id)
}

// TestClusterSilentNodeDoesNotFlip: a node whose heartbeats stopped
// reaching the store (its other queries still work) has its running
// operation ended by another node after the liveness window; it must not
// flip after that, or two operations change one app at once.
func TestClusterSilentNodeDoesNotFlip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	var off, slow atomic.Bool
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	arts, _ := artifact.OpenUnsealed(filepath.Join(t.TempDir(), "packages"), artifact.Limits{})
	arts.SetMirror(db.PutPackage)
	rt := runtime.NewManager(nil)
	t.Cleanup(func() { rt.Close() })
	a, err := Open(ctx, Config{Domain: "localhost", PublicAddr: "127.0.0.1:8080",
		Store: slowDeployment{db, &slow}, Artifacts: arts, Runtime: rt, Router: router.New(router.Config{Domain: "localhost"}),
		Cluster: flakyBeat{db, &off}, NodeName: "a", Version: "test",
		Liveness: 3 * time.Second, AckTimeout: 5 * time.Second, ReconcileEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, _ := openNode(t, dsn, "b")
	if _, err := a.CreateApp(ctx, "t", "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Deploy(ctx, DeployRequest{App: "shop", Slot: hotswap.ProductionSlot, Actor: "t", Package: bytes.NewReader(forwardPackage(t))}); err != nil {
		t.Fatal(err)
	}
	off.Store(true) // a's heartbeats fail (pool exhausted, flaky link...), its other queries still work
	slow.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := a.UpdateSettings(ctx, "t", "shop", hotswap.ProductionSlot, setting("FROM_A", "1"), nil, HoldOptions{})
		done <- err
	}()
	time.Sleep(8 * time.Second)
	_, errB := b.UpdateSettings(ctx, "t", "shop", hotswap.ProductionSlot, setting("FROM_B", "1"), nil, HoldOptions{})
	t.Logf("b's settings change while a's runs: %v", errB)
	errA := <-done
	ops, _ := b.Operations(ctx, "shop", 5)
	for _, op := range ops {
		t.Logf("op %s %s node=%s state=%s detail=%q", op.ID, op.Kind, op.Node, op.State, op.Detail)
	}
	st, _ := db.ListSettings(ctx, "shop", hotswap.ProductionSlot)
	t.Logf("a's settings change returned %v; store settings now %v", errA, st)
	if errB == nil && errA == nil {
		t.Errorf("two operations ran on app shop at once")
	}
}

// TestClusterPreviewRefused: a swap preview lives in one node's memory, so
// a cluster refuses it with what to do instead.
func TestClusterPreviewRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, _ := openNode(t, pgtest.DSN(t), "a")
	if _, err := a.CreateApp(ctx, "t", "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateSlot(ctx, "t", "shop", "staging", ""); err != nil {
		t.Fatal(err)
	}
	_, err := a.Swap(ctx, SwapRequest{App: "shop", Source: "staging", Actor: "t", Preview: true})
	if hotswap.ErrorKind(err) != hotswap.FailedPrecondition || !strings.Contains(hotswap.ErrorMessage(err), "without --preview") {
		t.Fatalf("swap with preview on a cluster: %v; want a refusal saying to swap without preview", err)
	}
}
