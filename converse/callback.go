package converse

import (
	"context"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
)

// uriProblem reports why s fails the request schema's `"format": "uri"`,
// or "" when it passes. It applies exactly the test of the schema
// validator the project checks against (santhosh-tekuri/jsonschema):
// net/url parses it, it is absolute, and a host containing ':' is a
// bracketed IPv6 address without a zone.
func uriProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "it does not parse"
	}
	if host := u.Hostname(); strings.Contains(host, ":") {
		if !strings.Contains(u.Host, "[") || !strings.Contains(u.Host, "]") {
			return "an IPv6 address must be in brackets"
		}
		a, err := netip.ParseAddr(host)
		if err != nil || a.Zone() != "" {
			return "invalid IPv6 address"
		}
	}
	if !u.IsAbs() {
		return "it has no scheme"
	}
	return ""
}

// CallbackAddrsHeader carries, on the request forwarded to the concierge,
// the addresses CheckCallback checked for context.callback_url (spec §9):
// a comma-separated list (FormatCallbackAddrs). A concierge must connect
// to the callback only at one of these addresses (or through an egress
// proxy that enforces the same rules): resolving the name again could
// give another answer, 127.0.0.1 included (DNS rebinding). The gateway
// sets it on every forwarded request with a callback_url and deletes any
// copy the client sent.
const CallbackAddrsHeader = "X-Ahp-Callback-Addrs"

// FormatCallbackAddrs is the CallbackAddrsHeader value for addrs: the
// addresses in order, separated by ", ", IPv6 without brackets or zone
// (e.g. "93.184.215.14, 2606:2800:21f:cb07::1").
func FormatCallbackAddrs(addrs []netip.Addr) string {
	b := make([]byte, 0, len(addrs)*24)
	for i, a := range addrs {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = a.WithZone("").AppendTo(b)
	}
	return string(b)
}

// CheckCallback validates a context.callback_url (spec §9, §13: a
// concierge that POSTs results to agent-supplied URLs must not be usable
// to reach the site's own network) and returns the addresses it checked,
// in resolution order without repeats (IPv4-mapped IPv6 answers as IPv4),
// or the host's own address when the URL names one. The URL must be https
// (http only with Options.AllowHTTPCallbacks), without user info, with a
// fully qualified DNS name or a public IP address in standard notation as
// its host, and every address the name resolves to must be public unicast:
// see badAddr. Names that are internal by convention (localhost,
// *.internal, *.local, single labels, ...) are refused without a lookup.
//
// A lookup failure or an empty answer refuses the URL too (fail closed).
// This is a check at admission: DNS can change before the concierge
// connects, so the gateway passes the addresses on (CallbackAddrsHeader)
// and the concierge must connect only to them.
func (r *Rules) CheckCallback(ctx context.Context, rawURL string) ([]netip.Addr, *ahperror.Error) {
	host, addr, msg := parseCallback(rawURL, r.allowHTTP)
	if msg != "" {
		return nil, badCallback(msg)
	}
	if addr.IsValid() {
		if why := r.refused(addr); why != "" {
			return nil, badCallback("its host " + addr.String() + " is " + why)
		}
		return []netip.Addr{addr.Unmap()}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	addrs, err := r.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return nil, badCallback("its host " + host + " could not be resolved")
	}
	// Every answer counts: a client may connect to any of them.
	checked := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if why := r.refused(a); why != "" {
			return nil, badCallback("its host " + host + " resolves to " + a.Unmap().String() + ", " + why)
		}
		if a = a.Unmap().WithZone(""); !slices.Contains(checked, a) {
			checked = append(checked, a)
		}
	}
	return checked, nil
}

// PrecheckCallback is the part of CheckCallback that needs no network:
// the URL's form, its scheme, and its host when that is an address or a
// name internal by convention. The gateway runs it before admission, so a
// callback refused for these reasons spends nothing shared; the lookup
// (CheckCallback) runs after.
func (r *Rules) PrecheckCallback(rawURL string) *ahperror.Error {
	_, addr, msg := parseCallback(rawURL, r.allowHTTP)
	if msg != "" {
		return badCallback(msg)
	}
	if addr.IsValid() {
		if why := r.refused(addr); why != "" {
			return badCallback("its host " + addr.String() + " is " + why)
		}
	}
	return nil
}

// refused is badAddr unless the operator allowed a's network.
func (r *Rules) refused(a netip.Addr) string {
	for _, p := range r.allowNets {
		if p.Contains(a.Unmap()) || p.Contains(a) {
			return ""
		}
	}
	return badAddr(a)
}

