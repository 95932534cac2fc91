package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/cli"
)

// steadyLoad sends cookie-less GETs to a host name from several clients until
// stopped, counting the answers by the deployment that served them and the
// failures (an error or a status other than 200).
type steadyLoad struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	byDep    map[string]int
	failures []string
	total    atomic.Int64
}

func startSteadyLoad(t *testing.T, fnAddr, host string, clients int) *steadyLoad {
	t.Helper()
	l := &steadyLoad{stop: make(chan struct{}), byDep: map[string]int{}}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := &http.Client{Timeout: 10 * time.Second} // no cookie jar: every request is drawn anew
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", "http://"+fnAddr+"/api/whoami", nil)
				req.Host = host
				resp, err := c.Do(req)
				l.total.Add(1)
				if err != nil {
					l.fail(err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				dep := resp.Header.Get("X-Deployment")
				l.mu.Lock()
				l.byDep[dep]++
				if resp.StatusCode != http.StatusOK {
					l.failures = append(l.failures, dep+": "+resp.Status)
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *steadyLoad) fail(s string) {
	l.mu.Lock()
	l.failures = append(l.failures, s)
	l.mu.Unlock()
}

func (l *steadyLoad) end() {
	close(l.stop)
	l.wg.Wait()
}

// newRolloutApp creates app "shop" with envapp deployed to production and
// to staging, staging's from pkgDir; it returns the two deployments.
func newRolloutApp(t *testing.T, s *server, stagingPkg string) (prod, staging string) {
	t.Helper()
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "shop"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps/shop/slots", map[string]string{"name": "staging"}, nil)
	prod = s.deploy("shop", hotswap.ProductionSlot, zipDir(t, examplePackage(t, "envapp")))
	staging = s.deploy("shop", "staging", zipDir(t, stagingPkg))
	if prod == "" || staging == "" || prod == staging {
		t.Fatalf("deployments %q and %q", prod, staging)
	}
	return prod, staging
}

// waitRollout polls a rollout until it ends or the time is up.
func (s *server) waitRollout(app, id string, within time.Duration) hotswap.Rollout {
	s.t.Helper()
	deadline := time.Now().Add(within)
	var ro hotswap.Rollout
	for {
		s.must(http.StatusOK, "GET", "/api/v1/apps/"+app+"/rollouts/"+id, nil, &ro)
		if ro.State.Done() {
			return ro
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("rollout %s still %s after %v: %+v", id, ro.State, within, ro)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestProgressiveSwapGoodBuild: under steady load, a progressive swap of a
// good build steps through its shares, each share served by the new build
// in about its proportion, then swaps; no request fails.
func TestProgressiveSwapGoodBuild(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	prod, staging := newRolloutApp(t, s, examplePackage(t, "envapp"))
	l := startSteadyLoad(t, s.fnAddr, "shop.localhost", 8)
	time.Sleep(500 * time.Millisecond)

	var ro hotswap.Rollout
	s.must(http.StatusCreated, "POST", "/api/v1/apps/shop/rollouts", map[string]any{
		"slot": "staging", "strategy": "canary:10,50", "step": "3s", "analysis": "maxErrorRate=1%,maxP95=2s,minRequests=20",
	}, &ro)
	if ro.State != hotswap.RolloutRunning || ro.Deployment != staging || ro.TargetDeployment != prod {
		t.Fatalf("started %+v", ro)
	}
	ro = s.waitRollout("shop", ro.ID, 60*time.Second)
	time.Sleep(500 * time.Millisecond)
	l.end()

	if ro.State != hotswap.RolloutSucceeded {
		t.Fatalf("rollout %s: %s", ro.State, ro.Reason)
	}
	var passed int
	for _, x := range ro.Results {
		if x.Verdict == "passed" {
			passed++
			if x.Requests < 20 || x.Errors != 0 || x.Base == 0 {
				t.Errorf("step %d's figures: %+v", x.Step+1, x)
			}
		}
	}
	if passed != 2 {
		t.Errorf("%d steps passed, want 2: %+v", passed, ro.Results)
	}
	if len(l.failures) > 0 {
		t.Errorf("%d of %d requests failed during the progressive swap, want none; first: %v", len(l.failures), l.total.Load(), l.failures[:min(5, len(l.failures))])
	}
	if got := s.slotDeployment("shop", hotswap.ProductionSlot); got != staging {
		t.Errorf("production serves %s, want the new build %s", got, staging)
	}
	if l.byDep[staging] == 0 || l.byDep[prod] == 0 {
		t.Errorf("served by %v: want both builds to have served", l.byDep)
	}
	var traffic struct{ Shares []hotswap.TrafficShare }
	s.must(http.StatusOK, "GET", "/api/v1/apps/shop/traffic", nil, &traffic)
	if len(traffic.Shares) != 0 {
		t.Errorf("traffic rules left after the swap: %+v", traffic.Shares)
	}
}

// TestProgressiveSwapBadBuild: a build that answers 5% 500s is rolled back
// by itself within its first step: the share goes, production is left as it
// was, the deployment is quarantined, the reason names the figure, its
// value and the limit, and the bad build served no more than the first
// step's share of the requests made while it had one.
func TestProgressiveSwapBadBuild(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	bad := copyPackage(t, "envapp")
	if err := os.WriteFile(filepath.Join(bad, "fail-every"), []byte("20\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	prod, staging := newRolloutApp(t, s, bad)
	l := startSteadyLoad(t, s.fnAddr, "shop.localhost", 8)
	time.Sleep(500 * time.Millisecond)

	const step = 30 * time.Second
	var ro hotswap.Rollout
	began := time.Now()
	before := l.total.Load()
	s.must(http.StatusCreated, "POST", "/api/v1/apps/shop/rollouts", map[string]any{
		"slot": "staging", "strategy": "canary:10,25,50", "step": step.String(), "analysis": "maxErrorRate=1%,minRequests=100",
	}, &ro)
	ro = s.waitRollout("shop", ro.ID, 2*step)
	took := time.Since(began)
	during := l.total.Load() - before
	time.Sleep(time.Second)
	l.end()

	if ro.State != hotswap.RolloutFailed {
		t.Fatalf("rollout %s (%s), want failed", ro.State, ro.Reason)
	}
	if took >= step {
		t.Errorf("rolled back after %v, want within the first step (%v)", took, step)
	}
	if !strings.Contains(ro.Reason, "step 1 (10%)") || !strings.Contains(ro.Reason, "over maxErrorRate 1%") || !strings.Contains(ro.Reason, "production: error rate 0%") {
		t.Errorf("reason %q: want the step, the figure against its limit and production's", ro.Reason)
	}
	if got := s.slotDeployment("shop", hotswap.ProductionSlot); got != prod {
		t.Errorf("production serves %s, want %s as before", got, prod)
	}
	if got := s.slotDeployment("shop", "staging"); got != staging {
		t.Errorf("staging serves %s, want %s as before", got, staging)
	}
	var traffic struct{ Shares []hotswap.TrafficShare }
	s.must(http.StatusOK, "GET", "/api/v1/apps/shop/traffic", nil, &traffic)
	if len(traffic.Shares) != 0 {
		t.Errorf("traffic rules left after the rollback: %+v", traffic.Shares)
	}
	// The bad build's share of all the requests of the run is at most the
	// first step's share of those made while the rollout ran (with room for
	// the draw's spread), and none after.
	l.mu.Lock()
	badServed, total := l.byDep[staging], l.total.Load()
	l.mu.Unlock()
	if limit := 0.10*float64(during) + 3*sqrt(0.09*float64(during)) + 1; float64(badServed) > limit {
		t.Errorf("the bad build served %d of %d requests (%d while the rollout ran): more than its 10%% share", badServed, total, during)
	}
	if badServed == 0 {
		t.Errorf("the bad build served nothing: the test did not exercise the share")
	}
	t.Logf("bad build served %d of %d requests (%d during the %v rollout)", badServed, total, during, took.Round(time.Millisecond))

	var acts struct{ Activity []hotswap.Activity }
	s.must(http.StatusOK, "GET", "/api/v1/apps/shop/activity?limit=50", nil, &acts)
	var log []string
	for _, a := range acts.Activity {
		log = append(log, a.Action+" "+a.Result+" "+a.Detail)
	}
	for _, want := range []string{"rollout.start started progressive swap " + ro.ID, "rollout.end failed progressive swap " + ro.ID, "traffic.set succeeded traffic set staging=10%"} {
		if !strings.Contains(strings.Join(log, "\n"), want) {
			t.Errorf("the activity log lacks %q:\n%s", want, strings.Join(log, "\n"))
		}
	}
	var q struct{ Quarantine *hotswap.Quarantine }
	s.must(http.StatusOK, "GET", "/api/v1/apps/shop/deployments/"+staging, nil, &q)
	if q.Quarantine == nil || !strings.Contains(q.Quarantine.Reason, ro.ID) {
		t.Errorf("deployment %s quarantine %+v, want one naming %s", staging, q.Quarantine, ro.ID)
	}
	// The same content is refused for staging now, as for any release.
	req, _ := http.NewRequest("POST", s.api+"/api/v1/apps/shop/slots/staging/deploy", strings.NewReader(string(zipDir(t, bad))))
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated || !strings.Contains(string(body), "quarantine") {
		t.Errorf("deploying the quarantined content again: %d %s, want a refusal naming the quarantine", resp.StatusCode, body)
	}
}

func sqrt(x float64) float64 {
	z := x
	for range 30 {
		if z == 0 {
			return 0
		}
		z -= (z*z - x) / (2 * z)
	}
	return z
}

// TestProgressiveSwapSurvivesRestart kills the server (SIGKILL) in each
// phase of a progressive swap and restarts it: in a step, paused, between a
// step passing and the next share, between a failed analysis and the
// rollback, before the final swap and after it. The rollout goes on from
// the phase the store holds, with the step's share in force again, and
// ends with the slots, the traffic rules and the rollout agreeing.
func TestProgressiveSwapSurvivesRestart(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		crash string // HOTSWAP_TEST_CRASH_AT of the first run; "" kills it from here
		bad   bool   // staging answers 5% 500s, under load
		// at brings the rollout to the phase to kill it in (for crash "").
		at   func(t *testing.T, s *server, id string)
		want hotswap.RolloutState
	}{
		{name: "in step 2", at: func(t *testing.T, s *server, id string) { waitStep(t, s, id, 1) }, want: hotswap.RolloutSucceeded},
		{name: "paused", at: func(t *testing.T, s *server, id string) {
			s.must(http.StatusOK, "POST", "/api/v1/apps/web/rollouts/"+id+"/pause", nil, nil)
		}, want: hotswap.RolloutPaused},
		{name: "step passed", crash: "rollout.step-passed", want: hotswap.RolloutSucceeded},
		{name: "swapping", crash: "rollout.swapping", want: hotswap.RolloutSucceeded},
		{name: "swapped", crash: "rollout.swapped", want: hotswap.RolloutSucceeded},
		{name: "failing", crash: "rollout.failing", bad: true, want: hotswap.RolloutFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dataDir := t.TempDir()
			p := startProc(t, dataDir)
			s := p.server(t, dataDir)
			s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "web"}, nil)
			s.must(http.StatusCreated, "POST", "/api/v1/apps/web/slots", map[string]string{"name": "staging"}, nil)
			stagingPkg := examplePackage(t, "envapp")
			if tc.bad {
				stagingPkg = copyPackage(t, "envapp")
				if err := os.WriteFile(filepath.Join(stagingPkg, "fail-every"), []byte("20\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			d1 := s.deploy("web", hotswap.ProductionSlot, zipDir(t, examplePackage(t, "envapp")))
			d2 := s.deploy("web", "staging", zipDir(t, stagingPkg))
			if tc.crash != "" {
				// Restart with the crash point armed.
				p.cmd.Process.Signal(syscall.SIGTERM)
				p.cmd.Wait()
				p = startProc(t, dataDir, "HOTSWAP_TEST_CRASH_AT="+tc.crash)
				s = p.server(t, dataDir)
			}
			var l *steadyLoad
			if tc.bad {
				l = startSteadyLoad(t, s.fnAddr, "web.localhost", 4)
				defer func() {
					if l != nil {
						l.end()
					}
				}()
			}
			body := map[string]any{"slot": "staging", "strategy": "canary:10,40", "step": "3s"}
			if tc.bad {
				body["analysis"] = "maxErrorRate=1%,minRequests=30"
			}
			var ro hotswap.Rollout
			s.must(http.StatusCreated, "POST", "/api/v1/apps/web/rollouts", body, &ro)
			if tc.crash == "" {
				waitShare(t, s, "staging", 10)
				tc.at(t, s, ro.ID)
				p.cmd.Process.Signal(syscall.SIGKILL)
			}
			p.cmd.Wait()
			if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("server exit %v, want killed by SIGKILL", p.cmd.ProcessState)
			}

			p = startProc(t, dataDir)
			s = p.server(t, dataDir)
			if l != nil {
				l.end()
				l = startSteadyLoad(t, s.fnAddr, "web.localhost", 4)
			}
			var now hotswap.Rollout
			s.must(http.StatusOK, "GET", "/api/v1/apps/web/rollouts/"+ro.ID, nil, &now)
			t.Logf("after the restart: %s at step %d", now.State, now.Step)
			if now.State == hotswap.RolloutRunning || now.State == hotswap.RolloutPaused {
				// The share of the step it was in is in force again.
				waitShare(t, s, "staging", now.Strategy.Steps[now.Step].Percent)
			}
			if tc.want == hotswap.RolloutPaused {
				time.Sleep(4 * time.Second) // longer than a step: a paused one stays
				s.must(http.StatusOK, "GET", "/api/v1/apps/web/rollouts/"+ro.ID, nil, &now)
				if now.State != hotswap.RolloutPaused {
					t.Fatalf("after the restart the paused rollout is %s", now.State)
				}
				s.must(http.StatusOK, "POST", "/api/v1/apps/web/rollouts/"+ro.ID+"/resume", nil, nil)
				tc.want = hotswap.RolloutSucceeded
			}
			end := s.waitRollout("web", ro.ID, 60*time.Second)
			if end.State != tc.want {
				t.Fatalf("after the restart the rollout ended %s (%s), want %s", end.State, end.Reason, tc.want)
			}
			prod, staging := s.slotDeployment("web", hotswap.ProductionSlot), s.slotDeployment("web", "staging")
			if end.State == hotswap.RolloutSucceeded {
				if prod != d2 || staging != d1 {
					t.Errorf("succeeded, but production serves %s and staging %s, want %s and %s", prod, staging, d2, d1)
				}
			} else if prod != d1 || staging != d2 {
				t.Errorf("%s, but production serves %s and staging %s, want them untouched (%s, %s)", end.State, prod, staging, d1, d2)
			}
			if tc.want == hotswap.RolloutFailed {
				var q struct{ Quarantine *hotswap.Quarantine }
				s.must(http.StatusOK, "GET", "/api/v1/apps/web/deployments/"+d2, nil, &q)
				if q.Quarantine == nil {
					t.Errorf("the failed build %s is not quarantined", d2)
				}
			}
			var traffic struct{ Shares []hotswap.TrafficShare }
			s.must(http.StatusOK, "GET", "/api/v1/apps/web/traffic", nil, &traffic)
			if len(traffic.Shares) != 0 {
				t.Errorf("traffic rules left: %+v", traffic.Shares)
			}
			if l != nil {
				l.end()
				l = nil
			}
			for range 20 {
				if got := s.whoami("web.localhost").Deployment; got != prod {
					t.Fatalf("production's host is served by %s, the store says %s", got, prod)
				}
			}
		})
	}
}

// waitShare waits until production's rule gives slot percent.
func waitShare(t *testing.T, s *server, slot string, percent float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		var traffic struct{ Shares []hotswap.TrafficShare }
		s.must(http.StatusOK, "GET", "/api/v1/apps/web/traffic", nil, &traffic)
		for _, x := range traffic.Shares {
			if x.Slot == slot && x.Percent == percent {
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("production's rule is %+v, want %s=%v%%", traffic.Shares, slot, percent)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStep waits until rollout id runs its step (0-based).
func waitStep(t *testing.T, s *server, id string, step int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ro hotswap.Rollout
		s.must(http.StatusOK, "GET", "/api/v1/apps/web/rollouts/"+id, nil, &ro)
		if ro.Step >= step {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout at step %d, want %d", ro.Step, step)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestProgressiveSwapCLI: `hotswap swap --strategy` prints a line per step
// with its figures as the rollout goes and exits 0 when it swapped;
// `hotswap rollout` shows, pauses, resumes and aborts one, and a failed or
// aborted rollout exits non-zero with the reason.
func TestProgressiveSwapCLI(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	_, staging := newRolloutApp(t, s, examplePackage(t, "envapp"))
	run := func(args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := cli.Run(context.Background(), append([]string{"--server", s.api, "--token", s.token}, args...), cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, WorkDir: t.TempDir()})
		return code, out.String(), errb.String()
	}
	code, out, errs := run("swap", "shop", "--slot", "staging", "--strategy", "canary:20,60", "--step", "2s")
	if code != 0 {
		t.Fatalf("swap --strategy: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"step 1/2", "20%", "step 2/2", "60%", "passed", "swapped shop/staging into production"} {
		if !strings.Contains(out+errs, want) {
			t.Errorf("swap --strategy output lacks %q:\n%s%s", want, out, errs)
		}
	}
	if got := s.slotDeployment("shop", hotswap.ProductionSlot); got != staging {
		t.Fatalf("production serves %s after the CLI's progressive swap, want %s", got, staging)
	}

	// Swap back progressively, pause, resume, then abort.
	code, out, errs = run("swap", "shop", "--slot", "staging", "--strategy", "canary:30", "--step", "1h", "--no-wait")
	if code != 0 {
		t.Fatalf("swap --no-wait: exit %d\n%s%s", code, out, errs)
	}
	for _, args := range [][]string{{"rollout", "pause", "shop"}, {"rollout", "resume", "shop"}, {"rollout", "show", "shop"}} {
		if code, out, errs := run(args...); code != 0 {
			t.Fatalf("hotswap %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
	}
	if code, out, errs := run("rollout", "abort", "shop"); code == 0 {
		t.Errorf("rollout abort without --yes and without a terminal: exit 0\n%s%s", out, errs)
	}
	if code, out, errs := run("rollout", "abort", "shop", "--yes"); code != 0 {
		t.Fatalf("rollout abort --yes: exit %d\n%s%s", code, out, errs)
	}
	var list struct{ Rollouts []hotswap.Rollout }
	s.must(http.StatusOK, "GET", "/api/v1/apps/shop/rollouts", nil, &list)
	code, out, errs = run("rollout", "watch", "shop", list.Rollouts[0].ID)
	if code == 0 || !strings.Contains(out+errs, "aborted by") {
		t.Errorf("rollout watch of an aborted rollout: exit %d, want non-zero with the reason\n%s%s", code, out, errs)
	}
	if got := s.slotDeployment("shop", hotswap.ProductionSlot); got != staging {
		t.Errorf("production serves %s after the abort, want %s still", got, staging)
	}
	code, out, errs = run("rollout", "list", "shop")
	if code != 0 || !strings.Contains(out, "succeeded") || !strings.Contains(out, "aborted") {
		t.Errorf("rollout list: exit %d\n%s%s", code, out, errs)
	}
}

// TestReleaseProgressiveSwap: a pipeline stage swaps with a strategy and
// an analysis. A good build pushed on main goes to production step by step,
// each step in the stage's log; a build answering 5% 500s fails its stage
// with the analysis' reason, production keeps the good build, and the
// continuous-deployment trigger pushing the same content again is refused
// because the rollout quarantined it.
func TestReleaseProgressiveSwap(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, "", func(m *Main) { m.Config.ReleaseTick = 20 * time.Millisecond })
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	s.deploy("orders", hotswap.ProductionSlot, zipDir(t, examplePackage(t, "envapp")))
	s.must(http.StatusCreated, "POST", "/api/v1/pipelines", []byte(`name: orders-cd
artifact: {feed: orders}
trigger: {continuous: true, branches: [main]}
stages:
  - name: production
    deploy: {app: orders, slot: staging}
    swap:
      app: orders
      slot: staging
      target: production
      strategy: canary:10,30
      step: 2s
      analysis: {maxErrorRate: 1%, minRequests: 30}
`), nil)
	l := startSteadyLoad(t, s.fnAddr, "orders.localhost", 6)
	defer func() {
		if l != nil {
			l.end()
		}
	}()
	push := func(version, pkg string) string {
		t.Helper()
		var res struct{ Releases []struct{ ID string } }
		s.must(http.StatusCreated, "POST", "/api/v1/feeds/orders/artifacts?version="+version+"&branch=main&commit=c0ffee", zipDir(t, pkg), &res)
		if len(res.Releases) != 1 {
			t.Fatalf("push of %s made %d releases, want 1", version, len(res.Releases))
		}
		return res.Releases[0].ID
	}
	wait := func(id string) releaseJSON {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			r := s.release(id)
			if r.State == "succeeded" || r.State == "failed" || r.State == "abandoned" {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("release %s still %s:\n%s", r.Name, r.State, r.log())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	good := wait(push("1.1.0", examplePackage(t, "envapp")))
	_, _, goodDep := good.stage("production")
	if good.State != "succeeded" {
		t.Fatalf("release of the good build %s: %s\n%s", good.State, good.Detail, good.log())
	}
	if got := s.slotDeployment("orders", hotswap.ProductionSlot); got != goodDep {
		t.Fatalf("production serves %s after the good release, want %s", got, goodDep)
	}
	for _, want := range []string{"progressive swap ro-", "step 1/2 (10%) passed", "step 2/2 (30%) passed", "staging: error rate 0%"} {
		if !strings.Contains(good.log(), want) {
			t.Errorf("the good release's log lacks %q:\n%s", want, good.log())
		}
	}

	bad := copyPackage(t, "envapp")
	if err := os.WriteFile(filepath.Join(bad, "fail-every"), []byte("20\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	failed := wait(push("2.0.0", bad))
	state, detail, badDep := failed.stage("production")
	if failed.State != "failed" || state != "failed" {
		t.Fatalf("release of the bad build %s (stage %s): %s\n%s", failed.State, state, detail, failed.log())
	}
	if !strings.Contains(detail, "over maxErrorRate 1%") || !strings.Contains(detail, "step 1 (10%)") {
		t.Errorf("the failed stage says %q; want the step and the figure against its limit", detail)
	}
	if got := s.slotDeployment("orders", hotswap.ProductionSlot); got != goodDep {
		t.Errorf("production serves %s after the failed release, want the good build %s", got, goodDep)
	}
	var traffic struct{ Shares []hotswap.TrafficShare }
	s.must(http.StatusOK, "GET", "/api/v1/apps/orders/traffic", nil, &traffic)
	if len(traffic.Shares) != 0 {
		t.Errorf("traffic rules left after the failed release: %+v", traffic.Shares)
	}
	l.end()
	l = nil
	var q struct{ Quarantine *hotswap.Quarantine }
	s.must(http.StatusOK, "GET", "/api/v1/apps/orders/deployments/"+badDep, nil, &q)
	if q.Quarantine == nil || q.Quarantine.Version != "2.0.0" {
		t.Fatalf("the bad build's deployment %s: quarantine %+v, want one with version 2.0.0", badDep, q.Quarantine)
	}

	// The trigger pushes the same content again as a new version: refused.
	again := wait(push("2.0.1", bad))
	if _, detail, _ := again.stage("production"); again.State != "failed" || !strings.Contains(detail, "quarantined") {
		t.Errorf("release of the quarantined content again: %s, %q; want failed, saying it is quarantined", again.State, detail)
	}
	if got := s.slotDeployment("orders", hotswap.ProductionSlot); got != goodDep {
		t.Errorf("production serves %s, want the good build %s", got, goodDep)
	}
}

// TestReleaseAbandonAbortsRollout: abandoning a release whose stage runs a
// progressive swap aborts the swap: the share goes and nothing is swapped
// on later.
func TestReleaseAbandonAbortsRollout(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, "", func(m *Main) { m.Config.ReleaseTick = 20 * time.Millisecond })
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	prod := s.deploy("orders", hotswap.ProductionSlot, zipDir(t, examplePackage(t, "envapp")))
	s.must(http.StatusCreated, "POST", "/api/v1/pipelines", []byte(`name: orders-cd
artifact: {feed: orders}
trigger: {continuous: true, branches: [main]}
stages:
  - name: production
    deploy: {app: orders, slot: staging}
    swap: {app: orders, slot: staging, target: production, strategy: "canary:10", step: 1h}
`), nil)
	ids := s.pushArtifact("orders", "1.0.0", "main")
	var ro hotswap.Rollout
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct{ Rollouts []hotswap.Rollout }
		s.must(http.StatusOK, "GET", "/api/v1/apps/orders/rollouts", nil, &list)
		if len(list.Rollouts) == 1 && list.Rollouts[0].State == hotswap.RolloutRunning {
			ro = list.Rollouts[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no running progressive swap from the release: %+v", list.Rollouts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ro.Release != ids[0] {
		t.Errorf("the rollout's release is %q, want %q", ro.Release, ids[0])
	}
	s.must(http.StatusOK, "POST", "/api/v1/releases/"+ids[0]+"/abandon", nil, nil)
	end := s.waitRollout("orders", ro.ID, 20*time.Second)
	if end.State != hotswap.RolloutAborted || !strings.Contains(end.Reason, "abandoning release") {
		t.Errorf("after the abandon the rollout is %s (%s), want aborted", end.State, end.Reason)
	}
	var traffic struct{ Shares []hotswap.TrafficShare }
	s.must(http.StatusOK, "GET", "/api/v1/apps/orders/traffic", nil, &traffic)
	if len(traffic.Shares) != 0 {
		t.Errorf("traffic rules left: %+v", traffic.Shares)
	}
	if got := s.slotDeployment("orders", hotswap.ProductionSlot); got != prod {
		t.Errorf("production serves %s, want %s", got, prod)
	}
}
