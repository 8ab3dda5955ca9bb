package storetest

import (
	"context"
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

func newEvent(id string, n int) store.Event {
	return store.Event{
		ID:   id,
		Type: "message.in",
		Time: time.Date(2026, 1, 2, 3, 4, 5, n, time.UTC),
		Data: fmt.Appendf(nil, `{"n":%d}`, n),
	}
}

func mustAppend(t *testing.T, l store.EventLog, user string, e store.Event) uint64 {
	t.Helper()
	seq, _, err := l.Append(t.Context(), user, e)
	if err != nil {
		t.Fatalf("Append(%s) error = %v", user, err)
	}
	return seq
}

func mustLast(t *testing.T, l store.EventLog, user string) uint64 {
	t.Helper()
	last, err := l.Last(t.Context(), user)
	if err != nil {
		t.Fatalf("Last(%s) error = %v", user, err)
	}
	return last
}

func seqs(es []store.Event) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// RunEvents checks store.EventLog: dense sequences, idempotent appends,
// cursors and trimming, Wait, and concurrent appends from one and from two
// stores.
func RunEvents(t *testing.T, open Opener) {
	t.Run("AppendReadLast", func(t *testing.T) {
		t.Parallel()
		l := open(t).Events()
		if last := mustLast(t, l, "alice"); last != 0 {
			t.Fatalf("Last(empty) = %d, want 0", last)
		}
		if got, err := l.Read(t.Context(), "alice", 0, 10); err != nil || len(got) != 0 {
			t.Fatalf("Read(empty) = %v, %v; want none", got, err)
		}
		var want []store.Event
		for i := range 5 {
			e := newEvent("", i)
			seq, created, err := l.Append(t.Context(), "alice", e)
			if err != nil || !created || seq != uint64(i+1) {
				t.Fatalf("Append #%d = %d, %v, %v; want %d, true", i, seq, created, err, i+1)
			}
			e.Seq = seq
			want = append(want, e)
		}
		mustAppend(t, l, "bob", newEvent("", 9)) // other users have their own sequence
		if last := mustLast(t, l, "alice"); last != 5 {
			t.Fatalf("Last() = %d, want 5", last)
		}
		if last := mustLast(t, l, "bob"); last != 1 {
			t.Fatalf("Last(bob) = %d, want 1", last)
		}
		tests := []struct {
			after uint64
			limit int
			want  []store.Event
		}{
			{after: 0, limit: 10, want: want},
			{after: 0, limit: 0, want: want},
			{after: 0, limit: 2, want: want[:2]},
			{after: 1, limit: 1, want: want[1:2]},
			{after: 3, limit: 10, want: want[3:]},
			{after: 5, limit: 10, want: nil},
			{after: 99, limit: 10, want: nil},
		}
		for _, tt := range tests {
			got, err := l.Read(t.Context(), "alice", tt.after, tt.limit)
			if err != nil {
				t.Fatalf("Read(after=%d, limit=%d) error = %v", tt.after, tt.limit, err)
			}
			if diff := gocmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("Read(after=%d, limit=%d) mismatch (-want +got):\n%s", tt.after, tt.limit, diff)
			}
		}
	})

	t.Run("TimeSetWhenZero", func(t *testing.T) {
		t.Parallel()
		l := open(t).Events()
		before := time.Now()
		mustAppend(t, l, "alice", store.Event{Type: "contact.updated"})
		got, err := l.Read(t.Context(), "alice", 0, 1)
		if err != nil || len(got) != 1 {
			t.Fatalf("Read() = %v, %v", got, err)
		}
		if got[0].Time.Before(before.Add(-time.Second)) || got[0].Time.After(time.Now().Add(time.Second)) {
			t.Fatalf("Time = %v, want about %v", got[0].Time, before)
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		t.Parallel()
		l := open(t).Events()
		tests := []struct {
			id          string
			wantSeq     uint64
			wantCreated bool
		}{
			{id: "m1", wantSeq: 1, wantCreated: true},
			{id: "m1", wantSeq: 1, wantCreated: false},
			{id: "", wantSeq: 2, wantCreated: true},
			{id: "", wantSeq: 3, wantCreated: true},
			{id: "m2", wantSeq: 4, wantCreated: true},
			{id: "m1", wantSeq: 1, wantCreated: false},
			{id: "m2", wantSeq: 4, wantCreated: false},
		}
		for i, tt := range tests {
			seq, created, err := l.Append(t.Context(), "alice", newEvent(tt.id, i))
			if err != nil || seq != tt.wantSeq || created != tt.wantCreated {
				t.Fatalf("#%d Append(%q) = %d, %v, %v; want %d, %v", i, tt.id, seq, created, err, tt.wantSeq, tt.wantCreated)
			}
		}
		got, err := l.Read(t.Context(), "alice", 0, 0)
		if err != nil {
			t.Fatalf("Read() error = %v", err)
		}
		if diff := gocmp.Diff([]uint64{1, 2, 3, 4}, seqs(got)); diff != "" {
			t.Fatalf("Read() seqs mismatch (-want +got):\n%s", diff)
		}
		if got[0].Data == nil || string(got[0].Data) != `{"n":0}` {
			t.Fatalf("first entry data = %s, want the first append's", got[0].Data)
		}
		// The same ID for another user is another event.
		if seq, created, err := l.Append(t.Context(), "bob", newEvent("m1", 0)); err != nil || seq != 1 || !created {
			t.Fatalf("Append(bob, m1) = %d, %v, %v; want 1, true", seq, created, err)
		}
	})

	t.Run("TrimAndCursorExpired", func(t *testing.T) {
		t.Parallel()
		l := open(t).Events()
		const n = MaxEvents + 10
		for i := 1; i <= n; i++ {
			mustAppend(t, l, "alice", newEvent(fmt.Sprintf("m%d", i), i))
		}
		oldest := uint64(n - MaxEvents + 1)
		tests := []struct {
			after   uint64
			limit   int
			want    []uint64
			wantErr error
		}{
			{after: 0, limit: 10, wantErr: store.ErrCursorExpired},
			{after: oldest - 2, limit: 10, wantErr: store.ErrCursorExpired},
			{after: oldest - 1, limit: 0, want: seqRange(oldest, n)},
			{after: oldest - 1, limit: 3, want: seqRange(oldest, oldest+2)},
			{after: n - 1, limit: 10, want: []uint64{n}},
			{after: n, limit: 10, want: nil},
		}
		for _, tt := range tests {
			got, err := l.Read(t.Context(), "alice", tt.after, tt.limit)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Read(after=%d) error = %v, want %v", tt.after, err, tt.wantErr)
			}
			if diff := gocmp.Diff(tt.want, seqs(got), cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("Read(after=%d, limit=%d) seqs mismatch (-want +got):\n%s", tt.after, tt.limit, diff)
			}
		}
		// A trimmed ID is forgotten with its entry; a retained one is not.
		if seq, created, err := l.Append(t.Context(), "alice", newEvent("m1", 1)); err != nil || seq != n+1 || !created {
			t.Fatalf("Append(trimmed id) = %d, %v, %v; want %d, true", seq, created, err, n+1)
		}
		if seq, created, err := l.Append(t.Context(), "alice", newEvent(fmt.Sprintf("m%d", n), n)); err != nil || seq != n || created {
			t.Fatalf("Append(retained id) = %d, %v, %v; want %d, false", seq, created, err, n)
		}
	})

	t.Run("WaitImmediate", func(t *testing.T) {
		t.Parallel()
		l := open(t).Events()
		mustAppend(t, l, "alice", newEvent("", 1))
		mustAppend(t, l, "alice", newEvent("", 2))
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		last, err := l.Wait(ctx, "alice", 1)
		if err != nil || last != 2 {
			t.Fatalf("Wait(after=1) = %d, %v; want 2", last, err)
		}
	})

	t.Run("WaitWakesOnAppend", func(t *testing.T) {
		t.Parallel()
		waiter := open(t).Events()
		appender := open(t).Events() // same backend, maybe another client
		mustAppend(t, appender, "alice", newEvent("", 1))
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		type result struct {
			last uint64
			err  error
			at   time.Time
		}
		done := make(chan result, 1)
		go func() {
			last, err := waiter.Wait(ctx, "alice", 1)
			done <- result{last, err, time.Now()}
		}()
		time.Sleep(50 * time.Millisecond) // let Wait block first
		select {
		case r := <-done:
			t.Fatalf("Wait returned %d, %v before any append", r.last, r.err)
		default:
		}
		mustAppend(t, appender, "bob", newEvent("", 1)) // another user: no wake-up
		appended := time.Now()
		mustAppend(t, appender, "alice", newEvent("", 2))
		r := <-done
		if r.err != nil || r.last != 2 {
			t.Fatalf("Wait() = %d, %v; want 2", r.last, r.err)
		}
		if d := r.at.Sub(appended); d > 2*time.Second {
			t.Fatalf("Wait woke %v after the append, want promptly", d)
		}
	})

	t.Run("WaitCancelled", func(t *testing.T) {
		t.Parallel()
		l := open(t).Events()
		mustAppend(t, l, "alice", newEvent("", 1))
		tests := []struct {
			name    string
			ctx     func() (context.Context, context.CancelFunc)
			wantErr error
		}{
			{name: "cancel", wantErr: context.Canceled, ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(100*time.Millisecond, cancel)
				return ctx, cancel
			}},
			{name: "deadline", wantErr: context.DeadlineExceeded, ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(t.Context(), 100*time.Millisecond)
			}},
		}
		for _, tt := range tests {
			ctx, cancel := tt.ctx()
			start := time.Now()
			_, err := l.Wait(ctx, "alice", 1)
			cancel()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("%s: Wait() error = %v, want %v", tt.name, err, tt.wantErr)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("%s: Wait returned after %v, want promptly", tt.name, d)
			}
		}
	})

	appendConcurrently := func(t *testing.T, logs []store.EventLog) {
		const goroutines, each = 8, 200
		var (
			mu   sync.Mutex
			got  []uint64
			wg   sync.WaitGroup
			errs = make(chan error, goroutines)
		)
		for g := range goroutines {
			wg.Go(func() {
				l := logs[g%len(logs)]
				mine := make([]uint64, 0, each)
				for i := range each {
					seq, created, err := l.Append(t.Context(), "alice", newEvent(fmt.Sprintf("g%d-%d", g, i), i))
					if err != nil || !created {
						errs <- fmt.Errorf("append g%d #%d: created=%v: %w", g, i, created, err)
						return
					}
					mine = append(mine, seq)
				}
				if !slices.IsSorted(mine) {
					errs <- fmt.Errorf("goroutine %d saw sequences out of order", g)
				}
				mu.Lock()
				got = append(got, mine...)
				mu.Unlock()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		slices.Sort(got)
		const total = goroutines * each
		if diff := gocmp.Diff(seqRange(1, total), got); diff != "" {
			t.Fatalf("sequences are not exactly 1..%d (-want +got):\n%s", total, diff)
		}
		for _, l := range logs {
			if last := mustLast(t, l, "alice"); last != total {
				t.Fatalf("Last() = %d, want %d", last, total)
			}
		}
		tail, err := logs[0].Read(t.Context(), "alice", total-MaxEvents, 0)
		if err != nil {
			t.Fatalf("Read(tail) error = %v", err)
		}
		if diff := gocmp.Diff(seqRange(total-MaxEvents+1, total), seqs(tail)); diff != "" {
			t.Fatalf("retained tail mismatch (-want +got):\n%s", diff)
		}
	}

	t.Run("ConcurrentAppends", func(t *testing.T) {
		t.Parallel()
		appendConcurrently(t, []store.EventLog{open(t).Events()})
	})

	t.Run("ConcurrentAppendsTwoStores", func(t *testing.T) {
		t.Parallel()
		appendConcurrently(t, []store.EventLog{open(t).Events(), open(t).Events()})
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		l := open(t).Events()
		tests := []struct {
			name string
			user string
			e    store.Event
		}{
			{name: "no user", user: "", e: newEvent("", 1)},
			{name: "no type", user: "alice", e: store.Event{ID: "x", Data: []byte(`{}`)}},
		}
		for _, tt := range tests {
			if _, _, err := l.Append(t.Context(), tt.user, tt.e); !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("%s: Append() error = %v, want ErrInvalid", tt.name, err)
			}
		}
		if last := mustLast(t, l, "alice"); last != 0 {
			t.Fatalf("Last() = %d after invalid appends, want 0", last)
		}
	})
}
