// Package evict owns the eviction rule of the process's small in-memory
// caches: a map capped by entry count whose entries carry an expiry.
package evict

// MakeRoom prepares m to take one more entry under its cap of max
// entries: when m is full it drops the expired entries, and if none were
// expired it drops everything (a cache refilled from its source is cheaper
// than one that grows without bound or is scanned on every insert).
func MakeRoom[K comparable, V any](m map[K]V, max int, expired func(V) bool) {
	if len(m) < max {
		return
	}
	for k, v := range m {
		if expired(v) {
			delete(m, k)
		}
	}
	if len(m) >= max {
		clear(m)
	}
}
