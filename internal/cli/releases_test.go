package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	digest         = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	artifactAnswer = `{"feed":"orders","version":"1.2.0","branch":"main","commit":"abc123","digest":"` + digest + `","actor":"ci","createdAt":"2026-01-02T03:04:05Z"}`
	pipelineAnswer = `{"id":"p-1","name":"orders-release","version":3,"definition":"name: orders-release\nstages: []\n","createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-03T03:04:05Z"}`
	releaseAnswer  = `{"id":"r-7","name":"orders-release-7","number":7,"pipeline":"orders-release","pipelineVersion":3,` +
		`"feed":"orders","version":"1.2.0","branch":"main","commit":"abc123","requester":"ci","reason":"continuous",` +
		`"state":"active","createdAt":"2026-01-02T03:04:05Z","holds":["orders/staging"],"stages":[` +
		`{"name":"staging","state":"succeeded","attempt":0,"deploymentId":"d-9","approvals":[],"gates":[],` +
		`"log":[{"time":"2026-01-02T03:04:06Z","text":"deployed d-9 to orders/staging"},{"time":"2026-01-02T03:04:09Z","text":"swapped"}]},` +
		`{"name":"production","state":"waiting for gates","attempt":1,"detail":"gate 2 failing","approvals":[` +
		`{"user":"qa-lead","decision":"approved","comment":"looks good","attempt":1,"at":"2026-01-02T04:00:00Z"}],` +
		`"gates":[{"passed":true,"last":"200 OK"},{"passed":false,"last":"HTTP 503","lastEval":"2026-01-02T04:01:00Z"}],"log":[]}]}`
)

