package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Set is a running process set (one handler process today), started by
// Manager.Start. It restarts a handler that exits unexpectedly until Stop.
// Its methods are safe for concurrent use; Addr, Acquire and Release are
// lock-free and do not allocate, for the request path.
type Set struct {
	m    *Manager
	spec Spec
	log  *slog.Logger
	mark string // SetMarkEnv=<unique id>, in every process of the set
	home string // private HOME and TMPDIR, Manager.Homes/<id>; "" if none

	addr     atomic.Pointer[string] // nil while down
	pid      atomic.Int64
	restarts atomic.Int64
	retryAt  atomic.Int64 // UnixNano of the next restart attempt, 0 if none is pending
	stopping atomic.Bool
	// inflight holds, in its low 32 bits, the requests in flight
	// (Acquire, not yet Release) and, in the bits above, how many Acquire
	// counted ever (mod 2^32): one atomic add per request tells the idle
	// reaper both whether a request runs and whether one came since it
	// last looked.
	inflight atomic.Int64

	// Scale to zero (see sleep.go): the set's state, and the channels by
	// which Sleep and Wake ask the supervising goroutine.
	state   atomic.Int32 // awake, dozing or asleep
	sleepc  chan struct{}
	wakec   chan struct{}
	round   atomic.Pointer[wakeRound] // what Wake's callers wait on
	wakes   atomic.Int64
	wakeErr atomic.Pointer[error] // why the last start after idling failed

	ctx      context.Context // cancelled by Stop: aborts a restart in progress
	cancel   context.CancelFunc
	stopOnce sync.Once
	stopc    chan struct{} // closed by Stop
	grace    time.Duration // written before stopc is closed
	stopErr  error         // written before done is closed
	done     chan struct{}
}

func newSet(m *Manager, spec Spec) *Set {
	spec.Args = append([]string(nil), spec.Args...)
	spec.Env = append([]string(nil), spec.Env...)
	ctx, cancel := context.WithCancel(context.Background())
	var b [12]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	var home string
	if m.Homes != "" {
		home = filepath.Join(m.Homes, id)
	}
	s := &Set{
		m:      m,
		spec:   spec,
		log:    m.log.With("handler", spec.name()),
		mark:   SetMarkEnv + "=" + id,
		home:   home,
		ctx:    ctx,
		cancel: cancel,
		stopc:  make(chan struct{}),
		done:   make(chan struct{}),
		sleepc: make(chan struct{}, 1),
		wakec:  make(chan struct{}, 1),
	}
	s.round.Store(newRound())
	return s
}

// startReady starts a process, preferring port, and waits until it is ready.
// On failure it kills what it started.
func (s *Set) startReady(ctx context.Context, port int) (*process, error) {
	port, err := freePort(port)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.spec.name(), err)
	}
	p, err := s.m.startProcess(&s.spec, port, s.home, s.mark, s.log)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.spec.name(), err)
	}
	s.log.Debug("handler started", "pid", p.pid, "port", port)
	if err := p.waitReady(ctx, s.m.client, s.spec.startTimeout()); err != nil {
		p.kill()
		return nil, fmt.Errorf("start %s (pid %d): %w%s", s.spec.name(), p.pid, err, p.stderrTail())
	}
	s.log.Info("handler ready", "pid", p.pid, "port", port, "after", time.Since(p.started).Round(time.Millisecond))
	return p, nil
}

// publish makes p the current process.
func (s *Set) publish(p *process) {
	s.pid.Store(int64(p.pid))
	if !s.stopping.Load() {
		s.addr.Store(&p.addr)
	}
}

// supervise waits for p to exit and restarts it until Stop.
func (s *Set) supervise(p *process) {
	defer s.m.wg.Done()
	defer close(s.done)
	defer s.removeHome() // once nothing of the set runs
	defer s.sweep()
	defer s.m.remove(s)
	defer s.cancel()
	defer s.finishRound(ErrStopped) // Wake's callers do not wait for a stopped set

	if p == nil { // started asleep (StartAsleep)
		np, ok := s.asleep(0)
		if !ok {
			return
		}
		p = np
	}
	backoff := minBackoff
	for {
		select {
		case <-p.exited:
		case <-s.stopc:
			s.addr.Store(nil) // publish may have raced with Stop
			s.stopErr = p.terminate(s.grace, s.log)
			s.pid.Store(0)
			return
		case <-s.sleepc:
			if !s.doze(p) {
				continue // woken, still busy, or stopping: p runs on
			}
			np, ok := s.asleep(p.port)
			if !ok {
				return // stopped while asleep: nothing runs
			}
			p = np
			continue
		}
		s.addr.Store(nil)
		s.pid.Store(0)
		<-p.logged
		if s.state.Load() != awake {
			// Told to sleep as it crashed: it sleeps instead of restarting.
			np, ok := s.crashAsleep(p)
			if !ok {
				return
			}
			p = np
			continue
		}
		ran := time.Since(p.started)
		if ran >= healthyRun {
			backoff = minBackoff
		}
		s.log.Warn("handler exited: restarting", "pid", p.pid, "err", p.err, "ran", ran.Round(time.Millisecond), "retry_in", backoff, "stderr", p.tail.lines())
		s.hostLog(fmt.Sprintf("handler (pid %d) exited unexpectedly after %s: %s; restarting in %s", p.pid, ran.Round(time.Millisecond), exitStatus(p.err), backoff))

		port := p.port
		for {
			s.retryAt.Store(time.Now().Add(backoff).UnixNano())
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.stopc:
				t.Stop()
				s.retryAt.Store(0)
				return
			}
			s.retryAt.Store(0)
			backoff = min(2*backoff, maxBackoff)
			if s.state.Load() != awake {
				// Idle meanwhile (Sleep came while it was down): it sleeps
				// until something needs it, instead of restarting now.
				np, ok := s.crashAsleep(p)
				if !ok {
					return
				}
				p = np
				break
			}
			np, err := s.startReady(s.ctx, port)
			if err == nil {
				p = np
				n := s.restarts.Add(1)
				s.publish(p)
				s.hostLog(fmt.Sprintf("handler restarted (pid %d); restarts so far: %d", p.pid, n))
				break
			}
			if s.stopping.Load() {
				return
			}
			s.log.Error("handler restart failed", "err", err, "retry_in", backoff)
			s.hostLog(fmt.Sprintf("handler restart failed: %v; retrying in %s", err, backoff))
		}
	}
}

