package cli

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	swapAnswer = `{"app":"orders","source":"staging","target":"production","phase":"completed",` +
		`"sourceDeployment":"d-new","targetDeployment":"d-old","reusedWarm":false,"durationMs":41,"flipMicros":120}`
	productionURL = "http://orders.localhost:8080"
)

// TestSwapCommands covers swap, autoswap, rollback, deployment history,
// activity and what they changed in slot create, slot list and deploy.
func TestSwapCommands(t *testing.T) {
	const zipPath = "testdata/pkg.zip"

	tests := []struct {
		name       string
		args       []string
		status     int
		answer     string
		want       request // Auth and, for a body, ContentType are filled in
		wantOut    string
		wantCode   int
		wantStderr string
		skipBody   bool // the request body is a zip: compare everything else
	}{
		{
			name:    "swap",
			args:    []string{"swap", "orders", "--slot", "staging"},
			status:  200,
			answer:  swapAnswer,
			want:    request{Method: "POST", Path: "/api/v1/apps/orders/swap", Body: `{"slot":"staging","target":"production","preview":false}`},
			wantOut: "swapped orders/staging into production in 41ms (staging now serves d-old, production serves d-new)\n",
		},
		{
			name:    "swap expecting the tested build",
			args:    []string{"swap", "orders", "--slot", "staging", "--expect", "d-new"},
			status:  200,
			answer:  swapAnswer,
			want:    request{Method: "POST", Path: "/api/v1/apps/orders/swap", Body: `{"slot":"staging","target":"production","preview":false,"expect":{"source":"d-new"}}`},
			wantOut: "swapped orders/staging into production in 41ms (staging now serves d-old, production serves d-new)\n",
		},
		{
			name:   "swap reusing warm processes into an empty target",
			args:   []string{"swap", "orders", "--slot", "staging"},
			status: 200,
			answer: strings.NewReplacer(`"targetDeployment":"d-old"`, `"targetDeployment":""`, `"reusedWarm":false`, `"reusedWarm":true`, `"durationMs":41`, `"durationMs":1500`).Replace(swapAnswer),
			want:   request{Method: "POST", Path: "/api/v1/apps/orders/swap", Body: `{"slot":"staging","target":"production","preview":false}`},
			wantOut: "swapped orders/staging into production in 1.5s (staging now is empty, production serves d-new)" +
				" (instant revert: warm process sets reused)\n",
		},
		{
			name:   "swap preview, flags interleaved",
			args:   []string{"swap", "--preview", "orders", "--target", "qa", "--slot", "staging"},
			status: 200,
			answer: strings.NewReplacer(`"completed"`, `"preview"`, `"production"`, `"qa"`).Replace(swapAnswer),
			want:   request{Method: "POST", Path: "/api/v1/apps/orders/swap", Body: `{"slot":"staging","target":"qa","preview":true}`},
			wantOut: "orders/staging is in preview of qa: its URL serves the new content with qa's settings; " +
				"run `hotswap swap orders --complete` or `--cancel`\n",
		},
		{
			name:    "swap complete",
			args:    []string{"swap", "orders", "--complete"},
			status:  200,
			answer:  strings.Replace(swapAnswer, `"reusedWarm":false`, `"reusedWarm":true`, 1),
			want:    request{Method: "POST", Path: "/api/v1/apps/orders/swap/complete"},
			wantOut: "swapped orders/staging into production in 41ms (staging now serves d-old, production serves d-new) (instant revert: warm process sets reused)\n",
		},
		{
			name:    "swap cancel",
			args:    []string{"swap", "--cancel", "orders"},
			status:  200,
			answer:  strings.Replace(swapAnswer, `"completed"`, `"cancelled"`, 1),
			want:    request{Method: "POST", Path: "/api/v1/apps/orders/swap/cancel"},
			wantOut: "swap cancelled: orders/staging serves d-new with its own settings again; production unchanged\n",
		},
		{
			name:    "swap -o json",
			args:    []string{"swap", "orders", "--slot", "staging", "-o", "json"},
			status:  200,
			answer:  `{"phase":"completed"}`,
			want:    request{Method: "POST", Path: "/api/v1/apps/orders/swap", Body: `{"slot":"staging","target":"production","preview":false}`},
			wantOut: "{\n  \"phase\": \"completed\"\n}\n",
		},
		{
			name:       "swap refused",
			args:       []string{"swap", "orders", "--slot", "staging"},
			status:     412,
			answer:     `{"error":{"kind":"failed_precondition","message":"warm-up of orders/staging failed: GET / answered 500"}}`,
			want:       request{Method: "POST", Path: "/api/v1/apps/orders/swap", Body: `{"slot":"staging","target":"production","preview":false}`},
			wantCode:   1,
			wantStderr: "hotswap: warm-up of orders/staging failed: GET / answered 500\n",
		},
		{
			name:    "autoswap",
			args:    []string{"autoswap", "orders", "--slot", "staging", "--target", "production"},
			status:  200,
			answer:  strings.Replace(slotAnswer, `"state"`, `"autoSwapTarget":"production","state"`, 1),
			want:    request{Method: "PUT", Path: "/api/v1/apps/orders/slots/staging/autoswap", Body: `{"target":"production"}`},
			wantOut: "auto swap: orders/staging -> production\n",
		},
		{
			name:    "autoswap disable",
			args:    []string{"autoswap", "--disable", "orders", "--slot", "staging"},
			status:  200,
			answer:  slotAnswer,
			want:    request{Method: "PUT", Path: "/api/v1/apps/orders/slots/staging/autoswap", Body: `{"target":""}`},
			wantOut: "auto swap of orders/staging disabled\n",
		},
		{
			name:    "rollback",
			args:    []string{"rollback", "orders", "--slot", "production", "--to", "d-5"},
			status:  200,
			answer:  `{"deployment":{"id":"d-5","app":"orders","slot":"production","status":4},"url":"` + productionURL + `"}`,
			want:    request{Method: "POST", Path: "/api/v1/apps/orders/slots/production/rollback", Body: `{"deployment":"d-5"}`},
			wantOut: "rolled back orders/production to d-5\n" + productionURL + "\n",
		},
		{
			name:   "deployments with history",
			args:   []string{"deployments", "orders"},
			status: 200,
			answer: `{"deployments":[` +
				`{"id":"d-2","slot":"staging","author":"ci","message":"fix\tit\nmore","status":4,"statusText":"success","createdAt":"2026-01-02T14:00:30Z",` +
				`"servingSlots":["production"],"served":[{"slot":"staging","from":"2026-01-02T14:01:00Z","to":"2026-01-02T14:05:09Z"},{"slot":"production","from":"2026-01-02T14:05:09Z"}]},` +
				`{"id":"d-1","slot":"production","author":"admin","message":"","status":4,"createdAt":"2026-01-01T09:00:00Z",` +
				`"servingSlots":["staging"],"served":[{"slot":"production","from":"2026-01-01T09:00:05Z","to":"2026-01-02T14:05:09Z"},{"slot":"staging","from":"2026-01-02T14:05:09.5Z"}]},` +
				`{"id":"d-0","slot":"staging","status":3,"createdAt":"2026-01-01T08:00:00Z","servingSlots":[],"served":[]}` +
				`]}`,
			want: request{Method: "GET", Path: "/api/v1/apps/orders/deployments"},
			wantOut: "ID   STATUS   SERVING     SERVED                                                 AUTHOR  CREATED               MESSAGE\n" +
				"d-2  success  production  staging 14:01-14:05, production 14:05-now              ci      2026-01-02T14:00:30Z  fix it\n" +
				"d-1  success  staging     production 09:00-Jan 2 14:05, staging Jan 2 14:05-now  admin   2026-01-01T09:00:00Z  -\n" +
				"d-0  failed   -           -                                                      -       2026-01-01T08:00:00Z  -\n",
		},
		{
			name:   "activity",
			args:   []string{"activity", "orders", "--limit", "2"},
			status: 200,
			answer: `{"activity":[` +
				`{"id":2,"app":"orders","time":"2026-01-02T14:05:09.123Z","actor":"admin","action":"swap","slot":"staging","detail":"staging -> production\tin 41ms","result":"succeeded"},` +
				`{"ID":1,"App":"orders","Time":"2026-01-02T14:00:30Z","Actor":"admin","Action":"app.create","Slot":"","Detail":"","Result":"succeeded"}]}`,
			want: request{Method: "GET", Path: "/api/v1/apps/orders/activity", Query: "limit=2"},
			wantOut: "TIME                  ACTOR  ACTION      SLOT     RESULT     DETAIL\n" +
				"2026-01-02T14:05:09Z  admin  swap        staging  succeeded  staging -> production in 41ms\n" +
				"2026-01-02T14:00:30Z  admin  app.create  -        succeeded  -\n",
		},
		{
			name:    "activity, server default limit",
			args:    []string{"activity", "orders"},
			status:  200,
			answer:  `{"activity":[]}`,
			want:    request{Method: "GET", Path: "/api/v1/apps/orders/activity"},
			wantOut: "TIME  ACTOR  ACTION  SLOT  RESULT  DETAIL\n",
		},
		{
			name:    "slot create cloning settings",
			args:    []string{"slot", "create", "orders", "staging", "--clone-settings-from", "production"},
			status:  201,
			answer:  slotAnswer,
			want:    request{Method: "POST", Path: "/api/v1/apps/orders/slots", Body: `{"name":"staging","cloneSettingsFrom":"production"}`},
			wantOut: "created slot orders/staging with the settings of production\nhttp://orders-staging.localhost:8080\n",
		},
		{
			name:   "slot list with preview and auto swap",
			args:   []string{"slot", "list", "orders"},
			status: 200,
			answer: `{"slots":[` + strings.Replace(slotAnswer, `"state":"running"`, `"state":"preview","preview":{"target":"production","since":"2026-01-02T14:05:09Z"},"autoSwapTarget":"production"`, 1) + `]}`,
			want:   request{Method: "GET", Path: "/api/v1/apps/orders/slots"},
			wantOut: "SLOT     STATE    DEPLOYMENT  AUTO-SWAP   URL\n" +
				"staging  preview  d-1         production  http://orders-staging.localhost:8080\n",
		},
		{
			name:     "deploy with auto swap",
			args:     []string{"deploy", "orders", zipPath, "--slot", "staging"},
			status:   200,
			answer:   strings.TrimSuffix(deployAnswerJS, "}") + `,"autoSwap":` + strings.Replace(swapAnswer, "d-new", "d-7", 1) + `}`,
			want:     request{Method: "POST", Path: "/api/v1/apps/orders/slots/staging/deploy", ContentType: "application/zip"},
			skipBody: true,
			wantOut:  "deployed d-7 to orders/staging\nhttp://orders-staging.localhost:8080\nauto swap: swapped into production (d-7)\n",
		},
		{
			name:       "deploy with a failed auto swap",
			args:       []string{"deploy", "orders", zipPath, "--slot", "staging"},
			status:     200,
			answer:     strings.TrimSuffix(deployAnswerJS, "}") + `,"autoSwapError":"warm-up failed: GET / answered 500"}`,
			want:       request{Method: "POST", Path: "/api/v1/apps/orders/slots/staging/deploy", ContentType: "application/zip"},
			skipBody:   true,
			wantOut:    "deployed d-7 to orders/staging\nhttp://orders-staging.localhost:8080\n",
			wantCode:   1,
			wantStderr: "hotswap: auto swap failed: warm-up failed: GET / answered 500 (the deploy itself succeeded: deployment d-7 to orders/staging)\n",
		},
		{
			name:       "deploy -o json with a failed auto swap",
			args:       []string{"deploy", "orders", zipPath, "-o", "json"},
			status:     200,
			answer:     `{"deployment":{"id":"d-7"},"url":"u","autoSwapError":"boom"}`,
			want:       request{Method: "POST", Path: "/api/v1/apps/orders/slots/production/deploy", ContentType: "application/zip"},
			skipBody:   true,
			wantOut:    "{\n  \"deployment\": {\n    \"id\": \"d-7\"\n  },\n  \"url\": \"u\",\n  \"autoSwapError\": \"boom\"\n}\n",
			wantCode:   1,
			wantStderr: "hotswap: auto swap failed: boom (the deploy itself succeeded: deployment d-7 to orders/production)\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newAPIServer(t, tc.status, tc.answer)
			vars := map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}
			code, stdout, stderr := run(t, tc.args, vars, "")
			if code != tc.wantCode || stderr != tc.wantStderr {
				t.Errorf("Run(%q) = %d, stderr %q; want %d, %q", tc.args, code, stderr, tc.wantCode, tc.wantStderr)
			}
			want := tc.want
			want.Auth = "Bearer " + testToken
			if want.ContentType == "" && want.Body != "" {
				want.ContentType = "application/json"
			}
			got := withoutDeployChecks(t, srv.Requests())
			if tc.skipBody {
				for i := range got {
					got[i].Body = ""
				}
			}
			if diff := cmp.Diff(got, []request{want}); diff != "" {
				t.Errorf("requests (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(stdout, tc.wantOut); diff != "" {
				t.Errorf("stdout (-got +want):\n%s", diff)
			}
		})
	}
}
