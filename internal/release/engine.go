package release

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/ops"
	"github.com/hotswap/hotswap/internal/pipeline"
	"github.com/hotswap/hotswap/internal/rollout"
)

// Stats is a slot's request metrics over a window, for metric gates.
type Stats struct {
	Requests, Errors int64
	P95              time.Duration
}

// Metrics gives a slot's request metrics over the last d.
type Metrics interface {
	Window(app, slot string, d time.Duration) Stats
}

// Rollouts starts and follows progressive swaps; *rollout.Engine is one.
type Rollouts interface {
	Start(ctx context.Context, req rollout.StartRequest) (hotswap.Rollout, error)
	Active(ctx context.Context, app string) (hotswap.Rollout, bool, error)
	Watch(ctx context.Context, id string, f func(hotswap.Rollout)) (hotswap.Rollout, error)
	Command(ctx context.Context, actor, id string, cmd hotswap.RolloutCommand) (hotswap.Rollout, error)
}

// Config configures an Engine.
type Config struct {
	Store   Store
	Ops     *ops.Service
	Metrics Metrics // nil: metric gates fail
	// Rollouts runs the progressive swaps of stages whose swap has a
	// strategy; nil refuses them.
	Rollouts Rollouts
	Now      func() time.Time // nil: time.Now
	Tick     time.Duration    // how often waiting stages are looked at; zero = 1s
	Logger   *slog.Logger
	// Webhook delivery; nil uses a client with a 5s timeout.
	Notifier *Notifier

	// Leader tells whether this node runs the releases of a cluster
	// sharing the store (see cluster.go); nil: always, as one server does.
	Leader Leadership
	// Bus carries notifications between the nodes: a forwarded change
	// reaches the leader, and a change of holds the others, at once
	// instead of at their next tick. nil: ticks only.
	Bus Bus
	// NodeID names this node in the requests it forwards or takes.
	NodeID string
	// ForwardTimeout bounds the wait for the leader's answer to a change
	// asked of another node; zero is DefaultForwardTimeout.
	ForwardTimeout time.Duration
	// TakeoverDelay is how long a node holds the lead before it loads the
	// releases and acts: longer than the old leader needs to notice it
	// lost the lead, so that the two never both write. Zero is
	// DefaultTakeoverDelay; negative is none (tests).
	TakeoverDelay time.Duration
}

// Engine runs releases.
type Engine struct {
	// beforeSwap, set by tests only, runs between a stage's check of
	// what its source slot serves and its swap: where a forced deploy
	// can land.
	beforeSwap func()

	cfg   Config
	store Store
	ops   *ops.Service
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{}

	mu     sync.Mutex
	lead   *term                         // nil while this node does not run the releases
	active map[string]*Release           // by id; empty unless leading
	defs   map[string]*pipeline.Pipeline // by release id
	busy   map[string]bool               // release id + "/" + stage: an action or gate evaluation is under way
	sent   map[string]string             // release id: state and holds the followers were told of
	// waiting: release id/stage/attempt -> since when its step waits for
	// a deploy or swap another node started (see stillRunning)
	waiting map[string]time.Time

	follow follower  // the active releases, when another node leads
	pruned time.Time // when the loop last pruned answered requests
	held   time.Time // since when the Leader says this node leads, before it acts; zero: not
}

// Open loads the active releases and starts the engine. Stages that were
// running when the server stopped resume from their recorded step. With a
// Leader, the releases are loaded when this node takes the lead.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tick == 0 {
		cfg.Tick = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Notifier == nil {
		cfg.Notifier = NewNotifier(cfg.Logger)
	}
	if cfg.ForwardTimeout == 0 {
		cfg.ForwardTimeout = DefaultForwardTimeout
	}
	if cfg.TakeoverDelay == 0 {
		cfg.TakeoverDelay = DefaultTakeoverDelay
	}
	e := &Engine{
		cfg: cfg, store: cfg.Store, ops: cfg.Ops, log: cfg.Logger,
		wake:    make(chan struct{}, 1),
		active:  make(map[string]*Release),
		defs:    make(map[string]*pipeline.Pipeline),
		busy:    make(map[string]bool),
		sent:    make(map[string]string),
		waiting: make(map[string]time.Time),
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	if cfg.Leader == nil {
		if err := e.startLeading(ctx); err != nil {
			e.cancel()
			return nil, err
		}
	}
	e.wg.Add(1)
	go e.loop()
	if cfg.Bus != nil {
		e.wg.Add(1)
		go e.listen()
	}
	if e.ops != nil {
		e.ops.SetHolder(e)   // manual deploys and swaps respect the holds
		e.ops.SetVersions(e) // a quarantine records the artifact version
	}
	return e, nil
}

