package hotswap

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A progressive swap (a rollout) moves production's traffic to a slot step
// by step: each step gives the slot a share of production's requests for a
// while (a traffic rule, see TrafficShare), and the slot's metrics over the
// step, read against production's at the same time, decide whether the next
// step comes. Passing the last step swaps the slot into production as a
// plain swap does; failing one takes the share away and leaves both slots
// as they were.

// Duration is a time.Duration that reads and writes JSON as Go's duration
// text ("2m0s"), so that rollouts read the same in the API, the CLI and the
// store.
type Duration time.Duration

// MarshalJSON writes d as "2m0s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads "2m0s" (or a number of nanoseconds, as older writers
// might).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("a duration is text like \"2m\": %s", b)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %v", s, err)
	}
	*d = Duration(v)
	return nil
}

// RolloutStep is one step of a progressive swap: the slot serves Percent of
// production's requests for Duration.
type RolloutStep struct {
	Percent  float64  `json:"percent"`
	Duration Duration `json:"duration"`
}

// Strategy is how a progressive swap steps: its name as given ("canary:10,25,50"
// or a preset such as "Canary10Percent5Minutes") and the steps it stands
// for. No steps is AllAtOnce: a plain swap.
type Strategy struct {
	Name  string        `json:"name"`
	Steps []RolloutStep `json:"steps"`
}

// Limits of a strategy.
const (
	MaxRolloutSteps    = 20
	MinRolloutStep     = time.Second
	MaxRolloutStep     = 24 * time.Hour
	DefaultRolloutStep = 5 * time.Minute
)

var (
	canaryPreset = regexp.MustCompile(`^(?i:canary)([0-9]{1,2})(?i:percent)([0-9]{1,4})(?i:minutes?)$`)
	linearPreset = regexp.MustCompile(`^(?i:linear)([0-9]{1,2})(?i:percentevery)([0-9]{1,4})(?i:minutes?)$`)
)

// ParseStrategy reads a strategy: "canary:10,25,50" (each share held for
// step, DefaultRolloutStep when step is 0), or one of the presets named as
// in AWS CodeDeploy: "Canary<P>Percent<N>Minutes" (P% for N minutes, then
// all), "Linear<P>PercentEvery<N>Minutes" (P% more every N minutes) and
// "AllAtOnce". A preset carries its own timing, so step must be 0 with one.
func ParseStrategy(s string, step time.Duration) (Strategy, error) {
	s = strings.TrimSpace(s)
	bad := func(format string, args ...any) (Strategy, error) {
		return Strategy{}, Errorf(Invalid, "strategy %q: %s", s, fmt.Sprintf(format, args...))
	}
	preset := func() (Strategy, error) {
		if step != 0 {
			return bad("a preset sets its own step duration; --step goes with canary:P1,P2,...")
		}
		return Strategy{}, nil
	}
	var steps []RolloutStep
	switch {
	case s == "":
		return bad("empty; use canary:10,25,50, Canary10Percent5Minutes, Linear10PercentEvery1Minute or AllAtOnce")
	case strings.EqualFold(s, "AllAtOnce"):
		if _, err := preset(); err != nil {
			return Strategy{}, err
		}
		return Strategy{Name: "AllAtOnce", Steps: []RolloutStep{}}, nil
	case canaryPreset.MatchString(s):
		if _, err := preset(); err != nil {
			return Strategy{}, err
		}
		m := canaryPreset.FindStringSubmatch(s)
		p, _ := strconv.Atoi(m[1])
		n, _ := strconv.Atoi(m[2])
		steps = []RolloutStep{{Percent: float64(p), Duration: Duration(time.Duration(n) * time.Minute)}}
	case linearPreset.MatchString(s):
		if _, err := preset(); err != nil {
			return Strategy{}, err
		}
		m := linearPreset.FindStringSubmatch(s)
		p, _ := strconv.Atoi(m[1])
		n, _ := strconv.Atoi(m[2])
		if p <= 0 {
			return bad("the step share must be more than 0%%")
		}
		for q := p; q < 100; q += p {
			steps = append(steps, RolloutStep{Percent: float64(q), Duration: Duration(time.Duration(n) * time.Minute)})
		}
	case strings.HasPrefix(strings.ToLower(s), "canary:"):
		if step == 0 {
			step = DefaultRolloutStep
		}
		for i, f := range strings.Split(s[len("canary:"):], ",") {
			f = strings.TrimSuffix(strings.TrimSpace(f), "%")
			p, err := strconv.ParseFloat(f, 64)
			if err != nil || math.IsNaN(p) || math.IsInf(p, 0) {
				return bad("share %d, %q, is not a number", i+1, f)
			}
			steps = append(steps, RolloutStep{Percent: p, Duration: Duration(step)})
		}
	default:
		return bad("unknown; use canary:10,25,50, Canary10Percent5Minutes, Linear10PercentEvery1Minute or AllAtOnce")
	}
	st := Strategy{Name: s, Steps: steps}
	if err := st.Validate(); err != nil {
		return Strategy{}, err
	}
	return st, nil
}

