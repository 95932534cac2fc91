package portal

import (
	"strings"
	"time"

	"github.com/hotswap/hotswap/internal/release"
)

// humanDur writes a duration as people do: 72h, 1h30m, 5m, 300ms, not
// 72h0m0s.
func humanDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// GateLines says, for each gate of the stage, its one state: passed,
// passing but not yet long enough, failing and why, not checked yet.
func (s releaseStage) GateLines() []string {
	out := make([]string, 0, len(s.Gates))
	for i, g := range s.Gates {
		var min time.Duration
		if s.Def != nil && i < len(s.Def.Gates) {
			min = s.Def.Gates[i].MinSuccess
		}
		nodata := strings.HasPrefix(g.Last, "no data")
		var line string
		switch {
		case g.Passed && nodata:
			line = "passed with " + g.Last
		case g.Passed:
			line = "passed"
		case s.State != release.StageGates:
			line = "did not pass"
			if g.Last != "" && g.Last != "passed" {
				line += ": " + g.Last
			}
		case g.LastEval.IsZero():
			line = "not checked yet"
		case g.Last == "passed" || nodata:
			line = "passing"
			if nodata {
				line = "passing with " + g.Last
			}
			if !g.FirstSuccess.IsZero() && min > 0 {
				line += " since " + g.FirstSuccess.UTC().Format("15:04:05") + " UTC; passes after " + humanDur(min) + " in a row"
			}
		default:
			line = "failing: " + g.Last
		}
		out = append(out, line)
	}
	return out
}