// Close stops the engine and waits for its actions. Idempotent.
func (e *Engine) Close() error {
	if e.ops != nil {
		e.ops.SetHolder(nil)
		e.ops.SetVersions(nil)
	}
	e.cancel()
	e.wg.Wait()
	e.cfg.Notifier.Close()
	return nil
}

// Wake asks the engine to look at the releases now.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Engine) loop() {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	for {
		var takeover <-chan time.Time
		if wait := e.tick(); wait > 0 {
			takeover = time.After(wait) // the lead will have been held long enough
		}
		var changed <-chan struct{}
		if e.cfg.Leader != nil {
			changed = e.cfg.Leader.Changed()
		}
		select {
		case <-e.ctx.Done():
			e.stopLeading()
			return
		case <-t.C:
		case <-e.wake:
		case <-changed:
		case <-takeover:
		}
	}
}

// step advances every active release, oldest first.
func (e *Engine) step() {
	e.mu.Lock()
	defer e.mu.Unlock()
	rels := make([]*Release, 0, len(e.active))
	for _, r := range e.active {
		rels = append(rels, r)
	}
	sort.Slice(rels, func(i, j int) bool { return rels[i].CreatedAt.Before(rels[j].CreatedAt) })
	for _, r := range rels {
		if r.ended() {
			continue
		}
		if e.advanceLocked(r) {
			e.saveLocked(r)
		}
	}
}

// saveLocked writes r to the store and, once it ended, forgets it. A node
// that lost the lead writes nothing: the new leader owns the release.
func (e *Engine) saveLocked(r *Release) {
	if !e.leadsLocked() {
		return
	}
	doc, err := r.encode()
	if err == nil {
		err = e.store.SaveRelease(context.WithoutCancel(e.ctx), r.ID, r.State, doc)
	}
	if err != nil {
		e.log.Error("save release", "release", r.ID, "err", err)
	}
	if err == nil {
		e.changedLocked(r)
	}
	if r.ended() {
		delete(e.active, r.ID)
		delete(e.defs, r.ID)
	}
}

func (e *Engine) now() time.Time { return e.cfg.Now().UTC() }

// advanceLocked moves r's stages on as far as they can go now. It reports
// whether anything changed.
func (e *Engine) advanceLocked(r *Release) bool {
	def := e.defs[r.ID]
	now := e.now()
	changed := false
	for _, sd := range def.Order() {
		st := r.stage(sd.Name)
		if e.busy[r.ID+"/"+st.Name] {
			continue
		}
		switch st.State {
		case StagePending:
			if !e.afterDone(r, sd) {
				continue
			}
			if sd.Manual && !st.Started {
				if st.Detail == "" {
					st.Detail = "waiting for a manual start (release redeploy --stage " + st.Name + ")"
					changed = true
				}
				continue
			}
			st.State, st.QueuedAt, st.Detail = StageQueued, now, ""
			st.logf(now, "queued")
			e.notify(r, st)
			changed = true
			fallthrough
		case StageQueued:
			if wait := e.queueLocked(r, sd, st, now); wait != "" {
				if st.Detail != wait {
					st.Detail = wait
					st.logf(now, wait)
					changed = true
				}
				continue
			}
			st.Detail = ""
			if sd.Approval != nil {
				st.State, st.ApprovalRequestedAt = StageApproval, now
				st.logf(now, fmt.Sprintf("approval requested from %s (%d needed)", strings.Join(sd.Approval.Approvers, ", "), sd.Approval.Required))
				e.notify(r, st)
				changed = true
				continue
			}
			e.toGatesLocked(r, sd, st, now)
			changed = true
		case StageApproval:
			if e.approvalLocked(r, sd, st, now) {
				changed = true
			}
		case StageGates:
			if e.gatesDueLocked(r, sd, st, now) {
				e.busy[r.ID+"/"+st.Name] = true
				e.lead.wg.Add(1)
				go e.evaluateGates(e.lead, r.ID, st.Name, st.Attempt)
			}
			// A gate's own timeout is checked by the evaluation.
		case StageRunning:
			e.busy[r.ID+"/"+st.Name] = true
			e.lead.wg.Add(1)
			go e.run(e.lead, r.ID, st.Name, st.Attempt)
		case StageSucceeded:
		case StageFailed, StageRejected, StageCancelled:
			e.endLocked(r, map[string]string{StageFailed: Failed, StageRejected: Rejected, StageCancelled: Cancelled}[st.State], "stage "+st.Name+" "+st.State)
			return true
		}
	}
	all := true
	for _, st := range r.Stages {
		all = all && st.State == StageSucceeded
	}
	if all {
		e.endLocked(r, Succeeded, "")
		changed = true
	}
	return changed
}

