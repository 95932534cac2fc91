package portal

import (
	"context"
	"fmt"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/ops"
)

// staleResult says why a swap result shown again from its URL (the Back
// button, a bookmark) no longer describes the slots, or "" when it still
// does. A later swap, rollback or deploy may have moved the deployments,
// and a preview may have been completed or cancelled since.
func staleResult(a ops.AppView, res ops.SwapResult) string {
	source, target := findSlot(a, res.Source), findSlot(a, res.Target)
	for _, s := range []struct {
		name string
		v    *ops.SlotView
	}{{res.Source, source}, {res.Target, target}} {
		if s.v == nil {
			return fmt.Sprintf("This is an earlier result: slot %s has been deleted since.", s.name)
		}
	}
	switch res.Phase {
	case "preview":
		if source.Preview == nil || source.Preview.Target != res.Target {
			return "This is an earlier result: the swap preview has ended since (completed or cancelled)."
		}
	case "completed":
		// An empty TargetDeployment means the source slot was left empty:
		// a deploy to it since makes this result earlier too.
		if target.DeploymentID != res.SourceDeployment || source.DeploymentID != res.TargetDeployment {
			return fmt.Sprintf("This is an earlier result: the slots changed since. %s serves %s now and %s serves %s.",
				res.Target, orNone(target.DeploymentID), res.Source, orNone(source.DeploymentID))
		}
	}
	return ""
}

func findSlot(a ops.AppView, name string) *ops.SlotView {
	for i := range a.Slots {
		if a.Slots[i].Name == name {
			return &a.Slots[i]
		}
	}
	return nil
}

// checkUnchanged refuses a swap posted from a page that showed the slots
// serving other deployments than they do now (a Swap back button on an
// earlier result): it would not do what its page said. Empty expectations
// are not checked.
func (p *Portal) checkUnchanged(ctx context.Context, app, source, target, wantSource, wantTarget string, expect bool) error {
	if !expect {
		return nil
	}
	a, err := p.cfg.Ops.GetApp(ctx, app)
	if err != nil {
		return err
	}
	for _, c := range []struct{ slot, want string }{{source, wantSource}, {target, wantTarget}} {
		s := findSlot(a, c.slot)
		if s == nil {
			return hotswap.Errorf(hotswap.NotFound, "slot %s/%s does not exist", app, c.slot)
		}
		if s.DeploymentID != c.want { // "" expects an empty slot
			return hotswap.Errorf(hotswap.FailedPrecondition, "the slots changed since this page was shown: %s serves %s now, not %s; nothing was swapped", c.slot, orNone(s.DeploymentID), c.want)
		}
	}
	return nil
}
