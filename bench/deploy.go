package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"time"
)

// coldStart compares, round by round, a bare start of the handler binary
// (exec to first good answer) with a deploy of the same package to a fresh
// slot (deploy call to first good answer on the slot's host name).
func coldStart(ctx context.Context, b *bench) (*section, error) {
	c := b.cfg
	srv := b.env.main
	var bare, deploy, call series // µs
	var polls series
	for round := range c.deployRounds {
		// A: the binary by hand.
		d, err := bareStart(ctx, b.env)
		if err != nil {
			return nil, fmt.Errorf("bare start: %w", err)
		}
		bare = append(bare, us(d))

		// B: deploy to a fresh slot; the API answers once the slot
		// serves, then requests every 1 ms until one succeeds.
		slot := fmt.Sprintf("cold%d", round+1)
		if err := srv.createSlot(ctx, "bench", slot); err != nil {
			return nil, err
		}
		req := newRequest("GET", "/api/small", "bench-"+slot+".localhost", nil, 60)
		t0 := time.Now()
		if _, err := srv.deploy(ctx, "bench", slot, b.env.handlerZip); err != nil {
			return nil, err
		}
		t1 := time.Now()
		n, err := pollUntilOK(ctx, srv.fn, req)
		if err != nil {
			return nil, fmt.Errorf("slot %s after deploy: %w", slot, err)
		}
		total := time.Since(t0)
		deploy = append(deploy, us(total))
		call = append(call, us(t1.Sub(t0)))
		polls = append(polls, float64(n))
		b.logf("  round %d/%d: bare start %v, deploy → first answer %v (call %v, %d requests)", round+1, c.deployRounds,
			d.Round(10*time.Microsecond), total.Round(10*time.Microsecond), t1.Sub(t0).Round(10*time.Microsecond), n)
		if err := srv.delete(ctx, "/apps/bench/slots/"+slot); err != nil {
			return nil, fmt.Errorf("delete slot %s: %w", slot, err)
		}
	}
	mmm := func(v series) string {
		return fmt.Sprintf("%s (%s–%s)", fmtUS(v.median()), fmtUS(v.min()), fmtUS(v.max()))
	}
	limit := 1.5*bare.median() + 50000
	s := &section{
		header: []string{"figure", "median (min–max)", "ratio to bare start"},
		rows: [][]string{
			{"bare start: exec → first 200", mmm(bare), "1.00"},
			{"deploy call → first 200 on the fresh slot", mmm(deploy), fmt.Sprintf("%.2f", deploy.median()/bare.median())},
			{"of which the deploy call", mmm(call), fmt.Sprintf("%.2f", call.median()/bare.median())},
			{"requests until the first 200 after the call returned", fmt.Sprintf("%.0f (%.0f–%.0f)", polls.median(), polls.min(), polls.max()), ""},
			{"target: 1.5 × bare + 50 ms", fmtUS(limit), fmt.Sprintf("%.2f", limit/bare.median())},
		},
		notes: []string{fmt.Sprintf("%d rounds, bare start and deploy alternating. Bare start: `exec` of the same handler binary with FUNCTIONS_CUSTOMHANDLER_PORT set, "+
			"then `GET /api/small` every 1 ms until 200. Deploy: `POST /api/v1/apps/bench/slots/{fresh slot}/deploy` with the zip (%d KiB: host.json, function.json files, the binary), "+
			"which answers once the slot serves it, then the same request on the slot's host name every 1 ms until 200. "+
			"The deploy includes the upload, unpacking and validating the package, storing it, starting the process and the slot's readiness check.",
			c.deployRounds, len(b.env.handlerZip)>>10)},
	}
	b.addGoal(50, "deploy → first response < 1.5 × bare start + 50 ms",
		fmt.Sprintf("%s vs %s (bare %s)", fmtUS(deploy.median()), fmtUS(limit), fmtUS(bare.median())), metOrNot(deploy.median() < limit))
	return s, nil
}

// bareStart execs the handler binary on a free port and returns the time to
// its first good answer.
func bareStart(ctx context.Context, e *env) (time.Duration, error) {
	addr, err := freePort()
	if err != nil {
		return 0, err
	}
	_, port, _ := net.SplitHostPort(addr)
	req := newRequest("GET", "/api/small", "bench.localhost", nil, 60)
	t0 := time.Now()
	p, err := e.start("bare handler", filepath.Join(e.handlerPkg, "handler"), e.handlerPkg,
		[]string{"FUNCTIONS_CUSTOMHANDLER_PORT=" + port, "HOTSWAP_DEPLOYMENT_ID=bare"})
	if err != nil {
		return 0, err
	}
	defer p.stop()
	if _, err := pollUntilOK(ctx, addr, req); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// pollUntilOK sends req to addr every millisecond until it gets a good
// answer, for at most 30 s, and returns how many requests that took.
func pollUntilOK(ctx context.Context, addr string, req request) (int, error) {
	cl := &client{addr: addr}
	defer cl.close()
	deadline := time.Now().Add(30 * time.Second)
	for n := 1; ; n++ {
		err := cl.do(req)
		if err == nil {
			return n, nil
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("no good answer after 30s: %w", err)
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			return n, err
		}
	}
}
