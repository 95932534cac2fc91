package funcapp

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// httpFunc returns a runnable HTTP function with the given route and methods.
func httpFunc(name, route string, methods ...string) *Function {
	return &Function{Name: name, Runnable: true, Trigger: TriggerHTTP, AuthLevel: AuthFunction, Route: route, Methods: methods}
}

func newRouter(t testing.TB, prefix string, fns ...*Function) *Router {
	t.Helper()
	r, err := NewRouter(prefix, fns)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRouterMatch(t *testing.T) {
	fns := []*Function{
		httpFunc("Root", "/"),
		httpFunc("ProductsNew", "products/new"),
		httpFunc("ProductByID", "products/{id:int}", "GET"),
		httpFunc("ProductUpdate", "products/{id:int}", "PUT", "PATCH"),
		httpFunc("ProductBySlug", "products/{slug}", "POST"), // same shape as ProductByID, other methods
		httpFunc("ProductsByCategory", "products/{category:alpha}/{id:int?}"),
		httpFunc("Files", "files/{*path}", "GET"),
		httpFunc("FileMeta", "files/{name}/meta", "GET"),
		httpFunc("Report", "reports/{year:int}/{month:int=1}"),
		httpFunc("PostOnly", "submit", "POST"),
		httpFunc("Anything", "any/{*all}", "DELETE"),
		httpFunc("Kelvin", "\u212Aelvin"),
		httpFunc("Default", "Default"),
		{Name: "Queue", Trigger: "queueTrigger", Route: "queue"},
		{Name: "Disabled", Trigger: TriggerHTTP, Route: "blocked"}, // not runnable
	}
	tests := []struct {
		name    string
		prefix  string
		method  string
		path    string
		fn      string // "" for no match
		params  []Param
		allowed bool
	}{
		{"root", "api", "GET", "/api", "Root", nil, true},
		{"root slash", "api", "GET", "/api/", "Root", nil, true},
		{"prefix case", "api", "GET", "/API/products/new", "ProductsNew", nil, true},
		{"literal before param", "api", "GET", "/api/products/new", "ProductsNew", nil, true},
		{"literal case-insensitive", "api", "GET", "/api/Products/NEW", "ProductsNew", nil, true},
		{"constrained before unconstrained", "api", "GET", "/api/products/42", "ProductByID", []Param{{"id", "42"}}, true},
		{"same route other method", "api", "PATCH", "/api/products/42", "ProductUpdate", []Param{{"id", "42"}}, true},
		{"unconstrained", "api", "POST", "/api/products/shoes-1", "ProductBySlug", []Param{{"slug", "shoes-1"}}, true},
		{"more segments first", "api", "GET", "/api/products/shoes/7", "ProductsByCategory", []Param{{"category", "shoes"}, {"id", "7"}}, true},
		{"fall through to less specific route for method", "api", "POST", "/api/products/42", "ProductBySlug", []Param{{"slug", "42"}}, true},
		{"405", "api", "OPTIONS", "/api/products/42", "", nil, false},
		{"405 literal", "api", "GET", "/api/submit", "", nil, false},
		{"post only", "api", "post", "/api/submit", "PostOnly", nil, true},
		{"404 bad constraint", "api", "GET", "/api/products/shoes/x", "", nil, true},
		{"catch-all last", "api", "GET", "/api/files/a/meta", "FileMeta", []Param{{"name", "a"}}, true},
		{"catch-all", "api", "GET", "/api/files/a/b/c", "Files", []Param{{"path", "a/b/c"}}, true},
		{"catch-all empty", "api", "GET", "/api/files", "Files", nil, true},
		{"catch-all decoded", "api", "GET", "/api/files/a%20b/c%2Fd", "Files", []Param{{"path", "a b/c/d"}}, true},
		{"default value", "api", "GET", "/api/reports/2024", "Report", []Param{{"year", "2024"}, {"month", "1"}}, true},
		{"default overridden", "api", "GET", "/api/reports/2024/6", "Report", []Param{{"year", "2024"}, {"month", "6"}}, true},
		{"catch-all by method", "api", "DELETE", "/api/any/products/new", "Anything", []Param{{"all", "products/new"}}, true},
		{"catch-all 405", "api", "GET", "/api/any/x", "", nil, false},
		{"unicode folding", "api", "GET", "/api/kelvin", "Kelvin", nil, true},
		{"escaped literal", "api", "GET", "/api/product%73/new", "ProductsNew", nil, true},
		{"default route is the name", "api", "GET", "/api/default", "Default", nil, true},
		{"not runnable ignored", "api", "GET", "/api/blocked", "", nil, true},
		{"queue ignored", "api", "GET", "/api/queue", "", nil, true},
		{"outside prefix", "api", "GET", "/products/new", "", nil, true},
		{"prefix must end at a slash", "api", "GET", "/apix/products/new", "", nil, true},
		{"empty path", "api", "GET", "", "", nil, true},
		{"empty prefix", "", "GET", "/products/new", "ProductsNew", nil, true},
		{"empty prefix root", "", "GET", "/", "Root", nil, true},
		{"empty prefix api is a segment", "", "GET", "/api/products/new", "", nil, true},
		{"empty prefix 405", "", "HEAD", "/products/1", "", nil, false},
		{"long prefix", "/v1/fn/", "GET", "/V1/fn/products/1", "ProductByID", []Param{{"id", "1"}}, true},
		{"long prefix partial", "v1/fn", "GET", "/v1/products/1", "", nil, true},
	}
	routers := map[string]*Router{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := routers[tc.prefix]
			if r == nil {
				r = newRouter(t, tc.prefix, fns...)
				routers[tc.prefix] = r
			}
			fn, params, allowed := r.Match(tc.method, tc.path, make([]Param, 0, 4))
			var got string
			if fn != nil {
				got = fn.Name
			}
			if got != tc.fn || allowed != tc.allowed {
				t.Errorf("Match(%s %s) = %q, allowed %v; want %q, allowed %v", tc.method, tc.path, got, allowed, tc.fn, tc.allowed)
			}
			if diff := cmp.Diff(params, tc.params, cmp.Comparer(func(a, b []Param) bool {
				return len(a) == len(b) && (len(a) == 0 || cmp.Equal(a, b))
			})); diff != "" {
				t.Errorf("params mismatch (-got +want):\n%s", diff)
			}
		})
	}
}