func badCallback(why string) *ahperror.Error {
	return invalid("context.callback_url is not allowed: " + why + ". Give a public https URL.")
}

// parseCallback checks the URL's syntax and returns either a DNS name to
// resolve or a literal address, or a message saying what is wrong.
//
// It is stricter than RFC 3986 on purpose: URL parsers disagree on
// backslashes, percent-encoded hosts, user info and numeric hosts, and
// the concierge's HTTP client is not necessarily Go's. Only an authority
// every parser reads the same way passes.
func parseCallback(raw string, allowHTTP bool) (host string, addr netip.Addr, msg string) {
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return "", addr, "it contains a space, control character, backslash or non-ASCII byte (percent-encode them)"
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return "", addr, "it is not a valid absolute URL"
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	default:
		return "", addr, "its scheme must be https"
	}
	if u.User != nil {
		return "", addr, "it must not contain user info (user@ or user:password@)"
	}
	// The authority as written: url.Parse has already decoded %XX in it.
	rest := raw[len(u.Scheme)+1:]
	if !strings.HasPrefix(rest, "//") {
		return "", addr, "it has no host"
	}
	authority := rest[2:]
	if i := strings.IndexAny(authority, "/?#"); i >= 0 {
		authority = authority[:i]
	}
	if strings.ContainsAny(authority, "%@") {
		return "", addr, "its host must not be percent-encoded"
	}
	host = u.Hostname()
	if host == "" {
		return "", addr, "it has no host"
	}
	if port := u.Port(); port != "" {
		if len(port) > 5 || port[0] == '0' || atoiPort(port) > 65535 {
			return "", addr, "its port is invalid"
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return "", addr, "its port is empty"
	}
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", addr, "its host is not a valid IPv6 address (zones are not allowed)"
		}
		return "", a, ""
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		return "", a, ""
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if msg := checkHostname(host); msg != "" {
		return "", addr, msg
	}
	return host, addr, ""
}

func atoiPort(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 1 << 30
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// checkHostname accepts a fully qualified DNS name that is not numeric and
// not internal by convention. host is lower case, without a final dot.
func checkHostname(host string) string {
	if len(host) > 253 {
		return "its host name is too long"
	}
	labels := 0
	last := ""
	for rest := host; ; {
		label := rest
		dot := strings.IndexByte(rest, '.')
		if dot >= 0 {
			label = rest[:dot]
		}
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "its host is not a valid DNS name"
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "its host is not a valid DNS name (use the xn-- form for international names)"
			}
		}
		labels++
		last = label
		if dot < 0 {
			break
		}
		rest = rest[dot+1:]
	}
	// No top-level domain is numeric, so a numeric last label means an
	// IPv4 address in a notation some resolvers accept (inet_aton):
	// 2130706433, 0x7f.1, 0177.0.0.1, 127.1 are all 127.0.0.1.
	if isNumericLabel(last) {
		return "its host looks like an IPv4 address in a non-standard notation; write it as a.b.c.d"
	}
	if labels < 2 {
		// A single label resolves through the resolver's search
		// domains: usually the operator's own network.
		return "its host " + host + " is not a fully qualified domain name"
	}
	for _, suffix := range internalSuffixes {
		if host == suffix[1:] || strings.HasSuffix(host, suffix) {
			return "its host " + host + " is an internal name"
		}
	}
	return ""
}

