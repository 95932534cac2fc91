package ops

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/funcapp"
	"github.com/hotswap/hotswap/internal/runtime"
)

// SwapRequest asks to swap slot Source into Target.
type SwapRequest struct {
	App, Source, Target string
	Actor               string
	Preview             bool // stop after preparing; Complete or Cancel follows
	// Release is the id of the release swapping: it may swap a slot it
	// holds.
	Release string
	// Force swaps slots a release holds, abandoning that release.
	Force bool
	// Expect, when set, is what the two slots must serve when the swap
	// begins. It is checked inside the operation, where no deploy can
	// come between; a slot serving anything else fails the swap
	// (FailedPrecondition) before anything changes. A progressive swap
	// sets it to what it analysed.
	Expect *SwapExpect
}

// SwapExpect is what the slots of a swap must serve when it begins: the
// source slot's deployment, and the target's ("" for none) unless
// AnyTarget is set.
type SwapExpect struct {
	Source, Target string
	AnyTarget      bool
}

// ErrNotAsExpected is in the chain of a swap's error when a slot did not
// serve what the swap's Expect named.
var ErrNotAsExpected = errors.New("a slot does not serve what the swap expected")

// checkExpect fails a swap whose slots do not serve what req.Expect says.
func (s *Service) checkExpect(ctx context.Context, req SwapRequest) error {
	if req.Expect == nil {
		return nil
	}
	for _, c := range [2]struct{ slot, want string }{{req.Source, req.Expect.Source}, {req.Target, req.Expect.Target}} {
		if c.slot == req.Target && req.Expect.AnyTarget {
			continue
		}
		got, err := s.SlotDeployment(ctx, req.App, c.slot)
		if err != nil {
			return err
		}
		if got != c.want {
			return &hotswap.Error{Kind: hotswap.FailedPrecondition, Err: ErrNotAsExpected, Msg: fmt.Sprintf(
				"slot %s/%s serves %s, not %s as the swap expected; nothing was swapped", req.App, c.slot, orNone(got), orNone(c.want))}
		}
	}
	return nil
}

// SwapResult reports a swap.
type SwapResult struct {
	App              string `json:"app"`
	Source           string `json:"source"`
	Target           string `json:"target"`
	Phase            string `json:"phase"` // completed, preview, cancelled
	SourceDeployment string `json:"sourceDeployment,omitempty"`
	TargetDeployment string `json:"targetDeployment,omitempty"`
	ReusedWarm       bool   `json:"reusedWarm"`
	DurationMs       int64  `json:"durationMs"`
	FlipMicros       int64  `json:"flipMicros,omitempty"`
	// LaggingNodes names the nodes of a cluster that did not serve the
	// swap within the acknowledgement timeout; they fail their health
	// check until they catch up.
	LaggingNodes []string `json:"laggingNodes,omitempty"`
}

// prepared is a process set started (or reused) for a slot's configuration
// after a swap.
type prepared struct {
	set        *runtime.Set
	key        string
	deployment string
	settings   []hotswap.Setting
	pkg        *funcapp.App
	routes     *funcapp.Router
	reused     bool
}

// preview is a swap stopped after preparing, held by its source slot.
type preview struct {
	op        *hotswap.Operation
	req       SwapRequest
	since     time.Time
	targetNew *prepared // the source's content under the target's settings
	sourceNew *prepared // the target's content under the source's settings; nil when the target is empty
	started   time.Time
	lagging   []string // nodes that did not acknowledge the flip (cluster)
}

