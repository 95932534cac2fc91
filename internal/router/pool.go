package router

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The lean path's connections to handler processes. Each handler process
// (one per process set) has a connPool: client connections borrow a
// handler connection for one request and give it back, so an idle client
// holds nothing upstream. A pool bounds the connections it keeps idle and
// the connections open at once; a request waits for one to come free.

// watchInterval is how often a request waiting on its handler looks at
// whether the client is still there and the response head is overdue.
const watchInterval = 500 * time.Millisecond

var (
	errResponseTimeout = errors.New("the function handler did not answer in time")
	errClientGone      = errors.New("the client went away")
	errBodyTimeout     = errors.New("the request body stopped arriving")
	errPoolClosed      = errors.New("shutting down")
)

// pconn is a connection to a handler process.
type pconn struct {
	c    net.Conn
	br   *bufio.Reader // reads through rd
	bw   *bufio.Writer
	rd   upReader
	used time.Time
	pool *connPool
	done bool // closed and counted out of the pool
}

// rearmer sets a connection's next read deadline, and decides what a read
// that timed out means.
type rearmer interface {
	// rearm is called before reading and after a read timed out; progressed
	// reports bytes read since the last call. It returns the error to end
	// the read with, or nil having set the next deadline.
	rearm(progressed bool) error
}

// upReader reads from a handler connection for one request. Its reads
// wake at least every watchInterval to notice a client that went away and
// a response head that is overdue.
type upReader struct {
	c   net.Conn
	raw rawIO // reads c
	// client is the client of the request under way; nil between requests.
	client *clientReader
	// armed is c's read deadline (with the monotonic clock reading, as
	// the deadline itself is kept). It stays armed between requests and
	// is moved only once it has passed, so a busy connection does not set
	// a deadline for every request.
	armed time.Time
	// headBy is when the response head must have come (UnixNano); zero
	// while the request body is still being sent, headIn once the head
	// is in (a full-duplex handler may answer before the body's end).
	headBy atomic.Int64
	// watch is set once nothing else reads from the client (the body, if
	// any, is sent), so the client can be looked at without waiting.
	watch atomic.Bool
	// stall, while a request body is being sent, is how long the handler
	// may leave it unread before the request fails as unanswered. outq
	// is the socket's send queue when last looked at, and outqSince
	// since when it has stood there. They belong to the request's
	// goroutine.
	stall     time.Duration
	outq      int
	outqSince time.Time
}

// bodyStarted notes that a request body is about to be sent: the
// handler may leave it unread for stall.
func (r *upReader) bodyStarted(stall time.Duration) {
	r.stall, r.outq, r.outqSince = stall, 0, time.Time{}
}

// stalled reports whether the handler has taken none of the body for
// longer than stall. Bytes wait in the socket's send queue (SIOCOUTQ)
// only while the handler's receive buffer is full: a queue that stands
// still, not empty, is a handler that reads nothing, and one that moves
// is a handler reading, however slowly. (The sender's writes are no
// guide: the kernel wakes a waiting writer only once a good part of the
// buffers, megabytes on loopback, is free.)
func (r *upReader) stalled(now time.Time) bool {
	q, ok := r.raw.sendQueue()
	switch {
	case !ok || q == 0:
		r.outqSince = time.Time{}
		return false
	case q != r.outq || r.outqSince.IsZero():
		r.outq, r.outqSince = q, now
		return false
	}
	return now.Sub(r.outqSince) > r.stall
}

func (r *upReader) Read(p []byte) (int, error) {
	for {
		n, err := r.raw.Read(p)
		if n > 0 || err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || r.client == nil {
			return n, err
		}
		if err := r.rearm(false); err != nil {
			return 0, err
		}
	}
}

// rearm, after a wait that timed out (progressed false), ends the wait
// when the client went away or the head is overdue; it then sets the next
// wake-up unless one is still ahead.
// headIn is headBy's value once the response head is in.
const headIn = -1

func (r *upReader) rearm(progressed bool) error {
	now := time.Now()
	if !progressed {
		if cr := r.client; cr != nil && r.watch.Load() {
			// The client's idle deadline stays armed through a request: a
			// long wait must not let it pass, or peerOpen reads the
			// expired deadline as the client gone.
			cr.keepPast(now, 2*watchInterval)
			if !peerOpen(cr.c) {
				return errClientGone
			}
		}
		switch by := r.headBy.Load(); {
		case by > 0 && now.UnixNano() > by:
			return errResponseTimeout
		case by == 0 && r.stall > 0 && r.stalled(now):
			// The body is still being sent: the handler has neither
			// answered nor taken any of it for the response header
			// timeout. Without this, a handler that reads no body and
			// never answers would hold the client for ever.
			return errResponseTimeout
		}
	} else if r.armed.After(now) {
		return nil
	}
	return r.arm(now)
}

