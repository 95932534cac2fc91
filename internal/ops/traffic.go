package ops

import (
	"context"
	"math"
	"slices"
	"strings"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/router"
)

// Traffic routing: a share of the requests to an app's production host name
// goes to other slots of the app (see router.Share). The rules live in the
// store; the service keeps each app's in memory (traffic, guarded by mu) for
// publishLocked, and a cluster's nodes follow them through the generation
// (reconcileTraffic).

// Traffic returns the traffic routing rules of app's production slot, by
// slot name; none if it has none.
func (s *Service) Traffic(ctx context.Context, app string) ([]hotswap.TrafficShare, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.slotLocked(ctx, app, hotswap.ProductionSlot); err != nil {
		return nil, err
	}
	return slices.Clone(s.traffic[app]), nil
}

// SetTraffic replaces the traffic routing rules of app's production slot
// and publishes them before it returns (on every node of a cluster). Each
// share names another existing slot of the app, with 0 to 100 percent, at
// most 100 in all; none clears the rules.
func (s *Service) SetTraffic(ctx context.Context, actor, app string, shares []hotswap.TrafficShare) error {
	if err := hotswap.ValidateTraffic(shares); err != nil {
		return err
	}
	shares = slices.Clone(shares)
	slices.SortFunc(shares, func(a, b hotswap.TrafficShare) int { return strings.Compare(a.Slot, b.Slot) })
	action := "traffic.set"
	if len(shares) == 0 {
		action = "traffic.clear"
	}
	s.mu.Lock()
	err := s.mayFlip()
	if err == nil {
		err = s.store.SetTraffic(ctx, app, shares)
	}
	if err != nil {
		s.mu.Unlock()
		return err
	}
	s.setTrafficLocked(app, shares)
	s.publishLocked()
	s.mu.Unlock()
	s.activity(ctx, app, actor, action, hotswap.ProductionSlot, "traffic "+trafficDetail(shares), "succeeded")
	s.clusterAck(ctx, app, hotswap.ProductionSlot, action)
	return nil
}

// ClearTraffic removes the traffic routing rules of app's production slot:
// all of its requests go to production again.
func (s *Service) ClearTraffic(ctx context.Context, actor, app string) error {
	return s.SetTraffic(ctx, actor, app, nil)
}

// trafficDetail says what a rule is for the activity log: "staging=10%
// canary=5%", or "cleared".
func trafficDetail(shares []hotswap.TrafficShare) string {
	if len(shares) == 0 {
		return "cleared"
	}
	return "set " + hotswap.FormatTraffic(shares)
}

func (s *Service) setTrafficLocked(app string, shares []hotswap.TrafficShare) {
	if len(shares) == 0 {
		delete(s.traffic, app)
		return
	}
	s.traffic[app] = shares
}

// dropShareLocked forgets slot's share of app's traffic, as the store does
// when the slot is deleted.
func (s *Service) dropShareLocked(app, slot string) {
	shares := s.traffic[app]
	i := slices.IndexFunc(shares, func(x hotswap.TrafficShare) bool { return x.Slot == slot })
	if i < 0 {
		return
	}
	// A new slice: published tables may still hold the old one.
	s.setTrafficLocked(app, slices.Delete(slices.Clone(shares), i, i+1))
}

// loadTraffic reads the traffic rules of apps from the store into memory.
func (s *Service) loadTraffic(ctx context.Context, apps []string) error {
	for _, app := range apps {
		shares, err := s.store.Traffic(ctx, app)
		if err != nil {
			if hotswap.ErrorKind(err) == hotswap.NotFound {
				continue // deleted meanwhile
			}
			return err
		}
		s.mu.Lock()
		s.setTrafficLocked(app, shares)
		s.mu.Unlock()
	}
	return nil
}

