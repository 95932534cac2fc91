// Package router is the data plane: it maps a request's host name to an app's
// slot, resolves the function by route, checks keys, and passes the request to
// the slot's handler process in forwarding or payload mode. It reads one
// immutable routing Table per request through an atomic pointer: no lock and no
// per-request map is built on this path.
package router

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/funcapp"
	"github.com/hotswap/hotswap/internal/invoke"
)

// Upstream is the running handler process set of a slot.
type Upstream interface {
	// Addr returns the host:port of the ready process, ok=false while down.
	Addr() (addr string, ok bool)
	// RetryAfter estimates how long until a down process is back.
	RetryAfter() time.Duration
	// Acquire counts an in-flight request; false when the set is stopping.
	Acquire() bool
	// Release ends what Acquire counted.
	Release()
}

// Waker is an Upstream that scales to zero (a runtime.Set): while Idle,
// Wake starts its handler and returns the address once it is ready,
// concurrent callers sharing one start. The lean path does not wake: a
// request that finds its set down falls back to the net/http path, which
// does.
type Waker interface {
	Idle() bool
	Wake(ctx context.Context) (addr string, err error)
	// Stopping reports whether the set is being retired: a request that
	// finds it so looks up the routing table again.
	Stopping() bool
}

// upstreamAddrKey keys, in a forwarded request's context, the handler
// address the request holds.
type upstreamAddrKey struct{}

// errNotAsleep: the set is down, not asleep (crashed and restarting).
var errNotAsleep = errors.New("the handler is down (restarting)")

// errSetStopping: the set is being retired.
var errSetStopping = errors.New("the process set is stopping")

// wake starts up if it sleeps and returns its address: errNotAsleep if it
// is not a Waker or not idle, errSetStopping if it is retired meanwhile,
// or the start's error.
func wake(ctx context.Context, up Upstream) (string, error) {
	w, isWaker := up.(Waker)
	if !isWaker || !w.Idle() {
		return "", errNotAsleep
	}
	addr, err := w.Wake(ctx)
	if err != nil && w.Stopping() {
		return "", errSetStopping
	}
	return addr, err
}

// KeyStore changes a slot's keys for the host admin API. The implementation
// publishes a new Table before it returns.
type KeyStore interface {
	PutKey(ctx context.Context, app, slot string, k hotswap.Key) (hotswap.Key, error)
	DeleteKey(ctx context.Context, app, slot, scope, function, name string) error
}

// Slot is the data plane's immutable view of one slot.
type Slot struct {
	App      string
	Name     string
	HostName string // e.g. orders-staging.localhost
	BaseURL  string // e.g. http://orders-staging.localhost:8080
	Keys     *Keys

	// The fields below are zero while nothing is deployed.
	Deployment string
	Package    *funcapp.App
	Routes     *funcapp.Router
	Disabled   map[string]bool // functions disabled by AzureWebJobs.<name>.Disabled
	// Settings are the app settings the deployment runs with, for the
	// connections of output bindings; never written once published.
	Settings map[string]string
	// Broken are the functions not runnable under Settings (an output
	// binding's connection missing or invalid), with the reason: they
	// answer 404 as the package's non-runnable functions do.
	Broken   map[string]string
	Upstream Upstream
	Log      func(stream, text string) // the slot's log; may be nil
	Started  time.Time
	Metrics  Observer // request metrics of this slot's deployment; may be nil
	// Shares send parts of the requests to this host name to other slots
	// of the app (production only; see traffic.go). NewTable resolves them.
	Shares []Share

	proxy   *proxy      // built by NewTable
	traffic *traffic    // Shares resolved by NewTable; nil without any
	payload payloadGate // set by Publish; shared by every table routing to Upstream
}

// Table is an immutable routing snapshot: host label -> slot.
type Table struct {
	slots map[string]*Slot
}

