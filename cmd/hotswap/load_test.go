package main

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// flipEvent is a change of what a host name serves: requested at call,
// acknowledged at ack.
type flipEvent struct {
	call, ack time.Time
	dep       string
}

type sample struct {
	host       string
	sent, recv time.Time
	status     int
	dep        string
	err        error
}

// TestSwapUnderLoad holds 64 keep-alive clients on both host names through
// 50 swaps and 20 deploys: no request fails, every response comes from the
// old or the new deployment, and once a flip is acknowledged no new request
// to that host name reaches the one it replaced.
func TestSwapUnderLoad(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("load test")
	}
	s := startServer(t, "")
	d1, d2 := newSwapApp(t, s)
	hosts := []string{"web.localhost", "web-staging.localhost"}
	events := map[string][]flipEvent{
		hosts[0]: {{dep: d1}},
		hosts[1]: {{dep: d2}},
	}
	const clients = 64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var total atomic.Int64
	results := make([][]sample, clients)
	for i := range clients {
		host := hosts[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for ctx.Err() == nil {
				req, _ := http.NewRequest("GET", "http://"+s.fnAddr+"/api/whoami", nil)
				req.Host = host
				smp := sample{host: host, sent: time.Now()}
				resp, err := c.Do(req)
				if err != nil {
					smp.err = err
				} else {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					smp.status, smp.dep = resp.StatusCode, resp.Header.Get("X-Deployment")
				}
				smp.recv = time.Now()
				results[i] = append(results[i], smp)
				total.Add(1)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	pkg := zipDir(t, examplePackage(t, "envapp"))
	swaps, deploys := 0, 0
	for i := 0; swaps < 50 || deploys < 20; i++ {
		call := time.Now()
		if i%7 == 3 && deploys < 20 || swaps >= 50 {
			id := s.deploy("web", "staging", pkg)
			ack := time.Now()
			events[hosts[1]] = append(events[hosts[1]], flipEvent{call, ack, id})
			deploys++
		} else {
			r := s.swap("web", "staging", false)
			ack := time.Now()
			events[hosts[0]] = append(events[hosts[0]], flipEvent{call, ack, r.SourceDeployment})
			events[hosts[1]] = append(events[hosts[1]], flipEvent{call, ack, r.TargetDeployment})
			swaps++
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	wg.Wait()

	var failed, stale, n int
	for _, rs := range results {
		for _, smp := range rs {
			n++
			if smp.err != nil || smp.status != http.StatusOK {
				failed++
				if failed <= 5 {
					t.Errorf("failed request to %s: status %d, err %v", smp.host, smp.status, smp.err)
				}
				continue
			}
			ev := events[smp.host]
			k := 0 // the last flip acknowledged before the request was sent
			for j := range ev {
				if j > 0 && ev[j].ack.Before(smp.sent) {
					k = j
				}
			}
			m := k // the last flip called before the answer came
			for j := range ev {
				if j > 0 && ev[j].call.Before(smp.recv) {
					m = j
				}
			}
			ok := false
			for j := k; j <= m; j++ {
				ok = ok || ev[j].dep == smp.dep
			}
			if !ok {
				stale++
				if stale <= 5 {
					t.Errorf("request to %s sent %v after flip %d was acknowledged was answered by %s, want %s", smp.host, smp.sent.Sub(ev[k].ack), k, smp.dep, ev[k].dep)
				}
			}
		}
	}
	t.Logf("%d requests through %d swaps and %d deploys: %d failed, %d from a replaced deployment", n, swaps, deploys, failed, stale)
	if n < 1000 {
		t.Errorf("only %d requests: the load was too light to mean anything", n)
	}
	if failed != 0 || stale != 0 {
		t.Errorf("%d failed and %d stale requests, want 0", failed, stale)
	}
}
