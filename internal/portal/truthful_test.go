package portal

import (
	"bytes"
	"context"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/artifact"
	"github.com/hotswap/hotswap/internal/release"
)

// deployedPair creates app orders with production and staging, each with
// a deployment of goforward, and returns the two deployment ids.
func deployedPair(t *testing.T, e *env, b *browser) (prod, staged string) {
	t.Helper()
	ctx := context.Background()
	zip := goforwardZip(t)
	b.post("/apps", url.Values{"name": {"orders"}})
	b.post("/apps/orders/slots", url.Values{"name": {"staging"}})
	for _, slot := range []string{"production", "staging"} {
		if status, body := b.upload("/apps/orders/slots/"+slot+"/deploy", map[string]string{"message": slot}, zip); status != http.StatusOK || !strings.Contains(body, "Deployed d-") {
			t.Fatalf("deploy %s = %d:\n%s", slot, status, body)
		}
	}
	p, _ := e.ops.GetSlot(ctx, "orders", "production")
	s, _ := e.ops.GetSlot(ctx, "orders", "staging")
	return p.DeploymentID, s.DeploymentID
}

// TestSwapResultTruthful checks that a swap's result says what serves
// where: a preview does not claim the deployments moved, and a result shown
// again from its URL after the slots changed (the Back button) says it is
// an earlier one and offers no Swap back, whose form is refused if posted.
func TestSwapResultTruthful(t *testing.T) {
	if testing.Short() {
		t.Skip("starts handler processes")
	}
	e := newEnv(t)
	ctx := context.Background()
	b := e.browser()
	b.signIn(adminToken)
	prod, staged := deployedPair(t, e, b)

	status, body := b.post("/apps/orders/swap", swapForm(t, b, "orders", "staging", "production", "preview"))
	if status != http.StatusOK {
		t.Fatalf("swap with preview = %d:\n%s", status, body)
	}
	mustContain(t, body, `data-testid="swap-phase">preview<`, "<code>"+staged+"</code> serves staging under production's settings", "production still serves <code>"+prod+"</code> until you complete the swap")
	if strings.Contains(body, "now serves") {
		t.Errorf("the preview result says a deployment now serves a slot:\n%s", body)
	}
	previewURL := "/apps/orders/swap?source=staging&target=production&phase=preview&sd=" + staged + "&td=" + prod

	status, body = b.post("/apps/orders/swap/complete", nil)
	if status != http.StatusOK {
		t.Fatalf("complete = %d:\n%s", status, body)
	}
	mustContain(t, body, "<code>"+staged+"</code> now serves production", `data-testid="swap-back"`,
		`name="expect-source" value="`+prod+`"`, `name="expect-target" value="`+staged+`"`)
	if strings.Contains(body, `data-testid="swap-stale"`) {
		t.Error("the fresh result is marked earlier")
	}
	completedURL := "/apps/orders/swap?source=staging&target=production&phase=completed&sd=" + staged + "&td=" + prod

	// Swap back from the result's form.
	back := url.Values{"source": {"staging"}, "target": {"production"}, "mode": {"swap"}, "expect": {"1"}, "expect-source": {prod}, "expect-target": {staged}}
	if status, body := b.post("/apps/orders/swap", back); status != http.StatusOK || !strings.Contains(body, "Swapped staging into production") {
		t.Fatalf("swap back = %d:\n%s", status, body)
	}

	// Back to the first result: it is an earlier one now.
	_, body = b.get(completedURL)
	mustContain(t, body, `data-testid="swap-stale"`, "Earlier result", "production serves "+prod+" now and staging serves "+staged, "then served production")
	if strings.Contains(body, `data-testid="swap-back"`) || strings.Contains(body, "now serves") {
		t.Errorf("the earlier result offers Swap back or says what serves now:\n%s", body)
	}
	_, body = b.get(previewURL)
	mustContain(t, body, `data-testid="swap-stale"`, "the swap preview has ended since")

	// The earlier page's Swap back, posted anyway, is refused.
	status, body = b.post("/apps/orders/swap", back)
	if status != http.StatusPreconditionFailed {
		t.Errorf("stale swap back = %d, want 412", status)
	}
	mustContain(t, body, "the slots changed since this page was shown: slot orders/staging serves "+staged+", not "+prod+" as the swap expected; nothing was swapped")
	if got, _ := e.ops.GetSlot(ctx, "orders", "production"); got.DeploymentID != prod {
		t.Errorf("after the refused swap production serves %s, want %s", got.DeploymentID, prod)
	}
}

