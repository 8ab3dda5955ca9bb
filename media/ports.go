package media

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// portPair is one bound RTP socket (even port) and its RTCP socket (+1).
type portPair struct {
	port      int
	rtp, rtcp *net.UDPConn
}

// ports hands out even/odd UDP port pairs from a range, FIFO, with a
// quarantine before a released pair is reused.
type ports struct {
	addr       netip.Addr
	quarantine time.Duration
	sockBuf    int // SO_RCVBUF/SO_SNDBUF asked for; 0 keeps the kernel's
	now        func() time.Time

	mu    sync.Mutex
	queue []slot // FIFO; readiness is monotone in queue order
	inUse int
}

type slot struct {
	port    int
	readyAt time.Time
}

func newPorts(addr netip.Addr, lo, hi int, quarantine time.Duration, now func() time.Time) *ports {
	p := &ports{addr: addr, quarantine: quarantine, now: now}
	if lo%2 == 1 {
		lo++
	}
	for port := lo; port+1 <= hi; port += 2 {
		p.queue = append(p.queue, slot{port: port})
	}
	return p
}

// alloc binds the next ready pair. Ports another process holds are put
// back into quarantine and skipped.
func (p *ports) alloc() (portPair, error) {
	for range 16 {
		p.mu.Lock()
		if len(p.queue) == 0 || p.queue[0].readyAt.After(p.now()) {
			p.mu.Unlock()
			return portPair{}, unavailable(ErrNoPorts)
		}
		s := p.queue[0]
		p.queue = p.queue[1:]
		p.inUse++
		p.mu.Unlock()

		pp, err := p.bind(s.port)
		if err == nil {
			return pp, nil
		}
		p.free(s.port)
	}
	return portPair{}, unavailable(fmt.Errorf("%w: ports busy in other processes", ErrNoPorts))
}

func (p *ports) bind(port int) (portPair, error) {
	rtp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.addr, uint16(port))))
	if err != nil {
		return portPair{}, fmt.Errorf("media: bind %d: %w", port, err)
	}
	rtcp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.addr, uint16(port+1))))
	if err != nil {
		_ = rtp.Close()
		return portPair{}, fmt.Errorf("media: bind %d: %w", port+1, err)
	}
	if p.sockBuf > 0 { // best effort: the kernel caps it, a failure only means its default
		for _, c := range []*net.UDPConn{rtp, rtcp} {
			_ = c.SetReadBuffer(p.sockBuf)
			_ = c.SetWriteBuffer(p.sockBuf)
		}
	}
	return portPair{port: port, rtp: rtp, rtcp: rtcp}, nil
}

// release closes pp's sockets and queues its port behind the quarantine.
func (p *ports) release(pp portPair) {
	_ = pp.rtp.Close()
	_ = pp.rtcp.Close()
	p.free(pp.port)
}

func (p *ports) free(port int) {
	p.mu.Lock()
	p.queue = append(p.queue, slot{port: port, readyAt: p.now().Add(p.quarantine)})
	p.inUse--
	p.mu.Unlock()
}

func (p *ports) used() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inUse
}
