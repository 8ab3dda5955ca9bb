//go:build linux

package sip

import (
	"net"
	"syscall"
)

// setSocketBuffers asks for n-byte receive and send buffers on c and
// returns what the kernel granted. SO_RCVBUFFORCE/SO_SNDBUFFORCE go past
// net.core.rmem_max/wmem_max (212,992 bytes on a stock Debian) when the
// process may (CAP_NET_ADMIN: root), as Kamailio's udp buffer probing
// does; otherwise the kernel caps the request at them.
func setSocketBuffers(c *net.UDPConn, n int) (read, write int) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0
	}
	_ = rc.Control(func(fd uintptr) {
		if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n) != nil {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		}
		if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, n) != nil {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, n)
		}
		// Linux reports twice what it accepted (the rest is bookkeeping).
		read, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		write, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	})
	return read / 2, write / 2
}
