package portal

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hotswap/hotswap/internal/metrics"
)

// Metrics is what the slot page's charts read: a slot's last hour of
// requests minute by minute, and summed. *metrics.Registry implements it.
type Metrics interface {
	History(app, slot string) []metrics.Point
	HourStats(app, slot string) metrics.Stats
}

// Chart geometry, in SVG user units: the viewBox is chartW x chartH and the
// plot leaves chartPad at the top and bottom so that strokes stay inside.
const (
	chartW   = 300
	chartH   = 80
	chartPad = 3
)

// charts is the slot page's metrics section (the "charts" partial).
type charts struct {
	Summary string // e.g. "last hour: 1,204 requests, 0.2% errors, p95 41 ms"
	Charts  []chart
}

// chart is one small SVG line chart of the last hour.
type chart struct {
	ID      string // id-safe, unique on the page
	Title   string // the svg's <title>
	Desc    string // the svg's <desc>: what it shows and its scale
	Summary string // the same in a sentence beside the chart
	Scale   string // the axes in short, shown under the chart
	Lines   []chartLine
	Marks   []chartMark  // vertical lines at moments: a rollout's steps
	Limits  []chartLimit // horizontal lines at values: an analysis's limits
	W, H    int          // the viewBox
}

// chartMark is a vertical line at a moment, labelled at its top.
type chartMark struct {
	X      string // the line's x
	TextX  string // the label's x, inside the chart
	TextY  string // the label's baseline: lower when it would overlap another
	Anchor string // the label's text-anchor: start, or end near the right edge
	Label  string
}

// chartLimit is a horizontal line at a value, labelled at its right end.
type chartLimit struct {
	Y, TextY string
	Label    string
}

// chartLine is one polyline of a chart.
type chartLine struct {
	Class  string // CSS class: its colour
	Label  string // legend text
	Points string // the polyline's points attribute, "x,y x,y ..."
}

// slotCharts builds the charts of a slot from its history; nil when the
// portal has no metrics or the slot has no history yet (nothing served).
func slotCharts(m Metrics, app, slot string) *charts {
	if m == nil {
		return nil
	}
	pts := m.History(app, slot)
	if len(pts) == 0 {
		return &charts{Summary: "last hour: no requests"}
	}
	st := m.HourStats(app, slot)
	c := &charts{Summary: hourSummary(st)}

	reqs := make([]float64, len(pts))
	errs := make([]float64, len(pts))
	p50 := make([]float64, len(pts))
	p95 := make([]float64, len(pts))
	var peakReqs, peakErr, peak95 float64
	for i, p := range pts {
		reqs[i] = float64(p.Requests)
		if p.Requests > 0 {
			errs[i] = 100 * float64(p.Errors) / float64(p.Requests)
		}
		p50[i] = ms(p.P50)
		p95[i] = ms(p.P95)
		peakReqs, peakErr, peak95 = max(peakReqs, reqs[i]), max(peakErr, errs[i]), max(peak95, p95[i])
	}
	from, to := pts[0].Start.Format("15:04"), pts[len(pts)-1].Start.Add(time.Minute).Format("15:04")
	span := fmt.Sprintf("per minute from %s to %s UTC", from, to)

	c.Charts = []chart{
		{
			ID: "chart-requests", Title: "Requests per minute",
			Desc:    fmt.Sprintf("Requests %s; the scale goes from 0 to %s.", span, count(scaleMax(peakReqs))),
			Summary: fmt.Sprintf("Requests: %s in the last hour, at most %s in a minute.", count(st.Requests), count(peakReqs)),
			Lines:   []chartLine{{Class: "line-requests", Label: "requests", Points: polyline(reqs, scaleMax(peakReqs))}},
		},
		{
			ID: "chart-errors", Title: "Error rate",
			Desc:    fmt.Sprintf("Share of responses with a 5xx status %s; the scale goes from 0 to %s%%.", span, pct(scaleMax(peakErr))),
			Summary: fmt.Sprintf("Errors: %s%% in the last hour, at most %s%% in a minute.", pct(100*st.ErrorRate), pct(peakErr)),
			Lines:   []chartLine{{Class: "line-errors", Label: "5xx %", Points: polyline(errs, scaleMax(peakErr))}},
		},
		{
			ID: "chart-latency", Title: "Latency p50 and p95",
			Desc: fmt.Sprintf("Median and 95th percentile response time %s; the scale goes from 0 to %s ms.", span, num(scaleMax(peak95))) +
				" Values are histogram bucket bounds; slower than 60 s is drawn at 60 s.",
			Summary: fmt.Sprintf("Latency: p95 %s over the last hour, at most %s in a minute.", latency(st.P95), latency(time.Duration(peak95*float64(time.Millisecond)))),
			Lines: []chartLine{
				{Class: "line-p50", Label: "p50", Points: polyline(p50, scaleMax(peak95))},
				{Class: "line-p95", Label: "p95", Points: polyline(p95, scaleMax(peak95))},
			},
		},
	}
	scales := []string{count(scaleMax(peakReqs)) + " a minute", pct(scaleMax(peakErr)) + "%", num(scaleMax(peak95)) + " ms"}
	for i := range c.Charts {
		c.Charts[i].W, c.Charts[i].H = chartW, chartH
		c.Charts[i].Scale = fmt.Sprintf("%s–%s UTC, 0 to %s", from, to, scales[i])
	}
	return c
}

