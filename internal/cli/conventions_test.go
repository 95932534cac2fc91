package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Tests of the conventions people bring from kubectl, gh and az (issue 12,
// items 12 and 13).

// runWith runs the CLI with env filled in by the test (Stdout and Stderr
// are set here).
func runWith(t testing.TB, args []string, env Env) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env.Stdout, env.Stderr = &out, &errOut
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	code = Run(context.Background(), args, env)
	return code, out.String(), errOut.String()
}

// TestCommandHelp: hotswap help COMMAND, COMMAND --help and COMMAND -h print
// the command's usage, flags and examples on stdout and exit 0, for every
// command.
func TestCommandHelp(t *testing.T) {
	for _, c := range commands {
		for _, args := range [][]string{
			append([]string{"help"}, strings.Fields(c.name)...),
			append(strings.Fields(c.name), "--help"),
			append(strings.Fields(c.name), "-h"),
		} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				code, stdout, stderr := run(t, args, nil, t.TempDir())
				if code != 0 || stderr != "" {
					t.Fatalf("exit %d, stderr %q; want 0 and nothing on stderr", code, stderr)
				}
				if !strings.HasPrefix(stdout, c.usage()+"\n") {
					t.Errorf("stdout does not start with %q:\n%s", c.usage(), stdout)
				}
				for _, want := range []string{c.summary, "\nflags:\n", "  --server URL", "-o, --output format", "\nexamples:\n  "} {
					if !strings.Contains(stdout, want) {
						t.Errorf("help lacks %q:\n%s", want, stdout)
					}
				}
				if _, ex, _ := strings.Cut(stdout, "\nexamples:\n"); !strings.Contains(ex, "hotswap "+c.name) && c.name != "help" && c.name != "drain" {
					t.Errorf("the examples do not run hotswap %s:\n%s", c.name, ex)
				}
			})
		}
	}
	t.Run("group", func(t *testing.T) {
		for _, args := range [][]string{{"help", "keys"}, {"keys", "--help"}} {
			code, stdout, stderr := run(t, args, nil, "")
			if code != 0 || stderr != "" || !strings.Contains(stdout, "keys delete APP NAME") || !strings.Contains(stdout, "keys renew") {
				t.Errorf("%q = %d, stderr %q, stdout:\n%s\nwant 0 and the keys subcommands", args, code, stderr, stdout)
			}
		}
	})
	t.Run("unknown", func(t *testing.T) {
		code, stdout, stderr := run(t, []string{"help", "deplyo"}, nil, "")
		if code != 2 || stdout != "" || !strings.Contains(stderr, `did you mean "hotswap help deploy"?`) {
			t.Errorf("help deplyo = %d, stdout %q, stderr %q; want 2 and a suggestion", code, stdout, stderr)
		}
	})
}

// TestVersionFlag: hotswap --version and hotswap version print the version
// main gives, on stdout.
func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		code, stdout, stderr := runWith(t, args, Env{Version: "1.2.3"})
		if code != 0 || stdout != "hotswap 1.2.3\n" || stderr != "" {
			t.Errorf("%q = %d, %q, stderr %q; want 0, \"hotswap 1.2.3\\n\"", args, code, stdout, stderr)
		}
	}
}

// TestDidYouMean: a mistyped command or flag gets the nearest one.
func TestDidYouMean(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"deplyo", "orders", "."}, `did you mean "hotswap deploy"?`},
		{[]string{"sawp", "orders"}, `did you mean "hotswap swap"?`},
		{[]string{"app", "lst"}, `did you mean "hotswap app list"?`},
		{[]string{"ap", "list"}, `did you mean "hotswap app list"?`},
		{[]string{"setings", "list", "orders"}, `did you mean "hotswap settings list"?`},
		{[]string{"deploy", "orders", ".", "--slots", "x"}, "unknown flag --slots; did you mean --slot?"},
		{[]string{"keys", "list", "orders", "--funtion", "hello"}, "unknown flag --funtion; did you mean --function?"},
		{[]string{"--sever", "http://x", "app", "list"}, "unknown flag --sever; did you mean --server?"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			srv := newAPIServer(t, 200, `{}`)
			code, stdout, stderr := run(t, tc.args, map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}, "")
			if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 and %q", code, stdout, stderr, tc.want)
			}
			if n := len(srv.Requests()); n != 0 {
				t.Errorf("server got %d requests, want 0", n)
			}
		})
	}
	// Nothing close: no suggestion.
	_, _, stderr := run(t, []string{"bogus"}, nil, "")
	if strings.Contains(stderr, "did you mean") {
		t.Errorf("bogus got a suggestion: %q", stderr)
	}
}

