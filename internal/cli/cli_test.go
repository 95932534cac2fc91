package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testToken = "s3cret-admin-token-0123456789"

// request is what the test server saw of one request.
type request struct {
	Method      string
	Path        string // escaped
	Query       string
	Auth        string
	ContentType string
	Body        string
}

// apiServer plays the control-plane API: it records every request and gives
// each the same canned answer.
type apiServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
}

func newAPIServer(t testing.TB, status int, answer string) *apiServer {
	t.Helper()
	s := &apiServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read request body: %v", err)
		}
		s.mu.Lock()
		s.requests = append(s.requests, request{
			Method:      r.Method,
			Path:        r.URL.EscapedPath(),
			Query:       r.URL.RawQuery,
			Auth:        r.Header.Get("Authorization"),
			ContentType: r.Header.Get("Content-Type"),
			Body:        string(body),
		})
		s.mu.Unlock()
		if answer != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) Requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// run runs the CLI with environment variables vars in workDir.
func run(t testing.TB, args []string, vars map[string]string, workDir string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, Env{
		Stdout:  &out,
		Stderr:  &errOut,
		Getenv:  func(k string) string { return vars[k] },
		WorkDir: workDir,
	})
	return code, out.String(), errOut.String()
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const (
	slotAnswer = `{"app":"orders","name":"staging","hostName":"orders-staging.localhost","url":"http://orders-staging.localhost:8080","deploymentId":"d-1","state":"running","createdAt":"2026-01-02T03:04:05Z"}`
	appAnswer  = `{"name":"orders","createdAt":"2026-01-02T03:04:05Z","slots":[` +
		`{"app":"orders","name":"production","hostName":"orders.localhost","url":"http://orders.localhost:8080","state":"empty","createdAt":"2026-01-02T03:04:05Z"},` +
		slotAnswer + `]}`
	keyAnswer      = `{"scope":"host","name":"default","value":"0123456789abcdefXYZ"}`
	settingsAnswer = `{"settings":[{"name":"A","value":"1","slotSetting":true},{"name":"B","value":"x=y","slotSetting":false}]}`
	deployAnswerJS = `{"deployment":{"id":"d-7","app":"orders","slot":"staging","digest":"abc","author":"admin","message":"first try","status":4,"statusText":"success","createdAt":"2026-01-02T03:04:05Z","startedAt":"2026-01-02T03:04:05Z","endedAt":"2026-01-02T03:04:06Z"},"url":"http://orders-staging.localhost:8080"}`
)

