// Package runtime starts, supervises and stops custom-handler processes: the
// executables of function apps in the Azure Functions custom-handler layout.
//
// A [Manager] owns every process it starts. [Manager.Start] starts a process
// set for a [Spec] and returns once the handler answers HTTP on its loopback
// port. The returned [Set] restarts a handler that exits unexpectedly, with
// exponential backoff, and publishes the current address lock-free for the data
// plane ([Set.Addr], [Set.Acquire], [Set.Release]).
//
// Processes never outlive the server: each handler runs in its own process
// group with a parent-death signal of SIGKILL, forked from an OS thread that
// lives as long as the Manager, so the kernel kills it even when the server is
// killed with SIGKILL. What a handler starts itself is covered by the warden
// of a guarded Manager ([Manager.Guard]). Stopping sends SIGTERM to the whole
// group, then SIGKILL after a grace period.
//
// A Manager started by root can run handlers as an unprivileged [User]
// ([Manager.User]), each set with a private home ([Manager.Homes]), so a
// handler cannot read what the server keeps to itself.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Errors returned by Start, compared with errors.Is. The error also says which
// process and carries its last stderr lines.
var (
	// ErrExited means the process exited before it was ready.
	ErrExited = errors.New("process exited before ready")
	// ErrStartTimeout means the process was not ready within Spec.StartTimeout.
	ErrStartTimeout = errors.New("process not ready before start timeout")
	// ErrClosed means the Manager is closed.
	ErrClosed = errors.New("runtime manager closed")
)

// Defaults.
const (
	// DefaultStartTimeout is used when Spec.StartTimeout is zero (as Azure).
	DefaultStartTimeout = 60 * time.Second
	// DefaultStopGrace is used by Manager.Close when Manager.StopGrace is zero.
	DefaultStopGrace = 10 * time.Second
	// MaxLineLength is the longest line passed to Spec.Log; longer lines are cut.
	MaxLineLength = 64 << 10
)

const (
	readyPoll       = 15 * time.Millisecond
	readyFirstPoll  = 500 * time.Microsecond
	readyFastFor    = 100 * time.Millisecond
	readyTryTimeout = time.Second
	minBackoff      = 100 * time.Millisecond
	maxBackoff      = 10 * time.Second
	healthyRun      = 30 * time.Second // a run this long resets the backoff
	stderrTailLines = 10
)

// Spec describes a process set to start.
type Spec struct {
	// Name identifies the set in logs and errors, e.g. "app/slot@hash".
	// Empty means Path.
	Name string
	// Dir is the working directory of the process; empty means the server's.
	Dir string
	// Path is the executable: an absolute path, a path relative to Dir, or a
	// bare name looked up in the server's PATH.
	Path string
	// Args are the arguments, without the program name.
	Args []string
	// Env is extra environment, "K=V". The process does not inherit the
	// server's environment: it gets PATH, HOME, LANG and TMPDIR from it (when
	// set), then Env, then FUNCTIONS_CUSTOMHANDLER_PORT and
	// FUNCTIONS_HTTPWORKER_PORT, which the Manager sets.
	Env []string
	// StartTimeout bounds the wait until the process is ready, for the first
	// start and for each restart. Zero means DefaultStartTimeout.
	StartTimeout time.Duration
	// Log, if not nil, receives each line of output, stream being "stdout" or
	// "stderr", without the line ending, and the set's own account of
	// crashes and restarts, stream "host". Lines longer than MaxLineLength are
	// cut. Calls for one process come from one goroutine, in order per stream.
	// Log must not block for long: the handler never waits for it, and lines
	// are dropped (and counted in the server log) when it falls behind.
	Log func(stream, line string)
}

func (s *Spec) name() string {
	if s.Name != "" {
		return s.Name
	}
	return s.Path
}

func (s *Spec) startTimeout() time.Duration {
	if s.StartTimeout > 0 {
		return s.StartTimeout
	}
	return DefaultStartTimeout
}

