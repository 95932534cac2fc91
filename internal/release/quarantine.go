package release

import (
	"context"
	"strings"
)

// DeploymentVersion returns the artifact version the release that made
// deployment id of app deployed, or "" if no release made it. A release's
// deployments carry the message "release NAME stage STAGE ..."; a stage
// also names its last deployment. It is how a quarantine learns the
// version it refuses (see ops.Versions).
func (e *Engine) DeploymentVersion(ctx context.Context, app, id string) string {
	rs, err := e.List(ctx, "", 1000)
	if err != nil {
		e.log.Warn("list releases for a quarantine's version", "app", app, "deployment", id, "err", err)
		return ""
	}
	for _, r := range rs {
		for _, st := range r.Stages {
			if st.DeploymentID == id {
				return r.Version
			}
		}
	}
	d, err := e.ops.Deployment(ctx, app, id)
	if err != nil {
		return ""
	}
	f := strings.Fields(d.Message)
	if len(f) < 3 || f[0] != "release" || f[2] != "stage" {
		return ""
	}
	for _, r := range rs {
		if r.Name == f[1] {
			return r.Version
		}
	}
	return ""
}