// swapSettings computes the settings of both slots after a swap: sticky
// settings (slot settings, and warm-up configuration) stay, the others move.
func swapSettings(source, target []hotswap.Setting) (newSource, newTarget []hotswap.Setting, err error) {
	split := func(in []hotswap.Setting) (sticky, moving []hotswap.Setting) {
		for _, st := range in {
			if st.Sticky || isWarmupSetting(st.Name) {
				sticky = append(sticky, st)
			} else {
				moving = append(moving, st)
			}
		}
		return
	}
	sStick, sMove := split(source)
	tStick, tMove := split(target)
	merge := func(slot string, sticky, moving []hotswap.Setting) ([]hotswap.Setting, error) {
		names := make(map[string]bool, len(sticky))
		out := make([]hotswap.Setting, 0, len(sticky)+len(moving))
		for _, st := range sticky {
			names[st.Name] = true
			out = append(out, st)
		}
		for _, st := range moving {
			if names[st.Name] {
				return nil, hotswap.Errorf(hotswap.Conflict, "setting %s is a slot setting of %s but would arrive there from the other slot as a normal setting; make it a slot setting in both slots or in neither", st.Name, slot)
			}
			out = append(out, st)
		}
		sortSettings(out)
		return out, nil
	}
	if newSource, err = merge("the source", sStick, tMove); err != nil {
		return nil, nil, err
	}
	if newTarget, err = merge("the target", tStick, sMove); err != nil {
		return nil, nil, err
	}
	return newSource, newTarget, nil
}

// Swap swaps the source slot into the target: both new configurations are
// started and warmed before anything changes, then one store transaction and
// one routing-table replacement flip both host names, and the old process
// sets drain and stay warm for the revert window. Any failure before the
// flip leaves both slots exactly as they were.
func (s *Service) Swap(ctx context.Context, req SwapRequest) (SwapResult, error) {
	start := time.Now()
	if req.Target == "" {
		req.Target = hotswap.ProductionSlot
	}
	res := SwapResult{App: req.App, Source: req.Source, Target: req.Target}
	if req.Source == "" {
		return res, hotswap.Errorf(hotswap.Invalid, "the source slot is required")
	}
	if req.Source == req.Target {
		return res, hotswap.Errorf(hotswap.Invalid, "cannot swap slot %s with itself", req.Source)
	}
	if req.Preview && s.node != nil {
		// A preview lives in the memory of the node that started it; the
		// others would serve the source slot unchanged meanwhile.
		return res, hotswap.Errorf(hotswap.FailedPrecondition, "swap with preview is not available on a cluster of several nodes yet; swap without --preview (every node prepares and warms the new configuration before the flip)")
	}
	s.mu.Lock()
	src, err := s.slotLocked(ctx, req.App, req.Source)
	if err == nil {
		_, err = s.slotLocked(ctx, req.App, req.Target)
	}
	if err == nil && src.set == nil {
		err = hotswap.Errorf(hotswap.FailedPrecondition, "slot %s/%s has no running deployment to swap", req.App, req.Source)
	}
	s.mu.Unlock()
	if err != nil {
		return res, err
	}
	forced, err := s.checkHolds("swap", req.App, req.Release, req.Force, req.Source, req.Target)
	if err != nil {
		return res, err
	}
	op := &hotswap.Operation{ID: newID("op-"), App: req.App, Kind: "swap", Slot: req.Source, Target: req.Target, Actor: req.Actor, State: hotswap.OpRunning, StartedAt: start.UTC()}
	if err := s.beginOp(ctx, *op); err != nil {
		return res, err
	}
	ctx = context.WithoutCancel(ctx)
	if err := s.catchUp(ctx, req.App, req.Source, req.Target); err != nil {
		s.end(ctx, op, err)
		return res, err
	}
	// Before a forced swap abandons a release: a swap refused by its
	// expectation abandons nothing. (One refused later, when preparing or
	// warming up, has abandoned the release already.)
	if err := s.checkExpect(ctx, req); err != nil {
		s.end(ctx, op, err)
		s.activity(ctx, req.App, req.Actor, "swap.prepare", req.Source, "into "+req.Target+": "+hotswap.ErrorMessage(err), "failed")
		return res, err
	}
	if err := s.abandonHolds(ctx, req.Actor, "swap", req.App, forced); err != nil {
		s.end(ctx, op, err)
		return res, err
	}
	p, err := s.prepareSwap(ctx, req, op)
	if err != nil {
		s.end(ctx, op, err)
		s.activity(ctx, req.App, req.Actor, "swap.prepare", req.Source, "into "+req.Target+": "+hotswap.ErrorMessage(err), "failed")
		return res, err
	}
	res.SourceDeployment, res.TargetDeployment = p.targetNew.deployment, ""
	if p.sourceNew != nil {
		res.TargetDeployment = p.sourceNew.deployment
	}
	res.ReusedWarm = p.targetNew.reused && (p.sourceNew == nil || p.sourceNew.reused)
	if s.node != nil {
		s.phase(ctx, op, PhasePreparing, "the other nodes prepare both slots")
	}
	if err := s.clusterPrepare(ctx, req.App, p.wants()); err != nil {
		for _, x := range []*prepared{p.targetNew, p.sourceNew} {
			if x != nil {
				s.park(x.key, x.deployment, x.set)
			}
		}
		s.end(ctx, op, err)
		s.activity(ctx, req.App, req.Actor, "swap.prepare", req.Source, "into "+req.Target+": "+hotswap.ErrorMessage(err), "failed")
		return res, err
	}
	s.crash("swap.prepared")
	if req.Preview {
		s.mu.Lock()
		src.preview = p
		s.publishLocked()
		s.mu.Unlock()
		s.phase(ctx, op, "preview", req.Source+" serves its deployment with "+req.Target+"'s settings; complete or cancel the swap")
		s.activity(ctx, req.App, req.Actor, "swap.prepare", req.Source, prepareDetail(req, p), "succeeded")
		s.crash("swap.preview")
		s.activity(ctx, req.App, req.Actor, "swap.preview", req.Source, "previewing "+req.Target+"'s settings on "+req.Source, "succeeded")
		res.Phase = "preview"
		res.DurationMs = time.Since(start).Milliseconds()
		return res, nil
	}
	flip, err := s.flip(ctx, p)
	if err != nil {
		return res, err
	}
	// The prepare phase is recorded after the flip: every store write
	// before it is an fsync between the swap call and the new deployment.
	s.activity(ctx, req.App, req.Actor, "swap.prepare", req.Source, prepareDetail(req, p), "succeeded")
	res.Phase = "completed"
	res.FlipMicros = flip.Microseconds()
	res.DurationMs = time.Since(start).Milliseconds()
	res.LaggingNodes = p.lagging
	return res, nil
}

