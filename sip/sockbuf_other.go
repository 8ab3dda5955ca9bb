//go:build !linux

package sip

import "net"

// setSocketBuffers asks for n-byte receive and send buffers on c; the
// granted sizes are not known here.
func setSocketBuffers(c *net.UDPConn, n int) (read, write int) {
	_ = c.SetReadBuffer(n)
	_ = c.SetWriteBuffer(n)
	return 0, 0
}
