package router

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestHealth: a load balancer checks GET /healthz at the node's address
// through the real listener (the lean path hands it to net/http); it turns
// 503 with the reason when the node should not take traffic, and an app's
// host name never answers it.
func TestHealth(t *testing.T) {
	h := New(Config{Domain: "test"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h, &http.Server{})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	get := func(host string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+HealthPath, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := get(""); code != 200 || body != "ok" {
		t.Fatalf("healthz before SetHealth = %d %q, want 200 ok", code, body)
	}
	healthy := true
	h.SetHealth(func() (bool, string) {
		if healthy {
			return true, "ok"
		}
		return false, "draining"
	})
	healthy = false
	if code, body := get(""); code != 503 || body != "draining" {
		t.Fatalf("healthz while draining = %d %q, want 503 draining", code, body)
	}
	h.Publish(NewTable("test", []*Slot{{App: "app", Name: "production", HostName: "app.test"}}, nil))
	if code, _ := get("app.test"); code != 404 {
		t.Fatalf("healthz at an app's host name = %d, want the app's own 404 (no deployment)", code)
	}
}