// Manager starts process sets and owns every process it started. Its methods
// are safe for concurrent use.
type Manager struct {
	// StopGrace is how long Close waits after SIGTERM before SIGKILL.
	// Zero means DefaultStopGrace. Set it before calling Start.
	StopGrace time.Duration

	// User, if not nil, is the account handler processes run as, with its
	// primary group and no supplementary groups. Switching to it needs
	// root. Nil runs them as the server's user. Set it before calling Start.
	User *User

	// Homes, if not empty, is an existing directory in which each process
	// set gets a private home, Homes/<set id>: created (0700, owned by User)
	// before the set's first process starts, passed as HOME and TMPDIR,
	// and removed once the set is stopped. Empty passes the server's HOME
	// and TMPDIR. Set it before calling Start.
	Homes string

	log    *slog.Logger
	client *http.Client // readiness probes

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	forkc     chan forkRequest
	forkStop  chan struct{}
	forkDone  chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	closed   bool
	sets     map[*Set]struct{}
	guarding bool           // Guard was called
	mark     string         // MarkEnv=id once guarded; see Guard
	warden   *warden        // nil unless guarded
	wg       sync.WaitGroup // Start calls in progress and supervisors
}

type forkRequest struct {
	cmd  *exec.Cmd
	errc chan error
}

// NewManager returns a Manager logging to logger (nil discards). Call Close to
// stop its processes.
func NewManager(logger *slog.Logger) *Manager {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		log: logger,
		client: &http.Client{
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		ctx:      ctx,
		cancel:   cancel,
		forkc:    make(chan forkRequest),
		forkStop: make(chan struct{}),
		forkDone: make(chan struct{}),
		sets:     make(map[*Set]struct{}),
	}
	go m.forker()
	return m
}

// forker starts every process of the Manager from one OS thread. The kernel
// sends a child its parent-death signal when the thread that forked it exits,
// not the process, and the Go runtime may end any thread when a goroutine
// locked to it returns. So the children are forked from a thread that this
// goroutine keeps locked until Close, after all of them are gone.
func (m *Manager) forker() {
	goruntime.LockOSThread()
	// No UnlockOSThread: returning while locked ends the thread, which is what
	// we want once every child is gone.
	defer close(m.forkDone)
	for {
		select {
		case req := <-m.forkc:
			req.errc <- req.cmd.Start()
		case <-m.forkStop:
			return
		}
	}
}

func (m *Manager) fork(cmd *exec.Cmd) (*exec.Cmd, error) {
	// ETXTBSY: the executable was written moments ago (a deploy), and a
	// process forked elsewhere in this server at that moment still holds
	// the write descriptor until it execs (golang/go#22315). It goes away by
	// itself; try again, on a fresh Cmd since one cannot start twice.
	delay := 5 * time.Millisecond
	for try := 0; ; try++ {
		err := m.forkOnce(cmd)
		if !errors.Is(err, syscall.ETXTBSY) || try == 8 {
			return cmd, err
		}
		time.Sleep(delay)
		delay *= 2
		cmd = cloneCmd(cmd)
	}
}

// cloneCmd returns a Cmd that has not been started, set up as cmd.
func cloneCmd(cmd *exec.Cmd) *exec.Cmd {
	c := exec.Command(cmd.Path)
	c.Args, c.Env, c.Dir = cmd.Args, cmd.Env, cmd.Dir
	c.Stdin, c.Stdout, c.Stderr = cmd.Stdin, cmd.Stdout, cmd.Stderr
	c.ExtraFiles, c.SysProcAttr = cmd.ExtraFiles, cmd.SysProcAttr
	c.Cancel, c.WaitDelay = cmd.Cancel, cmd.WaitDelay
	return c
}

func (m *Manager) forkOnce(cmd *exec.Cmd) error {
	req := forkRequest{cmd: cmd, errc: make(chan error, 1)}
	select {
	case m.forkc <- req:
		return <-req.errc
	case <-m.forkDone:
		return ErrClosed
	}
}

