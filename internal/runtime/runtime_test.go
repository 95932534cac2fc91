package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// handlerPath is the test handler built by TestMain from testdata/handler.
var handlerPath string

func TestMain(m *testing.M) {
	if os.Getenv("HOTSWAP_RUNTIME_CHILD") == "1" {
		runChild()
		return
	}
	dir, err := os.MkdirTemp("", "hotswap-runtime-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	handlerPath = filepath.Join(dir, "handler")
	build := exec.Command("go", "build", "-o", handlerPath, "./testdata/handler/main.go")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build test handler: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runChild is the helper process of TestPdeathsig: it starts a handler,
// prints its pid and blocks until killed.
// With HOTSWAP_RUNTIME_GUARD=id it guards the Manager with id, and the
// handler starts an orphan child, whose pid follows the handler's.
func runChild() {
	m := NewManager(nil)
	var env []string
	if id := os.Getenv("HOTSWAP_RUNTIME_GUARD"); id != "" {
		if err := m.Guard(id, nil); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
	}
	if os.Getenv("HOTSWAP_RUNTIME_ORPHAN") == "1" {
		env = append(env, "HANDLER_CHILD=orphan")
	}
	if name := os.Getenv("HOTSWAP_RUNTIME_USER"); name != "" {
		u, err := LookupUser(name)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		m.User = u
	}
	s, err := m.Start(context.Background(), Spec{Path: os.Getenv("HOTSWAP_RUNTIME_HANDLER"), Env: env, StartTimeout: 10 * time.Second})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	addr, _ := s.Addr()
	resp, err := http.Get("http://" + addr + "/child")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	child, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(s.PID(), string(child))
	select {}
}

// lines collects the output passed to Spec.Log.
type lines struct {
	mu sync.Mutex
	l  []string // "stream: text"
}

func (l *lines) log(stream, line string) {
	l.mu.Lock()
	l.l = append(l.l, stream+": "+line)
	l.mu.Unlock()
}

// find returns the first line with prefix, without the prefix.
func (l *lines) find(prefix string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.l {
		if rest, ok := strings.CutPrefix(s, prefix); ok {
			return rest, true
		}
	}
	return "", false
}

// pidLine returns the pid the handler printed as "stderr: <key>=N".
func (l *lines) pidLine(t testing.TB, key string) int {
	t.Helper()
	s, ok := l.find("stderr: " + key + "=")
	if !ok {
		t.Fatalf("no %s= line in handler output %q", key, l.l)
	}
	pid, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func newManager(t testing.TB) *Manager {
	t.Helper()
	m := NewManager(nil)
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

func handlerSpec(env ...string) Spec {
	return Spec{Path: handlerPath, Env: env, StartTimeout: 10 * time.Second}
}

func start(t testing.TB, m *Manager, spec Spec) *Set {
	t.Helper()
	s, err := m.Start(context.Background(), spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Stop(0) })
	return s
}

func get(t testing.TB, addr, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return string(b)
}

func mustAddr(t testing.TB, s *Set) string {
	t.Helper()
	addr, ok := s.Addr()
	if !ok {
		t.Fatal("Addr: ok = false, want true")
	}
	return addr
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gone reports whether no live process has pid. A zombie counts as gone: an
// orphan killed by the kernel waits for init to reap it.
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func waitGone(t testing.TB, timeout time.Duration, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		waitFor(t, timeout, fmt.Sprintf("process %d to be gone", pid), func() bool { return gone(pid) })
	}
}

func TestStart(t *testing.T) {
	t.Setenv("HOTSWAP_TEST_SECRET", "server-only")
	var out lines
	m := newManager(t)
	spec := handlerSpec("GREETING=hello", "FUNCTIONS_CUSTOMHANDLER_PORT=1",
		"HANDLER_STDOUT=to stdout", "HANDLER_STDERR=to stderr", "HANDLER_LONG=100000")
	spec.Log = out.log
	s := start(t, m, spec)

	addr := mustAddr(t, s)
	_, port, _ := strings.Cut(addr, ":")
	if got, want := get(t, addr, "/pid"), strconv.Itoa(s.PID()); got != want {
		t.Errorf("handler pid = %s, want PID() = %s", got, want)
	}
	tests := []struct{ key, want string }{
		{"FUNCTIONS_CUSTOMHANDLER_PORT", port},
		{"FUNCTIONS_HTTPWORKER_PORT", port},
		{"GREETING", "hello"},
		{"PATH", os.Getenv("PATH")},
		{"HOTSWAP_TEST_SECRET", ""}, // not inherited
	}
	for _, tc := range tests {
		t.Run("env/"+tc.key, func(t *testing.T) {
			if got := get(t, addr, "/env?k="+tc.key); got != tc.want {
				t.Errorf("%s = %q, want %q", tc.key, got, tc.want)
			}
		})
	}

	t.Run("log", func(t *testing.T) {
		waitFor(t, 5*time.Second, "after-long on stdout", func() bool {
			_, ok := out.find("stdout: after-long")
			return ok
		})
		for _, want := range []string{"stdout: to stdout", "stderr: to stderr"} {
			if _, ok := out.find(want); !ok {
				t.Errorf("Log did not receive %q", want)
			}
		}
		long, ok := out.find("stdout: xxx")
		if got, want := len(long)+len("xxx"), MaxLineLength; !ok || got != want {
			t.Errorf("long line: got %d bytes (found %v), want cut to %d", got, ok, want)
		}
	})

	if s.Restarts() != 0 {
		t.Errorf("Restarts() = %d, want 0", s.Restarts())
	}
}

func TestStartFailure(t *testing.T) {
	exitFile := filepath.Join(t.TempDir(), "exit")
	if err := os.WriteFile(exitFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		spec    Spec
		ctx     func() (context.Context, context.CancelFunc)
		wantErr error  // errors.Is, or nil to only want an error
		wantMsg string // in the error
		started bool   // a process was started and must be gone
	}{
		{name: "missing absolute path", spec: Spec{Path: "/nonexistent/handler"}, wantMsg: "/nonexistent/handler"},
		{name: "missing in PATH", spec: Spec{Path: "hotswap-no-such-handler"}, wantErr: exec.ErrNotFound},
		{name: "missing dir", spec: Spec{Path: handlerPath, Dir: "/nonexistent"}, wantMsg: "/nonexistent"},
		{name: "exits before ready", spec: handlerSpec("HANDLER_EXIT=3"),
			wantErr: ErrExited, wantMsg: "handler: exiting with 3", started: true},
		{name: "exit file", spec: handlerSpec("HANDLER_EXIT_IF=" + exitFile),
			wantErr: ErrExited, wantMsg: "exit status 4", started: true},
		{name: "start timeout", spec: Spec{Path: handlerPath, StartTimeout: 300 * time.Millisecond,
			Env: []string{"HANDLER_SLEEP=1h", "HANDLER_CHILD=1", "HANDLER_STDERR=still sleeping"}},
			wantErr: ErrStartTimeout, wantMsg: "still sleeping", started: true},
		{name: "context cancelled", spec: handlerSpec("HANDLER_SLEEP=1h"),
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 300*time.Millisecond)
			},
			wantErr: context.DeadlineExceeded, started: true},
	}
	m := newManager(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out lines
			tc.spec.Log = out.log
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tc.ctx != nil {
				ctx, cancel = tc.ctx()
			}
			defer cancel()
			s, err := m.Start(ctx, tc.spec)
			if err == nil {
				s.Stop(0)
				t.Fatal("Start: no error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Start error %q is not %q", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Start error %q does not contain %q", err, tc.wantMsg)
			}
			if !tc.started {
				return
			}
			pids := []int{out.pidLine(t, "pid")}
			if _, ok := out.find("stderr: child="); ok {
				pids = append(pids, out.pidLine(t, "child"))
			}
			for _, pid := range pids {
				if !gone(pid) {
					t.Errorf("process %d still running after Start failed", pid)
				}
			}
		})
	}
}