// wants lists the configurations a swap switches to, for the other nodes
// of a cluster to prepare.
func (p *preview) wants() []hotswap.PrepareWant {
	var out []hotswap.PrepareWant
	for _, x := range []struct {
		slot string
		p    *prepared
	}{{p.req.Target, p.targetNew}, {p.req.Source, p.sourceNew}} {
		if x.p != nil {
			out = append(out, hotswap.PrepareWant{Slot: x.slot, DeploymentID: x.p.deployment, Settings: x.p.settings})
		}
	}
	return out
}

// prepareSwap starts and warms both new configurations.
func (s *Service) prepareSwap(ctx context.Context, req SwapRequest, op *hotswap.Operation) (*preview, error) {
	s.mu.Lock()
	src := s.slots[slotKey{req.App, req.Source}]
	tgt := s.slots[slotKey{req.App, req.Target}]
	if src == nil || tgt == nil || src.set == nil {
		s.mu.Unlock()
		return nil, hotswap.Errorf(hotswap.FailedPrecondition, "the slots changed while the swap started")
	}
	srcSlot, tgtSlot := src.slot, tgt.slot
	srcSettings, tgtSettings := src.settings, tgt.settings
	srcPkg, srcRoutes, tgtPkg, tgtRoutes := src.pkg, src.routes, tgt.pkg, tgt.routes
	srcKeys, tgtKeys := src.keys, tgt.keys
	srcLog, tgtLog := src.log, tgt.log
	tgtRunning := tgt.set != nil
	s.mu.Unlock()

	newSrcSettings, newTgtSettings, err := swapSettings(srcSettings, tgtSettings)
	if err != nil {
		return nil, err
	}
	p := &preview{op: op, req: req, since: time.Now()}
	release := func() {
		for _, x := range []*prepared{p.targetNew, p.sourceNew} {
			if x != nil {
				s.park(x.key, x.deployment, x.set)
			}
		}
	}
	// The source's content under the target's identity and settings.
	s.phase(ctx, op, "preparing "+req.Target, "deployment "+srcSlot.DeploymentID+" with "+req.Target+"'s settings")
	p.targetNew, err = s.prepare(ctx, tgtSlot, srcSlot.DeploymentID, srcPkg, srcRoutes, newTgtSettings, tgtKeys, tgtLog)
	if err != nil {
		release()
		return nil, err
	}
	if tgtRunning {
		s.phase(ctx, op, "preparing "+req.Source, "deployment "+tgtSlot.DeploymentID+" with "+req.Source+"'s settings")
		p.sourceNew, err = s.prepare(ctx, srcSlot, tgtSlot.DeploymentID, tgtPkg, tgtRoutes, newSrcSettings, srcKeys, srcLog)
		if err != nil {
			release()
			return nil, err
		}
	}
	return p, nil
}

