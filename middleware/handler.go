// Package middleware is the AHP request pipeline as plain net/http code:
// discovery (the manifest, the Link header, Accept negotiation, MODE1
// content), the in-page notice on pages passing through, and the converse
// gate. It knows nothing of Caddy; package caddymodule adapts it.
package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/integrations/mcp"
	"github.com/caddy-ahp/caddy-ahp/integrations/openapi"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/notice"
	"github.com/caddy-ahp/caddy-ahp/pathguard"
)

// Next is the rest of the handler chain. caddyhttp.Handler satisfies it, so
// the Caddy adapter passes its next handler without wrapping it.
type Next interface {
	ServeHTTP(http.ResponseWriter, *http.Request) error
}

// Discovery modes for Accept: application/agent+json (spec §3.4).
const (
	DiscoveryRedirect = "redirect"
	DiscoveryInline   = "inline"
)

// DefaultCacheControl is short: operators edit manifests, and a stale
// manifest misleads agents for as long as it is cached.
const DefaultCacheControl = "public, max-age=300"

// Config is everything the pipeline needs, built once at load.
type Config struct {
	Manifest *manifest.Manifest
	Document *manifest.Document
	// Discovery is DiscoveryRedirect (default) or DiscoveryInline.
	Discovery string
	// CacheControl for the manifest; DefaultCacheControl when empty.
	CacheControl string
	// ContentFile, when set, is served at the manifest's content path.
	ContentFile string
	// Notice injects the in-page notice; nil turns it off.
	Notice *notice.Injector
	// Gateway enforces the protocol on the converse endpoint; nil (or no
	// converse endpoint in the manifest) turns it off.
	Gateway *Gateway
	// RateLimits configures spec §11; nil turns rate limiting off.
	RateLimits *RateLimits
	// MCP and OpenAPI are the integration front doors (spec §4.4); nil
	// turns one off. Their calls run through this same pipeline.
	MCP     *mcp.Server
	MCPPath string
	OpenAPI *openapi.Document
	// OpenAPIPath serves the OpenAPI document.
	OpenAPIPath string
	// ErrorStatus reads the HTTP status of an error from next.
	ErrorStatus ErrorStatus
	// ErrorPage, when set, answers an error from next with the site's
	// error pages through the pipeline's writer (so that they get the
	// notice); it reports whether it did.
	ErrorPage func(w http.ResponseWriter, r *http.Request, err error) bool
	Logger    *zap.Logger
	Observer  Observer
}

// Handler is the AHP pipeline for one site.
type Handler struct {
	manifestPath string
	contentPath  string
	contentFile  string
	contentType  []string
	inline       bool
	notice       *notice.Injector
	gateway      *gateway
	limits       *rateLimiter
	errorStatus  ErrorStatus
	errorPage    func(http.ResponseWriter, *http.Request, error) bool
	mcp          *mcp.Server
	mcpPath      string
	openapi      *openapi.Document
	openapiPath  string
	logger       *zap.Logger
	observer     Observer

	// Header values rendered once, shared by every response.
	manifestBody   []byte
	manifestHeader http.Header
	negotiated     http.Header
}

// New checks the configuration and renders what every request shares.
func New(cfg Config) (*Handler, error) {
	if cfg.Manifest == nil || cfg.Document == nil {
		return nil, errors.New("ahp: no manifest")
	}
	h := &Handler{
		manifestPath: manifest.WellKnownPath,
		contentPath:  cfg.Manifest.ContentPath(),
		contentFile:  cfg.ContentFile,
		notice:       cfg.Notice,
		limits:       newRateLimiter(cfg.RateLimits),
		errorStatus:  cfg.ErrorStatus,
		errorPage:    cfg.ErrorPage,
		mcp:          cfg.MCP,
		mcpPath:      cfg.MCPPath,
		openapi:      cfg.OpenAPI,
		openapiPath:  cfg.OpenAPIPath,
		logger:       cfg.Logger,
		observer:     cfg.Observer,
		manifestBody: cfg.Document.JSON,
	}
	if h.logger == nil {
		h.logger = zap.NewNop()
	}
	if h.observer == nil {
		h.observer = NopObserver{}
	}
	gw, err := newGateway(cfg.Gateway, cfg.Manifest)
	if err != nil {
		return nil, err
	}
	h.gateway = gw
	switch cfg.Discovery {
	case "", DiscoveryRedirect:
	case DiscoveryInline:
		h.inline = true
	default:
		return nil, fmt.Errorf("ahp: discovery %q: must be %q or %q", cfg.Discovery, DiscoveryRedirect, DiscoveryInline)
	}
	if h.contentFile != "" {
		if h.contentPath == "" || h.contentPath[0] != '/' {
			return nil, fmt.Errorf("ahp: content: a local file needs a content path such as /llms.txt, not %q", h.contentPath)
		}
		h.contentType = []string{contentTypeFor(h.contentFile)}
	}
	cacheControl := cfg.CacheControl
	if cacheControl == "" {
		cacheControl = DefaultCacheControl
	}
	length := strconv.Itoa(len(h.manifestBody))
	h.manifestHeader = http.Header{
		"Content-Type":                {"application/json"},
		"Content-Length":              {length},
		"Etag":                        {cfg.Document.ETag},
		"Cache-Control":               {cacheControl},
		"Access-Control-Allow-Origin": {"*"},
		"X-Content-Type-Options":      {"nosniff"},
	}
	h.negotiated = http.Header{
		"Content-Type":                {manifest.MediaType},
		"Content-Length":              {length},
		"Content-Location":            {manifest.WellKnownPath},
		"Etag":                        {cfg.Document.ETag},
		"Cache-Control":               {cacheControl},
		"Access-Control-Allow-Origin": {"*"},
		"X-Content-Type-Options":      {"nosniff"},
	}
	return h, nil
}

