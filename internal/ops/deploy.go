package ops

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/funcapp"
)

// begin records a running operation on app; Conflict when one already runs.
func (s *Service) begin(ctx context.Context, app, kind, slot, actor string) (*hotswap.Operation, error) {
	op := &hotswap.Operation{ID: newID("op-"), App: app, Kind: kind, Slot: slot, Actor: actor, State: "running", StartedAt: time.Now().UTC()}
	if err := s.beginOp(ctx, *op); err != nil {
		return nil, err
	}
	return op, nil
}

// end records the outcome of an operation. It uses a context that outlives
// the caller's, so a client going away does not leave it running.
func (s *Service) end(ctx context.Context, op *hotswap.Operation, err error) {
	state, detail := hotswap.OpSucceeded, ""
	if err != nil {
		state, detail = hotswap.OpFailed, hotswap.ErrorMessage(err)
	}
	s.finish(ctx, *op, state, detail)
}

// DeployRequest is one deploy of a package to a slot.
type DeployRequest struct {
	App, Slot string
	Actor     string
	Message   string
	Package   io.Reader // the zip
	// Digest deploys a package already in the store (an artifact) instead
	// of reading Package.
	Digest string
	// Release is the id of the release making this deploy: it may deploy
	// to a slot it holds, and its deploy never auto swaps (the release
	// swaps after its approvals and gates).
	Release string
	// Force deploys to a slot a release holds, abandoning that release.
	Force bool
}

// Deploy validates and stores the package, starts its handler process, and
// once it is ready points the slot at it in one step; the slot's previous
// process set drains and stops. Until that step the slot serves what it
// served, and any failure leaves it so.
func (s *Service) Deploy(ctx context.Context, req DeployRequest) (DeployResult, error) {
	d, op, err := s.beginDeploy(ctx, req)
	if err != nil {
		return DeployResult{Deployment: d}, err
	}
	return s.runDeploy(context.WithoutCancel(ctx), req, d, op)
}

// DeployResult is the outcome of a deploy, and of the auto swap that
// followed it when the slot has an auto-swap target.
type DeployResult struct {
	Deployment    hotswap.Deployment `json:"deployment"`
	AutoSwap      *SwapResult        `json:"autoSwap,omitempty"`
	AutoSwapError string             `json:"autoSwapError,omitempty"`
	// AutoSwapSkipped is the auto-swap target a release deploy did not
	// swap into.
	AutoSwapSkipped string `json:"autoSwapSkipped,omitempty"`
}

// StartDeploy is Deploy that returns once the deploy is accepted: the
// package is read into a file first (in the artifact store, no larger than
// its package limit: TooLarge), and the rest runs in the background.
// The returned channel yields the outcome.
func (s *Service) StartDeploy(ctx context.Context, req DeployRequest) (hotswap.Deployment, <-chan error, error) {
	// Spooled in the data directory, bounded by the package size limit.
	f, err := s.cfg.Artifacts.Spool(ctx, req.Package)
	if err != nil {
		err = hotswap.DiskFull(err, "the uploaded package")
		s.logDiskFull(req.App, req.Slot, "upload", err)
		return hotswap.Deployment{}, nil, err
	}
	req.Package = f
	d, op, err := s.beginDeploy(ctx, req)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return d, nil, err
	}
	done := make(chan error, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer os.Remove(f.Name())
		defer f.Close()
		_, err := s.runDeploy(s.ctx, req, d, op)
		done <- err
	}()
	return d, done, nil
}

