package httpapi

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
)

// TestTrafficAPI: the rules are read by any user, changed with the deploy
// role, refused with a message saying what is wrong, and cleared.
func TestTrafficAPI(t *testing.T) {
	e := newEnv(t)
	e.must(adminToken, 201, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	e.must(adminToken, 201, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	deployer, approver := e.addUser("ci", "deployer"), e.addUser("qa-lead", "approver")

	var got trafficBody
	if raw := e.must(approver, 200, "GET", "/api/v1/apps/orders/traffic", nil, &got); !strings.Contains(strings.Join(strings.Fields(raw), ""), `"shares":[]`) {
		t.Errorf("GET traffic of an app without rules = %s, want shares: []", raw)
	}
	body := map[string]any{"shares": []map[string]any{{"slot": "staging", "percent": 10}}}
	if code, raw := e.call(approver, "PUT", "/api/v1/apps/orders/traffic", body, nil); code != 403 {
		t.Errorf("PUT traffic as an approver = %d %s, want 403", code, raw)
	}
	e.must(deployer, 200, "PUT", "/api/v1/apps/orders/traffic", body, &got)
	want := []hotswap.TrafficShare{{Slot: "staging", Percent: 10}}
	if !cmp.Equal(got.Shares, want) {
		t.Errorf("PUT traffic answered %v, want %v", got.Shares, want)
	}
	e.must(approver, 200, "GET", "/api/v1/apps/orders/traffic", nil, &got)
	if !cmp.Equal(got.Shares, want) {
		t.Errorf("GET traffic = %v, want %v", got.Shares, want)
	}

	for _, tc := range []struct {
		body any
		code int
		msg  string
	}{
		{map[string]any{"shares": []map[string]any{{"slot": "nope", "percent": 5}}}, 404, `slot \"nope\" of app \"orders\" not found`},
		{map[string]any{"shares": []map[string]any{{"slot": "staging", "percent": 150}}}, 400, "percent 150 is not between 0 and 100"},
		{map[string]any{"shares": []map[string]any{{"slot": "production", "percent": 5}}}, 400, "production"},
		{map[string]any{}, 400, `needs \"shares\"`},
		{`{"shares":[{"slot":"staging","percent":"ten"}]}`, 400, "not valid JSON"},
	} {
		if code, raw := e.call(deployer, "PUT", "/api/v1/apps/orders/traffic", tc.body, nil); code != tc.code || !strings.Contains(raw, tc.msg) {
			t.Errorf("PUT traffic %v = %d %s, want %d with %q", tc.body, code, raw, tc.code, tc.msg)
		}
	}
	if code, _ := e.call(approver, "GET", "/api/v1/apps/nope/traffic", nil, nil); code != 404 {
		t.Errorf("GET traffic of a missing app = %d, want 404", code)
	}

	if code, _ := e.call(approver, "DELETE", "/api/v1/apps/orders/traffic", nil, nil); code != 403 {
		t.Errorf("DELETE traffic as an approver = %d, want 403", code)
	}
	e.must(deployer, 204, "DELETE", "/api/v1/apps/orders/traffic", nil, nil)
	e.must(approver, 200, "GET", "/api/v1/apps/orders/traffic", nil, &got)
	if len(got.Shares) != 0 {
		t.Errorf("GET traffic after DELETE = %v", got.Shares)
	}
}
