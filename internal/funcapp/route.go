package funcapp

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hotswap/hotswap"
)

// Param is a route parameter value.
type Param struct{ Name, Value string }

type segKind uint8

const (
	segLiteral segKind = iota
	segParam
	segCatchAll
)

type segment struct {
	kind        segKind
	literal     string // segLiteral: the text to match, braces unescaped
	name        string
	constraints []constraint
	optional    bool
	hasDefault  bool
	def         string
}

type constraintKind uint8

const (
	cInt constraintKind = iota
	cLong
	cBool
	cAlpha
	cGUID
	cDatetime
	cDecimal
	cDouble
	cFloat
	cMinLength
	cMaxLength
	cLength
	cMin
	cMax
	cRange
	cRegex
)

type constraint struct {
	kind constraintKind
	a, b int64
	re   *regexp.Regexp
}

// Route is a compiled ASP.NET-style route template, such as
// "products/{category:alpha}/{id:int?}" or "files/{*path}".
type Route struct {
	template string
	segs     []segment
}

// String returns the template the route was parsed from.
func (r *Route) String() string { return r.template }

// Params returns the names of the route's parameters in order.
func (r *Route) Params() []string {
	var names []string
	for _, s := range r.segs {
		if s.kind != segLiteral {
			names = append(names, s.name)
		}
	}
	return names
}

// ParseRoute compiles an ASP.NET-style route template: literal segments,
// parameters {name}, constrained parameters {id:int:min(1)}, optional
// parameters {id?} and parameters with a default {id=5} (only in trailing
// segments), and a catch-all {*rest} or {**rest} as the last segment. A
// leading "/" is ignored. Literal braces are written "{{" and "}}", also inside
// regex(...) constraints. A segment is either a literal or one parameter:
// complex segments such as "{name}.{ext}" are rejected.
func ParseRoute(template string) (*Route, error) {
	r, err := parseRoute(template)
	if err != nil {
		return nil, hotswap.Errorf(hotswap.Invalid, "route %q: %s", template, err)
	}
	return r, nil
}

func parseRoute(template string) (*Route, error) {
	if strings.HasPrefix(template, "~") {
		return nil, fmt.Errorf("a leading ~ is not supported")
	}
	t := strings.TrimPrefix(template, "/")
	if t != "/" {
		t = strings.TrimSuffix(t, "/")
	}
	r := &Route{template: template}
	if t == "" {
		return r, nil
	}
	seen := map[string]bool{}
	trailing := "" // name of the first optional or defaulted parameter
	for i := 0; ; {
		s, next, err := parseSegment(t, i)
		if err != nil {
			return nil, err
		}
		if s.kind != segLiteral {
			key := strings.ToLower(s.name)
			if seen[key] {
				return nil, fmt.Errorf("parameter %q appears more than once", s.name)
			}
			seen[key] = true
		}
		if trailing != "" && s.kind != segCatchAll && !s.optional && !s.hasDefault {
			return nil, fmt.Errorf("optional or defaulted parameter %q must be followed only by optional, defaulted or catch-all parameters", trailing)
		}
		if trailing == "" && (s.optional || s.hasDefault) {
			trailing = s.name
		}
		if len(r.segs) > 0 && r.segs[len(r.segs)-1].kind == segCatchAll {
			return nil, fmt.Errorf("catch-all parameter %q must be the last segment", r.segs[len(r.segs)-1].name)
		}
		r.segs = append(r.segs, s)
		if next >= len(t) {
			break
		}
		i = next + 1 // skip '/'
		if i == len(t) {
			return nil, fmt.Errorf("empty segment at the end")
		}
	}
	return r, nil
}