func TestRouterMatchKeepsDst(t *testing.T) {
	r := newRouter(t, "api", httpFunc("A", "a/{x}", "GET"))
	dst := []Param{{"pre", "1"}}
	fn, got, _ := r.Match("GET", "/api/a/2", dst)
	if fn == nil {
		t.Fatal("no match")
	}
	if diff := cmp.Diff(got, []Param{{"pre", "1"}, {"x", "2"}}); diff != "" {
		t.Errorf("params mismatch (-got +want):\n%s", diff)
	}
	_, got, allowed := r.Match("POST", "/api/a/2", dst)
	if diff := cmp.Diff(got, dst); diff != "" || allowed {
		t.Errorf("405: allowed %v, params mismatch (-got +want):\n%s", allowed, diff)
	}
}

func TestNewRouterErrors(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		fns    []*Function
		want   string
	}{
		{"bad prefix", "a//b", nil, `route prefix "a//b" has an empty segment`},
		{"bad route", "api", []*Function{httpFunc("A", "{x")}, `function "A": route "{x": unbalanced braces: missing }`},
		{"same shape", "api", []*Function{httpFunc("B", "items/{id:int}", "GET", "POST"), httpFunc("A", "ITEMS/{name}", "POST")},
			`functions "A" and "B" both serve route "api/ITEMS/{name}" for POST`},
		{"same shape catch-all", "", []*Function{httpFunc("A", "f/{*a}"), httpFunc("B", "f/{**b}", "GET")},
			`functions "A" and "B" both serve route "f/{**b}" for GET`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRouter(tc.prefix, tc.fns)
			checkInvalid(t, err, tc.want)
			if r != nil {
				t.Errorf("router = %v, want nil", r)
			}
		})
	}
}

func TestNewRouterDistinctShapes(t *testing.T) {
	// Parameters and catch-alls at the same position, and optional parameters
	// adding a segment, are different shapes: precedence decides.
	newRouter(t, "api",
		httpFunc("A", "f/{a}"), httpFunc("B", "f/{*b}"), httpFunc("C", "f/{a}/{b?}"), httpFunc("D", "f"))
}

func TestMatchAllocs(t *testing.T) {
	r := newRouter(t, "api", benchFuncs()...)
	dst := make([]Param, 0, 8)
	for _, path := range []string{"/api/health", "/api/products/shoes/42", "/api/files/a/b/c"} {
		allocs := testing.AllocsPerRun(100, func() {
			if fn, _, _ := r.Match("GET", path, dst); fn == nil {
				t.Fatalf("no match for %s", path)
			}
		})
		if allocs != 0 {
			t.Errorf("Match(%s) allocates %v times, want 0", path, allocs)
		}
	}
}
