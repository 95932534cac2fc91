package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// as returns a client of the same server acting with another token.
func (s *server) as(token string) *server {
	c := *s
	c.token = token
	return &c
}

func (s *server) createUser(name, role string) string {
	s.t.Helper()
	var u struct{ Token string }
	s.must(201, "POST", "/api/v1/users", map[string]string{"name": name, "role": role}, &u)
	return u.Token
}

type releaseJSON struct {
	ID, Name, State, Detail, Version string
	Holds                            []string
	Stages                           []struct {
		Name, State, Detail, DeploymentID string
		Attempt                           int
		Log                               []struct{ Text string }
	}
}

func (r releaseJSON) stage(name string) (state, detail, dep string) {
	for _, st := range r.Stages {
		if st.Name == name {
			return st.State, st.Detail, st.DeploymentID
		}
	}
	return "", "", ""
}

func (r releaseJSON) log() string {
	var b strings.Builder
	for _, st := range r.Stages {
		for _, l := range st.Log {
			fmt.Fprintf(&b, "%s: %s\n", st.Name, l.Text)
		}
	}
	return b.String()
}

func (s *server) release(id string) releaseJSON {
	s.t.Helper()
	var r releaseJSON
	s.must(200, "GET", "/api/v1/releases/"+id, nil, &r)
	return r
}

