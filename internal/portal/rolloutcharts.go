package portal

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/metrics"
)

// rolloutCharts is a rollout's charts (the "rollout-charts" partial): the
// slot and production side by side over the last hour, each chart pair on
// one scale, with each step's start marked and the analysis's limits drawn.
type rolloutCharts struct {
	Slot, Target string
	Summary      string // both slots' last hour in a sentence
	// Pairs are the metrics, each the slot's chart and production's.
	Pairs [][2]chart
}

// moment is a time marked on a rollout's charts.
type moment struct {
	At    time.Time
	Label string
}

// rolloutMoments are the moments a rollout's charts mark: each step's
// start, labelled with its share (the first at the rollout's start, the
// others when the step before passed), and its end: "swap" when it swapped,
// "0%" when its share was taken away.
func rolloutMoments(r hotswap.Rollout) []moment {
	steps := r.Strategy.Steps
	if len(steps) == 0 {
		return nil
	}
	out := []moment{{r.Created, hotswap.FormatPercent(steps[0].Percent) + "%"}}
	for _, res := range r.Results {
		if res.Verdict == "passed" && res.Step+1 < len(steps) {
			out = append(out, moment{res.At, hotswap.FormatPercent(steps[res.Step+1].Percent) + "%"})
		}
	}
	switch r.State {
	case hotswap.RolloutSucceeded:
		out = append(out, moment{r.Updated, "swap"})
	case hotswap.RolloutFailed, hotswap.RolloutAborted:
		out = append(out, moment{r.Updated, "0%"})
	}
	return out
}

// rolloutChartsOf builds a rollout's charts from the two slots' last hour;
// nil without metrics.
func rolloutChartsOf(m Metrics, r hotswap.Rollout) *rolloutCharts {
	if m == nil {
		return nil
	}
	c := &rolloutCharts{Slot: r.Slot, Target: r.Target}
	sp, tp := m.History(r.App, r.Slot), m.History(r.App, r.Target)
	if len(sp) == 0 && len(tp) == 0 {
		c.Summary = "last hour: no requests to " + r.Slot + " or " + r.Target
		return c
	}
	// A slot that served nothing yet has no history: flat on the other's hour.
	if len(sp) == 0 {
		sp = idle(tp)
	}
	if len(tp) == 0 {
		tp = idle(sp)
	}
	c.Summary = r.Slot + ": " + hourSummary(m.HourStats(r.App, r.Slot)) + "; " + r.Target + ": " + hourSummary(m.HourStats(r.App, r.Target))

	from, to := sp[0].Start, sp[len(sp)-1].Start.Add(time.Minute)
	span := fmt.Sprintf("per minute from %s to %s UTC", from.Format("15:04"), to.Format("15:04"))
	marks, marked := chartMarks(rolloutMoments(r), sp[0].Start, len(sp))

	type series struct{ reqs, errs, p95 []float64 }
	read := func(pts []metrics.Point) (s series) {
		for _, p := range pts {
			e := 0.0
			if p.Requests > 0 {
				e = 100 * float64(p.Errors) / float64(p.Requests)
			}
			s.reqs = append(s.reqs, float64(p.Requests))
			s.errs = append(s.errs, e)
			s.p95 = append(s.p95, ms(p.P95))
		}
		return s
	}
	ss, ts := read(sp), read(tp)
	peak := func(a, b []float64, limit float64) float64 {
		top := limit
		for _, v := range append(append([]float64(nil), a...), b...) {
			top = max(top, v)
		}
		return scaleMax(top)
	}
	maxErr, maxP95 := 100*r.Analysis.MaxErrorRate, ms(time.Duration(r.Analysis.MaxP95))
	reqTop, errTop, p95Top := peak(ss.reqs, ts.reqs, 0), peak(ss.errs, ts.errs, maxErr), peak(ss.p95, ts.p95, maxP95)

	var errLimits, p95Limits []chartLimit
	if maxErr > 0 {
		errLimits = []chartLimit{limitAt(maxErr, errTop, "max "+hotswap.FormatPercent(maxErr)+"%")}
	}
	if maxP95 > 0 {
		p95Limits = []chartLimit{limitAt(maxP95, p95Top, "max "+latency(time.Duration(r.Analysis.MaxP95)))}
	}
	stepsNote := ""
	if marked != "" {
		stepsNote = " Vertical lines mark " + marked + "."
	}
	scale := func(top string) string {
		return fmt.Sprintf("%s–%s UTC, 0 to %s", from.Format("15:04"), to.Format("15:04"), top)
	}
	build := func(slot, id string, s series) [3]chart {
		return [3]chart{
			{
				ID: "rollout-chart-requests-" + id, Title: "Requests per minute, " + slot,
				Desc:    fmt.Sprintf("Requests to %s %s; the scale goes from 0 to %s.%s", slot, span, count(reqTop), stepsNote),
				Summary: fmt.Sprintf("%s: at most %s requests in a minute.", slot, count(maxOf(s.reqs))),
				Scale:   scale(count(reqTop) + " a minute"),
				Lines:   []chartLine{{Class: "line-requests", Label: "requests", Points: polyline(s.reqs, reqTop)}},
				Marks:   marks,
			},
			{
				ID: "rollout-chart-errors-" + id, Title: "Error rate, " + slot,
				Desc:    fmt.Sprintf("Share of %s's responses with a 5xx status %s; the scale goes from 0 to %s%%.%s%s", slot, span, pct(errTop), stepsNote, limitNote("maxErrorRate", errLimits)),
				Summary: fmt.Sprintf("%s: at most %s%% errors in a minute.", slot, pct(maxOf(s.errs))),
				Scale:   scale(pct(errTop) + "%"),
				Lines:   []chartLine{{Class: "line-errors", Label: "5xx %", Points: polyline(s.errs, errTop)}},
				Marks:   marks, Limits: errLimits,
			},
			{
				ID: "rollout-chart-latency-" + id, Title: "Latency p95, " + slot,
				Desc: fmt.Sprintf("95th percentile response time of %s %s; the scale goes from 0 to %s ms.%s%s", slot, span, num(p95Top), stepsNote, limitNote("maxP95", p95Limits)) +
					" Values are histogram bucket bounds; slower than 60 s is drawn at 60 s.",
				Summary: fmt.Sprintf("%s: p95 at most %s in a minute.", slot, latency(time.Duration(maxOf(s.p95)*float64(time.Millisecond)))),
				Scale:   scale(num(p95Top) + " ms"),
				Lines:   []chartLine{{Class: "line-p95", Label: "p95", Points: polyline(s.p95, p95Top)}},
				Marks:   marks, Limits: p95Limits,
			},
		}
	}
	sc, tc := build(r.Slot, "slot", ss), build(r.Target, "target", ts)
	for i := range sc {
		sc[i].W, sc[i].H, tc[i].W, tc[i].H = chartW, chartH, chartW, chartH
		c.Pairs = append(c.Pairs, [2]chart{sc[i], tc[i]})
	}
	return c
}