// NewTable builds a table from slots. Each slot's HostName must be unique.
func NewTable(domain string, slots []*Slot, transport http.RoundTripper) *Table {
	t := &Table{slots: make(map[string]*Slot, len(slots))}
	for _, s := range slots {
		label := strings.TrimSuffix(s.HostName, "."+domain)
		if s.Upstream != nil {
			s.proxy = newProxy(s, transport)
		}
		t.slots[label] = s
	}
	for _, s := range slots {
		// Written only when it changes: a slot with no shares may be in
		// several tables and read meanwhile.
		if tr := t.resolveTraffic(s); tr != nil || s.traffic != nil {
			s.traffic = tr
		}
	}
	return t
}

// Slot returns the slot with the given host label, or nil.
func (t *Table) Slot(label string) *Slot { return t.slots[label] }

// Handler serves the functions listener.
type Handler struct {
	domain    string // with a leading dot
	table     atomic.Pointer[Table]
	keys      KeyStore
	client    *http.Client
	logger    *slog.Logger
	maxBody   int64
	payload   payloadState
	started   time.Time
	version   string
	transport http.RoundTripper
	limits    ConnLimits
	outputs   OutputWriter
	listeners Listeners
	health    atomic.Pointer[func() (bool, string)]
}

// Observer receives one observation per request that reached a slot's
// handler. It is called on the request path: it must not block or allocate.
type Observer interface {
	Observe(status int, d time.Duration)
}

// Config configures a Handler.
type Config struct {
	Domain         string            // required, e.g. "localhost"
	Keys           KeyStore          // host admin API key changes; nil makes them 501
	Transport      http.RoundTripper // to handler processes; nil uses NewTransport()
	Logger         *slog.Logger      // nil discards
	MaxPayloadBody int64             // request body limit in payload mode; zero = DefaultMaxPayloadBody (8 MiB)
	Payload        PayloadLimits     // concurrency bound of payload mode; zero fields take defaults
	// ConnLimits bound the connections to handler processes (timeouts,
	// counts); zero fields take documented defaults. With Transport set,
	// only the lean path applies them.
	ConnLimits ConnLimits
	Version    string
	// Outputs writes the queue and blob outputs of payload-mode functions;
	// nil fails the invocations of functions that have such outputs.
	Outputs OutputWriter
	// Listeners tells the host admin API the state of a slot's queue and
	// blob trigger listeners; nil shows none.
	Listeners Listeners
}

// Listeners reports the queue and blob trigger listeners of a slot by
// function name; each value is JSON-encodable. It is called by the host
// admin API, never on the request path.
type Listeners interface {
	Listeners(app, slot string) map[string]any
}

// OutputWriter writes an invocation's output bindings other than http (see
// funcapp.Function.Outputs). settings are the slot's app settings, vals the
// names bound by the trigger (route parameters and query), for binding
// expressions. The error says which binding failed and why, with no secret.
type OutputWriter interface {
	WriteOutputs(ctx context.Context, app *funcapp.App, settings map[string]string, fn *funcapp.Function, res invoke.Result, vals map[string]string) error
}

