package bolt

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/convergo/convergo/store"
)

// be64 encodes n big-endian, so byte order is numeric order.
func be64(n uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), n) }

// msKey maps t to an unsigned millisecond count whose big-endian bytes sort
// like the times, negative (pre-1970) ones included.
func msKey(t time.Time) uint64 { return uint64(t.UnixMilli()) ^ (1 << 63) }

func msTime(k uint64) time.Time { return time.UnixMilli(int64(k ^ (1 << 63))) }

// expiryKey is exp(8) | uvarint(len(a)) | a | b: an index entry ordered by
// expiry, from which a and b can be read back.
func expiryKey(exp time.Time, a, b string) []byte {
	k := make([]byte, 0, 8+binary.MaxVarintLen64+len(a)+len(b))
	k = binary.BigEndian.AppendUint64(k, msKey(exp))
	k = binary.AppendUvarint(k, uint64(len(a)))
	k = append(k, a...)
	return append(k, b...)
}

func parseExpiryKey(k []byte) (exp uint64, a, b string, err error) {
	if len(k) < 9 {
		return 0, "", "", fmt.Errorf("short expiry key %x", k)
	}
	exp = binary.BigEndian.Uint64(k)
	n, w := binary.Uvarint(k[8:])
	if w <= 0 || uint64(len(k)-8-w) < n {
		return 0, "", "", fmt.Errorf("corrupt expiry key %x", k)
	}
	rest := k[8+w:]
	return exp, string(rest[:n]), string(rest[n:]), nil
}

// clone copies a key or value that must outlive its transaction or a
// cursor move.
func clone(b []byte) []byte { return append([]byte(nil), b...) }

func invalid(msg string) error { return fmt.Errorf("%w: %s", store.ErrInvalid, msg) }
