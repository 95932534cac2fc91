package portal

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/metrics"
	"github.com/hotswap/hotswap/internal/release"
	"github.com/hotswap/hotswap/internal/rollout"
)

// clock is a test clock the portal, the rollout engine and the metrics
// registry share.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// withRollouts returns a copy of e whose portal runs progressive swaps
// with an engine that the test ticks, all on clk, charting reg.
func (e *env) withRollouts(clk *clock, reg *metrics.Registry) (*env, *rollout.Engine) {
	e.t.Helper()
	ctx := context.Background()
	reg.Now = clk.Now
	eng, err := rollout.Open(ctx, rollout.Config{Store: e.db, Ops: e.ops, Metrics: rollout.Local(reg), Now: clk.Now, Tick: -1})
	if err != nil {
		e.t.Fatal(err)
	}
	auth := func(ctx context.Context, token string) (release.Actor, bool) {
		if subtle.ConstantTimeCompare([]byte(token), []byte(adminToken)) == 1 {
			return release.Actor{Name: "admin", Role: "admin"}, true
		}
		sum := sha256.Sum256([]byte(token))
		u, err := e.db.UserByTokenHash(ctx, hex.EncodeToString(sum[:]))
		if err != nil {
			return release.Actor{}, false
		}
		return release.Actor{Name: u.Name, Role: u.Role}, true
	}
	p, err := New(ctx, Config{Ops: e.ops, Releases: e.rel, Store: e.db, Authenticate: auth, AdminToken: adminToken,
		Logger: slog.New(slog.DiscardHandler), Version: "test", Metrics: reg, Rollouts: eng, Now: clk.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	e.t.Cleanup(func() {
		srv.Close()
		eng.Close()
	})
	c := *e
	c.portal, c.srv = p, srv
	return &c, eng
}

// section returns the element of body that starts at the tag holding
// marker, up to its closing tag (sections do not nest in the pages).
func section(t testing.TB, body, marker, closing string) string {
	t.Helper()
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("page has no %s", marker)
	}
	i = strings.LastIndex(body[:i], "<")
	j := strings.Index(body[i:], closing)
	if j < 0 {
		t.Fatalf("%s is not closed by %s", marker, closing)
	}
	return body[i : i+j+len(closing)]
}

// TestRolloutPanel: a progressive swap started from the swap page's form
// shows on the app page and on its slot's page (not on production's) with
// its strategy, state, step n of N and its share, the time left, the
// analysis limits, the step results with both slots' figures, and the
// commands for a deployer; its live status carries the same; the app's
// history lists it.
func TestRolloutPanel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts handler processes")
	}
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)}
	reg := metrics.New()
	e, eng := newEnv(t).withRollouts(clk, reg)
	b := e.browser()
	b.signIn(adminToken)
	prod, staged := deployedPair(t, e, b)

	_, body := b.get("/apps/orders/swap")
	form := section(t, body, `id="rollout-form"`, "</form>")
	mustContain(t, form, `action="/apps/orders/swap/progressive"`, `name="csrf"`, `<option value="staging" selected>staging</option>`,
		`name="strategy"`, `name="step"`, `name="analysis"`)
	if strings.Contains(form, `value="production"`) {
		t.Errorf("the progressive swap form offers production as the slot to swap in:\n%s", form)
	}

	status, body := b.post("/apps/orders/swap/progressive", url.Values{"slot": {"staging"}, "strategy": {"canary:10,50"}, "step": {"2m"},
		"analysis": {"maxErrorRate=1%,maxP95=300ms,minRequests=5"}})
	if status != http.StatusOK {
		t.Fatalf("start = %d:\n%s", status, body)
	}
	mustContain(t, body, "Progressive swap of staging into production started: 10% for 2m, 50% for 2m, then swap")
	ros, err := eng.List(ctx, "orders", 0)
	if err != nil || len(ros) != 1 {
		t.Fatalf("rollouts after the form = %v, %v; want one", ros, err)
	}
	id := ros[0].ID
	if r := ros[0]; r.Slot != "staging" || r.Target != "production" || r.Deployment != staged || r.TargetDeployment != prod || r.Actor != "admin" ||
		r.Analysis != (hotswap.Analysis{MaxErrorRate: 0.01, MaxP95: hotswap.Duration(300 * time.Millisecond), MinRequests: 5}) {
		t.Errorf("stored rollout = %+v", r)
	}

	eng.Tick(ctx) // the engine takes it up: staging gets 10%
	if got, _ := e.ops.Traffic(ctx, "orders"); !cmp.Equal(got, []hotswap.TrafficShare{{Slot: "staging", Percent: 10}}) {
		t.Fatalf("traffic in step 1 = %v", got)
	}
	// Step 1: staging serves 10 requests well; production 21, one a 503.
	clk.Add(30 * time.Second)
	for i := range 10 {
		reg.Observe("orders", "staging", staged, 200, time.Duration(20+i)*time.Millisecond)
	}
	for range 20 {
		reg.Observe("orders", "production", prod, 200, 30*time.Millisecond)
	}
	reg.Observe("orders", "production", prod, 503, 30*time.Millisecond)
	clk.Add(91 * time.Second) // the step's 2m are up
	eng.Tick(ctx)
	clk.Add(20 * time.Second)

	_, body = b.get("/apps/orders")
	panel := section(t, body, `data-testid="rollout-panel"`, "</section>")
	mustContain(t, panel,
		`Progressive swap of staging into production`,
		`data-state-key="rollout-`+id+`" id="rollout-state" data-testid="rollout-state">running<`,
		`<code>canary:10,50</code>: 10% for 2m, 50% for 2m, then swap`,
		`data-testid="rollout-step">step 2 of 2<`,
		`data-testid="rollout-share">50%<`,
		`data-testid="rollout-left">1m40s left in this step<`,
		`error rate at most 1%; p95 at most 300 ms; at least 5 requests a step before its figures count`,
		`<code>`+staged+`</code> from staging; production served <code>`+prod+`</code>`,
		`data-testid="rollout-verdict-0">passed<`,
		`<td data-label="Step">1 (10%)</td>`,
		`<td data-label="staging">10 requests, 0 errors (0%), p95 `,
		`<td data-label="production">21 requests, 1 error (4.8%), p95 `,
		`data-testid="rollout-pause">Pause<`, `data-testid="rollout-promote">Promote now<`, `data-testid="rollout-abort">Abort<`,
		`action="/apps/orders/rollouts/`+id+`/abort" class="confirm" data-confirm="Abort the progressive swap of staging?`,
		`name="back" value="app"`, `name="csrf"`,
		`href="/apps/orders/rollouts/`+id+`"`,
	)
	if strings.Contains(panel, "rollout-resume") {
		t.Errorf("a running rollout offers Resume")
	}
	mustContain(t, section(t, body, `data-testid="rollout-history"`, "</section>"), `data-testid="rollout-row-`+id+`"`, `<code>canary:10,50</code>`, `>running<`)

	_, body = b.get("/apps/orders/slots/staging")
	mustContain(t, section(t, body, `data-testid="rollout-panel"`, "</section>"), `data-testid="rollout-step">step 2 of 2<`, `name="back" value="slot"`)
	if _, body = b.get("/apps/orders/slots/production"); strings.Contains(body, `data-testid="rollout-panel"`) {
		t.Errorf("production's slot page shows staging's progressive swap")
	}
	// The swap page offers no second one while it runs.
	_, body = b.get("/apps/orders/swap")
	if !strings.Contains(body, `data-testid="progressive-active"`) || strings.Contains(body, `id="rollout-form"`) {
		t.Errorf("the swap page during a progressive swap: no notice, or the form:\n%s", section(t, body, `id="progressive"`, "</section>"))
	}

	var st struct {
		States map[string]string
		Text   map[string]string
	}
	_, raw := b.get("/portal/apps/orders/slots/staging/status.json")
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatalf("status: %v\n%s", err, raw)
	}
	want := map[string]string{"rollout-" + id: "running", "rollout-step-" + id: "step 2 of 2", "rollout-results-" + id: "1 result"}
	for k, v := range want {
		if st.States[k] != v {
			t.Errorf("status state %s = %q, want %q", k, st.States[k], v)
		}
	}
	if got := st.Text["rollout-left-"+id]; got != "1m40s left in this step" {
		t.Errorf("status text rollout-left = %q", got)
	}

	// An approver sees the panel without the commands.
	qa := e.browser()
	qa.signIn(e.addUser("qa", "approver"))
	_, body = qa.get("/apps/orders")
	if panel := section(t, body, `data-testid="rollout-panel"`, "</section>"); strings.Contains(panel, "<form") || !strings.Contains(panel, "step 2 of 2") {
		t.Errorf("an approver's panel:\n%s", panel)
	}
}