// Addr returns the current "127.0.0.1:port" of the ready handler, and
// ok=false while it is down (crashed and restarting, or stopping).
func (s *Set) Addr() (addr string, ok bool) {
	p := s.addr.Load()
	if p == nil {
		return "", false
	}
	return *p, true
}

// RetryAfter returns, while the set is down, how long until the next restart
// attempt is expected, for a Retry-After header. It returns zero when the set
// is up, stopping, or a restart attempt is under way (waiting for readiness);
// callers answering HTTP should round up to at least one second.
func (s *Set) RetryAfter() time.Duration {
	if s.addr.Load() != nil || s.stopping.Load() {
		return 0
	}
	at := s.retryAt.Load()
	if at == 0 {
		return 0
	}
	return max(0, time.Until(time.Unix(0, at)))
}

// Stopping reports whether Stop or Retire was called: the set takes no new
// requests.
func (s *Set) Stopping() bool { return s.stopping.Load() }

// Stopped reports whether Stop was called: the handler is being, or has
// been, terminated. A retiring set (Retire) is Stopping but not Stopped
// until its drain ends.
func (s *Set) Stopped() bool {
	select {
	case <-s.stopc:
		return true
	default:
		return false
	}
}

// PID returns the pid of the current handler process, 0 while it is down.
func (s *Set) PID() int { return int(s.pid.Load()) }

// Restarts returns how many times the handler was restarted successfully
// after an unexpected exit.
func (s *Set) Restarts() int { return int(s.restarts.Load()) }

// Done returns a channel closed once Stop finished (or Manager.Close stopped
// the set).
func (s *Set) Done() <-chan struct{} { return s.done }

// Stop marks the set stopping (Addr and Acquire fail from now on), sends
// SIGTERM to the process group, waits up to grace, then sends SIGKILL, and
// waits for the process and the supervising goroutines. A zero grace kills at
// once. Stop does not wait for requests in flight: call Drain first. Stop is
// idempotent and safe concurrently with a crash or restart; only the grace of
// the first call counts.
func (s *Set) Stop(grace time.Duration) error {
	s.stopOnce.Do(func() {
		s.stopping.Store(true)
		s.addr.Store(nil)
		s.grace = grace
		close(s.stopc)
		s.cancel()
	})
	<-s.done
	return s.stopErr
}

// Acquire counts a request in flight to the set. It returns false, counting
// nothing, once the set is stopping. Every successful Acquire must be paired
// with one Release.
func (s *Set) Acquire() bool {
	if s.stopping.Load() {
		return false
	}
	s.inflight.Add(acquireUnit)
	if s.stopping.Load() {
		s.inflight.Add(-1) // the request is not in flight; it still counts as one that came
		return false
	}
	return true
}

// acquireUnit is what Acquire adds to inflight: one more request in
// flight, and one more ever.
const acquireUnit = 1<<32 | 1

// Release ends a request counted by Acquire.
func (s *Set) Release() {
	if int32(s.inflight.Add(-1)) < 0 {
		panic("runtime: Set.Release without Acquire")
	}
}

// InFlight returns the number of requests counted by Acquire and not yet
// released.
func (s *Set) InFlight() int { return int(int32(s.inflight.Load())) }

// Acquired returns a count that changes whenever Acquire counts a request
// (it wraps; compare it, don't subtract), for the idle reaper.
func (s *Set) Acquired() uint32 { return uint32(s.inflight.Load() >> 32) }

// Drain waits until no request is in flight, or returns ctx.Err(). It does not
// refuse new requests: the caller first stops routing to the set (swaps the
// routing table), then drains, then stops it.
func (s *Set) Drain(ctx context.Context) error {
	// Polling keeps Release free of locks and channel operations.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for s.InFlight() != 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// Retire refuses new requests (Acquire returns false, so the router looks up
// the current table again) while the process keeps running, then waits until
// the requests already in flight are done or ctx ends. Call Stop after it.
// Marking the set first and draining second closes the window in which a
// request could acquire a set that is about to be stopped.
func (s *Set) Retire(ctx context.Context) error {
	s.stopping.Store(true)
	return s.Drain(ctx)
}

// sweep kills what the set's handlers started outside their process group,
// once the group itself is gone.
func (s *Set) sweep() {
	if n, err := sweep([]byte(s.mark)); err != nil {
		s.log.Error("stop processes the handler started", "err", err)
	} else if n > 0 {
		s.log.Warn("killed processes the handler started outside its process group", "count", n)
	}
}
