// Package carddav serves a user's address book over CardDAV (RFC 6352) so
// that phones, Thunderbird and DAVx5 sync the same contacts as the REST
// API. github.com/emersion/go-webdav does the WebDAV and CardDAV work
// (principal and home-set discovery, GET/PUT/DELETE of cards, the
// addressbook-query and addressbook-multiget REPORTs). This package adds
// what go-webdav's server lacks: collection synchronisation (RFC 6578,
// the sync-collection REPORT, and the DAV:sync-token, CS:getctag and
// supported-report-set properties on the address-book collection), HTTP
// Basic authentication, and the mapping to convergo contacts.
//
// Layout, under the mount prefix (default /carddav):
//
//	/carddav/                                   root (current-user-principal)
//	/carddav/<user>/                            principal
//	/carddav/<user>/addressbooks/               address-book home set
//	/carddav/<user>/addressbooks/default/       the address book (one per user)
//	/carddav/<user>/addressbooks/default/<id>.vcf  one contact
//
// Sync tokens are URIs (RFC 6578 §3.2) wrapping the addressbook change-feed
// token, so a CardDAV client and a REST client see the same changes; a
// token the feed no longer reaches gets 403 DAV:valid-sync-token and the
// client resynchronises. ETags are contact versions, as in the REST API.
//
// The package holds no state of its own and starts no goroutines; the
// Handler is safe for concurrent use.
package carddav