// TestRollbackConfirm checks that a rollback is asked before it is done,
// with the slot and deployment named, and that the slot offered first is
// the one the deployment served last, not always production.
func TestRollbackConfirm(t *testing.T) {
	if testing.Short() {
		t.Skip("starts handler processes")
	}
	e := newEnv(t)
	ctx := context.Background()
	b := e.browser()
	b.signIn(adminToken)
	prod, staged := deployedPair(t, e, b)
	// prod moves to staging, then a new deployment replaces it there: it
	// served staging last.
	if status, body := b.post("/apps/orders/swap", swapForm(t, b, "orders", "staging", "production", "swap")); status != http.StatusOK {
		t.Fatalf("swap = %d:\n%s", status, body)
	}
	if status, body := b.upload("/apps/orders/slots/staging/deploy", map[string]string{"message": "next"}, goforwardZip(t)); status != http.StatusOK {
		t.Fatalf("deploy = %d:\n%s", status, body)
	}
	next, _ := e.ops.GetSlot(ctx, "orders", "staging")

	_, body := b.get("/apps/orders/deployments")
	sel := regexp.MustCompile(`(?s)data-testid="rollback-slot-` + prod + `".*?</select>`).FindString(body)
	if !strings.Contains(sel, `<option value="staging" selected>`) {
		t.Errorf("the rollback of %s offers first not staging, the slot it served last:\n%s", prod, sel)
	}
	sel = regexp.MustCompile(`(?s)data-testid="rollback-slot-` + staged + `".*?</select>`).FindString(body)
	if !strings.Contains(sel, `<option value="production" selected>`) {
		t.Errorf("the rollback of %s offers first not production, the slot it serves:\n%s", staged, sel)
	}
	mustContain(t, body, `<form method="get" action="/apps/orders/deployments" id="rollback-`+prod+`-form"`)

	// The button asks; nothing changes yet.
	_, body = b.get("/apps/orders/deployments?rollback=" + prod + "&slot=staging")
	mustContain(t, body, `data-testid="rollback-confirm"`, "Roll back slot staging to deployment "+prod+"?",
		"Slot <strong>staging</strong> serves <code>"+next.DeploymentID+"</code> now. After the rollback it serves <code>"+prod+"</code>",
		`data-testid="rollback-confirm-submit">Roll back staging</button>`, `data-testid="rollback-cancel"`)
	if got, _ := e.ops.GetSlot(ctx, "orders", "staging"); got.DeploymentID != next.DeploymentID {
		t.Fatalf("asking rolled back: staging serves %s", got.DeploymentID)
	}
	_, body = b.get("/apps/orders/deployments?rollback=" + staged + "&slot=production")
	mustContain(t, body, `data-testid="rollback-confirm-error"`, "Slot production serves "+staged+" already")
	if strings.Contains(body, `data-testid="rollback-confirm-submit"`) {
		t.Error("a rollback to what the slot serves is offered")
	}

	// Confirmed, it is done.
	status, body := b.post("/apps/orders/rollback", url.Values{"deployment": {prod}, "slot": {"staging"}})
	if status != http.StatusOK || !strings.Contains(body, "Rolled back staging to "+prod) {
		t.Fatalf("rollback = %d:\n%s", status, body)
	}
	if got, _ := e.ops.GetSlot(ctx, "orders", "staging"); got.DeploymentID != prod {
		t.Errorf("after the rollback staging serves %s, want %s", got.DeploymentID, prod)
	}
	// A refused one comes back to the question, at a URL that reloads.
	status, body = b.post("/apps/orders/rollback", url.Values{"deployment": {"d-nosuch"}, "slot": {"staging"}})
	if status != http.StatusOK {
		t.Errorf("refused rollback = %d, want the history page", status)
	}
	mustContain(t, body, `class="flash flash-error"`, `data-testid="rollback-confirm-error"`, "Deployment d-nosuch is not in the history of orders.")
}

