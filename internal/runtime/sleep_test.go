package runtime

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSleepWake: a set put to sleep stops its process and reports idle;
// 64 concurrent Wake calls share one start and all get the new address;
// the set then serves and can sleep again.
func TestSleepWake(t *testing.T) {
	m := newManager(t)
	s := start(t, m, handlerSpec())
	pid := s.PID()
	if !s.Sleep() {
		t.Fatal("Sleep of an awake set: false")
	}
	if s.Sleep() {
		t.Error("a second Sleep: true, want false")
	}
	if _, ok := s.Addr(); ok {
		t.Error("Addr right after Sleep: ok, want the address withdrawn")
	}
	waitFor(t, 10*time.Second, "the process stopped", func() bool { return syscall.Kill(pid, 0) != nil && s.PID() == 0 })
	if !s.Idle() {
		t.Fatal("asleep, but Idle is false")
	}

	var wg sync.WaitGroup
	addrs := make([]string, 64)
	errs := make([]error, 64)
	for i := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addrs[i], errs[i] = s.Wake(context.Background())
		}()
	}
	wg.Wait()
	for i := range addrs {
		if errs[i] != nil || addrs[i] != addrs[0] {
			t.Fatalf("Wake %d = %q, %v; want %q like the others", i, addrs[i], errs[i], addrs[0])
		}
	}
	if n := s.Wakes(); n != 1 {
		t.Errorf("64 concurrent Wakes started the handler %d times, want 1", n)
	}
	if s.Idle() || s.PID() == 0 || s.PID() == pid {
		t.Errorf("after Wake: idle %v, pid %d (was %d)", s.Idle(), s.PID(), pid)
	}
	if got := get(t, addrs[0], "/"); got != "ok\n" {
		t.Errorf("GET / after waking = %q", got)
	}
	// Awake, Wake answers at once without starting anything.
	if addr, err := s.Wake(context.Background()); err != nil || addr != addrs[0] || s.Wakes() != 1 {
		t.Errorf("Wake of an awake set = %q, %v (wakes %d)", addr, err, s.Wakes())
	}
	if !s.Sleep() {
		t.Fatal("Sleep after waking: false")
	}
	waitFor(t, 10*time.Second, "asleep again", func() bool { return s.PID() == 0 })
}

// TestSleepWaitsForRequests: a set told to sleep while a request is in
// flight keeps its process until the request ends; a Wake while it dozes
// cancels the sleep and the same process serves on.
func TestSleepWaitsForRequests(t *testing.T) {
	m := newManager(t)
	s := start(t, m, handlerSpec())
	pid := s.PID()
	if !s.Acquire() {
		t.Fatal("Acquire")
	}
	before := s.Acquired()
	s.Sleep()
	time.Sleep(100 * time.Millisecond)
	if s.PID() != pid || syscall.Kill(pid, 0) != nil {
		t.Fatal("the process stopped with a request in flight")
	}
	addr, err := s.Wake(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.PID() != pid || s.Wakes() != 0 || s.Idle() {
		t.Errorf("a Wake while dozing: pid %d (want %d), wakes %d, idle %v; want the same process, awake", s.PID(), pid, s.Wakes(), s.Idle())
	}
	if got := get(t, addr, "/pid"); got == "" {
		t.Error("no answer after the cancelled sleep")
	}
	s.Release()
	if !s.Acquire() {
		t.Fatal("Acquire")
	}
	s.Release()
	if s.Acquired() == before {
		t.Error("Acquired did not change after an Acquire")
	}
	if s.InFlight() != 0 {
		t.Errorf("InFlight = %d, want 0", s.InFlight())
	}
}

// TestStopWhileAsleep: Stop of a sleeping set ends it at once, and a Wake
// after it fails with ErrStopped instead of waiting.
func TestStopWhileAsleep(t *testing.T) {
	m := newManager(t)
	s := start(t, m, handlerSpec())
	s.Sleep()
	waitFor(t, 10*time.Second, "asleep", func() bool { return s.PID() == 0 })
	done := make(chan error, 1)
	go func() { done <- s.Stop(time.Second) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop of a sleeping set did not return")
	}
	if _, err := s.Wake(context.Background()); !errors.Is(err, ErrStopped) {
		t.Errorf("Wake after Stop = %v, want ErrStopped", err)
	}
}

// TestWakeFailure: a handler that cannot start again fails every waiting
// Wake with the start's error, and the set sleeps on.
func TestWakeFailure(t *testing.T) {
	m := newManager(t)
	dir := t.TempDir()
	flag := dir + "/exit"
	s := start(t, m, handlerSpec("HANDLER_EXIT_IF="+flag))
	s.Sleep()
	waitFor(t, 10*time.Second, "asleep", func() bool { return s.PID() == 0 })
	if err := writeFile(flag); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Wake(ctx); err == nil || !errors.Is(err, ErrExited) {
		t.Fatalf("Wake of a handler that exits at start = %v, want ErrExited", err)
	}
	if !s.Idle() {
		t.Error("after a failed wake the set is not idle")
	}
}

func writeFile(path string) error { return os.WriteFile(path, nil, 0o644) }

// TestStartAsleep: a set started asleep runs nothing until its first Wake,
// which starts the handler; Stop before any Wake ends it cleanly.
func TestStartAsleep(t *testing.T) {
	m := newManager(t)
	s, err := m.StartAsleep(handlerSpec())
	if err != nil {
		t.Fatal(err)
	}
	if s.PID() != 0 || !s.Idle() {
		t.Fatalf("started asleep: pid %d, idle %v", s.PID(), s.Idle())
	}
	if _, ok := s.Addr(); ok {
		t.Fatal("a set started asleep has an address")
	}
	addr, err := s.Wake(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, addr, "/"); got != "ok\n" || s.PID() == 0 || s.Idle() {
		t.Fatalf("after Wake: GET / = %q, pid %d, idle %v", got, s.PID(), s.Idle())
	}
	if err := s.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	s2, err := m.StartAsleep(handlerSpec())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s2.Stop(time.Second) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop of a set that never woke did not return")
	}
}

