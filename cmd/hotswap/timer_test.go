package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTimerTrigger: a timerTrigger function runs on its NCRONTAB schedule in
// payload mode, its Logs reach the slot log, and the Disabled setting stops
// it.
func TestTimerTrigger(t *testing.T) {
	s := startServer(t, "")
	s.must(201, "POST", "/api/v1/apps", map[string]string{"name": "cron"}, nil)
	s.deploy("cron", "production", zipDir(t, examplePackage(t, "envapp")))
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
	var log struct {
		Lines []struct{ Stream, Text string }
	}
	s.must(200, "GET", "/api/v1/apps/cron/slots/production/log?tail=1000", nil, &log)
	found := false
	for _, l := range log.Lines {
		found = found || l.Stream == "tick" && strings.HasPrefix(l.Text, "tick ")
	}
	if !found {
		t.Errorf("the timer's Logs are not in the slot log: %+v", log.Lines)
	}
	// Disabling restarts the handler with the setting; its counter starts
	// again at zero and must stay there.
	s.setSettings("cron", "production", false, "AzureWebJobs.tick.Disabled", "true")
	time.Sleep(2500 * time.Millisecond)
	if n := ticks(); n != 0 {
		t.Errorf("a disabled timer ran %d times", n)
	}
}
