package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// scenario is one section of the report. New scenarios (nginx proxy_pass,
// swap under load) are a name and a run func added to scenarios().
type scenario struct {
	name string
	run  func(ctx context.Context, b *bench) (*section, error)
}

// section is a scenario's result: a table plus notes, and how many requests
// failed across all its runs (the report requires 0).
type section struct {
	title  string
	header []string
	rows   [][]string
	notes  []string
	failed int64
}

// target is one server to put load on. The first target of a comparison is
// the baseline every other target's figures are divided by.
type target struct {
	name string
	addr string
}

func scenarios(e *env) []scenario {
	small := func(host string) request { return newRequest("GET", "/api/small", host, nil, 60) }
	body := make([]byte, 64<<10)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	echo := func(host string) request { return newRequest("POST", "/api/echo", host, body, len(body)) }
	targets := []target{{"direct", e.direct}, {"hotswap", e.hotswap}}
	return []scenario{
		{"GET /api/small (60-byte JSON)", compare(targets, small)},
		{"POST /api/echo (64 KiB body echoed)", compare(targets, echo)},
	}
}

// compare measures every target the same way, alternating them round by
// round (A B A B ...) so drift (thermal, noisy neighbours) hits all alike:
// first a closed loop for peak throughput, then an open loop at half the
// peak of targets[1] (the system under test), so every target is measured at
// a rate the system under test sustains.
func compare(targets []target, req func(host string) request) func(context.Context, *bench) (*section, error) {
	return func(ctx context.Context, b *bench) (*section, error) {
		c := b.cfg
		r := req(b.env.hostHeader)
		s := &section{}
		n := len(targets)
		rps := make([]series, n)
		p50, p99, p999 := make([]series, n), make([]series, n), make([]series, n)
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
				res, err := load{addr: t.addr, req: r, conns: c.conns, warmup: c.warmup, dur: c.duration}.run(ctx)
				if err != nil {
					return nil, err
				}
				record(i, res)
				rps[i] = append(rps[i], res.rps)
				b.logf("  closed round %d/%d %-8s %8.0f req/s", round+1, c.rounds, t.name, res.rps)
			}
		}

		rate := c.rate
		if rate == 0 {
			rate = rps[min(1, n-1)].median() / 2
		}
		if rate < 1 {
			return nil, fmt.Errorf("%s peak is %.1f req/s: nothing to measure the open loop at", targets[min(1, n-1)].name, rate*2)
		}
		for round := range c.rounds {
			for i, t := range targets {
				res, err := load{addr: t.addr, req: r, conns: c.conns, warmup: c.warmup, dur: c.duration, rate: rate}.run(ctx)
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
				lag50[i] = append(lag50[i], us(percentile(res.lag, 0.50)))
				lag99[i] = append(lag99[i], us(percentile(res.lag, 0.99)))
				b.logf("  open   round %d/%d %-8s p50 %s p99 %s p99.9 %s (%d answers)", round+1, c.rounds, t.name,
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
		row := func(name string, v []series, f func(float64) string) {
			cells := []string{name}
			for i := range targets {
				cells = append(cells, fmt.Sprintf("%s (%s–%s)", f(v[i].median()), f(v[i].min()), f(v[i].max())))
			}
			for i := 1; i < n; i++ {
				cells = append(cells, fmt.Sprintf("%.2f", v[i].median()/v[0].median()))
			}
			s.rows = append(s.rows, cells)
		}
		row(fmt.Sprintf("closed loop, %d conns: req/s", c.conns), rps, fmtRPS)
		row(fmt.Sprintf("open loop @ %.0f req/s: p50", rate), p50, fmtUS)
		row(fmt.Sprintf("open loop @ %.0f req/s: p99", rate), p99, fmtUS)
		row(fmt.Sprintf("open loop @ %.0f req/s: p99.9", rate), p999, fmtUS)
		cells := []string{"failed requests (all runs)"}
		for i := range targets {
			cells = append(cells, fmt.Sprint(failed[i]))
			s.failed += failed[i]
		}
		for range targets[1:] {
			cells = append(cells, "")
		}
		s.rows = append(s.rows, cells)

		var lags []string
		for i, t := range targets {
			lags = append(lags, fmt.Sprintf("%s p50 %s, p99 %s", t.name, fmtUS(lag50[i].median()), fmtUS(lag99[i].median())))
		}
		s.notes = append(s.notes,
			fmt.Sprintf("Request: `%s`, %d bytes on the wire; the open-loop rate is half the median %s peak.", r.name, len(r.raw), targets[min(1, n-1)].name),
			"Open-loop latency runs from each request's scheduled send time, so queueing behind a slow answer counts (no coordinated omission). "+
				"Send delay (actual minus scheduled send time, median over rounds) is part of it: waiting for a free connection when the target falls behind, plus the generator's own timer delay, which the direct figures bound: "+strings.Join(lags, "; ")+".",
		)
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
