package portal

import (
	"fmt"
	"net/http"
	"strings"

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

// expectFromForm sets req.Expect from a swap form: the deployments the
// page showed in the slots (a plan, or a result's Swap back), so a swap
// whose slots changed since is refused inside its operation, with nothing
// changed. A swap without one is refused, as is one of other slots than
// its plan showed. "" expects an empty slot.
func expectFromForm(r *http.Request, req *ops.SwapRequest) error {
	if r.PostFormValue("expect") != "1" {
		// Every form the portal shows posts its expectation; one without
		// (a page rendered before these forms had it) shows no plan.
		return hotswap.Errorf(hotswap.FailedPrecondition, "choose the slots, or press Preview changes, to see what will change before you swap; nothing was swapped")
	}
	if slots := r.PostFormValue("expect-slots"); slots != "" && slots != req.Source+" "+req.Target {
		// The slots were changed after the plan was shown, and the new
		// plan did not arrive before the click.
		from, into, _ := strings.Cut(slots, " ")
		return hotswap.Errorf(hotswap.FailedPrecondition, "the changes shown were for swapping %s into %s; look at the changes of swapping %s into %s, then swap; nothing was swapped", from, into, req.Source, req.Target)
	}
	src, tgt := r.PostFormValue("expect-source"), r.PostFormValue("expect-target")
	if len(src) > hotswap.MaxDeploymentID || len(tgt) > hotswap.MaxDeploymentID {
		return hotswap.Errorf(hotswap.Invalid, "a deployment id is at most %d bytes", hotswap.MaxDeploymentID)
	}
	req.Expect = &ops.SwapExpect{Source: src, Target: tgt}
	return nil
}
