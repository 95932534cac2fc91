package portal

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/release"
)

// TestSlotHeldByRelease: a slot a waiting release holds shows the hold on
// its page and in the app's slot list, its deploy button is disabled, and a
// deploy posted anyway is refused naming the release.
func TestSlotHeldByRelease(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	zip := goforwardZip(t)
	if _, err := e.ops.CreateApp(ctx, "admin", "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ops.CreateSlot(ctx, "admin", "orders", "staging", ""); err != nil {
		t.Fatal(err)
	}
	e.addUser("qa-lead", "approver")
	def := "name: orders-release\nartifact: {feed: orders}\nstages:\n  - name: staging\n    deploy: {app: orders, slot: staging}\n  - name: production\n    after: [staging]\n    approval: {approvers: [qa-lead]}\n    swap: {app: orders, slot: staging, target: production}\n"
	admin := release.Actor{Name: "admin", Role: "admin"}
	if _, err := e.rel.ApplyPipeline(ctx, admin, []byte(def)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.rel.PushArtifact(ctx, admin, hotswap.Artifact{Feed: "orders", Version: "1.0.0"}, bytes.NewReader(zip)); err != nil {
		t.Fatal(err)
	}
	rel, err := e.rel.CreateRelease(ctx, admin, "orders-release", "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the release to hold staging", func() bool {
		_, held := e.ops.HeldBy("orders", "staging")
		return held
	})

	b := e.browser()
	b.signIn(adminToken)
	_, body := b.get("/apps/orders/slots/staging")
	mustContain(t, body, `data-testid="slot-held">release <a href="/releases/`+rel.ID+`">`+rel.Name+`</a>`,
		`data-testid="deploy-submit" disabled aria-describedby="deploy-held"`, `data-testid="deploy-held">Release `+rel.Name+` holds this slot`)
	_, body = b.get("/apps/orders")
	mustContain(t, body, `data-testid="slot-held-staging">held by release `+rel.Name+`</span>`)
	if strings.Contains(body, `data-testid="slot-held-production"`) {
		t.Error("production shows a hold it does not have")
	}

	_, body = b.get("/apps/orders/swap")
	mustContain(t, body, `data-testid="swap-slot-held-staging">held by release `+rel.Name+`: a swap into or out of it is refused`)

	b.get("/apps/orders/slots/staging")
	status, body := b.upload("/apps/orders/slots/staging/deploy", map[string]string{"message": "manual"}, zip)
	if status != http.StatusConflict || !strings.Contains(body, "held by release "+rel.Name) {
		t.Errorf("deploy onto the held slot = %d, want 409 naming %s:\n%s", status, rel.Name, body)
	}
}