// TestCompletionBash: the bash script, sourced, registers a completion for
// hotswap that completes command names, subcommands, flags and -o's values.
func TestCompletionBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash is needed for this test: %v", err)
	}
	code, script, stderr := run(t, []string{"completion", "bash"}, nil, "")
	if code != 0 || stderr != "" {
		t.Fatalf("completion bash = %d, stderr %q", code, stderr)
	}
	path := filepath.Join(t.TempDir(), "hotswap.bash")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	complete := func(words ...string) string {
		t.Helper()
		// COMP_WORDS as bash splits the line; the cursor is on the last word.
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+w+"'")
		}
		prog := "source " + path + "\ncomplete -p hotswap\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "\n_hotswap\necho \"${COMPREPLY[*]}\"\n"
		out, err := exec.Command(bash, "--norc", "--noprofile", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
		if len(lines) < 2 || !strings.Contains(lines[0], "-F _hotswap hotswap") {
			t.Fatalf("complete -p hotswap = %q, want the _hotswap function registered", lines[0])
		}
		return lines[len(lines)-1]
	}
	tests := []struct {
		words []string
		want  string
	}{
		{[]string{"hotswap", "de"}, "deploy deployments"},
		{[]string{"hotswap", "ap"}, "app"},
		{[]string{"hotswap", "app", "l"}, "list"},
		{[]string{"hotswap", "--server", "http://x", "keys", "re"}, "renew"},
		{[]string{"hotswap", "deploy", "orders", ".", "--sl"}, "--slot"},
		{[]string{"hotswap", "app", "list", "-o", "j"}, "json"},
		{[]string{"hotswap", "app", "delete", "orders", "--y"}, "--yes"},
		{[]string{"hotswap", "completion", "f"}, "fish"},
	}
	for _, tc := range tests {
		if got := complete(tc.words...); got != tc.want {
			t.Errorf("completing %q = %q, want %q", tc.words, got, tc.want)
		}
	}
	for _, shell := range []string{"zsh", "fish"} {
		code, out, _ := run(t, []string{"completion", shell}, nil, "")
		if code != 0 || !strings.Contains(out, "hotswap") || !strings.Contains(out, "deploy") {
			t.Errorf("completion %s = %d, %d bytes; want 0 and a script", shell, code, len(out))
		}
	}
	if code, _, stderr := run(t, []string{"completion", "tcsh"}, nil, ""); code != 2 || !strings.Contains(stderr, "use bash, zsh or fish") {
		t.Errorf("completion tcsh = %d, %q; want 2 and the shells", code, stderr)
	}
}

// TestShortFlags: -s is --slot, -o is --output, -m is --message.
func TestShortFlags(t *testing.T) {
	tests := []struct {
		args []string
		want request
	}{
		{[]string{"keys", "list", "orders", "-s", "staging"}, request{Method: "GET", Path: "/api/v1/apps/orders/slots/staging/keys"}},
		{[]string{"deployments", "orders", "-s", "staging", "-o", "json"}, request{Method: "GET", Path: "/api/v1/apps/orders/deployments", Query: "slot=staging"}},
		{[]string{"settings", "list", "-s=staging", "orders", "--output", "json"}, request{Method: "GET", Path: "/api/v1/apps/orders/slots/staging/settings"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			srv := newAPIServer(t, 200, `{"keys":[],"deployments":[],"settings":[]}`)
			code, stdout, stderr := run(t, tc.args, map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}, "")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			want := tc.want
			want.Auth = "Bearer " + testToken
			if diff := cmp.Diff(srv.Requests(), []request{want}); diff != "" {
				t.Errorf("requests (-got +want):\n%s", diff)
			}
			if slices.Contains(tc.args, "json") && !strings.HasPrefix(stdout, "{\n") {
				t.Errorf("stdout = %q, want JSON", stdout)
			}
		})
	}
}

