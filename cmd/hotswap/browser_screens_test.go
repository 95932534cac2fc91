package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser tests of issue 12's "truthful screens": what the portal says
// after an action is what happened, and the Back button does not bring
// back actions that no longer apply.

// screensServer starts a server with app orders, its production and
// staging slots each serving a deployment of goforward, and a browser
// signed in as admin. It returns the two deployment ids.
func screensServer(t *testing.T) (s *server, b *browser, prod, staged string) {
	t.Helper()
	s = startServer(t, "")
	pkg := zipDir(t, examplePackage(t, "goforward"))
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	prod = s.deploy("orders", "production", pkg)
	staged = s.deploy("orders", "staging", pkg)
	b = newBrowser(t, s.api, 180*time.Second)
	b.signIn(s.token, "admin")
	return s, b, prod, staged
}

// back goes back in the tab's history and waits for the page.
func (b *browser) back() {
	b.t.Helper()
	b.do("go back",
		chromedp.Evaluate[chromedp.Void](`window.__hotswapOldPage = true`),
		chromedp.NavigateBack(),
	)
	b.waitJS("the page after going back", `!window.__hotswapOldPage && document.readyState === "complete"`, 60*time.Second)
}

// TestBrowserSwapResult: a preview's result does not say the deployments
// moved, and after a swap back the Back button shows the earlier result as
// earlier, without a Swap back button.
func TestBrowserSwapResult(t *testing.T) {
	t.Parallel()
	s, b, prod, staged := screensServer(t)

	// The plan follows the selects, without a reload; a slot chosen twice
	// says what to do and disables the swap.
	b.open("/apps/orders/swap")
	b.do("mark the page", chromedp.Evaluate[chromedp.Void](`window.__hotswapNoReload = true`))
	choose := func(id, slot string) {
		t.Helper()
		b.do("choose "+slot+" in "+id, chromedp.Evaluate[chromedp.Void](`(function(){var s=document.getElementById("`+id+`");s.value="`+slot+`";s.dispatchEvent(new Event("change"))})()`))
	}
	choose("swap-target", "staging")
	b.waitJS("the plan error", `!!document.querySelector('[data-testid="swap-plan-error"]')`, 10*time.Second)
	if got := b.text("swap-plan-error"); !strings.Contains(got, "source and target are both staging") {
		t.Errorf("plan error = %q", got)
	}
	if !eval[bool](b, `document.getElementById("swap-submit").disabled && document.getElementById("swap-with-preview").disabled`) {
		t.Error("the swap buttons are enabled for a slot swapped with itself")
	}
	choose("swap-target", "production")
	b.waitJS("the plan", `!!document.querySelector('[data-testid="swap-plan"]')`, 10*time.Second)
	if got := b.text("swap-plan"); !strings.Contains(got, staged+" moves from staging to production") {
		t.Errorf("plan = %q", got)
	}
	if !eval[bool](b, `!document.getElementById("swap-submit").disabled && window.__hotswapNoReload === true && location.search.includes("target=production")`) {
		t.Error("after choosing production the swap is not offered, the page reloaded, or its URL does not say the choice")
	}

	b.submit("swap-with-preview")
	if got := b.text("swap-phase"); got != "preview" {
		t.Fatalf("swap phase = %q, want preview", got)
	}
	out := b.text("swap-outcome")
	if !strings.Contains(out, "production still serves "+prod+" until you complete the swap") || strings.Contains(out, "now serves") {
		t.Errorf("the preview's result says %q, want production still serving %s", out, prod)
	}

	b.submit("swap-complete")
	if got := b.text("swap-outcome"); !strings.Contains(got, staged+" now serves production") {
		t.Errorf("the completed result says %q", got)
	}
	b.submit("swap-back")
	if got := b.flash(); got != "Swapped staging into production" {
		t.Fatalf("flash = %q", got)
	}
	if got := s.slotDeployment("orders", "production"); got != prod {
		t.Fatalf("production serves %s after the swap back, want %s", got, prod)
	}

	// Back to the first swap's result: it is not offered as current.
	b.back()
	if got := b.location(); !strings.Contains(got, "phase=completed") {
		t.Fatalf("went back to %s, want the completed result", got)
	}
	if b.present("swap-back") {
		t.Error("the earlier result offers Swap back")
	}
	if got := b.text("swap-stale"); !strings.Contains(got, "earlier result") || !strings.Contains(got, "production serves "+prod+" now") {
		t.Errorf("the earlier result's note = %q", got)
	}
	if got := b.text("swap-outcome"); strings.Contains(got, "now serves") {
		t.Errorf("the earlier result says %q", got)
	}
	// Beside a result no plan shows, so no swap is offered until the
	// slots are chosen and their plan arrives.
	if !eval[bool](b, `document.getElementById("swap-submit").disabled && document.getElementById("swap-with-preview").disabled`) {
		t.Error("the earlier result offers Swap without a plan of what it would change")
	}
	choose("swap-target", "staging")
	b.waitJS("the plan error", `!!document.querySelector('[data-testid="swap-plan-error"]')`, 10*time.Second)
	choose("swap-target", "production")
	b.waitJS("the plan", `!!document.querySelector('[data-testid="swap-plan"]')`, 10*time.Second)
	if !eval[bool](b, `!document.getElementById("swap-submit").disabled`) {
		t.Error("with the plan shown the swap is not offered")
	}

	// The slot's URL, opened in the browser, answers a page listing the
	// functions to call without a key, not a bare "not found".
	_, port, _ := strings.Cut(s.fnAddr, ":")
	b.do("open the slot URL", chromedp.Navigate("http://orders-staging.localhost:"+port+"/"))
	if got := eval[string](b, `document.querySelector("h1") ? document.querySelector("h1").textContent : document.body.textContent`); got != "orders / staging" {
		t.Errorf("the slot URL shows %q, want the page of orders / staging", got)
	}
	if !eval[bool](b, `!!document.querySelector('a[href="/api/health"]')`) {
		t.Errorf("the slot URL's page does not link the anonymous health function: %s", eval[string](b, `document.body.innerHTML`))
	}
}