func TestCommands(t *testing.T) {
	zipPath := filepath.Join(t.TempDir(), "app.zip")
	writeFile(t, zipPath, "PK\x05\x06 not really a zip")

	tests := []struct {
		name    string
		args    []string
		status  int
		answer  string
		want    request // Auth and, unless set, ContentType are filled in
		wantOut string
	}{
		{
			name:    "app create",
			args:    []string{"app", "create", "orders"},
			status:  201,
			answer:  appAnswer,
			want:    request{Method: "POST", Path: "/api/v1/apps", Body: `{"name":"orders"}`},
			wantOut: "created app orders\nproduction: http://orders.localhost:8080\nstaging: http://orders-staging.localhost:8080\n",
		},
		{
			name:   "app list",
			args:   []string{"app", "list"},
			status: 200,
			answer: `{"apps":[` + appAnswer + `,{"name":"billing","createdAt":"2026-02-03T04:05:06Z"}]}`,
			want:   request{Method: "GET", Path: "/api/v1/apps"},
			wantOut: "NAME     SLOTS               CREATED\n" +
				"orders   production,staging  2026-01-02T03:04:05Z\n" +
				"billing  -                   2026-02-03T04:05:06Z\n",
		},
		{
			name:   "app show",
			args:   []string{"app", "show", "orders"},
			status: 200,
			answer: appAnswer,
			want:   request{Method: "GET", Path: "/api/v1/apps/orders"},
			wantOut: "app:      orders\ncreated:  2026-01-02T03:04:05Z\n\n" +
				"SLOT        STATE    DEPLOYMENT  AUTO-SWAP  URL\n" +
				"production  empty    -           -          http://orders.localhost:8080\n" +
				"staging     running  d-1         -          http://orders-staging.localhost:8080\n",
		},
		{
			name:    "app show escapes the name",
			args:    []string{"app", "show", "a b/c?"},
			status:  200,
			answer:  appAnswer,
			want:    request{Method: "GET", Path: "/api/v1/apps/a%20b%2Fc%3F"},
			wantOut: "app:      orders\ncreated:  2026-01-02T03:04:05Z\n\n" + "SLOT        STATE    DEPLOYMENT  AUTO-SWAP  URL\n" + "production  empty    -           -          http://orders.localhost:8080\n" + "staging     running  d-1         -          http://orders-staging.localhost:8080\n",
		},
		{
			name:    "app delete",
			args:    []string{"app", "delete", "orders", "--yes"},
			status:  204,
			want:    request{Method: "DELETE", Path: "/api/v1/apps/orders"},
			wantOut: "deleted app orders\n",
		},
		{
			name:    "slot create",
			args:    []string{"slot", "create", "orders", "staging"},
			status:  201,
			answer:  slotAnswer,
			want:    request{Method: "POST", Path: "/api/v1/apps/orders/slots", Body: `{"name":"staging"}`},
			wantOut: "created slot orders/staging\nhttp://orders-staging.localhost:8080\n",
		},
		{
			name:   "slot list",
			args:   []string{"slot", "list", "orders"},
			status: 200,
			answer: `{"slots":[` + slotAnswer + `]}`,
			want:   request{Method: "GET", Path: "/api/v1/apps/orders/slots"},
			wantOut: "SLOT     STATE    DEPLOYMENT  AUTO-SWAP  URL\n" +
				"staging  running  d-1         -          http://orders-staging.localhost:8080\n",
		},
		{
			name:    "slot delete",
			args:    []string{"slot", "delete", "orders", "staging", "-y"},
			status:  204,
			want:    request{Method: "DELETE", Path: "/api/v1/apps/orders/slots/staging"},
			wantOut: "deleted slot orders/staging\n",
		},
		{
			name:    "deploy zip file",
			args:    []string{"deploy", "orders", zipPath, "--slot", "staging", "--message", "first try & more"},
			status:  200,
			answer:  deployAnswerJS,
			want:    request{Method: "POST", Path: "/api/v1/apps/orders/slots/staging/deploy", Query: "message=first+try+%26+more", ContentType: "application/zip", Body: "PK\x05\x06 not really a zip"},
			wantOut: "deployed d-7 to orders/staging\nhttp://orders-staging.localhost:8080\n",
		},
		{
			name:    "deploy defaults to production",
			args:    []string{"deploy", "orders", zipPath},
			status:  200,
			answer:  strings.ReplaceAll(deployAnswerJS, "orders-staging", "orders"),
			want:    request{Method: "POST", Path: "/api/v1/apps/orders/slots/production/deploy", ContentType: "application/zip", Body: "PK\x05\x06 not really a zip"},
			wantOut: "deployed d-7 to orders/production\nhttp://orders.localhost:8080\n",
		},
		{
			name:    "url",
			args:    []string{"url", "orders", "hello", "--slot", "staging"},
			status:  200,
			answer:  `{"name":"hello","trigger":"http","authLevel":"function","route":"hello","runnable":true,"reason":"","disabled":false,"forwarding":true,"invokeUrl":"http://orders-staging.localhost:8080/api/hello?code=abc"}`,
			want:    request{Method: "GET", Path: "/api/v1/apps/orders/slots/staging/functions/hello"},
			wantOut: "http://orders-staging.localhost:8080/api/hello?code=abc\n",
		},
		{
			name:   "keys list",
			args:   []string{"keys", "list", "orders"},
			status: 200,
			answer: `{"keys":[{"scope":"master","name":"_master","value":"mmmm"},{"scope":"host","name":"default","value":"hhhh"},{"scope":"function","function":"hello","name":"default","value":"ffff"}]}`,
			want:   request{Method: "GET", Path: "/api/v1/apps/orders/slots/production/keys"},
			wantOut: "SCOPE     FUNCTION  NAME     VALUE\n" +
				"master    -         _master  mmmm\n" +
				"host      -         default  hhhh\n" +
				"function  hello     default  ffff\n",
		},
		{
			name:    "keys list of a function",
			args:    []string{"keys", "list", "orders", "--slot", "staging", "--function", "hello"},
			status:  200,
			answer:  `{"keys":[]}`,
			want:    request{Method: "GET", Path: "/api/v1/apps/orders/slots/staging/keys", Query: "function=hello"},
			wantOut: "SCOPE  FUNCTION  NAME  VALUE\n",
		},
		{
			name:    "keys set host",
			args:    []string{"keys", "set", "orders", "default", "0123456789abcdefXYZ"},
			status:  200,
			answer:  keyAnswer,
			want:    request{Method: "PUT", Path: "/api/v1/apps/orders/slots/production/keys/host/default", Body: `{"value":"0123456789abcdefXYZ"}`},
			wantOut: "SCOPE  FUNCTION  NAME     VALUE\nhost   -         default  0123456789abcdefXYZ\n",
		},
		{
			name:   "keys set function",
			args:   []string{"keys", "set", "orders", "ci", "0123456789abcdefXYZ", "--function", "hello", "--slot", "staging"},
			status: 200,
			answer: keyAnswer,
			want:   request{Method: "PUT", Path: "/api/v1/apps/orders/slots/staging/keys/functions/hello/ci", Body: `{"value":"0123456789abcdefXYZ"}`},
		},
		{
			name:   "keys set _master",
			args:   []string{"keys", "set", "orders", "_master", "0123456789abcdefXYZ"},
			status: 200,
			answer: keyAnswer,
			want:   request{Method: "PUT", Path: "/api/v1/apps/orders/slots/production/keys/master", Body: `{"value":"0123456789abcdefXYZ"}`},
		},
		{
			name:   "keys set --master",
			args:   []string{"keys", "set", "orders", "0123456789abcdefXYZ", "--master"},
			status: 200,
			answer: keyAnswer,
			want:   request{Method: "PUT", Path: "/api/v1/apps/orders/slots/production/keys/master", Body: `{"value":"0123456789abcdefXYZ"}`},
		},
		{
			name:   "keys set value starting with a dash after --",
			args:   []string{"keys", "set", "orders", "--slot", "staging", "--", "default", "-123456789abcdefXYZ"},
			status: 200,
			answer: keyAnswer,
			want:   request{Method: "PUT", Path: "/api/v1/apps/orders/slots/staging/keys/host/default", Body: `{"value":"-123456789abcdefXYZ"}`},
		},
		{
			name:    "keys renew host",
			args:    []string{"keys", "renew", "orders", "default"},
			status:  200,
			answer:  keyAnswer,
			want:    request{Method: "PUT", Path: "/api/v1/apps/orders/slots/production/keys/host/default", Body: `{}`},
			wantOut: "SCOPE  FUNCTION  NAME     VALUE\nhost   -         default  0123456789abcdefXYZ\n",
		},
		{
			name:   "keys renew function",
			args:   []string{"keys", "renew", "orders", "default", "--function", "hello", "--slot", "staging"},
			status: 200,
			answer: keyAnswer,
			want:   request{Method: "PUT", Path: "/api/v1/apps/orders/slots/staging/keys/functions/hello/default", Body: `{}`},
		},
		{
			name:   "keys renew _master",
			args:   []string{"keys", "renew", "orders", "_master"},
			status: 200,
			answer: keyAnswer,
			want:   request{Method: "PUT", Path: "/api/v1/apps/orders/slots/production/keys/master", Body: `{}`},
		},
		{
			name:   "keys renew --master",
			args:   []string{"keys", "renew", "--master", "orders"},
			status: 200,
			answer: keyAnswer,
			want:   request{Method: "PUT", Path: "/api/v1/apps/orders/slots/production/keys/master", Body: `{}`},
		},
		{
			name:    "keys delete host",
			args:    []string{"keys", "delete", "orders", "ci", "--yes"},
			status:  204,
			want:    request{Method: "DELETE", Path: "/api/v1/apps/orders/slots/production/keys/host/ci"},
			wantOut: "deleted host key ci of orders/production\n",
		},
		{
			name:    "keys delete function",
			args:    []string{"keys", "delete", "orders", "ci", "--function", "hello", "--slot", "staging", "--yes"},
			status:  204,
			want:    request{Method: "DELETE", Path: "/api/v1/apps/orders/slots/staging/keys/functions/hello/ci"},
			wantOut: "deleted function key hello/ci of orders/staging\n",
		},
		{
			name:   "settings list",
			args:   []string{"settings", "list", "orders", "--slot", "staging"},
			status: 200,
			answer: settingsAnswer,
			want:   request{Method: "GET", Path: "/api/v1/apps/orders/slots/staging/settings"},
			wantOut: "NAME  VALUE  SLOT-SETTING\n" +
				"A     1      true\n" +
				"B     x=y    false\n",
		},
		{
			name:   "settings set",
			args:   []string{"settings", "set", "orders", "A=1", "B=x=y", "C="},
			status: 200,
			answer: settingsAnswer,
			want: request{Method: "PATCH", Path: "/api/v1/apps/orders/slots/production/settings",
				Body: `{"set":[{"name":"A","value":"1","slotSetting":false},{"name":"B","value":"x=y","slotSetting":false},{"name":"C","value":"","slotSetting":false}]}`},
			wantOut: "NAME  VALUE  SLOT-SETTING\nA     1      true\nB     x=y    false\n",
		},
		{
			name:   "settings set sticky",
			args:   []string{"settings", "set", "--slot-setting", "orders", "A=1", "--slot", "staging"},
			status: 200,
			answer: settingsAnswer,
			want: request{Method: "PATCH", Path: "/api/v1/apps/orders/slots/staging/settings",
				Body: `{"set":[{"name":"A","value":"1","slotSetting":true}]}`},
		},
		{
			name:   "settings unset",
			args:   []string{"settings", "unset", "orders", "A", "B"},
			status: 200,
			answer: `{"settings":[]}`,
			want: request{Method: "PATCH", Path: "/api/v1/apps/orders/slots/production/settings",
				Body: `{"unset":["A","B"]}`},
			wantOut: "NAME  VALUE  SLOT-SETTING\n",
		},
		{
			name:    "log",
			args:    []string{"log", "orders"},
			status:  200,
			answer:  `{"lines":[{"time":"2026-01-02T03:04:05Z","stream":"stdout","text":"listening\ton :1234"},{"time":"2026-01-02T03:04:06Z","stream":"host","text":"started"}]}`,
			want:    request{Method: "GET", Path: "/api/v1/apps/orders/slots/production/log"},
			wantOut: "2026-01-02T03:04:05Z stdout listening\ton :1234\n2026-01-02T03:04:06Z host started\n",
		},
		{
			name:    "log tail",
			args:    []string{"log", "orders", "--tail", "50", "--slot", "staging"},
			status:  200,
			answer:  `{"lines":[{"time":"2026-01-02T03:04:05Z","stream":"stderr","text":"oops"}]}`,
			wantOut: "2026-01-02T03:04:05Z stderr oops\n",
			want:    request{Method: "GET", Path: "/api/v1/apps/orders/slots/staging/log", Query: "tail=50"},
		},
		{
			name:   "deployments",
			args:   []string{"deployments", "orders"},
			status: 200,
			answer: `{"deployments":[` + strings.TrimSuffix(strings.TrimPrefix(deployAnswerJS, `{"deployment":`), `,"url":"http://orders-staging.localhost:8080"}`) + `]}`,
			want:   request{Method: "GET", Path: "/api/v1/apps/orders/deployments"},
			wantOut: "ID   STATUS   SERVING  SERVED  AUTHOR  CREATED               MESSAGE\n" +
				"d-7  success  -        -       admin   2026-01-02T03:04:05Z  first try\n",
		},
		{
			name:   "deployments of a slot",
			args:   []string{"deployments", "orders", "--slot", "staging"},
			status: 200,
			answer: `{"deployments":[]}`,
			want:   request{Method: "GET", Path: "/api/v1/apps/orders/deployments", Query: "slot=staging"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newAPIServer(t, tc.status, tc.answer)
			vars := map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}
			code, stdout, stderr := run(t, tc.args, vars, t.TempDir())
			if code != 0 || stderr != "" {
				t.Fatalf("Run(%q) = %d, stderr %q; want 0 and no stderr", tc.args, code, stderr)
			}
			want := tc.want
			want.Auth = "Bearer " + testToken
			if want.ContentType == "" && want.Body != "" {
				want.ContentType = "application/json"
			}
			if diff := cmp.Diff(withoutDeployChecks(t, srv.Requests()), []request{want}); diff != "" {
				t.Errorf("requests (-got +want):\n%s", diff)
			}
			if tc.wantOut != "" {
				if diff := cmp.Diff(stdout, tc.wantOut); diff != "" {
					t.Errorf("stdout (-got +want):\n%s", diff)
				}
			} else if stdout == "" {
				t.Errorf("stdout is empty")
			}
		})
	}
}

