package rollout

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/artifact"
	"github.com/hotswap/hotswap/internal/metrics"
	"github.com/hotswap/hotswap/internal/ops"
	"github.com/hotswap/hotswap/internal/pgtest"
	"github.com/hotswap/hotswap/internal/postgres"
	"github.com/hotswap/hotswap/internal/router"
	"github.com/hotswap/hotswap/internal/runtime"
)

// The cluster test runs ops services on a PostgreSQL database from pgtest.
func TestMain(m *testing.M) { pgtest.Main(m) }

// openClusterNode opens an ops service on the PostgreSQL store at dsn, as
// one node of a cluster counting requests in reg, and returns its store.
func openClusterNode(t *testing.T, dsn, name string, reg *metrics.Registry) (*ops.Service, *postgres.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	arts, err := artifact.OpenUnsealed(filepath.Join(t.TempDir(), "packages"), artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	arts.SetMirror(db.PutPackage)
	rt := runtime.NewManager(nil)
	t.Cleanup(func() { rt.Close() })
	s, err := ops.Open(ctx, ops.Config{
		Domain: "localhost", PublicAddr: "127.0.0.1:8080",
		Store: db, Artifacts: arts, Runtime: rt, Router: router.New(router.Config{Domain: "localhost"}), Metrics: reg,
		Cluster: db, NodeName: name, Version: "test",
		Liveness: 3 * time.Second, AckTimeout: 5 * time.Second, ReconcileEvery: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, db
}

// Two nodes on one PostgreSQL: the requests node b counts appear in the
// windows and totals node a's ClusterMetrics reads, beside a's own.
func TestClusterMetricsAcrossNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	regA, regB := metrics.New(), metrics.New()
	a, dbA := openClusterNode(t, dsn, "a", regA)
	_, _ = openClusterNode(t, dsn, "b", regB)
	waitUntil(t, "both nodes live", func() bool {
		n, err := a.Nodes(ctx)
		return err == nil && len(n) == 2
	})
	// Every -1: the test's Sample is the first reading, where counting
	// starts.
	cm, err := OpenClusterMetrics(ctx, ClusterConfig{Source: dbA, Every: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close()
	regA.Observe("shop", "staging", "d1", 200, time.Millisecond) // before the first reading
	regB.Observe("shop", "staging", "d1", 200, time.Millisecond)
	waitUntil(t, "both nodes publish their first request", func() bool {
		rows, err := dbA.SlotTotals(ctx, "shop", "staging")
		return err == nil && len(rows) == 2
	})
	if err := cm.Sample(ctx); err != nil {
		t.Fatal(err)
	}
	start, err := cm.Totals(ctx, "shop", "staging")
	if err != nil {
		t.Fatal(err)
	}

	for i := range 40 {
		status := 200
		if i%8 == 0 {
			status = 503
		}
		regB.Observe("shop", "staging", "d1", status, 20*time.Millisecond)
	}
	for range 10 {
		regA.Observe("shop", "staging", "d1", 200, time.Millisecond)
	}
	var got metrics.Stats
	waitUntil(t, "a's window holds b's 40 requests and its own 10", func() bool {
		got = cm.Window("shop", "staging", time.Minute)
		return got.Requests == 50
	})
	if got.Errors != 5 || got.P95 != 30*time.Millisecond {
		t.Errorf("a's window = %+v, want 5 errors (b's 503s) and p95 30ms (b's 20ms bucket)", got)
	}
	now, err := cm.Totals(ctx, "shop", "staging")
	if err != nil {
		t.Fatal(err)
	}
	d, ok := now.Sub(start)
	if s := metrics.StatsOf(d); !ok || s != got {
		t.Errorf("a's totals since the start = %+v (ok %v), want the window's %+v", s, ok, got)
	}
	if local := regA.Window("shop", "staging", time.Minute); local.Requests != 11 {
		t.Errorf("a's own registry window = %+v, want its 11 requests only", local)
	}
}
