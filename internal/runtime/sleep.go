package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Scale to zero. A set that served nothing for a while is put to sleep
// (Sleep): its address is withdrawn at once, so new requests find it down;
// the requests in flight finish; then its process is stopped and the set
// waits, without any process, for Wake. The first caller of Wake starts the
// process and waits for its readiness; every caller meanwhile waits for the
// same start. The supervising goroutine does all of it (it owns the
// process), asked through sleepc and wakec.
//
// A Wake that comes while the set is still dozing (draining) cancels the
// sleep: the process never stops. A sleeping set's Stop ends it at once.

// The states of a set.
const (
	awake  int32 = iota
	dozing       // Sleep asked: address withdrawn, draining, then stopping
	asleep       // no process; Wake starts one
)

// ErrStopped is returned by Wake for a set that is stopping.
var ErrStopped = errors.New("process set stopped")

// ErrDown is returned by Wake for a set that is awake but down: its handler
// crashed and is being restarted, which Wake does not hasten.
var ErrDown = errors.New("the handler is down (restarting)")

// dozeDrain bounds how long a dozing set waits for its requests in flight;
// a set still busy after it stays awake.
const dozeDrain = 10 * time.Second

// sleepGrace is how long a handler put to sleep has between SIGTERM and
// SIGKILL: no request is in flight by then.
const sleepGrace = 5 * time.Second

// wakeRound is one start of a sleeping set, which Wake's callers wait on.
type wakeRound struct {
	done chan struct{}
	err  error // written before done is closed
}

func newRound() *wakeRound { return &wakeRound{done: make(chan struct{})} }

// finishRound ends the current round with err and begins the next.
func (s *Set) finishRound(err error) {
	r := s.round.Swap(newRound())
	r.err = err
	close(r.done)
}

// Sleep asks the set to stop its process until Wake: false if it is not
// awake or is stopping. It returns at once; the process stops once the
// requests in flight have finished (see dozeDrain).
func (s *Set) Sleep() bool {
	if s.stopping.Load() || !s.state.CompareAndSwap(awake, dozing) {
		return false
	}
	s.addr.Store(nil) // no new request takes the address from now on
	select {
	case s.sleepc <- struct{}{}:
	default:
	}
	return true
}

// Idle reports whether the set is asleep or falling asleep: Wake starts it.
func (s *Set) Idle() bool { return s.state.Load() != awake }

// Wakes counts the times a sleeping set was started again.
func (s *Set) Wakes() int { return int(s.wakes.Load()) }

// Wake returns the address of the set's ready handler, starting it first
// if the set sleeps and waiting for it (bounded by the spec's start
// timeout, or ctx). Concurrent callers share one start. It returns ErrDown
// for an awake set whose handler is restarting, ErrStopped for a stopped
// one, and the start's error when the handler failed to start (the set
// then sleeps on, and the next Wake tries again).
func (s *Set) Wake(ctx context.Context) (string, error) {
	for {
		// The round first, the address second: a start that publishes
		// after the look at the address closes this round.
		r := s.round.Load()
		if addr, ok := s.Addr(); ok {
			return addr, nil
		}
		if s.stopping.Load() {
			return "", ErrStopped
		}
		if s.state.Load() == awake {
			return "", ErrDown
		}
		if at := s.retryAt.Load(); at != 0 && time.Now().UnixNano() < at {
			// The last start failed: the next is not tried before its
			// back-off, so a broken build is not forked at every request.
			if e := s.wakeErr.Load(); e != nil && s.state.Load() == asleep {
				return "", *e
			}
			return "", ErrDown
		}
		select {
		case s.wakec <- struct{}{}:
		default:
		}
		select {
		case <-r.done:
			if r.err != nil {
				return "", r.err
			}
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// doze runs in the supervising goroutine when Sleep asked: it waits for
// the requests in flight, then stops p. It returns false, with p running
// and published again, if a Wake came or the requests did not finish in
// time; and false, leaving p to the caller, when the set is stopping.
func (s *Set) doze(p *process) bool {
	s.addr.Store(nil) // a restart may have published it since Sleep
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	deadline := time.NewTimer(dozeDrain)
	defer deadline.Stop()
	for s.InFlight() != 0 {
		select {
		case <-s.stopc:
			return false
		case <-s.wakec:
			s.awaken(p)
			return false
		case <-deadline.C:
			s.log.Info("handler stays awake: requests still in flight", "after", dozeDrain)
			s.awaken(p)
			return false
		case <-t.C:
		}
	}
	select {
	case <-s.wakec:
		s.awaken(p)
		return false
	case <-s.stopc:
		return false
	default:
	}
	s.state.Store(asleep)
	err := p.terminate(sleepGrace, s.log)
	s.pid.Store(0)
	s.sweep()
	s.log.Info("handler asleep: scaled to zero", "pid", p.pid, "err", err)
	s.hostLog(fmt.Sprintf("handler (pid %d) stopped: idle, scaled to zero until the next request", p.pid))
	return true
}

// awaken makes p the set's process again after a cancelled sleep.
func (s *Set) awaken(p *process) {
	s.publish(p) // the address first: a caller seeing awake finds it
	s.state.Store(awake)
	s.finishRound(nil)
	s.drainWakes()
}

// crashAsleep puts a set whose process p exited (crashed) while it was
// told to sleep to sleep at once, then waits as asleep does.
func (s *Set) crashAsleep(p *process) (*process, bool) {
	s.state.Store(asleep)
	s.addr.Store(nil)
	s.pid.Store(0)
	select {
	case <-s.sleepc:
	default:
	}
	s.log.Info("handler asleep: it exited while idle", "pid", p.pid)
	return s.asleep(p.port)
}

// drainWakes drops the wake signals of callers the round just finished has
// answered, so that a stale one does not cancel the next sleep. (A caller
// racing with it may still leave one: that costs one cancelled sleep.)
func (s *Set) drainWakes() {
	select {
	case <-s.wakec:
	default:
	}
}

// asleep waits, with no process, for Wake or Stop; on Wake it starts a
// process (preferring port) and returns it, published. false: stopped.
func (s *Set) asleep(port int) (*process, bool) {
	backoff := minBackoff
	for {
		select {
		case <-s.stopc:
			return nil, false
		case <-s.wakec:
		}
		if at := s.retryAt.Load(); at != 0 && time.Now().UnixNano() < at {
			continue // a stale signal inside the back-off: Wake fails fast meanwhile
		}
		start := time.Now()
		p, err := s.startReady(s.ctx, port)
		if err != nil {
			if s.stopping.Load() {
				return nil, false
			}
			s.wakeErr.Store(&err)
			s.retryAt.Store(time.Now().Add(backoff).UnixNano())
			s.log.Error("wake: handler start failed", "err", err, "retry_in", backoff)
			s.hostLog(fmt.Sprintf("handler start after idling failed: %v; the next request tries again after %s", err, backoff))
			backoff = min(2*backoff, maxBackoff)
			s.finishRound(err)
			continue
		}
		s.retryAt.Store(0)
		s.wakeErr.Store(nil)
		s.wakes.Add(1)
		s.publish(p) // the address first: a caller seeing awake finds it
		s.state.Store(awake)
		s.finishRound(nil)
		s.drainWakes()
		select { // a Sleep asked before the process exited is over
		case <-s.sleepc:
		default:
		}
		s.hostLog(fmt.Sprintf("handler started again after idling (pid %d) in %s", p.pid, time.Since(start).Round(time.Millisecond)))
		return p, true
	}
}
