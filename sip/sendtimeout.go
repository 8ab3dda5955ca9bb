package sip

import (
	"net"
	"time"
)

// sendTimeoutListener hands out connections whose every write must finish
// within d. sipgo writes without a deadline, so a peer that stops reading
// its connection (its buffers full) would block the writing goroutine for
// good: a B2BUA call runner, or a handler. After d the write fails, the
// transaction gets a transport error and the call ends for that leg, as
// with Kamailio's tcp_send_timeout. It covers the connections devices open
// to us, which is where an unresponsive or hostile peer sits.
type sendTimeoutListener struct {
	net.Listener
	d time.Duration
}

func (l sendTimeoutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sendTimeoutConn{Conn: c, d: l.d}, nil
}

// sendTimeoutConn sets a write deadline before each write.
type sendTimeoutConn struct {
	net.Conn
	d time.Duration
}

func (c *sendTimeoutConn) Write(b []byte) (int, error) {
	if err := c.SetWriteDeadline(time.Now().Add(c.d)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}
