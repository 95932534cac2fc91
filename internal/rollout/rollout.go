// Package rollout runs progressive swaps: a slot gets a growing share of
// production's requests, step by step, while its error rate and latency are
// read against production's at the same time; passing the last step swaps
// it into production as a plain swap does, failing one takes the share away
// and quarantines the deployment.
//
// A rollout's state lives in the store (hotswap.Rollout), written by
// compare-and-set. The engine's loop moves each rollout on; the API's
// commands (pause, resume, promote, abort) change the stored state and the
// loop acts on it. Every move is written before its effect and every effect
// can be repeated (the share is set to what the state says, a swap looks
// first whether it happened), so a process that dies between the two
// finishes the move when it, or another node, runs the loop again. The
// metrics of a step live in memory: after a restart the step's time starts
// again, with its share still set.
package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/metrics"
	"github.com/hotswap/hotswap/internal/ops"
)

// Store keeps rollouts.
type Store interface {
	// CreateRollout stores a new rollout with Version 1: Conflict if the
	// app has one that has not ended.
	CreateRollout(ctx context.Context, r hotswap.Rollout) (hotswap.Rollout, error)
	// UpdateRollout writes r if the stored version is r.Version, and
	// returns it with the next version; Conflict otherwise.
	UpdateRollout(ctx context.Context, r hotswap.Rollout) (hotswap.Rollout, error)
	Rollout(ctx context.Context, id string) (hotswap.Rollout, error)
	ActiveRollouts(ctx context.Context) ([]hotswap.Rollout, error)
	Rollouts(ctx context.Context, app string, limit int) ([]hotswap.Rollout, error)
	// AddActivity appends to the app's activity log.
	AddActivity(ctx context.Context, a hotswap.Activity) error
}

// Ops is what a rollout changes: the traffic rules, the swap, quarantine.
// *ops.Service implements it.
type Ops interface {
	// SetShare sets one slot's share of production's traffic (0: no
	// rule), keeping the others', from the store's rules; it reports
	// whether it changed them.
	SetShare(ctx context.Context, actor, app, slot string, percent float64) (bool, error)
	SlotDeployment(ctx context.Context, app, slot string) (string, error)
	Swap(ctx context.Context, req ops.SwapRequest) (ops.SwapResult, error)
	QuarantineDeployment(ctx context.Context, actor, app, id, reason string) (hotswap.Quarantine, error)
}

// Metrics gives a slot's lifetime request counts: this node's (Local), or
// every node's of a cluster. A step's figures are the difference between
// a reading at its start and one now, however long the step.
type Metrics interface {
	Totals(ctx context.Context, app, slot string) (metrics.Totals, error)
}

// Local reads one server's registry.
func Local(r *metrics.Registry) Metrics { return localMetrics{r} }

type localMetrics struct{ r *metrics.Registry }

func (l localMetrics) Totals(_ context.Context, app, slot string) (metrics.Totals, error) {
	return l.r.Totals(app, slot), nil
}

// Config configures an Engine.
type Config struct {
	Store   Store
	Ops     Ops
	Metrics Metrics
	// Now is the engine's clock; nil is time.Now. Tests inject one, with
	// the metrics registry on the same clock.
	Now func() time.Time
	// Tick is how often the loop looks at the rollouts; zero is 1s.
	// Negative runs no loop: tests call Tick themselves.
	Tick time.Duration
	// Leader tells whether this node runs the rollouts of a cluster; nil
	// is always.
	Leader func() bool
	// TakeoverDelay is how long a node leads before it acts, so that the
	// old leader has noticed it lost the lead; zero is 2.5s (as the
	// release engine's), negative none. Unused without a Leader.
	TakeoverDelay time.Duration
	Logger        *slog.Logger
	// CrashPoint, for crash-safety tests only, names a point between a
	// move and its effect where the engine kills its process (SIGKILL):
	// rollout.step-passed, rollout.failing, rollout.swapping,
	// rollout.swapped.
	CrashPoint string
}

