package redis

import (
	"testing"

	"github.com/convergo/convergo/store/redistest"
	"github.com/convergo/convergo/store/storetest"
)

func TestContacts(t *testing.T) {
	t.Parallel()
	addr := redistest.StartServer(t)
	storetest.RunContacts(t, opener(Config{Addrs: []string{addr}}))
}

func TestContactsCluster(t *testing.T) {
	t.Parallel()
	addrs := redistest.StartCluster(t, 3)
	storetest.RunContacts(t, opener(Config{Addrs: addrs}))
}
