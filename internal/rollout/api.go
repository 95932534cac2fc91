package rollout

import (
	"context"
	"fmt"
	"time"

	"github.com/hotswap/hotswap"
)

// StartRequest asks for a progressive swap of App's Slot into Target.
type StartRequest struct {
	App, Slot, Target string // Target "" is production
	Actor             string
	Release           string // the release whose stage asks, if one does
	Strategy          hotswap.Strategy
	Analysis          hotswap.Analysis
}

// Start begins a progressive swap and returns it as stored; the loop runs
// it from there. The slot must serve a deployment, and the target must be
// production, whose host name the traffic rules split. A strategy without
// steps (AllAtOnce) swaps at once.
func (e *Engine) Start(ctx context.Context, req StartRequest) (hotswap.Rollout, error) {
	if req.Target == "" {
		req.Target = hotswap.ProductionSlot
	}
	for _, n := range [][2]string{{"app", req.App}, {"slot", req.Slot}, {"slot", req.Target}} {
		if err := hotswap.ValidateName(n[0], n[1]); err != nil {
			return hotswap.Rollout{}, err
		}
	}
	if req.Slot == req.Target {
		return hotswap.Rollout{}, hotswap.Errorf(hotswap.Invalid, "a progressive swap moves %s's traffic to another slot; %s is the target itself", req.Target, req.Slot)
	}
	if req.Target != hotswap.ProductionSlot && len(req.Strategy.Steps) > 0 {
		return hotswap.Rollout{}, hotswap.Errorf(hotswap.Invalid, "a progressive swap shares production's traffic, so its target is production, not %s", req.Target)
	}
	if err := req.Strategy.Validate(); err != nil {
		return hotswap.Rollout{}, err
	}
	if err := req.Analysis.Validate(); err != nil {
		return hotswap.Rollout{}, err
	}
	if len(req.Strategy.Steps) == 0 && !req.Analysis.IsZero() {
		return hotswap.Rollout{}, hotswap.Errorf(hotswap.Invalid, "strategy %s has no steps to analyse; drop the analysis or give steps", orNone(req.Strategy.Name))
	}
	src, err := e.cfg.Ops.SlotDeployment(ctx, req.App, req.Slot)
	if err != nil {
		return hotswap.Rollout{}, err
	}
	if src == "" {
		return hotswap.Rollout{}, hotswap.Errorf(hotswap.FailedPrecondition, "%s/%s serves nothing yet; deploy to it first", req.App, req.Slot)
	}
	tgt, err := e.cfg.Ops.SlotDeployment(ctx, req.App, req.Target)
	if err != nil {
		return hotswap.Rollout{}, err
	}
	now := e.now()
	r := hotswap.Rollout{
		ID: "ro-" + newID(), App: req.App, Slot: req.Slot, Target: req.Target,
		Strategy: req.Strategy, Analysis: req.Analysis, State: hotswap.RolloutRunning,
		StepStarted: now, Deployment: src, TargetDeployment: tgt,
		Actor: req.Actor, Release: req.Release, Results: []hotswap.StepResult{},
		Created: now, Updated: now,
	}
	if r.Strategy.Steps == nil {
		r.Strategy.Steps = []hotswap.RolloutStep{}
	}
	if len(r.Strategy.Steps) == 0 {
		r.State = hotswap.RolloutSwapping
	}
	r, err = e.cfg.Store.CreateRollout(ctx, r)
	if err != nil {
		return hotswap.Rollout{}, err
	}
	e.log.Info("rollout started", "id", r.ID, "app", r.App, "slot", r.Slot, "strategy", r.Strategy.Name, "analysis", r.Analysis.String(), "actor", r.Actor)
	e.activity(ctx, r, "rollout.start", fmt.Sprintf("progressive swap %s of %s (%s) into %s: %s; analysis %s", r.ID, r.Slot, r.Deployment, r.Target, r.Strategy, r.Analysis), "started")
	e.Wake()
	return r, nil
}

