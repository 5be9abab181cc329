package handshake

import (
	"errors"
	"net/netip"
	"testing"
)

// TestReserveCapsClientsAndNetworks: a client's and a network's sockets
// are capped (reserved ones included), each freed place is given back,
// and a client that is no address is capped as a client only.
func TestReserveCapsClientsAndNetworks(t *testing.T) {
	h := NewHub()
	defer h.Close()
	caps := SocketCaps{PerSession: 8, PerClient: 2, PerNetwork: 3}
	a1, err := h.Reserve("s1", "198.51.100.7", caps)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Reserve("s2", "198.51.100.7", caps); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Reserve("s3", "198.51.100.7", caps); !errors.Is(err, ErrTooManySockets) {
		t.Fatalf("third socket of one client (cap 2): %v", err)
	}
	if _, err := h.Reserve("s3", "198.51.100.8", caps); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Reserve("s4", "198.51.100.9", caps); !errors.Is(err, ErrTooManySockets) {
		t.Fatalf("fourth socket of one /24 (cap 3): %v", err)
	}
	if _, err := h.Reserve("s4", "2001:db8:1:2::/64", caps); err != nil {
		t.Fatalf("another network: %v", err)
	}
	h.Cancel(a1)
	if _, err := h.Reserve("s4", "198.51.100.9", caps); err != nil {
		t.Fatalf("after one of the network's sockets was cancelled: %v", err)
	}
	c := &fakeConn{}
	b, err := h.Reserve("s5", "2001:db8:1:3::/64", caps)
	if err != nil || !h.Attach(b, c) {
		t.Fatal(err)
	}
	if _, err := h.Reserve("s5", "2001:db8:1:4::/64", caps); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Reserve("s5", "2001:db8:1:5::/64", caps); !errors.Is(err, ErrTooManySockets) {
		t.Fatalf("fourth socket of one /48 (cap 3): %v", err)
	}
	h.Unregister(b)
	if _, err := h.Reserve("s5", "2001:db8:1:5::/64", caps); err != nil {
		t.Fatalf("after one of the network's sockets closed: %v", err)
	}
	for i := 0; i < 2; i++ {
		if _, err := h.Reserve("s6", "unix", caps); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Reserve("s6", "unix", caps); !errors.Is(err, ErrTooManySockets) {
		t.Fatalf("third socket of a client that is no address: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.clients["198.51.100.7"] != 1 || h.networks[netip.MustParsePrefix("198.51.100.0/24")] != 3 {
		t.Errorf("counts: clients %v networks %v", h.clients, h.networks)
	}
}
