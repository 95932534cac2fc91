package azstorage

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Binding expressions, as the Functions host evaluates them in a binding's
// path (and other string properties):
//
//	{name}        a value bound by the trigger, e.g. the blob trigger's {name}
//	              or a property of a JSON queue message ({data.id} when the
//	              caller flattens nested properties with dots)
//	{rand-guid}   a new random GUID, e.g. 0f8fad5b-d9cb-469f-a165-70867728950e;
//	              {rand-guid:N} without hyphens (.NET formats D, N, B, P)
//	{DateTime}    the trigger's DateTime value if it has one, else the time
//	              in UTC as 2018-02-16T17-59-55Z (no colons, so it fits in a
//	              blob name); {DateTime:yyyy/MM/dd} with a .NET date format
//	{sys.UtcNow}  the time in UTC as 2018-02-16T17:59:55.1234567Z
//	{sys.RandGuid} a random GUID
//	{{ and }}     a literal { and }
//	%Setting%     an app setting's value (ExpandSettings; %% is a literal %)

// builtins are the names Expand evaluates itself, lowercased; a trigger
// pattern cannot bind them.
var builtins = map[string]bool{"rand-guid": true, "datetime": true, "sys.utcnow": true, "sys.randguid": true}

// part is a literal or, when name is set, an expression with an optional
// format ({DateTime:yyyy-MM-dd}, {rand-guid:N}).
type part struct{ lit, name, format string }

func validFormatted(name string) bool {
	return strings.EqualFold(name, "rand-guid") || strings.EqualFold(name, "DateTime")
}

// parseTemplate splits a template into literals and {expressions}.
func parseTemplate(tmpl string) ([]part, error) {
	var parts []part
	var lit strings.Builder
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		switch {
		case c == '{' && i+1 < len(tmpl) && tmpl[i+1] == '{':
			lit.WriteByte('{')
			i++
		case c == '}' && i+1 < len(tmpl) && tmpl[i+1] == '}':
			lit.WriteByte('}')
			i++
		case c == '}':
			return nil, invalid("binding expression %q: } at %d has no {", clipName(tmpl), i+1)
		case c == '{':
			end := strings.IndexAny(tmpl[i+1:], "{}")
			if end < 0 || tmpl[i+1+end] != '}' {
				return nil, invalid("binding expression %q: { at %d is not closed", clipName(tmpl), i+1)
			}
			name := tmpl[i+1 : i+1+end]
			name, format, hasFormat := strings.Cut(name, ":")
			if hasFormat && !validFormatted(name) {
				return nil, invalid("binding expression %q: only {rand-guid:...} and {DateTime:...} take a format", clipName(tmpl))
			}
			if hasFormat && format == "" {
				return nil, invalid("binding expression %q: {%s:} has an empty format", clipName(tmpl), name)
			}
			if hasFormat {
				// Check the format now, so a deploy sees a bad one.
				var err error
				if strings.EqualFold(name, "rand-guid") {
					_, err = formatGUID("", format)
				} else {
					_, err = formatTime(time.Time{}, format)
				}
				if err != nil {
					return nil, invalid("binding expression %q: %v", clipName(tmpl), err)
				}
			}
			if !validExprName(name) {
				return nil, invalid("binding expression %q: {%s} is not a name (letters, digits, '.', '-', '_')", clipName(tmpl), clipName(name))
			}
			if lit.Len() > 0 {
				parts = append(parts, part{lit: lit.String()})
				lit.Reset()
			}
			parts = append(parts, part{name: name, format: format})
			i += end + 1
		default:
			lit.WriteByte(c)
		}
	}
	if lit.Len() > 0 {
		parts = append(parts, part{lit: lit.String()})
	}
	return parts, nil
}

func validExprName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Names returns the names a template takes from its caller's values, in
// order of first use, leaving out the built-in ones ({rand-guid},
// {DateTime}, {sys.UtcNow}, {sys.RandGuid}). A deploy can check with it
// that a function's trigger binds every name its outputs use.
func Names(tmpl string) ([]string, error) {
	parts, err := parseTemplate(tmpl)
	if err != nil {
		return nil, err
	}
	var names []string
	seen := make(map[string]bool)
	for _, p := range parts {
		if p.name != "" && !builtins[strings.ToLower(p.name)] && !seen[p.name] {
			seen[p.name] = true
			names = append(names, p.name)
		}
	}
	return names, nil
}

