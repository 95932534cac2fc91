package pipeline

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
)

// platform is a Resolver over fixed apps, slots and users: the platform a
// definition is checked against cannot run inside this package's tests.
type platform struct {
	slots map[string][]string // app -> slots
	users []string
}

func (p platform) Slot(app, slot string) error {
	slots, ok := p.slots[app]
	if !ok {
		return hotswap.Errorf(hotswap.NotFound, "app %q not found", app)
	}
	for _, s := range slots {
		if s == slot {
			return nil
		}
	}
	return hotswap.Errorf(hotswap.NotFound, "app %q has no slot %q", app, slot)
}

func (p platform) User(name string) error {
	for _, u := range p.users {
		if u == name {
			return nil
		}
	}
	return hotswap.Errorf(hotswap.NotFound, "user %q not found", name)
}

var testPlatform = platform{
	slots: map[string][]string{
		"orders":   {"production", "staging"},
		"payments": {"production", "canary"},
	},
	users: []string{"qa-lead", "ops", "dev"},
}

func readFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestParseExample(t *testing.T) {
	got, err := Parse(readFile(t, "testdata/orders-release.yaml"), testPlatform)
	if err != nil {
		t.Fatal(err)
	}
	want := &Pipeline{
		Name:       "orders-release",
		Feed:       "orders",
		Continuous: true,
		Branches:   []string{"main"},
		Stages: []*Stage{
			{
				Name:   "staging",
				Deploy: &Target{App: "orders", Slot: "staging"},
				Checks: []Check{{
					Probe:    Probe{App: "orders", Slot: "staging", Path: "/api/health", Expect: []int{200}, Key: KeyNone},
					Retries:  3,
					Interval: 2 * time.Second,
					Timeout:  10 * time.Second,
				}},
				Queue: QueueSequential,
			},
			{
				Name:     "production",
				After:    []string{"staging"},
				Approval: &Approval{Approvers: []string{"qa-lead"}, Required: 1, Timeout: 72 * time.Hour},
				Gates: []Gate{
					{
						HTTP:       &Probe{App: "orders", Slot: "staging", Path: "/api/health", Expect: []int{200}, Key: KeyNone},
						Every:      30 * time.Second,
						MinSuccess: time.Minute,
						Timeout:    30 * time.Minute,
					},
					{
						Metric:  &Metric{App: "orders", Slot: "staging", MaxErrorRate: 0.01, MaxP95: 500 * time.Millisecond, Window: 5 * time.Minute},
						Every:   30 * time.Second,
						Timeout: 30 * time.Minute,
					},
				},
				Swap:  &Swap{App: "orders", Slot: "staging", Target: "production"},
				Queue: QueueSequential,
			},
		},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Parse mismatch (-got +want):\n%s", diff)
	}
}

