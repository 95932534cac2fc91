package funcapp

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hotswap/hotswap"
)

// Trigger kinds hotswap runs. Other triggers are reported as is.
const (
	TriggerHTTP  = "http"
	TriggerTimer = "timer"
	TriggerQueue = "queue" // queueTrigger; see internal/trigger
	TriggerBlob  = "blob"  // blobTrigger; see internal/trigger
)

// Authorization levels of HTTP functions.
const (
	AuthAnonymous = "anonymous"
	AuthFunction  = "function"
	AuthAdmin     = "admin"
)

// ReturnName is the binding name that makes an output the function's return value.
const ReturnName = "$return"

// Binding is one entry of function.json "bindings", as written. JSON keys
// match case-insensitively, as on Azure.
type Binding struct {
	Type      string   `json:"type"`
	Direction string   `json:"direction"`
	Name      string   `json:"name"`
	AuthLevel string   `json:"authLevel,omitempty"`
	Methods   []string `json:"methods,omitempty"`
	Route     string   `json:"route,omitempty"`
	Schedule  string   `json:"schedule,omitempty"`
	// Timer triggers: run once whenever the host starts the function, and
	// whether the schedule is monitored (missed runs made up); see Function.
	RunOnStartup bool  `json:"runOnStartup,omitempty"`
	UseMonitor   *bool `json:"useMonitor,omitempty"`
}

// Function is a validated function.json.
type Function struct {
	Name        string
	Runnable    bool      // false when a trigger or binding is not supported; see Reason
	Reason      string    // why the function is not runnable, e.g. `binding "item" (type queueTrigger) is not supported`
	Trigger     string    // "http", "timer", or the raw trigger type
	TriggerName string    // name of the trigger binding, e.g. "req"
	AuthLevel   string    // "anonymous", "function" (default) or "admin"; HTTP functions only
	Methods     []string  // upper-case; nil means all methods
	Route       string    // route template as written; defaults to the function name
	OutputName  string    // name of the http output binding ("res" or "$return"); "" when none
	Forward     bool      // eligible for forwarding mode: one httpTrigger, one http output, nothing else
	Outputs     []Output  // queue and blob output bindings, written after a successful invocation
	Inputs      []Input   // blob input bindings, read before the invocation
	Schedule    *Schedule // timer functions
	// RunOnStartup runs a timer function once each time its deployment
	// starts in a slot (function.json runOnStartup).
	RunOnStartup bool
	// UseMonitor persists a timer's schedule status so an occurrence missed
	// while the host was down runs once when it is back, with IsPastDue
	// set. As on Azure it defaults to true for schedules that recur at one
	// minute or more, false for faster ones.
	UseMonitor bool
	Bindings   []Binding
	// RawBindings are the bindings exactly as function.json has them, every
	// property included (queueName, connection, path and any unknown one),
	// in the order of Bindings; the host admin API returns them.
	RawBindings []json.RawMessage
}

type functionJSON struct {
	Bindings []Binding `json:"bindings"`
}

type rawFunctionJSON struct {
	Bindings []json.RawMessage `json:"bindings"`
}

var httpMethods = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT"}

// ValidateFunctionName checks a function name: 1 to 128 letters, digits,
// '_' and '-'.
func ValidateFunctionName(name string) error {
	if name == "" {
		return hotswap.Errorf(hotswap.Invalid, "function name is empty")
	}
	if len(name) > 128 {
		return hotswap.Errorf(hotswap.Invalid, "function name %.20q... is longer than 128 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return hotswap.Errorf(hotswap.Invalid, "function name %q: character %q is not allowed (use letters, digits, _ and -)", name, c)
		}
	}
	return nil
}

func validBindingName(n string) bool {
	if n == ReturnName {
		return true
	}
	if n == "" || len(n) > 128 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '_')) {
			return false
		}
	}
	return true
}

