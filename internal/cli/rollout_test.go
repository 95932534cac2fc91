package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
)

// scriptServer plays the API with a script: each "METHOD path?query" gets
// its answers in turn, the last one again once they run out. It records the
// requests.
type scriptServer struct {
	*httptest.Server
	mu       sync.Mutex
	answers  map[string][]scripted
	requests []request
}

type scripted struct {
	status int
	body   string
}

func newScriptServer(t testing.TB, answers map[string][]scripted) *scriptServer {
	t.Helper()
	s := &scriptServer{answers: answers}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key := r.Method + " " + r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			key += "?" + r.URL.RawQuery
		}
		s.mu.Lock()
		s.requests = append(s.requests, request{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Body: string(body)})
		q, ok := s.answers[key]
		var a scripted
		if ok && len(q) > 0 {
			a = q[0]
			if len(q) > 1 {
				s.answers[key] = q[1:]
			}
		}
		s.mu.Unlock()
		if !ok {
			t.Errorf("unexpected request %s", key)
			a = scripted{404, `{"error":{"kind":"not_found","message":"no script for ` + key + `"}}`}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *scriptServer) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.requests {
		line := r.Method + " " + r.Path
		if r.Query != "" {
			line += "?" + r.Query
		}
		if r.Body != "" {
			line += " " + r.Body
		}
		out = append(out, line)
	}
	return out
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// canary returns a rollout of orders/staging by canary:10,25,50 with 2m
// steps at state and step, changed at t0 plus at.
func canary(state hotswap.RolloutState, step int, at time.Duration, results ...hotswap.StepResult) hotswap.Rollout {
	st, err := hotswap.ParseStrategy("canary:10,25,50", 2*time.Minute)
	if err != nil {
		panic(err)
	}
	a, _ := hotswap.ParseAnalysis("maxErrorRate=1%,maxP95=300ms,minRequests=200")
	if results == nil {
		results = []hotswap.StepResult{}
	}
	return hotswap.Rollout{ID: "ro-1", App: "orders", Slot: "staging", Target: "production", Strategy: st, Analysis: a,
		State: state, Step: step, StepStarted: t0.Add(at), Deployment: "d-new", TargetDeployment: "d-old", Actor: "ci",
		Results: results, Created: t0, Updated: t0.Add(at), Version: int64(len(results) + 1)}
}

