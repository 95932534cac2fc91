package httpapi

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/metrics"
	"github.com/hotswap/hotswap/internal/rollout"
)

// newRolloutEnv is newEnv with a rollout engine whose loop does not run:
// the test moves rollouts on with Tick.
func newRolloutEnv(t testing.TB) (*env, *rollout.Engine) {
	t.Helper()
	e := newEnv(t)
	eng, err := rollout.Open(context.Background(), rollout.Config{Store: e.db, Ops: e.ops, Metrics: rollout.Local(metrics.New()), Tick: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{Ops: e.ops, AdminToken: adminToken, Domain: "localhost", Store: e.db, Releases: e.rel, Rollouts: eng}))
	t.Cleanup(func() {
		srv.Close()
		eng.Close()
	})
	e.srv = srv
	return e, eng
}

// stagingServes makes app orders with a staging slot serving the slowstart
// handler (told to listen at once, in both slots).
func (e *env) stagingServes() {
	e.t.Helper()
	e.must(adminToken, 201, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	e.must(adminToken, 201, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	fast := map[string]any{"set": []map[string]any{{"name": "START_DELAY_MS", "value": "0"}}}
	e.must(adminToken, 200, "PATCH", "/api/v1/apps/orders/slots/production/settings", fast, nil)
	e.must(adminToken, 200, "PATCH", "/api/v1/apps/orders/slots/staging/settings", fast, nil)
	e.must(adminToken, 200, "POST", "/api/v1/apps/orders/slots/staging/deploy", slowStartZip(e.t), nil)
}

// TestRolloutsAPI: a progressive swap is started, read, listed, paused,
// resumed and aborted through the API, only with the deploy role; bad
// input is refused with what is wrong and where; another app's rollout is
// not found; promote ends in a real swap.
func TestRolloutsAPI(t *testing.T) {
	e, eng := newRolloutEnv(t)
	e.stagingServes()
	e.must(adminToken, 201, "POST", "/api/v1/apps", map[string]string{"name": "billing"}, nil)
	deployer, approver := e.addUser("ci", "deployer"), e.addUser("qa-lead", "approver")

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, path string
			body               any
			code               int
			msg                string
		}{
			{"bad strategy", "POST", "/api/v1/apps/orders/rollouts", `{"slot":"staging","strategy":"canary:10,x"}`, 400, `share 2, \"x\", is not a number`},
			{"falling shares", "POST", "/api/v1/apps/orders/rollouts", `{"slot":"staging","strategy":"canary:50,25"}`, 400, "does not rise"},
			{"step with a preset", "POST", "/api/v1/apps/orders/rollouts", `{"slot":"staging","strategy":"Canary10Percent5Minutes","step":"2m"}`, 400, "a preset sets its own step duration"},
			{"bad step", "POST", "/api/v1/apps/orders/rollouts", `{"slot":"staging","strategy":"canary:10","step":"soon"}`, 400, `\"step\": \"soon\" is not a duration`},
			{"unknown analysis key", "POST", "/api/v1/apps/orders/rollouts", `{"slot":"staging","strategy":"canary:10","analysis":"maxErrors=1"}`, 400, `unknown key \"maxErrors\"`},
			{"no strategy", "POST", "/api/v1/apps/orders/rollouts", `{"slot":"staging"}`, 400, `\"strategy\" is required`},
			{"no slot", "POST", "/api/v1/apps/orders/rollouts", `{"strategy":"canary:10"}`, 400, `\"slot\" is required`},
			{"unknown field", "POST", "/api/v1/apps/orders/rollouts", `{"slot":"staging","strategy":"canary:10","steps":3}`, 400, `unknown field \"steps\"`},
			{"trailing data", "POST", "/api/v1/apps/orders/rollouts", `{"slot":"staging","strategy":"canary:10"} {}`, 400, "data after the JSON value"},
			{"slot is the target", "POST", "/api/v1/apps/billing/rollouts", `{"slot":"production","target":"production","strategy":"canary:10"}`, 400, "is the target itself"},
			{"missing slot", "POST", "/api/v1/apps/orders/rollouts", `{"slot":"nope","strategy":"canary:10"}`, 404, "nope"},
			{"swap with strategy and preview", "POST", "/api/v1/apps/orders/swap", `{"slot":"staging","strategy":"canary:10","preview":true}`, 400, `\"preview\" and \"strategy\" exclude each other`},
			{"swap with analysis, no strategy", "POST", "/api/v1/apps/orders/swap", `{"slot":"staging","analysis":"minRequests=5"}`, 400, `\"strategy\" is required`},
			{"swap with strategy and force", "POST", "/api/v1/apps/orders/swap?force=true", `{"slot":"staging","strategy":"canary:10"}`, 400, "force=true does not apply"},
			{"bad limit", "GET", "/api/v1/apps/orders/rollouts?limit=0", nil, 400, "limit must be a number from 1 to 1000"},
			{"list of a missing app", "GET", "/api/v1/apps/nope/rollouts", nil, 404, "nope"},
			{"unknown rollout", "GET", "/api/v1/apps/orders/rollouts/ro-nope", nil, 404, `progressive swap \"ro-nope\" of app \"orders\" not found`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, raw := e.call(deployer, tc.method, tc.path, tc.body, nil)
				if code != tc.code || !strings.Contains(raw, tc.msg) {
					t.Errorf("%s %s %v = %d %s, want %d with %q", tc.method, tc.path, tc.body, code, raw, tc.code, tc.msg)
				}
			})
		}
		if code, raw := e.call(approver, "POST", "/api/v1/apps/orders/rollouts", `{"slot":"staging","strategy":"canary:10"}`, nil); code != 403 || !strings.Contains(raw, "deployer or admin") {
			t.Errorf("start as an approver = %d %s, want 403 naming the roles", code, raw)
		}
		var list struct{ Rollouts []hotswap.Rollout }
		e.must(approver, 200, "GET", "/api/v1/apps/orders/rollouts", nil, &list)
		if len(list.Rollouts) != 0 {
			t.Errorf("after refusals, rollouts = %+v, want none", list.Rollouts)
		}
	})

	var ro hotswap.Rollout
	e.must(deployer, 201, "POST", "/api/v1/apps/orders/rollouts",
		`{"slot":"staging","strategy":"canary:10,25,50","step":"2m","analysis":"maxErrorRate=1%,maxP95=300ms,minRequests=200"}`, &ro)
	wantSteps := []hotswap.RolloutStep{{Percent: 10, Duration: hotswap.Duration(120e9)}, {Percent: 25, Duration: hotswap.Duration(120e9)}, {Percent: 50, Duration: hotswap.Duration(120e9)}}
	if ro.ID == "" || ro.App != "orders" || ro.Slot != "staging" || ro.Target != "production" || ro.State != hotswap.RolloutRunning || ro.Actor != "ci" ||
		len(ro.Strategy.Steps) != 3 || ro.Strategy.Steps[1] != wantSteps[1] || ro.Analysis.MinRequests != 200 || ro.Analysis.MaxErrorRate != 0.01 || ro.Deployment == "" {
		t.Fatalf("started %+v, want a running canary:10,25,50 of orders/staging by ci with the analysis", ro)
	}
	path := "/api/v1/apps/orders/rollouts/" + ro.ID

	var got hotswap.Rollout
	e.must(approver, 200, "GET", path, nil, &got)
	if got.ID != ro.ID || got.State != hotswap.RolloutRunning {
		t.Errorf("GET %s = %+v", path, got)
	}
	if code, raw := e.call(approver, "GET", "/api/v1/apps/billing/rollouts/"+ro.ID, nil, nil); code != 404 || !strings.Contains(raw, "billing") {
		t.Errorf("GET orders' rollout under billing = %d %s, want 404", code, raw)
	}
	if code, raw := e.call(deployer, "POST", "/api/v1/apps/billing/rollouts/"+ro.ID+"/abort", nil, nil); code != 404 {
		t.Errorf("abort orders' rollout under billing = %d %s, want 404", code, raw)
	}
	if code, raw := e.call(deployer, "POST", "/api/v1/apps/orders/rollouts", `{"slot":"staging","strategy":"canary:10"}`, nil); code != 409 || !strings.Contains(raw, ro.ID) {
		t.Errorf("a second rollout of orders = %d %s, want 409 naming the running one", code, raw)
	}
	if code, raw := e.call(approver, "POST", path+"/pause", nil, nil); code != 403 {
		t.Errorf("pause as an approver = %d %s, want 403", code, raw)
	}
	if code, raw := e.call(deployer, "POST", path+"/stop", nil, nil); code != 400 || !strings.Contains(raw, "use pause, resume, promote or abort") {
		t.Errorf("command stop = %d %s, want 400 naming the commands", code, raw)
	}

	for _, step := range []struct {
		cmd  string
		want hotswap.RolloutState
	}{{"pause", hotswap.RolloutPaused}, {"pause", hotswap.RolloutPaused}, {"resume", hotswap.RolloutRunning}, {"abort", hotswap.RolloutAborting}} {
		e.must(deployer, 200, "POST", path+"/"+step.cmd, nil, &got)
		if got.State != step.want || got.ID != ro.ID {
			t.Fatalf("%s: state %s, want %s", step.cmd, got.State, step.want)
		}
	}
	eng.Tick(context.Background())
	e.must(approver, 200, "GET", path, nil, &got)
	if got.State != hotswap.RolloutAborted || got.Reason != "aborted by ci" {
		t.Fatalf("after abort and a tick: %s %q, want aborted by ci", got.State, got.Reason)
	}
	if code, raw := e.call(deployer, "POST", path+"/resume", nil, nil); code != 412 || !strings.Contains(raw, "aborted") {
		t.Errorf("resume an aborted rollout = %d %s, want 412", code, raw)
	}

	// A swap with a strategy starts one (202); promote swaps it in.
	var second hotswap.Rollout
	e.must(deployer, 202, "POST", "/api/v1/apps/orders/swap", `{"slot":"staging","strategy":"Linear10PercentEvery1Minute"}`, &second)
	if second.ID == "" || second.ID == ro.ID || len(second.Strategy.Steps) != 9 || second.State != hotswap.RolloutRunning {
		t.Fatalf("swap with a strategy answered %+v, want a new running rollout of 9 steps", second)
	}
	var list struct{ Rollouts []hotswap.Rollout }
	e.must(approver, 200, "GET", "/api/v1/apps/orders/rollouts", nil, &list)
	if len(list.Rollouts) != 2 || list.Rollouts[0].ID != second.ID || list.Rollouts[1].ID != ro.ID {
		t.Errorf("list = %d rollouts, want the second, then the first", len(list.Rollouts))
	}
	e.must(approver, 200, "GET", "/api/v1/apps/orders/rollouts?limit=1", nil, &list)
	if len(list.Rollouts) != 1 || list.Rollouts[0].ID != second.ID {
		t.Errorf("list ?limit=1 = %d rollouts, want the newest", len(list.Rollouts))
	}
	e.must(deployer, 200, "POST", "/api/v1/apps/orders/rollouts/"+second.ID+"/promote", nil, &got)
	if got.State != hotswap.RolloutSwapping {
		t.Fatalf("promote: state %s, want swapping", got.State)
	}
	eng.Tick(context.Background())
	e.must(approver, 200, "GET", "/api/v1/apps/orders/rollouts/"+second.ID, nil, &got)
	if got.State != hotswap.RolloutSucceeded {
		t.Fatalf("after promote and a tick: %s (%s), want succeeded", got.State, got.Reason)
	}
	var prod struct{ DeploymentID string }
	e.must(approver, 200, "GET", "/api/v1/apps/orders/slots/production", nil, &prod)
	if prod.DeploymentID != second.Deployment {
		t.Errorf("production serves %q after the promoted rollout, want %s", prod.DeploymentID, second.Deployment)
	}
}

