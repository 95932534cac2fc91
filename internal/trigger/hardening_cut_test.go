package trigger

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/invoke"
)

// An invocation that never reached the handler, or that the server cut off
// by stopping the set under it, is not a try (notReached); one the handler
// answered, dropped or let time out is.
func TestNotReached(t *testing.T) {
	t.Parallel()
	const closedAddr = "127.0.0.1:1" // tcpmux: nothing listens there
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "/drop": // the handler dies mid-request
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		case "/hang":
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hang) }) // first: srv.Close waits for the handler
	addr := srv.Listener.Addr().String()
	iv := &invoke.Invoker{Timeout: 300 * time.Millisecond}
	call := func(addr, fn string) error {
		_, err := iv.Invoke(context.Background(), addr, invoke.Request{Function: fn})
		if err == nil {
			t.Fatalf("invoking %s at %s succeeded", fn, addr)
		}
		return err
	}
	for _, c := range []struct {
		name      string
		addr, fn  string
		stopped   bool
		wantTry   bool
		wantCut   bool
		wantAfter time.Duration
	}{
		{name: "handler not listening", addr: closedAddr, fn: "f", wantAfter: minDownRetry},
		{name: "handler not listening, set stopping", addr: closedAddr, fn: "f", stopped: true, wantCut: true},
		{name: "handler failed", addr: addr, fn: "fail", wantTry: true},
		{name: "handler failed, set stopping", addr: addr, fn: "fail", stopped: true, wantTry: true},
		// Also while the set is retiring (Stopping, draining), not Stopped.
		{name: "handler died mid-request", addr: addr, fn: "drop", wantTry: true},
		{name: "set stopped under the invocation", addr: addr, fn: "drop", stopped: true, wantCut: true},
		{name: "handler timed out", addr: addr, fn: "hang", wantTry: true},
	} {
		set := &fakeSet{}
		set.stopped.Store(c.stopped)
		err := notReached(call(c.addr, c.fn), set)
		if c.wantTry {
			if err != nil {
				t.Errorf("%s: notReached = %v, want nil (a try)", c.name, err)
			}
			continue
		}
		var nr *notRunError
		if !errors.As(err, &nr) || !errors.Is(err, errNotRun) {
			t.Errorf("%s: notReached = %v, want a notRunError", c.name, err)
			continue
		}
		if nr.cut != c.wantCut || nr.after != c.wantAfter {
			t.Errorf("%s: notRunError{cut: %v, after: %v}, want {cut: %v, after: %v}", c.name, nr.cut, nr.after, c.wantCut, c.wantAfter)
		}
	}
}
