package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/convergo/convergo/store"
	"github.com/convergo/convergo/store/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv("CONVERGO_BOLT_HOLD_LOCK") != "" {
		holdLock() // helper process for TestOpenLocked
		return
	}
	goleak.VerifyTestMain(m)
}

func openTemp(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "data", "convergo.db")
	}
	s, err := Open(cfg, zap.NewNop())
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

// opener gives each test its own file; a second call with the same t
// returns the same *Store (bbolt locks the file for one opener).
func opener() storetest.Opener {
	var (
		mu     sync.Mutex
		stores = make(map[*testing.T]*Store)
	)
	return func(t *testing.T) store.Store {
		mu.Lock()
		defer mu.Unlock()
		if s := stores[t]; s != nil {
			return s
		}
		s, err := Open(Config{
			Path:      filepath.Join(t.TempDir(), "convergo.db"),
			MaxEvents: storetest.MaxEvents,
		}, zaptest.NewLogger(t))
		if err != nil {
			t.Fatalf("Open() error = %v", err)
		}
		stores[t] = s
		t.Cleanup(func() {
			mu.Lock()
			delete(stores, t)
			mu.Unlock()
			if err := s.Close(); err != nil {
				t.Errorf("Close() error = %v", err)
			}
		})
		return s
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, opener())
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings, in order of the joined message
	}{
		{name: "zero is valid", cfg: Config{}},
		{name: "full", cfg: Config{Path: "/var/lib/convergo/c.db", SweepInterval: time.Minute, MaxEvents: 5}},
		{name: "directory", cfg: Config{Path: "/var/lib/convergo/"}, want: []string{"path: must name a file"}},
		{
			name: "negatives",
			cfg:  Config{SweepInterval: -time.Second, MaxEvents: -1},
			want: []string{"sweep_interval: must be positive", "max_events: must be positive"},
		},
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

func TestOpenCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "convergo.db")
	openTemp(t, Config{Path: path})
	for _, tc := range []struct {
		path string
		want os.FileMode
	}{{dir, 0o700}, {path, 0o600}} {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != tc.want {
			t.Errorf("mode of %s = %v, want %v", tc.path, fi.Mode().Perm(), tc.want)
		}
	}
}

// holdLock runs in a child process: it opens the file named by the
// environment, says so on stdout and keeps the lock until stdin closes.
func holdLock() {
	s, err := Open(Config{Path: os.Getenv("CONVERGO_BOLT_HOLD_LOCK")}, nil)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	_, _ = os.Stdin.Read(make([]byte, 1))
	_ = s.Close()
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "convergo.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CONVERGO_BOLT_HOLD_LOCK="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}()
	buf := make([]byte, 64)
	n, _ := stdout.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "locked") {
		t.Fatalf("helper said %q, want locked", buf[:n])
	}

	start := time.Now()
	s, err := Open(Config{Path: path}, nil)
	if err == nil {
		_ = s.Close()
		t.Fatal("Open() of a locked file succeeded")
	}
	if !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("Open() error = %v, want it to say the file is locked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open() took %v, want about %v", d, lockTimeout)
	}
}

func TestCloseAndRun(t *testing.T) {
	s := openTemp(t, Config{SweepInterval: 10 * time.Millisecond, MaxEvents: 10})
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping() error = %v", err)
	}

	// Run sweeps on its own: an expired revocation vanishes from the
	// expiry index (bindings are left to their owner's Sweep).
	now := time.Now()
	if err := s.Tokens().Revoke(ctx, "jti", now.Add(50*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(runCtx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var left int
		_ = s.view(func(tx *bbolt.Tx) error {
			left = bucket(tx, bucketTokenExpiry).Stats().KeyN
			return nil
		})
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d expiry entries left after Run", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-runErr; err != nil {
		t.Fatalf("Run() = %v, want nil on ctx end", err)
	}

	// Close wakes a blocked Wait, and the waiter set is empty afterwards.
	waitErr := make(chan error, 1)
	go func() {
		_, err := s.Events().Wait(ctx, "alice", 0)
		waitErr <- err
	}()
	for s.wait.Len() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	if err := <-waitErr; !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Wait() after Close = %v, want ErrClosed", err)
	}
	if n := s.wait.Len(); n != 0 {
		t.Fatalf("waiter set holds %d users after Wait returned", n)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close() error = %v", err)
	}
	if _, err := s.Events().Last(ctx, "alice"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Last() after Close = %v, want ErrClosed", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Ping() after Close = %v, want ErrClosed", err)
	}
	if err := s.Run(ctx); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Run() after Close = %v, want ErrClosed", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "convergo.db")
	s, err := Open(Config{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, _, err := s.Events().Append(t.Context(), "alice", store.Event{Type: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTemp(t, Config{Path: path})
	seq, _, err := s.Events().Append(t.Context(), "alice", store.Event{Type: "x"})
	if err != nil || seq != 4 {
		t.Fatalf("Append() after reopen = %d, %v; want 4", seq, err)
	}
}
