package portal

import (
	"net/http"
	"net/url"
	"strings"
)

// pageURL returns the address of the page a POST renders (a form shown
// again with its error, a token shown once) as one that can be loaded
// again: the request's path if a GET route serves it, else the nearest
// parent path one does (POST /apps/a/slots/s/settings: the slot's page).
// The editor of a new pipeline, posted to /pipelines, is /pipelines/new.
// The browser shows it in place of the POST's (portal.js), so a reload or
// a bookmark does not answer 405.
func (p *Portal) pageURL(r *http.Request) string {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return ""
	}
	if r.URL.Path == "/pipelines" {
		return "/pipelines/new"
	}
	for path := r.URL.Path; path != "" && path != "/"; path = path[:strings.LastIndex(path, "/")] {
		u := &url.URL{Path: path}
		if _, pattern := p.mux.Handler(&http.Request{Method: http.MethodGet, URL: u, Host: r.Host}); strings.HasPrefix(pattern, "GET ") {
			return u.EscapedPath()
		}
	}
	return ""
}
