package router

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/funcapp"
)

// fakeSet is an Upstream at a fixed address.
type fakeSet struct {
	addr    string
	down    atomic.Bool
	noRetry bool // RetryAfter reports no pending restart time
}

func (f *fakeSet) Addr() (string, bool) { return f.addr, !f.down.Load() }
func (f *fakeSet) RetryAfter() time.Duration {
	if f.noRetry {
		return 0
	}
	return 2 * time.Second
}
func (f *fakeSet) Acquire() bool { return true }
func (f *fakeSet) Release()      {}

// leanFixture runs a lean Server in front of handler, which stands in for a
// handler process, for app "shop" at shop.test.
type leanFixture struct {
	t     testing.TB
	addr  string
	lean  atomic.Int64
	set   *fakeSet
	up    *httptest.Server
	srv   *Server
	close func()
}

func newLeanFixture(t testing.TB, handler http.Handler) *leanFixture {
	t.Helper()
	return newLeanFixtureWith(t, handler, ConnLimits{}, nil)
}

// newLeanFixtureWith is newLeanFixture with limits for the handler
// connections and a change to the Server before it serves.
func newLeanFixtureWith(t testing.TB, handler http.Handler, limits ConnLimits, configure func(*Server)) *leanFixture {
	t.Helper()
	up := httptest.NewServer(handler)
	f := &leanFixture{t: t, up: up, set: &fakeSet{addr: up.Listener.Addr().String()}}
	var fns []*funcapp.Function
	for _, name := range []string{"echo", "stream", "status"} {
		fns = append(fns, &funcapp.Function{Name: name, Trigger: "http", AuthLevel: "anonymous", Route: name + "/{*rest}", Forward: true, Runnable: true})
	}
	fns = append(fns, &funcapp.Function{Name: "secret", Trigger: "http", AuthLevel: "function", Route: "secret", Forward: true, Runnable: true})
	// payload is a function in payload mode: the router posts the handler
	// an invocation built from the request.
	fns = append(fns, &funcapp.Function{Name: "payload", Trigger: "http", AuthLevel: "anonymous", Route: "payload", Runnable: true})
	routes, err := funcapp.NewRouter("api", fns)
	if err != nil {
		t.Fatal(err)
	}
	h := New(Config{Domain: "test", ConnLimits: limits})
	slot := &Slot{
		App: "shop", Name: "production", HostName: "shop.test", BaseURL: "http://shop.test",
		Keys:       NewKeys([]hotswap.Key{{Scope: hotswap.ScopeMaster, Name: "_master", Value: "master-key-0123456789"}, {Scope: hotswap.ScopeHost, Name: "default", Value: "host-key-0123456789"}}),
		Deployment: "d1", Package: &funcapp.App{Host: &funcapp.Host{EnableForwarding: true, RoutePrefix: "api"}, Functions: fns},
		Routes: routes, Upstream: f.set, Log: func(stream, text string) { t.Log(stream, text) },
	}
	h.Publish(NewTable("test", []*Slot{slot}, h.Transport()))
	f.srv = NewServer(h, &http.Server{})
	f.srv.leanHook = func() { f.lean.Add(1) }
	if configure != nil {
		configure(f.srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	go f.srv.Serve(ln)
	f.close = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.srv.Shutdown(ctx)
		up.Close()
	}
	t.Cleanup(f.close)
	return f
}

// raw sends raw request bytes on a new connection and reads one response.
func (f *leanFixture) raw(req string) (*http.Response, []byte) {
	f.t.Helper()
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		f.t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		f.t.Fatal(err)
	}
	br := bufio.NewReader(c)
	method, _, _ := strings.Cut(req, " ")
	resp, err := readFinal(br, &http.Request{Method: method})
	if err != nil {
		f.t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("read body: %v", err)
	}
	return resp, body
}

// readFinal reads responses from br until the final one, past any
// interim answers such as 100 Continue and 103 Early Hints; 101 Switching
// Protocols is final.
func readFinal(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil || resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, err
		}
	}
}

// streamGate holds the stream function between its two chunks, so tests
// decide when the response ends instead of racing a sleep.
type streamGate struct {
	started chan struct{} // one value per request, after the first chunk
	release chan struct{} // closed to let every held request finish
}

func newStreamGate() *streamGate {
	return &streamGate{started: make(chan struct{}, 16), release: make(chan struct{})}
}

func echoHandler() http.Handler { return gatedEchoHandler(nil) }

