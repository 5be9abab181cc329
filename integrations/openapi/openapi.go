package openapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/gateway"
	"github.com/caddy-ahp/caddy-ahp/integrations/internal/bridge"
	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes = 64 << 10
	DefaultCacheControl = "public, max-age=300"
)

// Options configure a Document.
type Options struct {
	// BaseURL is servers[0].url, an absolute http(s) URL such as
	// https://example.com. Empty: the scheme and host of each request for
	// the document (the site answers under every name it is reached by).
	BaseURL string
	// TrustForwardedProto lets X-Forwarded-Proto choose the scheme and
	// X-Forwarded-Host the host of servers[0].url when BaseURL is empty
	// (httpx.PublicOrigin). Set it only when every peer is a trusted
	// proxy.
	TrustForwardedProto bool
	// TrustedPeer, when set, reports whether a request came from a
	// trusted proxy (Caddy: the server's trusted_proxies), whose
	// X-Forwarded-Proto then chooses the scheme of servers[0].url and
	// X-Forwarded-Host its host: a site behind a TLS-terminating proxy
	// or a load balancer that rewrites Host advertises its public https
	// URL.
	TrustedPeer func(*http.Request) bool
	// MCPPath, when set, is named in the document's x-ahp extension next
	// to the manifest, for tools that can use either door.
	MCPPath string
	// MaxBodyBytes caps a POST /capabilities/{name} body (413 beyond);
	// DefaultMaxBodyBytes when 0. The converse gate applies its own cap to
	// the converse body built from it.
	MaxBodyBytes int64
	// CacheControl of the document; DefaultCacheControl when empty.
	CacheControl string
	// Gateway runs capability calls (gateway.Converse) and charges the
	// calls refused here, before they became converse requests, to the
	// client's limits (gateway.Refused). Required when the manifest
	// has MODE2 or MODE3 capabilities.
	Gateway *gateway.Gateway
	// Limits charges the static tier for the document (nil: no limits).
	Limits *ratelimit.Policy
	// Logger receives the load's warnings (nil: none).
	Logger *zap.Logger
}

// Document is the OpenAPI front door of one site: the document, rendered
// once at load, and the mapping of POST /capabilities/{name} onto the
// converse pipeline. It is safe for concurrent use.
type Document struct {
	// doc is the rendered document with servers[0].url open; static
	// holds it complete when Options.BaseURL fixes the URL.
	doc     *bridge.Spliced
	static  bool
	docHash string // of the rendered bytes, for ETags
	etag    string // complete ETag when static
	trust   bool
	trusted func(*http.Request) bool // Options.TrustedPeer
	cache   string
	maxBody int64
	caps    map[string]*bridge.Capability
	names   []string
	scheme  string
	gw      *gateway.Gateway
	limits  *ratelimit.Policy
}

// New renders the document for m.
func New(m *manifest.Manifest, opts Options) (*Document, error) {
	if m == nil {
		return nil, errors.New("openapi: no manifest")
	}
	caps, err := bridge.Capabilities(m)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	d := &Document{
		trust:   opts.TrustForwardedProto,
		trusted: opts.TrustedPeer,
		maxBody: opts.MaxBodyBytes,
		caps:    make(map[string]*bridge.Capability, len(caps)),
		scheme:  m.Authentication,
		gw:      opts.Gateway,
		limits:  opts.Limits,
		cache:   opts.CacheControl,
	}
	if d.maxBody <= 0 {
		d.maxBody = DefaultMaxBodyBytes
	}
	if opts.CacheControl == "" {
		d.cache = DefaultCacheControl
	}
	if len(caps) > 0 && d.gw == nil {
		return nil, errors.New("openapi: the site's capabilities need the converse gateway (endpoints.converse on this site, such as /agent/converse): capability calls run through it")
	}
	for _, c := range caps {
		d.caps[c.Name] = c
		d.names = append(d.names, c.Name)
	}
	if opts.Logger != nil {
		bridge.WarnReplaced(opts.Logger, "openapi", caps)
	}

	serverURL := bridge.Placeholder()
	if opts.BaseURL != "" {
		u, err := url.Parse(opts.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("openapi: base URL %q: use an absolute http(s) URL such as https://example.com", opts.BaseURL)
		}
		serverURL = strings.TrimSuffix(u.String(), "/")
		d.static = true
	}
	doc, err := build(m, caps, serverURL)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	if opts.MCPPath != "" {
		doc.XAHP.MCP = opts.MCPPath
	}
	raw, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	raw = append(raw, '\n')
	sum := sha256.Sum256(raw)
	d.docHash = hex.EncodeToString(sum[:12])
	if d.static {
		d.doc = bridge.Splice(raw, "")
		d.etag = `"` + d.docHash + `"`
	} else {
		d.doc = bridge.Splice(raw, serverURL)
	}
	return d, nil
}

