package hotswap

import (
	"fmt"
	"math"
	"strings"
)

// TrafficShare is a traffic routing rule on an app's production slot: the
// share of production's requests without a routing cookie that Slot (another
// slot of the same app, by name) serves. A share of 0 sends nothing by draw
// but lets a client pick the slot with ?x-ms-routing-name=<slot>.
type TrafficShare struct {
	Slot    string  `json:"slot"`
	Percent float64 `json:"percent"`
}

// ValidateTraffic checks the shares of one app: each names a slot other
// than production, once, with a percent from 0 to 100, and they sum to at
// most 100 (production serves the rest). Whether the slots exist is the
// store's check.
func ValidateTraffic(shares []TrafficShare) error {
	seen := make(map[string]bool, len(shares))
	var sum float64
	for i, s := range shares {
		if err := ValidateName("slot", s.Slot); err != nil {
			return Errorf(Invalid, "traffic share %d: %s", i+1, err.(*Error).Msg)
		}
		if s.Slot == ProductionSlot {
			return Errorf(Invalid, "traffic share %d: the production slot serves what the other shares leave; give shares to other slots", i+1)
		}
		if seen[s.Slot] {
			return Errorf(Invalid, "traffic share %d: slot %q has two shares", i+1, s.Slot)
		}
		seen[s.Slot] = true
		if math.IsNaN(s.Percent) || s.Percent < 0 || s.Percent > 100 {
			return Errorf(Invalid, "traffic share %d: slot %q: percent %v is not between 0 and 100", i+1, s.Slot, s.Percent)
		}
		sum += s.Percent
	}
	if sum > 100+1e-9 {
		return Errorf(Invalid, "traffic shares sum to %s%%, more than 100%%", FormatPercent(sum))
	}
	return nil
}

// FormatPercent formats a share's percent without needless decimals: 10,
// 2.5, 0.25.
func FormatPercent(p float64) string {
	s := fmt.Sprintf("%.2f", p)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// FormatTraffic formats shares as "staging=10% canary=5%", or "none".
func FormatTraffic(shares []TrafficShare) string {
	if len(shares) == 0 {
		return "none"
	}
	parts := make([]string, len(shares))
	for i, s := range shares {
		parts[i] = s.Slot + "=" + FormatPercent(s.Percent) + "%"
	}
	return strings.Join(parts, " ")
}