// Command asks a rollout to pause (its share stays, no step ends), resume
// (the current step starts again), promote (swap now, skipping the steps
// left) or abort (take the share away, swap nothing). Asking what already
// holds (pausing a paused rollout) is no error.
func (e *Engine) Command(ctx context.Context, actor, id string, cmd hotswap.RolloutCommand) (hotswap.Rollout, error) {
	for attempt := 0; ; attempt++ {
		r, err := e.cfg.Store.Rollout(ctx, id)
		if err != nil {
			return hotswap.Rollout{}, err
		}
		now := e.now()
		changeable := r.State == hotswap.RolloutRunning || r.State == hotswap.RolloutPaused ||
			cmd == hotswap.RolloutAbort && r.State == hotswap.RolloutSwapping && !r.SwapBegun
		switch {
		case cmd == hotswap.RolloutPause && r.State == hotswap.RolloutPaused,
			cmd == hotswap.RolloutResume && r.State == hotswap.RolloutRunning,
			cmd == hotswap.RolloutPromote && r.State == hotswap.RolloutSwapping,
			cmd == hotswap.RolloutAbort && r.State == hotswap.RolloutAborting:
			return r, nil
		case !changeable:
			return r, hotswap.Errorf(hotswap.FailedPrecondition, "progressive swap %s is %s; only a running or paused one can be told to %s (or aborted before its swap begins)", r.ID, r.State, cmd)
		case cmd == hotswap.RolloutPause:
			if r.State != hotswap.RolloutRunning {
				return r, hotswap.Errorf(hotswap.FailedPrecondition, "progressive swap %s is %s, not running", r.ID, r.State)
			}
			r.State = hotswap.RolloutPaused
		case cmd == hotswap.RolloutResume:
			r.State, r.StepStarted = hotswap.RolloutRunning, now
		case cmd == hotswap.RolloutPromote:
			r.Results = append(r.Results, hotswap.StepResult{Step: r.Step, Percent: r.Share(), At: now, Verdict: "skipped", Detail: "promoted by " + actor + ": the steps left were skipped"})
			r.State = hotswap.RolloutSwapping
		case cmd == hotswap.RolloutAbort:
			r.State, r.Reason = hotswap.RolloutAborting, "aborted by "+actor
		default:
			return r, hotswap.Errorf(hotswap.Invalid, "rollout command %q: use pause, resume, promote or abort", cmd)
		}
		r.Updated = now
		out, err := e.cfg.Store.UpdateRollout(ctx, r)
		if hotswap.ErrorKind(err) == hotswap.Conflict && attempt < 5 {
			continue // the loop moved it meanwhile: read it again
		}
		if err != nil {
			return hotswap.Rollout{}, err
		}
		e.log.Info("rollout command", "id", id, "command", cmd, "actor", actor, "state", out.State)
		e.activity(ctx, hotswap.Rollout{App: out.App, Slot: out.Slot, Actor: actor}, "rollout."+string(cmd), fmt.Sprintf("progressive swap %s: %s by %s", id, cmd, actor), string(out.State))
		e.Wake()
		return out, nil
	}
}

// Get returns a rollout.
func (e *Engine) Get(ctx context.Context, id string) (hotswap.Rollout, error) {
	return e.cfg.Store.Rollout(ctx, id)
}

// Active returns app's rollout that has not ended, if it has one.
func (e *Engine) Active(ctx context.Context, app string) (hotswap.Rollout, bool, error) {
	rs, err := e.cfg.Store.Rollouts(ctx, app, 1)
	if err != nil || len(rs) == 0 || rs[0].State.Done() {
		return hotswap.Rollout{}, false, err
	}
	return rs[0], true, nil
}

// List returns app's rollouts, newest first, at most limit.
func (e *Engine) List(ctx context.Context, app string, limit int) ([]hotswap.Rollout, error) {
	return e.cfg.Store.Rollouts(ctx, app, limit)
}

// Watch calls f with the rollout each time it changes, the first time at
// once, until it ends (and returns it) or ctx ends.
func (e *Engine) Watch(ctx context.Context, id string, f func(hotswap.Rollout)) (hotswap.Rollout, error) {
	var last int64 = -1
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		r, err := e.cfg.Store.Rollout(ctx, id)
		if err != nil {
			return r, err
		}
		if r.Version != last {
			last = r.Version
			if f != nil {
				f(r)
			}
		}
		if r.State.Done() {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-t.C:
		}
	}
}
