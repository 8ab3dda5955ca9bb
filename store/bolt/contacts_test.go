package bolt

import (
	"testing"

	"github.com/convergo/convergo/store/storetest"
)

func TestContacts(t *testing.T) {
	t.Parallel()
	storetest.RunContacts(t, opener())
}
