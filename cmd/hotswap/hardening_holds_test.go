package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// holdServer is releaseServer with the pipeline applied by the admin (it
// names ci, the requester, an approver).
func holdServer(t *testing.T) (s, ci, qa *server, prod0 string) {
	t.Helper()
	s = startServerWith(t, "", func(m *Main) { m.Config.ReleaseTick = 20 * time.Millisecond })
	s.must(201, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	s.must(201, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	prod0 = s.deploy("orders", "production", zipDir(t, examplePackage(t, "envapp")))
	ci = s.as(s.createUser("ci", "deployer"))
	qa = s.as(s.createUser("qa-lead", "approver"))
	s.must(201, "POST", "/api/v1/pipelines", []byte(pipelineYAML(pipelineOpts{})), nil)
	return s, ci, qa, prod0
}

// errorJSON is an API error answer.
type errorJSON struct{ Error struct{ Message string } }

// TestHeldSlotRefusesDeleteAndSettings: while a release waits with staging
// held, deleting the slot or the app, or changing the slot's settings, is
// refused naming the release (recreating the slot, or settings travelling
// into production with the approved build, would make it fail or lie); the
// release goes on and swaps once approved.
func TestHeldSlotRefusesDeleteAndSettings(t *testing.T) {
	t.Parallel()
	s, ci, qa, _ := holdServer(t)
	id := ci.pushArtifact("orders", "1.0.1", "main")[0]
	r := s.waitRelease(id, "waiting for approval", stageIs("production", "waiting for approval"))
	_, _, staged := r.stage("staging")

	for _, tc := range []struct {
		name, method, path string
		body               any
		as                 *server
	}{
		{"settings change", "PATCH", "/api/v1/apps/orders/slots/staging/settings", map[string]any{"set": []map[string]string{{"name": "FEATURE", "value": "on"}}}, ci},
		{"settings unset", "PATCH", "/api/v1/apps/orders/slots/staging/settings", map[string]any{"unset": []string{"FEATURE"}}, ci},
		{"slot delete", "DELETE", "/api/v1/apps/orders/slots/staging", nil, ci},
		{"app delete", "DELETE", "/api/v1/apps/orders", nil, s},
	} {
		var e errorJSON
		if code := tc.as.call(tc.method, tc.path, tc.body, &e); code != http.StatusConflict || !strings.Contains(e.Error.Message, "held by release "+r.Name) || !strings.Contains(e.Error.Message, "force") {
			t.Errorf("%s on the held staging = %d %q, want 409 naming %s and force", tc.name, code, e.Error.Message, r.Name)
		}
	}
	var e errorJSON
	if code := ci.call("DELETE", "/api/v1/apps/orders/slots/staging?force=maybe", nil, &e); code != http.StatusBadRequest || !strings.Contains(e.Error.Message, "force") {
		t.Errorf("delete with force=maybe = %d %q, want 400 naming force", code, e.Error.Message)
	}
	if got := s.whoami("orders-staging.localhost").Deployment; got != staged {
		t.Errorf("staging serves %s, want the release's %s", got, staged)
	}
	var settings struct{ Settings []struct{ Name string } }
	s.must(200, "GET", "/api/v1/apps/orders/slots/staging/settings", nil, &settings)
	for _, st := range settings.Settings {
		if st.Name == "FEATURE" {
			t.Errorf("the refused settings change set FEATURE on the held staging")
		}
	}
	if r = s.release(id); r.State == "abandoned" {
		t.Fatalf("a refused action abandoned the release: %s", r.Detail)
	}
	qa.must(200, "POST", "/api/v1/releases/"+id+"/approve", map[string]string{"stage": "production"}, nil)
	s.waitRelease(id, "succeeded", releaseIs("succeeded"))
	if got := s.whoami("orders.localhost").Deployment; got != staged {
		t.Errorf("production serves %s after approval, want the release's build %s", got, staged)
	}
}

// TestForcedSlotChangesAbandonRelease: ?force=true changes settings on (or
// deletes) a held slot, and abandons the release visibly, naming who forced
// what.
func TestForcedSlotChangesAbandonRelease(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, method, path string
		body               any
		want               int
		says               string
	}{
		{"settings", "PATCH", "/api/v1/apps/orders/slots/staging/settings?force=true", map[string]any{"set": []map[string]string{{"name": "FEATURE", "value": "on"}}}, 200, "ci forced a settings change to orders/staging"},
		{"delete", "DELETE", "/api/v1/apps/orders/slots/staging?force=true", nil, 204, "ci forced a delete to orders/staging"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, ci, _, _ := holdServer(t)
			id := ci.pushArtifact("orders", "1.0.1", "main")[0]
			s.waitRelease(id, "waiting for approval", stageIs("production", "waiting for approval"))
			ci.must(tc.want, tc.method, tc.path, tc.body, nil)
			r := s.waitRelease(id, "abandoned", releaseIs("abandoned"))
			if !strings.Contains(r.Detail, tc.says) || !strings.Contains(r.log(), tc.says) {
				t.Errorf("release detail %q / log do not say %q:\n%s", r.Detail, tc.says, r.log())
			}
		})
	}
}

