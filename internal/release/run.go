package release

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/ops"
	"github.com/hotswap/hotswap/internal/pipeline"
	"github.com/hotswap/hotswap/internal/rollout"
)

// run carries out a running stage's actions, resuming at its recorded step:
// deploy, then swap, then checks. Each finished step is saved before the next
// starts, so a restart neither repeats a deploy that happened nor skips one
// that did not.
func (e *Engine) run(t *term, id, stage string, attempt int) {
	defer t.wg.Done()
	err := e.runSteps(t.ctx, id, stage, attempt)
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.busy, id+"/"+stage)
	r := e.active[id]
	if e.lead != t || r == nil || r.ended() {
		return
	}
	st := r.stage(stage)
	if st.Attempt != attempt || st.State != StageRunning {
		return
	}
	now := e.now()
	key := fmt.Sprintf("%s/%s/%d", id, stage, attempt)
	var running *stillRunning
	if err != nil && t.ctx.Err() == nil && errors.As(err, &running) {
		first, waited := e.waiting[key]
		if !waited {
			e.waiting[key] = now
			st.logf(now, "waiting: "+running.what+" (started before the lead moved here)")
			e.saveLocked(r)
			return
		}
		if now.Sub(first) < stillRunningFor {
			return // the next tick tries again
		}
		err = hotswap.Errorf(hotswap.FailedPrecondition, "%s after %v: %s", running.what, stillRunningFor, hotswap.ErrorMessage(running.err))
	}
	delete(e.waiting, key)
	if err != nil {
		if t.ctx.Err() != nil {
			return // shutting down or lost the lead: resume at the next start
		}
		st.State, st.EndedAt, st.Detail = StageFailed, now, hotswap.ErrorMessage(err)
		st.logf(now, "failed: "+st.Detail)
	} else {
		st.State, st.EndedAt, st.Detail, st.Step = StageSucceeded, now, "", ""
		st.logf(now, "succeeded")
	}
	e.notify(r, st)
	e.saveLocked(r)
	e.Wake()
}

// stillRunningFor bounds how long a stage waits for a deploy or swap that
// another node (the leader before a takeover) started and has not ended:
// longer than a deploy may take (the handler's start timeout, 60 s by
// default, then the other nodes' prepare and acknowledgement). If that
// node died instead, the cluster ends its operation within its liveness
// window and the stage goes on from that outcome at once.
const stillRunningFor = 3 * time.Minute

// stillRunning is a step another node started that has not ended yet: the
// stage stays running and tries again at the next tick, for
// stillRunningFor, then fails with err.
type stillRunning struct {
	what string // "deployment d-1 to app/slot is still running"
	err  error
}

func (s *stillRunning) Error() string { return s.what + ": " + s.err.Error() }
func (s *stillRunning) Unwrap() error { return s.err }

// stepState is what a step needs, read under the lock.
type stepState struct {
	rel      *Release
	def      *pipeline.Stage
	st       *StageRun
	marker   string // the message of deployments this stage makes
	digest   string
	deployed string
	swapped  bool
	rollout  string // the progressive swap this attempt started
	// resumed: an earlier run started this step and did not record its
	// end (a restart, or the lead moved while it ran).
	resumed bool
}

func (e *Engine) snapshot(id, stage string, attempt int) (stepState, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.active[id]
	if r == nil || r.ended() {
		return stepState{}, errEnded
	}
	st := r.stage(stage)
	if st.Attempt != attempt || st.State != StageRunning {
		return stepState{}, errEnded
	}
	return stepState{
		rel: r, def: e.defs[id].Stage(stage), st: st,
		marker: fmt.Sprintf("release %s stage %s attempt %d", r.Name, stage, attempt),
		digest: r.Digest, deployed: st.DeploymentID, swapped: st.Swapped, rollout: st.RolloutID,
		resumed: st.Step == "deploy" || st.Step == "swap",
	}, nil
}

// record applies a step's outcome under the lock and saves it.
func (e *Engine) record(id string, f func(r *Release, now time.Time)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.active[id]
	if r == nil {
		return
	}
	f(r, e.now())
	e.saveLocked(r)
}