// gatedEchoHandler is echoHandler whose stream function waits for g.release
// before its second chunk (when g is not nil).
func gatedEchoHandler(g *streamGate) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/echo/", func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		for k, v := range r.Header {
			w.Header()["X-Got-"+k] = v
		}
		w.Header().Set("X-Got-Host", r.Host)
		w.Header().Set("X-Got-Uri", r.RequestURI)
		w.Header().Set("X-Got-Te", strings.Join(r.TransferEncoding, ","))
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/api/stream/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "first\n")
		w.(http.Flusher).Flush()
		if g == nil {
			time.Sleep(300 * time.Millisecond)
		} else {
			g.started <- struct{}{}
			select {
			case <-g.release:
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprint(w, "second\n")
	})
	mux.HandleFunc("/api/status/", func(w http.ResponseWriter, r *http.Request) {
		var code int
		fmt.Sscanf(strings.TrimPrefix(r.URL.Path, "/api/status/"), "%d", &code)
		w.Header().Set("X-Status", fmt.Sprint(code))
		w.WriteHeader(code)
		if code != 204 && code != 304 {
			io.WriteString(w, "body")
		}
	})
	mux.HandleFunc("/api/secret", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secret") })
	return mux
}

func TestLeanForwarding(t *testing.T) {
	f := newLeanFixture(t, echoHandler())
	big := make([]byte, 3<<20)
	rand.Read(big)
	tests := []struct {
		name       string
		req        string
		body       []byte // appended to req
		wantStatus int
		wantBody   []byte
		wantHeader map[string]string
		absent     []string
		wantLean   bool
	}{
		{name: "get", req: "GET /api/echo/x?a=1&b=%20 HTTP/1.1\r\nHost: shop.test\r\nX-Custom: yes\r\nConnection: keep-alive, X-Hop\r\nX-Hop: drop me\r\nKeep-Alive: timeout=5\r\n\r\n",
			wantStatus: 200, wantLean: true,
			wantHeader: map[string]string{"X-Got-Host": "shop.test", "X-Got-Uri": "/api/echo/x?a=1&b=%20", "X-Got-X-Custom": "yes", "X-Got-X-Forwarded-For": "127.0.0.1", "X-Got-X-Forwarded-Host": "shop.test", "X-Got-X-Forwarded-Proto": "http"},
			absent:     []string{"X-Got-X-Hop", "X-Got-Keep-Alive"}},
		{name: "a client's x-forwarded-for is replaced", req: "GET /api/echo/ HTTP/1.1\r\nHost: shop.test\r\nX-Forwarded-For: 10.1.2.3\r\nX-Forwarded-For: 10.4.5.6\r\n\r\n",
			wantStatus: 200, wantLean: true, wantHeader: map[string]string{"X-Got-X-Forwarded-For": "127.0.0.1"}},
		{name: "content-length body 3MiB", req: fmt.Sprintf("POST /api/echo/ HTTP/1.1\r\nHost: shop.test\r\nContent-Length: %d\r\n\r\n", len(big)), body: big,
			wantStatus: 200, wantBody: big, wantLean: true},
		{name: "chunked body", req: "POST /api/echo/ HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
			wantStatus: 200, wantBody: []byte("hello world"), wantLean: true, wantHeader: map[string]string{"X-Got-Te": "chunked"}},
		{name: "head", req: "HEAD /api/status/200 HTTP/1.1\r\nHost: shop.test\r\n\r\n", wantStatus: 200, wantBody: []byte{}, wantLean: true},
		{name: "204", req: "GET /api/status/204 HTTP/1.1\r\nHost: shop.test\r\n\r\n", wantStatus: 204, wantBody: []byte{}, wantLean: true},
		{name: "304", req: "GET /api/status/304 HTTP/1.1\r\nHost: shop.test\r\n\r\n", wantStatus: 304, wantBody: []byte{}, wantLean: true},
		{name: "500 from the handler is passed through", req: "GET /api/status/500 HTTP/1.1\r\nHost: shop.test\r\n\r\n", wantStatus: 500, wantBody: []byte("body"), wantLean: true},
		{name: "key in the header", req: "GET /api/secret HTTP/1.1\r\nHost: shop.test\r\nx-functions-key: host-key-0123456789\r\n\r\n", wantStatus: 200, wantBody: []byte("secret"), wantLean: true},
		{name: "key in code", req: "GET /api/secret?code=host-key-0123456789 HTTP/1.1\r\nHost: shop.test\r\n\r\n", wantStatus: 200, wantBody: []byte("secret"), wantLean: true},
		{name: "no key goes to net/http: 401", req: "GET /api/secret HTTP/1.1\r\nHost: shop.test\r\n\r\n", wantStatus: 401},
		{name: "unknown host: 404", req: "GET /api/echo/ HTTP/1.1\r\nHost: nope.test\r\n\r\n", wantStatus: 404},
		{name: "http/1.0 goes to net/http", req: "GET /api/echo/ HTTP/1.0\r\nHost: shop.test\r\n\r\n", wantStatus: 200},
		{name: "two hosts: 400", req: "GET /api/echo/ HTTP/1.1\r\nHost: shop.test\r\nHost: other.test\r\n\r\n", wantStatus: 400},
		{name: "length and chunked go to net/http, which keeps chunked", req: "POST /api/echo/ HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", wantStatus: 200, wantBody: []byte{}},
		{name: "bad content-length: 400", req: "POST /api/echo/ HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 1x\r\n\r\n", wantStatus: 400},
		{name: "expect continue goes to net/http", req: "POST /api/echo/ HTTP/1.1\r\nHost: shop.test\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", wantStatus: 200, wantBody: []byte("hi")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.lean.Load()
			resp, body := f.raw(tc.req + string(tc.body))
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantBody != nil && !bytes.Equal(body, tc.wantBody) {
				t.Errorf("body: %d bytes %.40q, want %d bytes", len(body), body, len(tc.wantBody))
			}
			for k, v := range tc.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			for _, k := range tc.absent {
				if got := resp.Header.Get(k); got != "" {
					t.Errorf("hop-by-hop header %s reached the handler: %q", k, got)
				}
			}
			if lean := f.lean.Load() > before; lean != tc.wantLean {
				t.Errorf("took the lean path = %v, want %v", lean, tc.wantLean)
			}
		})
	}
}

