package ops

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/hotswap/hotswap"
)

// TestQuarantineRefusesSameContent: once a deployment is quarantined, a
// deploy of the same zip, or of its digest, is refused with the reason, who
// and when; with Force it passes; lifting the quarantine lets it through.
func TestQuarantineRefusesSameContent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := testService(t, 0)
	if _, err := s.CreateApp(ctx, "t", "shop"); err != nil {
		t.Fatal(err)
	}
	zip := forwardPackage(t)
	first, err := s.Deploy(ctx, DeployRequest{App: "shop", Slot: "production", Actor: "t", Package: bytes.NewReader(zip)})
	if err != nil {
		t.Fatal(err)
	}
	q, err := s.QuarantineDeployment(ctx, "alice", "shop", first.Deployment.ID, "500s on checkout")
	if err != nil {
		t.Fatalf("QuarantineDeployment: %v", err)
	}
	if q.Digest != first.Deployment.Digest || q.Actor != "alice" {
		t.Errorf("quarantine = %+v; want digest %s by alice", q, first.Deployment.Digest)
	}
	if _, err := s.QuarantineDeployment(ctx, "alice", "shop", first.Deployment.ID, "again"); hotswap.ErrorKind(err) != hotswap.Conflict {
		t.Errorf("quarantining twice = %v; want Conflict", err)
	}

	for name, req := range map[string]DeployRequest{
		"zip":    {App: "shop", Slot: "production", Actor: "bob", Package: bytes.NewReader(zip)},
		"digest": {App: "shop", Slot: "production", Actor: "bob", Digest: first.Deployment.Digest},
	} {
		_, err := s.Deploy(ctx, req)
		if hotswap.ErrorKind(err) != hotswap.FailedPrecondition {
			t.Fatalf("deploy by %s of quarantined content = %v; want FailedPrecondition", name, err)
		}
		msg := hotswap.ErrorMessage(err)
		for _, want := range []string{"quarantined", "500s on checkout", "alice", first.Deployment.ID} {
			if !strings.Contains(msg, want) {
				t.Errorf("deploy by %s refused with %q; want it to say %q", name, msg, want)
			}
		}
	}
	hist, err := s.History(ctx, "shop", "")
	if err != nil {
		t.Fatal(err)
	}
	var marked int
	for _, d := range hist {
		if d.Quarantine != nil {
			marked++
			if d.ID != first.Deployment.ID {
				t.Errorf("History marks %s quarantined; want only %s", d.ID, first.Deployment.ID)
			}
		}
	}
	if marked != 1 {
		t.Errorf("History marks %d deployments quarantined; want 1", marked)
	}

	if _, err := s.Deploy(ctx, DeployRequest{App: "shop", Slot: "production", Actor: "bob", Package: bytes.NewReader(zip), Force: true}); err != nil {
		t.Fatalf("forced deploy of quarantined content: %v", err)
	}
	if err := s.LiftQuarantine(ctx, "alice", "shop", first.Deployment.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deploy(ctx, DeployRequest{App: "shop", Slot: "production", Actor: "bob", Digest: first.Deployment.Digest}); err != nil {
		t.Fatalf("deploy after the quarantine was lifted: %v", err)
	}
	acts, err := s.store.ListActivity(ctx, "shop", 0)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, a := range acts {
		if strings.Contains(a.Action, "quarantine") {
			seen = append(seen, a.Action)
		}
	}
	if len(seen) != 2 {
		t.Errorf("activity has quarantine entries %q; want a quarantine and a lift", seen)
	}
}
