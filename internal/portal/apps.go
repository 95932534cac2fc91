package portal

import (
	"bufio"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/apierr"
	"github.com/hotswap/hotswap/internal/ops"
)

func statusOf(err error) int { return apierr.Status(err) }

// failForm re-renders a page with err next to field of form id.
func failForm(r *http.Request, id, field string, err error) *form {
	f := newForm(id, r)
	f.Errors[field] = hotswap.ErrorMessage(err)
	return f
}

func appURL(app string) string { return "/apps/" + url.PathEscape(app) }

func slotURL(app, slot string) string {
	return appURL(app) + "/slots/" + url.PathEscape(slot)
}

// appsPage lists the apps with each slot's state.
func (p *Portal) appsPage(w http.ResponseWriter, r *http.Request) {
	p.renderApps(w, r, http.StatusOK, nil)
}

func (p *Portal) renderApps(w http.ResponseWriter, r *http.Request, status int, f *form) {
	apps, err := p.cfg.Ops.ListApps(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, status, "apps", &view{Title: "Function apps", Nav: "apps", Form: f, Data: apps})
}

func (p *Portal) createApp(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if _, err := p.cfg.Ops.CreateApp(r.Context(), actor(r).Name, name); err != nil {
		p.renderApps(w, r, statusOf(err), failForm(r, "create-app", "name", err))
		return
	}
	p.done(w, r, appURL(name), "App "+name+" created with its production slot")
}

func (p *Portal) deleteApp(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	if r.PostFormValue("confirm") != app {
		err := hotswap.Errorf(hotswap.Invalid, "type the app name %q to confirm", app)
		p.renderApp(w, r, http.StatusBadRequest, failForm(r, "delete-app", "confirm", err))
		return
	}
	if err := p.cfg.Ops.DeleteApp(r.Context(), actor(r).Name, app, ops.HoldOptions{}); err != nil {
		p.renderApp(w, r, statusOf(err), failForm(r, "delete-app", "confirm", err))
		return
	}
	p.done(w, r, "/apps", "App "+app+" deleted")
}

// appData is the app page's data: the deployment slots.
type appData struct {
	App      ops.AppView
	Rollouts *rolloutView // nil: no progressive swaps
}

func (p *Portal) appPage(w http.ResponseWriter, r *http.Request) {
	p.renderApp(w, r, http.StatusOK, nil)
}

