package pipeline

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMatchBranch(t *testing.T) {
	tests := []struct {
		name     string
		branches []string
		branch   string
		want     bool
	}{
		{"no filters", nil, "anything", true},
		{"no filters, no branch", nil, "", true},
		{"exact", []string{"main"}, "main", true},
		{"exact, other", []string{"main"}, "dev", false},
		{"several includes", []string{"main", "dev"}, "dev", true},
		{"glob", []string{"release/*"}, "release/1.2", true},
		{"glob does not cross /", []string{"release/*"}, "release/1.2/hotfix", false},
		{"glob prefix", []string{"feature-*"}, "feature-x", true},
		{"character class", []string{"v[0-9]"}, "v7", true},
		{"exclude only", []string{"!wip"}, "main", true},
		{"exclude only, excluded", []string{"!wip"}, "wip", false},
		{"exclude glob beats include", []string{"release/*", "!release/old-*"}, "release/old-1", false},
		{"include next to exclude", []string{"release/*", "!release/old-*"}, "release/new-1", true},
		{"exclude order does not matter", []string{"!main", "*"}, "main", false},
		{"star", []string{"*"}, "main", true},
		{"include not matched", []string{"release/*", "!x"}, "main", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &Pipeline{Continuous: true, Branches: tc.branches}
			if got := p.MatchBranch(tc.branch); got != tc.want {
				t.Errorf("MatchBranch(%q) with %q = %v, want %v", tc.branch, tc.branches, got, tc.want)
			}
		})
	}
}

func stages(after map[string][]string, names ...string) *Pipeline {
	p := new(Pipeline)
	for _, n := range names {
		p.Stages = append(p.Stages, &Stage{Name: n, After: after[n]})
	}
	return p
}

func names(ss []*Stage) []string {
	var n []string
	for _, s := range ss {
		n = append(n, s.Name)
	}
	return n
}

func TestOrder(t *testing.T) {
	tests := []struct {
		name string
		p    *Pipeline
		want []string
	}{
		{"empty", stages(nil), nil},
		{"chain", stages(map[string][]string{"b": {"a"}, "c": {"b"}}, "a", "b", "c"), []string{"a", "b", "c"}},
		{"listed backwards", stages(map[string][]string{"a": {"b"}, "b": {"c"}}, "a", "b", "c"), []string{"c", "b", "a"}},
		{"independent keep list order", stages(nil, "x", "a", "m"), []string{"x", "a", "m"}},
		{
			"fan out and in",
			stages(map[string][]string{"test": {"build"}, "lint": {"build"}, "prod": {"lint", "test"}}, "prod", "test", "build", "lint"),
			[]string{"build", "test", "lint", "prod"},
		},
		{
			"ready stage earlier in the list goes first",
			stages(map[string][]string{"b": {"c"}}, "a", "b", "c", "d"),
			[]string{"a", "c", "b", "d"},
		},
		{"unknown after ignored", stages(map[string][]string{"a": {"zzz"}}, "a"), []string{"a"}},
		{"cycle left out", stages(map[string][]string{"a": {"b"}, "b": {"a"}}, "a", "b", "c"), []string{"c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(names(tc.p.Order()), tc.want); diff != "" {
				t.Errorf("Order mismatch (-got +want):\n%s", diff)
			}
		})
	}
}

func TestOrderOfParsed(t *testing.T) {
	p, err := Parse([]byte(`name: p
artifact: {feed: f}
stages:
  - {name: prod, after: [qa, perf], swap: {app: orders, slot: staging}}
  - {name: qa, after: [staging], deploy: {app: orders, slot: staging}}
  - {name: staging, after: [], deploy: {app: orders, slot: staging}}
  - {name: perf, deploy: {app: orders, slot: staging}}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(names(p.Order()), []string{"staging", "qa", "perf", "prod"}); diff != "" {
		t.Errorf("Order mismatch (-got +want):\n%s", diff)
	}
}

func TestStage(t *testing.T) {
	p := stages(nil, "a", "b")
	if got := p.Stage("b"); got != p.Stages[1] {
		t.Errorf("Stage(b) = %v, want %v", got, p.Stages[1])
	}
	if got := p.Stage("c"); got != nil {
		t.Errorf("Stage(c) = %v, want nil", got)
	}
}

func TestSlots(t *testing.T) {
	p := &Pipeline{Stages: []*Stage{
		{Name: "a", Deploy: &Target{"orders", "staging"}},
		{Name: "b", Deploy: &Target{"orders", "staging"}, Swap: &Swap{App: "orders", Slot: "staging", Target: "production"}},
		{Name: "c", Swap: &Swap{App: "pay", Slot: "canary", Target: "production"}},
	}}
	want := [][2]string{{"orders", "staging"}, {"orders", "production"}, {"pay", "canary"}, {"pay", "production"}}
	if diff := cmp.Diff(p.Slots(), want); diff != "" {
		t.Errorf("Slots mismatch (-got +want):\n%s", diff)
	}
}
