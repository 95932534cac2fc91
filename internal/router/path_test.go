package router

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	tests := []struct {
		name, in, want string
		bad            bool // a *PathError
	}{
		{name: "plain", in: "/api/hello", want: "/api/hello"},
		{name: "root", in: "/", want: "/"},
		{name: "empty", in: "", want: ""},
		{name: "asterisk", in: "*", want: "*"},
		{name: "trailing slash kept", in: "/api/hello/", want: "/api/hello/"},
		{name: "empty segments kept", in: "/api//hello", want: "/api//hello"},
		{name: "dots inside names", in: "/api/files/a.b/..c/c../...", want: "/api/files/a.b/..c/c../..."},
		{name: "other escapes kept", in: "/api/files/a%2Fb%20c", want: "/api/files/a%2Fb%20c"},
		{name: "parent", in: "/api/files/../hello", want: "/api/hello"},
		{name: "parent encoded", in: "/api/files/%2e%2e/hello", want: "/api/hello"},
		{name: "parent encoded upper", in: "/api/files/%2E%2E/hello", want: "/api/hello"},
		{name: "parent half encoded", in: "/api/files/.%2E/hello", want: "/api/hello"},
		{name: "two parents", in: "/api/files/x/../../hello", want: "/api/hello"},
		{name: "current", in: "/api/./hello", want: "/api/hello"},
		{name: "current encoded", in: "/api/%2e/hello", want: "/api/hello"},
		{name: "current last", in: "/api/hello/.", want: "/api/hello/"},
		{name: "parent last", in: "/api/hello/x/..", want: "/api/hello/"},
		{name: "parent to root", in: "/api/..", want: "/"},
		{name: "parent pops an empty segment", in: "/api//../hello", want: "/api/hello"},
		{name: "encoded dot in a name decoded", in: "/api/files/a%2etxt", want: "/api/files/a.txt"},
		{name: "encoded dots then parent", in: "/api/%2e%2e%2e/..", want: "/api/"},
		{name: "backslash without dots kept", in: `/api/files/a\b`, want: `/api/files/a\b`},
		{name: "semicolon in a name kept", in: "/api/files/a;b", want: "/api/files/a;b"},
		{name: "above the root", in: "/..", bad: true},
		{name: "above the root later", in: "/api/../../hello", bad: true},
		{name: "above the root encoded", in: "/%2e%2e/x", bad: true},
		{name: "above the root from a catch-all", in: "/api/files/../../../etc/passwd", bad: true},
		{name: "parent with parameters", in: "/api/files/..;/hello", bad: true},
		{name: "current with parameters", in: "/api/files/.;x/hello", bad: true},
		{name: "parent next to backslash", in: `/api/files/..\hello`, bad: true},
		{name: "parent after backslash", in: `/api/files/x\..\..\hello`, bad: true},
		{name: "encoded parent next to backslash", in: `/api/files/%2e%2e\hello`, bad: true},
		{name: "parent next to encoded backslash", in: "/api/files/..%5chello", bad: true},
		{name: "parent next to encoded backslash upper", in: "/api/files/x%5C..%5C..%5Chello", bad: true},
		{name: "encoded backslash without dots kept", in: "/api/files/a%5Cb", want: "/api/files/a%5Cb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CleanPath(tc.in)
			if tc.bad {
				var pe *PathError
				if !errors.As(err, &pe) {
					t.Fatalf("CleanPath(%q) = %q, %v; want a *PathError", tc.in, got, err)
				}
				if pe.Path != tc.in {
					t.Errorf("PathError.Path = %q, want %q", pe.Path, tc.in)
				}
				return
			}
			if err != nil {
				t.Fatalf("CleanPath(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("CleanPath(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if again, err := CleanPath(got); again != got || err != nil {
				t.Errorf("CleanPath(%q) = %q, %v; want it unchanged", got, again, err)
			}
		})
	}
}

// TestCleanPathAllocs guards the lean path's budget: a path with no dot
// segment and no "%2e" costs no allocation.
func TestCleanPathAllocs(t *testing.T) {
	for _, p := range []string{"/api/hello", "/api/files/a.txt/b..c", "/api/items/%2Fx%20y", "/"} {
		allocs := testing.AllocsPerRun(100, func() {
			if got, err := CleanPath(p); got != p || err != nil {
				t.Fatalf("CleanPath(%q) = %q, %v", p, got, err)
			}
		})
		if allocs != 0 {
			t.Errorf("CleanPath(%q) allocates %v times, want 0", p, allocs)
		}
	}
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{
		"/", "/api/hello", "/api/files/../hello", "/api/files/%2e%2E/hello", "/api/files/x/../../hello",
		"/..", "/a/./b/.", "/a//../b", `/a\..\b`, "/a/..;/b", "/a/%2e", "/a/..%5cb", "/a%2e%2e/b", "/a/b/c/../../..",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if in == "" || in[0] != '/' {
			in = "/" + in
		}
		got, err := CleanPath(in)
		if isCleanPath(in) && (got != in || err != nil) {
			t.Fatalf("CleanPath(%q) = %q, %v; isCleanPath says it needs no change", in, got, err)
		}
		want, climbs := referenceClean(in)
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("CleanPath(%q): %v is not a *PathError", in, err)
			}
			if !climbs && !strings.Contains(in, `\`) && !strings.Contains(in, ";") && !strings.Contains(strings.ToLower(in), "%5c") {
				t.Fatalf("CleanPath(%q): %v; the path does not climb above the root", in, err)
			}
			return
		}
		if climbs {
			t.Fatalf("CleanPath(%q) = %q; the path climbs above the root", in, got)
		}
		if got != want {
			t.Fatalf("CleanPath(%q) = %q, want %q", in, got, want)
		}
		if !strings.HasPrefix(got, "/") {
			t.Fatalf("CleanPath(%q) = %q: not absolute", in, got)
		}
		for _, seg := range strings.Split(got, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("CleanPath(%q) = %q: has a %q segment", in, got, seg)
			}
		}
		if strings.Contains(strings.ToLower(got), "%2e") {
			t.Fatalf("CleanPath(%q) = %q: still has %%2e", in, got)
		}
		if again, err := CleanPath(got); again != got || err != nil {
			t.Fatalf("CleanPath(%q) = %q, but CleanPath(%q) = %q, %v: not idempotent", in, got, got, again, err)
		}
		// Where RFC 3986 and path.Clean agree (no empty segments, which
		// path.Clean merges first), the results are the same up to the
		// trailing slash RFC 3986 keeps.
		decoded := strings.NewReplacer("%2e", ".", "%2E", ".").Replace(in)
		if !strings.Contains(decoded, "//") {
			pc := path.Clean(decoded)
			if got != pc && got != pc+"/" {
				t.Fatalf("CleanPath(%q) = %q; path.Clean gives %q", in, got, pc)
			}
		}
	})
}

// referenceClean is RFC 3986 section 5.2.4 written out as the RFC words
// it, over the input buffer, with "%2e" decoded first; climbs reports a
// ".." that would go above the root (which the RFC drops silently).
func referenceClean(in string) (out string, climbs bool) {
	s := strings.NewReplacer("%2e", ".", "%2E", ".").Replace(in)
	var o strings.Builder
	for s != "" {
		switch {
		case strings.HasPrefix(s, "/./"):
			s = s[2:]
		case s == "/.":
			s = "/"
		case strings.HasPrefix(s, "/../") || s == "/..":
			if s == "/.." {
				s = "/"
			} else {
				s = s[3:]
			}
			cur := o.String()
			if cur == "" {
				climbs = true
			}
			i := strings.LastIndexByte(cur, '/')
			o.Reset()
			if i > 0 {
				o.WriteString(cur[:i])
			}
		default:
			i := strings.IndexByte(s[1:], '/')
			if i < 0 {
				o.WriteString(s)
				s = ""
			} else {
				o.WriteString(s[:i+1])
				s = s[i+1:]
			}
		}
	}
	return o.String(), climbs
}

func ExampleCleanPath() {
	for _, p := range []string{"/api/hello", "/api/files/%2e%2e/hello", "/api/files/x/../../hello", "/api/../../etc/passwd"} {
		clean, err := CleanPath(p)
		fmt.Println(clean, err)
	}
	// Output:
	// /api/hello <nil>
	// /api/hello <nil>
	// /api/hello <nil>
	//  path "/api/../../etc/passwd" climbs above the root with ".."
}