func (e *Engine) afterDone(r *Release, sd *pipeline.Stage) bool {
	for _, name := range sd.After {
		if r.stage(name).State != StageSucceeded {
			return false
		}
	}
	return true
}

// queueLocked applies the stage's queue policy and the slot holds. It
// returns why the stage must wait, or "" when it may go on (having cancelled
// older releases under the latest policy).
func (e *Engine) queueLocked(r *Release, sd *pipeline.Stage, st *StageRun, now time.Time) string {
	var blockers []*Release
	for _, o := range e.active {
		if o == r || o.ended() || !o.CreatedAt.Before(r.CreatedAt) && !(o.CreatedAt.Equal(r.CreatedAt) && o.ID < r.ID) {
			continue // only older releases block
		}
		blocks := false
		if o.PipelineID == r.PipelineID {
			if os := o.stage(st.Name); os != nil && os.State != StagePending && os.State != StageSucceeded && os.State != StageFailed && os.State != StageRejected && os.State != StageCancelled {
				blocks = true // the same stage of an older release is under way
			}
		}
		if sd.Deploy != nil && o.holds(slotKey(sd.Deploy.App, sd.Deploy.Slot)) {
			blocks = true // the older release deployed there and has not swapped it on
		}
		if blocks {
			blockers = append(blockers, o)
		}
	}
	if len(blockers) == 0 {
		return ""
	}
	if sd.Queue == "latest" {
		for _, o := range blockers {
			if e.busyRelease(o.ID) {
				return fmt.Sprintf("waiting: release %s is running an action; it is cancelled once that ends (queue: latest)", o.Name)
			}
		}
		for _, o := range blockers {
			for _, os := range o.Stages {
				if os.State != StageSucceeded && os.State != StageFailed && os.State != StageRejected {
					os.State, os.EndedAt = StageCancelled, now
					os.logf(now, fmt.Sprintf("cancelled: newer release %s takes its place (queue: latest)", r.Name))
				}
			}
			e.endLocked(o, Cancelled, fmt.Sprintf("cancelled by newer release %s (stage %s, queue: latest)", r.Name, st.Name))
			e.saveLocked(o)
			st.logf(now, fmt.Sprintf("cancelled older release %s (queue: latest)", o.Name))
		}
		return ""
	}
	names := make([]string, 0, len(blockers))
	for _, o := range blockers {
		names = append(names, o.Name)
	}
	why := "in sequence after release " + strings.Join(names, ", ")
	if sd.Deploy != nil {
		for _, o := range blockers {
			if o.holds(slotKey(sd.Deploy.App, sd.Deploy.Slot)) {
				why = fmt.Sprintf("slot %s/%s is held by release %s until it swaps it on", sd.Deploy.App, sd.Deploy.Slot, o.Name)
			}
		}
	}
	return "waiting: " + why
}

func (e *Engine) busyRelease(id string) bool {
	for k, v := range e.busy {
		if v && strings.HasPrefix(k, id+"/") {
			return true
		}
	}
	return false
}

func (e *Engine) toGatesLocked(r *Release, sd *pipeline.Stage, st *StageRun, now time.Time) {
	if len(sd.Gates) == 0 {
		st.State, st.StartedAt, st.Step = StageRunning, now, ""
		st.logf(now, "running")
		e.notify(r, st)
		return
	}
	st.State, st.GatesStartedAt = StageGates, now
	st.Gates = make([]GateRun, len(sd.Gates))
	st.logf(now, fmt.Sprintf("evaluating %d gate(s)", len(sd.Gates)))
	e.notify(r, st)
}