// TestReleaseCommands covers users, artifact feeds, pipelines and releases.
func TestReleaseCommands(t *testing.T) {
	const zipPath = "testdata/pkg.zip"
	pipelineFile := filepath.Join(t.TempDir(), "orders.yaml")
	writeFile(t, pipelineFile, "name: orders-release\nstages: []\n")

	tests := []struct {
		name       string
		args       []string
		stdin      string
		status     int
		answer     string
		want       request // Auth and, for a JSON body, ContentType are filled in
		wantOut    string
		wantCode   int
		wantStderr string
		skipBody   bool // the request body is a zip: compare everything else
	}{
		{
			name:    "user create",
			args:    []string{"user", "create", "qa-lead", "--role", "approver"},
			status:  201,
			answer:  `{"name":"qa-lead","role":"approver","token":"hsu_abc"}`,
			want:    request{Method: "POST", Path: "/api/v1/users", Body: `{"name":"qa-lead","role":"approver"}`},
			wantOut: "created user qa-lead (approver)\ntoken: hsu_abc (shown once; keep it)\n",
		},
		{
			name:    "user create -o json",
			args:    []string{"-o", "json", "user", "create", "--role", "deployer", "ci"},
			status:  201,
			answer:  `{"name":"ci","role":"deployer","token":"hsu_abc"}`,
			want:    request{Method: "POST", Path: "/api/v1/users", Body: `{"name":"ci","role":"deployer"}`},
			wantOut: "{\n  \"name\": \"ci\",\n  \"role\": \"deployer\",\n  \"token\": \"hsu_abc\"\n}\n",
		},
		{
			name:    "user list",
			args:    []string{"user", "list"},
			status:  200,
			answer:  `{"users":[{"name":"qa-lead","role":"approver","createdAt":"2026-01-02T03:04:05Z"}]}`,
			want:    request{Method: "GET", Path: "/api/v1/users"},
			wantOut: "NAME     ROLE      CREATED\nqa-lead  approver  2026-01-02T03:04:05Z\n",
		},
		{
			name:    "user delete",
			args:    []string{"user", "delete", "qa lead"},
			status:  204,
			want:    request{Method: "DELETE", Path: "/api/v1/users/qa%20lead"},
			wantOut: "deleted user qa lead\n",
		},
		{
			name:    "user rotate",
			args:    []string{"user", "rotate", "qa-lead"},
			status:  200,
			answer:  `{"name":"qa-lead","role":"approver","token":"hsu_new"}`,
			want:    request{Method: "POST", Path: "/api/v1/users/qa-lead/token"},
			wantOut: "new token for qa-lead (approver): hsu_new (shown once; keep it)\nthe earlier token and the portal sessions signed in with it no longer work\n",
		},
		{
			name:    "user rotate admin",
			args:    []string{"user", "rotate", "admin"},
			status:  200,
			answer:  `{"name":"admin","role":"admin","token":"hs_new"}`,
			want:    request{Method: "POST", Path: "/api/v1/users/admin/token"},
			wantOut: "new token for admin (admin): hs_new (shown once; keep it; the server keeps it in <data>/admin-token)\nthe earlier token and the portal sessions signed in with it no longer work\n",
		},
		{
			name:    "whoami",
			args:    []string{"whoami"},
			status:  200,
			answer:  `{"name":"admin","role":"admin"}`,
			want:    request{Method: "GET", Path: "/api/v1/whoami"},
			wantOut: "admin (admin)\n",
		},
		{
			name:     "artifact push",
			args:     []string{"artifact", "push", "orders", zipPath, "--version", "1.2.0", "--branch", "main", "--commit", "abc123"},
			status:   201,
			answer:   `{"artifact":` + artifactAnswer + `,"releases":[{"id":"r-7","name":"orders-release-7"},{"id":"r-8","name":"orders-canary-1"}]}`,
			want:     request{Method: "POST", Path: "/api/v1/feeds/orders/artifacts", Query: "branch=main&commit=abc123&version=1.2.0", ContentType: "application/zip"},
			skipBody: true,
			wantOut:  "pushed orders 1.2.0 (sha256 9f86d081884c)\nrelease orders-release-7 created\nrelease orders-canary-1 created\n",
		},
		{
			name:     "artifact push without releases, flags first",
			args:     []string{"artifact", "push", "--version", "1.2.0+b", "my feed", zipPath},
			status:   201,
			answer:   `{"artifact":` + strings.Replace(artifactAnswer, `"1.2.0"`, `"1.2.0+b"`, 1) + `,"releases":[]}`,
			want:     request{Method: "POST", Path: "/api/v1/feeds/my%20feed/artifacts", Query: "version=1.2.0%2Bb", ContentType: "application/zip"},
			skipBody: true,
			wantOut:  "pushed orders 1.2.0+b (sha256 9f86d081884c)\n",
		},
		{
			name:   "artifact list",
			args:   []string{"artifact", "list", "orders"},
			status: 200,
			answer: `{"artifacts":[` + artifactAnswer + `,{"feed":"orders","version":"1.1.0","digest":"abc","createdAt":"2026-01-01T03:04:05Z"}]}`,
			want:   request{Method: "GET", Path: "/api/v1/feeds/orders/artifacts"},
			wantOut: "VERSION  BRANCH  COMMIT  DIGEST        ACTOR  CREATED\n" +
				"1.2.0    main    abc123  9f86d081884c  ci     2026-01-02T03:04:05Z\n" +
				"1.1.0    -       -       abc           -      2026-01-01T03:04:05Z\n",
		},
		{
			name:    "pipeline apply file, new",
			args:    []string{"pipeline", "apply", "-f", pipelineFile},
			status:  201,
			answer:  strings.Replace(pipelineAnswer, `"version":3`, `"version":1`, 1),
			want:    request{Method: "POST", Path: "/api/v1/pipelines", ContentType: "application/yaml", Body: "name: orders-release\nstages: []\n"},
			wantOut: "pipeline orders-release created (version 1)\n",
		},
		{
			name:    "pipeline apply stdin, new version",
			args:    []string{"pipeline", "apply", "-f", "-"},
			stdin:   "name: orders-release\n",
			status:  200,
			answer:  pipelineAnswer,
			want:    request{Method: "POST", Path: "/api/v1/pipelines", ContentType: "application/yaml", Body: "name: orders-release\n"},
			wantOut: "pipeline orders-release updated (version 3)\n",
		},
		{
			name:     "pipeline apply, invalid",
			args:     []string{"pipeline", "apply", "-f", "-"},
			stdin:    "name: x\n",
			status:   400,
			answer:   `{"error":{"kind":"invalid","message":"line 2, column 3: stages[0].name: required\nline 9: stages[1].approval.timeout: not a duration"}}`,
			want:     request{Method: "POST", Path: "/api/v1/pipelines", ContentType: "application/yaml", Body: "name: x\n"},
			wantCode: 1,
			wantStderr: "hotswap: standard input is not a valid pipeline:\n" +
				"line 2, column 3: stages[0].name: required\nline 9: stages[1].approval.timeout: not a duration\n",
		},
		{
			name:    "pipeline list",
			args:    []string{"pipeline", "list"},
			status:  200,
			answer:  `{"pipelines":[` + pipelineAnswer + `]}`,
			want:    request{Method: "GET", Path: "/api/v1/pipelines"},
			wantOut: "NAME            VERSION  UPDATED\norders-release  3        2026-01-03T03:04:05Z\n",
		},
		{
			name:   "pipeline show",
			args:   []string{"pipeline", "show", "orders-release"},
			status: 200,
			answer: `{"pipeline":` + pipelineAnswer + `,"versions":[` +
				`{"version":3,"name":"orders-release","definition":"...","actor":"admin","createdAt":"2026-01-03T03:04:05Z"},` +
				`{"version":1,"name":"orders","definition":"...","actor":"ci","createdAt":"2026-01-02T03:04:05Z"}]}`,
			want: request{Method: "GET", Path: "/api/v1/pipelines/orders-release"},
			wantOut: "pipeline:  orders-release\nversion:   3\nupdated:   2026-01-03T03:04:05Z\n\n" +
				"name: orders-release\nstages: []\n\n" +
				"VERSION  NAME            ACTOR  CREATED\n" +
				"3        orders-release  admin  2026-01-03T03:04:05Z\n" +
				"1        orders          ci     2026-01-02T03:04:05Z\n",
		},
		{
			name:    "pipeline rename",
			args:    []string{"pipeline", "rename", "orders", "orders-release"},
			status:  200,
			answer:  pipelineAnswer,
			want:    request{Method: "POST", Path: "/api/v1/pipelines/orders/rename", Body: `{"name":"orders-release"}`},
			wantOut: "renamed pipeline orders to orders-release (version 3)\n",
		},
		{
			name:    "release create",
			args:    []string{"release", "create", "orders-release", "--version", "1.2.0"},
			status:  201,
			answer:  releaseAnswer,
			want:    request{Method: "POST", Path: "/api/v1/releases", Body: `{"pipeline":"orders-release","version":"1.2.0"}`},
			wantOut: "release orders-release-7 created (orders 1.2.0)\n",
		},
		{
			name:    "release create of the newest version",
			args:    []string{"release", "create", "orders-release"},
			status:  201,
			answer:  releaseAnswer,
			want:    request{Method: "POST", Path: "/api/v1/releases", Body: `{"pipeline":"orders-release"}`},
			wantOut: "release orders-release-7 created (orders 1.2.0)\n",
		},
		{
			name:   "release list",
			args:   []string{"release", "list", "orders-release", "--limit", "5"},
			status: 200,
			answer: `{"releases":[` + releaseAnswer + `]}`,
			want:   request{Method: "GET", Path: "/api/v1/releases", Query: "limit=5&pipeline=orders-release"},
			wantOut: "NAME              STATE   VERSION  BRANCH  REQUESTER  CREATED               STAGES\n" +
				"orders-release-7  active  1.2.0    main    ci         2026-01-02T03:04:05Z  staging:succeeded production:waiting for gates\n",
		},
		{
			name:    "release list, all",
			args:    []string{"release", "list"},
			status:  200,
			answer:  `{"releases":[]}`,
			want:    request{Method: "GET", Path: "/api/v1/releases"},
			wantOut: "NAME  STATE  VERSION  BRANCH  REQUESTER  CREATED  STAGES\n",
		},
		{
			name:    "release list -o json",
			args:    []string{"release", "list", "-o", "json"},
			status:  200,
			answer:  `{"releases":[]}`,
			want:    request{Method: "GET", Path: "/api/v1/releases"},
			wantOut: "{\n  \"releases\": []\n}\n",
		},
		{
			name:   "release show",
			args:   []string{"release", "show", "orders-release-7"},
			status: 200,
			answer: releaseAnswer,
			want:   request{Method: "GET", Path: "/api/v1/releases/orders-release-7"},
			wantOut: "release:    orders-release-7 (r-7)\n" +
				"pipeline:   orders-release (version 3)\n" +
				"artifact:   orders 1.2.0 (branch main, commit abc123)\n" +
				"requester:  ci (continuous)\n" +
				"state:      active\n" +
				"created:    2026-01-02T03:04:05Z\n" +
				"holds:      orders/staging\n" +
				"\nstage staging\n" +
				"  state:      succeeded\n" +
				"  attempt:    0\n" +
				"  detail:     -\n" +
				"  deployment: d-9\n" +
				"  approvals:  -\n" +
				"  gates:      -\n" +
				"  log:\n" +
				"    2026-01-02T03:04:06Z deployed d-9 to orders/staging\n" +
				"    2026-01-02T03:04:09Z swapped\n" +
				"\nstage production\n" +
				"  state:      waiting for gates\n" +
				"  attempt:    1\n" +
				"  detail:     gate 2 failing\n" +
				"  deployment: -\n" +
				"  approvals:\n" +
				"    2026-01-02T04:00:00Z qa-lead approved (attempt 1): looks good\n" +
				"  gates:      1 of 2 passed\n" +
				"    gate 1: passed; last: 200 OK\n" +
				"    gate 2: not passed; last: HTTP 503 (2026-01-02T04:01:00Z)\n" +
				"  log:        -\n",
		},
		{
			name:    "release show -o json",
			args:    []string{"-o", "json", "release", "show", "r-7"},
			status:  200,
			answer:  `{"id":"r-7","stages":[]}`,
			want:    request{Method: "GET", Path: "/api/v1/releases/r-7"},
			wantOut: "{\n  \"id\": \"r-7\",\n  \"stages\": []\n}\n",
		},
		{
			name:    "release approve",
			args:    []string{"release", "approve", "orders-release-7", "--stage", "production", "--comment", "ship it"},
			status:  200,
			answer:  strings.Replace(releaseAnswer, `"detail":"gate 2 failing",`, "", 1),
			want:    request{Method: "POST", Path: "/api/v1/releases/orders-release-7/approve", Body: `{"stage":"production","comment":"ship it"}`},
			wantOut: "orders-release-7 production: waiting for gates\n",
		},
		{
			name:    "release reject, stage detail",
			args:    []string{"release", "reject", "--stage", "production", "orders-release-7"},
			status:  200,
			answer:  releaseAnswer,
			want:    request{Method: "POST", Path: "/api/v1/releases/orders-release-7/reject", Body: `{"stage":"production"}`},
			wantOut: "orders-release-7 production: waiting for gates (gate 2 failing)\n",
		},
		{
			name:    "release redeploy",
			args:    []string{"release", "redeploy", "r-7", "--stage", "staging"},
			status:  200,
			answer:  releaseAnswer,
			want:    request{Method: "POST", Path: "/api/v1/releases/r-7/redeploy", Body: `{"stage":"staging"}`},
			wantOut: "orders-release-7 staging: succeeded\n",
		},
		{
			name:    "release abandon",
			args:    []string{"release", "abandon", "orders-release-7"},
			status:  200,
			answer:  strings.Replace(releaseAnswer, `"state":"active"`, `"state":"abandoned","detail":"abandoned by admin"`, 1),
			want:    request{Method: "POST", Path: "/api/v1/releases/orders-release-7/abandon"},
			wantOut: "orders-release-7: abandoned (abandoned by admin)\n",
		},
		{
			name:       "release approve refused",
			args:       []string{"release", "approve", "orders-release-7", "--stage", "production"},
			status:     403,
			answer:     `{"error":{"kind":"forbidden","message":"qa-lead may not approve stage production"}}`,
			want:       request{Method: "POST", Path: "/api/v1/releases/orders-release-7/approve", Body: `{"stage":"production"}`},
			wantCode:   1,
			wantStderr: "hotswap: release approve refused: qa-lead may not approve stage production\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newAPIServer(t, tc.status, tc.answer)
			vars := map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}
			code, stdout, stderr := runStdin(t, tc.args, vars, tc.stdin)
			if code != tc.wantCode || stderr != tc.wantStderr {
				t.Errorf("Run(%q) = %d, stderr %q; want %d, %q", tc.args, code, stderr, tc.wantCode, tc.wantStderr)
			}
			want := tc.want
			want.Auth = "Bearer " + testToken
			if want.ContentType == "" && want.Body != "" {
				want.ContentType = "application/json"
			}
			got := srv.Requests()
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

// runStdin runs the CLI like run, with stdin as standard input.
func runStdin(t testing.TB, args []string, vars map[string]string, stdin string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, Env{
		Stdout: &out,
		Stderr: &errOut,
		Stdin:  strings.NewReader(stdin),
		Getenv: func(k string) string { return vars[k] },
	})
	return code, out.String(), errOut.String()
}

func TestArtifactPushFolder(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "host.json"), `{"version":"2.0"}`)
	srv := newAPIServer(t, 201, `{"artifact":`+artifactAnswer+`,"releases":[]}`)
	code, _, stderr := run(t, []string{"artifact", "push", "orders", dir, "--version", "1.2.0"},
		map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}, "")
	if code != 0 {
		t.Fatalf("artifact push = %d, stderr %q; want 0", code, stderr)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1", len(reqs))
	}
	zr, err := zip.NewReader(strings.NewReader(reqs[0].Body), int64(len(reqs[0].Body)))
	if err != nil {
		t.Fatalf("body is not a zip: %v", err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != "host.json" {
		t.Errorf("zip holds %v, want host.json", zr.File)
	}
}

func TestPipelineApplyEmpty(t *testing.T) {
	srv := newAPIServer(t, 200, pipelineAnswer)
	vars := map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}
	// Env.Stdin nil reads as empty.
	code, _, stderr := run(t, []string{"pipeline", "apply", "-f", "-"}, vars, "")
	if want := "hotswap: pipeline apply: standard input is empty\n"; code != 1 || stderr != want {
		t.Errorf("Run = %d, stderr %q; want 1, %q", code, stderr, want)
	}
	code, _, stderr = run(t, []string{"pipeline", "apply", "-f", filepath.Join(t.TempDir(), "missing.yaml")}, vars, "")
	if code != 1 || !strings.Contains(stderr, "missing.yaml") {
		t.Errorf("Run with a missing file = %d, stderr %q; want 1 naming the file", code, stderr)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

func TestReleaseUsageErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStderr string // a part of stderr
	}{
		{name: "user create without role", args: []string{"user", "create", "qa-lead"}, wantStderr: "--role is required"},
		{name: "user without subcommand", args: []string{"user"}, wantStderr: "hotswap: user needs a subcommand: create, list, delete, rotate\n"},
		{name: "whoami with argument", args: []string{"whoami", "x"}, wantStderr: "usage: hotswap whoami\n"},
		{name: "artifact push without version", args: []string{"artifact", "push", "orders", "testdata/pkg.zip"}, wantStderr: "--version is required"},
		{name: "artifact push without path", args: []string{"artifact", "push", "orders", "--version", "1"}, wantStderr: "usage: hotswap artifact push FEED PATH"},
		{name: "pipeline apply without file", args: []string{"pipeline", "apply"}, wantStderr: "-f is required"},
		{name: "pipeline apply with argument", args: []string{"pipeline", "apply", "x.yaml"}, wantStderr: "usage: hotswap pipeline apply -f FILE"},
		{name: "pipeline rename without new name", args: []string{"pipeline", "rename", "orders"}, wantStderr: "missing arguments"},
		{name: "release list, two pipelines", args: []string{"release", "list", "a", "b"}, wantStderr: "unexpected argument \"b\""},
		{name: "release list, negative limit", args: []string{"release", "list", "--limit", "-1"}, wantStderr: "--limit must not be negative"},
		{name: "approve without stage", args: []string{"release", "approve", "orders-release-7"}, wantStderr: "--stage is required"},
		{name: "reject without stage", args: []string{"release", "reject", "orders-release-7", "--comment", "no"}, wantStderr: "--stage is required"},
		{name: "redeploy without stage", args: []string{"release", "redeploy", "orders-release-7"}, wantStderr: "--stage is required"},
		{name: "redeploy with comment", args: []string{"release", "redeploy", "r-7", "--stage", "s", "--comment", "x"}, wantStderr: "unknown flag --comment\n"},
		{name: "abandon without release", args: []string{"release", "abandon"}, wantStderr: "usage: hotswap release abandon RELEASE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newAPIServer(t, 200, `{}`)
			vars := map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}
			code, stdout, stderr := run(t, tc.args, vars, "")
			if code != 2 {
				t.Errorf("Run(%q) = %d, want 2", tc.args, code)
			}
			if !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tc.wantStderr)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want none", stdout)
			}
			if n := len(srv.Requests()); n != 0 {
				t.Errorf("server got %d requests, want 0", n)
			}
			// The same usage error where no token or server is configured.
			if code, _, stderr := run(t, tc.args, nil, t.TempDir()); code != 2 || strings.Contains(stderr, "no token") {
				t.Errorf("without a token: Run(%q) = %d, stderr %q; want 2 and a usage error", tc.args, code, stderr)
			}
		})
	}
}
