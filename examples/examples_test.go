package examples_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/funcapp"
)

// Settings every handler is started with, as the host would set them.
var handlerEnv = map[string]string{
	"WEBSITE_SLOT_NAME": "Production",
	"WEBSITE_SITE_NAME": "demo",
	"WEBSITE_HOSTNAME":  "demo.localhost",
	"APP_VERSION":       "1.2.3",
}

// ---- manifests ----

type hostJSON struct {
	Version       string `json:"version"`
	CustomHandler struct {
		Description struct {
			DefaultExecutablePath string   `json:"defaultExecutablePath"`
			Arguments             []string `json:"arguments"`
		} `json:"description"`
		EnableForwardingHTTPRequest bool `json:"enableForwardingHttpRequest"`
	} `json:"customHandler"`
	Extensions struct {
		HTTP struct {
			RoutePrefix *string `json:"routePrefix"`
		} `json:"http"`
	} `json:"extensions"`
}

type binding struct {
	Type      string   `json:"type"`
	Direction string   `json:"direction"`
	Name      string   `json:"name"`
	AuthLevel string   `json:"authLevel"`
	Methods   []string `json:"methods"`
	Route     string   `json:"route"`
	QueueName string   `json:"queueName"`
	Path      string   `json:"path"`
}

func TestHostJSON(t *testing.T) {
	tests := []struct {
		app        string
		exe        string
		args       []string
		forwarding bool
	}{
		{"goforward", "handler", nil, true},
		{"gopayload", "handler", nil, false},
		{"node", "node", []string{"server.js"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.app, func(t *testing.T) {
			var h hostJSON
			readJSON(t, filepath.Join(tc.app, "host.json"), &h)
			d := h.CustomHandler.Description
			if h.Version != "2.0" {
				t.Errorf("version = %q, want 2.0", h.Version)
			}
			if d.DefaultExecutablePath != tc.exe {
				t.Errorf("defaultExecutablePath = %q, want %q", d.DefaultExecutablePath, tc.exe)
			}
			if !slices.Equal(d.Arguments, tc.args) {
				t.Errorf("arguments = %q, want %q", d.Arguments, tc.args)
			}
			if got := h.CustomHandler.EnableForwardingHTTPRequest; got != tc.forwarding {
				t.Errorf("enableForwardingHttpRequest = %v, want %v", got, tc.forwarding)
			}
			// The handlers hard-code the /api prefix.
			if p := h.Extensions.HTTP.RoutePrefix; p == nil || *p != "api" {
				t.Errorf("routePrefix = %v, want api", p)
			}
		})
	}
}

func TestFunctionJSON(t *testing.T) {
	// out is the http output binding's name; "" means none.
	tests := []struct {
		fn        string // app/function
		authLevel string
		methods   []string
		route     string
		out       string
	}{
		{"goforward/hello", "function", []string{"get", "post"}, "hello", "res"},
		{"goforward/echo", "anonymous", []string{"post", "put"}, "echo", "res"},
		{"goforward/products", "anonymous", []string{"get"}, "products/{category:alpha}/{id:int?}", "res"},
		{"goforward/health", "anonymous", []string{"get"}, "health", "res"},
		{"goforward/admin-only", "admin", []string{"get"}, "admin/info", "res"},
		{"gopayload/hello", "function", []string{"get", "post"}, "hello", "res"},
		{"gopayload/echo", "anonymous", []string{"post"}, "echo", "$return"},
		{"gopayload/items", "anonymous", []string{"get"}, "items/{id:int}", "res"},
		{"gopayload/nooutput", "anonymous", []string{"post"}, "fire", ""},
		{"gopayload/fail", "anonymous", []string{"get"}, "fail", "res"},
		{"gopayload/order", "anonymous", []string{"post"}, "orders", "res"},
		{"gopayload/status", "anonymous", []string{"get"}, "orders/{id}", "res"},
		{"node/hello", "function", []string{"get"}, "hello", "res"},
		{"node/echo", "anonymous", []string{"post"}, "echo", "res"},
	}

	// Functions with other triggers, checked by TestTriggerFunctionJSON.
	others := []string{"gopayload/fulfil", "gopayload/receipt"}

	// Every function.json on disk is covered by the table, and the reverse.
	found, err := filepath.Glob("*/*/function.json")
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, f := range found {
		got = append(got, filepath.ToSlash(filepath.Dir(f)))
	}
	for _, tc := range tests {
		want = append(want, tc.fn)
	}
	want = append(want, others...)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("function folders = %q, want %q", got, want)
	}

	for _, tc := range tests {
		t.Run(tc.fn, func(t *testing.T) {
			var fj struct {
				Bindings []binding `json:"bindings"`
			}
			readJSON(t, filepath.Join(tc.fn, "function.json"), &fj)
			var trigger, out []binding
			for _, b := range fj.Bindings {
				switch {
				case b.Type == "httpTrigger" && b.Direction == "in":
					trigger = append(trigger, b)
				case b.Type == "http" && b.Direction == "out":
					out = append(out, b)
				case b.Type == "queue" && b.Direction == "out" && b.QueueName != "":
					// A queue output beside the http one (order).
				case b.Type == "blob" && b.Direction == "in" && b.Path != "":
					// A blob input read before the invocation (status).
				default:
					t.Errorf("unexpected binding %+v", b)
				}
			}
			if len(trigger) != 1 {
				t.Fatalf("got %d httpTrigger bindings, want 1", len(trigger))
			}
			tr := trigger[0]
			if tr.Name != "req" || tr.AuthLevel != tc.authLevel || tr.Route != tc.route || !slices.Equal(tr.Methods, tc.methods) {
				t.Errorf("trigger = %+v, want name req, authLevel %s, methods %q, route %q",
					tr, tc.authLevel, tc.methods, tc.route)
			}
			switch {
			case tc.out == "" && len(out) != 0:
				t.Errorf("got output bindings %+v, want none", out)
			case tc.out != "" && (len(out) != 1 || out[0].Name != tc.out):
				t.Errorf("got output bindings %+v, want one named %q", out, tc.out)
			}
		})
	}
}

