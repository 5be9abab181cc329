package bridge

import (
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/caddy-ahp/caddy-ahp/auth"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
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

// BearerAPIKey returns the token of an MCP request's one readable
// `Authorization: Bearer` header on an api_key site that sent no X-AHP-Key:
// Appendix D.5 says MCP endpoints MUST accept bearer tokens in that header,
// and on an api_key site the token is the key. A door that takes it moves
// it to X-AHP-Key on its internal request and drops Authorization, so the
// gateway checks it as the site's scheme says. ok is false otherwise, and
// the headers go on as sent (a site with keys then refuses Authorization
// as the wrong scheme's header, as on the direct path).
func BearerAPIKey(h http.Header, scheme string) (key string, ok bool) {
	if scheme != manifest.AuthAPIKey {
		return "", false
	}
	if _, sent := h[auth.HeaderAPIKey]; sent {
		return "", false
	}
	return auth.Extract(h, manifest.AuthBearer)
}

// NewConverseRequest returns the request a front door hands to
// gateway.Converse for an incoming request r: a clone (same context,
// RemoteAddr, TLS and headers, so the gateway sees the same client,
// rate-limit key and credentials) with method POST, the converse path,
// Content-Type application/json, and credential, when not "", in the
// scheme's header. The body is Converse's argument, not the request's.
// Headers that describe the front door's own exchange are dropped (see
// scrub).
func NewConverseRequest(r *http.Request, path, scheme, credential string) *http.Request {
	r2 := clone(r, http.MethodPost, path, "")
	r2.Body = http.NoBody
	r2.GetBody = nil
	r2.ContentLength = 0
	h := r2.Header
	delete(h, "Content-Length")
	v := make([]string, 2)
	v[0], v[1] = "application/json", "application/json"
	h["Content-Type"], h["Accept"] = v[0:1:1], v[1:2:2]
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
// conditionals and ranges (a 304 or a 206 is no answer to map), Expect,
// Origin (checked by the door; the internal request is the site's own), and
// the MCP transport's own headers (Mcp-Session-Id, Mcp-Protocol-Version,
// Mcp-Method, Mcp-Name, Mcp-Param-*), which mean nothing to the concierge.
func scrub(h http.Header) {
	for k := range h {
		switch {
		case k == "Accept-Encoding", k == "Range", k == "Expect", k == "Last-Event-Id", k == "Origin",
			k == "Content-Encoding", k == "Transfer-Encoding", k == "Te",
			strings.HasPrefix(k, "If-"), strings.HasPrefix(k, "Mcp-"):
			delete(h, k)
		}
	}
}

// StaticRefusal is a request the static tier refused: the status (429, or
// 503 when the limits could not be decided) and the AHP error body.
type StaticRefusal struct {
	Status int
	Body   []byte
}

// ChargeStatic charges the static tier for a request a door answers
// itself (ratelimit.Policy.ChargeStatic, whose refusal the door renders in
// its own format). The rate-limit headers and any Retry-After go to h; the
// result is nil when the request is admitted (or p is nil).
func ChargeStatic(p *ratelimit.Policy, h http.Header, r *http.Request) *StaticRefusal {
	if p == nil || p.Static == nil {
		return nil
	}
	c := capturePool.Get().(*capture)
	defer c.release()
	if p.ChargeStatic(c, r) {
		c.moveRateLimit(h)
		return nil
	}
	c.moveRateLimit(h)
	return &StaticRefusal{Status: c.status, Body: append([]byte(nil), c.body...)}
}

// capture is the ResponseWriter ChargeStatic writes to: its own header map
// (so the AHP body's Content-Type and Content-Length never reach the
// door's response) and the refusal, if any.
type capture struct {
	h      http.Header
	status int
	body   []byte
}

var capturePool = sync.Pool{New: func() any { return &capture{h: make(http.Header, 8)} }}

func (c *capture) Header() http.Header         { return c.h }
func (c *capture) WriteHeader(status int)      { c.status = status }
func (c *capture) Write(p []byte) (int, error) { c.body = append(c.body, p...); return len(p), nil }

func (c *capture) release() {
	clear(c.h)
	c.status, c.body = 0, c.body[:0]
	capturePool.Put(c)
}

// moveRateLimit hands the rate-limit fields to dst. The policy built each
// value for this response alone, so the slices move rather than copy.
func (c *capture) moveRateLimit(dst http.Header) {
	for _, k := range rateLimitHeaders {
		if v, ok := c.h[k]; ok {
			dst[k] = v
		}
	}
}

// BaseURL is the site's origin as the client reached it (scheme://host),
// or "" when the host is not a plain host[:port]: see httpx.PublicOrigin
// (from a trusted peer, its X-Forwarded-Proto and X-Forwarded-Host).
func BaseURL(r *http.Request, trusted bool) string { return httpx.PublicOrigin(r, trusted) }