// Expand evaluates the binding expressions of tmpl (see the list above).
// Names are looked up in vals exactly, else case-insensitively as the host
// does. {rand-guid} is always new; {DateTime} is vals' DateTime if any, else
// now; {sys.UtcNow} and {sys.RandGuid} come from vals when the caller gives
// them (so every binding of one invocation sees the same), else from now and
// a new GUID. A name with no value is an error naming it.
func Expand(tmpl string, vals map[string]string, now time.Time) (string, error) {
	parts, err := parseTemplate(tmpl)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, p := range parts {
		if p.name == "" {
			b.WriteString(p.lit)
			continue
		}
		lower := strings.ToLower(p.name)
		if lower == "rand-guid" {
			g, err := formatGUID(newGUID(), p.format)
			if err != nil {
				return "", invalid("binding expression %q: %v", clipName(tmpl), err)
			}
			b.WriteString(g)
			continue
		}
		// {DateTime} is the trigger's own DateTime value when it has one,
		// as on Azure, else the time; with a format, always the time.
		if v, ok := lookup(vals, p.name); ok && p.format == "" {
			b.WriteString(v)
			continue
		}
		switch lower {
		case "datetime":
			if p.format == "" {
				b.WriteString(now.UTC().Format("2006-01-02T15-04-05Z"))
				continue
			}
			t, err := formatTime(now.UTC(), p.format)
			if err != nil {
				return "", invalid("binding expression %q: %v", clipName(tmpl), err)
			}
			b.WriteString(t)
		case "sys.utcnow":
			b.WriteString(now.UTC().Format("2006-01-02T15:04:05.0000000Z"))
		case "sys.randguid":
			b.WriteString(newGUID())
		default:
			return "", invalid("binding expression %q: no value for {%s}", clipName(tmpl), p.name)
		}
	}
	return b.String(), nil
}

func lookup(vals map[string]string, name string) (string, bool) {
	if v, ok := vals[name]; ok {
		return v, true
	}
	found, n := "", 0
	for k, v := range vals {
		if strings.EqualFold(k, name) {
			found, n = v, n+1
		}
	}
	return found, n == 1
}

// newGUID returns a random (version 4) GUID in the host's format.
func newGUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// formatGUID formats a GUID as .NET's Guid.ToString(format) does for the
// standard formats: D (default), N, B and P.
func formatGUID(g, format string) (string, error) {
	switch format {
	case "", "D", "d":
		return g, nil
	case "N", "n":
		return strings.ReplaceAll(g, "-", ""), nil
	case "B", "b":
		return "{" + g + "}", nil
	case "P", "p":
		return "(" + g + ")", nil
	}
	return "", fmt.Errorf("GUID format %q: use D, N, B or P", clipName(format))
}

// formatTime formats t with a .NET custom date format (the common
// specifiers: yyyy yy MM M dd d HH H hh h mm m ss s fff ff f tt, quoted
// 'literals' and \c escapes; other non-letters are literal).
func formatTime(t time.Time, format string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(format); {
		c := format[i]
		n := 1
		for i+n < len(format) && format[i+n] == c {
			n++
		}
		switch {
		case c == '\\' && i+1 < len(format):
			b.WriteByte(format[i+1])
			i += 2
			continue
		case c == '\'' || c == '"':
			end := strings.IndexByte(format[i+1:], c)
			if end < 0 {
				return "", fmt.Errorf("date format %q: quote not closed", clipName(format))
			}
			b.WriteString(format[i+1 : i+1+end])
			i += end + 2
			continue
		case c == 'y' && n == 4:
			fmt.Fprintf(&b, "%04d", t.Year())
		case c == 'y' && n == 2:
			fmt.Fprintf(&b, "%02d", t.Year()%100)
		case c == 'M' && n <= 2:
			fmt.Fprintf(&b, "%0*d", n, int(t.Month()))
		case c == 'd' && n <= 2:
			fmt.Fprintf(&b, "%0*d", n, t.Day())
		case c == 'H' && n <= 2:
			fmt.Fprintf(&b, "%0*d", n, t.Hour())
		case c == 'h' && n <= 2:
			fmt.Fprintf(&b, "%0*d", n, (t.Hour()+11)%12+1)
		case c == 'm' && n <= 2:
			fmt.Fprintf(&b, "%0*d", n, t.Minute())
		case c == 's' && n <= 2:
			fmt.Fprintf(&b, "%0*d", n, t.Second())
		case c == 'f' && n <= 7:
			frac := fmt.Sprintf("%09d", t.Nanosecond())
			b.WriteString(frac[:n])
		case c == 't' && n == 2:
			if t.Hour() < 12 {
				b.WriteString("AM")
			} else {
				b.WriteString("PM")
			}
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			return "", fmt.Errorf("date format %q: %q is not supported", clipName(format), strings.Repeat(string(c), n))
		default:
			b.WriteString(format[i : i+n])
		}
		i += n
	}
	return b.String(), nil
}

