// Package httpx holds the few HTTP facts several packages of this module
// must agree on, so that they agree: what a JSON media type and a page are, which Host
// header values may be put into a URL, which host and origin the client
// reached behind a proxy (PublicHost, PublicOrigin), which request fields
// a site reads as one (DeleteEdgeFields), and a writer that hides ReadFrom.
package httpx

import (
	"io"
	"net/http"
	"strings"
)

// MediaType is a Content-Type's type/subtype, lowercased, without
// parameters. It allocates only for a value with upper-case letters.
func MediaType(contentType string) string {
	if i := strings.IndexByte(contentType, ';'); i >= 0 {
		contentType = contentType[:i]
	}
	return strings.ToLower(strings.TrimSpace(contentType))
}

// IsJSON reports whether a Content-Type names JSON: application/json or
// any +json type (application/problem+json, application/agent+json …),
// ASCII case-insensitively, without allocating.
func IsJSON(contentType string) bool {
	if i := strings.IndexByte(contentType, ';'); i >= 0 {
		contentType = contentType[:i]
	}
	mt := strings.TrimSpace(contentType)
	return strings.EqualFold(mt, "application/json") || (len(mt) > 5 && strings.EqualFold(mt[len(mt)-5:], "+json"))
}

// DocumentTypes are the media types of pages: what a reader (or an AI)
// reads as a site's content, as opposed to its stylesheets, scripts,
// images, fonts and API answers.
var DocumentTypes = [...]string{"text/html", "application/xhtml+xml", "text/markdown", "text/x-markdown", "text/plain"}

// IsDocument reports whether a Content-Type names a page (DocumentTypes),
// parameters and case aside, without allocating.
func IsDocument(contentType string) bool {
	if i := strings.IndexByte(contentType, ';'); i >= 0 {
		contentType = contentType[:i]
	}
	mt := strings.TrimSpace(contentType)
	for _, t := range DocumentTypes {
		if len(mt) == len(t) && strings.EqualFold(mt, t) { // media types are ASCII: lengths first
			return true
		}
	}
	return false
}

// ValidHost reports whether a Host header value may go into a URL the
// plugin builds (a prompt, a discovery document, an OpenAPI server): host
// names, IP literals and a port — letters, digits, '.', '-', '_', ':' and
// an IPv6 literal's brackets, at most 255 bytes — and nothing that could
// change the URL's meaning or need escaping in JSON or HTML.
func ValidHost(host string) bool {
	if host == "" || len(host) > 255 {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == '_', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// PublicOrigin is the site's origin as the client reached it
// (scheme://host), for absolute URLs in documents rendered for that
// client, or "" when the host is not ValidHost. The host is PublicHost's;
// the scheme is https on a TLS connection. trusted says the peer is a
// trusted proxy (Caddy: the server's trusted_proxies): only then do its
// X-Forwarded-Proto (the scheme) and X-Forwarded-Host (the host) count,
// or any client could make the site advertise http, or another host. A
// response that depends on it when trusted varies on both fields.
func PublicOrigin(r *http.Request, trusted bool) string {
	host := PublicHost(r, trusted)
	if !ValidHost(host) {
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if trusted {
		if v := r.Header.Get("X-Forwarded-Proto"); v != "" {
			if i := strings.IndexByte(v, ','); i >= 0 {
				v = v[:i]
			}
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "https":
				scheme = "https"
			case "http":
				scheme = "http"
			}
		}
	}
	return scheme + "://" + host
}

// PublicHost is the host the client sent its request to: from a trusted
// proxy (trusted) the first value of its X-Forwarded-Host when that is
// ValidHost, else r.Host, unchecked (a proxy that sends no or a broken
// X-Forwarded-Host passes the client's Host on). Never the field of an
// untrusted peer: any client can send one.
func PublicHost(r *http.Request, trusted bool) string {
	if trusted {
		if h := forwardedHost(r.Header.Get("X-Forwarded-Host")); h != "" {
			return h
		}
	}
	return r.Host
}

// forwardedHost is the first host of an X-Forwarded-Host value (the one
// the client sent, when proxies append), or "" when it is not ValidHost.
func forwardedHost(v string) string {
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	v = strings.TrimSpace(v)
	if !ValidHost(v) {
		return ""
	}
	return v
}

// DeleteEdgeFields deletes from h every field a site may read as one of
// names: any ASCII case, with '-', '_' and '.' alike. CGI, FastCGI
// (Caddy's php_fastcgi too), WSGI and Rack turn both X-A-B and X_A_B into
// HTTP_X_A_B, and PHP folds X.A.B onto it as well, the last one written
// winning. So a field only the edge may set (a verified identity, an
// admission, a checked credential) must go in every spelling, or a
// client's own reaches the site under the edge's name. Caddy itself drops
// names with '_' or '.' unless the operator allowlists them
// (expected_underscore_headers, expected_dot_headers); this holds whatever
// the allowlist, and in the packages that know no Caddy. It iterates h
// once; a name that is not there costs a length compare per field.
func DeleteEdgeFields(h http.Header, names ...string) {
	for k := range h {
		for _, n := range names {
			if SameField(k, n) {
				delete(h, k)
				break
			}
		}
	}
}

// SameField reports whether a and b are one field to a CGI-style site or
// PHP: equal but for ASCII case, and '-', '_' and '.' alike.
func SameField(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if fold(x) != fold(y) {
			return false
		}
	}
	return true
}

func fold(c byte) byte {
	switch {
	case c == '_', c == '.':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}

// WriterOnly hides a writer's ReadFrom, so that io.Copy inside a
// ReadFrom does not call back into it.
type WriterOnly struct{ io.Writer }

// CloseAfter asks an HTTP/1.x server to close the connection after this
// response (the rest of an unread body cannot be skipped). HTTP/2 and
// HTTP/3 need no such field and forbid it (RFC 9113 §8.2.2, RFC 9114
// §4.2): Go's HTTP/2 server drops it, but quic-go's HTTP/3 server sends it,
// and clients then reject the whole response as malformed.
func CloseAfter(h http.Header, r *http.Request) {
	if r.ProtoMajor < 2 {
		h["Connection"] = []string{"close"}
	}
}
