package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Scale to zero (issue 14, item 2): the first request to a slot whose
// handler was stopped for idling, against the bare exec-to-first-response
// of the same binary, cycle by cycle in the same run.

// coldSlot is the slot of app bench that idles after a second.
const coldSlot = "coldidle"

// bareProbeEvery is how often the bare start's client tries to connect: as
// fast as a good client would, without spinning on a core the handler
// needs.
const bareProbeEvery = 150 * time.Microsecond

// warmPerCycle is how many requests each cycle sends to the woken slot on
// the same connection, for the warm latency.
const warmPerCycle = 20

// scaleToZeroCold measures cold starts: a slot with HOTSWAP_IDLE_TIMEOUT=1s
// is left to fall asleep (its state idle in the API and its handler process
// gone), then one request is timed from dialling the functions listener to
// the whole answer: the wake (exec, readiness) and the forward. Each cycle
// also times a bare start of the same binary (exec to first good answer,
// probing every bareProbeEvery) and warmPerCycle warm requests.
func scaleToZeroCold(ctx context.Context, b *bench) (*section, error) {
	e := b.env
	srv := e.main
	cycles := 60
	if b.cfg.smoke {
		cycles = 3
	}
	if err := srv.createSlot(ctx, "bench", coldSlot); err != nil {
		return nil, err
	}
	settings := `{"set":[{"name":"HOTSWAP_IDLE_TIMEOUT","value":"1s","slotSetting":true}]}`
	if err := call(ctx, srv.token, "PATCH", srv.api+"/apps/bench/slots/"+coldSlot+"/settings", "application/json",
		strings.NewReader(settings), 200, nil); err != nil {
		return nil, fmt.Errorf("set the idle timeout: %w", err)
	}
	if _, err := srv.deploy(ctx, "bench", coldSlot, e.handlerZip); err != nil {
		return nil, err
	}
	host := "bench-" + coldSlot + ".localhost"
	req := newRequest("GET", "/api/small", host, nil, 60)
	bareReq := newRequest("GET", "/api/small", "bench.localhost", nil, 60)
	serverPID := srv.proc.cmd.Process.Pid

	var cold, bare, warm, idleWait []time.Duration
	var failed int64
	for i := range cycles {
		pid, err := slotPID(serverPID, "bench", coldSlot)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := waitAsleep(ctx, srv, "bench", coldSlot, pid); err != nil {
			return nil, err
		}
		idleWait = append(idleWait, time.Since(t0))

		// The cold request, on a new connection.
		cl := &client{addr: e.hotswap}
		t1 := time.Now()
		err = cl.do(req)
		d := time.Since(t1)
		if err != nil {
			cl.close()
			failed++
			b.logf("  cycle %d: cold request failed: %v", i+1, err)
			continue
		}
		cold = append(cold, d)
		// Warm requests on the same connection.
		var w []time.Duration
		for range warmPerCycle {
			t := time.Now()
			if err := cl.do(req); err != nil {
				failed++
				b.logf("  cycle %d: warm request failed: %v", i+1, err)
				continue
			}
			w = append(w, time.Since(t))
		}
		cl.close()
		warm = append(warm, w...)

		bd, err := bareExec(ctx, e, bareReq)
		if err != nil {
			return nil, fmt.Errorf("bare start: %w", err)
		}
		bare = append(bare, bd)
		slices.Sort(w)
		b.logf("  cycle %d/%d: cold %v, bare %v, warm median %v (asleep after %v)", i+1, cycles,
			d.Round(10*time.Microsecond), bd.Round(10*time.Microsecond), percentile(w, 0.5).Round(time.Microsecond), idleWait[len(idleWait)-1].Round(time.Millisecond))
	}
	if len(cold) == 0 {
		return nil, errors.New("no cold request succeeded")
	}
	// The slot's log says each time the server started the handler again
	// after idling, and how long that start took by its own clock: proof
	// that every cold request did wake a sleeping slot.
	wakes, err := wakeTimes(ctx, srv, "bench", coldSlot)
	if err != nil {
		return nil, err
	}
	if len(wakes) < len(cold) {
		return nil, fmt.Errorf("the slot's log shows %d wakes for %d cold requests", len(wakes), len(cold))
	}
	// Both are in the order of the cycles: what the cold start spent
	// outside the server's logged start, cycle by cycle.
	var outside []time.Duration
	if len(wakes) == len(cold) && failed == 0 {
		for i := range cold {
			outside = append(outside, cold[i]-wakes[i])
		}
	}
	for _, v := range [][]time.Duration{cold, bare, warm, idleWait, wakes, outside} {
		slices.Sort(v)
	}
	med := func(v []time.Duration) float64 { return us(percentile(v, 0.5)) }
	p99 := func(v []time.Duration) float64 { return us(percentile(v, 0.99)) }
	row := func(name string, v []time.Duration) []string {
		return []string{name, fmt.Sprint(len(v)), fmtUS(med(v)), fmtUS(p99(v)), fmtUS(us(v[0])), fmtUS(us(v[len(v)-1])),
			fmt.Sprintf("%.2f", med(v)/med(bare)), fmt.Sprintf("%.2f", p99(v)/p99(bare))}
	}
	s := &section{
		header: []string{"figure", "samples", "median", "p99", "min", "max", "median / bare median", "p99 / bare p99"},
		rows: [][]string{
			row("bare start: exec → first full answer", bare),
			row("cold start: first request to the idle slot, send → full answer", cold),
			row("warm request on the woken slot", warm),
			row("of the cold start: the server's own wake (exec → ready), from the slot log, rounded to ms", wakes),
		},
		failed: failed,
	}
	if len(outside) > 0 {
		s.rows = append(s.rows, []string{"of the cold start: the rest (cold start minus the same cycle's logged wake)", fmt.Sprint(len(outside)),
			fmtUS(med(outside)), fmtUS(p99(outside)), fmtUS(us(outside[0])), fmtUS(us(outside[len(outside)-1])), "", ""})
	}
	load1, _ := os.ReadFile("/proc/loadavg")
	s.notes = append(s.notes,
		fmt.Sprintf("%d cycles, each: wait until slot bench/%s (HOTSWAP_IDLE_TIMEOUT=1s, the bench's Go handler, %d KiB zip) shows `idle` in `GET /api/v1/apps/bench/slots/%s` (polled every 10 ms) and its handler process has exited "+
			"(median wait %v after the previous cycle's last request: the 1 s timeout, the reaper's 1 s tick, the drain and SIGTERM); "+
			"then time one `GET /api/small` on a new connection to the functions listener, dial included, until the whole 60-byte answer is read; that is the cold start: the wake (exec, readiness probe), then the forward. "+
			"Then %d warm requests on the same connection, then the bare start.",
			cycles, coldSlot, len(e.handlerZip)>>10, coldSlot, percentile(idleWait, 0.5).Round(10*time.Millisecond), warmPerCycle),
		fmt.Sprintf("Bare start: `exec` of the same handler binary with FUNCTIONS_CUSTOMHANDLER_PORT set to a free port, timed from just before the exec until the first full 200 answer to `GET /api/small`; "+
			"the client tries to connect every %v (a refused connect costs a few µs on loopback), sends the request as soon as one connects; then the process is killed. "+
			"It runs as the bench's user in the bench's environment; hotswap runs its handler as the unprivileged handler user with a private home and its slot's environment (setuid and a fresh home directory are part of the cold start).",
			bareProbeEvery),
		fmt.Sprintf("The server's wake is what it logs for the slot (\"handler started again after idling (pid N) in X\"): exec to the readiness probe's first answer, rounded to the millisecond; "+
			"its readiness probe tries every 0.5 ms for the start's first 100 ms, then twice as long each time up to 15 ms, so a small handler's readiness is seen within about half a millisecond. "+
			"The rest of a cold start is outside that logged start: dial and request to the server, the hand-over of the wake to the slot's supervising goroutine, and after readiness the forward on a new connection to the handler; the log's rounding to 1 ms is in it too. "+
			"p99 over %d samples is the value ranked %d; treat it as the tail of this run, not a stable percentile.", len(cold), int(0.99*float64(len(cold))+0.5)),
		"Load average at the end (1, 5, 15 min, running/total): "+strings.TrimSpace(string(load1))+" on 2 cores shared with other engineers' test runs, so both columns include waiting for a core.",
	)
	if err := srv.delete(ctx, "/apps/bench/slots/"+coldSlot); err != nil {
		return nil, fmt.Errorf("delete slot %s: %w", coldSlot, err)
	}
	return s, nil
}

