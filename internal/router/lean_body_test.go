package router

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawEchoUpstream answers every request with its body, echoed as it is
// read, in a fixed-length answer; it allocates nothing per request, so a
// test's allocations are the forwarding path's own.
func rawEchoUpstream(tb testing.TB) string {
	tb.Helper()
	return rawHandler(tb, func(br *bufio.Reader, c net.Conn) {
		bw := bufio.NewWriterSize(c, 16<<10)
		var num [20]byte
		buf := make([]byte, 16<<10)
		for {
			n := int64(0)
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) <= 2 {
					break
				}
				if len(line) > 17 && equalFold(line[:15], "content-length:") {
					n, _ = parseUint(trimOWS(line[15 : len(line)-2]))
				}
			}
			bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: ")
			bw.Write(strconv.AppendInt(num[:0], n, 10))
			bw.WriteString("\r\n\r\n")
			for n > 0 {
				k, err := br.Read(buf[:min(n, int64(len(buf)))])
				if _, werr := bw.Write(buf[:k]); err != nil || werr != nil {
					return
				}
				n -= int64(k)
			}
			if bw.Flush() != nil {
				return
			}
		}
	})
}

// TestLeanBodyAllocs: a 64 KiB request body, too large for the read
// buffer, goes to the handler on the connection's body sender while the
// echoed 64 KiB answer is relayed (spliced both ways), and a small body
// that arrived with its head is sent inline; neither allocates per request.
func TestLeanBodyAllocs(t *testing.T) {
	for _, size := range []int{100, 64 << 10} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			f := newLeanFixture(t, echoHandler())
			f.set.addr = rawEchoUpstream(t)
			var lean int
			f.srv.leanHook = func() { lean++ }
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
			req := append([]byte("POST /api/echo/x HTTP/1.1\r\nHost: shop.test\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"), body...)
			wantHead := "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
			got := make([]byte, len(wantHead)+len(body))
			var failed error
			one := func() {
				if failed != nil {
					return
				}
				if _, err := c.Write(req); err != nil {
					failed = err
					return
				}
				if _, err := io.ReadFull(c, got); err != nil {
					failed = err
					return
				}
				if string(got[:len(wantHead)]) != wantHead || !bytes.Equal(got[len(wantHead):], body) {
					failed = io.ErrUnexpectedEOF
				}
			}
			for range 20 {
				one() // start the body sender, fill the pools
			}
			allocs := testing.AllocsPerRun(200, one)
			if failed != nil {
				t.Fatalf("echo of %d bytes: %v (answer %q...)", size, failed, got[:min(len(got), 80)])
			}
			if lean < 220 {
				t.Fatalf("the lean path took %d of 221 requests", lean)
			}
			// Under the race detector the runtime's splice pipes, pooled,
			// are dropped from their pool now and then (see raceEnabled).
			if want := 0.0; allocs > want && !(raceEnabled && size > spliceMin && allocs <= 1) {
				t.Errorf("%v allocs/op for a %d-byte body, want %v", allocs, size, want)
			}
		})
	}
}

// TestLeanEarlyAnswerStreamsPastHeaderTimeout: a handler that answers
// before it has read the whole body (full duplex), then streams for
// longer than the response header timeout, is relayed to the end: the
// end of the body must not start a response header timeout for a head
// that came already.
func TestLeanEarlyAnswerStreamsPastHeaderTimeout(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		time.Sleep(300 * time.Millisecond) // the head reaches the client before the body is read
		io.Copy(io.Discard, r.Body)
		for range 4 {
			io.WriteString(w, "tick\n")
			w.(http.Flusher).Flush()
			time.Sleep(600 * time.Millisecond) // longer than a watch interval: the wait wakes with nothing read
		}
	})
	var lean int
	f := newLeanFixtureWith(t, h, ConnLimits{ResponseHeaderTimeout: 300 * time.Millisecond}, func(s *Server) { s.leanHook = func() { lean++ } })
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := make([]byte, 32<<20) // more than the sockets buffer: the body ends after the head is relayed
	go func() {
		io.WriteString(c, "POST /api/echo/x HTTP/1.1\r\nHost: shop.test\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n")
		c.Write(body)
	}()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil || strings.Count(string(got), "tick\n") != 4 {
		t.Fatalf("streamed answer: %d ticks, %v; want all 4", strings.Count(string(got), "tick\n"), err)
	}
	if lean != 1 {
		t.Fatalf("the lean path took %d requests, want 1", lean)
	}
}

