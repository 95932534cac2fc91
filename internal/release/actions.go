package release

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/pipeline"
)

// Actor is who asks for something.
type Actor struct {
	Name string
	Role string // admin, deployer or approver
}

// resolver checks a definition's references against the platform.
type resolver struct {
	ctx context.Context
	e   *Engine
}

func (r resolver) Slot(app, slot string) error { return r.e.ops.SlotExists(r.ctx, app, slot) }

func (r resolver) User(name string) error {
	_, err := r.e.store.GetUser(r.ctx, name)
	return err
}

// ApplyPipeline creates a pipeline from a YAML definition or, when one of
// that name exists, stores a new version of it. An invalid definition is
// refused with its problems by line; the previous version keeps running.
func (e *Engine) ApplyPipeline(ctx context.Context, actor Actor, definition []byte) (hotswap.Pipeline, error) {
	def, err := pipeline.Parse(definition, resolver{ctx, e})
	if err != nil {
		return hotswap.Pipeline{}, err
	}
	id := newID("p-")
	var oldDef *pipeline.Pipeline
	if old, err := e.store.GetPipeline(ctx, def.Name, false); err == nil {
		id = old.ID
		if oldDef, err = pipeline.Parse([]byte(old.Definition), nil); err != nil {
			return hotswap.Pipeline{}, fmt.Errorf("apply pipeline %s: the stored definition no longer parses: %w", def.Name, err)
		}
	} else if hotswap.ErrorKind(err) != hotswap.NotFound {
		return hotswap.Pipeline{}, err
	}
	if actor.Role != "admin" {
		if definition, def, err = keepWebhook(definition, def, oldDef, resolver{ctx, e}); err != nil {
			return hotswap.Pipeline{}, err
		}
	}
	if err := checkDuties(actor, oldDef, def); err != nil {
		return hotswap.Pipeline{}, err
	}
	return e.store.ApplyPipeline(ctx, id, def.Name, string(definition), actor.Name)
}

// RenamePipeline gives a pipeline a new name, as a new version whose
// definition carries the new name; its history and releases stay.
func (e *Engine) RenamePipeline(ctx context.Context, actor Actor, name, newName string) (hotswap.Pipeline, error) {
	if err := hotswap.ValidateName("pipeline", newName); err != nil {
		return hotswap.Pipeline{}, err
	}
	p, err := e.store.GetPipeline(ctx, name, false)
	if err != nil {
		return p, err
	}
	def := renameDefinition(p.Definition, newName)
	if _, err := pipeline.Parse([]byte(def), nil); err != nil {
		return p, fmt.Errorf("rename pipeline %s: %w", name, err)
	}
	return e.store.ApplyPipeline(ctx, p.ID, newName, def, actor.Name)
}

var nameLine = regexp.MustCompile(`(?m)^name:[ \t]*\S.*$`)

// renameDefinition replaces the top-level name line of a definition.
func renameDefinition(def, name string) string {
	if loc := nameLine.FindStringIndex(def); loc != nil {
		return def[:loc[0]] + "name: " + name + def[loc[1]:]
	}
	return "name: " + name + "\n" + def
}

var versionRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)

// PushArtifact validates and stores a build's package in a feed and starts a
// release of every pipeline whose continuous-deployment trigger takes the
// branch. It returns the artifact and the releases created.
func (e *Engine) PushArtifact(ctx context.Context, actor Actor, a hotswap.Artifact, pkg io.Reader) (hotswap.Artifact, []*Release, error) {
	if err := hotswap.ValidateName("feed", a.Feed); err != nil {
		return a, nil, err
	}
	if !versionRe.MatchString(a.Version) {
		return a, nil, hotswap.Errorf(hotswap.Invalid, "version %q: use 1 to 128 letters, digits, '.', '_', '+' and '-', starting with a letter or digit", a.Version)
	}
	if len(a.Branch) > 255 || strings.ContainsAny(a.Branch, " \t\n\x00") {
		return a, nil, hotswap.Errorf(hotswap.Invalid, "branch %q is not a branch name", a.Branch)
	}
	if len(a.Commit) > 64 || strings.ContainsAny(a.Commit, " \t\n\x00") {
		return a, nil, hotswap.Errorf(hotswap.Invalid, "commit %q is not a commit id", a.Commit)
	}
	digest, err := e.ops.StorePackage(ctx, pkg)
	if err != nil {
		return a, nil, err
	}
	a.Digest, a.Actor, a.CreatedAt = digest, actor.Name, e.now()
	created, err := e.store.PutArtifact(ctx, a)
	if err != nil {
		return a, nil, err
	}
	if !created {
		a, err = e.store.GetArtifact(ctx, a.Feed, a.Version)
		return a, nil, err
	}
	pipes, err := e.store.ListPipelines(ctx)
	if err != nil {
		return a, nil, err
	}
	var rels []*Release
	for _, p := range pipes {
		def, err := pipeline.Parse([]byte(p.Definition), nil)
		if err != nil || def.Feed != a.Feed || !def.Continuous || !def.MatchBranch(a.Branch) {
			continue
		}
		r, err := e.create(ctx, p, def, a, actor, "continuous")
		if err != nil {
			e.log.Error("continuous deployment trigger", "pipeline", p.Name, "err", err)
			continue
		}
		rels = append(rels, r)
	}
	return a, rels, nil
}

