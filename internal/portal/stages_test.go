package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/pipeline"
	"github.com/hotswap/hotswap/internal/release"
)

func TestHumanDur(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{72 * time.Hour, "72h"},
		{90 * time.Minute, "1h30m"},
		{5 * time.Minute, "5m"},
		{time.Hour + 5*time.Second, "1h0m5s"},
		{90 * time.Second, "1m30s"},
		{300 * time.Millisecond, "300ms"},
		{0, "0s"},
	}
	for _, tc := range tests {
		if got := humanDur(tc.d); got != tc.want {
			t.Errorf("humanDur(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// TestGateLines checks that each gate reads as one state.
func TestGateLines(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	def := &pipeline.Stage{Gates: []pipeline.Gate{{MinSuccess: 5 * time.Minute}}}
	tests := []struct {
		name  string
		state string
		gate  release.GateRun
		want  string
	}{
		{"unchecked", release.StageGates, release.GateRun{}, "not checked yet"},
		{"passing", release.StageGates, release.GateRun{LastEval: at, FirstSuccess: at, Last: "passed"}, "passing since 09:30:00 UTC; passes after 5m in a row"},
		{"failing", release.StageGates, release.GateRun{LastEval: at, Last: "answered 503, expected [200]"}, "failing: answered 503, expected [200]"},
		{"passed", release.StageRunning, release.GateRun{LastEval: at, FirstSuccess: at, Last: "passed", Passed: true}, "passed"},
		{"no traffic", release.StageGates, release.GateRun{LastEval: at, FirstSuccess: at, Last: "no data: no requests in 5m0s"}, "passing with no data: no requests in 5m0s since 09:30:00 UTC; passes after 5m in a row"},
		{"passed without traffic", release.StageRunning, release.GateRun{LastEval: at, Last: "no data: no requests in 5m0s", Passed: true}, "passed with no data: no requests in 5m0s"},
		{"timed out", release.StageFailed, release.GateRun{LastEval: at, Last: "answered 503, expected [200]"}, "did not pass: answered 503, expected [200]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := releaseStage{StageRun: &release.StageRun{State: tc.state, Gates: []release.GateRun{tc.gate}}, Def: def}
			got := s.GateLines()
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("GateLines() = %q, want [%q]", got, tc.want)
			}
			if strings.Contains(got[0], "not passed yet") {
				t.Errorf("a gate line mixes two states: %q", got[0])
			}
		})
	}
}

// TestRunningStageLooksRunning checks that the stylesheet draws a release
// stage that runs like one that waits, not like one that succeeded (a slot
// that runs is green: it serves).
func TestRunningStageLooksRunning(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	status, css := b.get("/static/portal.css")
	if status != http.StatusOK {
		t.Fatalf("GET portal.css = %d", status)
	}
	rule := func(selector string) string {
		t.Helper()
		for _, line := range strings.Split(css, "\n") {
			if strings.HasPrefix(line, selector) || strings.Contains(line, ", "+selector+",") || strings.Contains(line, ", "+selector+" {") {
				if _, decl, ok := strings.Cut(line, "{"); ok {
					return strings.TrimSpace(decl)
				}
			}
		}
		t.Fatalf("portal.css has no rule for %s", selector)
		return ""
	}
	running, waiting, succeeded := rule(".stage-box .state-running"), rule(".state-pending"), rule(".state-succeeded")
	if running != waiting || running == succeeded {
		t.Errorf("a running stage is drawn %q; waiting %q, succeeded %q", running, waiting, succeeded)
	}
	if rule(".stage-states .state-running") != waiting {
		t.Error("in the releases table a running stage is not drawn as waiting")
	}
}

// TestEditorGutter checks that the pipeline editor numbers its lines and
// marks the lines its problems name.
func TestEditorGutter(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(adminToken)
	_, body := b.get("/pipelines/new")
	mustContain(t, body, `<pre class="gutter" id="pipeline-gutter" data-testid="pipeline-gutter" aria-hidden="true"><span class="ln">1</span>`, `wrap="off"`)
	def := "name: p\n# two\nartifact: {feed: orders}\nstages:\n  - name: s\n    approval: {approvers: [admin], required: many}\n"
	status, body := b.post("/pipelines", url.Values{"definition": {def}})
	if status != http.StatusBadRequest {
		t.Fatalf("apply = %d, want 400", status)
	}
	mustContain(t, body, `<span class="ln">2</span>`, `<span class="ln bad">6</span>`, `<span class="ln">7</span>`+"\n</pre>", `data-line="6"`)
	if strings.Contains(body, `<span class="ln">8</span>`) {
		t.Error("the gutter numbers more lines than the definition has")
	}
}

// TestPageURL checks that a page a POST renders says the address it can be
// loaded again at, and a GET page does not.
func TestPageURL(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(adminToken)
	b.post("/apps", url.Values{"name": {"orders"}})
	tests := []struct {
		path string
		form url.Values
		want string
	}{
		{"/apps/orders/slots/production/settings", url.Values{"name": {"1BAD"}, "value": {"x"}, "form": {"add-setting"}}, "/apps/orders/slots/production"},
		{"/apps/orders/slots/production/keys", url.Values{"scope": {"host"}, "name": {"ci"}, "value": {"short"}}, "/apps/orders/slots/production"},
		{"/apps/orders/slots", url.Values{"name": {"-bad"}}, "/apps/orders"},
		{"/apps", url.Values{"name": {"Bad"}}, "/apps"},
		{"/apps/orders/swap", url.Values{"source": {"production"}, "target": {"production"}}, "/apps/orders/swap"},
		{"/pipelines", url.Values{"definition": {"name: Bad\n"}}, "/pipelines/new"},
	}
	for _, tc := range tests {
		_, body := b.post(tc.path, tc.form)
		if !strings.Contains(body, `data-page-url="`+tc.want+`"`) {
			t.Errorf("POST %s: the page does not say its address %s", tc.path, tc.want)
		}
	}
	if _, body := b.get("/apps/orders"); strings.Contains(body, "data-page-url") {
		t.Error("a GET page says another address")
	}
}