func (p *Portal) renderApp(w http.ResponseWriter, r *http.Request, status int, f *form) {
	app, err := p.cfg.Ops.GetApp(r.Context(), r.PathValue("app"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, status, "app", &view{
		Title: app.Name + " · Deployment slots", Nav: "apps", Form: f, Data: appData{App: app, Rollouts: p.rollouts(r, app.Name, "")},
		StatusURL: "/portal" + appURL(app.Name) + "/status.json",
	})
}

func (p *Portal) createSlot(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	name := strings.TrimSpace(r.PostFormValue("name"))
	clone := r.PostFormValue("clone")
	if _, err := p.cfg.Ops.CreateSlot(r.Context(), actor(r).Name, app, name, clone); err != nil {
		field := "name"
		if hotswap.ErrorKind(err) == hotswap.NotFound && clone != "" {
			field = "clone"
		}
		p.renderApp(w, r, statusOf(err), failForm(r, "add-slot", field, err))
		return
	}
	msg := "Slot " + name + " added"
	if clone != "" {
		msg += ", with the settings of " + clone
	}
	p.done(w, r, appURL(app), msg)
}

func (p *Portal) deleteSlot(w http.ResponseWriter, r *http.Request) {
	app, slot := r.PathValue("app"), r.PathValue("slot")
	if err := p.cfg.Ops.DeleteSlot(r.Context(), actor(r).Name, app, slot, ops.HoldOptions{}); err != nil {
		p.setFlash(w, r, hotswap.ErrorMessage(err), true)
		http.Redirect(w, r, appURL(app), http.StatusSeeOther)
		return
	}
	p.done(w, r, appURL(app), "Slot "+slot+" deleted")
}

// statusJSON is what the live parts of a page poll: the state of each badge
// (by its data-state-key) and texts (by data-text-key).
type statusJSON struct {
	States map[string]string `json:"states"`
	Text   map[string]string `json:"text,omitempty"`
	Log    []logLine         `json:"log,omitempty"`
}

type logLine struct {
	Time   string `json:"time"`
	Stream string `json:"stream"`
	Text   string `json:"text"`
}

func (p *Portal) appStatus(r *http.Request) (any, error) {
	app, err := p.cfg.Ops.GetApp(r.Context(), r.PathValue("app"))
	if err != nil {
		return nil, err
	}
	st := statusJSON{States: map[string]string{}, Text: map[string]string{}}
	for _, s := range app.Slots {
		st.States["slot-"+s.Name] = hotswap.SlotStateText(s.State)
		st.Text["deployment-"+s.Name] = orNone(s.DeploymentID)
	}
	p.addRolloutStatus(r, &st, app.Name, "")
	return st, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// slotData is the slot page's data.
type slotData struct {
	App      ops.AppView
	Slot     ops.SlotView
	Keys     []keyRow
	Settings []hotswap.Setting
	// Deployments were deployed to the slot, serve it or served it.
	Deployments []ops.DeploymentView
	Newest      *ops.DeploymentView    // the newest deployed to the slot
	Serving     *ops.DeploymentView    // the one it serves now
	Releases    map[string]*releaseRef // by deployment id: the release that made it
	Log         []ops.LogLine
	Others      []string     // the app's other slots
	Functions   []string     // function names, for adding a function key
	Charts      *charts      // the last hour's requests; nil without metrics
	Rollouts    *rolloutView // the app's progressive swaps; nil without the engine
}

type keyRow struct {
	hotswap.Key
	ID string // id-safe name of the key
}

func (p *Portal) slotPage(w http.ResponseWriter, r *http.Request) {
	p.renderSlot(w, r, http.StatusOK, nil)
}

func (p *Portal) renderSlot(w http.ResponseWriter, r *http.Request, status int, f *form) {
	ctx := r.Context()
	app, slot := r.PathValue("app"), r.PathValue("slot")
	a, err := p.cfg.Ops.GetApp(ctx, app)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	sv, err := p.cfg.Ops.GetSlot(ctx, app, slot)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	d := slotData{App: a, Slot: sv, Charts: slotCharts(p.cfg.Metrics, app, slot), Rollouts: p.rollouts(r, app, slot)}
	for _, s := range a.Slots {
		if s.Name != slot {
			d.Others = append(d.Others, s.Name)
		}
	}
	for _, fn := range sv.Functions {
		d.Functions = append(d.Functions, fn.Name)
	}
	if allowed(actor(r), deploy) {
		keys, err := p.cfg.Ops.ListKeys(ctx, app, slot, "")
		if err != nil {
			p.fail(w, r, err)
			return
		}
		for _, k := range keys {
			id := k.Scope + "-" + k.Name
			if k.Scope == hotswap.ScopeFunction {
				id = k.Scope + "-" + k.Function + "-" + k.Name
			}
			d.Keys = append(d.Keys, keyRow{Key: k, ID: slug(id)})
		}
		if d.Settings, err = p.cfg.Ops.ListSettings(ctx, app, slot); err != nil {
			p.fail(w, r, err)
			return
		}
	} else {
		// Approvers see no keys: the function URLs go without their code.
		for i := range d.Slot.Functions {
			u, _, _ := strings.Cut(d.Slot.Functions[i].InvokeURL, "?code=")
			d.Slot.Functions[i].InvokeURL = u
		}
	}
	all, err := p.cfg.Ops.History(ctx, app, "")
	if err != nil {
		p.fail(w, r, err)
		return
	}
	d.Deployments = ofSlot(all, slot)
	for i, dv := range d.Deployments {
		if dv.Slot == slot && d.Newest == nil {
			d.Newest = &d.Deployments[i]
		}
		if dv.ID == sv.DeploymentID {
			d.Serving = &d.Deployments[i]
		}
	}
	d.Releases = p.releasesOf(ctx, d.Deployments)
	if d.Log, err = p.cfg.Ops.Log(ctx, app, slot, 200); err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, status, "slot", &view{
		Title: app + " / " + slot, Nav: "apps", Form: f, Data: d,
		StatusURL: "/portal" + slotURL(app, slot) + "/status.json",
	})
}

func (p *Portal) slotStatus(r *http.Request) (any, error) {
	ctx := r.Context()
	app, slot := r.PathValue("app"), r.PathValue("slot")
	sv, err := p.cfg.Ops.GetSlot(ctx, app, slot)
	if err != nil {
		return nil, err
	}
	st := statusJSON{
		States: map[string]string{"slot-" + slot: hotswap.SlotStateText(sv.State)},
		Text:   map[string]string{"deployment-" + slot: orNone(sv.DeploymentID)},
	}
	p.addRolloutStatus(r, &st, app, slot)
	// The newest deployment's progress: validating, starting, success, ...
	// A failed one is "failed" (its badge red) with its error beside it.
	if ds, err := p.cfg.Ops.Deployments(ctx, app, slot); err == nil && len(ds) > 0 {
		st.States["deploy-progress"] = ds[0].StatusText
		st.Text["deploy-progress-id"] = ds[0].ID
		st.Text["deploy-progress-error"] = ""
		if ds[0].Status == hotswap.DeployFailed {
			st.States["deploy-progress"] = ds[0].Status.String()
			st.Text["deploy-progress-error"] = ds[0].StatusText
		}
	}
	lines, err := p.cfg.Ops.Log(ctx, app, slot, 200)
	if err != nil {
		return nil, err
	}
	st.Log = make([]logLine, 0, len(lines))
	for _, l := range lines {
		st.Log = append(st.Log, logLine{Time: l.Time.UTC().Format("15:04:05"), Stream: l.Stream, Text: l.Text})
	}
	return st, nil
}

// deploy streams the uploaded package into a deploy; the form's message
// comes before it (see upload).
func (p *Portal) deploy(w http.ResponseWriter, r *http.Request, file *multipart.Part) {
	app, slot := r.PathValue("app"), r.PathValue("slot")
	if file == nil || file.FileName() == "" {
		p.renderSlot(w, r, http.StatusBadRequest, failForm(r, "deploy", "package", hotswap.Errorf(hotswap.Invalid, "choose a .zip package to upload")))
		return
	}
	pkg := bufio.NewReader(uploadReader{file, p.cfg.MaxPackageBytes})
	if _, err := pkg.Peek(1); errors.Is(err, io.EOF) {
		p.renderSlot(w, r, http.StatusBadRequest, failForm(r, "deploy", "package", hotswap.Errorf(hotswap.Invalid, "the file %s is empty", file.FileName())))
		return
	}
	res, err := p.cfg.Ops.Deploy(r.Context(), ops.DeployRequest{
		App: app, Slot: slot, Actor: actor(r).Name, Message: r.PostFormValue("message"), Package: pkg,
	})
	if err != nil {
		p.renderSlot(w, r, statusOf(err), failForm(r, "deploy", "package", err))
		return
	}
	msg := "Deployed " + res.Deployment.ID + " to " + slot
	switch {
	case res.AutoSwap != nil:
		msg += "; auto swapped into " + res.AutoSwap.Target
	case res.AutoSwapError != "":
		msg += "; the auto swap failed: " + res.AutoSwapError
	}
	p.done(w, r, slotURL(app, slot), msg)
}

// uploadReader reads an uploaded package and says what went wrong when a
// read fails: the upload was too large, or cut short.
type uploadReader struct {
	r     io.Reader
	limit int64
}

func (u uploadReader) Read(b []byte) (int, error) {
	n, err := u.r.Read(b)
	if err != nil && !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return n, hotswap.Errorf(hotswap.Invalid, "the package is larger than %d bytes", u.limit)
		}
		return n, hotswap.Errorf(hotswap.Invalid, "the upload was cut short or malformed: %v", err)
	}
	return n, err
}