func TestJSONOutput(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		status  int
		answer  string
		wantOut string
	}{
		{
			name:    "app list",
			args:    []string{"-o", "json", "app", "list"},
			status:  200,
			answer:  `{"apps":[{"name":"billing","createdAt":"2026-02-03T04:05:06Z"}]}`,
			wantOut: "{\n  \"apps\": [\n    {\n      \"name\": \"billing\",\n      \"createdAt\": \"2026-02-03T04:05:06Z\"\n    }\n  ]\n}\n",
		},
		{
			name:    "keys renew, flag after the command",
			args:    []string{"keys", "renew", "orders", "default", "-o", "json"},
			status:  200,
			answer:  keyAnswer,
			wantOut: "{\n  \"scope\": \"host\",\n  \"name\": \"default\",\n  \"value\": \"0123456789abcdefXYZ\"\n}\n",
		},
		{
			name:    "deploy prints the whole answer",
			args:    []string{"deploy", "-o", "json", "orders", "testdata/pkg.zip"},
			status:  200,
			answer:  `{"deployment":{"id":"d-7"},"url":"http://orders.localhost:8080"}`,
			wantOut: "{\n  \"deployment\": {\n    \"id\": \"d-7\"\n  },\n  \"url\": \"http://orders.localhost:8080\"\n}\n",
		},
		{
			name:    "delete answers nothing",
			args:    []string{"app", "delete", "orders", "-o", "json", "--yes"},
			status:  204,
			wantOut: "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newAPIServer(t, tc.status, tc.answer)
			vars := map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}
			code, stdout, stderr := run(t, tc.args, vars, ".")
			if code != 0 || stderr != "" {
				t.Fatalf("Run(%q) = %d, stderr %q; want 0 and no stderr", tc.args, code, stderr)
			}
			if diff := cmp.Diff(stdout, tc.wantOut); diff != "" {
				t.Errorf("stdout (-got +want):\n%s", diff)
			}
			if got := len(withoutDeployChecks(t, srv.Requests())); got != 1 {
				t.Errorf("server got %d requests, want 1", got)
			}
		})
	}
}

