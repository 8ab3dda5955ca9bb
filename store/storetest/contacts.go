package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/convergo/convergo/store"
)

// contactOpts compares contacts without the fields the store sets.
var contactOpts = gocmp.Options{cmpopts.EquateEmpty(), cmpopts.IgnoreFields(store.Contact{}, "Created", "Updated", "Seq")}

func newContact(id, name string) store.Contact {
	return store.Contact{
		ID:     id,
		Name:   store.ContactName{Display: name, Given: name},
		Phones: []store.ContactPhone{{Value: "138 0013 8000", E164: "+8613800138000", Valid: true, Label: "mobile"}},
		Emails: []store.ContactValue{{Value: id + "@example.com"}},
		Tags:   []string{"work"},
		Photo:  &store.ContactPhoto{MediaType: "image/png", Data: []byte{0x89, 'P', 'N', 'G'}},
		Extra:  []store.ContactExtra{{Name: "NICKNAME", Value: name + "y", Params: map[string][]string{"TYPE": {"x"}}}},
	}
}

func put(c store.Contact, expect uint64) store.ContactOp {
	return store.ContactOp{Contact: c, Expect: expect}
}

func del(id string, expect uint64) store.ContactOp {
	return store.ContactOp{Delete: true, Contact: store.Contact{ID: id}, Expect: expect}
}

func mustApply(t *testing.T, c store.Contacts, user string, limit int, ops ...store.ContactOp) []store.Contact {
	t.Helper()
	out, err := c.Apply(t.Context(), user, ops, limit)
	if err != nil {
		t.Fatalf("Apply(%s) error = %v", user, err)
	}
	if len(out) != len(ops) {
		t.Fatalf("Apply(%s) returned %d contacts for %d ops", user, len(out), len(ops))
	}
	return out
}

// changes returns the contact changes of user's log after seq.
func changes(t *testing.T, l store.EventLog, user string, after uint64) []string {
	t.Helper()
	evs, err := l.Read(t.Context(), user, after, 0)
	if err != nil {
		t.Fatalf("Read(%s, %d) error = %v", user, after, err)
	}
	var out []string
	for _, e := range evs {
		var ch store.ContactChange
		if err := json.Unmarshal(e.Data, &ch); err != nil {
			t.Fatalf("event %d data %q: %v", e.Seq, e.Data, err)
		}
		s := fmt.Sprintf("%d %s %s v%d", e.Seq, e.Type, ch.ID, ch.Version)
		if ch.MergedInto != "" {
			s += " into " + ch.MergedInto
		}
		out = append(out, s)
	}
	return out
}

