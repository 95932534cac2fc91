package funcapp

import (
	"cmp"
	"slices"
	"strings"

	"github.com/hotswap/hotswap"
)

// Router matches request paths to the runnable HTTP functions of an app. It
// is immutable and safe for concurrent use.
type Router struct {
	prefix string
	routes []route // in match order
	// Routes are indexed by their first segment when it is an ASCII literal;
	// the others are always candidates. Since literal first segments sort
	// first, merging the two ascending index lists keeps the match order.
	byFirst map[string][]int // lower-cased first literal -> indexes into routes
	always  []int
}

type route struct {
	fn      *Function
	r       *Route
	methods []string // nil: all
}

// NewRouter returns a router for the runnable HTTP functions among fns under
// the route prefix (leading and trailing slashes are ignored; "" for none).
// It fails when a route does not parse, or when two functions have routes of
// the same shape (the same literal segments, compared case-insensitively,
// and parameters at the same positions) and overlapping methods.
func NewRouter(prefix string, fns []*Function) (*Router, error) {
	p, err := cleanPrefix(prefix)
	if err != nil {
		return nil, hotswap.Errorf(hotswap.Invalid, "route prefix %s", err)
	}
	rt := &Router{prefix: p}
	shapes := map[string][]int{}
	for _, f := range fns {
		if !f.Runnable || f.Trigger != TriggerHTTP {
			continue
		}
		r, err := ParseRoute(f.Route)
		if err != nil {
			return nil, hotswap.Errorf(hotswap.Invalid, "function %q: %s", f.Name, hotswap.ErrorMessage(err))
		}
		e := route{fn: f, r: r, methods: f.Methods}
		shape := r.shape()
		for _, i := range shapes[shape] {
			o := &rt.routes[i]
			if m, ok := overlap(o.methods, e.methods); ok {
				a, b := o.fn.Name, f.Name
				if b < a {
					a, b = b, a
				}
				return nil, hotswap.Errorf(hotswap.Invalid, "functions %q and %q both serve route %q for %s", a, b, routeLabel(p, f.Route), m)
			}
		}
		shapes[shape] = append(shapes[shape], len(rt.routes))
		rt.routes = append(rt.routes, e)
	}
	slices.SortStableFunc(rt.routes, func(a, b route) int {
		if c := compareRoutes(a.r, b.r); c != 0 {
			return c
		}
		if c := strings.Compare(strings.ToLower(a.r.template), strings.ToLower(b.r.template)); c != 0 {
			return c
		}
		return strings.Compare(a.fn.Name, b.fn.Name)
	})
	rt.byFirst = map[string][]int{}
	for i, e := range rt.routes {
		if len(e.r.segs) > 0 && e.r.segs[0].kind == segLiteral && isASCII(e.r.segs[0].literal) {
			k := strings.ToLower(e.r.segs[0].literal)
			rt.byFirst[k] = append(rt.byFirst[k], i)
		} else {
			rt.always = append(rt.always, i)
		}
	}
	return rt, nil
}

// overlap describes the methods two method sets share, if any.
func overlap(a, b []string) (string, bool) {
	switch {
	case a == nil && b == nil:
		return "all methods", true
	case a == nil:
		return strings.Join(b, ", "), true
	case b == nil:
		return strings.Join(a, ", "), true
	}
	var both []string
	for _, m := range a {
		if slices.Contains(b, m) {
			both = append(both, m)
		}
	}
	return strings.Join(both, ", "), len(both) > 0
}

// compareRoutes orders routes as ASP.NET does: segment by segment, literals
// before constrained parameters before parameters before catch-alls; then
// more segments first.
func compareRoutes(a, b *Route) int {
	for i := 0; i < len(a.segs) && i < len(b.segs); i++ {
		if c := cmp.Compare(a.segs[i].precedence(), b.segs[i].precedence()); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(b.segs), len(a.segs))
}

// Prefix returns the route prefix, without slashes.
func (r *Router) Prefix() string { return r.prefix }

// Match resolves a request path to a function and appends the route
// parameters to dst. The path starts with "/" and includes the route prefix
// (matched case-insensitively); pass the escaped path (r.URL.EscapedPath())
// so that an encoded "/" stays inside a parameter: parameter values are
// percent-decoded after the path is split. A trailing "/" is ignored.
//
// When a function matches the path and accepts method, Match returns it with
// methodAllowed true. When routes match the path but none accepts method, fn
// is nil and methodAllowed false (the data plane answers 404 as on Azure,
// not 405, which would reveal the route). When nothing matches, fn is nil
// and methodAllowed true (answer 404). params is dst with the parameters
// appended, or dst when fn is nil. Match does not allocate when dst has
// enough capacity and the path has no escapes.
func (r *Router) Match(method, path string, dst []Param) (fn *Function, params []Param, methodAllowed bool) {
	rest, ok := r.strip(path)
	if !ok {
		return nil, dst, true
	}
	n0 := len(dst)
	matched := false
	first := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		first = rest[:i]
	}
	var indexed []int
	var buf [64]byte
	if len(first) <= len(buf) && isASCII(first) && strings.IndexByte(first, '%') < 0 {
		for i := 0; i < len(first); i++ {
			c := first[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		indexed = r.byFirst[string(buf[:len(first)])] // does not allocate
	} else {
		// Escaped, non-ASCII or long: try every route, in order.
		for i := range r.routes {
			if fn, p, ok := r.try(i, method, rest, dst[:n0], &matched); ok {
				return fn, p, true
			}
		}
		return nil, dst[:n0], !matched
	}
	for a, b := 0, 0; a < len(indexed) || b < len(r.always); {
		var i int
		if b == len(r.always) || a < len(indexed) && indexed[a] < r.always[b] {
			i, a = indexed[a], a+1
		} else {
			i, b = r.always[b], b+1
		}
		if fn, p, ok := r.try(i, method, rest, dst[:n0], &matched); ok {
			return fn, p, true
		}
	}
	return nil, dst[:n0], !matched
}

// try matches route i; matched records that the path matched some route.
func (r *Router) try(i int, method, rest string, dst []Param, matched *bool) (*Function, []Param, bool) {
	e := &r.routes[i]
	p, ok := e.r.match(rest, dst)
	if !ok {
		return nil, dst, false
	}
	if e.allows(method) {
		return e.fn, p, true
	}
	*matched = true
	return nil, dst, false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func (e *route) allows(method string) bool {
	if e.methods == nil {
		return true
	}
	for _, m := range e.methods {
		if strings.EqualFold(m, method) {
			return true
		}
	}
	return false
}

// strip removes the leading "/", the prefix and a trailing "/" from path.
func (r *Router) strip(path string) (string, bool) {
	path = strings.TrimPrefix(path, "/")
	if r.prefix != "" {
		n := len(r.prefix)
		if len(path) < n || !strings.EqualFold(path[:n], r.prefix) {
			return "", false
		}
		path = path[n:]
		if path != "" && path[0] != '/' {
			return "", false
		}
		path = strings.TrimPrefix(path, "/")
	}
	return strings.TrimSuffix(path, "/"), true
}