// ServeHTTP runs the pipeline. Requests it does not answer itself go to
// next with the discovery headers set and the body watched for the notice.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next Next) error {
	hdr := w.Header()
	addLink(hdr)

	path := r.URL.Path
	if path == h.manifestPath {
		if h.limitStatic(w, r) {
			h.serveManifest(w, r)
		}
		return nil
	}
	if path == h.contentPath {
		if !h.limitStatic(w, r) {
			return nil
		}
		if h.contentFile != "" {
			return h.serveContentFile(w, r)
		}
	}
	if h.mcp != nil && path == h.mcpPath {
		if h.limitStatic(w, r) {
			return h.mcp.ServeHTTP(w, r, h.dispatcher(next))
		}
		return nil
	}
	if h.openapi != nil {
		if path == h.openapiPath {
			if h.limitStatic(w, r) {
				h.openapi.ServeHTTP(w, r)
			}
			return nil
		}
		if name, ok := h.openapi.CapabilityName(path); ok && r.Method == http.MethodPost {
			return h.openapi.ServeCapability(w, r, name, h.dispatcher(next))
		}
	}
	if g := h.gateway; g != nil {
		// Every spelling of the converse and status paths that some stack
		// would route to the concierge is either the exact one, which the
		// gateway checks, or refused: no guard can be walked around.
		switch g.converse.Match(r.URL) {
		case pathguard.Exact:
			return h.serveConverse(w, r, next)
		case pathguard.Variant:
			h.refuseVariant(w, r, g.conversePath)
			return nil
		}
		switch g.status.Match(r.URL) {
		case pathguard.Exact:
			return h.serveStatus(w, r, next)
		case pathguard.Variant:
			h.refuseVariant(w, r, g.statusPrefix+"{id}")
			return nil
		}
	}

	getOrHead := r.Method == http.MethodGet || r.Method == http.MethodHead
	if getOrHead {
		// Any GET or HEAD could have been answered with the manifest,
		// so caches must key these responses on Accept.
		addVary(hdr, "Accept")
		if wantsManifest(r.Header) {
			h.negotiate(w, r)
			return nil
		}
	}

	noticeSkip := "off"
	if h.notice != nil {
		noticeSkip = notice.SkipRequest(r)
	}
	rw := h.wrap(w, noticeSkip)
	err := next.ServeHTTP(rw, r)
	if err != nil && !rw.wroteHeader && noticeSkip == "" && h.errorPage != nil && h.errorPage(rw, r, err) {
		err = nil
	}
	rw.finish()
	return err
}

// dispatcher runs the front doors' internal requests (a converse call, a
// content read) through this same pipeline and the rest of the site's
// chain, exactly as a direct request: same validation, auth, sessions,
// budgets and rate limits ("proxied, not duplicated", spec §4.4.3).
func (h *Handler) dispatcher(next Next) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		return h.ServeHTTP(w, r, next)
	}
}

// addVary adds a token to Vary unless it is there already.
func addVary(h http.Header, token string) {
	for _, v := range h["Vary"] {
		if containsToken(v, token) {
			return
		}
	}
	if _, ok := h["Vary"]; !ok && token == "Accept" {
		h["Vary"] = varyAccept
		return
	}
	h["Vary"] = append(h["Vary"][:len(h["Vary"]):len(h["Vary"])], token)
}

var varyAccept = []string{"Accept"}

// containsToken reports whether a comma-separated header value lists token
// (case-insensitively).
func containsToken(v, token string) bool {
	for len(v) > 0 {
		var item string
		if i := indexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, ""
		}
		if equalFoldASCII(trimOWSRight(item[skipOWS(item, 0):]), token) {
			return true
		}
	}
	return false
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
