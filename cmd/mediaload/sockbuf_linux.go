package main

import (
	"net"
	"syscall"
)

// socketBuffers reads back the buffer sizes the kernel granted c. Linux
// reports twice the size it accepted (the rest is its bookkeeping), and
// accepts at most net.core.rmem_max/wmem_max: halved, this compares with
// what was asked.
func socketBuffers(c *net.UDPConn) sockBuf {
	var b sockBuf
	rc, err := c.SyscallConn()
	if err != nil {
		return b
	}
	_ = rc.Control(func(fd uintptr) {
		b.Read, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		b.Write, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	})
	b.Read /= 2
	b.Write /= 2
	return b
}