func (p *Portal) setKey(w http.ResponseWriter, r *http.Request) {
	app, slot := r.PathValue("app"), r.PathValue("slot")
	k := hotswap.Key{
		Scope: r.PostFormValue("scope"), Function: r.PostFormValue("function"),
		Name: strings.TrimSpace(r.PostFormValue("name")), Value: strings.TrimSpace(r.PostFormValue("value")),
	}
	if k.Scope == hotswap.ScopeHost {
		k.Function = ""
	}
	if k.Value != "" {
		if err := hotswap.ValidateKeyValue(k.Value); err != nil {
			p.renderSlot(w, r, http.StatusBadRequest, failForm(r, "add-key", "value", err))
			return
		}
	}
	if _, err := p.cfg.Ops.SetKey(r.Context(), actor(r).Name, app, slot, k); err != nil {
		field := "name"
		if k.Scope == hotswap.ScopeFunction && k.Function == "" {
			field = "function"
		}
		p.renderSlot(w, r, statusOf(err), failForm(r, "add-key", field, err))
		return
	}
	p.done(w, r, slotURL(app, slot)+"#keys", "Key "+k.Name+" saved")
}

func (p *Portal) renewKey(w http.ResponseWriter, r *http.Request) {
	app, slot := r.PathValue("app"), r.PathValue("slot")
	k := hotswap.Key{Scope: r.PostFormValue("scope"), Function: r.PostFormValue("function"), Name: r.PostFormValue("name")}
	if _, err := p.cfg.Ops.SetKey(r.Context(), actor(r).Name, app, slot, k); err != nil {
		p.setFlash(w, r, hotswap.ErrorMessage(err), true)
		http.Redirect(w, r, slotURL(app, slot)+"#keys", http.StatusSeeOther)
		return
	}
	p.done(w, r, slotURL(app, slot)+"#keys", "Key "+k.Name+" renewed")
}

