package router

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/hotswap/hotswap/internal/funcapp"
)

// Server serves the functions listener. Clean HTTP/1.x requests to
// forwarding-mode functions take a lean path: the head is parsed in place,
// the request and response bytes are copied between the client and a
// keep-alive connection to the handler, borrowed for the request from the
// handler process's pool, with no allocation on the way. Every other
// request (host admin API, payload mode, errors, anything unusual) hands
// its connection, with the bytes already read, to a standard net/http
// server running the same Handler, which serves it from then on.
type Server struct {
	h   *Handler
	std *http.Server

	// ReadHeaderTimeout bounds reading a request head, from the first byte
	// of a new connection on; IdleTimeout the wait for the next request on
	// a kept-alive connection; BodyReadTimeout each wait for more of a
	// request body (the client gets 408 when it passes). Zero: 10 s, 120 s
	// and 60 s. Serve gives the net/http server the same bounds where it
	// has none of its own.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	BodyReadTimeout   time.Duration

	// leanHook, for tests, is called for each request the lean path takes.
	leanHook func()

	handoff  *connQueue
	mu       sync.Mutex
	conns    map[*leanConn]struct{}
	ln       net.Listener
	shutdown atomic.Bool
	wg       sync.WaitGroup

	// pools holds a connection pool per handler address; done closes at
	// Shutdown and ends the sweeper.
	poolMu sync.RWMutex
	pools  map[string]*connPool
	done   chan struct{}
	sweep  sync.WaitGroup
}

// NewServer returns a Server for h. std serves what the lean path does not
// take; its Handler is set to h, with request bodies read under the
// Server's BodyReadTimeout.
func NewServer(h *Handler, std *http.Server) *Server {
	s := &Server{h: h, std: std, handoff: newConnQueue(), conns: make(map[*leanConn]struct{}),
		pools: make(map[string]*connPool), done: make(chan struct{})}
	std.Handler = bodyTimeoutHandler{s: s, h: h}
	return s
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	// Under mu, so that a Shutdown that comes first (a server stopped as
	// soon as it started) either finds the listener to close and the
	// sweeper to wait for, or is seen here.
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	s.ln = ln
	s.handoff.addr = ln.Addr()
	if s.std.ReadHeaderTimeout == 0 {
		s.std.ReadHeaderTimeout = s.readHeaderTimeout()
	}
	if s.std.IdleTimeout == 0 {
		s.std.IdleTimeout = s.idleTimeout()
	}
	s.sweep.Add(1)
	s.mu.Unlock()
	go s.std.Serve(s.handoff)
	go s.sweepPools()
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return err
		}
		lc := &leanConn{c: c}
		lc.rd.c = c
		lc.rd.raw.init(c)
		s.mu.Lock()
		if s.shutdown.Load() {
			s.mu.Unlock()
			c.Close()
			return http.ErrServerClosed
		}
		s.conns[lc] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(lc)
	}
}

// Shutdown stops accepting, closes idle connections (client and handler),
// lets requests in flight finish until ctx ends, then closes the rest,
// handler connections included, so it returns soon after ctx ends however
// stuck a handler or a client is.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.shutdown.Swap(true) {
		close(s.done)
	}
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Unlock()
	s.handoff.Close()
	s.closePools(false)
	stdErr := make(chan error, 1)
	go func() { stdErr <- s.std.Shutdown(ctx) }()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := 0
		for lc := range s.conns {
			if lc.idle.Load() {
				lc.c.Close()
			} else {
				n++
			}
		}
		s.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for lc := range s.conns {
				lc.c.Close()
			}
			s.mu.Unlock()
			s.closePools(true)
			s.wg.Wait()
			err := <-stdErr
			s.std.Close() // what net/http still serves, and its handler requests
			s.sweep.Wait()
			return errors.Join(ctx.Err(), err)
		case <-t.C:
		}
	}
	s.wg.Wait()
	err := <-stdErr
	if err != nil {
		s.std.Close()
	}
	s.closePools(true)
	s.sweep.Wait()
	return err
}

