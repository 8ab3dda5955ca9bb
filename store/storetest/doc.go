// Package storetest is the conformance suite every store.Store backend must
// pass: Run (or RunBindings, RunEvents, RunUsers, RunTokens one domain at a
// time) drives a backend through real behaviour with plain testing and
// go-cmp, so bolt and redis are held to one contract.
//
// The opener passed to the suite must follow these rules:
//
//   - The first call for a given *testing.T returns a store over a backend
//     that is empty as far as that test can see (a new file, or a fresh key
//     prefix on a shared server).
//   - Later calls with the same *testing.T return a store over the same
//     backend: the very same *Store (bolt, whose file is locked by one
//     process) or a second client (redis). The concurrency subtests use this
//     to append and sweep from two stores at once.
//   - Stores are opened with MaxEvents set to the MaxEvents constant of this
//     package, so the trimming subtests know where the log is cut.
//   - The opener closes what it opened, through t.Cleanup.
//
// Beyond store.go, the suite pins down these choices, which both backends
// implement:
//
//   - Put keeps the stored Created when it refreshes a live binding; a new
//     binding keeps b.Created, or gets the current time when it is zero.
//   - A binding that expired stays invisible to List and Delete but is
//     still returned, exactly once, by Sweep, even when a later Put with
//     the same key replaced it.
//   - Read with limit <= 0 returns every retained entry after the cursor.
//   - Append needs a user and an Event.Type; anything less is ErrInvalid.
//   - Create sets Version 1 and fills Created (and Updated) when zero;
//     Update keeps the stored Created, sets Updated to the current time and
//     returns ErrNotFound for an unknown ID and ErrExists when the new
//     identity or tel alias belongs to another user. Identities and tel
//     aliases share one namespace.
//   - PutRefresh returns ErrExists for a known ID (a used token cannot be
//     reset to unused). UseRefresh checks, in order: unknown or expired,
//     family revoked (both ErrNotFound), then already used (ErrTokenReused).
//   - RevokeFamily and Revoke with an expiry in the past do nothing; a
//     later, shorter expiry never shortens an existing revocation.
//
// The suite starts goroutines only inside subtests and waits for them; it
// polls with a deadline instead of sleeping for expiry.
package storetest
