package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/convergo/convergo/media/sdes"
	"github.com/pion/sdp/v3"
)

// callAttr is the session-level SDP attribute naming the run and the call
// index ("a=x-mediaload:<run> <index>"). The B2BUA and the relay carry
// session attributes across untouched, so the callee learns which call an
// INVITE belongs to from its offer.
const callAttr = "x-mediaload"

// maxSDP caps an SDP body the tool parses (outside input).
const maxSDP = 16 << 10

// sdpInfo is what the tool needs from a peer's SDP: where to send, in
// which profile, with which key, and which call it is.
type sdpInfo struct {
	Run    string         // run id from a=x-mediaload; "" without it
	Index  int            // call index from a=x-mediaload; -1 without it
	Addr   netip.Addr     // c= of the audio m-line (media level, else session)
	Port   int            // m=audio port
	Proto  string         // RTP/AVP, RTP/SAVP, RTP/AVPF or RTP/SAVPF
	Crypto []sdes.Crypto  // a=crypto lines with a supported suite, in order
	Peer   netip.AddrPort // Addr:Port
}

// secure reports whether the profile is SRTP.
func (s sdpInfo) secure() bool { return strings.Contains(s.Proto, "SAVP") }

// parseSDP extracts the first RTP audio m-line of body.
func parseSDP(body []byte) (sdpInfo, error) {
	info := sdpInfo{Index: -1}
	if len(body) == 0 {
		return info, fmt.Errorf("%w: no body", errSDP)
	}
	if len(body) > maxSDP {
		return info, fmt.Errorf("%w: body of %d bytes, at most %d", errSDP, len(body), maxSDP)
	}
	var s sdp.SessionDescription
	if err := s.Unmarshal(body); err != nil {
		return info, fmt.Errorf("%w: %w", errSDP, err)
	}
	for _, a := range s.Attributes {
		if a.Key != callAttr {
			continue
		}
		run, idx, ok := strings.Cut(a.Value, " ")
		n, err := strconv.Atoi(idx)
		if !ok || err != nil || n < 0 || n >= maxCalls || run == "" {
			return info, fmt.Errorf("%w: a=%s:%q", errSDP, callAttr, a.Value)
		}
		info.Run, info.Index = run, n
		break
	}
	var sess netip.Addr
	if s.ConnectionInformation != nil {
		a, err := connAddr(s.ConnectionInformation)
		if err != nil {
			return info, err
		}
		sess = a
	}
	for _, md := range s.MediaDescriptions {
		proto := strings.Join(md.MediaName.Protos, "/")
		switch proto {
		case "RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF":
		default:
			continue
		}
		if md.MediaName.Media != "audio" {
			continue
		}
		info.Proto = proto
		info.Port = md.MediaName.Port.Value
		if info.Port < 1 || info.Port > 65535 {
			return info, fmt.Errorf("%w: m=audio port %d", errSDP, info.Port)
		}
		info.Addr = sess
		if md.ConnectionInformation != nil {
			a, err := connAddr(md.ConnectionInformation)
			if err != nil {
				return info, err
			}
			info.Addr = a
		}
		if !info.Addr.IsValid() || info.Addr.IsUnspecified() {
			return info, fmt.Errorf("%w: m=audio without a usable c= address", errSDP)
		}
		info.Peer = netip.AddrPortFrom(info.Addr, uint16(info.Port))
		for _, a := range md.Attributes {
			if a.Key != "crypto" {
				continue
			}
			if c, err := sdes.Parse(a.Value); err == nil {
				info.Crypto = append(info.Crypto, c)
			}
		}
		if info.secure() && len(info.Crypto) == 0 {
			return info, fmt.Errorf("%w: %s without a supported a=crypto", errSDP, proto)
		}
		return info, nil
	}
	return info, fmt.Errorf("%w: no RTP audio m-line", errSDP)
}

func connAddr(c *sdp.ConnectionInformation) (netip.Addr, error) {
	if c.Address == nil {
		return netip.Addr{}, fmt.Errorf("%w: c= without address", errSDP)
	}
	host, _, _ := strings.Cut(c.Address.Address, "/")
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: c= address %q is not an IP", errSDP, c.Address.Address)
	}
	return a.Unmap(), nil
}

// buildSDP writes the tool's offer or answer: one PCMU audio stream at
// at, RTP/SAVP with key when key is not nil. A run id marks an offer.
func buildSDP(at netip.AddrPort, run string, index int, key *sdes.Crypto) []byte {
	ipv := "IP4"
	if at.Addr().Is6() {
		ipv = "IP6"
	}
	proto := "RTP/AVP"
	if key != nil {
		proto = "RTP/SAVP"
	}
	var b strings.Builder
	b.Grow(320)
	fmt.Fprintf(&b, "v=0\r\no=mediaload %d 1 IN %s %s\r\ns=mediaload\r\nc=IN %s %s\r\nt=0 0\r\n",
		index+1, ipv, at.Addr(), ipv, at.Addr())
	if run != "" {
		fmt.Fprintf(&b, "a=%s:%s %d\r\n", callAttr, run, index)
	}
	fmt.Fprintf(&b, "m=audio %d %s 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n", at.Port(), proto)
	if key != nil {
		b.WriteString("a=crypto:" + key.String() + "\r\n")
	}
	return []byte(b.String())
}