// TestTriggerFunctionJSON checks the queue and blob triggered functions of
// the examples: hotswap runs them as they are.
func TestTriggerFunctionJSON(t *testing.T) {
	tests := []struct {
		fn, trigger string
		outputs     int
	}{
		{"gopayload/fulfil", funcapp.TriggerQueue, 1},
		{"gopayload/receipt", funcapp.TriggerBlob, 0},
	}
	for _, tc := range tests {
		t.Run(tc.fn, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(tc.fn, "function.json"))
			if err != nil {
				t.Fatal(err)
			}
			f, err := funcapp.ParseFunction(filepath.Base(tc.fn), data)
			if err != nil {
				t.Fatal(err)
			}
			if f.Trigger != tc.trigger || !f.Runnable || len(f.Outputs) != tc.outputs {
				t.Errorf("%s: trigger %q, runnable %v (%s), %d outputs; want %q, runnable, %d outputs", tc.fn, f.Trigger, f.Runnable, f.Reason, len(f.Outputs), tc.trigger, tc.outputs)
			}
		})
	}
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Fatalf("%s is not valid JSON", path)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}

// ---- handler processes ----

// handler is a running handler process.
type handler struct {
	base string // http://127.0.0.1:port
	pid  int
}

// buildGo builds the Go example in dir into a temporary directory.
func buildGo(t testing.TB, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not on PATH: %v", err)
	}
	// The build runs in a subprocess, so read the source here: that way
	// go test's result cache notices when it changes.
	if _, err := os.ReadFile(filepath.Join(dir, "main.go")); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), "handler")
	cmd := exec.Command(goBin, "build", "-o", exe, "./"+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./%s: %v\n%s", dir, err, out)
	}
	return exe
}

// startHandler runs name args in dir like the host does (working directory
// the app, port and settings in the environment), waits until GET / answers,
// and stops it with SIGTERM at the end of the test, expecting a clean exit.
func startHandler(t *testing.T, dir, name string, args ...string) *handler {
	t.Helper()
	port := freePort(t)
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"FUNCTIONS_CUSTOMHANDLER_PORT="+port,
		"FUNCTIONS_HTTPWORKER_PORT="+port,
		"FUNCTIONS_APP_ROOT_PATH="+abs,
	)
	for k, v := range handlerEnv {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	t.Cleanup(func() {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("signal handler: %v", err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("handler exit after SIGTERM: %v\noutput:\n%s", err, out)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("handler did not exit within 10s of SIGTERM\noutput:\n%s", out)
		}
	})

	h := &handler{base: "http://127.0.0.1:" + port, pid: cmd.Process.Pid}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(h.base + "/")
		if err == nil {
			resp.Body.Close()
			return h
		}
		select {
		case err := <-exited:
			exited <- err // let Cleanup see it
			t.Fatalf("handler exited before ready: %v\noutput:\n%s", err, out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("handler not ready after 30s: %v\noutput:\n%s", err, out)
		}
	}
}

