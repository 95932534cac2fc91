package portal

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/metrics"
)

var (
	markRe  = regexp.MustCompile(`<line class="mark" x1="([0-9.]+)" y1="0" x2="[0-9.]+" y2="80"/><text class="mark-label" x="[0-9.]+" y="([0-9.]+)" text-anchor="(start|end)">([^<]*)</text>`)
	limitRe = regexp.MustCompile(`<line class="limit" x1="0" y1="([0-9.]+)" x2="300" y2="[0-9.]+"/><text class="limit-label" x="300" dx="-2" y="[0-9.]+" text-anchor="end">([^<]*)</text>`)
)

// TestRolloutCharts: a progressive swap's page charts its slot beside
// production over the last hour (requests, error rate, p95, each pair on
// one scale), with a vertical line at each step's start labelled with its
// share and one where the share was taken away, and the analysis's
// maxErrorRate and maxP95 as horizontal lines on the error and latency
// charts; the app page shows them while the rollout is recent.
func TestRolloutCharts(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 22, 30, 15, 0, time.UTC)
	clk := &clock{t: now}
	reg := metrics.New()
	e, _ := newEnv(t).withRollouts(clk, reg)
	if _, err := e.ops.CreateApp(ctx, "t", "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ops.CreateSlot(ctx, "t", "orders", "staging", ""); err != nil {
		t.Fatal(err)
	}
	// Staging: 20 requests a minute from 22:11 to 22:25, the last five
	// minutes 1 in 20 a 500 (5%), in 40 ms (the 60 ms bucket); production 100
	// a minute, all well, in 60 ms.
	for m := 19; m >= 5; m-- {
		clk.Set(now.Add(-time.Duration(m) * time.Minute))
		for i := range 20 {
			status := 200
			if m <= 9 && i == 0 {
				status = 500
			}
			reg.Observe("orders", "staging", "d2", status, 40*time.Millisecond)
		}
		for range 100 {
			reg.Observe("orders", "production", "d1", 200, 60*time.Millisecond)
		}
	}
	clk.Set(now)
	// canary:10,50 started at 22:10:15; step 1 passed at 22:15:15; step 2
	// failed at 22:25:15 and the share went.
	step := hotswap.Duration(5 * time.Minute)
	ro := hotswap.Rollout{
		ID: "ro-charts", App: "orders", Slot: "staging", Target: "production",
		Strategy: hotswap.Strategy{Name: "canary:10,50", Steps: []hotswap.RolloutStep{{Percent: 10, Duration: step}, {Percent: 50, Duration: step}}},
		Analysis: hotswap.Analysis{MaxErrorRate: 0.01, MaxP95: hotswap.Duration(300 * time.Millisecond)},
		State:    hotswap.RolloutFailed, Step: 1, Deployment: "d2", TargetDeployment: "d1", Actor: "admin",
		Reason: "step 2 (50%): error rate 5% over maxErrorRate 1%",
		Results: []hotswap.StepResult{
			{Step: 0, Percent: 10, At: now.Add(-15 * time.Minute), Verdict: "passed", Requests: 100},
			{Step: 1, Percent: 50, At: now.Add(-5 * time.Minute), Verdict: "failed", Requests: 100, Errors: 5},
		},
		Created: now.Add(-20 * time.Minute), StepStarted: now.Add(-15 * time.Minute), Updated: now.Add(-5 * time.Minute),
	}
	if _, err := e.db.CreateRollout(ctx, ro); err != nil {
		t.Fatal(err)
	}

	b := e.browser()
	b.signIn(adminToken)
	_, body := b.get("/apps/orders/rollouts/ro-charts")
	charts := section(t, body, `data-testid="rollout-charts"`, "</div>\n<p class=\"note\">")
	if n := strings.Count(charts, "<svg "); n != 6 {
		t.Fatalf("rollout charts have %d <svg>, want 6 (requests, errors, p95 of staging and of production)", n)
	}
	mustContain(t, body,
		`data-testid="rollout-charts-summary">staging: last hour: 300 requests, 1.7% errors, p95 60 ms; production: last hour: 1,500 requests, 0% errors, p95 60 ms<`,
		`<title id="rollout-chart-errors-slot-title">Error rate, staging</title>`,
		`<title id="rollout-chart-latency-target-title">Latency p95, production</title>`,
		// Both error charts on one scale: staging's 5% peak, above the 1% limit.
		`Share of staging&#39;s responses with a 5xx status per minute from 21:31 to 22:31 UTC; the scale goes from 0 to 5%. Vertical lines mark the step to 10% at 22:10:15, the step to 50% at 22:15:15, the share taken away at 22:25:15. A horizontal line marks the analysis&#39;s maxErrorRate, 1%.`,
		`Share of production&#39;s responses with a 5xx status per minute from 21:31 to 22:31 UTC; the scale goes from 0 to 5%.`,
		`the scale goes from 0 to 500 ms. Vertical lines mark`,
	)

	// The figures one by one, in the order of the page: requests, errors
	// and latency of staging, then of production, for each metric.
	figs := regexp.MustCompile(`(?s)<figure class="chart" id="(rollout-chart-[a-z]+-[a-z]+)".*?</figure>`).FindAllStringSubmatch(charts, -1)
	var ids []string
	for _, f := range figs {
		ids = append(ids, f[1])
	}
	if got, want := strings.Join(ids, " "), "rollout-chart-requests-slot rollout-chart-requests-target rollout-chart-errors-slot rollout-chart-errors-target rollout-chart-latency-slot rollout-chart-latency-target"; got != want {
		t.Fatalf("charts = %s, want %s", got, want)
	}
	// The history starts at 21:31:00, one point a minute over 300 units:
	// 22:10:15 is 39.25 minutes in, 22:15:15 44.25, 22:25:15 54.25.
	wantMarks := [][4]string{{"199.6", "9.0", "start", "10%"}, {"225.0", "9.0", "start", "50%"}, {"275.8", "9.0", "start", "0%"}}
	wantLimits := map[string][][2]string{
		"errors":  {{"62.2", "max 1%"}},     // 1% of a scale to 5%: 77 - 74/5
		"latency": {{"32.6", "max 300 ms"}}, // 300 of a scale to 500 ms: 77 - 74*0.6
	}
	for _, f := range figs {
		id, fig := f[1], f[0]
		var marks [][4]string
		for _, m := range markRe.FindAllStringSubmatch(fig, -1) {
			marks = append(marks, [4]string{m[1], m[2], m[3], m[4]})
		}
		if diff := cmp.Diff(marks, wantMarks); diff != "" {
			t.Errorf("%s marks (-got +want):\n%s", id, diff)
		}
		var limits [][2]string
		for _, l := range limitRe.FindAllStringSubmatch(fig, -1) {
			limits = append(limits, [2]string{l[1], l[2]})
		}
		metric := strings.Split(id, "-")[2]
		if want := wantLimits[metric]; len(limits) != len(want) || len(want) > 0 && limits[0] != want[0] {
			t.Errorf("%s limits = %v, want %v", id, limits, want)
		}
	}

	// Recent: the app page shows the panel with the charts; the slot page
	// the panel without them (the slot's own are there).
	_, body = b.get("/apps/orders")
	mustContain(t, section(t, body, `data-testid="rollout-panel"`, "</section>"),
		`data-testid="rollout-state">failed<`, `data-testid="rollout-reason">step 2 (50%): error rate 5% over maxErrorRate 1%<`, `data-testid="rollout-charts"`)
	_, body = b.get("/apps/orders/slots/staging")
	if panel := section(t, body, `data-testid="rollout-panel"`, "</section>"); strings.Contains(panel, `data-testid="rollout-charts"`) {
		t.Errorf("the slot page's panel has the rollout's charts")
	}
}

