package ops

import "github.com/hotswap/hotswap/internal/trigger"

// Triggers runs the queue triggers of the process sets that serve slots
// (*trigger.Manager). Serve is called under the service's lock with every
// serving set each time a routing table is published, so it must not
// block: a set no longer listed stops pulling work at once, while its
// invocations in flight hold the set and so finish within the drain grace
// of its retirement; a newly listed set starts pulling after its flip.
type Triggers interface {
	Serve(sets []trigger.Serving)
	// States returns what the listeners of a slot's queue and blob
	// triggers are doing; it does not block either.
	States(app, slot string) []trigger.State
}

// serveTriggersLocked tells the triggers which sets serve now: the sets,
// packages and settings the routing table just published. A slot in a swap
// preview pulls no work: its URL serves the source's content under the
// target's settings for checking, and that content starts taking the
// target's messages only at the flip, when the swap completes (so a
// function disabled in the slot never runs there, also during a preview).
// s.mu is held.
func (s *Service) serveTriggersLocked() {
	if s.cfg.Triggers == nil {
		return
	}
	sets := make([]trigger.Serving, 0, len(s.slots))
	for _, st := range s.slots {
		sv := trigger.Serving{App: st.slot.App, Slot: st.slot.Name, Deployment: st.slot.DeploymentID, Package: st.pkg, Log: st.log.add}
		if st.preview != nil || st.set == nil {
			continue
		}
		sv.Set, sv.Settings = st.set, settingsMap(st.settings)
		sets = append(sets, sv)
	}
	s.cfg.Triggers.Serve(sets)
}