// leanConn is a client connection on the lean path.
type leanConn struct {
	c    net.Conn
	rd   clientReader
	idle atomic.Bool
	// pool is the pool of the handler address last used, kept to skip the
	// lookup while the address stays the same.
	pool *connPool
	// done is when the last request's answer was sent (or the connection
	// accepted): the clock the lean path reads instead of asking again.
	done time.Time
	// The body sender: a goroutine of the connection's own, started by
	// its first request whose body is not all read yet, sends such bodies
	// to the handler while the response is relayed (see exchangeBody).
	// send gives it the body of job; sent reports how it went, once per
	// body. Made once, so a request allocates none of them.
	send      chan struct{}
	sent      chan error
	job       bodyJob
	bodyTimer *time.Timer
}

// bodyJob is a request body for the body sender.
type bodyJob struct {
	br   *bufio.Reader
	hd   *head
	pc   *pconn
	wait time.Duration // the response header timeout, from the body's end
}

const leanBufSize = 16 << 10

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, leanBufSize) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, leanBufSize) }}
	headPool   = sync.Pool{New: func() any { return &head{lines: make([][]byte, 0, 32)} }}
)

// pool returns the connection pool for addr, making it on first use.
func (s *Server) pool(lc *leanConn, addr string) *connPool {
	if p := lc.pool; p != nil && p.addr == addr {
		return p
	}
	s.poolMu.RLock()
	p := s.pools[addr]
	s.poolMu.RUnlock()
	if p == nil {
		s.poolMu.Lock()
		if p = s.pools[addr]; p == nil {
			p = newConnPool(addr, s.h.limits)
			if s.shutdown.Load() {
				p.closed = true
			}
			s.pools[addr] = p
		}
		s.poolMu.Unlock()
	}
	lc.pool = p
	return p
}

// sweepPools closes handler connections idle too long and forgets pools
// of handler processes no longer used, until Shutdown.
func (s *Server) sweepPools() {
	defer s.sweep.Done()
	every := max(min(s.h.limits.IdleConnTimeout/2, 10*time.Second), 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		cutoff := time.Now().Add(-s.h.limits.IdleConnTimeout)
		s.poolMu.Lock()
		for addr, p := range s.pools {
			if p.sweep(cutoff) {
				delete(s.pools, addr)
			}
		}
		s.poolMu.Unlock()
	}
}

func (s *Server) closePools(all bool) {
	s.poolMu.RLock()
	defer s.poolMu.RUnlock()
	for _, p := range s.pools {
		p.close(all)
	}
}

func (s *Server) readHeaderTimeout() time.Duration {
	if s.ReadHeaderTimeout > 0 {
		return s.ReadHeaderTimeout
	}
	return 10 * time.Second
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return 120 * time.Second
}

func (s *Server) bodyReadTimeout() time.Duration {
	if s.BodyReadTimeout > 0 {
		return s.BodyReadTimeout
	}
	return 60 * time.Second
}

func (s *Server) forget(lc *leanConn) {
	s.mu.Lock()
	delete(s.conns, lc)
	s.mu.Unlock()
}

func (s *Server) serve(lc *leanConn) {
	defer s.wg.Done()
	c := lc.c
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(&lc.rd)
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(&lc.rd.raw)
	hd := headPool.Get().(*head)
	handedOff := false
	defer func() {
		headPool.Put(hd)
		writerPool.Put(bw)
		if !handedOff {
			c.Close()
			readerPool.Put(br)
		}
		if lc.send != nil {
			close(lc.send) // idle: every body it took has been reported
		}
		s.forget(lc)
	}()
	clientIP := clientAddr(c.RemoteAddr())
	// A new connection gets the header timeout for its first byte too: a
	// client that connects and sends nothing is not an idle keep-alive.
	// Later waits get the idle timeout, whose deadline stays armed while
	// a request is served (the client's reads then are the body's, which
	// set their own, and the checks of upReader.rearm, which keep it
	// ahead).
	lc.done = time.Now()
	lc.rd.setDeadline(lc.done.Add(s.readHeaderTimeout()))
	for first := true; ; first = false {
		lc.idle.Store(true)
		if s.shutdown.Load() {
			return
		}
		if !first {
			lc.rd.armIdle(lc.done, s.idleTimeout())
		}
		if _, err := br.Peek(1); err != nil {
			return
		}
		lc.idle.Store(false)
		// Most heads arrive whole in the first read; only a partial one
		// needs the (shorter) header deadline while the rest comes.
		b, _ := br.Peek(br.Buffered())
		err := parseHead(b, hd)
		if err == errIncomplete {
			lc.rd.setDeadline(time.Now().Add(s.readHeaderTimeout()))
			err = readHead(br, hd)
		}
		if err == nil {
			var done bool
			done, err = s.forward(lc, br, bw, hd, clientIP)
			if err == nil {
				if done {
					return
				}
				continue
			}
		}
		if errors.Is(err, errFallback) {
			// net/http takes the connection from here, with what was read.
			lc.rd.setDeadline(time.Time{})
			handedOff = true
			s.handoff.put(&bufferedConn{Conn: c, r: br})
			return
		}
		return
	}
}

