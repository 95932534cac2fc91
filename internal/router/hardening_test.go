package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/funcapp"
)

const (
	pathsHostKey   = "host-key-0123456789"
	pathsMasterKey = "master-key-0123456789"
)

// pathsFixture serves app "shop" at shop.test with an anonymous catch-all
// files/{*path} (GET), a function-level hello (GET) and an anonymous echo
// (POST), in front of an upstream that does not normalise paths and
// answers every request with the request-target it got. lean counts the
// requests the lean path took.
type pathsFixture struct {
	addr string
	lean atomic.Int64
}

func newPathsFixture(t testing.TB) *pathsFixture {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Got-Uri", r.RequestURI)
		io.WriteString(w, r.RequestURI)
	}))
	t.Cleanup(up.Close)
	fn := func(name, auth, route, method string) *funcapp.Function {
		return &funcapp.Function{Name: name, Trigger: "http", AuthLevel: auth, Route: route, Methods: []string{method}, Forward: true, Runnable: true}
	}
	fns := []*funcapp.Function{
		fn("echo", "anonymous", "echo", "POST"),
		fn("files", "anonymous", "files/{*path}", "GET"),
		fn("hello", "function", "hello", "GET"),
	}
	routes, err := funcapp.NewRouter("api", fns)
	if err != nil {
		t.Fatal(err)
	}
	h := New(Config{Domain: "test"})
	slot := &Slot{
		App: "shop", Name: "production", HostName: "shop.test", BaseURL: "http://shop.test",
		Keys: NewKeys([]hotswap.Key{
			{Scope: hotswap.ScopeMaster, Name: "_master", Value: pathsMasterKey},
			{Scope: hotswap.ScopeHost, Name: "default", Value: pathsHostKey},
		}),
		Deployment: "d1", Package: &funcapp.App{Host: &funcapp.Host{EnableForwarding: true, RoutePrefix: "api"}, Functions: fns},
		Routes: routes, Upstream: &fakeSet{addr: up.Listener.Addr().String()},
	}
	h.Publish(NewTable("test", []*Slot{slot}, h.Transport()))
	f := &pathsFixture{}
	srv := NewServer(h, &http.Server{})
	srv.leanHook = func() { f.lean.Add(1) }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return f
}

// do sends one request as raw bytes, so the request-target reaches the
// server exactly as written. HTTP/1.1 requests start on the lean path;
// HTTP/1.0 requests are handed to net/http at once.
func (f *pathsFixture) do(t testing.TB, proto, method, target, key string) (status int, gotURI string) {
	t.Helper()
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	req := fmt.Sprintf("%s %s %s\r\nHost: shop.test\r\nConnection: close\r\n", method, target, proto)
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
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Got-Uri")
}

var bothPaths = []struct{ name, proto string }{{"lean", "HTTP/1.1"}, {"net/http", "HTTP/1.0"}}

// TestDotSegmentsResolveBeforeKeys: a "..", encoded or not, cannot climb
// from an anonymous catch-all route to a key-protected function; the key
// is checked on, and the handler gets, the path without dot segments.
func TestDotSegmentsResolveBeforeKeys(t *testing.T) {
	f := newPathsFixture(t)
	tests := []struct {
		name, target, key string
		wantStatus        int
		wantURI           string // what the handler got; "" when it got nothing
	}{
		{name: "parent", target: "/api/files/../hello", wantStatus: 401},
		{name: "parent encoded", target: "/api/files/%2e%2e/hello", wantStatus: 401},
		{name: "parent encoded upper", target: "/api/files/%2E%2e/hello", wantStatus: 401},
		{name: "two parents", target: "/api/files/x/../../hello", wantStatus: 401},
		{name: "current then parent", target: "/api/files/./x/../../hello", wantStatus: 401},
		{name: "parent with key", target: "/api/files/x/../../hello?code=" + pathsHostKey + "&q=/../%2e%2e", wantStatus: 200,
			wantURI: "/api/hello?code=" + pathsHostKey + "&q=/../%2e%2e"},
		{name: "header key", target: "/api/files/%2e%2e/hello", key: pathsHostKey, wantStatus: 200, wantURI: "/api/hello"},
		{name: "encoded dot in a name", target: "/api/files/a%2Etxt", wantStatus: 200, wantURI: "/api/files/a.txt"},
		{name: "plain catch-all", target: "/api/files/a/b.txt", wantStatus: 200, wantURI: "/api/files/a/b.txt"},
		{name: "above the root", target: "/api/../../hello", wantStatus: 400},
		{name: "above the root encoded", target: "/api/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd", wantStatus: 400},
		{name: "above the root with key", target: "/../api/hello", key: pathsMasterKey, wantStatus: 400},
		{name: "parent next to backslash", target: `/api/files/..\hello`, wantStatus: 400},
		{name: "parent with parameters", target: "/api/files/..;/hello", wantStatus: 400},
	}
	for _, p := range bothPaths {
		for _, tc := range tests {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				status, uri := f.do(t, p.proto, "GET", tc.target, tc.key)
				if status != tc.wantStatus || uri != tc.wantURI {
					t.Errorf("GET %s (%s): status %d, handler got %q; want %d, %q", tc.target, p.proto, status, uri, tc.wantStatus, tc.wantURI)
				}
			})
		}
	}
	// Clean paths still take the lean path; dot segments never do.
	before := f.lean.Load()
	if status, _ := f.do(t, "HTTP/1.1", "GET", "/api/files/x", ""); status != 200 || f.lean.Load() != before+1 {
		t.Errorf("GET /api/files/x: status %d, lean path taken %d times; want 200, once", status, f.lean.Load()-before)
	}
}

// TestMethodNotListedIs404: a method the function does not list answers
// 404, as on Azure, before any key check and with no Allow header; a 405
// would reveal the route to a caller without a key.
func TestMethodNotListedIs404(t *testing.T) {
	f := newPathsFixture(t)
	tests := []struct{ method, target, key string }{
		{"POST", "/api/hello", ""},
		{"POST", "/api/hello", pathsHostKey},
		{"DELETE", "/api/hello", pathsMasterKey},
		{"GET", "/api/echo", ""},
		{"PUT", "/api/files/a", ""},
		{"POST", "/api/files/../hello", ""},
	}
	for _, p := range bothPaths {
		for _, tc := range tests {
			t.Run(p.name+"/"+tc.method+" "+tc.target, func(t *testing.T) {
				if status, uri := f.do(t, p.proto, tc.method, tc.target, tc.key); status != 404 || uri != "" {
					t.Errorf("%s %s (%s): status %d, handler got %q; want 404 and nothing forwarded", tc.method, tc.target, p.proto, status, uri)
				}
			})
		}
	}
	if status, uri := f.do(t, "HTTP/1.1", "POST", "/api/echo", ""); status != 200 || uri != "/api/echo" {
		t.Errorf("POST /api/echo: status %d, handler got %q; want 200", status, uri)
	}
}
