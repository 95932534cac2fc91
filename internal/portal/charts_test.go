package portal

import (
	"bytes"
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/metrics"
	"github.com/hotswap/hotswap/internal/release"
)

// withMetrics returns a copy of e whose portal charts the registry's data.
func (e *env) withMetrics(m Metrics) *env {
	e.t.Helper()
	auth := func(ctx context.Context, token string) (release.Actor, bool) {
		return release.Actor{Name: "admin", Role: "admin"}, subtle.ConstantTimeCompare([]byte(token), []byte(adminToken)) == 1
	}
	p, err := New(context.Background(), Config{Ops: e.ops, Releases: e.rel, Store: e.db, Authenticate: auth, AdminToken: adminToken,
		Logger: slog.New(slog.DiscardHandler), Version: "test", Metrics: m})
	if err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	e.t.Cleanup(srv.Close)
	c := *e
	c.portal, c.srv = p, srv
	return &c
}

var polylineRe = regexp.MustCompile(`<polyline class="(line-[a-z0-9]+)" fill="none" points="([^"]*)"`)

func TestSlotCharts(t *testing.T) {
	e := newEnv(t)
	if _, err := e.ops.CreateApp(context.Background(), "admin", "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ops.CreateSlot(context.Background(), "admin", "orders", "staging", ""); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 22, 30, 15, 0, time.UTC)
	reg := metrics.New()
	reg.Now = func() time.Time { return now }
	s := reg.Series("orders", "production", "d1")
	// 1,204 requests over the last hour: 2 of them 5xx, all within 60 ms.
	for i := range 1204 {
		reg.Now = func() time.Time { return now.Add(-time.Duration(i%50) * time.Minute) }
		status := 200
		if i < 2 {
			status = 500
		}
		s.Observe(status, 41*time.Millisecond)
	}
	reg.Now = func() time.Time { return now }
	reg.Series("orders", "staging", "d2") // known, but idle

	b := e.withMetrics(reg).browser()
	b.signIn(adminToken)
	status, body := b.get("/apps/orders/slots/production")
	if status != http.StatusOK {
		t.Fatalf("slot page = %d:\n%s", status, body)
	}
	mustContain(t, body,
		`<p id="charts-summary" data-testid="charts-summary">last hour: 1,204 requests, 0.2% errors, p95 60 ms</p>`,
		`<svg viewBox="0 0 300 80" width="100%" role="img" aria-labelledby="chart-requests-title chart-requests-desc"`,
		`<title id="chart-latency-title">Latency p50 and p95</title>`,
		`<desc id="chart-requests-desc">Requests per minute from 21:31 to 22:31 UTC; the scale goes from 0 to 50.</desc>`,
		`Requests: 1,204 in the last hour, at most 25 in a minute.`,
		`Errors: 0.2% in the last hour, at most 4% in a minute.`,
	)
	if n := strings.Count(body, "<svg "); n != 3 {
		t.Errorf("slot page has %d <svg>, want 3 (requests, errors, latency)", n)
	}
	lines := polylineRe.FindAllStringSubmatch(body, -1)
	var classes []string
	for _, l := range lines {
		classes = append(classes, l[1])
		if n := len(strings.Fields(l[2])); n != metrics.HistoryLen {
			t.Errorf("%s has %d points, want %d (one a minute)", l[1], n, metrics.HistoryLen)
		}
	}
	if got, want := strings.Join(classes, " "), "line-requests line-errors line-p50 line-p95"; got != want {
		t.Errorf("polylines = %q, want %q", got, want)
	}
	// The current minute (the last point) had 25 requests, the peak, on a
	// scale to 50; the minutes without requests are at the bottom.
	if len(lines) > 0 {
		pts := strings.Fields(lines[0][2])
		if got, want := pts[len(pts)-1], "300.0,40.0"; got != want { // 25 of a scale to 50: the middle
			t.Errorf("last point of the requests line = %s, want %s", got, want)
		}
		if got, want := pts[0], "0.0,77.0"; got != want {
			t.Errorf("first point (no requests) = %s, want %s", got, want)
		}
	}

	_, body = b.get("/apps/orders/slots/staging")
	mustContain(t, body, `<p id="charts-summary" data-testid="charts-summary">last hour: no requests</p>`)
}

func TestChartsEscape(t *testing.T) {
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	c := &charts{Summary: `<b>&"x"`, Charts: []chart{{
		ID: `c"x`, Title: `<script>alert(1)</script>`, Desc: `a < b & "c"`, Summary: `</figure>`, Scale: `<i>`,
		Lines: []chartLine{{Class: "line-p50", Label: "<u>", Points: `0,0" onload="alert(1)`}}, W: 300, H: 80,
	}}}
	var buf bytes.Buffer
	if err := pages["slot"].ExecuteTemplate(&buf, "charts", c); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, bad := range []string{"<script>", "<b>", "<u>", "<i>", `" onload=`, `a < b`, "</figure>\n</p>"} {
		if strings.Contains(out, bad) {
			t.Errorf("charts output contains %q unescaped:\n%s", bad, out)
		}
	}
	mustContain(t, out, "&lt;script&gt;alert(1)&lt;/script&gt;", "a &lt; b &amp; &#34;c&#34;")
}
