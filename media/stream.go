package media

import (
	"sync/atomic"

	"github.com/convergo/convergo/media/sdes"
	"github.com/pion/srtp/v3"
)

// stream is one anchored m-line of a pair: side A's and side B's endpoint
// plus the SDES state of each side. The key fields are control-plane state
// guarded by the owning call's mutex.
type stream struct {
	ends [2]*endpoint
	hold atomic.Bool

	remote [2]*sdes.Crypto           // the device's send key, per side (decrypt)
	local  [2]*sdes.Crypto           // our send key towards the device, per side
	ours   [2]map[string]sdes.Crypto // our keys per suite, reused across re-offers
	secure [2]bool                   // the device's profile is SAVP
	known  [2]bool                   // secure is settled by an answer
	pubIn  [2]*sdes.Crypto           // remote keys the forwarders use now
	pubOut [2]*sdes.Crypto           // local keys the forwarders use now
}

// defaultSuites are offered when policy force meets a plain caller.
var defaultSuites = []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"}

// key returns our key for suite on side, generating it once per stream
// and side: a fork never sees another fork's or the caller's key.
func (st *stream) key(side int, suite sdes.Suite, tag uint32) (sdes.Crypto, error) {
	if st.ours[side] == nil {
		st.ours[side] = make(map[string]sdes.Crypto)
	}
	c, ok := st.ours[side][suite.Name]
	if !ok {
		var err error
		if c, err = sdes.Generate(tag, suite); err != nil {
			return sdes.Crypto{}, err
		}
		st.ours[side][suite.Name] = c
	}
	c.Tag = tag
	return c, nil
}

// offerKeys decides the profile and a=crypto lines offered to side to.
func (st *stream) offerKeys(to int, mi mediaInfo, policy string) (bool, []sdes.Crypto, error) {
	if to == sideA {
		// Re-offer towards the caller: keep its profile and our active key.
		if l := st.local[sideA]; l != nil {
			return st.secure[sideA], []sdes.Crypto{*l}, nil
		}
		if st.known[sideA] {
			return st.secure[sideA], nil, nil
		}
		policy = PolicyPass // delayed offer: mirror the fork towards the caller
	}
	secure, src := mi.secure, mi.cryptos
	switch policy {
	case PolicyStrip:
		return false, nil, nil
	case PolicyForce:
		secure = true
		if len(src) == 0 {
			for i, name := range defaultSuites {
				s, _ := sdes.LookupSuite(name)
				src = append(src, sdes.Crypto{Tag: uint32(i + 1), Suite: s})
			}
		}
	}
	out := make([]sdes.Crypto, 0, len(src))
	for _, c := range src {
		k, err := st.key(to, c.Suite, c.Tag)
		if err != nil {
			return false, nil, err
		}
		out = append(out, k)
	}
	return secure, out, nil
}

// answerKeys settles both sides' keys once the answer is known.
func (st *stream) answerKeys(off, ans int, oi, ai mediaInfo, offered []sdes.Crypto, secureOut bool) error {
	st.remote[ans], st.local[ans] = nil, nil
	if len(offered) > 0 {
	match:
		for _, c := range ai.cryptos {
			for _, o := range offered {
				if o.Tag == c.Tag && o.Suite.Name == c.Suite.Name {
					c, o := c, o
					st.remote[ans], st.local[ans] = &c, &o
					break match
				}
			}
		}
		if st.remote[ans] == nil && secureOut {
			return notAcceptable("answer has no a=crypto matching an offered tag and suite")
		}
	}
	st.secure[ans], st.known[ans], st.known[off] = ai.secure, true, true
	if len(oi.cryptos) == 0 {
		st.remote[off], st.local[off] = nil, nil
		st.secure[off] = oi.secure
		return nil
	}
	line := oi.cryptos[0]
	if l := st.local[off]; l != nil {
		for _, c := range oi.cryptos {
			if c.Suite.Name == l.Suite.Name {
				line = c
				break
			}
		}
	}
	k, err := st.key(off, line.Suite, line.Tag)
	if err != nil {
		return err
	}
	st.remote[off], st.local[off] = &line, &k
	st.secure[off] = oi.secure
	return nil
}

// publish hands new SRTP contexts to the forwarders whose keys changed;
// unchanged directions keep their contexts (and so their ROC).
func (st *stream) publish() error {
	var inChanged, outChanged [2]bool
	for x := range 2 {
		inChanged[x] = !same(st.remote[x], st.pubIn[x])
		outChanged[x] = !same(st.local[x], st.pubOut[x])
	}
	for x, e := range st.ends {
		o := 1 - x
		if !inChanged[x] && !outChanged[o] {
			continue
		}
		for _, f := range e.fw {
			ks := *f.keys.Load()
			var err error
			if inChanged[x] {
				if ks.inRTP, ks.inRTCP, err = contexts(st.remote[x]); err != nil {
					return err
				}
			}
			if outChanged[o] {
				if ks.outRTP, ks.outRTCP, err = contexts(st.local[o]); err != nil {
					return err
				}
			}
			f.keys.Store(&ks)
		}
	}
	st.pubIn, st.pubOut = st.remote, st.local
	return nil
}

// stop makes both ends drop everything (stream rejected in an answer).
func (st *stream) stop() {
	for _, e := range st.ends {
		e.windowEnd.Store(0)
	}
}

func contexts(c *sdes.Crypto) (rtpCtx, rtcpCtx *srtp.Context, err error) {
	if c == nil {
		return nil, nil, nil
	}
	if rtpCtx, err = c.Context(); err != nil {
		return nil, nil, notAcceptable("%v", err)
	}
	if rtcpCtx, err = c.Context(); err != nil {
		return nil, nil, notAcceptable("%v", err)
	}
	return rtpCtx, rtcpCtx, nil
}

func same(a, b *sdes.Crypto) bool {
	if a == nil || b == nil {
		return a == b
	}
	return sdes.SameKey(*a, *b)
}