// approvalLocked settles a stage waiting for approval.
func (e *Engine) approvalLocked(r *Release, sd *pipeline.Stage, st *StageRun, now time.Time) bool {
	approved := 0
	for _, a := range st.Approvals {
		if a.Attempt != st.Attempt {
			continue
		}
		if a.Decision == "rejected" {
			st.State, st.EndedAt, st.Detail = StageRejected, now, "rejected by "+a.User
			st.logf(now, st.Detail)
			e.notify(r, st)
			return true
		}
		approved++
	}
	if approved >= sd.Approval.Required {
		st.logf(now, fmt.Sprintf("approved (%d of %d)", approved, sd.Approval.Required))
		e.toGatesLocked(r, sd, st, now)
		return true
	}
	if !now.Before(st.ApprovalRequestedAt.Add(sd.Approval.Timeout)) {
		st.State, st.EndedAt, st.Detail = StageRejected, now, fmt.Sprintf("approval timed out after %v", sd.Approval.Timeout)
		st.logf(now, st.Detail)
		e.notify(r, st)
		return true
	}
	return false
}

// gatesDueLocked reports whether a gate of the stage is due for evaluation
// (or past its timeout).
func (e *Engine) gatesDueLocked(r *Release, sd *pipeline.Stage, st *StageRun, now time.Time) bool {
	for i, g := range sd.Gates {
		gr := st.Gates[i]
		if gr.Passed {
			continue
		}
		start := st.GatesStartedAt.Add(g.Delay)
		if now.Before(start) {
			continue
		}
		if gr.LastEval.IsZero() || !now.Before(gr.LastEval.Add(g.Every)) || !now.Before(st.GatesStartedAt.Add(g.Delay+g.Timeout)) {
			return true
		}
	}
	return false
}

// evaluateGates samples the due gates (outside the lock: probes take time)
// and records the results.
func (e *Engine) evaluateGates(t *term, id, stage string, attempt int) {
	defer t.wg.Done()
	e.mu.Lock()
	r, def := e.active[id], e.defs[id]
	if r == nil {
		delete(e.busy, id+"/"+stage)
		e.mu.Unlock()
		return
	}
	sd, st := def.Stage(stage), r.stage(stage)
	now := e.now()
	type job struct {
		i int
		g pipeline.Gate
	}
	var jobs []job
	for i, g := range sd.Gates {
		gr := st.Gates[i]
		if gr.Passed || now.Before(st.GatesStartedAt.Add(g.Delay)) {
			continue
		}
		if gr.LastEval.IsZero() || !now.Before(gr.LastEval.Add(g.Every)) {
			jobs = append(jobs, job{i, g})
		}
	}
	e.mu.Unlock()

	type result struct{ fail, note string }
	results := make(map[int]result) // fail "" = success
	for _, j := range jobs {
		fail, note := e.sampleGate(t.ctx, j.g)
		results[j.i] = result{fail, note}
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.busy, id+"/"+stage)
	if e.lead != t || r.ended() || st.State != StageGates || st.Attempt != attempt {
		return
	}
	now = e.now()
	for i, rn := range results {
		g, gr, res := sd.Gates[i], &st.Gates[i], rn.fail
		gr.LastEval = now
		if res == "" {
			if gr.FirstSuccess.IsZero() {
				gr.FirstSuccess = now
			}
			gr.Last = "passed"
			if rn.note != "" {
				gr.Last = rn.note
			}
			if now.Sub(gr.FirstSuccess) >= g.MinSuccess {
				gr.Passed = true
				msg := fmt.Sprintf("gate %d (%s) passed", i+1, gateName(g))
				if rn.note != "" {
					msg += " (" + rn.note + ")"
				}
				st.logf(now, msg)
			}
		} else {
			gr.FirstSuccess, gr.Last = time.Time{}, res
			st.logf(now, fmt.Sprintf("gate %d (%s) not yet: %s", i+1, gateName(g), res))
		}
	}
	all := true
	for i, g := range sd.Gates {
		gr := st.Gates[i]
		all = all && gr.Passed
		if !gr.Passed && !now.Before(st.GatesStartedAt.Add(g.Delay+g.Timeout)) {
			st.State, st.EndedAt = StageFailed, now
			st.Detail = fmt.Sprintf("gate %d (%s) did not pass within %v: %s", i+1, gateName(g), g.Timeout, orDash(gr.Last))
			st.logf(now, st.Detail)
			e.notify(r, st)
			e.saveLocked(r)
			e.Wake()
			return
		}
	}
	if all {
		st.State, st.StartedAt, st.Step = StageRunning, now, ""
		st.logf(now, "all gates passed; running")
		e.notify(r, st)
	}
	e.saveLocked(r)
	e.Wake()
}

