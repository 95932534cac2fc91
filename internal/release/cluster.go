package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/pipeline"
)

// Releases in a cluster.
//
// Several nodes share one PostgreSQL store and each runs an Engine, but one
// of them, the leader (Config.Leader: an advisory lock in the store), runs
// the releases: it alone holds the active releases in memory and advances
// them (queues, approvals' effects, gates, deploys, swaps, checks), exactly
// as a single server does. The others run no stage and hold no release: they
// read releases from the store, and keep a copy of the active ones (read
// again at every tick and when the leader says they changed) to answer
// HeldBy, so that manual deploys and swaps respect the holds on every node.
//
// A change asked of a node that does not lead (CreateRelease and the
// releases of PushArtifact, Decide, Redeploy, Abandon, ForceRelease) is
// forwarded through the store: the node leaves a request (kind, arguments
// and actor as JSON) in the store's release requests, notifies
// hotswap_releases and waits for the answer. The leader takes the waiting
// requests on that notification and at every tick, carries each out as the
// actor who asked (the same checks and errors as if asked of it directly)
// and writes back the release or the error.
//
// Why forwarding and not a read-modify-write of the stored document from
// any node: the leader's in-memory release is what advances, and it writes
// the whole document after every change, so a change another node made in
// the store would be overwritten. Forwarding keeps one writer per release.
//
// A request is taken at most once. If nobody takes it within
// Config.ForwardTimeout (no leader: the lock is being taken over), the asker
// withdraws it and reports that nothing changed. If the leader took it but
// stopped before answering, it is never run again and the asker reports
// that the change may or may not have been made, naming the release to
// check.
//
// A node that becomes leader waits Config.TakeoverDelay, longer than the
// old leader needs to notice it lost the lock (its leadership's ping), then
// loads the active releases from the store, as Open does on one server; a
// stage that was running resumes at its recorded step. So the two never
// both write a release: what the old leader wrote last (an approval, a new
// release) is what the new one reads. A node that loses the lead cancels
// its actions in flight, drops its releases and writes nothing more: every
// write checks the Leader right before it (leadsLocked), so nothing is
// written between losing the lock and the loop noticing. An action the old
// leader started may still be finishing when the new one resumes (a deploy
// or swap that was already under way in ops): the new leader finds it by its
// marker, or waits for it and tries again (see run), instead of failing.

// Leadership tells whether this node runs the releases of the cluster
// (*postgres.Leadership, an advisory lock in the store).
type Leadership interface {
	IsLeader() bool
	// Changed is signalled (sent on or closed) when IsLeader may have
	// changed; the engine calls it again after each signal.
	Changed() <-chan struct{}
}

// Bus carries notifications between the nodes of a cluster (*postgres.DB).
type Bus interface {
	Notify(ctx context.Context, channel, payload string) error
	// Listen calls notify for every notification until ctx is done, and
	// with an empty channel after each (re)connection.
	Listen(ctx context.Context, notify func(channel, payload string)) error
}

// Channel is the notification channel of the release engines: "request"
// when a request waits for the leader, "changed" when the leader changed
// the active releases or their holds.
const Channel = "hotswap_releases"

// DefaultTakeoverDelay is how long a node holds the lead before it acts:
// longer than the old leader needs to notice its loss (its leadership
// pings every second, a failed ping takes up to a second: 2 s, plus a
// margin).
const DefaultTakeoverDelay = 2500 * time.Millisecond

// DefaultForwardTimeout is how long a node that does not lead waits for the
// leader to answer a forwarded change.
const DefaultForwardTimeout = 30 * time.Second

// requestsKept is how long answered requests stay in the store.
const requestsKept = time.Hour

// errNotLeader is returned by the local side of a change when this node
// does not lead (any more): the change is forwarded instead.
var errNotLeader = errors.New("this node does not run the releases")

// term is one period during which this node leads. Its context ends when
// the lead is lost or the engine closes; wg counts its actions in flight.
type term struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// leading reports whether this node runs the releases now.
func (e *Engine) leading() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lead != nil
}

// startLeading loads the active releases from the store and makes this
// node run them.
func (e *Engine) startLeading(ctx context.Context) error {
	rows, err := e.store.ListReleases(ctx, "", Active, 0)
	if err != nil {
		return fmt.Errorf("load releases: %w", err)
	}
	active := make(map[string]*Release, len(rows))
	defs := make(map[string]*pipeline.Pipeline, len(rows))
	for _, row := range rows {
		r, err := decode(row.Doc)
		if err != nil {
			return fmt.Errorf("load release %s: %w", row.ID, err)
		}
		def, err := pipeline.Parse([]byte(r.Definition), nil)
		if err != nil {
			return fmt.Errorf("load release %s: its definition no longer parses: %w", row.ID, err)
		}
		active[r.ID], defs[r.ID] = r, def
	}
	t := &term{}
	t.ctx, t.cancel = context.WithCancel(e.ctx)
	e.mu.Lock()
	e.active, e.defs, e.busy, e.sent = active, defs, make(map[string]bool), make(map[string]string)
	e.waiting = make(map[string]time.Time)
	e.lead = t
	e.mu.Unlock()
	if e.cfg.Leader != nil {
		e.log.Info("this node runs the releases now", "active", len(active))
	}
	return nil
}