// Close stops every process set (SIGTERM to each process group, SIGKILL after
// StopGrace), waits for them and for the Manager's goroutines. Start fails with
// ErrClosed afterwards. Close is idempotent and returns the first error of
// Set.Stop.
func (m *Manager) Close() error {
	var err error
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		sets := make([]*Set, 0, len(m.sets))
		for s := range m.sets {
			sets = append(sets, s)
		}
		m.mu.Unlock()
		m.cancel() // aborts Start calls in progress

		grace := m.StopGrace
		if grace <= 0 {
			grace = DefaultStopGrace
		}
		errs := make([]error, len(sets))
		var wg sync.WaitGroup
		for i, s := range sets {
			wg.Go(func() { errs[i] = s.Stop(grace) })
		}
		wg.Wait()
		m.wg.Wait()
		close(m.forkStop)
		<-m.forkDone
		m.mu.Lock()
		w := m.warden
		m.mu.Unlock()
		if w != nil {
			errs = append(errs, w.stop())
		}
		err = errors.Join(errs...)
	})
	return err
}

// Start starts a process set for spec and returns it once ready: it picks a
// free loopback port, starts the process in its own process group and polls
// GET / on 127.0.0.1:port until any HTTP response. Start fails, leaving no
// process behind, if the process exits before ready (ErrExited), is not ready
// within spec.StartTimeout (ErrStartTimeout), ctx is done (ctx.Err()) or the
// Manager is closed (ErrClosed). The error includes the last stderr lines.
func (m *Manager) Start(ctx context.Context, spec Spec) (*Set, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("start %s: %w", spec.name(), ErrClosed)
	}
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(m.ctx, func() { cancel(ErrClosed) })
	defer stop()

	s := newSet(m, spec)
	if err := s.makeHome(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.name(), err)
	}
	p, err := s.startReady(ctx, 0)
	if err != nil {
		s.removeHome()
		return nil, err
	}

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		p.terminate(0, s.log)
		s.removeHome()
		return nil, fmt.Errorf("start %s: %w", spec.name(), ErrClosed)
	}
	m.sets[s] = struct{}{}
	m.wg.Add(1)
	m.mu.Unlock()
	s.publish(p)
	go s.supervise(p)
	return s, nil
}

// StartAsleep returns a set of spec without starting its process: the set
// is asleep (see Set.Sleep), and the first Wake starts it. A server
// starting many slots that may idle starts them so, and pays each start
// only when something needs it.
func (m *Manager) StartAsleep(spec Spec) (*Set, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("start %s: %w", spec.name(), ErrClosed)
	}
	s := newSet(m, spec)
	if err := s.makeHome(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.name(), err)
	}
	s.state.Store(asleep)
	m.sets[s] = struct{}{}
	m.wg.Add(1)
	go s.supervise(nil)
	return s, nil
}

func (m *Manager) remove(s *Set) {
	m.mu.Lock()
	delete(m.sets, s)
	m.mu.Unlock()
}

// freePort returns port if it can be bound on loopback (to reuse the port of a
// restarted process), or else a free port chosen by the kernel.
func freePort(port int) (int, error) {
	if port != 0 {
		if ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			ln.Close()
			return port, nil
		}
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// environ returns the environment of a handler process; a non-empty home
// replaces the server's HOME and TMPDIR.
func environ(extra []string, port int, home string, marks []string) []string {
	env := make([]string, 0, 8+len(marks)+len(extra))
	for _, k := range [...]string{"PATH", "HOME", "LANG", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok && (home == "" || k == "PATH" || k == "LANG") {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, extra...)
	p := strconv.Itoa(port)
	// Last wins: exec.Cmd drops earlier duplicates, so spec.Env cannot override.
	env = append(env, "FUNCTIONS_CUSTOMHANDLER_PORT="+p, "FUNCTIONS_HTTPWORKER_PORT="+p)
	if home != "" {
		env = append(env, "HOME="+home, "TMPDIR="+home)
	}
	for _, m := range marks {
		if m != "" {
			env = append(env, m)
		}
	}
	return env
}

// command builds the exec.Cmd of a handler process, run as user when not nil.
func command(spec *Spec, port int, user *User, home string, marks ...string) *exec.Cmd {
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = spec.Dir
	cmd.Env = environ(spec.Env, port, home, marks)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// The child sets its parent-death signal after switching to user
		// (the kernel clears it on a change of credentials), so it holds
		// for a handler running as another user too.
		Pdeathsig: syscall.SIGKILL,
	}
	if user != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: user.UID, Gid: user.GID, Groups: []uint32{}}
	}
	return cmd
}