// TestParseDefaults covers every optional field left out, and the rest given.
func TestParseDefaults(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want *Pipeline
	}{
		{
			name: "minimal",
			yaml: `
name: p
artifact: {feed: f}
stages:
  - name: s
    swap: {app: orders, slot: staging}
`,
			want: &Pipeline{Name: "p", Feed: "f", Stages: []*Stage{
				{Name: "s", Swap: &Swap{App: "orders", Slot: "staging", Target: "production"}, Queue: QueueSequential},
			}},
		},
		{
			name: "everything",
			yaml: `
name: p
description: ships orders
artifact: {feed: f}
trigger: {continuous: true, branches: [main, "release/*", "!release/old"]}
notify: {webhook: "https://hooks.example.com/x?y=1", events: [stage]}
stages:
  - name: test
    trigger: manual
    queue: latest
    deploy: {app: orders, slot: staging}
    swap: {app: orders, slot: staging, target: production, preview: true}
    checks:
      - http: {path: "/api/a?b=c", expect: [200, 204], key: function}
        retries: 0
        interval: 0s
        timeout: 1s
      - http: {app: payments, path: /x}
      - http: {slot: production, path: /y}
  - name: prod
    after: []
    approval: {approvers: [qa-lead, ops], required: 2, requesterCanApprove: true, timeout: 1h}
    gates:
      - metric: {app: payments, slot: canary, maxP95: 1s, window: 10m, minRequests: 100}
        delay: 5m
        every: 100ms
    swap: {app: payments, slot: canary}
  - name: last
    after: [test, prod]
    swap: {app: orders, slot: production, target: staging}
    checks:
      - http: {path: /}
`,
			want: &Pipeline{
				Name: "p", Description: "ships orders", Feed: "f", Continuous: true,
				Branches: []string{"main", "release/*", "!release/old"},
				Webhook:  "https://hooks.example.com/x?y=1", NotifyEvents: []string{EventStage},
				Stages: []*Stage{
					{
						Name: "test", Manual: true, Queue: QueueLatest,
						Deploy: &Target{App: "orders", Slot: "staging"},
						Swap:   &Swap{App: "orders", Slot: "staging", Target: "production", Preview: true},
						Checks: []Check{
							{Probe: Probe{App: "orders", Slot: "staging", Path: "/api/a?b=c", Expect: []int{200, 204}, Key: KeyFunction}, Timeout: time.Second},
							{Probe: Probe{App: "payments", Slot: "production", Path: "/x", Expect: []int{200}, Key: KeyNone}, Retries: 3, Interval: 2 * time.Second, Timeout: 10 * time.Second},
							{Probe: Probe{App: "orders", Slot: "production", Path: "/y", Expect: []int{200}, Key: KeyNone}, Retries: 3, Interval: 2 * time.Second, Timeout: 10 * time.Second},
						},
					},
					{
						Name: "prod", Queue: QueueSequential,
						Approval: &Approval{Approvers: []string{"qa-lead", "ops"}, Required: 2, RequesterCanApprove: true, Timeout: time.Hour},
						Gates: []Gate{{
							Metric: &Metric{App: "payments", Slot: "canary", MaxErrorRate: 1, MaxP95: time.Second, Window: 10 * time.Minute, MinRequests: 100},
							Delay:  5 * time.Minute, Every: 100 * time.Millisecond, Timeout: 30 * time.Minute,
						}},
						Swap: &Swap{App: "payments", Slot: "canary", Target: "production"},
					},
					{
						Name: "last", After: []string{"test", "prod"}, Queue: QueueSequential,
						Swap: &Swap{App: "orders", Slot: "production", Target: "staging"},
						Checks: []Check{
							{Probe: Probe{App: "orders", Slot: "staging", Path: "/", Expect: []int{200}, Key: KeyNone}, Retries: 3, Interval: 2 * time.Second, Timeout: 10 * time.Second},
						},
					},
				},
			},
		},
		{
			name: "default after is the previous stage",
			yaml: `
name: p
artifact: {feed: f}
notify: {webhook: "http://localhost:8080/hook"}
stages:
  - {name: a, deploy: {app: orders, slot: staging}}
  - {name: b, deploy: {app: orders, slot: staging}}
  - {name: c, after: [a], deploy: {app: orders, slot: staging}}
  - {name: d, deploy: {app: orders, slot: staging}}
`,
			want: &Pipeline{
				Name: "p", Feed: "f",
				Webhook: "http://localhost:8080/hook", NotifyEvents: []string{EventRelease, EventStage},
				Stages: []*Stage{
					{Name: "a", Deploy: &Target{"orders", "staging"}, Queue: QueueSequential},
					{Name: "b", After: []string{"a"}, Deploy: &Target{"orders", "staging"}, Queue: QueueSequential},
					{Name: "c", After: []string{"a"}, Deploy: &Target{"orders", "staging"}, Queue: QueueSequential},
					{Name: "d", After: []string{"c"}, Deploy: &Target{"orders", "staging"}, Queue: QueueSequential},
				},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.yaml), testPlatform)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Parse mismatch (-got +want):\n%s", diff)
			}
		})
	}
}