// TestForcedActionRefusedKeepsRelease: a forced action that is refused
// anyway (here because another operation runs on the app) leaves the
// release it would have abandoned waiting.
func TestForcedActionRefusedKeepsRelease(t *testing.T) {
	t.Parallel()
	s, ci, _, _ := holdServer(t)
	id := ci.pushArtifact("orders", "1.0.1", "main")[0]
	s.waitRelease(id, "waiting for approval", stageIs("production", "waiting for approval"))

	// A manual swap preview of another slot keeps an operation running.
	pkg := zipDir(t, examplePackage(t, "envapp"))
	s.must(201, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "dev"}, nil)
	s.deploy("orders", "dev", pkg)
	s.must(200, "POST", "/api/v1/apps/orders/swap", map[string]any{"slot": "dev", "preview": true}, nil)

	for _, tc := range []struct {
		name, method, path string
		body               any
	}{
		{"deploy", "POST", "/api/v1/apps/orders/slots/staging/deploy?force=true", pkg},
		{"swap", "POST", "/api/v1/apps/orders/swap?force=true", map[string]string{"slot": "staging"}},
		{"settings", "PATCH", "/api/v1/apps/orders/slots/staging/settings?force=true", map[string]any{"set": []map[string]string{{"name": "FEATURE", "value": "on"}}}},
		{"slot delete", "DELETE", "/api/v1/apps/orders/slots/staging?force=true", nil},
	} {
		var e errorJSON
		if code := ci.call(tc.method, tc.path, tc.body, &e); code != http.StatusConflict {
			t.Errorf("forced %s while an operation runs = %d %q, want 409", tc.name, code, e.Error.Message)
		}
		if r := s.release(id); r.State == "abandoned" {
			t.Fatalf("a forced %s refused with 409 abandoned the release: %s", tc.name, r.Detail)
		}
	}
	s.must(200, "POST", "/api/v1/apps/orders/swap/cancel", nil, nil)
	if st, _, _ := s.release(id).stage("production"); st != "waiting for approval" {
		t.Errorf("production stage = %s after the refused forced actions, want waiting for approval", st)
	}
}

// previewPipeline swaps staging into production with a preview whose check
// keeps failing for about 20 s: the release's preview stays open meanwhile.
const previewPipeline = `name: orders-preview
artifact: {feed: orders}
trigger: {continuous: true, branches: [main]}
stages:
  - name: production
    deploy: {app: orders, slot: staging}
    swap: {app: orders, slot: staging, target: production, preview: true}
    checks:
      - http: {path: /api/status/503, expect: [200]}
        retries: 100
        interval: 200ms
`

