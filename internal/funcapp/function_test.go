package funcapp

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func ptr[T any](v T) *T { return &v }

// mustSchedule parses a schedule or fails the test.
func mustSchedule(t testing.TB, s string) *Schedule {
	t.Helper()
	sc, err := ParseSchedule(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

var scheduleComparer = cmp.Comparer(func(a, b *Schedule) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
})

func TestParseFunction(t *testing.T) {
	httpIn := Binding{Type: "httpTrigger", Direction: "in", Name: "req"}
	httpOut := Binding{Type: "http", Direction: "out", Name: "res"}
	tests := []struct {
		name string
		fn   string
		json string
		want *Function
	}{
		{
			name: "http defaults",
			fn:   "Hello",
			json: `{"bindings": [{"type": "httpTrigger", "direction": "in", "name": "req"}, {"type": "http", "direction": "out", "name": "res"}]}`,
			want: &Function{Name: "Hello", Runnable: true, Trigger: "http", TriggerName: "req", AuthLevel: "function",
				Route: "Hello", OutputName: "res", Forward: true, Bindings: []Binding{httpIn, httpOut}},
		},
		{
			name: "http full, keys case-insensitive",
			fn:   "get-item_2",
			json: `{"scriptFile": "x", "bindings": [{"Type": "HttpTrigger", "Direction": "In", "Name": "req", "AuthLevel": "Anonymous",
				"Methods": ["get", "Post", "GET"], "Route": "items/{id:int}"}, {"type": "http", "direction": "out", "name": "$return"}]}`,
			want: &Function{Name: "get-item_2", Runnable: true, Trigger: "http", TriggerName: "req", AuthLevel: "anonymous",
				Methods: []string{"GET", "POST"}, Route: "items/{id:int}", OutputName: "$return", Forward: true,
				Bindings: []Binding{{Type: "HttpTrigger", Direction: "In", Name: "req", AuthLevel: "Anonymous", Methods: []string{"get", "Post", "GET"}, Route: "items/{id:int}"},
					{Type: "http", Direction: "out", Name: "$return"}}},
		},
		{
			name: "http without output is not forwarded",
			fn:   "Fire",
			json: `{"bindings": [{"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "admin", "methods": []}]}`,
			want: &Function{Name: "Fire", Runnable: true, Trigger: "http", TriggerName: "req", AuthLevel: "admin", Route: "Fire",
				Bindings: []Binding{{Type: "httpTrigger", Direction: "in", Name: "req", AuthLevel: "admin", Methods: []string{}}}},
		},
		{
			name: "timer",
			fn:   "Tick",
			json: `{"bindings": [{"type": "timerTrigger", "direction": "in", "name": "myTimer", "schedule": "0 */5 * * * *"}]}`,
			want: &Function{Name: "Tick", Runnable: true, Trigger: "timer", TriggerName: "myTimer", Schedule: mustSchedule(t, "0 */5 * * * *"), UseMonitor: true,
				Bindings: []Binding{{Type: "timerTrigger", Direction: "in", Name: "myTimer", Schedule: "0 */5 * * * *"}}},
		},
		{
			name: "sub-minute timer: not monitored by default",
			fn:   "Tick",
			json: `{"bindings": [{"type": "timerTrigger", "name": "t", "schedule": "*/10 * * * * *"}]}`,
			want: &Function{Name: "Tick", Runnable: true, Trigger: "timer", TriggerName: "t", Schedule: mustSchedule(t, "*/10 * * * * *"),
				Bindings: []Binding{{Type: "timerTrigger", Name: "t", Schedule: "*/10 * * * * *"}}},
		},
		{
			name: "timer: useMonitor and runOnStartup as written",
			fn:   "Tick",
			json: `{"bindings": [{"type": "timerTrigger", "name": "t", "schedule": "*/10 * * * * *", "useMonitor": true, "RunOnStartup": true}]}`,
			want: &Function{Name: "Tick", Runnable: true, Trigger: "timer", TriggerName: "t", Schedule: mustSchedule(t, "*/10 * * * * *"), UseMonitor: true, RunOnStartup: true,
				Bindings: []Binding{{Type: "timerTrigger", Name: "t", Schedule: "*/10 * * * * *", UseMonitor: ptr(true), RunOnStartup: true}}},
		},
		{
			name: "timer: monitor turned off",
			fn:   "Tick",
			json: `{"bindings": [{"type": "timerTrigger", "name": "t", "schedule": "0 0 3 * * *", "useMonitor": false}]}`,
			want: &Function{Name: "Tick", Runnable: true, Trigger: "timer", TriggerName: "t", Schedule: mustSchedule(t, "0 0 3 * * *"),
				Bindings: []Binding{{Type: "timerTrigger", Name: "t", Schedule: "0 0 3 * * *", UseMonitor: ptr(false)}}},
		},
		{
			name: "timer schedule from a setting",
			fn:   "Tick",
			json: `{"bindings": [{"type": "timerTrigger", "direction": "in", "name": "t", "schedule": "%TICK%"}]}`,
			want: &Function{Name: "Tick", Trigger: "timer", TriggerName: "t",
				Reason:   `binding "t" (type timerTrigger) is not supported: a schedule read from an app setting (%TICK%)`,
				Bindings: []Binding{{Type: "timerTrigger", Direction: "in", Name: "t", Schedule: "%TICK%"}}},
		},
		{
			name: "unsupported trigger",
			fn:   "Worker",
			json: `{"bindings": [{"type": "eventHubTrigger", "direction": "in", "name": "item", "eventHubName": "q"}]}`,
			want: &Function{Name: "Worker", Trigger: "eventHubTrigger", TriggerName: "item",
				Reason:   `binding "item" (type eventHubTrigger) is not supported`,
				Bindings: []Binding{{Type: "eventHubTrigger", Direction: "in", Name: "item"}}},
		},
		{
			name: "blob trigger",
			fn:   "Thumb",
			json: `{"bindings": [{"type": "blobTrigger", "direction": "in", "name": "img", "path": "uploads/{name}"}]}`,
			want: &Function{Name: "Thumb", Trigger: "blob", TriggerName: "img", Runnable: true,
				Bindings: []Binding{{Type: "blobTrigger", Direction: "in", Name: "img"}}},
		},
		{
			name: "blob input on a queue trigger",
			fn:   "Lookup",
			json: `{"bindings": [{"type": "queueTrigger", "name": "msg", "queueName": "q"}, {"type": "blob", "direction": "in", "name": "doc", "path": "docs/{queueTrigger}", "connection": "S"}]}`,
			want: &Function{Name: "Lookup", Trigger: "queue", TriggerName: "msg", Runnable: true,
				Inputs:   []Input{{Name: "doc", Path: "docs/{queueTrigger}", Connection: "S"}},
				Bindings: []Binding{{Type: "queueTrigger", Name: "msg"}, {Type: "blob", Direction: "in", Name: "doc"}}},
		},
		{
			name: "blob input on an http trigger",
			fn:   "Get",
			json: `{"bindings": [{"type": "httpTrigger", "direction": "in", "name": "req"}, {"type": "http", "direction": "out", "name": "res"},
				{"type": "blob", "direction": "in", "name": "doc", "path": "docs/{id}"}]}`,
			want: &Function{Name: "Get", Trigger: "http", TriggerName: "req", AuthLevel: "function", Route: "Get", OutputName: "res", Runnable: true,
				Inputs:   []Input{{Name: "doc", Path: "docs/{id}"}},
				Bindings: []Binding{httpIn, httpOut, {Type: "blob", Direction: "in", Name: "doc"}}},
		},
		{
			name: "queue trigger",
			fn:   "Worker",
			json: `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "item", "queueName": "q"}]}`,
			want: &Function{Name: "Worker", Trigger: "queue", TriggerName: "item", Runnable: true,
				Bindings: []Binding{{Type: "queueTrigger", Direction: "in", Name: "item"}}},
		},
		{
			name: "blob output beside the http output",
			fn:   "Save",
			json: `{"bindings": [{"type": "httpTrigger", "direction": "in", "name": "req"}, {"type": "http", "direction": "out", "name": "res"},
				{"type": "blob", "direction": "out", "name": "doc", "path": "c/{rand-guid}"}]}`,
			want: &Function{Name: "Save", Runnable: true, Trigger: "http", TriggerName: "req", AuthLevel: "function", Route: "Save", OutputName: "res",
				Outputs:  []Output{{Name: "doc", Type: OutputBlob, Path: "c/{rand-guid}"}},
				Bindings: []Binding{httpIn, httpOut, {Type: "blob", Direction: "out", Name: "doc"}}},
		},
		{
			name: "http output on a timer",
			fn:   "Tick",
			json: `{"bindings": [{"type": "timerTrigger", "name": "t", "schedule": "0 0 * * * *"}, {"type": "http", "direction": "out", "name": "res"}]}`,
			want: &Function{Name: "Tick", Trigger: "timer", TriggerName: "t", Schedule: mustSchedule(t, "0 0 * * * *"), UseMonitor: true,
				Reason:   `binding "res" (type http) is not supported without an httpTrigger`,
				Bindings: []Binding{{Type: "timerTrigger", Name: "t", Schedule: "0 0 * * * *"}, httpOut}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFunction(tc.fn, []byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want, scheduleComparer, cmpopts.IgnoreFields(Function{}, "RawBindings")); diff != "" {
				t.Errorf("ParseFunction mismatch (-got +want):\n%s", diff)
			}
		})
	}
}

func TestParseFunctionErrors(t *testing.T) {
	tests := []struct {
		name string
		fn   string
		json string
		want string
	}{
		{"bad json", "F", `{"bindings": [}`, `F/function.json: invalid JSON at line 1, column 15: invalid character '}' looking for beginning of value`},
		{"bindings not an array", "F", `{"bindings": {}}`, `F/function.json: bindings: want an array, got object`},
		{"methods not an array", "F", `{"bindings": [{"type": "httpTrigger", "name": "req", "methods": "get"}]}`, `F/function.json: bindings.methods: want an array, got string`},
		{"no bindings", "F", `{}`, `F/function.json: no trigger binding (a binding whose type ends in Trigger, such as httpTrigger or timerTrigger)`},
		{"no trigger", "F", `{"bindings": [{"type": "http", "direction": "out", "name": "res"}]}`, `F/function.json: no trigger binding (a binding whose type ends in Trigger, such as httpTrigger or timerTrigger)`},
		{"two triggers", "F", `{"bindings": [{"type": "httpTrigger", "name": "req"}, {"type": "timerTrigger", "name": "t", "schedule": "* * * * * *"}]}`, `F/function.json: more than one trigger binding ("req" and "t")`},
		{"no type", "F", `{"bindings": [{"name": "req"}]}`, `F/function.json: bindings[0]: type is missing`},
		{"no name", "F", `{"bindings": [{"type": "httpTrigger"}]}`, `F/function.json: bindings[0] (type httpTrigger): name is missing`},
		{"bad binding name", "F", `{"bindings": [{"type": "httpTrigger", "name": "my req"}]}`, `F/function.json: bindings[0]: name "my req" is not valid (a letter followed by letters, digits and _, or $return)`},
		{"duplicate binding name", "F", `{"bindings": [{"type": "httpTrigger", "name": "req"}, {"type": "http", "direction": "out", "name": "REQ"}]}`, `F/function.json: bindings[0] and bindings[1] have the same name "REQ"`},
		{"bad direction", "F", `{"bindings": [{"type": "httpTrigger", "name": "req", "direction": "up"}]}`, `F/function.json: binding "req": direction "up" is not one of in, out, inout`},
		{"trigger out", "F", `{"bindings": [{"type": "httpTrigger", "name": "req", "direction": "out"}]}`, `F/function.json: trigger binding "req": direction must be in, not "out"`},
		{"bad authLevel", "F", `{"bindings": [{"type": "httpTrigger", "name": "req", "authLevel": "system"}]}`, `F/function.json: binding "req": authLevel "system" is not one of anonymous, function, admin`},
		{"bad method", "F", `{"bindings": [{"type": "httpTrigger", "name": "req", "methods": ["get", "fetch"]}]}`, `F/function.json: binding "req": method "fetch" is not supported (use GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS, TRACE, CONNECT)`},
		{"bad route", "F", `{"bindings": [{"type": "httpTrigger", "name": "req", "route": "a//b"}]}`, `F/function.json: binding "req": route "a//b": empty segment`},
		{"bad route constraint", "F", `{"bindings": [{"type": "httpTrigger", "name": "req", "route": "a/{id:number}"}]}`, `F/function.json: binding "req": route "a/{id:number}": parameter "id": unknown constraint "number"`},
		{"two http outputs", "F", `{"bindings": [{"type": "httpTrigger", "name": "req"}, {"type": "http", "direction": "out", "name": "a"}, {"type": "http", "direction": "out", "name": "b"}]}`, `F/function.json: more than one http output binding ("a" and "b")`},
		{"no schedule", "F", `{"bindings": [{"type": "timerTrigger", "name": "t"}]}`, `F/function.json: binding "t": schedule is missing`},
		{"no blob path", "F", `{"bindings": [{"type": "blobTrigger", "name": "b"}]}`, `F/function.json: binding "b": path is missing`},
		{"no queueName", "F", `{"bindings": [{"type": "queueTrigger", "name": "m"}]}`, `F/function.json: binding "m": queueName is missing`},
		{"bad schedule", "F", `{"bindings": [{"type": "timerTrigger", "name": "t", "schedule": "0 */5 * * *"}]}`, `F/function.json: binding "t": schedule "0 */5 * * *": want 6 fields (second minute hour day month day-of-week), got 5`},
		{"bad function name", "my.func", `{}`, `my.func/function.json: function name "my.func": character '.' is not allowed (use letters, digits, _ and -)`},
		{"long function name", strings.Repeat("a", 129), `{}`, strings.Repeat("a", 129) + `/function.json: function name "aaaaaaaaaaaaaaaaaaaa"... is longer than 128 characters`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFunction(tc.fn, []byte(tc.json))
			checkInvalid(t, err, tc.want)
			if got != nil {
				t.Errorf("function = %+v, want nil", got)
			}
		})
	}
}
