package rollout

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/metrics"
	"github.com/hotswap/hotswap/internal/ops"
	"github.com/hotswap/hotswap/internal/sqlite"
)

// The engine's tests run on an injected clock shared with a real metrics
// registry, a real SQLite store, and fakeOps standing for the service: what
// a step does to the traffic rules and the slots is checked without handler
// processes, and minutes of steps take no time. The end-to-end tests in
// cmd/hotswap run the same engine in a real server under load.

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeOps keeps one app's slots and traffic rules in memory.
type fakeOps struct {
	mu          sync.Mutex
	deployments map[string]string // slot: deployment
	traffic     []hotswap.TrafficShare
	swaps       int
	quarantined []string
	swapErr     error
	beforeSwap  func(deployments map[string]string) // what lands between the engine's check and the swap
	setShares   int                                 // SetShare calls
	writes      int                                 // of them, those that changed the rules
}

func (f *fakeOps) SetShare(ctx context.Context, actor, app, slot string, percent float64) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setShares++
	var next []hotswap.TrafficShare
	var others float64
	for _, x := range f.traffic {
		if x.Slot != slot {
			next = append(next, x)
			others += x.Percent
		}
	}
	if percent = min(percent, max(0, 100-others)); percent > 0 {
		next = append(next, hotswap.TrafficShare{Slot: slot, Percent: percent})
	}
	if err := hotswap.ValidateTraffic(next); err != nil {
		return false, err
	}
	slices.SortFunc(next, func(a, b hotswap.TrafficShare) int { return strings.Compare(a.Slot, b.Slot) })
	if slices.Equal(next, f.traffic) {
		return false, nil
	}
	f.traffic = next
	f.writes++
	return true, nil
}

func (f *fakeOps) share(slot string) float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.traffic {
		if s.Slot == slot {
			return s.Percent
		}
	}
	return 0
}

func (f *fakeOps) SlotDeployment(ctx context.Context, app, slot string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.deployments[slot]
	if !ok {
		return "", hotswap.Errorf(hotswap.NotFound, "slot %s/%s not found", app, slot)
	}
	return d, nil
}

func (f *fakeOps) Swap(ctx context.Context, req ops.SwapRequest) (ops.SwapResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.swapErr != nil {
		return ops.SwapResult{}, f.swapErr
	}
	if f.beforeSwap != nil {
		f.beforeSwap(f.deployments)
	}
	if x := req.Expect; x != nil {
		for _, c := range [2]struct{ slot, want string }{{req.Source, x.Source}, {req.Target, x.Target}} {
			if c.slot == req.Target && x.AnyTarget {
				continue
			}
			if f.deployments[c.slot] != c.want {
				return ops.SwapResult{}, &hotswap.Error{Kind: hotswap.FailedPrecondition, Err: ops.ErrNotAsExpected, Msg: fmt.Sprintf(
					"slot %s/%s serves %s, not %s as the swap expected; nothing was swapped", req.App, c.slot, f.deployments[c.slot], c.want)}
			}
		}
	}
	f.deployments[req.Source], f.deployments[req.Target] = f.deployments[req.Target], f.deployments[req.Source]
	f.swaps++
	return ops.SwapResult{Phase: "completed"}, nil
}

func (f *fakeOps) QuarantineDeployment(ctx context.Context, actor, app, id, reason string) (hotswap.Quarantine, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.quarantined = append(f.quarantined, id+": "+reason)
	return hotswap.Quarantine{App: app, DeploymentID: id, Reason: reason}, nil
}

