package ops

import (
	"testing"
	"time"

	"github.com/hotswap/hotswap"
)

func TestIdleTimeout(t *testing.T) {
	set := func(v string) []hotswap.Setting { return []hotswap.Setting{{Name: IdleTimeoutSetting, Value: v}} }
	for _, c := range []struct {
		settings []hotswap.Setting
		slot     string
		want     time.Duration
		bad      bool
	}{
		{nil, "staging", 15 * time.Minute, false},
		{nil, hotswap.ProductionSlot, 0, false}, // production never idles unless told
		{set("2m"), hotswap.ProductionSlot, 2 * time.Minute, false},
		{set("off"), "staging", 0, false},
		{set(" 0 "), "staging", 0, false},
		{set("500ms"), "staging", 0, true},
		{set("soon"), "staging", 0, true},
		{set("-5m"), "staging", 0, true},
		{set("9999h"), "staging", 0, true},
	} {
		got, err := idleTimeout(c.settings, c.slot, DefaultIdleTimeout)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("idleTimeout(%v, %s) = %v, %v; want %v (error: %v)", c.settings, c.slot, got, err, c.want, c.bad)
		}
	}
}
