package router

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// connCounter is a handler stand-in that counts the connections the host
// opens to it and the requests it is serving.
type connCounter struct {
	up       *httptest.Server
	opened   atomic.Int64
	open     atomic.Int64
	maxOpen  atomic.Int64
	inFlight atomic.Int64
	maxIn    atomic.Int64
}

func newConnCounter(t testing.TB, h http.Handler) *connCounter {
	t.Helper()
	cc := &connCounter{}
	cc.up = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cc.inFlight.Add(1)
		defer cc.inFlight.Add(-1)
		for m := cc.maxIn.Load(); n > m && !cc.maxIn.CompareAndSwap(m, n); m = cc.maxIn.Load() {
		}
		h.ServeHTTP(w, r)
	}))
	cc.up.Config.ConnState = func(c net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			cc.opened.Add(1)
			n := cc.open.Add(1)
			for m := cc.maxOpen.Load(); n > m && !cc.maxOpen.CompareAndSwap(m, n); m = cc.maxOpen.Load() {
			}
		case http.StateClosed, http.StateHijacked:
			cc.open.Add(-1)
		}
	}
	cc.up.Start()
	t.Cleanup(cc.up.Close)
	return cc
}

func (cc *connCounter) addr() string { return cc.up.Listener.Addr().String() }

// stuckHandler is a handler stand-in that reads each request and never
// answers; it reads its connection until the host closes it. reached gets
// a value per request head, closed one per connection the host closed.
func stuckHandler(t testing.TB) (addr string, reached, closed chan struct{}) {
	t.Helper()
	reached, closed = make(chan struct{}, 64), make(chan struct{}, 64)
	addr = rawHandler(t, func(br *bufio.Reader, c net.Conn) {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				closed <- struct{}{}
				return
			}
			if line == "\r\n" {
				break
			}
		}
		reached <- struct{}{}
		io.Copy(io.Discard, br)
		closed <- struct{}{}
	})
	return addr, reached, closed
}

// receive waits for a value from ch, failing the test after d.
func receive(t testing.TB, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("after %v: %s", d, what)
	}
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readAnswer reads one response from c, within d.
func readAnswer(t testing.TB, c net.Conn, d time.Duration) (*http.Response, string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestLeanMalformedChunkedRequest(t *testing.T) {
	up, _, closed := stuckHandler(t)
	f := newLeanFixture(t, echoHandler())
	f.set.addr = up
	const head = "POST /api/echo/ HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n"
	tests := []struct{ name, body string }{
		{"short line ends nothing", "5\r\nhello\r\n0\r\nX\n"},
		{"bare LF ends the trailers", "5\r\nhello\r\n0\r\n\n"},
		{"no CRLF after the data", "5\r\nhelloXY3\r\nabc\r\n0\r\n\r\n"},
		{"chunk size line too long", "5;" + strings.Repeat("e", 5000) + "\r\nhello\r\n0\r\n\r\n"},
		{"bad chunk size", "5x\r\nhello\r\n0\r\n\r\n"},
		{"bare LF after the size", "5\nhello\r\n0\r\n\r\n"},
		{"trailer without a colon", "5\r\nhello\r\n0\r\nNoColon\r\n\r\n"},
		{"trailer name not a token", "5\r\nhello\r\n0\r\nBad Name: x\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.lean.Load()
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// The client leaves its connection open after the body and the
			// handler never answers: only the host can end the request.
			io.WriteString(c, head+tc.body)
			resp, body := readAnswer(t, c, 10*time.Second)
			if resp.StatusCode != 400 || !strings.Contains(body, "malformed chunked") {
				t.Errorf("status %d %q, want 400 malformed chunked", resp.StatusCode, body)
			}
			if f.lean.Load() == before {
				t.Error("the lean path did not take the request")
			}
			receive(t, closed, 10*time.Second, "the handler connection is still open")
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if n, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("client connection after 400: read %d, %v, want EOF", n, err)
			}
		})
	}
}

