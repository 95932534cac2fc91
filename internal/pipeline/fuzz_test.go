package pipeline

import (
	"errors"
	"os"
	"testing"
)

func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("testdata/orders-release.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(valid))
	f.Add([]byte("name: &n p\nartifact: {feed: *n}\n"))
	f.Add([]byte("a: &a [*a, *a]\nb: &b [*a, *a]\n"))
	f.Add([]byte("stages: [{name: a, after: [b]}, {name: b, after: [a]}]\n"))
	f.Add([]byte("trigger: {branches: [!x, \"[\"]}\n---\nx: 1\n"))
	f.Add([]byte("name: p\nstages:\n  - gates: [{http: {}, metric: {maxErrorRate: .inf}}]\n"))
	f.Add([]byte("name: p\nartifact: {feed: f}\nstages:\n  - name: s\n    swap: {app: orders, slot: staging, strategy: \"canary:10,25,50\", step: 2m,\n      analysis: {maxErrorRate: 1%, maxP95: 300ms, minRequests: 200}}\n"))
	f.Add([]byte("name: p\nartifact: {feed: f}\nstages:\n  - name: s\n    swap: {app: orders, slot: staging, strategy: Linear10PercentEvery1Minute, analysis: \"maxErrorRate=1%,maxP95=300ms\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, testPlatform)
		if (p == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one of them", p, err)
		}
		if err != nil {
			var perr *Error
			if !errors.As(err, &perr) || len(perr.Problems) == 0 {
				t.Fatalf("Parse error %v is not an *Error with problems", err)
			}
			return
		}
		// A valid pipeline is whole: every stage ordered, every default set.
		if got, want := len(p.Order()), len(p.Stages); got != want {
			t.Fatalf("Order has %d stages, want %d", got, want)
		}
		for _, s := range p.Stages {
			if s.Deploy == nil && s.Swap == nil {
				t.Fatalf("stage %s has no action", s.Name)
			}
			if sw := s.Swap; sw != nil {
				// A progressive swap is one the engine can start: steps it
				// can take, no preview, and an analysis only with steps.
				if err := sw.Strategy.Validate(); err != nil {
					t.Fatalf("stage %s: %v", s.Name, err)
				}
				if sw.Strategy.Name == "" && len(sw.Strategy.Steps) > 0 {
					t.Fatalf("stage %s: strategy with steps and no name: %+v", s.Name, sw.Strategy)
				}
				if sw.Strategy.Name != "" && sw.Preview {
					t.Fatalf("stage %s: strategy %s with preview", s.Name, sw.Strategy.Name)
				}
				if !sw.Analysis.IsZero() && len(sw.Strategy.Steps) == 0 {
					t.Fatalf("stage %s: analysis %v without steps", s.Name, sw.Analysis)
				}
			}
			for _, g := range s.Gates {
				if (g.HTTP == nil) == (g.Metric == nil) || g.Every <= 0 || g.Timeout <= 0 {
					t.Fatalf("stage %s: bad gate %+v", s.Name, g)
				}
			}
		}
		p.Slots()
		p.MatchBranch("main")
	})
}