// parseSegment parses the segment of t starting at i and returns it with the
// index of the '/' that ends it (or len(t)).
func parseSegment(t string, i int) (segment, int, error) {
	if i < len(t) && t[i] == '/' {
		return segment{}, 0, fmt.Errorf("empty segment")
	}
	if t[i] == '{' && !(i+1 < len(t) && t[i+1] == '{') {
		var inner strings.Builder
		j := i + 1
		for {
			if j >= len(t) {
				return segment{}, 0, fmt.Errorf("unbalanced braces: missing }")
			}
			c := t[j]
			if c == '}' {
				if j+1 < len(t) && t[j+1] == '}' {
					inner.WriteByte('}')
					j += 2
					continue
				}
				break
			}
			if c == '{' {
				if j+1 < len(t) && t[j+1] == '{' {
					inner.WriteByte('{')
					j += 2
					continue
				}
				return segment{}, 0, fmt.Errorf("unbalanced braces: unexpected { inside a parameter")
			}
			inner.WriteByte(c)
			j++
		}
		j++ // past '}'
		if j < len(t) && t[j] != '/' {
			return segment{}, 0, fmt.Errorf("segment %q: a parameter must be the whole segment", segmentText(t, i))
		}
		s, err := parseParam(inner.String())
		return s, j, err
	}
	var lit strings.Builder
	j := i
	for j < len(t) && t[j] != '/' {
		c := t[j]
		switch c {
		case '{', '}':
			if j+1 < len(t) && t[j+1] == c {
				lit.WriteByte(c)
				j += 2
				continue
			}
			if c == '}' {
				return segment{}, 0, fmt.Errorf("unbalanced braces: unexpected } in segment %q", segmentText(t, i))
			}
			return segment{}, 0, fmt.Errorf("segment %q: a parameter must be the whole segment", segmentText(t, i))
		case '?', '#', '\\', 0:
			return segment{}, 0, fmt.Errorf("character %q is not allowed in segment %q", c, segmentText(t, i))
		}
		lit.WriteByte(c)
		j++
	}
	return segment{kind: segLiteral, literal: lit.String()}, j, nil
}

func segmentText(t string, i int) string {
	if j := strings.IndexByte(t[i:], '/'); j >= 0 {
		return t[i : i+j]
	}
	return t[i:]
}

func parseParam(p string) (segment, error) {
	s := segment{kind: segParam}
	desc := "{" + p + "}"
	switch {
	case strings.HasPrefix(p, "**"):
		s.kind, p = segCatchAll, p[2:]
	case strings.HasPrefix(p, "*"):
		s.kind, p = segCatchAll, p[1:]
	}
	k := 0
	for k < len(p) && p[k] != ':' && p[k] != '=' && p[k] != '?' {
		c := p[k]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return s, fmt.Errorf("parameter %s: character %q is not allowed in a parameter name", desc, c)
		}
		k++
	}
	s.name = p[:k]
	if s.name == "" {
		return s, fmt.Errorf("parameter %s has no name", desc)
	}
	for k < len(p) && p[k] == ':' {
		k++
		c, n, err := parseConstraint(p[k:])
		if err != nil {
			return s, fmt.Errorf("parameter %q: %s", s.name, err)
		}
		s.constraints = append(s.constraints, c)
		k += n
	}
	if k < len(p) && p[k] == '?' {
		if k+1 != len(p) {
			return s, fmt.Errorf("parameter %s: '?' must end the parameter (an optional parameter cannot have a default)", desc)
		}
		if s.kind == segCatchAll {
			return s, fmt.Errorf("catch-all parameter %q cannot be marked optional (it already is)", s.name)
		}
		s.optional = true
		k++
	}
	if k < len(p) && p[k] == '=' {
		s.hasDefault, s.def = true, p[k+1:]
		if s.def == "" {
			return s, fmt.Errorf("parameter %q has an empty default value", s.name)
		}
		if !s.check(s.def) {
			return s, fmt.Errorf("default value %q of parameter %q does not satisfy its constraints", s.def, s.name)
		}
		k = len(p)
	}
	if k != len(p) {
		return s, fmt.Errorf("parameter %s: unexpected %q", desc, p[k:])
	}
	return s, nil
}