// valid is a definition the bad inputs below start from, with its stages
// last so a case can append a stage.
const valid = `name: p
artifact: {feed: f}
stages:
  - name: s
    deploy: {app: orders, slot: staging}
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // the lines of the error
	}{
		{
			name: "syntax",
			yaml: "name: p\nstages: [\n",
			want: []string{"line 2: invalid YAML: did not find expected node content"},
		},
		{
			name: "indentation",
			yaml: "name: p\n artifact: {feed: f}\n",
			want: []string{"line 2: invalid YAML: mapping values are not allowed in this context"},
		},
		{
			name: "empty",
			yaml: "# nothing\n",
			want: []string{"definition is empty"},
		},
		{
			name: "not a mapping",
			yaml: "- name: p\n",
			want: []string{"line 1, column 1: want a mapping, got a list"},
		},
		{
			name: "unknown field",
			yaml: valid + "    checks:\n      - http: {path: /}\n        retry: 3\n",
			want: []string{`line 8, column 9: stages[0].checks[0]: unknown field "retry"`},
		},
		{
			name: "unknown field in flow mapping",
			yaml: "name: p\nartifact: {feed: f}\nstages:\n  - name: s\n    deploy:\n      app: orders\n      slott: staging\n",
			want: []string{
				`line 6, column 7: stages[0].deploy: missing required field "slot"`,
				`line 7, column 7: stages[0].deploy: unknown field "slott"`,
			},
		},
		{
			name: "duplicate field",
			yaml: "name: p\nname: q\nartifact: {feed: f}\nstages: [{name: s, deploy: {app: orders, slot: staging}}]\n",
			want: []string{`line 2, column 1: duplicate field "name"`},
		},
		{
			name: "wrong types",
			yaml: `name: p
artifact: f
trigger:
  continuous: yes please
stages:
  - name: [s]
    deploy: {app: orders, slot: staging}
    checks: {http: {path: /}}
`,
			want: []string{
				`line 2, column 11: artifact: want a mapping, got "f"`,
				`line 4, column 15: trigger.continuous: want a boolean, got "yes please"`,
				`line 6, column 11: stages[0].name: want a string, got a list`,
				`line 8, column 13: stages[0].checks: want a list, got a mapping`,
			},
		},
		{
			name: "quoted boolean",
			yaml: "name: p\nartifact: {feed: f}\ntrigger: {continuous: \"true\"}\nstages: [{name: s, deploy: {app: orders, slot: staging}}]\n",
			want: []string{`line 3, column 23: trigger.continuous: want a boolean, got "true"`},
		},
		{
			name: "missing fields",
			yaml: "description: no name\n",
			want: []string{
				`line 1, column 1: missing required field "name"`,
				`line 1, column 1: missing required field "artifact"`,
				`line 1, column 1: missing required field "stages"`,
			},
		},
		{
			name: "null",
			yaml: "name:\nartifact: {feed: f}\nstages:\n",
			want: []string{
				`line 1, column 6: name: want a string, got null`,
				`line 3, column 8: stages: want a list, got null`,
			},
		},
		{
			name: "bad names",
			yaml: "name: Orders\nartifact: {feed: 9f}\nstages: [{name: s-, deploy: {app: orders, slot: staging}}]\n",
			want: []string{
				`line 1, column 7: name: pipeline name "Orders": character 'O' is not allowed (use a-z, 0-9 and -)`,
				`line 2, column 18: artifact.feed: feed name "9f" must start with a lowercase letter`,
				`line 3, column 17: stages[0].name: stage name "s-" must not end with a hyphen`,
			},
		},
		{
			name: "long description",
			yaml: "description: " + strings.Repeat("é", 1001) + "\n" + valid,
			want: []string{`line 1, column 14: description: longer than 1000 characters`},
		},
		{
			name: "no stages",
			yaml: "name: p\nartifact: {feed: f}\nstages: []\n",
			want: []string{`line 3, column 9: stages: want at least one stage`},
		},
		{
			name: "too many stages",
			yaml: func() string {
				y := "name: p\nartifact: {feed: f}\nstages:\n"
				for i := range 51 {
					y += fmt.Sprintf("  - {name: s%d, deploy: {app: orders, slot: staging}}\n", i)
				}
				return y
			}(),
			want: []string{`line 4, column 3: stages: at most 50 stages are allowed, got 51`},
		},
		{
			name: "stage without action",
			yaml: "name: p\nartifact: {feed: f}\nstages:\n  - name: s\n    checks: [{http: {path: /}}]\n",
			want: []string{`line 4, column 5: stages[0]: want an action: deploy, swap or both`},
		},
		{
			name: "unknown app, slot and user",
			yaml: valid + `  - name: t
    deploy: {app: billing, slot: staging}
    swap: {app: orders, slot: staging, target: prod}
    approval: {approvers: [qa-lead, mallory]}
    gates:
      - http: {app: payments, slot: staging, path: /}
    checks:
      - http: {slot: canary, path: /}