// New returns a Handler serving an empty table.
func New(cfg Config) *Handler {
	h := &Handler{
		domain:    "." + strings.ToLower(cfg.Domain),
		keys:      cfg.Keys,
		transport: cfg.Transport,
		logger:    cfg.Logger,
		maxBody:   cfg.MaxPayloadBody,
		version:   cfg.Version,
		started:   time.Now(),
		limits:    cfg.ConnLimits.withDefaults(),
		outputs:   cfg.Outputs,
		listeners: cfg.Listeners,
	}
	if h.transport == nil {
		h.transport = newTransport(h.limits)
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxPayloadBody
	}
	h.payload.limits = cfg.Payload.withDefaults()
	// A handler that answers an invocation with a redirect has failed it;
	// following the redirect would send the invocation wherever the
	// handler points, from the server.
	h.client = &http.Client{Transport: h.transport, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	h.table.Store(&Table{})
	return h
}

// SetHealth sets what GET /healthz answers (see ServeHTTP); until it is set
// the node is healthy.
func (h *Handler) SetHealth(f func() (ok bool, reason string)) { h.health.Store(&f) }

// HealthPath is the load balancer health check of the functions listener.
// It answers at any host name that is not an app's (the node's own address,
// as a load balancer's check sends it), so no app's function is shadowed:
// 200 when the node should take traffic, 503 with the reason when it should
// not (draining, behind its cluster, cut off from the store).
const HealthPath = "/healthz"

func (h *Handler) serveHealth(w http.ResponseWriter) {
	ok, reason := true, "ok"
	if f := h.health.Load(); f != nil {
		ok, reason = (*f)()
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	io.WriteString(w, reason+"\n")
}

// SetKeyStore sets where host admin API key changes go. Call it before serving.
func (h *Handler) SetKeyStore(k KeyStore) { h.keys = k }

// Transport returns the transport to handler processes, for building tables.
func (h *Handler) Transport() http.RoundTripper { return h.transport }

// Publish replaces the routing table in one atomic step.
func (h *Handler) Publish(t *Table) {
	h.payload.mu.Lock()
	defer h.payload.mu.Unlock()
	h.shareGates(h.table.Load(), t)
	h.table.Store(t)
}

// Table returns the current routing table.
func (h *Handler) Table() *Table { return h.table.Load() }

// NewTransport returns the transport used to reach handler processes: many
// idle keep-alive connections per process, no compression, short dials (the
// processes are on loopback), bounded by the default ConnLimits.
func NewTransport() *http.Transport { return newTransport(ConnLimits{}.withDefaults()) }

func newTransport(l ConnLimits) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   l.MaxIdleConnsPerSet,
		MaxConnsPerHost:       l.MaxConnsPerSet,
		ResponseHeaderTimeout: l.ResponseHeaderTimeout,
		IdleConnTimeout:       l.IdleConnTimeout,
		DisableCompression:    true,
		ExpectContinueTimeout: 0,
		ForceAttemptHTTP2:     false,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &stallConn{Conn: c, stall: l.ResponseHeaderTimeout}, nil
		},
		WriteBufferSize: 32 << 10,
		ReadBufferSize:  32 << 10,
	}
}

// stallConn is a connection to a handler process on the net/http path.
// While a request awaits its final answer's head, the handler must keep
// taking what is written: the Transport's response header timeout starts
// only once the request is written, so without this a handler that reads
// none of a large body and never answers would hold the request, and its
// client, for ever. A write that waits stall without the handler taking
// anything fails with a timeout. Once the answer begins, writes wait as
// long as they must (a full-duplex body, an upgraded connection), as on
// the lean path, which bounds the same wait in upReader.rearm.
type stallConn struct {
	net.Conn
	stall time.Duration

	mu    sync.Mutex
	owner *stallGuard // the request whose answer is awaited; nil: none
	set   bool        // a write deadline is set on Conn
}

func (c *stallConn) Write(p []byte) (int, error) {
	n := 0
	for {
		armed, err := c.deadline()
		if err != nil {
			return n, err
		}
		q0, ok0 := 0, false
		if armed {
			q0, ok0 = connSendQueue(c.Conn)
		}
		m, err := c.Conn.Write(p[n:])
		n += m
		if err == nil || !armed || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		// The deadline passed. Unless the answer began meanwhile, or the
		// handler took some of what is queued for it (the queue grew by
		// less than what went in: a handler reading slowly, as the
		// kernel wakes a waiting writer only once much of the buffers is
		// free), it took nothing for stall.
		taken := m > 0 // no queue to look at: bytes that went out
		if q, ok := connSendQueue(c.Conn); ok && ok0 {
			taken = q < q0+m
		}
		if c.isArmed() && !taken {
			return n, err
		}
	}
}

// deadline sets or clears Conn's write deadline for the next write, and
// reports whether it is set.
func (c *stallConn) deadline() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.owner != nil:
		c.set = true
		return true, c.Conn.SetWriteDeadline(time.Now().Add(c.stall))
	case c.set:
		c.set = false
		return false, c.Conn.SetWriteDeadline(time.Time{})
	}
	return false, nil
}

func (c *stallConn) isArmed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.owner != nil
}

