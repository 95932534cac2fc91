package ops

import (
	"context"
	"encoding/json"
	"io"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/hotswap/hotswap"
)

// Progress: every long operation (deploy, swap, complete, cancel, rollback,
// a settings change that restarts a slot) reports the phases it goes
// through with phase, which records the phase in the store, as before, and
// publishes an OperationEvent in memory. The API streams those events and
// the portal shows them, so a handler that takes seconds to start no longer
// leaves the people waiting in the dark.
//
// The events are this node's: an operation run by another node of a
// cluster is seen through its phase in the store only.

// Phase names common to several operations.
const (
	PhaseStarting  = "starting"        // a handler process starts; waits for it to listen
	PhaseWarming   = "warming"         // the warm-up requests of a prepared configuration
	PhasePreparing = "preparing nodes" // the other nodes of a cluster prepare
	PhaseSwitching = "switching"       // the flip: one store transaction, one table
	PhaseDone      = "done"            // the end of a successful operation
	PhaseFailed    = "failed"          // the end of a failed one
	PhaseCancelled = "cancelled"       // the end of a swap preview cancelled (state failed)
)

// cancelledBy starts the detail of a cancelled swap preview's end.
const cancelledBy = "cancelled by "

// OperationEvent is one phase of an operation, or its end.
type OperationEvent struct {
	OpID   string
	App    string
	Slot   string
	Kind   string // deploy, swap, rollback, settings, ...
	Phase  string
	Detail string
	At     time.Time
	// Elapsed is the time from the operation's start to At.
	Elapsed time.Duration
	// End marks the operation's last event; State then says how it ended.
	End   bool
	State string // running, succeeded or failed
	// Seq numbers the operation's events from 1, so a follower that
	// missed none can tell.
	Seq int
}

type operationEventJSON struct {
	OpID      string    `json:"opId"`
	App       string    `json:"app"`
	Slot      string    `json:"slot"`
	Kind      string    `json:"kind"`
	Phase     string    `json:"phase"`
	Detail    string    `json:"detail"`
	At        time.Time `json:"at"`
	ElapsedMs int64     `json:"elapsedMs"`
	End       bool      `json:"end"`
	State     string    `json:"state"`
	Seq       int       `json:"seq"`
}

// MarshalJSON writes the event with Elapsed in milliseconds (elapsedMs).
func (e OperationEvent) MarshalJSON() ([]byte, error) {
	return json.Marshal(operationEventJSON{
		OpID: e.OpID, App: e.App, Slot: e.Slot, Kind: e.Kind, Phase: e.Phase, Detail: e.Detail,
		At: e.At, ElapsedMs: e.Elapsed.Milliseconds(), End: e.End, State: e.State, Seq: e.Seq,
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *OperationEvent) UnmarshalJSON(b []byte) error {
	var j operationEventJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = OperationEvent{
		OpID: j.OpID, App: j.App, Slot: j.Slot, Kind: j.Kind, Phase: j.Phase, Detail: j.Detail,
		At: j.At, Elapsed: time.Duration(j.ElapsedMs) * time.Millisecond, End: j.End, State: j.State, Seq: j.Seq,
	}
	return nil
}

// Bounds of the in-memory events.
const (
	maxOpEvents   = 64              // per operation; the oldest are dropped beyond
	keepEnded     = 5 * time.Minute // how long a finished operation's events stay
	maxEndedOps   = 256             // finished operations kept at most
	subscriberBuf = 64              // events queued per subscriber; the oldest dropped beyond
)

// events is the in-memory record of this node's operations and their
// phases. Its zero value is ready. Publishing never blocks: a subscriber
// that does not keep up loses its oldest queued events.
type events struct {
	mu     sync.Mutex
	ops    map[string]*opEvents
	ended  []string // IDs of finished operations, in the order they ended
	subs   map[*subscriber]struct{}
	notify chan struct{}    // closed and replaced by each publish
	now    func() time.Time // nil: time.Now
}

type opEvents struct {
	op     hotswap.Operation
	events []OperationEvent // the newest maxOpEvents
	seq    int
	ended  time.Time // zero while running
}

type subscriber struct {
	app string // "" for every app
	ch  chan OperationEvent
}

func (h *events) clock() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now()
}

// changedLocked returns the channel the next publish closes.
func (h *events) changedLocked() chan struct{} {
	if h.notify == nil {
		h.notify = make(chan struct{})
	}
	return h.notify
}

// changed returns a channel closed by the next event of any operation.
func (h *events) changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changedLocked()
}

