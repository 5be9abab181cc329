package ratelimit

import (
	"net/netip"
	"testing"
)

func TestCanonicalIPv4(t *testing.T) {
	for s, want := range map[string]bool{
		"127.0.0.1": true, "0.0.0.0": true, "255.255.255.255": true, "10.20.30.40": true,
		"256.0.0.1": false, "01.2.3.4": false, "1.2.3": false, "1.2.3.4.5": false,
		"1..2.3": false, ".1.2.3": false, "1.2.3.": false, "1.2.3.4 ": false,
		"::ffff:1.2.3.4": false, "1.2.3.0400": false, "": false, "a.b.c.d": false,
	} {
		if got := canonicalIPv4(s); got != want {
			t.Errorf("canonicalIPv4(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzCanonicalIPv4 holds the fast path to netip: it takes exactly the
// strings netip parses as IPv4 and formats unchanged, so ClientID's key
// is the same with and without it.
func FuzzCanonicalIPv4(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "0.0.0.0", "255.255.255.255", "01.2.3.4", "256.1.1.1", "1.2.3", "::1", "::ffff:10.0.0.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addr, err := netip.ParseAddr(s)
		want := err == nil && addr.Is4() && addr.String() == s
		if got := canonicalIPv4(s); got != want {
			t.Fatalf("canonicalIPv4(%q) = %v, netip says %v", s, got, want)
		}
		id, ip := ClientID(s, 64)
		if want && (id != s || !ip) {
			t.Fatalf("ClientID(%q) = %q, %v", s, id, ip)
		}
	})
}
