package openapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/integrations/internal/bridge"
	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// Dispatch runs an internal request through the whole AHP pipeline and the
// rest of the site's handler chain, exactly as if it had arrived from the
// client. It is the same type as mcp.Dispatch.
type Dispatch = func(w http.ResponseWriter, r *http.Request) error

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
	// TrustForwardedProto lets X-Forwarded-Proto choose the scheme of
	// servers[0].url when BaseURL is empty. Set it only when the peer is a
	// trusted proxy.
	TrustForwardedProto bool
	// MCPPath, when set, is named in the document's x-ahp extension next
	// to the manifest, for tools that can use either door.
	MCPPath string
	// MaxBodyBytes caps a POST /capabilities/{name} body (413 beyond);
	// DefaultMaxBodyBytes when 0. The converse gate applies its own cap to
	// the converse body built from it.
	MaxBodyBytes int64
	// CacheControl of the document; DefaultCacheControl when empty.
	CacheControl string
	// CountRefusal charges a call refused here, before it became a
	// converse request, to the client's limits (gateway.CountRefusal), so
	// floods of bad calls are limited as on the converse endpoint. It
	// returns the 429 to send instead when the client is over its limit.
	CountRefusal func(http.Header, *http.Request) *ahperror.Error
}

// Document is the OpenAPI front door of one site: the document, rendered
// once at load, and the mapping of POST /capabilities/{name} onto the
// converse pipeline. It is safe for concurrent use.
type Document struct {
	// doc is the rendered document with servers[0].url open; static
	// holds it complete when Options.BaseURL fixes the URL.
	doc      *bridge.Spliced
	static   bool
	docHash  string // of the rendered bytes, for ETags
	etag     string // complete ETag when static
	trust    bool
	cache    []string
	maxBody  int64
	caps     map[string]*bridge.Capability
	names    []string
	scheme   string
	converse string
	count    func(http.Header, *http.Request) *ahperror.Error
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
		trust:    opts.TrustForwardedProto,
		maxBody:  opts.MaxBodyBytes,
		caps:     make(map[string]*bridge.Capability, len(caps)),
		scheme:   m.Authentication,
		converse: m.ConversePath(),
		count:    opts.CountRefusal,
		cache:    []string{opts.CacheControl},
	}
	if d.maxBody <= 0 {
		d.maxBody = DefaultMaxBodyBytes
	}
	if opts.CacheControl == "" {
		d.cache = []string{DefaultCacheControl}
	}
	if len(caps) > 0 && !strings.HasPrefix(d.converse, "/") {
		return nil, fmt.Errorf("openapi: endpoints.converse must be a path on this site (such as /agent/converse), not %q: capability calls run through the site's own converse pipeline", d.converse)
	}
	for _, c := range caps {
		d.caps[c.Name] = c
		d.names = append(d.names, c.Name)
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

// Shared header values, never modified in place.
var (
	allowGetHead = []string{"GET, HEAD"}
	allowPost    = []string{"POST"}
	jsonType     = []string{"application/json"}
	corsAny      = []string{"*"}
	nosniff      = []string{"nosniff"}
	varyProto    = []string{"X-Forwarded-Proto"}
)

// ServeHTTP serves the document to GET and HEAD (with ETag and
// Access-Control-Allow-Origin: *, so that browser-based importers can fetch
// it), 405 otherwise. Per request, only servers[0].url is written into the
// rendered bytes.
func (d *Document) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h["Allow"] = allowGetHead
		ahperror.Write(w, ahperror.New(http.StatusMethodNotAllowed, ahperror.InvalidRequest, "The OpenAPI document is read with GET."))
		return
	}
	base, etag := "", d.etag
	if !d.static {
		base = bridge.BaseURL(r, d.trust)
		if base == "" {
			base = "/" // relative to the document's own location (OpenAPI 3.1 §4.8.5)
		}
		f := fnv.New64a()
		_, _ = f.Write([]byte(base))
		etag = `"` + d.docHash + "-" + strconv.FormatUint(f.Sum64(), 36) + `"`
		if d.trust {
			h["Vary"] = varyProto
		}
	}
	h["Etag"] = []string{etag}
	h["Cache-Control"] = d.cache
	h["Access-Control-Allow-Origin"] = corsAny
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Type"] = jsonType
	h["X-Content-Type-Options"] = nosniff
	h["Content-Length"] = []string{strconv.Itoa(d.doc.Len(base))}
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

// CapabilityName maps a request path to the capability its POST runs:
// "/capabilities/{name}" for a capability in the document. Other paths,
// unknown names included, are not the front door's (false): they go on to
// the site.
func (d *Document) CapabilityName(path string) (string, bool) {
	name, ok := strings.CutPrefix(path, CapabilityPrefix)
	if !ok {
		return "", false
	}
	if _, known := d.caps[name]; !known {
		return "", false
	}
	return name, true
}

// ServeCapability maps a request to /capabilities/{name} onto the converse
// pipeline: the JSON body (query, session_id, clarification and the
// capability's structured inputs; an auth member is taken as a credential,
// Appendix D.4) becomes a converse request with capability set, posted to
// endpoints.converse through dispatch with the credential in the scheme's
// header. The pipeline's response (status, headers, rate-limit headers
// included, body) goes to w unchanged: dispatch writes it there. What is
// refused before dispatch gets an AHP error body (405, 415, 413 or 400).
// The error is dispatch's.
func (d *Document) ServeCapability(w http.ResponseWriter, r *http.Request, name string, dispatch Dispatch) error {
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
	// Only JSON: a cross-site form or fetch without preflight can send
	// text/plain with the user's cookies, never application/json.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		d.refuse(w, r, ahperror.New(http.StatusUnsupportedMediaType, ahperror.InvalidRequest, "The body must be JSON (Content-Type: application/json)."))
		return nil
	}
	buf := getBuf()
	defer putBuf(buf)
	tooLarge, err := bridge.ReadBody(buf, r.Body, d.maxBody)
	if err != nil {
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) {
			return err
		}
		tooLarge = true
	}
	if tooLarge {
		w.Header()["Connection"] = []string{"close"}
		d.refuse(w, r, ahperror.New(http.StatusRequestEntityTooLarge, ahperror.RequestTooLarge,
			"The body exceeds "+strconv.FormatInt(d.maxBody, 10)+" bytes."))
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
	body := c.AppendBody(make([]byte, 0, 256+len(call.Query)), &call)
	return dispatch(w, bridge.NewConverseRequest(r, d.converse, body, d.scheme, cred))
}

// refuse sends a refusal made before the call reached the gateway, after
// counting it against the client (the 429 instead when over its limit).
func (d *Document) refuse(w http.ResponseWriter, r *http.Request, e *ahperror.Error) {
	if d.count != nil {
		if limited := d.count(w.Header(), r); limited != nil {
			e = limited
		}
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