// arm turns the writes' deadline on for g's request, which has the
// connection now.
func (c *stallConn) arm(g *stallGuard) {
	c.mu.Lock()
	c.owner = g
	c.mu.Unlock()
}

// disarm turns it off once g's answer began, unless the connection has
// gone to another request already: a connection whose answer has no body
// goes back to the pool before that answer reaches its caller.
func (c *stallConn) disarm(g *stallGuard) {
	c.mu.Lock()
	if c.owner == g {
		c.owner = nil
		if c.set {
			c.Conn.SetWriteDeadline(time.Time{})
			c.set = false
		}
	}
	c.mu.Unlock()
}

// connSendQueue is the bytes in c's send queue that the peer has not
// acknowledged (SIOCOUTQ); ok is false where there is none to read.
func connSendQueue(c net.Conn) (int, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	return sendQueue(rc)
}

// CloseWrite half-closes the connection, as the Transport and
// httputil.ReverseProxy do to an upgraded one when its client does.
func (c *stallConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// stallGuard arms the write deadline of the connection a request to a
// handler gets, until answered is called: when its final answer (not a
// 1xx) has begun. The trace's GotConn and answered run on the goroutine
// that sends the request.
type stallGuard struct{ c *stallConn }

type stallGuardKey struct{}

// withStallGuard returns ctx with a guard for the request sent with it.
func withStallGuard(ctx context.Context) (context.Context, *stallGuard) {
	g := &stallGuard{}
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if c, ok := info.Conn.(*stallConn); ok {
				g.c = c
				c.arm(g)
			}
		},
	})
	return context.WithValue(ctx, stallGuardKey{}, g), g
}

func (g *stallGuard) answered() {
	if g != nil && g.c != nil {
		g.c.disarm(g)
	}
}

// hostLabel extracts the slot label from a Host header under the domain.
func (h *Handler) hostLabel(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	host = strings.ToLower(host)
	label, ok := strings.CutSuffix(host, h.domain)
	if !ok || label == "" || strings.IndexByte(label, '.') >= 0 {
		return ""
	}
	return label
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Routes, keys and the handler all see the path without dot segments.
	r, err := cleanRequest(r)
	if err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	for range 2 {
		t := h.table.Load()
		s := t.slots[h.hostLabel(r.Host)]
		if s == nil {
			if r.URL.Path == HealthPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
				h.serveHealth(w)
				return
			}
			http.Error(w, "no function app answers at this host name", http.StatusNotFound)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/admin/") {
			h.admin(w, r, s)
			return
		}
		target, setCookie := s.routeHTTP(r)
		if s.traffic != nil {
			if setCookie != "" {
				w.Header()["Set-Cookie"] = []string{setCookie}
			} else {
				delete(w.Header(), "Set-Cookie")
			}
		}
		// A routed request runs on the target's process set under the keys
		// of the host name the client called.
		if !h.serveSlotAs(w, r, target, s.Keys, false) {
			continue // the slot's process set retired under us: read the new table
		}
		return
	}
	unavailable(w, time.Second)
}

// serveSlot serves r on slot s. It returns false, having written nothing,
// when s's process set is stopping and the caller should look again.
func (h *Handler) serveSlot(w http.ResponseWriter, r *http.Request, s *Slot, trusted bool) bool {
	return h.serveSlotAs(w, r, s, s.Keys, trusted)
}

