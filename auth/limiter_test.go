package auth

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestLRU(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLRU[string, int](3)
	l.put("a", 1, now.Add(time.Minute), now)
	l.put("b", 2, now.Add(time.Second), now)
	l.put("c", 3, now.Add(time.Minute), now)
	if v, ok := l.get("a", now); !ok || v != 1 {
		t.Fatalf("get(a) = %v, %v", v, ok)
	}
	l.put("a", 10, now.Add(time.Minute), now) // touch a: b is now oldest
	ev, ok := l.put("d", 4, now.Add(time.Minute), now)
	if !ok || ev.key != "b" {
		t.Fatalf("evicted %v %v, want b", ev.key, ok)
	}
	if _, ok := l.get("b", now); ok {
		t.Fatal("b still present")
	}
	if l.len() != 3 {
		t.Fatalf("len = %d, want 3", l.len())
	}
	// Expiry: get hides and drops expired entries; put sweeps the front.
	later := now.Add(2 * time.Minute)
	if _, ok := l.get("c", later); ok {
		t.Fatal("expired c returned")
	}
	if _, ok := l.put("e", 5, later.Add(time.Minute), later); ok {
		t.Fatal("put evicted a live entry although others had expired")
	}
	if l.len() != 1 {
		t.Fatalf("len after sweep = %d, want 1", l.len())
	}
	l.delete("e")
	l.delete("missing")
	if l.len() != 0 {
		t.Fatalf("len after delete = %d", l.len())
	}
}

func TestLimiter(t *testing.T) {
	cfg := Config{}.WithDefaults().RateLimit // 5 per minute, 1 minute block
	l := newLimiter(cfg)
	now := time.Unix(1_700_000_000, 0)
	for i := range 4 {
		if d := l.fail(now.Add(time.Duration(i)*time.Second), "u:alice"); d != 0 {
			t.Fatalf("failure %d blocked for %s", i+1, d)
		}
	}
	if d := l.blocked("u:alice", now.Add(4*time.Second)); d != 0 {
		t.Fatalf("blocked after 4 failures: %s", d)
	}
	if d := l.fail(now.Add(5*time.Second), "u:alice", "a:192.0.2.1"); d != time.Minute {
		t.Fatalf("5th failure: block %s, want 1m", d)
	}
	if d := l.blocked("u:alice", now.Add(35*time.Second)); d != 30*time.Second {
		t.Fatalf("blocked = %s, want 30s", d)
	}
	if d := l.blocked("a:192.0.2.1", now); d != 0 {
		t.Fatalf("address blocked after one failure: %s", d)
	}
	if d := l.blocked("u:alice", now.Add(65*time.Second)); d != 0 {
		t.Fatalf("still blocked after the block: %s", d)
	}
	// Failures spread over more than a window never block.
	for i := range 20 {
		if d := l.fail(now.Add(time.Duration(i)*15*time.Second), "u:slow"); d != 0 {
			t.Fatalf("slow failure %d blocked", i)
		}
	}
	l.reset("u:alice")
	if d := l.blocked("u:alice", now.Add(6*time.Second)); d != 0 {
		t.Fatalf("blocked after reset: %s", d)
	}
}

func TestLimiterBounded(t *testing.T) {
	cfg := RateLimitConfig{MaxFailures: 1, Window: time.Minute, Block: time.Minute, MaxKeys: 100}
	l := newLimiter(cfg)
	now := time.Unix(0, 0)
	for i := range 1000 {
		l.fail(now, fmt.Sprintf("a:%d", i))
	}
	if n := l.m.len(); n != 100 {
		t.Fatalf("tracked %d keys, want the cap 100", n)
	}
	if l.blocked("a:999", now) == 0 || l.blocked("a:0", now) != 0 {
		t.Fatal("want newest tracked and oldest evicted")
	}
}

func TestAddrKey(t *testing.T) {
	tests := map[string]string{
		"192.0.2.1":            "a:192.0.2.1",
		"::ffff:192.0.2.1":     "a:192.0.2.1",
		"2001:db8:1:2:3:4:5:6": "a:2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "a:2001:db8:1:2::/64",
		"2001:db8:1:3::1":      "a:2001:db8:1:3::/64",
		"fe80::1%eth0":         "a:fe80::/64",
	}
	for in, want := range tests {
		if got := addrKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("addrKey(%s) = %s, want %s", in, got, want)
		}
	}
	if got := addrKey(netip.Addr{}); got != "a:invalid IP" {
		t.Errorf("addrKey(zero) = %s", got)
	}
}
