// Package redis is the store.Store backend on Redis, through one go-redis
// UniversalClient: a single server, Sentinel (MasterName) or a Redis
// Cluster (several Addrs, or Cluster set), chosen by Config alone. Several
// convergo nodes may share one Redis.
//
// # Key layout
//
// Every key starts with KeyPrefix (default "convergo:"), which must not
// contain braces. Each key of one AOR or user carries the same {hash tag},
// so every script touches one slot; the channel names are not keys.
//
//	<p>{b:<aor>}:h       HASH   binding key -> "<created RFC 3339>\n<binding JSON>"
//	<p>{b:<aor>}:x       ZSET   binding key -> expires (Unix ms)
//	<p>{b:<aor>}:g       LIST   expired bindings not yet returned by Sweep (same format as :h)
//	<p>{bidx:<n>}        ZSET   aor -> when it is next due for a sweep (ms); 16 shards by FNV-1a
//	<p>{u:<user>}:seq    STRING last sequence (INCR), never expires
//	<p>{u:<user>}:log    STREAM entries with ID 0-<seq>, field e = event JSON; MAXLEN = MaxEvents
//	<p>{u:<user>}:ids    ZSET   idempotency ID -> seq, trimmed with the log
//	<p>wake:<user>       channel: PUBLISH <seq> after each append (a hint only)
//	<p>{users}:u         HASH   user ID -> user JSON
//	<p>{users}:i         HASH   identity or tel alias -> user ID
//	<p>{tokens}:rt:<id>  HASH   j = token JSON, f = family, e = expires (ms), u = "1" once used; PEXPIREAT e
//	<p>{tokens}:rf:<fam> STRING revoked family, PX until the revocation ends
//	<p>jti:<jti>         STRING revoked access token, PX until it ends
//
// A brace inside an AOR or user name ends the tag early; all keys of that
// AOR or user still share it, so scripts stay in one slot.
//
// Accounts and refresh tokens each live under one tag ({users}, {tokens})
// so that Create and UseRefresh can be single atomic scripts over their
// index keys. Both domains are low-volume (accounts change rarely, a device
// refreshes every few minutes), so one slot per domain is acceptable.
//
// # Bindings
//
// Every binding operation is one Lua script over the AOR's three keys. It
// first purges bindings that expired at or before now into the :g list,
// then does its work, then sets the TTL of :h and :x to the last expiry
// plus a grace of ten sweep intervals (so a sweeper still sees them) and
// returns when the AOR is next due. Writers lower the AOR's entry in the
// sharded index (ZADD LT); Sweep reads the entries that are due, runs the
// per-AOR sweep script, which removes and returns expired bindings and
// drains :g, so each expired binding is returned by exactly one sweeper, and
// then rewrites the index entry and re-checks it, since the index is
// updated outside the scripts and is only a hint of where to look.
//
// # Event log and Wait
//
// Append is one script: idempotency check, INCR, XADD with an explicit ID
// 0-<seq> and exact MAXLEN, ZADD of the ID, trimming of the ID index, and a
// PUBLISH on the user's wake channel. Read is one script, so the
// cursor-expired check and the range see one state.
//
// Wait joins an in-process waiter set (one entry per user with waiters,
// removed when the last leaves), re-checks Last, and sleeps until a
// wake-up, the poll interval (500ms, since Pub/Sub can lose messages), ctx
// end or Close. Each check is bounded to 500ms, because go-redis does not
// abort a blocked read on cancellation, so Wait returns promptly when ctx
// ends even if Redis is slow. Pub/Sub is never the source of truth.
//
// # Goroutines
//
// Open starts one goroutine, owned by the Store and stopped and waited for
// by Close: it reads the single PubSub connection (whose own reader
// goroutines go-redis stops on Close) and keeps its subscriptions equal to
// the set of users with local waiters. Run sweeps on the caller's
// goroutine. No lock is held across I/O.
package redis
