package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The parent-death signal reaches only the handler process the Manager
// forked. Whatever that process starts itself (a wrapper script's real
// server, worker processes, a daemon that called setsid) would outlive a
// server killed with SIGKILL. The warden closes that gap:
//
//   - every process a guarded Manager starts carries MarkEnv=<id> in its
//     environment, which its descendants inherit;
//   - the warden is this same executable, re-executed with WardenEnv=<id>
//     (package init turns it into the warden before main runs, as
//     moby's reexec does). It reads a pipe whose other end only the server
//     holds; when the server dies, however it dies, the pipe reaches EOF and
//     the warden SIGKILLs every process carrying the mark, then exits;
//   - Guard also sweeps the mark when it starts, for the case where the
//     warden was killed together with the server.
//
// A process that drops its environment for its children escapes the mark.

// MarkEnv is the environment variable that marks a guarded Manager's
// processes and their descendants.
const MarkEnv = "HOTSWAP_HOST_ID"

// WardenEnv selects warden mode when set in the environment of this
// executable; its value is the mark to sweep.
const WardenEnv = "HOTSWAP_WARDEN"

// SetMarkEnv marks the processes of one process set and their descendants,
// so stopping the set also ends what its handlers started outside their
// process group (whether or not the Manager is guarded).
const SetMarkEnv = "HOTSWAP_SET_ID"

func init() {
	if id, ok := os.LookupEnv(WardenEnv); ok {
		os.Exit(runWarden(id, os.Stdin))
	}
}

// runWarden waits for EOF on server, then kills the processes marked id.
// Until it exits it holds the file Guard was given (inherited as fd 3, when
// there is one, and never read): the server's data-directory lock, so no
// new server starts handlers with the same mark while this sweep runs.
func runWarden(id string, server io.Reader) int {
	// Only the server's death ends the warden: a service manager's SIGTERM
	// to the whole group, or Ctrl-C, goes to the server, which stops its
	// handlers itself; the warden sweeps after it.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	io.Copy(io.Discard, server)
	if _, err := Sweep(id); err != nil {
		fmt.Fprintln(os.Stderr, "hotswap warden:", err)
		return 1
	}
	return 0
}

// validMark reports whether id can be used as a mark: 8 to 64 characters of
// [0-9A-Za-z_-], so it can be neither empty nor a prefix trick.
func validMark(id string) bool {
	if len(id) < 8 || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Sweep sends SIGKILL to every process whose environment holds MarkEnv=id,
// other than the caller, and repeats until a pass finds no process it has
// not signalled yet (one may fork while it is being killed). It returns how
// many processes it signalled. Processes of other users, which /proc does
// not let it read, are skipped.
func Sweep(id string) (int, error) {
	if !validMark(id) {
		return 0, fmt.Errorf("sweep: invalid mark %q", id)
	}
	return sweep([]byte(MarkEnv + "=" + id))
}

// sweep kills the processes whose environment holds the entry kv. Each is
// signalled through a pidfd opened before its environment is read, so a pid
// reused in between is never hit. A process that takes long to die (stuck
// in the kernel) is signalled once and not waited for.
func sweep(kv []byte) (int, error) {
	self := os.Getpid()
	signalled := make(map[int]bool)
	for pass := 0; pass < 100; pass++ {
		procs, err := os.ReadDir("/proc")
		if err != nil {
			return len(signalled), fmt.Errorf("sweep: %w", err)
		}
		fresh := 0
		for _, p := range procs {
			pid, err := strconv.Atoi(p.Name())
			if err != nil || pid == self || signalled[pid] {
				continue
			}
			if killMarked(pid, kv) {
				signalled[pid] = true
				fresh++
			}
		}
		if fresh == 0 {
			return len(signalled), nil
		}
		time.Sleep(2 * time.Millisecond) // let forks in progress show up
	}
	return len(signalled), errors.New("sweep: marked processes keep appearing")
}

// killMarked sends SIGKILL to pid if its environment holds kv, and reports
// whether it did.
func killMarked(pid int, kv []byte) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return false // gone, or not ours to signal
	}
	defer unix.Close(fd)
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil || !hasEnv(env, kv) {
		return false
	}
	return unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0) == nil
}

// hasEnv reports whether the NUL-separated environment env holds the entry kv.
func hasEnv(env, kv []byte) bool {
	for len(env) > 0 {
		entry, rest, _ := bytes.Cut(env, []byte{0})
		if bytes.Equal(entry, kv) {
			return true
		}
		env = rest
	}
	return false
}

// warden is the running warden process of a Manager.
type warden struct {
	cmd  *exec.Cmd
	pipe *os.File // the write end; closing it tells the warden to sweep
}

// Guard marks every process the Manager starts from now on with id (8 to
// 64 characters of [0-9A-Za-z_-], the same for every run of one server, so a
// restart can find what an earlier run left), kills the processes an earlier
// run left marked with id, and starts the warden that kills them if this
// process dies. The warden holds hold open (when not nil) until its final
// sweep is done: give it the lock that keeps a second server with the same
// id from starting, so a restarted server cannot race a dying one's warden.
// Call Guard once, before Start; Close stops the warden after the handlers.
func (m *Manager) Guard(id string, hold *os.File) error {
	if !validMark(id) {
		return fmt.Errorf("guard: invalid id %q: want 8 to 64 of [0-9A-Za-z_-]", id)
	}
	m.mu.Lock()
	if m.closed || m.guarding {
		m.mu.Unlock()
		return errors.New("guard: manager closed or already guarded")
	}
	m.guarding = true // reserved: a second Guard must not sweep live handlers
	m.mu.Unlock()
	if n, err := Sweep(id); err != nil {
		return fmt.Errorf("guard: %w", err)
	} else if n > 0 {
		m.log.Warn("killed processes left by an earlier run", "count", n)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("guard: find own executable: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("guard: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(exe)
	cmd.Env = []string{WardenEnv + "=" + id}
	cmd.Stdin = r
	cmd.Stderr = os.Stderr
	if hold != nil {
		cmd.ExtraFiles = []*os.File{hold}
	}
	// Its own process group: a terminal's Ctrl-C goes to the server only.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("guard: start warden: %w", err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		w.Close()
		cmd.Wait()
		return errors.New("guard: manager closed")
	}
	m.mark = MarkEnv + "=" + id
	m.warden = &warden{cmd: cmd, pipe: w}
	m.mu.Unlock()
	return nil
}

// stop tells the warden to sweep (the handlers are gone by now) and waits
// for it.
func (w *warden) stop() error {
	w.pipe.Close()
	if err := w.cmd.Wait(); err != nil {
		return fmt.Errorf("warden: %w", err)
	}
	return nil
}
