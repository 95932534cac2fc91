package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hotswap/hotswap/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// clusterNodes is how many hotswap nodes share the PostgreSQL store, and
// clusterSwaps how many swaps each setup makes (clusterSmokeSwaps with
// -smoke).
const (
	clusterNodes      = 3
	clusterSwaps      = 30
	clusterSmokeSwaps = 3
)

// clusterApp is the app both setups deploy the bench handler to, in
// production and staging, so the two measure the same host name, handler
// and request.
const clusterApp = "nodes"

// swapTimes is what the swaps of one setup measured, in µs, one value per
// swap.
type swapTimes struct {
	call   series // the swap call's own wall time
	first  series // call → the first node answering from the new deployment
	all    series // call → every node answering from it
	stale  int64  // old deployment answering a request sent after the call returned
	failed int64  // non-2xx, wrong body, connection errors, answers from neither deployment
}

// severalNodes measures issue 11's cluster against the single server the
// other scenarios use: three `hotswap serve` processes sharing one
// PostgreSQL database (pgtest: HOTSWAP_TEST_POSTGRES, or a throwaway local
// server), each with its own data folder, admin token and listeners. Swaps
// go through one node; each node is asked directly until it answers from
// the new deployment. Then the same closed-loop load as the proxy
// comparison runs against the SQLite server and against one node, one
// after the other, round by round: the request path never reads the
// store, so the two should serve the same.
func severalNodes(ctx context.Context, b *bench) (sec *section, err error) {
	c := b.cfg
	e := b.env
	swaps := clusterSwaps
	if c.smoke {
		swaps = clusterSmokeSwaps
	}

	b.logf("  starting PostgreSQL")
	pg, stopPG, err := pgtest.Run()
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	defer stopPG()
	dsn, err := pg.CreateDatabase(ctx, "bench")
	if err != nil {
		return nil, err
	}
	where := "a throwaway local server (pgtest: initdb in a temp folder, fsync off) on this machine"
	if os.Getenv(pgtest.Env) != "" {
		where = "the server named by " + pgtest.Env
	}
	where = pgVersion(ctx, dsn) + ", " + where
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if derr := pg.DropDatabase(dctx, dsn); derr != nil && err == nil {
			err = derr
		}
	}()

	b.logf("  starting %d nodes", clusterNodes)
	var nodes []*server
	// Registered after the database's drop, so it runs first: the nodes
	// stop (together: each drains, then stops) before their database goes.
	defer func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(n.proc.stop)
		}
		wg.Wait()
	}()
	for i := range clusterNodes {
		name := fmt.Sprintf("n%d", i+1)
		// The DSN goes in the environment, not the command line, where
		// ps would show a password from HOTSWAP_TEST_POSTGRES. No load
		// balancer watches the health check, so no drain delay.
		n, err := e.startServerWith(ctx, "cluster-"+name, []string{"HOTSWAP_STORE=" + dsn},
			"--node-name", name, "--drain-delay", "1ms")
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", name, err)
		}
		nodes = append(nodes, n)
	}
	var fns []string
	for _, n := range nodes {
		fns = append(fns, n.fn)
	}

	host := clusterApp + ".localhost"
	b.logf("  one server (SQLite): %d swaps", swaps)
	deps, err := setUpSwapApp(ctx, e.main, []string{e.main.fn}, host, e.handlerZip)
	if err != nil {
		return nil, fmt.Errorf("one server: %w", err)
	}
	defer e.main.delete(context.WithoutCancel(ctx), "/apps/"+clusterApp)
	one, err := measureSwaps(ctx, b, e.main, []string{e.main.fn}, host, deps, swaps)
	if err != nil {
		return nil, fmt.Errorf("one server: %w", err)
	}
	b.logf("  %d nodes (PostgreSQL): %d swaps through n1", clusterNodes, swaps)
	deps, err = setUpSwapApp(ctx, nodes[0], fns, host, e.handlerZip)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	three, err := measureSwaps(ctx, b, nodes[0], fns, host, deps, swaps)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}

	// Throughput: node n2 is a peer, which learned the deployment from the
	// store, not the node the operations ran on.
	req := newRequest("GET", "/api/small", host, nil, 60)
	targets := []struct{ name, addr string }{{"one server", e.main.fn}, {"node n2", nodes[1].fn}}
	rps := make([]series, len(targets))
	loadFailed := make([]int64, len(targets))
	for round := range c.rounds {
		for i, t := range targets {
			res, err := load{addr: t.addr, req: req, conns: c.conns, warmup: c.warmup, dur: c.duration}.run(ctx)
			if err != nil {
				return nil, err
			}
			loadFailed[i] += res.failed
			if res.firstErr != nil {
				b.logf("  %s: %d failed, first: %v", t.name, res.failed, res.firstErr)
			}
			rps[i] = append(rps[i], res.rps)
			b.logf("  closed round %d/%d %-10s %8.0f req/s", round+1, c.rounds, t.name, res.rps)
		}
	}

	s := &section{
		header: []string{"figure", "one server, SQLite", fmt.Sprintf("%d nodes, PostgreSQL", clusterNodes), "nodes/one"},
		failed: one.failed + one.stale + three.failed + three.stale + loadFailed[0] + loadFailed[1],
	}
	mmm := func(v series, f func(float64) string) string {
		return fmt.Sprintf("%s (%s–%s)", f(v.median()), f(v.min()), f(v.max()))
	}
	p99 := func(v series) float64 {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x * float64(time.Microsecond))
		}
		slices.Sort(d)
		return us(percentile(d, 0.99))
	}
	ratio := func(a, b float64) string { return fmt.Sprintf("%.2f", b/a) }
	add := func(name, x, y, r string) { s.rows = append(s.rows, []string{name, x, y, r}) }
	add("swap call → every node answering from the new deployment: median (min–max)",
		mmm(one.all, fmtUS), mmm(three.all, fmtUS), ratio(one.all.median(), three.all.median()))
	add("swap call → every node answering from the new deployment: p99",
		fmtUS(p99(one.all)), fmtUS(p99(three.all)), ratio(p99(one.all), p99(three.all)))
	add("swap call → first node answering from the new deployment: median",
		fmtUS(one.first.median()), fmtUS(three.first.median()), ratio(one.first.median(), three.first.median()))
	add("swap call's own wall time: median (min–max)",
		mmm(one.call, fmtUS), mmm(three.call, fmtUS), ratio(one.call.median(), three.call.median()))
	add("swap call's own wall time: p99",
		fmtUS(p99(one.call)), fmtUS(p99(three.call)), ratio(p99(one.call), p99(three.call)))
	add("first swap: call → every node / call",
		fmtUS(one.all[0])+" / "+fmtUS(one.call[0]), fmtUS(three.all[0])+" / "+fmtUS(three.call[0]), "")
	add("old deployment answering after the swap call returned", fmt.Sprint(one.stale), fmt.Sprint(three.stale), "")
	add(fmt.Sprintf("data plane, closed loop, %d conns: peak req/s of one node, median (min–max)", c.conns),
		mmm(rps[0], fmtRPS), mmm(rps[1], fmtRPS), ratio(rps[0].median(), rps[1].median()))
	var perRound series
	for i := range rps[0] {
		perRound = append(perRound, rps[1][i]/rps[0][i])
	}
	add("data plane: node/one server in the same round, median (min–max)", "", "",
		fmt.Sprintf("%.2f (%.2f–%.2f)", perRound.median(), perRound.min(), perRound.max()))
	add("failed requests (swaps and load)", fmt.Sprint(one.failed+loadFailed[0]), fmt.Sprint(three.failed+loadFailed[1]), "")
	s.notes = append(s.notes,
		fmt.Sprintf("Setup: %d `hotswap serve` processes (nodes n1–n%d), each with its own data folder, listeners and admin token, sharing one PostgreSQL database (%s) through `--store` (given as HOTSWAP_STORE); "+
			"beside them the single server the other scenarios use (SQLite in its data folder). In each, app %s has the bench handler deployed to production and staging.",
			clusterNodes, clusterNodes, where, clusterApp),
		fmt.Sprintf("Swaps: %d per setup, one after another (`POST /api/v1/apps/%s/swap {\"slot\":\"staging\",\"target\":\"production\"}`, through n1 for the nodes), 300 ms apart; each reverses the previous one, so all but the first reuse the warm process sets of the revert window. "+
			"From the call's start, each node is asked directly on its functions listener with the production host name (`GET /api/small`, one keep-alive connection per node, a request every 1 ms) until it answers from the new deployment (the handler's `X-Deployment: $HOTSWAP_DEPLOYMENT_ID`); "+
			"\"every node\" is the slowest node of each swap; p99 of %d swaps is about their slowest. Once the call has returned, each node is asked once more: an answer from the old deployment then counts as stale (must be 0: the call returns only after every node acknowledged).",
			swaps, clusterApp, swaps),
		fmt.Sprintf("Data plane: the proxy comparison's closed loop (`GET /api/small`, %d keep-alive connections, %v warm-up + %v measured, %d rounds) on the production host name, against the single server, then node n2 (a peer that learned the deployment from the store), alternating round by round, never at once. "+
			"The other nodes and the single server idle meanwhile (the nodes heartbeat into PostgreSQL, which also runs on this machine). The request path reads only the node's routing table in memory, never the store, so the ratio should stay near 1.00.",
			c.conns, c.warmup, c.duration, c.rounds),
	)
	return s, nil
}