func TestDeployFolder(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"host.json":           `{"version":"2.0"}`,
		"hello/function.json": `{"bindings":[]}`,
		"handler.sh":          "#!/bin/sh\necho hi\n",
	}
	for name, content := range files {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(name)), content)
	}
	srv := newAPIServer(t, 200, deployAnswerJS)

	code, stdout, stderr := run(t, []string{"deploy", "orders", dir, "--slot", "staging"},
		map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}, "")
	if code != 0 {
		t.Fatalf("deploy = %d, stderr %q; want 0", code, stderr)
	}
	if want := "deployed d-7 to orders/staging\nhttp://orders-staging.localhost:8080\n"; stdout != want {
		t.Errorf("stdout = %q, want %q", stdout, want)
	}
	reqs := withoutDeployChecks(t, srv.Requests())
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1", len(reqs))
	}
	req := reqs[0]
	if req.Method != "POST" || req.Path != "/api/v1/apps/orders/slots/staging/deploy" || req.ContentType != "application/zip" {
		t.Errorf("request = %s %s (%s), want POST /api/v1/apps/orders/slots/staging/deploy (application/zip)", req.Method, req.Path, req.ContentType)
	}
	zr, err := zip.NewReader(strings.NewReader(req.Body), int64(len(req.Body)))
	if err != nil {
		t.Fatalf("body is not a zip: %v", err)
	}
	got := map[string]string{}
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("open %s: %v", f.Name, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read %s: %v", f.Name, err)
		}
		got[f.Name] = string(data)
	}
	if diff := cmp.Diff(got, files); diff != "" {
		t.Errorf("zip content (-got +want):\n%s", diff)
	}
}

func TestDeployRefusesOtherFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.tar")
	writeFile(t, path, "x")
	srv := newAPIServer(t, 200, deployAnswerJS)
	code, _, stderr := run(t, []string{"deploy", "orders", path},
		map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}, "")
	if code != 1 || !strings.Contains(stderr, "neither a folder nor a .zip file") {
		t.Errorf("deploy of a .tar = %d, stderr %q; want 1 and a message", code, stderr)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

func TestToken(t *testing.T) {
	tests := []struct {
		name     string
		flag     string
		env      string
		file     string // content of hotswap-data/admin-token; "" for no file
		wantAuth string // "" when the command must fail
		wantErr  string // part of the error, if not errNoToken's
	}{
		{name: "flag first", flag: "flag-token", env: "env-token", file: "file-token", wantAuth: "Bearer flag-token"},
		{name: "env before file", env: "env-token", file: "file-token", wantAuth: "Bearer env-token"},
		{name: "file trimmed", file: "  file-token\n", wantAuth: "Bearer file-token"},
		{name: "empty file", file: "\n", wantErr: "is empty: no token"},
		{name: "none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newAPIServer(t, 200, `{"apps":[]}`)
			dir := t.TempDir()
			if tc.file != "" {
				writeFile(t, filepath.Join(dir, "hotswap-data", "admin-token"), tc.file)
			}
			args := []string{"app", "list"}
			if tc.flag != "" {
				args = append(args, "--token", tc.flag)
			}
			vars := map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": tc.env}
			code, _, stderr := run(t, args, vars, dir)
			reqs := srv.Requests()
			if tc.wantAuth == "" {
				want := "hotswap: no token: pass --token, set HOTSWAP_TOKEN, or run in the directory holding hotswap-data\n"
				if code != 1 || tc.wantErr == "" && stderr != want || !strings.Contains(stderr, tc.wantErr) {
					t.Errorf("Run = %d, stderr %q; want 1, %q", code, stderr, want+tc.wantErr)
				}
				if len(reqs) != 0 {
					t.Errorf("server got %d requests, want 0", len(reqs))
				}
				return
			}
			if code != 0 {
				t.Fatalf("Run = %d, stderr %q; want 0", code, stderr)
			}
			if len(reqs) != 1 || reqs[0].Auth != tc.wantAuth {
				t.Errorf("requests = %+v, want one with Authorization %q", reqs, tc.wantAuth)
			}
		})
	}
}