// prepare starts (or reuses) and warms the set of one configuration.
func (s *Service) prepare(ctx context.Context, sl hotswap.Slot, deployment string, pkg *funcapp.App, routes *funcapp.Router, settings []hotswap.Setting, keys []hotswap.Key, log *ring) (*prepared, error) {
	d, err := s.store.GetDeployment(ctx, sl.App, deployment)
	if err != nil {
		return nil, err
	}
	w, err := warmupConfig(settings)
	if err != nil {
		return nil, err
	}
	set, key, reused, err := s.acquireSet(ctx, sl, d, pkg, settings, log)
	if err != nil {
		return nil, err
	}
	x := &prepared{set: set, key: key, deployment: deployment, settings: settings, pkg: pkg, routes: routes, reused: reused}
	s.appPhase(ctx, sl.App, PhaseWarming, sl.Name+": GET "+w.path)
	if err := s.warm(ctx, w, s.routerSlot(sl, deployment, pkg, routes, set, settings, keys, log)); err != nil {
		if reused {
			s.park(key, deployment, set)
		} else {
			s.retire(set)
		}
		return nil, err
	}
	log.add("host", fmt.Sprintf("prepared deployment %s for %s: ready and warm", deployment, sl.Name))
	return x, nil
}

// flip commits a prepared swap: one store transaction (which also ends the
// operation), one routing-table replacement, then the old sets are parked.
func (s *Service) flip(ctx context.Context, p *preview) (time.Duration, error) {
	req := p.req
	s.phase(ctx, p.op, PhaseSwitching, req.Source+" and "+req.Target)
	s.mu.Lock()
	src := s.slots[slotKey{req.App, req.Source}]
	tgt := s.slots[slotKey{req.App, req.Target}]
	if src == nil || tgt == nil {
		s.mu.Unlock()
		err := hotswap.Errorf(hotswap.FailedPrecondition, "a slot of the swap was deleted")
		s.end(ctx, p.op, err)
		return 0, err
	}
	t0 := time.Now()
	err := s.mayFlip()
	if err == nil {
		err = s.store.Swap(ctx, req.App, req.Source, req.Target, p.op.ID)
	}
	if err != nil {
		src.preview = nil
		s.publishLocked()
		s.mu.Unlock()
		s.end(ctx, p.op, err)
		for _, x := range []*prepared{p.targetNew, p.sourceNew} {
			if x != nil {
				s.park(x.key, x.deployment, x.set)
			}
		}
		s.activity(ctx, req.App, req.Actor, "swap", req.Source, "into "+req.Target+": "+hotswap.ErrorMessage(err), "failed")
		return 0, err
	}
	s.crash("swap.flipped")
	oldSrc := *src
	oldTgt := *tgt
	now := time.Now()
	tn := p.targetNew
	tgt.slot.DeploymentID, tgt.settings, tgt.pkg, tgt.routes, tgt.set, tgt.cfgKey, tgt.started, tgt.err = tn.deployment, tn.settings, tn.pkg, tn.routes, tn.set, tn.key, now, ""
	if sn := p.sourceNew; sn != nil {
		src.slot.DeploymentID, src.settings, src.pkg, src.routes, src.set, src.cfgKey, src.started, src.err = sn.deployment, sn.settings, sn.pkg, sn.routes, sn.set, sn.key, now, ""
	} else {
		newSrc, _, _ := swapSettings(oldSrc.settings, oldTgt.settings)
		src.slot.DeploymentID, src.settings, src.pkg, src.routes, src.set, src.cfgKey = "", newSrc, nil, nil, nil, ""
	}
	src.preview = nil
	s.publishLocked()
	flip := time.Since(t0)
	s.mu.Unlock()
	s.crash("swap.published")
	src.log.add("host", fmt.Sprintf("swapped with %s: now serves %s", req.Target, orNone(src.slot.DeploymentID)))
	tgt.log.add("host", fmt.Sprintf("swapped with %s: now serves %s", req.Source, tn.deployment))
	s.park(oldSrc.cfgKey, oldSrc.slot.DeploymentID, oldSrc.set)
	s.park(oldTgt.cfgKey, oldTgt.slot.DeploymentID, oldTgt.set)
	s.activity(ctx, req.App, req.Actor, "swap", req.Source, fmt.Sprintf("into %s: %s now serves %s, %s serves %s", req.Target, req.Target, tn.deployment, req.Source, orNone(src.slot.DeploymentID)), "succeeded")
	p.lagging = s.clusterAck(ctx, req.App, req.Target, "swap")
	// The store ended the operation with the flip (store.Swap).
	s.ended(*p.op, hotswap.OpSucceeded, fmt.Sprintf("%s now serves %s, %s serves %s", req.Target, tn.deployment, req.Source, orNone(src.slot.DeploymentID)))
	return flip, nil
}