// bodySent records that the request body is sent: the response head is
// due within wait, and the client may be watched.
func (r *upReader) bodySent(wait time.Duration) {
	// Unless the head came already: then nothing is due.
	r.headBy.CompareAndSwap(0, time.Now().Add(wait).UnixNano())
	r.watch.Store(true)
}

// arm sets c's read deadline watchInterval after now.
func (r *upReader) arm(now time.Time) error {
	r.armed = now.Add(watchInterval)
	return r.c.SetReadDeadline(r.armed)
}

// clientReader reads from a client connection. While a request body is
// read, every read must make progress within bodyTimeout.
type clientReader struct {
	c           net.Conn
	raw         rawIO         // reads and writes c
	bodyTimeout time.Duration // zero outside request bodies
	// deadline is c's read deadline, zero for none. Between request
	// heads the idle deadline stays armed, and is moved only when less
	// than the idle timeout is left (see armIdle). Times keep their
	// monotonic clock reading, so a step of the wall clock cannot make
	// an expired deadline look ahead.
	deadline time.Time
	// abort is set when the body is cut short on purpose, so the timeout
	// that wakes its reader is not the client's fault.
	abort atomic.Bool
}

func (r *clientReader) Read(p []byte) (int, error) {
	if r.bodyTimeout <= 0 {
		return r.raw.Read(p)
	}
	if err := r.rearm(true); err != nil {
		return 0, err
	}
	n, err := r.raw.Read(p)
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, r.rearm(false)
	}
	return n, err
}

func (r *clientReader) rearm(progressed bool) error {
	switch {
	case r.abort.Load():
		return errBodyUnread
	case !progressed:
		return errBodyTimeout
	}
	r.setDeadline(time.Now().Add(r.bodyTimeout))
	if r.abort.Load() {
		// Cut short while the deadline was set: the deadline that was to
		// wake this reader may have just been replaced.
		r.c.SetReadDeadline(aLongTimeAgo)
		return errBodyUnread
	}
	return nil
}

// setDeadline sets c's read deadline to t (zero: none).
func (r *clientReader) setDeadline(t time.Time) {
	r.deadline = t
	r.c.SetReadDeadline(t)
}

// armIdle makes the wait for the next request end between d and d*9/8
// after now. The deadline is moved only when less than d is left, so a
// busy connection sets it once per d/8 rather than once per request.
func (r *clientReader) armIdle(now time.Time, d time.Duration) {
	left := r.deadline.Sub(now)
	if !r.deadline.IsZero() && left >= d && left <= d+d/8 {
		return
	}
	r.setDeadline(now.Add(d + d/8))
}

// keepPast moves c's read deadline, if armed, to at least d after now.
func (r *clientReader) keepPast(now time.Time, d time.Duration) {
	if !r.deadline.IsZero() && r.deadline.Sub(now) < d {
		r.setDeadline(now.Add(d))
	}
}

// bodyTimeoutHandler serves the net/http side with the lean path's body
// read timeout: each read of a request body must make progress in time.
type bodyTimeoutHandler struct {
	s *Server
	h http.Handler
}

func (b bodyTimeoutHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil && r.Body != http.NoBody {
		// A copy: net/http looks at its own request's Body after the
		// handler to decide whether to read what is left of it, and reads
		// up to 256 KiB of any body it does not know (asking for it with
		// 100 Continue), so a refused request would make it read the body.
		r2 := new(http.Request)
		*r2 = *r
		r2.Body = &deadlineBody{ReadCloser: r.Body, rc: http.NewResponseController(w), timeout: b.s.bodyReadTimeout()}
		r = r2
	}
	b.h.ServeHTTP(w, r)
}

// deadlineBody is a request body on the net/http side whose every read
// gets a fresh read deadline; the deadline is lifted at the end of the
// body, where net/http starts watching for the client going away.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
}

func (d *deadlineBody) Read(p []byte) (int, error) {
	d.rc.SetReadDeadline(time.Now().Add(d.timeout))
	n, err := d.ReadCloser.Read(p)
	if err != nil {
		d.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// peerOpen checks, without blocking, that the peer of c has neither closed
// nor reset the connection. Bytes waiting to be read count as open.
func peerOpen(c net.Conn) bool {
	if bc, ok := c.(*bufferedConn); ok {
		c = bc.Conn
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = n > 0 || n < 0 && (rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK)
		return true
	})
	return err == nil && open
}

// alive checks, without blocking, that the handler has not closed the
// connection and sent nothing out of turn.
func (pc *pconn) alive() bool {
	if pc.br.Buffered() > 0 {
		return false // unexpected bytes: out of step
	}
	// A deadline left from the last request has likely passed, and the
	// read below would fail on it.
	pc.c.SetReadDeadline(time.Time{})
	pc.rd.armed = time.Time{}
	sc, ok := pc.c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		// EAGAIN means open and quiet; 0 bytes means the handler closed
		// it; data means it is out of step.
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = n < 0 && (rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK)
		return true
	})
	return err == nil && alive
}