// RunContacts checks store.Contacts: versions and tombstones, the change
// events written with each contact in the same atomic step, all-or-nothing
// batches, the per-user limit, concurrent writers from two stores, and the
// interaction records.
func RunContacts(t *testing.T, open Opener) {
	t.Run("CreateGetList", func(t *testing.T) {
		t.Parallel()
		st := open(t)
		cs := st.Contacts()
		before := time.Now().Add(-time.Second)
		mustAppend(t, st.Events(), "alice", store.Event{Type: "message.in"}) // the feed is the user's one log
		got := mustApply(t, cs, "alice", 0, put(newContact("c1", "Ann"), 0))[0]
		want := newContact("c1", "Ann")
		want.Version = 1
		if diff := gocmp.Diff(want, got, contactOpts); diff != "" {
			t.Fatalf("Apply() result (-want +got):\n%s", diff)
		}
		if got.Seq != 2 || got.Created.Before(before) || !got.Updated.Equal(got.Created) {
			t.Fatalf("Apply() Seq = %d, Created = %v, Updated = %v; want seq 2 and both now", got.Seq, got.Created, got.Updated)
		}
		g, err := cs.Get(t.Context(), "alice", "c1")
		if err != nil {
			t.Fatalf("Get() error = %v", err)
		}
		if diff := gocmp.Diff(got, g, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("Get() (-applied +got):\n%s", diff)
		}
		list, seq, err := cs.List(t.Context(), "alice")
		if err != nil || seq != 2 || len(list) != 1 || list[0].ID != "c1" {
			t.Fatalf("List() = %v, seq %d, %v; want [c1], 2", list, seq, err)
		}
		if n, err := cs.Count(t.Context(), "alice"); err != nil || n != 1 {
			t.Fatalf("Count() = %d, %v; want 1", n, err)
		}
		if got := changes(t, st.Events(), "alice", 1); !slices.Equal(got, []string{"2 contact.upsert c1 v1"}) {
			t.Fatalf("change feed = %q", got)
		}
		if _, err := cs.Get(t.Context(), "alice", "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get(unknown) error = %v, want ErrNotFound", err)
		}
		if _, err := cs.Get(t.Context(), "bob", "c1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get(other user's id) error = %v, want ErrNotFound", err)
		}
		if list, seq, err := cs.List(t.Context(), "bob"); err != nil || len(list) != 0 || seq != 0 {
			t.Fatalf("List(empty) = %v, %d, %v", list, seq, err)
		}
	})

	t.Run("VersionsAndConflicts", func(t *testing.T) {
		t.Parallel()
		st := open(t)
		cs := st.Contacts()
		first := mustApply(t, cs, "alice", 0, put(newContact("c1", "Ann"), 0))[0]
		last := mustLast(t, st.Events(), "alice")
		tests := []struct {
			name string
			op   store.ContactOp
			want error
		}{
			{name: "create over live", op: put(newContact("c1", "Ann"), 0), want: store.ErrExists},
			{name: "stale version", op: put(newContact("c1", "Ann"), 7), want: store.ErrConflict},
			{name: "unknown id", op: put(newContact("c9", "Zed"), 1), want: store.ErrNotFound},
			{name: "delete stale", op: del("c1", 2), want: store.ErrConflict},
			{name: "delete unknown", op: del("c9", 1), want: store.ErrNotFound},
			{name: "no id", op: put(store.Contact{}, 0), want: store.ErrInvalid},
		}
		for _, tt := range tests {
			if _, err := cs.Apply(t.Context(), "alice", []store.ContactOp{tt.op}, 0); !errors.Is(err, tt.want) {
				t.Errorf("%s: Apply() error = %v, want %v", tt.name, err, tt.want)
			}
		}
		if l := mustLast(t, st.Events(), "alice"); l != last {
			t.Fatalf("refused writes appended events: Last = %d, want %d", l, last)
		}
		upd := newContact("c1", "Anne")
		second := mustApply(t, cs, "alice", 0, put(upd, 1))[0]
		if second.Version != 2 || !second.Created.Equal(first.Created) || !second.Updated.After(first.Updated) && !second.Updated.Equal(first.Updated) {
			t.Fatalf("replace: Version %d Created %v (first %v); want 2 and Created kept", second.Version, second.Created, first.Created)
		}
		if second.Name.Display != "Anne" {
			t.Fatalf("replace did not store the new name: %+v", second.Name)
		}
	})

	t.Run("DeleteLeavesTombstone", func(t *testing.T) {
		t.Parallel()
		st := open(t)
		cs := st.Contacts()
		mustApply(t, cs, "alice", 0, put(newContact("c1", "Ann"), 0), put(newContact("c2", "Bob"), 0))
		tomb := mustApply(t, cs, "alice", 0, del("c1", 1))[0]
		want := store.Contact{ID: "c1", Version: 2, Deleted: true}
		if diff := gocmp.Diff(want, tomb, contactOpts); diff != "" {
			t.Fatalf("tombstone (-want +got):\n%s", diff)
		}
		if g, err := cs.Get(t.Context(), "alice", "c1"); err != nil || !g.Deleted || g.Version != 2 {
			t.Fatalf("Get(deleted) = %+v, %v; want the tombstone", g, err)
		}
		list, _, err := cs.List(t.Context(), "alice")
		if err != nil || len(list) != 1 || list[0].ID != "c2" {
			t.Fatalf("List() = %v, %v; want only c2", list, err)
		}
		if n, _ := cs.Count(t.Context(), "alice"); n != 1 {
			t.Fatalf("Count() = %d, want 1", n)
		}
		for _, op := range []store.ContactOp{del("c1", 2), put(newContact("c1", "Ann"), 2)} {
			if _, err := cs.Apply(t.Context(), "alice", []store.ContactOp{op}, 0); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("write to a tombstone: error = %v, want ErrNotFound", err)
			}
		}
		again := mustApply(t, cs, "alice", 0, put(newContact("c1", "Ann"), 0))[0]
		if again.Version != 3 || again.Deleted {
			t.Fatalf("re-create after delete: Version %d Deleted %v; want 3, live (ETags never repeat)", again.Version, again.Deleted)
		}
		got := changes(t, st.Events(), "alice", 0)
		wantFeed := []string{"1 contact.upsert c1 v1", "2 contact.upsert c2 v1", "3 contact.delete c1 v2", "4 contact.upsert c1 v3"}
		if diff := gocmp.Diff(wantFeed, got); diff != "" {
			t.Fatalf("change feed (-want +got):\n%s", diff)
		}
	})

	t.Run("ApplyAllOrNothing", func(t *testing.T) {
		t.Parallel()
		st := open(t)
		cs := st.Contacts()
		mustApply(t, cs, "alice", 0, put(newContact("a", "Ann"), 0), put(newContact("b", "Ann B"), 0))
		last := mustLast(t, st.Events(), "alice")
		_, err := cs.Apply(t.Context(), "alice", []store.ContactOp{put(newContact("a", "Ann 2"), 1), del("b", 5)}, 0)
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Apply(one stale op) error = %v, want ErrConflict", err)
		}
		if g, _ := cs.Get(t.Context(), "alice", "a"); g.Version != 1 || g.Name.Display != "Ann" {
			t.Fatalf("the good op of a failed batch was written: %+v", g)
		}
		if l := mustLast(t, st.Events(), "alice"); l != last {
			t.Fatalf("a failed batch appended events: Last = %d, want %d", l, last)
		}
		// A merge: keep a, delete b into a, atomically, two events in order.
		out := mustApply(t, cs, "alice", 0, put(newContact("a", "Ann merged"), 1),
			store.ContactOp{Delete: true, Contact: store.Contact{ID: "b", MergedInto: "a"}, Expect: 1})
		if out[1].MergedInto != "a" || !out[1].Deleted || out[0].Seq+1 != out[1].Seq {
			t.Fatalf("merge result = %+v", out)
		}
		got := changes(t, st.Events(), "alice", last)
		want := []string{fmt.Sprintf("%d contact.upsert a v2", last+1), fmt.Sprintf("%d contact.delete b v2 into a", last+2)}
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Fatalf("merge feed (-want +got):\n%s", diff)
		}
		many, err := cs.GetMany(t.Context(), "alice", []string{"b", "zz", "a"})
		if err != nil || len(many) != 2 || many[0].ID != "b" || many[1].ID != "a" || !many[0].Deleted {
			t.Fatalf("GetMany(b, zz, a) = %+v, %v; want b (tombstone), a", many, err)
		}
	})

	t.Run("Limit", func(t *testing.T) {
		t.Parallel()
		cs := open(t).Contacts()
		mustApply(t, cs, "alice", 2, put(newContact("a", "A"), 0), put(newContact("b", "B"), 0))
		if _, err := cs.Apply(t.Context(), "alice", []store.ContactOp{put(newContact("c", "C"), 0)}, 2); !errors.Is(err, store.ErrContactLimit) {
			t.Fatalf("create over the limit: error = %v, want ErrContactLimit", err)
		}
		mustApply(t, cs, "alice", 2, put(newContact("a", "A2"), 1)) // updates are fine at the limit
		mustApply(t, cs, "alice", 2, del("b", 1), put(newContact("c", "C"), 0))
		if n, _ := cs.Count(t.Context(), "alice"); n != 2 {
			t.Fatalf("Count() = %d, want 2", n)
		}
		mustApply(t, cs, "bob", 2, put(newContact("a", "A"), 0)) // per user
	})

	t.Run("ConcurrentWriters", func(t *testing.T) {
		t.Parallel()
		st1, st2 := open(t), open(t)
		mustApply(t, st1.Contacts(), "alice", 0, put(newContact("c", "v0"), 0))
		// At most writers*rounds+1 versions, so the change feed (MaxEvents)
		// keeps every event even when the scheduler lets every write win.
		const writers, rounds = 6, 8
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins = map[uint64]int{}
		)
		for w := range writers {
			cs := st1.Contacts()
			if w%2 == 1 {
				cs = st2.Contacts()
			}
			wg.Go(func() {
				for r := range rounds {
					cur, err := cs.Get(t.Context(), "alice", "c")
					if err != nil {
						t.Errorf("Get() error = %v", err)
						return
					}
					out, err := cs.Apply(t.Context(), "alice", []store.ContactOp{put(newContact("c", fmt.Sprintf("w%d r%d", w, r)), cur.Version)}, 0)
					switch {
					case err == nil:
						mu.Lock()
						wins[out[0].Version]++
						mu.Unlock()
					case !errors.Is(err, store.ErrConflict):
						t.Errorf("Apply() error = %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		final, err := st1.Contacts().Get(t.Context(), "alice", "c")
		if err != nil {
			t.Fatal(err)
		}
		if len(wins) != int(final.Version)-1 {
			t.Fatalf("%d writes won for %d versions: some write was lost or counted twice", len(wins), final.Version-1)
		}
		for v, n := range wins {
			if n != 1 {
				t.Fatalf("version %d was won %d times", v, n)
			}
		}
		if got := changes(t, st1.Events(), "alice", 0); len(got) != int(final.Version) {
			t.Fatalf("%d change events for %d versions", len(got), final.Version)
		}
	})

	t.Run("FeedTrimmed", func(t *testing.T) {
		t.Parallel()
		st := open(t)
		cs := st.Contacts()
		mustApply(t, cs, "alice", 0, put(newContact("c", "v"), 0))
		for v := uint64(1); v <= MaxEvents; v++ {
			mustApply(t, cs, "alice", 0, put(newContact("c", "v"), v))
		}
		if _, err := st.Events().Read(t.Context(), "alice", 0, 10); !errors.Is(err, store.ErrCursorExpired) {
			t.Fatalf("Read(0) after %d writes: error = %v, want ErrCursorExpired", MaxEvents+1, err)
		}
		if _, seq, err := cs.List(t.Context(), "alice"); err != nil || seq != MaxEvents+1 {
			t.Fatalf("List() seq = %d, %v; want %d", seq, err, MaxEvents+1)
		}
	})

	t.Run("Interactions", func(t *testing.T) {
		t.Parallel()
		cs := open(t).Contacts()
		const hl = time.Hour
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		recN := func(key string, at time.Time, n, maxKeys int) store.Interaction {
			t.Helper()
			r, err := cs.RecordInteraction(t.Context(), "alice", key, at, n, hl, maxKeys)
			if err != nil {
				t.Fatalf("RecordInteraction(%s) error = %v", key, err)
			}
			return r
		}
		rec := func(key string, at time.Time, maxKeys int) store.Interaction {
			t.Helper()
			return recN(key, at, 1, maxKeys)
		}
		rec("c1", t0, 0)
		r := rec("c1", t0.Add(hl), 0) // one half-life later: 1/2 + 1
		if r.Count != 2 || math.Abs(r.Score-1.5) > 1e-9 || !r.Last.Equal(t0.Add(hl)) {
			t.Fatalf("second interaction = %+v, want count 2, score 1.5", r)
		}
		r = rec("c1", t0, 0) // out of order: weighs what it weighs at Last
		if r.Count != 3 || math.Abs(r.Score-2) > 1e-9 || !r.Last.Equal(t0.Add(hl)) {
			t.Fatalf("older interaction = %+v, want count 3, score 2, Last unchanged", r)
		}
		// n interactions at once weigh what n single ones at the same time do.
		r = recN("c1", t0.Add(hl), 3, 0) // at Last: 2 plus 3
		if r.Count != 6 || math.Abs(r.Score-5) > 1e-9 || !r.Last.Equal(t0.Add(hl)) {
			t.Fatalf("three interactions at once = %+v, want count 6, score 5", r)
		}
		r = recN("c1", t0.Add(2*hl), 2, 0) // one half-life later: 5/2 plus 2
		if r.Count != 8 || math.Abs(r.Score-4.5) > 1e-9 || !r.Last.Equal(t0.Add(2*hl)) {
			t.Fatalf("two interactions at once, later = %+v, want count 8, score 4.5", r)
		}
		if _, err := cs.RecordInteraction(t.Context(), "alice", "c1", t0, 0, hl, 0); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("RecordInteraction(n=0) error = %v, want ErrInvalid", err)
		}
		rec("tel:+8613800138000", t0.Add(3*hl), 3)
		rec("sip:bob@example.net", t0.Add(4*hl), 3)
		rec("tel:+12025550143", t0.Add(5*hl), 3) // over the cap: c1, the least recent, goes
		all, err := cs.Interactions(t.Context(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, r := range all {
			keys = append(keys, r.Key)
		}
		slices.Sort(keys)
		if want := []string{"sip:bob@example.net", "tel:+12025550143", "tel:+8613800138000"}; !slices.Equal(keys, want) {
			t.Fatalf("Interactions() keys = %v, want %v", keys, want)
		}
		if all, err := cs.Interactions(t.Context(), "bob"); err != nil || len(all) != 0 {
			t.Fatalf("Interactions(bob) = %v, %v", all, err)
		}
	})
}
