package ops

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/runtime"
)

// ListSettings returns a slot's app settings.
func (s *Service) ListSettings(ctx context.Context, app, slot string) ([]hotswap.Setting, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.slotLocked(ctx, app, slot)
	if err != nil {
		return nil, err
	}
	return append([]hotswap.Setting{}, st.settings...), nil
}

// UpdateSettings sets and removes app settings of a slot, all or nothing.
// When the slot runs a deployment, a process set with the new environment is
// started and made ready before the slot flips to it, so the change costs no
// failed request.
//
// A release holding the slot refuses it unless forced: the changed
// settings would travel into production with the approved build.
func (s *Service) UpdateSettings(ctx context.Context, actor, app, slot string, set []hotswap.Setting, unset []string, ho HoldOptions) ([]hotswap.Setting, error) {
	seen := make(map[string]bool)
	for i, st := range set {
		if isWarmupSetting(st.Name) || st.Name == IdleTimeoutSetting {
			set[i].Sticky = true // warm-up and idle configuration stay with their slot
		}
		if st.Name == IdleTimeoutSetting {
			if _, err := parseIdleTimeout(st.Value); err != nil {
				return nil, err
			}
		}
		if err := hotswap.ValidateSettingName(st.Name); err != nil {
			return nil, err
		}
		if err := hotswap.ValidateSettingValue(st.Name, st.Value); err != nil {
			return nil, err
		}
		if seen[st.Name] {
			return nil, hotswap.Errorf(hotswap.Invalid, "setting %s is given twice", st.Name)
		}
		seen[st.Name] = true
	}
	for _, name := range unset {
		if seen[name] {
			return nil, hotswap.Errorf(hotswap.Invalid, "setting %s is both set and unset", name)
		}
	}
	if len(set) == 0 && len(unset) == 0 {
		return nil, hotswap.Errorf(hotswap.Invalid, "no setting to set or unset")
	}
	forced, err := s.checkHolds("settings change", app, ho.Release, ho.Force, slot)
	if err != nil {
		return nil, err
	}
	op, err := s.begin(ctx, app, "settings", slot, actor)
	if err != nil {
		s.logDiskFull(app, slot, "settings change", err)
		return nil, err
	}
	ctx = context.WithoutCancel(ctx)
	if err := s.abandonHolds(ctx, actor, "settings change", app, forced); err != nil {
		s.end(ctx, op, err)
		return nil, err
	}
	out, err := s.updateSettings(ctx, app, slot, set, unset)
	s.logDiskFull(app, slot, "settings change", err)
	s.end(ctx, op, err)
	result := "succeeded"
	if err != nil {
		result = "failed"
	}
	s.activity(ctx, app, actor, "settings", slot, settingsDetail(set, unset), result)
	return out, err
}

func (s *Service) updateSettings(ctx context.Context, app, slot string, set []hotswap.Setting, unset []string) ([]hotswap.Setting, error) {
	if err := s.catchUp(ctx, app, slot); err != nil {
		return nil, err
	}
	s.mu.Lock()
	st, err := s.slotLocked(ctx, app, slot)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	// The new environment, computed before anything is stored.
	next := make(map[string]hotswap.Setting, len(st.settings))
	for _, x := range st.settings {
		next[x.Name] = x
	}
	for _, name := range unset {
		if _, ok := next[name]; !ok {
			s.mu.Unlock()
			return nil, hotswap.Errorf(hotswap.NotFound, "setting %s is not set on slot %s/%s", name, app, slot)
		}
		delete(next, name)
	}
	for _, x := range set {
		next[x.Name] = x
	}
	settings := make([]hotswap.Setting, 0, len(next))
	for _, x := range next {
		settings = append(settings, x)
	}
	sortSettings(settings)
	sl, pkg, log, running := st.slot, st.pkg, st.log, st.set != nil
	s.mu.Unlock()

	// A running slot gets a process set with the new environment, ready
	// before anything is stored.
	var d hotswap.Deployment
	var newSet *runtime.Set
	var newKey string
	if running {
		if d, err = s.store.GetDeployment(ctx, app, sl.DeploymentID); err != nil {
			return nil, err
		}
		s.appPhase(ctx, app, PhaseStarting, "handler of deployment "+d.ID+" with the new settings")
		newSet, newKey, _, err = s.acquireSet(ctx, sl, d, pkg, settings, log)
		if err != nil {
			return nil, hotswap.Errorf(hotswap.FailedPrecondition, "settings not changed: the handler did not start with them: %v", hotswap.ErrorMessage(err))
		}
	}
	if newSet != nil && s.node != nil {
		s.appPhase(ctx, app, PhasePreparing, "the other nodes restart "+slot+" with the new settings")
	}
	if newSet != nil {
		if err := s.clusterPrepare(ctx, app, []hotswap.PrepareWant{{Slot: slot, DeploymentID: d.ID, Digest: d.Digest, Settings: settings}}); err != nil {
			s.park(newKey, d.ID, newSet)
			return nil, err
		}
	}
	if newSet != nil {
		s.appPhase(ctx, app, PhaseSwitching, slot+" to the handler with the new settings")
	}
	s.mu.Lock()
	err = s.mayFlip()
	if err == nil {
		err = s.store.UpdateSettings(ctx, app, slot, set, unset)
	}
	if err != nil {
		s.mu.Unlock()
		s.park(newKey, d.ID, newSet)
		return nil, err
	}
	st.settings = settings
	old, oldKey := st.set, st.cfgKey
	if newSet != nil {
		st.set, st.cfgKey, st.started = newSet, newKey, time.Now()
		log.add("host", "handler restarted with new settings")
	}
	s.publishLocked()
	s.mu.Unlock()
	if newSet != nil {
		s.park(oldKey, d.ID, old)
	}
	s.clusterAck(ctx, app, slot, "settings")
	return append([]hotswap.Setting{}, settings...), nil
}

func sortSettings(s []hotswap.Setting) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Name < s[j-1].Name; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// settingsDetail names the changed settings for the activity log, never
// their values.
func settingsDetail(set []hotswap.Setting, unset []string) string {
	var parts []string
	for _, x := range set {
		kind := ""
		if x.Sticky {
			kind = " (slot setting)"
		}
		parts = append(parts, "set "+x.Name+kind)
	}
	for _, n := range unset {
		parts = append(parts, "unset "+n)
	}
	return fmt.Sprint(strings.Join(parts, ", "))
}