func (e *Engine) runSteps(ctx context.Context, id, stage string, attempt int) error {
	s, err := e.snapshot(id, stage, attempt)
	if err != nil {
		return nil
	}
	actor := s.rel.Requester + " (release " + s.rel.Name + ")"
	if d := s.def.Deploy; d != nil && s.deployed == "" {
		// The hold is taken before the deploy starts: in the gap between
		// the deploy and its record a manual swap would otherwise carry
		// the unapproved build on. A failed deploy lets go of a hold it
		// took.
		key := slotKey(d.App, d.Slot)
		took := false
		e.record(id, func(r *Release, _ time.Time) {
			took = !r.holds(key)
			r.hold(key)
		})
		depID, err := e.deploy(ctx, s, actor)
		if err != nil {
			if took {
				e.record(id, func(r *Release, _ time.Time) { r.unhold(key) })
			}
			return err
		}
		e.record(id, func(r *Release, now time.Time) {
			st := r.stage(stage)
			st.DeploymentID, st.Step = depID, "swap"
			st.logf(now, fmt.Sprintf("deployed %s %s to %s/%s as %s", r.Feed, r.Version, d.App, d.Slot, depID))
		})
		s.deployed = depID
	}
	if sw := s.def.Swap; sw != nil && !s.swapped {
		if err := e.swap(ctx, s, actor); err != nil {
			return err
		}
		e.record(id, func(r *Release, now time.Time) {
			st := r.stage(stage)
			st.Swapped, st.Step = true, "checks"
			r.unhold(slotKey(sw.App, sw.Slot))
			st.logf(now, fmt.Sprintf("swapped %s/%s into %s", sw.App, sw.Slot, sw.Target))
		})
	}
	for i, c := range s.def.Checks {
		if err := e.check(ctx, id, stage, i, c); err != nil {
			return err
		}
	}
	return nil
}

// deploy deploys the release's package, or finds the deployment an earlier
// run of this step made before a restart.
func (e *Engine) deploy(ctx context.Context, s stepState, actor string) (string, error) {
	d := s.def.Deploy
	ds, err := e.ops.Deployments(ctx, d.App, d.Slot)
	if err != nil {
		return "", err
	}
	for _, dep := range ds {
		if dep.Message != s.marker {
			continue
		}
		serving, err := e.ops.SlotDeployment(ctx, d.App, d.Slot)
		if err != nil {
			return "", err
		}
		if dep.Status == hotswap.DeploySuccess && serving == dep.ID {
			return dep.ID, nil // done before a restart
		}
		if dep.Status != hotswap.DeployFailed && dep.Status != hotswap.DeploySuccess {
			// A server's restart fails the deployments it left running, so
			// another node runs this one: the old leader, before the lead
			// moved here.
			return "", &stillRunning{
				what: fmt.Sprintf("deployment %s to %s/%s is still running", dep.ID, d.App, d.Slot),
				err:  hotswap.Errorf(hotswap.FailedPrecondition, "deployment %s to %s/%s was interrupted", dep.ID, d.App, d.Slot),
			}
		}
		break // an earlier attempt failed: deploy again
	}
	e.record(s.rel.ID, func(r *Release, now time.Time) {
		st := r.stage(s.st.Name)
		st.Step = "deploy"
		st.logf(now, fmt.Sprintf("deploying %s %s to %s/%s", r.Feed, r.Version, d.App, d.Slot))
	})
	// Quarantined content or version is never promoted again, however the
	// release started (a continuous-deployment trigger included).
	if err := e.ops.CheckQuarantine(ctx, d.App, s.digest, s.rel.Version); err != nil {
		return "", fmt.Errorf("deploy to %s/%s: %w", d.App, d.Slot, err)
	}
	res, err := e.ops.Deploy(ctx, ops.DeployRequest{App: d.App, Slot: d.Slot, Actor: actor, Message: s.marker, Digest: s.digest, Release: s.rel.ID})
	if err != nil {
		err = fmt.Errorf("deploy to %s/%s: %w", d.App, d.Slot, err)
		if s.resumed && hotswap.ErrorKind(err) == hotswap.Conflict {
			// The old leader's deploy is starting: it holds the app's
			// operation but has not recorded its deployment yet.
			return "", &stillRunning{what: fmt.Sprintf("an operation on %s is still running", d.App), err: err}
		}
		return "", err
	}
	if res.AutoSwapSkipped != "" {
		e.record(s.rel.ID, func(r *Release, now time.Time) {
			r.stage(s.st.Name).logf(now, fmt.Sprintf("auto swap of %s/%s into %s skipped: a release deploy never auto swaps; the release swaps only after its approvals and gates", d.App, d.Slot, res.AutoSwapSkipped))
		})
	}
	return res.Deployment.ID, nil
}

