package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/funcapp"
)

// trafficFixture serves app "shop" with slots production, staging and
// canary, each a real upstream answering its slot's name, on a lean Server
// (lean path) and on a plain net/http server running the same Handler
// (net/http path).
type trafficFixture struct {
	t     *testing.T
	h     *Handler
	lean  string // lean Server address
	std   string // net/http server address
	hits  atomic.Int64
	ups   map[string]string // slot -> upstream address
	leanN atomic.Int64
}

func newTrafficFixture(t *testing.T) *trafficFixture {
	t.Helper()
	f := &trafficFixture{t: t, h: New(Config{Domain: "test"}), ups: map[string]string{}}
	for _, name := range []string{"production", "staging", "canary"} {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
		t.Cleanup(up.Close)
		f.ups[name] = up.Listener.Addr().String()
	}
	srv := NewServer(f.h, &http.Server{})
	srv.leanHook = func() { f.leanN.Add(1) }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.lean = ln.Addr().String()
	go srv.Serve(ln)
	std := httptest.NewServer(f.h)
	f.std = std.Listener.Addr().String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		std.Close()
	})
	return f
}

// slot builds a fresh slot of "shop" (fresh for every table, as ops does).
func (f *trafficFixture) slot(name string, deployed bool) *Slot {
	fns := []*funcapp.Function{
		{Name: "who", Trigger: "http", AuthLevel: "anonymous", Route: "who", Forward: true, Runnable: true},
		{Name: "secret", Trigger: "http", AuthLevel: "function", Route: "secret", Forward: true, Runnable: true},
	}
	routes, err := funcapp.NewRouter("api", fns)
	if err != nil {
		f.t.Fatal(err)
	}
	label := hotswap.HostLabel("shop", name)
	s := &Slot{App: "shop", Name: name, HostName: label + ".test", BaseURL: "http://" + label + ".test",
		Keys: NewKeys([]hotswap.Key{{Scope: hotswap.ScopeHost, Name: "default", Value: name + "-key-0123456789"}})}
	if deployed {
		s.Deployment, s.Routes, s.Upstream = "d-"+name, routes, &fakeSet{addr: f.ups[name]}
		s.Package = &funcapp.App{Host: &funcapp.Host{EnableForwarding: true, RoutePrefix: "api"}, Functions: fns}
	}
	return s
}

// publish publishes production with shares, and the named other slots.
func (f *trafficFixture) publish(shares []Share, others ...string) {
	prod := f.slot("production", true)
	prod.Shares = shares
	slots := []*Slot{prod}
	for _, o := range others {
		slots = append(slots, f.slot(o, true))
	}
	f.h.Publish(NewTable("test", slots, f.h.Transport()))
}

// get sends a request to production's host name at addr with c and
// returns the status, the body (the serving slot) and the routing cookie
// set, if any.
func (f *trafficFixture) get(c *http.Client, addr, path, cookie, key string) (int, string, string) {
	f.t.Helper()
	req, err := http.NewRequest("GET", "http://"+addr+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Host = "shop.test"
	if cookie != "" {
		req.Header.Set("Cookie", "a=b; "+RoutingCookie+"="+cookie)
	}
	if key != "" {
		req.Header.Set("x-functions-key", key)
	}
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	set := ""
	for _, v := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, RoutingCookie+"=") {
			if set != "" {
				f.t.Fatalf("two routing cookies: %q", resp.Header.Values("Set-Cookie"))
			}
			set = v
			name, _, _ := strings.Cut(strings.TrimPrefix(v, RoutingCookie+"="), ";")
			if want := routingSetCookie(name); v != want {
				f.t.Fatalf("Set-Cookie %q, want %q", v, want)
			}
			set = name
		}
	}
	return resp.StatusCode, string(b), set
}

func routingName(slot string) string {
	if slot == "production" {
		return "self"
	}
	return slot
}