func TestLeanChunkedReencoded(t *testing.T) {
	// The handler gets canonical framing: sizes in hex, no extensions,
	// trailers kept.
	got := make(chan string, 1)
	raw := rawHandler(t, func(br *bufio.Reader, c net.Conn) {
		var b strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		for !strings.HasSuffix(b.String(), "\r\n0\r\nX-Sum: 1\r\n\r\n") {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			b.WriteString(line)
		}
		got <- b.String()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	f := newLeanFixture(t, echoHandler())
	f.set.addr = raw
	resp, body := f.raw("POST /api/echo/ HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"0005;a=b\r\nhello\r\n00C \r\n hello world\r\n0;last\r\nX-Sum: 1\r\n\r\n")
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	if want := "5\r\nhello\r\nc\r\n hello world\r\n0\r\nX-Sum: 1\r\n\r\n"; <-got != want {
		t.Errorf("handler got a body framed differently; want %q", want)
	}
}

// rawHandler serves each connection with serve, after which it closes.
func rawHandler(t testing.TB, serve func(br *bufio.Reader, c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(bufio.NewReader(c), c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestLeanMalformedChunkedResponse(t *testing.T) {
	// A handler that frames its response badly does not get it relayed
	// as is: the client connection is cut after what was valid.
	raw := rawHandler(t, func(br *bufio.Reader, c net.Conn) {
		for {
			line, err := br.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX\n")
		time.Sleep(time.Minute) // the host must not wait for more
	})
	f := newLeanFixture(t, echoHandler())
	f.set.addr = raw
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /api/echo/ HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (want the connection closed)", err)
	}
	if strings.Contains(string(got), "X\n") || strings.HasSuffix(string(got), "0\r\n\r\n") {
		t.Errorf("malformed framing reached the client as a complete body: %q", got)
	}
}

func TestLeanBadHeaderName(t *testing.T) {
	// Names outside RFC 9110's tchar set go to net/http, which answers 400;
	// the handler never sees them.
	var seen atomic.Int64
	raw := rawHandler(t, func(br *bufio.Reader, c net.Conn) {
		seen.Add(1)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	})
	f := newLeanFixture(t, echoHandler())
	f.set.addr = raw
	for _, name := range []string{"Bad,Name", "Bad;Name", "Bad<Name>", "Bad=Name", "Bad@Name", "Bad\\Name", "Bad?Name"} {
		before := f.lean.Load()
		resp, _ := f.raw("GET /api/echo/ HTTP/1.1\r\nHost: shop.test\r\n" + name + ": x\r\n\r\n")
		if resp.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400", name, resp.StatusCode)
		}
		if f.lean.Load() != before {
			t.Errorf("%s: the lean path took the request", name)
		}
	}
	if n := seen.Load(); n != 0 {
		t.Errorf("the handler got %d requests with bad header names", n)
	}
}

func TestLeanResponseHeaderTimeout(t *testing.T) {
	up, reached, closed := stuckHandler(t)
	f := newLeanFixtureWith(t, echoHandler(), ConnLimits{ResponseHeaderTimeout: 300 * time.Millisecond}, nil)
	f.set.addr = up
	for _, req := range []string{
		"GET /api/echo/ HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		"POST /api/echo/ HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 2\r\n\r\nhi",
		"POST /api/echo/ HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	} {
		start := time.Now()
		resp, body := f.raw(req)
		if resp.StatusCode != 504 {
			t.Errorf("status %d %q, want 504", resp.StatusCode, body)
		}
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("504 after %v", d)
		}
		receive(t, reached, time.Second, "the request did not reach the handler")
		receive(t, closed, 10*time.Second, "the handler connection is still open after the 504")
	}
}

func TestLeanClientGoneClosesHandlerConn(t *testing.T) {
	up, reached, closed := stuckHandler(t)
	f := newLeanFixture(t, echoHandler())
	f.set.addr = up
	for _, req := range []string{
		"GET /api/echo/ HTTP/1.1\r\nHost: shop.test\r\n\r\n",
		"POST /api/echo/ HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 2\r\n\r\nhi",
		"POST /api/echo/ HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	} {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, req)
		receive(t, reached, 10*time.Second, "the request did not reach the handler")
		c.Close()
		receive(t, closed, 10*time.Second, fmt.Sprintf("%q: the handler connection stays open after the client went away", req))
	}
}

func TestLeanSilentConnectionGetsHeaderTimeout(t *testing.T) {
	f := newLeanFixtureWith(t, echoHandler(), ConnLimits{}, func(s *Server) {
		s.ReadHeaderTimeout = 200 * time.Millisecond
		s.IdleTimeout = time.Minute
	})
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read: %v, want EOF: a connection that sends nothing must be closed", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed after %v, want about the header timeout", d)
	}
	// A kept-alive connection gets the idle timeout instead.
	c2, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, "GET /api/echo/ HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	readAnswer(t, c2, 10*time.Second)
	c2.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil || err == io.EOF {
		t.Errorf("kept-alive connection: read %v, want a timeout (still open)", err)
	}
}

func TestLeanSlowBodyGets408(t *testing.T) {
	f := newLeanFixtureWith(t, echoHandler(), ConnLimits{}, func(s *Server) {
		s.BodyReadTimeout = 300 * time.Millisecond
	})
	for _, req := range []string{
		"POST /api/echo/ HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 100000\r\n\r\nsome",
		"POST /api/echo/ HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nsome\r\n",
	} {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, req)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatalf("read: %v (want the connection closed after the body timeout)", err)
		}
		// The echo handler may have started its answer; either way the
		// connection must close soon, and a 408 when nothing was sent.
		if !strings.HasPrefix(string(got), "HTTP/1.1 200") && !strings.HasPrefix(string(got), "HTTP/1.1 408") {
			t.Errorf("got %.80q, want a 408 or a cut 200", got)
		}
	}
}

func TestStdSlowBodyTimesOut(t *testing.T) {
	// What the lean path hands to net/http (here an HTTP/1.0 request) has
	// the same body read timeout.
	f := newLeanFixtureWith(t, echoHandler(), ConnLimits{}, func(s *Server) {
		s.BodyReadTimeout = 300 * time.Millisecond
	})
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /api/echo/ HTTP/1.0\r\nHost: shop.test\r\nContent-Length: 100000\r\n\r\nsome")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("read: %v (want the request ended after the body timeout)", err)
	}
	if f.lean.Load() != 0 {
		t.Error("the lean path took an HTTP/1.0 request")
	}
}