// TestSwapPlanChoices checks that the swap page shows the plan of the slots
// chosen, and says what to do instead when the choice cannot swap.
func TestSwapPlanChoices(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(adminToken)
	b.post("/apps", url.Values{"name": {"solo"}})
	_, body := b.get("/apps/solo/swap")
	mustContain(t, body, `data-testid="swap-one-slot"`, "solo has one slot, so there is nothing to swap yet. Add a slot")
	if strings.Contains(body, `id="swap-form"`) || strings.Contains(body, `id="swap-plan-form"`) {
		t.Error("a one-slot app is offered a swap")
	}

	b.post("/apps", url.Values{"name": {"orders"}})
	b.post("/apps/orders/slots", url.Values{"name": {"staging"}})
	// The plan shows at once for the slots offered, not only on request.
	_, body = b.get("/apps/orders/swap")
	mustContain(t, body, `data-testid="swap-plan"`, `moves from staging to <strong>production</strong>`, `data-testid="swap-submit">Swap</button>`)

	_, body = b.get("/apps/orders/swap?plan=1&source=staging&target=staging")
	mustContain(t, body, `<div id="swap-plan-region" data-testid="swap-plan-region" aria-live="polite">`,
		`data-testid="swap-plan-error">source and target are both staging: a slot cannot swap with itself; choose another slot as the source`,
		`data-testid="swap-submit" disabled aria-describedby="swap-plan-error">`)
	if strings.Contains(body, `data-testid="swap-plan"`) {
		t.Error("a plan shows for a swap of a slot with itself")
	}
}

// TestServedAndVersions checks that a slot's page shows the deployment it
// serves after a swap brought it from another slot, that the history shows
// the artifact version a release deployed, and that a stage's attempt has
// the same number on the release page, in its log and in its deployment's
// message.
func TestServedAndVersions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts handler processes")
	}
	e := newEnv(t)
	ctx := context.Background()
	b := e.browser()
	b.signIn(adminToken)
	_, staged := deployedPair(t, e, b)
	if status, body := b.post("/apps/orders/swap", swapForm(t, b, "orders", "staging", "production", "swap")); status != http.StatusOK {
		t.Fatalf("swap = %d:\n%s", status, body)
	}
	_, body := b.get("/apps/orders/slots/production")
	mustContain(t, body, `data-testid="slot-deployment-row-`+staged+`"`, `<td data-label="Deployed to">staging</td>`,
		`data-testid="slot-deployment-origin">deployed to staging`, "then swapped or rolled back into production")

	// A release deploys version 1.4.0 to staging.
	def := "name: rel\nartifact: {feed: orders}\nstages:\n  - name: staging\n    deploy: {app: orders, slot: staging}\n"
	if status, body := b.post("/pipelines", url.Values{"definition": {def}}); status != http.StatusOK {
		t.Fatalf("apply pipeline = %d:\n%s", status, body)
	}
	if _, _, err := e.rel.PushArtifact(ctx, release.Actor{Name: "ci", Role: "deployer"}, hotswap.Artifact{Feed: "orders", Version: "1.4.0"}, bytes.NewReader(goforwardZip(t))); err != nil {
		t.Fatal(err)
	}
	if status, body := b.post("/pipelines/rel/releases", url.Values{"version": {"1.4.0"}}); status != http.StatusOK {
		t.Fatalf("create release = %d:\n%s", status, body)
	}
	succeeded := func(attempt int) func() bool {
		return func() bool {
			r, err := e.rel.Get(ctx, "rel-1")
			return err == nil && r.Stages[0].State == release.StageSucceeded && r.Stages[0].Attempt == attempt && r.State == release.Succeeded
		}
	}
	waitFor(t, "the release to succeed", succeeded(0))
	r, _ := e.rel.Get(ctx, "rel-1")
	_, body = b.get("/apps/orders/deployments")
	mustContain(t, body, `data-testid="history-version-`+r.Stages[0].DeploymentID+`"><strong>1.4.0</strong> (release <a href="/releases/`+r.ID+`">rel-1</a>)`)

	// Run the stage again: attempt 1 everywhere.
	if status, body := b.post("/releases/"+r.ID+"/redeploy", url.Values{"stage": {"staging"}}); status != http.StatusOK {
		t.Fatalf("redeploy = %d:\n%s", status, body)
	}
	waitFor(t, "the release to succeed again", succeeded(1))
	r, _ = e.rel.Get(ctx, "rel-1")
	_, body = b.get("/releases/" + r.ID)
	mustContain(t, body, `data-testid="stage-attempt-staging">attempt 1</span>`, "(attempt 1)")
	_, body = b.get("/apps/orders/slots/staging")
	mustContain(t, body, "release rel-1 stage staging attempt 1")
	mustContain(t, body, "version <strong>1.4.0</strong> (release")
}