`,
			want: []string{
				`line 7, column 34: stages[1].deploy.slot: app "billing" not found`,
				`line 8, column 48: stages[1].swap.target: app "orders" has no slot "prod"`,
				`line 9, column 37: stages[1].approval.approvers[1]: user "mallory" not found`,
				`line 11, column 37: stages[1].gates[0].http.slot: app "payments" has no slot "staging"`,
				`line 13, column 22: stages[1].checks[0].http.slot: app "billing" not found`,
			},
		},
		{
			name: "after cycle",
			yaml: `name: p
artifact: {feed: f}
stages:
  - {name: a, after: [c], deploy: {app: orders, slot: staging}}
  - {name: b, deploy: {app: orders, slot: staging}}
  - {name: c, after: [b], deploy: {app: orders, slot: staging}}
  - {name: d, after: [d], deploy: {app: orders, slot: staging}}
`,
			want: []string{
				`line 4, column 22: stages[0].after: cycle: a -> c -> b -> a`,
				`line 7, column 23: stages[3].after[0]: a stage cannot run after itself`,
			},
		},
		{
			name: "after unknown and duplicate",
			yaml: valid + "  - {name: t, after: [s, x, s], deploy: {app: orders, slot: staging}}\n",
			want: []string{
				`line 6, column 26: stages[1].after[1]: no stage is called "x"`,
				`line 6, column 29: stages[1].after[2]: duplicate stage "s"`,
			},
		},
		{
			name: "duplicate stage",
			yaml: valid + "  - name: s\n    deploy: {app: orders, slot: staging}\n",
			want: []string{`line 6, column 11: stages[1].name: stage "s" is already defined at line 4`},
		},
		{
			name: "bad durations",
			yaml: valid + `    checks:
      - http: {path: /}
        interval: -1s
        timeout: 0s
    approval: {approvers: [ops], timeout: 3 days}
    gates:
      - metric: {app: orders, slot: staging, maxP95: 0s, window: 11m}
        delay: 30
        every: 10ms
        minSuccess: 30m
`,
			want: []string{
				`line 8, column 19: stages[0].checks[0].interval: must not be negative`,
				`line 9, column 18: stages[0].checks[0].timeout: must be positive`,
				`line 10, column 43: stages[0].approval.timeout: "3 days" is not a duration`,
				`line 12, column 54: stages[0].gates[0].metric.maxP95: must be positive`,
				`line 12, column 66: stages[0].gates[0].metric.window: must be at most 10m0s`,
				`line 13, column 16: stages[0].gates[0].delay: "30" is not a duration`,
				`line 14, column 16: stages[0].gates[0].every: must be at least 100ms`,
				`line 15, column 21: stages[0].gates[0].minSuccess: 30m0s is not shorter than the timeout (30m0s)`,
			},
		},
		{
			name: "bad numbers",
			yaml: valid + `    checks:
      - http: {path: /, expect: [99, "200", 200.0]}
        retries: -1
    gates:
      - metric: {app: orders, slot: staging, maxErrorRate: 1.5, minRequests: -2}
      - metric: {app: orders, slot: staging, maxErrorRate: .nan}
      - metric: {app: orders, slot: staging, window: 1m}
`,
			want: []string{
				`line 7, column 34: stages[0].checks[0].http.expect[0]: want an HTTP status from 100 to 599, got 99`,
				`line 7, column 38: stages[0].checks[0].http.expect[1]: want an integer, got "200"`,
				`line 7, column 45: stages[0].checks[0].http.expect[2]: want an integer, got "200.0"`,
				`line 8, column 18: stages[0].checks[0].retries: want 0 to 100, got -1`,
				`line 10, column 60: stages[0].gates[0].metric.maxErrorRate: want 0 to 1, got 1.5`,
				`line 10, column 78: stages[0].gates[0].metric.minRequests: must not be negative`,
				`line 11, column 60: stages[0].gates[1].metric.maxErrorRate: want a number, got ".nan"`,
				`line 12, column 17: stages[0].gates[2].metric: want maxErrorRate, maxP95 or both`,
			},
		},
		{
			name: "required more than approvers",
			yaml: valid + "    approval: {approvers: [qa-lead, ops], required: 3}\n",
			want: []string{`line 6, column 53: stages[0].approval.required: 3 approvals required but only 2 approvers`},
		},
		{
			name: "approvers",
			yaml: valid + "    approval: {approvers: [], required: 0}\n  - name: t\n    swap: {app: orders, slot: staging}\n    approval: {approvers: [ops, ops, \"\"]}\n",
			want: []string{
				`line 6, column 27: stages[0].approval.approvers: want at least one approver`,
				`line 6, column 41: stages[0].approval.required: want at least 1, got 0`,
				`line 9, column 33: stages[1].approval.approvers[1]: duplicate approver "ops"`,
				`line 9, column 38: stages[1].approval.approvers[2]: want a user name, got ""`,
			},
		},
		{
			name: "gate with http and metric",
			yaml: valid + `    gates:
      - http: {app: orders, slot: staging, path: /}
        metric: {app: orders, slot: staging, maxErrorRate: 0}
      - delay: 1m
