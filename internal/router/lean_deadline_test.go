package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// The lean path keeps a client's idle deadline armed while it serves a
// request and moves it only now and then (clientReader.armIdle); these
// tests hold it to what the deadline promises.

// TestLeanSlowAnswerOutlastsIdleTimeout: a handler that takes longer than
// the idle timeout to answer is not mistaken for a client gone (the
// deadline left armed would otherwise pass under the wait, and the check
// for a client that went away would read it as closed), and the
// connection serves the next request after it.
func TestLeanSlowAnswerOutlastsIdleTimeout(t *testing.T) {
	slow := http.NewServeMux()
	slow.HandleFunc("/api/echo/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/echo/slow" {
			time.Sleep(2 * time.Second) // four watch intervals, twice the idle timeout
		}
		io.WriteString(w, "done")
	})
	f := newLeanFixtureWith(t, slow, ConnLimits{}, func(s *Server) { s.IdleTimeout = time.Second })
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for _, path := range []string{"/api/echo/fast", "/api/echo/slow", "/api/echo/fast"} {
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: shop.test\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "done" {
			t.Fatalf("%s = %d %q, want 200 \"done\"", path, resp.StatusCode, body)
		}
	}
}

// TestLeanIdleTimeoutAfterBusyConnection: a connection busy for several
// idle timeouts, then silent, is closed after the idle timeout (at most
// an eighth more) and not before.
func TestLeanIdleTimeoutAfterBusyConnection(t *testing.T) {
	const idle = 400 * time.Millisecond
	f := newLeanFixtureWith(t, echoHandler(), ConnLimits{}, func(s *Server) { s.IdleTimeout = idle })
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	var sent time.Time // when the last request went out: the server's wait starts after it
	for busy := time.Now(); time.Since(busy) < 3*idle; {
		sent = time.Now()
		io.WriteString(c, "GET /api/echo/x HTTP/1.1\r\nHost: shop.test\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		time.Sleep(idle / 20)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("read on the idle connection: %v, want EOF", err)
	}
	if d := time.Since(sent); d < idle || d > idle+idle/8+time.Second {
		t.Errorf("closed %v after the last request, want about %v (at most %v, plus scheduling)", d, idle, idle+idle/8)
	}
}