// TestBrowserRollbackConfirm: Roll back asks first, naming the slot and
// the deployment, and offers first the slot the deployment served last.
func TestBrowserRollbackConfirm(t *testing.T) {
	t.Parallel()
	s, b, prod, _ := screensServer(t)
	// prod moves to staging, then a new deployment replaces it there.
	s.must(http.StatusOK, "POST", "/api/v1/apps/orders/swap", map[string]any{"slot": "staging"}, nil)
	next := s.deploy("orders", "staging", zipDir(t, examplePackage(t, "goforward")))

	b.open("/apps/orders/deployments")
	if got := eval[string](b, `document.querySelector('[data-testid="rollback-slot-`+prod+`"]').value`); got != "staging" {
		t.Errorf("the rollback of %s offers %q first, want staging, where it served last", prod, got)
	}
	b.submit("rollback-" + prod)
	if got := b.text("rollback-confirm-text"); !strings.Contains(got, "Slot staging serves "+next+" now. After the rollback it serves "+prod) {
		t.Errorf("the question says %q", got)
	}
	if got := s.slotDeployment("orders", "staging"); got != next {
		t.Fatalf("staging serves %s before the rollback is confirmed, want %s", got, next)
	}
	// Cancel changes nothing; confirming rolls back.
	b.submit("rollback-cancel")
	if b.present("rollback-confirm") || s.slotDeployment("orders", "staging") != next {
		t.Fatal("Cancel did not leave the question with nothing changed")
	}
	b.back()
	b.submit("rollback-confirm-submit")
	if got, want := b.flash(), "Rolled back staging to "+prod; got != want {
		t.Errorf("flash = %q, want %q", got, want)
	}
	if got := s.slotDeployment("orders", "staging"); got != prod {
		t.Errorf("staging serves %s after the rollback, want %s", got, prod)
	}

	// A release stage that runs is drawn as under way, not as succeeded
	// (the portal's stylesheet, as the browser computes it).
	bg := func(state string) string {
		t.Helper()
		return eval[string](b, `(function(){var l=document.createElement("ol");l.className="chain";l.innerHTML='<li class="stage-box"><span class="badge state-`+state+`">x</span></li>';document.body.appendChild(l);var c=getComputedStyle(l.querySelector("span")).backgroundColor;l.remove();return c})()`)
	}
	if running, succeeded, pending := bg("running"), bg("succeeded"), bg("pending"); running == succeeded || running != pending {
		t.Errorf("a running stage is drawn %s, a succeeded one %s, a pending one %s", running, succeeded, pending)
	}
}