// stopLeading ends this node's term: its actions in flight are cancelled
// and waited for, and its releases dropped. Nothing is written after the
// lead is lost (saveLocked checks e.lead).
func (e *Engine) stopLeading() {
	e.mu.Lock()
	t := e.lead
	e.lead = nil
	e.mu.Unlock()
	if t == nil {
		return
	}
	t.cancel()
	t.wg.Wait()
	e.mu.Lock()
	e.active, e.defs, e.busy, e.sent = make(map[string]*Release), make(map[string]*pipeline.Pipeline), make(map[string]bool), make(map[string]string)
	e.mu.Unlock()
	if e.cfg.Leader != nil && e.ctx.Err() == nil {
		e.log.Warn("this node lost the lead: another node runs the releases")
	}
}

// tick follows the leadership, then advances the releases (leader) or
// reads the active ones again (follower). It returns how soon it wants to
// be called again: when a lead just gained will have been held for
// Config.TakeoverDelay; zero: at the next tick or signal.
func (e *Engine) tick() time.Duration {
	var wait time.Duration
	if l := e.cfg.Leader; l != nil {
		lead := l.IsLeader()
		switch {
		case !lead:
			e.held = time.Time{}
			if e.leading() {
				e.stopLeading()
			}
		case !e.leading():
			// The old leader may not have noticed yet that it lost the
			// lock, and writes until it does: load the releases only once
			// it has, so that what it wrote last is read.
			now := time.Now()
			if e.held.IsZero() {
				e.held = now
				if e.cfg.TakeoverDelay > 0 {
					e.log.Info("this node took the lead; it runs the releases once the old leader has stopped", "after", e.cfg.TakeoverDelay)
				}
			}
			if wait = e.cfg.TakeoverDelay - now.Sub(e.held); wait > 0 {
				break
			}
			wait = 0
			if err := e.startLeading(e.ctx); err != nil {
				e.log.Error("take over the releases", "err", err)
			}
		}
	}
	if !e.leading() {
		if err := e.refresh(e.ctx); err != nil && e.ctx.Err() == nil {
			e.log.Error("read active releases", "err", err)
		}
		return wait
	}
	if e.cfg.Leader != nil {
		e.drain()
	}
	e.step()
	return 0
}

// leadsLocked reports whether this node may write releases now: it runs
// them and its Leader still says so. A node that lost the lock writes
// nothing, even before its loop noticed.
func (e *Engine) leadsLocked() bool {
	return e.lead != nil && (e.cfg.Leader == nil || e.cfg.Leader.IsLeader())
}

