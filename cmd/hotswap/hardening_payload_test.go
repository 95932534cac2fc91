package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// payloadServer starts a server with the gopayload example deployed to
// orders/production, configured by configure.
func payloadServer(t *testing.T, configure func(*Main)) *server {
	t.Helper()
	s := startServerWith(t, "", configure)
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	s.deploy("orders", "production", zipDir(t, examplePackage(t, "gopayload")))
	return s
}

// randReader yields n pseudo-random bytes without holding them.
type randReader struct {
	rng *rand.ChaCha8
	n   int64
}

func (r *randReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n)]
	r.rng.Read(p)
	r.n -= int64(len(p))
	return len(p), nil
}

func randBody(seed byte, n int64) io.Reader {
	return &randReader{rng: rand.NewChaCha8([32]byte{seed}), n: n}
}

// rawRequest writes head (and body, when not nil) on a new connection to
// the functions listener and returns the status line of the answer.
func rawRequest(t *testing.T, s *server, head string, body io.Reader) string {
	t.Helper()
	c, err := net.Dial("tcp", s.fnAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	if body != nil {
		// The server may answer and close before it has read it all.
		go io.Copy(c, body)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return strings.TrimSpace(line)
}

// TestPayloadMemoryBounded sends a 6 MiB binary body through the payload
// echo function and checks that the server allocated a small multiple of
// it (it was 27 times the body), and that the body came back intact.
//
// It is not parallel on purpose: it reads the process-wide allocation
// counter, which other tests running at the same time would inflate.
func TestPayloadMemoryBounded(t *testing.T) {
	s := payloadServer(t, nil)
	const size = 6 << 20
	// Warm up the connections, the handler and the server's buffers.
	if resp, _ := s.fn("POST", "orders.localhost", "/api/echo", nil, []byte("warm")); resp.StatusCode != http.StatusOK {
		t.Fatalf("warm-up: %d", resp.StatusCode)
	}
	for _, tc := range []struct {
		name, ctype string
		body        func() io.Reader
	}{
		{"binary", "application/octet-stream", func() io.Reader { return randBody(1, size) }},
		{"text", "text/plain", func() io.Reader {
			return io.LimitReader(strings.NewReader(strings.Repeat("héllo \"wörld\" ✓\n", size/16+1)), size)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := sha256.New()
			io.Copy(want, tc.body())
			req, err := http.NewRequest("POST", "http://"+s.fnAddr+"/api/echo", tc.body())
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "orders.localhost"
			req.ContentLength = size
			req.Header.Set("Content-Type", tc.ctype)

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got := sha256.New()
			n, err := io.Copy(got, resp.Body)
			resp.Body.Close()
			runtime.ReadMemStats(&after)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, read %d bytes: %v", resp.StatusCode, n, err)
			}
			if n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
				t.Fatalf("echo answered %d bytes that differ from the %d sent", n, size)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s: %d-byte body, the server allocated %d bytes (%.1fx)", tc.name, size, alloc, float64(alloc)/size)
			if alloc > 4*size {
				t.Errorf("the server allocated %.1f times the body (%d bytes), want at most 4", float64(alloc)/size, alloc)
			}
		})
	}
}

// TestPayloadBodyLimit checks that a body over the payload limit gets 413
// before it is read, whether its length is declared or chunked.
func TestPayloadBodyLimit(t *testing.T) {
	t.Parallel()
	s := payloadServer(t, nil)

	// 31 MiB declared and never sent: the answer must not wait for it.
	start := time.Now()
	line := rawRequest(t, s, "POST /api/echo HTTP/1.1\r\nHost: orders.localhost\r\nContent-Length: 32505856\r\n\r\n", nil)
	if !strings.Contains(line, " 413 ") {
		t.Fatalf("31 MiB declared: %q, want 413", line)
	}
	t.Logf("413 after %v", time.Since(start))

	// Chunked, 9 MiB: cut off at the 8 MiB limit.
	var chunked bytes.Buffer
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for range 9 << 4 {
		fmt.Fprintf(&chunked, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	chunked.WriteString("0\r\n\r\n")
	line = rawRequest(t, s, "POST /api/echo HTTP/1.1\r\nHost: orders.localhost\r\nTransfer-Encoding: chunked\r\n\r\n", &chunked)
	if !strings.Contains(line, " 413 ") {
		t.Fatalf("9 MiB chunked: %q, want 413", line)
	}

	// The limit is configurable, and a body within it still works.
	s2 := payloadServer(t, func(m *Main) { m.Config.PayloadMaxBody = 1 << 10 })
	if resp, body := s2.fn("POST", "orders.localhost", "/api/echo", nil, bytes.Repeat([]byte("y"), 2<<10)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2 KiB over a 1 KiB --payload-max-body: %d %s, want 413", resp.StatusCode, body)
	}
	if resp, body := s2.fn("POST", "orders.localhost", "/api/echo", nil, []byte("small")); resp.StatusCode != http.StatusOK || string(body) != "small" {
		t.Errorf("small body: %d %q, want 200 small", resp.StatusCode, body)
	}
}

// TestPayloadBinaryRoundTrip sends bodies that are not UTF-8 text through
// the payload echo: every byte must come back (they became U+FFFD).
func TestPayloadBinaryRoundTrip(t *testing.T) {
	t.Parallel()
	s := payloadServer(t, nil)
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 300<<10)...)
	rand.NewChaCha8([32]byte{7}).Read(png[8:])
	for _, tc := range []struct {
		name, ctype string
		body        []byte
	}{
		{"image", "image/png", png},
		{"latin-1 text", "text/plain; charset=iso-8859-1", []byte("caf\xe9 cr\xe8me br\xfbl\xe9e")},
		{"octet-stream", "application/octet-stream", []byte("\x00\x01\x02\xff")},
		{"utf-8 text", "text/plain; charset=utf-8", []byte("café ✓ 𝄞 \"quoted\"\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := s.fn("POST", "orders.localhost", "/api/echo", map[string]string{"Content-Type": tc.ctype}, tc.body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %.200s", resp.StatusCode, body)
			}
			if !bytes.Equal(body, tc.body) {
				t.Fatalf("echo answered %d bytes %.40q, want the %d sent %.40q", len(body), body, len(tc.body), tc.body)
			}
		})
	}
	ok, lines := s.logHas("orders", "production", "echo", func(text string) bool { return text == fmt.Sprintf("echo %d bytes", len(png)) })
	if !ok {
		t.Errorf("the echo's log does not count the image's %d bytes: %v", len(png), lines)
	}
}

