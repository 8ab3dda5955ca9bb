package media

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/convergo/convergo/media/sdes"
	"github.com/pion/sdp/v3"
)

// maxMedia caps the m-lines of one SDP (ports are finite).
const maxMedia = 16

// mediaInfo is what one m-line of a peer's SDP tells the relay.
type mediaInfo struct {
	port     int  // 0 = rejected / disabled
	rtp      bool // RTP/AVP, RTP/AVPF, RTP/SAVP or RTP/SAVPF: the relay anchors it
	secure   bool // SAVP/SAVPF profile
	feedback bool // AVPF/SAVPF
	addr     netip.Addr
	rtcp     netip.AddrPort // from a=rtcp, else port+1
	mux      bool
	cryptos  []sdes.Crypto // supported lines, offer order
	dir      string        // sendrecv, sendonly, recvonly, inactive
}

func (m mediaInfo) peer() *peer {
	p := &peer{rtcp: m.rtcp}
	if m.addr.IsValid() && !m.addr.IsUnspecified() && m.port > 0 {
		p.rtp = netip.AddrPortFrom(m.addr, uint16(m.port))
	} else {
		p.rtcp = netip.AddrPort{}
	}
	return p
}

func (m mediaInfo) onHold() bool {
	return m.dir != "sendrecv" || m.addr.IsUnspecified()
}

// parseSDP parses body and extracts what the relay needs per m-line.
// Errors are 488s with a reason.
func parseSDP(body []byte) (*sdp.SessionDescription, []mediaInfo, error) {
	var s sdp.SessionDescription
	if err := s.Unmarshal(body); err != nil {
		return nil, nil, notAcceptable("parse: %v", err)
	}
	if len(s.MediaDescriptions) == 0 {
		return nil, nil, notAcceptable("no m= line")
	}
	if len(s.MediaDescriptions) > maxMedia {
		return nil, nil, notAcceptable("%d m= lines, at most %d", len(s.MediaDescriptions), maxMedia)
	}
	var sessAddr netip.Addr
	if s.ConnectionInformation != nil {
		a, err := connAddr(s.ConnectionInformation)
		if err != nil {
			return nil, nil, err
		}
		sessAddr = a
	}
	sessDir := direction(s.Attributes, "sendrecv")
	infos := make([]mediaInfo, len(s.MediaDescriptions))
	for i, md := range s.MediaDescriptions {
		mi := &infos[i]
		mi.port = md.MediaName.Port.Value
		if mi.port < 0 || mi.port > 65535 {
			return nil, nil, notAcceptable("m-line %d: port %d", i, mi.port)
		}
		proto := strings.Join(md.MediaName.Protos, "/")
		switch proto {
		case "RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF":
			mi.rtp = true
			mi.secure = strings.Contains(proto, "SAVP")
			mi.feedback = strings.HasSuffix(proto, "F")
		}
		mi.addr = sessAddr
		if md.ConnectionInformation != nil {
			a, err := connAddr(md.ConnectionInformation)
			if err != nil {
				return nil, nil, err
			}
			mi.addr = a
		}
		if mi.port != 0 && mi.rtp && !mi.addr.IsValid() {
			return nil, nil, notAcceptable("m-line %d: no c= line", i)
		}
		mi.dir = direction(md.Attributes, sessDir)
		if mi.port > 0 && mi.port < 65535 {
			mi.rtcp = netip.AddrPortFrom(mi.addr, uint16(mi.port+1))
		}
		for _, a := range md.Attributes {
			switch a.Key {
			case "rtcp-mux":
				mi.mux = true
			case "rtcp":
				f := strings.Fields(a.Value)
				p, err := strconv.Atoi(firstOr(f, ""))
				if err != nil || p < 1 || p > 65535 {
					return nil, nil, notAcceptable("m-line %d: a=rtcp:%q", i, a.Value)
				}
				addr := mi.addr
				if len(f) >= 4 {
					if x, err := netip.ParseAddr(f[3]); err == nil {
						addr = x
					}
				}
				mi.rtcp = netip.AddrPortFrom(addr, uint16(p))
			case "crypto":
				c, err := sdes.Parse(a.Value)
				if err != nil {
					continue // unsupported suites are skipped; the choice is the caller's
				}
				mi.cryptos = append(mi.cryptos, c)
			}
		}
		if mi.secure && mi.port != 0 && len(mi.cryptos) == 0 {
			return nil, nil, notAcceptable("m-line %d: %s without a supported a=crypto", i, proto)
		}
	}
	return &s, infos, nil
}