// waitAsleep polls the slot until the API says idle and the handler process
// pid (0: none known) has exited, for at most 30 s.
func waitAsleep(ctx context.Context, srv *server, app, slot string, pid int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var v struct{ State string }
		if err := call(ctx, srv.token, "GET", srv.api+"/apps/"+app+"/slots/"+slot, "application/json", nil, 200, &v); err != nil {
			return err
		}
		if v.State == "idle" && (pid == 0 || !alive(pid)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slot %s/%s still %s (handler pid %d alive: %v) after 30s", app, slot, v.State, pid, pid != 0 && alive(pid))
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// slotPID finds the handler process of app/slot below the server: the one
// whose environment names the app and slot (WEBSITE_SITE_NAME and
// WEBSITE_SLOT_NAME, which hotswap sets for every handler); 0 if none runs.
func slotPID(serverPID int, app, slot string) (int, error) {
	if slot == "production" {
		slot = "Production"
	}
	site, name := []byte("WEBSITE_SITE_NAME="+app), []byte("WEBSITE_SLOT_NAME="+slot)
	for _, pid := range descendants(serverPID) {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		vars := bytes.Split(env, []byte{0})
		if slices.ContainsFunc(vars, func(v []byte) bool { return bytes.Equal(v, site) }) &&
			slices.ContainsFunc(vars, func(v []byte) bool { return bytes.Equal(v, name) }) {
			return pid, nil
		}
	}
	return 0, nil
}

// bareExec starts the handler binary on a free port and returns the time
// from just before the exec to its first full good answer to req, trying
// to connect every bareProbeEvery. It kills the process before returning.
func bareExec(ctx context.Context, e *env, req request) (time.Duration, error) {
	addr, err := freePort()
	if err != nil {
		return 0, err
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(filepath.Join(e.handlerPkg, "handler"))
	cmd.Dir = e.handlerPkg
	cmd.Env = append(os.Environ(), "FUNCTIONS_CUSTOMHANDLER_PORT="+port, "HOTSWAP_DEPLOYMENT_ID=bare")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cl := &client{addr: addr}
	defer cl.close()
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start handler: %w", err)
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}()
	deadline := t0.Add(10 * time.Second)
	for {
		// client.do dials, and on a connection sends and reads the whole
		// answer; a refused dial returns at once.
		if err := cl.do(req); err == nil {
			return time.Since(t0), nil
		} else if time.Now().After(deadline) {
			return 0, fmt.Errorf("no good answer from %s after 10s: %w", addr, err)
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		time.Sleep(bareProbeEvery)
	}
}

// wakeTimes reads the slot's log for the server's "handler started again
// after idling (pid N) in D" lines and returns each D.
func wakeTimes(ctx context.Context, srv *server, app, slot string) ([]time.Duration, error) {
	var out struct {
		Lines []struct{ Text string }
	}
	if err := call(ctx, srv.token, "GET", srv.api+"/apps/"+app+"/slots/"+slot+"/log?tail=1000", "application/json", nil, 200, &out); err != nil {
		return nil, fmt.Errorf("slot log: %w", err)
	}
	var ds []time.Duration
	for _, l := range out.Lines {
		if !strings.Contains(l.Text, "started again after idling") {
			continue
		}
		_, v, ok := strings.Cut(l.Text, ") in ")
		if !ok {
			continue
		}
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("slot log line %q: %w", l.Text, err)
		}
		ds = append(ds, d)
	}
	return ds, nil
}
