package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hotswap/hotswap/internal/cli"
)

// TestCLIWalkthrough runs the README's flow through the CLI against a real
// server: create an app and a slot, deploy a folder to each, get the
// function URL and call it, swap, revert, roll back.
func TestCLIWalkthrough(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	run := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		code := cli.Run(context.Background(), append([]string{"--server", s.api, "--token", s.token}, args...), cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, WorkDir: t.TempDir()})
		if code != 0 {
			t.Fatalf("hotswap %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
		}
		return out.String()
	}
	run("app", "create", "orders")
	run("slot", "create", "orders", "staging")
	if out := run("slot", "list", "orders"); !strings.Contains(out, "staging") || !strings.Contains(out, "production") {
		t.Errorf("slot list:\n%s", out)
	}
	dir := examplePackage(t, "goforward")
	if out := run("deploy", "orders", dir, "--message", "v1"); !strings.Contains(out, "http://orders.localhost:") {
		t.Errorf("deploy output has no slot URL:\n%s", out)
	}
	run("settings", "set", "orders", "APP_VERSION=2.0.0", "--slot", "staging")
	run("deploy", "orders", dir, "--slot", "staging", "--message", "v2")

	url := strings.TrimSpace(run("url", "orders", "hello", "--slot", "staging"))
	if !strings.HasPrefix(url, "http://orders-staging.localhost:") || !strings.Contains(url, "/api/hello?code=") {
		t.Fatalf("url = %q", url)
	}
	path := url[strings.Index(url, "/api/"):]
	resp, body := s.fn("GET", "orders-staging.localhost", path+"&name=Ada", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"version":"2.0.0"`) {
		t.Fatalf("calling the function URL = %d %s", resp.StatusCode, body)
	}
	if resp, _ := s.fn("GET", "orders.localhost", path, nil, nil); resp.StatusCode != 401 {
		t.Errorf("the staging URL's key opened production: %d", resp.StatusCode)
	}

	run("swap", "orders", "--slot", "staging")
	resp, body = s.fn("GET", "orders.localhost", "/api/health", nil, nil)
	if !strings.Contains(string(body), `"version":"2.0.0"`) {
		t.Errorf("production after swap = %d %s, want version 2.0.0", resp.StatusCode, body)
	}
	if out := run("swap", "orders", "--slot", "staging"); !strings.Contains(out, "instant revert") {
		t.Errorf("swap back did not reuse warm processes:\n%s", out)
	}
	var hist struct {
		Deployments []struct{ ID, Message string }
	}
	if err := json.Unmarshal([]byte(run("deployments", "orders", "-o", "json")), &hist); err != nil || len(hist.Deployments) != 2 {
		t.Fatalf("deployments -o json: %v %+v", err, hist)
	}
	v2 := hist.Deployments[0].ID
	run("rollback", "orders", "--slot", "production", "--to", v2)
	if out := run("activity", "orders"); !strings.Contains(out, "rollback") || !strings.Contains(out, "swap") {
		t.Errorf("activity lacks the rollback or the swap:\n%s", out)
	}
	if out := run("keys", "list", "orders", "--slot", "staging"); !strings.Contains(out, "_master") {
		t.Errorf("keys list:\n%s", out)
	}
}
