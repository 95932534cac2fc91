package router

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/hotswap/hotswap"
)

// RoutingCookie names the cookie, and the query parameter, that pin a
// client of production's host name to a slot, as on Azure: its value is a
// slot name, or "self" for production.
const RoutingCookie = "x-ms-routing-name"

// routingSelf is the routing name of production itself.
const routingSelf = "self"

// routingMaxAge is how long, in seconds, the routing cookie keeps a client
// on the slot it landed on.
const routingMaxAge = "3600"

// Share sends a part of the requests to production's host name to another
// slot of the same app. Slot is that slot's name; Percent is in [0, 100]
// (0: only clients that ask for it with the query parameter get there).
type Share struct {
	Slot    string
	Percent float64
}

// traffic is production's resolved routing rule, built by NewTable and
// read on the request path without a lock: routes in rule order, each with
// the upper end of its range in basis points of a draw in [0, 10000).
type traffic struct {
	routes []trafficRoute
	self   string // Set-Cookie value for production
}

type trafficRoute struct {
	name      string
	slot      *Slot
	until     uint32
	setCookie string // the Set-Cookie value sending a client here
}

func routingSetCookie(name string) string {
	return RoutingCookie + "=" + name + "; Max-Age=" + routingMaxAge + "; Path=/; HttpOnly"
}

// resolveTraffic resolves s's shares against the table's slots. A share
// whose slot is not in the table, is s itself, or has nothing deployed is
// dropped: its requests stay on s. Percentages are summed in basis points
// and capped at 100%.
func (t *Table) resolveTraffic(s *Slot) *traffic {
	if len(s.Shares) == 0 {
		return nil
	}
	tr := &traffic{self: routingSetCookie(routingSelf)}
	var sum uint32
	for _, sh := range s.Shares {
		if sh.Slot == "" || sh.Slot == s.Name || strings.EqualFold(sh.Slot, routingSelf) {
			continue
		}
		label := hotswap.HostLabel(s.App, sh.Slot)
		target := t.slots[label]
		if target == nil || target.App != s.App || target.Routes == nil || target.Upstream == nil {
			continue
		}
		p := sh.Percent
		if math.IsNaN(p) || p < 0 {
			p = 0
		}
		bp := uint32(min(math.Round(p*100), 10000))
		sum = min(sum+bp, 10000)
		tr.routes = append(tr.routes, trafficRoute{name: sh.Slot, slot: target, until: sum, setCookie: routingSetCookie(sh.Slot)})
	}
	if len(tr.routes) == 0 {
		return nil
	}
	return tr
}

// route chooses the slot that serves a request to s's host name: the slot
// named by the query parameter when s has a rule for it (or "self"), else
// the one the cookie names, else a draw by the shares. setCookie is the
// Set-Cookie value to answer with, "" when the client already holds the
// right cookie. It takes no lock and allocates nothing.
func (s *Slot) route(cookie, query string) (target *Slot, setCookie string) {
	tr := s.traffic
	if tr == nil {
		return s, ""
	}
	if query != "" {
		if t, ok := tr.named(s, query); ok {
			if query == cookie {
				return t, ""
			}
			if t == s {
				return s, tr.self
			}
			return t, tr.cookieOf(t)
		}
	}
	if cookie != "" {
		if t, ok := tr.named(s, cookie); ok {
			return t, ""
		}
	}
	n := rand.Uint32N(10000)
	for i := range tr.routes {
		if n < tr.routes[i].until {
			return tr.routes[i].slot, tr.routes[i].setCookie
		}
	}
	return s, tr.self
}

// named returns the slot a routing name designates, ok=false when no rule
// names it.
func (tr *traffic) named(self *Slot, name string) (*Slot, bool) {
	if strings.EqualFold(name, routingSelf) {
		return self, true
	}
	for i := range tr.routes {
		if strings.EqualFold(tr.routes[i].name, name) {
			return tr.routes[i].slot, true
		}
	}
	return nil, false
}

func (tr *traffic) cookieOf(t *Slot) string {
	for i := range tr.routes {
		if tr.routes[i].slot == t {
			return tr.routes[i].setCookie
		}
	}
	return tr.self
}

// routeHTTP is route for the net/http path.
func (s *Slot) routeHTTP(r *http.Request) (*Slot, string) {
	if s.traffic == nil {
		return s, ""
	}
	return s.route(headerCookie(r.Header["Cookie"]), queryValue(r.URL.RawQuery, RoutingCookie))
}

// routeLean is route for the lean path, reading the head in place.
func (s *Slot) routeLean(hd *head) (*Slot, string) {
	if s.traffic == nil {
		return s, ""
	}
	cookie := ""
	for _, line := range hd.lines {
		if len(line) > 7 && equalFold(line[:7], "cookie:") {
			if v := cookieValue(bstr(trimOWS(line[7:]))); v != "" {
				cookie = v
				break
			}
		}
	}
	return s.route(cookie, queryValue(bstr(hd.query), RoutingCookie))
}

func headerCookie(lines []string) string {
	for _, l := range lines {
		if v := cookieValue(l); v != "" {
			return v
		}
	}
	return ""
}

// cookieValue returns the value of the routing cookie in a Cookie header
// value ("a=1; x-ms-routing-name=staging"), "" when it is not there.
func cookieValue(h string) string {
	for h != "" {
		var part string
		if i := indexByte(h, ';'); i >= 0 {
			part, h = h[:i], h[i+1:]
		} else {
			part, h = h, ""
		}
		part = strings.TrimSpace(part)
		name, val, ok := strings.Cut(part, "=")
		if ok && name == RoutingCookie {
			return strings.Trim(val, `"`)
		}
	}
	return ""
}
