package pgtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// backend is a test server that answers its name and counts the requests
// other than health checks.
type backend struct {
	*httptest.Server
	requests atomic.Int64
}

// newBackend starts a backend whose /healthz answers health, and which
// answers other requests with its name, or, when drop is set, closes the
// connection without an answer (a node that dies mid-request).
func newBackend(t *testing.T, name string, health int, drop bool) *backend {
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(health)
			return
		}
		b.requests.Add(1)
		io.Copy(io.Discard, r.Body)
		if drop {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) hostPort() string { return strings.TrimPrefix(b.URL, "http://") }

// send sends a request with a small body through the load balancer and
// returns its status and body. It fails a request the client itself sent
// twice (Go's Transport resends an idempotent request when a reused
// connection closes without an answer), so a success is HAProxy's.
func send(c *http.Client, method, url string) (int, string, error) {
	conns := 0
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { conns++ }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, url, strings.NewReader("payload"))
	if err != nil {
		return 0, "", err
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err == nil && conns != 1 {
		err = fmt.Errorf("the client sent the request %d times", conns)
	}
	return res.StatusCode, string(body), err
}

// TestHAProxyHealthCheck checks that a backend failing /healthz is taken
// out: every request goes to the healthy one, over kept-alive connections.
func TestHAProxyHealthCheck(t *testing.T) {
	t.Parallel()
	healthy := newBackend(t, "healthy", http.StatusOK, false)
	sick := newBackend(t, "sick", http.StatusServiceUnavailable, false)
	var addr string
	t.Run("balance", func(t *testing.T) {
		lb := HAProxy(t, []string{healthy.hostPort(), sick.hostPort()})
		addr = lb.Addr
		lb.WaitStatus(t, 1, "DOWN")
		lb.WaitStatus(t, 0, "UP")
		c := &http.Client{Timeout: 30 * time.Second}
		for range 20 {
			code, body, err := send(c, http.MethodGet, "http://"+lb.Addr+"/x")
			if err != nil || code != http.StatusOK || body != "healthy" {
				t.Fatalf("got %d %q (%v), want 200 \"healthy\"", code, body, err)
			}
		}
		if n := sick.requests.Load(); n != 0 {
			t.Errorf("the backend failing /healthz got %d requests", n)
		}
		if n := healthy.requests.Load(); n != 20 {
			t.Errorf("the healthy backend got %d requests, want 20", n)
		}
		stats, err := lb.Servers()
		if err != nil {
			t.Fatal(err)
		}
		if len(stats) != 2 || stats[0].Name != "n0" || stats[0].Addr != healthy.hostPort() || stats[0].Sessions != 20 {
			t.Errorf("stats %+v, want n0 at %s with 20 sessions first", stats, healthy.hostPort())
		}
	})
	if addr == "" {
		return // the subtest skipped or failed
	}
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		c.Close()
		t.Errorf("haproxy still listens on %s after its test", addr)
	}
}

// TestHAProxyRetries checks which requests are retried on another backend
// when one closes the connection without answering: GETs are (none fails),
// POSTs are not (they could run twice).
func TestHAProxyRetries(t *testing.T) {
	t.Parallel()
	good := newBackend(t, "good", http.StatusOK, false)
	dying := newBackend(t, "dying", http.StatusOK, true)
	lb := HAProxy(t, []string{good.hostPort(), dying.hostPort()})
	lb.WaitStatus(t, 0, "UP")
	lb.WaitStatus(t, 1, "UP")
	c := &http.Client{Timeout: 30 * time.Second}
	for range 10 {
		if code, body, err := send(c, http.MethodGet, "http://"+lb.Addr+"/x"); err != nil || code != http.StatusOK || body != "good" {
			t.Fatalf("GET: got %d %q (%v), want 200 \"good\" (retried)", code, body, err)
		}
	}
	if dying.requests.Load() == 0 {
		t.Fatal("no GET reached the dying backend: nothing was retried")
	}
	// A POST the dying backend dropped fails: with a 502, or, on a reused
	// client connection, HAProxy closes that connection without an answer
	// as the backend did (the client sees EOF).
	failed := 0
	for range 10 {
		code, _, err := send(c, http.MethodPost, "http://"+lb.Addr+"/x")
		switch {
		case err == nil && code == http.StatusOK:
		case err != nil || code == http.StatusBadGateway:
			failed++
		default:
			t.Fatalf("POST: status %d, want 200 or 502", code)
		}
	}
	if failed == 0 {
		t.Error("every POST succeeded: a POST that reached the dying backend was retried")
	}
	stats, err := lb.Servers()
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 2 || stats[1].Retries+stats[1].Redispatches == 0 {
		t.Errorf("stats %+v: want retries or redispatches counted on n1", stats)
	}
}
