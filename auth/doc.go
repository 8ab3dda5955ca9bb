// Package auth owns convergo's accounts-facing security: password hashing
// (argon2id, PHC strings), the JWT access tokens and rotating refresh tokens
// behind POST /v1/auth/{login,refresh,logout}, the signing keys and their
// JWKS (GET /.well-known/jwks.json), roles and permissions with the HTTP
// middleware that enforces them, and SIP authentication of directly
// attached clients (Digest and Bearer) for the registrar.
//
// It does not store anything itself: users and token state live behind the
// small interfaces of deps.go (satisfied by store.Users and store.Tokens),
// so logouts, revocations and refresh-token reuse detection are seen by
// every node. It does not route SIP, answer SIP requests or own listeners:
// SIPAuth.Authenticate returns a *SIPError that already carries the final
// response code, reason and challenge headers, and the registrar sends it.
//
// The package starts no goroutines. Its bounded maps (rate limiter, Digest
// nonce counts) are swept lazily on access, each behind its own mutex; no
// code path holds two of them at once.
//
// Standards: RFC 7519 (JWT), RFC 7517 (JWK/JWKS), RFC 7638 (JWK
// thumbprint, used as the kid of the auto-generated key), RFC 6750 (Bearer
// in HTTP), RFC 9457 (problem details for every HTTP error), RFC 7616 and
// RFC 8760 (Digest with SHA-256 and MD5 in SIP), RFC 2617 (the MD5 test
// vector), RFC 8898 (Bearer tokens in SIP), RFC 7235 (credentials syntax),
// RFC 9106 (argon2id), RFC 9700 (refresh-token rotation, reuse detection).
package auth