// readHead fills the buffer until it holds a whole request head and parses
// it. A head larger than the buffer is left to net/http.
func readHead(br *bufio.Reader, hd *head) error {
	n := br.Buffered()
	for {
		b, err := br.Peek(n)
		if err != nil && len(b) < n {
			if errors.Is(err, bufio.ErrBufferFull) {
				return errFallback
			}
			return err
		}
		perr := parseHead(b, hd)
		if perr != errIncomplete {
			return perr
		}
		if n >= leanBufSize {
			return errFallback
		}
		n = br.Buffered() + 1
		if n > leanBufSize {
			n = leanBufSize
		}
	}
}

// forward serves one request on the lean path, or returns errFallback
// having consumed nothing. done reports that the connection must close.
func (s *Server) forward(lc *leanConn, br *bufio.Reader, bw *bufio.Writer, hd *head, clientIP string) (done bool, err error) {
	t := s.h.table.Load()
	called := t.slots[s.h.hostLabel(bstr(hd.host))]
	if called == nil {
		return false, errFallback
	}
	// A traffic rule may route the request to another slot: it runs
	// there, under the keys of the host name the client called.
	sl, setCookie := called.routeLean(hd)
	hd.setCookie = setCookie
	if sl.Routes == nil || sl.Package == nil || !sl.Package.Host.EnableForwarding || hasPrefix(hd.path, "/admin/") {
		return false, errFallback
	}
	if !isCleanPath(bstr(hd.path)) {
		return false, errFallback // dot segments: net/http cleans the path (see CleanPath)
	}
	var pbuf [8]funcapp.Param
	fn, _, _ := sl.Routes.Match(bstr(hd.method), bstr(hd.path), pbuf[:0])
	if fn == nil || !fn.Forward {
		return false, errFallback
	}
	key := bstr(hd.key)
	if hd.key == nil {
		key = queryValue(bstr(hd.query), "code")
	}
	level := called.Keys.Level(fn.Name, key)
	if sl.Disabled[fn.Name] && level < LevelAdmin {
		return false, errFallback
	}
	switch fn.AuthLevel {
	case "admin":
		if level < LevelAdmin {
			return false, errFallback
		}
	case "anonymous":
	default:
		if level < LevelFunction {
			return false, errFallback
		}
	}
	set := sl.Upstream
	if !set.Acquire() {
		return false, errFallback
	}
	defer set.Release()
	addr, ok := set.Addr()
	if !ok {
		return false, errFallback
	}
	if s.leanHook != nil {
		s.leanHook()
	}
	start := time.Now()
	// From here the request is ours: the head is consumed.
	isHead := len(hd.method) == 4 && string(hd.method) == "HEAD"
	clientClose := hd.close
	status, err := s.exchange(lc, br, bw, hd, s.pool(lc, addr), clientIP, isHead, clientClose, start)
	if err != nil {
		if status == 0 {
			// Nothing was sent to the client yet: answer for the handler.
			status = s.answerFailure(bw, sl, err)
			bw.Flush()
		}
		lc.done = time.Now()
		if sl.Metrics != nil {
			sl.Metrics.Observe(status, lc.done.Sub(start))
		}
		return true, nil
	}
	if lc.done.Before(start) {
		lc.done = time.Now() // not set by exchange on this way
	}
	if sl.Metrics != nil {
		sl.Metrics.Observe(status, lc.done.Sub(start))
	}
	return clientClose, nil
}

