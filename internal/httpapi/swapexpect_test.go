package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestSwapExpect: a swap with "expect" goes on only while the slots serve
// what it names, on both ways of asking (waiting, and ?wait=false); a
// wrong or missing field is refused with what is wrong and where.
func TestSwapExpect(t *testing.T) {
	e := newEnv(t)
	prod := e.ordersApp()
	var res struct{ Deployment struct{ ID string } }
	e.must(adminToken, 200, "POST", "/api/v1/apps/orders/slots/staging/deploy", goforwardZip(t), &res)
	staged := res.Deployment.ID

	for _, tc := range []struct {
		name string
		body string
		code int
		msg  string
	}{
		{"source differs", `{"slot":"staging","expect":{"source":"d-tested"}}`, http.StatusPreconditionFailed,
			"orders/staging serves " + staged + ", not d-tested as the swap expected; nothing was swapped"},
		{"target differs", fmt.Sprintf(`{"slot":"staging","expect":{"source":%q,"target":"d-old"}}`, staged), http.StatusPreconditionFailed,
			"orders/production serves " + prod + ", not d-old"},
		{"target expected empty", fmt.Sprintf(`{"slot":"staging","expect":{"source":%q,"target":""}}`, staged), http.StatusPreconditionFailed,
			"orders/production serves " + prod + ", not nothing"},
		{"no source", `{"slot":"staging","expect":{"target":"d-1"}}`, http.StatusBadRequest, `"expect.source" is required`},
		{"empty source", `{"slot":"staging","expect":{"source":""}}`, http.StatusBadRequest, `"expect.source" is empty`},
		{"null expect", `{"slot":"staging","expect":null}`, http.StatusBadRequest, `"expect" is null`},
		{"null source", `{"slot":"staging","expect":{"source":null}}`, http.StatusBadRequest, `"expect.source" must be a deployment id`},
		{"null target", fmt.Sprintf(`{"slot":"staging","expect":{"source":%q,"target":null}}`, staged), http.StatusBadRequest, `"expect.target" must be a deployment id`},
		{"number source", `{"slot":"staging","expect":{"source":7}}`, http.StatusBadRequest, `"expect.source" must be a deployment id`},
		{"not an object", `{"slot":"staging","expect":"d-1"}`, http.StatusBadRequest, `"expect" must be an object {"source": DEPLOYMENT, "target": DEPLOYMENT}, not "d-1"`},
		{"an array", `{"slot":"staging","expect":[]}`, http.StatusBadRequest, `"expect" must be an object`},
		{"empty object", `{"slot":"staging","expect":{}}`, http.StatusBadRequest, `"expect.source" is required`},
		{"long source", `{"slot":"staging","expect":{"source":"` + strings.Repeat("d", 101) + `"}}`, http.StatusBadRequest, `"expect.source" is 101 bytes long; a deployment id is at most 100`},
		{"long target", fmt.Sprintf(`{"slot":"staging","expect":{"source":%q,"target":"%s"}}`, staged, strings.Repeat("d", 101)), http.StatusBadRequest, `"expect.target" is 101 bytes long`},
		{"unknown field", `{"slot":"staging","expect":{"source":"d-1","deployment":"d-2"}}`, http.StatusBadRequest, `"expect" has an unknown field "deployment": it takes "source" and "target"`},
		{"with a strategy", `{"slot":"staging","strategy":"canary:10","expect":{"source":"d-1"}}`, http.StatusBadRequest, `"expect" does not apply to a progressive swap`},
		{"null with a strategy", `{"slot":"staging","strategy":"canary:10","expect":null}`, http.StatusBadRequest, `"expect" does not apply to a progressive swap`},
	} {
		code, body := e.call(adminToken, "POST", "/api/v1/apps/orders/swap", tc.body, nil)
		body = errorMessage(body)
		if code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %d %s; want %d saying %q", tc.name, code, body, tc.code, tc.msg)
		}
		// Without waiting, the refusal of a swap begun is its operation's end.
		var acc struct{ Events string }
		code, body = e.call(adminToken, "POST", "/api/v1/apps/orders/swap?wait=false", tc.body, &acc)
		body = errorMessage(body)
		if code == http.StatusAccepted && tc.code == http.StatusPreconditionFailed {
			evs := readSSE(t, e.request("GET", acc.Events, nil, nil).Body)
			end := evs[len(evs)-1].op(t)
			code, body = tc.code, end.State+": "+end.Detail
			if !end.End || end.State != "failed" {
				t.Errorf("%s, ?wait=false: the operation ended %+v; want failed", tc.name, end)
			}
		}
		if code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("%s, ?wait=false: %d %s; want %d saying %q", tc.name, code, body, tc.code, tc.msg)
		}
	}
	serves := func(slot, want string) {
		t.Helper()
		var st struct{ DeploymentID string }
		e.must(adminToken, 200, "GET", "/api/v1/apps/orders/slots/"+slot, nil, &st)
		if st.DeploymentID != want {
			t.Fatalf("%s serves %s, want %s", slot, st.DeploymentID, want)
		}
	}
	serves("staging", staged)
	serves("production", prod)

	e.must(adminToken, 200, "POST", "/api/v1/apps/orders/swap", fmt.Sprintf(`{"slot":"staging","expect":{"source":%q,"target":%q}}`, staged, prod), nil)
	serves("production", staged)
	e.must(adminToken, 200, "POST", "/api/v1/apps/orders/swap", fmt.Sprintf(`{"slot":"staging","expect":{"source":%q}}`, prod), nil)
	serves("production", prod)
}

// errorMessage returns the message of an error answer's JSON, or body as
// it is when it is not one.
func errorMessage(body string) string {
	var x struct{ Error struct{ Message string } }
	if json.Unmarshal([]byte(body), &x) == nil && x.Error.Message != "" {
		return x.Error.Message
	}
	return body
}
