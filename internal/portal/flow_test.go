package portal

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/ops"
	"github.com/hotswap/hotswap/internal/release"
)

func TestSignIn(t *testing.T) {
	e := newEnv(t)
	b := e.browser()

	status, body := b.get("/apps")
	if status != http.StatusOK || !strings.Contains(body, `id="signin-form"`) {
		t.Fatalf("GET /apps signed out = %d, want the sign-in page", status)
	}
	golden(t, "signin", body)

	status, body = b.post("/signin", url.Values{"token": {"not-a-token"}})
	if status != http.StatusUnauthorized {
		t.Errorf("sign in with a bad token = %d, want 401", status)
	}
	mustContain(t, body, `<p class="field-error" id="token-error" data-testid="signin-error" role="alert">That token is not valid.`, `aria-invalid="true"`)
	if strings.Contains(body, "not-a-token") {
		t.Error("the page shows the typed token again")
	}

	body = b.signIn(adminToken)
	mustContain(t, body, "Signed in as admin (admin)", `id="no-apps"`)
	for _, c := range b.c.Jar.Cookies(mustURL(t, e.srv.URL)) {
		if c.Name == sessionCookie && strings.Contains(c.Value, adminToken) {
			t.Error("the session cookie holds the token")
		}
	}

	// Sign out ends the session.
	if status, body := b.post("/signout", nil); status != http.StatusOK || !strings.Contains(body, `id="signin-form"`) {
		t.Fatalf("sign out = %d, want the sign-in page", status)
	}
	if _, body := b.get("/apps"); !strings.Contains(body, `id="signin-form"`) {
		t.Error("still signed in after signing out")
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSessionCookie(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	who := release.Actor{Name: "admin", Role: "admin"}
	newSession := func(who release.Actor, hash string, exp time.Time) string {
		t.Helper()
		v, err := e.portal.newSession(ctx, who, hash, exp)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v := newSession(who, tokenHash(adminToken), e.portal.cfg.Now().Add(sessionTTL))
	if got, ok := e.portal.session(ctx, v); !ok || got != who {
		t.Fatalf("session(valid) = %v, %v", got, ok)
	}
	tests := []struct{ name, value string }{
		{"empty", ""},
		{"no signature", strings.Split(v, ".")[0]},
		{"tampered", "YWRtaW4KYWRtaW4KOTk5OTk5OTk5OQp4." + strings.Split(v, ".")[1]},
		{"expired", newSession(who, tokenHash(adminToken), e.portal.cfg.Now().Add(-time.Second))},
		{"deleted user", newSession(release.Actor{Name: "ghost", Role: "deployer"}, tokenHash("tok-ghost"), e.portal.cfg.Now().Add(sessionTTL))},
		{"another token", newSession(who, tokenHash("an-earlier-admin-token"), e.portal.cfg.Now().Add(sessionTTL))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := e.portal.session(ctx, tc.value); ok {
				t.Errorf("session(%q) = %v, accepted", tc.value, got)
			}
		})
	}
	// The secret survives a restart: a second portal on the same store
	// accepts the first one's cookie.
	p2, err := New(ctx, e.portal.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p2.session(ctx, v); !ok {
		t.Error("a new portal on the same store refuses the session")
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(adminToken)

	tests := []struct{ name, token string }{
		{"missing", ""},
		{"wrong", "bm90LXRoZS10b2tlbg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"name": {"forged"}, "csrf": {tc.token}}
			status, body := b.post("/apps", form)
			if status != http.StatusForbidden {
				t.Errorf("POST /apps with %s CSRF token = %d, want 403", tc.name, status)
			}
			mustContain(t, body, "invalid or missing CSRF token")
			if _, err := e.ops.GetApp(context.Background(), "forged"); hotswap.ErrorKind(err) != hotswap.NotFound {
				t.Errorf("the forged request created the app (err %v)", err)
			}
		})
	}
	// Another user's token does not work either: it is bound to the session.
	other := e.browser()
	other.signIn(adminToken)
	status, _ := b.post("/apps", url.Values{"name": {"forged"}, "csrf": {other.csrf}})
	if status != http.StatusForbidden {
		t.Errorf("POST with another session's CSRF token = %d, want 403", status)
	}
	// With its own token the same POST works.
	if status, body := b.post("/apps", url.Values{"name": {"real"}}); status != http.StatusOK || !strings.Contains(body, "App real created") {
		t.Errorf("POST /apps with the CSRF token = %d", status)
	}
}

func TestFormValidation(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(adminToken)

	status, body := b.post("/apps", url.Values{"name": {"Bad_Name"}})
	if status != http.StatusBadRequest {
		t.Errorf("create app Bad_Name = %d, want 400", status)
	}
	mustContain(t, body,
		`value="Bad_Name"`,
		`<p class="field-error" id="app-name-error" data-testid="app-name-error" role="alert">app name &#34;Bad_Name&#34;: character &#39;B&#39; is not allowed (use a-z, 0-9 and -)</p>`,
	)

	b.post("/apps", url.Values{"name": {"orders"}})
	status, body = b.post("/apps", url.Values{"name": {"orders"}})
	if status != http.StatusConflict {
		t.Errorf("create app orders twice = %d, want 409", status)
	}
	mustContain(t, body, `id="app-name-error"`, `value="orders"`)

	status, body = b.post("/apps/orders/slots", url.Values{"name": {"-staging"}})
	if status != http.StatusBadRequest {
		t.Errorf("add slot -staging = %d, want 400", status)
	}
	mustContain(t, body, `id="slot-name-error"`, `value="-staging"`)

	status, body = b.post("/apps/orders/delete", url.Values{"confirm": {"order"}})
	if status != http.StatusBadRequest {
		t.Errorf("delete app with a wrong confirmation = %d, want 400", status)
	}
	mustContain(t, body, `id="delete-confirm-error"`, "type the app name")
	if _, err := e.ops.GetApp(context.Background(), "orders"); err != nil {
		t.Errorf("app deleted without confirmation: %v", err)
	}

	status, body = b.post("/apps/orders/slots/production/settings", url.Values{"name": {"1BAD"}, "value": {"x"}, "form": {"add-setting"}})
	if status != http.StatusBadRequest {
		t.Errorf("add setting 1BAD = %d, want 400", status)
	}
	mustContain(t, body, `id="setting-name-error"`, `value="1BAD"`)

	status, body = b.post("/apps/orders/slots/production/keys", url.Values{"scope": {"host"}, "name": {"ci"}, "value": {"short"}})
	if status != http.StatusBadRequest {
		t.Errorf("add key with a short value = %d, want 400", status)
	}
	mustContain(t, body, `id="key-value-error"`, "key value must be 16 to 256 characters")

	status, body = b.upload("/apps/orders/slots/production/deploy", map[string]string{"message": "broken"}, []byte("not a zip"))
	if status != http.StatusBadRequest {
		t.Errorf("deploy a non-zip = %d, want 400", status)
	}
	mustContain(t, body, `id="deploy-package-error"`, `value="broken"`)

	if status, body := b.post("/apps/orders", nil); status != http.StatusMethodNotAllowed {
		t.Errorf("POST /apps/orders = %d, want 405:\n%s", status, body)
	}

	if status, body := b.post("/pipelines", url.Values{"definition": {"name: Bad\nartifact: {feed: orders}\nstages:\n  - name: s\n    deploy: {app: orders, slot: nope}\n"}}); status != http.StatusBadRequest {
		t.Errorf("apply an invalid pipeline = %d, want 400", status)
	} else {
		mustContain(t, body, `id="pipeline-problems"`, `data-line="1"`, "line 1", "name: Bad\nartifact:")
	}
}

func TestRoles(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	approverToken := e.addUser("qa-lead", "approver")
	if _, err := e.ops.CreateApp(ctx, "admin", "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ops.UpdateSettings(ctx, "admin", "orders", "production", []hotswap.Setting{{Name: "SECRET_VALUE", Value: "hunter2"}}, nil, ops.HoldOptions{}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.signIn(approverToken)

	_, body := b.get("/apps/orders/slots/production")
	for _, hidden := range []string{`id="deploy-form"`, `id="keys"`, `id="settings"`, "hunter2", `id="add-slot-form"`} {
		if strings.Contains(body, hidden) {
			t.Errorf("an approver sees %q", hidden)
		}
	}
	status, body := b.upload("/apps/orders/slots/production/deploy", map[string]string{"message": "sneaky"}, []byte("PK"))
	if status != http.StatusForbidden {
		t.Errorf("approver deploy = %d, want 403", status)
	}
	mustContain(t, body, "qa-lead (role approver) may not do this")
	if ds, _ := e.ops.Deployments(ctx, "orders", "production"); len(ds) != 0 {
		t.Errorf("the approver's deploy created %d deployments", len(ds))
	}
	for _, path := range []string{"/apps", "/apps/orders/slots", "/apps/orders/swap", "/apps/orders/slots/production/settings"} {
		if status, _ := b.post(path, url.Values{"name": {"x"}}); status != http.StatusForbidden {
			t.Errorf("approver POST %s = %d, want 403", path, status)
		}
	}
	if status, _ := b.get("/pipelines/new"); status != http.StatusForbidden {
		t.Errorf("approver GET /pipelines/new = %d, want 403", status)
	}
}

// TestFlow walks the article in the portal, and checks the main pages
// against golden files on the way.
func TestFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("starts handler processes")
	}
	e := newEnv(t)
	ctx := context.Background()
	zip := goforwardZip(t)
	qaToken := e.addUser("qa-lead", "approver")
	b := e.browser()
	b.signIn(adminToken)

	// Create an app, add a staging slot cloning production's settings.
	if status, body := b.post("/apps", url.Values{"name": {"orders"}}); status != http.StatusOK {
		t.Fatalf("create app = %d:\n%s", status, body)
	}
	b.post("/apps/orders/slots/production/settings", url.Values{"name": {"DB_URL"}, "value": {"postgres://prod-db"}, "sticky": {"on"}, "form": {"add-setting"}})
	b.post("/apps/orders/slots/production/settings", url.Values{"name": {"APP_VERSION"}, "value": {"1.0.0"}, "form": {"add-setting"}})
	status, body := b.post("/apps/orders/slots", url.Values{"name": {"staging"}, "clone": {"production"}})
	if status != http.StatusOK {
		t.Fatalf("add slot = %d:\n%s", status, body)
	}
	mustContain(t, body, "Slot staging added, with the settings of production", `data-testid="slot-row-staging"`)
	b.post("/apps/orders/slots/staging/settings", url.Values{"name": {"DB_URL"}, "value": {"postgres://staging-db"}, "sticky": {"on"}, "form": {"setting-db_url"}})
	b.post("/apps/orders/slots/staging/settings", url.Values{"name": {"APP_VERSION"}, "value": {"2.0.0"}, "form": {"setting-app_version"}})

	// Deploy to production and to staging by uploading the zip.
	status, body = b.upload("/apps/orders/slots/production/deploy", map[string]string{"message": "v1"}, zip)
	if status != http.StatusOK || !strings.Contains(body, "Deployed d-") {
		t.Fatalf("deploy production = %d:\n%s", status, body)
	}
	status, body = b.upload("/apps/orders/slots/staging/deploy", map[string]string{"message": "v2"}, zip)
	if status != http.StatusOK || !strings.Contains(body, "Deployed d-") {
		t.Fatalf("deploy staging = %d:\n%s", status, body)
	}
	staging, _ := e.ops.GetSlot(ctx, "orders", "staging")
	prod, _ := e.ops.GetSlot(ctx, "orders", "production")

	_, body = b.get("/apps")
	golden(t, "apps", body)
	_, body = b.get("/apps/orders")
	golden(t, "app", body)
	_, body = b.get("/apps/orders/slots/staging")
	mustContain(t, body, `data-testid="get-url-hello"`, `data-testid="function-url-hello"`, "orders-staging.localhost:8080/api/hello?code=")
	golden(t, "slot", body)

	// The slot's status endpoint reports its state and log.
	_, js := b.get("/portal/apps/orders/slots/staging/status.json")
	mustContain(t, js, `"slot-staging":"running"`, `"deploy-progress":"success"`, `"log":[`)

	// Swap: preview the changes, swap with preview, complete, swap back.
	_, body = b.get("/apps/orders/swap?plan=1&source=staging&target=production")
	mustContain(t, body, `id="swap-plan"`, `<td data-label="Setting">APP_VERSION</td><td data-label="Before">1.0.0</td><td data-label="After">2.0.0</td>`, `<span class="badge state-sticky">sticky</span> DB_URL (staging)`)
	golden(t, "swap", body)
	status, body = b.post("/apps/orders/swap", swapForm(t, b, "orders", "staging", "production", "preview"))
	if status != http.StatusOK {
		t.Fatalf("swap with preview = %d:\n%s", status, body)
	}
	mustContain(t, body, `data-testid="preview-active"`, `data-testid="swap-complete"`, `id="swap-phase" data-testid="swap-phase">preview<`)
	status, body = b.post("/apps/orders/swap/complete", nil)
	if status != http.StatusOK {
		t.Fatalf("complete swap = %d:\n%s", status, body)
	}
	mustContain(t, body, `data-testid="swap-phase">completed<`, `id="phase-flipped"`, `data-testid="swap-back"`)
	if got, _ := e.ops.GetSlot(ctx, "orders", "production"); got.DeploymentID != staging.DeploymentID {
		t.Errorf("after the swap production serves %s, want %s", got.DeploymentID, staging.DeploymentID)
	}
	status, body = b.post("/apps/orders/swap", swapForm(t, b, "orders", "staging", "production", "swap"))
	if status != http.StatusOK {
		t.Fatalf("swap back = %d:\n%s", status, body)
	}
	if got, _ := e.ops.GetSlot(ctx, "orders", "production"); got.DeploymentID != prod.DeploymentID {
		t.Errorf("after swapping back production serves %s, want %s", got.DeploymentID, prod.DeploymentID)
	}

	// Roll staging back to production's deployment.
	status, body = b.post("/apps/orders/rollback", url.Values{"deployment": {prod.DeploymentID}, "slot": {"staging"}})
	if status != http.StatusOK || !strings.Contains(body, "Rolled back staging to "+prod.DeploymentID) {
		t.Fatalf("rollback = %d:\n%s", status, body)
	}
	if got, _ := e.ops.GetSlot(ctx, "orders", "staging"); got.DeploymentID != prod.DeploymentID {
		t.Errorf("after the rollback staging serves %s, want %s", got.DeploymentID, prod.DeploymentID)
	}

	// The activity log filters by action and slot.
	_, body = b.get("/apps/orders/activity?action=swap")
	mustContain(t, body, `<option value="swap" selected>`, `data-action="swap"`)
	if strings.Contains(body, `data-action="deploy"`) {
		t.Error("the activity filtered by swap shows deploys")
	}

	// Release pipeline: apply, rename with the pencil, create a release,
	// approve it as the second user.
	def := "name: orders-release\nartifact: {feed: orders}\nstages:\n  - name: staging\n    approval: {approvers: [qa-lead], required: 1, timeout: 72h}\n    deploy: {app: orders, slot: staging}\n"
	status, body = b.post("/pipelines", url.Values{"definition": {def}})
	if status != http.StatusOK || !strings.Contains(body, "Pipeline orders-release saved") {
		t.Fatalf("apply pipeline = %d:\n%s", status, body)
	}
	status, body = b.post("/pipelines/orders-release/rename", url.Values{"name": {"orders to prod"}})
	if status != http.StatusBadRequest {
		t.Errorf("rename to an invalid name = %d, want 400", status)
	}
	mustContain(t, body, `id="rename-error"`, `value="orders to prod"`, `<form method="post" action="/pipelines/orders-release/rename" id="rename-form" data-testid="rename-form" class="inline-form card">`)
	status, body = b.post("/pipelines/orders-release/rename", url.Values{"name": {"orders-to-prod"}})
	if status != http.StatusOK || !strings.Contains(body, "renamed to orders-to-prod") {
		t.Fatalf("rename = %d:\n%s", status, body)
	}
	if _, _, err := e.rel.PushArtifact(ctx, release.Actor{Name: "ci", Role: "deployer"}, hotswap.Artifact{Feed: "orders", Version: "1.4.0", Branch: "main", Commit: "3f2a9c1"}, bytes.NewReader(zip)); err != nil {
		t.Fatal(err)
	}
	_, body = b.get("/pipelines/orders-to-prod")
	mustContain(t, body, `<option value="1.4.0">1.4.0 (main)</option>`)
	golden(t, "pipeline", body)

	status, body = b.post("/pipelines/orders-to-prod/releases", url.Values{"version": {"1.4.0"}})
	if status != http.StatusOK || !strings.Contains(body, "Release orders-to-prod-1 created") {
		t.Fatalf("create release = %d:\n%s", status, body)
	}
	rel, err := e.rel.Get(ctx, "orders-to-prod-1")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stage to wait for approval", func() bool {
		r, err := e.rel.Get(ctx, rel.ID)
		return err == nil && r.Stages[0].State == release.StageApproval
	})
	_, body = b.get("/releases/" + rel.ID)
	if strings.Contains(body, `data-testid="approve-staging"`) {
		t.Error("admin, not an approver of the stage, sees Approve")
	}
	golden(t, "release", body)

	qa := e.browser()
	qa.signIn(qaToken)
	_, body = qa.get("/releases/" + rel.ID)
	mustContain(t, body, `data-testid="approve-staging"`, `data-testid="reject-staging"`)
	if strings.Contains(body, `data-testid="abandon-release"`) {
		t.Error("an approver sees Abandon")
	}
	_, js = qa.get("/portal/releases/" + rel.ID + "/status.json")
	mustContain(t, js, `"stage-staging":"waiting for approval"`)
	status, body = qa.post("/releases/"+rel.ID+"/decide", url.Values{"stage": {"staging"}, "decision": {"approve"}, "comment": {"LGTM"}})
	if status != http.StatusOK || !strings.Contains(body, "Approved stage staging of orders-to-prod-1") {
		t.Fatalf("approve = %d:\n%s", status, body)
	}
	mustContain(t, body, "approved</span> by qa-lead: “LGTM”")
	waitFor(t, "the release to end", func() bool {
		r, err := e.rel.Get(ctx, rel.ID)
		return err == nil && r.State != release.Active
	})
	if r, _ := e.rel.Get(ctx, rel.ID); r.State != release.Succeeded {
		t.Errorf("release ended %s (%s), want succeeded", r.State, r.Detail)
	}

	// History shows every deployment with where it served.
	_, body = b.get("/apps/orders/deployments")
	mustContain(t, body, `data-testid="rollback-`+prod.DeploymentID+`"`, "serves <strong>production")
}