// TestOutputFormats: -o yaml and -o wide, and --query selecting fields.
func TestOutputFormats(t *testing.T) {
	deployments := `{"deployments":[{"id":"d-2","app":"orders","slot":"staging","digest":"0123456789abcdef","author":"ci","message":"yes","status":"success","statusText":"success","createdAt":"2026-01-02T03:04:05Z","startedAt":"2026-01-02T03:04:05Z","endedAt":"2026-01-02T03:04:07Z","servingSlots":["staging"],"served":[]},` +
		`{"id":"d-1","app":"orders","slot":"staging","author":"ci","message":"","status":"failed","statusText":"host.json is missing","createdAt":"2026-01-01T03:04:05Z","servingSlots":[],"served":[]}]}`
	tests := []struct {
		name string
		args []string
		want string
	}{
		{
			name: "query a list, plain",
			args: []string{"deployments", "orders", "--query", "deployments[].status"},
			want: "success\nfailed\n",
		},
		{
			name: "query kubectl style",
			args: []string{"deployments", "orders", "--query", "{.deployments[*].id}"},
			want: "d-2\nd-1\n",
		},
		{
			name: "query one element as JSON",
			args: []string{"deployments", "orders", "--query", "deployments[0].servingSlots", "-o", "json"},
			want: "[\n  \"staging\"\n]\n",
		},
		{
			name: "query with yaml",
			args: []string{"deployments", "orders", "--query", "deployments[].id", "-o", "yaml"},
			want: "- d-2\n- d-1\n",
		},
		{
			name: "query an object as yaml",
			args: []string{"-o", "yaml", "deployments", "orders", "--query", "deployments[1]"},
			want: "app: orders\nauthor: ci\ncreatedAt: \"2026-01-01T03:04:05Z\"\nid: d-1\nmessage: \"\"\nserved: []\nservingSlots: []\nslot: staging\nstatus: failed\nstatusText: host.json is missing\n",
		},
		{
			name: "wide",
			args: []string{"deployments", "orders", "-o", "wide"},
			want: "ID   STATUS                SERVING  SERVED  AUTHOR  CREATED               STARTED               ENDED                 DIGEST        MESSAGE\n" +
				"d-2  success               staging  -       ci      2026-01-02T03:04:05Z  2026-01-02T03:04:05Z  2026-01-02T03:04:07Z  0123456789ab  yes\n" +
				"d-1  host.json is missing  -        -       ci      2026-01-01T03:04:05Z  -                     -                     -             -\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newAPIServer(t, 200, deployments)
			code, stdout, stderr := run(t, tc.args, map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}, "")
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if diff := cmp.Diff(stdout, tc.want); diff != "" {
				t.Errorf("stdout (-got +want):\n%s", diff)
			}
		})
	}
	t.Run("yaml keeps the field order and quotes what needs it", func(t *testing.T) {
		srv := newAPIServer(t, 200, deployments)
		code, stdout, stderr := run(t, []string{"deployments", "orders", "-o", "yaml"}, map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}, "")
		want := "deployments:\n  - id: d-2\n    app: orders\n    slot: staging\n    digest: 0123456789abcdef\n    author: ci\n    message: yes\n    status: success\n"
		if code != 0 || !strings.HasPrefix(stdout, want) || !strings.Contains(stdout, "    createdAt: \"2026-01-01T03:04:05Z\"\n") {
			t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant it to start with:\n%s", code, stderr, stdout, want)
		}
	})
	t.Run("query of a missing field", func(t *testing.T) {
		srv := newAPIServer(t, 200, deployments)
		code, _, stderr := run(t, []string{"deployments", "orders", "--query", "deployments[].stat"}, map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}, "")
		if code != 1 || !strings.Contains(stderr, `no field "stat"`) || !strings.Contains(stderr, "status") {
			t.Errorf("exit %d, stderr %q; want 1 and the fields there", code, stderr)
		}
	})
}