// answerFailure writes the answer to a request whose exchange failed
// before anything reached the client, and returns its status.
func (s *Server) answerFailure(bw *bufio.Writer, sl *Slot, err error) int {
	switch {
	case errors.Is(err, errClientGone):
		return 499 // nobody reads an answer
	case errors.Is(err, errBadChunk):
		writeSimple(bw, http.StatusBadRequest, "bad request: malformed chunked request body", 0)
		return http.StatusBadRequest
	case errors.Is(err, errBodyTimeout):
		writeSimple(bw, http.StatusRequestTimeout, "request timeout: "+errBodyTimeout.Error(), 0)
		return http.StatusRequestTimeout
	case errors.Is(err, errResponseTimeout):
		writeSimple(bw, http.StatusGatewayTimeout, "gateway timeout: "+errResponseTimeout.Error(), 0)
		sl.log("host", "forwarding to the handler failed: "+errResponseTimeout.Error())
		return http.StatusGatewayTimeout
	}
	set := sl.Upstream
	if _, ok := set.Addr(); !ok || errors.Is(err, errPoolClosed) {
		writeSimple(bw, http.StatusServiceUnavailable, "the function host is restarting; retry shortly", set.RetryAfter())
		return http.StatusServiceUnavailable
	}
	writeSimple(bw, http.StatusBadGateway, "bad gateway: the function handler did not answer", 0)
	sl.log("host", "forwarding to the handler failed: "+err.Error())
	return http.StatusBadGateway
}

// exchange sends the request to the handler on a connection from p and
// relays its response. status is 0 while nothing was written to the
// client; an error means the client connection must close. start is when
// the request began; lc.done is set when the answer is sent.
func (s *Server) exchange(lc *leanConn, br *bufio.Reader, bw *bufio.Writer, hd *head, p *connPool, clientIP string, isHead, clientClose bool, start time.Time) (status int, err error) {
	hasBody := hd.chunked || hd.length > 0
	headLen := len(hd.raw)
	wait := s.h.limits.ResponseHeaderTimeout
	// The head stays in the buffer after Discard until the next read from
	// the client, so it can be written again for a retry.
	br.Discard(headLen)
	for attempt := 0; ; attempt++ {
		pc, fresh, err := p.get(wait, s.done, start)
		if err != nil {
			return 0, err
		}
		// A kept-alive handler connection may have been closed by the
		// handler (Node.js closes idle ones after 5s). A request with a
		// body cannot be sent twice, so an idle connection is checked
		// before it is used; so is every one after a failed attempt.
		if !fresh && (hasBody && time.Since(pc.used) > time.Second || attempt > 0) && !pc.alive() {
			p.discard(pc)
			continue
		}
		pc.rd.client = &lc.rd
		pc.rd.headBy.Store(0)
		pc.rd.watch.Store(!hasBody)
		if hasBody {
			// A handler that takes none of the body for as long as it
			// may take to answer has not answered in time (see
			// upReader.rearm). Set here, while no one else has pc.
			pc.rd.bodyStarted(wait)
		}
		if !pc.rd.armed.After(start) {
			pc.rd.arm(start) // else the last request's is still ahead: a wake-up comes soon enough
		}
		writeRequestHead(pc.bw, hd, clientIP)
		if hasBody {
			return s.exchangeBody(lc, br, bw, hd, pc, isHead, clientClose)
		}
		var upClose bool
		// From now, not start: the wait for a free connection is not the
		// handler's.
		pc.rd.headBy.Store(time.Now().Add(wait).UnixNano())
		// The flush returns once the answer is there to read (or the watch
		// deadline, armed above, passed): see rawIO.writeAwait. Not on a
		// connection idle a while: a handler that half-closed it sends no
		// reset to wake the wait, and its end of file came before it.
		pc.rd.raw.awaitReply = fresh || start.Sub(pc.used) < time.Second
		err = pc.bw.Flush()
		pc.rd.raw.awaitReply = false
		if err == nil {
			status, upClose, err = s.relayResponse(lc, bw, pc, hd.scratch[:0], isHead, clientClose, hd.setCookie)
		}
		if err == nil || status != 0 || fresh || errors.Is(err, errResponseTimeout) || errors.Is(err, errClientGone) {
			lc.done = time.Now()
			release(pc, upClose || err != nil, lc.done)
			return status, err
		}
		// A kept-alive connection the handler closed: retry.
		p.discard(pc)
	}
}