// begin starts the record of a running operation.
func (h *events) begin(op hotswap.Operation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pruneLocked()
	if h.ops == nil {
		h.ops = make(map[string]*opEvents)
	}
	if _, ok := h.ops[op.ID]; !ok {
		h.ops[op.ID] = &opEvents{op: op}
	}
}

// publish adds a phase (or, with end, the end) to a known operation and
// hands it to the subscribers. It reports false for an operation it does
// not know or that has ended.
func (h *events) publish(opID, phase, detail string, end bool, state hotswap.OperationState) (OperationEvent, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.ops[opID]
	if r == nil || !r.ended.IsZero() {
		return OperationEvent{}, false
	}
	now := h.clock()
	r.seq++
	e := OperationEvent{
		OpID: r.op.ID, App: r.op.App, Slot: r.op.Slot, Kind: r.op.Kind, Phase: phase, Detail: detail,
		At: now.UTC(), Elapsed: max(now.Sub(r.op.StartedAt), 0), End: end, State: string(state), Seq: r.seq,
	}
	if len(r.events) >= maxOpEvents {
		r.events = append(r.events[:0:0], r.events[len(r.events)-maxOpEvents+1:]...)
	}
	r.events = append(r.events, e)
	if end {
		r.ended = now
		h.ended = append(h.ended, opID)
	}
	for sub := range h.subs {
		if sub.app != "" && sub.app != e.App {
			continue
		}
		select {
		case sub.ch <- e:
			continue
		default:
		}
		// Full: the oldest queued event makes room for this one.
		select {
		case <-sub.ch:
		default:
		}
		select {
		case sub.ch <- e:
		default:
		}
	}
	close(h.changedLocked())
	h.notify = nil
	return e, true
}

// pruneLocked forgets the finished operations older than keepEnded, and
// the oldest beyond maxEndedOps.
func (h *events) pruneLocked() {
	now := h.clock()
	n := 0
	for n < len(h.ended) {
		r := h.ops[h.ended[n]]
		if r != nil && now.Sub(r.ended) < keepEnded && len(h.ended)-n <= maxEndedOps {
			break
		}
		delete(h.ops, h.ended[n])
		n++
	}
	if n > 0 {
		h.ended = append(h.ended[:0:0], h.ended[n:]...)
	}
}

// get returns the events of an operation so far; ok is false for an
// operation this node does not know (or no longer).
func (h *events) get(opID string) (evs []OperationEvent, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pruneLocked()
	r := h.ops[opID]
	if r == nil {
		return nil, false
	}
	return append([]OperationEvent(nil), r.events...), true
}

// latest returns the newest operation of app that runs, or else that
// ended within recent, with its events.
func (h *events) latest(app string, recent time.Duration) (hotswap.Operation, []OperationEvent, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clock()
	var best *opEvents
	for _, r := range h.ops {
		if r.op.App != app || (!r.ended.IsZero() && now.Sub(r.ended) > recent) {
			continue
		}
		if best == nil || r.op.StartedAt.After(best.op.StartedAt) {
			best = r
		}
	}
	if best == nil {
		return hotswap.Operation{}, nil, false
	}
	return best.op, append([]OperationEvent(nil), best.events...), true
}

// running returns the operation that runs on app on this node.
func (h *events) running(app string) (hotswap.Operation, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.ops {
		if r.op.App == app && r.ended.IsZero() {
			return r.op, true
		}
	}
	return hotswap.Operation{}, false
}