// setUpSwapApp creates clusterApp on srv with a staging slot, deploys zip
// to production and staging, waits until every functions listener in fns
// answers on host and returns the two deployments' IDs, production first.
func setUpSwapApp(ctx context.Context, srv *server, fns []string, host string, zip []byte) ([2]string, error) {
	if err := srv.createApp(ctx, clusterApp); err != nil {
		return [2]string{}, err
	}
	if err := srv.createSlot(ctx, clusterApp, "staging"); err != nil {
		return [2]string{}, err
	}
	prod, err := srv.deploy(ctx, clusterApp, "production", zip)
	if err != nil {
		return [2]string{}, err
	}
	stag, err := srv.deploy(ctx, clusterApp, "staging", zip)
	if err != nil {
		return [2]string{}, err
	}
	for _, fn := range fns {
		if err := waitHTTP(ctx, "http://"+fn+"/api/small", host, ""); err != nil {
			return [2]string{}, err
		}
	}
	return [2]string{prod.ID, stag.ID}, nil
}

// measureSwaps makes n swaps of clusterApp's staging and production slots
// through srv, 300 ms apart, and times each until every functions listener
// in fns answers on host from the new deployment. Production serves deps[0]
// at first.
func measureSwaps(ctx context.Context, b *bench, srv *server, fns []string, host string, deps [2]string, n int) (swapTimes, error) {
	req := newRequest("GET", "/api/small", host, nil, 60)
	clients := make([]*client, len(fns))
	for i, fn := range fns {
		clients[i] = &client{addr: fn, tag: []byte("X-Deployment")}
		defer clients[i].close()
	}
	var t swapTimes
	for k := 1; k <= n; k++ {
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return t, err
		}
		want, old := deps[k%2], deps[(k+1)%2]
		r, err := swapOnce(ctx, srv, clients, req, want, old)
		if err != nil {
			return t, fmt.Errorf("swap %d: %w", k, err)
		}
		t.call = append(t.call, us(r.call))
		t.first = append(t.first, us(r.first))
		t.all = append(t.all, us(r.all))
		t.stale += r.stale
		t.failed += r.failed
		if r.firstErr != nil {
			b.logf("    swap %d: %d failed, first: %v", k, r.failed, r.firstErr)
		}
		b.logf("    swap %d: call %v, first node %v, every node %v, stale %d", k,
			r.call.Round(10*time.Microsecond), r.first.Round(10*time.Microsecond), r.all.Round(10*time.Microsecond), r.stale)
	}
	return t, nil
}

