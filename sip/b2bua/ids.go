package b2bua

import (
	"encoding/hex"
	"math/rand/v2"
)

// newTag returns a From/To tag: 64 random bits as 16 lower-case hex
// digits (RFC 3261 §19.3 asks for at least 32). Not sipgo's GenerateTagN:
// its mixed-case letters can spell a header name, and SIPp looks header
// names up anywhere in a message. A To tag "sSYjEynLCSeq8wP8" made it read
// that 180's CSeq from inside the tag and abort the call. Hex cannot spell
// CSeq, Via, To or Call-ID.
func newTag() string {
	var b [8]byte
	putRandom(b[:])
	return hex.EncodeToString(b[:])
}

// newCallID returns a Call-ID for a new leg: 128 random bits in hex.
func newCallID() string {
	var b [16]byte
	putRandom(b[:])
	return hex.EncodeToString(b[:])
}

// putRandom fills b from math/rand/v2's global source (ChaCha8, seeded by
// the runtime: unpredictable, and no system call per tag).
func putRandom(b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := rand.Uint64()
		for j := i; j < i+8 && j < len(b); j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
}