// Validate checks a strategy's steps: at most MaxRolloutSteps, shares rising
// strictly between 0 and 100, each held from MinRolloutStep to MaxRolloutStep.
func (st Strategy) Validate() error {
	if len(st.Steps) > MaxRolloutSteps {
		return Errorf(Invalid, "strategy %q: %d steps, at most %d", st.Name, len(st.Steps), MaxRolloutSteps)
	}
	last := 0.0
	for i, x := range st.Steps {
		if math.IsNaN(x.Percent) || x.Percent <= 0 || x.Percent >= 100 {
			return Errorf(Invalid, "strategy %q: step %d: share %v%% is not between 0 and 100 (the swap after the last step moves the rest)", st.Name, i+1, x.Percent)
		}
		if x.Percent <= last {
			return Errorf(Invalid, "strategy %q: step %d: share %s%% does not rise above the step before's %s%%", st.Name, i+1, FormatPercent(x.Percent), FormatPercent(last))
		}
		last = x.Percent
		if d := time.Duration(x.Duration); d < MinRolloutStep || d > MaxRolloutStep {
			return Errorf(Invalid, "strategy %q: step %d: duration %v is not between %v and %v", st.Name, i+1, d, MinRolloutStep, MaxRolloutStep)
		}
	}
	return nil
}

// String describes the steps: "10% for 2m, 25% for 2m, then swap".
func (st Strategy) String() string {
	if len(st.Steps) == 0 {
		return "swap at once"
	}
	parts := make([]string, len(st.Steps))
	for i, x := range st.Steps {
		parts[i] = FormatPercent(x.Percent) + "% for " + FormatDuration(time.Duration(x.Duration))
	}
	return strings.Join(parts, ", ") + ", then swap"
}

// FormatDuration formats d without needless zero units: "2m", "1h30m", "90s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// Analysis is what each step of a progressive swap must show for the next
// to come. A zero limit is not checked. The slot's figures over the step are
// read against production's over the same time: a limit that production
// breaks too is a general outage, which holds the step instead of failing
// the new build.
type Analysis struct {
	// MaxErrorRate is the highest share of 5xx responses, 0..1 (1% is 0.01).
	MaxErrorRate float64 `json:"maxErrorRate,omitempty"`
	// MaxP95 is the highest 95th percentile latency.
	MaxP95 Duration `json:"maxP95,omitempty"`
	// MinRequests is how many requests the slot must serve in a step before
	// its figures count; a step that ends with fewer waits for more.
	MinRequests int64 `json:"minRequests,omitempty"`
}

// IsZero reports whether the analysis checks nothing: the steps then pass
// on time alone.
func (a Analysis) IsZero() bool { return a == Analysis{} }

