package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/convergo/convergo/store"
)

func newBinding(aor, key string, created, expires time.Time) store.Binding {
	return store.Binding{
		AOR:       aor,
		Key:       key,
		Contact:   "sip:" + key + "@192.0.2.10:5060;transport=tcp",
		Instance:  "urn:uuid:" + key,
		RegID:     1,
		CallID:    "call-" + key,
		CSeq:      7,
		Expires:   expires,
		Created:   created,
		Received:  "192.0.2.10:40000",
		Transport: "tcp",
		Node:      "node-a",
		Path:      []string{"<sip:pcscf.example.net;lr>"},
		Params:    map[string]string{"+sip.instance": "x", "q": "0.5"},
		Source:    "direct",
	}
}

func sortBindings(bs []store.Binding) {
	slices.SortFunc(bs, func(a, b store.Binding) int {
		return cmp.Or(cmp.Compare(a.AOR, b.AOR), cmp.Compare(a.Key, b.Key))
	})
}

func mustPut(t *testing.T, s store.Bindings, bs ...store.Binding) {
	t.Helper()
	for _, b := range bs {
		if err := s.Put(t.Context(), b); err != nil {
			t.Fatalf("Put(%s, %s) error = %v", b.AOR, b.Key, err)
		}
	}
}

func mustList(t *testing.T, s store.Bindings, aor string) []store.Binding {
	t.Helper()
	got, err := s.List(t.Context(), aor)
	if err != nil {
		t.Fatalf("List(%s) error = %v", aor, err)
	}
	return got
}

// checkList compares field by field (times with Equal), treating nil and
// empty slices and maps alike since backends store JSON without them.
func checkList(t *testing.T, s store.Bindings, aor string, want []store.Binding) {
	t.Helper()
	if diff := gocmp.Diff(want, mustList(t, s, aor), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("List(%s) mismatch (-want +got):\n%s", aor, diff)
	}
}

