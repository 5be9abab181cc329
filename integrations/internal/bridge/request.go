package bridge

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddy-ahp/caddy-ahp/auth"
	"github.com/caddy-ahp/caddy-ahp/manifest"
)

const maxCredential = 4096

// Credential decides the credential an internal request must carry in
// the scheme's header, given one sent outside headers (MCP params._meta.auth,
// Appendix D.5; an `auth` body field, Appendix D.4). It returns "" when
// there is nothing to set: the scheme has no header ("none"), nothing was
// sent, or the incoming request already carries a credential in the
// scheme's header, which then passes through unchanged and wins, as it does
// for direct AHP requests (auth.Policy.Check). A "Bearer " prefix is
// accepted for the bearer scheme. A value no header could carry is an
// error; its message never includes the value.
func Credential(h http.Header, scheme, sent string) (string, error) {
	if sent == "" || (scheme != manifest.AuthBearer && scheme != manifest.AuthAPIKey) {
		return "", nil
	}
	if _, present := auth.Extract(h, scheme); present {
		return "", nil
	}
	v := strings.Trim(sent, " \t")
	if scheme == manifest.AuthBearer && len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		v = strings.Trim(v[7:], " \t")
	}
	if v == "" || len(v) > maxCredential {
		return "", errors.New("the credential is empty or longer than 4096 bytes")
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f {
			return "", errors.New("the credential must be visible ASCII without spaces")
		}
	}
	return v, nil
}

// NewConverseRequest returns the internal converse request for an incoming
// front-door request r: a clone (same context, RemoteAddr, TLS and headers,
// so the gateway sees the same client, rate-limit key and credentials) with
// method POST, path, body, and credential, when not "", in the scheme's
// header. Headers that describe the front door's own exchange are dropped
// (see scrub).
func NewConverseRequest(r *http.Request, path string, body []byte, scheme, credential string) *http.Request {
	r2 := clone(r, http.MethodPost, path, "")
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r2.ContentLength = int64(len(body))
	h := r2.Header
	h["Content-Type"] = jsonType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["Accept"] = jsonType
	if credential != "" {
		auth.SetHeader(h, scheme, credential)
	}
	return r2
}

// NewGetRequest returns an internal GET of path (and rawQuery) on the site,
// for reading content through it, with the given Accept.
func NewGetRequest(r *http.Request, path, rawQuery, accept string) *http.Request {
	r2 := clone(r, http.MethodGet, path, rawQuery)
	r2.Body = http.NoBody
	r2.GetBody = nil
	r2.ContentLength = 0
	delete(r2.Header, "Content-Type")
	delete(r2.Header, "Content-Length")
	r2.Header["Accept"] = []string{accept}
	return r2
}

var jsonType = []string{"application/json"}

func clone(r *http.Request, method, path, rawQuery string) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Method = method
	r2.URL.Path = path
	r2.URL.RawPath = ""
	r2.URL.RawQuery = rawQuery
	r2.URL.Fragment = ""
	r2.RequestURI = path
	if rawQuery != "" {
		r2.RequestURI += "?" + rawQuery
	}
	r2.TransferEncoding = nil
	r2.Trailer = nil
	r2.Form, r2.PostForm, r2.MultipartForm = nil, nil, nil
	scrub(r2.Header)
	return r2
}

// scrub drops the headers of the front-door exchange that must not shape
// the internal one: Accept-Encoding (the recorded answer must be plain),
// conditionals and ranges (a 304 or a 206 is no answer to map), Expect, and
// the MCP transport's own headers (Mcp-Session-Id, Mcp-Protocol-Version,
// Mcp-Method, ...), which mean nothing to the concierge.
func scrub(h http.Header) {
	for k := range h {
		switch {
		case k == "Accept-Encoding", k == "Range", k == "Expect", k == "Last-Event-Id",
			k == "Content-Encoding", k == "Transfer-Encoding", k == "Te",
			strings.HasPrefix(k, "If-"), strings.HasPrefix(k, "Mcp-"):
			delete(h, k)
		}
	}
}

// BaseURL is the site's origin as the client reached it (scheme://host),
// for absolute URLs in documents rendered for that client. The scheme is
// https when the connection is TLS; X-Forwarded-Proto is honoured only
// when trustProto says the peer is a trusted proxy (otherwise any client
// could make the site advertise http). It returns "" when the Host header
// is missing or is not a plain host[:port].
func BaseURL(r *http.Request, trustProto bool) string {
	host := r.Host
	if !validHost(host) {
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if trustProto {
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

// validHost admits what a URL authority may hold without escaping, and
// nothing JSON would have to escape: letters, digits, '.', '-', '_', ':'
// and an IPv6 literal's brackets.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == '_', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}
