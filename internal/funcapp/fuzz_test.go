package funcapp

import (
	"strings"
	"testing"
	"time"
)

func FuzzParseHost(f *testing.F) {
	f.Add([]byte(`{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "handler", "workingDirectory": "app", "arguments": ["%A%"]}, "enableForwardingHttpRequest": true}, "extensions": {"http": {"routePrefix": "api"}}}`))
	f.Add([]byte(`{"customHandler": {"description": {"defaultExecutablePath": "../x", "workingDirectory": "a/b"}}}`))
	f.Add([]byte(`{"customHandler": {"description": {"defaultExecutablePath": 1}}}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHost(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "host.json: ") {
				t.Fatalf("error %q does not name host.json", err)
			}
			return
		}
		if h.ExecutablePath == "" || strings.HasPrefix(h.WorkingDirectory, "..") || strings.HasPrefix(h.RoutePrefix, "/") || strings.HasSuffix(h.RoutePrefix, "/") {
			t.Fatalf("accepted invalid host %+v", h)
		}
		if len(executableCandidates(h)) == 0 {
			t.Fatalf("accepted executable escaping the root: %+v", h)
		}
		if _, err := NewRouter(h.RoutePrefix, nil); err != nil {
			t.Fatalf("accepted prefix %q that NewRouter rejects: %v", h.RoutePrefix, err)
		}
		ExpandArgs(h.Arguments, func(s string) (string, bool) { return s, len(s)%2 == 0 })
	})
}

func FuzzParseFunction(f *testing.F) {
	f.Add("F", []byte(`{"bindings": [{"type": "httpTrigger", "direction": "in", "name": "req", "methods": ["get"], "route": "a/{id:int?}"}, {"type": "http", "direction": "out", "name": "res"}]}`))
	f.Add("T", []byte(`{"bindings": [{"type": "timerTrigger", "name": "t", "schedule": "0 */5 * * * *"}]}`))
	f.Add("Q", []byte(`{"bindings": [{"type": "queueTrigger", "name": "q"}, {"type": "blob", "direction": "out", "name": "b"}]}`))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		fn, err := ParseFunction(name, data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), name+"/function.json: ") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if fn.Runnable == (fn.Reason != "") {
			t.Fatalf("Runnable %v with Reason %q", fn.Runnable, fn.Reason)
		}
		if fn.Trigger == TriggerHTTP {
			if _, err := NewRouter("api", []*Function{fn}); err != nil {
				t.Fatalf("NewRouter rejects a parsed function: %v", err)
			}
		}
		if fn.Schedule != nil {
			fn.Schedule.Next(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
		}
	})
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{
		"products/{category:alpha}/{id:int?}", "files/{*path}", "{**rest}", "a/{id=5}", "{id:int:min(1)}",
		`{ssn:regex(^\d{{3}}-\d{{2}}$)}`, "{x:range(1,10)}/{y:length(2,3)?}", "/{a}/b", "{g:guid}/{d:datetime}/{n:double}",
	} {
		f.Add(s, "/products/shoes/42")
		f.Add(s, "a/5/%41%2Fb//c/")
	}
	f.Fuzz(func(t *testing.T, template, path string) {
		r, err := ParseRoute(template)
		if err != nil {
			return
		}
		dst := []Param{{"x", "y"}}
		got, ok := r.Match(path, dst)
		if len(got) < 1 || got[0] != (Param{"x", "y"}) || !ok && len(got) != 1 {
			t.Fatalf("Match(%q) = %v, %v: dst not preserved", path, got, ok)
		}
		if ok && len(got)-1 > len(r.Params()) {
			t.Fatalf("Match(%q) = %v: more values than parameters %v", path, got, r.Params())
		}
		rt, err := NewRouter("api", []*Function{httpFunc("F", template)})
		if err != nil {
			t.Fatalf("NewRouter rejects a parsed route: %v", err)
		}
		rt.Match("GET", "/api/"+path, nil)
		rt.Match("GET", path, nil)
	})
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"0 */5 * * * *", "0 0 0 29 Feb Mon", "1-10/3,20 * 9-17 * jan-dec sun-sat", "* * * 31 4,6 *"} {
		f.Add(s, int64(1704067200))
	}
	f.Fuzz(func(t *testing.T, expr string, unix int64) {
		s, err := ParseSchedule(expr)
		if err != nil {
			return
		}
		after := time.Unix(unix%(1<<34), 0).UTC()
		next := s.Next(after)
		if !next.IsZero() && !next.After(after) {
			t.Fatalf("Next(%s) = %s, not after", after, next)
		}
		if !next.IsZero() && s.Next(next.Add(-time.Second)) != next {
			t.Fatalf("Next is not stable around %s", next)
		}
		if _, err := ParseSchedule(s.String()); err != nil {
			t.Fatalf("String() %q does not parse: %v", s.String(), err)
		}
	})
}
