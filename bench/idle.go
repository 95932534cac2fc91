package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// idleConns is how many idle keep-alive clients idleLoad holds open while
// the active ones run (issue 9: about 2,000 idle sockets once made every
// app answer 502).
const idleConns = 2000

// idleLoad opens idle keep-alive clients, each after one request of its
// own, then runs the active clients of the proxy comparison against the
// same app: every active request must still get its 200, and the idle
// clients must still be open afterwards (they wait for the idle timeout,
// holding no connection to the handler).
func idleLoad(ctx context.Context, b *bench) (*section, error) {
	c := b.cfg
	n := idleConns
	if c.smoke {
		n = 200
	}
	small := newRequest("GET", "/api/small", b.env.hostHeader, nil, 60)
	idle := make([]*client, n)
	var idleFailed atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range idle {
		idle[i] = &client{addr: b.env.hotswap}
		wg.Add(1)
		sem <- struct{}{}
		go func(cl *client) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := cl.do(small); err != nil {
				idleFailed.Add(1)
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}(idle[i])
	}
	wg.Wait()
	defer func() {
		for _, cl := range idle {
			cl.close()
		}
	}()
	b.logf("  %d idle keep-alive clients open (%d failed their first request); %d active clients for %v",
		n, idleFailed.Load(), c.conns, c.warmup+c.duration)
	res, err := load{addr: b.env.hotswap, req: small, conns: c.conns, warmup: c.warmup, dur: c.duration}.run(ctx)
	if err != nil {
		return nil, err
	}
	if res.firstErr != nil {
		b.logf("  first active failure: %v", res.firstErr)
	}
	if firstErr != nil {
		b.logf("  first idle failure: %v", firstErr)
	}
	handlerConns := connsToHandlers(b.env)
	// Still open: a read times out instead of finding the connection closed.
	open := 0
	for _, cl := range idle {
		if cl.c == nil {
			continue
		}
		cl.c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := cl.br.ReadByte(); errors.Is(err, os.ErrDeadlineExceeded) {
			open++
		}
	}
	s := &section{
		header: []string{"idle keep-alive clients", "their first request failed", "still open after the run", "connections to handlers after the run", "active clients", "active req/s", "active OK", "active failed"},
		rows: [][]string{{
			fmt.Sprint(n), fmt.Sprint(idleFailed.Load()), fmt.Sprint(open), handlerConns, fmt.Sprint(c.conns),
			fmt.Sprintf("%.0f", res.rps), fmt.Sprint(res.ok), fmt.Sprint(res.failed),
		}},
		notes: []string{"Each idle client sent one GET /api/small and then nothing; the active clients ran a closed loop of the same request, " +
			"as in the proxy comparison. Connections to handlers: established TCP connections into the handler processes' listeners " +
			"(from /proc/net/tcp), counted while the idle clients are still open; an idle client holds none."},
		failed: res.failed + idleFailed.Load(),
	}
	ok := res.failed == 0 && idleFailed.Load() == 0 && res.ok > 0
	b.addGoal(60, fmt.Sprintf("%d idle keep-alive clients + %d active: every active request answered", n, c.conns),
		fmt.Sprintf("%d OK, %d failed, %.0f req/s", res.ok, res.failed, res.rps), metOrNot(ok))
	return s, nil
}

// connsToHandlers counts established TCP connections into listeners other
// than hotswap's own and the baseline's, that is into handler processes.
func connsToHandlers(e *env) string {
	ours := map[int]bool{}
	for _, a := range []string{e.hotswap, e.direct, e.nginx, strings.TrimSuffix(strings.TrimPrefix(e.main.api, "http://"), "/api/v1")} {
		if _, p, err := net.SplitHostPort(a); err == nil {
			n, _ := strconv.Atoi(p)
			ours[n] = true
		}
	}
	listening := map[int]bool{}
	var established []int // local ports of established sockets
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			return "unknown"
		}
		for line := range strings.Lines(string(b)) {
			fields := strings.Fields(line)
			if len(fields) < 4 || fields[0] == "sl" {
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			port, err := strconv.ParseInt(hexPort, 16, 32)
			if err != nil {
				continue
			}
			switch fields[3] {
			case "0A":
				listening[int(port)] = true
			case "01":
				established = append(established, int(port))
			}
		}
	}
	n := 0
	for _, p := range established {
		if listening[p] && !ours[p] {
			n++
		}
	}
	return strconv.Itoa(n)
}