// exchangeBody sends a request body while it relays the response, so a
// handler that answers as it reads (an echo) never waits on us.
func (s *Server) exchangeBody(lc *leanConn, br *bufio.Reader, bw *bufio.Writer, hd *head, pc *pconn, isHead, clientClose bool) (status int, err error) {
	wait := s.h.limits.ResponseHeaderTimeout
	lc.rd.abort.Store(false)
	lc.rd.bodyTimeout = s.bodyReadTimeout()
	defer func() { lc.rd.bodyTimeout = 0 }()
	inline := !hd.chunked && hd.length <= int64(br.Buffered())
	if inline {
		b, _ := br.Peek(int(hd.length)) // all buffered
		_, err := pc.bw.Write(b)
		br.Discard(len(b))
		if err == nil {
			err = pc.bw.Flush()
		}
		if err != nil {
			release(pc, true, time.Time{})
			return 0, err
		}
		pc.rd.bodySent(wait)
	} else {
		if lc.send == nil {
			lc.send, lc.sent = make(chan struct{}), make(chan error, 1)
			go lc.sendBodies()
		}
		lc.job = bodyJob{br: br, hd: hd, pc: pc, wait: wait}
		lc.send <- struct{}{}
	}
	status, upClose, err := s.relayResponse(lc, bw, pc, hd.scratch[:0], isHead, clientClose, hd.setCookie)
	// The body's sender reports exactly once; got says whether that report
	// was taken (a nil report is a body sent in full, not a missing one).
	var berr error
	got := inline
	if !got {
		select {
		case berr = <-lc.sent:
			got = true
		default:
		}
	}
	if !got && err == nil {
		// The response is whole; the rest of the body is on its way
		// unless the handler answered without reading it.
		if lc.bodyTimer == nil {
			lc.bodyTimer = time.NewTimer(time.Second)
		} else {
			lc.bodyTimer.Reset(time.Second)
		}
		select {
		case berr = <-lc.sent:
			got = true
		case <-lc.bodyTimer.C:
		}
		lc.bodyTimer.Stop()
	}
	if !got {
		// Stop the body: wake its reads and writes.
		pc.c.Close()
		lc.rd.abort.Store(true)
		// Not lc.rd.setDeadline: the body's sender may be setting one
		// now, and the connection closes after this anyway.
		lc.c.SetReadDeadline(aLongTimeAgo)
		berr = <-lc.sent
		if berr == nil {
			berr = errBodyUnread
		}
	}
	switch {
	case berr == nil:
	case status == 0 && err != nil && !errors.Is(err, errResponseTimeout) && !errors.Is(err, errClientGone) &&
		(errors.Is(berr, errBadChunk) || errors.Is(berr, errBodyTimeout)):
		err = berr // what went wrong is the client's body: tell it
	case err == nil:
		// The handler answered without reading the whole body: the client
		// connection is out of step, so it closes.
		err = errBodyUnread
	}
	lc.done = time.Now()
	release(pc, upClose || err != nil || berr != nil, lc.done)
	return status, err
}

var (
	errBodyUnread = errors.New("request body not fully sent")
	aLongTimeAgo  = time.Unix(1, 0)
)

// sendBodies is the connection's body sender: it sends the body of
// lc.job each time it is told to, until lc.send closes.
func (lc *leanConn) sendBodies() {
	for range lc.send {
		j := &lc.job
		var err error
		if j.hd.chunked {
			err = relayChunked(j.pc.bw, j.br, j.pc.bw.Flush)
		} else {
			err = spliceN(j.pc.bw, &j.pc.rd.raw, j.br, &lc.rd.raw, j.hd.length, &lc.rd)
		}
		if err == nil {
			err = j.pc.bw.Flush()
		}
		if err == nil {
			j.pc.rd.bodySent(j.wait)
		} else {
			j.pc.c.Close() // the handler must not wait for the rest, nor we for its answer
		}
		*j = bodyJob{}
		lc.sent <- err
	}
}

// release gives a handler connection back to its pool at now, or closes
// it when it is out of step.
func release(pc *pconn, bad bool, now time.Time) {
	if bad {
		pc.pool.discard(pc)
		return
	}
	pc.pool.put(pc, now)
}

