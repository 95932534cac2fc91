package postgres

import (
	"context"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/pgtest"
)

// holeProxy forwards TCP to target until hole is set; then it drops every
// byte both ways but keeps the sockets open: to the server, a client host
// that vanished (no FIN, no RST, and its side of TCP still answers).
type holeProxy struct {
	ln     net.Listener
	target string
	hole   atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newHoleProxy(t *testing.T, target string) *holeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holeProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

func (p *holeProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				if err != nil {
					return
				}
				if !p.hole.Load() {
					dst.Write(buf[:n])
				}
			}
		}
		go pipe(s, c)
		go pipe(c, s)
	}
}

// When the host of the leader vanishes, the server ends its session (and
// with it the lock) within seconds, not when TCP gives up hours later, so
// another node leads.
func TestLeaderHostVanishes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("pgtest DSN %q is not a URL with a host: %v", dsn, err)
	}
	p := newHoleProxy(t, u.Host)
	viaProxy := *u
	viaProxy.Host = p.ln.Addr().String()
	dbA, dbB := openDSN(t, viaProxy.String()), openDSN(t, dsn)
	// Every session of the store, of the pool or not, has the keepalives.
	for _, param := range []string{"tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count", "tcp_user_timeout"} {
		var got string
		if err := dbB.Pool().QueryRow(ctx, "SELECT current_setting($1)", param).Scan(&got); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3", "tcp_user_timeout": "25000"}[param]
		if got != want {
			t.Errorf("%s = %q, want %q", param, got, want)
		}
	}

	a := dbA.Leader(ctx, "release-engine")
	defer a.Close()
	waitFor(t, 10*time.Second, "A leads", a.IsLeader)
	b := dbB.Leader(ctx, "release-engine")
	defer b.Close()
	time.Sleep(3 * time.Second)
	if b.IsLeader() {
		t.Fatal("B leads while A does")
	}

	p.hole.Store(true) // A's host vanishes
	start := time.Now()
	waitFor(t, 10*time.Second, "A notices it lost the lead", func() bool { return !a.IsLeader() })
	// The server ends A's silent session after leaderIdle; B bids every
	// leaderRetry. A loaded machine gets a generous margin.
	limit := leaderIdle + leaderRetry + 10*time.Second
	for !b.IsLeader() {
		if time.Since(start) > limit {
			t.Fatalf("%v after A's host vanished B does not lead: the server still holds A's lock", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("B leads %v after A's host vanished", time.Since(start).Round(time.Millisecond))
}
