package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// apiAsync sends an API request on its own goroutine (a deploy or swap that
// takes seconds) and returns a channel with the outcome: an error unless
// the status is want.
func (s *server) apiAsync(want int, method, path string, body []byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		req, err := http.NewRequest(method, s.api+path, bytes.NewReader(body))
		if err != nil {
			done <- err
			return
		}
		req.Header.Set("Authorization", "Bearer "+s.token)
		resp, err := s.client.Do(req)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			err = fmt.Errorf("%s %s = %d, want %d: %s", method, path, resp.StatusCode, want, raw)
		}
		done <- err
	}()
	return done
}

// TestBrowserSecondViewerSeesPhases: a deploy and a swap started through the
// API (by someone else) show their phases live on the slot and app pages of
// a viewer who only watches: "starting" while the handler takes its 8 s to
// listen, then "done"; the swap's "preparing production".
func TestBrowserSecondViewerSeesPhases(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	b := newBrowser(t, s.api, 180*time.Second)
	s.must(201, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	s.must(201, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	// The handler listens 8 s after it starts: several 2 s polls see it.
	s.setSettings("orders", "staging", false, "START_DELAY_MS", "8000")
	pkg := zipDir(t, filepath.Join(repoRoot(), "internal", "httpapi", "testdata", "slowstart"))

	b.signIn(s.token, "admin")
	b.open("/apps/orders/slots/staging")
	b.waitJS("the live region", `(function(){var e=document.querySelector('[data-testid="op-status"]');return !!e&&e.getAttribute("role")==="status"&&e.getAttribute("aria-live")==="polite"&&e.textContent===""})()`, 10*time.Second)

	deployed := s.apiAsync(http.StatusOK, "POST", "/api/v1/apps/orders/slots/staging/deploy?message=slow", pkg)
	b.waitText("op-status", "Deploy to staging: starting", 20*time.Second)
	if got := b.text("op-phases"); !strings.Contains(got, "receiving at") || !strings.Contains(got, "starting (handler of deployment d-") || !strings.Contains(got, "so far") {
		t.Errorf("phases list while starting = %q, want receiving ... starting (handler of deployment d-...) ... so far", got)
	}
	b.waitText("op-status", "Deploy to staging: done", 30*time.Second)
	if err := <-deployed; err != nil {
		t.Fatal(err)
	}

	// The app page shows a swap started elsewhere; the moving
	// START_DELAY_MS makes production's new handler take 8 s as well.
	b.open("/apps/orders")
	swapped := s.apiAsync(http.StatusOK, "POST", "/api/v1/apps/orders/swap", mustJSON(t, map[string]string{"slot": "staging"}))
	b.waitText("op-status", "Swap of staging into production: preparing production", 20*time.Second)
	b.waitText("op-status", "Swap of staging into production: done", 30*time.Second)
	if err := <-swapped; err != nil {
		t.Fatal(err)
	}
	if got := b.text("op-phases"); !strings.Contains(got, "switching (staging and production) at") || !strings.Contains(got, "done at") {
		t.Errorf("phases list after the swap = %q, want ... switching ... done", got)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
