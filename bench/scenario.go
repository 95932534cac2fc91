package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// scenario is one section of the report: a name and a run func added to
// scenarios().
type scenario struct {
	name string
	run  func(ctx context.Context, b *bench) (*section, error)
}

// section is a scenario's result: a table, free text (code blocks), notes,
// and how many requests failed across all its runs (the report requires 0).
type section struct {
	title  string
	header []string
	rows   [][]string
	text   string // Markdown after the table
	notes  []string
	failed int64
}

// goal is one row of the report's Targets table: a target of issue 6, the
// figure measured for it and whether it is met. status is "met", "not met"
// or why it was not measured.
type goal struct {
	order  int // position in the table
	target string
	figure string
	status string
}

func metOrNot(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// addGoal records a Targets table row.
func (b *bench) addGoal(order int, target, figure, status string) {
	b.goals = append(b.goals, goal{order, target, figure, status})
}

// target is one server to put load on. The first target of a comparison is
// the baseline every other target's figures are divided by.
type target struct {
	name string
	addr string
	host string // Host header
}

// Names of the targets of the proxy comparison.
const (
	tDirect  = "direct"
	tNginx   = "nginx"
	tHotswap = "hotswap"
	tPayload = "hotswap payload"
)

func scenarios(e *env) []scenario {
	small := func(host string) request { return newRequest("GET", "/api/small", host, nil, 60) }
	body := make([]byte, 64<<10)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	echo := func(host string) request { return newRequest("POST", "/api/echo", host, body, len(body)) }
	// direct and nginx get hotswap's Host header too, so every target
	// reads the same request bytes.
	targets := []target{{tDirect, e.direct, e.hostHeader}}
	if e.nginx != "" {
		targets = append(targets, target{tNginx, e.nginx, e.hostHeader})
	}
	targets = append(targets, target{tHotswap, e.hotswap, e.hostHeader}, target{tPayload, e.hotswap, e.payloadHost})
	return []scenario{
		{"Proxy overhead: GET /api/small (60-byte JSON)", compare(targets, small, "small GET", 10)},
		{"Proxy overhead: POST /api/echo (64 KiB body echoed)", compare(targets, echo, "64 KiB echo", 11)},
		{"Data plane against nginx, HAProxy and Caddy (issue 14)", dataPlane},
		{"Idle connections beside active clients", idleLoad},
		{"Allocations per request of the forwarding path", allocations},
		{"Profile of the forwarding path", profile},
		{"Swap under load", swapUnderLoad},
		{"Deploy and cold start", coldStart},
		{"Footprint", footprint},
		{"Queue trigger: throughput and enqueue to invocation", queueTrigger},
		{"Several nodes on PostgreSQL", severalNodes},
		{"Traffic routing: a 10% rule against no rule", routing},
		{"Scale to zero: cold start after idling (issue 14)", scaleToZeroCold},
		{"Scale to zero: density, 200 apps × 3 slots (issue 14)", density},
	}
}

// compare measures every target the same way, alternating them round by
// round (A B A B ...) so drift (thermal, noisy neighbours) hits all alike:
// first a closed loop for peak throughput, then an open loop at half the
// peak of hotswap forwarding (the system under test), so every target is
// measured at the same load, a load the system under test sustains. A
// target whose own peak is too close to that rate (payload mode) is
// measured at half its own peak instead, and the report says so.
func compare(targets []target, req func(host string) request, what string, order int) func(context.Context, *bench) (*section, error) {
	return func(ctx context.Context, b *bench) (*section, error) {
		c := b.cfg
		s := &section{}
		n := len(targets)
		ref, ngx := -1, -1
		for i, t := range targets {
			switch t.name {
			case tHotswap:
				ref = i
			case tNginx:
				ngx = i
			}
		}
		reqs := make([]request, n)
		for i, t := range targets {
			reqs[i] = req(t.host)
		}
		rps := make([]series, n)
		p50, p99, p999 := make([]series, n), make([]series, n), make([]series, n)
		added := make([]series, n) // p99 minus direct's p99 in the same round
		lag50, lag99 := make([]series, n), make([]series, n)
		failed := make([]int64, n)
		record := func(i int, res loadResult) {
			failed[i] += res.failed
			if res.firstErr != nil {
				b.logf("  %s: %d failed, first: %v", targets[i].name, res.failed, res.firstErr)
			}
		}

		for round := range c.rounds {
			for i, t := range targets {
				res, err := load{addr: t.addr, req: reqs[i], conns: c.conns, warmup: c.warmup, dur: c.duration}.run(ctx)
				if err != nil {
					return nil, err
				}
				record(i, res)
				rps[i] = append(rps[i], res.rps)
				b.logf("  closed round %d/%d %-16s %8.0f req/s", round+1, c.rounds, t.name, res.rps)
			}
		}

		rate := c.rate
		rateSource := "fixed by -rate"
		if rate == 0 {
			rate = rps[ref].median() / 2
			rateSource = "half the median " + targets[ref].name + " peak"
		}
		if rate < 1 {
			return nil, fmt.Errorf("%s peak is %.1f req/s: nothing to measure the open loop at", targets[ref].name, rate*2)
		}
		rates := make([]float64, n)
		ownRate := make([]bool, n)
		var own []string
		for i, t := range targets {
			rates[i] = rate
			if peak := rps[i].median(); rate > 0.8*peak {
				rates[i], ownRate[i] = peak/2, true
				own = append(own, fmt.Sprintf("%s is measured at %.0f req/s, half its own peak, because its peak (%.0f req/s) is too close to %.0f req/s for an open loop", t.name, rates[i], peak, rate))
			}
		}
		for round := range c.rounds {
			for i, t := range targets {
				res, err := load{addr: t.addr, req: reqs[i], conns: c.conns, warmup: c.warmup, dur: c.duration, rate: rates[i]}.run(ctx)
				if err != nil {
					return nil, err
				}
				record(i, res)
				if len(res.lat) == 0 {
					return nil, fmt.Errorf("open loop against %s: no answer in the window", t.name)
				}
				p50[i] = append(p50[i], us(percentile(res.lat, 0.50)))
				p99[i] = append(p99[i], us(percentile(res.lat, 0.99)))
				p999[i] = append(p999[i], us(percentile(res.lat, 0.999)))
				added[i] = append(added[i], p99[i][round]-p99[0][round])
				lag50[i] = append(lag50[i], us(percentile(res.lag, 0.50)))
				lag99[i] = append(lag99[i], us(percentile(res.lag, 0.99)))
				b.logf("  open   round %d/%d %-16s p50 %s p99 %s p99.9 %s (%d answers)", round+1, c.rounds, t.name,
					fmtUS(p50[i][round]), fmtUS(p99[i][round]), fmtUS(p999[i][round]), len(res.lat))
			}
		}

		s.header = []string{"figure"}
		for _, t := range targets {
			s.header = append(s.header, t.name+" median (min–max)")
		}
		for _, t := range targets[1:] {
			s.header = append(s.header, t.name+"/"+targets[0].name)
		}
		if ngx >= 0 {
			s.header = append(s.header, targets[ref].name+"/"+targets[ngx].name)
		}
		row := func(name string, v []series, f func(float64) string, open bool) {
			cells := []string{name}
			for i := range targets {
				mark := ""
				if open && ownRate[i] {
					mark = " \\*"
				}
				cells = append(cells, fmt.Sprintf("%s (%s–%s)%s", f(v[i].median()), f(v[i].min()), f(v[i].max()), mark))
			}
			for i := 1; i < n; i++ {
				cells = append(cells, fmt.Sprintf("%.2f", v[i].median()/v[0].median()))
			}
			if ngx >= 0 {
				cells = append(cells, fmt.Sprintf("%.2f", v[ref].median()/v[ngx].median()))
			}
			s.rows = append(s.rows, cells)
		}
		blank := func(cells []string) []string {
			for len(cells) < len(s.header) {
				cells = append(cells, "")
			}
			return cells
		}
		at := fmt.Sprintf("open loop @ %.0f req/s", rate)
		row(fmt.Sprintf("closed loop, %d conns: peak req/s", c.conns), rps, fmtRPS, false)
		row(at+": p50", p50, fmtUS, true)
		row(at+": p99", p99, fmtUS, true)
		row(at+": p99.9", p999, fmtUS, true)
		addedCell := func(i int) string {
			return fmt.Sprintf("%s (%s–%s)", fmtSignedUS(added[i].median()), fmtSignedUS(added[i].min()), fmtSignedUS(added[i].max()))
		}
		cells := []string{at + ": added p99 over direct (difference in the same round)", "—"}
		for i := 1; i < n; i++ {
			mark := ""
			if ownRate[i] {
				mark = " \\*"
			}
			cells = append(cells, addedCell(i)+mark)
		}
		s.rows = append(s.rows, blank(cells))
		cells = []string{"failed requests (all runs)"}
		for i := range targets {
			cells = append(cells, fmt.Sprint(failed[i]))
			s.failed += failed[i]
		}
		s.rows = append(s.rows, blank(cells))

		var lags []string
		for i, t := range targets {
			lags = append(lags, fmt.Sprintf("%s p50 %s, p99 %s", t.name, fmtUS(lag50[i].median()), fmtUS(lag99[i].median())))
		}
		r := reqs[ref]
		if len(own) > 0 {
			s.notes = append(s.notes, "\\* "+strings.Join(own, "; ")+".")
		}
		if ngx < 0 {
			s.notes = append(s.notes, "No nginx column: "+b.env.nginxNote+".")
		}
		s.notes = append(s.notes,
			fmt.Sprintf("Request: `%s`, %d bytes on the wire; the open-loop rate is %s, the same for every target.", r.name, len(r.raw), rateSource),
			"Open-loop latency runs from each request's scheduled send time, so queueing behind a slow answer counts (no coordinated omission). "+
				"Send delay (actual minus scheduled send time, median over rounds) is part of it: waiting for a free connection when the target falls behind, plus the generator's own timer delay, which the direct figures bound: "+strings.Join(lags, "; ")+".",
		)

		// Targets: forwarding throughput at or above nginx's; added p99 at
		// most 150 µs over direct at 50% load.
		if ngx >= 0 {
			ratio := rps[ref].median() / rps[ngx].median()
			b.addGoal(order, "forwarding throughput ≥ nginx ("+what+")",
				fmt.Sprintf("hotswap/nginx = %.2f (%s vs %s req/s)", ratio, fmtRPS(rps[ref].median()), fmtRPS(rps[ngx].median())), metOrNot(ratio >= 1))
		} else {
			b.addGoal(order, "forwarding throughput ≥ nginx ("+what+")", "—", b.env.nginxNote)
		}
		a := added[ref].median()
		b.addGoal(order+10, "added p99 ≤ 150 µs over direct at 50% load ("+what+")",
			fmt.Sprintf("%s, median of the per-round differences (range %s–%s); p99 medians %s vs direct %s at %.0f req/s",
				fmtSignedUS(a), fmtSignedUS(added[ref].min()), fmtSignedUS(added[ref].max()), fmtUS(p99[ref].median()), fmtUS(p99[0].median()), rate),
			metOrNot(a <= 150))
		return s, nil
	}
}

// series is one figure's values, one per round.
type series []float64

func (s series) median() float64 {
	if len(s) == 0 {
		return 0
	}
	t := slices.Sorted(slices.Values(s))
	if len(t)%2 == 1 {
		return t[len(t)/2]
	}
	return (t[len(t)/2-1] + t[len(t)/2]) / 2
}

func (s series) min() float64 { return slices.Min(s) }
func (s series) max() float64 { return slices.Max(s) }

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func fmtUS(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.2f ms", v/1000)
	}
	return fmt.Sprintf("%.0f µs", v)
}

func fmtRPS(v float64) string { return fmt.Sprintf("%.0f", v) }

func fmtSignedUS(v float64) string {
	if v < 0 {
		return "−" + fmtUS(-v)
	}
	return "+" + fmtUS(v)
}

func fmtMS(d time.Duration) string { return fmtUS(us(d)) }
