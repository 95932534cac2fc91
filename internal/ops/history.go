package ops

import (
	"context"
	"fmt"

	"github.com/hotswap/hotswap"
)

// DeploymentView is a deployment with where and when it served.
type DeploymentView struct {
	hotswap.Deployment
	ServingSlots []string          `json:"servingSlots"`
	Served       []hotswap.Serving `json:"served"`
	// Quarantine is set when the deployment's content is quarantined.
	Quarantine *hotswap.Quarantine `json:"quarantine,omitempty"`
}

// History lists an app's deployments, newest first, with the slots each
// serves now and the periods it served each slot.
func (s *Service) History(ctx context.Context, app, slot string) ([]DeploymentView, error) {
	ds, err := s.Deployments(ctx, app, slot)
	if err != nil {
		return nil, err
	}
	served, err := s.store.ServingHistory(ctx, app)
	if err != nil {
		return nil, err
	}
	byDep := make(map[string][]hotswap.Serving)
	for _, sv := range served {
		byDep[sv.DeploymentID] = append(byDep[sv.DeploymentID], sv)
	}
	serving := make(map[string][]string)
	s.mu.Lock()
	for k, st := range s.slots {
		if k.app == app && st.slot.DeploymentID != "" {
			serving[st.slot.DeploymentID] = append(serving[st.slot.DeploymentID], k.slot)
		}
	}
	s.mu.Unlock()
	qs, err := s.store.ListQuarantines(ctx, app)
	if err != nil {
		return nil, err
	}
	quarantined := make(map[string]*hotswap.Quarantine, len(qs))
	for i := range qs {
		quarantined[qs[i].DeploymentID] = &qs[i]
	}
	out := make([]DeploymentView, 0, len(ds))
	for _, d := range ds {
		v := DeploymentView{Deployment: d, ServingSlots: serving[d.ID], Served: byDep[d.ID], Quarantine: quarantined[d.ID]}
		if v.ServingSlots == nil {
			v.ServingSlots = []string{}
		}
		if v.Served == nil {
			v.Served = []hotswap.Serving{}
		}
		out = append(out, v)
	}
	return out, nil
}

// Rollback makes slot serve a stored deployment again, by the same
// zero-downtime path as a deploy. A slot a release holds is refused.
func (s *Service) Rollback(ctx context.Context, actor, app, slot, deploymentID string) (hotswap.Deployment, error) {
	return s.RollbackTo(ctx, RollbackRequest{App: app, Slot: slot, Deployment: deploymentID, Actor: actor})
}

// RollbackRequest asks a slot to serve a stored deployment again.
type RollbackRequest struct {
	App, Slot, Deployment string
	Actor                 string
	// Force rolls back a slot a release holds, abandoning that release.
	Force bool
}

// RollbackTo is Rollback with the request's options.
func (s *Service) RollbackTo(ctx context.Context, req RollbackRequest) (hotswap.Deployment, error) {
	actor, app, slot, deploymentID := req.Actor, req.App, req.Slot, req.Deployment
	d, err := s.store.GetDeployment(ctx, app, deploymentID)
	if err != nil {
		return d, err
	}
	if d.Status != hotswap.DeploySuccess {
		return d, hotswap.Errorf(hotswap.FailedPrecondition, "deployment %s did not succeed (%s); only a deployment that served can be rolled back to", d.ID, d.StatusText)
	}
	if !s.cfg.Artifacts.Has(d.Digest) {
		return d, hotswap.Errorf(hotswap.FailedPrecondition, "the package of deployment %s is no longer stored", d.ID)
	}
	if err := s.cfg.Artifacts.Verify(d.Digest); err != nil {
		return d, &hotswap.Error{Kind: hotswap.ErrorKind(err), Msg: fmt.Sprintf("refusing to roll back to deployment %s: %s", d.ID, hotswap.ErrorMessage(err)), Err: err}
	}
	forced, err := s.checkHolds("rollback", app, "", req.Force, slot)
	if err != nil {
		return d, err
	}
	op, err := s.begin(ctx, app, "rollback", slot, actor)
	if err != nil {
		return d, err
	}
	ctx = context.WithoutCancel(ctx)
	if err := s.abandonHolds(ctx, actor, "rollback", app, forced); err != nil {
		s.end(ctx, op, err)
		return d, err
	}
	s.phase(ctx, op, PhaseStarting, "handler of deployment "+d.ID)
	err = s.rollback(ctx, app, slot, d)
	s.end(ctx, op, err)
	result := "succeeded"
	if err != nil {
		result = "failed"
	}
	s.activity(ctx, app, actor, "rollback", slot, fmt.Sprintf("to %s", d.ID), result)
	return d, err
}

func (s *Service) rollback(ctx context.Context, app, slot string, d hotswap.Deployment) error {
	pkg, routes, err := s.loadPackage(ctx, d)
	if err != nil {
		return err
	}
	return s.activate(ctx, app, slot, d, pkg, routes, false)
}
