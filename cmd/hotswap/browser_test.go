package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The browser tests drive headless Chromium against a real hotswap serve,
// through the portal on the admin listener. They never skip: CI without
// Chromium fails them, so `make deps` (which installs it) cannot be
// forgotten silently.

const chromiumPath = "/usr/bin/chromium"

// browser is one headless Chromium tab on the portal of a server.
type browser struct {
	t    testing.TB
	ctx  context.Context
	base string // the portal: http://127.0.0.1:port
}

// newBrowser starts Chromium with a fresh profile. The whole browser lives
// at most timeout, so a test cannot hang on it.
func newBrowser(t *testing.T, base string, timeout time.Duration) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s: %v: install chromium: make deps", chromiumPath, err)
	}
	ctx, cancelTimeout := context.WithTimeout(context.Background(), timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTimeout()
	})
	b := &browser{t: t, ctx: tabCtx, base: base}
	// The first action starts the browser and binds it to ctx.
	if err := chromedp.Do(tabCtx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

// in returns the same tab reporting to t (a subtest).
func (b *browser) in(t testing.TB) *browser {
	c := *b
	c.t = t
	return &c
}

// tid selects an element by its data-testid.
func tid(id string) chromedp.CSS { return chromedp.CSS(`[data-testid="` + id + `"]`) }

// do runs actions, each step bounded so a missing element fails fast.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v (page %s)", what, err, b.location())
	}
}

func (b *browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// open loads a portal page.
func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path))
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// text returns the trimmed text of the element with data-testid id, once
// it exists. It reads the text in one evaluation in the page: the portal's
// live refresh may replace the element at any moment, which would leave a
// DevTools node id (chromedp.TextContent) pointing at a detached node.
func (b *browser) text(id string) string {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	expr := `(function(){var e=document.querySelector('[data-testid="` + id + `"]');return e?[e.textContent]:[]})()`
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](expr))
		cancel()
		if err == nil && len(v) == 1 {
			return strings.TrimSpace(v[0])
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("text of %s: not found in 30s, last error %v (page %s)", id, err, b.location())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// present reports whether an element with data-testid id is in the page now.
func (b *browser) present(id string) bool {
	b.t.Helper()
	return eval[bool](b, `document.querySelector('[data-testid="`+id+`"]') !== null`)
}

// waitJS polls a JavaScript predicate until it is true. It survives
// navigations, unlike chromedp.Poll.
func (b *browser) waitJS(what, expr string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waiting %s for %s: last error %v (page %s)", timeout, what, err, b.location())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitText waits until the element with data-testid id has the text want,
// without reloading the page.
func (b *browser) waitText(id, want string, timeout time.Duration) {
	b.t.Helper()
	js, _ := json.Marshal(want)
	b.waitJS(id+" = "+want, `(function(){var e=document.querySelector('[data-testid="`+id+`"]');return !!e&&e.textContent.trim()===`+string(js)+`})()`, timeout)
}

// submit clicks a button that submits a form and waits for the next page.
func (b *browser) submit(id string) {
	b.t.Helper()
	b.do("click "+id,
		chromedp.Evaluate[chromedp.Void](`window.__hotswapOldPage = true`),
		chromedp.Click(tid(id)),
	)
	b.waitJS("the page after "+id, `!window.__hotswapOldPage && document.readyState === "complete"`, 60*time.Second)
}

// flash returns the flash message of the page, failing unless it has one.
func (b *browser) flash() string {
	b.t.Helper()
	if !b.present("flash") {
		b.t.Fatalf("no flash message on %s", b.location())
	}
	return b.text("flash")
}

// signIn signs in with token from the sign-in page and checks who is
// signed in.
func (b *browser) signIn(token, wantUser string) {
	b.t.Helper()
	b.open("/signin")
	b.do("type the token", chromedp.SendKeys(tid("signin-token"), token))
	b.submit("signin-submit")
	if got := b.text("current-user"); !strings.HasPrefix(got, wantUser+" ") {
		b.t.Fatalf("signed in as %q, want %s", got, wantUser)
	}
}

func (b *browser) signOut() {
	b.t.Helper()
	b.submit("signout")
	b.do("the sign-in page", chromedp.WaitVisible(tid("signin-token")))
	if b.present("current-user") {
		b.t.Fatal("still signed in after signing out")
	}
}

// cookie returns the value of the portal's cookie name, HttpOnly included.
func (b *browser) cookie(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base + "/"}})
	if err != nil {
		b.t.Fatalf("get cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return c.Value
		}
	}
	b.t.Fatalf("no cookie %s in the browser", name)
	return ""
}

