package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// swapRecord is one request of a swap-under-load run; times are offsets
// from the run's start.
type swapRecord struct {
	sched, sent, done time.Duration
	dep               int8 // index into the run's deployments; depUnknown, depFailed
}

const (
	depUnknown int8 = -1 // answered, but by no deployment of the app
	depFailed  int8 = -2 // non-2xx, wrong body or connection error
)

// swapEvent is one swap call as the client saw it, and the server's answer.
type swapEvent struct {
	t0, t1     time.Duration // call sent, answer read; offsets from start
	newDep     int8          // the deployment production serves after the swap
	oldDep     int8
	reusedWarm bool
	durationMs float64
	flipMicros float64
}

// swapResult is the API's SwapResult, the fields the harness reads.
type swapResult struct {
	SourceDeployment string  `json:"sourceDeployment"`
	TargetDeployment string  `json:"targetDeployment"`
	ReusedWarm       bool    `json:"reusedWarm"`
	DurationMs       float64 `json:"durationMs"`
	FlipMicros       float64 `json:"flipMicros"`
}

// swapFigures is what one run (one client count) measured.
type swapFigures struct {
	clients       int
	answered      int64
	failed        int64
	unknown       int64
	firstErr      error
	steadyP99     float64 // µs
	windowP99     series  // µs, one per swap
	stale         int64   // old deployment answering requests sent after the swap call returned
	firstCall     float64 // µs: first swap's call wall time
	firstDur      float64 // ms: its durationMs
	firstFlip     float64 // µs: its flipMicros
	firstNew      float64 // µs: its swap call → first response from the new deployment; NaN if none
	firstWarm     bool
	restCall      series // µs, later swaps
	restDur       series // ms
	restFlip      series // µs
	restNew       series // µs
	restWarm      int
	neverNew      int // swaps after which no response came from the new deployment
	swaps         int
	windowRatio   float64
	steadyAnswers int
}

