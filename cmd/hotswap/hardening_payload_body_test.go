package main

import (
	"bufio"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// trickler is a client that declares an 8 MiB payload-mode body and sends
// it a byte at a time, slowly.
type trickler struct {
	c        net.Conn
	br       *bufio.Reader
	reading  time.Time // when the server started reading the body
	stop     chan struct{}
	finished chan struct{}
}

// startTrickler sends the head of an 8 MiB POST to path on host with
// Expect: 100-continue and returns once the server has started reading the
// body (it sent 100 Continue), trickling a byte every 50ms from then on.
func startTrickler(t *testing.T, s *server, host, path string) *trickler {
	t.Helper()
	c, err := net.Dial("tcp", s.fnAddr)
	if err != nil {
		t.Fatal(err)
	}
	tr := &trickler{c: c, br: bufio.NewReader(c), stop: make(chan struct{}), finished: make(chan struct{})}
	t.Cleanup(tr.close)
	head := "POST " + path + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: text/plain\r\nContent-Length: 8388608\r\nExpect: 100-continue\r\n\r\n"
	if _, err := c.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := tr.br.ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to an 8 MiB body announced with Expect: 100-continue: %v", err)
	}
	if strings.TrimSpace(line) != "HTTP/1.1 100 Continue" {
		t.Fatalf("an 8 MiB body announced with Expect: 100-continue got %q, want the server to start reading it (100 Continue)", strings.TrimSpace(line))
	}
	if blank, err := tr.br.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("after 100 Continue: %q %v", blank, err)
	}
	tr.reading = time.Now()
	go func() {
		defer close(tr.finished)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tr.stop:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	return tr
}

func (tr *trickler) close() {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	tr.c.Close()
	<-tr.finished
}

// TestPayloadSlowBodies: clients that trickle large payload-mode bodies hold
// no concurrency turn (a normal request gets 200, not 503) and get 408 once
// the whole-body deadline passes, though each of their reads makes
// progress; a request without the key a function needs is refused before
// its body is read.
func TestPayloadSlowBodies(t *testing.T) {
	t.Parallel()
	const timeout = 3 * time.Second
	s := payloadServer(t, func(m *Main) {
		m.Config.PayloadConcurrency = 4
		m.Config.PayloadBodyTimeout = timeout
	})

	var slow []*trickler
	for range 4 {
		slow = append(slow, startTrickler(t, s, "orders.localhost", "/api/echo"))
	}
	if resp, body := s.fn("POST", "orders.localhost", "/api/echo", nil, []byte("normal")); resp.StatusCode != http.StatusOK || string(body) != "normal" {
		t.Fatalf("a normal request while 4 clients trickle their bodies: %d %q, want 200 normal", resp.StatusCode, body)
	}

	for i, tr := range slow {
		tr.c.SetReadDeadline(time.Now().Add(timeout + 30*time.Second))
		resp, err := http.ReadResponse(tr.br, nil)
		if err != nil {
			t.Fatalf("trickling client %d: no answer: %v", i, err)
		}
		resp.Body.Close()
		waited := time.Since(tr.reading)
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("trickling client %d: %d after %v, want 408", i, resp.StatusCode, waited)
		}
		if waited < timeout-500*time.Millisecond {
			t.Errorf("trickling client %d: answered after %v, before the %v body timeout", i, waited, timeout)
		}
	}

	// hello needs a function key: without one, 401 comes at once and the
	// body is never asked for.
	c, err := net.Dial("tcp", s.fnAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("POST /api/hello HTTP/1.1\r\nHost: orders.localhost\r\nContent-Length: 8388608\r\nExpect: 100-continue\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer without a key: %v", err)
	}
	if !strings.Contains(line, " 401 ") {
		t.Fatalf("8 MiB announced without a key: %q, want 401 before the body is read", strings.TrimSpace(line))
	}
}

// TestPayloadSlowBodiesMemory: 16 clients that declare 8 MiB bodies and
// trickle them make the server hold about what they sent, not 16 x 8 MiB.
//
// It is not parallel on purpose: it reads the process-wide heap size,
// which other tests running at the same time would inflate.
func TestPayloadSlowBodiesMemory(t *testing.T) {
	s := payloadServer(t, nil)
	if resp, _ := s.fn("POST", "orders.localhost", "/api/echo", nil, []byte("warm")); resp.StatusCode != http.StatusOK {
		t.Fatalf("warm-up: %d", resp.StatusCode)
	}
	const n = 16
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var slow []*trickler
	for range n {
		slow = append(slow, startTrickler(t, s, "orders.localhost", "/api/echo"))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d clients trickling declared 8 MiB bodies: the heap grew by %d bytes", n, grew)
	if grew > n*8<<20/4 {
		t.Errorf("%d clients that declared 8 MiB bodies and sent almost nothing grew the heap by %d MiB, want it to hold what they sent", n, grew>>20)
	}
	for _, tr := range slow {
		tr.close()
	}
}