func passed(step int, pct float64, at time.Duration, n int64) hotswap.StepResult {
	return hotswap.StepResult{Step: step, Percent: pct, At: t0.Add(at), Verdict: "passed",
		Detail:   "staging: error rate 0% (0 of " + itoa(n) + "), p95 8ms; production: error rate 0%, p95 8ms",
		Requests: n, P95: hotswap.Duration(8 * time.Millisecond), Base: 9 * n, BaseP95: hotswap.Duration(8 * time.Millisecond)}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func js(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const startBody = `{"slot":"staging","strategy":"canary:10,25,50","step":"2m","analysis":"maxErrorRate=1%,maxP95=300ms,minRequests=200"}`

// TestSwapStrategy: swap --strategy starts a progressive swap and follows
// it, a line per step result and change of state, then a last line; a
// failed one exits 1 with the reason on stderr; -o json prints the last
// rollout and the progress on stderr; --no-wait says how to follow it.
func TestSwapStrategy(t *testing.T) {
	t.Parallel()
	args := []string{"swap", "orders", "--slot", "staging", "--strategy", "canary:10,25,50", "--step", "2m",
		"--analysis", "maxErrorRate=1%,maxP95=300ms,minRequests=200"}
	r1 := passed(0, 10, 2*time.Minute, 412)
	r2 := passed(1, 25, 4*time.Minute, 1030)
	r3 := passed(2, 50, 6*time.Minute, 2061)
	const plan = "progressive swap ro-1 of orders/staging into production: 10% for 2m, 25% for 2m, 50% for 2m, then swap; analysis maxErrorRate=1%,maxP95=300ms,minRequests=200\n"

	t.Run("succeeds", func(t *testing.T) {
		t.Parallel()
		srv := newScriptServer(t, map[string][]scripted{
			"POST /api/v1/apps/orders/rollouts": {{201, js(t, canary(hotswap.RolloutRunning, 0, 0))}},
			"GET /api/v1/apps/orders/rollouts/ro-1": {
				{200, js(t, canary(hotswap.RolloutRunning, 0, 0))}, // nothing new
				{200, js(t, canary(hotswap.RolloutRunning, 1, 2*time.Minute, r1))},
				{200, js(t, canary(hotswap.RolloutSwapping, 3, 6*time.Minute, r1, r2, r3))},
				{200, js(t, canary(hotswap.RolloutSucceeded, 3, 6*time.Minute+3*time.Second, r1, r2, r3))},
			},
		})
		code, stdout, stderr := run(t, args, map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}, t.TempDir())
		if code != 0 || stderr != "" {
			t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
		}
		want := plan +
			"     0.0s  step 1/3  10%  running for 2m\n" +
			"    2m00s  step 1/3  10%  passed  staging: error rate 0% (0 of 412), p95 8ms; production: error rate 0%, p95 8ms\n" +
			"    2m00s  step 2/3  25%  running for 2m\n" +
			"    4m00s  step 2/3  25%  passed  staging: error rate 0% (0 of 1030), p95 8ms; production: error rate 0%, p95 8ms\n" +
			"    6m00s  step 3/3  50%  passed  staging: error rate 0% (0 of 2061), p95 8ms; production: error rate 0%, p95 8ms\n" +
			"    6m00s  swapping staging into production\n" +
			"swapped orders/staging into production by progressive swap ro-1 in 6m03s (production serves d-new)\n"
		if diff := cmp.Diff(stdout, want); diff != "" {
			t.Errorf("stdout (-got +want):\n%s", diff)
		}
		reqs := srv.Requests()
		if len(reqs) != 5 || reqs[0] != "POST /api/v1/apps/orders/rollouts "+startBody {
			t.Errorf("requests = %q, want the start with the flags as given, then 4 reads", reqs)
		}
	})

	failed := canary(hotswap.RolloutFailed, 0, 40*time.Second, hotswap.StepResult{Step: 0, Percent: 10, At: t0.Add(40 * time.Second), Verdict: "failed",
		Detail: "error rate 5% over maxErrorRate 1% (staging: error rate 5% (12 of 240), p95 9ms; production: error rate 0%, p95 8ms)"})
	failed.Reason = "step 1 (10%): error rate 5% over maxErrorRate 1% (staging: error rate 5% (12 of 240), p95 9ms; production: error rate 0%, p95 8ms)"
	t.Run("fails", func(t *testing.T) {
		t.Parallel()
		srv := newScriptServer(t, map[string][]scripted{
			"POST /api/v1/apps/orders/rollouts":     {{201, js(t, canary(hotswap.RolloutRunning, 0, 0))}},
			"GET /api/v1/apps/orders/rollouts/ro-1": {{200, js(t, failed)}},
		})
		code, stdout, stderr := run(t, args, map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}, t.TempDir())
		want := plan +
			"     0.0s  step 1/3  10%  running for 2m\n" +
			"    40.0s  step 1/3  10%  failed  error rate 5% over maxErrorRate 1% (staging: error rate 5% (12 of 240), p95 9ms; production: error rate 0%, p95 8ms)\n" +
			"progressive swap ro-1 failed after 40.0s: staging and production serve what they served, staging's share of production's requests is gone\n"
		if diff := cmp.Diff(stdout, want); diff != "" {
			t.Errorf("stdout (-got +want):\n%s", diff)
		}
		if code != 1 || stderr != "hotswap: progressive swap ro-1 of orders/staging into production failed: "+failed.Reason+"\n" {
			t.Errorf("exit %d, stderr %q; want 1 and the reason", code, stderr)
		}
	})

	t.Run("aborted, -o json", func(t *testing.T) {
		t.Parallel()
		aborted := canary(hotswap.RolloutAborted, 0, 30*time.Second)
		aborted.Reason = "aborted by ada"
		srv := newScriptServer(t, map[string][]scripted{
			"POST /api/v1/apps/orders/rollouts":     {{201, js(t, canary(hotswap.RolloutRunning, 0, 0))}},
			"GET /api/v1/apps/orders/rollouts/ro-1": {{200, js(t, aborted)}},
		})
		code, stdout, stderr := run(t, append(args, "-o", "json"), map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}, t.TempDir())
		var got hotswap.Rollout
		if err := json.Unmarshal([]byte(stdout), &got); err != nil || got.State != hotswap.RolloutAborted || got.Reason != "aborted by ada" {
			t.Errorf("stdout = %q (%v), want the aborted rollout's JSON alone", stdout, err)
		}
		if code != 1 || !strings.HasPrefix(stderr, plan+"     0.0s  step 1/3  10%  running for 2m\n") ||
			!strings.HasSuffix(stderr, "hotswap: progressive swap ro-1 of orders/staging into production aborted: aborted by ada\n") {
			t.Errorf("exit %d, stderr %q; want 1, the progress and the reason", code, stderr)
		}
	})

	t.Run("--no-wait", func(t *testing.T) {
		t.Parallel()
		srv := newScriptServer(t, map[string][]scripted{
			"POST /api/v1/apps/orders/rollouts": {{201, js(t, canary(hotswap.RolloutRunning, 0, 0))}},
		})
		code, stdout, stderr := run(t, append(args, "--no-wait"), map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}, t.TempDir())
		want := "progressive swap ro-1 of orders/staging into production started: 10% for 2m, 25% for 2m, 50% for 2m, then swap; analysis maxErrorRate=1%,maxP95=300ms,minRequests=200\n" +
			"follow it with: hotswap rollout watch orders ro-1\n"
		if code != 0 || stderr != "" || stdout != want {
			t.Errorf("exit %d, stderr %q, stdout %q; want 0 and\n%s", code, stderr, stdout, want)
		}
		if reqs := srv.Requests(); len(reqs) != 1 {
			t.Errorf("requests = %q, want the start only", reqs)
		}
	})

	t.Run("refused by the server", func(t *testing.T) {
		t.Parallel()
		srv := newScriptServer(t, map[string][]scripted{
			"POST /api/v1/apps/orders/rollouts": {{409, `{"error":{"kind":"conflict","message":"app orders has a progressive swap running (ro-0)"}}`}},
		})
		code, stdout, stderr := run(t, args, map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}, t.TempDir())
		if code != 1 || stdout != "" || stderr != "hotswap: app orders has a progressive swap running (ro-0)\n" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 1 with the server's reason", code, stdout, stderr)
		}
	})
}

