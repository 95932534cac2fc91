package main

import (
	"regexp"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserSlotCharts: requests served by a slot show on its page as the
// last hour's charts, drawn by the server, and at phone width the charts
// fit the screen.
func TestBrowserSlotCharts(t *testing.T) {
	t.Parallel()
	s, b, _, _ := screensServer(t)
	for range 7 {
		s.health("orders.localhost")
	}
	if resp, _ := s.fn("GET", "orders.localhost", "/api/no-such-function", nil, nil); resp.StatusCode != 404 {
		t.Fatalf("a missing function = %d, want 404", resp.StatusCode)
	}

	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.open("/apps/orders/slots/production")
	// The 404 is the router's: no slot process served it, so it is not
	// counted; a 404 from a function would count as a request, not an error.
	if got, want := b.text("charts-summary"), `^last hour: 7 requests, 0% errors, p95 [0-9.]+ m?s$`; !regexp.MustCompile(want).MatchString(got) {
		t.Errorf("charts summary = %q, want it to match %s", got, want)
	}
	if n := eval[int](b, `document.querySelectorAll('#charts svg[role="img"] title').length`); n != 3 {
		t.Errorf("the slot page has %d titled charts, want 3", n)
	}
	// The charts take the width there is and no more.
	if !eval[bool](b, `Array.from(document.querySelectorAll("#charts svg")).every(function(s){var r=s.getBoundingClientRect();return r.width>200&&r.right<=innerWidth&&r.height>0})`) {
		t.Error("a chart is too narrow or spills over at phone width")
	}
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the slot page is %dpx wide at phone width, want at most 390", w)
	}
	b.screenshot("slot-charts-phone", true)

	b.open("/apps/orders/slots/staging")
	if got := b.text("charts-summary"); got != "last hour: no requests" {
		t.Errorf("staging's charts summary = %q, want no requests", got)
	}
}
