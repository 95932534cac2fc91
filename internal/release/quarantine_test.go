package release

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
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
