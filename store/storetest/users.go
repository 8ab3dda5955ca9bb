package storetest

import (
	"errors"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/convergo/convergo/store"
)

func newUser(id, identity, tel string) store.User {
	return store.User{
		ID:           id,
		Identity:     identity,
		Tel:          tel,
		DisplayName:  "User " + id,
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		DigestHA1:    map[string]string{"MD5": "0123456789abcdef0123456789abcdef"},
		Roles:        []string{"user"},
		Created:      time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Updated:      time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

func mustCreate(t *testing.T, s store.Users, u store.User) store.User {
	t.Helper()
	got, err := s.Create(t.Context(), u)
	if err != nil {
		t.Fatalf("Create(%s) error = %v", u.ID, err)
	}
	return got
}

func checkGet(t *testing.T, s store.Users, want store.User) {
	t.Helper()
	got, err := s.Get(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("Get(%s) error = %v", want.ID, err)
	}
	if diff := gocmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("Get(%s) mismatch (-want +got):\n%s", want.ID, diff)
	}
}

func checkIdentity(t *testing.T, s store.Users, identity, wantID string) {
	t.Helper()
	got, err := s.GetByIdentity(t.Context(), identity)
	if wantID == "" {
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetByIdentity(%s) = %s, %v; want ErrNotFound", identity, got.ID, err)
		}
		return
	}
	if err != nil || got.ID != wantID {
		t.Fatalf("GetByIdentity(%s) = %q, %v; want %q", identity, got.ID, err, wantID)
	}
}

