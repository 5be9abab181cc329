// Package discovery is AHP's MODE1 discovery at the edge (spec §3, §4.1):
// the manifest at /.well-known/agent.json, the Link header on every
// response, `Accept: application/agent+json` answered with the manifest,
// and the MODE1 content document from a local file. It knows no Caddy.
//
// Serve runs first for every request of a site. It answers the manifest,
// a negotiated manifest and a local content document itself; for every
// other request it sets the Link header (and Vary: Accept on GET and HEAD,
// which could have been answered with the manifest) and returns a writer
// that keeps exactly one ahp-manifest link on whatever the rest of the
// site answers.
package discovery

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

// Discovery modes for Accept: application/agent+json (spec §3.4).
const (
	Redirect = "redirect"
	Inline   = "inline"
)

// DefaultCacheControl is short: operators edit manifests, and a stale
// manifest misleads agents for as long as it is cached.
const DefaultCacheControl = "public, max-age=300"

// Config is what discovery serves, built once at load.
type Config struct {
	Manifest *manifest.Manifest
	Document *manifest.Document
	// Mode is Redirect (default) or Inline.
	Mode string
	// CacheControl of the manifest; DefaultCacheControl when empty.
	CacheControl string
	// ContentFile, when set, is served at the manifest's content path.
	ContentFile string
	// Signals, when set, go on pages (GET and HEAD answers whose
	// Content-Type is a page, see httpx.DocumentTypes) as Content-Signal and
	// Content-Usage (manifest.RenderSignals of the manifest's
	// content_signals).
	Signals bool
	// Limits charges the static tier for the manifest and the content
	// document; nil: no limits.
	Limits   *ratelimit.Policy
	Logger   *zap.Logger
	Observer Observer
}

// Observer is told what discovery served, for metrics.
type Observer interface {
	ManifestServed()
	Negotiated()
	ContentServed()
}

type nopObserver struct{}

func (nopObserver) ManifestServed() {}
func (nopObserver) Negotiated()     {}
func (nopObserver) ContentServed()  {}

// Handler serves one site's discovery.
type Handler struct {
	body         []byte
	etag         string
	length       string
	cacheControl string
	inline       bool
	contentPath  string
	statusPrefix string // "" without a converse endpoint
	contentFile  string
	contentType  string
	limits       *ratelimit.Policy
	signals      *manifest.Signals // nil when the manifest states none
	logger       *zap.Logger
	obs          Observer
}

// New renders what every request shares.
func New(cfg Config) (*Handler, error) {
	if cfg.Manifest == nil || cfg.Document == nil {
		return nil, errors.New("ahp: no manifest")
	}
	h := &Handler{
		body:         cfg.Document.JSON,
		etag:         cfg.Document.ETag,
		length:       strconv.Itoa(len(cfg.Document.JSON)),
		cacheControl: cfg.CacheControl,
		contentPath:  cfg.Manifest.ContentPath(),
		statusPrefix: cfg.Manifest.StatusPrefix(),
		contentFile:  cfg.ContentFile,
		limits:       cfg.Limits,
		logger:       cfg.Logger,
		obs:          cfg.Observer,
	}
	switch cfg.Mode {
	case "", Redirect:
	case Inline:
		h.inline = true
	default:
		return nil, fmt.Errorf("ahp: discovery %q: must be %q or %q", cfg.Mode, Redirect, Inline)
	}
	if h.cacheControl == "" {
		h.cacheControl = DefaultCacheControl
	}
	if cfg.Signals {
		// Decided once here, not per request: most sites state signals or
		// none, and a page answer needs only the pointer.
		if sig := manifest.RenderSignals(cfg.Manifest.ContentSignals); sig.ContentSignal != "" || sig.ContentUsage != "" {
			h.signals = &sig
		}
	}
	if h.contentFile != "" {
		if h.contentPath == "" || h.contentPath[0] != '/' {
			return nil, fmt.Errorf("ahp: content: a local file needs a content path such as /llms.txt, not %q", h.contentPath)
		}
		if err := checkContentFile(h.contentPath, h.contentFile); err != nil {
			return nil, err
		}
		h.contentType = contentTypeFor(h.contentFile)
	}
	if h.logger == nil {
		h.logger = zap.NewNop()
	}
	if h.obs == nil {
		h.obs = nopObserver{}
	}
	return h, nil
}

// ContentPath is endpoints.content ("" when none).
func (h *Handler) ContentPath() string { return h.contentPath }