// TestSleepWhileDown: the reaper may put a set to sleep while its handler
// is down after a crash. Whether the restart succeeds or keeps failing,
// the set then sleeps with no address published, and the next Wake starts
// a handler that answers (or fails fast with why), instead of handing out
// a dead address or blocking.
func TestSleepWhileDown(t *testing.T) {
	t.Run("the restart would succeed", func(t *testing.T) {
		m := newManager(t)
		s := start(t, m, handlerSpec())
		http.Get("http://" + mustAddr(t, s) + "/crash")
		waitFor(t, 5*time.Second, "down", func() bool { _, ok := s.Addr(); return !ok })
		if !s.Sleep() {
			t.Fatal("Sleep of a crashed set: false")
		}
		waitFor(t, 10*time.Second, "asleep", func() bool { return s.PID() == 0 && s.Idle() })
		time.Sleep(300 * time.Millisecond) // past the restart back-off
		if a, ok := s.Addr(); ok {
			t.Fatalf("asleep with address %s published", a)
		}
		addr, err := s.Wake(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := get(t, addr, "/"); got != "ok\n" {
			t.Fatalf("GET / after waking = %q", got)
		}
	})
	t.Run("the restart keeps failing", func(t *testing.T) {
		m := newManager(t)
		flag := t.TempDir() + "/exit"
		s := start(t, m, handlerSpec("HANDLER_EXIT_IF="+flag))
		addr := mustAddr(t, s)
		if err := writeFile(flag); err != nil {
			t.Fatal(err)
		}
		http.Get("http://" + addr + "/crash")
		waitFor(t, 5*time.Second, "down", func() bool { _, ok := s.Addr(); return !ok })
		s.Sleep()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		if _, err := s.Wake(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wake of a set whose handler cannot start = %v after %v, want the start's error", err, time.Since(start))
		}
	})
}

// TestWakeFailureBacksOff: a build that cannot start is not forked at
// every Wake: after a failed start, Wakes fail fast until the back-off.
func TestWakeFailureBacksOff(t *testing.T) {
	m := newManager(t)
	var starts atomic.Int64
	spec := handlerSpec("HANDLER_EXIT=3")
	spec.Log = func(stream, line string) {
		if stream == "stderr" && strings.Contains(line, "exiting with 3") {
			starts.Add(1)
		}
	}
	s, err := m.StartAsleep(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(0) })
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := s.Wake(context.Background()); err == nil {
			t.Fatal("a handler that exits at once woke")
		}
	}
	// Back-off from 100ms doubling: 100+200+400+800ms fit in 2s.
	if n := starts.Load(); n < 2 || n > 6 {
		t.Errorf("%d starts in 2s of Wakes, want a handful (back-off)", n)
	}
	if s.RetryAfter() <= 0 {
		t.Error("RetryAfter after a failed start is 0, want the back-off left")
	}
}