// parseConstraint parses one constraint at the start of p, such as "int" or
// "range(1,10)", and returns it with the number of bytes it used.
func parseConstraint(p string) (constraint, int, error) {
	k := 0
	for k < len(p) && (p[k] >= 'a' && p[k] <= 'z' || p[k] >= 'A' && p[k] <= 'Z') {
		k++
	}
	name := strings.ToLower(p[:k])
	if name == "" {
		return constraint{}, 0, fmt.Errorf("empty constraint")
	}
	var arg string
	hasArg := false
	if k < len(p) && p[k] == '(' {
		// Find the matching parenthesis, counting nested ones and skipping
		// backslash escapes, so regex(^a(b)?\)$) keeps its groups.
		depth, j := 0, k
		for ; j < len(p); j++ {
			switch p[j] {
			case '\\':
				j++
				continue
			case '(':
				depth++
				continue
			case ')':
				depth--
			}
			if depth == 0 {
				break
			}
		}
		if j >= len(p) {
			return constraint{}, 0, fmt.Errorf("constraint %s: missing )", name)
		}
		arg, hasArg = p[k+1:j], true
		k = j + 1
	}
	c := constraint{}
	nargs := 0
	switch name {
	case "int":
		c.kind = cInt
	case "long":
		c.kind = cLong
	case "bool":
		c.kind = cBool
	case "alpha":
		c.kind = cAlpha
	case "guid":
		c.kind = cGUID
	case "datetime":
		c.kind = cDatetime
	case "decimal":
		c.kind = cDecimal
	case "double":
		c.kind = cDouble
	case "float":
		c.kind = cFloat
	case "minlength":
		c.kind, nargs = cMinLength, 1
	case "maxlength":
		c.kind, nargs = cMaxLength, 1
	case "length":
		c.kind, nargs = cLength, -1
	case "min":
		c.kind, nargs = cMin, 1
	case "max":
		c.kind, nargs = cMax, 1
	case "range":
		c.kind, nargs = cRange, 2
	case "regex":
		if !hasArg || arg == "" {
			return c, 0, fmt.Errorf("constraint regex needs an expression: regex(expr)")
		}
		re, err := regexp.Compile("(?i)" + arg)
		if err != nil {
			return c, 0, fmt.Errorf("constraint regex(%s): %s", arg, err)
		}
		c.kind, c.re = cRegex, re
		return c, k, nil
	default:
		return c, 0, fmt.Errorf("unknown constraint %q", p[:k])
	}
	if nargs == 0 {
		if hasArg {
			return c, 0, fmt.Errorf("constraint %s takes no argument", name)
		}
		return c, k, nil
	}
	if !hasArg {
		return c, 0, fmt.Errorf("constraint %s needs an argument", name)
	}
	parts := strings.Split(arg, ",")
	if nargs > 0 && len(parts) != nargs || nargs < 0 && len(parts) > 2 {
		return c, 0, fmt.Errorf("constraint %s(%s): wrong number of arguments", name, arg)
	}
	var vals [2]int64
	for i, s := range parts {
		v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return c, 0, fmt.Errorf("constraint %s(%s): %q is not an integer", name, arg, s)
		}
		vals[i] = v
	}
	c.a, c.b = vals[0], vals[1]
	switch {
	case c.kind == cLength && len(parts) == 1:
		c.b = c.a
	case (c.kind == cMinLength || c.kind == cMaxLength || c.kind == cLength) && c.a < 0:
		return c, 0, fmt.Errorf("constraint %s(%s): length must not be negative", name, arg)
	}
	if (c.kind == cRange || c.kind == cLength) && c.a > c.b {
		return c, 0, fmt.Errorf("constraint %s(%s): minimum is greater than maximum", name, arg)
	}
	return c, k, nil
}

// check reports whether v satisfies all the segment's constraints.
func (s *segment) check(v string) bool {
	for i := range s.constraints {
		if !s.constraints[i].ok(v) {
			return false
		}
	}
	return true
}

func (c *constraint) ok(v string) bool {
	switch c.kind {
	case cInt:
		n, ok := parseInteger(v)
		return ok && n >= -1<<31 && n < 1<<31
	case cLong:
		_, ok := parseInteger(v)
		return ok
	case cBool:
		return strings.EqualFold(v, "true") || strings.EqualFold(v, "false")
	case cAlpha:
		if v == "" {
			return false
		}
		for i := 0; i < len(v); i++ {
			if c := v[i] | 0x20; c < 'a' || c > 'z' {
				return false
			}
		}
		return true
	case cGUID:
		return isGUID(v)
	case cDatetime:
		return isDatetime(v)
	case cDecimal:
		return isNumber(v, false) && parseFloat(v, 64)
	case cDouble:
		return isNumber(v, true) && parseFloat(v, 64)
	case cFloat:
		return isNumber(v, true) && parseFloat(v, 32)
	case cMinLength:
		return int64(utf8.RuneCountInString(v)) >= c.a
	case cMaxLength:
		return int64(utf8.RuneCountInString(v)) <= c.a
	case cLength:
		n := int64(utf8.RuneCountInString(v))
		return n >= c.a && n <= c.b
	case cMin:
		n, ok := parseInteger(v)
		return ok && n >= c.a
	case cMax:
		n, ok := parseInteger(v)
		return ok && n <= c.a
	case cRange:
		n, ok := parseInteger(v)
		return ok && n >= c.a && n <= c.b
	case cRegex:
		return c.re.MatchString(v)
	}
	return false
}