// screenshot captures the page (all of it when full, else the viewport) and
// checks that it rendered. With HOTSWAP_SCREENSHOTS=1 it saves it as
// docs/screenshots/name.png for the README.
func (b *browser) screenshot(name string, full bool) {
	b.t.Helper()
	shot := chromedp.CaptureScreenshot()
	if full {
		shot = chromedp.FullScreenshot(100) // 100: PNG
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	// Let the fonts settle and the focus ring of a click fade.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.fonts.ready`, chromedp.EvalAwaitPromise)); err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	buf, err := chromedp.Run(ctx, shot)
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		b.t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	if n := colors(img); n < 16 {
		b.t.Fatalf("screenshot %s has %d colors: the page did not render", name, n)
	}
	if os.Getenv("HOTSWAP_SCREENSHOTS") != "1" {
		return
	}
	dir := filepath.Join(repoRoot(), "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// colors counts the distinct colors of a sample of img's pixels.
func colors(img image.Image) int {
	seen := map[[4]uint32]bool{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 3 {
		for x := r.Min.X; x < r.Max.X; x += 3 {
			cr, cg, cb, ca := img.At(x, y).RGBA()
			seen[[4]uint32{cr, cg, cb, ca}] = true
		}
	}
	return len(seen)
}

// in returns the same server reporting to t (a subtest).
func (s *server) in(t testing.TB) *server {
	c := *s
	c.t = t
	return &c
}

// served returns the deployment the functions listener serves on host,
// from the host admin API with the slot's master key.
func (s *server) served(host, app, slot string) string {
	s.t.Helper()
	master := findKey(s.keys(app, slot), "master", "", "_master")
	resp, body := s.fn("GET", host, "/admin/host/status", map[string]string{"x-functions-key": master}, nil)
	var st struct{ Deployment string }
	if resp.StatusCode != 200 || json.Unmarshal(body, &st) != nil {
		s.t.Fatalf("host status of %s = %d %s", host, resp.StatusCode, body)
	}
	return st.Deployment
}

// health calls the anonymous health function of goforward on host and
// returns the APP_VERSION it reports.
func (s *server) health(host string) string {
	s.t.Helper()
	resp, body := s.fn("GET", host, "/api/health", nil, nil)
	var h struct{ Status, Version string }
	if resp.StatusCode != 200 || json.Unmarshal(body, &h) != nil || h.Status != "healthy" {
		s.t.Fatalf("health of %s = %d %s", host, resp.StatusCode, body)
	}
	return h.Version
}

// callFunctionURL calls a function URL shown by the portal (its host name
// is <app>[-<slot>].localhost:port) on the functions listener.
func (s *server) callFunctionURL(raw string) (*http.Response, []byte) {
	s.t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		s.t.Fatalf("function URL %q: %v", raw, err)
	}
	if _, port, _ := strings.Cut(s.fnAddr, ":"); u.Port() != port {
		s.t.Fatalf("function URL %s: port %s, want the functions listener's %s", raw, u.Port(), port)
	}
	return s.fn("GET", u.Host, u.RequestURI(), nil, nil)
}

const browserPipeline = `name: orders-release
description: deploy to staging, approve, swap into production
artifact: {feed: orders}
stages:
  - name: staging
    deploy: {app: orders, slot: staging}
    checks:
      - http: {path: /api/health, expect: [200]}
  - name: production
    after: [staging]
    approval: {approvers: [qa-lead], required: 1, requesterCanApprove: false, timeout: 72h}
    gates:
      - http: {app: orders, slot: staging, path: /api/health, expect: [200]}
        every: 100ms
        minSuccess: 300ms
        timeout: 30s
    swap: {app: orders, slot: staging, target: production}
`

// TestBrowserWalkthrough walks the article in the portal: sign in, create
// an app, add a slot, upload a deploy, get the function URL and call it,
// swap with preview then complete, swap back, create a release and approve
// it as a second user, and roll back a deployment.
func TestBrowserWalkthrough(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, "", func(m *Main) { m.Config.ReleaseTick = 20 * time.Millisecond })
	b := newBrowser(t, s.api, 180*time.Second)
	pkg := zipDir(t, examplePackage(t, "goforward"))
	zipPath := filepath.Join(t.TempDir(), "orders-v2.zip")
	if err := os.WriteFile(zipPath, pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	var prod0, staged, releaseID, releaseDep string
	step := func(name string, f func(t *testing.T, s *server, b *browser)) {
		t.Helper()
		if !t.Run(name, func(t *testing.T) { f(t, s.in(t), b.in(t)) }) {
			t.FailNow()
		}
	}

	step("sign in", func(t *testing.T, s *server, b *browser) {
		b.open("/apps")
		b.do("redirect to sign-in", chromedp.WaitVisible(tid("signin-token")))
		b.screenshot("signin", false)
		b.signIn(s.token, "admin")
		if got := b.flash(); got != "Signed in as admin (admin)" {
			t.Errorf("flash = %q", got)
		}
	})

	step("create app", func(t *testing.T, s *server, b *browser) {
		b.do("type the name", chromedp.SendKeys(tid("app-name"), "orders"))
		b.submit("create-app")
		if got := b.location(); got != s.api+"/apps/orders" {
			t.Errorf("after create: page %s, want /apps/orders", got)
		}
		if got := b.text("slot-state-production"); got != "empty" {
			t.Errorf("production slot state = %q, want empty", got)
		}
	})

	step("add slot", func(t *testing.T, s *server, b *browser) {
		b.do("type the slot", chromedp.SendKeys(tid("slot-name"), "staging"))
		b.submit("add-slot")
		if got := b.flash(); got != "Slot staging added" {
			t.Errorf("flash = %q", got)
		}
		b.do("the staging row", chromedp.WaitVisible(tid("slot-row-staging")))
		// Production gets a first build and each slot a version, so the swap
		// has something to move; a sticky setting stays with its slot.
		prod0 = s.deploy("orders", "production", pkg)
		s.setSettings("orders", "production", false, "APP_VERSION", "1.0.0")
		s.setSettings("orders", "staging", false, "APP_VERSION", "2.0.0")
		s.setSettings("orders", "production", true, "DB_URL", "postgres://prod-db")
		s.setSettings("orders", "staging", true, "DB_URL", "postgres://staging-db")
	})

	step("upload deploy to staging", func(t *testing.T, s *server, b *browser) {
		b.do("open staging", chromedp.Click(tid("slot-link-staging")))
		b.do("the deploy form", chromedp.WaitVisible(tid("deploy-package")))
		b.do("choose the package",
			chromedp.SetUploadFiles(tid("deploy-package"), []string{zipPath}),
			chromedp.SendKeys(tid("deploy-message"), "v2 from the browser"),
		)
		b.submit("deploy-submit")
		flash := b.flash()
		if !strings.HasPrefix(flash, "Deployed d-") || !strings.HasSuffix(flash, " to staging") {
			t.Fatalf("flash = %q, want Deployed <id> to staging", flash)
		}
		staged = b.text("slot-deployment")
		if want := strings.TrimSuffix(strings.TrimPrefix(flash, "Deployed "), " to staging"); staged != want {
			t.Errorf("slot page shows deployment %q, want %q", staged, want)
		}
		if got := s.slotDeployment("orders", "staging"); got != staged {
			t.Errorf("API: staging serves %s, want %s", got, staged)
		}
		if got := b.text("slot-state"); got != "running" {
			t.Errorf("slot state = %q, want running", got)
		}
		if log := b.text("slot-log"); log == "" {
			t.Error("the slot log is empty after a deploy")
		}
	})

	step("get function URL", func(t *testing.T, s *server, b *browser) {
		// The URLs carry keys: none shows before it is asked for.
		if n := eval[int](b, `Array.from(document.querySelectorAll(".url-box")).filter(e => e.getClientRects().length > 0).length`); n != 0 {
			t.Fatalf("%d function URLs show before any is asked for", n)
		}
		b.do("get the URL", chromedp.Click(tid("get-url-hello")), chromedp.WaitVisible(tid("function-url-hello")))
		u, err := chromedp.Run(b.ctx, chromedp.Value(tid("function-url-hello")))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(u, "http://orders-staging.localhost:") || !strings.Contains(u, "/api/hello?code=") {
			t.Fatalf("function URL = %q, want http://orders-staging.localhost:PORT/api/hello?code=...", u)
		}
		resp, body := s.callFunctionURL(u + "&name=Browser")
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"message":"Hello, Browser"`) || !strings.Contains(string(body), `"slot":"staging"`) {
			t.Fatalf("GET %s = %d %s", u, resp.StatusCode, body)
		}
		// The staging key does not open production.
		pu, _ := url.Parse(u)
		if resp, _ := s.fn("GET", "orders.localhost", pu.RequestURI(), nil, nil); resp.StatusCode != 401 {
			t.Errorf("staging's URL on production = %d, want 401", resp.StatusCode)
		}
		b.do("scroll to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		b.screenshot("slot", false)
		b.open("/apps")
		b.screenshot("apps", true)
		b.open("/apps/orders")
		b.screenshot("app-slots", true)
	})

	step("swap with preview then complete", func(t *testing.T, s *server, b *browser) {
		b.submit("open-swap")
		b.do("choose the slots",
			chromedp.SetValue(tid("swap-source"), "staging"),
			chromedp.SetValue(tid("swap-target"), "production"),
		)
		b.submit("swap-preview-changes")
		plan := b.text("swap-plan")
		for _, want := range []string{staged + " moves from staging to production", prod0 + " moves from production to staging", "APP_VERSION", "DB_URL (production)"} {
			if !strings.Contains(plan, want) {
				t.Errorf("the plan does not say %q:\n%s", want, plan)
			}
		}
		b.screenshot("swap", true)

		b.submit("swap-with-preview")
		b.do("the preview", chromedp.WaitVisible(tid("preview-active")))
		if got := b.text("swap-phase"); got != "preview" {
			t.Fatalf("swap phase = %q, want preview", got)
		}
		if got := b.text("swap-slot-state-staging"); got != "preview" {
			t.Errorf("staging state = %q, want preview", got)
		}
		// Staging serves its new content (under production's slot settings);
		// production is untouched until the swap completes.
		if got := s.served("orders-staging.localhost", "orders", "staging"); got != staged {
			t.Errorf("staging serves %s during the preview, want %s", got, staged)
		}
		if got := s.health("orders-staging.localhost"); got != "2.0.0" {
			t.Errorf("staging in preview has APP_VERSION %q, want its own 2.0.0", got)
		}
		if got := s.served("orders.localhost", "orders", "production"); got != prod0 {
			t.Errorf("production serves %s during the preview, want %s", got, prod0)
		}

		b.submit("swap-complete")
		if got := b.text("swap-phase"); got != "completed" {
			t.Fatalf("swap phase = %q, want completed", got)
		}
		if d := b.text("swap-duration"); d == "" {
			t.Error("no swap duration")
		}
		if got := s.served("orders.localhost", "orders", "production"); got != staged {
			t.Errorf("production serves %s, want the staged %s", got, staged)
		}
		if got := s.health("orders.localhost"); got != "2.0.0" {
			t.Errorf("production health reports APP_VERSION %q, want 2.0.0", got)
		}
		key := findKey(s.keys("orders", "production"), "host", "", "default")
		resp, body := s.fn("GET", "orders.localhost", "/api/hello?code="+url.QueryEscape(key), nil, nil)
		if resp.StatusCode != 200 || !strings.Contains(string(body), "Hello") || !strings.Contains(string(body), `"version":"2.0.0"`) {
			t.Errorf("production hello = %d %s", resp.StatusCode, body)
		}
	})

	step("swap back", func(t *testing.T, s *server, b *browser) {
		b.submit("swap-back")
		if got := b.text("swap-phase"); got != "completed" {
			t.Fatalf("swap phase = %q, want completed", got)
		}
		if got := b.flash(); got != "Swapped staging into production" {
			t.Errorf("flash = %q", got)
		}
		if got := s.served("orders.localhost", "orders", "production"); got != prod0 {
			t.Errorf("production serves %s after the swap back, want %s", got, prod0)
		}
		if got := s.served("orders-staging.localhost", "orders", "staging"); got != staged {
			t.Errorf("staging serves %s after the swap back, want %s", got, staged)
		}
	})

	var qaToken string
	step("create release", func(t *testing.T, s *server, b *browser) {
		ciToken := s.createUser("ci", "deployer")
		qaToken = s.createUser("qa-lead", "approver")

		// The editor shows problems in place and saves nothing.
		b.open("/pipelines/new")
		b.do("a broken definition", chromedp.SetValue(tid("pipeline-definition"), strings.Replace(browserPipeline, "required: 1", "required: many", 1)))
		b.submit("pipeline-save")
		if got := b.text("pipeline-problems"); !strings.Contains(got, "line ") {
			t.Errorf("problems = %q, want them by line", got)
		}
		b.do("the definition", chromedp.SetValue(tid("pipeline-definition"), browserPipeline))
		b.submit("pipeline-save")
		if got := b.flash(); got != "Pipeline orders-release saved (version 1)" {
			t.Fatalf("flash = %q", got)
		}
		for _, st := range []string{"staging", "production"} {
			b.do("stage box "+st, chromedp.WaitVisible(tid("stage-box-"+st)))
		}
		if got := b.text("stage-box-production"); !strings.Contains(got, "Approval: 1 of qa-lead") || !strings.Contains(got, "Gate: HTTP orders/staging/api/health") {
			t.Errorf("production stage box = %q", got)
		}

		// The pencil opens the rename form, and closes it again.
		renameShown := `document.getElementById("rename-form").getClientRects().length > 0`
		if eval[bool](b, renameShown) {
			t.Error("the rename form shows before the pencil is clicked")
		}
		b.do("the pencil", chromedp.Click(tid("rename-pipeline")), chromedp.WaitVisible(tid("rename-name")))
		b.do("the pencil again", chromedp.Click(tid("rename-pipeline")), chromedp.WaitNotVisible(tid("rename-name")))

		s.as(ciToken).must(201, "POST", "/api/v1/feeds/orders/artifacts?version=1.4.0&branch=main&commit=3f2a9c1", pkg, nil)
		b.open("/pipelines/orders-release")
		b.screenshot("pipeline", true)
		b.do("choose the version", chromedp.SetValue(tid("release-version"), "1.4.0"))
		b.submit("create-release")
		loc := b.location()
		releaseID = strings.TrimPrefix(loc, s.api+"/releases/")
		if releaseID == loc || releaseID == "" {
			t.Fatalf("after create release: page %s, want /releases/ID", loc)
		}
		// Live: the page follows the release to the approval without reload.
		b.do("mark the page", chromedp.Evaluate[chromedp.Void](`window.__hotswapNoReload = true`))
		b.waitText("stage-state-production", "waiting for approval", 30*time.Second)
		b.waitText("stage-state-staging", "succeeded", 5*time.Second)
		if !eval[bool](b, `window.__hotswapNoReload === true`) {
			t.Error("the release page reloaded")
		}
		if b.present("approve-production") {
			t.Error("the admin, not an approver, is offered to approve")
		}
		r := s.release(releaseID)
		_, _, releaseDep = r.stage("staging")
		if r.Version != "1.4.0" || releaseDep == "" {
			t.Fatalf("release %+v", r)
		}
		if got := s.served("orders-staging.localhost", "orders", "staging"); got != releaseDep {
			t.Errorf("staging serves %s, want the release's %s", got, releaseDep)
		}
	})

	step("approve as qa-lead", func(t *testing.T, s *server, b *browser) {
		b.signOut()
		b.signIn(qaToken, "qa-lead")
		b.open("/releases/" + releaseID)
		if got := b.text("release-state"); got != "active" {
			t.Fatalf("release state = %q, want active", got)
		}
		b.do("comment", chromedp.SendKeys(tid("comment-production"), "LGTM"))
		b.submit("approve-production")
		if got := b.flash(); !strings.HasPrefix(got, "Approved stage production of ") {
			t.Errorf("flash = %q", got)
		}
		b.do("mark the page", chromedp.Evaluate[chromedp.Void](`window.__hotswapNoReload = true`))
		// The reader closes the staging stage's log; the live refresh that
		// shows the production stage running must keep it closed.
		b.do("close the staging log", chromedp.Evaluate[chromedp.Void](
			`document.querySelector('[data-testid="stage-log-staging"]').closest("details").open = false`))
		b.waitText("release-state", "succeeded", 60*time.Second)
		b.waitText("stage-state-production", "succeeded", 10*time.Second)
		if !eval[bool](b, `window.__hotswapNoReload === true`) {
			t.Error("the release page reloaded to show the new state")
		}
		if eval[bool](b, `document.querySelector('[data-testid="stage-log-staging"]').closest("details").open`) {
			t.Error("the live refresh reopened the staging log the reader had closed")
		}
		if got := b.text("stage-production"); !strings.Contains(got, "by qa-lead: “LGTM”") {
			t.Errorf("the production stage does not show qa-lead's approval: %q", got)
		}
		b.screenshot("release", true)
		if got := s.served("orders.localhost", "orders", "production"); got != releaseDep {
			t.Errorf("production serves %s, want the release's %s", got, releaseDep)
		}
	})

	step("roll back", func(t *testing.T, s *server, b *browser) {
		b.signOut()
		b.signIn(s.token, "admin")
		b.open("/apps/orders/deployments")
		// The browser-uploaded deployment goes back into production.
		b.do("choose the slot", chromedp.SetValue(tid("rollback-slot-"+staged), "production"))
		b.submit("rollback-" + staged)
		b.submit("rollback-confirm-submit")
		if got, want := b.flash(), "Rolled back production to "+staged; got != want {
			t.Errorf("flash = %q, want %q", got, want)
		}
		if got := s.served("orders.localhost", "orders", "production"); got != staged {
			t.Errorf("production serves %s after the rollback, want %s", got, staged)
		}
		if got := s.slotDeployment("orders", "production"); got != staged {
			t.Errorf("API: production is %s, want %s", got, staged)
		}
		s.health("orders.localhost")
		b.open("/apps/orders")
		if got := b.text("slot-state-production"); got != "running" {
			t.Errorf("production state = %q", got)
		}
	})

	step("phone width", func(t *testing.T, s *server, b *browser) {
		b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		defer b.do("laptop viewport", chromedp.EmulateViewport(1280, 900))
		b.open("/apps/orders")
		// Nothing but the scrolling tables may be wider than the screen.
		if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("the slots page is %dpx wide at phone width, want at most 390", w)
		}
		// Each slot is a card; its URL reads as a URL, not a column of
		// letters: an inline element has one client rect per line.
		if n := eval[int](b, `document.getElementById("slot-url-production").getClientRects().length`); n > 2 {
			t.Errorf("the production URL wraps over %d lines at phone width, want at most 2", n)
		}
		if label := eval[string](b, `getComputedStyle(document.querySelector("#slot-production td[data-label=URL]"), "::before").content`); label != `"URL"` {
			t.Errorf("the URL cell is labelled %s at phone width, want \"URL\"", label)
		}
		b.screenshot("app-slots-phone", true)
		b.open("/apps/orders/slots/staging")
		if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("the slot page is %dpx wide at phone width, want at most 390", w)
		}
		b.screenshot("slot-phone", true)
	})
}

// TestBrowserForms checks that bad input is shown next to its field, and
// that a forged request without the CSRF token is refused while the same
// request with it is taken.
func TestBrowserForms(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	b := newBrowser(t, s.api, 120*time.Second)

	// A bad token.
	b.open("/signin")
	b.do("type a bad token", chromedp.SendKeys(tid("signin-token"), "not-a-token"))
	b.submit("signin-submit")
	if got := b.text("signin-error"); !strings.Contains(got, "That token is not valid") {
		t.Errorf("sign-in error = %q", got)
	}
	if !eval[bool](b, `document.getElementById("token").value === ""`) {
		t.Error("the sign-in page shows the typed token again")
	}
	b.signIn(s.token, "admin")

	// A bad app name: the message is next to the field and tied to it.
	b.do("type a bad name", chromedp.SendKeys(tid("app-name"), "Bad_Name"))
	b.submit("create-app")
	if got := b.text("app-name-error"); got == "" {
		t.Fatal("no error next to the app name")
	}
	for _, check := range []string{
		`document.querySelector('[data-testid="app-name-error"]').closest(".field").contains(document.getElementById("app-name"))`,
		`document.getElementById("app-name").getAttribute("aria-invalid") === "true"`,
		`document.getElementById("app-name").getAttribute("aria-describedby").split(" ").includes("app-name-error")`,
		`document.getElementById("app-name").value === "Bad_Name"`,
	} {
		if !eval[bool](b, check) {
			t.Errorf("not true on the failed form: %s", check)
		}
	}
	if code := s.call("GET", "/api/v1/apps/Bad_Name", nil, nil); code == 200 {
		t.Error("the app Bad_Name was created")
	}

	// A forged POST from Go with the browser's session cookie.
	session := b.cookie("hotswap_session")
	csrf := eval[string](b, `document.querySelector('#create-app-form input[name="csrf"]').value`)
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	post := func(form url.Values) (int, string) {
		t.Helper()
		req, err := http.NewRequest("POST", s.api+"/apps", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: "hotswap_session", Value: session})
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"no token", url.Values{"name": {"forged"}}},
		{"wrong token", url.Values{"name": {"forged"}, "csrf": {strings.Repeat("A", len(csrf))}}},
	} {
		code, body := post(tc.form)
		if code != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Errorf("%s: POST /apps = %d, want 403 naming the CSRF token", tc.name, code)
		}
	}
	if code := s.call("GET", "/api/v1/apps/forged", nil, nil); code != http.StatusNotFound {
		t.Errorf("after the forged requests GET /api/v1/apps/forged = %d, want 404", code)
	}
	// The same request with the page's token is taken: the cookie was good.
	if code, _ := post(url.Values{"name": {"csrf-ok"}, "csrf": {csrf}}); code != http.StatusSeeOther {
		t.Errorf("POST /apps with the CSRF token = %d, want 303", code)
	}
	if code := s.call("GET", "/api/v1/apps/csrf-ok", nil, nil); code != http.StatusOK {
		t.Errorf("GET /api/v1/apps/csrf-ok = %d, want 200", code)
	}
}