// TestStalledHandlerReleasesClient: a handler that neither reads a large
// body nor answers does not hold the client for ever, on the lean path,
// on the net/http path (which a head too large for the lean path's
// buffer takes) nor in payload mode. Once the handler has taken no body
// for the response header timeout, the client gets 504.
func TestStalledHandlerReleasesClient(t *testing.T) {
	for _, tc := range []struct {
		name, path, extra string
		body, lean        int
		hints             bool // the handler sends 103 Early Hints first
	}{
		{"lean", "/api/echo/x", "", 24 << 20, 1, false}, // more than the sockets and the pipe hold
		{"lean, 103 first", "/api/echo/x", "", 24 << 20, 1, true},
		{"net/http", "/api/echo/x", bigHeader, 24 << 20, 0, false},
		{"net/http, 103 first", "/api/echo/x", bigHeader, 24 << 20, 0, true},
		// The most payload mode takes; the invocation posted, its body
		// encoded, is larger than the sockets hold.
		{"payload", "/api/payload", "", DefaultMaxPayloadBody, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.hints { // an interim answer is no answer
					w.Header().Set("Link", "</style.css>; rel=preload")
					w.WriteHeader(http.StatusEarlyHints)
				}
				select { // neither reads the body nor answers
				case <-r.Context().Done():
				case <-release:
				}
			})
			var lean int
			f := newLeanFixtureWith(t, h, ConnLimits{ResponseHeaderTimeout: 300 * time.Millisecond}, func(s *Server) { s.leanHook = func() { lean++ } })
			t.Cleanup(func() { close(release) }) // before the fixture's: its handler must end
			start := time.Now()
			br := sendLarge(t, f, tc.path, tc.extra, tc.body, 15*time.Second)
			resp, err := readFinal(br, nil) // the net/http path passes 103 on
			if err != nil {
				t.Fatalf("after %v: %v; want a 504", time.Since(start).Round(time.Millisecond), err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusGatewayTimeout {
				t.Fatalf("status %d; want 504", resp.StatusCode)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("the answer took %v, want about the response header timeout", took)
			}
			if lean != tc.lean {
				t.Fatalf("the lean path took %d requests, want %d", lean, tc.lean)
			}
		})
	}
}

// TestSlowReaderIsNotStalled: a handler that takes a large body
// slowly is not cut off, however long the whole body takes, as long as
// it keeps taking it: in bursts, pausing less than the response header
// timeout each time (each burst wakes the body's writes), or steadily,
// in pieces too small to wake them (the send queue shrinks). The pauses
// stop before the body's end: the timeout also counts from there, as the
// Transport's does, and the sockets then still hold up to about 10 MiB
// on loopback, which the handler reads at once.
func TestSlowReaderIsNotStalled(t *testing.T) {
	for _, tc := range []struct {
		name    string
		piece   int
		pause   time.Duration
		pauses  int
		timeout time.Duration
		body    int
		extra   string // bigHeader: the net/http path
	}{
		{"bursts", 4 << 20, 600 * time.Millisecond, 6, 2 * time.Second, 40 << 20, ""},          // 3.6 s of pauses
		{"steady", 16 << 10, 10 * time.Millisecond, 300, 500 * time.Millisecond, 24 << 20, ""}, // 3 s of pauses
		{"steady, net/http", 4 << 10, 10 * time.Millisecond, 300, 500 * time.Millisecond, 24 << 20, bigHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				buf := make([]byte, tc.piece)
				var n int64
				for i := 0; ; i++ {
					m, err := io.ReadFull(r.Body, buf)
					n += int64(m)
					if err != nil {
						break
					}
					if i < tc.pauses {
						time.Sleep(tc.pause) // the sockets fill meanwhile
					}
				}
				io.WriteString(w, strconv.FormatInt(n, 10))
			})
			var lean int
			f := newLeanFixtureWith(t, h, ConnLimits{ResponseHeaderTimeout: tc.timeout}, func(s *Server) { s.leanHook = func() { lean++ } })
			resp, err := http.ReadResponse(sendLarge(t, f, "/api/echo/x", tc.extra, tc.body, 30*time.Second), nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 || string(got) != strconv.Itoa(tc.body) {
				t.Fatalf("status %d, %q, %v; want 200 and the body's length", resp.StatusCode, got, err)
			}
			if want := 1 - strings.Count(tc.extra, "X-Big"); lean != want {
				t.Fatalf("the lean path took %d requests, want %d", lean, want)
			}
		})
	}
}

