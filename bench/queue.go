package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotswap/hotswap/internal/azstorage"
	"github.com/hotswap/hotswap/internal/azurite"
)

// The queue trigger scenario (issue 10): the no-op function "tick" of
// bench/queue, deployed as app benchq with its queue trigger on a real
// Azurite, against the same handler binary started on its own port and
// called over HTTP with the same payload envelope. Every invocation POSTs
// its message text back to the bench process (tracker), whose clock times
// it: the send time is taken just before the enqueue call (or the HTTP
// request), the arrival when the callback comes in.
const (
	queueApp       = "benchq"
	queueHost      = "benchq.localhost"
	queueName      = "bench"
	queueFn        = "tick"
	queueBatch     = 16 // host.json defaults: batchSize 16,
	queueThreshold = 8  // newBatchThreshold batchSize/2
	queueDisabled  = "AzureWebJobs." + queueFn + ".Disabled"
)

// queueSettings are the scenario's sizes; -smoke shrinks them.
type queueSettings struct {
	rounds     int           // throughput rounds
	messages   int           // messages drained per throughput round
	maxPoll    time.Duration // host.json maxPollingInterval
	idle       int           // idle samples
	rate       float64       // steady stream, messages/s
	streamFor  time.Duration // length of the steady stream
	directTime time.Duration // each closed-loop HTTP run
}

