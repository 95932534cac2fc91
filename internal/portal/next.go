package portal

import (
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// home is where a sign-in goes when it has nowhere else to go.
const home = "/apps"

// safeNext keeps a post-sign-in target on this site: it returns next when
// it is a local path, and home otherwise.
//
// Browsers drop tab, CR and LF anywhere in a URL, trim controls and spaces
// at its ends and read '\' as '/', so "/\t/evil.example" and
// "/\evil.example" lead off-site although they start with one '/'. So
// next is taken only when neither it nor its percent-decoded form holds a
// control character, a space or a backslash, when both start with a
// single '/' followed by something else, and when url.Parse sees neither a
// scheme nor a host in it.
func safeNext(next string) string {
	if len(next) > 2048 || !localPath(next) {
		return home
	}
	dec, err := url.PathUnescape(next)
	if err != nil || !localPath(dec) {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return home
	}
	switch u.Path {
	case "/signin", "/signout":
		return home
	}
	return next
}

// localPath reports whether s starts with a single '/' followed by
// something other than '/' or '\', and holds no control character, space
// or backslash, nor invalid UTF-8.
func localPath(s string) bool {
	if len(s) < 2 || s[0] != '/' || s[1] == '/' || !utf8.ValidString(s) {
		return s == "/"
	}
	return !strings.ContainsFunc(s, func(c rune) bool {
		return c == '\\' || unicode.IsControl(c) || unicode.IsSpace(c) || c == utf8.RuneError
	})
}

// refererNext returns the page a POST came from, when it is a local path
// of this portal, to return to after signing in again; else home.
func refererNext(r *http.Request) string {
	u, err := url.Parse(r.Referer())
	if err != nil || u.Host != r.Host {
		return home
	}
	return safeNext(u.RequestURI())
}
