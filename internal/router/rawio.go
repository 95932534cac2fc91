package router

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a socket of the lean path with raw, non-blocking
// system calls made inside the connection's RawConn.Read and Write, which
// hold the descriptor against a concurrent Close and wait on the runtime's
// poller when the socket is not ready, as net.Conn's own Read and Write do.
//
// What differs is the call: syscall.RawSyscall does not tell the runtime
// that the goroutine entered a system call. On loopback a write(2) runs
// the receiver's TCP path too and takes microseconds, long enough for the
// runtime's monitor thread (sysmon) to see the processor "in a system
// call", take it away and hand it to another thread, which then has to be
// woken; the writer, back from the kernel, finds its processor gone and
// parks its thread. Profiles of the lean path under load had that monitor
// at 9% of the server's CPU and the scheduler's hand-offs at another 8%
// (bench/profile-notes.md). The sockets are non-blocking, so these calls
// never block: EAGAIN goes to the poller, as in package net.
//
// A rawIO serves one goroutine at a time for reads and one for writes,
// like the connection's own locks allow; its method values are made once,
// so a call allocates nothing.
type rawIO struct {
	c  net.Conn
	rc syscall.RawConn // nil: use c's Read and Write

	rp   []byte
	rn   int
	rerr error
	rfn  func(fd uintptr) bool

	wp   []byte
	wn   int
	werr error
	wfn  func(fd uintptr) bool

	// Splices: into a pipe under the read side, out of one under the
	// write side, so a body can come in while another goes out.
	sp     *splicePipe
	sn     int
	sres   int
	serr   error
	sinFn  func(fd uintptr) bool
	wsp    *splicePipe
	wserr  error
	soutFn func(fd uintptr) bool

	// awaitReply, while set, makes Write wait until the socket has
	// something to read before it returns (see writeAwait); await is
	// the state of writeAwait's callback.
	awaitReply bool
	await      int
	awaitFn    func(fd uintptr) bool
}

// sendQueue returns the bytes in the socket's send queue that the peer
// has not acknowledged (SIOCOUTQ): it shrinks as the peer reads.
func (r *rawIO) sendQueue() (int, bool) {
	if r.rc == nil {
		return 0, false
	}
	return sendQueue(r.rc)
}

// sendQueue returns the bytes in rc's send queue that the peer has not
// acknowledged.
func sendQueue(rc syscall.RawConn) (int, bool) {
	var q int32
	var e syscall.Errno
	err := rc.Control(func(fd uintptr) {
		_, _, e = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&q)))
	})
	if err != nil || e != 0 {
		return 0, false
	}
	return int(q), true
}

// init sets r up for c; a connection that has no descriptor (a pipe in
// tests, a wrapper) is read and written through c.
func (r *rawIO) init(c net.Conn) {
	*r = rawIO{c: c}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	r.rc = rc
	r.rfn = r.readFD
	r.wfn = r.writeFD
	r.sinFn = r.spliceInFD
	r.soutFn = r.spliceOutFD
	r.awaitFn = r.awaitFD
}

func (r *rawIO) Read(p []byte) (int, error) {
	if r.rc == nil {
		return r.c.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	r.rp, r.rn, r.rerr = p, 0, nil
	err := r.rc.Read(r.rfn)
	r.rp = nil
	if err != nil {
		return 0, opName(err, "read") // closed, or the read deadline passed
	}
	return r.rn, r.rerr
}

func (r *rawIO) readFD(fd uintptr) bool {
	for {
		n, e := sysRead(fd, r.rp)
		switch e {
		case 0:
			r.rn = int(n)
			if n == 0 {
				r.rerr = io.EOF
			}
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait on the poller, then try again
		}
		r.rerr = &net.OpError{Op: "read", Net: "tcp", Addr: r.c.RemoteAddr(), Err: os.NewSyscallError("read", e)}
		return true
	}
}

func (r *rawIO) Write(p []byte) (int, error) {
	if r.rc == nil {
		return r.c.Write(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.awaitReply {
		if n, ok, err := r.writeAwait(p); ok {
			return n, err
		}
	}
	return r.writePlain(p)
}

func (r *rawIO) writePlain(p []byte) (int, error) {
	r.wp, r.wn, r.werr = p, 0, nil
	err := r.rc.Write(r.wfn)
	n := r.wn
	r.wp = nil
	if err != nil {
		return n, opName(err, "write")
	}
	return n, r.werr
}

// writeAwait writes p from inside RawConn.Read, then waits there until
// the socket is readable: the reply to what was written has come (or the
// peer closed, or the read deadline passed). Written after the read side
// is prepared for waiting, the request cannot be answered before the wait
// begins, so no readiness is lost, and the wait needs no read that finds
// nothing first (package net tries one, EAGAIN, before it parks): a reply
// costs one read(2), not two. Only for a peer that sends nothing unasked
// (a handler): a client may have sent its next request already.
//
// The peer must answer, or reset the connection, or a read deadline
// must be armed: readiness that came before the wait (an end of file, or
// bytes the peer sent unasked) is not seen until something new arrives.
// Nothing else may be reading the connection meanwhile.
//
// ok is false when nothing was written (the read side was closed or its
// deadline had passed): the caller writes the usual way.
func (r *rawIO) writeAwait(p []byte) (n int, ok bool, err error) {
	r.wp, r.wn, r.werr, r.await = p, 0, nil, 0
	r.rc.Read(r.awaitFn) // a deadline or close while waiting: the reader meets it next
	n, err, written := r.wn, r.werr, r.await != 0
	r.wp = nil
	switch {
	case err != nil:
		return n, true, opName(err, "write")
	case !written:
		return 0, false, nil
	case n < len(p): // the socket's buffer is full: the rest goes the usual way
		m, err := r.writePlain(p[n:])
		return n + m, true, err
	}
	return n, true, nil
}

func (r *rawIO) awaitFD(fd uintptr) bool {
	if r.await != 0 {
		return true // readable: the reader takes it from here
	}
	r.await = 1
	for r.wn < len(r.wp) {
		n, e := sysWrite(fd, r.wp[r.wn:])
		switch e {
		case 0:
			r.wn += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return true // not all written: no waiting for a reply yet
		default:
			r.werr = &net.OpError{Op: "write", Net: "tcp", Addr: r.c.RemoteAddr(), Err: os.NewSyscallError("write", e)}
			return true
		}
	}
	return false // written: wait until the reply is readable
}

func (r *rawIO) writeFD(fd uintptr) bool {
	for r.wn < len(r.wp) {
		n, e := sysWrite(fd, r.wp[r.wn:])
		switch e {
		case 0:
			r.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // the socket's buffer is full: wait on the poller
		default:
			r.werr = &net.OpError{Op: "write", Net: "tcp", Addr: r.c.RemoteAddr(), Err: os.NewSyscallError("write", e)}
			return true
		}
	}
	return true
}

// opName names err's operation op, as net.Conn's Read and Write do
// ("raw-read" and "raw-write" for RawConn's): net/http, serving handed-off
// connections, tells a closed connection's read by it.
func opName(err error, op string) error {
	if oe, ok := err.(*net.OpError); ok {
		oe.Op = op
	}
	return err
}

// spliceIn moves up to n bytes from r's socket into p, waiting on the
// poller until some are there. 0 bytes with no error is the peer's EOF.
func (r *rawIO) spliceIn(p *splicePipe, n int) (int, error) {
	r.sp, r.sn, r.sres, r.serr = p, n, 0, nil
	err := r.rc.Read(r.sinFn)
	r.sp = nil
	if err != nil {
		return 0, err
	}
	return r.sres, r.serr
}

func (r *rawIO) spliceInFD(fd uintptr) bool {
	for {
		n, e := sysSplice(fd, uintptr(r.sp.w), r.sn)
		switch e {
		case 0:
			r.sres = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // nothing to read (the pipe is empty): wait
		}
		r.serr = &net.OpError{Op: "splice", Net: "tcp", Addr: r.c.RemoteAddr(), Err: os.NewSyscallError("splice", e)}
		return true
	}
}

// spliceOut moves everything in p to w's socket, waiting on the poller
// while the socket's buffer is full.
func (w *rawIO) spliceOut(p *splicePipe) error {
	w.wsp, w.wserr = p, nil
	err := w.rc.Write(w.soutFn)
	w.wsp = nil
	if err == nil {
		err = w.wserr
	}
	return err
}

func (w *rawIO) spliceOutFD(fd uintptr) bool {
	p := w.wsp
	for p.data > 0 {
		n, e := sysSplice(uintptr(p.r), fd, p.data)
		switch e {
		case 0:
			if n == 0 {
				w.wserr = io.ErrUnexpectedEOF // the pipe said it held more
				return true
			}
			p.data -= n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // the socket's buffer is full: wait
		default:
			w.wserr = &net.OpError{Op: "splice", Net: "tcp", Addr: w.c.RemoteAddr(), Err: os.NewSyscallError("splice", e)}
			return true
		}
	}
	return true
}

// splicePipe is a pipe(2) that bodies are spliced through, socket to
// pipe to socket, without coming to user space. data is what it holds.
type splicePipe struct {
	r, w int
	data int
}

// pipeCap is what a pipe holds by default (16 pages): the most one
// splice into it moves.
const pipeCap = 64 << 10

// pipes keeps splicePipes for reuse; one the pool drops is closed by its
// finalizer (as package net's own splice pipes are).
var pipes = sync.Pool{New: func() any {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return nil
	}
	p := &splicePipe{r: fds[0], w: fds[1]}
	runtime.SetFinalizer(p, (*splicePipe).close)
	return p
}}

func getPipe() *splicePipe {
	p, _ := pipes.Get().(*splicePipe)
	return p
}

// putPipe gives p back for reuse when it is empty, and closes it when a
// failed splice left bytes in it.
func putPipe(p *splicePipe) {
	if p.data != 0 {
		runtime.SetFinalizer(p, nil)
		p.close()
		return
	}
	pipes.Put(p)
}

func (p *splicePipe) close() {
	syscall.Close(p.r)
	syscall.Close(p.w)
}