func TestCrashRestart(t *testing.T) {
	tests := []struct {
		name  string
		crash func(t testing.TB, s *Set)
	}{
		{"SIGKILL", func(t testing.TB, s *Set) {
			if err := syscall.Kill(s.PID(), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}},
		{"exit", func(t testing.TB, s *Set) {
			http.Get("http://" + mustAddr(t, s) + "/crash") // the handler exits: no response
		}},
	}
	m := newManager(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, m, handlerSpec())
			addr, pid := mustAddr(t, s), s.PID()
			tc.crash(t, s)
			waitFor(t, 5*time.Second, "Addr ok=false after crash", func() bool {
				_, ok := s.Addr()
				return !ok
			})
			if d := s.RetryAfter(); d > minBackoff {
				t.Errorf("RetryAfter() = %v, want <= %v", d, minBackoff)
			}
			waitFor(t, 5*time.Second, "restart", func() bool {
				_, ok := s.Addr()
				return ok
			})
			if got := mustAddr(t, s); got != addr {
				t.Errorf("Addr after restart = %s, want the same port %s", got, addr)
			}
			if s.PID() == pid || s.PID() == 0 {
				t.Errorf("PID after restart = %d, old %d", s.PID(), pid)
			}
			if got, want := get(t, mustAddr(t, s), "/pid"), strconv.Itoa(s.PID()); got != want {
				t.Errorf("handler pid = %s, want %s", got, want)
			}
			if got := s.Restarts(); got != 1 {
				t.Errorf("Restarts() = %d, want 1", got)
			}
			if s.RetryAfter() != 0 {
				t.Errorf("RetryAfter() = %v while up, want 0", s.RetryAfter())
			}
		})
	}
}