// TestZippedFolderHint: the API refuses a zip of the app's folder itself
// ("Compress" in Explorer or Finder) with what to do instead.
func TestZippedFolderHint(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	parent := t.TempDir()
	if err := os.CopyFS(filepath.Join(parent, "goforward"), os.DirFS(examplePackage(t, "goforward"))); err != nil {
		t.Fatal(err)
	}
	var res struct{ Error struct{ Message string } }
	if code := s.call("POST", "/api/v1/apps/orders/slots/production/deploy", zipDir(t, parent), &res); code != http.StatusBadRequest {
		t.Errorf("deploy of a zipped folder = %d, want 400", code)
	}
	if want := "host.json is missing at the root; the zip contains folder goforward/ — zip its contents instead"; !strings.Contains(res.Error.Message, want) {
		t.Errorf("error = %q, want it to say %q", res.Error.Message, want)
	}
}

// TestBrowserApproverInbox: an approver sees, in the header of any page
// and on the pipelines page, the release waiting for their approval, and
// goes from there to approve it; then it leaves the inbox.
func TestBrowserApproverInbox(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, "", func(m *Main) { m.Config.ReleaseTick = 20 * time.Millisecond })
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	qaToken := s.createUser("qa-lead", "approver")
	def := "name: rel\nartifact: {feed: orders}\nstages:\n  - name: prod\n    approval: {approvers: [qa-lead], required: 1, timeout: 72h}\n    deploy: {app: orders, slot: staging}\n"
	s.must(http.StatusCreated, "POST", "/api/v1/pipelines", []byte(def), nil)
	s.must(http.StatusCreated, "POST", "/api/v1/feeds/orders/artifacts?version=2.1.0", zipDir(t, examplePackage(t, "goforward")), nil)
	var rel struct{ ID string }
	s.must(http.StatusCreated, "POST", "/api/v1/releases", map[string]string{"pipeline": "rel", "version": "2.1.0"}, &rel)
	deadline := time.Now().Add(30 * time.Second)
	for s.release(rel.ID).Stages[0].State != "waiting for approval" {
		if time.Now().After(deadline) {
			t.Fatalf("the stage does not wait for approval: %+v", s.release(rel.ID))
		}
		time.Sleep(50 * time.Millisecond)
	}

	b := newBrowser(t, s.api, 180*time.Second)
	b.signIn(qaToken, "qa-lead")
	if got := b.text("nav-inbox-count"); got != "1" {
		t.Errorf("the header counts %q waiting, want 1", got)
	}
	b.submit("nav-inbox")
	if got := b.text("inbox-rel-1-prod"); !strings.Contains(got, "rel-1: stage prod of rel, version 2.1.0, requested by admin") {
		t.Errorf("inbox entry = %q", got)
	}
	b.do("open the release", chromedp.Click(`[data-testid="inbox-rel-1-prod"] a`))
	b.do("the approve button", chromedp.WaitVisible(tid("approve-prod")))
	b.submit("approve-prod")
	if got := b.flash(); !strings.HasPrefix(got, "Approved stage prod of rel-1") {
		t.Errorf("flash = %q", got)
	}
	if b.present("nav-inbox") {
		t.Error("the approved release stays in the header's inbox")
	}
	b.open("/pipelines")
	if b.present("inbox-rel-1-prod") {
		t.Error("the approved release stays in the inbox")
	}
}