func (h *events) subscribe(app string) (<-chan OperationEvent, func()) {
	sub := &subscriber{app: app, ch: make(chan OperationEvent, subscriberBuf)}
	h.mu.Lock()
	if h.subs == nil {
		h.subs = make(map[*subscriber]struct{})
	}
	h.subs[sub] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return sub.ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, sub)
			h.mu.Unlock()
		})
	}
}

// phase records that op reached a phase: in the store, for display and
// recovery, and in memory for the streams that follow it. The flip's
// "switching" is not written to the store: the flip itself follows
// within microseconds, and each write is an fsync before it.
func (s *Service) phase(ctx context.Context, op *hotswap.Operation, name, detail string) {
	if op == nil {
		return
	}
	if name != PhaseSwitching {
		s.phases.put(op.ID, op.App, name, detail)
	}
	s.events.publish(op.ID, name, detail, false, hotswap.OpRunning)
}

// phaseWrites records operations' phases in the store in the background,
// newest per operation: a write is an fsync, and a swap's phases come
// before its flip, whose latency is the product (issue 6).
type phaseWrites struct {
	mu      sync.Mutex
	pending map[string][3]string // op ID -> app, phase, detail
	wake    chan struct{}
}

func (q *phaseWrites) put(opID, app, name, detail string) {
	q.mu.Lock()
	if q.pending == nil {
		q.pending = make(map[string][3]string)
	}
	q.pending[opID] = [3]string{app, name, detail}
	q.mu.Unlock()
	signal(q.wake)
}

func (q *phaseWrites) take() map[string][3]string {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.pending
	q.pending = nil
	return p
}

// phaseLoop writes the phases put by phase.
func (s *Service) phaseLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.phases.wake:
		}
		for id, p := range s.phases.take() {
			if err := s.store.SetOperationPhase(s.ctx, id, p[1], p[2]); err != nil && s.ctx.Err() == nil {
				// Ended meanwhile, most likely: the end says more.
				s.log.Debug("record operation phase", "app", p[0], "op", id, "phase", p[1], "err", err)
			}
		}
	}
}

// appPhase is phase for code that does not hold the operation: the one
// running on app on this node, if any (one runs per app at a time).
func (s *Service) appPhase(ctx context.Context, app, name, detail string) {
	if op, ok := s.events.running(app); ok {
		s.phase(ctx, &op, name, detail)
	}
}

// begun is called once op is recorded as running.
func (s *Service) begun(ctx context.Context, op hotswap.Operation) {
	s.events.begin(op)
	if f, ok := ctx.Value(startedKey{}).(func(string)); ok {
		f(op.ID)
	}
}

// takenUp tells the context's WithOperationStarted func that a request
// goes on with op (a swap's complete or cancel).
func (s *Service) takenUp(ctx context.Context, op hotswap.Operation) {
	if f, ok := ctx.Value(startedKey{}).(func(string)); ok {
		f(op.ID)
	}
}

// ended publishes the end of op.
func (s *Service) ended(op hotswap.Operation, state hotswap.OperationState, detail string) {
	phase := PhaseDone
	switch {
	case state == hotswap.OpSucceeded:
	case strings.HasPrefix(detail, cancelledBy):
		phase = PhaseCancelled // a preview cancelled on purpose, not a failure
	default:
		phase = PhaseFailed
	}
	s.events.publish(op.ID, phase, detail, true, state)
}

type startedKey struct{}

// WithOperationStarted returns a context that makes the operations begun
// (or, for a swap's complete and cancel, taken up) under it call f with
// their ID, before they report any phase. f must not block.
func WithOperationStarted(ctx context.Context, f func(opID string)) context.Context {
	return context.WithValue(ctx, startedKey{}, f)
}

// Events returns the events of an operation so far, oldest first: nil
// for one this node does not know, or that ended more than a few minutes
// ago.
func (s *Service) Events(opID string) []OperationEvent {
	evs, _ := s.events.get(opID)
	return evs
}