func queueTrigger(ctx context.Context, b *bench) (*section, error) {
	c := b.cfg
	qs := queueSettings{rounds: min(c.rounds, 3), messages: 3000, maxPoll: 2 * time.Second, idle: 8, rate: 200, streamFor: 10 * time.Second, directTime: c.duration}
	if c.smoke {
		qs = queueSettings{rounds: 1, messages: 100, maxPoll: 200 * time.Millisecond, idle: 1, rate: 100, streamFor: 500 * time.Millisecond, directTime: time.Second}
	}
	e := b.env
	s := &section{}

	dir := filepath.Join(e.tmp, "azurite")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	az, stopAz, err := azurite.Run(dir)
	if err != nil {
		if os.Getenv("CI") != "" {
			return nil, fmt.Errorf("azurite: %w; run make deps", err)
		}
		s.notes = append(s.notes, fmt.Sprintf("Not measured: %v; run make deps.", err))
		return s, nil
	}
	defer stopAz()
	acct, err := azstorage.ParseConnectionString(az.ConnectionString())
	if err != nil {
		return nil, err
	}
	q, err := acct.Queue(queueName)
	if err != nil {
		return nil, err
	}
	if _, err := q.Create(ctx, nil); err != nil {
		return nil, fmt.Errorf("create queue %s: %w", queueName, err)
	}

	tr, err := newTracker()
	if err != nil {
		return nil, err
	}
	defer tr.close()

	// The package, with maxPollingInterval set for this run.
	pkg, err := buildPackage(ctx, e.root, e.tmp, "queue")
	if err != nil {
		return nil, err
	}
	host := fmt.Sprintf(`{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "handler"}, "enableForwardingHttpRequest": false}, "extensions": {"queues": {"maxPollingInterval": %d}}}`, qs.maxPoll.Milliseconds())
	if err := os.WriteFile(filepath.Join(pkg, "host.json"), []byte(host), 0o644); err != nil {
		return nil, err
	}
	zip, err := zipPackage(pkg)
	if err != nil {
		return nil, err
	}

	// The baseline: the same binary on its own port.
	direct, err := freePort()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(direct)
	dp, err := e.start("queue handler", filepath.Join(pkg, "handler"), pkg,
		[]string{"FUNCTIONS_CUSTOMHANDLER_PORT=" + port, "BENCH_CALLBACK=" + tr.url})
	if err != nil {
		return nil, err
	}
	defer dp.stop()
	if err := waitHTTP(ctx, "http://"+direct+"/", "", ""); err != nil {
		return nil, fmt.Errorf("direct queue handler: %w", err)
	}

	// The app, deployed with the function disabled so the first round can
	// fill the queue before the listener drains it.
	srv := e.main
	if err := srv.createApp(ctx, queueApp); err != nil {
		return nil, err
	}
	defer srv.delete(context.WithoutCancel(ctx), "/apps/"+queueApp+"?force=true")
	if err := srv.patchSettings(ctx, queueApp, map[string]string{
		"Storage": az.ConnectionString(), "BENCH_CALLBACK": tr.url, queueDisabled: "true",
	}, nil); err != nil {
		return nil, err
	}
	if _, err := srv.deploy(ctx, queueApp, "production", zip); err != nil {
		return nil, err
	}

	enqueue := func(ctx context.Context, id string) error {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := q.EnqueueMessage(cctx, base64.StdEncoding.EncodeToString([]byte(id)), nil)
		return err
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	post := func(ctx context.Context, id string) error {
		req, err := http.NewRequestWithContext(ctx, "POST", "http://"+direct+"/"+queueFn, strings.NewReader(envelope(id)))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("POST /%s: %s", queueFn, resp.Status)
		}
		return nil
	}
	var failed atomic.Int64
	var firstErr error
	var errMu sync.Mutex
	fail := func(err error) {
		failed.Add(1)
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
			b.logf("  first failure: %v", err)
		}
		errMu.Unlock()
	}

	// Throughput: fill the queue with the function disabled, enable it and
	// time the drain from the first to the last invocation; against a
	// closed loop of as many HTTP clients as the trigger runs invocations
	// at most (batchSize + newBatchThreshold).
	var qRate, dRate series
	var leaked int
	conns := queueBatch + queueThreshold
	dreq := newRequest("POST", "/"+queueFn, queueHost, []byte(envelope("direct")), -1)
	for round := range qs.rounds {
		ids := make([]string, qs.messages)
		for i := range ids {
			ids[i] = fmt.Sprintf("fill-%d-%d", round, i)
		}
		if err := parallel(ctx, ids, 32, enqueue); err != nil {
			return nil, fmt.Errorf("fill the queue: %w", err)
		}
		enabled := time.Now()
		if err := srv.patchSettings(ctx, queueApp, nil, []string{queueDisabled}); err != nil {
			return nil, err
		}
		at, err := tr.wait(ctx, ids, time.Duration(qs.messages)*20*time.Millisecond+time.Minute)
		if err != nil {
			return nil, fmt.Errorf("drain round %d: %w", round+1, err)
		}
		var times []time.Time
		for _, t := range at {
			if t.Before(enabled) {
				leaked++
				continue
			}
			times = append(times, t)
		}
		slices.SortFunc(times, func(x, y time.Time) int { return x.Compare(y) })
		if len(times) < 2 {
			return nil, fmt.Errorf("drain round %d: only %d messages after enabling", round+1, len(times))
		}
		r := float64(len(times)-1) / times[len(times)-1].Sub(times[0]).Seconds()
		qRate = append(qRate, r)
		if err := srv.patchSettings(ctx, queueApp, map[string]string{queueDisabled: "true"}, nil); err != nil {
			return nil, err
		}
		res, err := load{addr: direct, req: dreq, conns: conns, warmup: c.warmup, dur: qs.directTime}.run(ctx)
		if err != nil {
			return nil, err
		}
		if res.failed > 0 {
			fail(fmt.Errorf("direct closed loop: %d failed, first: %v", res.failed, res.firstErr))
		}
		dRate = append(dRate, res.rps)
		b.logf("  round %d/%d: queue drain %.0f msg/s, direct %.0f req/s", round+1, qs.rounds, r, res.rps)
	}
	if err := srv.patchSettings(ctx, queueApp, nil, []string{queueDisabled}); err != nil {
		return nil, err
	}
	if _, err := tr.wait(ctx, nil, 0); err != nil { // drop the direct calls' arrivals
		return nil, err
	}

	// Idle: wait until the listener's back-off has reached
	// maxPollingInterval, plus a random part of it so the samples spread
	// over the polling cycle, then send one message; the direct handler
	// gets one request after the same pause.
	grow := time.Duration(0)
	for w := 100 * time.Millisecond; w < qs.maxPoll; w *= 2 {
		grow += w
	}
	var qIdle, dIdle series
	for i := range qs.idle {
		for _, way := range []struct {
			name string
			dst  *series
			send func(context.Context, string) error
		}{{"q", &qIdle, enqueue}, {"d", &dIdle, post}} {
			pause := grow + qs.maxPoll + rand.N(qs.maxPoll)
			if err := sleep(ctx, pause); err != nil {
				return nil, err
			}
			id := fmt.Sprintf("idle-%s-%d", way.name, i)
			sent := time.Now()
			if err := way.send(ctx, id); err != nil {
				return nil, fmt.Errorf("idle sample: %w", err)
			}
			at, err := tr.wait(ctx, []string{id}, time.Minute)
			if err != nil {
				return nil, fmt.Errorf("idle sample: %w", err)
			}
			*way.dst = append(*way.dst, us(at[id].Sub(sent)))
		}
		b.logf("  idle %d/%d: queue %s, direct %s", i+1, qs.idle, fmtUS(qIdle[i]), fmtUS(dIdle[i]))
	}

	// Under load: a steady open-loop stream, each message sent at its
	// scheduled time by its own goroutine; the same stream over HTTP.
	stream := func(prefix string, send func(context.Context, string) error) ([]time.Duration, error) {
		n := int(qs.rate * qs.streamFor.Seconds())
		ids := make([]string, n)
		sent := make([]time.Time, n)
		start := time.Now().Add(20 * time.Millisecond)
		var wg sync.WaitGroup
		for i := range n {
			ids[i] = fmt.Sprintf("%s-%d", prefix, i)
			at := start.Add(time.Duration(float64(i) / qs.rate * float64(time.Second)))
			if err := sleep(ctx, time.Until(at)); err != nil {
				return nil, err
			}
			sent[i] = time.Now()
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := send(ctx, ids[i]); err != nil {
					fail(err)
				}
			}()
		}
		wg.Wait()
		at, err := tr.wait(ctx, ids, time.Minute)
		if err != nil {
			return nil, err
		}
		lat := make([]time.Duration, n)
		for i, id := range ids {
			lat[i] = at[id].Sub(sent[i])
		}
		slices.Sort(lat)
		return lat, nil
	}
	qLoad, err := stream("load", enqueue)
	if err != nil {
		return nil, fmt.Errorf("steady stream through the queue: %w", err)
	}
	dLoad, err := stream("direct-load", post)
	if err != nil {
		return nil, fmt.Errorf("steady stream over HTTP: %w", err)
	}
	dups := tr.duplicates()

	s.header = []string{"figure", "queue trigger median (min–max)", "direct HTTP median (min–max)", "queue/direct"}
	row := func(name string, q, d series, f func(float64) string) {
		s.rows = append(s.rows, []string{name,
			fmt.Sprintf("%s (%s–%s)", f(q.median()), f(q.min()), f(q.max())),
			fmt.Sprintf("%s (%s–%s)", f(d.median()), f(d.min()), f(d.max())),
			ratio(q.median() / d.median())})
	}
	one := func(name string, q, d []time.Duration, p float64) {
		qv, dv := us(percentile(q, p)), us(percentile(d, p))
		s.rows = append(s.rows, []string{name, fmtUS(qv), fmtUS(dv), ratio(qv / dv)})
	}
	row(fmt.Sprintf("throughput, msg/s (%d rounds of %d messages; HTTP: closed loop, %d conns)", qs.rounds, qs.messages, conns), qRate, dRate, fmtRPS)
	row(fmt.Sprintf("enqueue → invocation at idle (%d samples)", qs.idle), qIdle, dIdle, fmtUS)
	at := fmt.Sprintf("enqueue → invocation under a steady %.0f msg/s for %v", qs.rate, qs.streamFor)
	one(at+": p50", qLoad, dLoad, 0.50)
	one(at+": p99", qLoad, dLoad, 0.99)
	one(at+": max", qLoad, dLoad, 1)
	s.failed = failed.Load()
	s.notes = append(s.notes,
		fmt.Sprintf("Function `%s` of bench/queue: a no-op that POSTs its message text back to the bench process, which times every invocation by its own clock from just before the enqueue call (or the HTTP request) to that callback. "+
			"Baseline: the same binary on its own port, POST /%s with the same payload envelope. Azurite (make deps) on the same machine; host.json: batchSize %d, newBatchThreshold %d, maxPollingInterval %v.",
			queueFn, queueFn, queueBatch, queueThreshold, qs.maxPoll),
		fmt.Sprintf("Throughput: the queue is filled with the function disabled (app setting %s), then enabled; the rate runs from the first to the last invocation. Idle: each sample waits %v for the back-off to reach maxPollingInterval, plus %v and a random part of it, so an idle message waits about half a polling interval on average.",
			queueDisabled, grow, qs.maxPoll),
		fmt.Sprintf("Messages delivered twice: %d; delivered while the function was disabled: %d; failed sends or calls: %d.", dups, leaked, s.failed),
	)
	return s, nil
}