// hourSummary is the one-line text of a slot's last hour.
func hourSummary(st metrics.Stats) string {
	if st.Requests == 0 {
		return "last hour: no requests"
	}
	noun := "requests"
	if st.Requests == 1 {
		noun = "request"
	}
	return fmt.Sprintf("last hour: %s %s, %s%% errors, p95 %s", count(st.Requests), noun, pct(100*st.ErrorRate), latency(st.P95))
}

// polyline returns the points attribute of values drawn from left to right
// over the chart's width, 0 at the bottom and top at the top.
func polyline(values []float64, top float64) string {
	var b strings.Builder
	n := len(values)
	for i, v := range values {
		x := 0.0
		if n > 1 {
			x = float64(i) * chartW / float64(n-1)
		}
		y := chartH - chartPad - min(v/top, 1)*(chartH-2*chartPad)
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(x, 'f', 1, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(y, 'f', 1, 64))
	}
	return b.String()
}

// scaleMax is the top of a chart's scale for a peak: the peak rounded up to
// 1, 2 or 5 times a power of ten, at least 1, so that the scale reads well.
func scaleMax(peak float64) float64 {
	s := 1.0
	for s < peak {
		switch {
		case s*2 >= peak:
			return s * 2
		case s*5 >= peak:
			return s * 5
		}
		s *= 10
	}
	return s
}

// ms is d in milliseconds, Unbounded drawn as 60 s.
func ms(d time.Duration) float64 {
	d = min(d, time.Minute)
	return float64(d) / float64(time.Millisecond)
}

// latency formats a bucket bound: "41 ms", "0.25 ms", "1.5 s", "over 60 s".
func latency(d time.Duration) string {
	switch {
	case d == metrics.Unbounded || d > time.Minute:
		return "over 60 s"
	case d >= time.Second:
		return num(d.Seconds()) + " s"
	default:
		return num(float64(d)/float64(time.Millisecond)) + " ms"
	}
}

// pct formats a percentage with at most one decimal; a small non-zero one
// is "<0.1" rather than "0".
func pct(v float64) string {
	if v > 0 && v < 0.05 {
		return "<0.1"
	}
	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0")
}

// num formats v with at most two decimals, trailing zeros dropped.
func num(v float64) string {
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// count formats a whole number with thousands separators: 1,204.
func count[T int64 | float64](v T) string {
	s := strconv.FormatInt(int64(v), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
