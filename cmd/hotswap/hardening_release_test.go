package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReleaseSafetyWalkthrough follows the README with auto swap left on
// for staging: the release's staging deploy does not swap the unapproved
// build into production; while the release waits, a manual deploy or swap
// onto its slot is refused naming it; an approver reads no keys; a deployer
// cannot make itself the approver; the approval is in the activity log; the
// release swaps once approved; and it is still found by its name after the
// pipeline is renamed.
func TestReleaseSafetyWalkthrough(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, "", func(m *Main) { m.Config.ReleaseTick = 20 * time.Millisecond })
	s.must(201, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	s.must(201, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	pkg := zipDir(t, examplePackage(t, "envapp"))
	prod0 := s.deploy("orders", "production", pkg)
	s.must(200, "PUT", "/api/v1/apps/orders/slots/staging/autoswap", map[string]string{"target": "production"}, nil)
	ci := s.as(s.createUser("ci", "deployer"))
	qa := s.as(s.createUser("qa-lead", "approver"))
	def := pipelineYAML(pipelineOpts{})
	// ci is among its approvers: a deployer may not apply that, an admin may.
	var e struct{ Error struct{ Message string } }
	if code := ci.call("POST", "/api/v1/pipelines", []byte(def), &e); code != http.StatusForbidden || !strings.Contains(e.Error.Message, "may not name itself an approver") {
		t.Errorf("a deployer naming itself an approver = %d %q, want 403", code, e.Error.Message)
	}
	s.must(201, "POST", "/api/v1/pipelines", []byte(def), nil)

	ids := ci.pushArtifact("orders", "1.0.1", "main")
	if len(ids) != 1 {
		t.Fatalf("push created %d releases, want 1", len(ids))
	}
	id := ids[0]
	r := s.waitRelease(id, "waiting for approval", stageIs("production", "waiting for approval"))
	_, _, staged := r.stage("staging")

	// 15: no auto swap of the release's build before approval.
	if got := s.whoami("orders.localhost").Deployment; got != prod0 {
		t.Fatalf("production serves %s before approval, want %s: the release deploy auto swapped", got, prod0)
	}
	if !strings.Contains(r.log(), "auto swap of orders/staging into production skipped") {
		t.Errorf("the release log does not say the auto swap was skipped:\n%s", r.log())
	}

	// 16: the held slot refuses a manual deploy and swap, naming the release.
	if code := ci.call("POST", "/api/v1/apps/orders/slots/staging/deploy", pkg, &e); code != http.StatusConflict || !strings.Contains(e.Error.Message, "held by release "+r.Name) {
		t.Errorf("manual deploy onto the held staging = %d %q, want 409 naming %s", code, e.Error.Message, r.Name)
	}
	if code := ci.call("POST", "/api/v1/apps/orders/swap", map[string]string{"slot": "staging"}, &e); code != http.StatusConflict || !strings.Contains(e.Error.Message, "held by release "+r.Name) {
		t.Errorf("manual swap of the held staging = %d %q, want 409 naming %s", code, e.Error.Message, r.Name)
	}

	// 2: an approver gets invoke URLs without keys.
	var slot struct {
		Functions []struct{ Name, InvokeURL string }
		HeldBy    *struct{ Release string }
	}
	qa.must(200, "GET", "/api/v1/apps/orders/slots/staging", nil, &slot)
	if slot.HeldBy == nil || slot.HeldBy.Release != r.Name {
		t.Errorf("staging heldBy = %+v, want %s", slot.HeldBy, r.Name)
	}
	// The check below passes on an empty list: warm must be there first.
	if !slices.ContainsFunc(slot.Functions, func(f struct{ Name, InvokeURL string }) bool { return f.Name == "warm" && f.InvokeURL != "" }) {
		t.Fatalf("an approver sees no function warm with an invoke URL on staging: %+v", slot.Functions)
	}
	for _, f := range slot.Functions {
		if strings.Contains(f.InvokeURL, "code=") {
			t.Errorf("an approver reads %s's key in %s", f.Name, f.InvokeURL)
		}
	}

	// 3: the deployer cannot make itself the approver of its own release.
	selfish := strings.Replace(def, "requesterCanApprove: false", "requesterCanApprove: true", 1)
	if code := ci.call("POST", "/api/v1/pipelines", []byte(selfish), &e); code != http.StatusForbidden || !strings.Contains(e.Error.Message, "admin") {
		t.Errorf("a deployer letting itself approve = %d %q, want 403 naming the admin role", code, e.Error.Message)
	}
	qa.must(200, "POST", "/api/v1/releases/"+id+"/approve", map[string]string{"stage": "production", "comment": "looks good"}, nil)
	var acts struct {
		Activity []struct{ Actor, Action, Slot, Detail, Result string }
	}
	s.must(200, "GET", "/api/v1/apps/orders/activity", nil, &acts)
	found := false
	for _, a := range acts.Activity {
		found = found || a.Action == "release.approve" && a.Actor == "qa-lead" && strings.Contains(a.Detail, r.Name+" stage production") && strings.Contains(a.Detail, "looks good")
	}
	if !found {
		t.Errorf("no approval by qa-lead in the activity log: %+v", acts.Activity)
	}
	s.waitRelease(id, "succeeded", releaseIs("succeeded"))
	if got := s.whoami("orders.localhost").Deployment; got != staged {
		t.Errorf("production serves %s after approval, want the release's build %s", got, staged)
	}

	// 17: the release answers to its name after the pipeline is renamed.
	ci.must(200, "POST", "/api/v1/pipelines/orders-release/rename", map[string]string{"name": "orders-to-prod"}, nil)
	for _, name := range []string{r.Name, "orders-to-prod-1"} {
		var got releaseJSON
		s.must(200, "GET", "/api/v1/releases/"+name, nil, &got)
		if got.ID != id {
			t.Errorf("release %s = %s, want %s", name, got.ID, id)
		}
	}
}

// TestForcedDeployAbandonsRelease: --force deploys onto a held slot and
// abandons the release, which says who forced it, as does the activity log.
func TestForcedDeployAbandonsRelease(t *testing.T) {
	t.Parallel()
	s, ci, _, _ := releaseServer(t, "", pipelineOpts{})
	id := ci.pushArtifact("orders", "1.0.1", "main")[0]
	r := s.waitRelease(id, "waiting for approval", stageIs("production", "waiting for approval"))
	pkg := zipDir(t, examplePackage(t, "envapp"))
	ci.must(200, "POST", "/api/v1/apps/orders/slots/staging/deploy?force=true", pkg, nil)
	r = s.waitRelease(id, "abandoned", releaseIs("abandoned"))
	if !strings.Contains(r.Detail, "ci forced a deploy to orders/staging") || !strings.Contains(r.log(), "ci forced a deploy") {
		t.Errorf("release detail %q / log do not say ci forced it:\n%s", r.Detail, r.log())
	}
	var acts struct {
		Activity []struct{ Actor, Action, Detail string }
	}
	s.must(200, "GET", "/api/v1/apps/orders/activity", nil, &acts)
	found := false
	for _, a := range acts.Activity {
		found = found || a.Action == "release.abandon" && a.Actor == "ci" && strings.Contains(a.Detail, r.Name)
	}
	if !found {
		t.Errorf("no release.abandon by ci in the activity log: %+v", acts.Activity)
	}
}
