package router

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"github.com/hotswap/hotswap/internal/invoke"
)

var dialer = &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}

// proxy passes requests through to a slot's handler process as they are
// (forwarding mode): method, full path, query, headers and streamed bodies.
type proxy struct {
	rp   *httputil.ReverseProxy
	slot *Slot
}

var bufPool = &bytePool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bytePool struct{ p sync.Pool }

func (b *bytePool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bytePool) Put(x []byte) { b.p.Put(&x) }

func newProxy(s *Slot, transport http.RoundTripper) *proxy {
	p := &proxy{slot: s}
	up := s.Upstream
	p.rp = &httputil.ReverseProxy{
		Transport:  transport,
		BufferPool: bufPool,
		Rewrite: func(pr *httputil.ProxyRequest) {
			addr, _ := pr.In.Context().Value(upstreamAddrKey{}).(string)
			if addr == "" {
				addr, _ = up.Addr()
			}
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = addr
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Azure-Functions-InvocationId", invoke.NewID())
			ctx, _ := withStallGuard(pr.Out.Context())
			pr.Out = pr.Out.WithContext(ctx)
		},
		ModifyResponse: func(resp *http.Response) error {
			// The final answer (a 101 included) has begun.
			g, _ := resp.Request.Context().Value(stallGuardKey{}).(*stallGuard)
			g.answered()
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) || r.Context().Err() != nil {
				// The client went away; nobody reads an answer.
				w.WriteHeader(499)
				return
			}
			if _, ok := up.Addr(); !ok {
				unavailable(w, up.RetryAfter())
				return
			}
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				// The Transport's ResponseHeaderTimeout passed.
				http.Error(w, "gateway timeout: "+errResponseTimeout.Error(), http.StatusGatewayTimeout)
				return
			}
			if s.Log != nil {
				s.Log("host", "forwarding to the handler failed: "+err.Error())
			}
			http.Error(w, "bad gateway: the function handler did not answer", http.StatusBadGateway)
		},
	}
	return p
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.rp.ServeHTTP(w, r) }