func (s *Service) beginDeploy(ctx context.Context, req DeployRequest) (hotswap.Deployment, *hotswap.Operation, error) {
	if len(req.Message) > 4096 {
		return hotswap.Deployment{}, nil, hotswap.Errorf(hotswap.Invalid, "deploy message is longer than 4096 bytes")
	}
	if err := hotswap.ValidateText("deploy message", req.Message); err != nil {
		return hotswap.Deployment{}, nil, err
	}
	if err := hotswap.ValidateText("deploy author", req.Actor); err != nil {
		return hotswap.Deployment{}, nil, err
	}
	s.mu.Lock()
	_, err := s.slotLocked(ctx, req.App, req.Slot)
	s.mu.Unlock()
	if err != nil {
		return hotswap.Deployment{}, nil, err
	}
	forced, err := s.checkHolds("deploy", req.App, req.Release, req.Force, req.Slot)
	if err != nil {
		return hotswap.Deployment{}, nil, err
	}
	if req.Digest != "" && !req.Force {
		if err := s.CheckQuarantine(ctx, req.App, req.Digest, ""); err != nil {
			return hotswap.Deployment{}, nil, err
		}
	}
	now := time.Now().UTC()
	d := hotswap.Deployment{
		ID: newID("d-"), App: req.App, Slot: req.Slot, Author: req.Actor, Message: req.Message,
		Status: hotswap.DeployPending, StatusText: "pending", CreatedAt: now, StartedAt: now,
	}
	op := &hotswap.Operation{ID: newID("op-"), App: req.App, Kind: "deploy", Slot: req.Slot, Target: d.ID, Actor: req.Actor, State: "running", StartedAt: now}
	if err := s.beginOp(ctx, *op); err != nil {
		return d, nil, err
	}
	if err := s.abandonHolds(ctx, req.Actor, "deploy", req.App, forced); err != nil {
		s.end(ctx, op, err)
		return d, nil, err
	}
	if err := s.store.CreateDeployment(ctx, d); err != nil {
		s.end(ctx, op, err)
		return d, nil, err
	}
	return d, op, nil
}

func (s *Service) runDeploy(ctx context.Context, req DeployRequest, d hotswap.Deployment, op *hotswap.Operation) (DeployResult, error) {
	d, err := s.deploy(ctx, req, d, op)
	if err != nil {
		s.logDiskFull(req.App, req.Slot, "deploy "+d.ID, err)
		d.Status, d.StatusText, d.EndedAt = hotswap.DeployFailed, hotswap.CleanText(hotswap.ErrorMessage(err)), time.Now().UTC()
		if e := s.store.UpdateDeployment(ctx, d); e != nil {
			s.log.Error("record failed deployment", "deployment", d.ID, "err", e)
		}
		s.activity(ctx, req.App, req.Actor, "deploy", req.Slot, d.ID+": "+hotswap.ErrorMessage(err), "failed")
	} else {
		s.activity(ctx, req.App, req.Actor, "deploy", req.Slot, d.ID, "succeeded")
	}
	s.end(ctx, op, err)
	res := DeployResult{Deployment: d}
	if err != nil {
		return res, err
	}
	s.prune(ctx, req.App)
	s.mu.Lock()
	var target string
	if st := s.slots[slotKey{req.App, req.Slot}]; st != nil {
		target = st.slot.AutoSwapTarget
	}
	s.mu.Unlock()
	if target != "" && req.Release != "" {
		// A release's deploy waits for its approvals and gates; swapping
		// it on now would put an unapproved build into the target.
		res.AutoSwapSkipped = target
		s.slotLog(req.App, req.Slot, fmt.Sprintf("auto swap into %s skipped: deployment %s was made by a release, which swaps only after its approvals and gates", target, d.ID))
		return res, nil
	}
	if target != "" {
		if s.beforeAutoSwap != nil {
			s.beforeAutoSwap()
		}
		// The swap expects the slot to serve this deploy still: another
		// deploy landing first would otherwise be swapped in by this
		// one's auto swap, and back out by its own.
		sw, err := s.Swap(ctx, SwapRequest{App: req.App, Source: req.Slot, Target: target, Actor: req.Actor + " (auto swap)",
			Expect: &SwapExpect{Source: d.ID, AnyTarget: true}})
		if err != nil {
			res.AutoSwapError = hotswap.ErrorMessage(err)
		} else {
			res.AutoSwap = &sw
		}
	}
	return res, nil
}

