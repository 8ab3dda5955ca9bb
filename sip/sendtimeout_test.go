package sip

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// TestSendTimeout: a peer that connects and never reads cannot block our
// writes for good: once its buffers are full, a write fails with a
// deadline error after the send timeout.
func TestSendTimeout(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := sendTimeoutListener{Listener: raw, d: 200 * time.Millisecond}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String()) // never reads
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	done := make(chan error, 1)
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := conn.Write(chunk); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write failed with %v, want a deadline error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("writes to a peer that does not read still block")
	}
}