// swap swaps the release's deployment on. It refuses when the source slot
// no longer serves what this release deployed there: swapping something
// else into production is exactly the trap releases must not fall into.
func (e *Engine) swap(ctx context.Context, s stepState, actor string) error {
	sw := s.def.Swap
	want := e.deployedTo(s.rel.ID, sw.App, sw.Slot)
	src, err := e.ops.SlotDeployment(ctx, sw.App, sw.Slot)
	if err != nil {
		return err
	}
	tgt, err := e.ops.SlotDeployment(ctx, sw.App, sw.Target)
	if err != nil {
		return err
	}
	if want != "" && tgt == want && src != want {
		return nil // swapped before a restart
	}
	if want != "" && src != want {
		return hotswap.Errorf(hotswap.FailedPrecondition, "%s/%s serves %s, not %s which this release deployed; refusing to swap something else into %s", sw.App, sw.Slot, orDash(src), want, sw.Target)
	}
	if len(sw.Strategy.Steps) > 0 {
		return e.progressiveSwap(ctx, s, actor)
	}
	e.record(s.rel.ID, func(r *Release, now time.Time) {
		st := r.stage(s.st.Name)
		if st.Step != "swap" || !s.resumed {
			st.logf(now, fmt.Sprintf("swapping %s/%s into %s", sw.App, sw.Slot, sw.Target))
		}
		st.Step = "swap"
	})
	// The check above, held inside the swap's operation: a deploy that
	// lands between them (a forced one, which abandons this release's
	// hold) fails the swap instead of being swapped on by this release.
	var expect *ops.SwapExpect
	if want != "" {
		expect = &ops.SwapExpect{Source: want, AnyTarget: true}
	}
	if e.beforeSwap != nil {
		e.beforeSwap()
	}
	if !sw.Preview {
		_, err := e.ops.Swap(ctx, ops.SwapRequest{App: sw.App, Source: sw.Slot, Target: sw.Target, Actor: actor, Release: s.rel.ID, Expect: expect})
		return e.swapRunning(ctx, s, err)
	}
	if _, err := e.ops.Swap(ctx, ops.SwapRequest{App: sw.App, Source: sw.Slot, Target: sw.Target, Actor: actor, Preview: true, Release: s.rel.ID, Expect: expect}); err != nil {
		return e.swapRunning(ctx, s, err)
	}
	// In preview the source slot serves the new content under the target's
	// settings: the checks run against it there before completing.
	for i, c := range s.def.Checks {
		c.App, c.Slot = sw.App, sw.Slot
		if err := e.check(ctx, s.rel.ID, s.st.Name, i, c); err != nil {
			if _, cerr := e.ops.CancelSwap(ctx, actor, sw.App, ops.HoldOptions{Release: s.rel.ID}); cerr != nil {
				e.log.Error("cancel swap preview", "err", cerr)
			}
			return fmt.Errorf("in swap preview: %w", err)
		}
	}
	_, err = e.ops.CompleteSwap(ctx, actor, sw.App, ops.HoldOptions{Release: s.rel.ID})
	return err
}

