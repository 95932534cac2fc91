package runtime

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// process is one started handler process.
type process struct {
	pid     int
	port    int
	addr    string // "127.0.0.1:port", shared by Set.Addr without allocation
	started time.Time
	tail    tail

	exited chan struct{} // closed once reaped, its group killed and its output read
	err    error         // result of Wait, set before exited is closed
	logged chan struct{} // closed once every line went to Spec.Log
}

// startProcess starts spec on port. It does not wait for readiness.
func (m *Manager) startProcess(spec *Spec, port int, home, setMark string, log *slog.Logger) (*process, error) {
	if spec.Dir != "" {
		// Otherwise a missing directory reads "fork/exec <path>: no such file".
		if _, err := os.Stat(spec.Dir); err != nil {
			return nil, fmt.Errorf("working directory: %w", err)
		}
	}
	m.mu.Lock()
	mark := m.mark
	m.mu.Unlock()
	cmd := command(spec, port, m.User, home, mark, setMark)
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW // *os.File: no copying goroutines in exec
	cmd, err = m.fork(cmd)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}

	p := &process{
		pid:     cmd.Process.Pid,
		port:    port,
		addr:    "127.0.0.1:" + strconv.Itoa(port),
		started: time.Now(),
		exited:  make(chan struct{}),
		logged:  make(chan struct{}),
	}
	var lines chan logLine
	if spec.Log != nil {
		lines = make(chan logLine, 1024)
		go func() {
			defer close(p.logged)
			for l := range lines {
				spec.Log(l.stream, l.text)
			}
		}()
	} else {
		close(p.logged)
	}
	var dropped atomic.Int64
	var readers sync.WaitGroup
	readers.Go(func() { readLines(outR, "stdout", lines, nil, &dropped) })
	readers.Go(func() { readLines(errR, "stderr", lines, &p.tail, &dropped) })

	go func() {
		p.err = cmd.Wait()
		// A handler's children must not outlive it: kill what is left of its
		// process group, which also closes the pipes they may hold.
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		waitGroupGone(p.pid, 500*time.Millisecond)
		read := make(chan struct{})
		go func() { readers.Wait(); close(read) }()
		select {
		case <-read:
		case <-time.After(time.Second):
			// Someone outside the group still holds the pipes open.
			now := time.Now()
			outR.SetReadDeadline(now)
			errR.SetReadDeadline(now)
			<-read
		}
		outR.Close()
		errR.Close()
		if lines != nil {
			close(lines)
		}
		if n := dropped.Load(); n > 0 {
			log.Warn("handler output lines dropped: Log too slow", "pid", p.pid, "lines", n)
		}
		close(p.exited)
	}()
	return p, nil
}

// waitGroupGone waits until process group pgid, already sent SIGKILL, has no
// live member, for at most max.
func waitGroupGone(pgid int, max time.Duration) {
	deadline := time.Now().Add(max)
	for d := 100 * time.Microsecond; time.Now().Before(deadline); d = min(2*d, 10*time.Millisecond) {
		if !groupAlive(pgid) {
			return
		}
		time.Sleep(d)
	}
}

// groupAlive reports whether process group pgid has a member that is not a
// zombie. Killed orphans stay in the group as zombies until init reaps them,
// which some container inits do only every second or so.
func groupAlive(pgid int) bool {
	if syscall.Kill(-pgid, 0) == syscall.ESRCH {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range entries {
		name := e.Name()
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 3 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

// waitReady polls GET / until any HTTP response. It returns an error wrapping
// ErrExited, ErrStartTimeout or the cause of ctx.
func (p *process) waitReady(ctx context.Context, client *http.Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, ErrStartTimeout)
	defer cancel()
	url := "http://" + p.addr + "/"
	// The first probes come quickly, then less often: a small handler is
	// ready within milliseconds (a cold start waits on this), a slow one
	// is not probed more than every readyPoll. A probe of a port nobody
	// listens on yet is refused at once and costs microseconds.
	wait := readyFirstPoll
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		if p.probe(ctx, client, url) {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%w: %v", ErrExited, p.err)
		default:
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%w: %v", ErrExited, p.err)
		case <-ctx.Done():
			if err := context.Cause(ctx); errors.Is(err, ErrStartTimeout) {
				return fmt.Errorf("%w (%v)", ErrStartTimeout, timeout)
			}
			return context.Cause(ctx)
		case <-t.C:
			// Every readyFirstPoll for the first readyFastFor (a small
			// handler is ready by then: a cold start waits on at most one
			// such interval), then less often, up to readyPoll.
			if time.Since(p.started) > readyFastFor {
				wait = min(2*wait, readyPoll)
			}
			t.Reset(wait)
		}
	}
}

func (p *process) probe(ctx context.Context, client *http.Client, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, readyTryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	return true
}

// kill kills the process group and waits until the process is gone.
func (p *process) kill() {
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	<-p.exited
	<-p.logged
}

// terminate sends SIGTERM to the process group, then SIGKILL after grace, and
// waits until the process is gone.
func (p *process) terminate(grace time.Duration, log *slog.Logger) error {
	if grace <= 0 {
		p.kill()
		return nil
	}
	if err := syscall.Kill(-p.pid, syscall.SIGTERM); err != nil && err != syscall.ESRCH {
		p.kill()
		return fmt.Errorf("stop process %d: %w", p.pid, err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		log.Warn("handler ignored SIGTERM: killing it", "pid", p.pid, "grace", grace)
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.exited
	}
	<-p.logged
	return nil
}

// stderrTail returns "; stderr: ..." with the last stderr lines, or "".
func (p *process) stderrTail() string {
	lines := p.tail.lines()
	if len(lines) == 0 {
		return ""
	}
	return "; last stderr: " + strings.Join(lines, " | ")
}

type logLine struct{ stream, text string }

// readLines reads r line by line until EOF or error, cutting lines longer than
// MaxLineLength. It sends each line to lines without blocking (dropping it
// when full) and records stderr lines in tail.
func readLines(r io.Reader, stream string, lines chan<- logLine, tail *tail, dropped *atomic.Int64) {
	br := bufio.NewReaderSize(r, MaxLineLength)
	skip := false // rest of a line that was cut
	for {
		b, err := br.ReadSlice('\n')
		if len(b) > 0 && !skip {
			b = bytes.TrimRight(b, "\r\n")
			text := string(b)
			if tail != nil {
				tail.add(text)
			}
			if lines != nil {
				select {
				case lines <- logLine{stream, text}:
				default:
					dropped.Add(1)
				}
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			skip = true
		case err != nil:
			return
		default:
			skip = false
		}
	}
}

// tail keeps the last stderr lines for error messages.
type tail struct {
	mu  sync.Mutex
	buf [stderrTailLines]string
	n   int // lines added
}

func (t *tail) add(s string) {
	const max = 300
	if len(s) > max {
		s = s[:max] + "..."
	}
	t.mu.Lock()
	t.buf[t.n%len(t.buf)] = s
	t.n++
	t.mu.Unlock()
}

func (t *tail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for i := max(0, t.n-len(t.buf)); i < t.n; i++ {
		out = append(out, t.buf[i%len(t.buf)])
	}
	return out
}