// Engine runs rollouts.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{}

	// id names this engine in the rollouts it runs (Rollout.Runner).
	id string

	mu sync.Mutex
	// busy: rollouts a goroutine is moving on.
	busy map[string]bool
	// bases: by rollout id, the counts read when this engine began
	// watching the current step.
	bases map[string]stepBase
	// refused: by rollout id, since when its final swap is refused with
	// Conflict (an operation on the app, or a release's hold).
	refused map[string]time.Time
	// leadSince: when the Leader last said this node leads; zero while
	// it does not.
	leadSince time.Time
}

// stepBase is the counts at the start of a step: the slot's and the
// target's.
type stepBase struct {
	step    int
	started time.Time // the rollout's StepStarted then
	slot    metrics.Totals
	target  metrics.Totals
}

// swapPatience is how long a final swap refused with Conflict is tried
// again before the rollout fails: an operation on the app ends in seconds,
// a release's hold may not end at all.
const swapPatience = time.Minute

// maxResults bounds a rollout's results: past it, the last is replaced.
const maxResults = 200

// Open starts an engine. It runs rollouts from its first tick on, picking
// up those an earlier process left.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Store == nil || cfg.Ops == nil || cfg.Metrics == nil {
		return nil, errors.New("rollout: Store, Ops and Metrics are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tick == 0 {
		cfg.Tick = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TakeoverDelay == 0 {
		cfg.TakeoverDelay = 2500 * time.Millisecond
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), busy: map[string]bool{}, bases: map[string]stepBase{}, refused: map[string]time.Time{}, id: newID()}
	e.ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if cfg.Tick > 0 {
		e.wg.Add(1)
		go e.loop()
	}
	return e, nil
}

// Close stops the engine and waits for the moves under way. Rollouts stay
// where they are, to go on when a server opens an engine again.
func (e *Engine) Close() error {
	e.cancel()
	e.wg.Wait()
	return nil
}

// Wake makes the loop look at the rollouts now.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Engine) now() time.Time { return e.cfg.Now().UTC() }

func (e *Engine) loop() {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	for {
		e.tick(e.ctx, false)
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		case <-e.wake:
		}
	}
}

// Tick moves every rollout on once and waits for it: the loop's work, for
// tests driving the clock.
func (e *Engine) Tick(ctx context.Context) { e.tick(ctx, true) }

func (e *Engine) tick(ctx context.Context, wait bool) {
	if e.cfg.Leader != nil {
		e.mu.Lock()
		lead := e.cfg.Leader()
		switch {
		case !lead:
			e.leadSince = time.Time{}
		case e.leadSince.IsZero():
			e.leadSince = time.Now()
		}
		since := e.leadSince
		e.mu.Unlock()
		if !lead || time.Since(since) < e.cfg.TakeoverDelay {
			return // not leading, or not for long enough: the old leader may still act
		}
	}
	rs, err := e.cfg.Store.ActiveRollouts(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("list rollouts", "err", err)
		}
		return
	}
	var wg sync.WaitGroup
	for _, r := range rs {
		e.mu.Lock()
		if e.busy[r.ID] {
			e.mu.Unlock()
			continue
		}
		e.busy[r.ID] = true
		e.mu.Unlock()
		wg.Add(1)
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			defer wg.Done()
			defer func() {
				e.mu.Lock()
				delete(e.busy, r.ID)
				e.mu.Unlock()
			}()
			e.advance(ctx, r)
		}()
	}
	if wait {
		wg.Wait()
	}
}

// advance moves one rollout on as far as it can go now.
func (e *Engine) advance(ctx context.Context, r hotswap.Rollout) {
	for range 4 { // a rollout may pass a step and begin its swap in one go
		next, more, err := e.move(ctx, r)
		if err != nil {
			if hotswap.ErrorKind(err) == hotswap.Conflict {
				return // a command changed it meanwhile: the next tick reads it
			}
			if ctx.Err() == nil {
				e.log.Warn("rollout", "id", r.ID, "app", r.App, "state", r.State, "err", err)
			}
			return
		}
		if !more {
			return
		}
		r = next
	}
}