// waitRelease polls a release until cond holds (20s at most).
func (s *server) waitRelease(id, what string, cond func(releaseJSON) bool) releaseJSON {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := s.release(id)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("release %s: not %s after 20s: state %s %s\n%s", r.Name, what, r.State, r.Detail, r.log())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func stageIs(stage, state string) func(releaseJSON) bool {
	return func(r releaseJSON) bool { st, _, _ := r.stage(stage); return st == state }
}

func releaseIs(state string) func(releaseJSON) bool {
	return func(r releaseJSON) bool { return r.State == state }
}

// pushArtifact pushes the envapp package as a new version; it returns the
// releases the push created.
func (s *server) pushArtifact(feed, version, branch string) []string {
	s.t.Helper()
	var res struct {
		Releases []struct{ ID string }
	}
	s.must(201, "POST", "/api/v1/feeds/"+feed+"/artifacts?version="+version+"&branch="+branch+"&commit=c0ffee", zipDir(s.t, examplePackage(s.t, "envapp")), &res)
	var ids []string
	for _, r := range res.Releases {
		ids = append(ids, r.ID)
	}
	return ids
}

type pipelineOpts struct {
	approvalTimeout string
	gatePath        string
	gateTimeout     string
	metricGate      string
	checkPath       string
	queue           string
	branches        string
}

func pipelineYAML(o pipelineOpts) string {
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	return fmt.Sprintf(`name: orders-release
artifact: {feed: orders}
trigger: {continuous: true, branches: %s}
stages:
  - name: staging
    deploy: {app: orders, slot: staging}
    checks:
      - http: {path: %s, expect: [200]}
        retries: 0
    queue: %s
  - name: production
    after: [staging]
    approval: {approvers: [qa-lead, ci], required: 1, requesterCanApprove: false, timeout: %s}
    gates:
      - http: {app: orders, slot: staging, path: %s, expect: [200]}
        delay: 0s
        every: 100ms
        minSuccess: 300ms
        timeout: %s
      - metric: {app: orders, slot: staging, %s, window: 5m}
        every: 100ms
        timeout: %s
    swap: {app: orders, slot: staging, target: production}
    queue: %s
`, def(o.branches, "[main]"), def(o.checkPath, "/api/whoami"), def(o.queue, "sequential"), def(o.approvalTimeout, "72h"),
		def(o.gatePath, "/api/whoami"), def(o.gateTimeout, "30m"), def(o.metricGate, "maxErrorRate: 0.01, maxP95: 500ms"), def(o.gateTimeout, "30m"), def(o.queue, "sequential"))
}

// releaseServer starts a server with an orders app (production running a
// first build), users ci (deployer) and qa-lead (approver), and the
// pipeline.
func releaseServer(t *testing.T, dir string, o pipelineOpts) (s, ci, qa *server, prod0 string) {
	t.Helper()
	s = startServerWith(t, dir, func(m *Main) { m.Config.ReleaseTick = 20 * time.Millisecond })
	s.must(201, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	s.must(201, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	prod0 = s.deploy("orders", "production", zipDir(t, examplePackage(t, "envapp")))
	ci = s.as(s.createUser("ci", "deployer"))
	qa = s.as(s.createUser("qa-lead", "approver"))
	// An admin applies it: ci is among its approvers, which a deployer may
	// not make itself.
	s.must(201, "POST", "/api/v1/pipelines", []byte(pipelineYAML(o)), nil)
	return s, ci, qa, prod0
}

// TestReleaseEndToEnd walks the article's release: a build pushed on main
// creates a release, deploys to staging, passes its check, asks for
// approval, refuses the requester's approval, takes the approver's, passes
// its gate, swaps, and production serves the new build.
func TestReleaseEndToEnd(t *testing.T) {
	t.Parallel()
	s, ci, qa, prod0 := releaseServer(t, "", pipelineOpts{})
	ids := ci.pushArtifact("orders", "1.0.1", "main")
	if len(ids) != 1 {
		t.Fatalf("push on main created %d releases, want 1", len(ids))
	}
	id := ids[0]
	r := s.waitRelease(id, "waiting for approval", stageIs("production", "waiting for approval"))
	_, _, staged := r.stage("staging")
	if got := s.whoami("orders-staging.localhost").Deployment; got != staged || staged == "" {
		t.Fatalf("staging serves %s, want the release's deployment %q", got, staged)
	}
	if !strings.Contains(r.log(), "check 1: GET orders/staging/api/whoami answered 200") {
		t.Errorf("no passed check in the log:\n%s", r.log())
	}
	if got := s.whoami("orders.localhost").Deployment; got != prod0 {
		t.Fatalf("production changed before approval: %s", got)
	}
	// The requester may not approve, nor may a user who is not an approver.
	var e struct{ Error struct{ Message string } }
	if code := ci.call("POST", "/api/v1/releases/"+id+"/approve", map[string]string{"stage": "production"}, &e); code != 403 || !strings.Contains(e.Error.Message, "requested") {
		t.Errorf("requester approval = %d %q, want 403", code, e.Error.Message)
	}
	if code := s.call("POST", "/api/v1/releases/"+id+"/approve", map[string]string{"stage": "production"}, &e); code != 403 {
		t.Errorf("admin (not an approver) approval = %d, want 403", code)
	}
	if code := qa.call("POST", "/api/v1/apps/orders/slots/staging/deploy", zipDir(t, examplePackage(t, "envapp")), nil); code != 403 {
		t.Errorf("an approver deploying = %d, want 403", code)
	}
	qa.must(200, "POST", "/api/v1/releases/"+id+"/approve", map[string]string{"stage": "production", "comment": "looks good"}, nil)
	r = s.waitRelease(id, "succeeded", releaseIs("succeeded"))
	if !strings.Contains(r.log(), "gate 1 (http orders/staging /api/whoami) passed") || !strings.Contains(r.log(), "gate 2 (metric orders/staging) passed") {
		t.Errorf("no passed gate in the log:\n%s", r.log())
	}
	if got := s.whoami("orders.localhost").Deployment; got != staged {
		t.Errorf("production serves %s, want the new build %s", got, staged)
	}
	if got := s.whoami("orders-staging.localhost").Deployment; got != prod0 {
		t.Errorf("staging serves %s, want the old production %s (so a swap back reverts)", got, prod0)
	}
	if len(r.Holds) != 0 {
		t.Errorf("a finished release still holds %v", r.Holds)
	}
}

// TestReleaseOutcomes: rejection, approval timeout, a failing gate and a
// failing check each end the release, and production is untouched.
func TestReleaseOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		opts       pipelineOpts
		act        func(qa *server, id string)
		wantState  string
		wantStage  string // production or staging
		wantDetail string
	}{
		{"rejected", pipelineOpts{}, func(qa *server, id string) {
			qa.must(200, "POST", "/api/v1/releases/"+id+"/reject", map[string]string{"stage": "production", "comment": "not today"}, nil)
		}, "rejected", "production", "rejected by qa-lead"},
		{"approval timeout", pipelineOpts{approvalTimeout: "1s"}, nil, "rejected", "production", "approval timed out"},
		{"failing gate", pipelineOpts{gatePath: "/api/env/NOPE", gateTimeout: "1s"}, func(qa *server, id string) {
			qa.must(200, "POST", "/api/v1/releases/"+id+"/approve", map[string]string{"stage": "production"}, nil)
		}, "failed", "production", "did not pass within 1s: answered 404"},
		{"failing check", pipelineOpts{checkPath: "/api/env/NOPE"}, nil, "failed", "staging", "check 1: GET orders/staging/api/env/NOPE answered 404"},
		{"failing metric gate", pipelineOpts{gateTimeout: "1500ms", metricGate: "maxErrorRate: 0.05"}, func(qa *server, id string) {
			for range 20 {
				qa.fn("GET", "orders-staging.localhost", "/api/status/500", nil, nil)
			}
			qa.must(200, "POST", "/api/v1/releases/"+id+"/approve", map[string]string{"stage": "production"}, nil)
		}, "failed", "production", "gate 2 (metric orders/staging) did not pass within 1.5s: error rate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, ci, qa, prod0 := releaseServer(t, "", tc.opts)
			id := ci.pushArtifact("orders", "2.0.0", "main")[0]
			if tc.act != nil {
				s.waitRelease(id, "waiting for approval", stageIs("production", "waiting for approval"))
				tc.act(qa, id)
			}
			r := s.waitRelease(id, tc.wantState, releaseIs(tc.wantState))
			state, detail, _ := r.stage(tc.wantStage)
			if !strings.Contains(detail, tc.wantDetail) {
				t.Errorf("stage %s is %s %q, want detail %q\n%s", tc.wantStage, state, detail, tc.wantDetail, r.log())
			}
			if got := s.whoami("orders.localhost").Deployment; got != prod0 {
				t.Errorf("production serves %s, want it untouched (%s)", got, prod0)
			}
		})
	}
}

