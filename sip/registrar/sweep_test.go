package registrar

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/emiago/sipgo"
	"go.uber.org/zap"

	"github.com/convergo/convergo/store"
	"github.com/convergo/convergo/store/bolt"
)

// TestRunSweepsExpiredBindings drives Run under a fake clock: a binding is
// reported Removed once, one SweepInterval after it expired; a live one
// stays.
func TestRunSweepsExpiredBindings(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		st, err := bolt.Open(bolt.Config{Path: filepath.Join(dir, "sweep.db")}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ua, err := sipgo.NewUA()
		if err != nil {
			t.Fatal(err)
		}
		defer ua.Close()
		r, err := New(Config{SweepInterval: 10 * time.Second}, Deps{
			Bindings: st.Bindings(), Sweeper: st.Bindings(), Users: st.Users(), Auth: authAdapter{},
			UA: ua, Node: "n1", Listeners: func() []Listener { return []Listener{{Transport: "udp", Addr: "127.0.0.1:5060"}} },
		}, zap.NewNop(), nil)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var removed []string
		r.Subscribe(func(ev Event) {
			mu.Lock()
			defer mu.Unlock()
			if ev.Kind == Removed {
				removed = append(removed, ev.Binding.Key)
			}
		})
		now := time.Now()
		for key, ttl := range map[string]time.Duration{"short": 90 * time.Second, "long": time.Hour} {
			b := store.Binding{AOR: "sip:p@" + domain, Key: key, Contact: "sip:p@192.0.2.1", Expires: now.Add(ttl), Source: SourceDirect}
			if err := st.Bindings().Put(context.Background(), b); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()

		time.Sleep(89 * time.Second)
		synctest.Wait()
		mu.Lock()
		if len(removed) != 0 {
			t.Errorf("removed %v before expiry", removed)
		}
		mu.Unlock()

		time.Sleep(11 * time.Second) // past expiry plus one sweep
		synctest.Wait()
		mu.Lock()
		if len(removed) != 1 || removed[0] != "short" {
			t.Errorf("removed = %v, want [short]", removed)
		}
		mu.Unlock()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
		bs, err := st.Bindings().List(context.Background(), "sip:p@"+domain)
		if err != nil || len(bs) != 1 || bs[0].Key != "long" {
			t.Errorf("left %+v, %v; want the long binding", bs, err)
		}
	})
}