// serveSlotAs is serveSlot with the keys of the slot the client called,
// which differs from s when a traffic rule routed the request to s.
func (h *Handler) serveSlotAs(w http.ResponseWriter, r *http.Request, s *Slot, keys *Keys, trusted bool) bool {
	if s.Routes == nil {
		http.Error(w, "no deployment on this slot", http.StatusNotFound)
		return true
	}
	var pbuf [8]funcapp.Param
	// A route whose methods do not include r's answers 404 as on Azure,
	// before any key check: a 405 would tell a caller without a key that
	// the route exists.
	fn, params, _ := s.Routes.Match(r.Method, r.URL.EscapedPath(), pbuf[:0])
	if fn == nil {
		if !serveIndex(w, r, s) {
			http.Error(w, "not found", http.StatusNotFound)
		}
		return true
	}
	level := LevelAdmin
	if !trusted {
		level = keys.Level(fn.Name, RequestKey(r))
	}
	if s.Disabled[fn.Name] && level < LevelAdmin {
		http.Error(w, "not found", http.StatusNotFound)
		return true
	}
	if _, broken := s.Broken[fn.Name]; broken {
		http.Error(w, "not found", http.StatusNotFound)
		return true
	}
	switch fn.AuthLevel {
	case "admin":
		if level < LevelAdmin {
			unauthorized(w)
			return true
		}
	case "anonymous":
	default:
		if level < LevelFunction {
			unauthorized(w)
			return true
		}
	}
	up := s.Upstream
	if !up.Acquire() {
		return false
	}
	defer up.Release()
	start := time.Now() // a cold start's wait counts in the request's time
	addr, ok := up.Addr()
	if !ok {
		var err error
		addr, err = wake(r.Context(), up)
		switch {
		case err == nil:
			ok = true
		case errors.Is(err, errSetStopping):
			return false // retired meanwhile: the caller looks up the table again
		case r.Context().Err() != nil:
			// The client gave up during a cold start: counted as such; the
			// answer (if it still reads) says why nothing came.
			unavailable(w, up.RetryAfter())
			h.observe(s, 499, time.Since(start))
			return true
		}
	}
	if !ok {
		unavailable(w, up.RetryAfter())
		h.observe(s, http.StatusServiceUnavailable, time.Since(start))
		return true
	}
	var status int
	if fn.Forward && s.Package.Host.EnableForwarding {
		// A handler may answer while it still reads the body (an echo does);
		// without full duplex the server stops reading the request once the
		// response starts, and large bodies break.
		_ = http.NewResponseController(w).EnableFullDuplex()
		sw := statusWriter{ResponseWriter: w}
		// The proxy sends to the address this request holds: the set may
		// withdraw it meanwhile (falling asleep), while its process serves
		// the requests it counted.
		r = r.WithContext(context.WithValue(r.Context(), upstreamAddrKey{}, addr))
		s.proxy.ServeHTTP(&sw, r)
		status = sw.status
	} else {
		status = h.invoke(w, r, s, fn, params, addr)
	}
	h.observe(s, status, time.Since(start))
	return true
}

func (h *Handler) observe(s *Slot, status int, d time.Duration) {
	if s.Metrics != nil {
		s.Metrics.Observe(status, d)
	}
}

func unauthorized(w http.ResponseWriter) {
	http.Error(w, "unauthorized: a valid key is required (x-functions-key header or code query parameter)", http.StatusUnauthorized)
}

func unavailable(w http.ResponseWriter, retry time.Duration) {
	w.Header().Set("Retry-After", retryAfterSeconds(retry))
	http.Error(w, "the function host is restarting; retry shortly", http.StatusServiceUnavailable)
}

// retryAfterSeconds is a Retry-After value for retry: whole seconds rounded
// up, at least 1 (zero means "no restart time known yet", not "never").
func retryAfterSeconds(retry time.Duration) string {
	return strconv.Itoa(max(int((retry+time.Second-1)/time.Second), 1))
}

// statusWriter records the status code a response was sent with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush flushes the underlying writer, for streamed responses.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Warm sends a GET for path to slot s, which need not be in the table, with
// the host's own authority (no key needed), and returns the status it got.
// Swaps use it to warm up a prepared process set.
func (h *Handler) Warm(ctx context.Context, s *Slot, path string) int {
	if s.proxy == nil && s.Upstream != nil {
		s.proxy = newProxy(s, h.transport)
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.HostName+path, nil)
	if err != nil {
		return http.StatusBadRequest
	}
	r.RemoteAddr = "127.0.0.1:0"
	w := &discardWriter{header: make(http.Header)}
	if !h.serveSlot(w, r, s, true) {
		return http.StatusServiceUnavailable
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.status
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(b), nil
}
