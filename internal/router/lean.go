package router

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
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
// keep-alive connection to the handler that the client connection keeps for
// itself, with no allocation, lock or pool on the way. Every other request
// (host admin API, payload mode, errors, anything unusual) hands its
// connection, with the bytes already read, to a standard net/http server
// running the same Handler, which serves it from then on.
type Server struct {
	h   *Handler
	std *http.Server

	// ReadHeaderTimeout bounds reading a request head; IdleTimeout the wait
	// for the next request on a kept-alive connection. Zero: 10s and 120s.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration

	// leanHook, for tests, is called for each request the lean path takes.
	leanHook func()

	handoff  *connQueue
	mu       sync.Mutex
	conns    map[*leanConn]struct{}
	ln       net.Listener
	shutdown atomic.Bool
	wg       sync.WaitGroup
}

// NewServer returns a Server for h. std serves what the lean path does not
// take; its Handler is set to h.
func NewServer(h *Handler, std *http.Server) *Server {
	std.Handler = h
	return &Server{h: h, std: std, handoff: newConnQueue(), conns: make(map[*leanConn]struct{})}
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.handoff.addr = ln.Addr()
	go s.std.Serve(s.handoff)
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

// Shutdown stops accepting, closes idle connections, lets requests in
// flight finish until ctx ends, then closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Store(true)
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Unlock()
	s.handoff.Close()
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
			s.wg.Wait()
			return errors.Join(ctx.Err(), <-stdErr)
		case <-t.C:
		}
	}
	s.wg.Wait()
	return <-stdErr
}

// leanConn is a client connection on the lean path.
type leanConn struct {
	c    net.Conn
	idle atomic.Bool
}

const leanBufSize = 16 << 10

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, leanBufSize) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, leanBufSize) }}
	headPool   = sync.Pool{New: func() any { return &head{lines: make([][]byte, 0, 32)} }}
)

// upstream is the connection to a handler process that one client
// connection keeps for itself.
type upstream struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time
}

// alive checks, without blocking, that the handler has not closed the
// connection.
func (u *upstream) alive() bool {
	if u.br.Buffered() > 0 {
		return false // unexpected bytes: out of step
	}
	sc, ok := u.c.(syscall.Conn)
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
		// A non-blocking peek: EAGAIN means open and quiet; 0 bytes means
		// the handler closed it; data means it is out of step.
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = n < 0 && (rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK)
		return true
	})
	return err == nil && alive
}

