package ops

import (
	"context"
	"fmt"
	"slices"

	"github.com/hotswap/hotswap"
)

// Hold is a release's claim on a slot it deployed to and has not yet
// swapped on: a change to the slot would make the release fail after its
// approvals and gates.
type Hold struct {
	ReleaseID string `json:"releaseId"`
	Release   string `json:"release"` // its name, e.g. orders-7
	Stage     string `json:"stage,omitempty"`
	State     string `json:"state,omitempty"` // what the release waits for
}

// Holder tells which release holds a slot, and ends that release when a user
// forces a change past it. The release engine implements it.
type Holder interface {
	// HeldBy returns the release holding app/slot, if any.
	HeldBy(app, slot string) (Hold, bool)
	// ForceRelease abandons the release because actor forced action on
	// app/slot past its hold.
	ForceRelease(ctx context.Context, releaseID, actor, action, app, slot string) error
}

// holderBox lets atomic.Pointer hold an interface value.
type holderBox struct{ h Holder }

// SetHolder installs (or with nil, removes) the release holds that deploys,
// swaps and rollbacks must respect.
func (s *Service) SetHolder(h Holder) {
	if h == nil {
		s.holder.Store(nil)
		return
	}
	s.holder.Store(&holderBox{h})
}

func (s *Service) holds() Holder {
	if b := s.holder.Load(); b != nil {
		return b.h
	}
	return nil
}

// HeldBy returns the release that holds app/slot, if any.
func (s *Service) HeldBy(app, slot string) (Hold, bool) {
	h := s.holds()
	if h == nil {
		return Hold{}, false
	}
	return h.HeldBy(app, slot)
}

// HoldOptions says how an action treats the releases holding its slots.
// The zero value refuses action on any held slot.
type HoldOptions struct {
	// Release is the id of the release acting: it may act on the slots it
	// holds.
	Release string
	// Force goes past another release's hold, abandoning that release
	// once the action has begun.
	Force bool
}

// forcedHold is a hold a forced action goes past.
type forcedHold struct {
	hold Hold
	slot string
}

// checkHolds refuses action on the slots a release holds (other than own,
// the release doing it), or with force returns the holds to abandon with
// abandonHolds once the action's operation has begun, so that a forced
// action refused for another reason leaves the release waiting. It must be
// called without s.mu held.
func (s *Service) checkHolds(action, app, own string, force bool, slots ...string) ([]forcedHold, error) {
	h := s.holds()
	if h == nil {
		return nil, nil
	}
	var forced []forcedHold
	for _, slot := range slots {
		hold, ok := h.HeldBy(app, slot)
		if !ok || hold.ReleaseID == own {
			continue
		}
		if own != "" || !force {
			return nil, holdError(app, slot, action, hold)
		}
		if !slices.ContainsFunc(forced, func(f forcedHold) bool { return f.hold.ReleaseID == hold.ReleaseID }) {
			forced = append(forced, forcedHold{hold, slot})
		}
	}
	return forced, nil
}

// abandonHolds abandons the releases a forced action went past and records
// who forced them. It must be called without s.mu held.
func (s *Service) abandonHolds(ctx context.Context, actor, action, app string, forced []forcedHold) error {
	h := s.holds()
	if h == nil {
		return nil
	}
	for _, f := range forced {
		if err := h.ForceRelease(ctx, f.hold.ReleaseID, actor, action, app, f.slot); err != nil {
			return fmt.Errorf("abandon release %s held %s/%s: %w", f.hold.Release, app, f.slot, err)
		}
		s.activity(ctx, app, actor, "release.abandon", f.slot, fmt.Sprintf("release %s abandoned: %s forced a %s past its hold", f.hold.Release, actor, action), "succeeded")
		s.log.Warn("release abandoned by a forced action", "release", f.hold.Release, "actor", actor, "action", action, "app", app, "slot", f.slot)
	}
	return nil
}

// annotateHolds fills in the holds of a slot view. Called without s.mu.
func (s *Service) annotateHolds(v *SlotView) {
	if hold, ok := s.HeldBy(v.App, v.Name); ok {
		v.HeldBy = &hold
	}
}

// slotLog adds a host line to a slot's log, if the slot exists.
func (s *Service) slotLog(app, slot, text string) {
	s.mu.Lock()
	st := s.slots[slotKey{app, slot}]
	s.mu.Unlock()
	if st != nil {
		st.log.add("host", text)
	}
}

// CheckHold refuses action (deploy, swap, rollback...) on app/slot while a
// release holds it, with the error a forceless request gets; nil when free.
func (s *Service) CheckHold(app, slot, action string) error {
	if hold, ok := s.HeldBy(app, slot); ok {
		return holdError(app, slot, action, hold)
	}
	return nil
}

func holdError(app, slot, action string, hold Hold) error {
	why := ""
	if hold.Stage != "" {
		why = fmt.Sprintf(" (stage %s: %s)", hold.Stage, hold.State)
	}
	return hotswap.Errorf(hotswap.Conflict, "slot %s/%s is held by release %s%s until it swaps it on; a %s now would make that release fail. Abandon the release, or use --force (API: ?force=true) to abandon it and %s anyway", app, slot, hold.Release, why, action, action)
}
