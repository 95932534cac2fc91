package release

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/artifact"
	"github.com/hotswap/hotswap/internal/ops"
	"github.com/hotswap/hotswap/internal/pgtest"
	"github.com/hotswap/hotswap/internal/postgres"
	"github.com/hotswap/hotswap/internal/router"
	"github.com/hotswap/hotswap/internal/runtime"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testNode is one hotswap node of a cluster on a shared PostgreSQL store:
// its own pool, ops service, handler processes and release engine, bidding
// for the release engine's leadership with a real advisory lock.
type testNode struct {
	name   string
	db     *postgres.DB
	lead   *postgres.Leadership
	ops    *ops.Service
	engine *Engine
}

// openNode opens a node on dsn. Packages are read from the shared folder
// pkgs (the cluster's package sharing is not what these tests are about).
func openNode(t *testing.T, dsn, pkgs, name string) *testNode {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	arts, err := artifact.Open(pkgs, artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	rt := runtime.NewManager(nil)
	o, err := ops.Open(ctx, ops.Config{
		Domain: "localhost", PublicAddr: "127.0.0.1:8080", Store: db, Artifacts: arts, Runtime: rt,
		Router: router.New(router.Config{Domain: "localhost"}), DrainGrace: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{name: name, db: db, ops: o, lead: db.Leader(ctx, "release")}
	n.engine, err = Open(ctx, Config{Store: db, Ops: o, Tick: 50 * time.Millisecond, Leader: n.lead, Bus: db, NodeID: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.stop()
		o.Close()
		rt.Close()
		db.Close()
	})
	return n
}

// stop is the node's release engine going away: its lock is released and
// its engine closed. Idempotent.
func (n *testNode) stop() {
	n.lead.Close()
	n.engine.Close()
}

// waitLeader waits until exactly one of nodes leads and returns it.
func waitLeader(t *testing.T, nodes ...*testNode) *testNode {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var leaders []*testNode
		for _, n := range nodes {
			if n.engine.leading() {
				leaders = append(leaders, n)
			}
		}
		if len(leaders) == 1 {
			return leaders[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s %d of %d nodes run the releases, want 1", len(leaders), len(nodes))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitRelease(t *testing.T, e *Engine, id string, within time.Duration, ok func(r *Release) bool) *Release {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r, err := e.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			var stages []string
			for _, st := range r.Stages {
				stages = append(stages, st.Name+": "+st.State+" "+st.Detail)
			}
			t.Fatalf("release %s is %s (%s) after %v: %s", r.Name, r.State, r.Detail, within, strings.Join(stages, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nodePackage zips examples/node, a handler that needs no build.
func nodePackage(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := artifact.ZipDir(filepath.Join("..", "..", "examples", "node"), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const clusterPipeline = `name: orders
artifact: {feed: orders}
stages:
  - name: staging
    deploy: {app: orders, slot: staging}
  - name: production
    after: [staging]
    approval: {approvers: [qa-lead, qa-two], required: 2}
    swap: {app: orders, slot: staging, target: production}
`

var qa2 = Actor{Name: "qa-two", Role: "approver"}

// setupCluster stores on node a what the release needs: app orders with
// slots production and staging, the users, the pipeline and artifact
// orders 1.0.0 (the node example's package).
func setupCluster(t *testing.T, a *testNode) {
	t.Helper()
	ctx := context.Background()
	if _, err := a.ops.CreateApp(ctx, "admin", "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ops.CreateSlot(ctx, "admin", "orders", "staging", ""); err != nil {
		t.Fatal(err)
	}
	for _, u := range []Actor{ci, qa, qa2} {
		if err := a.db.CreateUser(ctx, hotswap.User{Name: u.Name, Role: u.Role, TokenHash: u.Name}); err != nil {
			t.Fatal(err)
		}
	}
	digest, err := a.ops.StorePackage(ctx, bytes.NewReader(nodePackage(t)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.db.PutArtifact(ctx, hotswap.Artifact{Feed: "orders", Version: "1.0.0", Digest: digest}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.engine.ApplyPipeline(ctx, admin, []byte(clusterPipeline)); err != nil {
		t.Fatal(err)
	}
}

// TestReleaseSurvivesLeaderLoss: a release waiting for approval, created
// through node A while A ran the releases, survives A's engine going away;
// another node takes over, it is approved through the new leader and
// through a node that does not lead (forwarded through the store), and it
// completes: the new leader swaps it into production. Holds are seen from
// every node.
func TestReleaseSurvivesLeaderLoss(t *testing.T) {
	dsn := pgtest.DSN(t)
	pkgs := filepath.Join(t.TempDir(), "packages")
	ctx := context.Background()

	a := openNode(t, dsn, pkgs, "node-a")
	if waitLeader(t, a) != a {
		t.Fatal("node A alone does not run the releases")
	}
	setupCluster(t, a)
	r, err := a.engine.CreateRelease(ctx, ci, "orders", "")
	if err != nil {
		t.Fatal(err)
	}
	r = waitRelease(t, a.engine, r.ID, 60*time.Second, func(r *Release) bool { return r.stage("production").State == StageApproval })
	staged := r.stage("staging").DeploymentID

	// B and C start after the deploy to staging (their ops load it).
	b := openNode(t, dsn, pkgs, "node-b")
	c := openNode(t, dsn, pkgs, "node-c")
	if l := waitLeader(t, a, b, c); l != a {
		t.Fatalf("%s runs the releases, want node-a which held the lock first", l.name)
	}
	for _, n := range []*testNode{b, c} {
		h, ok := n.engine.HeldBy("orders", "staging")
		if !ok || h.ReleaseID != r.ID {
			t.Errorf("%s: HeldBy(orders/staging) = %+v, %v; want release %s (it deployed there)", n.name, h, ok, r.Name)
		}
		if err := n.ops.CheckHold("orders", "staging", "deploy"); hotswap.ErrorKind(err) != hotswap.Conflict {
			t.Errorf("%s: a manual deploy to the held slot: err = %v, want Conflict", n.name, err)
		}
	}

	a.stop() // node A's engine goes away with its lock
	leader := waitLeader(t, b, c)
	other := b
	if leader == b {
		other = c
	}
	got, err := leader.engine.Decide(ctx, qa, r.Name, "production", true, "looks good")
	if err != nil {
		t.Fatalf("approve through the new leader %s: %v", leader.name, err)
	}
	if n := len(got.stage("production").Approvals); n != 1 {
		t.Errorf("after the first approval the stage has %d approvals, want 1", n)
	}
	// A second approval by the same approver, through the other node, is
	// refused there as it would be on the leader.
	if _, err := other.engine.Decide(ctx, qa, r.Name, "production", true, ""); hotswap.ErrorKind(err) != hotswap.Conflict {
		t.Errorf("approving twice through %s (not leading): err = %v, want Conflict", other.name, err)
	}
	got, err = other.engine.Decide(ctx, qa2, r.ID, "production", true, "ship it")
	if err != nil {
		t.Fatalf("approve through %s (not leading): %v", other.name, err)
	}
	if got == nil || got.ID != r.ID {
		t.Fatalf("the forwarded approval answered %+v, want release %s", got, r.ID)
	}
	done := waitRelease(t, other.engine, r.ID, 60*time.Second, func(r *Release) bool { return r.ended() })
	if done.State != Succeeded {
		t.Fatalf("release %s ended %s (%s), want succeeded", done.Name, done.State, done.Detail)
	}
	var users []string
	for _, ap := range done.stage("production").Approvals {
		users = append(users, ap.User)
	}
	if strings.Join(users, ",") != "qa-lead,qa-two" {
		t.Errorf("approvals by %v, want qa-lead,qa-two", users)
	}
	if prod, err := leader.ops.SlotDeployment(ctx, "orders", "production"); err != nil || prod != staged {
		t.Errorf("production serves %q (%v), want %s which the release deployed to staging", prod, err, staged)
	}
	// A node that does not lead learns of the holds through the bus or
	// its next tick: give it a moment.
	for _, n := range []*testNode{leader, other} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			h, ok := n.engine.HeldBy("orders", "staging")
			if !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: staging still held by %+v 5s after the release swapped it on", n.name, h)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestForwardedRequests: a release created through a node that does not
// lead is created by the leader; a change asked while no node leads is
// withdrawn after the timeout with an error that says nothing changed, and
// the leader that comes later does not carry it out.
func TestForwardedRequests(t *testing.T) {
	dsn := pgtest.DSN(t)
	pkgs := filepath.Join(t.TempDir(), "packages")
	ctx := context.Background()
	a := openNode(t, dsn, pkgs, "node-a")
	waitLeader(t, a)
	setupCluster(t, a)
	if _, err := a.engine.ApplyPipeline(ctx, admin, []byte(approvalPipeline("gated", "{approvers: [qa-lead]}"))); err != nil {
		t.Fatal(err)
	}
	b := openNode(t, dsn, pkgs, "node-b")
	if waitLeader(t, a, b) != a {
		t.Fatal("node B took the lead from node A")
	}
	r, err := b.engine.CreateRelease(ctx, ci, "gated", "1.0.0")
	if err != nil {
		t.Fatalf("create through node B (not leading): %v", err)
	}
	if r.Name != "gated-1" || r.Requester != "ci" {
		t.Errorf("the forwarded create answered %s by %s, want gated-1 by ci", r.Name, r.Requester)
	}
	waitRelease(t, b.engine, r.ID, 30*time.Second, func(r *Release) bool { return r.stage("production").State == StageApproval })
	if _, err := b.engine.CreateRelease(ctx, ci, "no-such-pipeline", ""); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("create of an unknown pipeline through node B: err = %v, want NotFound", err)
	}

	// Nobody leads: B's lock is held by a bidder that runs no engine.
	a.stop()
	held := a.db.Leader(ctx, "release")
	defer held.Close()
	deadline := time.Now().Add(30 * time.Second)
	for !held.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("the stand-in never took the lock")
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.engine.cfg.ForwardTimeout = time.Second // before any forward of this phase
	_, err = b.engine.Decide(ctx, qa, r.ID, "production", false, "no")
	if hotswap.ErrorKind(err) != hotswap.Unavailable || !strings.Contains(hotswap.ErrorMessage(err), "nothing was changed") {
		t.Fatalf("reject while no node leads: err = %v, want Unavailable saying nothing was changed", err)
	}
	held.Close()
	waitLeader(t, b)
	time.Sleep(500 * time.Millisecond) // several ticks of the new leader
	got, err := b.engine.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st := got.stage("production"); st.State != StageApproval || len(st.Approvals) != 0 {
		t.Errorf("the withdrawn rejection was carried out: stage %s, approvals %+v", st.State, st.Approvals)
	}
}