func TestLeanKeepAliveAndPipelining(t *testing.T) {
	f := newLeanFixture(t, echoHandler())
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// Three pipelined requests, then a request for the admin API, which
	// hands the connection to net/http, then another lean-path-able one.
	var reqs strings.Builder
	for i := range 3 {
		fmt.Fprintf(&reqs, "POST /api/echo/%d HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\n\r\nreq-%d", i, i)
	}
	reqs.WriteString("GET /admin/host/status HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	reqs.WriteString("POST /api/echo/4 HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\n\r\nreq-4")
	io.WriteString(c, reqs.String())
	br := bufio.NewReader(c)
	want := []struct {
		status int
		body   string
	}{{200, "req-0"}, {200, "req-1"}, {200, "req-2"}, {401, ""}, {200, "req-4"}}
	for i, w := range want {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != w.status || w.body != "" && string(body) != w.body {
			t.Errorf("response %d = %d %q, want %d %q", i, resp.StatusCode, body, w.status, w.body)
		}
	}
	if got := f.lean.Load(); got != 3 {
		t.Errorf("lean requests = %d, want 3 (the rest after the hand-off go to net/http)", got)
	}
}

func TestLeanStreamsResponses(t *testing.T) {
	g := newStreamGate()
	defer close(g.release)
	f := newLeanFixture(t, gatedEchoHandler(g))
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /api/stream/ HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The handler holds its second chunk until the gate opens, so the
	// first line arrives only if the host streams what it gets.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first line = %q, %v: the response was not streamed", line, err)
	}
}

func TestLeanHandlerGone(t *testing.T) {
	t.Run("down: 503 with Retry-After", func(t *testing.T) {
		f := newLeanFixture(t, echoHandler())
		f.set.down.Store(true)
		resp, _ := f.raw("GET /api/echo/ HTTP/1.1\r\nHost: shop.test\r\n\r\n")
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("status %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	})
	t.Run("goes down mid-request: 503 still has Retry-After", func(t *testing.T) {
		// The set was up when the request was taken and is down when the
		// exchange fails, with no restart time known yet (a restart attempt
		// is under way): the answer must still tell the client when to retry.
		f := newLeanFixture(t, echoHandler())
		f.set.noRetry = true
		f.set.addr = closedAddr(t)
		f.srv.leanHook = func() { f.set.down.Store(true) }
		resp, body := f.raw("GET /api/echo/ HTTP/1.1\r\nHost: shop.test\r\n\r\n")
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
			t.Errorf("status %d Retry-After %q (%s), want 503 with Retry-After: 1", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	})
	t.Run("handler closes idle keep-alive connections", func(t *testing.T) {
		up := httptest.NewUnstartedServer(echoHandler())
		up.Config.IdleTimeout = 50 * time.Millisecond
		up.Start()
		f := newLeanFixture(t, echoHandler())
		f.set.addr = up.Listener.Addr().String()
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for i, req := range []string{
			"GET /api/echo/1 HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"GET /api/echo/2 HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			"POST /api/echo/3 HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 2\r\n\r\nhi",
		} {
			if i > 0 {
				time.Sleep(1200 * time.Millisecond) // past the handler's idle timeout
			}
			io.WriteString(c, req)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != 200 {
				t.Errorf("request %d = %d, want 200 after the handler closed its idle connection", i, resp.StatusCode)
			}
		}
	})
	t.Run("handler dies mid-response: the client connection closes", func(t *testing.T) {
		f := newLeanFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(200)
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}))
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /api/echo/ HTTP/1.1\r\nHost: shop.test\r\n\r\n")
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("read: %v (want a clean close, not a hang)", err)
		}
		if !strings.Contains(string(got), "partial") {
			t.Errorf("got %q", got)
		}
	})
}