func connAddr(c *sdp.ConnectionInformation) (netip.Addr, error) {
	if c.Address == nil {
		return netip.Addr{}, notAcceptable("c= line without address")
	}
	host, _, _ := strings.Cut(c.Address.Address, "/")
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, notAcceptable("c= address %q is not an IP", c.Address.Address)
	}
	return a.Unmap(), nil
}

func direction(attrs []sdp.Attribute, def string) string {
	for _, a := range attrs {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			return a.Key
		}
	}
	return def
}

func firstOr(f []string, def string) string {
	if len(f) == 0 {
		return def
	}
	return f[0]
}

// mediaOut is how the relay rewrites one m-line.
type mediaOut struct {
	port    int // 0 = rejected
	secure  bool
	mux     bool
	cryptos []sdes.Crypto
	rewrite bool // false: an m-line we do not relay: left as it is (port too)
}

// rewriteSDP points s at the relay: o= bumped, c= and ports ours,
// a=rtcp, a=rtcp-mux and a=crypto replaced; codecs and everything else
// untouched; m-line count and order kept.
func rewriteSDP(s *sdp.SessionDescription, adv netip.Addr, outs []mediaOut) ([]byte, error) {
	addrType := "IP4"
	if adv.Is6() {
		addrType = "IP6"
	}
	s.Origin.SessionVersion++
	s.Origin.AddressType = addrType
	s.Origin.UnicastAddress = adv.String()
	if orig := s.ConnectionInformation; orig != nil {
		// m-lines we do not relay keep the device's address.
		for i, md := range s.MediaDescriptions {
			if !outs[i].rewrite && md.ConnectionInformation == nil {
				c := *orig
				md.ConnectionInformation = &c
			}
		}
		s.ConnectionInformation = &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType,
			Address: &sdp.Address{Address: adv.String()}}
	}
	for i, md := range s.MediaDescriptions {
		o := outs[i]
		md.MediaName.Port = sdp.RangedPort{Value: o.port}
		if !o.rewrite {
			continue
		}
		if md.ConnectionInformation != nil || s.ConnectionInformation == nil {
			md.ConnectionInformation = &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType,
				Address: &sdp.Address{Address: adv.String()}}
		}
		prof := "AVP"
		if o.secure {
			prof = "SAVP"
		}
		if len(md.MediaName.Protos) == 2 && strings.HasSuffix(md.MediaName.Protos[1], "F") {
			prof += "F"
		}
		md.MediaName.Protos = []string{"RTP", prof}
		attrs := md.Attributes[:0:0]
		for _, a := range md.Attributes {
			switch a.Key {
			case "rtcp", "rtcp-mux", "crypto":
				continue
			}
			attrs = append(attrs, a)
		}
		if o.port != 0 {
			attrs = append(attrs, sdp.NewAttribute("rtcp", strconv.Itoa(o.port+1)))
			if o.mux {
				attrs = append(attrs, sdp.NewPropertyAttribute("rtcp-mux"))
			}
			for _, c := range o.cryptos {
				attrs = append(attrs, sdp.NewAttribute("crypto", c.String()))
			}
		}
		md.Attributes = attrs
	}
	out, err := s.Marshal()
	if err != nil {
		return nil, notAcceptable("marshal: %v", err)
	}
	return out, nil
}