// TestReleaseBranchFilter: pushes on branches the filter excludes create no
// release; a manual release still can.
func TestReleaseBranchFilter(t *testing.T) {
	t.Parallel()
	s, ci, _, _ := releaseServer(t, "", pipelineOpts{branches: `["main", "release/*", "!release/old*"]`})
	for _, tc := range []struct {
		branch string
		want   int
	}{{"main", 1}, {"feature-x", 0}, {"release/2.0", 1}, {"release/old-1", 0}} {
		t.Run(tc.branch, func(t *testing.T) {
			ids := ci.pushArtifact("orders", "v-"+strings.ReplaceAll(tc.branch, "/", "-"), tc.branch)
			if len(ids) != tc.want {
				t.Errorf("push on %s created %d releases, want %d", tc.branch, len(ids), tc.want)
			}
			for _, id := range ids {
				ci.must(200, "POST", "/api/v1/releases/"+id+"/abandon", nil, nil)
			}
		})
	}
	var r struct{ Version, Reason string }
	ci.must(201, "POST", "/api/v1/releases", map[string]string{"pipeline": "orders-release", "version": "v-feature-x"}, &r)
	if r.Version != "v-feature-x" || r.Reason != "manual" {
		t.Errorf("manual release = %+v", r)
	}
	_ = s
}