// swapUnderLoad runs, for each client count, a fresh app with the bench
// handler in production and staging, an open-loop load on the production
// host name and a swap every few seconds (staging ↔ production, so every
// swap after the first two reuses warm process sets: an instant revert).
func swapUnderLoad(ctx context.Context, b *bench) (*section, error) {
	c := b.cfg
	var runs []swapFigures
	s := &section{}
	for _, n := range c.swapClients {
		f, err := swapRun(ctx, b, n)
		if err != nil {
			return nil, fmt.Errorf("%d clients: %w", n, err)
		}
		s.failed += f.failed + f.unknown
		if f.firstErr != nil {
			b.logf("  %d clients: %d failed, first: %v", n, f.failed+f.unknown, f.firstErr)
		}
		runs = append(runs, f)
	}

	s.header = []string{"figure"}
	for _, f := range runs {
		s.header = append(s.header, fmt.Sprintf("%d clients", f.clients))
	}
	row := func(name string, cell func(f swapFigures) string) {
		cells := []string{name}
		for _, f := range runs {
			cells = append(cells, cell(f))
		}
		s.rows = append(s.rows, cells)
	}
	mmm := func(v series, f func(float64) string) string {
		if len(v) == 0 {
			return "—"
		}
		return fmt.Sprintf("%s (%s–%s)", f(v.median()), f(v.min()), f(v.max()))
	}
	ms := func(v float64) string { return fmt.Sprintf("%.0f ms", v) }
	newUS := func(v float64) string {
		if math.IsNaN(v) {
			return "never"
		}
		return fmtUS(v)
	}
	row("requests answered", func(f swapFigures) string { return fmt.Sprint(f.answered) })
	row("**failed requests** (non-2xx, wrong body, connection errors)", func(f swapFigures) string { return fmt.Sprint(f.failed) })
	row("answers from neither deployment", func(f swapFigures) string { return fmt.Sprint(f.unknown) })
	row("swaps (first + instant reverts)", func(f swapFigures) string { return fmt.Sprintf("%d (1 + %d)", f.swaps, f.swaps-1) })
	row("steady-state p99 (outside the swap windows)", func(f swapFigures) string { return fmtUS(f.steadyP99) })
	row("p99 in the 1 s around each swap", func(f swapFigures) string { return mmm(f.windowP99, fmtUS) })
	row("swap-window p99 / steady p99 (medians)", func(f swapFigures) string { return fmt.Sprintf("%.2f", f.windowRatio) })
	row("first swap: call wall time", func(f swapFigures) string { return fmtUS(f.firstCall) })
	row("first swap: server durationMs / flipMicros", func(f swapFigures) string {
		return fmt.Sprintf("%s / %s (reusedWarm %v)", ms(f.firstDur), fmtUS(f.firstFlip), f.firstWarm)
	})
	row("first swap: call → first response from the new deployment", func(f swapFigures) string { return newUS(f.firstNew) })
	row("later swaps: call wall time", func(f swapFigures) string { return mmm(f.restCall, fmtUS) })
	row("later swaps: server durationMs", func(f swapFigures) string { return mmm(f.restDur, ms) })
	row("later swaps: server flipMicros", func(f swapFigures) string { return mmm(f.restFlip, fmtUS) })
	row("later swaps: call → first response from the new deployment", func(f swapFigures) string {
		v := mmm(f.restNew, fmtUS)
		if f.neverNew > 0 {
			v += fmt.Sprintf("; %d never", f.neverNew)
		}
		return v
	})
	row("later swaps: reusedWarm", func(f swapFigures) string { return fmt.Sprintf("%d of %d", f.restWarm, f.swaps-1) })
	row("old deployment answering after the swap call returned", func(f swapFigures) string { return fmt.Sprint(f.stale) })
	s.notes = append(s.notes,
		fmt.Sprintf("Each run: a fresh app with the bench handler deployed to production and staging, `GET /api/small` on the production host name at %.0f req/s in total (open loop, over all clients, keep-alive), %v long, "+
			"a swap (`POST /api/v1/apps/{app}/swap {\"slot\":\"staging\"}`) every %v from %v on. Each swap reverses the previous one, so after the first the process sets are still warm (the revert window): \"later swaps\" are instant reverts.",
			c.swapRate, c.swapDuration, c.swapEvery, c.swapEvery),
		"The handler answers with `X-Deployment: $HOTSWAP_DEPLOYMENT_ID`; the load generator records each request's scheduled and actual send time, its answer time and that header. "+
			"Call → first response from the new deployment: the earliest answer from the new deployment to a request sent at or after the swap call, minus the time of the call (it includes the whole swap call). "+
			"Latency in the swap windows is measured from each request's scheduled send time (no coordinated omission); the window is 500 ms either side of the swap call. "+
			"\"Old deployment answering after the swap call returned\" counts answers from the replaced deployment to requests sent after the call returned (must be 0).",
	)

	var failed int64
	var worst float64
	var medians []string
	allPrepared := true
	for _, f := range runs {
		failed += f.failed + f.unknown
		if len(f.restNew) == 0 || f.neverNew > 0 {
			allPrepared = false
			continue
		}
		worst = max(worst, f.restNew.median())
		medians = append(medians, fmt.Sprintf("%s at %d clients", fmtUS(f.restNew.median()), f.clients))
	}
	b.addGoal(30, "zero failed requests during swaps", fmt.Sprintf("%d failed", failed), metOrNot(failed == 0))
	switch {
	case allPrepared:
		b.addGoal(40, "swap call → new deployment serving < 10 ms once prepared",
			"median over instant reverts: "+strings.Join(medians, ", "), metOrNot(worst < 10000))
	default:
		b.addGoal(40, "swap call → new deployment serving < 10 ms once prepared", "no answer from the new deployment after some swaps", metOrNot(false))
	}
	return s, nil
}

