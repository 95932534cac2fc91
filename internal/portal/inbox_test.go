package portal

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/release"
)

// TestApproverInbox checks that a release waiting for a user's approval
// shows in the header of every page and on the pipelines page, for that
// user only, and leaves once decided.
func TestApproverInbox(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	qaToken := e.addUser("qa-lead", "approver")
	otherToken := e.addUser("other", "approver")
	if _, err := e.ops.CreateApp(ctx, "admin", "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ops.CreateSlot(ctx, "admin", "orders", "staging", ""); err != nil {
		t.Fatal(err)
	}
	admin := e.browser()
	admin.signIn(adminToken)
	def := "name: rel\nartifact: {feed: orders}\nstages:\n  - name: prod\n    approval: {approvers: [qa-lead], required: 1, timeout: 72h}\n    swap: {app: orders, slot: staging, target: production}\n"
	if status, body := admin.post("/pipelines", url.Values{"definition": {def}}); status != http.StatusOK {
		t.Fatalf("apply pipeline = %d:\n%s", status, body)
	}
	if _, _, err := e.rel.PushArtifact(ctx, release.Actor{Name: "ci", Role: "deployer"}, hotswap.Artifact{Feed: "orders", Version: "2.1.0"}, bytes.NewReader(goforwardZip(t))); err != nil {
		t.Fatal(err)
	}
	if status, body := admin.post("/pipelines/rel/releases", url.Values{"version": {"2.1.0"}}); status != http.StatusOK {
		t.Fatalf("create release = %d:\n%s", status, body)
	}
	waitFor(t, "the stage to wait for approval", func() bool {
		r, err := e.rel.Get(ctx, "rel-1")
		return err == nil && r.Stages[0].State == release.StageApproval
	})

	qa := e.browser()
	body := qa.signIn(qaToken)
	mustContain(t, body, `data-testid="nav-inbox"`, `data-testid="nav-inbox-count">1</span>`)
	_, body = qa.get("/pipelines")
	mustContain(t, body, `data-testid="inbox-rel-1-prod"`, ">rel-1</a>: stage <strong>prod</strong> of rel, version 2.1.0, requested by admin, waiting since")
	if !regexp.MustCompile(`href="/releases/r-[0-9a-f]+#stage-prod"`).MatchString(body) {
		t.Error("the inbox entry does not link to the stage")
	}
	for name, b := range map[string]*browser{"admin": admin, "other": func() *browser { b := e.browser(); b.signIn(otherToken); return b }()} {
		if _, body := b.get("/pipelines"); strings.Contains(body, `data-testid="nav-inbox"`) || !strings.Contains(body, `id="inbox-empty"`) {
			t.Errorf("%s, not an approver of the stage, has it in the inbox", name)
		}
	}

	r, _ := e.rel.Get(ctx, "rel-1")
	if status, body := qa.post("/releases/"+r.ID+"/decide", url.Values{"stage": {"prod"}, "decision": {"reject"}, "comment": {"no"}}); status != http.StatusOK {
		t.Fatalf("reject = %d:\n%s", status, body)
	}
	if _, body := qa.get("/pipelines"); strings.Contains(body, `data-testid="nav-inbox"`) || strings.Contains(body, `data-testid="inbox-rel-1-prod"`) {
		t.Error("the decided stage stays in the inbox")
	}
}

// TestUsersAdmin checks that an admin creates users and gives them new
// tokens in the portal, each shown once and working at once, and that no
// one else may.
func TestUsersAdmin(t *testing.T) {
	e := newEnv(t)
	admin := e.browser()
	body := admin.signIn(adminToken)
	mustContain(t, body, `data-testid="nav-users"`)

	status, body := admin.post("/users", url.Values{"name": {"Bad Name"}, "role": {"approver"}})
	if status != http.StatusBadRequest {
		t.Errorf("create user Bad Name = %d, want 400", status)
	}
	mustContain(t, body, `data-testid="user-name-error"`, `value="Bad Name"`)
	if status, body := admin.post("/users", url.Values{"name": {"qa"}, "role": {"root"}}); status != http.StatusBadRequest || !strings.Contains(body, `id="user-role-error"`) {
		t.Errorf("create user with role root = %d", status)
	}

	tokenRe := regexp.MustCompile(`data-testid="token-value" value="(hsu_[A-Za-z0-9_-]+)"`)
	status, body = admin.post("/users", url.Values{"name": {"qa"}, "role": {"approver"}})
	m := tokenRe.FindStringSubmatch(body)
	if status != http.StatusOK || m == nil {
		t.Fatalf("create user = %d, no token shown:\n%s", status, body)
	}
	mustContain(t, body, `data-testid="user-row-qa"`, "it is shown this once")
	qa := e.browser()
	qa.signIn(m[1])
	if _, body := admin.get("/users"); strings.Contains(body, m[1]) {
		t.Error("the users page shows the token again")
	}

	// A new token ends the old one and its sessions.
	status, body = admin.post("/users/qa/token", nil)
	m2 := tokenRe.FindStringSubmatch(body)
	if status != http.StatusOK || m2 == nil || m2[1] == m[1] {
		t.Fatalf("rotate = %d, no new token shown:\n%s", status, body)
	}
	if _, body := qa.get("/apps"); !strings.Contains(body, `id="signin-form"`) {
		t.Error("the session signed in with the old token goes on")
	}
	e.browser().signIn(m2[1])

	// Only an admin.
	if _, body := qa.get("/apps"); strings.Contains(body, `data-testid="nav-users"`) {
		t.Error("an approver sees Users")
	}
	deployer := e.browser()
	deployer.signIn(e.addUser("ci", "deployer"))
	if status, _ := deployer.get("/users"); status != http.StatusForbidden {
		t.Errorf("deployer GET /users = %d, want 403", status)
	}
	if status, _ := deployer.post("/users", url.Values{"name": {"sneaky"}, "role": {"admin"}}); status != http.StatusForbidden {
		t.Errorf("deployer POST /users = %d, want 403", status)
	}
}