// ParseAnalysis reads "maxErrorRate=1%,maxP95=300ms,minRequests=200"; any
// of the three may be left out. The error rate is a percent ("1%" or "1").
func ParseAnalysis(s string) (Analysis, error) {
	var a Analysis
	s = strings.TrimSpace(s)
	if s == "" {
		return a, nil
	}
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || v == "" {
			return Analysis{}, Errorf(Invalid, "analysis %q: %q is not key=value (maxErrorRate=1%%, maxP95=300ms, minRequests=200)", s, f)
		}
		key := strings.ToLower(k)
		if seen[key] {
			return Analysis{}, Errorf(Invalid, "analysis %q: %s is given twice", s, k)
		}
		seen[key] = true
		switch key {
		case "maxerrorrate":
			p, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
			if err != nil || math.IsNaN(p) || p < 0 || p > 100 {
				return Analysis{}, Errorf(Invalid, "analysis %q: maxErrorRate %q is not a percent from 0 to 100", s, v)
			}
			if p == 0 {
				return Analysis{}, Errorf(Invalid, "analysis %q: maxErrorRate 0%% would fail a step on its first error; give a small rate such as 0.1%%, or leave it out not to check errors", s)
			}
			a.MaxErrorRate = p / 100
		case "maxp95":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 || d > time.Minute {
				return Analysis{}, Errorf(Invalid, "analysis %q: maxP95 %q is not a duration from 1ms to 1m, like 300ms", s, v)
			}
			a.MaxP95 = Duration(d)
		case "minrequests":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || n > 1e9 {
				return Analysis{}, Errorf(Invalid, "analysis %q: minRequests %q is not a whole number from 0 to 1000000000", s, v)
			}
			a.MinRequests = n
		default:
			return Analysis{}, Errorf(Invalid, "analysis %q: unknown key %q; the keys are maxErrorRate, maxP95 and minRequests", s, k)
		}
	}
	return a, nil
}