func prepareDetail(req SwapRequest, p *preview) string {
	how := "started and warmed"
	if p.targetNew.reused && (p.sourceNew == nil || p.sourceNew.reused) {
		how = "reused warm process sets"
	}
	return fmt.Sprintf("into %s: %s (%v)", req.Target, how, time.Since(p.since).Round(time.Millisecond))
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// previewOf finds the app's slot in preview.
func (s *Service) previewOf(ctx context.Context, app string) (*slotState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, st := range s.slots {
		if k.app == app && st.preview != nil {
			return st, nil
		}
	}
	if _, err := s.store.GetApp(ctx, app); err != nil {
		return nil, err
	}
	return nil, hotswap.Errorf(hotswap.FailedPrecondition, "app %s has no swap in preview", app)
}

// CompleteSwap flips a swap in preview. A release holding either slot
// (one whose preview runs its checks, say) refuses it as Swap does.
func (s *Service) CompleteSwap(ctx context.Context, actor, app string, ho HoldOptions) (SwapResult, error) {
	start := time.Now()
	st, err := s.previewOf(ctx, app)
	if err != nil {
		return SwapResult{}, err
	}
	s.mu.Lock()
	p := st.preview
	s.mu.Unlock()
	if p == nil {
		return SwapResult{}, hotswap.Errorf(hotswap.FailedPrecondition, "app %s has no swap in preview", app)
	}
	s.takenUp(ctx, *p.op)
	res := SwapResult{App: app, Source: p.req.Source, Target: p.req.Target, SourceDeployment: p.targetNew.deployment}
	if p.sourceNew != nil {
		res.TargetDeployment = p.sourceNew.deployment
	}
	forced, err := s.checkHolds("swap", app, ho.Release, ho.Force, p.req.Source, p.req.Target)
	if err != nil {
		return res, err
	}
	ctx = context.WithoutCancel(ctx)
	if err := s.abandonHolds(ctx, actor, "swap", app, forced); err != nil {
		return res, err
	}
	p.req.Actor = actor
	flip, err := s.flip(ctx, p)
	if err != nil {
		return res, err
	}
	res.Phase, res.FlipMicros, res.DurationMs = "completed", flip.Microseconds(), time.Since(start).Milliseconds()
	res.LaggingNodes = p.lagging
	return res, nil
}

// CancelSwap ends a swap in preview: the source slot serves what it served.
// A release holding either slot refuses it as Swap does.
func (s *Service) CancelSwap(ctx context.Context, actor, app string, ho HoldOptions) (SwapResult, error) {
	st, err := s.previewOf(ctx, app)
	if err != nil {
		return SwapResult{}, err
	}
	s.mu.Lock()
	p := st.preview
	s.mu.Unlock()
	if p == nil {
		return SwapResult{}, hotswap.Errorf(hotswap.FailedPrecondition, "app %s has no swap in preview", app)
	}
	s.takenUp(ctx, *p.op)
	forced, err := s.checkHolds("cancel", app, ho.Release, ho.Force, p.req.Source, p.req.Target)
	if err != nil {
		return SwapResult{}, err
	}
	ctx = context.WithoutCancel(ctx)
	s.mu.Lock()
	if st.preview != p {
		s.mu.Unlock()
		return SwapResult{}, hotswap.Errorf(hotswap.FailedPrecondition, "the swap preview of app %s ended meanwhile", app)
	}
	st.preview = nil
	s.publishLocked()
	s.mu.Unlock()
	if err := s.abandonHolds(ctx, actor, "cancel", app, forced); err != nil {
		s.log.Error("abandon release after a forced swap cancel", "app", app, "err", err)
	}
	for _, x := range []*prepared{p.targetNew, p.sourceNew} {
		if x != nil {
			s.park(x.key, x.deployment, x.set)
		}
	}
	s.finish(ctx, *p.op, hotswap.OpFailed, cancelledBy+actor)
	s.activity(ctx, app, actor, "swap.cancel", p.req.Source, "preview of "+p.req.Target+" cancelled", "succeeded")
	return SwapResult{App: app, Source: p.req.Source, Target: p.req.Target, Phase: "cancelled"}, nil
}

// SetAutoSwap sets (or with an empty target, clears) a slot's auto-swap target.
func (s *Service) SetAutoSwap(ctx context.Context, actor, app, slot, target string) (SlotView, error) {
	if target == slot {
		return SlotView{}, hotswap.Errorf(hotswap.Invalid, "a slot cannot auto swap into itself")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.slotLocked(ctx, app, slot)
	if err != nil {
		return SlotView{}, err
	}
	if err := s.store.SetAutoSwap(ctx, app, slot, target); err != nil {
		return SlotView{}, err
	}
	st.slot.AutoSwapTarget = target
	detail := "disabled"
	if target != "" {
		detail = "into " + target
	}
	s.activity(ctx, app, actor, "autoswap", slot, detail, "succeeded")
	return s.slotViewLocked(st, false), nil
}

// SwapPlan says what a swap would change, before it runs.
type SwapPlan struct {
	Source, Target string
	// SourceDeployment moves to the target; TargetDeployment to the source.
	SourceDeployment string          `json:"sourceDeployment"`
	TargetDeployment string          `json:"targetDeployment"`
	Changes          []SettingChange `json:"changes"`
}

// SettingChange is one setting whose value a slot would see change.
type SettingChange struct {
	Slot   string `json:"slot"`
	Name   string `json:"name"`
	Before string `json:"before"` // "" when unset
	After  string `json:"after"`  // "" when unset
	Sticky bool   `json:"sticky"`
}

// PlanSwap computes a swap's effect without changing anything.
func (s *Service) PlanSwap(ctx context.Context, app, source, target string) (SwapPlan, error) {
	if target == "" {
		target = hotswap.ProductionSlot
	}
	s.mu.Lock()
	src, err := s.slotLocked(ctx, app, source)
	var tgt *slotState
	if err == nil {
		tgt, err = s.slotLocked(ctx, app, target)
	}
	if err != nil {
		s.mu.Unlock()
		return SwapPlan{}, err
	}
	plan := SwapPlan{Source: source, Target: target, SourceDeployment: src.slot.DeploymentID, TargetDeployment: tgt.slot.DeploymentID}
	srcSettings, tgtSettings := src.settings, tgt.settings
	s.mu.Unlock()
	newSrc, newTgt, err := swapSettings(srcSettings, tgtSettings)
	if err != nil {
		return plan, err
	}
	diff := func(slot string, before, after []hotswap.Setting) {
		b := make(map[string]hotswap.Setting)
		for _, x := range before {
			b[x.Name] = x
		}
		a := make(map[string]hotswap.Setting)
		for _, x := range after {
			a[x.Name] = x
		}
		var names []string
		for n := range b {
			names = append(names, n)
		}
		for n := range a {
			if _, ok := b[n]; !ok {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			if b[n].Value != a[n].Value || (b[n].Name == "") != (a[n].Name == "") {
				plan.Changes = append(plan.Changes, SettingChange{Slot: slot, Name: n, Before: b[n].Value, After: a[n].Value, Sticky: b[n].Sticky || a[n].Sticky})
			}
		}
	}
	diff(target, tgtSettings, newTgt)
	diff(source, srcSettings, newSrc)
	return plan, nil
}