// idle returns a history of no requests over the minutes of pts.
func idle(pts []metrics.Point) []metrics.Point {
	out := make([]metrics.Point, len(pts))
	for i, p := range pts {
		out[i] = metrics.Point{Start: p.Start}
	}
	return out
}

func maxOf(vs []float64) float64 {
	m := 0.0
	for _, v := range vs {
		m = max(m, v)
	}
	return m
}

// chartMarks places moments on a chart of n minutes from start, as polyline
// places its points (minute i at x = i*W/(n-1)); a moment within a minute
// falls between its point and the next. Moments before the chart are left
// out, later ones drawn at its right edge. It also says in words what it
// marks, for the chart's description.
func chartMarks(ms []moment, start time.Time, n int) ([]chartMark, string) {
	var marks []chartMark
	var words []string
	if n < 2 {
		return nil, ""
	}
	perMinute := float64(chartW) / float64(n-1)
	// Labels of marks close together go on lower rows rather than over
	// each other: placed holds the extent of each row's labels so far.
	const rows, rowH, charW = 4, 9.0, 5.5
	var placed [rows][][2]float64
	for _, m := range ms {
		if m.At.Before(start) {
			continue
		}
		x := min(m.At.Sub(start).Minutes()*perMinute, chartW)
		w := charW * float64(len(m.Label))
		mk := chartMark{X: coord(x), TextX: coord(x + 2), Anchor: "start", Label: m.Label}
		from, to := x+2, x+2+w
		if to > chartW {
			mk.TextX, mk.Anchor = coord(x-2), "end"
			from, to = x-2-w, x-2
		}
		row := 0
		for ; row < rows-1; row++ {
			free := true
			for _, e := range placed[row] {
				if from < e[1]+2 && to > e[0]-2 {
					free = false
					break
				}
			}
			if free {
				break
			}
		}
		placed[row] = append(placed[row], [2]float64{from, to})
		mk.TextY = coord(rowH * float64(row+1))
		marks = append(marks, mk)
		what := "the step to " + m.Label
		switch m.Label {
		case "swap":
			what = "the swap"
		case "0%":
			what = "the share taken away"
		}
		words = append(words, what+" at "+m.At.UTC().Format("15:04:05"))
	}
	return marks, strings.Join(words, ", ")
}

// limitAt is a horizontal line at value v on a scale to top, labelled
// above it (below it when at the top).
func limitAt(v, top float64, label string) chartLimit {
	y := chartH - chartPad - min(v/top, 1)*(chartH-2*chartPad)
	ty := y - 2
	if ty < 10 {
		ty = y + 9
	}
	return chartLimit{Y: coord(y), TextY: coord(ty), Label: label}
}

func limitNote(name string, ls []chartLimit) string {
	if len(ls) == 0 {
		return ""
	}
	return " A horizontal line marks the analysis's " + name + ", " + strings.TrimPrefix(ls[0].Label, "max ") + "."
}

func coord(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
