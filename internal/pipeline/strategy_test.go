package pipeline

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
	"go.yaml.in/yaml/v3"
)

// swapStage is a definition whose one stage swaps orders' staging into
// production with the swap fields given, one per line at column 7 from
// line 8.
func swapStage(fields ...string) string {
	def := "name: p\nartifact: {feed: f}\nstages:\n  - name: s\n    swap:\n      app: orders\n      slot: staging\n"
	for _, f := range fields {
		def += "      " + f + "\n"
	}
	return def
}

func steps(step time.Duration, percents ...float64) []hotswap.RolloutStep {
	out := make([]hotswap.RolloutStep, len(percents))
	for i, p := range percents {
		out[i] = hotswap.RolloutStep{Percent: p, Duration: hotswap.Duration(step)}
	}
	return out
}

func TestParseSwapStrategy(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want Swap
	}{
		{
			name: "plain swap",
			yaml: swapStage(),
			want: Swap{App: "orders", Slot: "staging", Target: "production"},
		},
		{
			name: "canary with step and analysis text",
			yaml: swapStage("strategy: canary:10,25,50", "step: 2m", `analysis: "maxErrorRate=1%,maxP95=300ms,minRequests=200"`),
			want: Swap{
				App: "orders", Slot: "staging", Target: "production",
				Strategy: hotswap.Strategy{Name: "canary:10,25,50", Steps: steps(2*time.Minute, 10, 25, 50)},
				Analysis: hotswap.Analysis{MaxErrorRate: 0.01, MaxP95: hotswap.Duration(300 * time.Millisecond), MinRequests: 200},
			},
		},
		{
			name: "analysis text unquoted",
			yaml: swapStage("strategy: canary:10,25,50", "analysis: maxErrorRate=1%,maxP95=300ms"),
			want: Swap{
				App: "orders", Slot: "staging", Target: "production",
				Strategy: hotswap.Strategy{Name: "canary:10,25,50", Steps: steps(hotswap.DefaultRolloutStep, 10, 25, 50)},
				Analysis: hotswap.Analysis{MaxErrorRate: 0.01, MaxP95: hotswap.Duration(300 * time.Millisecond)},
			},
		},
		{
			name: "canary without step holds each share for the default",
			yaml: swapStage(`strategy: "canary:5%, 50%"`),
			want: Swap{
				App: "orders", Slot: "staging", Target: "production",
				Strategy: hotswap.Strategy{Name: "canary:5%, 50%", Steps: steps(5*time.Minute, 5, 50)},
			},
		},
		{
			name: "preset with analysis mapping",
			yaml: swapStage("strategy: Canary10Percent5Minutes", "analysis:", "  maxErrorRate: 1%", "  maxP95: 300ms", "  minRequests: 200"),
			want: Swap{
				App: "orders", Slot: "staging", Target: "production",
				Strategy: hotswap.Strategy{Name: "Canary10Percent5Minutes", Steps: steps(5*time.Minute, 10)},
				Analysis: hotswap.Analysis{MaxErrorRate: 0.01, MaxP95: hotswap.Duration(300 * time.Millisecond), MinRequests: 200},
			},
		},
		{
			name: "analysis mapping in part",
			yaml: swapStage("strategy: Linear25PercentEvery1Minute", `analysis: {maxErrorRate: "0.5%"}`),
			want: Swap{
				App: "orders", Slot: "staging", Target: "production",
				Strategy: hotswap.Strategy{Name: "Linear25PercentEvery1Minute", Steps: steps(time.Minute, 25, 50, 75)},
				Analysis: hotswap.Analysis{MaxErrorRate: 0.005},
			},
		},
		{
			name: "empty analysis checks nothing",
			yaml: swapStage("strategy: canary:10", "step: 1s", "analysis: {}"),
			want: Swap{
				App: "orders", Slot: "staging", Target: "production",
				Strategy: hotswap.Strategy{Name: "canary:10", Steps: steps(time.Second, 10)},
			},
		},
		{
			name: "AllAtOnce",
			yaml: swapStage("target: production", "preview: false", "strategy: AllAtOnce"),
			want: Swap{
				App: "orders", Slot: "staging", Target: "production",
				Strategy: hotswap.Strategy{Name: "AllAtOnce", Steps: []hotswap.RolloutStep{}},
			},
		},
		{
			name: "JSON",
			yaml: `{"name": "p", "artifact": {"feed": "f"}, "stages": [{"name": "s", "swap": {"app": "orders", "slot": "staging",
  "strategy": "canary:10,50", "step": "30s", "analysis": {"maxErrorRate": "2%", "minRequests": 10}}}]}`,
			want: Swap{
				App: "orders", Slot: "staging", Target: "production",
				Strategy: hotswap.Strategy{Name: "canary:10,50", Steps: steps(30*time.Second, 10, 50)},
				Analysis: hotswap.Analysis{MaxErrorRate: 0.02, MinRequests: 10},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl, err := Parse([]byte(tc.yaml), testPlatform)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(*pl.Stages[0].Swap, tc.want); diff != "" {
				t.Errorf("Swap mismatch (-got +want):\n%s", diff)
			}
			// A stored definition is parsed again without a resolver when it
			// is loaded, and may come back re-encoded by a YAML tool: both
			// must read the same.
			again, err := Parse([]byte(tc.yaml), nil)
			if err != nil {
				t.Fatalf("Parse without a resolver: %v", err)
			}
			if diff := cmp.Diff(again, pl); diff != "" {
				t.Errorf("Parse without a resolver mismatch (-got +want):\n%s", diff)
			}
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tc.yaml), &doc); err != nil {
				t.Fatal(err)
			}
			out, err := yaml.Marshal(&doc)
			if err != nil {
				t.Fatal(err)
			}
			again, err = Parse(out, testPlatform)
			if err != nil {
				t.Fatalf("Parse of the definition re-encoded:\n%s\n%v", out, err)
			}
			if diff := cmp.Diff(again, pl); diff != "" {
				t.Errorf("Parse of the definition re-encoded mismatch (-got +want):\n%s", diff)
			}
		})
	}
}

func TestParseSwapStrategyErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // the lines of the error
	}{
		{
			name: "preview with a strategy",
			yaml: swapStage("preview: true", "strategy: canary:10"),
			want: []string{`line 8, column 16: stages[0].swap.preview: a progressive swap (strategy) and a swap with preview don't mix: a preview waits for its checks with no traffic moved, a strategy moves traffic step by step; leave one out`},
		},
		{
			name: "preview with AllAtOnce",
			yaml: swapStage("strategy: AllAtOnce", "preview: true"),
			want: []string{`line 9, column 16: stages[0].swap.preview: a progressive swap (strategy) and a swap with preview don't mix: a preview waits for its checks with no traffic moved, a strategy moves traffic step by step; leave one out`},
		},
		{
			name: "strategy with a target other than production",
			yaml: swapStage("target: qa", "strategy: canary:10"),
			want: []string{`line 8, column 15: stages[0].swap.target: a progressive swap (strategy canary:10) moves production's traffic, so its target is production, not "qa"`},
		},
		{
			name: "step without strategy",
			yaml: swapStage("step: 2m"),
			want: []string{`line 8, column 13: stages[0].swap.step: step goes with a strategy: add strategy: canary:P1,P2,... or leave step out`},
		},
		{
			name: "analysis without strategy",
			yaml: swapStage("analysis: maxErrorRate=1%"),
			want: []string{`line 8, column 17: stages[0].swap.analysis: analysis goes with a strategy: add strategy: (canary:10,25,50, Canary10Percent5Minutes, ...) or leave analysis out`},
		},
		{
			name: "AllAtOnce with analysis",
			yaml: swapStage("strategy: allatonce", "analysis: {maxP95: 300ms}"),
			want: []string{`line 9, column 17: stages[0].swap.analysis: AllAtOnce has no steps to analyse: it swaps at once; leave analysis out, or use a strategy with steps`},
		},
		{
			name: "AllAtOnce with step",
			yaml: swapStage("strategy: AllAtOnce", "step: 1m"),
			want: []string{`line 9, column 13: stages[0].swap.step: AllAtOnce has no steps to time; step goes only with canary:P1,P2,...`},
		},
		{
			name: "preset with step",
			yaml: swapStage("strategy: Linear10PercentEvery1Minute", "step: 1m"),
			want: []string{`line 9, column 13: stages[0].swap.step: the preset Linear10PercentEvery1Minute sets its own step durations; step goes only with canary:P1,P2,...`},
		},
		{
			name: "unknown strategy",
			yaml: swapStage("strategy: blue-green"),
			want: []string{`line 8, column 17: stages[0].swap.strategy: strategy "blue-green": unknown; use canary:10,25,50, Canary10Percent5Minutes, Linear10PercentEvery1Minute or AllAtOnce`},
		},
		{
			name: "empty strategy",
			yaml: swapStage(`strategy: ""`),
			want: []string{`line 8, column 17: stages[0].swap.strategy: strategy "": empty; use canary:10,25,50, Canary10Percent5Minutes, Linear10PercentEvery1Minute or AllAtOnce`},
		},
		{
			name: "strategy not a string",
			yaml: swapStage("strategy: {canary: [10, 25]}"),
			want: []string{`line 8, column 17: stages[0].swap.strategy: want a string, got a mapping`},
		},
		{
			name: "share not a number",
			yaml: swapStage("strategy: canary:10,ten"),
			want: []string{`line 8, column 17: stages[0].swap.strategy: strategy "canary:10,ten": share 2, "ten", is not a number`},
		},
		{
			name: "shares not rising",
			yaml: swapStage("strategy: canary:50,25"),
			want: []string{`line 8, column 17: stages[0].swap.strategy: strategy "canary:50,25": step 2: share 25% does not rise above the step before's 50%`},
		},
		{
			name: "share of all",
			yaml: swapStage("strategy: canary:10,100"),
			want: []string{`line 8, column 17: stages[0].swap.strategy: strategy "canary:10,100": step 2: share 100% is not between 0 and 100 (the swap after the last step moves the rest)`},
		},
		{
			name: "step not a duration",
			yaml: swapStage("strategy: canary:10", "step: soon"),
			want: []string{`line 9, column 13: stages[0].swap.step: "soon" is not a duration`},
		},
		{
			name: "step too short",
			yaml: swapStage("strategy: canary:10", "step: 500ms"),
			want: []string{`line 9, column 13: stages[0].swap.step: must be at least 1s`},
		},
		{
			name: "step too long",
			yaml: swapStage("strategy: canary:10", "step: 25h"),
			want: []string{`line 9, column 13: stages[0].swap.step: must be at most 24h0m0s`},
		},
		{
			name: "analysis text with an unknown key",
			yaml: swapStage("strategy: canary:10", "analysis: maxErrors=5"),
			want: []string{`line 9, column 17: stages[0].swap.analysis: analysis "maxErrors=5": unknown key "maxErrors"; the keys are maxErrorRate, maxP95 and minRequests`},
		},
		{
			name: "analysis text not key=value",
			yaml: swapStage("strategy: canary:10", `analysis: "maxP95 300ms"`),
			want: []string{`line 9, column 17: stages[0].swap.analysis: analysis "maxP95 300ms": "maxP95 300ms" is not key=value (maxErrorRate=1%, maxP95=300ms, minRequests=200)`},
		},
		{
			name: "analysis a list",
			yaml: swapStage("strategy: canary:10", "analysis: [maxP95=300ms]"),
			want: []string{`line 9, column 17: stages[0].swap.analysis: want a string like "maxErrorRate=1%,maxP95=300ms,minRequests=200", or a mapping, got a list`},
		},
		{
			name: "analysis null",
			yaml: swapStage("strategy: canary:10", "analysis:"),
			want: []string{`line 9, column 16: stages[0].swap.analysis: want a string like "maxErrorRate=1%,maxP95=300ms,minRequests=200", or a mapping, got null`},
		},
		{
			name: "analysis mapping, each field bad",
			yaml: swapStage("strategy: canary:10", "analysis:", "  maxErrorRate: 150%", "  maxP95: 2m", "  minRequests: -1", "  window: 5m"),
			want: []string{
				`line 10, column 23: stages[0].swap.analysis.maxErrorRate: want a percent from 0% to 100%, like 1%, got "150%"`,
				`line 11, column 17: stages[0].swap.analysis.maxP95: want a duration from 1ms to 1m, like 300ms, got "2m"`,
				`line 12, column 22: stages[0].swap.analysis.minRequests: want a whole number from 0 to 1000000000, got "-1"`,
				`line 13, column 9: stages[0].swap.analysis: unknown field "window"`,
			},
		},
		{
			name: "analysis mapping, error rate as a share",
			yaml: swapStage("strategy: canary:10", "analysis: {maxErrorRate: 0.01}"),
			want: []string{`line 9, column 32: stages[0].swap.analysis.maxErrorRate: want a percent from 0% to 100%, like 1%, got "0.01" (write the % sign)`},
		},
		{
			name: "analysis mapping, error rate without the sign",
			yaml: swapStage("strategy: canary:10", `analysis: {maxErrorRate: "1"}`),
			want: []string{`line 9, column 32: stages[0].swap.analysis.maxErrorRate: want a percent from 0% to 100%, like 1%, got "1" (write the % sign)`},
		},
		{
			name: "analysis mapping, a value that smuggles in a key",
			yaml: swapStage("strategy: canary:10", `analysis: {maxP95: "300ms,minRequests=5"}`),
			want: []string{`line 9, column 26: stages[0].swap.analysis.maxP95: want a duration from 1ms to 1m, like 300ms, got "300ms,minRequests=5"`},
		},
		{
			name: "analysis mapping, wrong types",
			yaml: swapStage("strategy: canary:10", "analysis: {maxP95: [1s], minRequests: many}"),
			want: []string{
				`line 9, column 26: stages[0].swap.analysis.maxP95: want a string, got a list`,
				`line 9, column 45: stages[0].swap.analysis.minRequests: want an integer, got "many"`,
			},
		},
		{
			name: "every problem at once",
			yaml: swapStage("preview: true", "strategy: canary:10", "step: 0s", "analysis: maxP95=fast"),
			want: []string{
				`line 8, column 16: stages[0].swap.preview: a progressive swap (strategy) and a swap with preview don't mix: a preview waits for its checks with no traffic moved, a strategy moves traffic step by step; leave one out`,
				`line 10, column 13: stages[0].swap.step: must be at least 1s`,
				`line 11, column 17: stages[0].swap.analysis: analysis "maxP95=fast": maxP95 "fast" is not a duration from 1ms to 1m, like 300ms`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.yaml), testPlatform)
			if p != nil {
				t.Fatalf("Parse returned a pipeline along with %v", err)
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("Parse error = %v, want an *Error", err)
			}
			got := strings.Split(err.Error(), "\n")
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Parse error mismatch (-got +want):\n%s", diff)
			}
			if got, want := hotswap.ErrorKind(err), hotswap.Invalid; got != want {
				t.Errorf("ErrorKind = %v, want %v", got, want)
			}
		})
	}
}
