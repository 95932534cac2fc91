package azstorage

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
)

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestExpand(t *testing.T) {
	now := time.Date(2018, 2, 16, 17, 59, 55, 123456700, time.FixedZone("CET", 3600))
	vals := map[string]string{"name": "photo.png", "Id": "42", "data.customer": "ada", "sys.MethodName": "Resize"}
	tests := []struct{ tmpl, want string }{
		{"out/{name}", "out/photo.png"},
		{"out/{name}-{name}", "out/photo.png-photo.png"},
		{"out/{id}/{ID}", "out/42/42"}, // case-insensitive when not exact
		{"out/{data.customer}.json", "out/ada.json"},
		{"logs/{DateTime}.txt", "logs/2018-02-16T16-59-55Z.txt"}, // UTC
		{"logs/{datetime}", "logs/2018-02-16T16-59-55Z"},
		{"{sys.UtcNow}", "2018-02-16T16:59:55.1234567Z"},
		{"{sys.MethodName}", "Resize"},
		{"logs/{DateTime:yyyy/MM/dd}/{DateTime:HH-mm-ss.fff}", "logs/2018/02/16/16-59-55.123"},
		{"{DateTime:yy M d h tt 'at' H\\:m\\:s ffffff}", "18 2 16 4 PM at 16:59:55 123456"},
		{"{{literal}} }}{{", "{literal} }{"},
		{"plain/path.txt", "plain/path.txt"},
		{"", ""},
	}
	for _, tc := range tests {
		got, err := Expand(tc.tmpl, vals, now)
		if err != nil {
			t.Errorf("Expand(%q): %v", tc.tmpl, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Expand(%q) = %q, want %q", tc.tmpl, got, tc.want)
		}
	}

	a, err := Expand("{rand-guid}", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Expand("{rand-guid}", nil, now)
	c, _ := Expand("{sys.RandGuid}", nil, now)
	if !guidRE.MatchString(a) || !guidRE.MatchString(c) || a == b {
		t.Errorf("rand-guid %q %q, sys.RandGuid %q: want fresh v4 GUIDs", a, b, c)
	}
	if n, _ := Expand("{rand-guid:N}", nil, now); len(n) != 32 || strings.Contains(n, "-") {
		t.Errorf("rand-guid:N = %q, want 32 hex digits", n)
	}
	if b, _ := Expand("{rand-guid:B}", nil, now); !guidRE.MatchString(strings.Trim(b, "{}")) || b[0] != '{' {
		t.Errorf("rand-guid:B = %q, want {guid}", b)
	}
	// A trigger's own DateTime value wins, as on Azure.
	if got, _ := Expand("{DateTime}", map[string]string{"DateTime": "mine"}, now); got != "mine" {
		t.Errorf("DateTime with a bound value: %q, want mine", got)
	}
	// The invocation's own sys values win over fresh ones.
	if got, _ := Expand("{sys.RandGuid}/{sys.UtcNow}", map[string]string{"sys.RandGuid": "g", "sys.UtcNow": "t"}, now); got != "g/t" {
		t.Errorf("sys values from vals: %q, want g/t", got)
	}
}

func TestExpandErrors(t *testing.T) {
	vals := map[string]string{"Name": "a", "NAME": "b"}
	for _, tc := range []struct{ tmpl, want string }{
		{"out/{missing}", "no value for {missing}"},
		{"out/{name}", "no value for {name}"}, // ambiguous: Name and NAME
		{"out/{name", "is not closed"},
		{"out/{na{me}", "is not closed"},
		{"out/name}", "has no {"},
		{"out/{}", "{} is not a name"},
		{"out/{a b}", "{a b} is not a name"},
		{"out/{name:N}", "only {rand-guid:...} and {DateTime:...} take a format"},
		{"out/{rand-guid:X}", `GUID format "X"`},
		{"out/{DateTime:}", "empty format"},
		{"out/{DateTime:yyyy-Q}", `"Q" is not supported`},
		{"out/{DateTime:'open}", "quote not closed"},
	} {
		_, err := Expand(tc.tmpl, vals, time.Now())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Expand(%q) error %v, want %q", tc.tmpl, err, tc.want)
		} else if hotswap.ErrorKind(err) != hotswap.Invalid {
			t.Errorf("Expand(%q) error kind %v, want Invalid", tc.tmpl, hotswap.ErrorKind(err))
		}
	}
}

func TestNames(t *testing.T) {
	got, err := Names("out/{name}/{rand-guid}-{DateTime}/{Id}.{name}{sys.UtcNow}")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"name", "Id"}, got); diff != "" {
		t.Errorf("Names mismatch (-want +got):\n%s", diff)
	}
}