// move makes one move of r: it returns the rollout as stored after the
// move, and whether another move may follow at once.
func (e *Engine) move(ctx context.Context, r hotswap.Rollout) (hotswap.Rollout, bool, error) {
	now := e.now()
	switch r.State {
	case hotswap.RolloutRunning, hotswap.RolloutPaused:
		if why, err := e.drift(ctx, r); err != nil {
			return r, false, err
		} else if why != "" {
			r.State, r.Reason = hotswap.RolloutAborting, why
			r, err = e.save(ctx, r, now)
			return r, err == nil, err
		}
		if err := e.setShare(ctx, r, r.Share()); err != nil {
			return r, false, err
		}
		if r.Runner != e.id {
			// This engine takes the rollout up: new, or left by another
			// process, whose metrics of the step so far are not here. The
			// step's time starts (again) now.
			if r.Runner != "" && r.State == hotswap.RolloutRunning {
				r.Results = append(r.Results, hotswap.StepResult{Step: r.Step, Percent: r.Share(), At: now, Verdict: "restarted",
					Detail: "the step starts again: the server running it restarted or another node took over, and its metrics start afresh"})
			}
			r.Runner, r.StepStarted = e.id, now
			r, err := e.save(ctx, r, now)
			return r, err == nil, err
		}
		if r.State == hotswap.RolloutPaused {
			return r, false, nil
		}
		return e.analyse(ctx, r, now)
	case hotswap.RolloutSwapping:
		return e.swap(ctx, r, now)
	case hotswap.RolloutRollingBack:
		if err := e.setShare(ctx, r, 0); err != nil {
			return r, false, err
		}
		if r.Deployment != "" {
			_, err := e.cfg.Ops.QuarantineDeployment(ctx, r.Actor, r.App, r.Deployment, "progressive swap "+r.ID+" failed: "+r.Reason)
			switch kind := hotswap.ErrorKind(err); {
			case err == nil:
			case kind == hotswap.Conflict:
				// Quarantined already (by hand, or by this move before a
				// restart).
			case kind == hotswap.NotFound, kind == hotswap.FailedPrecondition, kind == hotswap.Invalid:
				// Gone, or nothing to quarantine: the rollback goes on.
				e.log.Warn("quarantine after a failed analysis", "app", r.App, "deployment", r.Deployment, "err", err)
			default:
				return r, false, err // the store is away: try again at the next tick
			}
		}
		r.State = hotswap.RolloutFailed
		r, err := e.save(ctx, r, now)
		return r, false, err
	case hotswap.RolloutAborting:
		if err := e.setShare(ctx, r, 0); err != nil {
			return r, false, err
		}
		r.State = hotswap.RolloutAborted
		r, err := e.save(ctx, r, now)
		return r, false, err
	}
	return r, false, nil
}

// drift says why a running rollout cannot go on: its slots changed under
// it. "" when they did not.
func (e *Engine) drift(ctx context.Context, r hotswap.Rollout) (string, error) {
	src, err := e.cfg.Ops.SlotDeployment(ctx, r.App, r.Slot)
	if hotswap.ErrorKind(err) == hotswap.NotFound {
		return fmt.Sprintf("slot %s/%s was deleted", r.App, r.Slot), nil
	}
	if err != nil {
		return "", err
	}
	if src != r.Deployment {
		return fmt.Sprintf("%s/%s now serves %s, not %s which this progressive swap was moving into %s", r.App, r.Slot, orNone(src), r.Deployment, r.Target), nil
	}
	tgt, err := e.cfg.Ops.SlotDeployment(ctx, r.App, r.Target)
	if hotswap.ErrorKind(err) == hotswap.NotFound {
		return fmt.Sprintf("slot %s/%s was deleted", r.App, r.Target), nil
	}
	if err != nil {
		return "", err
	}
	if tgt != r.TargetDeployment {
		return fmt.Sprintf("%s/%s now serves %s, not %s as when this progressive swap began", r.App, r.Target, orNone(tgt), orNone(r.TargetDeployment)), nil
	}
	return "", nil
}

// setShare sets the share of production's traffic r's slot has (0: none,
// no rule, so that no routing cookie keeps a client on it), keeping the
// other slots' shares; it writes only when the store's rule differs.
func (e *Engine) setShare(ctx context.Context, r hotswap.Rollout, percent float64) error {
	_, err := e.cfg.Ops.SetShare(ctx, r.Actor, r.App, r.Slot, percent)
	return err
}