// ExpandSettings replaces each %Name% in s with the app setting Name, as the
// host resolves binding properties such as queueName and path when a
// function is loaded ("%%" is a literal %). A missing setting is an error
// naming it.
func ExpandSettings(s string, settings map[string]string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		end := strings.IndexByte(s[i+1:], '%')
		if end < 0 {
			return "", invalid("%q: %% at %d is not closed", clipName(s), i+1)
		}
		name := s[i+1 : i+1+end]
		i += end + 1
		if name == "" {
			b.WriteByte('%')
			continue
		}
		v, ok := settings[name]
		if !ok {
			return "", invalid("%q: app setting %s is not set", clipName(s), clipName(name))
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// BlobPattern is a compiled blob trigger path, like "samples/{name}",
// "input/{stem}.{ext}" or "images/{{2024}}-{name}" (doubled braces are
// literal). The container part is literal; each {name} matches one or more
// characters of the blob name, slashes included, so "samples/{name}" also
// matches blobs in virtual folders, as on Azure.
type BlobPattern struct {
	container string
	prefix    string // literal start of the blob name: list blobs with it
	names     []string
	re        *regexp.Regexp
}

// ParseBlobPattern compiles a blob trigger path. It must name a valid
// container, and cannot bind a built-in name such as {rand-guid}.
func ParseBlobPattern(pattern string) (*BlobPattern, error) {
	if !utf8.ValidString(pattern) {
		return nil, invalid("blob path %q is not valid UTF-8", clipName(pattern))
	}
	cname, rest, ok := strings.Cut(pattern, "/")
	if !ok {
		// "container" alone: every blob of the container.
		cname, rest = pattern, ""
	}
	if err := checkName("container", cname); err != nil {
		return nil, fmt.Errorf("blob path %q: %w", clipName(pattern), err)
	}
	parts, err := parseTemplate(rest)
	if err != nil {
		return nil, fmt.Errorf("blob path: %w", err)
	}
	p := &BlobPattern{container: cname}
	var re strings.Builder
	re.WriteString(`^(?s)`)
	if rest == "" {
		re.WriteString(`.+`)
	}
	literalStart := true
	for _, pt := range parts {
		if pt.name == "" {
			if literalStart {
				p.prefix += pt.lit
			}
			re.WriteString(regexp.QuoteMeta(pt.lit))
			continue
		}
		literalStart = false
		if builtins[strings.ToLower(pt.name)] {
			return nil, invalid("blob path %q: a trigger path cannot use {%s}", clipName(pattern), pt.name)
		}
		p.names = append(p.names, pt.name)
		re.WriteString(`(.+)`)
	}
	re.WriteString(`$`)
	if p.re, err = regexp.Compile(re.String()); err != nil {
		return nil, invalid("blob path %q: %v", clipName(pattern), err)
	}
	return p, nil
}

// Container returns the container the pattern watches.
func (p *BlobPattern) Container() string { return p.container }

// Prefix returns the literal start of the blob names the pattern can match,
// for listing the container with a prefix.
func (p *BlobPattern) Prefix() string { return p.prefix }

// Match matches a blob's full path ("container/name") and returns the bound
// names. A name bound twice must match the same text both times.
func (p *BlobPattern) Match(path string) (map[string]string, bool) {
	cname, blob, ok := strings.Cut(path, "/")
	if !ok || cname != p.container || blob == "" {
		return nil, false
	}
	m := p.re.FindStringSubmatch(blob)
	if m == nil {
		return nil, false
	}
	vals := make(map[string]string, len(p.names))
	for i, name := range p.names {
		if v, dup := vals[name]; dup && v != m[i+1] {
			return nil, false
		}
		vals[name] = m[i+1]
	}
	return vals, true
}

// MatchBlobPath reports whether path ("container/name") matches the blob
// trigger pattern and returns the names it binds. An invalid pattern matches
// nothing; use ParseBlobPattern to see why, and to match many paths.
func MatchBlobPath(pattern, path string) (map[string]string, bool) {
	p, err := ParseBlobPattern(pattern)
	if err != nil {
		return nil, false
	}
	return p.Match(path)
}