func (p *Portal) deleteKey(w http.ResponseWriter, r *http.Request) {
	app, slot := r.PathValue("app"), r.PathValue("slot")
	f := r.PostForm
	if err := p.cfg.Ops.RemoveKey(r.Context(), actor(r).Name, app, slot, f.Get("scope"), f.Get("function"), f.Get("name")); err != nil {
		p.setFlash(w, r, hotswap.ErrorMessage(err), true)
		http.Redirect(w, r, slotURL(app, slot)+"#keys", http.StatusSeeOther)
		return
	}
	p.done(w, r, slotURL(app, slot)+"#keys", "Key "+f.Get("name")+" removed")
}

func (p *Portal) setSetting(w http.ResponseWriter, r *http.Request) {
	app, slot := r.PathValue("app"), r.PathValue("slot")
	id := r.PostFormValue("form")
	if id == "" {
		id = "add-setting"
	}
	st := hotswap.Setting{Name: strings.TrimSpace(r.PostFormValue("name")), Value: r.PostFormValue("value"), Sticky: r.PostFormValue("sticky") != ""}
	if err := hotswap.ValidateSettingName(st.Name); err != nil {
		p.renderSlot(w, r, http.StatusBadRequest, failForm(r, id, "name", err))
		return
	}
	if _, err := p.cfg.Ops.UpdateSettings(r.Context(), actor(r).Name, app, slot, []hotswap.Setting{st}, nil, ops.HoldOptions{}); err != nil {
		p.renderSlot(w, r, statusOf(err), failForm(r, id, "value", err))
		return
	}
	p.done(w, r, slotURL(app, slot)+"#settings", "Setting "+st.Name+" saved")
}

func (p *Portal) deleteSetting(w http.ResponseWriter, r *http.Request) {
	app, slot := r.PathValue("app"), r.PathValue("slot")
	name := r.PostFormValue("name")
	if _, err := p.cfg.Ops.UpdateSettings(r.Context(), actor(r).Name, app, slot, nil, []string{name}, ops.HoldOptions{}); err != nil {
		p.setFlash(w, r, hotswap.ErrorMessage(err), true)
		http.Redirect(w, r, slotURL(app, slot)+"#settings", http.StatusSeeOther)
		return
	}
	p.done(w, r, slotURL(app, slot)+"#settings", "Setting "+name+" removed")
}

func (p *Portal) autoSwap(w http.ResponseWriter, r *http.Request) {
	app, slot := r.PathValue("app"), r.PathValue("slot")
	target := r.PostFormValue("target")
	if _, err := p.cfg.Ops.SetAutoSwap(r.Context(), actor(r).Name, app, slot, target); err != nil {
		p.renderSlot(w, r, statusOf(err), failForm(r, "autoswap", "target", err))
		return
	}
	msg := "Auto swap disabled"
	if target != "" {
		msg = "Auto swap into " + target + " enabled"
	}
	p.done(w, r, slotURL(app, slot), msg)
}

// swapData is the swap page's data.
type swapData struct {
	App            ops.AppView
	Source, Target string
	Plan           *ops.SwapPlan
	PlanErr        string
	Result         *ops.SwapResult
	// Stale says why the result, shown again from its URL, no longer
	// describes the slots; its actions are then not offered.
	Stale   string
	Preview *ops.SlotView // the slot in preview, if any
	Stay    []stayingSetting
	// Progressive is the form that starts a progressive swap; nil
	// without the engine.
	Progressive *rolloutForm
}

// stayingSetting is a slot setting that a swap leaves where it is.
type stayingSetting struct{ Slot, Name string }

