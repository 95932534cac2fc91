//go:build linux && !386

// Command loopproto is a measurement, not part of hotswap: the least a
// forwarding proxy written in Go can do per request, to tell how much of
// hotswap's data-plane cost is its own work and how much the runtime's way
// of waiting on sockets (issue 14, item 4; bench/profile-notes.md, "An
// event loop of our own, measured").
//
// It serves GET requests without bodies on one listener per loop
// (SO_REUSEPORT), forwards each to one upstream over kept-alive connections
// with the four headers hotswap adds, and relays answers framed by
// Content-Length that fit its buffer. Every socket is non-blocking and
// registered edge-triggered in the loop's own epoll instance; nothing goes
// through Go's network poller. Anything else closes the connection:
// pipelining, bodies, chunked answers, timeouts and errors are not handled.
//
// How a loop waits is the question it answers (-wait):
//
//	raw      epoll_wait in syscall.RawSyscall6, at most 10 ms: the loop keeps
//	         its P while the kernel has nothing for it
//	syscall  epoll_wait in syscall.EpollWait: the runtime is told, and
//	         sysmon may hand the P to another thread while it blocks
//	nested   epoll_wait with no timeout; when it finds nothing, the loop's
//	         epoll descriptor itself waits in Go's network poller
//
// Usage: go run ./bench/loopproto -listen 127.0.0.1:9107 -upstream 127.0.0.1:9101 [-wait raw] [-loops N]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

// forwarded stands for the headers hotswap adds to every request, so that
// the handler behind the prototype parses as much as behind hotswap.
var forwarded = []byte("X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Host: bench.localhost\r\nX-Forwarded-Proto: http\r\nX-Azure-Functions-InvocationId: 0123456789abcdef0123456789abcdef\r\n\r\n")

// conn is a client connection or a connection to the upstream. peer pairs
// them while a request is out.
type conn struct {
	fd       int
	upstream bool
	peer     *conn
	buf      []byte
	n        int
	need     int // upstream: length of the whole answer, -1 until its head is in
}

type loop struct {
	ep     int
	wait   string
	conns  map[int]*conn
	idle   []*conn
	up     syscall.SockaddrInet4
	events [256]syscall.EpollEvent
}

func recv(fd int, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	return int(n), e
}

func send(fd int, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), syscall.MSG_NOSIGNAL, 0, 0)
	return int(n), e
}

func (l *loop) add(c *conn) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | 1<<31 /* EPOLLET */, Fd: int32(c.fd)}
	if err := syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		return err
	}
	l.conns[c.fd] = c
	return nil
}

func (l *loop) close(c *conn) {
	if c == nil {
		return
	}
	delete(l.conns, c.fd)
	syscall.Close(c.fd)
}