// TestZippedFolder checks that a zip of the app's folder itself is refused
// with what to do instead, and that the failed deployment shows red.
func TestZippedFolder(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(adminToken)
	b.post("/apps", url.Values{"name": {"orders"}})
	parent := t.TempDir()
	if err := os.MkdirAll(filepath.Join(parent, "orders-app"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"host.json": `{"customHandler": {"description": {"defaultExecutablePath": "handler"}}}`, "handler": "#!/bin/sh\n"} {
		if err := os.WriteFile(filepath.Join(parent, "orders-app", name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var zip bytes.Buffer
	if err := artifact.ZipDir(parent, &zip); err != nil {
		t.Fatal(err)
	}
	const hint = "host.json is missing at the root; the zip contains folder orders-app/ — zip its contents instead"
	status, body := b.upload("/apps/orders/slots/production/deploy", map[string]string{"message": "zipped folder"}, zip.Bytes())
	if status != http.StatusBadRequest {
		t.Errorf("deploy a zipped folder = %d, want 400", status)
	}
	mustContain(t, body, `data-testid="deploy-package-error" role="alert">`, hint)

	_, body = b.get("/apps/orders/deployments")
	mustContain(t, body, `<td data-label="Status"><span class="badge state-failed">failed</span> <span class="field-error deploy-error">`, hint+`</span></td>`)
	_, body = b.get("/apps/orders/slots/production")
	mustContain(t, body, `<span class="badge state-failed">failed</span>`,
		`<span class="badge state-failed" data-state-key="deploy-progress" id="deploy-progress">failed</span> <span class="field-error" data-text-key="deploy-progress-error" id="deploy-progress-error">`)
	// The live status says failed, for the badge's red, and the error apart.
	_, js := b.get("/portal/apps/orders/slots/production/status.json")
	mustContain(t, js, `"deploy-progress":"failed"`, `"deploy-progress-error":"`)
}

// TestSwapFormPostsThePlan checks that the Swap form posts what its plan
// showed: a deploy to the source landing after the page was shown refuses
// the swap, and so does a swap of other slots than the plan's; a swap
// matching the plan goes on.
func TestSwapFormPostsThePlan(t *testing.T) {
	if testing.Short() {
		t.Skip("starts handler processes")
	}
	e := newEnv(t)
	ctx := context.Background()
	b := e.browser()
	b.signIn(adminToken)
	prod, staged := deployedPair(t, e, b)

	form := swapForm(t, b, "orders", "staging", "production", "swap")
	if form.Get("expect-slots") != "staging production" || form.Get("expect-source") != staged || form.Get("expect-target") != prod {
		t.Fatalf("the plan's fields for the swap form = %v; want expect, the slots and both deployments", form)
	}

	// The form posted without a plan (a page from before the forms had
	// one, or made by hand).
	bare := url.Values{"source": {"staging"}, "target": {"production"}, "mode": {"swap"}}
	if status, body := b.post("/apps/orders/swap", bare); status != http.StatusPreconditionFailed || !strings.Contains(body, "to see what will change before you swap; nothing was swapped") {
		t.Errorf("the swap form without a plan = %d; want 412 saying to look at the changes first:\n%s", status, body)
	}
	if got, _ := e.ops.GetSlot(ctx, "orders", "production"); got.DeploymentID != prod {
		t.Fatalf("after the refused swap production serves %s, want %s", got.DeploymentID, prod)
	}
	_, result := b.get("/apps/orders/swap?source=staging&target=production&phase=completed&sd=" + prod + "&td=" + staged)
	mustContain(t, result, `data-testid="swap-plan-needed"`, `data-testid="swap-submit" disabled aria-describedby="swap-plan-needed">`,
		`data-testid="swap-with-preview" disabled aria-describedby="swap-plan-needed">`)

	// Other slots than the plan's.
	other := url.Values{}
	for k, v := range form {
		other[k] = v
	}
	other.Set("source", "production")
	other.Set("target", "staging")
	if status, body := b.post("/apps/orders/swap", other); status != http.StatusPreconditionFailed || !strings.Contains(body, "the changes shown were for swapping staging into production") {
		t.Errorf("swap of other slots than the plan's = %d; want 412 saying so:\n%s", status, body)
	}

	// A deploy lands on staging after the page was shown.
	if status, body := b.upload("/apps/orders/slots/staging/deploy", map[string]string{"message": "later"}, goforwardZip(t)); status != http.StatusOK {
		t.Fatalf("deploy = %d:\n%s", status, body)
	}
	later, _ := e.ops.GetSlot(ctx, "orders", "staging")
	status, body := b.post("/apps/orders/swap", form)
	if status != http.StatusPreconditionFailed {
		t.Errorf("swap after a deploy landed = %d, want 412", status)
	}
	mustContain(t, body, "the slots changed since this page was shown: slot orders/staging serves "+later.DeploymentID+", not "+staged+" as the swap expected")
	if got, _ := e.ops.GetSlot(ctx, "orders", "production"); got.DeploymentID != prod {
		t.Fatalf("after the refused swap production serves %s, want %s", got.DeploymentID, prod)
	}

	// The plan shown again, then the swap.
	form.Set("expect-source", later.DeploymentID)
	if status, body := b.post("/apps/orders/swap", form); status != http.StatusOK || !strings.Contains(body, "Swapped staging into production") {
		t.Fatalf("swap matching the plan = %d:\n%s", status, body)
	}
	if got, _ := e.ops.GetSlot(ctx, "orders", "production"); got.DeploymentID != later.DeploymentID {
		t.Errorf("production serves %s, want %s", got.DeploymentID, later.DeploymentID)
	}
}

// TestNoSwapBackFromAnEmptySlot checks that a swap into an empty slot
// offers no Swap back: the source is empty after it, and a swap from an
// empty slot is refused.
func TestNoSwapBackFromAnEmptySlot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts handler processes")
	}
	e := newEnv(t)
	b := e.browser()
	b.signIn(adminToken)
	b.post("/apps", url.Values{"name": {"orders"}})
	b.post("/apps/orders/slots", url.Values{"name": {"staging"}})
	if status, body := b.upload("/apps/orders/slots/staging/deploy", map[string]string{"message": "first"}, goforwardZip(t)); status != http.StatusOK {
		t.Fatalf("deploy = %d:\n%s", status, body)
	}
	status, body := b.post("/apps/orders/swap", swapForm(t, b, "orders", "staging", "production", "swap"))
	if status != http.StatusOK || !strings.Contains(body, "Swapped staging into production") {
		t.Fatalf("swap into the empty production = %d:\n%s", status, body)
	}
	if strings.Contains(body, `data-testid="swap-back"`) {
		t.Errorf("the result of a swap into an empty slot offers Swap back:\n%s", body)
	}
}

// planInput is a field of the swap page's plan that its Swap form posts.
var planInput = regexp.MustCompile(`<input type="hidden" form="swap-form" name="([a-z-]+)" value="([^"]*)">`)

// swapForm returns what the swap page's Swap form posts for swapping
// source into target with mode ("swap" or "preview"): the slots, and the
// expectation of the plan the page shows for them.
func swapForm(t *testing.T, b *browser, app, source, target, mode string) url.Values {
	t.Helper()
	_, page := b.get("/apps/" + app + "/swap?plan=1&source=" + url.QueryEscape(source) + "&target=" + url.QueryEscape(target))
	form := url.Values{"source": {source}, "target": {target}, "mode": {mode}}
	for _, m := range planInput.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if form.Get("expect") != "1" {
		t.Fatalf("the swap page of %s into %s shows no plan:\n%s", source, target, page)
	}
	return form
}
