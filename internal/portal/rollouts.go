package portal

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/rollout"
)

// Progressive swaps (rollouts) in the portal: a panel on the app page and
// on the rollout's slot page with the current step, its time left, the
// analysis limits, the step results and the commands; a form beside the
// swap form to start one; a page per rollout with its charts; and the
// app's last few in a short history.

// rolloutRecent is how long the app and slot pages still show a rollout
// after it ended, so that its viewers see how it ended and why.
const rolloutRecent = 10 * time.Minute

// rolloutHistoryLen is how many of an app's rollouts its page lists.
const rolloutHistoryLen = 5

func (p *Portal) rolloutRoutes() {
	if p.cfg.Rollouts == nil {
		return
	}
	m := p.mux
	m.HandleFunc("POST /apps/{app}/swap/progressive", p.action(deploy, p.startRollout))
	m.HandleFunc("GET /apps/{app}/rollouts/{id}", p.page(read, p.rolloutPage))
	m.HandleFunc("POST /apps/{app}/rollouts/{id}/{command}", p.action(deploy, p.commandRollout))
}

func rolloutURL(app, id string) string { return appURL(app) + "/rollouts/" + url.PathEscape(id) }

// rolloutPanel is a rollout as its panel shows it (the "rollout" partial).
type rolloutPanel struct {
	R hotswap.Rollout
	// Step says where the steps are: "step 2 of 3", "3 of 3 steps
	// passed", "no steps".
	Step string
	// Share is the slot's share of production's requests now: "10%".
	Share string
	// Left says how long the current step still runs, or why no step
	// time runs.
	Left     string
	Strategy string // the steps in words
	Limits   []string
	Results  []resultRow
	// Commands: the rollout takes pause, resume, promote and abort.
	Commands bool
	// Back is where a command returns: "app", "slot" or "rollout".
	Back        string
	ResultCount string         // "2 results"
	Charts      *rolloutCharts // nil: none on this page, or no metrics
	// CSRF and CanDeploy are the view's, for the command forms.
	CSRF      string
	CanDeploy bool
}

// resultRow is one step result in the panel's table.
type resultRow struct {
	hotswap.StepResult
	No         int    // the step's number, from 1
	Share      string // its share
	Slot, Base string // the slot's figures and production's
}

// rolloutView is what the app, slot and swap pages get of the app's
// rollouts.
type rolloutView struct {
	Panel   *rolloutPanel     // the running one, or one that just ended
	History []hotswap.Rollout // the last few, newest first
}

// rollouts returns the app's rollouts for its page (slot "") or a slot's
// page; nil without an engine. On a slot's page the panel shows only that
// slot's rollout, without the charts the slot's own stand for. A store
// error is logged and shows no rollouts: the rest of the page still serves.
func (p *Portal) rollouts(r *http.Request, app, slot string) *rolloutView {
	if p.cfg.Rollouts == nil {
		return nil
	}
	rs, err := p.cfg.Rollouts.List(r.Context(), app, rolloutHistoryLen)
	if err != nil {
		p.log.Warn("list rollouts", "app", app, "err", err)
		return &rolloutView{}
	}
	v := &rolloutView{History: rs}
	if len(rs) == 0 || !p.showPanel(rs[0]) || slot != "" && rs[0].Slot != slot {
		return v
	}
	back := "app"
	if slot != "" {
		back = "slot"
	}
	v.Panel = p.panel(r, rs[0], back)
	if slot == "" {
		v.Panel.Charts = rolloutChartsOf(p.cfg.Metrics, rs[0])
	}
	return v
}

// showPanel reports whether the app and slot pages show r: while it runs
// and for rolloutRecent after it ended.
func (p *Portal) showPanel(r hotswap.Rollout) bool {
	return !r.State.Done() || p.cfg.Now().Sub(r.Updated) < rolloutRecent
}

func (p *Portal) panel(req *http.Request, r hotswap.Rollout, back string) *rolloutPanel {
	d := &rolloutPanel{
		R: r, Step: stepText(r), Share: hotswap.FormatPercent(r.Share()) + "%", Left: p.timeLeft(r),
		Strategy: r.Strategy.String(), Limits: limits(r.Analysis), Back: back, ResultCount: resultCount(len(r.Results)),
		Commands:  r.State == hotswap.RolloutRunning || r.State == hotswap.RolloutPaused,
		CanDeploy: allowed(actor(req), deploy),
	}
	if rc := reqOf(req); rc != nil {
		d.CSRF = rc.csrf
	}
	for _, res := range r.Results {
		row := resultRow{StepResult: res, No: res.Step + 1, Share: hotswap.FormatPercent(res.Percent) + "%", Slot: "—", Base: "—"}
		if res.Requests > 0 || res.Base > 0 || res.Verdict == "failed" || res.Verdict == "held" {
			row.Slot = figures(res.Requests, res.Errors, time.Duration(res.P95))
			row.Base = figures(res.Base, res.BaseErrs, time.Duration(res.BaseP95))
		}
		d.Results = append(d.Results, row)
	}
	return d
}