// swapTiming is one swap of measureSwaps; durations from the call's start.
type swapTiming struct {
	call, first, all time.Duration
	stale, failed    int64
	firstErr         error
}

// nodePoll is what one node answered during a swap.
type nodePoll struct {
	firstNew      time.Duration // call start → first answer from the new deployment
	stale, failed int64
	firstErr      error // the first failed request
	err           error // the node never answered from the new deployment
}

// swapTimeout bounds how long a node may take to serve the new deployment.
const swapTimeout = 30 * time.Second

// swapOnce polls every client while it makes one swap call, until each has
// answered from deployment want and, once more after the call returned,
// still does.
func swapOnce(ctx context.Context, srv *server, clients []*client, req request, want, old string) (swapTiming, error) {
	pctx, cancel := context.WithTimeout(ctx, swapTimeout)
	defer cancel()
	returned := make(chan struct{})
	var retAt time.Time // set before returned is closed
	polls := make([]nodePoll, len(clients))
	var wg sync.WaitGroup
	t0 := time.Now()
	for i, cl := range clients {
		wg.Go(func() { polls[i] = pollSwap(pctx, cl, req, []byte(want), []byte(old), t0, returned, &retAt) })
	}
	var res swapResult
	err := call(ctx, srv.token, "POST", srv.api+"/apps/"+clusterApp+"/swap", "application/json",
		strings.NewReader(`{"slot":"staging","target":"production"}`), http.StatusOK, &res)
	retAt = time.Now()
	close(returned)
	if err != nil {
		cancel()
		wg.Wait()
		return swapTiming{}, err
	}
	wg.Wait()
	if res.SourceDeployment != want {
		return swapTiming{}, fmt.Errorf("production serves deployment %s after the swap, want %s", res.SourceDeployment, want)
	}
	r := swapTiming{call: retAt.Sub(t0), first: time.Duration(1<<63 - 1)}
	var errs []error
	for i, p := range polls {
		if p.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", clients[i].addr, p.err))
			continue
		}
		r.first = min(r.first, p.firstNew)
		r.all = max(r.all, p.firstNew)
		r.stale += p.stale
		r.failed += p.failed
		if r.firstErr == nil && p.firstErr != nil {
			r.firstErr = fmt.Errorf("%s: %w", clients[i].addr, p.firstErr)
		}
	}
	return r, errors.Join(errs...)
}