// RunUsers checks store.Users: create and lookups, uniqueness of ID,
// identity and tel alias, versioned updates and ordering.
func RunUsers(t *testing.T, open Opener) {
	t.Run("CreateGet", func(t *testing.T) {
		t.Parallel()
		s := open(t).Users()
		in := newUser("alice", "sip:alice@example.net", "tel:+15551230001")
		in.Version = 42 // ignored
		got := mustCreate(t, s, in)
		want := in
		want.Version = 1
		if diff := gocmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("Create() mismatch (-want +got):\n%s", diff)
		}
		checkGet(t, s, want)
		byIdentity, err := s.GetByIdentity(t.Context(), "sip:alice@example.net")
		if err != nil {
			t.Fatalf("GetByIdentity() error = %v", err)
		}
		if diff := gocmp.Diff(want, byIdentity, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("GetByIdentity() mismatch (-want +got):\n%s", diff)
		}
		checkIdentity(t, s, "tel:+15551230001", "alice")
		checkIdentity(t, s, "sip:nobody@example.net", "")
		if _, err := s.Get(t.Context(), "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get(unknown) error = %v, want ErrNotFound", err)
		}

		before := time.Now()
		noTimes := newUser("bob", "sip:bob@example.net", "")
		noTimes.Created, noTimes.Updated = time.Time{}, time.Time{}
		bob := mustCreate(t, s, noTimes)
		if bob.Created.Before(before.Add(-time.Second)) || !bob.Updated.Equal(bob.Created) {
			t.Fatalf("Create() times = %v / %v, want now for both", bob.Created, bob.Updated)
		}
		checkGet(t, s, bob)
	})

	t.Run("CreateExists", func(t *testing.T) {
		t.Parallel()
		s := open(t).Users()
		alice := mustCreate(t, s, newUser("alice", "sip:alice@example.net", "tel:+15551230001"))
		tests := []struct {
			name string
			u    store.User
		}{
			{name: "same id", u: newUser("alice", "sip:other@example.net", "")},
			{name: "same identity", u: newUser("bob", "sip:alice@example.net", "")},
			{name: "same tel", u: newUser("bob", "sip:bob@example.net", "tel:+15551230001")},
			{name: "identity is a tel alias", u: newUser("bob", "tel:+15551230001", "")},
			{name: "tel is an identity", u: newUser("bob", "sip:bob@example.net", "sip:alice@example.net")},
		}
		for _, tt := range tests {
			if _, err := s.Create(t.Context(), tt.u); !errors.Is(err, store.ErrExists) {
				t.Fatalf("%s: Create() error = %v, want ErrExists", tt.name, err)
			}
		}
		all, err := s.List(t.Context())
		if err != nil {
			t.Fatalf("List() error = %v", err)
		}
		if diff := gocmp.Diff([]store.User{alice}, all, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("List() after rejected creates mismatch (-want +got):\n%s", diff)
		}
		checkIdentity(t, s, "sip:bob@example.net", "")
		checkIdentity(t, s, "sip:other@example.net", "")
	})

	t.Run("Update", func(t *testing.T) {
		t.Parallel()
		s := open(t).Users()
		alice := mustCreate(t, s, newUser("alice", "sip:alice@example.net", "tel:+15551230001"))
		bob := mustCreate(t, s, newUser("bob", "sip:bob@example.net", "tel:+15551230002"))

		edit := alice
		edit.DisplayName = "Alice A."
		edit.Roles = []string{"user", "admin"}
		edit.Created = time.Time{} // ignored: Created is kept
		before := time.Now()
		got, err := s.Update(t.Context(), edit)
		if err != nil {
			t.Fatalf("Update() error = %v", err)
		}
		want := edit
		want.Version = 2
		want.Created = alice.Created
		if diff := gocmp.Diff(want, got, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(store.User{}, "Updated")); diff != "" {
			t.Fatalf("Update() mismatch (-want +got):\n%s", diff)
		}
		if got.Updated.Before(before.Add(-time.Second)) {
			t.Fatalf("Updated = %v, want about %v", got.Updated, before)
		}
		checkGet(t, s, got)
		current := got

		stale := alice // Version 1
		stale.DisplayName = "stale"
		tests := []struct {
			name    string
			u       store.User
			wantErr error
		}{
			{name: "stale version", u: stale, wantErr: store.ErrConflict},
			{name: "unknown id", u: newUser("carol", "sip:carol@example.net", ""), wantErr: store.ErrNotFound},
			{name: "identity taken", u: func() store.User {
				u := current
				u.Identity = bob.Identity
				return u
			}(), wantErr: store.ErrExists},
			{name: "tel taken", u: func() store.User {
				u := current
				u.Tel = bob.Identity
				return u
			}(), wantErr: store.ErrExists},
			{name: "invalid", u: func() store.User {
				u := current
				u.Identity = ""
				return u
			}(), wantErr: store.ErrInvalid},
		}
		for _, tt := range tests {
			if _, err := s.Update(t.Context(), tt.u); !errors.Is(err, tt.wantErr) {
				t.Fatalf("%s: Update() error = %v, want %v", tt.name, err, tt.wantErr)
			}
		}
		checkGet(t, s, current) // nothing changed
		checkGet(t, s, bob)
		checkIdentity(t, s, "sip:alice@example.net", "alice")

		// Moving identity and tel frees the old ones.
		moved := current
		moved.Identity = "sip:alice@new.example.net"
		moved.Tel = ""
		if _, err := s.Update(t.Context(), moved); err != nil {
			t.Fatalf("Update(move identity) error = %v", err)
		}
		checkIdentity(t, s, "sip:alice@new.example.net", "alice")
		checkIdentity(t, s, "sip:alice@example.net", "")
		checkIdentity(t, s, "tel:+15551230001", "")
		if _, err := s.Create(t.Context(), newUser("carol", "sip:alice@example.net", "tel:+15551230001")); err != nil {
			t.Fatalf("Create(reusing freed identity) error = %v", err)
		}
	})

	t.Run("ListOrdered", func(t *testing.T) {
		t.Parallel()
		s := open(t).Users()
		if all, err := s.List(t.Context()); err != nil || len(all) != 0 {
			t.Fatalf("List(empty) = %v, %v; want none", all, err)
		}
		var want []store.User
		for _, id := range []string{"carol", "alice", "bob", "Zed"} {
			mustCreate(t, s, newUser(id, "sip:"+id+"@example.net", ""))
		}
		for _, id := range []string{"Zed", "alice", "bob", "carol"} { // byte order
			u, err := s.Get(t.Context(), id)
			if err != nil {
				t.Fatalf("Get(%s) error = %v", id, err)
			}
			want = append(want, u)
		}
		all, err := s.List(t.Context())
		if err != nil {
			t.Fatalf("List() error = %v", err)
		}
		if diff := gocmp.Diff(want, all, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("List() mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		s := open(t).Users()
		tests := []struct {
			name string
			u    store.User
		}{
			{name: "no id", u: newUser("", "sip:x@example.net", "")},
			{name: "no identity", u: newUser("x", "", "tel:+15550000000")},
		}
		for _, tt := range tests {
			if _, err := s.Create(t.Context(), tt.u); !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("%s: Create() error = %v, want ErrInvalid", tt.name, err)
			}
		}
		if all, err := s.List(t.Context()); err != nil || len(all) != 0 {
			t.Fatalf("List() = %v, %v; want nothing written", all, err)
		}
		checkIdentity(t, s, "sip:x@example.net", "")
		checkIdentity(t, s, "tel:+15550000000", "")
	})
}
