package router

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/funcapp"
)

// dozingSet is an upstream put to sleep right after a request's Acquire
// and first Addr (as the idle reaper may): later Addr calls see none,
// while the process the request counted on still serves.
type dozingSet struct {
	addr  string
	calls atomic.Int64
}

func (f *dozingSet) Addr() (string, bool) {
	if f.calls.Add(1) == 1 {
		return f.addr, true
	}
	return "", false
}
func (f *dozingSet) RetryAfter() time.Duration            { return 0 }
func (f *dozingSet) Acquire() bool                        { return true }
func (f *dozingSet) Release()                             {}
func (f *dozingSet) Idle() bool                           { return true }
func (f *dozingSet) Stopping() bool                       { return false }
func (f *dozingSet) Wake(context.Context) (string, error) { return f.addr, nil }

// TestForwardKeepsItsAddress: a forwarded request (net/http path) is sent
// to the address it took, not to one read again after the set withdrew it.
func TestForwardKeepsItsAddress(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	fns := []*funcapp.Function{{Name: "hello", Trigger: "http", AuthLevel: "anonymous", Route: "hello", Methods: []string{"GET"}, Forward: true, Runnable: true}}
	routes, err := funcapp.NewRouter("api", fns)
	if err != nil {
		t.Fatal(err)
	}
	h := New(Config{Domain: "test"})
	set := &dozingSet{addr: up.Listener.Addr().String()}
	slot := &Slot{App: "shop", Name: "production", HostName: "shop.test", BaseURL: "http://shop.test",
		Keys: NewKeys(nil), Deployment: "d1",
		Package: &funcapp.App{Host: &funcapp.Host{EnableForwarding: true, RoutePrefix: "api"}, Functions: fns},
		Routes:  routes, Upstream: set}
	h.Publish(NewTable("test", []*Slot{slot}, h.Transport()))
	srv := NewServer(h, &http.Server{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	f := &pathsFixture{addr: ln.Addr().String()}
	if status, _ := f.do(t, "HTTP/1.0", "GET", "/api/hello", ""); status != http.StatusOK {
		t.Errorf("a forwarded request whose set withdrew its address after Acquire: %d, want 200", status)
	}
}