// stepText says where a rollout's steps are.
func stepText(r hotswap.Rollout) string {
	n := len(r.Strategy.Steps)
	switch {
	case n == 0:
		return "no steps"
	case r.Step < n:
		return fmt.Sprintf("step %d of %d", r.Step+1, n)
	default:
		return fmt.Sprintf("%d of %d steps passed", n, n)
	}
}

// timeLeft says how long r's current step still runs, or what r does
// instead.
func (p *Portal) timeLeft(r hotswap.Rollout) string {
	switch r.State {
	case hotswap.RolloutRunning:
		if r.Step >= len(r.Strategy.Steps) {
			return ""
		}
		left := r.StepStarted.Add(time.Duration(r.Strategy.Steps[r.Step].Duration)).Sub(p.cfg.Now())
		if left <= 0 {
			return "the step's time is up: the analysis decides at its next look (a step without enough requests, or while production breaks a limit too, is held)"
		}
		return hotswap.FormatDuration(left.Round(time.Second)) + " left in this step"
	case hotswap.RolloutPaused:
		return "paused: the step's time starts again on resume"
	case hotswap.RolloutSwapping:
		return "swapping into " + r.Target
	case hotswap.RolloutRollingBack:
		return "rolling back: taking the share away"
	case hotswap.RolloutAborting:
		return "aborting: taking the share away"
	}
	return "ended " + r.Updated.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// limits says an analysis's limits in words.
func limits(a hotswap.Analysis) []string {
	var out []string
	if a.MaxErrorRate > 0 {
		out = append(out, "error rate at most "+hotswap.FormatPercent(a.MaxErrorRate*100)+"%")
	}
	if a.MaxP95 > 0 {
		out = append(out, "p95 at most "+latency(time.Duration(a.MaxP95)))
	}
	if a.MinRequests > 0 {
		out = append(out, "at least "+count(a.MinRequests)+" requests a step before its figures count")
	}
	return out
}

// figures formats a step's requests, errors and p95.
func figures(requests, errs int64, p95 time.Duration) string {
	if requests == 0 {
		return "no requests"
	}
	noun := "requests"
	if requests == 1 {
		noun = "request"
	}
	errNoun := "errors"
	if errs == 1 {
		errNoun = "error"
	}
	s := fmt.Sprintf("%s %s, %s %s (%s%%)", count(requests), noun, count(errs), errNoun, pct(100*float64(errs)/float64(requests)))
	if p95 > 0 {
		s += ", p95 " + latency(p95)
	}
	return s
}

// addRolloutStatus puts the shown rollout's state, step, results and time
// left into a page's live status, so that portal.js updates the panel
// (a changed state, step or result count reloads it).
func (p *Portal) addRolloutStatus(r *http.Request, st *statusJSON, app, slot string) {
	v := p.rollouts(r, app, slot)
	if v == nil || v.Panel == nil {
		return
	}
	d := v.Panel
	st.States["rollout-"+d.R.ID] = string(d.R.State)
	st.States["rollout-step-"+d.R.ID] = d.Step
	st.States["rollout-results-"+d.R.ID] = d.ResultCount
	st.Text["rollout-left-"+d.R.ID] = d.Left
	st.Text["rollout-share-"+d.R.ID] = d.Share
}

func resultCount(n int) string {
	if n == 1 {
		return "1 result"
	}
	return fmt.Sprintf("%d results", n)
}

// rolloutData is the rollout page's data.
type rolloutData struct {
	App   string
	Panel *rolloutPanel
}

func (p *Portal) rolloutPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	app := r.PathValue("app")
	ro, err := p.rollout(ctx, app, r.PathValue("id"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	d := p.panel(r, ro, "rollout")
	d.Charts = rolloutChartsOf(p.cfg.Metrics, ro)
	p.render(w, r, http.StatusOK, "rollout", &view{
		Title: app + " · Progressive swap " + ro.ID, Nav: "apps", Data: rolloutData{App: app, Panel: d},
		StatusURL: "/portal" + appURL(app) + "/status.json",
	})
}

// rollout returns the rollout id of app: NotFound if it is another app's.
func (p *Portal) rollout(ctx context.Context, app, id string) (hotswap.Rollout, error) {
	ro, err := p.cfg.Rollouts.Get(ctx, id)
	if err == nil && ro.App != app {
		err = hotswap.Errorf(hotswap.NotFound, "app %s has no progressive swap %s", app, id)
	}
	return ro, err
}

// commandRollout pauses, resumes, promotes or aborts a rollout, then goes
// back to the page the form was on.
func (p *Portal) commandRollout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	app, id := r.PathValue("app"), r.PathValue("id")
	cmd, err := hotswap.ParseRolloutCommand(r.PathValue("command"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	ro, err := p.rollout(ctx, app, id)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	back := appURL(app)
	switch r.PostFormValue("back") {
	case "slot":
		back = slotURL(app, ro.Slot)
	case "rollout":
		back = rolloutURL(app, id)
	}
	out, err := p.cfg.Rollouts.Command(ctx, actor(r).Name, id, cmd)
	if err != nil {
		p.setFlash(w, r, hotswap.ErrorMessage(err), true)
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	msg := map[hotswap.RolloutCommand]string{
		hotswap.RolloutPause:   "Progressive swap of " + out.Slot + " paused: its share stays, no step ends",
		hotswap.RolloutResume:  "Progressive swap of " + out.Slot + " resumed: the step's time starts again",
		hotswap.RolloutPromote: "Progressive swap of " + out.Slot + " promoted: the steps left are skipped and it swaps into " + out.Target,
		hotswap.RolloutAbort:   "Progressive swap of " + out.Slot + " aborted: its share is taken away, nothing is swapped",
	}[cmd]
	p.done(w, r, back, msg)
}

// rolloutForm is the start form's data on the swap page.
type rolloutForm struct {
	Slots  []string         // the slots that can be swapped in: all but production
	Active *hotswap.Rollout // the app's running rollout: no other starts
}

func (p *Portal) rolloutForm(ctx context.Context, app string, slots []string) *rolloutForm {
	if p.cfg.Rollouts == nil {
		return nil
	}
	f := &rolloutForm{}
	for _, s := range slots {
		if s != hotswap.ProductionSlot {
			f.Slots = append(f.Slots, s)
		}
	}
	r, ok, err := p.cfg.Rollouts.Active(ctx, app)
	if err != nil {
		// The form still shows; starting says what is wrong.
		p.log.Warn("active rollout", "app", app, "err", err)
	}
	if ok {
		f.Active = &r
	}
	return f
}

// startRollout starts a progressive swap of a slot into production from
// the swap page's form: slot, strategy, step and analysis, each refused
// beside its field.
func (p *Portal) startRollout(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	bad := func(field string, err error) {
		p.renderSwap(w, r, statusOf(err), failForm(r, "rollout", field, err), nil)
	}
	req := rollout.StartRequest{App: app, Slot: r.PostFormValue("slot"), Target: hotswap.ProductionSlot, Actor: actor(r).Name}
	var step time.Duration
	if s := strings.TrimSpace(r.PostFormValue("step")); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			bad("step", hotswap.Errorf(hotswap.Invalid, "step %q is not a duration like 2m or 90s", s))
			return
		}
		if d < hotswap.MinRolloutStep || d > hotswap.MaxRolloutStep {
			bad("step", hotswap.Errorf(hotswap.Invalid, "step %s is not between %s and %s", s, hotswap.FormatDuration(hotswap.MinRolloutStep), hotswap.FormatDuration(hotswap.MaxRolloutStep)))
			return
		}
		step = d
	}
	// A preset carries its own timing; only canary:P1,P2,... takes the step.
	name := strings.TrimSpace(r.PostFormValue("strategy"))
	custom := strings.HasPrefix(strings.ToLower(name), "canary:")
	var given time.Duration
	if custom {
		given = step
	}
	st, err := hotswap.ParseStrategy(name, given)
	if err != nil {
		bad("strategy", err)
		return
	}
	if step != 0 && !custom {
		bad("step", hotswap.Errorf(hotswap.Invalid, "%s sets its own step duration; leave Step empty, or give the shares as canary:10,25,50", st.Name))
		return
	}
	req.Strategy = st
	if req.Analysis, err = hotswap.ParseAnalysis(r.PostFormValue("analysis")); err != nil {
		bad("analysis", err)
		return
	}
	ro, err := p.cfg.Rollouts.Start(r.Context(), req)
	if err != nil {
		field := "slot"
		if len(req.Strategy.Steps) == 0 && !req.Analysis.IsZero() {
			field = "analysis"
		}
		bad(field, err)
		return
	}
	msg := "Progressive swap of " + ro.Slot + " into " + ro.Target + " started: " + ro.Strategy.String()
	p.done(w, r, rolloutURL(app, ro.ID), msg)
}