// analyse reads the running step's metrics: a failure ends the rollout at
// once (before the step's time is up: the fewer requests a bad build gets,
// the better); the step's end passes it, or holds it while production
// fails as well or too few requests came. The figures are the requests
// since this engine began watching the step (its first tick in it): the
// whole step, however long.
func (e *Engine) analyse(ctx context.Context, r hotswap.Rollout, now time.Time) (hotswap.Rollout, bool, error) {
	step := r.Strategy.Steps[r.Step]
	ended := now.Sub(r.StepStarted) >= time.Duration(step.Duration)
	res := hotswap.StepResult{Step: r.Step, Percent: step.Percent, At: now}
	verdict := "passed"
	if !r.Analysis.IsZero() {
		sNow, err := e.cfg.Metrics.Totals(ctx, r.App, r.Slot)
		if err != nil {
			return r, false, err
		}
		pNow, err := e.cfg.Metrics.Totals(ctx, r.App, r.Target)
		if err != nil {
			return r, false, err
		}
		e.mu.Lock()
		base, ok := e.bases[r.ID]
		if !ok || base.step != r.Step || !base.started.Equal(r.StepStarted) {
			base = stepBase{step: r.Step, started: r.StepStarted, slot: sNow, target: pNow}
			e.bases[r.ID] = base
		}
		e.mu.Unlock()
		sd, _ := sNow.Sub(base.slot) // counts that started again: all of them are the step's
		pd, _ := pNow.Sub(base.target)
		st, pt := metrics.StatsOf(sd), metrics.StatsOf(pd)
		res.Requests, res.Errors, res.P95 = st.Requests, st.Errors, hotswap.Duration(st.P95)
		res.Base, res.BaseErrs, res.BaseP95 = pt.Requests, pt.Errors, hotswap.Duration(pt.P95)
		verdict, res.Code, res.Detail = judge(r, st, pt)
	}
	switch {
	case verdict == "failed":
		res.Verdict = verdict
		r.Results = appendResult(r.Results, res)
		r.State = hotswap.RolloutRollingBack
		r.Reason = fmt.Sprintf("step %d (%s%%): %s", r.Step+1, hotswap.FormatPercent(step.Percent), res.Detail)
		r, err := e.save(ctx, r, now)
		if err == nil {
			e.crash("rollout.failing")
		}
		return r, err == nil, err
	case !ended:
		return r, false, nil
	case verdict == "held":
		// Say why once, not at every tick: the figures in the detail
		// change, the reason (its code) does not.
		if n := len(r.Results); n > 0 && r.Results[n-1].Step == r.Step && r.Results[n-1].Verdict == "held" && r.Results[n-1].Code == res.Code {
			return r, false, nil
		}
		res.Verdict = verdict
		r.Results = appendResult(r.Results, res)
		r, err := e.save(ctx, r, now)
		return r, false, err
	}
	res.Verdict = "passed"
	if res.Detail == "" {
		res.Detail = "no analysis: passed on time"
	}
	r.Results = appendResult(r.Results, res)
	r.Step++
	r.StepStarted = now
	if r.Step >= len(r.Strategy.Steps) {
		r.State = hotswap.RolloutSwapping
	}
	r, err := e.save(ctx, r, now)
	if err != nil {
		return r, false, err
	}
	e.crash("rollout.step-passed")
	if r.State == hotswap.RolloutRunning {
		// The next step's share, now rather than at the next tick.
		return r, false, e.setShare(ctx, r, r.Share())
	}
	return r, true, nil
}

// appendResult appends x to results, replacing the last one once there are
// maxResults: a rollout's record stays bounded whatever happens.
func appendResult(results []hotswap.StepResult, x hotswap.StepResult) []hotswap.StepResult {
	if len(results) >= maxResults {
		results[len(results)-1] = x
		return results
	}
	return append(results, x)
}