type fixture struct {
	t    *testing.T
	ctx  context.Context
	clk  *clock
	reg  *metrics.Registry
	ops  *fakeOps
	db   *sqlite.DB
	eng  *Engine
	open func() *Engine
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "hotswap.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.CreateApp(ctx, hotswap.App{Name: "orders", CreatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, db: db,
		clk: &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)},
		ops: &fakeOps{deployments: map[string]string{"production": "d-old", "staging": "d-new"}},
	}
	f.reg = &metrics.Registry{Now: f.clk.Now}
	f.open = func() *Engine {
		e, err := Open(ctx, Config{Store: db, Ops: f.ops, Metrics: Local(f.reg), Now: f.clk.Now, Tick: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	f.eng = f.open()
	return f
}

func (f *fixture) start(strategy, analysis string) hotswap.Rollout {
	f.t.Helper()
	st, err := hotswap.ParseStrategy(strategy, time.Minute)
	if err != nil {
		f.t.Fatal(err)
	}
	a, err := hotswap.ParseAnalysis(analysis)
	if err != nil {
		f.t.Fatal(err)
	}
	r, err := f.eng.Start(f.ctx, StartRequest{App: "orders", Slot: "staging", Actor: "alice", Strategy: st, Analysis: a})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// serve records n requests to slot over the next d of the clock, errs of
// them 500s, each taking lat.
func (f *fixture) serve(slot string, n, errs int, lat, d time.Duration) {
	step := d / time.Duration(n)
	every := n / max(errs, 1) // one error in every this many requests
	for i := range n {
		status := 200
		if errs > 0 && i%every == 0 {
			status = 500
			errs--
		}
		f.reg.Observe("orders", slot, "d", status, lat)
		f.clk.add(step)
	}
}

func (f *fixture) tick() hotswap.Rollout {
	f.t.Helper()
	f.eng.Tick(f.ctx)
	rs, err := f.db.Rollouts(f.ctx, "orders", 1)
	if err != nil || len(rs) == 0 {
		f.t.Fatalf("rollouts: %v %v", rs, err)
	}
	return rs[0]
}

func TestGoodBuildStepsThenSwaps(t *testing.T) {
	f := newFixture(t)
	f.start("canary:10,50", "maxErrorRate=1%,maxP95=100ms,minRequests=20")
	r := f.tick()
	if r.State != hotswap.RolloutRunning || f.ops.share("staging") != 10 {
		t.Fatalf("after the first tick: state %s, share %v; want running at 10%%", r.State, f.ops.share("staging"))
	}
	for step, share := range []float64{10, 50} {
		f.serve("production", 200, 0, 5*time.Millisecond, 0)
		f.serve("staging", 100, 0, 5*time.Millisecond, 30*time.Second)
		if r = f.tick(); r.Step != step || f.ops.share("staging") != share {
			t.Fatalf("mid step %d: at step %d with share %v", step, r.Step, f.ops.share("staging"))
		}
		f.serve("staging", 100, 0, 5*time.Millisecond, 31*time.Second)
		r = f.tick()
	}
	if r.State != hotswap.RolloutSucceeded || f.ops.swaps != 1 || f.ops.share("staging") != 0 || len(f.ops.traffic) != 0 {
		t.Fatalf("after the last step: state %s, swaps %d, traffic %v; want succeeded, 1 swap, no rule", r.State, f.ops.swaps, f.ops.traffic)
	}
	if f.ops.deployments["production"] != "d-new" {
		t.Fatalf("production serves %s, want d-new", f.ops.deployments["production"])
	}
	var verdicts []string
	for _, x := range r.Results {
		verdicts = append(verdicts, x.Verdict)
	}
	if !slices.Equal(verdicts, []string{"passed", "passed"}) {
		t.Fatalf("verdicts %v", verdicts)
	}
	if x := r.Results[0]; x.Requests < 200 || x.Errors != 0 || x.Base == 0 || !strings.Contains(x.Detail, "staging: error rate 0%") {
		t.Fatalf("step 1's figures: %+v", x)
	}
}

func TestBadBuildRollsBackWithinTheStep(t *testing.T) {
	f := newFixture(t)
	f.start("canary:10,25,50", "maxErrorRate=1%,minRequests=100")
	f.tick()
	// 5% of staging's answers are 500s; production's are fine.
	f.serve("production", 500, 0, 5*time.Millisecond, 0)
	f.serve("staging", 60, 3, 5*time.Millisecond, 10*time.Second)
	if r := f.tick(); r.State != hotswap.RolloutRunning {
		t.Fatalf("with 60 of the 100 requests the analysis needs: %s, want running", r.State)
	}
	f.serve("staging", 60, 3, 5*time.Millisecond, 10*time.Second)
	r := f.tick()
	if r.State != hotswap.RolloutFailed {
		t.Fatalf("state %s (%s), want failed 20s into a 1m step", r.State, r.Reason)
	}
	for _, want := range []string{"step 1 (10%)", "error rate 5% over maxErrorRate 1%", "6 of 120", "production: error rate 0%"} {
		if !strings.Contains(r.Reason, want) {
			t.Errorf("reason %q lacks %q", r.Reason, want)
		}
	}
	if f.ops.swaps != 0 || len(f.ops.traffic) != 0 || f.ops.deployments["production"] != "d-old" {
		t.Fatalf("swaps %d, traffic %v, production %s: want both slots as they were and no rule", f.ops.swaps, f.ops.traffic, f.ops.deployments["production"])
	}
	if len(f.ops.quarantined) != 1 || !strings.HasPrefix(f.ops.quarantined[0], "d-new: progressive swap") {
		t.Fatalf("quarantined %v, want d-new", f.ops.quarantined)
	}
}

func TestSlowBuildFailsOnP95(t *testing.T) {
	f := newFixture(t)
	f.start("canary:10", "maxP95=300ms,minRequests=10")
	f.tick()
	f.serve("production", 50, 0, 20*time.Millisecond, 0)
	f.serve("staging", 50, 0, 900*time.Millisecond, 5*time.Second)
	r := f.tick()
	if r.State != hotswap.RolloutFailed || !strings.Contains(r.Reason, "p95 1.5s over maxP95 300ms") {
		t.Fatalf("state %s, reason %q; want failed on p95", r.State, r.Reason)
	}
}

// A limit production breaks as well is an outage, not the new build's
// fault: the step holds, and passes once the figures are good again.
func TestGeneralOutageHoldsTheStep(t *testing.T) {
	f := newFixture(t)
	f.start("canary:10", "maxErrorRate=1%,minRequests=10")
	f.tick()
	f.serve("production", 100, 10, 5*time.Millisecond, 0)
	f.serve("staging", 100, 10, 5*time.Millisecond, 61*time.Second)
	r := f.tick()
	if r.State != hotswap.RolloutRunning || len(r.Results) != 1 || r.Results[0].Verdict != "held" || !strings.Contains(r.Results[0].Detail, "not blaming the new build") {
		t.Fatalf("state %s, results %+v; want running, held", r.State, r.Results)
	}
	if f.ops.share("staging") != 10 {
		t.Fatalf("share %v while held, want 10", f.ops.share("staging"))
	}
	if r2 := f.tick(); r2.Version != r.Version {
		t.Fatalf("a second tick with the same figures wrote again (version %d -> %d)", r.Version, r2.Version)
	}
	// The outage ends; the window (the step's time so far, 61s+) is then
	// mostly good traffic.
	f.serve("production", 1000, 0, 5*time.Millisecond, 0)
	f.serve("staging", 1000, 0, 5*time.Millisecond, 10*time.Second)
	if r = f.tick(); r.State != hotswap.RolloutSucceeded {
		t.Fatalf("after the outage: %s (%+v)", r.State, r.Results)
	}
}

func TestTooFewRequestsHoldsTheStep(t *testing.T) {
	f := newFixture(t)
	f.start("canary:10", "minRequests=100")
	f.tick()
	f.serve("staging", 10, 0, time.Millisecond, 2*time.Minute)
	r := f.tick()
	if r.State != hotswap.RolloutRunning || r.Results[len(r.Results)-1].Detail != "10 of the 100 requests the analysis needs" {
		t.Fatalf("state %s, results %+v", r.State, r.Results)
	}
}

func TestNoAnalysisPassesOnTime(t *testing.T) {
	f := newFixture(t)
	f.start("canary:10,20", "")
	f.tick()
	f.clk.add(59 * time.Second)
	if r := f.tick(); r.Step != 0 {
		t.Fatalf("step %d before the step's minute is up", r.Step)
	}
	f.clk.add(time.Second)
	if r := f.tick(); r.Step != 1 || f.ops.share("staging") != 20 {
		t.Fatalf("step %d share %v after a minute", r.Step, f.ops.share("staging"))
	}
	f.clk.add(time.Minute)
	if r := f.tick(); r.State != hotswap.RolloutSucceeded {
		t.Fatalf("state %s", r.State)
	}
}

func TestCommands(t *testing.T) {
	t.Run("pause holds the share past the step's end, resume starts the step again", func(t *testing.T) {
		f := newFixture(t)
		r := f.start("canary:10,20", "")
		f.tick()
		if _, err := f.eng.Command(f.ctx, "bob", r.ID, hotswap.RolloutPause); err != nil {
			t.Fatal(err)
		}
		f.clk.add(5 * time.Minute)
		if r = f.tick(); r.State != hotswap.RolloutPaused || r.Step != 0 || f.ops.share("staging") != 10 {
			t.Fatalf("paused: state %s step %d share %v", r.State, r.Step, f.ops.share("staging"))
		}
		if _, err := f.eng.Command(f.ctx, "bob", r.ID, hotswap.RolloutResume); err != nil {
			t.Fatal(err)
		}
		f.clk.add(30 * time.Second)
		if r = f.tick(); r.Step != 0 {
			t.Fatalf("half a step after resuming: step %d, want 0", r.Step)
		}
		f.clk.add(30 * time.Second)
		if r = f.tick(); r.Step != 1 {
			t.Fatalf("a step after resuming: step %d, want 1", r.Step)
		}
	})
	t.Run("promote swaps now", func(t *testing.T) {
		f := newFixture(t)
		r := f.start("canary:10,20,30", "minRequests=1000")
		f.tick()
		if _, err := f.eng.Command(f.ctx, "bob", r.ID, hotswap.RolloutPromote); err != nil {
			t.Fatal(err)
		}
		if r = f.tick(); r.State != hotswap.RolloutSucceeded || f.ops.swaps != 1 || len(f.ops.traffic) != 0 {
			t.Fatalf("promoted: %s, swaps %d, traffic %v", r.State, f.ops.swaps, f.ops.traffic)
		}
		if last := r.Results[len(r.Results)-1]; last.Verdict != "skipped" || !strings.Contains(last.Detail, "promoted by bob") {
			t.Fatalf("last result %+v", last)
		}
	})
	t.Run("abort takes the share away and swaps nothing", func(t *testing.T) {
		f := newFixture(t)
		r := f.start("canary:10", "")
		f.tick()
		if _, err := f.eng.Command(f.ctx, "bob", r.ID, hotswap.RolloutAbort); err != nil {
			t.Fatal(err)
		}
		if r = f.tick(); r.State != hotswap.RolloutAborted || r.Reason != "aborted by bob" || f.ops.swaps != 0 || len(f.ops.traffic) != 0 || len(f.ops.quarantined) != 0 {
			t.Fatalf("aborted: %s %q, swaps %d, traffic %v, quarantined %v", r.State, r.Reason, f.ops.swaps, f.ops.traffic, f.ops.quarantined)
		}
		if _, err := f.eng.Command(f.ctx, "bob", r.ID, hotswap.RolloutResume); hotswap.ErrorKind(err) != hotswap.FailedPrecondition {
			t.Fatalf("resuming an aborted rollout: %v, want FailedPrecondition", err)
		}
	})
}

func TestStartRefusals(t *testing.T) {
	f := newFixture(t)
	st, _ := hotswap.ParseStrategy("canary:10", time.Minute)
	for _, c := range []struct {
		req  StartRequest
		want string
	}{
		{StartRequest{App: "orders", Slot: "production", Strategy: st}, "the target itself"},
		{StartRequest{App: "orders", Slot: "staging", Target: "qa", Strategy: st}, "its target is production"},
		{StartRequest{App: "orders", Slot: "nope", Strategy: st}, "not found"},
		{StartRequest{App: "orders", Slot: "Bad Name", Strategy: st}, "slot"},
		{StartRequest{App: "orders", Slot: "staging", Strategy: hotswap.Strategy{Name: "AllAtOnce"}, Analysis: hotswap.Analysis{MinRequests: 5}}, "no steps to analyse"},
	} {
		if _, err := f.eng.Start(f.ctx, c.req); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Start(%+v): %v, want an error with %q", c.req, err, c.want)
		}
	}
	f.ops.deployments["empty"] = ""
	if _, err := f.eng.Start(f.ctx, StartRequest{App: "orders", Slot: "empty", Strategy: st}); err == nil || !strings.Contains(err.Error(), "serves nothing yet") {
		t.Errorf("an empty slot: %v", err)
	}
	f.start("canary:10", "")
	if _, err := f.eng.Start(f.ctx, StartRequest{App: "orders", Slot: "staging", Strategy: st}); hotswap.ErrorKind(err) != hotswap.Conflict {
		t.Errorf("a second rollout of the app: %v, want Conflict", err)
	}
}

// A deploy to the slot under a rollout ends it: the new content was not
// what the steps measured.
func TestDriftAborts(t *testing.T) {
	f := newFixture(t)
	f.start("canary:10", "")
	f.tick()
	f.ops.mu.Lock()
	f.ops.deployments["staging"] = "d-other"
	f.ops.mu.Unlock()
	r := f.tick()
	if r.State != hotswap.RolloutAborted || !strings.Contains(r.Reason, "now serves d-other, not d-new") || len(f.ops.traffic) != 0 {
		t.Fatalf("state %s, reason %q, traffic %v", r.State, r.Reason, f.ops.traffic)
	}
}

// A deploy that lands after the engine's last look and before the swap
// begins is not swapped in: the swap expects what the steps measured, on
// either slot. The analysed build is not quarantined: it did not fail.
func TestDeployBeforeTheSwapIsNotSwappedIn(t *testing.T) {
	for _, tc := range []struct{ slot, deployed, says string }{
		{"staging", "d-unanalysed", "orders/staging serves d-unanalysed, not d-new"},
		{"production", "d-hotfix", "orders/production serves d-hotfix, not d-old"},
	} {
		t.Run(tc.slot, func(t *testing.T) {
			f := newFixture(t)
			f.start("canary:10", "")
			f.tick()
			f.ops.beforeSwap = func(d map[string]string) { d[tc.slot] = tc.deployed }
			f.clk.add(time.Minute)
			r := f.tick()
			if f.ops.swaps != 0 || f.ops.deployments["production"] == "d-new" {
				t.Fatalf("production serves %s after %d swaps; want the analysed build not swapped over the deploy", f.ops.deployments["production"], f.ops.swaps)
			}
			if r.State != hotswap.RolloutFailed || !strings.Contains(r.Reason, tc.says) || len(f.ops.traffic) != 0 {
				t.Fatalf("state %s, reason %q, traffic %v; want failed, saying %q, no rule left", r.State, r.Reason, f.ops.traffic, tc.says)
			}
			if len(f.ops.quarantined) != 0 {
				t.Errorf("quarantined %v; want nothing", f.ops.quarantined)
			}
		})
	}
}

// A swap refused because the slots turn out swapped already (this node's
// view lagged another's swap, which stopped before it recorded the end)
// ends the rollout succeeded, not failed.
func TestSwapFoundDoneSucceeds(t *testing.T) {
	f := newFixture(t)
	f.start("canary:10", "")
	f.tick()
	f.ops.beforeSwap = func(d map[string]string) { d["staging"], d["production"] = "d-old", "d-new" }
	f.clk.add(time.Minute)
	r := f.tick()
	if r.State != hotswap.RolloutSucceeded || f.ops.deployments["production"] != "d-new" || f.ops.swaps != 0 {
		t.Fatalf("state %s (%s), production %s, swaps %d; want succeeded on the swap found done, none made", r.State, r.Reason, f.ops.deployments["production"], f.ops.swaps)
	}
}

// Restarts: a new engine (a new server process) takes each phase up where
// the store says it is.
func TestRestartInEachPhase(t *testing.T) {
	t.Run("running: the step starts again with its share kept", func(t *testing.T) {
		f := newFixture(t)
		f.start("canary:10,20", "")
		f.tick()
		f.clk.add(time.Minute)
		f.tick() // step 2 at 20%
		f.clk.add(50 * time.Second)
		f.eng.Close()
		f.eng = f.open()
		r := f.tick()
		if r.Step != 1 || f.ops.share("staging") != 20 || r.Results[len(r.Results)-1].Verdict != "restarted" || !r.StepStarted.Equal(f.clk.Now()) {
			t.Fatalf("after the restart: step %d share %v results %+v started %v", r.Step, f.ops.share("staging"), r.Results, r.StepStarted)
		}
		f.clk.add(30 * time.Second)
		if r = f.tick(); r.State != hotswap.RolloutRunning {
			t.Fatalf("30s into the restarted step: %s", r.State)
		}
		f.clk.add(30 * time.Second)
		if r = f.tick(); r.State != hotswap.RolloutSucceeded {
			t.Fatalf("a step after the restart: %s", r.State)
		}
	})
	t.Run("swapping, before the swap", func(t *testing.T) {
		f := newFixture(t)
		r := f.start("canary:10", "")
		f.tick()
		r, _ = f.db.Rollout(f.ctx, r.ID)
		r.State = hotswap.RolloutSwapping // as stored by a process that died before swapping
		if _, err := f.db.UpdateRollout(f.ctx, r); err != nil {
			t.Fatal(err)
		}
		f.eng.Close()
		f.eng = f.open()
		if r = f.tick(); r.State != hotswap.RolloutSucceeded || f.ops.swaps != 1 || len(f.ops.traffic) != 0 {
			t.Fatalf("%s, swaps %d, traffic %v", r.State, f.ops.swaps, f.ops.traffic)
		}
	})
	t.Run("swapping, after the swap", func(t *testing.T) {
		f := newFixture(t)
		r := f.start("canary:10", "")
		f.tick()
		r, _ = f.db.Rollout(f.ctx, r.ID)
		r.State = hotswap.RolloutSwapping
		if _, err := f.db.UpdateRollout(f.ctx, r); err != nil {
			t.Fatal(err)
		}
		f.ops.Swap(f.ctx, ops.SwapRequest{App: "orders", Source: "staging", Target: "production"}) // done, then the process died
		f.eng.Close()
		f.eng = f.open()
		if r = f.tick(); r.State != hotswap.RolloutSucceeded || f.ops.swaps != 1 || f.ops.deployments["production"] != "d-new" {
			t.Fatalf("%s, swaps %d (want the one only), production %s", r.State, f.ops.swaps, f.ops.deployments["production"])
		}
	})
	t.Run("rolling back", func(t *testing.T) {
		f := newFixture(t)
		r := f.start("canary:10", "")
		f.tick()
		r, _ = f.db.Rollout(f.ctx, r.ID)
		r.State, r.Reason = hotswap.RolloutRollingBack, "step 1 (10%): error rate 5% over maxErrorRate 1%"
		if _, err := f.db.UpdateRollout(f.ctx, r); err != nil {
			t.Fatal(err)
		}
		f.eng.Close()
		f.eng = f.open()
		if r = f.tick(); r.State != hotswap.RolloutFailed || len(f.ops.traffic) != 0 || len(f.ops.quarantined) != 1 || f.ops.swaps != 0 {
			t.Fatalf("%s, traffic %v, quarantined %v, swaps %d", r.State, f.ops.traffic, f.ops.quarantined, f.ops.swaps)
		}
	})
	t.Run("paused stays paused", func(t *testing.T) {
		f := newFixture(t)
		r := f.start("canary:10", "")
		f.tick()
		f.eng.Command(f.ctx, "bob", r.ID, hotswap.RolloutPause)
		f.eng.Close()
		f.eng = f.open()
		f.clk.add(time.Hour)
		if r = f.tick(); r.State != hotswap.RolloutPaused || f.ops.share("staging") != 10 {
			t.Fatalf("%s share %v", r.State, f.ops.share("staging"))
		}
	})
}

// A swap refused for good ends the rollout failed, with the share gone.
func TestSwapFailure(t *testing.T) {
	f := newFixture(t)
	f.start("canary:10", "")
	f.tick()
	f.ops.swapErr = hotswap.Errorf(hotswap.FailedPrecondition, "staging is held by release r-1")
	f.clk.add(time.Minute)
	r := f.tick()
	if r.State != hotswap.RolloutFailed || !strings.Contains(r.Reason, "the swap failed: staging is held by release r-1") || len(f.ops.traffic) != 0 {
		t.Fatalf("%s %q traffic %v", r.State, r.Reason, f.ops.traffic)
	}
}

// A held step writes its reason once, however its figures change, and a
// rollout's results stay bounded.
func TestHeldStepWritesOnce(t *testing.T) {
	f := newFixture(t)
	f.start("canary:10", "minRequests=100000")
	f.tick()
	var r hotswap.Rollout
	for range 120 {
		f.serve("staging", 7, 0, time.Millisecond, 5*time.Second)
		r = f.tick()
	}
	if r.State != hotswap.RolloutRunning || len(r.Results) != 1 || r.Results[0].Code != "requests" {
		t.Fatalf("after 10 minutes held: %s with %d results (%+v)", r.State, len(r.Results), r.Results[len(r.Results)-1])
	}
}

// A build much worse than production fails even while production breaks
// the limit too.
func TestMuchWorseThanProductionFails(t *testing.T) {
	f := newFixture(t)
	f.start("canary:10", "maxErrorRate=1%,minRequests=50")
	f.tick()
	f.serve("production", 100, 2, time.Millisecond, 0)
	f.serve("staging", 100, 50, time.Millisecond, 5*time.Second)
	if r := f.tick(); r.State != hotswap.RolloutFailed || !strings.Contains(r.Reason, "error rate 50%") {
		t.Fatalf("staging at 50%% errors, production at 2%%: %s (%s)", r.State, r.Reason)
	}
}

// A step longer than the metrics' ten-minute window counts all its
// requests.
func TestLongStepCountsItsWholeTime(t *testing.T) {
	f := newFixture(t)
	st := hotswap.Strategy{Name: "canary:10", Steps: []hotswap.RolloutStep{{Percent: 10, Duration: hotswap.Duration(30 * time.Minute)}}}
	if _, err := f.eng.Start(f.ctx, StartRequest{App: "orders", Slot: "staging", Actor: "alice", Strategy: st, Analysis: hotswap.Analysis{MinRequests: 1000}}); err != nil {
		t.Fatal(err)
	}
	f.tick()
	var r hotswap.Rollout
	for range 30 {
		f.serve("staging", 80, 0, time.Millisecond, time.Minute)
		r = f.tick()
	}
	f.clk.add(time.Second)
	if r = f.tick(); r.State != hotswap.RolloutSucceeded {
		t.Fatalf("a 30m step with 2,400 requests against minRequests=1000: %s %+v", r.State, r.Results)
	}
}

// A share capped by another slot's rule is written once, not at each tick.
func TestCappedShareWrittenOnce(t *testing.T) {
	f := newFixture(t)
	f.ops.traffic = []hotswap.TrafficShare{{Slot: "canary", Percent: 95}}
	f.start("canary:10", "")
	for range 20 {
		f.tick()
		f.clk.add(time.Second)
	}
	if f.ops.writes != 1 || f.ops.share("staging") != 5 {
		t.Fatalf("%d writes of the rules, staging's share %v; want 1 write of 5%%", f.ops.writes, f.ops.share("staging"))
	}
}

// A swap refused with Conflict (a release's hold, say) is tried for a
// while, then fails the rollout with the reason.
func TestSwapRefusedFails(t *testing.T) {
	f := newFixture(t)
	f.start("canary:10", "")
	f.tick()
	f.ops.swapErr = hotswap.Errorf(hotswap.Conflict, "staging is held by release r-1 (waiting for approval)")
	f.clk.add(time.Minute)
	if r := f.tick(); r.State != hotswap.RolloutSwapping {
		t.Fatalf("first refusal: %s, want swapping (tried again)", r.State)
	}
	f.clk.add(swapPatience)
	r := f.tick()
	if r.State != hotswap.RolloutFailed || !strings.Contains(r.Reason, "held by release r-1") || len(f.ops.traffic) != 0 {
		t.Fatalf("after %v of refusals: %s %q traffic %v", swapPatience, r.State, r.Reason, f.ops.traffic)
	}
}

// A node that has just taken the lead waits before it acts: the old
// leader may still be moving the rollout.
func TestTakeoverDelay(t *testing.T) {
	f := newFixture(t)
	lead := false
	e, err := Open(f.ctx, Config{Store: f.db, Ops: f.ops, Metrics: Local(f.reg), Now: f.clk.Now, Tick: -1, Leader: func() bool { return lead }, TakeoverDelay: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	f.eng = e
	f.start("canary:10", "")
	f.tick()
	if f.ops.share("staging") != 0 {
		t.Fatal("a node that does not lead set the share")
	}
	lead = true
	f.tick()
	if f.ops.share("staging") != 0 {
		t.Fatal("a node that just took the lead acted at once")
	}
	time.Sleep(350 * time.Millisecond)
	f.tick()
	if f.ops.share("staging") != 10 {
		t.Fatal("the leader did not act after the takeover delay")
	}
}

// An abort while the final swap is refused (and retried) stops the
// rollout; once the engine has claimed the swap, an abort is refused, so a
// rollout is never both aborted and swapped.
func TestAbortWhileSwapRefused(t *testing.T) {
	f := newFixture(t)
	r := f.start("canary:10", "")
	f.tick()
	f.ops.swapErr = hotswap.Errorf(hotswap.Conflict, "an operation on orders is running")
	f.clk.add(time.Minute)
	if r = f.tick(); r.State != hotswap.RolloutSwapping || r.SwapBegun {
		t.Fatalf("after a refused swap: %s, swap begun %v", r.State, r.SwapBegun)
	}
	if _, err := f.eng.Command(f.ctx, "bob", r.ID, hotswap.RolloutAbort); err != nil {
		t.Fatalf("abort while the swap is refused: %v", err)
	}
	f.ops.swapErr = nil
	if r = f.tick(); r.State != hotswap.RolloutAborted || f.ops.swaps != 0 {
		t.Fatalf("after the abort: %s, swaps %d; want aborted, none", r.State, f.ops.swaps)
	}

	// A claimed swap refuses the abort.
	g := newFixture(t)
	r = g.start("canary:10", "")
	g.tick()
	r, _ = g.db.Rollout(g.ctx, r.ID)
	r.State, r.SwapBegun = hotswap.RolloutSwapping, true
	if _, err := g.db.UpdateRollout(g.ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := g.eng.Command(g.ctx, "bob", r.ID, hotswap.RolloutAbort); hotswap.ErrorKind(err) != hotswap.FailedPrecondition {
		t.Fatalf("abort of a rollout whose swap began: %v, want FailedPrecondition", err)
	}
}
