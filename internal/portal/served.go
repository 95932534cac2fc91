package portal

import (
	"context"
	"slices"
	"strings"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/ops"
)

// releaseRef names the release that made a deployment, and the artifact
// version it deployed.
type releaseRef struct{ ID, Name, Version string }

// releasesOf maps the deployments of ds that a release made to that
// release. A release's deployments carry the message "release NAME stage
// STAGE attempt N"; a stage also names its last deployment. Without
// release pipelines, or if they cannot be listed, the map is empty: the
// history shows without versions.
func (p *Portal) releasesOf(ctx context.Context, ds []ops.DeploymentView) map[string]*releaseRef {
	out := make(map[string]*releaseRef)
	if p.cfg.Releases == nil || !slices.ContainsFunc(ds, func(d ops.DeploymentView) bool { return strings.HasPrefix(d.Message, "release ") }) {
		return out
	}
	rs, err := p.cfg.Releases.List(ctx, "", 1000)
	if err != nil {
		p.log.Warn("list releases for the deployment history", "err", err)
		return out
	}
	byName := make(map[string]*releaseRef, len(rs))
	for _, r := range rs {
		ref := &releaseRef{ID: r.ID, Name: r.Name, Version: r.Version}
		byName[r.Name] = ref
		for _, st := range r.Stages {
			if st.DeploymentID != "" {
				out[st.DeploymentID] = ref
			}
		}
	}
	for _, d := range ds {
		f := strings.Fields(d.Message)
		if len(f) >= 3 && f[0] == "release" && f[2] == "stage" && byName[f[1]] != nil {
			out[d.ID] = byName[f[1]]
		}
	}
	return out
}

// ofSlot keeps the deployments that were deployed to slot, serve it or
// served it: after a swap, production serves a deployment made in
// staging, and its page shows it.
func ofSlot(ds []ops.DeploymentView, slot string) []ops.DeploymentView {
	var out []ops.DeploymentView
	for _, d := range ds {
		if d.Slot == slot || slices.Contains(d.ServingSlots, slot) ||
			slices.ContainsFunc(d.Served, func(s hotswap.Serving) bool { return s.Slot == slot }) {
			out = append(out, d)
		}
	}
	return out
}
