package portal

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hotswap/hotswap/internal/pipeline"
	"github.com/hotswap/hotswap/internal/release"
)

// TestEditorRedactsWebhook: the pipeline editor shows a deployer the
// definition with its webhook URL cut out, however the YAML spells it, or
// a note instead of a definition it could not be cut out of; saving the
// redacted text keeps the webhook. An admin sees the whole URL.
func TestEditorRedactsWebhook(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.ops.CreateApp(ctx, "admin", "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ops.CreateSlot(ctx, "admin", "orders", "staging", ""); err != nil {
		t.Fatal(err)
	}
	ci := e.addUser("ci", "deployer")
	admin := release.Actor{Name: "admin", Role: "admin"}
	base := "name: orders-release\nartifact: {feed: orders}\nstages:\n  - name: staging\n    deploy: {app: orders, slot: staging}\n"
	const secret = "https://hooks.example.com/services/T0/B1/s3cr3t?token=s3cr3t"

	if _, err := e.rel.ApplyPipeline(ctx, admin, []byte(base+"notify:\n  webhook: >-\n    "+secret+"\n")); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.signIn(ci)
	status, body := b.get("/pipelines/orders-release/edit")
	if status != http.StatusOK || strings.Contains(body, "s3cr3t") || !strings.Contains(body, "https://hooks.example.com/…") {
		t.Fatalf("deployer GET edit = %d, shows the webhook or not its host:\n%s", status, body)
	}
	i, j := strings.Index(body, `data-testid="pipeline-definition"`), strings.Index(body, "</textarea>")
	shown := html.UnescapeString(body[strings.Index(body[i:], ">\n")+i+2 : j])
	shown = strings.Replace(shown, "artifact:", "description: edited in the portal\nartifact:", 1)
	if status, body := b.post("/pipelines/orders-release/edit", url.Values{"definition": {shown}}); status != http.StatusOK || !strings.Contains(body, "saved") {
		t.Fatalf("deployer saving the redacted definition = %d:\n%s", status, body)
	}
	pl, err := e.db.GetPipeline(ctx, "orders-release", false)
	if err != nil {
		t.Fatal(err)
	}
	def, err := pipeline.Parse([]byte(pl.Definition), nil)
	if err != nil {
		t.Fatal(err)
	}
	if def.Webhook != secret || def.Description != "edited in the portal" {
		t.Errorf("after the deployer's save, webhook %q description %q; want the old webhook kept", def.Webhook, def.Description)
	}

	// A webhook written with an escape cannot be cut out: a note instead.
	escaped := strings.Replace(secret, "s3cr3t?", `s3\x63r3t?`, 1)
	if _, err := e.rel.ApplyPipeline(ctx, admin, []byte(base+"notify: {webhook: \""+escaped+"\"}\n")); err != nil {
		t.Fatal(err)
	}
	_, body = b.get("/pipelines/orders-release/edit")
	if strings.Contains(body, "s3cr3t") || strings.Contains(body, "x63r3t") || !strings.Contains(body, "withheld") {
		t.Errorf("deployer GET edit of an escaped webhook shows it, or no note:\n%s", body)
	}
	a := e.browser()
	a.signIn(adminToken)
	if _, body := a.get("/pipelines/orders-release/edit"); !strings.Contains(body, "x63r3t") {
		t.Errorf("admin GET edit does not show the definition whole:\n%s", body)
	}
}
