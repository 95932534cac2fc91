package router

import (
	"strings"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/binding"
	"github.com/hotswap/hotswap/internal/funcapp"
)

// TestHTTPBindingValues: a blob input's path takes route parameters, the
// query ({Query.x} and {x}) and a JSON body's top-level properties, the
// route winning over the body and the body over the bare query name.
func TestHTTPBindingValues(t *testing.T) {
	vals := httpBindingValues(
		map[string]string{"name": "a.txt"},
		map[string]string{"v": "2", "name": "fromquery", "kind": "q"},
		[]byte(` {"name": "frombody", "kind": "b", "n": 12.5, "ok": true, "obj": {"x": 1}, "nil": null}`))
	now := time.Date(2026, 12, 1, 19, 5, 7, 0, time.UTC)
	for _, c := range []struct{ path, want, err string }{
		{path: "docs/{name}", want: "docs/a.txt"},
		{path: "docs/{Query.v}/{name}", want: "docs/2/a.txt"},
		{path: "docs/{query.name}", want: "docs/fromquery"},
		{path: "docs/{kind}-{n}-{ok}", want: "docs/b-12.5-true"},
		{path: "%Folder%/{v}/{DateTime:yyyy-MM-dd}", want: "shared/2/2026-12-01"},
		{path: "docs/{obj}", err: `no value for {obj}`},
		{path: "docs/{nil}", err: `no value for {nil}`},
		{path: "docs/{missing}", err: `no value for {missing}`},
		{path: "{Query.none}/x", err: `no value for {Query.none}`},
	} {
		got, err := binding.InputPath(funcapp.Input{Name: "doc", Path: c.path}, map[string]string{"Folder": "shared"}, vals, now)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: got %q, %v; want an error with %q", c.path, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.path, got, err, c.want)
		}
	}
	if got := httpBindingValues(nil, nil, []byte(`[1,2]`)); len(got) != 0 {
		t.Errorf("a JSON array body binds %v, want nothing", got)
	}
	if got := httpBindingValues(nil, nil, []byte(`{not json`)); len(got) != 0 {
		t.Errorf("an invalid JSON body binds %v, want nothing", got)
	}
}