// freePort returns a port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ---- forwarding mode ----

// forwardCase is one plain HTTP request to a forwarding-mode handler.
type forwardCase struct {
	name        string
	method      string
	path        string
	contentType string
	body        []byte
	chunked     bool // send the body without Content-Length

	wantStatus  int
	wantBody    []byte            // checked unless nil
	wantHeaders map[string]string // "" means the header must be absent
}

func (h *handler) do(t testing.TB, tc forwardCase) (*http.Response, []byte) {
	t.Helper()
	var body io.Reader
	if tc.body != nil {
		body = bytes.NewReader(tc.body)
		if tc.chunked {
			body = io.MultiReader(body) // hides the length
		}
	}
	req, err := http.NewRequest(tc.method, h.base+tc.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if tc.contentType != "" {
		req.Header.Set("Content-Type", tc.contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", tc.method, tc.path, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", tc.method, tc.path, err)
	}
	return resp, got
}

func runForwardCases(t *testing.T, h *handler, tests []forwardCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.do(t, tc)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d (body %q)", resp.StatusCode, tc.wantStatus, truncate(body))
			}
			if tc.wantBody != nil && !bytes.Equal(body, tc.wantBody) {
				t.Errorf("body = %q (%d bytes), want %q (%d bytes)",
					truncate(body), len(body), truncate(tc.wantBody), len(tc.wantBody))
			}
			for k, want := range tc.wantHeaders {
				vals, ok := resp.Header[http.CanonicalHeaderKey(k)]
				switch {
				case want == "" && ok:
					t.Errorf("header %s = %q, want absent", k, vals)
				case want != "" && (len(vals) != 1 || vals[0] != want):
					t.Errorf("header %s = %q, want %q", k, vals, want)
				}
			}
		})
	}
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestGoForward(t *testing.T) {
	exe := buildGo(t, "goforward")
	h := startHandler(t, "goforward", exe)
	pid := strconv.Itoa(h.pid)
	big := randomBytes(1 << 20)
	const jsonCT = "application/json"

	runForwardCases(t, h, []forwardCase{
		{name: "ready", method: "GET", path: "/", wantStatus: 200, wantBody: []byte("ok")},
		{name: "hello default", method: "GET", path: "/api/hello", wantStatus: 200,
			wantBody:    []byte(`{"message":"Hello, world","site":"demo","slot":"Production","version":"1.2.3"}`),
			wantHeaders: map[string]string{"Content-Type": jsonCT, "X-Handler-Pid": pid}},
		{name: "hello name", method: "GET", path: "/api/hello?name=Ada", wantStatus: 200,
			wantBody:    []byte(`{"message":"Hello, Ada","site":"demo","slot":"Production","version":"1.2.3"}`),
			wantHeaders: map[string]string{"X-Handler-Pid": pid}},
		{name: "hello post", method: "POST", path: "/api/hello?name=Bob", body: []byte("ignored"), wantStatus: 200,
			wantBody: []byte(`{"message":"Hello, Bob","site":"demo","slot":"Production","version":"1.2.3"}`)},
		{name: "hello wrong method", method: "DELETE", path: "/api/hello", wantStatus: 405},
		{name: "echo post", method: "POST", path: "/api/echo?x=1&y=a%20b", contentType: "application/x-custom; v=1",
			body: []byte("hello, echo\n"), wantStatus: 200, wantBody: []byte("hello, echo\n"),
			wantHeaders: map[string]string{
				"Content-Type":   "application/x-custom; v=1",
				"Content-Length": "12",
				"X-Echo-Method":  "POST",
				"X-Echo-Query":   "x=1&y=a%20b",
				"X-Echo-Path":    "/api/echo",
			}},
		{name: "echo put", method: "PUT", path: "/api/echo", contentType: "text/plain",
			body: []byte("put body"), wantStatus: 200, wantBody: []byte("put body"),
			wantHeaders: map[string]string{"X-Echo-Method": "PUT", "X-Echo-Path": "/api/echo"}},
		{name: "echo empty body no content type", method: "POST", path: "/api/echo",
			body: []byte{}, wantStatus: 200, wantBody: []byte{},
			wantHeaders: map[string]string{"Content-Type": ""}},
		{name: "echo 1MiB", method: "POST", path: "/api/echo", contentType: "application/octet-stream",
			body: big, wantStatus: 200, wantBody: big,
			wantHeaders: map[string]string{"Content-Type": "application/octet-stream", "Content-Length": "1048576"}},
		{name: "echo 1MiB chunked", method: "POST", path: "/api/echo", contentType: "application/octet-stream",
			body: big, chunked: true, wantStatus: 200, wantBody: big},
		{name: "echo wrong method", method: "GET", path: "/api/echo", wantStatus: 405},
		{name: "products category", method: "GET", path: "/api/products/shoes", wantStatus: 200,
			wantBody: []byte(`{"category":"shoes","id":null}`), wantHeaders: map[string]string{"Content-Type": jsonCT}},
		{name: "products category and id", method: "GET", path: "/api/products/Shoes/42", wantStatus: 200,
			wantBody: []byte(`{"category":"Shoes","id":42}`)},
		{name: "products category not alpha", method: "GET", path: "/api/products/sh0es", wantStatus: 404},
		{name: "products id not int", method: "GET", path: "/api/products/shoes/x1", wantStatus: 404},
		{name: "health", method: "GET", path: "/api/health", wantStatus: 200,
			wantBody: []byte(`{"status":"healthy","version":"1.2.3"}`), wantHeaders: map[string]string{"Content-Type": jsonCT}},
		{name: "admin info", method: "GET", path: "/api/admin/info", wantStatus: 200, wantBody: []byte(`{"admin":true}`)},
		{name: "unknown path", method: "GET", path: "/api/nope", wantStatus: 404},
		{name: "no prefix", method: "GET", path: "/hello", wantStatus: 404},
	})
}

func TestNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skipf("node not on PATH, skipping the Node.js example: %v", err)
	}
	// Read the script so go test's cache notices edits to it.
	if _, err := os.ReadFile(filepath.Join("node", "server.js")); err != nil {
		t.Fatal(err)
	}
	h := startHandler(t, "node", node, "server.js")
	big := randomBytes(1 << 20)

	runForwardCases(t, h, []forwardCase{
		{name: "ready", method: "GET", path: "/", wantStatus: 200, wantBody: []byte("ok")},
		{name: "hello default", method: "GET", path: "/api/hello", wantStatus: 200,
			wantBody:    []byte(`{"message":"Hello from Node, world","slot":"Production"}`),
			wantHeaders: map[string]string{"Content-Type": "application/json"}},
		{name: "hello name", method: "GET", path: "/api/hello?name=Ada%20L", wantStatus: 200,
			wantBody: []byte(`{"message":"Hello from Node, Ada L","slot":"Production"}`)},
		{name: "hello wrong method", method: "POST", path: "/api/hello", body: []byte("x"), wantStatus: 405},
		{name: "echo text", method: "POST", path: "/api/echo", contentType: "text/plain; charset=utf-8",
			body: []byte("héllo\x00wörld\n"), wantStatus: 200, wantBody: []byte("héllo\x00wörld\n"),
			wantHeaders: map[string]string{"Content-Type": "text/plain; charset=utf-8"}},
		{name: "echo empty body no content type", method: "POST", path: "/api/echo",
			body: []byte{}, wantStatus: 200, wantBody: []byte{},
			wantHeaders: map[string]string{"Content-Type": ""}},
		{name: "echo 1MiB", method: "POST", path: "/api/echo", contentType: "application/octet-stream",
			body: big, wantStatus: 200, wantBody: big,
			wantHeaders: map[string]string{"Content-Type": "application/octet-stream", "Content-Length": "1048576"}},
		{name: "echo 1MiB chunked", method: "POST", path: "/api/echo", contentType: "application/octet-stream",
			body: big, chunked: true, wantStatus: 200, wantBody: big},
		{name: "unknown path", method: "GET", path: "/api/nope", wantStatus: 404},
	})
}

