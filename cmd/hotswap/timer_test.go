package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTimerTrigger: a timerTrigger function runs on its NCRONTAB schedule in
// payload mode, its Logs reach the slot log, and the Disabled setting stops
// it.
func TestTimerTrigger(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	s.must(201, "POST", "/api/v1/apps", map[string]string{"name": "cron"}, nil)
	s.deploy("cron", "production", zipDir(t, examplePackage(t, "envapp")))
	var fn struct{ Trigger, Schedule string }
	s.must(200, "GET", "/api/v1/apps/cron/slots/production/functions/tick", nil, &fn)
	if fn.Trigger != "timer" || fn.Schedule != "*/1 * * * * *" {
		t.Errorf("function tick = %+v, want a timer on */1 * * * * *", fn)
	}
	ticks := func() int {
		t.Helper()
		resp, body := s.fn("GET", "cron.localhost", "/api/ticks", nil, nil)
		n, err := strconv.Atoi(string(body))
		if resp.StatusCode != 200 || err != nil {
			t.Fatalf("ticks = %d %q", resp.StatusCode, body)
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for ticks() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the every-second timer ran %d times in 10s", ticks())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if found, lines := s.logHas("cron", "production", "tick", func(text string) bool { return strings.HasPrefix(text, "tick ") }); !found {
		t.Errorf("the timer's Logs are not in the slot log: %+v", lines)
	}
	// Disabling restarts the handler with the setting; its counter starts
	// again at zero and must stay there.
	s.setSettings("cron", "production", false, "AzureWebJobs.tick.Disabled", "true")
	time.Sleep(2500 * time.Millisecond)
	if n := ticks(); n != 0 {
		t.Errorf("a disabled timer ran %d times", n)
	}
}

// TestMonitoredTimerCatchesUp: a monitored timer whose occurrence passes
// while the server is dead (SIGKILL) runs once, with IsPastDue, as soon as
// the server is back; an unmonitored one does not. runOnStartup runs a timer
// when its deployment starts.
func TestMonitoredTimerCatchesUp(t *testing.T) {
	t.Parallel()
	pkg := copyPackage(t, "envapp")
	for name, binding := range map[string]string{
		// Every 2 s, monitored: the one that must catch up.
		"monitored": `{"type": "timerTrigger", "name": "t", "schedule": "*/2 * * * * *", "useMonitor": true}`,
		// Never in this test's lifetime, but run at every start.
		"startup": `{"type": "timerTrigger", "name": "t", "schedule": "0 0 0 1 1 *", "runOnStartup": true}`,
	} {
		if err := os.MkdirAll(filepath.Join(pkg, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkg, name, "function.json"), []byte(`{"bindings": [`+binding+`]}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dataDir := t.TempDir()
	p := startProc(t, dataDir)
	s := p.server(t, dataDir)
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "cron"}, nil)
	s.deploy("cron", "production", zipDir(t, pkg))
	timers := func() map[string][]bool {
		t.Helper()
		var runs map[string][]bool
		resp, body := s.fn("GET", "cron.localhost", "/api/timers", nil, nil)
		if resp.StatusCode != 200 || json.Unmarshal(body, &runs) != nil {
			t.Fatalf("timers = %d %q", resp.StatusCode, body)
		}
		return runs
	}
	waitRuns := func(name string, n int) map[string][]bool {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			runs := timers()
			if len(runs[name]) >= n {
				return runs
			}
			if time.Now().After(deadline) {
				t.Fatalf("timer %s ran %d times in 20s, want %d: %v", name, len(runs[name]), n, runs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	runs := waitRuns("monitored", 1)
	if got := runs["startup"]; len(got) != 1 || got[0] {
		t.Errorf("runOnStartup runs = %v, want one, not past due", got)
	}
	if slices.Contains(runs["monitored"], true) {
		t.Errorf("monitored runs before the kill = %v, want none past due", runs["monitored"])
	}

	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	time.Sleep(4500 * time.Millisecond) // two occurrences pass while it is dead
	p = startProc(t, dataDir)
	s = p.server(t, dataDir)
	runs = waitRuns("monitored", 3)
	if got := runs["monitored"]; !got[0] || slices.Contains(got[1:], true) {
		t.Errorf("monitored runs after the restart = %v, want the first (and only it) past due", got)
	}
	if got := runs["tick"]; slices.Contains(got, true) {
		t.Errorf("the unmonitored every-second timer ran past due: %v", got)
	}
	if got := runs["startup"]; len(got) != 1 || got[0] {
		t.Errorf("runOnStartup runs after the restart = %v, want one, not past due", got)
	}
	pastDue := func(text string) bool { return strings.HasPrefix(text, "timer monitored is past due: its run at ") }
	if found, lines := s.logHas("cron", "production", "host", pastDue); !found {
		t.Errorf("the slot log does not say the run was past due: %+v", lines)
	}

	// A new deployment in the slot keeps the timer's clock: nothing past
	// due, and runOnStartup runs for it once.
	s.deploy("cron", "production", zipDir(t, pkg))
	runs = waitRuns("monitored", 2)
	if got := runs["monitored"]; slices.Contains(got, true) {
		t.Errorf("monitored runs after a deploy = %v, want none past due", got)
	}
	if got := runs["startup"]; len(got) != 1 {
		t.Errorf("runOnStartup runs after a deploy = %v, want one", got)
	}
}
