package main

import (
	"context"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/convergo/convergo/store"
	"github.com/convergo/convergo/store/bolt"
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

// storeBook records interactions straight into a real store, counting the
// writes (the address book adds key canonicalisation and its cache on top).
type storeBook struct {
	contacts store.Contacts
	writes   atomic.Int64
}

func (b *storeBook) RecordPeerInteraction(ctx context.Context, user, peer string, at time.Time, n int) error {
	b.writes.Add(1)
	_, err := b.contacts.RecordInteraction(ctx, user, peer, at, n, time.Hour, 0)
	return err
}

// TestCallLogFoldsRepeatedCalls: the calls queued while a round is written
// are folded per pair of parties: every call is counted, with one write per
// pair and party instead of one per call.
func TestCallLogFoldsRepeatedCalls(t *testing.T) {
	st, err := bolt.Open(bolt.Config{Path: filepath.Join(t.TempDir(), "db")}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := t.Context()
	for _, u := range []store.User{{ID: "alice", Identity: "sip:alice@example.net"}, {ID: "bob", Identity: "sip:bob@example.net"}} {
		if _, err := st.Users().Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	book := &storeBook{contacts: st.Contacts()}
	l, err := newCallLog(st.Users(), book, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	// Queued before Run starts: one round takes them all.
	for range 50 {
		l.answered("sip:alice@example.net", "sip:bob@example.net")
	}
	for range 3 {
		l.answered("sip:alice@example.net", "sip:carol@example.org") // carol is nobody's: alice's book only
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Run(runCtx) }()

	want := map[string]map[string]uint64{
		"alice": {"sip:bob@example.net": 50, "sip:carol@example.org": 3},
		"bob":   {"sip:alice@example.net": 50},
	}
	counts := func() map[string]map[string]uint64 {
		got := map[string]map[string]uint64{}
		for user := range want {
			recs, err := st.Contacts().Interactions(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			got[user] = map[string]uint64{}
			for _, r := range recs {
				got[user][r.Key] = r.Count
			}
		}
		return got
	}
	deadline := time.Now().Add(10 * time.Second)
	for !reflect.DeepEqual(counts(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("interactions = %v, want %v", counts(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if w := book.writes.Load(); w != 3 {
		t.Fatalf("%d interaction writes for 53 calls between 2 pairs (3 books to update), want 3", w)
	}
}