// progressiveSwap swaps the release's deployment on step by step (see
// internal/rollout), logging each step's figures in the stage, and fails
// the stage with the analysis' reason when a step fails: the rollout has
// then taken the share away and quarantined the deployment. A resumed step
// follows the rollout it started before.
func (e *Engine) progressiveSwap(ctx context.Context, s stepState, actor string) error {
	sw := s.def.Swap
	if e.cfg.Rollouts == nil {
		return hotswap.Errorf(hotswap.FailedPrecondition, "stage %s swaps with strategy %s, but this server runs no progressive swaps", s.st.Name, sw.Strategy.Name)
	}
	id := s.rollout
	if id == "" {
		ro, err := e.cfg.Rollouts.Start(ctx, rollout.StartRequest{App: sw.App, Slot: sw.Slot, Target: sw.Target, Actor: actor, Release: s.rel.ID, Strategy: sw.Strategy, Analysis: sw.Analysis})
		if hotswap.ErrorKind(err) == hotswap.Conflict {
			// Started before a restart, which came before it was
			// recorded here?
			if a, ok, aerr := e.cfg.Rollouts.Active(ctx, sw.App); aerr == nil && ok && a.Release == s.rel.ID {
				ro, err = a, nil
			}
		}
		if err != nil {
			return fmt.Errorf("progressive swap of %s/%s into %s: %w", sw.App, sw.Slot, sw.Target, err)
		}
		id = ro.ID
		e.record(s.rel.ID, func(r *Release, now time.Time) {
			st := r.stage(s.st.Name)
			st.Step, st.RolloutID = "swap", id
			st.logf(now, fmt.Sprintf("progressive swap %s of %s/%s into %s: %s; analysis %s", id, sw.App, sw.Slot, sw.Target, sw.Strategy, sw.Analysis))
		})
	}
	logged := -1 // results logged; -1 until the first look, which skips those an earlier run logged
	final, err := e.cfg.Rollouts.Watch(ctx, id, func(ro hotswap.Rollout) {
		if logged < 0 {
			logged = len(ro.Results)
			if s.rollout == "" {
				logged = 0
			}
		}
		for _, x := range ro.Results[min(logged, len(ro.Results)):] {
			line := fmt.Sprintf("progressive swap %s: step %d/%d (%s%%) %s: %s", id, x.Step+1, len(ro.Strategy.Steps), hotswap.FormatPercent(x.Percent), x.Verdict, x.Detail)
			e.record(s.rel.ID, func(r *Release, now time.Time) { r.stage(s.st.Name).logf(now, line) })
		}
		logged = len(ro.Results)
	})
	if err != nil {
		return err
	}
	if final.State != hotswap.RolloutSucceeded {
		return hotswap.Errorf(hotswap.FailedPrecondition, "progressive swap %s %s: %s", id, final.State, final.Reason)
	}
	return nil
}

// swapRunning looks again at a resumed swap that failed: the old leader's
// swap may have ended between the look and this one (done: nil), or still
// hold the app's operation (stillRunning: try again later).
func (e *Engine) swapRunning(ctx context.Context, s stepState, err error) error {
	if err == nil || !s.resumed {
		return err
	}
	sw := s.def.Swap
	if done, _ := e.swapped(ctx, s); done {
		return nil
	}
	if hotswap.ErrorKind(err) == hotswap.Conflict {
		return &stillRunning{what: fmt.Sprintf("an operation on %s is still running", sw.App), err: err}
	}
	return err
}

// swapped reports whether this release's deployment was swapped on
// already: the target serves it and the source no longer does.
func (e *Engine) swapped(ctx context.Context, s stepState) (bool, error) {
	sw := s.def.Swap
	want := e.deployedTo(s.rel.ID, sw.App, sw.Slot)
	src, err := e.ops.SlotDeployment(ctx, sw.App, sw.Slot)
	if err != nil {
		return false, err
	}
	tgt, err := e.ops.SlotDeployment(ctx, sw.App, sw.Target)
	if err != nil {
		return false, err
	}
	return want != "" && tgt == want && src != want, nil
}

// deployedTo returns the deployment this release made to app/slot.
func (e *Engine) deployedTo(id, app, slot string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, def := e.active[id], e.defs[id]
	if r == nil {
		return ""
	}
	for _, sd := range def.Stages {
		if sd.Deploy != nil && sd.Deploy.App == app && sd.Deploy.Slot == slot {
			if st := r.stage(sd.Name); st.DeploymentID != "" {
				return st.DeploymentID
			}
		}
	}
	return ""
}

// check probes until the expected status comes, within its retries.
func (e *Engine) check(ctx context.Context, id, stage string, i int, c pipeline.Check) error {
	var last string
	for attempt := 0; attempt <= c.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(c.Interval):
			}
		}
		pctx, cancel := context.WithTimeout(ctx, c.Timeout)
		status, err := e.ops.Probe(pctx, c.App, c.Slot, c.Path, c.Key)
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		case slices.Contains(c.Expect, status):
			e.record(id, func(r *Release, now time.Time) {
				r.stage(stage).logf(now, fmt.Sprintf("check %d: GET %s/%s%s answered %d", i+1, c.App, c.Slot, c.Path, status))
			})
			return nil
		default:
			last = fmt.Sprintf("answered %d, expected %v", status, c.Expect)
		}
	}
	return hotswap.Errorf(hotswap.FailedPrecondition, "check %d: GET %s/%s%s %s after %d attempt(s)", i+1, c.App, c.Slot, c.Path, last, c.Retries+1)
}
