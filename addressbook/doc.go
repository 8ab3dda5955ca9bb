// Package addressbook is convergo's network address book: per-user
// contacts behind a JWT-protected REST API (/v1/contacts…), incremental
// sync, smart search, automatic classification, de-duplication, vCard
// import/export and CardDAV, all over one store.Contacts.
//
// What it owns:
//   - the contact model and its validation (model.go): phone numbers are
//     normalised to E.164 for a configured default region and kept as
//     typed, flagged when invalid; names and URIs that could reach SIP
//     headers refuse control characters; photos and bodies are capped (413);
//   - optimistic concurrency: ETag = version, If-Match required on writes
//     (428 without, 412 with the current representation on a mismatch), so
//     two devices never silently overwrite each other;
//   - the change feed: every write goes through store.Contacts.Apply, which
//     appends a contact.upsert or contact.delete event to the user's
//     EventLog atomically with the write. GET /v1/contacts/changes reads
//     that log behind an opaque sync token bound to the user (410 for an
//     expired or foreign token), and the same events reach /v1/sync;
//   - the in-memory search indexes (books.go), one per recently used user
//     (LRU, index_cache_users), refreshed from the change feed and checked
//     against EventLog.Last on every read, so several nodes sharing one
//     Redis stay correct;
//   - automatic tags (frequent, rcs, org:…), caller-ID lookup, duplicate
//     detection and merging, suggestions, vCard 3.0/4.0 exchange.
//
// What it does not own: authentication (Authorizer and PasswordChecker in
// deps.go, adapted from the auth package by cmd/convergo), which numbers
// belong to convergo users (UserDirectory), group chats (GroupPeers), and
// call and message history (fed through RecordPeerInteraction).
//
// Subpackages: phone (libphonenumber), search (index and query parser),
// vcard (conversion and streaming reader), carddav (RFC 6352 with RFC 6578
// sync-collection on go-webdav).
//
// Goroutines: none. Every request runs on its caller's goroutine; index
// refreshes of one user are shared through singleflight. Locks: books.mu
// (the LRU) and rcsCache.mu are leaves; book.mu guards one user's index and
// is never held while books.mu is taken, nor across I/O.
package addressbook
