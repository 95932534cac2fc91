//go:build race

package router

import "syscall"

// Under the race detector the socket I/O goes through package syscall,
// whose Read and Write tell the detector that bytes written on one side
// are seen by the reader on the other (as net.Conn's do): tests that set
// state, then send a request, rely on it, and raw calls would hide it.

func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	return max(n, 0), errno(err)
}

func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	return max(n, 0), errno(err)
}

func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	return syscall.EIO
}

// sysSplice is splice(2) of up to n bytes, non-blocking on the pipe too.
func sysSplice(in, out uintptr, n int) (int, syscall.Errno) {
	m, err := syscall.Splice(int(in), nil, int(out), nil, n, spliceFlags)
	return max(int(m), 0), errno(err)
}