func TestTrafficShares(t *testing.T) {
	f := newTrafficFixture(t)
	f.publish([]Share{{Slot: "staging", Percent: 10}, {Slot: "canary", Percent: 5}}, "staging", "canary")
	for _, path := range []struct {
		name, addr string
		n          int
	}{{"lean", f.lean, 10000}, {"net/http", f.std, 10000}} {
		t.Run(path.name, func(t *testing.T) {
			c := &http.Client{}
			defer c.CloseIdleConnections()
			before := f.leanN.Load()
			got := map[string]int{}
			for range path.n {
				status, body, set := f.get(c, path.addr, "/api/who", "", "")
				if status != 200 {
					t.Fatalf("status %d: %s", status, body)
				}
				if set != routingName(body) {
					t.Fatalf("served by %s, cookie %q", body, set)
				}
				got[body]++
			}
			for slot, want := range map[string]float64{"staging": 10, "canary": 5, "production": 85} {
				share := 100 * float64(got[slot]) / float64(path.n)
				// Each request draws its slot: allow five standard
				// deviations of the binomial share (production: 1.8
				// points), which a fair draw misses about once in
				// two million runs. A point, 2.8 of them, failed CI.
				p := want / 100
				if tol := 5 * 100 * math.Sqrt(p*(1-p)/float64(path.n)); math.Abs(share-want) > tol {
					t.Errorf("%s got %.2f%% of %d requests, rule %.0f%% (±%.2f)", slot, share, path.n, want, tol)
				}
			}
			lean := f.leanN.Load() - before
			if path.name == "lean" && lean != int64(path.n) || path.name != "lean" && lean != 0 {
				t.Errorf("%d of %d requests took the lean path", lean, path.n)
			}
			t.Logf("%s: %v", path.name, got)
		})
	}
}

func TestTrafficCookieAndQuery(t *testing.T) {
	f := newTrafficFixture(t)
	// canary at 0%: reachable only by the query parameter.
	f.publish([]Share{{Slot: "staging", Percent: 50}, {Slot: "canary", Percent: 0}}, "staging", "canary")
	for _, addr := range []string{f.lean, f.std} {
		c := &http.Client{}
		before := f.leanN.Load()
		for _, pin := range []string{"staging", "self", "canary"} {
			for range 20 {
				_, body, set := f.get(c, addr, "/api/who", pin, "")
				if routingName(body) != pin || set != "" {
					t.Fatalf("cookie %s: served by %s, Set-Cookie %q", pin, body, set)
				}
			}
		}
		cases := []struct{ path, cookie, served, set string }{
			{"/api/who?x-ms-routing-name=canary", "", "canary", "canary"},
			{"/api/who?a=1&x-ms-routing-name=canary", "staging", "canary", "canary"}, // switches
			{"/api/who?x-ms-routing-name=canary", "canary", "canary", ""},            // already there
			{"/api/who?x-ms-routing-name=self", "staging", "production", "self"},     // returns
			{"/api/who?x-ms-routing-name=nosuch", "staging", "staging", ""},          // no rule: the cookie holds
		}
		for _, tc := range cases {
			_, body, set := f.get(c, addr, tc.path, tc.cookie, "")
			if body != tc.served || set != tc.set {
				t.Errorf("%s %s cookie %q: served by %s, Set-Cookie %q; want %s, %q", addr, tc.path, tc.cookie, body, set, tc.served, tc.set)
			}
		}
		if n := f.leanN.Load() - before; addr == f.lean && n != int64(60+len(cases)) {
			t.Errorf("%d of %d requests took the lean path", n, 60+len(cases))
		}
		c.CloseIdleConnections()
	}
	// Without a rule, nothing is routed and no cookie is set.
	f.publish(nil, "staging", "canary")
	for _, addr := range []string{f.lean, f.std} {
		_, body, set := f.get(http.DefaultClient, addr, "/api/who?x-ms-routing-name=staging", "staging", "")
		if body != "production" || set != "" {
			t.Errorf("no rule: served by %s, Set-Cookie %q", body, set)
		}
	}
}

func TestTrafficKeysOfCalledHost(t *testing.T) {
	f := newTrafficFixture(t)
	f.publish([]Share{{Slot: "staging", Percent: 0}}, "staging")
	for _, addr := range []string{f.lean, f.std} {
		// A connection the lean path hands off stays with net/http: a
		// new one for each request.
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		before := f.leanN.Load()
		status, body, _ := f.get(c, addr, "/api/secret", "staging", "production-key-0123456789")
		if addr == f.lean && f.leanN.Load() != before+1 {
			t.Errorf("the lean path did not take the request with production's key")
		}
		if status != 200 || body != "staging" {
			t.Errorf("production's key: %d %q, want 200 from staging", status, body)
		}
		status, body, _ = f.get(c, addr, "/api/secret", "staging", "staging-key-0123456789")
		if status != http.StatusUnauthorized {
			t.Errorf("staging's key on production's host: %d %q, want 401", status, body)
		}
		c.CloseIdleConnections()
	}
}