func TestExpandSettings(t *testing.T) {
	settings := map[string]string{"OrdersQueue": "orders-prod", "Env": "eu"}
	for _, tc := range []struct{ in, want, err string }{
		{in: "%OrdersQueue%", want: "orders-prod"},
		{in: "out-%Env%/{name}", want: "out-eu/{name}"},
		{in: "100%%", want: "100%"},
		{in: "plain", want: "plain"},
		{in: "%Missing%", err: "app setting Missing is not set"},
		{in: "%Env", err: "is not closed"},
	} {
		got, err := ExpandSettings(tc.in, settings)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ExpandSettings(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ExpandSettings(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestMatchBlobPath(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          map[string]string // nil: no match
	}{
		{"samples-workitems/{name}", "samples-workitems/a.txt", map[string]string{"name": "a.txt"}},
		{"samples-workitems/{name}", "samples-workitems/folder/a.txt", map[string]string{"name": "folder/a.txt"}},
		{"samples-workitems/{name}", "other/a.txt", nil},
		{"samples-workitems/{name}", "samples-workitems-2/a.txt", nil},
		{"input/{blobname}.{blobextension}", "input/original-Blob1.txt", map[string]string{"blobname": "original-Blob1", "blobextension": "txt"}},
		{"input/{blobname}.{blobextension}", "input/a.b.txt", map[string]string{"blobname": "a.b", "blobextension": "txt"}},
		{"input/{blobname}.{blobextension}", "input/noext", nil},
		{"input/original-{name}", "input/original-Blob1.txt", map[string]string{"name": "Blob1.txt"}},
		{"input/original-{name}", "input/copy-Blob1.txt", nil},
		{"samples/{name}.png", "samples/cat.png", map[string]string{"name": "cat"}},
		{"samples/{name}.png", "samples/cat.PNG", nil}, // blob names are case-sensitive
		{"images/{{20140101}}-{name}", "images/{20140101}-soundfile.mp3", map[string]string{"name": "soundfile.mp3"}},
		{"images/{{20140101}}-{name}", "images/20140101-soundfile.mp3", nil},
		{"dup/{x}/{x}", "dup/a/a", map[string]string{"x": "a"}},
		{"dup/{x}/{x}", "dup/a/b", nil},
		{"whole", "whole/any/blob", map[string]string{}},
		{"fixed/report.csv", "fixed/report.csv", map[string]string{}},
		{"fixed/report.csv", "fixed/report.csvx", nil},
		{"samples/{name}", "samples/", nil},
		{"samples/{name}", "samples/line\nbreak", map[string]string{"name": "line\nbreak"}},
	}
	for _, tc := range tests {
		got, ok := MatchBlobPath(tc.pattern, tc.path)
		if ok != (tc.want != nil) {
			t.Errorf("MatchBlobPath(%q, %q) ok = %v, want %v", tc.pattern, tc.path, ok, tc.want != nil)
			continue
		}
		if diff := cmp.Diff(tc.want, got); ok && diff != "" {
			t.Errorf("MatchBlobPath(%q, %q) mismatch (-want +got):\n%s", tc.pattern, tc.path, diff)
		}
	}
}

func TestParseBlobPattern(t *testing.T) {
	p, err := ParseBlobPattern("uploads/in/2024-{name}.{ext}")
	if err != nil {
		t.Fatal(err)
	}
	if p.Container() != "uploads" || p.Prefix() != "in/2024-" {
		t.Errorf("Container %q Prefix %q, want uploads, in/2024-", p.Container(), p.Prefix())
	}
	for _, tc := range []struct{ pattern, want string }{
		{"Uploads/{name}", `container name "Uploads"`},
		{"{container}/{name}", `container name "{container}"`},
		{"ups/{name", "is not closed"},
		{"ups/{rand-guid}", "cannot use {rand-guid}"},
		{"ups/{DateTime}", "cannot use {DateTime}"},
	} {
		if _, err := ParseBlobPattern(tc.pattern); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseBlobPattern(%q) error %v, want %q", tc.pattern, err, tc.want)
		}
	}
	if _, ok := MatchBlobPath("Bad/{name}", "Bad/x"); ok {
		t.Error("an invalid pattern matched")
	}
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"out/{name}", "{rand-guid}/{DateTime}.txt", "{{x}}", "{a}{b}", "{", "}", "{sys.UtcNow}", "x{y.z-w_1}", "{DateTime:yyyy/MM}", "{rand-guid:N}", "{DateTime:'q' \\\\x}"} {
		f.Add(s)
	}
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, tmpl string) {
		names, err := Names(tmpl)
		_, xerr := Expand(tmpl, nil, now)
		if err != nil {
			if xerr == nil {
				t.Fatalf("Names(%q) failed (%v) but Expand did not", tmpl, err)
			}
			return
		}
		// With every name given a value, Expand succeeds.
		vals := make(map[string]string, len(names))
		for _, n := range names {
			vals[n] = "v"
		}
		got, err := Expand(tmpl, vals, now)
		if err != nil {
			t.Fatalf("Expand(%q) with all names %v: %v", tmpl, names, err)
		}
		if !strings.ContainsAny(tmpl, "{}") && got != tmpl {
			t.Fatalf("Expand(%q) = %q, want the template unchanged", tmpl, got)
		}
		if xerr == nil && len(names) > 0 {
			t.Fatalf("Expand(%q) without values succeeded though it names %v", tmpl, names)
		}
	})
}

