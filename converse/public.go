package converse

import (
	"net/netip"
	"strings"
)

// RefusedAddr says why a is no place for the edge to connect to on an
// outsider's behalf (a callback, an agent's key directory), or "" when it
// is a public unicast address or lies in one of the allowed networks. It
// is the rule context.callback_url follows.
func RefusedAddr(a netip.Addr, allow []netip.Prefix) string {
	for _, p := range allow {
		if p.Contains(a.Unmap()) || p.Contains(a) {
			return ""
		}
	}
	return badAddr(a)
}

// RefusedHost says why a host name is no place to connect to (localhost,
// .internal, a numeric form some resolvers read as an address …), or ""
// when it may be resolved and its addresses checked with RefusedAddr.
func RefusedHost(host string) string {
	return checkHostname(strings.ToLower(strings.TrimSuffix(host, ".")))
}
