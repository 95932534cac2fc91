package runtime

import (
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCrashIsLogged checks that a crash and the restart reach Spec.Log on
// stream "host", saying how the handler ended, so the slot log shows them.
func TestCrashIsLogged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		crash  func(t testing.TB, s *Set)
		status string
	}{
		{"exit", func(t testing.TB, s *Set) {
			http.Get("http://" + mustAddr(t, s) + "/crash") // exits with 2: no response
		}, "exit status 2"},
		{"SIGKILL", func(t testing.TB, s *Set) {
			if err := syscall.Kill(s.PID(), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}, "signal: killed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out lines
			spec := handlerSpec()
			spec.Log = out.log
			s := start(t, newManager(t), spec)
			pid := s.PID()
			tc.crash(t, s)
			waitFor(t, 10*time.Second, "restart", func() bool {
				_, ok := out.find("host: handler restarted")
				return ok && s.PID() != 0
			})
			exited, ok := out.find("host: handler (pid ")
			if !ok || !strings.Contains(exited, tc.status) || !strings.Contains(exited, "exited unexpectedly") || !strings.Contains(exited, "restarting in") {
				t.Errorf("crash line %q (found %v), want one with %q and the restart delay", exited, ok, tc.status)
			}
			if !strings.HasPrefix(exited, strconv.Itoa(pid)+")") {
				t.Errorf("crash line %q does not name pid %d", exited, pid)
			}
			restarted, _ := out.find("host: handler restarted ")
			if want := "(pid " + strconv.Itoa(s.PID()) + "); restarts so far: 1"; restarted != want {
				t.Errorf("restart line %q, want %q", restarted, want)
			}
		})
	}
}