// TestStopWhileRestarting stops a set whose restarts keep failing.
func TestStopWhileRestarting(t *testing.T) {
	exitFile := filepath.Join(t.TempDir(), "exit")
	m := newManager(t)
	s := start(t, m, handlerSpec("HANDLER_EXIT_IF="+exitFile))
	if err := os.WriteFile(exitFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	pid := s.PID()
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, 5*time.Second, "a pending restart after failures", func() bool {
		return s.RetryAfter() > minBackoff // backoff grew: a restart failed
	})
	if _, ok := s.Addr(); ok {
		t.Error("Addr ok while restarts fail")
	}
	// Nothing is running, so Stop must neither wait out the grace nor the
	// backoff; the margin between 2 s and the 5 s grace absorbs a loaded CI.
	begin := time.Now()
	if err := s.Stop(5 * time.Second); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("Stop took %v during backoff", d)
	}
	if s.Restarts() != 0 || s.PID() != 0 {
		t.Errorf("Restarts() = %d, PID() = %d, want 0, 0", s.Restarts(), s.PID())
	}
	waitGone(t, 5*time.Second, pid)
}

func TestStop(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		grace    time.Duration
		minTime  time.Duration // Stop takes at least
		maxTime  time.Duration // and at most
		hasChild bool
	}{
		{name: "graceful", grace: 5 * time.Second, maxTime: 2 * time.Second},
		{name: "ignores SIGTERM", env: []string{"HANDLER_IGNORE_TERM=1"},
			grace: 300 * time.Millisecond, minTime: 300 * time.Millisecond, maxTime: 3 * time.Second},
		{name: "zero grace", env: []string{"HANDLER_IGNORE_TERM=1"}, maxTime: 2 * time.Second},
		{name: "child process", env: []string{"HANDLER_CHILD=1"},
			grace: 5 * time.Second, maxTime: 3 * time.Second, hasChild: true},
		{name: "child process, ignores SIGTERM", env: []string{"HANDLER_CHILD=1", "HANDLER_IGNORE_TERM=1"},
			grace: 300 * time.Millisecond, minTime: 300 * time.Millisecond, maxTime: 3 * time.Second, hasChild: true},
	}
	m := newManager(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, m, handlerSpec(tc.env...))
			addr := mustAddr(t, s)
			pids := []int{s.PID()}
			if tc.hasChild {
				child, err := strconv.Atoi(get(t, addr, "/child"))
				if err != nil || child == 0 {
					t.Fatalf("child pid: %v %d", err, child)
				}
				pids = append(pids, child)
			}
			begin := time.Now()
			if err := s.Stop(tc.grace); err != nil {
				t.Errorf("Stop: %v", err)
			}
			if d := time.Since(begin); d < tc.minTime || d > tc.maxTime {
				t.Errorf("Stop took %v, want in [%v, %v]", d, tc.minTime, tc.maxTime)
			}
			for _, pid := range pids {
				if !gone(pid) {
					t.Errorf("process %d still running after Stop", pid)
				}
			}
			select {
			case <-s.Done():
			default:
				t.Error("Done not closed after Stop")
			}
			if _, ok := s.Addr(); ok {
				t.Error("Addr ok after Stop")
			}
			if s.Acquire() {
				t.Error("Acquire true after Stop")
			}
			if s.PID() != 0 {
				t.Errorf("PID() = %d after Stop", s.PID())
			}
			if err := s.Stop(tc.grace); err != nil { // idempotent
				t.Errorf("second Stop: %v", err)
			}
		})
	}
}