// ParseFunction parses and validates the function.json of the function name.
// Errors start with "<name>/function.json: ". Unsupported triggers and
// bindings are not errors: the function is returned with Runnable false and
// a Reason.
func ParseFunction(name string, data []byte) (*Function, error) {
	file := name + "/function.json"
	if err := ValidateFunctionName(name); err != nil {
		return nil, hotswap.Errorf(hotswap.Invalid, "%s: %s", file, hotswap.ErrorMessage(err))
	}
	var j functionJSON
	if err := unmarshal(file, data, &j); err != nil {
		return nil, err
	}
	var raw rawFunctionJSON
	if err := unmarshal(file, data, &raw); err != nil {
		return nil, err
	}
	fail := func(format string, args ...any) error {
		return hotswap.Errorf(hotswap.Invalid, "%s: %s", file, fmt.Sprintf(format, args...))
	}
	f := &Function{Name: name, Runnable: true, Bindings: j.Bindings, RawBindings: raw.Bindings}
	trigger := -1
	names := map[string]int{}
	for i := range j.Bindings {
		b := &j.Bindings[i]
		if b.Type == "" {
			return nil, fail("bindings[%d]: type is missing", i)
		}
		if b.Name == "" {
			return nil, fail("bindings[%d] (type %s): name is missing", i, b.Type)
		}
		if !validBindingName(b.Name) {
			return nil, fail("bindings[%d]: name %q is not valid (a letter followed by letters, digits and _, or $return)", i, b.Name)
		}
		if k, dup := names[strings.ToLower(b.Name)]; dup {
			return nil, fail("bindings[%d] and bindings[%d] have the same name %q", k, i, b.Name)
		}
		names[strings.ToLower(b.Name)] = i
		switch strings.ToLower(b.Direction) {
		case "", "in", "out", "inout":
		default:
			return nil, fail("binding %q: direction %q is not one of in, out, inout", b.Name, b.Direction)
		}
		if !strings.HasSuffix(strings.ToLower(b.Type), "trigger") {
			continue
		}
		if trigger >= 0 {
			return nil, fail("more than one trigger binding (%q and %q)", j.Bindings[trigger].Name, b.Name)
		}
		if b.Direction != "" && !strings.EqualFold(b.Direction, "in") {
			return nil, fail("trigger binding %q: direction must be in, not %q", b.Name, b.Direction)
		}
		trigger = i
	}
	if trigger < 0 {
		return nil, fail("no trigger binding (a binding whose type ends in Trigger, such as httpTrigger or timerTrigger)")
	}
	unsupported := func(b *Binding, why string) {
		if f.Runnable {
			f.Runnable = false
			f.Reason = fmt.Sprintf("binding %q (type %s) is not supported%s", b.Name, b.Type, why)
		}
	}
	tb := &j.Bindings[trigger]
	f.TriggerName = tb.Name
	switch {
	case strings.EqualFold(tb.Type, "httpTrigger"):
		f.Trigger = TriggerHTTP
		f.AuthLevel = AuthFunction
		if tb.AuthLevel != "" {
			switch l := strings.ToLower(tb.AuthLevel); l {
			case AuthAnonymous, AuthFunction, AuthAdmin:
				f.AuthLevel = l
			default:
				return nil, fail("binding %q: authLevel %q is not one of anonymous, function, admin", tb.Name, tb.AuthLevel)
			}
		}
		for _, m := range tb.Methods {
			u := strings.ToUpper(strings.TrimSpace(m))
			if !contains(httpMethods, u) {
				return nil, fail("binding %q: method %q is not supported (use %s)", tb.Name, m, strings.Join(httpMethods, ", "))
			}
			if !contains(f.Methods, u) {
				f.Methods = append(f.Methods, u)
			}
		}
		f.Route = tb.Route
		if f.Route == "" {
			f.Route = name
		}
		if _, err := ParseRoute(f.Route); err != nil {
			return nil, fail("binding %q: %s", tb.Name, hotswap.ErrorMessage(err))
		}
	case strings.EqualFold(tb.Type, "timerTrigger"):
		f.Trigger = TriggerTimer
		switch {
		case tb.Schedule == "":
			return nil, fail("binding %q: schedule is missing", tb.Name)
		case strings.HasPrefix(tb.Schedule, "%") && strings.HasSuffix(tb.Schedule, "%") && len(tb.Schedule) > 2:
			unsupported(tb, ": a schedule read from an app setting ("+tb.Schedule+")")
		default:
			s, err := ParseSchedule(tb.Schedule)
			if err != nil {
				return nil, fail("binding %q: %s", tb.Name, hotswap.ErrorMessage(err))
			}
			f.Schedule = s
			f.RunOnStartup = tb.RunOnStartup
			f.UseMonitor = !s.SubMinute()
			if tb.UseMonitor != nil {
				f.UseMonitor = *tb.UseMonitor
			}
		}
	case strings.EqualFold(tb.Type, "queueTrigger"):
		f.Trigger = TriggerQueue
		var q struct {
			QueueName string `json:"queueName"`
		}
		_ = json.Unmarshal(raw.Bindings[trigger], &q)
		if strings.TrimSpace(q.QueueName) == "" {
			return nil, fail("binding %q: queueName is missing", tb.Name)
		}
	case strings.EqualFold(tb.Type, "blobTrigger"):
		f.Trigger = TriggerBlob
		var b struct {
			Path string `json:"path"`
		}
		_ = json.Unmarshal(raw.Bindings[trigger], &b)
		if strings.TrimSpace(b.Path) == "" {
			return nil, fail("binding %q: path is missing", tb.Name)
		}
	default:
		f.Trigger = tb.Type
		unsupported(tb, "")
	}
	for i := range j.Bindings {
		b := &j.Bindings[i]
		if i == trigger {
			continue
		}
		if in, ok, why := storageInput(b, raw.Bindings[i]); ok {
			if why != "" && f.Runnable {
				f.Runnable, f.Reason = false, why
			}
			f.Inputs = append(f.Inputs, in)
			continue
		}
		if o, ok, why := storageOutput(b, raw.Bindings[i]); ok {
			if why != "" && f.Runnable {
				f.Runnable, f.Reason = false, why
			}
			f.Outputs = append(f.Outputs, o)
			continue
		}
		if !strings.EqualFold(b.Type, "http") || strings.EqualFold(b.Direction, "in") {
			unsupported(b, "")
			continue
		}
		if f.Trigger != TriggerHTTP {
			unsupported(b, " without an httpTrigger")
			continue
		}
		if f.OutputName != "" {
			return nil, fail("more than one http output binding (%q and %q)", f.OutputName, b.Name)
		}
		f.OutputName = b.Name
	}
	f.Forward = f.Runnable && f.Trigger == TriggerHTTP && f.OutputName != "" && len(j.Bindings) == 2
	return f, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
