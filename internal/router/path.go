package router

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// CleanPath removes the dot segments of an escaped request path (RFC 3986
// section 5.2.4) after decoding "%2e" (in any case) to ".", as the Azure
// host (Kestrel) and nginx do before they route a request. The data plane
// matches routes, checks keys on and forwards the cleaned path, so that a
// handler that normalises paths itself (Node's URL parser, most Java and
// Python frameworks) serves the function whose key was checked and not one
// a "../" climbed to from an anonymous catch-all route.
//
// A path that would climb above the root is an error (400), not silently
// clamped as RFC 3986 does. So are two spellings that handlers disagree on:
// a "." or ".." segment next to a backslash, raw or encoded as "%5c"
// (Node's URL parser reads a raw "\" as "/", some servlet containers decode
// "%5c" first; Kestrel and nginx do neither), and a "." or ".." segment
// with parameters after ";" (Tomcat drops them and climbs, the others do
// not).
//
// A path that needs no change, the usual case, is returned as it is without
// allocating. A path that does not start with "/" ("*", or empty) is
// returned as it is.
func CleanPath(p string) (string, error) {
	if isCleanPath(p) {
		return p, nil
	}
	return cleanPath(p)
}

// isCleanPath reports, without allocating, that CleanPath would return p
// unchanged: p holds no "%2e", no backslash (raw or "%5c"), and no segment
// that is "." or "..", bare or followed by ";".
func isCleanPath(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%':
			if i+2 < len(p) && (p[i+1] == '2' && p[i+2]|0x20 == 'e' || p[i+1] == '5' && p[i+2]|0x20 == 'c') {
				return false
			}
		case '\\':
			return false
		case '.':
			if i > 0 && p[i-1] != '/' {
				continue
			}
			j := i + 1
			if j < len(p) && p[j] == '.' {
				j++
			}
			if j == len(p) || p[j] == '/' || p[j] == ';' {
				return false
			}
		}
	}
	return true
}

// PathError is a request path that CleanPath refuses.
type PathError struct {
	Path string // as the client sent it
	Why  string
}

func (e *PathError) Error() string { return fmt.Sprintf("path %q %s", e.Path, e.Why) }

func cleanPath(p string) (string, error) {
	if p == "" || p[0] != '/' {
		return p, nil
	}
	d := decodeDots(p)
	segs := strings.Split(d[1:], "/")
	out := make([]string, 0, len(segs))
	for i, seg := range segs {
		if err := checkSegment(p, seg); err != nil {
			return "", err
		}
		last := i == len(segs)-1
		switch seg {
		case ".":
			if last {
				out = append(out, "") // "/a/." is "/a/"
			}
		case "..":
			if len(out) == 0 {
				return "", &PathError{Path: p, Why: `climbs above the root with ".."`}
			}
			out = out[:len(out)-1]
			if last {
				out = append(out, "") // "/a/b/.." is "/a/"
			}
		default:
			out = append(out, seg)
		}
	}
	return "/" + strings.Join(out, "/"), nil
}

// decodeDots replaces every "%2e" and "%2E" in p with ".".
func decodeDots(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) && p[i+1] == '2' && p[i+2]|0x20 == 'e' {
			b.WriteByte('.')
			i += 2
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// checkSegment refuses the segment spellings handlers read differently.
func checkSegment(p, seg string) error {
	if name, _, ok := strings.Cut(seg, ";"); ok && isDots(name) {
		return &PathError{Path: p, Why: fmt.Sprintf("has a %q segment with parameters (%q)", name, seg)}
	}
	if strings.IndexByte(seg, '\\') < 0 && !strings.Contains(seg, "%5c") && !strings.Contains(seg, "%5C") {
		return nil
	}
	for piece := range strings.SplitSeq(backslashes.Replace(seg), `\`) {
		name, _, _ := strings.Cut(piece, ";")
		if isDots(name) {
			return &PathError{Path: p, Why: fmt.Sprintf("has a %q segment next to a backslash (%q)", name, seg)}
		}
	}
	return nil
}

func isDots(s string) bool { return s == "." || s == ".." }

var backslashes = strings.NewReplacer("%5c", `\`, "%5C", `\`)

// cleanRequest returns r with its path cleaned by CleanPath: r itself when
// the path needs no change, else a shallow copy with a new URL (the query is
// kept as sent).
func cleanRequest(r *http.Request) (*http.Request, error) {
	p := r.URL.EscapedPath()
	clean, err := CleanPath(p)
	if err != nil || clean == p {
		return r, err
	}
	decoded, err := url.PathUnescape(clean)
	if err != nil {
		return r, &PathError{Path: p, Why: "is not a valid escaped path"}
	}
	u := *r.URL
	u.Path, u.RawPath = decoded, clean
	r2 := r.WithContext(r.Context())
	r2.URL = &u
	r2.RequestURI = u.RequestURI()
	return r2, nil
}
