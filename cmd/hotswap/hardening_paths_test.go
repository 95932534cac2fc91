package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The Node example plus an anonymous catch-all (files/{*path}) beside its
// function-level hello, a payload-mode function (no http output), and a
// function with a queue output, whose function.json properties the host
// admin API must return as written.
const (
	pingFunctionJSON = `{
  "bindings": [
    {"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "function", "methods": ["post"], "route": "ping"}
  ]
}`
	filesFunctionJSON = `{
  "bindings": [
    {"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "anonymous", "methods": ["get"], "route": "files/{*path}"},
    {"type": "http", "direction": "out", "name": "res"}
  ]
}`
	enqueueFunctionJSON = `{
  "bindings": [
    {"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "function", "methods": ["post"], "route": "orders"},
    {"type": "queue", "direction": "out", "name": "order", "queueName": "orders-%ENV%", "connection": "OrdersStorage", "x-note": {"kept": [1, "two"]}},
    {"type": "http", "direction": "out", "name": "res"}
  ]
}`
)

// startNodePaths runs a server with the extended Node example deployed as
// app "paths" and returns it with the slot's master key.
func startNodePaths(t *testing.T) (*server, string) {
	t.Helper()
	dir := copyPackage(t, "node")
	for name, fj := range map[string]string{"files": filesFunctionJSON, "enqueue": enqueueFunctionJSON, "ping": pingFunctionJSON} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "function.json"), []byte(fj), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "paths"}, nil)
	s.deploy("paths", "production", zipDir(t, dir))
	return s, findKey(s.keys("paths", "production"), "master", "", "_master")
}

// rawFn sends one request to the functions listener as raw bytes, so the
// request-target arrives exactly as written (no client cleans it). An
// HTTP/1.1 request starts on the lean path; an HTTP/1.0 one is served by
// the net/http server from its first byte.
func rawFn(t *testing.T, s *server, proto, method, host, target, key string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", s.fnAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	req := fmt.Sprintf("%s %s %s\r\nHost: %s\r\nConnection: close\r\n", method, target, proto, host)
	if key != "" {
		req += "X-Functions-Key: " + key + "\r\n"
	}
	if method == "POST" {
		req += "Content-Length: 0\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s %s: %v", proto, method, target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s %s: read body: %v", proto, method, target, err)
	}
	return resp.StatusCode, string(body)
}

var bothProtos = []struct{ name, proto string }{{"lean", "HTTP/1.1"}, {"net/http", "HTTP/1.0"}}

// TestDotSegmentsCannotReachKeyedFunction: behind an anonymous catch-all,
// "..", encoded or not, must not carry a request without a key to the
// function-level hello of a handler that normalises paths (Node's URL
// parser resolves all of these to /api/hello). Each either resolves to
// hello before the key check (401) or climbs above the root (400), on the
// lean path and on the net/http path.
func TestDotSegmentsCannotReachKeyedFunction(t *testing.T) {
	t.Parallel()
	s, master := startNodePaths(t)
	const host = "paths.localhost"
	tests := []struct {
		target string
		key    string
		want   int
	}{
		{target: "/api/files/../hello", want: 401},
		{target: "/api/files/%2e%2e/hello", want: 401},
		{target: "/api/files/x/../../hello", want: 401},
		{target: "/api/files/.%2E/hello?name=x", want: 401},
		{target: "/api/files/../../../hello", want: 400},
		{target: "/api/files/../../hello", want: 404}, // /hello: outside the route prefix
		{target: "/api/files/%2e%2e/%2e%2e/%2e%2e/hello", want: 400},
		{target: `/api/files/..\hello`, want: 400},
		{target: "/api/files/x/../../hello", key: master, want: 200},
		{target: "/api/files/a.txt", want: 404}, // the catch-all, answered by the handler
	}
	for _, p := range bothProtos {
		for _, tc := range tests {
			t.Run(p.name+tc.target, func(t *testing.T) {
				status, body := rawFn(t, s, p.proto, "GET", host, tc.target, tc.key)
				if status != tc.want {
					t.Fatalf("GET %s (%s) = %d %q, want %d", tc.target, p.proto, status, body, tc.want)
				}
				if status == 200 && !json.Valid([]byte(body)) {
					t.Errorf("GET %s (%s) with the master key: body %q is not hello's JSON", tc.target, p.proto, body)
				}
			})
		}
	}
}

// TestMethodNotListedAnswers404: as on Azure, a method that function.json
// does not list answers 404 before the key check, never a 405 that tells
// a caller without a key the route exists.
func TestMethodNotListedAnswers404(t *testing.T) {
	t.Parallel()
	s, master := startNodePaths(t)
	const host = "paths.localhost"
	for _, p := range bothProtos {
		for _, tc := range []struct{ method, target, key string }{
			{"POST", "/api/hello", ""},
			{"POST", "/api/hello", master},
			{"DELETE", "/api/files/x", ""},
			{"GET", "/api/ping", ""}, // payload mode
			{"PUT", "/api/ping", master},
			{"GET", "/api/echo", ""},
		} {
			t.Run(p.name+" "+tc.method+tc.target, func(t *testing.T) {
				status, body := rawFn(t, s, p.proto, tc.method, host, tc.target, tc.key)
				if status != http.StatusNotFound {
					t.Errorf("%s %s (%s) = %d %q, want 404", tc.method, tc.target, p.proto, status, body)
				}
			})
		}
	}
}

// TestAdminFunctionsKeepsBindings: GET /admin/functions returns each
// binding as function.json has it, every property included.
func TestAdminFunctionsKeepsBindings(t *testing.T) {
	t.Parallel()
	s, master := startNodePaths(t)
	resp, body := s.fn("GET", "paths.localhost", "/admin/functions", map[string]string{"x-functions-key": master}, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /admin/functions = %d %s", resp.StatusCode, body)
	}
	var fns []struct {
		Name   string `json:"name"`
		Config struct {
			Bindings []map[string]any `json:"bindings"`
		} `json:"config"`
	}
	if err := json.Unmarshal(body, &fns); err != nil {
		t.Fatalf("GET /admin/functions: %v\n%s", err, body)
	}
	var want struct{ Bindings []map[string]any }
	if err := json.Unmarshal([]byte(enqueueFunctionJSON), &want); err != nil {
		t.Fatal(err)
	}
	for _, f := range fns {
		if f.Name == "enqueue" {
			if diff := cmp.Diff(f.Config.Bindings, want.Bindings); diff != "" {
				t.Errorf("enqueue's bindings (-got +function.json):\n%s", diff)
			}
			return
		}
	}
	t.Fatalf("no function enqueue in %s", body)
}
