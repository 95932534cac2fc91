// Package pipeline parses and validates release pipeline definitions written
// in YAML ("pipelines as code"): an artifact feed, a continuous-deployment
// trigger with branch filters, and stages with approvals, gates, actions and
// checks. Parse reports every problem it finds with its line and column, so
// a definition can be fixed in one pass; the engine that runs releases takes
// the validated Pipeline, with every default filled in.
package pipeline

import (
	"path"
	"slices"
	"strings"
	"time"

	"github.com/hotswap/hotswap"
)

// Queue policies of a stage.
const (
	// QueueSequential deploys releases one after the other: a newer release
	// waits until the older one has left the stage.
	QueueSequential = "sequential"
	// QueueLatest lets a newer release cancel an older one still waiting
	// for the stage.
	QueueLatest = "latest"
)

// Keys a probe can send with its request.
const (
	KeyNone     = "none" // anonymous
	KeyFunction = "function"
	KeyHost     = "host"
	KeyMaster   = "master"
)

// Notification events.
const (
	EventRelease = "release" // a release changed state
	EventStage   = "stage"   // a stage of a release changed state
)

// Limits on a definition.
const (
	MaxSize       = 256 << 10 // bytes of YAML
	MaxStages     = 50
	MaxStageItems = 20 // checks, and gates, per stage
)

// Pipeline is a validated release pipeline definition. Parse fills in every
// default, so the engine never has to.
type Pipeline struct {
	Name        string
	Description string
	Feed        string // the artifact feed whose packages the pipeline releases
	// Continuous is true when each artifact pushed to Feed creates a release
	// (subject to Branches); false means releases are only created by hand.
	Continuous bool
	// Branches are the branch filters of the continuous trigger: names or
	// path.Match globs, "!" in front excluding. See MatchBranch.
	Branches []string
	// Webhook is the URL notified of state changes; empty for none.
	Webhook string
	// NotifyEvents are the events sent to Webhook (EventRelease,
	// EventStage); nil when there is no webhook.
	NotifyEvents []string
	Stages       []*Stage
}

// Stage is one stage of a pipeline. Before it runs, its approval is requested
// and then its gates are evaluated; it runs its deploy, then its swap, then its
// checks.
type Stage struct {
	Name string
	// After names the stages that must succeed before this one starts; nil
	// means the stage starts when the release is created.
	After []string
	// Manual is true when the stage waits for someone to start it once its
	// After stages have succeeded.
	Manual   bool
	Deploy   *Target // deploy the release's artifact here; nil for none
	Swap     *Swap   // nil for none; runs after Deploy
	Checks   []Check // after the actions, in order
	Approval *Approval
	Gates    []Gate
	Queue    string // QueueSequential or QueueLatest
}

// Target is an app's slot.
type Target struct{ App, Slot string }

// Swap swaps Slot of App into Target.
type Swap struct {
	App, Slot string
	Target    string // default production
	Preview   bool   // swap with preview: apply Target's settings to Slot first
	// Strategy makes the swap progressive: Target's traffic moves to Slot
	// step by step before the swap, as "hotswap swap --strategy" does. A
	// zero Name is a plain swap; "AllAtOnce" (no steps) is one too. Never
	// set together with Preview.
	Strategy hotswap.Strategy
	// Analysis is what each step must show for the next to come; zero
	// checks nothing. Only set with a Strategy that has steps.
	Analysis hotswap.Analysis
}

// Probe is an HTTP GET request against an app's slot.
type Probe struct {
	App, Slot string
	Path      string // starts with "/"; may have a query
	Expect    []int  // the statuses that count as success; default [200]
	Key       string // KeyNone (default), KeyFunction, KeyHost or KeyMaster
}

// Check is a probe run after a stage's actions. It fails the stage when
// Retries+1 attempts, Interval apart, have all failed.
type Check struct {
	Probe
	Retries  int           // default 3
	Interval time.Duration // between attempts, default 2s
	Timeout  time.Duration // per attempt, default 10s
}

// Approval is a pre-deployment approval.
type Approval struct {
	Approvers []string // user names
	Required  int      // how many approvers must approve, default 1
	// RequesterCanApprove lets the user who created the release approve it.
	RequesterCanApprove bool
	Timeout             time.Duration // the release is rejected after it; default 72h
}

// Gate is a condition evaluated before a stage runs: after Delay, it is
// sampled every Every until it has held for MinSuccess (one success when
// zero), or until Timeout, which fails the stage. Exactly one of HTTP and
// Metric is set.
type Gate struct {
	HTTP       *Probe
	Metric     *Metric
	Delay      time.Duration // default 0
	Every      time.Duration // default 30s
	MinSuccess time.Duration // default 0
	Timeout    time.Duration // default 30m
}

// Metric is a gate on a slot's own request metrics over the last Window.
type Metric struct {
	App, Slot string
	// MaxErrorRate is the highest share of 5xx responses that passes, 0 to
	// 1; 1 (the default when only MaxP95 is given) disables the check.
	MaxErrorRate float64
	// MaxP95 is the highest 95th percentile latency that passes; 0 (the
	// default when only MaxErrorRate is given) disables the check.
	MaxP95      time.Duration
	Window      time.Duration // default 5m
	MinRequests int           // fewer requests in Window do not pass; default 0
}

// MatchBranch reports whether an artifact built from branch passes the branch
// filters: it must match at least one include filter (or there are none) and
// no exclude filter. It does not look at Continuous.
func (p *Pipeline) MatchBranch(branch string) bool {
	included, includes := false, false
	for _, f := range p.Branches {
		if pattern, ok := strings.CutPrefix(f, "!"); ok {
			if match(pattern, branch) {
				return false
			}
			continue
		}
		includes = true
		included = included || match(f, branch)
	}
	return included || !includes
}

func match(pattern, name string) bool {
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

// Stage returns the stage called name, or nil.
func (p *Pipeline) Stage(name string) *Stage {
	for _, s := range p.Stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Order returns the stages in an order that puts every stage after the
// stages it runs after; among the stages ready at a point, list order wins.
// A stage on a cycle is left out (Parse never returns such a pipeline);
// After names that are not stages are ignored.
func (p *Pipeline) Order() []*Stage {
	done := make(map[string]bool, len(p.Stages))
	known := make(map[string]bool, len(p.Stages))
	for _, s := range p.Stages {
		known[s.Name] = true
	}
	ready := func(s *Stage) bool {
		for _, a := range s.After {
			if known[a] && !done[a] {
				return false
			}
		}
		return true
	}
	var order []*Stage
	placed := make([]bool, len(p.Stages))
	for len(order) < len(p.Stages) {
		next := -1
		for i, s := range p.Stages {
			if !placed[i] && ready(s) {
				next = i
				break
			}
		}
		if next < 0 {
			break
		}
		placed[next] = true
		done[p.Stages[next].Name] = true
		order = append(order, p.Stages[next])
	}
	return order
}

// Slots returns the distinct app/slot pairs whose content the pipeline
// changes, in stage order: deploy targets and both sides of every swap. A
// release holds them while it is under way.
func (p *Pipeline) Slots() [][2]string {
	var slots [][2]string
	add := func(app, slot string) {
		s := [2]string{app, slot}
		if !slices.Contains(slots, s) {
			slots = append(slots, s)
		}
	}
	for _, s := range p.Stages {
		if s.Deploy != nil {
			add(s.Deploy.App, s.Deploy.Slot)
		}
		if s.Swap != nil {
			add(s.Swap.App, s.Swap.Slot)
			add(s.Swap.App, s.Swap.Target)
		}
	}
	return slots
}