func (p *Portal) swapPage(w http.ResponseWriter, r *http.Request) {
	p.renderSwap(w, r, http.StatusOK, nil, nil)
}

func (p *Portal) renderSwap(w http.ResponseWriter, r *http.Request, status int, f *form, res *ops.SwapResult) {
	ctx := r.Context()
	a, err := p.cfg.Ops.GetApp(ctx, r.PathValue("app"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		q = r.PostForm
	}
	d := swapData{App: a, Source: q.Get("source"), Target: q.Get("target")}
	var names []string
	for _, s := range a.Slots {
		names = append(names, s.Name)
	}
	d.Progressive = p.rolloutForm(ctx, a.Name, names)
	for i, s := range a.Slots {
		if s.Preview != nil {
			d.Preview = &a.Slots[i]
		}
		if d.Source == "" && s.Name != hotswap.ProductionSlot {
			d.Source = s.Name
		}
	}
	if d.Target == "" {
		d.Target = hotswap.ProductionSlot
	}
	if res == nil && q.Get("phase") != "" {
		ms, _ := strconv.ParseInt(q.Get("ms"), 10, 64)
		res = &ops.SwapResult{
			App: a.Name, Source: d.Source, Target: d.Target, Phase: q.Get("phase"),
			SourceDeployment: q.Get("sd"), TargetDeployment: q.Get("td"), ReusedWarm: q.Get("warm") == "1", DurationMs: ms,
		}
		d.Stale = staleResult(a, *res)
	}
	d.Result = res
	// The plan shows whenever no result does, for the slots chosen (the
	// selects fetch it again when they change).
	if res == nil && len(a.Slots) > 1 {
		plan, err := p.cfg.Ops.PlanSwap(ctx, a.Name, d.Source, d.Target)
		if d.Source == d.Target {
			err = hotswap.Errorf(hotswap.Invalid, "source and target are both %s: a slot cannot swap with itself; choose another slot as the source (the one you deployed to) or as the target (usually production)", d.Source)
		}
		if err != nil {
			d.PlanErr = hotswap.ErrorMessage(err)
		} else {
			d.Plan = &plan
			for _, slot := range []string{d.Target, d.Source} {
				set, err := p.cfg.Ops.ListSettings(ctx, a.Name, slot)
				if err != nil {
					continue
				}
				for _, st := range set {
					if st.Sticky {
						d.Stay = append(d.Stay, stayingSetting{Slot: slot, Name: st.Name})
					}
				}
			}
		}
	}
	p.render(w, r, status, "swap", &view{
		Title: a.Name + " · Swap", Nav: "apps", Form: f, Data: d,
		StatusURL: "/portal" + appURL(a.Name) + "/status.json",
	})
}

func swapRedirect(app string, res ops.SwapResult) string {
	q := url.Values{}
	q.Set("source", res.Source)
	q.Set("target", res.Target)
	q.Set("phase", res.Phase)
	q.Set("ms", strconv.FormatInt(res.DurationMs, 10))
	q.Set("sd", res.SourceDeployment)
	q.Set("td", res.TargetDeployment)
	if res.ReusedWarm {
		q.Set("warm", "1")
	}
	return appURL(app) + "/swap?" + q.Encode()
}

func (p *Portal) swap(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	req := ops.SwapRequest{
		App: app, Source: r.PostFormValue("source"), Target: r.PostFormValue("target"),
		Actor: actor(r).Name, Preview: r.PostFormValue("mode") == "preview",
	}
	if err := expectFromForm(r, &req); err != nil {
		p.renderSwap(w, r, statusOf(err), failForm(r, "swap", "source", err), nil)
		return
	}
	res, err := p.cfg.Ops.Swap(r.Context(), req)
	if errors.Is(err, ops.ErrNotAsExpected) {
		err = &hotswap.Error{Kind: hotswap.FailedPrecondition, Msg: "the slots changed since this page was shown: " + hotswap.ErrorMessage(err)}
	}
	if err != nil {
		p.renderSwap(w, r, statusOf(err), failForm(r, "swap", "source", err), nil)
		return
	}
	msg := "Swapped " + res.Source + " into " + res.Target
	if res.Phase == "preview" {
		msg = "Swap with preview started: " + res.Source + " serves its new content under " + res.Target + "'s settings"
	}
	p.done(w, r, swapRedirect(app, res), msg)
}

func (p *Portal) completeSwap(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	res, err := p.cfg.Ops.CompleteSwap(r.Context(), actor(r).Name, app, ops.HoldOptions{})
	if err != nil {
		p.renderSwap(w, r, statusOf(err), failForm(r, "swap", "source", err), nil)
		return
	}
	p.done(w, r, swapRedirect(app, res), "Swap completed: "+res.Source+" swapped into "+res.Target)
}

func (p *Portal) cancelSwap(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	res, err := p.cfg.Ops.CancelSwap(r.Context(), actor(r).Name, app, ops.HoldOptions{})
	if err != nil {
		p.renderSwap(w, r, statusOf(err), failForm(r, "swap", "source", err), nil)
		return
	}
	p.done(w, r, swapRedirect(app, res), "Swap cancelled: "+res.Source+" serves what it served")
}

// historyData is the deployment history page's data.
type historyData struct {
	App         ops.AppView
	Deployments []ops.DeploymentView
	// DefaultSlot is, by deployment id, the slot its rollback form offers
	// first: the one it served last.
	DefaultSlot map[string]string
	Confirm     *rollbackConfirm       // the rollback asked for, to confirm
	Releases    map[string]*releaseRef // by deployment id: the release that made it
}

func (p *Portal) historyPage(w http.ResponseWriter, r *http.Request) {
	p.renderHistory(w, r, http.StatusOK, nil)
}

func (p *Portal) renderHistory(w http.ResponseWriter, r *http.Request, status int, f *form) {
	ctx := r.Context()
	a, err := p.cfg.Ops.GetApp(ctx, r.PathValue("app"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	ds, err := p.cfg.Ops.History(ctx, a.Name, "")
	if err != nil {
		p.fail(w, r, err)
		return
	}
	d := historyData{App: a, Deployments: ds, DefaultSlot: make(map[string]string, len(ds)), Releases: p.releasesOf(ctx, ds)}
	for _, dv := range ds {
		d.DefaultSlot[dv.ID] = lastServed(dv)
	}
	if q := r.URL.Query(); r.Method == http.MethodGet && q.Get("rollback") != "" {
		d.Confirm = confirmRollback(a, ds, q.Get("rollback"), q.Get("slot"))
	}
	p.render(w, r, status, "history", &view{Title: a.Name + " · Deployment history", Nav: "apps", Form: f, Data: d})
}

func (p *Portal) rollback(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	id, slot := r.PostFormValue("deployment"), r.PostFormValue("slot")
	if _, err := p.cfg.Ops.Rollback(r.Context(), actor(r).Name, app, slot, id); err != nil {
		// Back to the question, at a URL that can be reloaded.
		p.setFlash(w, r, hotswap.ErrorMessage(err), true)
		q := url.Values{"rollback": {id}, "slot": {slot}}
		http.Redirect(w, r, appURL(app)+"/deployments?"+q.Encode(), http.StatusSeeOther)
		return
	}
	p.done(w, r, appURL(app)+"/deployments", "Rolled back "+slot+" to "+id)
}

// activityData is the activity page's data.
type activityData struct {
	App           ops.AppView
	Entries       []hotswap.Activity
	Actions       []string
	Action, Slot  string
	Total, Shown  int
	FilteredSlots []string
}

func (p *Portal) activityPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a, err := p.cfg.Ops.GetApp(ctx, r.PathValue("app"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	all, err := p.cfg.Ops.Activity(ctx, a.Name, 1000)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	d := activityData{App: a, Action: r.URL.Query().Get("action"), Slot: r.URL.Query().Get("slot"), Total: len(all)}
	for _, e := range all {
		if !slices.Contains(d.Actions, e.Action) {
			d.Actions = append(d.Actions, e.Action)
		}
		if e.Slot != "" && !slices.Contains(d.FilteredSlots, e.Slot) {
			d.FilteredSlots = append(d.FilteredSlots, e.Slot)
		}
		if d.Action != "" && e.Action != d.Action || d.Slot != "" && e.Slot != d.Slot {
			continue
		}
		d.Entries = append(d.Entries, e)
	}
	for _, s := range a.Slots {
		if !slices.Contains(d.FilteredSlots, s.Name) {
			d.FilteredSlots = append(d.FilteredSlots, s.Name)
		}
	}
	slices.Sort(d.Actions)
	slices.Sort(d.FilteredSlots)
	d.Shown = len(d.Entries)
	p.render(w, r, http.StatusOK, "activity", &view{Title: a.Name + " · Activity log", Nav: "apps", Data: d})
}