// TestRolloutCommands: Pause, Resume and Abort change the stored state
// (CSRF checked, the deploy role required), each back on the page it was
// pressed on; an aborted rollout shows why, offers no commands and its
// share is gone; a second start while one runs is refused beside the slot;
// Promote now swaps.
func TestRolloutCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts handler processes")
	}
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)}
	e, eng := newEnv(t).withRollouts(clk, metrics.New())
	b := e.browser()
	b.signIn(adminToken)
	prod, staged := deployedPair(t, e, b)
	start := url.Values{"slot": {"staging"}, "strategy": {"canary:10,50"}, "step": {"2m"}}
	if status, body := b.post("/apps/orders/swap/progressive", start); status != http.StatusOK {
		t.Fatalf("start = %d:\n%s", status, body)
	}
	ros, _ := eng.List(ctx, "orders", 1)
	if len(ros) != 1 {
		t.Fatal("no rollout stored")
	}
	id := ros[0].ID
	eng.Tick(ctx)
	state := func() hotswap.Rollout {
		t.Helper()
		r, err := eng.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	cmd := "/apps/orders/rollouts/" + id + "/"

	status, body := b.post("/apps/orders/swap/progressive", start)
	if status != http.StatusConflict || !strings.Contains(section(t, body, `data-testid="rollout-slot-error"`, "</p>"), "has a progressive swap running") {
		t.Errorf("a second start = %d; want 409 with the error beside the slot:\n%s", status, body)
	}

	status, body = b.post(cmd+"pause", url.Values{"back": {"slot"}})
	if status != http.StatusOK || !strings.Contains(body, "<h1>orders / staging</h1>") || !strings.Contains(body, "Progressive swap of staging paused") {
		t.Errorf("pause = %d, not back on staging's page with the message:\n%s", status, body)
	}
	if got := state().State; got != hotswap.RolloutPaused {
		t.Fatalf("state after Pause = %s", got)
	}
	panel := section(t, body, `data-testid="rollout-panel"`, "</section>")
	mustContain(t, panel, `data-testid="rollout-resume"`, "paused: the step&#39;s time starts again on resume")
	if strings.Contains(panel, `data-testid="rollout-pause"`) {
		t.Errorf("a paused rollout offers Pause")
	}

	// Refused: a forged CSRF token, an approver, another app's path.
	b.post(cmd+"resume", url.Values{"csrf": {"forged"}})
	qa := e.browser()
	qa.signIn(e.addUser("qa", "approver"))
	if status, _ := qa.post(cmd+"resume", nil); status != http.StatusForbidden {
		t.Errorf("an approver's Resume = %d, want 403", status)
	}
	b.post("/apps", url.Values{"name": {"other"}})
	if status, _ := b.post("/apps/other/rollouts/"+id+"/resume", nil); status != http.StatusNotFound {
		t.Errorf("Resume through another app's path = %d, want 404", status)
	}
	if status, _ := b.post(cmd+"explode", nil); status != http.StatusBadRequest {
		t.Errorf("an unknown command = %d, want 400", status)
	}
	if got := state().State; got != hotswap.RolloutPaused {
		t.Fatalf("a refused Resume changed the state to %s", got)
	}

	if status, body := b.post(cmd+"resume", url.Values{"back": {"rollout"}}); status != http.StatusOK || !strings.Contains(body, "<h1>Progressive swap "+id+"</h1>") {
		t.Errorf("resume = %d, not back on the rollout's page", status)
	}
	if got := state().State; got != hotswap.RolloutRunning {
		t.Fatalf("state after Resume = %s", got)
	}

	status, body = b.post(cmd+"abort", url.Values{"back": {"app"}})
	if status != http.StatusOK || !strings.Contains(body, "Progressive swap of staging aborted") {
		t.Errorf("abort = %d:\n%s", status, body)
	}
	if got := state().State; got != hotswap.RolloutAborting {
		t.Fatalf("state after Abort = %s", got)
	}
	eng.Tick(ctx)
	if got := state(); got.State != hotswap.RolloutAborted || got.Reason != "aborted by admin" {
		t.Fatalf("after the engine's tick: %s (%s)", got.State, got.Reason)
	}
	if got, _ := e.ops.Traffic(ctx, "orders"); len(got) != 0 {
		t.Errorf("traffic after the abort = %v, want none", got)
	}
	_, body = b.get("/apps/orders")
	panel = section(t, body, `data-testid="rollout-panel"`, "</section>")
	mustContain(t, panel, `data-testid="rollout-state">aborted<`, `data-testid="rollout-reason">aborted by admin<`)
	if strings.Contains(panel, `data-testid="rollout-commands"`) {
		t.Errorf("an aborted rollout offers commands:\n%s", panel)
	}
	mustContain(t, section(t, body, `data-testid="rollout-history"`, "</section>"), ">aborted<", "<td data-label=\"Reason\">aborted by admin</td>")
	// A command to an ended rollout says why it does nothing.
	status, body = b.post(cmd+"pause", nil)
	if status != http.StatusOK || !strings.Contains(body, "is aborted; only a running or paused one can be told to pause") {
		t.Errorf("pause of an aborted rollout = %d:\n%s", status, body)
	}

	// Long after, the app page shows only the history.
	clk.Add(rolloutRecent + time.Second)
	if _, body = b.get("/apps/orders"); strings.Contains(body, `data-testid="rollout-panel"`) || !strings.Contains(body, `data-testid="rollout-row-`+id+`"`) {
		t.Errorf("an app page long after the abort shows the panel, or no history row")
	}

	// Promote now swaps.
	if status, body := b.post("/apps/orders/swap/progressive", start); status != http.StatusOK {
		t.Fatalf("second start = %d:\n%s", status, body)
	}
	ros, _ = eng.List(ctx, "orders", 1)
	id = ros[0].ID
	eng.Tick(ctx)
	if status, body := b.post("/apps/orders/rollouts/"+id+"/promote", nil); status != http.StatusOK || !strings.Contains(body, "promoted") {
		t.Fatalf("promote = %d:\n%s", status, body)
	}
	eng.Tick(ctx)
	if got := state(); got.State != hotswap.RolloutSucceeded {
		t.Fatalf("after Promote now: %s (%s)", got.State, got.Reason)
	}
	if p, _ := e.ops.GetSlot(ctx, "orders", "production"); p.DeploymentID != staged {
		t.Errorf("production serves %s after the promoted swap, want %s (staging's); it served %s", p.DeploymentID, staged, prod)
	}
	_, body = b.get("/apps/orders/rollouts/" + id)
	mustContain(t, body, `data-testid="rollout-state">succeeded<`, `data-testid="rollout-verdict-0">skipped<`, "promoted by admin")
}