`,
			want: []string{
				`line 7, column 9: stages[0].gates[0]: want one of http and metric, got both`,
				`line 9, column 9: stages[0].gates[1]: want http or metric`,
			},
		},
		{
			name: "gate probe needs app and slot",
			yaml: valid + "    gates:\n      - http: {path: api}\n",
			want: []string{
				`line 7, column 15: stages[0].gates[0].http: missing required field "app"`,
				`line 7, column 15: stages[0].gates[0].http: missing required field "slot"`,
				`line 7, column 22: stages[0].gates[0].http.path: "api" is not a path: want "/" then a URL path and query`,
			},
		},
		{
			name: "probe paths and keys",
			yaml: valid + "    checks:\n      - http: {path: //evil.example/x}\n      - http: {path: \"/a b\"}\n      - http: {path: /, key: admin, expect: []}\n",
			want: []string{
				`line 7, column 22: stages[0].checks[0].http.path: "//evil.example/x" is not a path: want "/" then a URL path and query`,
				`line 8, column 22: stages[0].checks[1].http.path: "/a b" is not a path: want "/" then a URL path and query`,
				`line 9, column 30: stages[0].checks[2].http.key: want one of none, function, host, master, got "admin"`,
				`line 9, column 45: stages[0].checks[2].http.expect: want at least one status`,
			},
		},
		{
			name: "too many checks",
			yaml: valid + "    checks: [" + strings.Repeat("{http: {path: /}}, ", 20) + "{http: {path: /}}]\n",
			want: []string{`line 6, column 13: stages[0].checks: at most 20 checks are allowed, got 21`},
		},
		{
			name: "swap into itself",
			yaml: valid + "    swap: {app: orders, slot: production}\n  - {name: t, swap: {app: orders, slot: staging, target: staging}}\n",
			want: []string{
				`line 6, column 31: stages[0].swap.slot: cannot swap slot "production" into itself`,
				`line 7, column 58: stages[1].swap.target: cannot swap slot "staging" into itself`,
			},
		},
		{
			name: "stage trigger and queue",
			yaml: valid + "    trigger: later\n    queue: newest\n",
			want: []string{
				`line 6, column 14: stages[0].trigger: want one of auto, manual, got "later"`,
				`line 7, column 12: stages[0].queue: want one of sequential, latest, got "newest"`,
			},
		},
		{
			name: "branch filters without continuous",
			yaml: "trigger: {branches: [main]}\n" + valid,
			want: []string{`line 1, column 21: trigger.branches: branch filters need continuous: true`},
		},
		{
			name: "bad branch filters",
			yaml: "trigger: {continuous: true, branches: [\"!\", \"release/[\", \"\"]}\n" + valid,
			want: []string{
				`line 1, column 40: trigger.branches[0]: "!" is not a branch name or pattern`,
				`line 1, column 45: trigger.branches[1]: "release/[" is not a branch name or pattern`,
				`line 1, column 58: trigger.branches[2]: "" is not a branch name or pattern`,
			},
		},
		{
			name: "unquoted exclusion is a tag",
			yaml: "trigger:\n  continuous: true\n  branches:\n    - !old\n" + valid,
			want: []string{`line 4, column 7: YAML tag "!old" is not supported (quote a value that starts with "!")`},
		},
		{
			name: "bad webhook",
			yaml: "notify: {webhook: \"ftp://example.com/x\", events: [release, release, deploy]}\n" + valid,
			want: []string{
				`line 1, column 19: notify.webhook: "ftp://example.com/x" is not an absolute http or https URL`,
				`line 1, column 60: notify.events[1]: duplicate event "release"`,
				`line 1, column 69: notify.events[2]: want one of release, stage, got "deploy"`,
			},
		},
		{
			name: "relative webhook",
			yaml: "notify: {webhook: /hook}\n" + valid,
			want: []string{`line 1, column 19: notify.webhook: "/hook" is not an absolute http or https URL`},
		},
		{
			name: "alias",
			yaml: "name: &n p\nartifact: {feed: *n}\nstages:\n  - name: s\n    deploy: {app: orders, slot: staging}\n",
			want: []string{
				`line 1, column 7: YAML anchors are not allowed`,
				`line 2, column 18: YAML aliases are not allowed`,
			},
		},
		{
			name: "merge key",
			yaml: "x: &x {feed: f}\nname: p\nartifact: {<<: *x}\nstages:\n  - name: s\n    deploy: {app: orders, slot: staging}\n",
			want: []string{
				`line 1, column 1: unknown field "x"`,
				`line 1, column 4: YAML anchors are not allowed`,
				`line 3, column 11: artifact: missing required field "feed"`,
				`line 3, column 12: artifact: unknown field "<<"`,
				`line 3, column 16: YAML aliases are not allowed`,
			},
		},
		{
			name: "multiple documents",
			yaml: valid + "---\n" + valid,
			want: []string{`line 6, column 1: multiple YAML documents are not allowed`},
		},
		{
			name: "too large",
			yaml: valid + "description: " + strings.Repeat("x", MaxSize) + "\n",
			want: []string{"definition is larger than 256 KiB"},
		},
		{
			name: "long values are cut short",
			yaml: "name: " + strings.Repeat("a", 100) + "\n" + valid[len("name: p\n"):],
			want: []string{`line 1, column 7: name: pipeline name "` + strings.Repeat("a", 60) + `"... is longer than 63 characters`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.yaml), testPlatform)
			if p != nil {
				t.Errorf("Parse returned a pipeline along with %v", err)
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("Parse error = %v, want an *Error", err)
			}
			got := strings.Split(err.Error(), "\n")
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Parse error mismatch (-got +want):\n%s", diff)
			}
			if got, want := len(perr.Problems), len(tc.want); got != want {
				t.Errorf("len(Problems) = %d, want %d", got, want)
			}
			if got, want := hotswap.ErrorKind(err), hotswap.Invalid; got != want {
				t.Errorf("ErrorKind = %v, want %v", got, want)
			}
			if got, want := hotswap.ErrorMessage(err), err.Error(); got != want {
				t.Errorf("ErrorMessage = %q, want %q", got, want)
			}
		})
	}
}

func TestParseNilResolver(t *testing.T) {
	data := []byte(strings.ReplaceAll(string(readFile(t, "testdata/orders-release.yaml")), "orders,", "elsewhere,"))
	if _, err := Parse(data, nil); err != nil {
		t.Errorf("Parse with a nil Resolver = %v, want no error", err)
	}
	if _, err := Parse(data, testPlatform); err == nil {
		t.Error("Parse with a Resolver that does not know the app = nil error, want one")
	}
}

// broken is a Resolver whose store is down.
type broken struct{}

var errDown = errors.New("database is locked")

func (broken) Slot(app, slot string) error { return errDown }
func (broken) User(name string) error      { return errDown }

func TestParseResolverFails(t *testing.T) {
	_, err := Parse(readFile(t, "testdata/orders-release.yaml"), broken{})
	if !errors.Is(err, errDown) {
		t.Fatalf("Parse error = %v, want %v", err, errDown)
	}
	var perr *Error
	if errors.As(err, &perr) {
		t.Errorf("Parse error is an *Error: %v", err)
	}
	if got, want := hotswap.ErrorKind(err), hotswap.Internal; got != want {
		t.Errorf("ErrorKind = %v, want %v", got, want)
	}
}

func TestErrorText(t *testing.T) {
	var ps []Problem
	for i := range maxErrorLines + 2 {
		ps = append(ps, Problem{Line: i + 1, Column: 3, Path: "name", Msg: "bad"})
	}
	lines := strings.Split((&Error{Problems: ps}).Error(), "\n")
	if got, want := len(lines), maxErrorLines+1; got != want {
		t.Errorf("lines = %d, want %d", got, want)
	}
	if got, want := lines[len(lines)-1], "(2 more problems)"; got != want {
		t.Errorf("last line = %q, want %q", got, want)
	}
	if got, want := lines[0], "line 1, column 3: name: bad"; got != want {
		t.Errorf("first line = %q, want %q", got, want)
	}
}
