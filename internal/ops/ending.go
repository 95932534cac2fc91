package ops

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hotswap/hotswap"
)

// An operation's end is one small store write. When the store refuses it
// (the disk full for a moment, an I/O error), the operation is over all the
// same, but the store still says it runs, and that running record is the
// app's lock: every later deploy, swap or settings change would get 409
// until a restart. So the end is retried at once a few times, then kept in
// memory and written by endLoop once the store takes writes again; until
// then the app's operations are listed as ended, and a new operation on
// the app first tries to write the end itself.

// endRetryDelays are the pauses between the immediate tries of an end.
var endRetryDelays = []time.Duration{20 * time.Millisecond, 100 * time.Millisecond, 400 * time.Millisecond}

// endLoop's back-off between tries of the ends kept in memory.
const (
	endRetryFirst = 250 * time.Millisecond
	endRetryMax   = 5 * time.Second
)

// unrecorded holds the ends the store refused. Its zero value is ready.
type unrecorded struct {
	mu   sync.Mutex
	ops  map[string]hotswap.Operation // by ID; State, Detail, EndedAt as they ended
	wake chan struct{}                // wakes endLoop; made on first use
}

func (u *unrecorded) wakeLocked() chan struct{} {
	if u.wake == nil {
		u.wake = make(chan struct{}, 1)
	}
	return u.wake
}

func (u *unrecorded) add(op hotswap.Operation) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ops == nil {
		u.ops = make(map[string]hotswap.Operation)
	}
	u.ops[op.ID] = op
	select {
	case u.wakeLocked() <- struct{}{}:
	default:
	}
}

func (u *unrecorded) remove(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.ops, id)
}

// list returns the ends kept for app, or for every app if app is "",
// oldest first.
func (u *unrecorded) list(app string) []hotswap.Operation {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []hotswap.Operation
	for _, op := range u.ops {
		if app == "" || op.App == app {
			out = append(out, op)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].EndedAt.Before(out[j-1].EndedAt); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// transient reports whether a failed store write may succeed if tried
// again: anything but a refusal such as "has ended" or "not found", so an
// I/O error, a busy store or a full disk, whatever kind it is given.
func transient(err error) bool {
	switch hotswap.ErrorKind(err) {
	case hotswap.Invalid, hotswap.NotFound, hotswap.Conflict, hotswap.FailedPrecondition, hotswap.Unauthorized, hotswap.Forbidden:
		return false
	}
	return true
}

// finish records that op ended in state with detail, now. If the store
// refuses, it retries a few times, then keeps the end for endLoop.
func (s *Service) finish(ctx context.Context, op hotswap.Operation, state hotswap.OperationState, detail string) {
	ctx = context.WithoutCancel(ctx)
	detail = hotswap.CleanText(detail) // may quote a handler's output
	op.State, op.Detail, op.EndedAt = state, detail, time.Now().UTC()
	defer s.ended(op, state, detail)
	err := s.store.EndOperationAt(ctx, op.ID, state, detail, op.EndedAt)
	for _, d := range endRetryDelays {
		if err == nil || !transient(err) {
			break
		}
		time.Sleep(d)
		err = s.store.EndOperationAt(ctx, op.ID, state, detail, op.EndedAt)
	}
	switch {
	case err == nil:
	case !transient(err):
		s.log.Error("end operation", "app", op.App, "op", op.ID, "err", err)
	default:
		s.log.Error("the store refused to record the end of an operation; it is kept in memory and written when the store takes writes again",
			"app", op.App, "op", op.ID, "kind", op.Kind, "state", state, "err", err)
		s.ends.add(op)
	}
}

// flushEnds writes the ends kept for app (every app if ""). It returns the
// first error of a write that may succeed later; those ends stay kept.
func (s *Service) flushEnds(ctx context.Context, app string) error {
	var first error
	for _, op := range s.ends.list(app) {
		err := s.store.EndOperationAt(ctx, op.ID, op.State, op.Detail, op.EndedAt)
		if err != nil && transient(err) {
			if first == nil {
				first = err
			}
			continue
		}
		s.ends.remove(op.ID)
		if err != nil {
			// Ended or gone meanwhile: nothing is left to record.
			s.log.Warn("end operation", "app", op.App, "op", op.ID, "err", err)
			continue
		}
		s.log.Info("recorded the end of an operation late", "app", op.App, "op", op.ID, "state", op.State, "late", time.Since(op.EndedAt).Round(time.Millisecond))
	}
	return first
}

// beginOp records op as running. When the app's lock in the store is an
// operation that has ended but whose end the store refused, it writes
// that end first, so the app is usable as soon as the store is.
func (s *Service) beginOp(ctx context.Context, op hotswap.Operation) error {
	op.Node = s.NodeID()
	err := s.store.BeginOperation(ctx, op)
	if err == nil {
		s.begun(ctx, op)
	}
	if hotswap.ErrorKind(err) != hotswap.Conflict {
		return err
	}
	kept := s.ends.list(op.App)
	if len(kept) == 0 {
		return err
	}
	if ferr := s.flushEnds(ctx, op.App); ferr != nil {
		return &hotswap.Error{Kind: hotswap.Unavailable, Err: ferr, Msg: fmt.Sprintf(
			"the store cannot record yet that the last operation of app %s (%s %s) ended, so no other may start; the server keeps retrying, try again shortly",
			op.App, kept[0].Kind, kept[0].ID)}
	}
	if err := s.store.BeginOperation(ctx, op); err != nil {
		return err
	}
	s.begun(ctx, op)
	return nil
}

// withEnds shows the operations whose end is kept in memory as ended.
func (s *Service) withEnds(ops []hotswap.Operation, err error) ([]hotswap.Operation, error) {
	if err != nil || len(ops) == 0 {
		return ops, err
	}
	kept := s.ends.list("")
	if len(kept) == 0 {
		return ops, nil
	}
	byID := make(map[string]hotswap.Operation, len(kept))
	for _, op := range kept {
		byID[op.ID] = op
	}
	out := make([]hotswap.Operation, len(ops))
	for i, op := range ops {
		if k, ok := byID[op.ID]; ok && op.State == hotswap.OpRunning {
			op.State, op.Detail, op.EndedAt = k.State, k.Detail, k.EndedAt
		}
		out[i] = op
	}
	return out, nil
}

// endLoop writes the kept ends with back-off until the store takes them.
// It runs for the service's lifetime; Close stops it after one last try.
func (s *Service) endLoop() {
	defer s.wg.Done()
	delay := endRetryFirst
	for {
		s.ends.mu.Lock()
		wake, idle := s.ends.wakeLocked(), len(s.ends.ops) == 0
		s.ends.mu.Unlock()
		if idle {
			delay = endRetryFirst
			select {
			case <-s.ctx.Done():
				return
			case <-wake:
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-s.ctx.Done():
			t.Stop()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := s.flushEnds(ctx, ""); err != nil {
				s.log.Error("the store still refuses the end of an operation; a restart records it as interrupted", "err", err)
			}
			cancel()
			return
		case <-t.C:
		}
		if err := s.flushEnds(s.ctx, ""); err != nil {
			delay = min(2*delay, endRetryMax)
		} else {
			delay = endRetryFirst
		}
	}
}