func orDash(s string) string {
	if s == "" {
		return "not evaluated"
	}
	return s
}

func gateName(g pipeline.Gate) string {
	if g.HTTP != nil {
		return fmt.Sprintf("http %s/%s %s", g.HTTP.App, g.HTTP.Slot, g.HTTP.Path)
	}
	return fmt.Sprintf("metric %s/%s", g.Metric.App, g.Metric.Slot)
}

// sampleGate evaluates one gate once: fail is "" when it holds, else why
// not; note says how it held when that needs saying (a metric gate with no
// traffic to judge).
func (e *Engine) sampleGate(ctx context.Context, g pipeline.Gate) (fail, note string) {
	if g.HTTP != nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		status, err := e.ops.Probe(ctx, g.HTTP.App, g.HTTP.Slot, g.HTTP.Path, g.HTTP.Key)
		if err != nil {
			return "probe failed: " + err.Error(), ""
		}
		if !slices.Contains(g.HTTP.Expect, status) {
			return fmt.Sprintf("answered %d, expected %v", status, g.HTTP.Expect), ""
		}
		return "", ""
	}
	m := g.Metric
	if e.cfg.Metrics == nil {
		return "no metrics available", ""
	}
	s := e.cfg.Metrics.Window(m.App, m.Slot, m.Window)
	if s.Requests < int64(m.MinRequests) {
		return fmt.Sprintf("%d requests in %v, fewer than %d", s.Requests, m.Window, m.MinRequests), ""
	}
	if s.Requests == 0 {
		// minRequests 0 lets the gate pass without traffic; say so.
		return "", fmt.Sprintf("no data: no requests in %v", m.Window)
	}
	var rate float64
	if s.Requests > 0 {
		rate = float64(s.Errors) / float64(s.Requests)
	}
	if m.MaxErrorRate > 0 && rate > m.MaxErrorRate {
		return fmt.Sprintf("error rate %.4f over %v exceeds %.4f", rate, m.Window, m.MaxErrorRate), ""
	}
	if m.MaxP95 > 0 && s.P95 > m.MaxP95 {
		return fmt.Sprintf("p95 %v over %v exceeds %v", s.P95, m.Window, m.MaxP95), ""
	}
	return "", ""
}

// endLocked ends a release and frees its slots.
func (e *Engine) endLocked(r *Release, state, detail string) {
	now := e.now()
	r.State, r.EndedAt, r.Detail, r.Holds = state, now, detail, nil
	for _, st := range r.Stages {
		if st.State == StagePending || st.State == StageQueued || st.State == StageApproval || st.State == StageGates {
			if state != Succeeded {
				st.State, st.EndedAt = StageCancelled, now
				st.logf(now, "cancelled: the release "+state)
			}
		}
	}
	e.cfg.Notifier.Send(r.PipelineID, e.webhook(r), Event{Event: "release", Release: r.Name, ReleaseID: r.ID, State: state, Detail: detail, Time: now})
}

func (e *Engine) notify(r *Release, st *StageRun) {
	e.cfg.Notifier.Send(r.PipelineID, e.webhook(r), Event{Event: "stage", Release: r.Name, ReleaseID: r.ID, Stage: st.Name, State: st.State, Detail: st.Detail, Time: e.now()})
}

func (e *Engine) webhook(r *Release) string {
	def := e.defs[r.ID]
	if def == nil || def.Webhook == "" {
		return ""
	}
	return def.Webhook
}

func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

var errEnded = errors.New("release ended")