func (s *Service) deploy(ctx context.Context, req DeployRequest, d hotswap.Deployment, op *hotswap.Operation) (hotswap.Deployment, error) {
	phase := func(p, detail string, status hotswap.DeploymentStatus) {
		d.Status, d.StatusText = status, p
		_ = s.store.UpdateDeployment(ctx, d)
		s.phase(ctx, op, p, detail)
	}
	if req.Digest == "" {
		// The upload is read by the store as it validates; its end starts
		// the validation.
		phase("receiving", "", hotswap.DeployBuilding)
		req.Package = &eofReader{r: req.Package, at: func() { phase("validating", "", hotswap.DeployBuilding) }}
	} else {
		phase("validating", "", hotswap.DeployBuilding)
	}
	var pkg *funcapp.App
	check := func(dir string) error {
		p, err := funcapp.Load(dir)
		if err != nil {
			return err
		}
		if err := makeExecutable(dir, p.Host); err != nil {
			return err
		}
		pkg = p
		if req.Digest == "" {
			phase("storing", "", hotswap.DeployBuilding)
		}
		return nil
	}
	digest := req.Digest
	var err error
	if digest != "" {
		if s.cfg.Cluster != nil && !s.cfg.Artifacts.Has(digest) {
			// Pushed through another node: fetched from the shared store.
			if err := s.ensurePackage(ctx, digest); err != nil {
				return d, err
			}
		}
		if !s.cfg.Artifacts.Has(digest) {
			return d, hotswap.Errorf(hotswap.FailedPrecondition, "package %s is not stored", digest)
		}
		err = s.cfg.Artifacts.Verify(digest)
		if err == nil {
			err = check(s.cfg.Artifacts.Dir(digest))
		}
	} else {
		digest, err = s.cfg.Artifacts.Put(ctx, req.Package, check)
	}
	if err != nil {
		return d, hotswap.DiskFull(err, "the package")
	}
	d.Digest = digest
	if !req.Force {
		// An upload's digest is known only now.
		if err := s.CheckQuarantine(ctx, req.App, digest, ""); err != nil {
			return d, err
		}
	}
	s.crash("deploy.stored")
	routes, err := funcapp.NewRouter(pkg.Host.RoutePrefix, pkg.Functions)
	if err != nil {
		return d, err
	}
	phase(PhaseStarting, "handler of deployment "+d.ID, hotswap.DeployDeploying)
	if err := s.activate(ctx, req.App, req.Slot, d, pkg, routes, true); err != nil {
		return d, err
	}
	d.Status, d.StatusText = hotswap.DeploySuccess, "success"
	return d, nil
}