// TestHeldPreviewRefusesCompleteAndCancel: while a release's swap preview
// runs its checks, a manual complete (which would put the unchecked build
// into production) or cancel is refused naming the release; a forced
// complete abandons the release visibly.
func TestHeldPreviewRefusesCompleteAndCancel(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, "", func(m *Main) { m.Config.ReleaseTick = 20 * time.Millisecond })
	s.must(201, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	s.must(201, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	prod0 := s.deploy("orders", "production", zipDir(t, examplePackage(t, "envapp")))
	ci := s.as(s.createUser("ci", "deployer"))
	s.must(201, "POST", "/api/v1/pipelines", []byte(previewPipeline), nil)
	id := ci.pushArtifact("orders", "1.0.1", "main")[0]

	deadline := time.Now().Add(20 * time.Second)
	for {
		var slot struct{ State string }
		s.must(200, "GET", "/api/v1/apps/orders/slots/staging", nil, &slot)
		if slot.State == "preview" {
			break
		}
		if time.Now().After(deadline) {
			r := s.release(id)
			t.Fatalf("staging not in preview after 20s: release %s %s\n%s", r.State, r.Detail, r.log())
		}
		time.Sleep(25 * time.Millisecond)
	}
	r := s.release(id)
	for _, action := range []string{"complete", "cancel"} {
		var e errorJSON
		if code := ci.call("POST", "/api/v1/apps/orders/swap/"+action, nil, &e); code != http.StatusConflict || !strings.Contains(e.Error.Message, "held by release "+r.Name) {
			t.Errorf("manual %s of the release's preview = %d %q, want 409 naming %s", action, code, e.Error.Message, r.Name)
		}
	}
	if got := s.whoami("orders.localhost").Deployment; got != prod0 {
		t.Fatalf("production serves %s while the release's checks run, want %s", got, prod0)
	}
	ci.must(200, "POST", "/api/v1/apps/orders/swap/complete?force=true", nil, nil)
	r = s.waitRelease(id, "abandoned", releaseIs("abandoned"))
	if !strings.Contains(r.Detail, "ci forced a swap to orders/staging") {
		t.Errorf("release detail %q does not say ci forced the swap", r.Detail)
	}
}

// TestHeldWhileReleaseDeploys: the release holds its slot from the moment
// its deploy starts, not once it is recorded, so no manual swap slips the
// unapproved build into production in between; a deploy that fails lets
// go of it with the release.
func TestHeldWhileReleaseDeploys(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, "", func(m *Main) {
		m.Config.ReleaseTick = 20 * time.Millisecond
		m.Config.StartTimeout = 4 * time.Second
	})
	s.must(201, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	s.must(201, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	s.deploy("orders", "production", zipDir(t, examplePackage(t, "envapp")))
	// Staging's handlers never become ready: the release's deploy there
	// runs until the start timeout.
	s.must(200, "PATCH", "/api/v1/apps/orders/slots/staging/settings", map[string]any{"set": []map[string]any{{"name": "ENVAPP_MODE", "value": "sleep", "slotSetting": true}}}, nil)
	ci := s.as(s.createUser("ci", "deployer"))
	s.as(s.createUser("qa-lead", "approver"))
	s.must(201, "POST", "/api/v1/pipelines", []byte(pipelineYAML(pipelineOpts{})), nil)
	id := ci.pushArtifact("orders", "1.0.1", "main")[0]

	deadline := time.Now().Add(20 * time.Second)
	for {
		var slot struct {
			State  string
			HeldBy *struct{ Release string }
		}
		s.must(200, "GET", "/api/v1/apps/orders/slots/staging", nil, &slot)
		r := s.release(id)
		if slot.HeldBy != nil {
			if slot.HeldBy.Release != r.Name {
				t.Errorf("staging heldBy %s, want %s", slot.HeldBy.Release, r.Name)
			}
			if !strings.Contains(r.log(), "deploying") || strings.Contains(r.log(), "deployed ") {
				t.Errorf("staging held, but the release log does not show its deploy running:\n%s", r.log())
			}
			break
		}
		if strings.Contains(r.log(), "deployed ") || r.State == "failed" || time.Now().After(deadline) {
			t.Fatalf("staging was not held while the release deployed there: release %s %s\n%s", r.State, r.Detail, r.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := s.waitRelease(id, "failed", releaseIs("failed"))
	var slot struct{ HeldBy *struct{ Release string } }
	s.must(200, "GET", "/api/v1/apps/orders/slots/staging", nil, &slot)
	if slot.HeldBy != nil {
		t.Errorf("staging still held by %s after release %s failed its deploy", slot.HeldBy.Release, r.Name)
	}
}
