package release

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/ops"
)

const cdPipeline = `name: orders-cd
artifact: {feed: orders}
trigger: {continuous: true, branches: [main]}
stages:
  - name: staging
    deploy: {app: orders, slot: staging}
`

// TestQuarantinedContentNotPromoted: a deployment a release made is
// quarantined (with the release's artifact version); the
// continuous-deployment trigger then starts a release of a new version with
// the same content, and of the same version by hand: both fail, saying
// the content is quarantined and why, and deploy nothing.
func TestQuarantinedContentNotPromoted(t *testing.T) {
	te := newTestEngine(t)
	ctx := context.Background()
	o := te.Engine.ops
	if _, err := te.ApplyPipeline(ctx, admin, []byte(cdPipeline)); err != nil {
		t.Fatal(err)
	}
	pkg := nodePackage(t)
	_, rels, err := te.PushArtifact(ctx, ci, hotswap.Artifact{Feed: "orders", Version: "2.0.0", Branch: "main"}, bytes.NewReader(pkg))
	if err != nil || len(rels) != 1 {
		t.Fatalf("PushArtifact 2.0.0 = %d releases, %v; want 1", len(rels), err)
	}
	first := waitRelease(t, te.Engine, rels[0].ID, 60*time.Second, (*Release).ended)
	if first.State != Succeeded {
		t.Fatalf("release of 2.0.0 %s: %s", first.State, first.stage("staging").Detail)
	}
	dep := first.stage("staging").DeploymentID
	q, err := o.QuarantineDeployment(ctx, "alice", "orders", dep, "rolled back: 500s on checkout")
	if err != nil {
		t.Fatal(err)
	}
	if q.Version != "2.0.0" {
		t.Errorf("quarantine records version %q; want 2.0.0", q.Version)
	}
	before, err := o.Deployments(ctx, "orders", "staging")
	if err != nil {
		t.Fatal(err)
	}

	_, rels, err = te.PushArtifact(ctx, ci, hotswap.Artifact{Feed: "orders", Version: "2.0.1", Branch: "main"}, bytes.NewReader(pkg))
	if err != nil || len(rels) != 1 {
		t.Fatalf("PushArtifact 2.0.1 = %d releases, %v; want 1", len(rels), err)
	}
	manual, err := te.CreateRelease(ctx, ci, "orders-cd", "2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{rels[0].ID, manual.ID} {
		r := waitRelease(t, te.Engine, id, 60*time.Second, (*Release).ended)
		detail := r.stage("staging").Detail
		if r.State != Failed {
			t.Fatalf("release %s of %s of quarantined content %s; want failed", r.Name, r.Version, r.State)
		}
		for _, want := range []string{"quarantined", "500s on checkout", dep, "alice"} {
			if !strings.Contains(detail, want) {
				t.Errorf("release %s of %s failed with %q; want it to say %q", r.Name, r.Version, detail, want)
			}
		}
	}
	after, err := o.Deployments(ctx, "orders", "staging")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("the refused releases made %d deployments; want none", len(after)-len(before))
	}
}

// TestSwapExpectsItsDeployment: a forced deploy that lands on a stage's
// source slot after the stage checked it (abandoning the release, so its
// hold no longer refuses the stage's own swap) is not swapped into the
// target by the release it abandoned. Two guards hold it: abandoning
// cancels the stage's context before the deploy lands, and the swap
// expects the release's deployment; this test sees the first one work.
func TestSwapExpectsItsDeployment(t *testing.T) {
	te := newTestEngine(t)
	ctx := context.Background()
	o := te.Engine.ops
	if _, err := te.ApplyPipeline(ctx, admin, []byte(`name: orders-swap
artifact: {feed: orders}
stages:
  - name: production
    deploy: {app: orders, slot: staging}
    swap: {app: orders, slot: staging, target: production}
`)); err != nil {
		t.Fatal(err)
	}
	pkg := nodePackage(t)
	var forced string
	landed := make(chan struct{})
	te.Engine.beforeSwap = func() {
		defer close(landed)
		res, err := o.Deploy(ctx, ops.DeployRequest{App: "orders", Slot: "staging", Actor: "bob", Package: bytes.NewReader(pkg), Force: true})
		if err != nil {
			t.Errorf("the forced deploy: %v", err)
			return
		}
		forced = res.Deployment.ID
	}
	if _, _, err := te.PushArtifact(ctx, ci, hotswap.Artifact{Feed: "orders", Version: "3.0.0"}, bytes.NewReader(pkg)); err != nil {
		t.Fatal(err)
	}
	r, err := te.CreateRelease(ctx, ci, "orders-swap", "3.0.0")
	if err != nil {
		t.Fatal(err)
	}
	r = waitRelease(t, te.Engine, r.ID, 60*time.Second, (*Release).ended)
	select {
	case <-landed:
	case <-time.After(60 * time.Second):
		t.Fatal("the stage never reached its swap")
	}
	if forced == "" {
		t.Fatalf("the forced deploy did not land; release %s (%s): %s", r.State, r.Detail, r.stage("production").Detail)
	}
	if r.State == Succeeded {
		t.Errorf("release %s after a forced deploy abandoned it: %s", r.State, r.stage("production").Detail)
	}
	prod, err := o.SlotDeployment(ctx, "orders", hotswap.ProductionSlot)
	if err != nil {
		t.Fatal(err)
	}
	if prod == forced {
		t.Errorf("production serves %s, the forced deploy the abandoned release swapped in", forced)
	}
	if staging, _ := o.SlotDeployment(ctx, "orders", "staging"); staging != forced {
		t.Errorf("staging serves %s, want the forced deploy %s left where it landed", staging, forced)
	}
}
