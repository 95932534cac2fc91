package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// routingApp is the app the routing scenario deploys the bench handler to,
// in production and staging.
const routingApp = "routing"

// routingBench is the benchmark of internal/router that forwards a GET of
// production's host name on the lean path with no rule, a 10% rule and the
// routing cookie; routingCases are its sub-benchmarks, in report order.
const routingBench = "BenchmarkTrafficForward"

var routingCases = []struct{ name, what string }{
	{"no_rule", "no rule"},
	{"rule_10pct", "10% rule to staging, no cookie (a draw and a Set-Cookie each)"},
	{"cookie", "routing cookie pinning staging (no draw, no Set-Cookie)"},
}

// routingShareSample is how many requests, one after the other, check that
// the rule routes about 10% to staging before the throughput rounds.
const routingShareSample = 2000

// routing measures issue 13's traffic routing: the server's closed-loop
// throughput on production's host name of an app with production and
// staging deployed, with a 10% rule to staging and with no rule, the rule
// set and cleared through the API between runs, alternating round by
// round; then routing's cost per request on the forwarding path, from the
// router benchmark (allocs/op must stay 0).
func routing(ctx context.Context, b *bench) (*section, error) {
	c := b.cfg
	srv := b.env.main
	host := routingApp + ".localhost"
	if err := srv.createApp(ctx, routingApp); err != nil {
		return nil, err
	}
	defer srv.delete(context.WithoutCancel(ctx), "/apps/"+routingApp)
	if err := srv.createSlot(ctx, routingApp, "staging"); err != nil {
		return nil, err
	}
	if _, err := srv.deploy(ctx, routingApp, "production", b.env.handlerZip); err != nil {
		return nil, err
	}
	stag, err := srv.deploy(ctx, routingApp, "staging", b.env.handlerZip)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, "http://"+srv.fn+"/api/small", host, ""); err != nil {
		return nil, err
	}
	rule := func(on bool) error {
		if on {
			return call(ctx, srv.token, "PUT", srv.api+"/apps/"+routingApp+"/traffic", "application/json",
				strings.NewReader(`{"shares":[{"slot":"staging","percent":10}]}`), http.StatusOK, nil)
		}
		return call(ctx, srv.token, "DELETE", srv.api+"/apps/"+routingApp+"/traffic", "application/json", nil, http.StatusNoContent, nil)
	}
	req := newRequest("GET", "/api/small", host, nil, 60)

	// The rule is in force: about 10% of cookie-less requests reach
	// staging's deployment; none without it.
	s := &section{}
	share := func(on bool, n int) (float64, error) {
		if err := rule(on); err != nil {
			return 0, err
		}
		cl := &client{addr: srv.fn, tag: []byte("X-Deployment")}
		defer cl.close()
		hits := 0
		for range n {
			if err := cl.do(req); err != nil {
				return 0, fmt.Errorf("share check: %w", err)
			}
			if string(cl.tagVal) == stag.ID {
				hits++
			}
		}
		return 100 * float64(hits) / float64(n), nil
	}
	sample := routingShareSample
	if c.smoke {
		sample = 500
	}
	withRule, err := share(true, sample)
	if err != nil {
		return nil, err
	}
	without, err := share(false, sample/4)
	if err != nil {
		return nil, err
	}
	b.logf("  staging served %.1f%% of %d requests with the rule, %.1f%% of %d without", withRule, sample, without, sample/4)
	if withRule < 5 || withRule > 15 || without != 0 {
		return nil, fmt.Errorf("staging served %.1f%% of %d requests with a 10%% rule and %.1f%% of %d without: the rule is not in force as set", withRule, sample, without, sample/4)
	}

	// Throughput: the same server, app and request; only the rule differs.
	// The order within a round alternates, so drift over the run weighs on
	// both alike.
	names := []string{"no rule", "10% rule"}
	rps := make([]series, 2)
	var ratios series
	failed := make([]int64, 2)
	for round := range c.rounds {
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		got := make([]float64, 2)
		for _, i := range order {
			if err := rule(i == 1); err != nil {
				return nil, err
			}
			res, err := load{addr: srv.fn, req: req, conns: c.conns, warmup: c.warmup, dur: c.duration}.run(ctx)
			if err != nil {
				return nil, err
			}
			failed[i] += res.failed
			if res.firstErr != nil {
				b.logf("  %s: %d failed, first: %v", names[i], res.failed, res.firstErr)
			}
			got[i] = res.rps
			rps[i] = append(rps[i], res.rps)
			b.logf("  closed round %d/%d %-8s %8.0f req/s", round+1, c.rounds, names[i], res.rps)
		}
		ratios = append(ratios, got[1]/got[0])
	}
	if err := rule(false); err != nil {
		return nil, err
	}
	s.failed += failed[0] + failed[1]

	// Cost per request: the router benchmark, one go test per case and
	// round, the order rotating round by round, so each case runs first
	// in a process as often as the others and drift weighs on all alike.
	ns, bytes, allocs := make([]series, len(routingCases)), make([]series, len(routingCases)), make([]series, len(routingCases))
	nsRatio := make([]series, len(routingCases)) // case / no rule, per round
	var lines []string
	benchArgs := func(name string) []string {
		return []string{"-run", "^$", "-bench", "^" + routingBench + "$/^" + name + "$", "-benchmem", "-count", "1", "-benchtime", c.allocTime, "./internal/router"}
	}
	for round := range c.allocCount {
		got := make([]float64, len(routingCases))
		for j := range routingCases {
			i := (round + j) % len(routingCases)
			out, err := goTest(ctx, b.env.root, benchArgs(routingCases[i].name)...)
			if err != nil {
				return nil, err
			}
			n, by, al, ls, err := parseRoutingBench(out, i)
			if err != nil {
				return nil, err
			}
			ns[i], bytes[i], allocs[i] = append(ns[i], n), append(bytes[i], by), append(allocs[i], al)
			got[i] = n
			lines = append(lines, ls)
		}
		for i := range routingCases {
			nsRatio[i] = append(nsRatio[i], got[i]/got[0])
		}
	}

	mmm := func(v series, f func(float64) string) string {
		return fmt.Sprintf("%s (%s–%s)", f(v.median()), f(v.min()), f(v.max()))
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	ratio := func(v float64) string { return fmt.Sprintf("%.2f", v) }
	s.header = []string{"figure", "median (min–max)"}
	add := func(name, cell string) { s.rows = append(s.rows, []string{name, cell}) }
	add(fmt.Sprintf("closed loop, %d conns, no rule: req/s", c.conns), mmm(rps[0], fmtRPS))
	add(fmt.Sprintf("closed loop, %d conns, 10%% rule to staging: req/s", c.conns), mmm(rps[1], fmtRPS))
	add("10% rule / no rule, per round", mmm(ratios, ratio))
	add("10% rule / no rule, ratio of the medians", ratio(rps[1].median()/rps[0].median()))
	add("failed requests (all runs)", fmt.Sprint(failed[0]+failed[1]))
	add(fmt.Sprintf("staging's share with the rule (%d requests one by one)", sample), fmt.Sprintf("%.1f%%", withRule))
	zero := true
	for i, rc := range routingCases {
		add("router benchmark, "+rc.what+": ns/op", mmm(ns[i], fmtRPS))
		if i > 0 {
			add("router benchmark, "+rc.what+": ns/op / no rule's, per round", mmm(nsRatio[i], ratio))
		}
		add("router benchmark, "+rc.what+": B/op, allocs/op", mmm(bytes[i], num)+", "+mmm(allocs[i], num))
		zero = zero && allocs[i].max() == 0
	}
	b.logf("  rule/no rule %.2f (median of %d rounds); router ns/op %.0f, %.0f, %.0f; allocs/op max %v, %v, %v",
		ratios.median(), len(ratios), ns[0].median(), ns[1].median(), ns[2].median(), allocs[0].max(), allocs[1].max(), allocs[2].max())
	s.text = fmt.Sprintf("```\n$ go test %s   # and the other cases, %d rounds\n%s\n```\n", strings.Join(benchArgs(routingCases[0].name), " "), c.allocCount, strings.Join(lines, "\n"))
	s.notes = append(s.notes,
		fmt.Sprintf("Throughput: app %s with the bench handler deployed to production and staging on the server the other scenarios use; the proxy comparison's closed loop (`%s` on production's host name %s, %d keep-alive connections, %v warm-up + %v measured, %d rounds) with a 10%% rule to staging (`PUT /api/v1/apps/%s/traffic`) and with none (`DELETE`), set between runs; the order alternates round by round. "+
			"The load generator sends no cookie, so every request is drawn and every answer carries a Set-Cookie, the most a rule can cost; 10%% of them run on staging's handler process. The per-round ratio divides the two runs of the same round.",
			routingApp, req.name, host, c.conns, c.warmup, c.duration, c.rounds, routingApp),
		fmt.Sprintf("Router benchmark: one keep-alive client, the lean forwarding path and raw upstreams that allocate nothing, all in one process, so B/op and allocs/op are the forwarding path's own; ns/op is a latency figure (one request at a time), and the rule cases against no rule are routing's cost. "+
			"%d rounds; in each, one go test per case, the order rotating from round to round; a per-round ratio divides a case's ns/op by no rule's in the same round. ", c.allocCount)+
			"go test truncates allocs/op to an integer, so TestTrafficForwardAllocs also counts every allocation over 2,001 requests of each case.",
	)
	b.addGoal(70, "routing adds no allocation on the forwarding path (issue 13: no rule, 10% rule, cookie)",
		fmt.Sprintf("allocs/op %s, %s, %s (max over %d runs each)", num(allocs[0].max()), num(allocs[1].max()), num(allocs[2].max()), len(allocs[0])), metOrNot(zero))
	return s, nil
}

// parseRoutingBench reads the -benchmem line of routingCases[k] from go
// test's output: ns/op, B/op, allocs/op and the line itself.
func parseRoutingBench(out string, k int) (ns, bytes, allocs float64, line string, err error) {
	want := routingBench + "/" + routingCases[k].name + "-"
	for l := range strings.Lines(out) {
		f := strings.Fields(l)
		if len(f) < 8 || !strings.HasPrefix(f[0], want) {
			continue
		}
		var seen int
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				ns, seen = v, seen|1
			case "B/op":
				bytes, seen = v, seen|2
			case "allocs/op":
				allocs, seen = v, seen|4
			}
		}
		if seen == 7 {
			return ns, bytes, allocs, strings.TrimSpace(l), nil
		}
	}
	return 0, 0, 0, "", fmt.Errorf("no %s/%s result with -benchmem in:\n%s", routingBench, routingCases[k].name, out)
}