func TestServerSelection(t *testing.T) {
	flagSrv := newAPIServer(t, 200, `{"apps":[]}`)
	envSrv := newAPIServer(t, 200, `{"apps":[]}`)
	tests := []struct {
		name string
		args []string
		env  string
		want *apiServer
	}{
		{name: "flag before the command", args: []string{"--server", flagSrv.URL, "app", "list"}, env: envSrv.URL, want: flagSrv},
		{name: "flag after the command", args: []string{"app", "list", "--server", flagSrv.URL}, env: envSrv.URL, want: flagSrv},
		{name: "flag=value form with trailing slash", args: []string{"app", "list", "--server=" + flagSrv.URL + "/"}, want: flagSrv},
		{name: "env", args: []string{"app", "list"}, env: envSrv.URL, want: envSrv},
		{name: "env without scheme", args: []string{"app", "list"}, env: strings.TrimPrefix(envSrv.URL, "http://"), want: envSrv},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := map[*apiServer]int{flagSrv: len(flagSrv.Requests()), envSrv: len(envSrv.Requests())}
			vars := map[string]string{"HOTSWAP_SERVER": tc.env, "HOTSWAP_TOKEN": testToken}
			code, _, stderr := run(t, tc.args, vars, "")
			if code != 0 {
				t.Fatalf("Run(%q) = %d, stderr %q; want 0", tc.args, code, stderr)
			}
			for _, s := range []*apiServer{flagSrv, envSrv} {
				got := len(s.Requests()) - before[s]
				want := 0
				if s == tc.want {
					want = 1
				}
				if got != want {
					t.Errorf("server %s got %d requests, want %d", s.URL, got, want)
				}
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStderr string // a part of stderr
	}{
		{name: "no command", args: nil, wantStderr: "usage: hotswap [--server URL]"},
		{name: "unknown command", args: []string{"bogus"}, wantStderr: "hotswap: unknown command \"bogus\"\n"},
		{name: "unknown subcommand", args: []string{"app", "rename", "x"}, wantStderr: "hotswap: unknown command \"app rename\"\n"},
		{name: "group without subcommand", args: []string{"keys"}, wantStderr: "hotswap: keys needs a subcommand: list, set, renew, delete\n"},
		{name: "bad global flag", args: []string{"--bogus", "app", "list"}, wantStderr: "hotswap: unknown flag --bogus\n"},
		{name: "missing argument", args: []string{"app", "create"}, wantStderr: "hotswap: missing arguments\nusage: hotswap app create APP\n"},
		{name: "extra argument", args: []string{"app", "list", "orders"}, wantStderr: "hotswap: unexpected argument \"orders\"\nusage: hotswap app list\n"},
		{name: "extra argument after flags", args: []string{"slot", "create", "orders", "staging", "-o", "json", "x"}, wantStderr: "usage: hotswap slot create APP SLOT [--clone-settings-from SLOT]\n"},
		{name: "unknown flag", args: []string{"deploy", "orders", ".", "--slots", "x"}, wantStderr: "hotswap: unknown flag --slots; did you mean --slot?\nusage: hotswap deploy APP PATH [--slot SLOT] [--message TEXT] [--force] [--no-wait]\n"},
		{name: "flag of another command", args: []string{"app", "list", "--slot", "x"}, wantStderr: "usage: hotswap app list\n"},
		{name: "bad output format", args: []string{"-o", "xml", "app", "list"}, wantStderr: "invalid output format \"xml\" (use table, wide, json or yaml)"},
		{name: "bad tail", args: []string{"log", "orders", "--tail", "many"}, wantStderr: "usage: hotswap log APP"},
		{name: "negative tail", args: []string{"log", "orders", "--tail", "-1"}, wantStderr: "--tail must not be negative"},
		{name: "setting without =", args: []string{"settings", "set", "orders", "A"}, wantStderr: "\"A\" is not NAME=VALUE"},
		{name: "setting without name", args: []string{"settings", "set", "orders", "=1"}, wantStderr: "\"=1\" is not NAME=VALUE"},
		{name: "settings unset without name", args: []string{"settings", "unset", "orders"}, wantStderr: "usage: hotswap settings unset APP NAME..."},
		{name: "keys set without value", args: []string{"keys", "set", "orders", "default"}, wantStderr: "usage: hotswap keys set"},
		{name: "master key of a function", args: []string{"keys", "renew", "orders", "--master", "--function", "hello"}, wantStderr: "drop --function"},
		{name: "master and another name", args: []string{"keys", "set", "orders", "ci", "0123456789abcdefXYZ", "--master"}, wantStderr: "--master names the key"},
		{name: "delete master", args: []string{"keys", "delete", "orders", "_master"}, wantStderr: "the master key cannot be deleted"},
		{name: "url without function", args: []string{"url", "orders"}, wantStderr: "usage: hotswap url APP FUNCTION"},
		{name: "swap without slot", args: []string{"swap", "orders"}, wantStderr: "--slot is required"},
		{name: "swap without app", args: []string{"swap", "--slot", "staging"}, wantStderr: "usage: hotswap swap APP --slot SOURCE"},
		{name: "swap complete and cancel", args: []string{"swap", "orders", "--complete", "--cancel"}, wantStderr: "--complete and --cancel exclude each other"},
		{name: "swap complete with slot", args: []string{"swap", "orders", "--complete", "--slot", "staging"}, wantStderr: "--complete acts on the swap in preview"},
		{name: "swap cancel with preview", args: []string{"swap", "orders", "--cancel", "--preview"}, wantStderr: "--cancel acts on the swap in preview"},
		{name: "swap complete with target", args: []string{"swap", "orders", "--target", "qa", "--complete"}, wantStderr: "drop --slot, --target, --preview and --expect"},
		{name: "swap cancel expecting", args: []string{"swap", "orders", "--cancel", "--expect", "d-1"}, wantStderr: "--cancel acts on the swap in preview"},
		{name: "progressive swap expecting", args: []string{"swap", "orders", "--slot", "staging", "--strategy", "canary:10", "--expect", "d-1"}, wantStderr: "--expect does not apply to a progressive swap"},
		{name: "swap expecting nothing", args: []string{"swap", "orders", "--slot", "staging", "--expect", ""}, wantStderr: "--expect is empty: give the deployment staging must serve"},
		{name: "swap complete expecting nothing", args: []string{"swap", "orders", "--complete", "--expect="}, wantStderr: "--complete acts on the swap in preview"},
		{name: "progressive swap expecting nothing", args: []string{"swap", "orders", "--slot", "staging", "--strategy", "canary:10", "--expect", ""}, wantStderr: "--expect does not apply to a progressive swap"},
		{name: "autoswap without slot", args: []string{"autoswap", "orders", "--target", "production"}, wantStderr: "--slot is required"},
		{name: "autoswap without target", args: []string{"autoswap", "orders", "--slot", "staging"}, wantStderr: "give --target SLOT, or --disable"},
		{name: "autoswap target and disable", args: []string{"autoswap", "orders", "--slot", "staging", "--target", "production", "--disable"}, wantStderr: "exclude each other"},
		{name: "rollback without deployment", args: []string{"rollback", "orders", "--slot", "production"}, wantStderr: "--to is required"},
		{name: "rollback without slot", args: []string{"rollback", "orders", "--to", "d-5"}, wantStderr: "--slot is required"},
		{name: "negative limit", args: []string{"activity", "orders", "--limit", "-1"}, wantStderr: "--limit must not be negative"},
		{name: "bad limit", args: []string{"activity", "orders", "--limit", "all"}, wantStderr: "usage: hotswap activity APP [--limit N]"},
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
		})
	}
}

