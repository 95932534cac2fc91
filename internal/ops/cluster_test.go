package ops

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

// openNode opens a Service on the PostgreSQL store at dsn, as one node
// of a cluster: its own artifact store, handler processes and routing.
func openNode(t testing.TB, dsn, name string) (*Service, *router.Handler) {
	return openNodeWith(t, dsn, name, func(db Store) Store { return db })
}

// openNodeWith is openNode whose service sees the store through wrap.
func openNodeWith(t testing.TB, dsn, name string, wrap func(Store) Store, opts ...func(*Config)) (*Service, *router.Handler) {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dir := t.TempDir()
	arts, err := artifact.OpenUnsealed(filepath.Join(dir, "packages"), artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	arts.SetMirror(db.PutPackage)
	rt := runtime.NewManager(nil)
	t.Cleanup(func() { rt.Close() })
	rh := router.New(router.Config{Domain: "localhost"})
	cfg := Config{
		Domain: "localhost", PublicAddr: "127.0.0.1:8080",
		Store: wrap(db), Artifacts: arts, Runtime: rt, Router: rh,
		Cluster: db, NodeName: name, Version: "test",
		Liveness: 3 * time.Second, AckTimeout: 5 * time.Second, ReconcileEvery: time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, rh
}

// serving returns the deployment the node's routing table serves on a
// slot's host name ("" for none).
func serving(rh *router.Handler, app, slot string) string {
	sl := rh.Table().Slot(hotswap.HostLabel(app, slot))
	if sl == nil || sl.Upstream == nil {
		return ""
	}
	return sl.Deployment
}

func waitFor(t testing.TB, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterFollows: two nodes on one PostgreSQL store. What one node
// does, the other serves by the time the call returns: a deploy (the other
// node fetches the package from the store), a swap, a settings change; an
// app created on one is known on the other at once; a deleted app stops on
// both.
func TestClusterFollows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, ra := openNode(t, dsn, "a")
	b, rb := openNode(t, dsn, "b")
	waitFor(t, 5*time.Second, "both nodes live", func() bool {
		n, err := a.cfg.Cluster.LiveNodes(ctx, a.cfg.Liveness)
		return err == nil && len(n) == 2
	})

	if _, err := a.CreateApp(ctx, "t", "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateSlot(ctx, "t", "shop", "staging", ""); err != nil {
		t.Fatalf("create a slot through node b right after node a created the app: %v", err)
	}
	res, err := a.Deploy(ctx, DeployRequest{App: "shop", Slot: "staging", Actor: "t", Package: bytes.NewReader(forwardPackage(t))})
	if err != nil {
		t.Fatal(err)
	}
	d1 := res.Deployment.ID
	for name, rh := range map[string]*router.Handler{"a": ra, "b": rb} {
		if got := serving(rh, "shop", "staging"); got != d1 {
			t.Fatalf("after the deploy through a returned, node %s serves %q on staging, want %s", name, got, d1)
		}
	}

	sw, err := b.Swap(ctx, SwapRequest{App: "shop", Source: "staging", Target: hotswap.ProductionSlot, Actor: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sw.LaggingNodes) > 0 {
		t.Fatalf("swap through b: lagging nodes %v", sw.LaggingNodes)
	}
	for name, rh := range map[string]*router.Handler{"a": ra, "b": rb} {
		if got := serving(rh, "shop", hotswap.ProductionSlot); got != d1 {
			t.Fatalf("after the swap through b returned, node %s serves %q on production, want %s", name, got, d1)
		}
		if got := serving(rh, "shop", "staging"); got != "" {
			t.Fatalf("after the swap through b returned, node %s serves %q on staging, want nothing", name, got)
		}
	}

	if _, err := a.UpdateSettings(ctx, "t", "shop", hotswap.ProductionSlot, setting("APP_VERSION", "7"), nil, HoldOptions{}); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	st := b.slots[slotKey{"shop", hotswap.ProductionSlot}]
	got := st.cfgKey
	b.mu.Unlock()
	if want := configKey("shop", hotswap.ProductionSlot, d1, setting("APP_VERSION", "7")); got != want {
		t.Fatalf("after the settings change through a returned, node b runs configuration %s, want %s", got, want)
	}

	if err := b.DeleteApp(ctx, "t", "shop", HoldOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "node a drops the app deleted through b", func() bool {
		return ra.Table().Slot("shop") == nil
	})
}

// TestClusterOneOperationPerApp: two nodes may not run operations on the
// same app at once; the store's lock is the cluster's.
func TestClusterOneOperationPerApp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, _ := openNode(t, dsn, "a")
	b, _ := openNode(t, dsn, "b")
	if _, err := a.CreateApp(ctx, "t", "shop"); err != nil {
		t.Fatal(err)
	}
	op := hotswap.Operation{ID: newID("op-"), App: "shop", Kind: "test", Actor: "t", State: hotswap.OpRunning}
	if err := a.beginOp(ctx, op); err != nil {
		t.Fatal(err)
	}
	_, err := b.UpdateSettings(ctx, "t", "shop", hotswap.ProductionSlot, setting("A", "1"), nil, HoldOptions{})
	if hotswap.ErrorKind(err) != hotswap.Conflict || !strings.Contains(hotswap.ErrorMessage(err), "shop") {
		t.Fatalf("an operation through b while a runs one on the app: %v; want a conflict naming the app", err)
	}
}

// blindStore fails to list the slots while blind is set, so the node
// cannot reconcile with the store.
type blindStore struct {
	Store
	blind atomic.Bool
}

func (b *blindStore) ListAllSlots(ctx context.Context) ([]hotswap.Slot, error) {
	if b.blind.Load() {
		return nil, errors.New("blind (test)")
	}
	return b.Store.ListAllSlots(ctx)
}

// TestClusterLaggingNode: a node that cannot follow a flip is named by the
// operation once the acknowledgement timeout passes, and fails its health
// check until it catches up; then it serves the change and passes again.
func TestClusterLaggingNode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, _ := openNode(t, dsn, "a")
	var bs *blindStore
	b, rb := openNodeWith(t, dsn, "b", func(db Store) Store {
		bs = &blindStore{Store: db}
		return bs
	})
	if _, err := a.CreateApp(ctx, "t", "shop"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "node b knows the app", func() bool { return rb.Table().Slot("shop") != nil })
	if ok, why := b.Health(); !ok {
		t.Fatalf("node b before anything: unhealthy: %s", why)
	}
	bs.blind.Store(true)
	start := time.Now()
	res, err := a.Deploy(ctx, DeployRequest{App: "shop", Slot: hotswap.ProductionSlot, Actor: "t", Package: bytes.NewReader(forwardPackage(t))})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < a.cfg.AckTimeout {
		t.Fatalf("the deploy returned after %v, before the acknowledgement timeout (%v), though node b could not follow", took, a.cfg.AckTimeout)
	}
	acts, err := a.Activity(ctx, "shop", 10)
	if err != nil {
		t.Fatal(err)
	}
	named := false
	for _, x := range acts {
		named = named || x.Result == "lagging" && strings.Contains(x.Detail, "b (")
	}
	if !named {
		t.Fatalf("no activity names node b as lagging: %+v", acts)
	}
	waitFor(t, 10*time.Second, "node b fails its health check", func() bool { ok, _ := b.Health(); return !ok })
	if _, why := b.Health(); !strings.Contains(why, "behind") {
		t.Fatalf("node b unhealthy for %q, want behind the cluster", why)
	}
	if got := serving(rb, "shop", hotswap.ProductionSlot); got == res.Deployment.ID {
		t.Fatalf("node b serves %s though it could not read the store", got)
	}
	bs.blind.Store(false)
	waitFor(t, 10*time.Second, "node b catches up", func() bool {
		ok, _ := b.Health()
		return ok && serving(rb, "shop", hotswap.ProductionSlot) == res.Deployment.ID
	})
}

// withFile returns zip data with one more file, so each deploy is new
// content with its own digest.
func withFile(t testing.TB, data []byte, name, body string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		if err := zw.Copy(f); err != nil {
			t.Fatal(err)
		}
	}
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, body)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestClusterRetentionDeletesSharedPackage: a package that retention
// prunes leaves the shared store too, unless an artifact still names it.
func TestClusterRetentionDeletesSharedPackage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, _ := openNodeWith(t, pgtest.DSN(t), "a", func(db Store) Store { return db }, func(c *Config) {
		c.Retention, c.RevertWindow = 1, -1 // no warm set keeps a deployment
	})
	if _, err := a.CreateApp(ctx, "t", "shop"); err != nil {
		t.Fatal(err)
	}
	var digests []string
	for i := range 3 {
		res, err := a.Deploy(ctx, DeployRequest{App: "shop", Slot: hotswap.ProductionSlot, Actor: "t", Package: bytes.NewReader(withFile(t, forwardPackage(t), "v.txt", fmt.Sprint(i)))})
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, res.Deployment.Digest)
	}
	waitFor(t, 5*time.Second, "the first deployment's package leaves the store", func() bool {
		has, err := a.cfg.Cluster.HasPackage(ctx, digests[0])
		return err == nil && !has
	})
	if has, err := a.cfg.Cluster.HasPackage(ctx, digests[2]); err != nil || !has {
		t.Fatalf("the served deployment's package: in the store = %v, %v; want true", has, err)
	}
}
