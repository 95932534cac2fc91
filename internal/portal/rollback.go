package portal

import (
	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/ops"
)

// rollbackConfirm is the question the history page asks before a
// rollback: which slot goes to which deployment, and what it serves now.
type rollbackConfirm struct {
	Deployment ops.DeploymentView
	Slot       string
	Current    string // what the slot serves now; "" for nothing
	Err        string // why the rollback cannot be asked for
}

// lastServed returns the slot a deployment served last, from its serving
// history, or the slot it was deployed to if it never served: the slot a
// rollback to it most likely means.
func lastServed(d ops.DeploymentView) string {
	slot := d.Slot
	var last hotswap.Serving
	for _, s := range d.Served {
		if s.To.IsZero() {
			return s.Slot
		}
		if s.To.After(last.To) {
			last = s
		}
	}
	if last.Slot != "" {
		return last.Slot
	}
	return slot
}

// confirmRollback builds the question for a rollback of deployment id into
// slot, as chosen in the history page's form.
func confirmRollback(a ops.AppView, ds []ops.DeploymentView, id, slot string) *rollbackConfirm {
	c := &rollbackConfirm{Slot: slot}
	found := false
	for _, d := range ds {
		if d.ID == id {
			c.Deployment, found = d, true
		}
	}
	s := findSlot(a, slot)
	switch {
	case !found:
		c.Err = "Deployment " + id + " is not in the history of " + a.Name + "."
	case c.Deployment.Status != hotswap.DeploySuccess:
		c.Err = "Deployment " + id + " did not succeed (" + c.Deployment.StatusText + "); only a deployment that served can be rolled back to."
	case s == nil:
		c.Err = "Slot " + slot + " does not exist in " + a.Name + "."
	default:
		c.Current = s.DeploymentID
		if c.Current == id {
			c.Err = "Slot " + slot + " serves " + id + " already: there is nothing to roll back."
		}
	}
	return c
}
