// Package bolt is the embedded store.Store backend: every domain lives in
// one bbolt file owned by one process (a second process gets a clear
// "locked" error from Open instead of hanging). It is the default backend
// and needs nothing installed.
//
// Layout (top-level buckets; keys are bytes, values JSON unless noted):
//
//	bindings/<aor>/<key>      binding (one nested bucket per AOR, dropped when empty)
//	binding_expiry/<exp|aor|key>  empty; exp is the expiry in ms, order-preserving
//	binding_expired/<n>       expired bindings replaced or removed before a sweep saw them
//	events/<user>/<seq>       event, seq big-endian; the bucket sequence is Last
//	event_ids/<user>/<id>     seq of a retained event with that idempotency ID
//	users/<id>                user
//	user_index/<identity>     user ID, for identities and tel aliases alike
//	refresh/<id>              refresh token
//	families/<family>         revoked-until, ms big-endian
//	revoked/<jti>             revoked-until, ms big-endian
//	token_expiry/<exp|kind|id> empty; index for the sweep of the three above
//
// Every write is one bbolt read-write transaction, so operations are atomic
// and serialised; reads run in read-only transactions in parallel.
//
// Goroutines: the package starts none of its own. Run sweeps expired
// records on the caller's goroutine until its context ends. Wait blocks the
// caller; Append wakes local waiters through an in-process waiter set that
// holds one entry per user with at least one waiter (removed when the last
// one leaves), and Close wakes every waiter with store.ErrClosed.
package bolt
