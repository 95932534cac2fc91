package cli

import (
	"archive/zip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDeployFolderLeavesOutSecrets: a folder deploy honours .funcignore as
// Core Tools does, and never uploads local.settings.json (at any depth, in
// any case), .git or .vscode.
func TestDeployFolderLeavesOutSecrets(t *testing.T) {
	tests := []struct {
		name       string
		funcignore string // "" for none
		want       []string
	}{
		{
			name: "no .funcignore",
			want: []string{"a.ts", "hello/", "hello/function.json", "host.json", "keep.ts", "notes.md", "sub/", "sub/x.js", "test/", "test/x.js"},
		},
		{
			name:       "gitignore syntax",
			funcignore: "# comment\n*.ts\n!keep.ts\ntest/\n/notes.md\n.funcignore\n",
			want:       []string{"hello/", "hello/function.json", "host.json", "keep.ts", "sub/", "sub/x.js"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range map[string]string{
				"host.json":               `{"version":"2.0"}`,
				"hello/function.json":     `{}`,
				"local.settings.json":     `{"Values":{"SECRET":"hunter2"}}`,
				".git/config":             "[core]",
				"hello/.git":              "gitdir: ../.git/modules/hello",
				"a.ts":                    "x",
				"keep.ts":                 "x",
				"notes.md":                "x",
				"test/x.js":               "x",
				"sub/local.settings.json": "{}",
				"sub/Local.Settings.json": "{}",
				"sub/x.js":                "x",
				".vscode/settings.json":   "{}",
			} {
				writeFile(t, filepath.Join(dir, name), content)
			}
			if tc.funcignore != "" {
				writeFile(t, filepath.Join(dir, ".funcignore"), tc.funcignore)
			}
			srv := newAPIServer(t, 200, deployAnswerJS)
			code, _, stderr := run(t, []string{"deploy", "orders", dir, "--server", srv.URL, "--token", testToken}, nil, "")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			body := withoutDeployChecks(t, srv.Requests())[0].Body
			zr, err := zip.NewReader(strings.NewReader(body), int64(len(body)))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range zr.File {
				if f.Name == ".funcignore" {
					continue // kept or not as the file itself says
				}
				got = append(got, f.Name)
			}
			slices.Sort(got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("zip entries (-want +got):\n%s", diff)
			}
		})
	}
}

// TestURLOfUnrunnableFunction: hotswap url says why a function has no
// working URL instead of printing one that answers 404.
func TestURLOfUnrunnableFunction(t *testing.T) {
	tests := []struct {
		name, answer, wantErr string
	}{
		{
			name:    "not runnable",
			answer:  `{"name":"q","trigger":"queueTrigger","runnable":false,"reason":"trigger type queueTrigger is not supported","invokeUrl":"http://orders.localhost:8080/api/q?code=k"}`,
			wantErr: "function q is not runnable, so its URL would answer 404: trigger type queueTrigger is not supported",
		},
		{
			name:    "disabled",
			answer:  `{"name":"q","trigger":"http","runnable":true,"disabled":true,"invokeUrl":"http://orders.localhost:8080/api/q?code=k"}`,
			wantErr: "function q is disabled (app setting AzureWebJobs.q.Disabled)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newAPIServer(t, 200, tc.answer)
			code, stdout, stderr := run(t, []string{"url", "orders", "q", "--server", srv.URL, "--token", testToken}, nil, "")
			if code != 1 || stdout != "" || !strings.Contains(stderr, tc.wantErr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1, no URL, %q", code, stdout, stderr, tc.wantErr)
			}
		})
	}
}

// TestForceFlag: --force asks the server to go past a release's hold.
func TestForceFlag(t *testing.T) {
	zipPath := filepath.Join(t.TempDir(), "app.zip")
	writeFile(t, zipPath, "PK\x05\x06 not really a zip")
	tests := []struct {
		args      []string
		answer    string
		wantPath  string
		wantQuery string
	}{
		{[]string{"deploy", "orders", zipPath, "--slot", "staging", "--force"}, deployAnswerJS, "/api/v1/apps/orders/slots/staging/deploy", "force=true"},
		{[]string{"swap", "orders", "--slot", "staging", "--force"}, `{"app":"orders","source":"staging","target":"production","phase":"completed"}`, "/api/v1/apps/orders/swap", "force=true"},
		{[]string{"rollback", "orders", "--slot", "staging", "--to", "d-1", "--force"}, deployAnswerJS, "/api/v1/apps/orders/slots/staging/rollback", "force=true"},
		{[]string{"swap", "orders", "--complete", "--force"}, `{"app":"orders","source":"staging","target":"production","phase":"completed"}`, "/api/v1/apps/orders/swap/complete", "force=true"},
		{[]string{"swap", "orders", "--cancel", "--force"}, `{"app":"orders","source":"staging","target":"production","phase":"cancelled"}`, "/api/v1/apps/orders/swap/cancel", "force=true"},
	}
	for _, tc := range tests {
		t.Run(tc.args[0], func(t *testing.T) {
			srv := newAPIServer(t, 200, tc.answer)
			code, _, stderr := run(t, append(tc.args, "--server", srv.URL, "--token", testToken), nil, "")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			req := withoutDeployChecks(t, srv.Requests())[0]
			if req.Path != tc.wantPath || req.Query != tc.wantQuery {
				t.Errorf("request %s?%s, want %s?%s", req.Path, req.Query, tc.wantPath, tc.wantQuery)
			}
		})
	}
}