// TestUsageErrorsWithoutToken: a bad combination of flags is a usage error
// even where no token or server is configured.
func TestUsageErrorsWithoutToken(t *testing.T) {
	for _, args := range [][]string{
		{"swap", "orders"},
		{"swap", "orders", "--complete", "--slot", "staging"},
		{"autoswap", "orders", "--slot", "staging"},
		{"rollback", "orders", "--slot", "production"},
		{"activity", "orders", "--limit", "-1"},
	} {
		code, _, stderr := run(t, args, nil, t.TempDir())
		if code != 2 || strings.Contains(stderr, "no token") {
			t.Errorf("Run(%q) = %d, stderr %q; want 2 and a usage error", args, code, stderr)
		}
	}
}

func commandNames() []string {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	return names
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, {"--server", "x", "help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := run(t, args, nil, "")
			if code != 0 || stderr != "" {
				t.Fatalf("Run(%q) = %d, stderr %q; want 0", args, code, stderr)
			}
			lines := strings.Split(stdout, "\n")
			for _, name := range append([]string{"serve"}, commandNames()...) {
				if !slices.ContainsFunc(lines, func(l string) bool { return l == "  "+name || strings.HasPrefix(l, "  "+name+" ") }) {
					t.Errorf("usage lacks command %q:\n%s", name, stdout)
				}
			}
		})
	}
	t.Run("command help", func(t *testing.T) {
		code, stdout, _ := run(t, []string{"deploy", "-h"}, nil, "")
		if code != 0 || !strings.HasPrefix(stdout, "usage: hotswap deploy APP PATH") || !strings.Contains(stdout, "-message") {
			t.Errorf("deploy -h = %d, %q; want 0 and the deploy usage", code, stdout)
		}
	})
	t.Run("version", func(t *testing.T) {
		code, stdout, _ := run(t, []string{"version"}, nil, "")
		if code != 0 || !strings.HasPrefix(stdout, "hotswap ") {
			t.Errorf("version = %d, %q; want 0, hotswap ...", code, stdout)
		}
	})
}