// parseInteger parses an optionally signed decimal int64 without allocating,
// unlike strconv on failure.
func parseInteger(s string) (int64, bool) {
	i, neg := 0, false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg, i = s[0] == '-', 1
	}
	if i == len(s) {
		return 0, false
	}
	var n uint64
	for ; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 || n > (1<<63)/10 {
			return 0, false
		}
		n = n*10 + uint64(d)
	}
	if neg {
		if n > 1<<63 {
			return 0, false
		}
		return -int64(n), true
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}

// isNumber checks the syntax of a decimal number so strconv is called only
// for plausible values (it allocates on failure and accepts "inf" and hex).
func isNumber(s string, exp bool) bool {
	digits := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits = true
		case c == '.', c == '+', c == '-':
		case (c == 'e' || c == 'E') && exp:
		default:
			return false
		}
	}
	return digits
}

func parseFloat(s string, bits int) bool {
	_, err := strconv.ParseFloat(s, bits)
	return err == nil
}

func isGUID(s string) bool {
	switch len(s) {
	case 32:
		return isHex(s)
	case 38:
		if !(s[0] == '{' && s[37] == '}' || s[0] == '(' && s[37] == ')') {
			return false
		}
		s = s[1:37]
	case 36:
	default:
		return false
	}
	return s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' &&
		isHex(s[:8]) && isHex(s[9:13]) && isHex(s[14:18]) && isHex(s[19:23]) && isHex(s[24:])
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

var datetimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05",
	"2006-01-02 15:04",
	"2006-01-02",
}

func isDatetime(s string) bool {
	if len(s) < 10 || s[4] != '-' {
		return false
	}
	for _, l := range datetimeLayouts {
		if _, err := time.Parse(l, s); err == nil {
			return true
		}
	}
	return false
}

// Match matches path, relative to the route prefix (a leading and a trailing
// "/" are ignored), against the route and appends the parameter values to
// dst. Path segments are percent-decoded after splitting, so "%2F" stays
// inside a parameter value; a segment with an invalid escape is used as is.
// On failure it returns dst unchanged (same length) and false.
func (r *Route) Match(path string, dst []Param) ([]Param, bool) {
	path = strings.TrimPrefix(path, "/")
	path = strings.TrimSuffix(path, "/")
	return r.match(path, dst)
}

// match is Match on a path with no leading or trailing slash. It does not
// allocate when dst has room and the path has no escapes.
func (r *Route) match(path string, dst []Param) ([]Param, bool) {
	n0 := len(dst)
	rest, done := path, path == ""
	for i := range r.segs {
		s := &r.segs[i]
		if s.kind == segCatchAll {
			v := rest
			if done {
				v = ""
			}
			if v == "" {
				if s.hasDefault {
					dst = append(dst, Param{s.name, s.def})
				}
				return dst, true
			}
			v = unescape(v)
			if !s.check(v) {
				return dst[:n0], false
			}
			return append(dst, Param{s.name, v}), true
		}
		if done {
			switch {
			case s.hasDefault:
				dst = append(dst, Param{s.name, s.def})
			case s.optional:
			default:
				return dst[:n0], false
			}
			continue
		}
		var seg string
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			seg, rest = rest[:j], rest[j+1:]
		} else {
			seg, done = rest, true
		}
		if seg == "" {
			return dst[:n0], false
		}
		seg = unescape(seg)
		if s.kind == segLiteral {
			if !strings.EqualFold(seg, s.literal) {
				return dst[:n0], false
			}
			continue
		}
		if !s.check(seg) {
			return dst[:n0], false
		}
		dst = append(dst, Param{s.name, seg})
	}
	if !done {
		return dst[:n0], false
	}
	return dst, true
}

func unescape(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// precedence ranks a segment for ordering routes: lower is tried first.
func (s *segment) precedence() int {
	switch {
	case s.kind == segLiteral:
		return 0
	case s.kind == segCatchAll:
		return 3
	case len(s.constraints) > 0:
		return 1
	}
	return 2
}

// shape is the route with parameter names and constraints erased and
// literals lower-cased: two routes of the same shape serve the same paths.
func (r *Route) shape() string {
	var b strings.Builder
	for i, s := range r.segs {
		if i > 0 {
			b.WriteByte('/')
		}
		switch s.kind {
		case segLiteral:
			b.WriteString(strings.ToLower(s.literal))
		case segParam:
			b.WriteString("\x00p")
		case segCatchAll:
			b.WriteString("\x00c")
		}
	}
	return b.String()
}