// judge reads a step's figures: the slot's (s) against the limits, and
// production's over the same time (p). A limit both break is a general
// outage, not the new build's fault, unless the slot is clearly worse
// (more than twice production's figure). It returns "failed", "held" (not
// enough requests, or an outage) or "passed", a code naming why it holds
// or fails, and the detail.
func judge(r hotswap.Rollout, s, p metrics.Stats) (verdict, code, detail string) {
	a := r.Analysis
	min := max(a.MinRequests, 1)
	if s.Requests < min {
		return "held", "requests", fmt.Sprintf("%d of the %d requests the analysis needs", s.Requests, min)
	}
	figures := fmt.Sprintf("%s: error rate %s (%d of %d), p95 %s; %s: error rate %s, p95 %s", r.Slot, rate(s.ErrorRate), s.Errors, s.Requests, p95(s.P95), r.Target, rate(p.ErrorRate), p95(p.P95))
	if p.Requests == 0 {
		figures = fmt.Sprintf("%s: error rate %s (%d of %d), p95 %s; %s: no requests", r.Slot, rate(s.ErrorRate), s.Errors, s.Requests, p95(s.P95), r.Target)
	}
	if a.MaxErrorRate > 0 && s.ErrorRate > a.MaxErrorRate {
		if p.Requests > 0 && p.ErrorRate > a.MaxErrorRate && s.ErrorRate <= 2*p.ErrorRate {
			return "held", "outage-errors", fmt.Sprintf("error rate %s over maxErrorRate %s, but %s's is %s as well: holding the step, not blaming the new build (%s)", rate(s.ErrorRate), rate(a.MaxErrorRate), r.Target, rate(p.ErrorRate), figures)
		}
		return "failed", "errors", fmt.Sprintf("error rate %s over maxErrorRate %s (%s)", rate(s.ErrorRate), rate(a.MaxErrorRate), figures)
	}
	if limit := time.Duration(a.MaxP95); limit > 0 && s.P95 > limit {
		if p.Requests > 0 && p.P95 > limit && (p.P95 == metrics.Unbounded || s.P95 <= 2*p.P95) {
			return "held", "outage-p95", fmt.Sprintf("p95 %s over maxP95 %s, but %s's is %s as well: holding the step, not blaming the new build (%s)", p95(s.P95), limit, r.Target, p95(p.P95), figures)
		}
		return "failed", "p95", fmt.Sprintf("p95 %s over maxP95 %s (%s)", p95(s.P95), limit, figures)
	}
	return "passed", "", figures
}

func rate(f float64) string { return hotswap.FormatPercent(f*100) + "%" }

func p95(d time.Duration) string {
	if d == metrics.Unbounded {
		return "over 60s"
	}
	if d == 0 {
		return "-"
	}
	return d.String()
}

// swap ends a rollout whose steps passed (or that was promoted): the share
// goes, then the slot is swapped into the target. After a restart it looks
// first whether the swap happened.
func (e *Engine) swap(ctx context.Context, r hotswap.Rollout, now time.Time) (hotswap.Rollout, bool, error) {
	e.crash("rollout.swapping")
	if err := e.setShare(ctx, r, 0); err != nil {
		return r, false, err
	}
	src, err := e.cfg.Ops.SlotDeployment(ctx, r.App, r.Slot)
	if err != nil && hotswap.ErrorKind(err) != hotswap.NotFound {
		return r, false, err
	}
	tgt, err := e.cfg.Ops.SlotDeployment(ctx, r.App, r.Target)
	if err != nil && hotswap.ErrorKind(err) != hotswap.NotFound {
		return r, false, err
	}
	switch {
	case tgt == r.Deployment && src != r.Deployment:
		// Swapped already, before a restart.
	case src != r.Deployment || tgt != r.TargetDeployment:
		r.State = hotswap.RolloutFailed
		r.Reason = fmt.Sprintf("not swapped: %s/%s serves %s and %s serves %s, not %s and %s as when this progressive swap began", r.App, r.Slot, orNone(src), r.Target, orNone(tgt), r.Deployment, orNone(r.TargetDeployment))
		r, err := e.save(ctx, r, now)
		return r, false, err
	default:
		if !r.SwapBegun {
			// Claim the swap in the store first: an abort that came
			// meanwhile wins (this write fails), one that comes after is
			// refused, so a rollout is never both aborted and swapped.
			r.SwapBegun = true
			var err error
			if r, err = e.save(ctx, r, now); err != nil {
				return r, false, err
			}
		}
		// Expect holds the check above inside the swap's operation: a
		// deploy that lands between them fails the swap instead of
		// putting a build nobody analysed into the target.
		_, err := e.cfg.Ops.Swap(ctx, ops.SwapRequest{App: r.App, Source: r.Slot, Target: r.Target, Actor: r.Actor, Release: r.Release,
			Expect: &ops.SwapExpect{Source: r.Deployment, Target: r.TargetDeployment}})
		if err != nil && hotswap.ErrorKind(err) == hotswap.FailedPrecondition && e.swappedAlready(ctx, r) {
			// This node's view lagged the store (another node swapped,
			// then stopped before it recorded so): the swap's operation
			// caught up and found the slots swapped.
			err = nil
		}
		if err != nil {
			k := hotswap.ErrorKind(err)
			if k == hotswap.Unavailable || k == hotswap.Conflict && e.patient(r.ID, now) {
				// The store is away, or an operation on the app runs (or
				// a hold refuses it): next tick. Until then an abort may
				// still stop it.
				r.SwapBegun = false
				r, err := e.save(ctx, r, now)
				return r, false, err
			}
			e.log.Warn("rollout: the swap failed", "id", r.ID, "app", r.App, "err", err)
			r.State = hotswap.RolloutFailed
			r.Reason = "the swap failed: " + hotswap.ErrorMessage(err)
			r, serr := e.save(ctx, r, now)
			if serr != nil {
				return r, false, serr
			}
			return r, false, nil
		}
		e.crash("rollout.swapped")
	}
	r.State = hotswap.RolloutSucceeded
	r, err = e.save(ctx, r, now)
	return r, false, err
}