// activate makes slot serve deployment d: it starts (or reuses a warm) process
// set, creates missing function keys, then flips in one store transaction
// and one table replacement; the slot's previous set drains and stays warm
// for the revert window. fresh marks a new deployment (DeployTo marks it
// succeeded) rather than a rollback to a stored one.
func (s *Service) activate(ctx context.Context, app, slot string, d hotswap.Deployment, pkg *funcapp.App, routes *funcapp.Router, fresh bool) error {
	if err := s.catchUp(ctx, app, slot); err != nil {
		return err
	}
	s.mu.Lock()
	st, err := s.slotLocked(ctx, app, slot)
	var settings []hotswap.Setting
	var sl hotswap.Slot
	var log *ring
	if err == nil {
		settings, sl, log = st.settings, st.slot, st.log
		if st.preview != nil {
			err = hotswap.Errorf(hotswap.FailedPrecondition, "slot %s/%s is in a swap preview; complete or cancel it first", app, slot)
		}
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	set, key, _, err := s.acquireSet(ctx, sl, d, pkg, settings, log)
	if err != nil {
		return err
	}
	// Function keys are created before the flip so "Get function URL" works
	// the moment the slot serves the new deployment. Existing keys are kept.
	newKeys, err := s.ensureFunctionKeys(ctx, app, slot, pkg)
	if err != nil {
		s.park(key, d.ID, set)
		return err
	}
	if s.node != nil {
		s.appPhase(ctx, app, PhasePreparing, "the other nodes start deployment "+d.ID)
	}
	if err := s.clusterPrepare(ctx, app, []hotswap.PrepareWant{{Slot: slot, DeploymentID: d.ID, Digest: d.Digest, Settings: settings}}); err != nil {
		s.park(key, d.ID, set)
		return err
	}
	s.crash("activate.ready")
	s.appPhase(ctx, app, PhaseSwitching, slot+" to deployment "+d.ID)
	s.mu.Lock()
	st, err = s.slotLocked(ctx, app, slot)
	if err == nil {
		err = s.mayFlip()
	}
	if err == nil {
		if fresh {
			d.Status, d.StatusText, d.EndedAt = hotswap.DeploySuccess, "success", time.Now().UTC()
			err = s.store.DeployTo(ctx, d)
		} else {
			err = s.store.SetSlotDeployment(ctx, app, slot, d.ID)
		}
	}
	if err != nil {
		s.mu.Unlock()
		s.park(key, d.ID, set)
		return err
	}
	s.crash("activate.flipped")
	oldSet, oldKey, oldDep := st.set, st.cfgKey, st.slot.DeploymentID
	st.slot.DeploymentID = d.ID
	st.pkg, st.routes, st.set, st.cfgKey, st.started, st.err = pkg, routes, set, key, time.Now(), ""
	if len(newKeys) > 0 {
		st.keys = append(append([]hotswap.Key(nil), st.keys...), newKeys...)
	}
	s.publishLocked()
	s.mu.Unlock()
	s.crash("activate.published")
	log.add("host", fmt.Sprintf("slot now serves deployment %s", d.ID))
	s.park(oldKey, oldDep, oldSet)
	s.clusterAck(ctx, app, slot, "deploy")
	return nil
}

// ensureFunctionKeys creates a "default" key for each function that has none.
func (s *Service) ensureFunctionKeys(ctx context.Context, app, slot string, pkg *funcapp.App) ([]hotswap.Key, error) {
	have, err := s.store.ListKeys(ctx, app, slot)
	if err != nil {
		return nil, err
	}
	exists := make(map[string]bool)
	for _, k := range have {
		if k.Scope == hotswap.ScopeFunction && k.Name == "default" {
			exists[k.Function] = true
		}
	}
	var added []hotswap.Key
	for _, f := range pkg.Functions {
		if f.Trigger != "http" || exists[f.Name] {
			continue
		}
		k := hotswap.Key{Scope: hotswap.ScopeFunction, Function: f.Name, Name: "default", Value: newKey()}
		if err := s.store.PutKey(ctx, app, slot, k); err != nil {
			return nil, err
		}
		added = append(added, k)
	}
	return added, nil
}

// makeExecutable sets the executable bit on the handler when it is in the
// package: zips made on Windows carry no Unix modes.
func makeExecutable(dir string, h *funcapp.Host) error {
	for _, base := range []string{filepath.Join(dir, filepath.FromSlash(h.WorkingDirectory)), dir} {
		p := filepath.Join(base, filepath.FromSlash(h.ExecutablePath))
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if fi.Mode()&0o111 == 0 {
			if err := os.Chmod(p, fi.Mode()|0o755); err != nil {
				return fmt.Errorf("make %s executable: %w", h.ExecutablePath, err)
			}
		}
		return nil
	}
	return nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// Deployments lists an app's deployments, newest first.
func (s *Service) Deployments(ctx context.Context, app, slot string) ([]hotswap.Deployment, error) {
	if _, err := s.store.GetApp(ctx, app); err != nil {
		return nil, err
	}
	return s.store.ListDeployments(ctx, app, slot)
}

// Deployment returns one deployment.
func (s *Service) Deployment(ctx context.Context, app, id string) (hotswap.Deployment, error) {
	return s.store.GetDeployment(ctx, app, id)
}

// LatestDeployment returns the newest deployment to a slot.
func (s *Service) LatestDeployment(ctx context.Context, app, slot string) (hotswap.Deployment, error) {
	return s.store.LatestDeployment(ctx, app, slot)
}