// Capabilities lists the capabilities with an operation, in manifest order.
func (d *Document) Capabilities() []string { return append([]string(nil), d.names...) }

// ServeHTTP serves the document to GET and HEAD (with ETag and
// Access-Control-Allow-Origin: *, so that browser-based importers can fetch
// it), 405 otherwise, after charging the static tier (whose 429 it answers
// instead). Per request, only servers[0].url is written into the rendered
// bytes; every header value is this response's own (Caddy's header
// directive edits values in place).
func (d *Document) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !d.limits.ChargeStatic(w, r) {
		return
	}
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h["Allow"] = []string{"GET, HEAD"}
		ahperror.Write(w, ahperror.New(http.StatusMethodNotAllowed, ahperror.InvalidRequest, "The OpenAPI document is read with GET."))
		return
	}
	v := make([]string, 8)
	base, etag := "", d.etag
	if !d.static {
		trust := d.trust || d.trusted != nil && d.trusted(r)
		base = bridge.BaseURL(r, trust)
		if base == "" {
			base = "/" // relative to the document's own location (OpenAPI 3.1 §4.8.5)
		}
		f := fnv.New64a()
		_, _ = f.Write([]byte(base))
		etag = `"` + d.docHash + "-" + strconv.FormatUint(f.Sum64(), 36) + `"`
		if trust {
			// A trusted proxy's fields chose the URL: a shared cache
			// must not hand one host's (or scheme's) document to
			// another. Added to what is there: discovery's Vary: Accept
			// stays.
			v[0], v[1] = "X-Forwarded-Proto", "X-Forwarded-Host"
			if existing := h["Vary"]; len(existing) > 0 {
				h["Vary"] = append(existing[:len(existing):len(existing)], v[0], v[1])
			} else {
				h["Vary"] = v[0:2:2]
			}
		}
	}
	v[2], v[3], v[4] = etag, d.cache, "*"
	h["Etag"], h["Cache-Control"], h["Access-Control-Allow-Origin"] = v[2:3:3], v[3:4:4], v[4:5:5]
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	v[5], v[6], v[7] = "application/json", "nosniff", strconv.Itoa(d.doc.Len(base))
	h["Content-Type"], h["X-Content-Type-Options"], h["Content-Length"] = v[5:6:6], v[6:7:7], v[7:8:8]
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	_ = d.doc.WriteTo(w, base)
}

// etagMatch implements If-None-Match's weak comparison (RFC 9110 §13.1.2).
func etagMatch(header, etag string) bool {
	for header != "" {
		var item string
		item, header, _ = strings.Cut(header, ",")
		item = strings.TrimSpace(item)
		if item == "*" || strings.TrimPrefix(item, "W/") == etag {
			return true
		}
	}
	return false
}

// CapabilityName maps a request to the capability the front door answers
// it for, under "/capabilities/{name}": every request for a capability in
// the document (POST runs it; other methods get 405), and a POST with a
// JSON body for any other name, which gets unknown_capability and the
// names on offer rather than the site's 404 page. Everything else under
// the prefix, a legacy site's GET /capabilities/overview say, or its HTML
// form posting there, is not the door's (false): it goes on to the site.
// path is given apart from r because a rewrite may have changed r's.
func (d *Document) CapabilityName(r *http.Request, path string) (string, bool) {
	name, ok := strings.CutPrefix(path, CapabilityPrefix)
	// A CORS preflight is not a call: it goes on to the site as before
	// (the door answers no CORS; refused, it would be charged as a call).
	if !ok || name == "" || strings.IndexByte(name, '/') >= 0 || r.Method == http.MethodOptions {
		return "", false
	}
	if _, known := d.caps[name]; known {
		return name, true
	}
	if r.Method != http.MethodPost {
		return "", false
	}
	if !httpx.IsJSON(r.Header.Get("Content-Type")) {
		return "", false
	}
	return name, true
}