func TestTrafficShareDropsOut(t *testing.T) {
	f := newTrafficFixture(t)
	// staging deployed but canary has nothing deployed: canary's share is
	// dropped, not failed.
	prod := f.slot("production", true)
	prod.Shares = []Share{{Slot: "staging", Percent: 100}, {Slot: "canary", Percent: 100}}
	f.h.Publish(NewTable("test", []*Slot{prod, f.slot("staging", true), f.slot("canary", false)}, f.h.Transport()))
	c := &http.Client{}
	if _, body, set := f.get(c, f.lean, "/api/who", "canary", ""); body != "staging" || set != "staging" {
		t.Fatalf("cookie for an undeployed slot: served by %s, Set-Cookie %q", body, set)
	}
	var failed atomic.Int64
	var served sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, addr := range []string{f.lean, f.std} {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &http.Client{}
				defer c.CloseIdleConnections()
				for {
					select {
					case <-stop:
						return
					default:
					}
					req, _ := http.NewRequest("GET", "http://"+addr+"/api/who", nil)
					req.Host = "shop.test"
					req.Header.Set("Cookie", RoutingCookie+"=staging")
					resp, err := c.Do(req)
					if err != nil {
						failed.Add(1)
						continue
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						failed.Add(1)
					}
					served.Store(string(b), true)
				}
			}()
		}
	}
	time.Sleep(200 * time.Millisecond)
	// The next table has no staging slot: its share drops out.
	f.publish([]Share{{Slot: "staging", Percent: 100}})
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d requests failed while the share dropped out", n)
	}
	for _, slot := range []string{"staging", "production"} {
		if _, ok := served.Load(slot); !ok {
			t.Errorf("no request served by %s", slot)
		}
	}
	for _, addr := range []string{f.lean, f.std} {
		if _, body, set := f.get(c, addr, "/api/who", "staging", ""); body != "production" || set != "" {
			t.Errorf("after the drop: served by %s, Set-Cookie %q", body, set)
		}
	}
}

// TestTrafficLeanAllocs: routing by a 10% rule adds no allocation to the
// lean path (cookie-less requests: a draw and a Set-Cookie per request).
func TestTrafficLeanAllocs(t *testing.T) {
	f := newTrafficFixture(t)
	resp := func(name string) string {
		body := fmt.Sprintf("%-12s", name)
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n" + body
	}
	f.ups["production"] = rawUpstream(t, resp("production"))
	f.ups["staging"] = rawUpstream(t, resp("staging"))
	f.publish([]Share{{Slot: "staging", Percent: 10}}, "staging")
	c, err := net.Dial("tcp", f.lean)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /api/who HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: allocs\r\n\r\n")
	br := bufio.NewReaderSize(c, 16<<10)
	body := make([]byte, 12)
	var staging, cookies int
	one := func() {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				t.Fatal(err)
			}
			if len(line) <= 2 {
				break
			}
			if len(line) > 11 && string(line[:11]) == "Set-Cookie:" {
				cookies++
			}
		}
		if _, err := io.ReadFull(br, body); err != nil {
			t.Fatal(err)
		}
		if body[0] == 's' {
			staging++
		}
	}
	for range 100 {
		one() // warm the pools
	}
	const runs = 2000
	staging, cookies = 0, 0
	// AllocsPerRun truncates the mean, so an allocation on the 10% of
	// requests routed to staging would not show: count them all too.
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	allocs := testing.AllocsPerRun(runs, one)
	runtime.ReadMemStats(&m1)
	total := m1.Mallocs - m0.Mallocs
	t.Logf("%v allocs/op, %d allocations in %d requests", allocs, total, runs+1)
	if allocs != 0 || total > runs/50 {
		t.Errorf("%v allocs/op, %d allocations in %d routed requests on the lean path, want 0", allocs, total, runs+1)
	}
	if cookies != runs+1 || staging == 0 || staging > runs/4 {
		t.Errorf("%d Set-Cookie and %d of %d requests on staging", cookies, staging, runs+1)
	}
}
