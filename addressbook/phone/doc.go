// Package phone normalises the phone numbers of address-book entries to
// E.164 (ITU-T E.164, RFC 3966 global numbers) with libphonenumber's
// metadata (github.com/nyaruka/phonenumbers), for one configured default
// region, and extracts the digit keys the search index and caller-ID
// lookup match on.
//
// It owns no state beyond the immutable region of a Normalizer and starts
// no goroutines; a Normalizer is safe for concurrent use. It does not decide
// what to do with invalid numbers: callers keep them as typed and flag them.
package phone
