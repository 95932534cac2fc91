package ops

import (
	"strings"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/runtime"
)

// Scale to zero: a slot's process set that served no request (HTTP or
// trigger: both Acquire the set) for its idle timeout is put to sleep (see
// runtime.Set.Sleep); the first request after wakes it. Each node of a
// cluster puts its own sets to sleep. The timeout is the server's
// Config.IdleTimeout for slots other than production (production never
// sleeps unless its own setting says so), and a slot's HOTSWAP_IDLE_TIMEOUT
// setting overrides it either way.

// IdleTimeoutSetting is the slot setting giving a slot's idle timeout: a
// duration such as "15m", or "off".
const IdleTimeoutSetting = "HOTSWAP_IDLE_TIMEOUT"

// DefaultIdleTimeout is Config.IdleTimeout's default for non-production
// slots.
const DefaultIdleTimeout = 15 * time.Minute

// Limits of an idle timeout.
const (
	minIdleTimeout = time.Second
	maxIdleTimeout = 30 * 24 * time.Hour
)

// idleTimeout returns slot's idle timeout under settings; 0 is never.
func idleTimeout(settings []hotswap.Setting, slot string, def time.Duration) (time.Duration, error) {
	for _, st := range settings {
		if st.Name != IdleTimeoutSetting {
			continue
		}
		return parseIdleTimeout(st.Value)
	}
	if slot == hotswap.ProductionSlot {
		return 0, nil
	}
	return def, nil
}

// parseIdleTimeout reads a HOTSWAP_IDLE_TIMEOUT value.
func parseIdleTimeout(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	switch strings.ToLower(v) {
	case "off", "never", "0", "":
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < minIdleTimeout || d > maxIdleTimeout {
		return 0, hotswap.Errorf(hotswap.Invalid, "%s: %q is not a duration from %v to %v (like 15m), or off", IdleTimeoutSetting, v, minIdleTimeout, maxIdleTimeout)
	}
	return d, nil
}

// idleMark is what the reaper last saw of a set: its Acquired count, and
// since when it has not changed.
type idleMark struct {
	acquired uint32
	since    time.Time
}

// idleLoop puts the sets that idled past their timeout to sleep.
func (s *Service) idleLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(s.cfg.IdleTick)
	defer tick.Stop()
	marks := make(map[*runtime.Set]idleMark)
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		for _, set := range s.idleSets(marks, time.Now()) {
			if set.Sleep() {
				s.log.Info("process set asleep: idle", "pid", set.PID())
			}
		}
	}
}

// idleSets returns the serving sets that idled past their timeout, and
// updates marks (the reaper's memory) for the others.
func (s *Service) idleSets(marks map[*runtime.Set]idleMark, now time.Time) []*runtime.Set {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*runtime.Set
	seen := make(map[*runtime.Set]bool, len(s.slots))
	for _, st := range s.slots {
		set := st.set
		if set == nil || st.preview != nil || set.Idle() {
			continue
		}
		to, err := idleTimeout(st.settings, st.slot.Name, s.cfg.IdleTimeout)
		if err != nil || to <= 0 {
			continue
		}
		seen[set] = true
		acq := set.Acquired()
		m, ok := marks[set]
		if !ok || m.acquired != acq || set.InFlight() > 0 {
			marks[set] = idleMark{acquired: acq, since: now}
			continue
		}
		if now.Sub(m.since) >= to {
			out = append(out, set)
			delete(marks, set) // awake again, it starts a new idle period
		}
	}
	for set := range marks {
		if !seen[set] {
			delete(marks, set)
		}
	}
	return out
}
