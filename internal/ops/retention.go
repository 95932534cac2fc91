package ops

import (
	"context"
	"time"

	"github.com/hotswap/hotswap"
)

// keepFailed is how many failed deployments per app are kept for diagnosis.
// They are kept apart from the successful ones the retention counts, so a
// run of failures never pushes a good deployment out.
const keepFailed = 5

// failedGrace is how long a failed deployment is kept whatever keepFailed
// says, so a client polling its status still finds it.
const failedGrace = time.Minute

// prune removes what the retention policy no longer keeps of the app's
// deployments (see pruneable), and the packages no deployment uses any more.
func (s *Service) prune(ctx context.Context, app string) {
	ds, err := s.store.ListDeployments(ctx, app, "")
	if err != nil {
		s.log.Warn("prune deployments", "app", app, "err", err)
		return
	}
	protected, err := s.protectedDeployments(ctx, app)
	if err != nil {
		s.log.Warn("prune deployments", "app", app, "err", err)
		return
	}
	for _, d := range pruneable(ds, protected, s.cfg.Retention, time.Now()) {
		if err := s.store.DeleteDeployment(ctx, app, d.ID); err != nil {
			s.log.Warn("prune deployment", "app", app, "deployment", d.ID, "err", err)
			continue
		}
		if d.Digest == "" {
			continue
		}
		used, err := s.store.DigestInUse(ctx, d.Digest)
		if err == nil && !used {
			if err := s.cfg.Artifacts.Remove(d.Digest); err != nil && hotswap.ErrorKind(err) != hotswap.NotFound {
				s.log.Warn("remove package", "digest", d.Digest, "err", err)
			}
			if s.cfg.Cluster != nil {
				// The shared copy too (other nodes' local caches keep
				// theirs: not pruned yet).
				if err := s.cfg.Cluster.DeletePackage(ctx, d.Digest); err != nil {
					s.log.Warn("remove package from the store", "digest", d.Digest, "err", err)
				}
			}
		}
	}
}

// protectedDeployments returns the deployments of app that are never
// pruned: the one each slot serves (in the store and in memory), the one
// each slot served before it, the last Retention ones production served
// (so no production deployment is lost to deploys elsewhere), and those
// kept warm for a revert.
func (s *Service) protectedDeployments(ctx context.Context, app string) (map[string]bool, error) {
	slots, err := s.store.ListSlots(ctx, app)
	if err != nil {
		return nil, err
	}
	served, err := s.store.ServingHistory(ctx, app) // newest first
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	keep := s.warmDeploymentsLocked()
	for k, st := range s.slots {
		if k.app == app && st.slot.DeploymentID != "" {
			keep[st.slot.DeploymentID] = true
		}
	}
	s.mu.Unlock()
	for _, sl := range slots {
		if sl.DeploymentID != "" {
			keep[sl.DeploymentID] = true
		}
	}
	for slot, ids := range servedBySlot(served) {
		n := 2 // what it serves and what it served before
		if slot == hotswap.ProductionSlot {
			n = max(n, s.cfg.Retention)
		}
		for _, id := range ids[:min(n, len(ids))] {
			keep[id] = true
		}
	}
	return keep, nil
}

// servedBySlot returns, per slot, the distinct deployments it served,
// newest first, from a serving history that is newest first.
func servedBySlot(served []hotswap.Serving) map[string][]string {
	out := make(map[string][]string)
	seen := make(map[[2]string]bool)
	for _, sv := range served {
		k := [2]string{sv.Slot, sv.DeploymentID}
		if seen[k] {
			continue
		}
		seen[k] = true
		out[sv.Slot] = append(out[sv.Slot], sv.DeploymentID)
	}
	return out
}

// pruneable returns the deployments of ds (newest first) that retention
// removes: the successful ones after the newest retention successful ones,
// and the failed ones after the newest keepFailed failed ones that are older
// than failedGrace; never a protected one and never one still in progress.
// Failed deployments do not count toward retention.
func pruneable(ds []hotswap.Deployment, protected map[string]bool, retention int, now time.Time) []hotswap.Deployment {
	var out []hotswap.Deployment
	var good, failed int
	for _, d := range ds {
		switch d.Status {
		case hotswap.DeploySuccess:
			good++
			if good > retention && !protected[d.ID] {
				out = append(out, d)
			}
		case hotswap.DeployFailed:
			failed++
			if failed > keepFailed && !protected[d.ID] && now.Sub(d.CreatedAt) >= failedGrace {
				out = append(out, d)
			}
		}
	}
	return out
}
