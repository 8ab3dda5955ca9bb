package sip

import (
	"time"

	"github.com/emiago/sipgo/sip"
)

// DefaultTransactionWait is how long a finished transaction lingers by
// default: Kamailio's tm wait timer (5 s), not RFC 3261's 32 s.
const DefaultTransactionWait = 5 * time.Second

// SetTransactionWait sets, for the whole process, how long sipgo keeps a
// transaction after its final response to absorb retransmissions: Timer D
// (client INVITE after a non-2xx), Timer J (server non-INVITE over UDP),
// Timer L (server INVITE after a 2xx, RFC 6026) and Timer M (client INVITE
// after a 2xx). RFC 3261 sets them to 32 s for UDP; every finished
// transaction holds its request and last response that long, so the live
// heap grows with call rate × wait (about 12 KB per call: 2,000 calls/s
// for 32 s held ~800 MB). After the wait a retransmission is handled
// like a new message: a retransmitted BYE gets 481, a retransmitted final
// response goes to the stray handler (Server.OnStrayResponse; the b2bua
// re-ACKs its forks' non-2xx finals there). Timer K (T4, 5 s) and the
// request timeouts (Timers B, F, H) are unchanged.
//
// sipgo keeps its timers in package variables without locking: call this
// once at process start, before any SIP traffic (main, or a TestMain).
func SetTransactionWait(d time.Duration) {
	sip.Timer_D, sip.Timer_J, sip.Timer_L, sip.Timer_M = d, d, d, d
}
