package main

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCrashInSlotLog kills a slot's handler and checks that the slot log
// (what `hotswap log` and the API show), not only the server's stderr,
// says it exited, how, and that it was restarted.
func TestCrashInSlotLog(t *testing.T) {
	t.Parallel()
	s := payloadServer(t, nil)
	readyRE := regexp.MustCompile(`ready \(pid (\d+)\)`)
	var pid int
	if ok, lines := s.logHas("orders", "production", "host", func(text string) bool {
		m := readyRE.FindStringSubmatch(text)
		if m != nil {
			pid, _ = strconv.Atoi(m[1])
		}
		return m != nil
	}); !ok {
		t.Fatalf("no handler ready line in the slot log: %v", lines)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		crashed, lines := s.logHas("orders", "production", "host", func(text string) bool {
			return strings.Contains(text, "(pid "+strconv.Itoa(pid)+") exited unexpectedly") && strings.Contains(text, "signal: killed") && strings.Contains(text, "restarting in")
		})
		restarted, _ := s.logHas("orders", "production", "host", func(text string) bool {
			return strings.HasPrefix(text, "handler restarted (pid ") && !strings.Contains(text, "(pid "+strconv.Itoa(pid)+")")
		})
		if crashed && restarted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot log after SIGKILL of pid %d: crash line %v, restart line %v: %v", pid, crashed, restarted, lines)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if resp, body := s.fn("POST", "orders.localhost", "/api/echo", nil, []byte("back")); resp.StatusCode != http.StatusOK || string(body) != "back" {
		t.Errorf("after the restart: %d %q, want 200 back", resp.StatusCode, body)
	}
}