// ratio formats a quotient with two decimals, three below 0.1, none
// from 10 up.
func ratio(v float64) string {
	switch {
	case v >= 10:
		return fmt.Sprintf("%.0f", v)
	case v < 0.1:
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// envelope is the payload-mode invocation body the queue trigger sends,
// with the message text id (the direct baseline sends it as is).
func envelope(id string) string {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	data, _ := json.Marshal(map[string]any{
		"Data": map[string]any{"msg": id},
		"Metadata": map[string]any{
			"DequeueCount": 1, "Id": "00000000-0000-0000-0000-000000000000", "InsertionTime": now,
			"ExpirationTime": now, "NextVisibleTime": now, "PopReceipt": "AAAAAAAAAAAAAAAA",
			"sys": map[string]any{"MethodName": queueFn, "UtcNow": now, "RandGuid": "00000000-0000-0000-0000-000000000000"},
		},
	})
	return string(data)
}

// parallel runs f for every id on up to n goroutines; the first error wins.
func parallel(ctx context.Context, ids []string, n int, f func(context.Context, string) error) error {
	var next atomic.Int64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) || ctx.Err() != nil {
					return
				}
				if err := f(ctx, ids[i]); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// patchSettings sets and unsets app settings of the production slot (the
// handler restarts with them).
func (s *server) patchSettings(ctx context.Context, app string, set map[string]string, unset []string) error {
	type setting struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	body := struct {
		Set   []setting `json:"set"`
		Unset []string  `json:"unset"`
	}{Set: []setting{}, Unset: unset}
	for k, v := range set {
		body.Set = append(body.Set, setting{k, v})
	}
	if body.Unset == nil {
		body.Unset = []string{}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	if err := call(ctx, s.token, "PATCH", s.api+"/apps/"+app+"/slots/production/settings", "application/json", strings.NewReader(string(b)), http.StatusOK, nil); err != nil {
		return fmt.Errorf("settings of %s: %w", app, err)
	}
	return nil
}

// tracker is the callback server: it records when each message text first
// reached the handler, by the bench process's clock.
type tracker struct {
	url string
	srv *http.Server

	mu   sync.Mutex
	at   map[string]time.Time // arrivals since the last wait
	seen map[string]bool      // every message text ever, for duplicates
	dups int
}

func newTracker() (*tracker, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &tracker{url: "http://" + ln.Addr().String() + "/arrived", at: make(map[string]time.Time), seen: make(map[string]bool)}
	t.srv = &http.Server{Handler: t, ReadHeaderTimeout: 10 * time.Second}
	go t.srv.Serve(ln)
	return t, nil
}

func (t *tracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<10))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := string(b)
	t.mu.Lock()
	switch {
	case id == "direct": // the closed loop's, all alike
	case t.seen[id]:
		t.dups++
	default:
		t.seen[id] = true
		t.at[id] = now
	}
	t.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// wait returns the arrival times of ids once all have arrived, and forgets
// them and every other arrival (a nil ids just forgets).
func (t *tracker) wait(ctx context.Context, ids []string, timeout time.Duration) (map[string]time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		t.mu.Lock()
		missing := 0
		for _, id := range ids {
			if _, ok := t.at[id]; !ok {
				missing++
			}
		}
		if missing == 0 {
			out := make(map[string]time.Time, len(ids))
			for _, id := range ids {
				out[id] = t.at[id]
			}
			t.at = make(map[string]time.Time)
			t.mu.Unlock()
			return out, nil
		}
		t.mu.Unlock()
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d messages did not reach the handler within %v", missing, len(ids), timeout)
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

func (t *tracker) duplicates() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dups
}

func (t *tracker) close() { t.srv.Close() }
