package release

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
)

// Two engines on one store, each with a Leadership the test switches: the
// lead moving from one node to the other, and the old one noticing late.

// flagLeader is a Leadership a test switches.
type flagLeader struct {
	on atomic.Bool
	ch chan struct{}
}

func newFlag(on bool) *flagLeader {
	l := &flagLeader{ch: make(chan struct{}, 1)}
	l.on.Store(on)
	return l
}
func (l *flagLeader) IsLeader() bool           { return l.on.Load() }
func (l *flagLeader) Changed() <-chan struct{} { return l.ch }
func (l *flagLeader) set(on bool) {
	l.on.Store(on)
	select {
	case l.ch <- struct{}{}:
	default:
	}
}

// overlapEngines returns the fixture's store and ops with two cluster
// engines, a leading (once its takeover delay passed) and b not.
func overlapEngines(t *testing.T, ca, cb Config) (te *testEngine, a, b *Engine, la, lb *flagLeader) {
	t.Helper()
	te = newTestEngine(t)
	ctx := context.Background()
	te.Close() // the single-server engine of the fixture
	if err := te.db.CreateUser(ctx, hotswap.User{Name: "qa-two", Role: "approver", TokenHash: "qa-two"}); err != nil {
		t.Fatal(err)
	}
	la, lb = newFlag(true), newFlag(false)
	open := func(c Config, l *flagLeader, id string) *Engine {
		c.Store, c.Ops, c.Leader, c.NodeID = te.db, te.Engine.ops, l, id
		if c.Tick == 0 {
			c.Tick = 10 * time.Millisecond
		}
		e, err := Open(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	a, b = open(ca, la, "a"), open(cb, lb, "b")
	waitLeading(t, a, true)
	return te, a, b, la, lb
}

func waitLeading(t *testing.T, e *Engine, want bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for e.leading() != want {
		if time.Now().After(deadline) {
			t.Fatalf("engine %s: leading is not %v after 15s", e.cfg.NodeID, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitApproval creates a release of an approval pipeline through e and
// waits until its production stage waits for approval.
func waitApproval(t *testing.T, e *Engine, pipelineName string) *Release {
	t.Helper()
	ctx := context.Background()
	r, err := e.CreateRelease(ctx, ci, pipelineName, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	return waitRelease(t, e, r.ID, 15*time.Second, func(r *Release) bool { return r.stage("production").State == StageApproval })
}

// TestReviewApprovalDuringOverlapIsLost: the lock moved to B and A has not
// noticed yet (up to two of its leadership's pings). An approval A accepts
// then is written to the store; B, which waits longer than that before it
// loads the releases, must know it, and refuse the same approver twice.
func TestReviewApprovalDuringOverlapIsLost(t *testing.T) {
	ctx := context.Background()
	_, a, b, la, lb := overlapEngines(t, Config{}, Config{})
	if _, err := a.ApplyPipeline(ctx, admin, []byte(approvalPipeline("orders-release", "{approvers: [qa-lead, qa-two], required: 2}"))); err != nil {
		t.Fatal(err)
	}
	r := waitApproval(t, a, "orders-release")

	lb.set(true) // A's lock went with its connection; B took it. A has not noticed yet.
	time.Sleep(300 * time.Millisecond)
	got, err := a.Decide(ctx, qa, r.ID, "production", true, "ok") // through A's API
	if err != nil {
		t.Fatalf("approve through A: %v", err)
	}
	if n := len(got.stage("production").Approvals); n != 1 {
		t.Fatalf("A answered %d approvals, want 1", n)
	}
	la.set(false) // A notices, within the takeover delay
	waitLeading(t, a, false)
	waitLeading(t, b, true)
	now, err := b.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(now.stage("production").Approvals); n != 1 {
		t.Errorf("the leader B knows %d approvals of the stage, want 1: qa-lead was told the approval was recorded", n)
	}
	if _, err := b.Decide(ctx, qa, r.ID, "production", true, "again"); hotswap.ErrorKind(err) != hotswap.Conflict {
		t.Errorf("a second approval by qa-lead through B: %v, want a conflict", err)
	}
}

// TestOverlapReleaseCreatedDuringTakeoverRuns: a release the old leader
// created before it noticed its loss is loaded and run by the new leader.
func TestOverlapReleaseCreatedDuringTakeoverRuns(t *testing.T) {
	ctx := context.Background()
	_, a, b, la, lb := overlapEngines(t, Config{}, Config{})
	if _, err := a.ApplyPipeline(ctx, admin, []byte(approvalPipeline("orders-release", "{approvers: [qa-lead], required: 1}"))); err != nil {
		t.Fatal(err)
	}
	lb.set(true)
	time.Sleep(300 * time.Millisecond)
	r, err := a.CreateRelease(ctx, ci, "orders-release", "1.0.0") // A has not noticed yet
	if err != nil {
		t.Fatal(err)
	}
	la.set(false)
	waitLeading(t, b, true)
	waitRelease(t, b, r.ID, 10*time.Second, func(r *Release) bool { return r.stage("production").State == StageApproval })
	if _, err := b.Decide(ctx, qa, r.ID, "production", true, "ok"); err != nil {
		t.Fatalf("approve through the new leader: %v", err)
	}
	waitRelease(t, b, r.ID, 10*time.Second, func(r *Release) bool { return r.stage("production").State != StageApproval })
}

// TestOverlapLostLockWritesNothing: a node whose Leader says it lost the
// lead accepts no change locally even before its loop noticed; the change
// is forwarded (here nobody leads, so it is withdrawn) and the store keeps
// the release as it was.
func TestOverlapLostLockWritesNothing(t *testing.T) {
	ctx := context.Background()
	te, a, _, la, _ := overlapEngines(t, Config{Tick: time.Hour, TakeoverDelay: -1, ForwardTimeout: 300 * time.Millisecond}, Config{})
	if _, err := a.ApplyPipeline(ctx, admin, []byte(approvalPipeline("orders-release", "{approvers: [qa-lead, qa-two], required: 2}"))); err != nil {
		t.Fatal(err)
	}
	r := waitApproval(t, a, "orders-release")
	la.on.Store(false) // the ping failed; the loop has not looked yet
	if _, err := a.Decide(ctx, qa, r.ID, "production", true, "ok"); hotswap.ErrorKind(err) != hotswap.Unavailable {
		t.Errorf("approve through a node that lost the lock: %v, want unavailable (nothing changed)", err)
	}
	row, err := te.db.GetRelease(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := decode(row.Doc)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(stored.stage("production").Approvals); n != 0 {
		t.Errorf("the store has %d approvals written by a node that lost the lock, want 0", n)
	}
}

// TestReviewTakeoverMidDeployFailsRelease: the lead moves while the old
// leader's deploy of a stage is in flight. The new leader resumes the
// stage, finds the deployment (or the app's operation) still running and
// fails the stage, so the release ends failed instead of resuming.
func TestReviewTakeoverMidDeployFailsRelease(t *testing.T) {
	te := newTestEngine(t)
	ctx := context.Background()
	te.Close()
	o := te.Engine.ops
	if err := te.db.CreateUser(ctx, hotswap.User{Name: "qa-two", Role: "approver", TokenHash: "qa-two"}); err != nil {
		t.Fatal(err)
	}
	digest, err := o.StorePackage(ctx, bytes.NewReader(nodePackage(t)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := te.db.PutArtifact(ctx, hotswap.Artifact{Feed: "orders", Version: "2.0.0", Digest: digest}); err != nil {
		t.Fatal(err)
	}
	la, lb := newFlag(true), newFlag(false)
	a, err := Open(ctx, Config{Store: te.db, Ops: o, Tick: 10 * time.Millisecond, Leader: la, NodeID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, Config{Store: te.db, Ops: o, Tick: 10 * time.Millisecond, Leader: lb, NodeID: "b"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for !a.leading() {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := a.ApplyPipeline(ctx, admin, []byte(clusterPipeline)); err != nil {
		t.Fatal(err)
	}
	r, err := a.CreateRelease(ctx, ci, "orders", "2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	for {
		got, _ := a.Get(ctx, r.ID)
		if st := got.stage("staging"); st.Step == "deploy" {
			break
		}
		time.Sleep(time.Millisecond)
	}
	lb.set(true) // the lock moved to B while A deploys; A notices a second later
	time.AfterFunc(time.Second, func() { la.set(false) })
	done := waitRelease(t, b, r.ID, 60*time.Second, func(r *Release) bool {
		return r.ended() || r.stage("production").State == StageApproval
	})
	for _, l := range done.stage("staging").Log {
		t.Logf("%+v", l)
	}
	if done.ended() {
		t.Fatalf("release %s ended %s after the lead moved mid-deploy: staging: %s", done.Name, done.State, done.stage("staging").Detail)
	}
}

// TestTakeoverWhileDeployStillRunsWaitsForIt: the new leader resumes a
// stage whose deploy the old leader started and is still running in ops
// (a deploy can take longer than the takeover delay): the stage waits for
// it and goes on from its outcome instead of failing.
func TestTakeoverWhileDeployStillRunsWaitsForIt(t *testing.T) {
	ctx := context.Background()
	te, a, b, la, lb := overlapEngines(t, Config{}, Config{TakeoverDelay: -1})
	o := te.Engine.ops
	digest, err := o.StorePackage(ctx, bytes.NewReader(nodePackage(t)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := te.db.PutArtifact(ctx, hotswap.Artifact{Feed: "orders", Version: "2.0.0", Digest: digest}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ApplyPipeline(ctx, admin, []byte(clusterPipeline)); err != nil {
		t.Fatal(err)
	}
	r, err := a.CreateRelease(ctx, ci, "orders", "2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	waitRelease(t, a, r.ID, 15*time.Second, func(r *Release) bool { return r.stage("staging").Step == "deploy" })
	la.set(false)
	lb.set(true)
	done := waitRelease(t, b, r.ID, 60*time.Second, func(r *Release) bool {
		return r.ended() || r.stage("production").State == StageApproval
	})
	for _, l := range done.stage("staging").Log {
		t.Logf("%+v", l)
	}
	if done.ended() {
		t.Fatalf("release %s ended %s after the lead moved mid-deploy: staging: %s", done.Name, done.State, done.stage("staging").Detail)
	}
}

// TestTakeoverWhileSwapStillRunsWaitsForIt: the same for a swap the old
// leader started: the new leader waits for it and finds the swap done.
func TestTakeoverWhileSwapStillRunsWaitsForIt(t *testing.T) {
	ctx := context.Background()
	te, a, b, la, lb := overlapEngines(t, Config{}, Config{TakeoverDelay: -1})
	o := te.Engine.ops
	digest, err := o.StorePackage(ctx, bytes.NewReader(nodePackage(t)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := te.db.PutArtifact(ctx, hotswap.Artifact{Feed: "orders", Version: "2.0.0", Digest: digest}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ApplyPipeline(ctx, admin, []byte(clusterPipeline)); err != nil {
		t.Fatal(err)
	}
	r, err := a.CreateRelease(ctx, ci, "orders", "2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	waitRelease(t, a, r.ID, 30*time.Second, func(r *Release) bool { return r.stage("production").State == StageApproval })
	if _, err := a.Decide(ctx, qa, r.ID, "production", true, "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Decide(ctx, qa2, r.ID, "production", true, "ok"); err != nil {
		t.Fatal(err)
	}
	// Catch the swap under way: A records the step, then swaps (tens of
	// milliseconds at least: the target's sets start and warm).
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(time.Millisecond) {
		got, err := a.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st := got.stage("production"); st.Step == "swap" {
			break
		} else if st.State != StageRunning && st.State != StageGates && st.State != StageApproval || time.Now().After(deadline) {
			t.Fatalf("the swap was not seen under way: production %s %q", st.State, st.Step)
		}
	}
	la.set(false)
	lb.set(true)
	done := waitRelease(t, b, r.ID, 60*time.Second, func(r *Release) bool { return r.ended() })
	for _, l := range done.stage("production").Log {
		t.Logf("%+v", l)
	}
	if done.State != Succeeded {
		t.Fatalf("release %s ended %s after the lead moved mid-swap: production: %s", done.Name, done.State, done.stage("production").Detail)
	}
}