// RunBindings checks store.Bindings: insert and refresh, expiry, delete and
// the exactly-once sweep, also with two stores sweeping concurrently.
func RunBindings(t *testing.T, open Opener) {
	const aor = "sip:alice@example.net"

	t.Run("PutRefreshList", func(t *testing.T) {
		t.Parallel()
		s := open(t).Bindings()
		now := time.Now()
		older := newBinding(aor, "a", now.Add(-time.Minute), now.Add(time.Hour))
		newer := newBinding(aor, "b", now.Add(-time.Second), now.Add(time.Hour))
		mustPut(t, s, newer, older)
		checkList(t, s, aor, []store.Binding{older, newer}) // oldest first

		refresh := older
		refresh.Contact = "sip:alice@192.0.2.99:5070"
		refresh.CSeq = 8
		refresh.Expires = now.Add(2 * time.Hour)
		refresh.Created = now // ignored: the stored Created is kept
		refresh.Path = nil
		mustPut(t, s, refresh)
		want := refresh
		want.Created = older.Created
		checkList(t, s, aor, []store.Binding{want, newer})

		fresh := newBinding(aor, "c", time.Time{}, now.Add(time.Hour)) // Created zero: set by Put
		before := time.Now()
		mustPut(t, s, fresh)
		got := mustList(t, s, aor)
		if len(got) != 3 || got[2].Key != "c" {
			t.Fatalf("List() = %+v; want 3 bindings with c last", got)
		}
		if got[2].Created.Before(before.Add(-time.Second)) || got[2].Created.After(time.Now().Add(time.Second)) {
			t.Fatalf("Created = %v, want about %v", got[2].Created, before)
		}
	})

	t.Run("PutPastExpiresRemoves", func(t *testing.T) {
		t.Parallel()
		s := open(t).Bindings()
		now := time.Now()
		keep := newBinding(aor, "keep", now.Add(-time.Minute), now.Add(time.Hour))
		gone := newBinding(aor, "gone", now, now.Add(time.Hour))
		mustPut(t, s, keep, gone)
		unregister := gone
		unregister.Expires = now.Add(-time.Second) // Expires: 0
		mustPut(t, s, unregister)
		absent := newBinding(aor, "never-stored", now, now.Add(-time.Second))
		mustPut(t, s, absent)
		checkList(t, s, aor, []store.Binding{keep})
		swept, err := s.Sweep(t.Context(), time.Now())
		if err != nil {
			t.Fatalf("Sweep() error = %v", err)
		}
		if len(swept) != 0 {
			t.Fatalf("Sweep() = %v, want nothing: a removal is not an expiry", swept)
		}
	})

	t.Run("ExpiryHonouredOnRead", func(t *testing.T) {
		t.Parallel()
		s := open(t).Bindings()
		now := time.Now()
		live := newBinding(aor, "live", now.Add(-time.Minute), now.Add(time.Hour))
		short := newBinding(aor, "short", now.Add(-time.Second), now.Add(time.Second))
		mustPut(t, s, live, short)
		checkList(t, s, aor, []store.Binding{live, short})
		waitFor(t, 5*time.Second, "short binding expires", func() (bool, error) {
			got, err := s.List(t.Context(), aor)
			return len(got) == 1, err
		})
		checkList(t, s, aor, []store.Binding{live})
		if err := s.Delete(t.Context(), aor, "short"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Delete(expired) error = %v, want ErrNotFound", err)
		}

		// Re-registering the key is a new binding (new Created); the
		// expired one is still reported by Sweep, once.
		again := newBinding(aor, "short", time.Now(), time.Now().Add(time.Hour))
		again.Contact = "sip:alice@192.0.2.77"
		mustPut(t, s, again)
		checkList(t, s, aor, []store.Binding{live, again})
		swept, err := s.Sweep(t.Context(), time.Now())
		if err != nil {
			t.Fatalf("Sweep() error = %v", err)
		}
		if diff := gocmp.Diff([]store.Binding{short}, swept, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("Sweep() mismatch (-want +got):\n%s", diff)
		}
		if swept, err := s.Sweep(t.Context(), time.Now()); err != nil || len(swept) != 0 {
			t.Fatalf("second Sweep() = %v, %v; want nothing", swept, err)
		}
		checkList(t, s, aor, []store.Binding{live, again})
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		s := open(t).Bindings()
		now := time.Now()
		a := newBinding(aor, "a", now.Add(-time.Minute), now.Add(time.Hour))
		b := newBinding(aor, "b", now, now.Add(time.Hour))
		mustPut(t, s, a, b)
		tests := []struct {
			name     string
			aor, key string
			wantErr  error
		}{
			{name: "present", aor: aor, key: "a"},
			{name: "again", aor: aor, key: "a", wantErr: store.ErrNotFound},
			{name: "unknown key", aor: aor, key: "zzz", wantErr: store.ErrNotFound},
			{name: "unknown aor", aor: "sip:nobody@example.net", key: "b", wantErr: store.ErrNotFound},
		}
		for _, tt := range tests {
			if err := s.Delete(t.Context(), tt.aor, tt.key); !errors.Is(err, tt.wantErr) {
				t.Fatalf("%s: Delete(%s, %s) error = %v, want %v", tt.name, tt.aor, tt.key, err, tt.wantErr)
			}
		}
		checkList(t, s, aor, []store.Binding{b})
		if err := s.Delete(t.Context(), aor, "b"); err != nil {
			t.Fatalf("Delete(last) error = %v", err)
		}
		checkList(t, s, aor, nil)
	})

	t.Run("DeleteAll", func(t *testing.T) {
		t.Parallel()
		s := open(t).Bindings()
		now := time.Now()
		other := newBinding("sip:bob@example.net", "a", now, now.Add(time.Hour))
		mustPut(t, s,
			newBinding(aor, "a", now, now.Add(time.Hour)),
			newBinding(aor, "b", now, now.Add(time.Hour)),
			newBinding(aor, "c", now, now.Add(time.Hour)),
			other)
		tests := []struct {
			aor  string
			want int
		}{
			{aor: aor, want: 3},
			{aor: aor, want: 0},
			{aor: "sip:nobody@example.net", want: 0},
		}
		for _, tt := range tests {
			n, err := s.DeleteAll(t.Context(), tt.aor)
			if err != nil || n != tt.want {
				t.Fatalf("DeleteAll(%s) = %d, %v; want %d", tt.aor, n, err, tt.want)
			}
		}
		checkList(t, s, aor, nil)
		checkList(t, s, other.AOR, []store.Binding{other})
	})

	t.Run("AORsIsolated", func(t *testing.T) {
		t.Parallel()
		s := open(t).Bindings()
		now := time.Now()
		a := newBinding("sip:a@example.net", "same", now, now.Add(time.Hour))
		b := newBinding("sip:b@example.net", "same", now, now.Add(time.Hour))
		b.Contact = "sip:b@192.0.2.20"
		// Tricky AORs must not bleed into each other (hash tags, prefixes).
		c := newBinding("sip:a@example.net}x", "same", now, now.Add(time.Hour))
		d := newBinding("sip:{a@example.net", "same", now, now.Add(time.Hour))
		mustPut(t, s, a, b, c, d)
		if err := s.Delete(t.Context(), a.AOR, "same"); err != nil {
			t.Fatalf("Delete() error = %v", err)
		}
		checkList(t, s, a.AOR, nil)
		checkList(t, s, b.AOR, []store.Binding{b})
		checkList(t, s, c.AOR, []store.Binding{c})
		checkList(t, s, d.AOR, []store.Binding{d})
		checkList(t, s, "sip:a@example.net}", nil)
	})

	t.Run("Sweep", func(t *testing.T) {
		t.Parallel()
		s := open(t).Bindings()
		now := time.Now()
		var want, live []store.Binding
		for i := range 5 {
			a := fmt.Sprintf("sip:user%d@example.net", i)
			l := newBinding(a, "live", now.Add(-time.Minute), now.Add(2*time.Hour))
			e1 := newBinding(a, "soon1", now, now.Add(time.Hour))
			e2 := newBinding(a, "soon2", now, now.Add(time.Hour+time.Minute))
			mustPut(t, s, l, e1, e2)
			want = append(want, e1, e2)
			live = append(live, l)
		}
		at := now.Add(90 * time.Minute)
		got, err := s.Sweep(t.Context(), at)
		if err != nil {
			t.Fatalf("Sweep() error = %v", err)
		}
		sortBindings(got)
		if diff := gocmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("Sweep() mismatch (-want +got):\n%s", diff)
		}
		if got, err := s.Sweep(t.Context(), at); err != nil || len(got) != 0 {
			t.Fatalf("second Sweep() = %d bindings, %v; want none", len(got), err)
		}
		for _, l := range live {
			checkList(t, s, l.AOR, []store.Binding{l})
		}
	})

	t.Run("SweepConcurrent", func(t *testing.T) {
		t.Parallel()
		stores := []store.Bindings{open(t).Bindings(), open(t).Bindings()} // one backend
		now := time.Now()
		var want []store.Binding
		for i := range 20 {
			a := fmt.Sprintf("sip:user%d@example.net", i)
			e1 := newBinding(a, "e1", now, now.Add(time.Hour))
			e2 := newBinding(a, "e2", now, now.Add(time.Hour+time.Duration(i)*time.Second))
			mustPut(t, stores[i%2], newBinding(a, "live", now, now.Add(3*time.Hour)), e1, e2)
			want = append(want, e1, e2)
		}
		at := now.Add(2 * time.Hour)
		var (
			mu   sync.Mutex
			got  []store.Binding
			wg   sync.WaitGroup
			errs = make(chan error, 8)
		)
		for i := range 8 {
			wg.Go(func() {
				for range 3 {
					bs, err := stores[i%2].Sweep(t.Context(), at)
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					got = append(got, bs...)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Sweep() error = %v", err)
		}
		sortBindings(got)
		sortBindings(want)
		if diff := gocmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("union of concurrent sweeps mismatch (-want +got):\n%s", diff)
		}
	})

	// Writers, readers (whose lazy purges move expired bindings aside) and
	// sweepers on two stores race on the same AORs; in the end every binding
	// put has expired and must have been swept exactly once.
	t.Run("SweepWhileWriting", func(t *testing.T) {
		t.Parallel()
		stores := []store.Bindings{open(t).Bindings(), open(t).Bindings()}
		const writers, each, aors = 4, 40, 5
		start := time.Now()
		var (
			mu      sync.Mutex
			swept   []store.Binding
			want    []store.Binding
			latest  time.Time
			writing sync.WaitGroup
			others  sync.WaitGroup
			errs    = make(chan error, 16)
			stop    = make(chan struct{})
		)
		for w := range writers {
			writing.Go(func() {
				for i := range each {
					b := newBinding(fmt.Sprintf("sip:user%d@example.net", (w+i)%aors), fmt.Sprintf("w%d-%d", w, i),
						start, time.Now().Add(time.Duration(20+(w*each+i)%300)*time.Millisecond))
					if err := stores[w%2].Put(t.Context(), b); err != nil {
						errs <- err
						return
					}
					mu.Lock()
					want = append(want, b)
					if b.Expires.After(latest) {
						latest = b.Expires
					}
					mu.Unlock()
					time.Sleep(time.Millisecond)
				}
			})
		}
		for r := range 4 {
			others.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					s := stores[r%2]
					var err error
					if r < 2 {
						_, err = s.List(t.Context(), fmt.Sprintf("sip:user%d@example.net", i%aors))
					} else {
						var bs []store.Binding
						bs, err = s.Sweep(t.Context(), time.Now())
						mu.Lock()
						swept = append(swept, bs...)
						mu.Unlock()
					}
					if err != nil {
						errs <- err
						return
					}
					time.Sleep(2 * time.Millisecond)
				}
			})
		}
		writing.Wait()
		time.Sleep(time.Until(latest.Add(10 * time.Millisecond)))
		close(stop)
		others.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("error = %v", err)
		}
		final, err := stores[0].Sweep(t.Context(), time.Now())
		if err != nil {
			t.Fatalf("Sweep() error = %v", err)
		}
		swept = append(swept, final...)
		sortBindings(swept)
		sortBindings(want)
		if diff := gocmp.Diff(want, swept, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("swept bindings mismatch (-want +got):\n%s", diff)
		}
		for i := range aors {
			checkList(t, stores[1], fmt.Sprintf("sip:user%d@example.net", i), nil)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		s := open(t).Bindings()
		now := time.Now()
		ok := newBinding(aor, "k", now, now.Add(time.Hour))
		tests := []struct {
			name string
			edit func(*store.Binding)
		}{
			{name: "no aor", edit: func(b *store.Binding) { b.AOR = "" }},
			{name: "no key", edit: func(b *store.Binding) { b.Key = "" }},
			{name: "no contact", edit: func(b *store.Binding) { b.Contact = "" }},
			{name: "no expires", edit: func(b *store.Binding) { b.Expires = time.Time{} }},
		}
		for _, tt := range tests {
			b := ok
			tt.edit(&b)
			if err := s.Put(t.Context(), b); !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("%s: Put() error = %v, want ErrInvalid", tt.name, err)
			}
		}
		checkList(t, s, aor, nil)
		if got, err := s.Sweep(t.Context(), now.Add(48*time.Hour)); err != nil || len(got) != 0 {
			t.Fatalf("Sweep() = %v, %v; want nothing written", got, err)
		}
	})
}