// CreateRelease starts a release of a pipeline over a version of its feed
// (the newest when version is empty).
func (e *Engine) CreateRelease(ctx context.Context, actor Actor, pipelineName, version string) (*Release, error) {
	p, err := e.store.GetPipeline(ctx, pipelineName, false)
	if err != nil {
		return nil, err
	}
	def, err := pipeline.Parse([]byte(p.Definition), nil)
	if err != nil {
		return nil, err
	}
	a, err := e.store.GetArtifact(ctx, def.Feed, version)
	if err != nil {
		return nil, err
	}
	return e.create(ctx, p, def, a, actor, "manual")
}

// create starts a release here, or has the node that runs the releases
// start it.
func (e *Engine) create(ctx context.Context, p hotswap.Pipeline, def *pipeline.Pipeline, a hotswap.Artifact, actor Actor, reason string) (*Release, error) {
	id := newID("r-")
	return e.leaderDo(ctx, reqCreate, request{Actor: actor, ID: id, PipelineID: p.ID, Feed: a.Feed, Version: a.Version, Reason: reason}, func() (*Release, error) {
		return e.createLocal(ctx, id, p, def, a, actor, reason)
	})
}

func (e *Engine) createLocal(ctx context.Context, id string, p hotswap.Pipeline, def *pipeline.Pipeline, a hotswap.Artifact, actor Actor, reason string) (*Release, error) {
	now := e.now()
	r := &Release{
		ID: id, PipelineID: p.ID, Pipeline: p.Name, PipelineVersion: p.Version, Definition: p.Definition,
		Feed: a.Feed, Version: a.Version, Branch: a.Branch, Commit: a.Commit, Digest: a.Digest,
		Requester: actor.Name, Reason: reason, State: Active, CreatedAt: now, Holds: []string{},
	}
	for _, sd := range def.Stages {
		r.Stages = append(r.Stages, &StageRun{Name: sd.Name, State: StagePending, Approvals: []Approval{}, Gates: []GateRun{}, Log: []LogLine{}})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leadsLocked() {
		return nil, errNotLeader
	}
	number, err := e.store.CreateRelease(ctx, hotswap.ReleaseRow{ID: r.ID, PipelineID: p.ID, State: Active, CreatedAt: now}, func(n int) (string, error) {
		r.Number, r.Name = n, fmt.Sprintf("%s-%d", p.Name, n)
		return r.encode()
	})
	if err != nil {
		return nil, err
	}
	r.Number = number
	e.active[r.ID], e.defs[r.ID] = r, def
	e.changedLocked(r)
	e.cfg.Notifier.Send(r.PipelineID, e.webhook(r), Event{Event: "release", Release: r.Name, ReleaseID: r.ID, State: "created", Time: now})
	e.Wake()
	// The engine owns r from here; callers get a copy.
	return copyRelease(r)
}

// Get returns a release by id or by name (pipeline-number). A name that
// more than one release answers to (a pipeline renamed, another created
// under its old name before that was refused) is a Conflict naming their
// ids, never one of them at random.
func (e *Engine) Get(ctx context.Context, idOrName string) (*Release, error) {
	e.mu.Lock()
	if r := e.active[idOrName]; r != nil {
		c, err := copyRelease(r)
		e.mu.Unlock()
		return c, err
	}
	e.mu.Unlock()
	row, err := e.store.GetRelease(ctx, idOrName)
	if err == nil {
		return decode(row.Doc)
	}
	if hotswap.ErrorKind(err) != hotswap.NotFound {
		return nil, err
	}
	rows, err := e.findByName(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	var found []*Release
	seen := make(map[string]bool)
	e.mu.Lock()
	for _, r := range e.active {
		if r.Name == idOrName {
			c, err := copyRelease(r)
			if err != nil {
				e.mu.Unlock()
				return nil, err
			}
			found, seen[r.ID] = append(found, c), true
		}
	}
	e.mu.Unlock()
	for _, row := range rows {
		if seen[row.ID] {
			continue
		}
		r, err := decode(row.Doc)
		if err != nil {
			return nil, err
		}
		found, seen[row.ID] = append(found, r), true
	}
	switch len(found) {
	case 0:
		return nil, hotswap.Errorf(hotswap.NotFound, "release %q not found", idOrName)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, r := range found {
		ids[i] = r.ID
	}
	slices.Sort(ids)
	return nil, hotswap.Errorf(hotswap.Conflict, "release name %q is ambiguous: use the release id %s or %s", idOrName, strings.Join(ids[:len(ids)-1], ", "), ids[len(ids)-1])
}

// findByName returns the stored releases that answer to name. A release
// keeps the name it was created with; its pipeline may have been renamed
// since, so the pipeline is looked up by every name it had, and the
// release also answers to the pipeline's current name.
func (e *Engine) findByName(ctx context.Context, name string) ([]hotswap.ReleaseRow, error) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return nil, nil
	}
	ids, err := e.store.PipelineIDsNamed(ctx, name[:i])
	if err != nil {
		return nil, err
	}
	var out []hotswap.ReleaseRow
	for _, id := range ids {
		rows, err := e.store.ListReleases(ctx, id, "", 0)
		if err != nil {
			return nil, err
		}
		for _, row := range rows {
			if fmt.Sprint(row.Number) == name[i+1:] {
				out = append(out, row)
			}
		}
	}
	return out, nil
}

func copyRelease(r *Release) (*Release, error) {
	doc, err := r.encode()
	if err != nil {
		return nil, err
	}
	return decode(doc)
}

// List returns releases newest first, of one pipeline when named.
func (e *Engine) List(ctx context.Context, pipelineName string, limit int) ([]*Release, error) {
	var pid string
	if pipelineName != "" {
		ids, err := e.store.PipelineIDsNamed(ctx, pipelineName) // current or former name
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			return nil, hotswap.Errorf(hotswap.NotFound, "pipeline %q not found", pipelineName)
		}
		pid = ids[0]
	}
	rows, err := e.store.ListReleases(ctx, pid, "", limit)
	if err != nil {
		return nil, err
	}
	out := make([]*Release, 0, len(rows))
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, row := range rows {
		if r := e.active[row.ID]; r != nil {
			c, err := copyRelease(r)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
			continue
		}
		r, err := decode(row.Doc)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// withActive runs f on an active release under the lock, saves it, and wakes
// the engine. It returns errNotLeader when this node does not run the
// releases.
func (e *Engine) withActive(ctx context.Context, idOrName string, f func(r *Release, def *pipeline.Pipeline) error) (*Release, error) {
	r0, err := e.Get(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leadsLocked() {
		return nil, errNotLeader
	}
	r := e.active[r0.ID]
	if r == nil {
		return nil, hotswap.Errorf(hotswap.FailedPrecondition, "release %s has ended (%s)", r0.Name, r0.State)
	}
	if err := f(r, e.defs[r.ID]); err != nil {
		return nil, err
	}
	c, err := copyRelease(r)
	e.saveLocked(r)
	e.Wake()
	return c, err
}

// Decide records an approver's approval or rejection of a stage waiting for
// approval. The requester may not approve unless the stage allows it.
func (e *Engine) Decide(ctx context.Context, actor Actor, idOrName, stage string, approve bool, comment string) (*Release, error) {
	if len(comment) > 2000 {
		return nil, hotswap.Errorf(hotswap.Invalid, "comment is longer than 2000 characters")
	}
	return e.leaderDo(ctx, reqDecide, request{Actor: actor, Release: idOrName, Stage: stage, Approve: approve, Comment: comment}, func() (*Release, error) {
		return e.decide(ctx, actor, idOrName, stage, approve, comment)
	})
}

func (e *Engine) decide(ctx context.Context, actor Actor, idOrName, stage string, approve bool, comment string) (*Release, error) {
	return e.withActive(ctx, idOrName, func(r *Release, def *pipeline.Pipeline) error {
		sd, st := def.Stage(stage), r.stage(stage)
		if sd == nil {
			return hotswap.Errorf(hotswap.NotFound, "release %s has no stage %q", r.Name, stage)
		}
		if st.State != StageApproval {
			return hotswap.Errorf(hotswap.FailedPrecondition, "stage %s of %s is %s, not waiting for approval", stage, r.Name, st.State)
		}
		if !slices.Contains(sd.Approval.Approvers, actor.Name) {
			return hotswap.Errorf(hotswap.Forbidden, "%s is not an approver of stage %s (approvers: %s)", actor.Name, stage, strings.Join(sd.Approval.Approvers, ", "))
		}
		if actor.Name == r.Requester && !sd.Approval.RequesterCanApprove {
			return hotswap.Errorf(hotswap.Forbidden, "%s requested release %s and may not approve it (requesterCanApprove is false)", actor.Name, r.Name)
		}
		for _, a := range st.Approvals {
			if a.Attempt == st.Attempt && a.User == actor.Name {
				return hotswap.Errorf(hotswap.Conflict, "%s already %s stage %s", actor.Name, a.Decision, stage)
			}
		}
		now := e.now()
		decision := "approved"
		if !approve {
			decision = "rejected"
		}
		st.Approvals = append(st.Approvals, Approval{User: actor.Name, Decision: decision, Comment: comment, Attempt: st.Attempt, At: now})
		line := decision + " by " + actor.Name
		if comment != "" {
			line += ": " + comment
		}
		st.logf(now, line)
		e.recordDecision(ctx, actor, r, sd, decision, comment)
		e.approvalLocked(r, sd, st, now)
		if st.State == StageRejected {
			e.advanceLocked(r)
		}
		return nil
	})
}

// Redeploy runs a stage again (a new attempt), or starts a manual stage;
// the stages after it run again too.
func (e *Engine) Redeploy(ctx context.Context, actor Actor, idOrName, stage string) (*Release, error) {
	return e.leaderDo(ctx, reqRedeploy, request{Actor: actor, Release: idOrName, Stage: stage}, func() (*Release, error) {
		return e.redeploy(ctx, actor, idOrName, stage)
	})
}

func (e *Engine) redeploy(ctx context.Context, actor Actor, idOrName, stage string) (*Release, error) {
	r0, err := e.Get(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if !e.leadsLocked() {
		e.mu.Unlock()
		return nil, errNotLeader
	}
	r := e.active[r0.ID]
	if r == nil {
		// An ended release is brought back to run the stage again.
		def, err := pipeline.Parse([]byte(r0.Definition), nil)
		if err != nil {
			e.mu.Unlock()
			return nil, err
		}
		if r0.State == Abandoned {
			e.mu.Unlock()
			return nil, hotswap.Errorf(hotswap.FailedPrecondition, "release %s was abandoned", r0.Name)
		}
		r = r0
		r.State, r.Detail, r.EndedAt = Active, "", r0.EndedAt
		e.active[r.ID], e.defs[r.ID] = r, def
	}
	e.mu.Unlock()
	return e.withActive(ctx, r.ID, func(r *Release, def *pipeline.Pipeline) error {
		sd, st := def.Stage(stage), r.stage(stage)
		if sd == nil {
			return hotswap.Errorf(hotswap.NotFound, "release %s has no stage %q", r.Name, stage)
		}
		if e.busy[r.ID+"/"+stage] || st.State == StageRunning || st.State == StageQueued || st.State == StageApproval || st.State == StageGates {
			return hotswap.Errorf(hotswap.Conflict, "stage %s of %s is %s", stage, r.Name, st.State)
		}
		if st.State == StagePending && !(sd.Manual && !st.Started) {
			return hotswap.Errorf(hotswap.FailedPrecondition, "stage %s of %s has not been reached yet", stage, r.Name)
		}
		now := e.now()
		for _, name := range downstream(def, stage) {
			s := r.stage(name)
			s.State, s.Detail, s.Step, s.DeploymentID, s.Swapped, s.RolloutID = StagePending, "", "", "", false, ""
			s.Gates, s.ApprovalRequestedAt, s.GatesStartedAt = []GateRun{}, time.Time{}, time.Time{}
			s.Attempt++
		}
		st.Started = true
		st.logf(now, fmt.Sprintf("redeploy requested by %s (attempt %d)", actor.Name, st.Attempt))
		r.State, r.EndedAt, r.Detail = Active, time.Time{}, ""
		e.advanceLocked(r)
		return nil
	})
}

// downstream returns stage and every stage that (transitively) comes after it.
func downstream(def *pipeline.Pipeline, stage string) []string {
	out := []string{stage}
	seen := map[string]bool{stage: true}
	for changed := true; changed; {
		changed = false
		for _, sd := range def.Stages {
			if seen[sd.Name] {
				continue
			}
			for _, a := range sd.After {
				if seen[a] {
					seen[sd.Name] = true
					out = append(out, sd.Name)
					changed = true
					break
				}
			}
		}
	}
	return out
}

// Abandon ends an active release: waiting stages are cancelled and its slots
// freed. A stage in the middle of an action finishes that action first. The
// activity log of each app the release acts on says who abandoned it (a
// release abandoned by a forced action is logged by that action instead).
func (e *Engine) Abandon(ctx context.Context, actor Actor, idOrName string) (*Release, error) {
	return e.leaderDo(ctx, reqAbandon, request{Actor: actor, Release: idOrName}, func() (*Release, error) {
		return e.abandon(ctx, actor, idOrName)
	})
}

func (e *Engine) abandon(ctx context.Context, actor Actor, idOrName string) (*Release, error) {
	var apps, rollouts []string
	r, err := e.withActive(ctx, idOrName, func(r *Release, def *pipeline.Pipeline) error {
		now := e.now()
		for _, st := range r.Stages {
			if st.State == StageRunning {
				st.logf(now, "abandoned by "+actor.Name+" while running; the action in progress completes")
				if st.RolloutID != "" {
					rollouts = append(rollouts, st.RolloutID)
				}
			}
		}
		e.endLocked(r, Abandoned, "abandoned by "+actor.Name)
		for _, sd := range def.Stages { // def is never nil for an active release
			for _, app := range stageApps(sd) {
				if !slices.Contains(apps, app) {
					apps = append(apps, app)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.abortRollouts(ctx, r.Name, actor.Name+" (abandoning release "+r.Name+")", rollouts)
	if len(apps) == 0 {
		apps = []string{""} // the all-apps activity log still shows it
	}
	for _, app := range apps {
		a := hotswap.Activity{App: app, Actor: actor.Name, Action: "release.abandon", Detail: fmt.Sprintf("release %s (%s %s) abandoned by %s", r.Name, r.Feed, r.Version, actor.Name), Result: "succeeded"}
		if err := e.store.AddActivity(context.WithoutCancel(ctx), a); err != nil {
			e.log.Error("record release abandon", "release", r.Name, "app", app, "err", err)
		}
	}
	return r, nil
}

// abortRollouts aborts the progressive swaps an abandoned release's stages
// started: they would otherwise swap the abandoned build on once their
// steps passed. One that ended, or whose swap has begun, stays as it is.
func (e *Engine) abortRollouts(ctx context.Context, release, actor string, ids []string) {
	if e.cfg.Rollouts == nil {
		return
	}
	for _, id := range ids {
		ro, err := e.cfg.Rollouts.Command(context.WithoutCancel(ctx), actor, id, hotswap.RolloutAbort)
		switch {
		case err == nil:
		case hotswap.ErrorKind(err) == hotswap.FailedPrecondition:
			e.log.Warn("the progressive swap of an abandoned release was not aborted", "release", release, "rollout", id, "state", ro.State, "err", err)
		default:
			e.log.Error("abort the progressive swap of an abandoned release", "release", release, "rollout", id, "err", err)
		}
	}
}