// TestConfirmDestructive: app delete, slot delete and keys delete ask on a
// terminal, take --yes (-y), and without a terminal refuse to act without
// --yes.
func TestConfirmDestructive(t *testing.T) {
	cmds := []struct {
		args []string
		path string
	}{
		{[]string{"app", "delete", "orders"}, "/api/v1/apps/orders"},
		{[]string{"slot", "delete", "orders", "staging"}, "/api/v1/apps/orders/slots/staging"},
		{[]string{"keys", "delete", "orders", "ci", "-s", "staging"}, "/api/v1/apps/orders/slots/staging/keys/host/ci"},
	}
	for _, c := range cmds {
		t.Run(strings.Join(c.args[:2], " "), func(t *testing.T) {
			tests := []struct {
				name     string
				extra    []string
				terminal bool
				answer   string
				wantCode int
				wantReq  bool
				wantErr  string
			}{
				{name: "no terminal", wantCode: 2, wantErr: "pass --yes (-y) to confirm; standard input is not a terminal"},
				{name: "no terminal --yes", extra: []string{"--yes"}, wantReq: true},
				{name: "no terminal -y", extra: []string{"-y"}, wantReq: true},
				{name: "terminal yes", terminal: true, answer: "y\n", wantReq: true, wantErr: "Continue? [y/N]"},
				{name: "terminal no", terminal: true, answer: "n\n", wantCode: 1, wantErr: "cancelled: nothing was deleted"},
				{name: "terminal empty", terminal: true, answer: "", wantCode: 1, wantErr: "cancelled"},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					srv := newAPIServer(t, 204, "")
					vars := map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}
					code, _, stderr := runWith(t, append(append([]string{}, c.args...), tc.extra...), Env{
						Stdin:         strings.NewReader(tc.answer),
						StdinTerminal: func() bool { return tc.terminal },
						Getenv:        func(k string) string { return vars[k] },
					})
					if code != tc.wantCode {
						t.Errorf("exit %d, want %d; stderr %q", code, tc.wantCode, stderr)
					}
					if !strings.Contains(stderr, tc.wantErr) {
						t.Errorf("stderr %q, want %q", stderr, tc.wantErr)
					}
					reqs := srv.Requests()
					if tc.wantReq && (len(reqs) != 1 || reqs[0].Method != "DELETE" || reqs[0].Path != c.path) {
						t.Errorf("requests %+v, want DELETE %s", reqs, c.path)
					}
					if !tc.wantReq && len(reqs) != 0 {
						t.Errorf("requests %+v, want none", reqs)
					}
				})
			}
		})
	}
	// Help says so and lists --yes.
	_, stdout, _ := run(t, []string{"help", "app", "delete"}, nil, "")
	if !strings.Contains(stdout, "-y, --yes") {
		t.Errorf("app delete help lacks -y, --yes:\n%s", stdout)
	}
}

// TestTokenSourceInErrors: a refused token's error says where the token
// came from; an empty HOTSWAP_TOKEN is no token, not the admin token file.
func TestTokenSourceInErrors(t *testing.T) {
	refused := `{"error":{"kind":"unauthorized","message":"a valid token is required: Authorization: Bearer <token>"}}`
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "hotswap-data", "admin-token"), "file-token\n")
	tokenPath := filepath.Join(dir, "hotswap-data", "admin-token")
	tests := []struct {
		name     string
		args     []string
		env      map[string]string // set, even to ""
		wantErr  string
		wantReqs int
	}{
		{name: "flag", args: []string{"--token", "wrong"}, env: map[string]string{"HOTSWAP_TOKEN": "env"}, wantErr: "refused the token from --token", wantReqs: 1},
		{name: "env", env: map[string]string{"HOTSWAP_TOKEN": "wrong"}, wantErr: "refused the token from HOTSWAP_TOKEN", wantReqs: 1},
		{name: "file", wantErr: "refused the token from the token file " + tokenPath, wantReqs: 1},
		{name: "empty env", env: map[string]string{"HOTSWAP_TOKEN": ""}, wantErr: "HOTSWAP_TOKEN is set but empty: an empty token is no token (and not the admin token)"},
		{name: "blank env", env: map[string]string{"HOTSWAP_TOKEN": "  "}, wantErr: "HOTSWAP_TOKEN is set but empty"},
		{name: "empty flag", args: []string{"--token="}, wantErr: "--token is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newAPIServer(t, 401, refused)
			env := map[string]string{"HOTSWAP_SERVER": srv.URL}
			for k, v := range tc.env {
				env[k] = v
			}
			code, _, stderr := runWith(t, append(append([]string{}, tc.args...), "app", "list"), Env{
				Getenv:    func(k string) string { return env[k] },
				LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
				WorkDir:   dir,
			})
			if code != 1 || !strings.Contains(stderr, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, tc.wantErr)
			}
			if n := len(srv.Requests()); n != tc.wantReqs {
				t.Errorf("server got %d requests, want %d", n, tc.wantReqs)
			}
			for _, secret := range []string{"wrong", "file-token"} {
				if strings.Contains(stderr, secret) {
					t.Errorf("stderr shows the token %q: %q", secret, stderr)
				}
			}
		})
	}
}

// TestForbiddenNamesCommand: a 403 says which command was refused, beside
// the server's word on the role.
func TestForbiddenNamesCommand(t *testing.T) {
	srv := newAPIServer(t, 403, `{"error":{"kind":"forbidden","message":"bob (role approver) may not do this: it needs the deployer or admin role"}}`)
	code, _, stderr := run(t, []string{"app", "delete", "orders", "--yes"}, map[string]string{"HOTSWAP_SERVER": srv.URL, "HOTSWAP_TOKEN": testToken}, "")
	want := "hotswap: app delete refused: bob (role approver) may not do this: it needs the deployer or admin role\n"
	if code != 1 || stderr != want {
		t.Errorf("exit %d, stderr %q; want 1, %q", code, stderr, want)
	}
}
