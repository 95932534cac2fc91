package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hotswap/hotswap/internal/cli"
)

// TestCLIConventions runs the CLI against a real server (issue 12, items
// 12 and 13): -o json names a deployment's status and has no zero dates,
// --query selects fields, a refused role names the command and the role it
// needs, a wrong token names its source, and an empty HOTSWAP_TOKEN is no
// token rather than the admin token file beside it.
func TestCLIConventions(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	workDir := t.TempDir()
	hs := func(env map[string]string, args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := cli.Run(context.Background(), append([]string{"--server", s.api}, args...), cli.Env{
			Stdout: &out, Stderr: &errb,
			Getenv:    func(k string) string { return env[k] },
			LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
			WorkDir:   workDir,
		})
		return code, out.String(), errb.String()
	}
	admin := map[string]string{"HOTSWAP_TOKEN": s.token}
	must := func(args ...string) string {
		t.Helper()
		code, out, errOut := hs(admin, args...)
		if code != 0 {
			t.Fatalf("hotswap %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}

	must("app", "create", "orders")
	s.deploy("orders", "production", zipDir(t, examplePackage(t, "goforward")))

	out := must("deployments", "orders", "-o", "json")
	var ans struct {
		Deployments []map[string]any `json:"deployments"`
	}
	if err := json.Unmarshal([]byte(out), &ans); err != nil || len(ans.Deployments) != 1 {
		t.Fatalf("deployments -o json = %v:\n%s", err, out)
	}
	if got := ans.Deployments[0]["status"]; got != "success" {
		t.Errorf("status = %#v, want \"success\"", got)
	}
	if strings.Contains(out, "0001-01-01") {
		t.Errorf("deployments -o json has a zero date:\n%s", out)
	}
	if got := must("deployments", "orders", "--query", "deployments[].status"); got != "success\n" {
		t.Errorf("--query deployments[].status = %q, want \"success\\n\"", got)
	}
	if got := must("app", "list", "--query", "apps[].name"); got != "orders\n" {
		t.Errorf("--query apps[].name = %q, want \"orders\\n\"", got)
	}
	if got := must("app", "show", "orders", "-o", "yaml"); !strings.Contains(got, "name: orders\n") || !strings.Contains(got, "slots:\n") {
		t.Errorf("app show -o yaml:\n%s", got)
	}

	// An approver may read but not delete: the error names the command, the
	// user, its role and the role needed.
	out = must("user", "create", "bob", "--role", "approver")
	m := regexp.MustCompile(`token: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("user create printed no token:\n%s", out)
	}
	bob := map[string]string{"HOTSWAP_TOKEN": m[1]}
	code, _, errOut := hs(bob, "app", "delete", "orders", "--yes")
	if want := "hotswap: app delete refused: bob (role approver) may not do this: it needs the deployer or admin role\n"; code != 1 || errOut != want {
		t.Errorf("app delete as an approver = %d, %q; want 1, %q", code, errOut, want)
	}

	// A wrong token says where it came from.
	code, _, errOut = hs(map[string]string{"HOTSWAP_TOKEN": "not-a-token"}, "app", "list")
	if code != 1 || !strings.Contains(errOut, "refused the token from HOTSWAP_TOKEN") || strings.Contains(errOut, "not-a-token") {
		t.Errorf("wrong HOTSWAP_TOKEN = %d, %q; want 1 and its source, not the token", code, errOut)
	}
	code, _, errOut = hs(nil, "--token", "not-a-token", "app", "list")
	if code != 1 || !strings.Contains(errOut, "refused the token from --token") {
		t.Errorf("wrong --token = %d, %q; want 1 and its source", code, errOut)
	}

	// An empty HOTSWAP_TOKEN is no token, though an admin token file is in
	// the working directory.
	writeTokenFile(t, workDir, s.token)
	if code, out, errOut := hs(nil, "app", "list"); code != 0 || !strings.Contains(out, "orders") {
		t.Fatalf("with the token file only = %d, %q %q; want 0 and the apps", code, out, errOut)
	}
	code, out, errOut = hs(map[string]string{"HOTSWAP_TOKEN": ""}, "app", "list")
	if code != 1 || out != "" || !strings.Contains(errOut, "HOTSWAP_TOKEN is set but empty") {
		t.Errorf("empty HOTSWAP_TOKEN = %d, %q %q; want 1 and an error, not the admin token", code, out, errOut)
	}
}

func writeTokenFile(t testing.TB, dir, token string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "hotswap-data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hotswap-data", "admin-token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}
