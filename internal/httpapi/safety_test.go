package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestPipelineSafetyAPI: over the API, a deployer reads a pipeline whose
// webhook is a block scalar without the secret and may apply that text back
// without losing the webhook, but may not move the swap past the approval;
// and a pipeline's former name is not given to another pipeline.
func TestPipelineSafetyAPI(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.ops.CreateApp(ctx, "admin", "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ops.CreateSlot(ctx, "admin", "orders", "staging", ""); err != nil {
		t.Fatal(err)
	}
	e.addUser("qa-lead", "approver")
	ci := e.addUser("ci", "deployer")
	def := heldPipeline + "notify:\n  webhook: >-\n    https://hooks.example.com/services/T0/B1/s3cr3t?token=s3cr3t\n"
	e.must(adminToken, http.StatusCreated, "POST", "/api/v1/pipelines", def, nil)

	var got struct {
		Pipeline struct{ Definition string }
		Versions []struct{ Definition string }
	}
	raw := e.must(ci, http.StatusOK, "GET", "/api/v1/pipelines/orders-release", nil, &got)
	if strings.Contains(raw, "s3cr3t") || !strings.Contains(got.Pipeline.Definition, "https://hooks.example.com/…") {
		t.Fatalf("a deployer reads the webhook: %s", raw)
	}
	edited := strings.Replace(got.Pipeline.Definition, "artifact:", "description: edited\nartifact:", 1)
	e.must(ci, http.StatusOK, "POST", "/api/v1/pipelines", edited, nil)
	if raw := e.must(adminToken, http.StatusOK, "GET", "/api/v1/pipelines/orders-release", nil, &got); !strings.Contains(got.Pipeline.Definition, "s3cr3t?token=s3cr3t") || !strings.Contains(got.Pipeline.Definition, "description: edited") {
		t.Errorf("after a deployer applied the redacted text, the webhook is lost: %s", raw)
	}

	moved := strings.NewReplacer(
		"    deploy: {app: orders, slot: staging}\n  - name: production", "    deploy: {app: orders, slot: staging}\n    swap: {app: orders, slot: staging, target: production}\n  - name: production",
		"    approval: {approvers: [qa-lead]}\n    swap: {app: orders, slot: staging, target: production}\n", "    approval: {approvers: [qa-lead]}\n    deploy: {app: orders, slot: staging}\n",
	).Replace(heldPipeline)
	if code, raw := e.call(ci, "POST", "/api/v1/pipelines", moved, nil); code != http.StatusForbidden || !strings.Contains(raw, "admin") {
		t.Errorf("a deployer moving the swap ahead of the approval = %d %s, want 403", code, raw)
	}

	e.must(adminToken, http.StatusOK, "POST", "/api/v1/pipelines/orders-release/rename", map[string]string{"name": "shop"}, nil)
	if code, raw := e.call(adminToken, "POST", "/api/v1/pipelines", heldPipeline, nil); code != http.StatusConflict || !strings.Contains(raw, "was the name of pipeline shop") {
		t.Errorf("a new pipeline under a former name = %d %s, want 409", code, raw)
	}
}
