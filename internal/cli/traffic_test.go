package cli

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTrafficCommands: traffic set sends the rules as the API takes them and
// prints the shares with production's rest; show reads them; clear deletes
// them; a malformed share is refused before any request.
func TestTrafficCommands(t *testing.T) {
	const answer = `{"shares":[{"slot":"canary","percent":2.5},{"slot":"staging","percent":10}]}`
	const table = "SLOT        PERCENT\nproduction  87.5%\ncanary      2.5%\nstaging     10%\n"
	for _, tc := range []struct {
		args    []string
		status  int
		answer  string
		want    request
		wantOut string
	}{
		{[]string{"traffic", "set", "orders", "staging=10", "canary=2.5%"}, 200, answer,
			request{Method: "PUT", Path: "/api/v1/apps/orders/traffic", ContentType: "application/json", Body: `{"shares":[{"slot":"staging","percent":10},{"slot":"canary","percent":2.5}]}`}, table},
		{[]string{"traffic", "show", "orders"}, 200, answer,
			request{Method: "GET", Path: "/api/v1/apps/orders/traffic"}, table},
		{[]string{"traffic", "show", "orders"}, 200, `{"shares":[]}`,
			request{Method: "GET", Path: "/api/v1/apps/orders/traffic"}, "SLOT        PERCENT\nproduction  100%\n"},
		{[]string{"traffic", "clear", "orders"}, 204, "",
			request{Method: "DELETE", Path: "/api/v1/apps/orders/traffic"}, "traffic rules of orders cleared: production serves all its requests\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			srv := newAPIServer(t, tc.status, tc.answer)
			vars := map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}
			code, stdout, stderr := run(t, tc.args, vars, t.TempDir())
			if code != 0 || stderr != "" {
				t.Fatalf("Run(%q) = %d, stderr %q", tc.args, code, stderr)
			}
			want := tc.want
			want.Auth = "Bearer " + testToken
			if diff := cmp.Diff(srv.Requests(), []request{want}); diff != "" {
				t.Errorf("requests (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(stdout, tc.wantOut); diff != "" {
				t.Errorf("stdout (-got +want):\n%s", diff)
			}
		})
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"traffic", "set", "orders", "staging"}, `"staging" is not SLOT=PERCENT`},
		{[]string{"traffic", "set", "orders", "staging=ten"}, `the percent "ten" is not a number`},
		{[]string{"traffic", "set", "orders"}, "usage: hotswap traffic set APP SLOT=PERCENT..."},
	} {
		srv := newAPIServer(t, 200, answer)
		vars := map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}
		code, _, stderr := run(t, tc.args, vars, t.TempDir())
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("Run(%q) = %d, stderr %q; want an error with %q", tc.args, code, stderr, tc.want)
		}
		if n := len(srv.Requests()); n != 0 {
			t.Errorf("Run(%q) sent %d requests", tc.args, n)
		}
	}
}