// writeRequestHead writes the request head for the handler: the request
// line and headers as sent, less hop-by-hop headers and the client's
// forwarding headers, plus the forwarding headers and an invocation id.
// X-Forwarded-For names the client alone, as on the net/http path: what a
// client says it forwards for cannot be trusted.
func writeRequestHead(w *bufio.Writer, hd *head, clientIP string) {
	w.Write(hd.method)
	w.WriteByte(' ')
	w.Write(hd.target)
	w.WriteString(" HTTP/1.1\r\n")
	for _, line := range hd.lines {
		w.Write(line)
		w.WriteString("\r\n")
	}
	if hd.chunked {
		w.WriteString("Transfer-Encoding: chunked\r\n")
	} else if hd.length >= 0 {
		w.WriteString("Content-Length: ")
		w.Write(strconv.AppendInt(hd.scratch[:0], hd.length, 10))
		w.WriteString("\r\n")
	}
	w.WriteString("X-Forwarded-For: ")
	w.WriteString(clientIP)
	w.WriteString("\r\nX-Forwarded-Host: ")
	w.Write(hd.host)
	w.WriteString("\r\nX-Forwarded-Proto: http\r\nX-Azure-Functions-InvocationId: ")
	w.Write(fastInvocationID(&hd.scratch))
	w.WriteString("\r\n\r\n")
}

// respHead is what readResponseHead learned of a response head.
type respHead struct {
	status         int
	length         int64 // -1 when the response has no Content-Length
	chunked        bool
	noBody         bool
	closeDelimited bool // the body ends when the handler closes
	upClose        bool // the handler connection cannot be reused
}

// maxResponseHead bounds a response head from a handler (interim
// responses included).
const maxResponseHead = 1 << 20

// readResponseHead reads a response head from src, skipping interim 1xx
// responses, and writes the head for the client to dst: the status line
// and end-to-end fields as sent, framing written anew, hop-by-hop fields
// dropped. Every line must end in CRLF and every field name be a token;
// anything else is errBadResponse. scratch formats numbers. n is the
// number of bytes written to dst.
func readResponseHead(dst *bufio.Writer, src *bufio.Reader, scratch []byte, isHead, clientClose bool) (rh respHead, n int, err error) {
	return readResponseHeadCookie(dst, src, scratch, isHead, clientClose, "")
}

// readResponseHeadCookie is readResponseHead adding a Set-Cookie field
// with the value setCookie unless it is "" (a traffic rule's choice).
func readResponseHeadCookie(dst *bufio.Writer, src *bufio.Reader, scratch []byte, isHead, clientClose bool, setCookie string) (rh respHead, n int, err error) {
	var line []byte
	total := 0
	readLine := func() ([]byte, error) {
		l, err := src.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, errBadResponse
			}
			return nil, err
		}
		total += len(l)
		if total > maxResponseHead || !endsCRLFOnly(l) {
			return nil, errBadResponse
		}
		return l, nil
	}
	for {
		line, err = readLine()
		if err != nil {
			return rh, 0, err
		}
		// HTTP/1.x SP 3DIGIT SP reason CRLF (the reason may be empty)
		if len(line) < 14 || string(line[:7]) != "HTTP/1." || line[7] != '0' && line[7] != '1' || line[8] != ' ' ||
			line[12] != ' ' && len(line) != 14 {
			return rh, 0, errBadResponse
		}
		code, ok := parseUint(line[9:12])
		if !ok || code < 100 {
			return rh, 0, errBadResponse
		}
		for _, c := range line[12 : len(line)-2] {
			if c < ' ' && c != '\t' || c == 0x7f {
				return rh, 0, errBadResponse
			}
		}
		rh.status = int(code)
		if rh.status >= 200 || rh.status == 101 {
			break
		}
		// An interim 1xx: skip its fields and read the final response.
		for {
			l, err := readLine()
			if err != nil {
				return rh, 0, err
			}
			if len(l) == 2 {
				break
			}
			if !validFieldLine(l[:len(l)-2]) {
				return rh, 0, errBadResponse
			}
		}
	}
	if rh.status == 101 {
		return rh, 0, errBadResponse // no upgrades on the lean path
	}
	upMinor := line[7]
	dst.Write(line)
	n = len(line)
	rh.length = -1
	rh.upClose = upMinor == '0'
	for {
		l, err := readLine()
		if err != nil {
			return rh, n, err
		}
		if len(l) == 2 {
			break
		}
		if !validFieldLine(l[:len(l)-2]) {
			return rh, n, errBadResponse
		}
		colon := indexByteB(l, ':')
		name := l[:colon]
		value := trimOWS(l[colon+1 : len(l)-2])
		switch {
		case equalFold(name, "content-length"):
			v, ok := parseUint(value)
			if !ok || rh.length >= 0 && v != rh.length {
				return rh, n, errBadResponse
			}
			rh.length = v
			continue
		case equalFold(name, "transfer-encoding"):
			if !equalFold(value, "chunked") {
				return rh, n, errBadResponse
			}
			rh.chunked = true
			continue
		case equalFold(name, "connection"):
			if containsToken(value, "close") {
				rh.upClose = true
			}
			if containsToken(value, "keep-alive") && upMinor == '0' {
				rh.upClose = false
			}
			continue
		case equalFold(name, "keep-alive"), equalFold(name, "proxy-connection"), equalFold(name, "upgrade"):
			continue
		}
		dst.Write(l)
		n += len(l)
	}
	rh.noBody = isHead || rh.status == 204 || rh.status == 304
	rh.closeDelimited = !rh.noBody && !rh.chunked && rh.length < 0
	if rh.chunked {
		dst.WriteString("Transfer-Encoding: chunked\r\n")
		n += 28
		rh.length = -1
	} else if rh.length >= 0 {
		num := strconv.AppendInt(scratch[:0], rh.length, 10)
		dst.WriteString("Content-Length: ")
		dst.Write(num)
		dst.WriteString("\r\n")
		n += 18 + len(num)
	}
	if clientClose || rh.closeDelimited {
		dst.WriteString("Connection: close\r\n")
		n += 19
	}
	if setCookie != "" {
		dst.WriteString("Set-Cookie: ")
		dst.WriteString(setCookie)
		dst.WriteString("\r\n")
		n += 14 + len(setCookie)
	}
	dst.WriteString("\r\n")
	n += 2
	return rh, n, nil
}