// TestBrowserEditorJump: the pipeline editor numbers its lines, and a
// problem's line number selects that line and scrolls it into view.
func TestBrowserEditorJump(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	b := newBrowser(t, s.api, 120*time.Second)
	b.signIn(s.token, "admin")
	b.open("/pipelines/new")
	def := "name: long\n" + strings.Repeat("# a comment to make the definition longer than the editor\n", 60) +
		"artifact: {feed: orders}\nstages:\n  - name: prod\n    approval: {approvers: [admin], required: many}\n    deploy: {app: orders, slot: production}\n"
	bad := strings.Count(def[:strings.Index(def, "required: many")], "\n") + 1
	b.do("the definition", chromedp.SetValue(tid("pipeline-definition"), def))
	b.submit("pipeline-save")
	if got := b.text("pipeline-problems"); !strings.Contains(got, "line "+itoa(bad)) {
		t.Fatalf("problems = %q, want one at line %d", got, bad)
	}
	if n := eval[int](b, `document.querySelectorAll("#pipeline-gutter .ln").length`); n != strings.Count(def, "\n")+1 {
		t.Errorf("the gutter numbers %d lines, want %d", n, strings.Count(def, "\n")+1)
	}
	if got := eval[string](b, `document.querySelector("#pipeline-gutter .ln.bad").textContent`); got != itoa(bad) {
		t.Errorf("the gutter marks line %s, want %d", got, bad)
	}
	if eval[int](b, `document.getElementById("pipeline-definition").scrollTop`) != 0 {
		t.Fatal("the editor is scrolled before the jump")
	}
	b.do("jump to the line", chromedp.Click(`button.goto-line[data-line="`+itoa(bad)+`"]`))
	sel := eval[string](b, `(function(){var t=document.getElementById("pipeline-definition");return t.value.substring(t.selectionStart,t.selectionEnd)})()`)
	if strings.TrimSpace(sel) != "approval: {approvers: [admin], required: many}" {
		t.Errorf("the jump selects %q", sel)
	}
	if !eval[bool](b, `document.activeElement.id === "pipeline-definition"`) {
		t.Error("the jump does not put the focus in the editor")
	}
	// The line is in view, and the gutter scrolled with the text.
	if !eval[bool](b, `(function(){var t=document.getElementById("pipeline-definition"),lh=parseFloat(getComputedStyle(t).lineHeight),top=(`+itoa(bad-1)+`)*lh;return top>=t.scrollTop&&top+lh<=t.scrollTop+t.clientHeight&&t.scrollTop>0})()`) {
		t.Errorf("the line jumped to is not in view: %s", eval[string](b, `(function(){var t=document.getElementById("pipeline-definition");return JSON.stringify({st:t.scrollTop,ch:t.clientHeight,sh:t.scrollHeight,lh:getComputedStyle(t).lineHeight,bad:`+itoa(bad)+`})})()`))
	}
	if !eval[bool](b, `Math.abs(document.getElementById("pipeline-gutter").scrollTop - document.getElementById("pipeline-definition").scrollTop) <= 2`) {
		t.Error("the gutter did not scroll with the editor")
	}
	// Typing a line adds a number.
	b.do("type a line", chromedp.Evaluate[chromedp.Void](`(function(){var t=document.getElementById("pipeline-definition");t.value+="# one more\n";t.dispatchEvent(new Event("input"))})()`))
	if n := eval[int](b, `document.querySelectorAll("#pipeline-gutter .ln").length`); n != strings.Count(def, "\n")+2 {
		t.Errorf("after typing a line the gutter numbers %d lines, want %d", n, strings.Count(def, "\n")+2)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestBrowserFormsAndPhone: a form shown again with its error has an
// address that loads again; the confirmation after saving is in view; at
// phone width the keys' Show button and the history's labels fit.
func TestBrowserFormsAndPhone(t *testing.T) {
	t.Parallel()
	_, b, _, _ := screensServer(t)

	b.open("/apps/orders/slots/production")
	b.do("a bad setting name", chromedp.SendKeys(tid("setting-name"), "1BAD"), chromedp.SendKeys(tid("setting-value"), "x"))
	b.submit("add-setting")
	if got := b.text("setting-name-error"); got == "" {
		t.Fatal("no error next to the setting name")
	}
	if got := b.location(); got != b.base+"/apps/orders/slots/production" {
		t.Errorf("the failed form shows at %s, want the slot page's address", got)
	}
	b.do("reload", chromedp.Evaluate[chromedp.Void](`window.__hotswapOldPage = true; location.reload()`))
	b.waitJS("the reloaded page", `!window.__hotswapOldPage && document.readyState === "complete"`, 30*time.Second)
	if !b.present("slot-state") {
		t.Errorf("reloading the failed form's page gives %s", eval[string](b, `document.title`))
	}

	b.do("a good setting", chromedp.SetValue(tid("setting-name"), "GREETING"), chromedp.SetValue(tid("setting-value"), "hello"))
	b.submit("add-setting")
	if got := b.flash(); got != "Setting GREETING saved" {
		t.Errorf("flash = %q", got)
	}
	if !eval[bool](b, `(function(){var r=document.querySelector('[data-testid="flash"]').getBoundingClientRect();return r.top>=0&&r.bottom<=innerHeight&&location.hash==="#settings"})()`) {
		t.Error("the confirmation after saving a setting is out of view")
	}

	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	// Every labelled cell holds its label and value: none spills over.
	overflowing := `Array.from(document.querySelectorAll("%s td[data-label]")).filter(function(c){return c.scrollHeight>c.clientHeight+1||c.scrollWidth>c.clientWidth+1}).map(function(c){return c.dataset.label})`
	b.open("/apps/orders/slots/production")
	if got := eval[[]string](b, strings.Replace(overflowing, "%s", "#keys-table", 1)); len(got) != 0 {
		t.Errorf("key cells overflow at phone width: %v", got)
	}
	if !eval[bool](b, `Array.from(document.querySelectorAll('#keys-table button.reveal')).every(function(btn){var r=btn.getBoundingClientRect(),w=btn.closest(".table-wrap").getBoundingClientRect();return r.width>0&&r.right<=w.right&&r.right<=innerWidth})`) {
		t.Error("a key's Show button does not fit at phone width")
	}
	b.open("/apps/orders/deployments")
	if got := eval[[]string](b, strings.Replace(overflowing, "%s", "#history-table", 1)); len(got) != 0 {
		t.Errorf("history cells overflow at phone width: %v", got)
	}
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the history page is %dpx wide at phone width, want at most 390", w)
	}
	b.screenshot("history-phone", true)
}

// TestBrowserMalformedHash: a link whose fragment is not valid percent
// encoding (#%) still leaves the page's script working, so forms that ask
// before they act still ask (found in review: the script stopped early).
func TestBrowserMalformedHash(t *testing.T) {
	t.Parallel()
	_, b, _, _ := screensServer(t)
	b.open("/apps/orders#%")
	if !eval[bool](b, `document.querySelectorAll("form.confirm").length > 0`) {
		t.Fatal("the app page has no form that asks first")
	}
	asked := eval[bool](b, `(function(){
		var asked = false;
		window.confirm = function(){ asked = true; return false; };
		var f = document.querySelector("form.confirm");
		f.requestSubmit();
		return asked;
	})()`)
	if !asked {
		t.Fatal("with #% in the address, a form that asks first submitted without asking")
	}
}