// connPool holds the connections to one handler process.
type connPool struct {
	addr    string
	maxIdle int
	// tokens holds one value per open connection: its capacity is the
	// most connections open at once.
	tokens chan struct{}
	// waiting counts requests waiting for a connection; while any wait, a
	// returned connection is closed to free its token rather than kept.
	waiting atomic.Int32

	mu     sync.Mutex
	idle   []*pconn            // most recently used last
	open   map[*pconn]struct{} // every connection not yet discarded, idle or not
	closed bool
	last   time.Time // last get or put, for dropping unused pools
}

func newConnPool(addr string, l ConnLimits) *connPool {
	return &connPool{
		addr:    addr,
		maxIdle: l.MaxIdleConnsPerSet,
		tokens:  make(chan struct{}, l.MaxConnsPerSet),
		open:    make(map[*pconn]struct{}),
		last:    time.Now(),
	}
}

// get returns an idle connection, or a new one when none is idle and the
// pool has room; otherwise it waits until one comes free, until wait
// passes (errResponseTimeout) or until done is closed. fresh reports a
// new connection.
func (p *connPool) get(wait time.Duration, done <-chan struct{}, now time.Time) (pc *pconn, fresh bool, err error) {
	if pc, ok := p.popIdle(now); ok {
		return pc, false, nil
	}
	select {
	case p.tokens <- struct{}{}:
	default:
		if err := p.waitToken(wait, done); err != nil {
			return nil, false, err
		}
		if pc, ok := p.popIdle(time.Now()); ok {
			<-p.tokens // the idle connection has its own
			return pc, false, nil
		}
	}
	pc, err = p.dial()
	if err != nil {
		<-p.tokens
		return nil, false, err
	}
	return pc, true, nil
}

func (p *connPool) popIdle(now time.Time) (*pconn, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, false
	}
	p.last = now
	if n := len(p.idle); n > 0 {
		pc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		return pc, true
	}
	return nil, false
}

// waitToken waits for room for a new connection.
func (p *connPool) waitToken(wait time.Duration, done <-chan struct{}) error {
	p.waiting.Add(1)
	defer p.waiting.Add(-1)
	// An idle connection may be kept just before a waiter counts itself:
	// look again now and then, and close such connections to free a token.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		select {
		case p.tokens <- struct{}{}:
			return nil
		case <-tick.C:
			if pc, ok := p.popIdle(time.Now()); ok {
				p.discard(pc)
			}
		case <-deadline.C:
			return errResponseTimeout
		case <-done:
			return errPoolClosed
		}
	}
}

func (p *connPool) dial() (*pconn, error) {
	c, err := dialer.Dial("tcp", p.addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	pc := &pconn{c: c, pool: p}
	pc.rd.c = c
	pc.rd.raw.init(c)
	pc.br = bufio.NewReaderSize(&pc.rd, leanBufSize)
	pc.bw = bufio.NewWriterSize(&pc.rd.raw, leanBufSize)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close()
		return nil, errPoolClosed
	}
	p.open[pc] = struct{}{}
	p.mu.Unlock()
	return pc, nil
}

// put gives back a connection after a request that left it in step, at
// now.
func (p *connPool) put(pc *pconn, now time.Time) {
	pc.rd.client = nil
	pc.used = now
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.maxIdle || p.waiting.Load() > 0 {
		p.mu.Unlock()
		p.discard(pc)
		return
	}
	p.idle = append(p.idle, pc)
	p.last = pc.used
	p.mu.Unlock()
}

// discard closes a connection that cannot be reused and frees its room.
func (p *connPool) discard(pc *pconn) {
	p.mu.Lock()
	if pc.done {
		p.mu.Unlock()
		return
	}
	pc.done = true
	delete(p.open, pc)
	p.mu.Unlock()
	pc.c.Close()
	<-p.tokens
}

// sweep closes connections idle since before cutoff and reports whether
// the pool is empty and unused since then.
func (p *connPool) sweep(cutoff time.Time) (unused bool) {
	p.mu.Lock()
	var stale []*pconn
	kept := p.idle[:0]
	for _, pc := range p.idle {
		if pc.used.Before(cutoff) {
			stale = append(stale, pc)
		} else {
			kept = append(kept, pc)
		}
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	unused = len(p.idle) == 0 && len(p.open) == len(stale) && p.last.Before(cutoff)
	p.mu.Unlock()
	for _, pc := range stale {
		p.discard(pc)
	}
	return unused
}

// close closes every idle connection and, when all is true, every
// connection in use too, after which the pool makes no more.
func (p *connPool) close(all bool) {
	p.mu.Lock()
	p.closed = p.closed || all
	conns := append([]*pconn(nil), p.idle...)
	p.idle = nil
	if all {
		conns = conns[:0]
		for pc := range p.open {
			conns = append(conns, pc)
		}
	}
	p.mu.Unlock()
	for _, pc := range conns {
		p.discard(pc)
	}
}