// relayResponse reads the handler's response and writes it to the client.
func (s *Server) relayResponse(lc *leanConn, bw *bufio.Writer, pc *pconn, scratch []byte, isHead, clientClose bool, setCookie string) (status int, upClose bool, err error) {
	rh, n, err := readResponseHeadCookie(bw, pc.br, scratch, isHead, clientClose, setCookie)
	pc.rd.headBy.Store(headIn) // the body may take its time
	if err != nil {
		if bw.Buffered() == n {
			// Nothing of it reached the client: answer for the handler.
			bw.Reset(&lc.rd.raw)
			return 0, true, err
		}
		return rh.status, true, err
	}
	status, upClose = rh.status, rh.upClose
	switch {
	case rh.noBody:
	case rh.chunked:
		err = relayChunked(bw, pc.br, func() error { return flushIfIdle(bw, pc.br) })
	case rh.length >= 0:
		err = spliceN(bw, &lc.rd.raw, pc.br, &pc.rd.raw, rh.length, &pc.rd)
	default:
		_, err = io.Copy(bw, pc.br)
		if err == nil {
			upClose = true
		}
	}
	if err != nil {
		bw.Flush()
		return status, true, err
	}
	if err := bw.Flush(); err != nil {
		return status, true, err
	}
	if rh.closeDelimited {
		return status, true, errClientMustClose
	}
	return status, upClose, nil
}

var (
	errBadResponse     = errors.New("malformed response from the handler")
	errClientMustClose = errors.New("close-delimited response")
)

func flushIfIdle(bw *bufio.Writer, src *bufio.Reader) error {
	if src.Buffered() == 0 {
		return bw.Flush()
	}
	return nil
}

// spliceMin is the body size from which the part not yet buffered goes
// socket to socket (splice(2) on Linux) instead of through the buffers.
const spliceMin = 32 << 10

