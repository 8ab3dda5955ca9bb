package addressbook

import (
	"errors"
	"fmt"
	"strings"

	"github.com/convergo/convergo/store"
)

// Problem types (RFC 9457 §3.1.1) of the address-book routes.
const (
	ProblemInvalidContact   = "https://convergo.dev/problems/invalid-contact"
	ProblemVersionMismatch  = "https://convergo.dev/problems/version-mismatch"
	ProblemIfMatchRequired  = "https://convergo.dev/problems/if-match-required"
	ProblemSyncTokenExpired = "https://convergo.dev/problems/sync-token-expired"
	ProblemContactLimit     = "https://convergo.dev/problems/contact-limit"
	ProblemContactExists    = "https://convergo.dev/problems/contact-exists"
	ProblemTooLarge         = "https://convergo.dev/problems/too-large"
)

var (
	// ErrInvalid is matched by every *ValidationError.
	ErrInvalid = errors.New("addressbook: invalid contact")
	// ErrPhotoTooLarge is returned for a photo above max_photo_bytes (413).
	ErrPhotoTooLarge = errors.New("addressbook: photo too large")
	// ErrSyncToken is returned for a sync token that is malformed, belongs
	// to another user or points outside the retained change feed (410: the
	// client does a full resync).
	ErrSyncToken = errors.New("addressbook: sync token expired or invalid")
	// ErrNotFound is returned for an unknown, deleted or foreign contact.
	ErrNotFound = errors.New("addressbook: contact not found")
	// ErrIfMatchRequired is returned for a write without If-Match (428).
	ErrIfMatchRequired = errors.New("addressbook: If-Match required")
)

// FieldError is one problem of a contact, named by its JSON path.
type FieldError struct {
	Field   string `json:"field"`   // e.g. "phones[1].value"
	Problem string `json:"problem"` // e.g. "contains a control character"
}

// ValidationError lists every problem of a contact. It matches ErrInvalid,
// and ErrPhotoTooLarge when that is one of them.
type ValidationError struct {
	Fields     []FieldError
	PhotoLarge bool
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Problem
	}
	return fmt.Sprintf("%v: %s", ErrInvalid, strings.Join(parts, "; "))
}

// Is matches ErrInvalid, and ErrPhotoTooLarge for an oversize photo.
func (e *ValidationError) Is(target error) bool {
	return target == ErrInvalid || (target == ErrPhotoTooLarge && e.PhotoLarge)
}

func isConflict(err error) bool { return errors.Is(err, store.ErrConflict) }