// sendLarge dials the fixture and POSTs size zero bytes to path with the
// extra header lines, from a goroutine of its own (the body may be more
// than the sockets hold). It returns the reader of the answer, which
// must come within wait.
func sendLarge(t *testing.T, f *leanFixture, path, extra string, size int, wait time.Duration) *bufio.Reader {
	t.Helper()
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: shop.test\r\n"+extra+"Content-Length: "+strconv.Itoa(size)+"\r\n\r\n")
		c.Write(make([]byte, size))
	}()
	c.SetReadDeadline(time.Now().Add(wait))
	return bufio.NewReader(c)
}

// bigHeader is a header line too large for the lean path's buffer: a
// request with it is served by the net/http path.
var bigHeader = "X-Big: " + strings.Repeat("a", leanBufSize) + "\r\n"

// TestEarlyAnswerStreamsWhileBodyUnread: a full-duplex handler that
// answers at once and streams for longer than the response header
// timeout before it reads the body is relayed whole on both paths: the
// stall check ends where the answer begins.
func TestEarlyAnswerStreamsWhileBodyUnread(t *testing.T) {
	for _, tc := range []struct{ name, extra string }{
		{"lean", ""},
		{"net/http", bigHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.NewResponseController(w).EnableFullDuplex()
				w.WriteHeader(200)
				w.(http.Flusher).Flush()
				for range 4 {
					io.WriteString(w, "tick\n")
					w.(http.Flusher).Flush()
					time.Sleep(400 * time.Millisecond) // the body waits meanwhile
				}
				io.Copy(io.Discard, r.Body)
				io.WriteString(w, "end\n")
			})
			f := newLeanFixtureWith(t, h, ConnLimits{ResponseHeaderTimeout: 300 * time.Millisecond}, nil)
			resp, err := http.ReadResponse(sendLarge(t, f, "/api/echo/x", tc.extra, 32<<20, 20*time.Second), nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			if want := strings.Repeat("tick\n", 4) + "end\n"; err != nil || string(got) != want {
				t.Fatalf("answer %q, %v; want %q", got, err, want)
			}
		})
	}
}

// TestUpgradeHalfClose: an upgraded connection to a handler passes the
// client's half-close on (the handler connection's wrapper keeps
// CloseWrite), and the handler's reply after it comes back.
func TestUpgradeHalfClose(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
		b, _ := io.ReadAll(brw) // until the client's half-close
		io.WriteString(c, "got "+strconv.Itoa(len(b)))
	})
	f := newLeanFixtureWith(t, h, ConnLimits{ResponseHeaderTimeout: 300 * time.Millisecond}, nil)
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /api/echo/x HTTP/1.1\r\nHost: shop.test\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	time.Sleep(500 * time.Millisecond) // longer than the response header timeout
	io.WriteString(c, "hello")
	c.(*net.TCPConn).CloseWrite()
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "got 5" {
		t.Fatalf("after the half-close: %q, %v; want %q", rest, err, "got 5")
	}
}

// TestLeanBodiesShareHandlerConn: requests with bodies from several
// clients take turns on one handler connection; what one request sets
// on it for its body must not outlive its turn (a race before).
func TestLeanBodiesShareHandlerConn(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})
	f := newLeanFixtureWith(t, h, ConnLimits{MaxConnsPerSet: 1, MaxIdleConnsPerSet: 1}, nil)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for range 100 {
				io.WriteString(c, "POST /api/echo/x HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\n\r\nhello")
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Error(err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				if err != nil || string(b) != "ok" {
					t.Errorf("answer %q, %v", b, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestStallGuardOwnsItsConnection: a request's guard turns the write
// deadline off only on the connection it still has. An answer without a
// body puts its connection back in the pool before the answer reaches
// the caller, so the next request may have armed it by then.
func TestStallGuardOwnsItsConnection(t *testing.T) {
	a, b := net.Pipe() // nobody reads b: every write waits
	defer a.Close()
	defer b.Close()
	c := &stallConn{Conn: a, stall: 100 * time.Millisecond}
	first, next := &stallGuard{c: c}, &stallGuard{c: c}
	c.arm(first)
	c.arm(next) // the connection went on to the next request
	first.answered()
	if !c.isArmed() {
		t.Fatal("the first request's late answer disarmed the next request's connection")
	}
	start := time.Now()
	if _, err := c.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a write nobody takes: %v after %v, want a timeout", err, time.Since(start))
	}
	next.answered()
	if c.isArmed() {
		t.Fatal("armed after its own request's answer")
	}
}
