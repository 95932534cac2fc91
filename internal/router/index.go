package router

import (
	"html"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/hotswap/hotswap/internal/funcapp"
)

// serveIndex answers a browser's GET / on a slot whose functions do not
// serve "/" with a small page instead of a bare "not found": the app and
// slot, and the anonymous HTTP functions it serves, linked when they take
// GET at a fixed route. Functions that need a key are counted, not named:
// a caller without a key learns no route from the slot (see serveSlot). It
// reports whether it answered.
func serveIndex(w http.ResponseWriter, r *http.Request, s *Slot) bool {
	if r.URL.Path != "/" || r.Method != http.MethodGet && r.Method != http.MethodHead ||
		!strings.Contains(r.Header.Get("Accept"), "text/html") || s.Package == nil || s.Routes == nil {
		return false
	}
	var open []*funcapp.Function
	keyed := 0
	for _, fn := range s.Package.Functions {
		if _, broken := s.Broken[fn.Name]; fn.Trigger != "http" || !fn.Runnable || s.Disabled[fn.Name] || broken {
			continue
		}
		if fn.AuthLevel == "anonymous" {
			open = append(open, fn)
		} else {
			keyed++
		}
	}
	var b strings.Builder
	title := html.EscapeString(s.App + " / " + s.Name)
	b.WriteString(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>` + title + `</title></head><body><h1>` + title + `</h1>`)
	b.WriteString(`<p>This slot serves deployment ` + html.EscapeString(s.Deployment) + `.</p>`)
	if len(open) > 0 {
		b.WriteString(`<h2>HTTP functions without a key</h2><ul>`)
		for _, fn := range open {
			path := "/" + fn.Route
			if p := s.Routes.Prefix(); p != "" {
				path = "/" + p + path
			}
			methods := "any method"
			if fn.Methods != nil {
				methods = strings.Join(fn.Methods, ", ")
			}
			item := `<code>` + html.EscapeString(path) + `</code>`
			if !strings.Contains(fn.Route, "{") && (fn.Methods == nil || slices.Contains(fn.Methods, http.MethodGet)) {
				item = `<a href="` + html.EscapeString(path) + `">` + item + `</a>`
			}
			b.WriteString(`<li>` + html.EscapeString(fn.Name) + `: ` + item + ` (` + html.EscapeString(methods) + `)</li>`)
		}
		b.WriteString(`</ul>`)
	}
	switch keyed {
	case 0:
		if len(open) == 0 {
			b.WriteString(`<p>It has no HTTP function.</p>`)
		}
	case 1:
		b.WriteString(`<p>1 more HTTP function needs a key: its URL with the key is under "Get function URL" on the slot's page in the portal, or <code>hotswap url</code>.</p>`)
	default:
		b.WriteString(`<p>` + strconv.Itoa(keyed) + ` more HTTP functions need a key: their URLs with the key are under "Get function URL" on the slot's page in the portal, or <code>hotswap url</code>.</p>`)
	}
	b.WriteString(`</body></html>`)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte(b.String()))
	}
	return true
}
