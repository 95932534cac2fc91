package portal

import (
	"net/url"
	"strings"
	"testing"
)

func TestSafeNext(t *testing.T) {
	tests := []struct{ next, want string }{
		{"", "/apps"},
		{"/apps/orders", "/apps/orders"},
		{"/apps/orders/slots/staging?x=1#keys", "/apps/orders/slots/staging?x=1#keys"},
		{"/pipelines", "/pipelines"},
		{"/", "/"},
		{"/%2e%2e/apps", "/%2e%2e/apps"},
		// Off-site, as they are or as a browser reads them.
		{"//evil.example", "/apps"},
		{"///evil.example", "/apps"},
		{"/\\evil.example", "/apps"},
		{"\\\\evil.example", "/apps"},
		{"/\t/evil.example", "/apps"},
		{"/\n/evil.example", "/apps"},
		{"/\r\n/evil.example", "/apps"},
		{"/%09/evil.example", "/apps"},
		{"/%0a/evil.example", "/apps"},
		{"/%2F%2Fevil", "/apps"},
		{"/%2f/evil", "/apps"},
		{"/%5Cevil.example", "/apps"},
		{" //evil.example", "/apps"},
		{"\x00//evil.example", "/apps"},
		{"/ /evil.example", "/apps"},
		{"/\u3000/evil.example", "/apps"},
		{"/\u00a0/evil.example", "/apps"},
		{"https://evil.example", "/apps"},
		{"https:/evil.example", "/apps"},
		{"http:evil.example", "/apps"},
		{"javascript:alert(1)", "/apps"},
		{"evil.example", "/apps"},
		{"apps", "/apps"},
		{"/\xff/evil", "/apps"},
		{"/%zz", "/apps"},
		// The sign-in pages themselves would loop.
		{"/signin", "/apps"},
		{"/signin?next=/apps", "/apps"},
		{"/signout", "/apps"},
		{"/" + strings.Repeat("a", 3000), "/apps"},
	}
	for _, tc := range tests {
		if got := safeNext(tc.next); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.next, got, tc.want)
		}
	}
}

// browserForm is what a browser makes of a Location value before resolving
// it (WHATWG URL): tab, CR and LF go wherever they are, C0 controls and
// spaces go at both ends, and a backslash is a slash in http(s) URLs.
func browserForm(s string) string {
	s = strings.Map(func(c rune) rune {
		switch c {
		case '\t', '\n', '\r':
			return -1
		case '\\':
			return '/'
		}
		return c
	}, s)
	return strings.TrimFunc(s, func(c rune) bool { return c <= ' ' })
}

// FuzzSafeNext checks that whatever safeNext returns stays on the portal,
// resolved as Go resolves it and as a browser does.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{
		"/apps", "//evil.example", "/\\evil.example", "/\t/evil.example", "/%09/evil.example",
		"https://evil.example", "/%2F%2Fevil", "/a?b=//c#//d", " /x", "/\x00/evil", "/signin",
	} {
		f.Add(s)
	}
	base, _ := url.Parse("https://portal.example/apps/orders")
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got != next && got != home {
			t.Fatalf("safeNext(%q) = %q, neither the input nor %s", next, got, home)
		}
		for _, s := range []string{got, browserForm(got)} {
			ref, err := url.Parse(s)
			if err != nil {
				t.Fatalf("safeNext(%q) = %q, which url.Parse refuses: %v", next, got, err)
			}
			if u := base.ResolveReference(ref); u.Host != "portal.example" || u.Scheme != "https" {
				t.Fatalf("safeNext(%q) = %q, which leads to %s", next, got, u)
			}
		}
	})
}