// Serve runs discovery for one request; originalPath is the path the
// client sent, before any rewrite of the site's (so a site that rewrites
// unknown paths to /index.html still serves its manifest). When answered
// is true the request is done; otherwise the rest of the site must write
// through lw, and Release it afterwards.
func (h *Handler) Serve(w http.ResponseWriter, r *http.Request, originalPath string) (lw *LinkWriter, answered bool) {
	getOrHead := r.Method == http.MethodGet || r.Method == http.MethodHead
	hdr := w.Header()
	addLinkIn(hdr, getOrHead, make([]string, 2))

	path := r.URL.Path
	is := func(p string) bool { return p != "" && (path == p || originalPath == p) }
	switch {
	case is(manifest.WellKnownPath):
		if h.limits.ChargeStatic(w, r) {
			h.serveManifest(w, r)
		}
		return nil, true
	case is(h.contentPath):
		if !h.limits.ChargeStatic(w, r) {
			return nil, true
		}
		if h.contentFile != "" {
			h.ServeContentFile(w, r)
			return nil, true
		}
	case getOrHead && wantsManifest(r.Header) && !h.polled(path, originalPath):
		// Inline, the answer is the manifest itself, charged as at its
		// path; a 302 is charged when followed.
		if !h.inline || h.limits.ChargeStatic(w, r) {
			h.negotiate(w, r)
		}
		return nil, true
	}
	lw = wrap(w)
	if getOrHead {
		// Whether the answer is a page is known only when it is written.
		lw.signals = h.signals
		lw.vary = true
	}
	return lw, false
}

// polled reports whether a path is a converse call's status (§6.4): the
// protocol's own answer, which an agent polls with whatever Accept its
// client sends for the site (application/agent+json among them); the
// manifest in its place would break the poll.
func (h *Handler) polled(path, originalPath string) bool {
	return h.statusPrefix != "" && (strings.HasPrefix(path, h.statusPrefix) || strings.HasPrefix(originalPath, h.statusPrefix))
}

// serveManifest answers at /.well-known/agent.json (spec §3.1). The bytes
// were rendered at load; whatever the upstream has at this path never
// shows: the plugin's manifest is the site's manifest.
func (h *Handler) serveManifest(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.writeManifest(w, r, "application/json", false)
		h.obs.ManifestServed()
	case http.MethodOptions:
		hdr := w.Header()
		v := make([]string, 5)
		v[0], v[1], v[2], v[3], v[4] = "GET, HEAD, OPTIONS", "*", "GET, HEAD, OPTIONS", "Accept, If-None-Match", "86400"
		hdr["Allow"], hdr["Access-Control-Allow-Origin"], hdr["Access-Control-Allow-Methods"] = v[0:1:1], v[1:2:2], v[2:3:3]
		hdr["Access-Control-Allow-Headers"], hdr["Access-Control-Max-Age"] = v[3:4:4], v[4:5:5]
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header()["Allow"] = []string{"GET, HEAD, OPTIONS"}
		ahperror.Write(w, ahperror.New(http.StatusMethodNotAllowed, ahperror.InvalidRequest,
			"method "+r.Method+" is not allowed on "+manifest.WellKnownPath+"; use GET"))
	}
}

// negotiate answers a GET or HEAD whose Accept lists application/agent+json
// (spec §3.4): a 302 to the manifest, or the manifest itself.
func (h *Handler) negotiate(w http.ResponseWriter, r *http.Request) {
	h.obs.Negotiated()
	if h.inline {
		h.writeManifest(w, r, manifest.MediaType, true)
		return
	}
	hdr := w.Header()
	v := make([]string, 2)
	v[0], v[1] = manifest.WellKnownPath, h.cacheControl
	hdr["Location"], hdr["Cache-Control"] = v[0:1:1], v[1:2:2]
	w.WriteHeader(http.StatusFound)
}

// writeManifest sends the rendered manifest, answering a matching
// If-None-Match with 304. Every header value is this response's own.
func (h *Handler) writeManifest(w http.ResponseWriter, r *http.Request, contentType string, negotiated bool) {
	hdr := w.Header()
	v := make([]string, 7)
	v[0], v[1], v[2], v[3], v[4], v[5], v[6] = contentType, h.length, h.etag, h.cacheControl, "*", "nosniff", manifest.WellKnownPath
	hdr["Etag"], hdr["Cache-Control"] = v[2:3:3], v[3:4:4]
	hdr["Access-Control-Allow-Origin"], hdr["X-Content-Type-Options"] = v[4:5:5], v[5:6:6]
	if negotiated {
		hdr["Content-Location"] = v[6:7:7]
	}
	if inm := r.Header["If-None-Match"]; len(inm) > 0 && etagMatches(inm, h.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr["Content-Type"], hdr["Content-Length"] = v[0:1:1], v[1:2:2]
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(h.body)
	}
}