// String formats an analysis as ParseAnalysis reads it; "none" for none.
func (a Analysis) String() string {
	var parts []string
	if a.MaxErrorRate > 0 {
		parts = append(parts, "maxErrorRate="+FormatPercent(a.MaxErrorRate*100)+"%")
	}
	if a.MaxP95 > 0 {
		parts = append(parts, "maxP95="+time.Duration(a.MaxP95).String())
	}
	if a.MinRequests > 0 {
		parts = append(parts, "minRequests="+strconv.FormatInt(a.MinRequests, 10))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// RolloutState is where a progressive swap is.
type RolloutState string

const (
	// RolloutRunning: a step's share is set and its time runs.
	RolloutRunning RolloutState = "running"
	// RolloutPaused: the share of the current step stays; no step ends.
	RolloutPaused RolloutState = "paused"
	// RolloutSwapping: the steps passed (or promote was asked); the share
	// is taken away and the slot swapped into the target.
	RolloutSwapping RolloutState = "swapping"
	// RolloutRollingBack: a step failed its analysis; the share is taken
	// away and the deployment quarantined.
	RolloutRollingBack RolloutState = "rolling-back"
	// RolloutAborting: abort was asked; the share is taken away.
	RolloutAborting RolloutState = "aborting"

	RolloutSucceeded RolloutState = "succeeded"
	RolloutFailed    RolloutState = "failed"
	RolloutAborted   RolloutState = "aborted"
)

// Done reports whether a rollout in state s has ended.
func (s RolloutState) Done() bool {
	return s == RolloutSucceeded || s == RolloutFailed || s == RolloutAborted
}

// StepResult is what the analysis saw at the end of a step (or when it
// failed the step early): the slot's figures and production's over the
// same time, and the verdict.
type StepResult struct {
	Step    int       `json:"step"` // 0-based index into Strategy.Steps
	Percent float64   `json:"percent"`
	At      time.Time `json:"at"`
	// Verdict is "passed", "failed", "held" (production breaks the limit
	// too, or too few requests) or "skipped" (promoted).
	Verdict string `json:"verdict"`
	// Code names why a step held or failed: requests, outage-errors,
	// outage-p95, errors or p95.
	Code   string `json:"code,omitempty"`
	Detail string `json:"detail,omitempty"`

	Requests int64    `json:"requests"`
	Errors   int64    `json:"errors"`
	P95      Duration `json:"p95"`
	Base     int64    `json:"baseRequests"` // production's requests
	BaseErrs int64    `json:"baseErrors"`
	BaseP95  Duration `json:"baseP95"`
}

// Rollout is one progressive swap of App's Slot into Target.
type Rollout struct {
	ID       string       `json:"id"`
	App      string       `json:"app"`
	Slot     string       `json:"slot"`
	Target   string       `json:"target"`
	Strategy Strategy     `json:"strategy"`
	Analysis Analysis     `json:"analysis"`
	State    RolloutState `json:"state"`
	// Step is the index of the current step in Strategy.Steps; it equals
	// len(Strategy.Steps) once the steps have passed.
	Step int `json:"step"`
	// StepStarted is when the current step's time began (it begins again
	// on resume and after a server restart, whose metrics start afresh).
	StepStarted time.Time `json:"stepStarted"`
	// Deployment is what Slot served at the start, TargetDeployment what
	// Target did: a rollout stops if either changes under it.
	Deployment       string `json:"deployment"`
	TargetDeployment string `json:"targetDeployment,omitempty"`
	Actor            string `json:"actor"`
	Release          string `json:"release,omitempty"` // the release whose stage started it
	// Runner names the engine (one server process) that started the
	// current step's time; another engine taking the rollout over starts
	// the step again, since the step's metrics so far are not in its
	// memory. "" until an engine takes the new rollout up.
	Runner string `json:"runner,omitempty"`
	// SwapBegun is set, in state swapping, while the engine is about to
	// swap or swapping: until then an abort still stops the rollout.
	SwapBegun bool `json:"swapBegun,omitempty"`
	// Reason says why a rollout failed or was aborted: for a failed
	// analysis, which figure, its value and the limit.
	Reason  string       `json:"reason,omitempty"`
	Results []StepResult `json:"results"`
	Created time.Time    `json:"created"`
	Updated time.Time    `json:"updated"`
	// Version counts the rollout's writes; a write names the version it
	// read and is refused (Conflict) if another came first.
	Version int64 `json:"version"`
}

// Share returns the share of production's traffic the slot has in the
// rollout's current state: the current step's while running or paused,
// none otherwise.
func (r Rollout) Share() float64 {
	if (r.State == RolloutRunning || r.State == RolloutPaused) && r.Step < len(r.Strategy.Steps) {
		return r.Strategy.Steps[r.Step].Percent
	}
	return 0
}

// RolloutCommand is what a user may ask of a running rollout.
type RolloutCommand string

const (
	RolloutPause   RolloutCommand = "pause"
	RolloutResume  RolloutCommand = "resume"
	RolloutPromote RolloutCommand = "promote" // skip the remaining steps and swap now
	RolloutAbort   RolloutCommand = "abort"   // take the share away; swap nothing
)

// ParseRolloutCommand reads a command's name.
func ParseRolloutCommand(s string) (RolloutCommand, error) {
	switch c := RolloutCommand(s); c {
	case RolloutPause, RolloutResume, RolloutPromote, RolloutAbort:
		return c, nil
	}
	return "", Errorf(Invalid, "rollout command %q: use pause, resume, promote or abort", s)
}

// Validate checks an analysis given as data (the API's JSON, a stored
// pipeline) as ParseAnalysis checks its text.
func (a Analysis) Validate() error {
	if math.IsNaN(a.MaxErrorRate) || a.MaxErrorRate < 0 || a.MaxErrorRate > 1 {
		return Errorf(Invalid, "analysis: maxErrorRate %v is not a fraction from 0 to 1 (1%% is 0.01)", a.MaxErrorRate)
	}
	if d := time.Duration(a.MaxP95); d < 0 || d > time.Minute {
		return Errorf(Invalid, "analysis: maxP95 %v is not a duration from 1ms to 1m", d)
	}
	if a.MinRequests < 0 || a.MinRequests > 1e9 {
		return Errorf(Invalid, "analysis: minRequests %d is not from 0 to 1000000000", a.MinRequests)
	}
	return nil
}
