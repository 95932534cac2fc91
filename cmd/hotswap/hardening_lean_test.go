package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stuckApps deploys "stuck" (envapp, whose /api/warm never answers) and
// "echo" (goforward, whose /api/echo reads its whole body) and returns a
// host key of stuck.
func stuckApps(t *testing.T, s *server) (stuckKey string) {
	t.Helper()
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "stuck"}, nil)
	s.setSettings("stuck", "production", false, "WARM_SLEEP", "1h")
	s.deploy("stuck", "production", zipDir(t, examplePackage(t, "envapp")))
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "echo"}, nil)
	s.deploy("echo", "production", zipDir(t, examplePackage(t, "goforward")))
	return findKey(s.keys("stuck", "production"), "host", "", "default")
}

// TestShutdownEndsStuckRequests: with a request its handler never answers
// and a client sending a chunked body that never ends, the shutdown that
// SIGTERM starts (Main.Close) ends within the shutdown grace.
func TestShutdownEndsStuckRequests(t *testing.T) {
	t.Parallel()
	const grace = 2 * time.Second
	s := startServerWith(t, "", func(m *Main) { m.Config.ShutdownGrace = grace })
	key := stuckApps(t, s)

	stuck, err := net.Dial("tcp", s.fnAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	io.WriteString(stuck, "GET /api/warm HTTP/1.1\r\nHost: stuck.localhost\r\nx-functions-key: "+key+"\r\n\r\n")

	endless, err := net.Dial("tcp", s.fnAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer endless.Close()
	io.WriteString(endless, "POST /api/echo HTTP/1.1\r\nHost: echo.localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := io.WriteString(endless, "6\r\nchunk\n\r\n"); err != nil {
				return
			}
		}
	}()
	// Both requests are with their handlers: the echo streams its answer
	// while the body comes, the other answers nothing.
	endless.SetReadDeadline(time.Now().Add(20 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(endless), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("echo: %v, want its answer streaming", err)
	}
	stuck.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := stuck.Read(make([]byte, 1)); n > 0 || !isTimeout(err) {
		t.Fatalf("before shutdown: read %d, %v; want the request in flight", n, err)
	}

	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- s.main.Close() }()
	select {
	case <-closed:
		t.Logf("Close took %v (grace %v)", time.Since(start), grace)
	case <-time.After(grace + 10*time.Second):
		t.Fatalf("Close still running %v after SIGTERM, with a grace of %v", time.Since(start), grace)
	}
	// The clients' connections are closed too (a reset is fine for the
	// one still sending).
	for _, c := range []net.Conn{stuck, endless} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); isTimeout(err) {
			t.Errorf("client connection still open after shutdown")
		}
	}
}

// TestResponseHeaderTimeout: a handler that does not start its answer in
// --response-header-timeout gets its client a 504, on the lean path and on
// the net/http path (which HTTP/1.0 requests take).
func TestResponseHeaderTimeout(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, "", func(m *Main) { m.Config.ResponseHeaderTimeout = time.Second })
	key := stuckApps(t, s)
	for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} {
		c, err := net.Dial("tcp", s.fnAddr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		io.WriteString(c, "GET /api/warm "+proto+"\r\nHost: stuck.localhost\r\nx-functions-key: "+key+"\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		body, _ := io.ReadAll(resp.Body)
		c.Close()
		if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), "did not answer in time") {
			t.Errorf("%s: %d %q, want 504", proto, resp.StatusCode, body)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("%s: 504 after %v", proto, d)
		}
	}
	// Other functions are served as before.
	resp, _ := s.fn("POST", "echo.localhost", "/api/echo", nil, []byte("hi"))
	if resp.StatusCode != 200 {
		t.Errorf("echo: %d", resp.StatusCode)
	}
}

// TestMalformedChunkedBody: a chunked body with broken framing gets 400
// from the host instead of reaching a real handler as it came.
func TestMalformedChunkedBody(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	stuckApps(t, s)
	for _, body := range []string{
		"5\r\nhello\r\n0\r\nX\n",
		"5\r\nhelloXX0\r\n\r\n",
		"5;" + strings.Repeat("e", 5000) + "\r\nhello\r\n0\r\n\r\n",
	} {
		c, err := net.Dial("tcp", s.fnAddr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "POST /api/echo HTTP/1.1\r\nHost: echo.localhost\r\nTransfer-Encoding: chunked\r\n\r\n"+body)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%.20q: %v", body, err)
		}
		got, _ := io.ReadAll(resp.Body)
		c.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(got), "malformed chunked") {
			t.Errorf("%.20q: %d %q, want 400", body, resp.StatusCode, got)
		}
	}
}

// TestIdleClientsShareHandlerConns: 300 keep-alive clients that made one
// request each and then stay idle hold no connection to the handler
// process; a new client is served, and the handler sees few connections.
func TestIdleClientsShareHandlerConns(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	stuckApps(t, s)
	resp, port := s.fn("GET", "stuck.localhost", "/api/env/FUNCTIONS_CUSTOMHANDLER_PORT", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("handler port: %d %s", resp.StatusCode, port)
	}
	const clients = 300
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range clients {
		c, err := net.Dial("tcp", s.fnAddr)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /api/status/200 HTTP/1.1\r\nHost: stuck.localhost\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("client %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
	}
	if resp, _ := s.fn("GET", "stuck.localhost", "/api/status/200", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("a new client: %d", resp.StatusCode)
	}
	n := establishedTo(t, string(port))
	t.Logf("%d idle clients, %d connections to the handler", clients, n)
	if n > 16 {
		t.Errorf("the handler has %d connections open for %d idle clients, want them shared", n, clients)
	}
}

// establishedTo counts established TCP connections into local port.
func establishedTo(t *testing.T, port string) int {
	t.Helper()
	want, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("port %q", port)
	}
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "01" {
			continue
		}
		_, hexPort, _ := strings.Cut(f[1], ":")
		if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(p) == want {
			n++
		}
	}
	return n
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