// TestSwapStrategyFlags: a strategy, step or analysis the server would
// refuse, or a flag that does not go with a progressive swap, is a usage
// error before any request.
func TestSwapStrategyFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad strategy", []string{"--strategy", "canary:10,ten"}, `--strategy: strategy "canary:10,ten": share 2, "ten", is not a number`},
		{"unknown strategy", []string{"--strategy", "BlueGreen"}, "unknown; use canary:10,25,50, Canary10Percent5Minutes"},
		{"step with a preset", []string{"--strategy", "Canary10Percent5Minutes", "--step", "2m"}, "a preset sets its own step duration; --step goes with canary:P1,P2,..."},
		{"bad step", []string{"--strategy", "canary:10", "--step", "soon"}, `--step "soon" is not a duration such as 2m or 30s`},
		{"step too short", []string{"--strategy", "canary:10", "--step", "10ms"}, "duration 10ms is not between 1s and 24h0m0s"},
		{"unknown analysis key", []string{"--strategy", "canary:10", "--analysis", "maxErrors=1"}, `--analysis: analysis "maxErrors=1": unknown key "maxErrors"; the keys are maxErrorRate, maxP95 and minRequests`},
		{"analysis without strategy", []string{"--analysis", "minRequests=10"}, "--step and --analysis go with --strategy"},
		{"with --preview", []string{"--strategy", "canary:10", "--preview"}, "--strategy swaps progressively: drop --preview"},
		{"with --force", []string{"--strategy", "canary:10", "--force"}, "--force does not apply to a progressive swap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newAPIServer(t, 201, "{}")
			args := append([]string{"swap", "orders", "--slot", "staging"}, tc.args...)
			code, _, stderr := run(t, args, map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}, t.TempDir())
			if code != 2 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "usage: hotswap swap") {
				t.Errorf("exit %d, stderr %q; want 2 with %q and the usage", code, stderr, tc.want)
			}
			if n := len(srv.Requests()); n != 0 {
				t.Errorf("sent %d requests", n)
			}
		})
	}
	t.Run("no slot", func(t *testing.T) {
		code, _, stderr := run(t, []string{"swap", "orders", "--strategy", "canary:10"}, nil, t.TempDir())
		if code != 2 || !strings.Contains(stderr, "--slot is required") {
			t.Errorf("exit %d, stderr %q; want 2 asking for --slot", code, stderr)
		}
	})
}