func TestAPIErrors(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name       string
		status     int
		answer     string
		server     string // instead of the test server
		wantStderr string
	}{
		{
			name:       "error body",
			status:     404,
			answer:     `{"error":{"kind":"not_found","message":"app \"orders\" not found"}}`,
			wantStderr: "hotswap: app \"orders\" not found\n",
		},
		{
			name:       "precondition",
			status:     412,
			answer:     `{"error":{"kind":"failed_precondition","message":"the production slot cannot be deleted"}}`,
			wantStderr: "hotswap: the production slot cannot be deleted\n",
		},
		{
			name:       "plain text from a proxy",
			status:     502,
			answer:     "upstream down\n",
			wantStderr: "hotswap: server answered 502 Bad Gateway: upstream down\n",
		},
		{
			name:       "empty body",
			status:     500,
			wantStderr: "hotswap: server answered 500 Internal Server Error\n",
		},
		{
			name:       "invalid JSON answer",
			status:     200,
			answer:     `{"slots":`,
			wantStderr: "hotswap: decode answer of GET /api/v1/apps/orders/slots: ",
		},
		{
			name:       "unreachable",
			server:     closedURL,
			wantStderr: "hotswap: cannot reach " + closedURL + ": ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newAPIServer(t, tc.status, tc.answer)
			server := srv.URL
			if tc.server != "" {
				server = tc.server
			}
			args := []string{"slot", "list", "orders", "--token", testToken, "--server", server}
			code, stdout, stderr := run(t, args, nil, "")
			if code != 1 {
				t.Errorf("Run = %d, want 1", code)
			}
			if !strings.HasPrefix(stderr, tc.wantStderr) {
				t.Errorf("stderr = %q, want it to start with %q", stderr, tc.wantStderr)
			}
			if strings.Contains(stderr+stdout, testToken) {
				t.Errorf("output shows the token: %q %q", stdout, stderr)
			}
		})
	}
}