func TestStopConcurrent(t *testing.T) {
	m := newManager(t)
	s := start(t, m, handlerSpec())
	pid := s.PID()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { s.Stop(time.Second) })
	}
	syscall.Kill(pid, syscall.SIGKILL) // a crash racing the stops
	wg.Wait()
	waitGone(t, 5*time.Second, pid)
	if _, ok := s.Addr(); ok || s.PID() != 0 {
		t.Errorf("after Stop: Addr ok %v, PID %d", ok, s.PID())
	}
}

func TestManagerClose(t *testing.T) {
	m := NewManager(nil)
	m.StopGrace = 300 * time.Millisecond
	var sets []*Set
	var pids []int
	for _, env := range [][]string{nil, {"HANDLER_IGNORE_TERM=1"}, {"HANDLER_CHILD=1"}} {
		s, err := m.Start(context.Background(), handlerSpec(env...))
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, s)
		pids = append(pids, s.PID())
	}
	child, err := strconv.Atoi(get(t, mustAddr(t, sets[2]), "/child"))
	if err != nil {
		t.Fatal(err)
	}
	pids = append(pids, child)

	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("process %d still running after Close", pid)
		}
	}
	for i, s := range sets {
		select {
		case <-s.Done():
		default:
			t.Errorf("set %d: Done not closed after Close", i)
		}
	}
	if _, err := m.Start(context.Background(), handlerSpec()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := sets[0].Stop(time.Second); err != nil {
		t.Errorf("Stop after Close: %v", err)
	}
}

// TestCloseDuringStart closes the Manager while a Start waits for readiness.
func TestCloseDuringStart(t *testing.T) {
	m := NewManager(nil)
	var out lines
	spec := handlerSpec("HANDLER_SLEEP=1h")
	spec.Log = out.log
	errc := make(chan error, 1)
	go func() {
		_, err := m.Start(context.Background(), spec)
		errc <- err
	}()
	waitFor(t, 5*time.Second, "handler started", func() bool {
		_, ok := out.find("stderr: pid=")
		return ok
	})
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("Start: %v, want ErrClosed", err)
	}
	waitGone(t, 5*time.Second, out.pidLine(t, "pid"))
}