// swappedAlready reports whether the target serves the rollout's
// deployment and the slot no longer does.
func (e *Engine) swappedAlready(ctx context.Context, r hotswap.Rollout) bool {
	src, err := e.cfg.Ops.SlotDeployment(ctx, r.App, r.Slot)
	if err != nil {
		return false
	}
	tgt, err := e.cfg.Ops.SlotDeployment(ctx, r.App, r.Target)
	return err == nil && tgt == r.Deployment && src != r.Deployment
}

// patient reports whether a swap refused with Conflict (first at the
// time it records) is to be tried again: for swapPatience.
func (e *Engine) patient(id string, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	first, ok := e.refused[id]
	if !ok {
		e.refused[id] = now
		return true
	}
	return now.Sub(first) < swapPatience
}

// save writes r as read (compare-and-set on its version).
func (e *Engine) save(ctx context.Context, r hotswap.Rollout, now time.Time) (hotswap.Rollout, error) {
	r.Updated = now
	out, err := e.cfg.Store.UpdateRollout(ctx, r)
	if err != nil {
		return r, err
	}
	if out.State.Done() {
		e.mu.Lock()
		delete(e.bases, out.ID)
		delete(e.refused, out.ID)
		e.mu.Unlock()
		detail := fmt.Sprintf("progressive swap %s of %s (%s) into %s %s", out.ID, out.Slot, out.Deployment, out.Target, out.State)
		if out.Reason != "" {
			detail += ": " + out.Reason
		}
		e.activity(ctx, out, "rollout.end", detail, string(out.State))
		e.log.Info("rollout ended", "id", out.ID, "app", out.App, "slot", out.Slot, "state", out.State, "reason", out.Reason)
	}
	return out, nil
}

// activity records a rollout's start or end in its app's activity log; a
// failure to is logged, not fatal.
func (e *Engine) activity(ctx context.Context, r hotswap.Rollout, action, detail, result string) {
	a := hotswap.Activity{App: r.App, Actor: r.Actor, Action: action, Slot: r.Slot, Detail: detail, Result: result}
	if err := e.cfg.Store.AddActivity(context.WithoutCancel(ctx), a); err != nil {
		e.log.Error("record rollout activity", "id", r.ID, "action", action, "err", err)
	}
}

// crash kills the process at the named point when a crash-safety test asks
// for it: SIGKILL, so nothing is cleaned up, as in a real crash.
func (e *Engine) crash(point string) {
	if e.cfg.CrashPoint != "" && e.cfg.CrashPoint == point {
		e.log.Error("crashing on purpose", "point", point)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // never returns
	}
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