// TestReleaseQueue pushes two builds back to back. Sequential: the first
// release's staging deployment is not overwritten while it waits; the second
// goes on once the first swapped. Latest: the first is cancelled, recorded.
func TestReleaseQueue(t *testing.T) {
	t.Parallel()
	t.Run("sequential", func(t *testing.T) {
		s, ci, qa, _ := releaseServer(t, "", pipelineOpts{queue: "sequential"})
		r1 := ci.pushArtifact("orders", "1.0.0", "main")[0]
		first := s.waitRelease(r1, "waiting for approval", stageIs("production", "waiting for approval"))
		_, _, dep1 := first.stage("staging")
		r2 := ci.pushArtifact("orders", "1.1.0", "main")[0]
		second := s.waitRelease(r2, "queued behind the first", func(r releaseJSON) bool {
			st, detail, _ := r.stage("staging")
			return st == "queued" && strings.Contains(detail, "held by release orders-release-1")
		})
		time.Sleep(300 * time.Millisecond)
		if got := s.whoami("orders-staging.localhost").Deployment; got != dep1 {
			t.Fatalf("staging serves %s while release 1 waits, want its deployment %s (overwritten!)", got, dep1)
		}
		qa.must(200, "POST", "/api/v1/releases/"+r1+"/approve", map[string]string{"stage": "production"}, nil)
		s.waitRelease(r1, "succeeded", releaseIs("succeeded"))
		second = s.waitRelease(r2, "waiting for approval", stageIs("production", "waiting for approval"))
		_, _, dep2 := second.stage("staging")
		if got := s.whoami("orders.localhost").Deployment; got != dep1 {
			t.Errorf("production serves %s, want release 1's %s", got, dep1)
		}
		if got := s.whoami("orders-staging.localhost").Deployment; got != dep2 {
			t.Errorf("staging serves %s, want release 2's %s", got, dep2)
		}
	})
	t.Run("latest", func(t *testing.T) {
		s, ci, _, _ := releaseServer(t, "", pipelineOpts{queue: "latest"})
		r1 := ci.pushArtifact("orders", "1.0.0", "main")[0]
		s.waitRelease(r1, "waiting for approval", stageIs("production", "waiting for approval"))
		r2 := ci.pushArtifact("orders", "1.1.0", "main")[0]
		first := s.waitRelease(r1, "cancelled", releaseIs("cancelled"))
		if !strings.Contains(first.Detail, "cancelled by newer release orders-release-2") {
			t.Errorf("release 1 detail = %q, want it to name the newer release", first.Detail)
		}
		second := s.waitRelease(r2, "waiting for approval", stageIs("production", "waiting for approval"))
		_, _, dep2 := second.stage("staging")
		if got := s.whoami("orders-staging.localhost").Deployment; got != dep2 {
			t.Errorf("staging serves %s, want release 2's %s", got, dep2)
		}
		if !strings.Contains(second.log(), "cancelled older release orders-release-1") {
			t.Errorf("release 2's log does not record the cancellation:\n%s", second.log())
		}
	})
}

// TestReleaseRestart restarts the server with a release in each waiting
// state; it continues correctly.
func TestReleaseRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, ci, qa, _ := releaseServer(t, dir, pipelineOpts{gateTimeout: "30m"})
	r1 := ci.pushArtifact("orders", "1.0.0", "main")[0]
	s.waitRelease(r1, "waiting for approval", stageIs("production", "waiting for approval"))
	r2 := ci.pushArtifact("orders", "1.1.0", "main")[0]
	s.waitRelease(r2, "queued", stageIs("staging", "queued"))

	restart := func() *server {
		t.Helper()
		s.main.Close()
		n := startServerWith(t, dir, func(m *Main) { m.Config.ReleaseTick = 20 * time.Millisecond })
		return n
	}
	s = restart()
	qa = s.as(qa.token)
	// A pending approval stays pending; the queued release stays queued.
	if st, _, _ := s.release(r1).stage("production"); st != "waiting for approval" {
		t.Fatalf("after restart release 1 production is %s", st)
	}
	if st, _, _ := s.release(r2).stage("staging"); st != "queued" {
		t.Fatalf("after restart release 2 staging is %s", st)
	}
	qa.must(200, "POST", "/api/v1/releases/"+r1+"/approve", map[string]string{"stage": "production"}, nil)
	s.waitRelease(r1, "succeeded", releaseIs("succeeded"))
	s.waitRelease(r2, "waiting for approval", stageIs("production", "waiting for approval"))
	qa.must(200, "POST", "/api/v1/releases/"+r2+"/approve", map[string]string{"stage": "production"}, nil)
	// Restart while the gate is being sampled: its timers continue.
	s.waitRelease(r2, "waiting for gates", stageIs("production", "waiting for gates"))
	s = restart()
	r := s.waitRelease(r2, "succeeded", releaseIs("succeeded"))
	_, _, dep2 := r.stage("staging")
	if got := s.whoami("orders.localhost").Deployment; got != dep2 {
		t.Errorf("production serves %s, want release 2's %s", got, dep2)
	}
	_ = http.StatusOK
}
