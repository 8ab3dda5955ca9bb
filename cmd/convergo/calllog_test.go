package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convergo/convergo/store"
)

// countingUsers counts the reads that reach the real store.
type countingUsers struct {
	store.Users
	reads atomic.Int64
}

func (c *countingUsers) GetByIdentity(ctx context.Context, identity string) (store.User, error) {
	c.reads.Add(1)
	return c.Users.GetByIdentity(ctx, identity)
}

func TestIdentityCache(t *testing.T) {
	users := &countingUsers{Users: openUserStore(t)}
	ctx := t.Context()
	u, err := users.Create(ctx, store.User{ID: "alice", Identity: "sip:alice@example.net"})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(1_800_000_000, 0)
	c := newIdentityCache(users, 30*time.Second, 3, func() time.Time { return clock })

	lookup := func(t *testing.T, identity, wantID string, wantFound bool, wantReads int64) {
		t.Helper()
		id, found, err := c.userID(ctx, identity)
		if err != nil || id != wantID || found != wantFound {
			t.Fatalf("userID(%s) = %q, %v, %v; want %q, %v, nil", identity, id, found, err, wantID, wantFound)
		}
		if got := users.reads.Load(); got != wantReads {
			t.Fatalf("after userID(%s): %d store reads, want %d", identity, got, wantReads)
		}
	}
	lookup(t, "sip:alice@example.net", "alice", true, 1)
	lookup(t, "sip:alice@example.net", "alice", true, 1) // cached
	lookup(t, "sip:nobody@example.net", "", false, 2)
	lookup(t, "sip:nobody@example.net", "", false, 2) // "nobody's" is cached too

	// The identity moves to another account: the old owner is remembered
	// until the entry expires, then the store is read again.
	u.Identity = "sip:alice2@example.net"
	if _, err := users.Update(ctx, u); err != nil {
		t.Fatal(err)
	}
	lookup(t, "sip:alice@example.net", "alice", true, 2)
	clock = clock.Add(30 * time.Second)
	lookup(t, "sip:alice@example.net", "", false, 3)

	// Errors are not cached.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := c.userID(cancelled, "sip:alice2@example.net"); err == nil {
		t.Fatal("userID with a cancelled context: nil error")
	}
	lookup(t, "sip:alice2@example.net", "alice", true, 5)

	// Bounded: a fourth identity makes room (max 3).
	lookup(t, "sip:x@example.net", "", false, 6)
	c.mu.Lock()
	n := len(c.m)
	c.mu.Unlock()
	if n > 3 {
		t.Fatalf("cache holds %d identities, max 3", n)
	}
}