var (
	holdOnce sync.Once
	holdDir  string
	holdErr  error
)

// holdPackage returns a folder holding the holdapp test handler, built once
// per run, ready to zip: a payload-mode function whose invocations stay in
// the handler until the test lets them go (see holdInvocations).
func holdPackage(t testing.TB) string {
	t.Helper()
	holdOnce.Do(func() {
		if holdDir, holdErr = os.MkdirTemp("", "hotswap-holdapp-"); holdErr != nil {
			return
		}
		src := filepath.Join(repoRoot(), "cmd/hotswap/testdata/holdapp")
		if holdErr = os.CopyFS(filepath.Join(holdDir, "holdapp"), os.DirFS(src)); holdErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(holdDir, "holdapp", "handler"), "./cmd/hotswap/testdata/holdapp")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			holdErr = fmt.Errorf("build holdapp: %v\n%s", err, out)
		}
	})
	if holdErr != nil {
		t.Fatal(holdErr)
	}
	return filepath.Join(holdDir, "holdapp")
}

// holdInvocations starts n requests to holdapp's hold function on host and
// returns once all n are in the handler (each dialed back to the test), or
// fails the test after a generous deadline. release lets them answer and
// returns their statuses and bodies.
func holdInvocations(t *testing.T, s *server, host string, n int) (release func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	results := make(chan string, n)
	for range n {
		go func() {
			req, err := http.NewRequest("POST", "http://"+s.fnAddr+"/api/hold?addr="+ln.Addr().String(), strings.NewReader("hold"))
			if err != nil {
				results <- err.Error()
				return
			}
			req.Host = host
			resp, err := s.client.Do(req)
			if err != nil {
				results <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- fmt.Sprintf("%d %s", resp.StatusCode, b)
		}()
	}
	var in []net.Conn
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
	for len(in) < n {
		c, err := ln.Accept()
		if err != nil {
			for _, c := range in {
				c.Close()
			}
			select {
			case r := <-results:
				t.Fatalf("%d of %d invocations reached the handler; one answered %s", len(in), n, r)
			default:
			}
			t.Fatalf("%d of %d invocations reached the handler within 30s: %v", len(in), n, err)
		}
		in = append(in, c)
	}
	t.Cleanup(func() {
		for _, c := range in {
			c.Close()
		}
	})
	return func() []string {
		for _, c := range in {
			c.Close()
		}
		var got []string
		for range n {
			got = append(got, <-results)
		}
		return got
	}
}

// TestPayloadConcurrencyBound holds both turns of a slot whose payload
// concurrency is 2 with invocations known to be in the handler: a third
// gets 503 with Retry-After after waiting about a second, and once the two
// finish, requests pass again.
func TestPayloadConcurrencyBound(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, "", func(m *Main) { m.Config.PayloadConcurrency = 2 })
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "holds"}, nil)
	s.deploy("holds", "production", zipDir(t, holdPackage(t)))

	release := holdInvocations(t, s, "holds.localhost", 2)

	// Were the third let in, it would answer at once: its dial back is
	// accepted and closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	start := time.Now()
	resp, body := s.fn("POST", "holds.localhost", "/api/hold?addr="+ln.Addr().String(), nil, []byte("third"))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third request: %d (Retry-After %q) %s, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("the third was refused after %v, want it to wait about a second for a turn first", d)
	}

	for _, got := range release() {
		if got != "200 held" {
			t.Errorf("held request: %q, want 200 held", got)
		}
	}
	again := holdInvocations(t, s, "holds.localhost", 1)
	if got := again(); got[0] != "200 held" {
		t.Errorf("after the two finished: %q, want 200 held", got[0])
	}
}