// swapRun sets up a fresh app for clients clients, loads it while swapping,
// then deletes the app (stopping its processes).
func swapRun(ctx context.Context, b *bench, clients int) (swapFigures, error) {
	c := b.cfg
	srv := b.env.main
	app := fmt.Sprintf("swap%d", clients)
	host := app + ".localhost"
	b.logf("  %d clients: setting up app %s", clients, app)
	if err := srv.createApp(ctx, app); err != nil {
		return swapFigures{}, err
	}
	defer srv.delete(context.WithoutCancel(ctx), "/apps/"+app)
	if err := srv.createSlot(ctx, app, "staging"); err != nil {
		return swapFigures{}, err
	}
	prod, err := srv.deploy(ctx, app, "production", b.env.handlerZip)
	if err != nil {
		return swapFigures{}, err
	}
	stag, err := srv.deploy(ctx, app, "staging", b.env.handlerZip)
	if err != nil {
		return swapFigures{}, err
	}
	if err := waitHTTP(ctx, "http://"+srv.fn+"/api/small", host, ""); err != nil {
		return swapFigures{}, err
	}
	deps := [][]byte{[]byte(prod.ID), []byte(stag.ID)}
	index := func(id string) int8 {
		for i, d := range deps {
			if string(d) == id {
				return int8(i)
			}
		}
		return depUnknown
	}

	req := newRequest("GET", "/api/small", host, nil, 60)
	interval := time.Duration(float64(time.Second) / c.swapRate)
	total := int64(c.swapDuration / interval)
	start := time.Now().Add(100 * time.Millisecond)

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		next     atomic.Int64
		records  []swapRecord
		failed   int64
		firstErr error
		panicVal any
		events   []swapEvent
		swapErr  error
	)
	for range clients {
		wg.Go(func() {
			defer func() {
				if p := recover(); p != nil {
					mu.Lock()
					panicVal = p
					mu.Unlock()
				}
			}()
			cl := &client{addr: srv.fn, tag: []byte("X-Deployment")}
			defer cl.close()
			var recs []swapRecord
			var nFailed int64
			var fErr error
			time.Sleep(time.Until(start))
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= total {
					break
				}
				sched := time.Duration(i) * interval
				if d := time.Until(start.Add(sched)); d > 0 {
					time.Sleep(d)
				}
				sent := time.Since(start)
				if sent > c.swapDuration+overrun {
					nFailed++
					if fErr == nil {
						fErr = fmt.Errorf("open loop: target fell behind; requests still unsent %v after the window", overrun)
					}
					if rest := next.Swap(total); rest < total {
						nFailed += total - rest
					}
					break
				}
				err := cl.do(req)
				r := swapRecord{sched: sched, sent: sent, done: time.Since(start), dep: depFailed}
				if err != nil {
					nFailed++
					if fErr == nil {
						fErr = err
					}
				} else {
					r.dep = depUnknown
					for j, d := range deps {
						if bytes.Equal(cl.tagVal, d) {
							r.dep = int8(j)
						}
					}
				}
				recs = append(recs, r)
			}
			mu.Lock()
			records = append(records, recs...)
			failed += nFailed
			if firstErr == nil {
				firstErr = fErr
			}
			mu.Unlock()
		})
	}
	// The swapper: production serves deps[0] at first; each swap puts the
	// other one there.
	wg.Go(func() {
		for k := 1; c.maxSwaps == 0 || k <= c.maxSwaps; k++ {
			at := time.Duration(k) * c.swapEvery
			if at > c.swapDuration-1500*time.Millisecond {
				return
			}
			if err := sleep(ctx, time.Until(start.Add(at))); err != nil {
				return
			}
			t0 := time.Since(start)
			var res swapResult
			err := call(ctx, srv.token, "POST", srv.api+"/apps/"+app+"/swap", "application/json",
				strings.NewReader(`{"slot":"staging","target":"production"}`), http.StatusOK, &res)
			t1 := time.Since(start)
			if err != nil {
				mu.Lock()
				swapErr = fmt.Errorf("swap %d: %w", k, err)
				mu.Unlock()
				return
			}
			ev := swapEvent{t0: t0, t1: t1, newDep: index(res.SourceDeployment), oldDep: index(res.TargetDeployment),
				reusedWarm: res.ReusedWarm, durationMs: res.DurationMs, flipMicros: res.FlipMicros}
			b.logf("    swap %d at %v: call %v, server %.0f ms, flip %.0f µs, reusedWarm %v", k, t0.Round(time.Millisecond),
				(t1 - t0).Round(10*time.Microsecond), res.DurationMs, res.FlipMicros, res.ReusedWarm)
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
		}
	})
	wg.Wait()
	if panicVal != nil {
		panic(panicVal)
	}
	if err := ctx.Err(); err != nil {
		return swapFigures{}, err
	}
	if swapErr != nil {
		return swapFigures{}, swapErr
	}
	if len(events) == 0 {
		return swapFigures{}, fmt.Errorf("no swap happened: -swap-duration %v is too short for -swap-every %v", c.swapDuration, c.swapEvery)
	}
	f := analyse(records, events, c.swapDuration)
	f.clients, f.failed, f.firstErr = clients, failed, firstErr
	b.logf("  %d clients: %d answered, %d failed, %d from neither deployment, steady p99 %s, swap-window p99 %s, call → new median %s",
		clients, f.answered, f.failed, f.unknown, fmtUS(f.steadyP99), fmtUS(f.windowP99.median()), fmtUS(f.restNew.median()))
	return f, nil
}

