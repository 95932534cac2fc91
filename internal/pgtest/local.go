package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Limits of starting a local server; initdb alone takes seconds on a
// loaded two-core machine.
const (
	initdbTimeout = 3 * time.Minute
	readyTimeout  = 90 * time.Second
	stopTimeout   = 15 * time.Second
	bindAttempts  = 5
)

// maxConnections is the local server's max_connections: several hotswap
// nodes per test each hold a pool, and tests run in parallel.
const maxConnections = 200

// dirPrefix names the temp folders of local servers, so a later process
// can find and remove those a killed process left behind.
const dirPrefix = "hotswap-pgtest-"

// process is a local postgres this package started.
type process struct {
	dir  string        // temp folder: data/, the unix socket, postgres.log, lock
	pid  int           // the postmaster's pid
	done chan struct{} // closed when postgres has exited
	lock *os.File      // flocked while this process owns dir
}

// findBin returns the folder of PostgreSQL's server programs: initdb's on
// PATH (symlinks resolved, so postgres comes from the same version), else
// the newest /usr/lib/postgresql/<version>/bin, Debian's layout, which is
// not on PATH.
func findBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	var dirs []string
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			dirs = append(dirs, dir)
		}
	}
	if len(dirs) == 0 {
		return "", ErrNotInstalled
	}
	slices.SortFunc(dirs, func(a, b string) int {
		return compareVersions(filepath.Base(filepath.Dir(a)), filepath.Base(filepath.Dir(b)))
	})
	return dirs[len(dirs)-1], nil
}

// compareVersions orders version strings like "9.6", "15" and "16" by
// their numeric parts.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return strings.Compare(a, b)
}

// account returns the credential to run PostgreSQL's programs with: nil
// (ourselves) unless we are root, which initdb and postgres refuse to run
// as; then Debian's postgres user, else nobody.
func account() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
	}
	return nil, errors.New("running as root, and neither user postgres nor nobody exists to run PostgreSQL as")
}

// startLocal initializes and starts a new local server.
func startLocal() (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	cred, err := account()
	if err != nil {
		return nil, err
	}
	sweep()
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	p := &process{dir: dir}
	ok := false
	defer func() {
		if !ok {
			p.stop()
		}
	}()
	// Hold a lock on the folder for as long as this process lives, so sweep
	// in another process knows the folder is in use.
	if p.lock, err = os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600); err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(p.lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	ctx, cancel := context.WithTimeout(context.Background(), initdbTimeout)
	defer cancel()
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "-N")
	initdb.Dir = dir
	initdb.Env = environ()
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	initdb.Stdout, initdb.Stderr = &out, &out
	initdone := make(chan struct{})
	if _, err := startLocked(initdb, initdone); err != nil { // see startLocked
		return nil, fmt.Errorf("initdb: %w", err)
	}
	<-initdone
	if st := initdb.ProcessState; !st.Success() {
		return nil, fmt.Errorf("initdb: %s\n%s", st, tail(out.Bytes()))
	}

	logPath := filepath.Join(dir, "postgres.log")
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		admin := &url.URL{
			Scheme:   "postgres",
			User:     url.User("postgres"),
			Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			Path:     "/postgres",
			RawQuery: "sslmode=disable",
		}
		err = p.start(bin, data, port, logPath, cred)
		if err == nil {
			err = waitReady(admin, p.done)
		}
		if err == nil {
			ok = true
			return &Server{admin: admin, proc: p}, nil
		}
		log, _ := os.ReadFile(logPath)
		p.kill()
		// Another process may have taken the port between freePort and
		// postgres's bind: try another one.
		if attempt < bindAttempts && bytes.Contains(log, []byte("could not bind")) {
			continue
		}
		return nil, fmt.Errorf("postgres: %w\n%s", err, tail(log))
	}
}

// start runs postgres on port, its output appended to logPath.
func (p *process) start(bin, data string, port int, logPath string, cred *syscall.Credential) error {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", data,
		"-p", strconv.Itoa(port),
		"-h", "127.0.0.1",
		"-k", p.dir,
		"-c", "max_connections="+strconv.Itoa(maxConnections),
		"-c", "shared_buffers=64MB",
		// A throwaway server: durability only costs time.
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
	)
	cmd.Dir = p.dir
	cmd.Env = environ()
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Credential: cred,
		// SIGQUIT is postgres's immediate shutdown: the postmaster ends its
		// backends and exits. The kernel clears the parent-death signal on a
		// change of credentials, but the child sets it after switching user.
		Pdeathsig: syscall.SIGQUIT,
	}
	p.done = make(chan struct{})
	pid, err := startLocked(cmd, p.done)
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	p.pid = pid
	return nil
}

// startLocked starts cmd from a goroutine locked to its OS thread, waits
// for it there, and closes done when it has exited. The parent-death
// signal fires when the thread that started the child ends, not the
// process; a locked thread lives until the child is gone, so the signal
// comes only when the whole test process dies.
func startLocked(cmd *exec.Cmd, done chan struct{}) (pid int, err error) {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			close(done)
			return
		}
		started <- nil
		cmd.Wait()
		close(done)
	}()
	if err := <-started; err != nil {
		return 0, err
	}
	return cmd.Process.Pid, nil
}

// waitReady waits until the server at admin takes connections, or fails
// when postgres exits first.
func waitReady(admin *url.URL, exited <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, admin.String())
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited before taking connections")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("takes no connections after %s: %w", readyTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill ends a postgres that is running, without removing its files.
func (p *process) kill() {
	if p.done == nil {
		return
	}
	// SIGQUIT is an immediate shutdown; the whole group gets SIGKILL if
	// that takes too long.
	syscall.Kill(p.pid, syscall.SIGQUIT)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.done
	}
	// Backends exit after the postmaster; wait for the group to be empty so
	// none still writes into the folder that is removed next.
	for i := 0; i < 100 && syscall.Kill(-p.pid, 0) == nil; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Kill(-p.pid, syscall.SIGKILL)
	p.done = nil
}

// stop kills postgres and removes its folder.
func (p *process) stop() {
	p.kill()
	os.RemoveAll(p.dir)
	if p.lock != nil {
		p.lock.Close()
	}
}

// sweep removes the folders of local servers whose test process died
// without Stop (killed, or a package without Main): their lock is free.
// Young folders are skipped: their owner may not hold the lock yet.
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		fi, err := os.Stat(dir)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		f, err := os.Open(filepath.Join(dir, "lock"))
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			os.RemoveAll(dir)
		}
		f.Close()
	}
}

// environ is the environment of initdb and postgres: not ours, whose PG*
// variables would change what they do.
func environ() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "LANG=C"}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the end of a program's output, for an error message.
func tail(b []byte) string {
	const max = 4 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(bytes.TrimSpace(b))
}
