package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestReleaseWebhookAndMetrics: a pipeline's webhook hears about the
// release and its stages, and /metrics exports the slot's request counts.
func TestReleaseWebhookAndMetrics(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var events []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ Event, Stage, State string }
		json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		events = append(events, ev.Event+":"+ev.Stage+":"+ev.State)
		mu.Unlock()
	}))
	defer hook.Close()
	s := startServerWith(t, "", func(m *Main) { m.Config.ReleaseTick = 20 * time.Millisecond })
	s.must(201, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	s.must(201, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	def := "name: hooked\nartifact: {feed: orders}\nnotify: {webhook: " + hook.URL + "}\nstages:\n  - name: staging\n    deploy: {app: orders, slot: staging}\n"
	s.must(201, "POST", "/api/v1/pipelines", []byte(def), nil)
	s.pushArtifact("orders", "1.0.0", "main")
	var r struct{ ID string }
	s.must(201, "POST", "/api/v1/releases", map[string]string{"pipeline": "hooked"}, &r)
	s.waitRelease(r.ID, "succeeded", releaseIs("succeeded"))
	want := []string{"release::created", "stage:staging:queued", "stage:staging:running", "stage:staging:succeeded", "release::succeeded"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := strings.Join(events, " ")
		mu.Unlock()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(got, w)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook events = %s, want all of %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}

	for range 3 {
		s.fn("GET", "orders-staging.localhost", "/api/status/503", nil, nil)
		s.fn("GET", "orders-staging.localhost", "/api/whoami", nil, nil)
	}
	resp, err := http.Get(s.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range []string{`hotswap_requests_total{app="orders",code_class="5xx"`, `hotswap_request_duration_seconds_bucket{app="orders"`, `slot="staging"`} {
		if !bytes.Contains(body, []byte(w)) {
			t.Errorf("/metrics lacks %s", w)
		}
	}
}

// TestReleaseSurvivesCrashMidDeploy kills the server (SIGKILL) while a
// release's stage is deploying; after a restart the deploy is finished by a
// new attempt and the release goes on to wait for approval.
func TestReleaseSurvivesCrashMidDeploy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startProc(t, dir)
	s := p.server(t, dir)
	s.must(201, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	s.must(201, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	s.createUser("qa-lead", "approver")
	s.createUser("ci", "deployer")
	s.must(201, "POST", "/api/v1/pipelines", []byte(pipelineYAML(pipelineOpts{})), nil)
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()

	p = startProc(t, dir, "HOTSWAP_TEST_CRASH_AT=activate.ready")
	s = p.server(t, dir)
	ids := s.pushArtifact("orders", "1.0.0", "main")
	if len(ids) != 1 {
		t.Fatalf("push created %d releases", len(ids))
	}
	p.cmd.Wait() // killed at activate.ready, during the staging deploy
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("server was not killed: %v", p.cmd.ProcessState)
	}
	p = startProc(t, dir)
	s = p.server(t, dir)
	r := s.waitRelease(ids[0], "waiting for approval", stageIs("production", "waiting for approval"))
	_, _, dep := r.stage("staging")
	if got := s.whoami("orders-staging.localhost").Deployment; got != dep || dep == "" {
		t.Errorf("staging serves %s, want the release's deployment %q", got, dep)
	}
	if !strings.Contains(r.log(), "deploying") {
		t.Errorf("log:\n%s", r.log())
	}
}