// TestRolloutCommands: list, show and the commands read and steer the
// app's running rollout when no ID is given, and say so when there is
// none; abort asks first.
func TestRolloutCommands(t *testing.T) {
	t.Parallel()
	running := canary(hotswap.RolloutRunning, 1, 2*time.Minute, passed(0, 10, 2*time.Minute, 412))
	paused := running
	paused.State = hotswap.RolloutPaused
	ended := canary(hotswap.RolloutSucceeded, 3, 6*time.Minute)
	list := func(rs ...hotswap.Rollout) string {
		return js(t, map[string]any{"rollouts": rs})
	}
	vars := func(srv *scriptServer) map[string]string {
		return map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}
	}

	t.Run("pause, the running one", func(t *testing.T) {
		t.Parallel()
		srv := newScriptServer(t, map[string][]scripted{
			"GET /api/v1/apps/orders/rollouts?limit=1":     {{200, list(running)}},
			"POST /api/v1/apps/orders/rollouts/ro-1/pause": {{200, js(t, paused)}},
		})
		code, stdout, stderr := run(t, []string{"rollout", "pause", "orders"}, vars(srv), t.TempDir())
		if code != 0 || stderr != "" || stdout != "progressive swap ro-1 of orders/staging into production: paused at step 2/3 (25%): the share stays until resumed\n" {
			t.Errorf("exit %d, stderr %q, stdout %q", code, stderr, stdout)
		}
		if diff := cmp.Diff(srv.Requests(), []string{"GET /api/v1/apps/orders/rollouts?limit=1", "POST /api/v1/apps/orders/rollouts/ro-1/pause"}); diff != "" {
			t.Errorf("requests (-got +want):\n%s", diff)
		}
	})
	t.Run("promote by ID", func(t *testing.T) {
		t.Parallel()
		swapping := running
		swapping.State = hotswap.RolloutSwapping
		srv := newScriptServer(t, map[string][]scripted{
			"POST /api/v1/apps/orders/rollouts/ro-1/promote": {{200, js(t, swapping)}},
		})
		code, stdout, stderr := run(t, []string{"rollout", "promote", "orders", "ro-1"}, vars(srv), t.TempDir())
		if code != 0 || stderr != "" || stdout != "progressive swap ro-1 of orders/staging into production: swapping into production now, the steps left skipped\n" {
			t.Errorf("exit %d, stderr %q, stdout %q", code, stderr, stdout)
		}
	})
	t.Run("none running", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			answer, want string
		}{
			{list(), "hotswap: orders has no progressive swap; start one with hotswap swap orders --slot SLOT --strategy canary:10,25,50\n"},
			{list(ended), "hotswap: orders has no progressive swap running (the last, ro-1, succeeded); name one: hotswap rollout list orders\n"},
		} {
			srv := newScriptServer(t, map[string][]scripted{"GET /api/v1/apps/orders/rollouts?limit=1": {{200, tc.answer}}})
			code, stdout, stderr := run(t, []string{"rollout", "resume", "orders"}, vars(srv), t.TempDir())
			if code != 1 || stdout != "" || stderr != tc.want {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", code, stdout, stderr, tc.want)
			}
		}
	})
	t.Run("abort asks", func(t *testing.T) {
		t.Parallel()
		srv := newScriptServer(t, map[string][]scripted{})
		code, _, stderr := run(t, []string{"rollout", "abort", "orders"}, vars(srv), t.TempDir())
		if code != 2 || !strings.Contains(stderr, "this would abort the running progressive swap of orders") || !strings.Contains(stderr, "pass --yes (-y)") {
			t.Errorf("abort without --yes = %d, %q; want 2 asking for --yes", code, stderr)
		}
		aborting := running
		aborting.State, aborting.Reason = hotswap.RolloutAborting, "aborted by admin"
		srv = newScriptServer(t, map[string][]scripted{"POST /api/v1/apps/orders/rollouts/ro-1/abort": {{200, js(t, aborting)}}})
		code, stdout, stderr := run(t, []string{"rollout", "abort", "orders", "ro-1", "-y"}, vars(srv), t.TempDir())
		if code != 0 || stderr != "" || stdout != "progressive swap ro-1 of orders/staging into production: aborting: staging's share goes back to production and nothing is swapped\n" {
			t.Errorf("abort -y = %d, stderr %q, stdout %q", code, stderr, stdout)
		}
	})
	t.Run("watch by ID, ended", func(t *testing.T) {
		t.Parallel()
		done := canary(hotswap.RolloutSucceeded, 3, 6*time.Minute+time.Second, passed(0, 10, 2*time.Minute, 412),
			hotswap.StepResult{Step: 1, Percent: 25, At: t0.Add(3 * time.Minute), Verdict: "skipped", Detail: "promoted by ada: the steps left were skipped"})
		srv := newScriptServer(t, map[string][]scripted{"GET /api/v1/apps/orders/rollouts/ro-1": {{200, js(t, done)}}})
		code, stdout, stderr := run(t, []string{"rollout", "watch", "orders", "ro-1"}, vars(srv), t.TempDir())
		want := "progressive swap ro-1 of orders/staging into production: 10% for 2m, 25% for 2m, 50% for 2m, then swap; analysis maxErrorRate=1%,maxP95=300ms,minRequests=200\n" +
			"    2m00s  step 1/3  10%  passed  staging: error rate 0% (0 of 412), p95 8ms; production: error rate 0%, p95 8ms\n" +
			"    3m00s  step 2/3  25%  skipped  promoted by ada: the steps left were skipped\n" +
			"swapped orders/staging into production by progressive swap ro-1 in 6m01s (production serves d-new)\n"
		if code != 0 || stderr != "" {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if diff := cmp.Diff(stdout, want); diff != "" {
			t.Errorf("stdout (-got +want):\n%s", diff)
		}
	})
	t.Run("list", func(t *testing.T) {
		t.Parallel()
		srv := newScriptServer(t, map[string][]scripted{"GET /api/v1/apps/orders/rollouts?limit=5": {{200, list(running, ended)}}})
		code, stdout, stderr := run(t, []string{"rollout", "list", "orders", "--limit", "5"}, vars(srv), t.TempDir())
		want := "ID    SLOT                 STATE      STEP  STRATEGY         ACTOR  CREATED\n" +
			"ro-1  staging->production  running    2/3   canary:10,25,50  ci     2026-12-01T10:00:00Z\n" +
			"ro-1  staging->production  succeeded  3/3   canary:10,25,50  ci     2026-12-01T10:00:00Z\n"
		if code != 0 || stderr != "" {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if diff := cmp.Diff(stdout, want); diff != "" {
			t.Errorf("stdout (-got +want):\n%s", diff)
		}
	})
	t.Run("show", func(t *testing.T) {
		t.Parallel()
		srv := newScriptServer(t, map[string][]scripted{
			"GET /api/v1/apps/orders/rollouts?limit=1": {{200, list(running)}},
			"GET /api/v1/apps/orders/rollouts/ro-1":    {{200, js(t, running)}},
		})
		code, stdout, stderr := run(t, []string{"rollout", "show", "orders"}, vars(srv), t.TempDir())
		want := "id:          ro-1\napp:         orders\nswap:        staging -> production\n" +
			"strategy:    canary:10,25,50 (10% for 2m, 25% for 2m, 50% for 2m, then swap)\n" +
			"analysis:    maxErrorRate=1%,maxP95=300ms,minRequests=200\n" +
			"state:       running, step 2 of 3 (25% of production's requests)\n" +
			"deployment:  d-new (production serves d-old)\nactor:       ci\n" +
			"created:     2026-12-01T10:00:00Z\nupdated:     2026-12-01T10:02:00Z\n\n" +
			"STEP  PERCENT  VERDICT  AT                    DETAIL\n" +
			"1/3   10%      passed   2026-12-01T10:02:00Z  staging: error rate 0% (0 of 412), p95 8ms; production: error rate 0%, p95 8ms\n"
		if code != 0 || stderr != "" {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if diff := cmp.Diff(stdout, want); diff != "" {
			t.Errorf("stdout (-got +want):\n%s", diff)
		}
	})
}