// reconcileTraffic makes this node's traffic rules those of the store, for
// the apps of slots (the store's), and publishes when one changed. The store
// is read under mu, which SetTraffic holds across its store write and the
// change in memory, so an older read never overwrites a newer rule.
func (s *Service) reconcileTraffic(ctx context.Context, slots []hotswap.Slot) error {
	apps := make(map[string]bool)
	for _, sl := range slots {
		apps[sl.App] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for app := range apps {
		shares, err := s.store.Traffic(ctx, app)
		if hotswap.ErrorKind(err) == hotswap.NotFound {
			continue // deleted since the list
		}
		if err != nil {
			if changed {
				s.publishLocked()
			}
			return err
		}
		if !slices.Equal(s.traffic[app], shares) {
			s.setTrafficLocked(app, shares)
			changed = true
		}
	}
	for app := range s.traffic {
		if !apps[app] {
			delete(s.traffic, app)
		}
	}
	if changed {
		s.publishLocked()
	}
	return nil
}

// appsOf returns the apps of slots, each once.
func appsOf(slots []hotswap.Slot) []string {
	var apps []string
	for _, sl := range slots {
		if !slices.Contains(apps, sl.App) {
			apps = append(apps, sl.App)
		}
	}
	return apps
}

// sharesLocked returns app's traffic rules as the router takes them on
// production's slot; nil without any.
func (s *Service) sharesLocked(app string) []router.Share {
	shares := s.traffic[app]
	if len(shares) == 0 {
		return nil
	}
	out := make([]router.Share, len(shares))
	for i, x := range shares {
		out[i] = router.Share{Slot: x.Slot, Percent: x.Percent}
	}
	return out
}

// SetShare sets one slot's share of app's production traffic, keeping the
// other slots' shares, and reports whether it changed anything; percent 0
// removes the slot's rule (no routing cookie keeps a client on it then).
// The rules are read from the store, not this node's memory, and changed
// under the service lock, so a node that lags behind the cluster does not
// write old rules back, and a rule set on this node meanwhile is kept. The
// other slots' shares come first: the slot gets at most what they leave.
func (s *Service) SetShare(ctx context.Context, actor, app, slot string, percent float64) (bool, error) {
	if math.IsNaN(percent) || percent < 0 || percent > 100 {
		return false, hotswap.Errorf(hotswap.Invalid, "traffic share of %s: %v%% is not between 0 and 100", slot, percent)
	}
	s.mu.Lock()
	err := s.mayFlip()
	var shares []hotswap.TrafficShare
	if err == nil {
		shares, err = s.store.Traffic(ctx, app)
	}
	if err != nil {
		s.mu.Unlock()
		return false, err
	}
	next := make([]hotswap.TrafficShare, 0, len(shares)+1)
	var others float64
	for _, x := range shares {
		if x.Slot != slot {
			next = append(next, x)
			others += x.Percent
		}
	}
	if percent = min(percent, max(0, 100-others)); percent > 0 {
		next = append(next, hotswap.TrafficShare{Slot: slot, Percent: percent})
	}
	bySlot := func(a, b hotswap.TrafficShare) int { return strings.Compare(a.Slot, b.Slot) }
	slices.SortFunc(next, bySlot)
	shares = slices.Clone(shares)
	slices.SortFunc(shares, bySlot) // the store's collation may order names otherwise
	if slices.Equal(next, shares) {
		// The store holds it already; this node's memory may not yet.
		if !slices.Equal(s.traffic[app], shares) {
			s.setTrafficLocked(app, shares)
			s.publishLocked()
		}
		s.mu.Unlock()
		return false, nil
	}
	if err := s.store.SetTraffic(ctx, app, next); err != nil {
		s.mu.Unlock()
		return false, err
	}
	s.setTrafficLocked(app, next)
	s.publishLocked()
	s.mu.Unlock()
	action := "traffic.set"
	if len(next) == 0 {
		action = "traffic.clear"
	}
	s.activity(ctx, app, actor, action, hotswap.ProductionSlot, "traffic "+trafficDetail(next), "succeeded")
	s.clusterAck(ctx, app, hotswap.ProductionSlot, action)
	return true, nil
}