func TestLeanIdleClientsDoNotPinHandlerConns(t *testing.T) {
	cc := newConnCounter(t, echoHandler())
	f := newLeanFixture(t, echoHandler())
	f.set.addr = cc.addr()
	const clients = 300
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range clients {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /api/echo/%d HTTP/1.1\r\nHost: shop.test\r\n\r\n", i)
		if resp, _ := readAnswer(t, c, 10*time.Second); resp.StatusCode != 200 {
			t.Fatalf("client %d: status %d", i, resp.StatusCode)
		}
	}
	// 300 idle keep-alive clients; a new one is still served.
	resp, _ := f.raw("GET /api/echo/new HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("fresh client: status %d", resp.StatusCode)
	}
	if n := cc.opened.Load(); n > 4 {
		t.Errorf("the handler saw %d connections for %d sequential requests from idle clients, want them shared", n, clients+1)
	}
}

func TestLeanHandlerConnsBounded(t *testing.T) {
	cc := newConnCounter(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		io.WriteString(w, "ok")
	}))
	f := newLeanFixtureWith(t, echoHandler(), ConnLimits{MaxConnsPerSet: 3, MaxIdleConnsPerSet: 2}, nil)
	f.set.addr = cc.addr()
	var wg sync.WaitGroup
	var bad atomic.Int64
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				bad.Add(1)
				return
			}
			defer c.Close()
			for j := range 3 {
				fmt.Fprintf(c, "GET /api/echo/%d-%d HTTP/1.1\r\nHost: shop.test\r\n\r\n", i, j)
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				br := bufio.NewReader(c)
				resp, err := http.ReadResponse(br, nil)
				if err != nil || resp.StatusCode != 200 {
					bad.Add(1)
					return
				}
				io.Copy(io.Discard, resp.Body)
				if br.Buffered() > 0 {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("%d clients did not get all their 200s", n)
	}
	if n := cc.maxIn.Load(); n > 3 {
		t.Errorf("the handler served %d requests at once, want at most 3 (one per connection)", n)
	}
}

func TestLeanShutdownEndsStuckRequests(t *testing.T) {
	// A handler that never answers, and a client that sends a chunked
	// body that never ends.
	up, reached, closed := stuckHandler(t)
	f := newLeanFixture(t, echoHandler())
	f.set.addr = up
	c1, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	io.WriteString(c1, "GET /api/echo/stuck HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	c2, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, "POST /api/echo/endless HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := io.WriteString(c2, "5\r\nmore.\r\n"); err != nil {
				return
			}
		}
	}()
	receive(t, reached, 10*time.Second, "the first request did not reach the handler")
	receive(t, reached, 10*time.Second, "the second request did not reach the handler")
	const grace = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- f.srv.Shutdown(ctx) }()
	select {
	case <-done:
		if d := time.Since(start); d < grace/2 {
			t.Errorf("Shutdown returned after %v, before the grace, with requests in flight", d)
		}
	case <-time.After(grace + 5*time.Second):
		t.Fatal("Shutdown did not end within the grace")
	}
	receive(t, closed, 5*time.Second, "a handler connection is still open after Shutdown")
	receive(t, closed, 5*time.Second, "a handler connection is still open after Shutdown")
}

func TestLeanBodyFinishingAfterResponseKeepsConnection(t *testing.T) {
	// A handler that answers before it has read the whole request body
	// (an echo streaming, or one that answers early and drains the rest):
	// the body that then arrives in full within the grace must let the
	// client connection carry its next request. The sender's report of a
	// body sent in full was once taken for a missing one, and the client
	// connection hung for good.
	raw := rawHandler(t, func(br *bufio.Reader, c net.Conn) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
		}
	})
	f := newLeanFixture(t, echoHandler())
	f.set.addr = raw
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const size = 40 << 10
	io.WriteString(c, fmt.Sprintf("POST /api/echo/ HTTP/1.1\r\nHost: shop.test\r\nContent-Length: %d\r\n\r\n", size))
	io.WriteString(c, strings.Repeat("a", 10))
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("first response: %v", err)
	}
	io.ReadAll(resp.Body)
	io.WriteString(c, strings.Repeat("a", size-10)) // the rest, well within the grace
	io.WriteString(c, "GET /api/echo/ HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("second request on the connection: %v (the connection hung after the first body)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("second request = %d, want 200", resp.StatusCode)
	}
}

func TestLeanShutdownBeforeServe(t *testing.T) {
	// A server stopped as soon as it started (a failed start, a test): the
	// Serve goroutine may run after Shutdown. It must then return, with
	// its listener closed, and race with nothing Shutdown touches.
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := NewServer(New(Config{Domain: "test"}), &http.Server{})
		served := make(chan error, 1)
		go func() { served <- s.Serve(ln) }()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		cancel()
		select {
		case err := <-served:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Fatalf("Serve = %v, want http.ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve still runs after Shutdown: its listener was never closed")
		}
	}
}
