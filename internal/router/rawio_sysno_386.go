//go:build !race && 386

package router

import "syscall"

// linux/386 has no recvfrom(2) or sendto(2) of their own (they go through
// socketcall(2)): read(2) and write(2) do, ignoring the flags argument.
const (
	sysRecv = syscall.SYS_READ
	sysSend = syscall.SYS_WRITE
)
