package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/convergo/convergo/store"
	"github.com/convergo/convergo/store/redistest"
	"github.com/convergo/convergo/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// opener gives each test its own key prefix on the shared server; a second
// call with the same t opens a second client on that prefix.
func opener(base Config) storetest.Opener {
	var (
		mu       sync.Mutex
		n        int
		prefixes = make(map[*testing.T]string)
	)
	return func(t *testing.T) store.Store {
		mu.Lock()
		p, ok := prefixes[t]
		if !ok {
			n++
			p = fmt.Sprintf("t%d:", n)
			prefixes[t] = p
			t.Cleanup(func() {
				mu.Lock()
				delete(prefixes, t)
				mu.Unlock()
			})
		}
		mu.Unlock()
		cfg := base
		cfg.KeyPrefix = p
		cfg.MaxEvents = storetest.MaxEvents
		return openStore(t, cfg)
	}
}

func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(t.Context(), cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("Open() error = %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() error = %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	addr := redistest.StartServer(t)
	storetest.Run(t, opener(Config{Addrs: []string{addr}}))
}

func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	addrs := redistest.StartCluster(t, 3)
	storetest.Run(t, opener(Config{Addrs: addrs}))
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // message prefixes, in order
	}{
		{name: "url", cfg: Config{URL: "redis://:pw@localhost:6379/2"}},
		{name: "tls url", cfg: Config{URL: "rediss://localhost:6380"}},
		{name: "single", cfg: Config{Addrs: []string{"localhost:6379"}, DB: 3}},
		{name: "cluster", cfg: Config{Addrs: []string{"a:1", "b:2", "c:3"}, PoolSize: 20}},
		{name: "sentinel", cfg: Config{Addrs: []string{"s1:26379", "s2:26379"}, MasterName: "mymaster", DB: 1}},
		{name: "nothing", cfg: Config{}, want: []string{"url: one of url and addrs is required"}},
		{name: "both", cfg: Config{URL: "redis://h:1", Addrs: []string{"h:1"}}, want: []string{"url: set either url or addrs"}},
		{name: "scheme", cfg: Config{URL: "http://user:secret@h:1"}, want: []string{"url: scheme must be redis or rediss"}},
		{name: "bad addr", cfg: Config{Addrs: []string{"nohost"}}, want: []string{"addrs[0]:"}},
		{
			name: "many",
			cfg: Config{
				Addrs: []string{"a:1", "b:2"}, DB: 2, KeyPrefix: "x{", PoolSize: -1,
				MaxEvents: -1, SweepInterval: -time.Second,
			},
			want: []string{"db: must be 0 in cluster mode", "key_prefix:", "pool_size:", "max_events:", "sweep_interval:"},
		},
		{name: "sentinel cluster", cfg: Config{Addrs: []string{"s:1"}, MasterName: "m", Cluster: true}, want: []string{"cluster: cannot be combined"}},
		{name: "sentinel url", cfg: Config{URL: "redis://h:1", MasterName: "m"}, want: []string{"master_name:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() error = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("Validate() = %q leaks the password", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("Validate() = %q, want %d problems", err, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("problem %d = %q, want prefix %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestOpenURLAndErrors(t *testing.T) {
	t.Parallel()
	addr := redistest.StartServer(t)
	s := openStore(t, Config{URL: "redis://" + addr + "/3"})
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping() error = %v", err)
	}
	if got := s.rdb.(*goredis.Client).Options().DB; got != 3 {
		t.Fatalf("DB = %d, want 3 from the URL", got)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err := Open(ctx, Config{URL: "redis://user:secret@127.0.0.1:1"}, nil)
	if err == nil {
		t.Fatal("Open() of a closed port succeeded")
	}
	if strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("Open() error = %q, want the address and no password", err)
	}
	if _, err := Open(ctx, Config{}, nil); err == nil || !strings.Contains(err.Error(), "url:") {
		t.Fatalf("Open(invalid) error = %v, want the validation problem", err)
	}
}

// TestWaitUsesPubSub turns polling off, so only the Pub/Sub hint can wake
// Wait, and checks the subscription follows the waiters.
func TestWaitUsesPubSub(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		addrs func(t *testing.T) []string
	}{
		{"single", func(t *testing.T) []string { return []string{redistest.StartServer(t)} }},
		{"cluster", func(t *testing.T) []string { return redistest.StartCluster(t, 3) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{Addrs: tc.addrs(t), KeyPrefix: "w:"}
			waiter, appender := openStore(t, cfg), openStore(t, cfg)
			waiter.poll = time.Hour
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			got := make(chan error, 1)
			go func() {
				_, err := waiter.Events().Wait(ctx, "alice", 0)
				got <- err
			}()
			channel := waiter.keys.wake("alice")
			waitUntil(t, "subscribed", func() bool {
				n, err := appender.rdb.PubSubNumSub(ctx, channel).Result()
				return err == nil && n[channel] == 1
			})
			// Pub/Sub may lose a message (a reconnect under load), which is
			// why Wait also polls; here one of a few appends must get through.
			retry := time.NewTimer(0)
			defer retry.Stop()
			for appends := 0; ; {
				select {
				case err := <-got:
					if err != nil {
						t.Fatalf("Wait() error = %v after %d appends", err, appends)
					}
				case <-retry.C:
					if appends == 3 {
						t.Fatalf("Wait() not woken by %d appends", appends)
					}
					if _, _, err := appender.Events().Append(ctx, "alice", store.Event{Type: "message.in"}); err != nil {
						t.Fatal(err)
					}
					appends++
					retry.Reset(2 * time.Second)
					continue
				}
				break
			}
			waitUntil(t, "unsubscribed", func() bool {
				n, err := appender.rdb.PubSubNumSub(ctx, channel).Result()
				return err == nil && n[channel] == 0 && waiter.wait.Len() == 0
			})
		})
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCloseAndRun(t *testing.T) {
	t.Parallel()
	addr := redistest.StartServer(t)
	s := openStore(t, Config{Addrs: []string{addr}, SweepInterval: 20 * time.Millisecond})
	ctx := t.Context()

	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(runCtx) }()
	stop()
	if err := <-runErr; err != nil {
		t.Fatalf("Run() = %v, want nil on ctx end", err)
	}

	waitErr := make(chan error, 1)
	go func() {
		_, err := s.Events().Wait(ctx, "alice", 0)
		waitErr <- err
	}()
	waitUntil(t, "waiting", func() bool { return s.wait.Len() == 1 })
	if err := s.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	if err := <-waitErr; !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Wait() after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close() error = %v", err)
	}
	if _, _, err := s.Events().Append(ctx, "alice", store.Event{Type: "x"}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Append() after Close = %v, want ErrClosed", err)
	}
	if err := s.Run(ctx); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Run() after Close = %v, want ErrClosed", err)
	}
}

// TestKeysShareSlot asks a cluster node where each script's keys live.
func TestKeysShareSlot(t *testing.T) {
	t.Parallel()
	addrs := redistest.StartCluster(t, 1)
	rdb := goredis.NewClient(&goredis.Options{Addr: addrs[0]})
	defer rdb.Close()
	k := keys{"convergo:"}
	for _, name := range []string{"sip:alice@example.net", "a}b{c", "{", "}", ""} {
		for _, group := range [][]string{k.binding(name), k.events(name), k.users(), {k.refresh(name), k.family("f" + name)}} {
			var slots []int64
			for _, key := range group {
				slot, err := rdb.ClusterKeySlot(t.Context(), key).Result()
				if err != nil {
					t.Fatal(err)
				}
				slots = append(slots, slot)
			}
			for _, s := range slots[1:] {
				if s != slots[0] {
					t.Errorf("keys %q hash to slots %v, want one slot", group, slots)
					break
				}
			}
		}
	}
}