// isNumericLabel reports a label that inet_aton or the WHATWG URL
// parser would read as a number: decimal, octal (leading 0) or 0x hex.
func isNumericLabel(s string) bool {
	if len(s) >= 2 && s[0] == '0' && s[1] == 'x' {
		for i := 2; i < len(s); i++ {
			c := s[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
		return true
	}
	return isDigits(s)
}

// internalSuffixes are names reserved for local use or for cloud
// metadata (each with a leading dot; the bare name matches too):
// RFC 6761 localhost, RFC 6762 .local (mDNS), ICANN's .internal (which
// holds metadata.google.internal), RFC 8375 home.arpa, and the de facto
// localdomain and AWS's old instance-data name.
var internalSuffixes = []string{
	".localhost",
	".local",
	".internal",
	".home.arpa",
	".localdomain",
	".instance-data.ec2.internal",
}

// badAddr says why a is no place to send a callback, or "" when it is a
// public unicast address. IPv6 is allowlisted to 2000::/3 (all global
// unicast space assigned today) minus special ranges; IPv6 forms that
// embed an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by
// that address.
func badAddr(a netip.Addr) string {
	a = a.WithZone("")
	if a.Is4In6() {
		return badAddr4(a.Unmap())
	}
	if a.Is4() {
		return badAddr4(a)
	}
	b := a.As16()
	switch {
	case a.IsUnspecified():
		return "the unspecified address"
	case a.IsLoopback():
		return "a loopback address"
	case ipv4Compatible.Contains(a):
		// Deprecated (RFC 4291 §2.5.5.1); some stacks still route
		// it as the embedded IPv4 address.
		if why := badAddr4(netip.AddrFrom4([4]byte(b[12:]))); why != "" {
			return why + " (IPv4-compatible IPv6 form)"
		}
		return "a deprecated IPv4-compatible IPv6 address"
	case nat64.Contains(a):
		if why := badAddr4(netip.AddrFrom4([4]byte(b[12:]))); why != "" {
			return why + " (NAT64 form)"
		}
		return ""
	case a.IsMulticast():
		return "a multicast address"
	case a.IsLinkLocalUnicast():
		return "a link-local address"
	case ec2MetadataV6 == a:
		return "a cloud metadata address"
	case a.IsPrivate():
		return "a private (unique local) address"
	case sixToFour.Contains(a):
		if why := badAddr4(netip.AddrFrom4([4]byte(b[2:6]))); why != "" {
			return why + " (6to4 form)"
		}
		return ""
	case !globalUnicast6.Contains(a):
		return "not a global unicast address"
	}
	for _, p := range special6 {
		if p.Contains(a) {
			return "a special-purpose address (" + p.String() + ")"
		}
	}
	return ""
}

func badAddr4(a netip.Addr) string {
	switch {
	case metadata4[a]:
		return "a cloud metadata address"
	case a.IsUnspecified() || this4.Contains(a):
		return "the unspecified address or \"this network\""
	case a.IsLoopback():
		return "a loopback address"
	case a.IsPrivate():
		return "a private address"
	case a.IsLinkLocalUnicast():
		return "a link-local address"
	case cgnat.Contains(a):
		return "a shared (CGNAT) address"
	case a.IsMulticast():
		return "a multicast address"
	case a == broadcast4:
		return "the broadcast address"
	}
	for _, p := range special4 {
		if p.Contains(a) {
			return "a special-purpose address (" + p.String() + ")"
		}
	}
	return ""
}

var (
	ipv4Compatible = netip.MustParsePrefix("::/96")
	nat64          = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	ec2MetadataV6  = netip.MustParseAddr("fd00:ec2::254")
	this4          = netip.MustParsePrefix("0.0.0.0/8")
	cgnat          = netip.MustParsePrefix("100.64.0.0/10")
	broadcast4     = netip.MustParseAddr("255.255.255.255")

	// Cloud metadata endpoints: AWS, GCP, Azure, OpenStack, DigitalOcean
	// (169.254.169.254), Oracle (192.0.0.192), Alibaba (100.100.100.200),
	// AWS ECS task metadata (169.254.170.2), and Azure's wire server
	// (168.63.129.16: DHCP, DNS, health probes and the guest agent's
	// channel, reachable from every Azure VM). All but the last lie in
	// ranges refused anyway and are listed so that the message says what
	// they are; 168.63.129.16 is a public address, refused only here. AWS's
	// IPv6 endpoint is ec2MetadataV6.
	metadata4 = map[netip.Addr]bool{
		netip.MustParseAddr("169.254.169.254"): true,
		netip.MustParseAddr("169.254.170.2"):   true,
		netip.MustParseAddr("192.0.0.192"):     true,
		netip.MustParseAddr("100.100.100.200"): true,
		netip.MustParseAddr("168.63.129.16"):   true,
	}

	// IANA IPv4 special-purpose registry entries not covered above.
	special4 = []netip.Prefix{
		netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
		netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
		netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast (deprecated)
		netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
		netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
		netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
		netip.MustParsePrefix("240.0.0.0/4"),     // reserved
	}

	// IANA IPv6 special-purpose registry entries inside 2000::/3.
	special6 = []netip.Prefix{
		netip.MustParsePrefix("2001::/23"),     // IETF protocol assignments: Teredo, benchmarking, ORCHID
		netip.MustParsePrefix("2001:db8::/32"), // documentation
		netip.MustParsePrefix("3fff::/20"),     // documentation (RFC 9637)
	}
)
