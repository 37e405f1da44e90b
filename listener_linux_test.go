package main

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// Once refuseNewConnections is on, a new connection attempt gets no answer
// (its SYN is dropped), a connection whose handshake finished before is
// still accepted and served, and once the listener closes a new attempt is
// refused outright: nothing was waiting in the queue to be reset.
func TestRefuseNewConnectionsKeepsTheQueue(t *testing.T) {
	ln, err := listenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	queued, err := net.Dial("tcp", ln.Addr().String()) // in the accept queue, not accepted yet
	if err != nil {
		t.Fatal(err)
	}
	defer queued.Close()
	if _, err := queued.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}

	if err := refuseNewConnections(ln); err != nil {
		t.Fatal(err)
	}
	// The kernel sends a dropped SYN again after a second; half of that
	// is long enough to see no answer.
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), 500*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("a new connection was accepted after refuseNewConnections")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("a new connection attempt: %v, want a timeout (no answer)", err)
	}

	served, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(served, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("the queued connection: read %q, %v", buf, err)
	}
	served.Write([]byte("pong"))
	served.Close()
	if _, err := io.ReadFull(queued, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("the queued connection's answer: %q, %v", buf, err)
	}

	ln.Close()
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("after the close: %v, want connection refused", err)
	}
}