func (u *upstream) close() {
	if u.c != nil {
		u.c.Close()
		readerPool.Put(u.br)
		writerPool.Put(u.bw)
		u.c, u.br, u.bw, u.addr = nil, nil, nil, ""
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

func (s *Server) forget(lc *leanConn) {
	s.mu.Lock()
	delete(s.conns, lc)
	s.mu.Unlock()
}

func (s *Server) serve(lc *leanConn) {
	defer s.wg.Done()
	c := lc.c
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(c)
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(c)
	hd := headPool.Get().(*head)
	var up upstream
	handedOff := false
	defer func() {
		up.close()
		headPool.Put(hd)
		writerPool.Put(bw)
		if !handedOff {
			c.Close()
			readerPool.Put(br)
		}
		s.forget(lc)
	}()
	clientIP := clientAddr(c.RemoteAddr())
	for {
		lc.idle.Store(true)
		if s.shutdown.Load() {
			return
		}
		c.SetReadDeadline(time.Now().Add(s.idleTimeout()))
		if _, err := br.Peek(1); err != nil {
			return
		}
		lc.idle.Store(false)
		// Most heads arrive whole in the first read; only a partial one
		// needs the (shorter) header deadline while the rest comes.
		b, _ := br.Peek(br.Buffered())
		err := parseHead(b, hd)
		if err == errIncomplete {
			c.SetReadDeadline(time.Now().Add(s.readHeaderTimeout()))
			err = readHead(br, hd)
		}
		if err == nil {
			c.SetReadDeadline(time.Time{})
			var done bool
			done, err = s.forward(c, br, bw, hd, &up, clientIP)
			if err == nil {
				if done {
					return
				}
				continue
			}
		}
		if errors.Is(err, errFallback) {
			// net/http takes the connection from here, with what was read.
			c.SetReadDeadline(time.Time{})
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
func (s *Server) forward(c net.Conn, br *bufio.Reader, bw *bufio.Writer, hd *head, up *upstream, clientIP string) (done bool, err error) {
	t := s.h.table.Load()
	sl := t.slots[s.h.hostLabel(bstr(hd.host))]
	if sl == nil || sl.Routes == nil || sl.Package == nil || !sl.Package.Host.EnableForwarding || hasPrefix(hd.path, "/admin/") {
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
	level := sl.Keys.Level(fn.Name, key)
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
	status, upClose, err := s.exchange(c, br, bw, hd, up, addr, clientIP, isHead, clientClose)
	if err != nil {
		up.close()
		if status == 0 {
			// Nothing was sent to the client yet: answer for the handler.
			if _, ok := set.Addr(); !ok {
				writeSimple(bw, http.StatusServiceUnavailable, "the function host is restarting; retry shortly", set.RetryAfter())
				status = http.StatusServiceUnavailable
			} else {
				writeSimple(bw, http.StatusBadGateway, "bad gateway: the function handler did not answer", 0)
				status = http.StatusBadGateway
				sl.log("host", "forwarding to the handler failed: "+err.Error())
			}
			bw.Flush()
		}
		if sl.Metrics != nil {
			sl.Metrics.Observe(status, time.Since(start))
		}
		return true, nil
	}
	if sl.Metrics != nil {
		sl.Metrics.Observe(status, time.Since(start))
	}
	if upClose {
		up.close()
	}
	return clientClose, nil
}

// exchange sends the request to the handler and relays its response. status
// is 0 while nothing was written to the client. upClose reports that the
// handler connection cannot be reused.
func (s *Server) exchange(c net.Conn, br *bufio.Reader, bw *bufio.Writer, hd *head, up *upstream, addr, clientIP string, isHead, clientClose bool) (status int, upClose bool, err error) {
	hasBody := hd.chunked || hd.length > 0
	// A kept-alive handler connection may have been closed by the handler
	// (Node.js closes idle ones after 5s). A request with a body cannot be
	// sent twice, so an idle connection is checked before it is used.
	if up.c != nil && up.addr == addr && hasBody && time.Since(up.used) > time.Second && !up.alive() {
		up.close()
	}
	fresh := false
	if up.c == nil || up.addr != addr {
		up.close()
		if err := up.dial(addr); err != nil {
			br.Discard(len(hd.raw))
			return 0, true, err
		}
		fresh = true
	}
	up.used = time.Now()
	writeRequestHead(up.bw, hd, clientIP)
	headLen := len(hd.raw)
	if !hasBody {
		// The head stays in the buffer after Discard until the next read
		// from the client, so it can be written again for one retry.
		br.Discard(headLen)
		err := up.bw.Flush()
		if err == nil {
			status, upClose, err = s.relayResponse(c, bw, up, hd, isHead, clientClose)
		}
		if err == nil || status != 0 || fresh {
			return status, upClose, err
		}
		// A kept-alive connection the handler closed: one retry on a new one.
		up.close()
		if err := up.dial(addr); err != nil {
			return 0, true, err
		}
		up.used = time.Now()
		writeRequestHead(up.bw, hd, clientIP)
		if err := up.bw.Flush(); err != nil {
			return 0, true, err
		}
		return s.relayResponse(c, bw, up, hd, isHead, clientClose)
	}
	br.Discard(headLen)
	// A body: sent while the response is read, so a handler that answers
	// as it reads (an echo) never waits on us.
	bodyErr := make(chan error, 1)
	small := !hd.chunked && hd.length <= int64(br.Buffered())
	if small {
		_, err := io.CopyN(up.bw, br, hd.length)
		if err == nil {
			err = up.bw.Flush()
		}
		if err != nil {
			return 0, true, err
		}
		bodyErr <- nil
	} else {
		go func() {
			var err error
			if hd.chunked {
				err = copyChunked(up.bw, br, func() error { return up.bw.Flush() })
			} else {
				err = spliceN(up.bw, up.c, br, c, hd.length)
			}
			if err == nil {
				err = up.bw.Flush()
			}
			bodyErr <- err
		}()
	}
	status, upClose, err = s.relayResponse(c, bw, up, hd, isHead, clientClose)
	if berr := <-bodyErr; berr != nil && err == nil {
		// The handler answered without reading the whole body: the client
		// connection is out of step, so it closes.
		return status, true, errBodyUnread
	}
	return status, upClose, err
}

var errBodyUnread = errors.New("request body not fully sent")

func (u *upstream) dial(addr string) error {
	c, err := dialer.Dial("tcp", addr)
	if err != nil {
		return err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	u.c, u.addr = c, addr
	u.br = readerPool.Get().(*bufio.Reader)
	u.br.Reset(c)
	u.bw = writerPool.Get().(*bufio.Writer)
	u.bw.Reset(c)
	return nil
}

// writeRequestHead writes the request head for the handler: the request
// line and headers as sent, less hop-by-hop headers, plus the forwarding
// headers and an invocation id.
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
	if len(hd.xff) > 0 {
		w.Write(hd.xff)
		w.WriteString(", ")
	}
	w.WriteString(clientIP)
	w.WriteString("\r\nX-Forwarded-Host: ")
	w.Write(hd.host)
	w.WriteString("\r\nX-Forwarded-Proto: http\r\nX-Azure-Functions-InvocationId: ")
	w.Write(fastInvocationID(&hd.scratch))
	w.WriteString("\r\n\r\n")
}

// relayResponse reads the handler's response and writes it to the client.
func (s *Server) relayResponse(c net.Conn, bw *bufio.Writer, up *upstream, hd *head, isHead, clientClose bool) (status int, upClose bool, err error) {
	var line []byte
	for {
		line, err = up.br.ReadSlice('\n')
		if err != nil {
			return 0, true, err
		}
		if len(line) < 12 || string(line[:7]) != "HTTP/1." {
			return 0, true, errBadResponse
		}
		code, ok := parseUint(line[9:12])
		if !ok || code < 100 || code > 999 {
			return 0, true, errBadResponse
		}
		status = int(code)
		if status >= 200 || status == 101 {
			break
		}
		// An interim 1xx: skip its headers and read the final response.
		for {
			l, err := up.br.ReadSlice('\n')
			if err != nil {
				return 0, true, err
			}
			if len(l) <= 2 {
				break
			}
		}
	}
	if status == 101 {
		return 0, true, errBadResponse // no upgrades on the lean path
	}
	upMinor := line[7]
	bw.Write(line)
	length := int64(-1)
	chunked := false
	upClose = upMinor == '0'
	for {
		l, err := up.br.ReadSlice('\n')
		if err != nil {
			return status, true, err
		}
		if len(l) <= 2 {
			break
		}
		colon := indexByteB(l, ':')
		if colon <= 0 {
			return status, true, errBadResponse
		}
		name := l[:colon]
		value := trimOWS(trimCRLF(l[colon+1:]))
		switch {
		case equalFold(name, "content-length"):
			n, ok := parseUint(value)
			if !ok || length >= 0 && n != length {
				return status, true, errBadResponse
			}
			length = n
			continue
		case equalFold(name, "transfer-encoding"):
			if !equalFold(value, "chunked") {
				return status, true, errBadResponse
			}
			chunked = true
			continue
		case equalFold(name, "connection"):
			if containsToken(value, "close") {
				upClose = true
			}
			if containsToken(value, "keep-alive") && upMinor == '0' {
				upClose = false
			}
			continue
		case equalFold(name, "keep-alive"), equalFold(name, "proxy-connection"), equalFold(name, "upgrade"):
			continue
		}
		bw.Write(l)
	}
	noBody := isHead || status == 204 || status == 304
	closeDelimited := !noBody && !chunked && length < 0
	if chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
		length = -1
	} else if length >= 0 {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(hd.scratch[:0], length, 10))
		bw.WriteString("\r\n")
	}
	if clientClose || closeDelimited {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	switch {
	case noBody:
	case chunked:
		err = copyChunked(bw, up.br, func() error { return flushIfIdle(bw, up.br) })
	case length >= 0:
		err = spliceN(bw, c, up.br, up.c, length)
	default:
		_, err = io.Copy(bw, up.br)
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
	if closeDelimited {
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

// spliceN copies n bytes of a body from src (whose socket is srcConn) to dst
// (whose socket is dstConn). Small bodies go through the buffers, flushed as
// they drain so streams keep flowing; large ones send what is buffered, then
// let the kernel move the rest between the sockets without copying it
// through user space.
func spliceN(dst *bufio.Writer, dstConn net.Conn, src *bufio.Reader, srcConn net.Conn, n int64) error {
	rf, ok := dstConn.(io.ReaderFrom)
	if n < spliceMin || !ok || int64(src.Buffered()) >= n {
		return copyNFlush(dst, src, n)
	}
	if b := src.Buffered(); b > 0 {
		if err := copyNFlush(dst, src, int64(b)); err != nil {
			return err
		}
		n -= int64(b)
	}
	if err := dst.Flush(); err != nil {
		return err
	}
	written, err := rf.ReadFrom(&io.LimitedReader{R: srcConn, N: n})
	if err == nil && written < n {
		err = io.ErrUnexpectedEOF
	}
	return err
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
		b, err := src.Peek(min(int(n), max(1, src.Buffered())))
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

// copyChunked copies a chunked body (chunks, last chunk, trailers) as it is.
func copyChunked(dst *bufio.Writer, src *bufio.Reader, flush func() error) error {
	for {
		line, err := src.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, ok := parseChunkSize(line)
		if !ok {
			return errBadChunk
		}
		dst.Write(line)
		if size == 0 {
			// Trailers, then the blank line.
			for {
				l, err := src.ReadSlice('\n')
				if err != nil {
					return err
				}
				dst.Write(l)
				if len(l) <= 2 {
					return flush()
				}
			}
		}
		if err := copyNFlush(dst, src, size+2); err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
	}
}

var errBadChunk = errors.New("malformed chunked body")

func parseChunkSize(line []byte) (int64, bool) {
	line = trimCRLF(line)
	if i := indexByteB(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = trimOWS(line)
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range line {
		switch {
		case '0' <= c && c <= '9':
			n = n<<4 | int64(c-'0')
		case 'a' <= c && c <= 'f':
			n = n<<4 | int64(c-'a'+10)
		case 'A' <= c && c <= 'F':
			n = n<<4 | int64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
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