// ---- payload mode ----

func TestGoPayload(t *testing.T) {
	exe := buildGo(t, "gopayload")
	h := startHandler(t, "gopayload", exe)

	// invocation builds the payload the host sends for an HTTP trigger "req".
	invocation := func(method, url, query, headers, params, body string) string {
		return fmt.Sprintf(`{"Data":{"req":{"Url":%q,"Method":%q,"Query":%s,"Headers":%s,"Params":%s,"Body":%s}},`+
			`"Metadata":{"InvocationId":"00000000-0000-0000-0000-000000000001"}}`,
			url, method, query, headers, params, body)
	}
	const base = "http://demo.localhost/api/"
	helloOut := func(name string) string {
		return `{"Outputs":{"res":{"statusCode":200,"body":"{\"message\":\"Hello, ` + name +
			`\",\"slot\":\"Production\",\"version\":\"1.2.3\"}","headers":{"Content-Type":"application/json"}}},` +
			`"Logs":["hello called for ` + name + `"],"ReturnValue":null}`
	}

	tests := []struct {
		name       string
		method     string // to the handler; POST unless set
		path       string
		payload    string
		wantStatus int
		want       string // whole answer, checked unless empty
	}{
		{name: "ready", method: "GET", path: "/", wantStatus: 200, want: "ok"},
		{name: "hello query", path: "/hello",
			payload:    invocation("GET", base+"hello?name=Ada", `{"name":"Ada"}`, `{"Accept":["*/*"]}`, `{}`, `null`),
			wantStatus: 200, want: helloOut("Ada")},
		{name: "hello query as JSON string", path: "/hello",
			payload:    invocation("GET", base+"hello?name=Cy", `"{\"name\":\"Cy\"}"`, `{}`, `{}`, `""`),
			wantStatus: 200, want: helloOut("Cy")},
		{name: "hello body", path: "/hello",
			payload:    invocation("POST", base+"hello", `{}`, `{"Content-Type":["application/json"]}`, `{}`, `"{\"name\":\"Bob\"}"`),
			wantStatus: 200, want: helloOut("Bob")},
		{name: "hello default", path: "/hello",
			payload:    invocation("GET", base+"hello", `{}`, `{}`, `{}`, `""`),
			wantStatus: 200, want: helloOut("world")},
		{name: "echo", path: "/echo",
			payload:    invocation("POST", base+"echo", `{}`, `{}`, `{}`, `"line one\nline two"`),
			wantStatus: 200,
			want: `{"Outputs":{},"Logs":["echo 17 bytes"],"ReturnValue":` +
				`{"statusCode":200,"body":"line one\nline two","headers":{"Content-Type":"text/plain"}}}`},
		{name: "items", path: "/items",
			payload:    invocation("GET", base+"items/42", `{}`, `{}`, `{"id":"42"}`, `null`),
			wantStatus: 200,
			want: `{"Outputs":{"res":{"statusCode":200,"body":"{\"id\":42}",` +
				`"headers":{"Content-Type":"application/json"}}},"Logs":[],"ReturnValue":null}`},
		{name: "nooutput", path: "/nooutput",
			payload:    invocation("POST", base+"fire", `{}`, `{}`, `{}`, `"x"`),
			wantStatus: 200, want: `{"Outputs":{},"Logs":["fired"],"ReturnValue":null}`},
		{name: "order", path: "/order",
			payload:    invocation("POST", base+"orders", `{}`, `{}`, `{}`, `"{\"id\":\"o1\",\"item\":\"tea\",\"quantity\":2}"`),
			wantStatus: 200,
			want: `{"Outputs":{"order":{"id":"o1","item":"tea","quantity":2},"res":{"statusCode":202,"body":"{\"id\":\"o1\",\"item\":\"tea\",\"quantity\":2}",` +
				`"headers":{"Content-Type":"application/json"}}},"Logs":["order o1: 2 x tea"],"ReturnValue":null}`},
		{name: "bad order", path: "/order",
			payload:    invocation("POST", base+"orders", `{}`, `{}`, `{}`, `"{\"item\":\"tea\"}"`),
			wantStatus: 200,
			want: `{"Outputs":{"res":{"statusCode":400,"body":"an order is {\"item\":\"\u003cname\u003e\",\"quantity\":\u003c1 or more\u003e}",` +
				`"headers":{"Content-Type":"text/plain"}}},"Logs":[],"ReturnValue":null}`},
		{name: "fulfil", path: "/fulfil",
			payload: `{"Data":{"order":"{\"id\":\"o1\",\"item\":\"tea\",\"quantity\":2}"},` +
				`"Metadata":{"DequeueCount":1,"Id":"m1","PopReceipt":"r"}}`,
			wantStatus: 200,
			want: `{"Outputs":{"receipt":{"id":"o1","item":"tea","quantity":2,"status":"fulfilled"}},` +
				`"Logs":["fulfilled order o1 (try 1)"],"ReturnValue":null}`},
		{name: "fulfil without an id", path: "/fulfil",
			payload: `{"Data":{"order":"{\"item\":\"tea\"}"},"Metadata":{"DequeueCount":1}}`, wantStatus: 400},
		{name: "receipt", path: "/receipt",
			payload:    `{"Data":{"receipt":"{\"id\":\"o1\"}"},"Metadata":{"name":"o1.json","BlobTrigger":"receipts/o1.json"}}`,
			wantStatus: 200, want: `{"Outputs":{},"Logs":["receipt o1.json: {\"id\":\"o1\"}"],"ReturnValue":null}`},
		{name: "fail", path: "/fail",
			payload:    invocation("GET", base+"fail", `{}`, `{}`, `{}`, `null`),
			wantStatus: 500},
		{name: "bad payload", path: "/hello", payload: `{"Data":`, wantStatus: 400},
		{name: "unknown function", path: "/nope", payload: `{}`, wantStatus: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "POST"
			}
			status, ct, got := h.invoke(t, method, tc.path, []byte(tc.payload))
			if status != tc.wantStatus {
				t.Errorf("status = %d, want %d (body %q)", status, tc.wantStatus, truncate(got))
			}
			if tc.want != "" && string(got) != tc.want {
				t.Errorf("answer:\n got %s\nwant %s", got, tc.want)
			}
			if status == 200 && tc.path != "/" && ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
		})
	}

	// The echo body must survive any string, and a large one, unchanged.
	t.Run("echo body byte for byte", func(t *testing.T) {
		for _, body := range []string{
			"",
			"<tag attr=\"v\"> & 'quotes' \\ \t\r\n é ü 日本 \U0001F600 \u2028",
			strings.Repeat("0123456789abcdef", 1<<16), // 1 MiB of text
		} {
			enc, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			status, _, got := h.invoke(t, "POST", "/echo",
				[]byte(invocation("POST", base+"echo", `{}`, `{}`, `{}`, string(enc))))
			if status != 200 {
				t.Fatalf("status = %d, want 200 (body %q)", status, truncate(got))
			}
			var ans struct {
				Outputs     map[string]json.RawMessage
				ReturnValue struct {
					StatusCode int               `json:"statusCode"`
					Body       string            `json:"body"`
					Headers    map[string]string `json:"headers"`
				}
			}
			if err := json.Unmarshal(got, &ans); err != nil {
				t.Fatalf("decode answer %q: %v", truncate(got), err)
			}
			if ans.ReturnValue.Body != body {
				t.Errorf("ReturnValue.body = %q (%d bytes), want %q (%d bytes)",
					truncate([]byte(ans.ReturnValue.Body)), len(ans.ReturnValue.Body), truncate([]byte(body)), len(body))
			}
			if ans.ReturnValue.StatusCode != 200 || ans.ReturnValue.Headers["Content-Type"] != "text/plain" || len(ans.Outputs) != 0 {
				t.Errorf("answer = %+v, want status 200, Content-Type text/plain, no Outputs", ans)
			}
		}
	})
}

func (h *handler) invoke(t testing.TB, method, path string, payload []byte) (status int, contentType string, body []byte) {
	t.Helper()
	var r io.Reader
	if method != "GET" {
		r = bytes.NewReader(payload)
	}
	req, err := http.NewRequest(method, h.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Azure-Functions-InvocationId", "00000000-0000-0000-0000-000000000001")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}