// analyse computes a run's figures from its records and swaps.
func analyse(records []swapRecord, events []swapEvent, dur time.Duration) swapFigures {
	slices.SortFunc(records, func(a, b swapRecord) int { return cmp.Compare(a.sent, b.sent) })
	f := swapFigures{swaps: len(events)}
	const half = 500 * time.Millisecond
	const warm = time.Second
	inWindow := func(t time.Duration) bool {
		for _, ev := range events {
			if t >= ev.t0-half && t < ev.t0+half {
				return true
			}
		}
		return false
	}
	var steady []time.Duration
	for _, r := range records {
		switch r.dep {
		case depFailed:
			continue
		case depUnknown:
			f.unknown++
			continue
		}
		f.answered++
		if r.sched >= warm && r.sched < dur && !inWindow(r.sched) {
			steady = append(steady, r.done-r.sched)
		}
	}
	slices.Sort(steady)
	f.steadyP99 = us(percentile(steady, 0.99))
	f.steadyAnswers = len(steady)

	for i, ev := range events {
		var win []time.Duration
		firstNew := time.Duration(math.MaxInt64)
		nextT0 := time.Duration(math.MaxInt64)
		if i+1 < len(events) {
			nextT0 = events[i+1].t0
		}
		for _, r := range records {
			if r.dep < 0 {
				continue
			}
			if r.sched >= ev.t0-half && r.sched < ev.t0+half {
				win = append(win, r.done-r.sched)
			}
			if r.sent >= ev.t0 && r.sent < nextT0 && r.dep == ev.newDep && r.done < firstNew {
				firstNew = r.done
			}
			if r.sent >= ev.t1 && r.sent < nextT0 && r.dep == ev.oldDep {
				f.stale++
			}
		}
		slices.Sort(win)
		f.windowP99 = append(f.windowP99, us(percentile(win, 0.99)))
		toNew := math.NaN()
		if firstNew != time.Duration(math.MaxInt64) {
			toNew = us(firstNew - ev.t0)
		}
		call := us(ev.t1 - ev.t0)
		if i == 0 {
			f.firstCall, f.firstDur, f.firstFlip, f.firstNew, f.firstWarm = call, ev.durationMs, ev.flipMicros, toNew, ev.reusedWarm
			continue
		}
		f.restCall = append(f.restCall, call)
		f.restDur = append(f.restDur, ev.durationMs)
		f.restFlip = append(f.restFlip, ev.flipMicros)
		if math.IsNaN(toNew) {
			f.neverNew++
		} else {
			f.restNew = append(f.restNew, toNew)
		}
		if ev.reusedWarm {
			f.restWarm++
		}
	}
	if f.steadyP99 > 0 {
		f.windowRatio = f.windowP99.median() / f.steadyP99
	}
	return f
}
