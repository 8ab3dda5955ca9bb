package phone

import "errors"

// ErrUnknownRegion is returned by NewNormalizer for a region code that
// libphonenumber has no metadata for.
var ErrUnknownRegion = errors.New("phone: unknown region")