func TestLeanShutdownLetsRequestsFinish(t *testing.T) {
	g := newStreamGate()
	f := newLeanFixture(t, gatedEchoHandler(g))
	done := make(chan string)
	go func() {
		_, body := f.raw("GET /api/stream/ HTTP/1.1\r\nHost: shop.test\r\n\r\n")
		done <- string(body)
	}()
	<-g.started // the request is in flight, half answered
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- f.srv.Shutdown(ctx) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(g.release)
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if got := <-done; got != "first\nsecond\n" {
		t.Errorf("in-flight response = %q, want it whole", got)
	}
	if _, err := net.DialTimeout("tcp", f.addr, time.Second); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

func FuzzParseHead(f *testing.F) {
	f.Add([]byte("GET /api/x?code=1 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close, X\r\nX: 1\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.0\r\n\r\n"))
	f.Add([]byte("GET  / HTTP/1.1\r\nHost:\r\n folded\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var h head
		err := parseHead(b, &h)
		if err != nil {
			return
		}
		if h.host == nil || len(h.target) == 0 || h.target[0] != '/' || h.chunked && h.length >= 0 {
			t.Fatalf("accepted an inconsistent head: %+v", h)
		}
		if !bytes.HasSuffix(h.raw, crlfcrlf) {
			t.Fatalf("head does not end with CRLF CRLF")
		}
	})
}

// rawUpstream is a handler stand-in that allocates nothing per request: it
// reads request heads and answers each with the same response, so a
// benchmark's allocations are those of the lean path alone.
func rawUpstream(tb testing.TB, resp string) string {
	tb.Helper()
	respBytes := []byte(resp)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 16<<10)
				for {
					// Read lines to the blank one (bodiless requests only).
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(respBytes); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkLeanForward measures the lean path over loopback: one keep-alive
// client connection sending a small GET, answered by a raw upstream; the
// client and upstream allocate nothing, so allocs/op is the forwarding
// path's own.
func BenchmarkLeanForward(b *testing.B) {
	const resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n" +
		`{"message":"hello from the handler","ok":true,"n":123456789}`
	f := newLeanFixture(b, echoHandler())
	f.set.addr = rawUpstream(b, resp)
	f.srv.leanHook = nil
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /api/echo/x HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: bench\r\n\r\n")
	// The lean path forwards the response head as is and adds nothing, so
	// the client reads exactly len(resp) bytes.
	buf := make([]byte, len(resp))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if string(buf) != resp {
		b.Fatalf("response %q", buf)
	}
}

// BenchmarkStdForward is the baseline for BenchmarkLeanForward: the same
// request and raw upstream, served by the net/http server and
// httputil.ReverseProxy (the path the lean one replaced, which still
// serves what the lean path hands off). An HTTP/1.0 keep-alive request is
// handed off, so it takes that path. The client reads responses without
// allocating.
func BenchmarkStdForward(b *testing.B) {
	const resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n" +
		`{"message":"hello from the handler","ok":true,"n":123456789}`
	f := newLeanFixture(b, echoHandler())
	f.set.addr = rawUpstream(b, resp)
	f.srv.leanHook = nil
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /api/echo/x HTTP/1.0\r\nHost: shop.test\r\nUser-Agent: bench\r\nConnection: keep-alive\r\n\r\n")
	br := bufio.NewReaderSize(c, 16<<10)
	body := make([]byte, 60)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(line) <= 2 {
				break
			}
		}
		if _, err := io.ReadFull(br, body); err != nil {
			b.Fatal(err)
		}
	}
}

// closedAddr returns a local address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