// TestRolloutMoments: each step's start is marked with its share, the
// first at the rollout's start and the others when the step before
// passed (not when it was held, restarted or skipped), and the end with
// what it did to the share.
func TestRolloutMoments(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	steps := []hotswap.RolloutStep{{Percent: 10}, {Percent: 25}, {Percent: 50}}
	for _, tc := range []struct {
		name string
		r    hotswap.Rollout
		want []moment
	}{
		{"running", hotswap.Rollout{State: hotswap.RolloutRunning, Created: at(0), Updated: at(9), Results: []hotswap.StepResult{
			{Step: 0, At: at(2), Verdict: "held"}, {Step: 0, At: at(3), Verdict: "passed"}, {Step: 1, At: at(4), Verdict: "restarted"},
		}}, []moment{{at(0), "10%"}, {at(3), "25%"}}},
		{"succeeded", hotswap.Rollout{State: hotswap.RolloutSucceeded, Created: at(0), Updated: at(9), Results: []hotswap.StepResult{
			{Step: 0, At: at(2), Verdict: "passed"}, {Step: 1, At: at(4), Verdict: "passed"}, {Step: 2, At: at(6), Verdict: "passed"},
		}}, []moment{{at(0), "10%"}, {at(2), "25%"}, {at(4), "50%"}, {at(9), "swap"}}},
		{"aborted", hotswap.Rollout{State: hotswap.RolloutAborted, Created: at(0), Updated: at(1)},
			[]moment{{at(0), "10%"}, {at(1), "0%"}}},
		{"all at once", hotswap.Rollout{State: hotswap.RolloutSucceeded, Created: at(0), Updated: at(1)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name != "all at once" {
				tc.r.Strategy.Steps = steps
			}
			if diff := cmp.Diff(rolloutMoments(tc.r), tc.want); diff != "" {
				t.Errorf("moments (-got +want):\n%s", diff)
			}
		})
	}
}

// TestChartMarksApart: labels of marks close together go on rows of their
// own rather than over each other, and a label that would leave the chart
// on the right ends at its line instead.
func TestChartMarksApart(t *testing.T) {
	start := time.Date(2026, 12, 1, 21, 31, 0, 0, time.UTC)
	at := func(min float64) time.Time { return start.Add(time.Duration(min * float64(time.Minute))) }
	marks, words := chartMarks([]moment{{at(-5), "5%"}, {at(10), "10%"}, {at(57), "25%"}, {at(57.5), "50%"}, {at(59.9), "swap"}}, start, metrics.HistoryLen)
	want := []chartMark{
		{X: "50.8", TextX: "52.8", Anchor: "start", TextY: "9.0", Label: "10%"},
		{X: "289.8", TextX: "287.8", Anchor: "end", TextY: "9.0", Label: "25%"},
		{X: "292.4", TextX: "290.4", Anchor: "end", TextY: "18.0", Label: "50%"},
		{X: "300.0", TextX: "298.0", Anchor: "end", TextY: "27.0", Label: "swap"},
	}
	if diff := cmp.Diff(marks, want); diff != "" {
		t.Errorf("marks (-got +want):\n%s", diff)
	}
	if want := "the step to 10% at 21:41:00, the step to 25% at 22:28:00, the step to 50% at 22:28:30, the swap at 22:30:54"; words != want {
		t.Errorf("words = %q, want %q", words, want)
	}
}
