package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestStaleSwapBackIntoEmptySlot: the first swap, into an empty production,
// leaves staging empty; its result.s Swap back expects that. A later deploy
// to staging makes the result earlier, and its Swap back is refused rather
// than swapping the new, never-swapped deployment into production (found
// in review).
func TestStaleSwapBackIntoEmptySlot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	b := e.browser()
	b.signIn(adminToken)
	zip := goforwardZip(t)
	b.post("/apps", url.Values{"name": {"orders"}})
	b.post("/apps/orders/slots", url.Values{"name": {"staging"}})
	if status, body := b.upload("/apps/orders/slots/staging/deploy", map[string]string{"message": "a"}, zip); status != http.StatusOK {
		t.Fatalf("deploy = %d:\n%s", status, body)
	}
	a, _ := e.ops.GetSlot(ctx, "orders", "staging")
	status, body := b.post("/apps/orders/swap", swapForm(t, b, "orders", "staging", "production", "swap"))
	if status != http.StatusOK {
		t.Fatalf("swap = %d:\n%s", status, body)
	}
	t.Logf("swap-back form present: %v", strings.Contains(body, `data-testid="swap-back"`))
	completedURL := "/apps/orders/swap?source=staging&target=production&phase=completed&sd=" + a.DeploymentID + "&td="
	if status, body := b.upload("/apps/orders/slots/staging/deploy", map[string]string{"message": "b"}, zip); status != http.StatusOK {
		t.Fatalf("deploy = %d:\n%s", status, body)
	}
	bdep, _ := e.ops.GetSlot(ctx, "orders", "staging")
	_, body = b.get(completedURL)
	if !strings.Contains(body, `data-testid="swap-stale"`) {
		t.Errorf("Back to the first result after a deploy to staging: not marked earlier; Swap back offered: %v", strings.Contains(body, `data-testid="swap-back"`))
	}
	back := url.Values{"source": {"staging"}, "target": {"production"}, "mode": {"swap"}, "expect": {"1"}, "expect-source": {""}, "expect-target": {a.DeploymentID}}
	status, _ = b.post("/apps/orders/swap", back)
	got, _ := e.ops.GetSlot(ctx, "orders", "production")
	if status != http.StatusPreconditionFailed {
		t.Errorf("stale Swap back = %d, want 412; production now serves %s (the new staging deployment is %s, never swapped by anyone)", status, got.DeploymentID, bdep.DeploymentID)
	}
}
