package storetest

import (
	"errors"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/convergo/convergo/store"
)

func newToken(id, family string, expires time.Time) store.RefreshToken {
	return store.RefreshToken{ID: id, Family: family, User: "alice", Device: "urn:uuid:dev-1", Expires: expires}
}

func mustPutRefresh(t *testing.T, s store.Tokens, toks ...store.RefreshToken) {
	t.Helper()
	for _, tok := range toks {
		if err := s.PutRefresh(t.Context(), tok); err != nil {
			t.Fatalf("PutRefresh(%s) error = %v", tok.ID, err)
		}
	}
}

func checkUse(t *testing.T, s store.Tokens, id string, now time.Time, want store.RefreshToken, wantErr error) {
	t.Helper()
	got, err := s.UseRefresh(t.Context(), id, now)
	if !errors.Is(err, wantErr) {
		t.Fatalf("UseRefresh(%s) error = %v, want %v", id, err, wantErr)
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Fatalf("UseRefresh(%s) token mismatch (-want +got):\n%s", id, diff)
	}
}

func checkRevoked(t *testing.T, s store.Tokens, jti string, want bool) {
	t.Helper()
	got, err := s.IsRevoked(t.Context(), jti)
	if err != nil || got != want {
		t.Fatalf("IsRevoked(%s) = %v, %v; want %v", jti, got, err, want)
	}
}

// RunTokens checks store.Tokens: single use of refresh tokens, reuse
// detection, expiry, family revocation and the access-token revocation list.
func RunTokens(t *testing.T, open Opener) {
	t.Run("UseOnce", func(t *testing.T) {
		t.Parallel()
		s := open(t).Tokens()
		now := time.Now()
		tok := newToken("h1", "fam-1", now.Add(time.Hour))
		mustPutRefresh(t, s, tok)
		used := tok
		used.Used = true
		checkUse(t, s, "h1", now, used, nil)
		checkUse(t, s, "h1", now, used, store.ErrTokenReused) // carries the family
		checkUse(t, s, "unknown", now, store.RefreshToken{}, store.ErrNotFound)
		if err := s.PutRefresh(t.Context(), tok); !errors.Is(err, store.ErrExists) {
			t.Fatalf("PutRefresh(known id) error = %v, want ErrExists", err)
		}
		checkUse(t, s, "h1", now, used, store.ErrTokenReused) // still used
	})

	t.Run("Expired", func(t *testing.T) {
		t.Parallel()
		s := open(t).Tokens()
		now := time.Now()
		mustPutRefresh(t, s, newToken("h1", "fam-1", now.Add(time.Hour)))
		checkUse(t, s, "h1", now.Add(2*time.Hour), store.RefreshToken{}, store.ErrNotFound)
		// Real time too: the first tries may use the token (then see it
		// reused); once it expired every try is ErrNotFound.
		mustPutRefresh(t, s, newToken("h2", "fam-1", now.Add(500*time.Millisecond)))
		waitFor(t, 5*time.Second, "refresh token expires", func() (bool, error) {
			_, err := s.UseRefresh(t.Context(), "h2", time.Now())
			switch {
			case errors.Is(err, store.ErrNotFound):
				return true, nil
			case err == nil, errors.Is(err, store.ErrTokenReused):
				return false, nil
			default:
				return false, err
			}
		})
	})

	t.Run("RevokeFamily", func(t *testing.T) {
		t.Parallel()
		s := open(t).Tokens()
		now := time.Now()
		a1 := newToken("a1", "fam-a", now.Add(time.Hour))
		a2 := newToken("a2", "fam-a", now.Add(time.Hour))
		a3 := newToken("a3", "fam-a", now.Add(time.Hour))
		b1 := newToken("b1", "fam-b", now.Add(time.Hour))
		mustPutRefresh(t, s, a1, a2, a3, b1)
		usedA3 := a3
		usedA3.Used = true
		checkUse(t, s, "a3", now, usedA3, nil)
		if err := s.RevokeFamily(t.Context(), "fam-a", now.Add(time.Hour)); err != nil {
			t.Fatalf("RevokeFamily() error = %v", err)
		}
		checkUse(t, s, "a1", now, store.RefreshToken{}, store.ErrNotFound)
		checkUse(t, s, "a2", now, store.RefreshToken{}, store.ErrNotFound)
		checkUse(t, s, "a3", now, store.RefreshToken{}, store.ErrNotFound) // revoked wins over reused
		usedB1 := b1
		usedB1.Used = true
		checkUse(t, s, "b1", now, usedB1, nil)
		// A revocation that is already over does nothing.
		if err := s.RevokeFamily(t.Context(), "fam-c", now.Add(-time.Second)); err != nil {
			t.Fatalf("RevokeFamily(past) error = %v", err)
		}
		c1 := newToken("c1", "fam-c", now.Add(time.Hour))
		mustPutRefresh(t, s, c1)
		c1.Used = true
		checkUse(t, s, "c1", now, c1, nil)
	})

	t.Run("RevokeAccessToken", func(t *testing.T) {
		t.Parallel()
		s := open(t).Tokens()
		now := time.Now()
		revoke := func(jti string, expires time.Time) {
			t.Helper()
			if err := s.Revoke(t.Context(), jti, expires); err != nil {
				t.Fatalf("Revoke(%s) error = %v", jti, err)
			}
		}
		revoke("long", now.Add(time.Hour))
		revoke("short", now.Add(time.Second))
		revoke("extended", now.Add(time.Second))
		revoke("extended", now.Add(time.Hour))
		revoke("not-shortened", now.Add(time.Hour))
		revoke("not-shortened", now.Add(time.Second))
		revoke("past", now.Add(-time.Second))
		checkRevoked(t, s, "long", true)
		checkRevoked(t, s, "short", true)
		checkRevoked(t, s, "unknown", false)
		checkRevoked(t, s, "past", false)
		waitFor(t, 5*time.Second, "short revocation ends", func() (bool, error) {
			revoked, err := s.IsRevoked(t.Context(), "short")
			return !revoked, err
		})
		checkRevoked(t, s, "long", true)
		checkRevoked(t, s, "extended", true)
		checkRevoked(t, s, "not-shortened", true)
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		s := open(t).Tokens()
		now := time.Now()
		ok := newToken("h1", "fam", now.Add(time.Hour))
		tests := []struct {
			name string
			edit func(*store.RefreshToken)
		}{
			{name: "no id", edit: func(r *store.RefreshToken) { r.ID = "" }},
			{name: "no family", edit: func(r *store.RefreshToken) { r.Family = "" }},
			{name: "no user", edit: func(r *store.RefreshToken) { r.User = "" }},
			{name: "no expires", edit: func(r *store.RefreshToken) { r.Expires = time.Time{} }},
		}
		for _, tt := range tests {
			tok := ok
			tt.edit(&tok)
			if err := s.PutRefresh(t.Context(), tok); !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("%s: PutRefresh() error = %v, want ErrInvalid", tt.name, err)
			}
		}
		checkUse(t, s, "h1", now, store.RefreshToken{}, store.ErrNotFound)
		if err := s.RevokeFamily(t.Context(), "", now.Add(time.Hour)); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("RevokeFamily(\"\") error = %v, want ErrInvalid", err)
		}
		if err := s.Revoke(t.Context(), "", now.Add(time.Hour)); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("Revoke(\"\") error = %v, want ErrInvalid", err)
		}
	})
}