func FuzzMatchBlobPath(f *testing.F) {
	for _, s := range [][2]string{
		{"samples/{name}", "samples/a/b.txt"},
		{"input/{blobname}.{blobextension}", "input/original-Blob1.txt"},
		{"images/{{2014}}-{name}", "images/{2014}-x"},
		{"dup/{x}/{x}", "dup/a/a"},
		{"c0n/", "c0n/x"},
	} {
		f.Add(s[0], s[1])
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, pattern, path string) {
		p, err := ParseBlobPattern(pattern)
		if err != nil {
			if _, ok := MatchBlobPath(pattern, path); ok {
				t.Fatalf("invalid pattern %q matched", pattern)
			}
			return
		}
		vals, ok := p.Match(path)
		if !ok {
			return
		}
		if !strings.HasPrefix(path, p.Container()+"/"+p.Prefix()) {
			t.Fatalf("%q matched %q outside container %q prefix %q", pattern, path, p.Container(), p.Prefix())
		}
		for k, v := range vals {
			if v == "" {
				t.Fatalf("%q on %q bound %s to empty", pattern, path, k)
			}
		}
		// What a trigger binds rebuilds the blob's path through the same
		// pattern used as an output path.
		_, rest, _ := strings.Cut(pattern, "/")
		if rest == "" {
			return
		}
		got, err := Expand(rest, vals, now)
		if err != nil {
			t.Fatalf("Expand(%q, %v): %v", rest, vals, err)
		}
		if want := path[len(p.Container())+1:]; got != want {
			t.Fatalf("pattern %q on %q bound %v, which expands to %q", pattern, path, vals, got)
		}
	})
}