// listen wakes the engine on the release engines' notifications.
func (e *Engine) listen() {
	defer e.wg.Done()
	for e.ctx.Err() == nil {
		err := e.cfg.Bus.Listen(e.ctx, func(channel, _ string) {
			if channel == Channel || channel == "" {
				e.Wake()
			}
		})
		if e.ctx.Err() != nil {
			return
		}
		e.log.Error("listen for release notifications", "err", err)
		select {
		case <-e.ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// broadcast notifies the other nodes; a lost notification only delays
// them to their next tick.
func (e *Engine) broadcast(payload string) {
	if e.cfg.Bus == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 5*time.Second)
	defer cancel()
	if err := e.cfg.Bus.Notify(ctx, Channel, payload); err != nil {
		e.log.Warn("notify release engines", "payload", payload, "err", err)
	}
}

// changedLocked tells the followers when r's state or holds changed, so
// that their HeldBy sees it before their next tick.
func (e *Engine) changedLocked(r *Release) {
	if e.cfg.Bus == nil {
		return
	}
	sig := r.State + "\x00" + fmt.Sprint(r.Holds)
	if e.sent[r.ID] == sig {
		return
	}
	if r.ended() {
		delete(e.sent, r.ID)
	} else {
		e.sent[r.ID] = sig
	}
	e.broadcast("changed")
}

// follower is what a node that does not lead knows of the active releases.
type follower struct {
	mu     sync.Mutex
	active []*Release // oldest first
	at     time.Time  // when read; zero: never
}

// refresh reads the active releases from the store for HeldBy.
func (e *Engine) refresh(ctx context.Context) error {
	rows, err := e.store.ListReleases(ctx, "", Active, 0)
	if err != nil {
		return err
	}
	active := make([]*Release, 0, len(rows))
	for _, row := range rows {
		r, err := decode(row.Doc)
		if err != nil {
			return fmt.Errorf("release %s: %w", row.ID, err)
		}
		active = append(active, r)
	}
	sort.Slice(active, func(i, j int) bool { return active[i].CreatedAt.Before(active[j].CreatedAt) })
	e.follow.mu.Lock()
	e.follow.active, e.follow.at = active, time.Now()
	e.follow.mu.Unlock()
	return nil
}

// followerActive returns the active releases as a node that does not lead
// knows them, read again when older than a tick.
func (e *Engine) followerActive() []*Release {
	e.follow.mu.Lock()
	stale := time.Since(e.follow.at) > max(e.cfg.Tick, 100*time.Millisecond)
	e.follow.mu.Unlock()
	if stale {
		ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
		if err := e.refresh(ctx); err != nil && e.ctx.Err() == nil {
			e.log.Error("read active releases", "err", err)
		}
		cancel()
	}
	e.follow.mu.Lock()
	defer e.follow.mu.Unlock()
	return e.follow.active
}

// request is a forwarded change: its kind says which fields count.
type request struct {
	Actor   Actor  `json:"actor"`
	Release string `json:"release,omitempty"` // id or name
	Stage   string `json:"stage,omitempty"`
	Approve bool   `json:"approve,omitempty"`
	Comment string `json:"comment,omitempty"`
	// create
	ID         string `json:"id,omitempty"`
	PipelineID string `json:"pipelineId,omitempty"`
	Feed       string `json:"feed,omitempty"`
	Version    string `json:"version,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// force
	Action string `json:"action,omitempty"`
	App    string `json:"app,omitempty"`
	Slot   string `json:"slot,omitempty"`
}

// answer is the leader's answer to a request.
type answer struct {
	Release *Release     `json:"release,omitempty"`
	Error   *answerError `json:"error,omitempty"`
}

type answerError struct {
	Kind hotswap.Kind `json:"kind"`
	Msg  string       `json:"msg"`
}

// Request kinds.
const (
	reqCreate   = "create"
	reqDecide   = "decide"
	reqRedeploy = "redeploy"
	reqAbandon  = "abandon"
	reqForce    = "force"
)

// leaderDo runs a change here when this node leads, else forwards it.
func (e *Engine) leaderDo(ctx context.Context, kind string, req request, local func() (*Release, error)) (*Release, error) {
	if e.leading() {
		r, err := local()
		if !errors.Is(err, errNotLeader) {
			return r, err
		}
	}
	if e.cfg.Leader == nil {
		return nil, hotswap.Errorf(hotswap.Unavailable, "the release engine is closed")
	}
	return e.forward(ctx, kind, req)
}

// forward leaves a request for the leader and waits for its answer.
func (e *Engine) forward(ctx context.Context, kind string, req request) (*Release, error) {
	args, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	id := newID("q-")
	if err := e.store.AddReleaseRequest(ctx, hotswap.ReleaseRequest{ID: id, Kind: kind, Args: string(args), Node: e.cfg.NodeID}); err != nil {
		return nil, fmt.Errorf("forward %s to the node that runs the releases: %w", kind, err)
	}
	e.broadcast("request")
	deadline := time.NewTimer(e.cfg.ForwardTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			e.withdraw(id)
			return nil, ctx.Err()
		case <-deadline.C:
			return e.forwardTimedOut(kind, id, req)
		case <-poll.C:
		}
		q, err := e.store.GetReleaseRequest(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("wait for the answer to %s: %w", kind, err)
		}
		if !q.DoneAt.IsZero() {
			return decodeAnswer(q)
		}
	}
}

// withdraw cancels a request whose asker gave up, if nobody took it.
func (e *Engine) withdraw(id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 5*time.Second)
	defer cancel()
	if _, err := e.store.CancelReleaseRequest(ctx, id); err != nil {
		e.log.Error("withdraw release request", "request", id, "err", err)
	}
}

// forwardTimedOut withdraws a request nobody answered in time, or says
// who took it and did not answer.
func (e *Engine) forwardTimedOut(kind, id string, req request) (*Release, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 5*time.Second)
	defer cancel()
	ok, err := e.store.CancelReleaseRequest(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("withdraw %s after %v: %w", kind, e.cfg.ForwardTimeout, err)
	}
	if ok {
		return nil, hotswap.Errorf(hotswap.Unavailable, "no node took the %s request within %v: no node runs the releases now (the lead is being taken over, or the other nodes are down); nothing was changed, try again", kind, e.cfg.ForwardTimeout)
	}
	q, err := e.store.GetReleaseRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if !q.DoneAt.IsZero() {
		return decodeAnswer(q)
	}
	what := "the release"
	if req.Release != "" {
		what = "release " + req.Release
	}
	return nil, hotswap.Errorf(hotswap.Unavailable, "node %s took the %s request but did not answer within %v; it may have stopped: check %s before trying again", q.TakenBy, kind, e.cfg.ForwardTimeout, what)
}

func decodeAnswer(q hotswap.ReleaseRequest) (*Release, error) {
	if q.Result == "" {
		return nil, hotswap.Errorf(hotswap.Unavailable, "the %s request was withdrawn before any node took it; nothing was changed", q.Kind)
	}
	var a answer
	if err := json.Unmarshal([]byte(q.Result), &a); err != nil {
		return nil, fmt.Errorf("answer to release request %s: %w", q.ID, err)
	}
	if a.Error != nil {
		return nil, &hotswap.Error{Kind: a.Error.Kind, Msg: a.Error.Msg}
	}
	return a.Release, nil
}

// drain carries out the waiting requests; it runs on the leader's loop.
func (e *Engine) drain() {
	if !e.cfg.Leader.IsLeader() {
		return // lost the lock: the new leader takes them
	}
	reqs, err := e.store.TakeReleaseRequests(e.ctx, e.cfg.NodeID)
	if err != nil {
		if e.ctx.Err() == nil {
			e.log.Error("take release requests", "err", err)
		}
		return
	}
	for _, q := range reqs {
		res := e.execute(q)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), 5*time.Second)
		if err := e.store.AnswerReleaseRequest(ctx, q.ID, res); err != nil {
			e.log.Error("answer release request", "request", q.ID, "kind", q.Kind, "err", err)
		}
		cancel()
	}
	if now := time.Now(); now.Sub(e.pruned) > time.Minute {
		e.pruned = now
		if err := e.store.PruneReleaseRequests(e.ctx, now.Add(-requestsKept)); err != nil && e.ctx.Err() == nil {
			e.log.Error("prune release requests", "err", err)
		}
	}
}

// execute carries out one request as its actor and encodes the answer.
func (e *Engine) execute(q hotswap.ReleaseRequest) string {
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.ForwardTimeout)
	defer cancel()
	var r *Release
	var req request
	err := json.Unmarshal([]byte(q.Args), &req)
	if err == nil {
		switch q.Kind {
		case reqCreate:
			r, err = e.createRequested(ctx, req)
		case reqDecide:
			r, err = e.decide(ctx, req.Actor, req.Release, req.Stage, req.Approve, req.Comment)
		case reqRedeploy:
			r, err = e.redeploy(ctx, req.Actor, req.Release, req.Stage)
		case reqAbandon:
			r, err = e.abandon(ctx, req.Actor, req.Release)
		case reqForce:
			err = e.forceRelease(ctx, req.Release, req.Actor.Name, req.Action, req.App, req.Slot)
		default:
			err = hotswap.Errorf(hotswap.Invalid, "unknown release request %q (a newer node asked?)", q.Kind)
		}
	}
	var a answer
	switch {
	case errors.Is(err, errNotLeader):
		a.Error = &answerError{Kind: hotswap.Unavailable, Msg: "the node running the releases lost the lead before carrying out the request; nothing was changed, try again"}
	case err != nil:
		if hotswap.ErrorKind(err) == hotswap.Internal {
			e.log.Error("release request", "request", q.ID, "kind", q.Kind, "node", q.Node, "err", err)
		}
		a.Error = &answerError{Kind: hotswap.ErrorKind(err), Msg: hotswap.ErrorMessage(err)}
	default:
		a.Release = r
	}
	b, err := json.Marshal(a)
	if err != nil {
		b, _ = json.Marshal(answer{Error: &answerError{Kind: hotswap.Internal, Msg: "internal error"}})
	}
	return string(b)
}

// createRequested creates the release another node asked for.
func (e *Engine) createRequested(ctx context.Context, req request) (*Release, error) {
	p, err := e.store.GetPipeline(ctx, req.PipelineID, true)
	if err != nil {
		return nil, err
	}
	def, err := pipeline.Parse([]byte(p.Definition), nil)
	if err != nil {
		return nil, err
	}
	a, err := e.store.GetArtifact(ctx, req.Feed, req.Version)
	if err != nil {
		return nil, err
	}
	return e.createLocal(ctx, req.ID, p, def, a, req.Actor, req.Reason)
}
