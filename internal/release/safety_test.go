package release

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/pipeline"
)

// twoStagePipeline deploys to staging, then, once approved, swaps staging
// into production.
const twoStagePipeline = `name: orders-release
artifact: {feed: orders}
trigger: {continuous: true, branches: [main]}
stages:
  - name: staging
    deploy: {app: orders, slot: staging}
  - name: production
    after: [staging]
    approval: {approvers: [qa-lead]}
    swap: {app: orders, slot: staging, target: production}
`

// TestStageChangesNeedAdmin: in a pipeline with an approval, a deployer may
// not change what its stages do or their order, which would move the swap
// into production past the approval; nor may it name itself an approver,
// of a new pipeline or an existing one. Other edits stay open, and a
// pipeline without approvals is the deployer's to change.
func TestStageChangesNeedAdmin(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	if _, err := e.ApplyPipeline(ctx, admin, []byte(twoStagePipeline)); err != nil {
		t.Fatal(err)
	}
	plain := "name: plain\nartifact: {feed: orders}\nstages:\n  - name: staging\n    deploy: {app: orders, slot: staging}\n"
	if _, err := e.ApplyPipeline(ctx, ci, []byte(plain)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		who       Actor
		def       string
		forbidden bool
	}{
		{"deployer moves the swap ahead of the approval", ci, strings.NewReplacer(
			"    deploy: {app: orders, slot: staging}\n  - name: production", "    deploy: {app: orders, slot: staging}\n    swap: {app: orders, slot: staging, target: production}\n  - name: production",
			"    approval: {approvers: [qa-lead]}\n    swap: {app: orders, slot: staging, target: production}\n", "    approval: {approvers: [qa-lead]}\n    deploy: {app: orders, slot: staging}\n",
		).Replace(twoStagePipeline), true},
		{"deployer drops the order", ci, strings.Replace(twoStagePipeline, "after: [staging]", "after: []", 1), true},
		{"deployer changes the swap's target", ci, strings.Replace(twoStagePipeline, "target: production}", "target: production, preview: true}", 1), true},
		{"deployer adds a stage", ci, twoStagePipeline + "  - name: extra\n    swap: {app: orders, slot: staging, target: production}\n", true},
		{"deployer reorders the stage list", ci, "name: orders-release\nartifact: {feed: orders}\ntrigger: {continuous: true, branches: [main]}\nstages:\n" +
			"  - name: production\n    after: [staging]\n    approval: {approvers: [qa-lead]}\n    swap: {app: orders, slot: staging, target: production}\n" +
			"  - name: staging\n    after: []\n    deploy: {app: orders, slot: staging}\n", true},
		{"deployer names itself an approver beside another", ci, strings.Replace(twoStagePipeline, "[qa-lead]", "[qa-lead, ci]", 1), true},
		{"deployer creates a pipeline it approves for others", ci, strings.Replace(strings.Replace(twoStagePipeline, "[qa-lead]", "[ci]", 1), "orders-release", "mine", 1), true},
		{"deployer adds an approval to its own pipeline", ci, strings.Replace(plain, "    deploy:", "    approval: {approvers: [qa-lead]}\n    deploy:", 1), true},
		{"deployer changes the branches", ci, strings.Replace(twoStagePipeline, "[main]", "[main, release/*]", 1), false},
		{"deployer adds a description", ci, strings.Replace(twoStagePipeline, "artifact:", "description: the orders service\nartifact:", 1), false},
		{"deployer changes a pipeline without approvals", ci, strings.Replace(plain, "deploy: {app: orders, slot: staging}", "swap: {app: orders, slot: staging, target: production}", 1), false},
		{"admin drops the order", admin, strings.Replace(twoStagePipeline, "after: [staging]", "after: []", 1), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ApplyPipeline(ctx, tc.who, []byte(tc.def))
			switch {
			case !tc.forbidden && err != nil:
				t.Errorf("err = %v, want none", err)
			case tc.forbidden && hotswap.ErrorKind(err) != hotswap.Forbidden:
				t.Errorf("err = %v (%v), want Forbidden", err, hotswap.ErrorKind(err))
			case err != nil && !strings.Contains(hotswap.ErrorMessage(err), "admin"):
				t.Errorf("message %q does not say the admin role is needed", hotswap.ErrorMessage(err))
			}
		})
	}
}

