package portal

import (
	"context"
	"strings"
	"testing"
)

// TestHistoryMarksQuarantine: the deployment history marks a quarantined
// deployment with its reason, and only that one.
func TestHistoryMarksQuarantine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts handler processes")
	}
	e := newEnv(t)
	b := e.browser()
	b.signIn(adminToken)
	prod, staged := deployedPair(t, e, b)
	if _, err := e.ops.QuarantineDeployment(context.Background(), "admin", "orders", staged, "500s on checkout"); err != nil {
		t.Fatal(err)
	}
	_, body := b.get("/apps/orders/deployments")
	mustContain(t, body, `data-testid="history-quarantine-`+staged+`"`, "quarantined</strong>: 500s on checkout")
	if strings.Contains(body, `data-testid="history-quarantine-`+prod+`"`) {
		t.Errorf("the history marks %s quarantined too", prod)
	}
}
