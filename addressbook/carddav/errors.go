package carddav

import "errors"

// ErrSyncToken is what Book.Changes returns for a token it cannot
// continue (expired, malformed or another user's): 403 valid-sync-token.
var ErrSyncToken = errors.New("carddav: invalid sync token")

// ErrInvalid is what Writer.Put returns (wrapped) for a card that cannot
// be stored: 400 with the CARDDAV:valid-address-data precondition.
var ErrInvalid = errors.New("carddav: invalid address data")
