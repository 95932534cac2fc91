//go:build !race && !386

package router

import "syscall"

// The system calls rawIO reads and writes sockets with (see sysRead).
const (
	sysRecv = syscall.SYS_RECVFROM
	sysSend = syscall.SYS_SENDTO
)