// TestRolloutsOff: without an engine every rollout endpoint, and a swap
// with a strategy, answers 503 saying so; a plain swap is unaffected.
func TestRolloutsOff(t *testing.T) {
	e := newEnv(t)
	e.must(adminToken, 201, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/api/v1/apps/orders/rollouts", `{"slot":"staging","strategy":"canary:10"}`},
		{"GET", "/api/v1/apps/orders/rollouts", ""},
		{"GET", "/api/v1/apps/orders/rollouts/ro-1", ""},
		{"POST", "/api/v1/apps/orders/rollouts/ro-1/abort", ""},
		{"POST", "/api/v1/apps/orders/swap", `{"slot":"staging","strategy":"canary:10"}`},
		{"POST", "/api/v1/apps/orders/swap?wait=false", `{"slot":"staging","strategy":"canary:10"}`},
	} {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		if code, raw := e.call(adminToken, tc.method, tc.path, body, nil); code != 503 || !strings.Contains(raw, "progressive swaps are not enabled on this server") {
			t.Errorf("%s %s = %d %s, want 503", tc.method, tc.path, code, raw)
		}
	}
	if code, raw := e.call(adminToken, "POST", "/api/v1/apps/orders/swap", `{"slot":"nope"}`, nil); code != 404 {
		t.Errorf("plain swap of a missing slot = %d %s, want its usual 404", code, raw)
	}
}