// TestRolloutFormErrors: the start form refuses bad input beside the field
// at fault, keeps what was typed, and stores nothing.
func TestRolloutFormErrors(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)}
	e, eng := newEnv(t).withRollouts(clk, metrics.New())
	if _, err := e.ops.CreateApp(ctx, "t", "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ops.CreateSlot(ctx, "t", "orders", "staging", ""); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.signIn(adminToken)
	for _, tc := range []struct {
		name                            string
		strategy, step, analysis, field string
		status                          int
		msg                             string
	}{
		{"no strategy", "", "", "", "strategy", 400, `strategy &#34;&#34;: empty; use canary:10,25,50`},
		{"share not a number", "canary:10,five", "", "", "strategy", 400, `share 2, &#34;five&#34;, is not a number`},
		{"shares fall", "canary:50,10", "", "", "strategy", 400, `step 2: share 10% does not rise above the step before&#39;s 50%`},
		{"step not a duration", "canary:10", "soon", "", "step", 400, `step &#34;soon&#34; is not a duration like 2m or 90s`},
		{"step with a preset", "Canary10Percent5Minutes", "2m", "", "step", 400, `Canary10Percent5Minutes sets its own step duration`},
		{"step too short", "canary:10", "100ms", "", "step", 400, `step 100ms is not between 1s and 24h`},
		{"bad analysis", "canary:10", "", "maxP95=fast", "analysis", 400, `maxP95 &#34;fast&#34; is not a duration from 1ms to 1m`},
		{"analysis of no steps", "AllAtOnce", "", "maxErrorRate=1%", "analysis", 400, `strategy AllAtOnce has no steps to analyse`},
		{"slot serves nothing", "canary:10", "", "", "slot", 412, `orders/staging serves nothing yet; deploy to it first`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.get("/apps/orders/swap")
			status, body := b.post("/apps/orders/swap/progressive", url.Values{"slot": {"staging"}, "strategy": {tc.strategy}, "step": {tc.step}, "analysis": {tc.analysis}})
			if status != tc.status {
				t.Errorf("status = %d, want %d", status, tc.status)
			}
			got := section(t, body, `data-testid="rollout-`+tc.field+`-error"`, "</p>")
			if !strings.Contains(got, tc.msg) {
				t.Errorf("error beside %s = %s, want %q", tc.field, got, tc.msg)
			}
			mustContain(t, body, `id="rollout-`+tc.field+`"`, `aria-invalid="true"`, `data-page-url="/apps/orders/swap"`)
			if tc.strategy != "" {
				mustContain(t, body, `name="strategy" data-testid="rollout-strategy-input" value="`+tc.strategy+`"`)
			}
		})
	}
	if ros, err := eng.List(ctx, "orders", 0); err != nil || len(ros) != 0 {
		t.Errorf("refused forms stored rollouts: %v, %v", ros, err)
	}

	qa := e.browser()
	qa.signIn(e.addUser("qa", "approver"))
	if _, body := qa.get("/apps/orders/swap"); strings.Contains(body, `id="rollout-form"`) {
		t.Errorf("an approver is offered the progressive swap form")
	}
	if status, _ := qa.post("/apps/orders/swap/progressive", url.Values{"slot": {"staging"}, "strategy": {"canary:10"}}); status != http.StatusForbidden {
		t.Errorf("an approver's start = %d, want 403", status)
	}
}