// ServeCapability maps a request to /capabilities/{name} onto the
// gateway's entry point: the JSON body (query, session_id, clarification
// and the capability's structured inputs; an auth member is taken as a
// credential, Appendix D.4) becomes a converse request with capability
// set, which gateway.Converse checks and, admitted, sends through next
// (the site's route to its concierge) with the credential in the scheme's
// header. The concierge's answer (status, rate-limit headers, body) goes
// to w unchanged; a refusal of the gateway is its AHP error body with its
// status. What is refused before the gateway gets an AHP error body too
// (405, 415, 413 or 400, a body that cannot be read included), charged to the client's tier as the gateway
// charges its own refusals. The error is next's.
func (d *Document) ServeCapability(w http.ResponseWriter, r *http.Request, name string, next gateway.Next) error {
	c, ok := d.caps[name]
	if !ok {
		e := ahperror.New(http.StatusBadRequest, ahperror.UnknownCapability, "The capability "+strconv.Quote(name)+" is not offered.")
		e.AvailableCapabilities = d.names
		d.refuse(w, r, e)
		return nil
	}
	if r.Method != http.MethodPost {
		w.Header()["Allow"] = []string{"POST"}
		d.refuse(w, r, ahperror.New(http.StatusMethodNotAllowed, ahperror.InvalidRequest, "Capabilities are called with POST and a JSON body."))
		return nil
	}
	// Only JSON (application/json or any +json, as the gateway takes): a
	// cross-site form or fetch without preflight can send text/plain with
	// the user's cookies, never a JSON type.
	if !httpx.IsJSON(r.Header.Get("Content-Type")) {
		d.refuse(w, r, ahperror.New(http.StatusUnsupportedMediaType, ahperror.InvalidRequest, "The body must be JSON (Content-Type: application/json)."))
		return nil
	}
	buf := getBuf()
	defer putBuf(buf)
	tooLarge, err := bridge.ReadBody(buf, r.Body, d.maxBody)
	limit := d.maxBody
	if err != nil {
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) {
			// A truncated or reset body: refused and charged as the
			// gateway refuses it at the converse endpoint, not handed to
			// Caddy as a plain 500 that costs the client nothing.
			d.refuse(w, r, ahperror.New(http.StatusBadRequest, ahperror.InvalidRequest, "the request body could not be read"))
			return nil
		}
		// The site's smaller cap (request_body max_size) was hit: name it.
		tooLarge, limit = true, min(limit, mbe.Limit)
	}
	if tooLarge {
		httpx.CloseAfter(w.Header(), r)
		d.refuse(w, r, ahperror.New(http.StatusRequestEntityTooLarge, ahperror.RequestTooLarge,
			"The body exceeds "+strconv.FormatInt(limit, 10)+" bytes."))
		return nil
	}
	call, aerr := c.ParseArguments(buf.Bytes())
	if aerr != nil {
		code := ahperror.InvalidRequest
		if aerr.Missing {
			code = ahperror.MissingField
		}
		d.refuse(w, r, ahperror.New(http.StatusBadRequest, code, aerr.Message))
		return nil
	}
	cred, err := bridge.Credential(r.Header, d.scheme, call.Auth)
	if err != nil {
		d.refuse(w, r, ahperror.New(http.StatusBadRequest, ahperror.InvalidRequest, "auth: "+err.Error()))
		return nil
	}
	body := c.AppendBody(buf.AvailableBuffer()[:0], &call)
	refusal, err := d.gw.Converse(w, bridge.NewConverseRequest(r, d.gw.ConversePath(), d.scheme, cred), body, next)
	if refusal != nil {
		ahperror.Write(w, refusal)
	}
	return err
}

// refuse sends a refusal made before the call reached the gateway, after
// counting it against the client (the 429 instead when over its limit).
func (d *Document) refuse(w http.ResponseWriter, r *http.Request, e *ahperror.Error) {
	if d.gw != nil {
		e = d.gw.Refused(w.Header(), r, e)
	}
	ahperror.Write(w, e)
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

func putBuf(b *bytes.Buffer) {
	if b.Cap() > 256<<10 {
		return
	}
	b.Reset()
	bufPool.Put(b)
}
