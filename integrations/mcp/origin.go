package mcp

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

// originSet is the browser origins allowed besides the endpoint's own
// (Options.Origins), normalized: lower-case scheme://host[:port], the
// scheme's default port left out.
type originSet struct {
	any  bool
	list map[string]bool
}

func parseOrigins(origins []string) (originSet, error) {
	var set originSet
	for _, o := range origins {
		if o == "*" {
			set.any = true
			continue
		}
		n, ok := normalizeOrigin(o)
		if !ok {
			return set, fmt.Errorf("mcp origins: %q is not an origin; write scheme://host[:port], such as https://agent.example (no path), or * for any", o)
		}
		if set.list == nil {
			set.list = map[string]bool{}
		}
		set.list[n] = true
	}
	return set, nil
}

// normalizeOrigin reads an origin (RFC 6454: scheme://host[:port]).
func normalizeOrigin(o string) (string, bool) {
	u, err := url.Parse(o)
	if err != nil || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Hostname() == "" {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == defaultPort(scheme) {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		return scheme + "://" + host + ":" + port, true
	}
	return scheme + "://" + host, true
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// parseHosts reads Options.Hosts: host names or IP literals, no port.
func parseHosts(hosts []string) (map[string]bool, error) {
	if len(hosts) == 0 {
		return nil, nil
	}
	set := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		n := strings.ToLower(strings.Trim(h, "[]"))
		if n == "" || strings.ContainsAny(n, "/:@?#* ") && net.ParseIP(n) == nil {
			return nil, fmt.Errorf("mcp hosts: %q is not a host name; write the site's names without scheme or port, such as shop.example", h)
		}
		set[n] = true
	}
	return set, nil
}

// checkOrigin applies the Streamable HTTP transport's Origin rule (DNS
// rebinding): no Origin (a client that is no browser) passes; an Origin
// naming the host the request was sent to (same origin) passes, when
// Hosts are set only if that host is one of them; so does a configured
// one. Behind a trusted proxy that host is the one the browser sent its
// request to, the proxy's X-Forwarded-Host (httpx.PublicHost): a load
// balancer that rewrites Host would otherwise turn every same-origin
// browser away. cross is true for an allowed Origin of another host,
// whose answers need CORS headers for the browser to read them.
func (s *Server) checkOrigin(r *http.Request) (origin string, cross, ok bool) {
	origin = r.Header.Get("Origin")
	if origin == "" {
		return "", false, true
	}
	if host := httpx.PublicHost(r, s.trusted(r)); sameOrigin(origin, host) && s.ownHost(host) {
		return origin, false, true
	}
	if s.origins.any {
		return origin, true, true
	}
	if n, valid := normalizeOrigin(origin); valid && s.origins.list[n] {
		return origin, true, true
	}
	return origin, false, false
}

// ownHost reports whether the host a request was sent to (its Host, or
// behind a trusted proxy its X-Forwarded-Host) names the site (Hosts).
func (s *Server) ownHost(reqHost string) bool {
	if s.hosts == nil {
		return true
	}
	host, _, err := net.SplitHostPort(reqHost)
	if err != nil {
		host = reqHost
	}
	return s.hosts[strings.ToLower(strings.Trim(host, "[]"))]
}

// sameOrigin compares an Origin with the request's Host: the same host
// name, and the same port, a missing one being the Origin scheme's
// default. "null" (an opaque origin) is no origin of this site.
func sameOrigin(origin, reqHost string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return false
	}
	host, port, err := net.SplitHostPort(reqHost)
	if err != nil {
		host, port = strings.Trim(reqHost, "[]"), ""
	}
	def := defaultPort(strings.ToLower(u.Scheme))
	oport := u.Port()
	if oport == "" {
		oport = def
	}
	if port == "" {
		port = def
	}
	return strings.EqualFold(u.Hostname(), host) && oport == port
}

// corsExposed are the headers a browser-based agent may read.
const corsExposed = "Link, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, X-RateLimit-Window, RateLimit, RateLimit-Policy"

// setCORS lets an allowed cross-origin browser read the answer; every
// value is this response's own. No Allow-Credentials: browsers send no
// cookies, credentials travel in Authorization or X-AHP-Key.
func setCORS(h http.Header, origin string) {
	v := make([]string, 3)
	v[0], v[1], v[2] = origin, "Origin", corsExposed
	h["Access-Control-Allow-Origin"], h["Vary"], h["Access-Control-Expose-Headers"] = v[0:1:1], v[1:2:2], v[2:3:3]
}

// preflightHeaders are the request headers a browser-based MCP client
// sends; the preflight allows them when the browser asks for others it
// cannot name as tokens.
const preflightHeaders = "Content-Type, Accept, Authorization, X-AHP-Key, MCP-Protocol-Version, Mcp-Method, Mcp-Name, Mcp-Session-Id, Last-Event-ID"

// preflight answers a CORS preflight (OPTIONS) from an allowed origin.
func preflight(w http.ResponseWriter, r *http.Request) {
	allow := preflightHeaders
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" && tokenList(req) {
		allow = req
	}
	h := w.Header()
	v := make([]string, 4)
	v[0], v[1], v[2], v[3] = "POST, OPTIONS", allow, "86400", "POST, OPTIONS"
	h["Access-Control-Allow-Methods"], h["Access-Control-Allow-Headers"], h["Access-Control-Max-Age"], h["Allow"] = v[0:1:1], v[1:2:2], v[2:3:3], v[3:4:4]
	w.WriteHeader(http.StatusNoContent)
}

// tokenList reports a comma-separated list of header names (tchar only).
func tokenList(s string) bool {
	if len(s) > 1024 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~, ", c) >= 0:
		default:
			return false
		}
	}
	return true
}