// pollSwap asks cl every millisecond until it answers from deployment want,
// then, once the swap call has returned, asks once more: an answer from
// old to a request sent after the call returned is stale.
func pollSwap(ctx context.Context, cl *client, req request, want, old []byte, t0 time.Time, returned <-chan struct{}, retAt *time.Time) (p nodePoll) {
	seen := false
	for {
		sent := time.Now()
		err := cl.do(req)
		done := time.Now()
		after := false
		select {
		case <-returned:
			after = !sent.Before(*retAt)
		default:
		}
		switch {
		case err != nil:
			p.failed++
			if p.firstErr == nil {
				p.firstErr = err
			}
		case bytes.Equal(cl.tagVal, want):
			if !seen {
				seen, p.firstNew = true, done.Sub(t0)
			}
			if after {
				return p
			}
			select {
			case <-returned:
				continue
			case <-ctx.Done():
				p.err = ctx.Err()
				return p
			}
		case bytes.Equal(cl.tagVal, old):
			if after {
				p.stale++
			}
		default:
			p.failed++
			if p.firstErr == nil {
				p.firstErr = fmt.Errorf("answer from deployment %q, neither %s nor %s", cl.tagVal, want, old)
			}
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("no answer from the new deployment %s within %v of the swap call (%d stale, %d failed)", want, swapTimeout, p.stale, p.failed)
			}
			p.err = err
			return p
		}
	}
}

// pgVersion names the PostgreSQL server of dsn for the report.
func pgVersion(ctx context.Context, dsn string) string {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "PostgreSQL (version unknown)"
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "PostgreSQL (version unknown)"
	}
	return "PostgreSQL " + v
}
