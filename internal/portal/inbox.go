package portal

import (
	"context"
	"slices"
	"time"

	"github.com/hotswap/hotswap/internal/pipeline"
	"github.com/hotswap/hotswap/internal/release"
)

// waiting is a release stage waiting for the signed-in user's approval.
type waiting struct {
	ReleaseID, Release, Pipeline, Stage, Version, Requester string
	Since                                                   time.Time
}

// inboxScan bounds the releases the inbox looks through, newest first: a
// release waits for approval at most its stage's timeout.
const inboxScan = 200

// inbox lists the stages waiting for who's approval, oldest first. It is
// empty without release pipelines; a failure to list is logged and shows
// as an empty inbox, not as a failed page.
func (p *Portal) inbox(ctx context.Context, who release.Actor) []waiting {
	if p.cfg.Releases == nil || who.Name == "" {
		return nil
	}
	rs, err := p.cfg.Releases.List(ctx, "", inboxScan)
	if err != nil {
		p.log.Warn("list releases for the approval inbox", "err", err)
		return nil
	}
	var out []waiting
	for _, r := range rs {
		if r.State != release.Active {
			continue
		}
		def, err := pipeline.Parse([]byte(r.Definition), nil)
		if err != nil {
			continue
		}
		for _, st := range r.Stages {
			if canDecide(who, r, st, def.Stage(st.Name)) {
				out = append(out, waiting{ReleaseID: r.ID, Release: r.Name, Pipeline: r.Pipeline, Stage: st.Name,
					Version: r.Version, Requester: r.Requester, Since: st.ApprovalRequestedAt})
			}
		}
	}
	slices.SortFunc(out, func(a, b waiting) int { return a.Since.Compare(b.Since) })
	return out
}

// canDecide reports whether who may approve or reject stage st of r now:
// it waits for approval, who is one of its approvers and has not decided
// this attempt, and is not the requester unless the stage allows it.
func canDecide(who release.Actor, r *release.Release, st *release.StageRun, sd *pipeline.Stage) bool {
	if sd == nil || sd.Approval == nil || st.State != release.StageApproval {
		return false
	}
	a := sd.Approval
	for _, ap := range st.Approvals {
		if ap.Attempt == st.Attempt && ap.User == who.Name {
			return false
		}
	}
	return slices.Contains(a.Approvers, who.Name) && (who.Name != r.Requester || a.RequesterCanApprove)
}
