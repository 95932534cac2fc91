package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
)

// TestTrafficColumn: the slots page shows each slot's real share of
// production's requests; a deployer sets and removes a slot's share with
// its small form (CSRF checked), a bad percent is refused beside the
// field, and an approver sees the shares without a form.
func TestTrafficColumn(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.ops.CreateApp(ctx, "t", "shop"); err != nil {
		t.Fatal(err)
	}
	for _, slot := range []string{"staging", "canary"} {
		if _, err := e.ops.CreateSlot(ctx, "t", "shop", slot, ""); err != nil {
			t.Fatal(err)
		}
	}
	cell := func(body, slot string) string {
		t.Helper()
		i := strings.Index(body, `id="slot-traffic-`+slot+`"`)
		if i < 0 {
			t.Fatalf("no traffic cell for %s", slot)
		}
		j := strings.Index(body[i:], "</td>")
		return body[i : i+j]
	}

	b := e.browser()
	b.signIn(adminToken)
	_, body := b.get("/apps/shop")
	if c := cell(body, "production"); !strings.Contains(c, ">100%") {
		t.Errorf("production's traffic cell without rules: %s", c)
	}
	if c := cell(body, "staging"); !strings.Contains(c, `name="percent"`) || !strings.Contains(c, `name="csrf"`) {
		t.Errorf("staging's traffic cell has no form with CSRF for a deployer: %s", c)
	}

	if status, body := b.post("/apps/shop/traffic", url.Values{"slot": {"staging"}, "percent": {"10"}}); status != http.StatusOK || !strings.Contains(body, "staging now gets 10% of production&#39;s requests") {
		t.Fatalf("set staging's share = %d:\n%s", status, body)
	}
	if status, body := b.post("/apps/shop/traffic", url.Values{"slot": {"canary"}, "percent": {"2.5%"}}); status != http.StatusOK {
		t.Fatalf("set canary's share = %d:\n%s", status, body)
	}
	want := []hotswap.TrafficShare{{Slot: "canary", Percent: 2.5}, {Slot: "staging", Percent: 10}}
	if got, _ := e.ops.Traffic(ctx, "shop"); !cmp.Equal(got, want) {
		t.Errorf("traffic after the forms = %v, want %v", got, want)
	}
	_, body = b.get("/apps/shop")
	if c := cell(body, "production"); !strings.Contains(c, ">87.5%") {
		t.Errorf("production's traffic cell: %s", c)
	}
	if c := cell(body, "staging"); !strings.Contains(c, `value="10"`) {
		t.Errorf("staging's traffic cell: %s", c)
	}
	if _, body := b.get("/apps/shop/slots/staging"); !strings.Contains(body, "10% of production") {
		t.Errorf("staging's page does not show its share")
	}

	// Refused: over 100% in all, and not a number; nothing changes.
	for _, tc := range []struct{ percent, msg string }{
		{"99", "traffic shares sum to 101.5%, more than 100%"},
		{"ten", "&#34;ten&#34; is not a percent from 0 to 100"},
	} {
		status, body := b.post("/apps/shop/traffic", url.Values{"slot": {"staging"}, "percent": {tc.percent}})
		if status != http.StatusBadRequest || !strings.Contains(cell(body, "staging"), tc.msg) {
			t.Errorf("set staging to %s = %d; want 400 with %q beside the field:\n%s", tc.percent, status, tc.msg, cell(body, "staging"))
		}
	}
	if got, _ := e.ops.Traffic(ctx, "shop"); !cmp.Equal(got, want) {
		t.Errorf("a refused form changed the traffic: %v", got)
	}

	// Without the CSRF token nothing changes.
	b.post("/apps/shop/traffic", url.Values{"slot": {"staging"}, "percent": {"50"}, "csrf": {"forged"}})
	if got, _ := e.ops.Traffic(ctx, "shop"); !cmp.Equal(got, want) {
		t.Errorf("a forged form changed the traffic: %v", got)
	}

	// An empty percent removes the rule.
	if status, _ := b.post("/apps/shop/traffic", url.Values{"slot": {"canary"}, "percent": {""}}); status != http.StatusOK {
		t.Fatalf("remove canary's share = %d", status)
	}
	if got, _ := e.ops.Traffic(ctx, "shop"); !cmp.Equal(got, want[1:]) {
		t.Errorf("traffic after removing canary's = %v", got)
	}

	qa := e.browser()
	qa.signIn(e.addUser("qa", "approver"))
	_, body = qa.get("/apps/shop")
	if c := cell(body, "staging"); strings.Contains(c, "<form") || !strings.Contains(c, "10%") {
		t.Errorf("an approver's staging traffic cell: %s", c)
	}
	if status, _ := qa.post("/apps/shop/traffic", url.Values{"slot": {"staging"}, "percent": {"50"}}); status != http.StatusForbidden {
		t.Errorf("an approver's traffic form = %d, want 403", status)
	}
	if got, _ := e.ops.Traffic(ctx, "shop"); !cmp.Equal(got, want[1:]) {
		t.Errorf("an approver changed the traffic: %v", got)
	}
}
