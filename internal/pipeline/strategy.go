package pipeline

import (
	"strconv"
	"strings"

	"github.com/hotswap/hotswap"
	"go.yaml.in/yaml/v3"
)

// progressive reads the fields of a swap action that make it a progressive
// swap, as "hotswap swap --strategy S --step D --analysis A" does:
//
//	strategy: canary:10,25,50     # or a preset: Canary10Percent5Minutes, ...
//	step: 2m                      # only with canary:...
//	analysis: maxErrorRate=1%,maxP95=300ms,minRequests=200
//
// analysis may also be a mapping of the same keys. The values are read by
// hotswap.ParseStrategy and hotswap.ParseAnalysis, so a pipeline accepts
// exactly what the command line does.
func (p *parser) progressive(f *fields, sw *Swap) {
	strategyNode, strategyPath := f.get("strategy")
	stepNode, stepPath := f.get("step")
	analysisNode, analysisPath := f.get("analysis")
	if strategyNode == nil {
		if stepNode != nil {
			p.addf(stepNode, stepPath, "step goes with a strategy: add strategy: canary:P1,P2,... or leave step out")
		}
		if analysisNode != nil {
			p.addf(analysisNode, analysisPath, "analysis goes with a strategy: add strategy: (canary:10,25,50, Canary10Percent5Minutes, ...) or leave analysis out")
		}
		return
	}
	if sw.Preview {
		n, path := f.get("preview")
		p.addf(n, path, "a progressive swap (strategy) and a swap with preview don't mix: a preview waits for its checks with no traffic moved, a strategy moves traffic step by step; leave one out")
	}
	s, ok := p.str(strategyNode, strategyPath)
	if !ok {
		return
	}
	st, err := hotswap.ParseStrategy(s, 0)
	if err != nil {
		p.addf(strategyNode, strategyPath, "%s", hotswap.ErrorMessage(err))
		return
	}
	// A problem with step leaves st as it was, so that the analysis is
	// still checked against it.
	switch {
	case stepNode == nil:
	case len(st.Steps) == 0:
		p.addf(stepNode, stepPath, "%s has no steps to time; step goes only with canary:P1,P2,...", st.Name)
	case !strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), "canary:"):
		p.addf(stepNode, stepPath, "the preset %s sets its own step durations; step goes only with canary:P1,P2,...", st.Name)
	default:
		step := p.durationIn(f, "step", 0, hotswap.MinRolloutStep, hotswap.MaxRolloutStep)
		if step < hotswap.MinRolloutStep || step > hotswap.MaxRolloutStep {
			break // reported, or not a duration
		}
		if withStep, err := hotswap.ParseStrategy(s, step); err != nil {
			p.addf(stepNode, stepPath, "%s", hotswap.ErrorMessage(err))
		} else {
			st = withStep
		}
	}
	sw.Strategy = st
	if analysisNode == nil {
		return
	}
	if len(st.Steps) == 0 {
		p.addf(analysisNode, analysisPath, "%s has no steps to analyse: it swaps at once; leave analysis out, or use a strategy with steps", st.Name)
		return
	}
	sw.Analysis = p.analysis(analysisNode, analysisPath)
}

// analysis reads a progressive swap's analysis: the command line's text,
// "maxErrorRate=1%,maxP95=300ms,minRequests=200", or a mapping of those
// keys.
func (p *parser) analysis(n *yaml.Node, path string) hotswap.Analysis {
	if n.Kind != yaml.MappingNode {
		if !p.scalar(n, path, `a string like "maxErrorRate=1%,maxP95=300ms,minRequests=200", or a mapping`, "!!str") {
			return hotswap.Analysis{}
		}
		a, err := hotswap.ParseAnalysis(n.Value)
		if err != nil {
			p.addf(n, path, "%s", hotswap.ErrorMessage(err))
		}
		return a
	}
	f, ok := p.mapping(n, path, "maxErrorRate", "maxP95", "minRequests")
	if !ok {
		return hotswap.Analysis{}
	}
	var a hotswap.Analysis
	// Each value goes through ParseAnalysis alone, so the limits are the
	// command line's; a "," or "=" in it would smuggle in another key.
	one := func(n *yaml.Node, path, key, v, want string) (hotswap.Analysis, bool) {
		if strings.ContainsAny(v, ",=") {
			p.addf(n, path, "want %s, got %s", want, quote(v))
			return hotswap.Analysis{}, false
		}
		x, err := hotswap.ParseAnalysis(key + "=" + v)
		if err != nil || strings.TrimSpace(v) == "" {
			p.addf(n, path, "want %s, got %s", want, quote(v))
			return hotswap.Analysis{}, false
		}
		return x, true
	}
	if n, path := f.get("maxErrorRate"); n != nil {
		// A bare number is refused: a gate's metric reads 0.01 as 1%, and
		// the command line reads it as 0.01%; "1%" means the same to all.
		const want = "a percent from 0% to 100%, like 1%"
		if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
			p.addf(n, path, "want %s, got %s (write the %% sign)", want, describe(n))
		} else if v, ok := p.str(n, path); ok {
			if !strings.HasSuffix(strings.TrimSpace(v), "%") {
				p.addf(n, path, "want %s, got %s (write the %% sign)", want, quote(v))
			} else if x, ok := one(n, path, "maxErrorRate", v, want); ok {
				a.MaxErrorRate = x.MaxErrorRate
			}
		}
	}
	if n, path := f.get("maxP95"); n != nil {
		if v, ok := p.str(n, path); ok {
			if x, ok := one(n, path, "maxP95", v, "a duration from 1ms to 1m, like 300ms"); ok {
				a.MaxP95 = x.MaxP95
			}
		}
	}
	if n, path := f.get("minRequests"); n != nil {
		if r, ok := p.integer(n, path); ok {
			if x, ok := one(n, path, "minRequests", strconv.Itoa(r), "a whole number from 0 to 1000000000"); ok {
				a.MinRequests = x.MinRequests
			}
		}
	}
	return a
}