// TestPipelineNameNotReused: a name a pipeline had stays its own, since its
// releases answer to it; applying or renaming another pipeline to it is a
// Conflict, while the pipeline itself may take it back.
func TestPipelineNameNotReused(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	if _, err := e.ApplyPipeline(ctx, admin, []byte(approvalPipeline("orders", "{approvers: [qa-lead]}"))); err != nil {
		t.Fatal(err)
	}
	r, err := e.CreateRelease(ctx, ci, "orders", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.RenamePipeline(ctx, admin, "orders", "shop"); err != nil {
		t.Fatal(err)
	}
	_, err = e.ApplyPipeline(ctx, admin, []byte(approvalPipeline("orders", "{approvers: [qa-lead]}")))
	if hotswap.ErrorKind(err) != hotswap.Conflict || !strings.Contains(hotswap.ErrorMessage(err), `"orders" was the name of pipeline shop`) {
		t.Errorf("a new pipeline under the old name: err = %v, want Conflict naming shop", err)
	}
	if _, err := e.ApplyPipeline(ctx, admin, []byte(approvalPipeline("sales", "{approvers: [qa-lead]}"))); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RenamePipeline(ctx, admin, "sales", "orders"); hotswap.ErrorKind(err) != hotswap.Conflict {
		t.Errorf("renaming another pipeline to the old name: err = %v, want Conflict", err)
	}
	if got, err := e.Get(ctx, "orders-1"); err != nil || got.ID != r.ID {
		t.Errorf("Get(orders-1) = %v, %v; want %s", got, err, r.ID)
	}
	if _, err := e.RenamePipeline(ctx, admin, "shop", "orders"); err != nil {
		t.Errorf("the pipeline taking its own old name back: %v", err)
	}
}

// TestAmbiguousReleaseName: when two releases answer to one name (a store
// from before names were kept), Get by that name is a Conflict naming both
// ids, and each is still found by its id.
func TestAmbiguousReleaseName(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	for _, name := range []string{"orders", "sales"} {
		if _, err := e.ApplyPipeline(ctx, admin, []byte(approvalPipeline(name, "{approvers: [qa-lead]}"))); err != nil {
			t.Fatal(err)
		}
	}
	first, err := e.CreateRelease(ctx, ci, "orders", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.RenamePipeline(ctx, admin, "orders", "shop"); err != nil {
		t.Fatal(err)
	}
	// What the store allowed before: sales renamed to orders, freed by shop.
	raw, err := sql.Open("sqlite", filepath.Join(e.dir, "hotswap.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []string{"UPDATE pipelines SET name = 'orders' WHERE name = 'sales'", "UPDATE pipeline_versions SET name = 'orders' WHERE name = 'sales'"} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	second, err := e.CreateRelease(ctx, ci, "orders", "")
	if err != nil {
		t.Fatal(err)
	}
	if second.Name != "orders-1" {
		t.Fatalf("the second release is %s, want orders-1", second.Name)
	}
	_, err = e.Get(ctx, "orders-1")
	msg := hotswap.ErrorMessage(err)
	if hotswap.ErrorKind(err) != hotswap.Conflict || !strings.Contains(msg, "ambiguous") || !strings.Contains(msg, first.ID) || !strings.Contains(msg, second.ID) {
		t.Errorf("Get(orders-1) = %v, want Conflict naming %s and %s", err, first.ID, second.ID)
	}
	if _, err := e.Decide(ctx, qa, "orders-1", "production", true, ""); hotswap.ErrorKind(err) != hotswap.Conflict {
		t.Errorf("approving orders-1 = %v, want Conflict", err)
	}
	for _, r := range []*Release{first, second} {
		if got, err := e.Get(ctx, r.ID); err != nil || got.ID != r.ID {
			t.Errorf("Get(%s) = %v, %v", r.ID, got, err)
		}
	}
}

// TestAbandonInActivityLog: abandoning a release writes release.abandon,
// with who and which release, to the activity log of the apps it acts on.
func TestAbandonInActivityLog(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	if _, err := e.ApplyPipeline(ctx, admin, []byte(approvalPipeline("orders-release", "{approvers: [qa-lead]}"))); err != nil {
		t.Fatal(err)
	}
	r, err := e.CreateRelease(ctx, ci, "orders-release", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Abandon(ctx, ci, r.Name); err != nil {
		t.Fatal(err)
	}
	acts, err := e.db.ListActivity(ctx, "orders", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range acts {
		if a.Action == "release.abandon" {
			got = append(got, a.Actor+" "+a.Detail)
		}
	}
	want := "ci release orders-release-1 (orders 1.0.0) abandoned by ci"
	if len(got) != 1 || got[0] != want {
		t.Errorf("release.abandon entries = %q, want [%q]", got, want)
	}
}

// webhookPipeline is a pipeline whose notify section is notify.
func webhookPipeline(notify string) string {
	return "name: hooked\nartifact: {feed: orders}\nstages:\n  - name: staging\n    deploy: {app: orders, slot: staging}\n" + notify
}

// TestRedactDefinition: the webhook URL is cut out of the text however the
// YAML spells it; when it cannot be, the whole text is withheld. Either way
// no part of the secret is left.
func TestRedactDefinition(t *testing.T) {
	const shown = "https://h.example/…"
	tests := []struct {
		name, notify string
		withheld     bool
	}{
		{"plain", "notify:\n  webhook: https://h.example/s/T0?k=s3cr3t\n", false},
		{"flow, single quotes", "notify: {webhook: 'https://h.example/s/s3cr3t', events: [release]}\n", false},
		{"double quotes and a comment", "notify:\n  webhook: \"https://h.example/s3cr3t\" # the hook\n", false},
		{"block scalar", "notify:\n  webhook: >-\n    https://h.example/s/T0?k=s3cr3t\n", false},
		{"literal block scalar", "notify:\n  webhook: |-\n    https://h.example/s/T0?k=s3cr3t\n", false},
		{"plain value on the next line", "notify:\n  webhook:\n    https://h.example/s/s3cr3t\n", false},
		{"quoted key", "notify: {\"webhook\": \"https://h.example/s/s3cr3t\"}\n", false},
		{"explicit key", "notify:\n  ? webhook\n  : https://h.example/s/s3cr3t\n", false},
		{"escaped quotes", "notify: {webhook: \"https://h.example/s/s3cr3t?q=\\\"x\\\"\"}\n", false},
		{"JSON escapes", "notify: {\"webhook\": \"https://h.example/s/s3cr3t?a=1\\u0026b=2\"}\n", false},
		{"escaped letter", "notify: {webhook: \"https://h.example/s/s3\\x63r3t\"}\n", true},
		{"folded over two lines", "notify:\n  webhook: \"https://h.example/s/s3\\\n    cr3t\"\n", true},
		{"secret elsewhere in the text", "description: token at /s/s3cr3t\nnotify:\n  webhook: https://h.example/s/s3cr3t\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			def := webhookPipeline(tc.notify)
			if !strings.Contains(def, "description") {
				def = strings.Replace(def, "artifact:", "description: orders\nartifact:", 1)
			}
			orig, err := pipeline.Parse([]byte(def), nil)
			if err != nil {
				t.Fatalf("the test definition does not parse: %v", err)
			}
			if !strings.Contains(orig.Webhook, "s3cr3t") {
				t.Fatalf("the test definition's webhook is %q", orig.Webhook)
			}
			got := RedactDefinition(def)
			if strings.Contains(got, "s3cr3t") || strings.Contains(got, "cr3t") {
				t.Errorf("the secret is left:\n%s", got)
			}
			if tc.withheld {
				if got != WithheldDefinition {
					t.Errorf("got\n%s\nwant the definition withheld", got)
				}
				return
			}
			redacted, err := pipeline.Parse([]byte(got), nil)
			if err != nil {
				t.Fatalf("the redacted definition does not parse: %v\n%s", err, got)
			}
			if redacted.Webhook != shown {
				t.Errorf("redacted webhook = %q, want %q", redacted.Webhook, shown)
			}
			if !strings.Contains(got, "description: orders\n") || !strings.Contains(got, "deploy: {app: orders, slot: staging}\n") {
				t.Errorf("the rest of the definition changed:\n%s\nwas:\n%s", got, def)
			}
		})
	}
	for _, def := range []string{webhookPipeline(""), webhookPipeline("notify: {webhook: 'http://127.0.0.1:9000'}\n")} {
		if got := RedactDefinition(def); got != def {
			t.Errorf("RedactDefinition(%q) = %q, want it unchanged", def, got)
		}
	}
	if got := RedactDefinition("name: x\n"); got != WithheldDefinition {
		t.Errorf("a definition that does not parse = %q, want it withheld", got)
	}
}

// TestReapplyRedactedKeepsWebhook: a deployer who applies the redacted
// definition it was shown (with a change of its own) keeps the pipeline's
// webhook; one who gives a new URL sets it.
func TestReapplyRedactedKeepsWebhook(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	for _, notify := range []string{
		"notify:\n  webhook: https://h.example/s/T0?k=s3cr3t\n",
		"notify:\n  webhook: >-\n    https://h.example/s/T0?k=s3cr3t\n",
		"notify: {\"webhook\": \"https://h.example/s/s3cr3t?q=\\\"x\\\"\"}\n",
	} {
		def := webhookPipeline(notify)
		if _, err := e.ApplyPipeline(ctx, admin, []byte(def)); err != nil {
			t.Fatal(err)
		}
		want, _ := pipeline.Parse([]byte(def), nil)
		shown := RedactDefinition(def)
		if shown == WithheldDefinition {
			t.Fatalf("withheld:\n%s", def)
		}
		edited := strings.Replace(shown, "artifact:", "description: edited\nartifact:", 1)
		p, err := e.ApplyPipeline(ctx, ci, []byte(edited))
		if err != nil {
			t.Fatalf("deployer re-applying the redacted definition: %v", err)
		}
		got, err := pipeline.Parse([]byte(p.Definition), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Webhook != want.Webhook || got.Description != "edited" {
			t.Errorf("after re-applying, webhook %q description %q; want %q, edited", got.Webhook, got.Description, want.Webhook)
		}
	}
	p, err := e.ApplyPipeline(ctx, ci, []byte(webhookPipeline("notify: {webhook: 'https://other.example/new'}\n")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Definition, "https://other.example/new") {
		t.Errorf("a new webhook was not set:\n%s", p.Definition)
	}
}