// killedServer runs runChild as a separate "server" process, guarded with
// guard unless it is empty, its handler starting an orphan when orphan is
// set; it SIGKILLs that server once the handler runs and returns the pids
// of the handler and of its orphan (0 when none). env is added to the
// server's environment.
func killedServer(t *testing.T, guard string, orphan bool, env ...string) (handler, child int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HOTSWAP_RUNTIME_CHILD=1", "HOTSWAP_RUNTIME_HANDLER="+handlerPath, "HOTSWAP_RUNTIME_GUARD="+guard)
	if orphan {
		cmd.Env = append(cmd.Env, "HOTSWAP_RUNTIME_ORPHAN=1")
	}
	cmd.Env = append(cmd.Env, env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("read helper output: %v", err)
	}
	if _, err := fmt.Sscan(line, &handler, &child); err != nil {
		t.Fatalf("helper: %q", line)
	}
	for _, pid := range []int{handler, child} {
		if pid != 0 {
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
			if gone(pid) {
				t.Fatalf("process %d not running", pid)
			}
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	return handler, child
}

// TestPdeathsig kills the server with SIGKILL and checks that its handler
// dies too.
func TestPdeathsig(t *testing.T) {
	handler, _ := killedServer(t, "", false)
	waitGone(t, 2*time.Second, handler)
}

// TestWarden: a handler's own child that left its process group and
// session survives a server SIGKILL unless the Manager is guarded; with the
// warden it dies too.
func TestWarden(t *testing.T) {
	t.Run("unguarded", func(t *testing.T) {
		handler, orphan := killedServer(t, "", true)
		waitGone(t, 2*time.Second, handler)
		time.Sleep(200 * time.Millisecond)
		if gone(orphan) {
			t.Fatal("the orphan died without a warden: this test shows nothing")
		}
	})
	t.Run("guarded", func(t *testing.T) {
		handler, orphan := killedServer(t, "test-"+strconv.Itoa(os.Getpid())+"-warden", true)
		waitGone(t, 2*time.Second, handler)
		waitGone(t, 2*time.Second, orphan)
	})
}

// startMarked starts the test handler's sleeping child mode, detached, with
// the mark of id.
func startMarked(t *testing.T, id string) int {
	t.Helper()
	cmd := exec.Command(handlerPath)
	cmd.Env = []string{"HANDLER_MODE=child", MarkEnv + "=" + id}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd.Process.Pid
}

// TestGuard: Guard kills what an earlier run left with its mark and nothing
// else, marks the handlers it starts, a second Guard fails without killing
// them, and Close's sweep ends the warden and what the handlers left.
func TestGuard(t *testing.T) {
	id := "test-" + strconv.Itoa(os.Getpid()) + "-guard"
	left := startMarked(t, id)
	other := startMarked(t, id+"-other")
	m := NewManager(nil)
	if err := m.Guard(id, nil); err != nil {
		t.Fatal(err)
	}
	waitGone(t, 2*time.Second, left)
	if gone(other) {
		t.Error("Guard killed a process with another mark")
	}
	s := start(t, m, handlerSpec())
	addr := mustAddr(t, s)
	if got := get(t, addr, "/env?k="+MarkEnv); got != id {
		t.Errorf("handler's %s = %q, want %q", MarkEnv, got, id)
	}
	if err := m.Guard(id, nil); err == nil {
		t.Error("a second Guard succeeded")
	}
	if gone(s.PID()) {
		t.Fatal("a second Guard killed a running handler")
	}
	straggler := startMarked(t, id) // as if a handler had left it
	warden := m.warden.cmd.Process.Pid
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if !gone(warden) {
		t.Error("the warden outlived Close")
	}
	waitGone(t, 2*time.Second, straggler)
	if gone(other) {
		t.Error("the warden's sweep at Close killed a process with another mark")
	}
	for _, bad := range []string{"", "short", "has space in it", "x/../../etc/passwd", strings.Repeat("a", 65)} {
		m := NewManager(nil)
		if err := m.Guard(bad, nil); err == nil {
			t.Errorf("Guard(%q) succeeded", bad)
		}
		m.Close()
	}
}

// TestGuardHoldsFile: the warden keeps the file given to Guard open until
// its last sweep, so a lock on it outlives the server for that long.
func TestGuardHoldsFile(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "lock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	m := NewManager(nil)
	if err := m.Guard("test-"+strconv.Itoa(os.Getpid())+"-hold", f); err != nil {
		t.Fatal(err)
	}
	f.Close() // only the warden holds the lock now
	g, err := os.Open(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := syscall.Flock(int(g.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("lock while the warden runs: %v, want EWOULDBLOCK", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(g.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Errorf("lock after the warden ended: %v", err)
	}
}

// TestStopSweepsSet: stopping a set also ends what its handler started
// outside its process group, guarded or not.
func TestStopSweepsSet(t *testing.T) {
	m := newManager(t)
	s := start(t, m, handlerSpec("HANDLER_CHILD=orphan"))
	orphan, err := strconv.Atoi(get(t, mustAddr(t, s), "/child"))
	if err != nil || orphan == 0 {
		t.Fatalf("orphan pid: %v %d", err, orphan)
	}
	t.Cleanup(func() { syscall.Kill(orphan, syscall.SIGKILL) })
	if gone(orphan) {
		t.Fatal("the orphan is not running")
	}
	if err := s.Stop(time.Second); err != nil {
		t.Errorf("Stop: %v", err)
	}
	waitGone(t, 2*time.Second, orphan)
}

func TestDrain(t *testing.T) {
	m := newManager(t)
	s := start(t, m, handlerSpec())
	for range 2 {
		if !s.Acquire() {
			t.Fatal("Acquire false on a running set")
		}
	}
	if got := s.InFlight(); got != 2 {
		t.Errorf("InFlight() = %d, want 2", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain with requests in flight: %v, want DeadlineExceeded", err)
	}

	s.Release()
	released := make(chan time.Time, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		released <- time.Now()
		s.Release()
	}()
	if err := s.Drain(context.Background()); err != nil {
		t.Errorf("Drain: %v", err)
	}
	if done := time.Now(); done.Before(<-released) {
		t.Error("Drain returned before the last Release")
	}
	if err := s.Drain(context.Background()); err != nil {
		t.Errorf("Drain when idle: %v", err)
	}
	s.Stop(time.Second)
	if s.Acquire() {
		t.Error("Acquire true after Stop")
	}
	if got := s.InFlight(); got != 0 {
		t.Errorf("InFlight() = %d after failed Acquire, want 0", got)
	}
}

// A retiring set is Stopping while its requests drain, and Stopped only
// once Stop terminates its handler: a trigger tells a function the drain
// lets finish from one the server cut off by these.
func TestStoppedOnlyOnStop(t *testing.T) {
	m := newManager(t)
	s := start(t, m, handlerSpec())
	if !s.Acquire() {
		t.Fatal("Acquire false on a running set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	s.Retire(ctx) // a request in flight: drains until ctx ends
	if !s.Stopping() || s.Stopped() {
		t.Errorf("retiring: Stopping %v, Stopped %v; want true, false", s.Stopping(), s.Stopped())
	}
	stopped := make(chan struct{})
	go func() { defer close(stopped); s.Stop(time.Second) }()
	waitFor(t, 5*time.Second, "Stopped after Stop", s.Stopped)
	s.Release()
	<-stopped
}

// TestRequestPathAllocs checks that the methods called per request do not allocate.
func TestRequestPathAllocs(t *testing.T) {
	m := newManager(t)
	s := start(t, m, handlerSpec())
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := s.Addr(); !ok {
			t.Fatal("Addr not ok")
		}
		if s.Acquire() {
			s.Release()
		}
		s.RetryAfter()
	})
	if allocs != 0 {
		t.Errorf("Addr+Acquire+Release+RetryAfter: %v allocations, want 0", allocs)
	}
}