// dial returns an idle upstream connection, or a new one (connected
// blocking, then made non-blocking: the prototype connects 64 times).
func (l *loop) dial() *conn {
	if n := len(l.idle); n > 0 {
		u := l.idle[n-1]
		l.idle = l.idle[:n-1]
		return u
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	if syscall.Connect(fd, &l.up) != nil || syscall.SetNonblock(fd, true) != nil {
		syscall.Close(fd)
		return nil
	}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	u := &conn{fd: fd, upstream: true, buf: make([]byte, 16<<10)}
	if l.add(u) != nil {
		syscall.Close(fd)
		return nil
	}
	return u
}

// fromClient reads a request head and sends it upstream.
func (l *loop) fromClient(c *conn) {
	for {
		n, e := recv(c.fd, c.buf[c.n:])
		if e == syscall.EAGAIN {
			return
		}
		if e != 0 || n == 0 || c.peer != nil {
			l.close(c)
			return
		}
		c.n += n
		end := bytes.Index(c.buf[:c.n], []byte("\r\n\r\n"))
		if end < 0 {
			if c.n == len(c.buf) {
				l.close(c)
				return
			}
			continue
		}
		u := l.dial()
		if u == nil {
			l.close(c)
			return
		}
		u.peer, c.peer = c, u
		u.n, u.need = 0, -1
		req := append(c.buf[:end+2], forwarded...)
		if m, e := send(u.fd, req); e != 0 || m != len(req) {
			l.close(u)
			l.close(c)
			return
		}
		c.n = 0
		return
	}
}

// fromUpstream reads an answer and relays it whole.
func (l *loop) fromUpstream(u *conn) {
	c := u.peer
	for {
		n, e := recv(u.fd, u.buf[u.n:])
		if e == syscall.EAGAIN {
			return
		}
		if e != 0 || n == 0 || c == nil {
			l.close(u)
			l.close(c)
			return
		}
		u.n += n
		if u.need < 0 {
			end := bytes.Index(u.buf[:u.n], []byte("\r\n\r\n"))
			if end < 0 {
				continue
			}
			i := bytes.Index(u.buf[:end], []byte("\r\nContent-Length: "))
			if i < 0 {
				l.close(u)
				l.close(c)
				return
			}
			j := bytes.IndexByte(u.buf[i+2:end+2], '\r')
			cl, err := strconv.Atoi(string(u.buf[i+18 : i+2+j]))
			if err != nil || end+4+cl > len(u.buf) {
				l.close(u)
				l.close(c)
				return
			}
			u.need = end + 4 + cl
		}
		if u.n < u.need {
			continue
		}
		if m, e := send(c.fd, u.buf[:u.need]); e != 0 || m != u.need {
			l.close(c)
		} else {
			c.peer = nil
		}
		u.peer, u.n = nil, 0
		l.idle = append(l.idle, u)
		return
	}
}

// poll waits up to wait ms (-1: for ever) and handles what it finds.
func (l *loop) poll(lfd, wait int, raw bool) int {
	var n int
	if raw {
		r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(l.ep), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), uintptr(wait), 0, 0)
		if e == syscall.EINTR {
			return 0
		}
		if e != 0 {
			log.Fatal(os.NewSyscallError("epoll_pwait", e))
		}
		n = int(r)
	} else {
		var err error
		n, err = syscall.EpollWait(l.ep, l.events[:], wait)
		if err == syscall.EINTR {
			return 0
		}
		if err != nil {
			log.Fatal(os.NewSyscallError("epoll_wait", err))
		}
	}
	for _, ev := range l.events[:n] {
		fd := int(ev.Fd)
		if fd == lfd {
			for {
				nfd, _, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
				if err != nil {
					break
				}
				syscall.SetsockoptInt(nfd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
				if l.add(&conn{fd: nfd, buf: make([]byte, 8<<10)}) != nil {
					syscall.Close(nfd)
				}
			}
			continue
		}
		switch c := l.conns[fd]; {
		case c == nil:
		case c.upstream:
			l.fromUpstream(c)
		default:
			l.fromClient(c)
		}
	}
	return n
}

func (l *loop) run(lfd int) {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(lfd)}
	if err := syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, lfd, &ev); err != nil {
		log.Fatal(err)
	}
	switch l.wait {
	case "raw":
		for {
			l.poll(lfd, 10, true)
		}
	case "syscall":
		for {
			l.poll(lfd, -1, false)
		}
	}
	// nested: an epoll descriptor is readable while events are pending.
	if err := syscall.SetNonblock(l.ep, true); err != nil {
		log.Fatal(err)
	}
	rc, err := os.NewFile(uintptr(l.ep), "epoll").SyscallConn()
	if err != nil {
		log.Fatal(err)
	}
	for {
		err := rc.Read(func(uintptr) bool {
			for l.poll(lfd, 0, true) > 0 {
			}
			return false
		})
		if err != nil {
			log.Fatal(err)
		}
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9107", "address to serve on")
	upstream := flag.String("upstream", "127.0.0.1:9101", "the handler's address")
	wait := flag.String("wait", "raw", "how a loop waits: raw, syscall or nested")
	loops := flag.Int("loops", runtime.GOMAXPROCS(0), "event loops, each with its own listener")
	flag.Parse()
	la, err := netip.ParseAddrPort(*listen)
	if err != nil || !la.Addr().Is4() {
		log.Fatalf("-listen %q: want an IPv4 address and port", *listen)
	}
	ua, err := netip.ParseAddrPort(*upstream)
	if err != nil || !ua.Addr().Is4() {
		log.Fatalf("-upstream %q: want an IPv4 address and port", *upstream)
	}
	if *wait != "raw" && *wait != "syscall" && *wait != "nested" {
		log.Fatalf("-wait %q: want raw, syscall or nested", *wait)
	}
	for range max(*loops, 1) {
		lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			log.Fatal(err)
		}
		syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
		if err := syscall.Bind(lfd, &syscall.SockaddrInet4{Port: int(la.Port()), Addr: la.Addr().As4()}); err != nil {
			log.Fatal(fmt.Errorf("bind %s: %w", la, err))
		}
		if err := syscall.Listen(lfd, 1024); err != nil {
			log.Fatal(err)
		}
		ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			log.Fatal(err)
		}
		l := &loop{ep: ep, wait: *wait, conns: map[int]*conn{}, up: syscall.SockaddrInet4{Port: int(ua.Port()), Addr: ua.Addr().As4()}}
		go l.run(lfd)
	}
	select {}
}
