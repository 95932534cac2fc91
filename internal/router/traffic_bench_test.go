package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/funcapp"
)

// routingBody is the length of every upstream body of a routingFixture: the
// serving slot's name, padded, so every answer has the same length and the
// client reads it without parsing Content-Length.
const routingBody = 12

// routingFixture serves app "shop" at shop.test on a lean Server with two
// slots, production and staging, each answered by a raw upstream that
// allocates nothing and answers its slot's name in routingBody bytes. Every
// allocation a request makes is then the forwarding path's own.
type routingFixture struct {
	addr string
	lean atomic.Int64 // requests the lean path took
}

// newRoutingFixture publishes production with shares (nil: no rule) and
// staging, both deployed, and serves them on a lean Server.
func newRoutingFixture(tb testing.TB, shares []Share) *routingFixture {
	tb.Helper()
	f := &routingFixture{}
	h := New(Config{Domain: "test"})
	fns := []*funcapp.Function{{Name: "who", Trigger: "http", AuthLevel: "anonymous", Route: "who", Forward: true, Runnable: true}}
	routes, err := funcapp.NewRouter("api", fns)
	if err != nil {
		tb.Fatal(err)
	}
	var slots []*Slot
	for _, name := range []string{"production", "staging"} {
		resp := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%-*s", routingBody, routingBody, name)
		label := hotswap.HostLabel("shop", name)
		slots = append(slots, &Slot{
			App: "shop", Name: name, HostName: label + ".test", BaseURL: "http://" + label + ".test",
			Keys:       NewKeys([]hotswap.Key{{Scope: hotswap.ScopeHost, Name: "default", Value: name + "-key-0123456789"}}),
			Deployment: "d-" + name, Routes: routes, Upstream: &fakeSet{addr: rawUpstream(tb, resp)},
			Package: &funcapp.App{Host: &funcapp.Host{EnableForwarding: true, RoutePrefix: "api"}, Functions: fns},
		})
	}
	slots[0].Shares = shares
	h.Publish(NewTable("test", slots, h.Transport()))
	srv := NewServer(h, &http.Server{})
	srv.leanHook = func() { f.lean.Add(1) }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	f.addr = ln.Addr().String()
	go srv.Serve(ln)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return f
}

// routingClient is one keep-alive connection to a routingFixture that
// reads answers without allocating and tallies who served them.
type routingClient struct {
	c       net.Conn
	br      *bufio.Reader
	req     []byte
	body    []byte
	staging int // answers from staging
	cookies int // answers with a routing Set-Cookie
}

// dial connects to f; every request is a GET of production's host name
// with cookie as the routing cookie ("": none).
func (f *routingFixture) dial(tb testing.TB, cookie string) *routingClient {
	tb.Helper()
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	req := "GET /api/who HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: bench\r\n"
	if cookie != "" {
		req += "Cookie: a=b; " + RoutingCookie + "=" + cookie + "\r\n"
	}
	return &routingClient{c: c, br: bufio.NewReaderSize(c, 16<<10), req: []byte(req + "\r\n"), body: make([]byte, routingBody)}
}

// do sends one request and reads its answer.
func (rc *routingClient) do() error {
	if _, err := rc.c.Write(rc.req); err != nil {
		return err
	}
	line, err := rc.br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(line) < 12 || string(line[:12]) != "HTTP/1.1 200" {
		return fmt.Errorf("status line %q", line)
	}
	for {
		line, err := rc.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > 11+len(RoutingCookie) && string(line[:11]) == "Set-Cookie:" {
			rc.cookies++
		}
	}
	if _, err := io.ReadFull(rc.br, rc.body); err != nil {
		return err
	}
	if rc.body[0] == 's' {
		rc.staging++
	}
	return nil
}

// routingCases are the forwarding path's routing cases on production's
// host name: no rule (the baseline), a 10% rule to staging with
// cookie-less clients (a draw and a Set-Cookie on every answer), and a
// client whose routing cookie pins it to staging (no draw, no Set-Cookie).
var routingCases = []struct {
	name   string
	shares []Share
	cookie string
}{
	{"no_rule", nil, ""},
	{"rule_10pct", []Share{{Slot: "staging", Percent: 10}}, ""},
	{"cookie", []Share{{Slot: "staging", Percent: 10}}, "staging"},
}

// checkRouting fails tb unless n answers of case name were routed as its
// rule says: all on production without a cookie; about 10% on staging with
// a cookie on every answer; all on staging without a cookie.
func checkRouting(tb testing.TB, name string, rc *routingClient, lean int64, n int) {
	tb.Helper()
	if lean != int64(n) {
		tb.Errorf("%s: %d of %d requests took the lean path", name, lean, n)
	}
	var ok bool
	switch name {
	case "no_rule":
		ok = rc.staging == 0 && rc.cookies == 0
	case "rule_10pct":
		// Loose bounds: n may be small; the share itself is tested in
		// TestTrafficShares.
		ok = rc.cookies == n && (n < 1000 || rc.staging > n/20 && rc.staging < n/5)
	case "cookie":
		ok = rc.staging == n && rc.cookies == 0
	}
	if !ok {
		tb.Errorf("%s: %d of %d answers from staging, %d with a routing Set-Cookie", name, rc.staging, n, rc.cookies)
	}
}

// BenchmarkTrafficForward measures routing's cost on the lean forwarding
// path: the same GET of production's host name over one keep-alive
// connection as BenchmarkLeanForward, with no rule, with a 10% rule to
// staging, and with the routing cookie. Client and upstreams allocate
// nothing, so allocs/op is the forwarding path's own, and it must be 0 in
// each case; ns/op of the rule cases against no_rule is routing's cost.
func BenchmarkTrafficForward(b *testing.B) {
	for _, tc := range routingCases {
		b.Run(tc.name, func(b *testing.B) {
			f := newRoutingFixture(b, tc.shares)
			rc := f.dial(b, tc.cookie)
			for range 100 { // warm the pools and the handler connections
				if err := rc.do(); err != nil {
					b.Fatal(err)
				}
			}
			rc.staging, rc.cookies = 0, 0
			lean := f.lean.Load()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := rc.do(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			checkRouting(b, tc.name, rc, f.lean.Load()-lean, b.N)
		})
	}
}
