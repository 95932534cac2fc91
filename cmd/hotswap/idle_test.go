package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/cli"
)

// slotState returns a slot's state as the API reports it.
func (s *server) slotState(app, slot string) string {
	s.t.Helper()
	var v struct{ State string }
	s.must(http.StatusOK, "GET", "/api/v1/apps/"+app+"/slots/"+slot, nil, &v)
	return v.State
}

// waitSlotState polls until the slot is in state.
func (s *server) waitSlotState(app, slot, state string, within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := s.slotState(app, slot)
		if got == state {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s/%s is %s after %v, want %s", app, slot, got, within, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// newIdleApp makes app "web" with goforward (no timer keeps it awake) in
// production and staging, staging idling after a second.
func newIdleApp(t *testing.T, s *server, pkg string) (prod, staging string) {
	t.Helper()
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "web"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps/web/slots", map[string]string{"name": "staging"}, nil)
	zip := zipDir(t, pkg)
	prod = s.deploy("web", hotswap.ProductionSlot, zip)
	s.setSettings("web", "staging", true, "HOTSWAP_IDLE_TIMEOUT", "1s")
	staging = s.deploy("web", "staging", zip)
	return prod, staging
}

// TestScaleToZero: a slot idle past its timeout stops its handler and
// shows idle; 64 concurrent first requests then all succeed, served by
// one new process started for all of them; it falls asleep again, and
// production (which never idles by default) keeps running throughout.
func TestScaleToZero(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	newIdleApp(t, s, examplePackage(t, "goforward"))
	key := findKey(s.keys("web", "staging"), "host", "", "default")
	for round := range 3 {
		s.waitSlotState("web", "staging", "idle", 20*time.Second)
		if round == 0 {
			var out, errb bytes.Buffer
			code := cli.Run(context.Background(), []string{"--server", s.api, "--token", s.token, "slot", "list", "web"}, cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, WorkDir: t.TempDir()})
			if code != 0 || !strings.Contains(out.String(), "idle (scaled to zero)") {
				t.Errorf("slot list of an idle slot: exit %d\n%s%s", code, out.String(), errb.String())
			}
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		pids := map[string]int{}
		var failed []string
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, body := fnRequest(t, &http.Client{Timeout: 30 * time.Second}, s.fnAddr, "GET", "web-staging.localhost", "/api/hello?name=cold&code="+key, nil, nil)
				mu.Lock()
				defer mu.Unlock()
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Hello, cold") {
					failed = append(failed, resp.Status+" "+string(body))
					return
				}
				pids[resp.Header.Get("X-Handler-Pid")]++
			}()
		}
		wg.Wait()
		if len(failed) > 0 {
			t.Fatalf("round %d: %d of 64 first requests failed; first: %s", round, len(failed), failed[0])
		}
		if len(pids) != 1 {
			t.Errorf("round %d: the 64 first requests were served by %d processes %v, want one start shared", round, len(pids), pids)
		}
		if st := s.slotState("web", "staging"); st != "running" {
			t.Errorf("round %d: after the requests staging is %s, want running", round, st)
		}
	}
	if st := s.slotState("web", hotswap.ProductionSlot); st != "running" {
		t.Errorf("production is %s, want running: it does not idle by default", st)
	}
	if ok, lines := s.logHas("web", "staging", "host", func(text string) bool { return strings.Contains(text, "scaled to zero") }); !ok {
		t.Errorf("staging's log does not say it scaled to zero:\n%v", lines)
	}
	// Bad values of the setting are refused, saying what and where.
	var e errorJSON
	if code := s.call("PATCH", "/api/v1/apps/web/slots/staging/settings", map[string]any{"set": []map[string]any{{"name": "HOTSWAP_IDLE_TIMEOUT", "value": "soon"}}}, &e); code != http.StatusBadRequest || !strings.Contains(e.Error.Message, "HOTSWAP_IDLE_TIMEOUT") {
		t.Errorf("HOTSWAP_IDLE_TIMEOUT=soon: %d %q, want 400 naming the setting", code, e.Error.Message)
	}
}

// TestScaleToZeroTimerWakes: a timer-triggered function wakes its slot on
// schedule, and the slot falls asleep again between occurrences.
func TestScaleToZeroTimerWakes(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	pkg := copyPackage(t, "goforward")
	if err := os.MkdirAll(filepath.Join(pkg, "wake"), 0o755); err != nil {
		t.Fatal(err)
	}
	fn, _ := json.Marshal(map[string]any{"bindings": []map[string]any{{"type": "timerTrigger", "direction": "in", "name": "t", "schedule": "*/6 * * * * *"}}})
	if err := os.WriteFile(filepath.Join(pkg, "wake", "function.json"), fn, 0o644); err != nil {
		t.Fatal(err)
	}
	newIdleApp(t, s, pkg)
	s.waitSlotState("web", "staging", "idle", 20*time.Second)
	// The next occurrence (at most 6s away) wakes it.
	s.waitSlotState("web", "staging", "running", 20*time.Second)
	if ok, lines := s.logHas("web", "staging", "host", func(text string) bool { return strings.Contains(text, "started again after idling") }); !ok {
		t.Fatalf("staging's log does not say the timer started it:\n%v", lines)
	}
	s.waitSlotState("web", "staging", "idle", 20*time.Second)
}

// TestScaleToZeroSwap: a swap with an idle slot works (its warm-up starts
// it), and production then serves the idle slot's deployment.
func TestScaleToZeroSwap(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	_, staging := newIdleApp(t, s, examplePackage(t, "goforward"))
	s.waitSlotState("web", "staging", "idle", 20*time.Second)
	if r := s.swap("web", "staging", false); r.Phase != "completed" {
		t.Fatalf("swap with an idle staging = %+v", r)
	}
	if got := s.slotDeployment("web", hotswap.ProductionSlot); got != staging {
		t.Errorf("production serves %s after the swap, want %s", got, staging)
	}
	if resp, body := s.fn("GET", "web.localhost", "/api/health", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("production after the swap: %d %s", resp.StatusCode, body)
	}
	// Staging now holds production's old build, under its own idle
	// setting: it falls asleep and wakes for a request.
	s.waitSlotState("web", "staging", "idle", 20*time.Second)
	if resp, body := s.fn("GET", "web-staging.localhost", "/api/health", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("staging after the swap: %d %s", resp.StatusCode, body)
	}
}