// etagMatches implements If-None-Match's weak comparison (RFC 9110
// §13.1.2): "*" or any listed tag whose opaque part equals ours.
func etagMatches(values []string, etag string) bool {
	for _, v := range values {
		for len(v) > 0 {
			v = v[skipOWS(v, 0):]
			if len(v) == 0 {
				break
			}
			if v[0] == ',' {
				v = v[1:]
				continue
			}
			if v[0] == '*' {
				return true
			}
			tag := v
			if len(tag) >= 2 && tag[0] == 'W' && tag[1] == '/' {
				tag = tag[2:]
			}
			if len(tag) == 0 || tag[0] != '"' {
				// malformed: skip to the next comma
				i := indexByte(v, ',')
				if i < 0 {
					break
				}
				v = v[i+1:]
				continue
			}
			end := indexByte(tag[1:], '"')
			if end < 0 {
				break
			}
			if tag[:end+2] == etag {
				return true
			}
			v = tag[end+2:]
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

// LinkWriter sits between the rest of the site and the client. At
// WriteHeader it keeps exactly one ahp-manifest link (an upstream that
// already speaks AHP adds its own) and, on a page, states the content
// signals; everything else passes untouched.
//
// It keeps Flush, Hijack, ReadFrom, Push and Unwrap working: wrappers
// that hide them break SSE, WebSockets and sendfile.
type LinkWriter struct {
	http.ResponseWriter
	// signals are the handler's rendered content signals, for a GET or
	// HEAD when the manifest has any; nil otherwise.
	signals *manifest.Signals
	// vary: a GET or HEAD, whose answer depends on Accept (agent+json gets
	// the manifest): Vary must list Accept, whatever the site set.
	vary        bool
	wroteHeader bool
}

var linkWriters = sync.Pool{New: func() any { return new(LinkWriter) }}

func wrap(w http.ResponseWriter) *LinkWriter {
	lw := linkWriters.Get().(*LinkWriter)
	lw.ResponseWriter = w
	return lw
}

// Release returns lw to its pool; it must not be used afterwards.
func (lw *LinkWriter) Release() {
	*lw = LinkWriter{}
	linkWriters.Put(lw)
}

func (lw *LinkWriter) WriteHeader(status int) {
	if !lw.wroteHeader && (status < 100 || status >= 200 || status == http.StatusSwitchingProtocols) {
		lw.wroteHeader = true
		hdr := lw.ResponseWriter.Header()
		dedupeLinks(hdr)
		if lw.vary {
			// A handler below that set its own Vary (`header Vary Cookie`,
			// Header().Set) dropped ours: a cache would then serve the
			// page to an agent that asked for the manifest, or the reverse.
			restoreVary(hdr)
		}
		if lw.signals != nil && isPage(hdr["Content-Type"]) {
			addSignals(hdr, lw.signals)
		}
	}
	lw.ResponseWriter.WriteHeader(status)
}

func (lw *LinkWriter) Write(p []byte) (int, error) {
	if !lw.wroteHeader {
		lw.WriteHeader(http.StatusOK)
	}
	return lw.ResponseWriter.Write(p)
}

// ReadFrom keeps sendfile and splice (file_server, reverse_proxy).
func (lw *LinkWriter) ReadFrom(r io.Reader) (int64, error) {
	if !lw.wroteHeader {
		lw.WriteHeader(http.StatusOK)
	}
	if rf, ok := lw.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(httpx.WriterOnly{Writer: lw.ResponseWriter}, r)
}

// FlushError is what http.ResponseController calls.
func (lw *LinkWriter) FlushError() error {
	if !lw.wroteHeader {
		lw.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(lw.ResponseWriter).Flush()
}

// Flush implements http.Flusher for handlers that still assert it.
func (lw *LinkWriter) Flush() { _ = lw.FlushError() }

func (lw *LinkWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(lw.ResponseWriter).Hijack()
	if err == nil {
		lw.wroteHeader = true
	}
	return conn, brw, err
}

// Push keeps HTTP/2 server push working.
func (lw *LinkWriter) Push(target string, opts *http.PushOptions) error {
	if p, ok := lw.ResponseWriter.(http.Pusher); ok {
		return p.Push(target, opts)
	}
	return http.ErrNotSupported
}

// Unwrap lets http.ResponseController reach the writers below.
func (lw *LinkWriter) Unwrap() http.ResponseWriter { return lw.ResponseWriter }

// Interface guards
var (
	_ http.Flusher  = (*LinkWriter)(nil)
	_ http.Hijacker = (*LinkWriter)(nil)
	_ http.Pusher   = (*LinkWriter)(nil)
	_ io.ReaderFrom = (*LinkWriter)(nil)
)
