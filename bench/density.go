package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Many apps per machine (issue 14, item 3): one server with N apps of three
// slots each (production, staging, canary), every slot running the bench's
// Go handler, the non-production slots scaled to zero after --idle-timeout
// 2s. It reports the memory of the server and of all handler processes,
// how many handlers run, the start-up time of the server with all of them,
// and the latency of requests spread over the awake production slots.

// densityIdle is the density server's --idle-timeout.
const densityIdle = 2 * time.Second

// densitySlots are the slots of every app; production is created with the app.
var densitySlots = []string{"production", "staging", "canary"}

func densityApp(i int) string { return fmt.Sprintf("d%03d", i+1) }

func densityHost(app, slot string) string {
	if slot == "production" {
		return app + ".localhost"
	}
	return app + "-" + slot + ".localhost"
}

// memSample is one look at a server's memory, in KiB.
type memSample struct {
	server   int64 // the server's VmRSS
	warden   int64 // its warden's RssAnon (its file pages are the server binary's)
	handlers int   // handler processes (every descendant but the warden)
	rss      int64 // sum of the handlers' VmRSS (shared pages counted in each)
	pss      int64 // sum of the handlers' Pss (shared pages split among their users)
	anon     int64 // sum of the handlers' RssAnon (private memory)
}

func density(ctx context.Context, b *bench) (*section, error) {
	c := b.cfg
	e := b.env
	apps, rates := 200, []float64{1000, 5000}
	if c.smoke {
		apps, rates = 5, []float64{500}
	}
	const name = "density"
	fn, admin, err := freePort2()
	if err != nil {
		return nil, err
	}
	srv, err := startDensity(ctx, e, name, fn, admin)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, srv.api+"/apps", "", srv.token); err != nil {
		return nil, fmt.Errorf("density server: %w", err)
	}

	// Create the apps and deploy the same zip to every slot, four apps at a
	// time.
	b.logf("  creating %d apps × %d slots", apps, len(densitySlots))
	t0 := time.Now()
	if err := forEach(ctx, apps, 4, func(i int) error {
		app := densityApp(i)
		if err := srv.createApp(ctx, app); err != nil {
			return err
		}
		for _, slot := range densitySlots {
			if slot != "production" {
				if err := srv.createSlot(ctx, app, slot); err != nil {
					return err
				}
			}
			if _, err := srv.deploy(ctx, app, slot, e.handlerZip); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	setup := time.Since(t0)
	b.logf("  %d deploys in %v", apps*len(densitySlots), setup.Round(time.Millisecond))

	settle := func() (memSample, time.Duration, error) {
		t := time.Now()
		if err := waitSettled(ctx, srv, apps); err != nil {
			return memSample{}, 0, err
		}
		waited := time.Since(t)
		m, err := sampleMem(ctx, srv.proc.cmd.Process.Pid)
		return m, waited, err
	}
	afterSetup, waited, err := settle()
	if err != nil {
		return nil, err
	}
	b.logf("  settled %v after the last deploy: server %d KiB, %d handlers %d KiB RSS, %d KiB PSS", waited.Round(time.Millisecond),
		afterSetup.server, afterSetup.handlers, afterSetup.rss, afterSetup.pss)

	// Start-up: stop the server, start it again on the same data directory.
	dataDir := filepath.Join(e.tmp, name+"-data")
	srv.proc.stop()
	if err := waitUnlocked(ctx, dataDir); err != nil {
		return nil, err
	}
	prod := make([]request, apps)
	for i := range apps {
		prod[i] = newRequest("GET", "/api/small", densityHost(densityApp(i), "production"), nil, 60)
	}
	if fn, admin, err = freePort2(); err != nil {
		return nil, err
	}
	t0 = time.Now()
	srv, err = startDensity(ctx, e, name, fn, admin)
	if err != nil {
		return nil, err
	}
	first, all, err := firstAnswers(ctx, fn, prod, t0)
	if err != nil {
		return nil, fmt.Errorf("after restart: %w", err)
	}
	startup := all
	b.logf("  restart: first production answer after %v, all %d after %v", first.Round(time.Millisecond), apps, all.Round(time.Millisecond))
	if err := waitHTTP(ctx, srv.api+"/apps", "", srv.token); err != nil {
		return nil, fmt.Errorf("density server after restart: %w", err)
	}
	afterStart, _, err := settle()
	if err != nil {
		return nil, err
	}
	b.logf("  after restart: server %d KiB, %d handlers %d KiB RSS, %d KiB PSS", afterStart.server, afterStart.handlers, afterStart.rss, afterStart.pss)

	// Latency: an open loop over every production slot in turn, against the
	// same rate on one app, alternating round by round, at each rate. The
	// CPU time the server and the handlers used during each run, per
	// request, says what spreading costs beyond latency.
	one := []request{prod[0]}
	type run struct {
		rate              float64
		what              string
		reqs              []request
		p50, p99, rps     series
		cpuSrv, cpuHandle series // µs of CPU per request sent
		sockets           series // handler sockets open after the run
	}
	var runs []*run
	for _, r := range rates {
		runs = append(runs, &run{rate: r, what: fmt.Sprintf("spread over %d apps", apps), reqs: prod},
			&run{rate: r, what: "one app (d001)", reqs: one})
	}
	var failed int64
	pid := srv.proc.cmd.Process.Pid
	// Closed loop first in each round: the peak, spread and on one app.
	peaks := []*run{{what: fmt.Sprintf("spread over %d apps", apps), reqs: prod}, {what: "one app (d001)", reqs: one}}
	for round := range c.rounds {
		for _, k := range peaks {
			srv0, hnd0 := cpuTicks(pid)
			res, err := load{addr: fn, req: k.reqs[0], reqs: k.reqs, conns: c.conns, warmup: c.warmup, dur: c.duration}.run(ctx)
			if err != nil {
				return nil, err
			}
			srv1, hnd1 := cpuTicks(pid)
			failed += res.failed
			if res.firstErr != nil {
				b.logf("  %s: %d failed, first: %v", k.what, res.failed, res.firstErr)
			}
			// Requests in the whole run, warm-up included, estimated
			// from the measured window's rate.
			sent := res.rps * (c.warmup + c.duration).Seconds()
			k.rps = append(k.rps, res.rps)
			k.cpuSrv = append(k.cpuSrv, float64(srv1-srv0)*tickUS/max(sent, 1))
			k.cpuHandle = append(k.cpuHandle, float64(hnd1-hnd0)*tickUS/max(sent, 1))
			b.logf("  round %d/%d closed %-20s %.0f req/s, CPU/request server %.0f µs handlers %.0f µs", round+1, c.rounds, k.what,
				res.rps, k.cpuSrv[round], k.cpuHandle[round])
		}
		for _, k := range runs {
			srv0, hnd0 := cpuTicks(pid)
			res, err := load{addr: fn, req: k.reqs[0], reqs: k.reqs, conns: c.conns, warmup: c.warmup, dur: c.duration, rate: k.rate}.run(ctx)
			if err != nil {
				return nil, err
			}
			srv1, hnd1 := cpuTicks(pid)
			sent := k.rate * (c.warmup + c.duration).Seconds()
			failed += res.failed
			if res.firstErr != nil {
				b.logf("  %s: %d failed, first: %v", k.what, res.failed, res.firstErr)
			}
			if len(res.lat) == 0 {
				return nil, fmt.Errorf("open loop (%s): no answer in the window", k.what)
			}
			k.p50 = append(k.p50, us(percentile(res.lat, 0.5)))
			k.p99 = append(k.p99, us(percentile(res.lat, 0.99)))
			k.rps = append(k.rps, res.rps)
			k.cpuSrv = append(k.cpuSrv, float64(srv1-srv0)*tickUS/sent)
			k.cpuHandle = append(k.cpuHandle, float64(hnd1-hnd0)*tickUS/sent)
			k.sockets = append(k.sockets, float64(handlerSockets(pid)))
			b.logf("  round %d/%d @ %.0f %-20s p50 %s p99 %s, %.0f req/s answered, CPU/request server %.0f µs handlers %.0f µs, %d handler sockets", round+1, c.rounds, k.rate, k.what,
				fmtUS(us(percentile(res.lat, 0.5))), fmtUS(us(percentile(res.lat, 0.99))), res.rps, k.cpuSrv[round], k.cpuHandle[round], int(k.sockets[round]))
		}
	}
	// The load woke nothing but production.
	after, err := sampleMem(ctx, srv.proc.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	srv.proc.stop()

	mib := func(k int64) string { return fmtKiB(k) }
	per := func(k int64, n int) string {
		if n == 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f MiB", float64(k)/1024/float64(n))
	}
	memRow := func(what string, m memSample) []string {
		return []string{what, mib(m.server), mib(m.warden), fmt.Sprint(m.handlers), mib(m.rss), mib(m.pss), mib(m.anon),
			per(m.rss, m.handlers), per(m.pss, m.handlers)}
	}
	s := &section{
		header: []string{"memory (KiB from /proc, median of 3 samples)", "server RSS", "warden private", "handler processes",
			"handlers' RSS sum", "handlers' PSS sum", "handlers' private (RssAnon) sum", "RSS per awake handler", "PSS per awake handler"},
		rows: [][]string{
			memRow(fmt.Sprintf("after creating %d apps × 3 slots (%d deploys), non-production asleep", apps, apps*3), afterSetup),
			memRow("after a restart on the same data directory", afterStart),
			memRow("after the latency runs below", after),
		},
		failed: failed,
	}
	mm := func(v series) string {
		return fmt.Sprintf("%s (%s–%s)", fmtUS(v.median()), fmtUS(v.min()), fmtUS(v.max()))
	}
	lt := []string{
		"| figure | value (latency: median over rounds, min–max) |",
		"|---|---|",
		fmt.Sprintf("| server start → every one of the %d production slots answered `GET /api/small` | %s |", apps, fmtMS(startup)),
		fmt.Sprintf("| server start → first production answer | %s |", fmtMS(first)),
		fmt.Sprintf("| setup: create %d apps, %d slots, %d deploys of the same zip (4 apps at a time) | %s |", apps, apps*3, apps*3, setup.Round(time.Millisecond)),
		fmt.Sprintf("| failed requests (all runs) | %d |", failed),
	}
	lt = append(lt, "", "| open loop | rate req/s | p50 | p99 | answered req/s | server CPU per request | handlers' CPU per request | handler sockets open after the run | p99 / one app's p99 |",
		"|---|---|---|---|---|---|---|---|---|")
	for i, k := range runs {
		ratio := "1.00"
		if i%2 == 0 {
			ratio = fmt.Sprintf("%.2f", k.p99.median()/runs[i+1].p99.median())
		}
		lt = append(lt, fmt.Sprintf("| %s | %.0f | %s | %s | %s | %s | %s | %.0f | %s |", k.what, k.rate, mm(k.p50), mm(k.p99), mmRPS(k.rps),
			mm(k.cpuSrv), mm(k.cpuHandle), k.sockets.median(), ratio))
	}
	lt = append(lt, "", fmt.Sprintf("| closed loop, %d conns | peak req/s | server CPU per request | handlers' CPU per request | peak / one app's peak |", c.conns), "|---|---|---|---|---|")
	for _, k := range peaks {
		lt = append(lt, fmt.Sprintf("| %s | %s | %s | %s | %.2f |", k.what, mmRPS(k.rps), mm(k.cpuSrv), mm(k.cpuHandle), k.rps.median()/peaks[1].rps.median()))
	}
	s.text = strings.Join(lt, "\n") + "\n"
	load1, _ := os.ReadFile("/proc/loadavg")
	s.notes = append(s.notes,
		fmt.Sprintf("One `hotswap serve --idle-timeout %v` with its own data directory: %d apps (d001…), each with production, staging and canary, every slot deployed with the same zip "+
			"(the bench's Go handler, %d KiB; the store keeps one copy per digest). Non-production slots fall asleep %v after their last request; production never does. "+
			"\"Settled\" means the server has exactly %d handler processes and the API shows every staging and canary slot `idle` and every production slot `running`; then memory is sampled 3 times, 500 ms apart.",
			densityIdle, apps, len(e.handlerZip)>>10, densityIdle, apps),
		"Memory: the server's VmRSS, and its warden's private memory (the warden is the same binary re-executed to kill handlers if the server dies). Handlers are every other process below the server. "+
			"RSS counts pages shared between handlers (the same binary's text, mapped by all of them) once per process, so the RSS sum overstates; PSS divides each shared page among the processes mapping it, so the PSS sum is what they hold together, and PSS per handler is the figure to multiply by a number of awake slots.",
		fmt.Sprintf("Start-up: SIGTERM to the server, wait until its data directory lock is free (its warden done), then exec it again on the same data directory and new ports; from just before the exec, each production host name is requested every 2 ms (4 clients, each its own share of the apps) until it answers 200. Slots that may idle start asleep, so %d handlers start, not %d.", apps, apps*3),
		fmt.Sprintf("Latency: the bench's open-loop load generator (%d keep-alive connections, latency from each request's scheduled send time), request i going to production slot i mod %d, %d rounds of %v warm-up + %v measured, alternating with the same rate on app d001 alone, to show what spreading over many apps costs; each round begins with a closed loop (each connection sends its next request when the answer is in) spread and on d001, for the peak. "+
			"Cells: median over rounds (min–max). CPU per request: the utime+stime the server (with its warden) and the handler processes used during the run (/proc/<pid>/stat, 10 ms ticks), divided by the requests sent in it, warm-up included. "+
			"Handler sockets: the sockets the handler processes hold open (listeners included, one per handler), i.e. the server's pooled connections to them.",
			c.conns, apps, c.rounds, c.warmup, c.duration),
		"Load average at the end (1, 5, 15 min, running/total): "+strings.TrimSpace(string(load1))+", on 2 cores shared with other engineers' test runs.",
	)
	if afterSetup.handlers != apps || afterStart.handlers != apps {
		return nil, fmt.Errorf("%d and %d handler processes run, want %d (one per production slot)", afterSetup.handlers, afterStart.handlers, apps)
	}
	return s, nil
}

func mmRPS(v series) string {
	return fmt.Sprintf("%s (%s–%s)", fmtRPS(v.median()), fmtRPS(v.min()), fmtRPS(v.max()))
}

func freePort2() (string, string, error) {
	a, err := freePort()
	if err != nil {
		return "", "", err
	}
	b, err := freePort()
	return a, b, err
}

// startDensity execs `hotswap serve` on data directory <tmp>/<name>-data
// with --idle-timeout densityIdle and returns at once; the admin token is
// read when the file has it.
func startDensity(ctx context.Context, e *env, name, fn, admin string) (*server, error) {
	data := filepath.Join(e.tmp, name+"-data")
	p, err := e.start(name, e.bin, e.tmp, nil, "serve", "--data", data, "--listen", fn, "--admin", admin,
		"--log-level", "error", "--shutdown-grace", "3s", "--idle-timeout", densityIdle.String())
	if err != nil {
		return nil, err
	}
	token, err := waitToken(ctx, filepath.Join(data, "admin-token"))
	if err != nil {
		return nil, err
	}
	return &server{fn: fn, api: "http://" + admin + "/api/v1", token: token, proc: p}, nil
}

// waitUnlocked waits, up to 30 s, until nothing holds dir's lock (a stopped
// server's warden holds it until its sweep is done).
func waitUnlocked(ctx context.Context, dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("data directory %s still locked after 30s: %w", dir, err)
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// firstAnswers requests each of reqs on addr every 2 ms until each has
// answered once, with 4 clients sharing them out, for at most 60 s. It
// returns the times from t0 to the first answer and to the last.
func firstAnswers(ctx context.Context, addr string, reqs []request, t0 time.Time) (first, last time.Duration, err error) {
	const workers = 4
	var mu sync.Mutex
	first = time.Duration(1<<63 - 1)
	err = forEach(ctx, workers, workers, func(w int) error {
		cl := &client{addr: addr}
		defer cl.close()
		var pending []request
		for i := w; i < len(reqs); i += workers {
			pending = append(pending, reqs[i])
		}
		deadline := t0.Add(60 * time.Second)
		for len(pending) > 0 {
			pending = slices.DeleteFunc(pending, func(r request) bool {
				if cl.do(r) != nil {
					return false
				}
				d := time.Since(t0)
				mu.Lock()
				first, last = min(first, d), max(last, d)
				mu.Unlock()
				return true
			})
			if len(pending) == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%d production slots still not answering after 60s", len(pending))
			}
			if err := sleep(ctx, 2*time.Millisecond); err != nil {
				return err
			}
		}
		return nil
	})
	return first, last, err
}

// forEach runs f(0..n-1) on up to workers goroutines and returns the first
// error; after an error no new item starts.
func forEach(ctx context.Context, n, workers int, f func(i int) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int
		errs []error
	)
	for range min(workers, n) {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := len(errs) > 0 || ctx.Err() != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return ctx.Err()
}

// waitSettled waits until the server runs exactly apps handler processes
// and the API shows every non-production slot idle and every production
// slot running, for at most 2 minutes.
func waitSettled(ctx context.Context, srv *server, apps int) error {
	deadline := time.Now().Add(2 * time.Minute)
	pid := srv.proc.cmd.Process.Pid
	for {
		n := len(handlerPIDs(pid))
		why := fmt.Sprintf("%d handler processes run", n)
		if n == apps {
			bad, err := unsettledSlots(ctx, srv, apps)
			if err != nil {
				return err
			}
			if bad == "" {
				return nil
			}
			why = bad
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not settled after 2 minutes: %s (want %d handlers, non-production idle)", why, apps)
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}

// unsettledSlots names the first slot whose state is not the settled one,
// or "" when all are.
func unsettledSlots(ctx context.Context, srv *server, apps int) (string, error) {
	for i := range apps {
		app := densityApp(i)
		var out struct {
			Slots []struct{ Name, State string }
		}
		if err := call(ctx, srv.token, "GET", srv.api+"/apps/"+app+"/slots", "application/json", nil, 200, &out); err != nil {
			return "", err
		}
		if len(out.Slots) != len(densitySlots) {
			return fmt.Sprintf("app %s has %d slots", app, len(out.Slots)), nil
		}
		for _, sl := range out.Slots {
			want := "idle"
			if sl.Name == "production" {
				want = "running"
			}
			if sl.State != want {
				return fmt.Sprintf("slot %s/%s is %s", app, sl.Name, sl.State), nil
			}
		}
	}
	return "", nil
}

// handlerPIDs lists the processes below the server other than its warden.
func handlerPIDs(server int) []int {
	return slices.DeleteFunc(descendants(server), isWarden)
}

// sampleMem takes 3 samples 500 ms apart and returns the median of each
// figure.
func sampleMem(ctx context.Context, server int) (memSample, error) {
	var all [6]series
	for i := range 3 {
		if i > 0 {
			if err := sleep(ctx, 500*time.Millisecond); err != nil {
				return memSample{}, err
			}
		}
		var m memSample
		var err error
		if m.server, err = vmRSS(server); err != nil {
			return memSample{}, fmt.Errorf("server memory: %w", err)
		}
		for _, pid := range descendants(server) {
			if isWarden(pid) {
				if r, err := statusKiB(pid, "RssAnon:"); err == nil {
					m.warden += r
				}
				continue
			}
			rss, err1 := vmRSS(pid)
			anon, err2 := statusKiB(pid, "RssAnon:")
			pss, err3 := pssKiB(pid)
			if err := errors.Join(err1, err2, err3); err != nil {
				continue // exited meanwhile
			}
			m.handlers++
			m.rss += rss
			m.anon += anon
			m.pss += pss
		}
		for j, v := range []int64{m.server, m.warden, int64(m.handlers), m.rss, m.pss, m.anon} {
			all[j] = append(all[j], float64(v))
		}
	}
	med := func(j int) int64 { return int64(all[j].median()) }
	return memSample{server: med(0), warden: med(1), handlers: int(med(2)), rss: med(3), pss: med(4), anon: med(5)}, nil
}

// pssKiB reads a process's proportional set size from smaps_rollup.
func pssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no Pss for pid %d", pid)
}

// tickUS is one clock tick of /proc/<pid>/stat times in µs (USER_HZ is 100
// on Linux).
const tickUS = 10000

// cpuTicks returns the CPU time (utime+stime, in ticks) of the server with
// its warden, and of every other process below it.
func cpuTicks(server int) (srv, handlers int64) {
	srv = procTicks(server)
	for _, pid := range descendants(server) {
		if isWarden(pid) {
			srv += procTicks(pid)
		} else {
			handlers += procTicks(pid)
		}
	}
	return srv, handlers
}

func procTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:]) // state ppid ... utime is the 12th, stime the 13th
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

// handlerSockets counts the sockets open in the processes below the server
// other than its warden.
func handlerSockets(server int) int {
	n := 0
	for _, pid := range handlerPIDs(server) {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(l, "socket:") {
				n++
			}
		}
	}
	return n
}