// spliceN copies n bytes of a body from src (read through srcIO) to dst
// (written through dstIO). Small bodies go through the buffers, flushed as
// they drain so streams keep flowing; large ones send what is buffered,
// then let the kernel move the rest between the sockets through a pipe
// (splice(2)) without copying it through user space. The splices are raw
// calls, like rawIO's reads and writes: through net.TCPConn.ReadFrom they
// were system calls the runtime's monitor took the processor away from
// (7% of the 64 KiB echo's CPU in runtime.sysmon). w sets the source's
// read deadlines and decides what a read that timed out means.
func spliceN(dst *bufio.Writer, dstIO *rawIO, src *bufio.Reader, srcIO *rawIO, n int64, w rearmer) error {
	if n < spliceMin || dstIO.rc == nil || srcIO.rc == nil || int64(src.Buffered()) >= n {
		return copyNFlush(dst, src, n)
	}
	p := getPipe()
	if p == nil {
		return copyNFlush(dst, src, n) // no pipe to be had (out of descriptors)
	}
	defer putPipe(p)
	if b := src.Buffered(); b > 0 {
		if err := copyNFlush(dst, src, int64(b)); err != nil {
			return err
		}
		n -= int64(b)
	}
	if err := dst.Flush(); err != nil {
		return err
	}
	if err := w.rearm(true); err != nil {
		return err
	}
	progressed, first := false, true
	for n > 0 {
		got, err := srcIO.spliceIn(p, int(min(n, pipeCap)))
		if first && (errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSYS)) {
			return copyNFlush(dst, src, n) // splice refused: nothing was taken yet
		}
		first = false
		switch {
		case err == nil && got == 0:
			return io.ErrUnexpectedEOF
		case err == nil:
			p.data = got
			if err := dstIO.spliceOut(p); err != nil {
				return err
			}
			n -= int64(got)
			progressed = true
		case errors.Is(err, os.ErrDeadlineExceeded):
			if err := w.rearm(progressed); err != nil {
				return err
			}
			progressed = false
		default:
			return err
		}
	}
	return nil
}

// copyNFlush copies n bytes of a response body, flushing whenever the
// source has nothing buffered, so streamed responses reach the client.
func copyNFlush(dst *bufio.Writer, src *bufio.Reader, n int64) error {
	for n > 0 {
		if src.Buffered() == 0 {
			if err := dst.Flush(); err != nil {
				return err
			}
		}
		b, err := src.Peek(min(int(min(n, leanBufSize)), max(1, src.Buffered())))
		if len(b) == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if len(b) == 0 {
			continue
		}
		if _, err := dst.Write(b); err != nil {
			return err
		}
		src.Discard(len(b))
		n -= int64(len(b))
	}
	return nil
}

func trimCRLF(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func indexByteB(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func containsToken(v []byte, tok string) bool {
	for len(v) > 0 {
		i := indexByteB(v, ',')
		var t []byte
		if i < 0 {
			t, v = v, nil
		} else {
			t, v = v[:i], v[i+1:]
		}
		if equalFold(trimOWS(t), tok) {
			return true
		}
	}
	return false
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

// bstr views b as a string without copying. The string must not outlive
// the bytes (they are the connection's read buffer).
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// writeSimple writes a short plain-text answer that closes the connection.
// A 503 always carries Retry-After, of at least one second.
func writeSimple(bw *bufio.Writer, status int, msg string, retry time.Duration) {
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(status))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(status))
	bw.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n")
	if status == http.StatusServiceUnavailable {
		bw.WriteString("Retry-After: ")
		bw.WriteString(retryAfterSeconds(retry))
		bw.WriteString("\r\n")
	}
	bw.WriteString("Content-Length: ")
	bw.WriteString(strconv.Itoa(len(msg) + 1))
	bw.WriteString("\r\n\r\n")
	bw.WriteString(msg)
	bw.WriteByte('\n')
}

func clientAddr(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

const hexDigits = "0123456789abcdef"

// fastInvocationID writes a version 4 UUID into b from the runtime's fast
// random source: invocation ids must be unique, not secret.
func fastInvocationID(b *[64]byte) []byte {
	var u [16]byte
	x, y := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		u[i], u[8+i] = byte(x>>(8*i)), byte(y>>(8*i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hexDigits[c>>4], hexDigits[c&0xf]
		j += 2
	}
	return b[:36]
}

// bufferedConn is a connection whose first bytes are already in r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// connQueue is a net.Listener fed with handed-off connections.
type connQueue struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	addr net.Addr
}

func newConnQueue() *connQueue {
	return &connQueue{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) put(c net.Conn) {
	select {
	case q.ch <- c:
	case <-q.done:
		c.Close()
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }
