package router

import (
	"io"
	"net"
	"os"
	"syscall"
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
		return 0, err // closed, or the read deadline passed
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
	r.wp, r.wn, r.werr = p, 0, nil
	err := r.rc.Write(r.wfn)
	n := r.wn
	r.wp = nil
	if err == nil {
		err = r.werr
	}
	return n, err
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