// OperationEvents is Events that also reports whether this node knows the
// operation (a known one may have no event yet).
func (s *Service) OperationEvents(opID string) ([]OperationEvent, bool) {
	return s.events.get(opID)
}

// EventsChanged returns a channel closed by the next event of any
// operation: read the events after taking it, and wait on it for more.
func (s *Service) EventsChanged() <-chan struct{} { return s.events.changed() }

// Subscribe returns the events of app's operations (every app's if app is
// "") from now on, and a cancel func that ends the subscription. A
// subscriber that does not keep up loses its oldest queued events; the
// channel is never closed.
func (s *Service) Subscribe(app string) (<-chan OperationEvent, func()) {
	return s.events.subscribe(app)
}

// OperationProgress is where an app's newest operation on this node is.
type OperationProgress struct {
	ID      string           `json:"id"`
	Kind    string           `json:"kind"`
	Slot    string           `json:"slot"`
	Target  string           `json:"target,omitempty"` // the other slot of a swap; a deploy's deployment
	Phase   string           `json:"phase"`
	Detail  string           `json:"detail,omitempty"`
	Elapsed int64            `json:"elapsedMs"`
	End     bool             `json:"end"`
	State   string           `json:"state"`
	Phases  []OperationEvent `json:"phases"`
}

// Progress returns the operation that runs on app, or that ended within
// recent; ok is false when there is none. On a cluster an operation that
// another node runs is given by its phase in the store.
func (s *Service) Progress(ctx context.Context, app string, recent time.Duration) (OperationProgress, bool) {
	op, evs, ok := s.events.latest(app, recent)
	if ok {
		p := OperationProgress{ID: op.ID, Kind: op.Kind, Slot: op.Slot, Target: op.Target, State: string(hotswap.OpRunning), Phases: evs}
		p.Elapsed = max(s.events.clock().Sub(op.StartedAt), 0).Milliseconds()
		if n := len(evs); n > 0 {
			last := evs[n-1]
			p.Phase, p.Detail, p.End, p.State = last.Phase, last.Detail, last.End, last.State
			if last.End {
				p.Elapsed = last.Elapsed.Milliseconds()
			}
		}
		return p, true
	}
	if s.node == nil {
		return OperationProgress{}, false
	}
	list, err := s.store.ListOperations(ctx, app, 1)
	if err != nil || len(list) == 0 || list[0].State != hotswap.OpRunning {
		return OperationProgress{}, false
	}
	o := list[0]
	return OperationProgress{
		ID: o.ID, Kind: o.Kind, Slot: o.Slot, Target: o.Target, Phase: o.Phase, Detail: o.Detail,
		Elapsed: max(time.Since(o.StartedAt), 0).Milliseconds(), State: string(o.State), Phases: []OperationEvent{},
	}, true
}

// Background runs fn, which begins an operation, apart from the caller:
// it returns the operation's ID once it has begun, or fn's error if fn
// ends before beginning one. The operation goes on after ctx ends; Close
// waits for it.
func (s *Service) Background(ctx context.Context, fn func(ctx context.Context) error) (string, error) {
	started := make(chan string, 1)
	var once sync.Once
	ctx = WithOperationStarted(context.WithoutCancel(ctx), func(id string) {
		once.Do(func() { started <- id })
	})
	done := make(chan error, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// Apart from net/http's goroutine, a panic is recovered here, or
		// it would end the server.
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("panic in a background operation", "panic", v, "stack", string(debug.Stack()))
				done <- hotswap.Errorf(hotswap.Internal, "internal error")
			}
		}()
		done <- fn(ctx)
	}()
	select {
	case id := <-started:
		return id, nil
	case err := <-done:
		select {
		case id := <-started:
			return id, nil
		default:
		}
		if err == nil {
			err = hotswap.Errorf(hotswap.Internal, "the request began no operation")
		}
		return "", err
	}
}

// eofReader calls at once, when r first reports its end.
type eofReader struct {
	r    io.Reader
	at   func()
	done bool
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF && !e.done {
		e.done = true
		e.at()
	}
	return n, err
}
