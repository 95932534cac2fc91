package release

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"

	"github.com/hotswap/hotswap/internal/ops"
	"github.com/hotswap/hotswap/internal/pipeline"
)

// HeldBy returns the oldest active release that holds app/slot: it deployed
// there and has not yet swapped it on. It implements ops.Holder. When
// another node runs the releases, the store says what they hold.
func (e *Engine) HeldBy(app, slot string) (ops.Hold, bool) {
	key := slotKey(app, slot)
	e.mu.Lock()
	if e.lead != nil {
		defer e.mu.Unlock()
		return heldBy(maps.Values(e.active), key)
	}
	e.mu.Unlock()
	return heldBy(slices.Values(e.followerActive()), key)
}

func heldBy(active iter.Seq[*Release], key string) (ops.Hold, bool) {
	var by *Release
	for r := range active {
		if r.ended() || !r.holds(key) {
			continue
		}
		if by == nil || r.CreatedAt.Before(by.CreatedAt) {
			by = r
		}
	}
	if by == nil {
		return ops.Hold{}, false
	}
	h := ops.Hold{ReleaseID: by.ID, Release: by.Name}
	for _, st := range by.Stages {
		if st.State != StageSucceeded {
			h.Stage, h.State = st.Name, st.State
			break
		}
	}
	return h, true
}

// ForceRelease abandons a release because actor forced an action (deploy,
// swap, rollback) on a slot it holds. The release's log and detail say who
// and what. It implements ops.Holder.
func (e *Engine) ForceRelease(ctx context.Context, releaseID, actor, action, app, slot string) error {
	_, err := e.leaderDo(ctx, reqForce, request{Actor: Actor{Name: actor}, Release: releaseID, Action: action, App: app, Slot: slot}, func() (*Release, error) {
		return nil, e.forceRelease(ctx, releaseID, actor, action, app, slot)
	})
	return err
}

func (e *Engine) forceRelease(ctx context.Context, releaseID, actor, action, app, slot string) error {
	var rollouts []string
	r, err := e.withActive(ctx, releaseID, func(r *Release, _ *pipeline.Pipeline) error {
		now := e.now()
		why := fmt.Sprintf("abandoned: %s forced a %s to %s/%s, which this release held", actor, action, app, slot)
		for _, st := range r.Stages {
			switch st.State {
			case StageSucceeded, StageFailed, StageRejected, StageCancelled:
			default:
				st.logf(now, why)
				if st.State == StageRunning && st.RolloutID != "" {
					rollouts = append(rollouts, st.RolloutID)
				}
			}
		}
		e.endLocked(r, Abandoned, why)
		return nil
	})
	if err == nil {
		e.abortRollouts(ctx, r.Name, actor+" (forcing a "+action+" on a slot release "+r.Name+" held)", rollouts)
	}
	return err
}
