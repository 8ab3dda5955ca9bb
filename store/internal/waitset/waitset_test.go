package waitset

import "testing"

func TestJoinNotifyLeave(t *testing.T) {
	s := New()
	if !s.Join("alice") || s.Join("alice") {
		t.Fatal("Join: want first=true then false")
	}
	ch := s.Wake("alice")
	s.Notify("bob") // nobody waits: no effect, no entry created
	select {
	case <-ch:
		t.Fatal("woken by another user's notify")
	default:
	}
	s.Notify("alice")
	select {
	case <-ch:
	default:
		t.Fatal("not woken by Notify")
	}
	if next := s.Wake("alice"); next == ch {
		t.Fatal("Notify must replace the channel for later waits")
	}
	if s.Leave("alice") || !s.Leave("alice") {
		t.Fatal("Leave: want last=false then true")
	}
	if s.Len() != 0 || len(s.Users()) != 0 {
		t.Fatalf("set not empty after the last Leave: %d", s.Len())
	}
	if s.Leave("alice") {
		t.Fatal("Leave of an unknown user reported last")
	}
}
