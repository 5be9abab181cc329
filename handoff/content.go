package handoff

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"go.uber.org/zap"
	"golang.org/x/net/html"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
	"github.com/caddy-ahp/caddy-ahp/pathguard"
)

// ContentConfig configures a sandbox content origin (spec §13, §14): the
// origin that serves published sandbox content, which is attacker
// controlled.
type ContentConfig struct {
	// Routes are the provider's content routes: "/" and pathguard
	// patterns. Only their exact spellings are served; every other path
	// gets 404 and never reaches the backend (spec §13.1).
	Routes []string
	// Types are the media types served (default DefaultContentTypes).
	// Scripts, SVG and XML are never served, whatever this says.
	Types []string
	// CSP replaces DefaultContentCSP.
	CSP string
	// HTMLChecks refuses HTML pages holding what a sandbox renderer must
	// have removed (spec §14): script, style, svg and embedding elements,
	// inline event handlers and style attributes, and URLs with a scheme
	// other than https. Default on; the page is buffered (up to
	// MaxCheckedHTML) to be checked.
	HTMLChecks *bool

	RequestID func(*http.Request) string
	Logger    *zap.Logger
	Observer  ContentObserver
	// ErrorStatus maps a backend error to its HTTP status (Caddy's
	// HandlerError); 0, or no function, is 500.
	ErrorStatus func(error) int
}

// ContentObserver counts the content origin's refusals by reason.
type ContentObserver interface{ ContentRefused(reason string) }

type nopContentObserver struct{}

func (nopContentObserver) ContentRefused(string) {}

// DefaultContentRoutes serve a published page at the origin's root and
// its assets.
var DefaultContentRoutes = []string{"/", "/assets/*"}

// DefaultContentTypes are the media types a sandbox content origin serves.
var DefaultContentTypes = []string{
	"text/html", "text/plain", "text/css",
	"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif",
	"font/woff2",
}

// DefaultContentCSP runs no script, applies no inline style, loads images,
// styles and fonts from the origin only, submits no form and is framed by
// no one.
const DefaultContentCSP = "default-src 'none'; img-src 'self'; style-src 'self'; font-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// MaxCheckedHTML is the largest HTML page checked; a larger one is refused.
const MaxCheckedHTML = 2 << 20

// sniffLen is how much of every answer is looked at for SVG.
const sniffLen = 512

// never are media types no configuration serves.
var never = map[string]bool{
	"image/svg+xml": true, "text/javascript": true, "application/javascript": true,
	"application/ecmascript": true, "text/ecmascript": true, "application/xml": true, "text/xml": true,
	"application/xhtml+xml": true, "text/xsl": true, "application/xslt+xml": true,
}

// ContentHandler enforces the sandbox content origin's rules.
type ContentHandler struct {
	root       bool
	routes     []*pathguard.Pattern
	types      map[string]bool
	csp        string
	htmlChecks bool
	requestID  func(*http.Request) string
	logger     *zap.Logger
	observer   ContentObserver
	errStatus  func(error) int
}

// NewContent validates cfg and builds a ContentHandler.
func NewContent(cfg ContentConfig) (*ContentHandler, error) {
	c := &ContentHandler{csp: cfg.CSP, types: map[string]bool{}, htmlChecks: cfg.HTMLChecks == nil || *cfg.HTMLChecks,
		requestID: cfg.RequestID, logger: cfg.Logger, observer: cfg.Observer, errStatus: cfg.ErrorStatus}
	if c.csp == "" {
		c.csp = DefaultContentCSP
	}
	if c.logger == nil {
		c.logger = zap.NewNop()
	}
	if c.observer == nil {
		c.observer = nopContentObserver{}
	}
	routes := cfg.Routes
	if len(routes) == 0 {
		routes = DefaultContentRoutes
	}
	for _, s := range routes {
		if s == "/" {
			c.root = true
			continue
		}
		p, err := pathguard.Compile(s)
		if err != nil {
			return nil, fmt.Errorf("route %v", err)
		}
		c.routes = append(c.routes, p)
	}
	types := cfg.Types
	if len(types) == 0 {
		types = DefaultContentTypes
	}
	for _, t := range types {
		t = strings.ToLower(strings.TrimSpace(t))
		if never[t] {
			return nil, fmt.Errorf("type %s: a sandbox content origin never serves it (spec §13, §14)", t)
		}
		if !strings.Contains(t, "/") {
			return nil, fmt.Errorf("type %q: want a media type such as text/html", t)
		}
		c.types[t] = true
	}
	return c, nil
}

// allowed reports whether the path is one of the content routes, spelled
// exactly.
func (c *ContentHandler) allowed(r *http.Request) bool {
	if r.URL.RawPath == "" && r.URL.Path == "/" {
		return c.root
	}
	for _, p := range c.routes {
		if p.Match(r.URL) == pathguard.Exact {
			return true
		}
	}
	return false
}

// ServeHTTP implements the content origin's rules.
func (c *ContentHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next Next) error {
	httpx.DeleteEdgeFields(r.Header, AdmissionHeader)
	hd := w.Header()
	// On every answer, refusals and other handlers' answers included.
	hd["X-Robots-Tag"] = []string{"noindex, nofollow"}
	hd["Content-Security-Policy"] = []string{c.csp}
	hd["X-Content-Type-Options"] = []string{"nosniff"}
	hd["Referrer-Policy"] = []string{"no-referrer"}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		c.refuse(w, r, "method")
		return nil
	}
	if !c.allowed(r) {
		c.refuse(w, r, "route")
		return nil
	}
	cw := &contentWriter{w: w, c: c, r: r, staged: make(http.Header, 8)}
	// A backend's error is logged here and not returned: Caddy would log
	// it with the request, whose Host is the public handle (a bearer
	// secret, §15.1, §22), in its error log, which the site's access-log
	// filter does not reach.
	if err := next.ServeHTTP(cw, r); err != nil {
		level := zap.InfoLevel
		if errors.Is(err, context.Canceled) {
			level = zap.DebugLevel // a client that hung up: no backend failure (and cheap to repeat)
		}
		if ce := c.logger.Check(level, "agent handoff"); ce != nil {
			ce.Write(zap.String("action", "content.backend_error"), zap.String("error", errorClass(err)), zap.String("request_id", c.id(r)))
		}
		if cw.status == 0 {
			c.backendFailed(w, r, err)
			return nil
		}
	}
	cw.finish()
	return nil
}

func (c *ContentHandler) id(r *http.Request) string {
	if c.requestID == nil {
		return ""
	}
	return c.requestID(r)
}

// backendFailed answers a request whose backend failed before answering:
// the error's status, no detail.
func (c *ContentHandler) backendFailed(w http.ResponseWriter, r *http.Request, err error) {
	status := 0
	if c.errStatus != nil {
		status = c.errStatus(err)
	}
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	body := http.StatusText(status)
	if body == "" {
		body = "Error" // 499 and other statuses of Caddy's own
	}
	body += ".\n"
	hd := w.Header()
	hd["Content-Type"] = []string{"text/plain; charset=utf-8"}
	hd["Content-Length"] = []string{strconv.Itoa(len(body))}
	hd["Cache-Control"] = []string{"no-store"}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, body)
	}
}

// notFound is the content origin's one refusal: no redirect, no detail.
var notFound = []byte("Not found.\n")

func (c *ContentHandler) refuse(w http.ResponseWriter, r *http.Request, reason string) {
	c.observer.ContentRefused(reason)
	if ce := c.logger.Check(zap.DebugLevel, "agent handoff"); ce != nil {
		ce.Write(zap.String("action", "content.refused"), zap.String("reason", reason), zap.String("request_id", c.id(r)))
	}
	hd := w.Header()
	hd["Content-Type"] = []string{"text/plain; charset=utf-8"}
	hd["Content-Length"] = []string{strconv.Itoa(len(notFound))}
	hd["Cache-Control"] = []string{"no-store"}
	if reason == "method" {
		hd["Allow"] = []string{"GET, HEAD"}
		w.WriteHeader(http.StatusMethodNotAllowed)
	} else {
		w.WriteHeader(http.StatusNotFound)
	}
	if r.Method != http.MethodHead {
		_, _ = w.Write(notFound)
	}
}

// passedHeaders are the only backend headers a content answer keeps:
// sandbox content cannot set cookies, redirect, link, preload, open CORS
// or anything else by header (spec §13.1).
var passedHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Cache-Control": true, "Etag": true,
	"Last-Modified": true, "Expires": true, "Date": true, "Vary": true, "Content-Language": true,
	"Accept-Ranges": true, "Content-Range": true, "Age": true, "Content-Encoding": true,
}

// contentWriter holds an answer until it is judged: headers at
// WriteHeader, the first bytes for SVG, HTML pages whole.
type contentWriter struct {
	w      http.ResponseWriter
	c      *ContentHandler
	r      *http.Request
	staged http.Header
	status int

	decided bool // passing through
	refused bool
	html    bool
	coding  string // a content coding: the body is held whole and decoded to be judged
	buf     bytes.Buffer
}

func (cw *contentWriter) Header() http.Header {
	if cw.decided {
		return cw.w.Header()
	}
	return cw.staged
}

func (cw *contentWriter) WriteHeader(code int) {
	if cw.status != 0 || code < 200 {
		return
	}
	cw.status = code
	if reason := cw.judgeHeader(); reason != "" {
		cw.refused = true
		cw.c.refuse(cw.w, cw.r, reason)
	}
}

// judgeHeader checks the status and headers; "" means they may pass.
func (cw *contentWriter) judgeHeader() string {
	if cw.status >= 300 && cw.status < 400 && cw.status != http.StatusNotModified {
		return "redirect"
	}
	switch ce := strings.ToLower(strings.TrimSpace(cw.staged.Get("Content-Encoding"))); ce {
	case "", "identity":
	case "gzip", "x-gzip", "deflate", "br", "zstd":
		cw.coding = ce
	default:
		return "encoding"
	}
	if cw.status == http.StatusNotModified || cw.status == http.StatusNoContent {
		return ""
	}
	return cw.judgeType()
}

func (cw *contentWriter) judgeType() string {
	ct := cw.staged.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || ct == "" {
		return "type"
	}
	if mt == "image/svg+xml" {
		return "svg"
	}
	if never[mt] || !cw.c.types[mt] {
		return "type"
	}
	cw.html = mt == "text/html" && cw.c.htmlChecks
	return ""
}

func (cw *contentWriter) Write(b []byte) (int, error) {
	if cw.status == 0 {
		cw.WriteHeader(http.StatusOK)
	}
	if cw.refused {
		return len(b), nil
	}
	if cw.decided {
		return cw.w.Write(b)
	}
	cw.buf.Write(b)
	if cw.html || cw.coding != "" {
		if cw.buf.Len() > MaxCheckedHTML {
			cw.refuseBody("too_large")
		}
		return len(b), nil
	}
	if cw.buf.Len() >= sniffLen {
		cw.judgeBody()
	}
	return len(b), nil
}

// judgeBody decides on what was held back, then lets it (and the rest)
// through or refuses the answer.
func (cw *contentWriter) judgeBody() {
	b := cw.buf.Bytes()
	plain := b
	if cw.coding != "" && len(b) > 0 {
		var err error
		if plain, err = decodeBody(cw.coding, b, maxDecoded); err != nil {
			cw.refuseBody("encoding")
			return
		}
	}
	if looksLikeSVG(plain) {
		cw.refuseBody("svg")
		return
	}
	if cw.html {
		if reason := CheckHTML(plain); reason != "" {
			cw.refuseBody(reason)
			return
		}
	}
	dst := cw.w.Header()
	for k, v := range cw.staged {
		if passedHeaders[k] {
			dst[k] = v
		}
	}
	if (cw.html || cw.coding != "") && cw.r.Method != http.MethodHead {
		dst["Content-Length"] = []string{strconv.Itoa(len(b))}
	}
	cw.decided = true
	cw.w.WriteHeader(cw.status)
	_, _ = cw.w.Write(b)
	cw.buf.Reset()
}

func (cw *contentWriter) refuseBody(reason string) {
	cw.refused = true
	cw.buf.Reset()
	cw.c.refuse(cw.w, cw.r, reason)
}

// finish judges an answer that ended before sniffLen bytes (or an HTML
// page) once the backend is done.
func (cw *contentWriter) finish() {
	if cw.status == 0 {
		cw.WriteHeader(http.StatusOK)
	}
	if !cw.refused && !cw.decided {
		cw.judgeBody()
	}
}

// Flush passes through once the answer streams.
func (cw *contentWriter) Flush() {
	if cw.decided {
		_ = http.NewResponseController(cw.w).Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (cw *contentWriter) Unwrap() http.ResponseWriter { return cw.w }

// looksLikeSVG reports whether a body's first element is an SVG root,
// after byte-order marks, white space, an XML declaration, processing
// instructions, comments and a doctype, or whether its start names svg
// anywhere in a doctype.
func looksLikeSVG(b []byte) bool {
	if len(b) > sniffLen {
		b = b[:sniffLen]
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if bytes.HasPrefix(b, []byte("\xfe\xff")) || bytes.HasPrefix(b, []byte("\xff\xfe")) {
		// UTF-16 text: look at it with the zero bytes dropped.
		b = bytes.ReplaceAll(b[2:], []byte{0}, nil)
	}
	for {
		b = bytes.TrimLeft(b, " \t\r\n\f")
		switch {
		case hasPrefixFold(b, "<?"):
			i := bytes.Index(b, []byte("?>"))
			if i < 0 {
				return false
			}
			b = b[i+2:]
		case hasPrefixFold(b, "<!--"):
			i := bytes.Index(b, []byte("-->"))
			if i < 0 {
				return false
			}
			b = b[i+3:]
		case hasPrefixFold(b, "<!doctype"):
			i := bytes.IndexByte(b, '>')
			end := len(b)
			if i >= 0 {
				end = i
			}
			if bytes.Contains(bytes.ToLower(b[:end]), []byte("svg")) {
				return true
			}
			if i < 0 {
				return false
			}
			b = b[i+1:]
		default:
			if !hasPrefixFold(b, "<svg") && !hasPrefixFold(b, "<svg:svg") {
				// A namespaced root: <x:svg ...>.
				if len(b) > 1 && b[0] == '<' {
					end := bytes.IndexAny(b, " \t\r\n/>")
					if end > 0 {
						name := bytes.ToLower(b[1:end])
						return bytes.HasSuffix(name, []byte(":svg"))
					}
				}
				return false
			}
			rest := b[4:]
			return len(rest) == 0 || strings.IndexByte(" \t\r\n/>:", rest[0]) >= 0
		}
	}
}

// maxDecoded bounds what a compressed answer may decode to (a
// decompression bomb is refused, not expanded).
const maxDecoded = 4 * MaxCheckedHTML

var errDecodedTooLarge = errors.New("decoded body too large")

// decodeBody decodes a content-coded body to judge it; the coded bytes are
// what goes out.
func decodeBody(coding string, b []byte, limit int64) ([]byte, error) {
	var r io.Reader
	var err error
	src := bytes.NewReader(b)
	switch coding {
	case "gzip", "x-gzip":
		r, err = gzip.NewReader(src)
	case "deflate":
		// RFC 9110's deflate is zlib; some servers send raw deflate.
		if r, err = zlib.NewReader(src); err != nil {
			r, err = flate.NewReader(bytes.NewReader(b)), nil
		}
	case "br":
		r = brotli.NewReader(src)
	case "zstd":
		var d *zstd.Decoder
		if d, err = zstd.NewReader(src, zstd.WithDecoderMaxMemory(uint64(limit)), zstd.WithDecoderConcurrency(1)); err == nil {
			defer d.Close()
			r = d
		}
	default:
		return nil, fmt.Errorf("unknown content coding %q", coding)
	}
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		return nil, errDecodedTooLarge
	}
	return out, nil
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
}

// Elements a sandbox page must not hold: scripts, SVG and MathML, styles,
// and everything that embeds or redirects.
var refusedElements = map[string]string{
	"script": "html_script", "noscript": "html_script", "svg": "html_svg", "math": "html_svg",
	"style": "html_style", "iframe": "html_embed", "frame": "html_embed",
	"frameset": "html_embed", "object": "html_embed", "embed": "html_embed", "applet": "html_embed",
	"portal": "html_embed", "base": "html_base", "template": "html_script",
}

// urlAttributes hold URLs.
var urlAttributes = map[string]bool{
	"href": true, "src": true, "action": true, "formaction": true, "poster": true, "background": true,
	"cite": true, "data": true, "srcset": true, "xlink:href": true, "longdesc": true, "manifest": true,
	"ping": true, "lowsrc": true, "dynsrc": true, "codebase": true, "archive": true, "usemap": true,
	"imagesrcset": true, "itemtype": true,
}

// CheckHTML reports what a sandbox page holds that a renderer following
// spec §14 must have removed ("" if nothing): script, style, svg and
// embedding elements, a meta refresh, event-handler and style attributes,
// and URLs whose scheme is not https (javascript:, data:, http: …).
// Relative URLs are fine.
func CheckHTML(page []byte) string {
	z := html.NewTokenizer(bytes.NewReader(page))
	for {
		switch z.Next() {
		case html.ErrorToken:
			if errors.Is(z.Err(), io.EOF) {
				return ""
			}
			return "html_unreadable"
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			if reason, ok := refusedElements[tag]; ok {
				return reason
			}
			var httpEquiv bool
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				key := string(k)
				switch {
				case strings.HasPrefix(key, "on"):
					return "html_handler"
				case key == "style":
					return "html_style"
				case key == "http-equiv" && strings.EqualFold(strings.TrimSpace(string(v)), "refresh"):
					httpEquiv = true
				case urlAttributes[key]:
					if key == "srcset" || key == "imagesrcset" {
						for _, part := range strings.Split(string(v), ",") {
							f := strings.Fields(part)
							if len(f) > 0 && !safeURL(f[0]) {
								return "html_url"
							}
						}
					} else if !safeURL(string(v)) {
						return "html_url"
					}
				}
			}
			if tag == "meta" && httpEquiv {
				return "html_refresh"
			}
		}
	}
}

// safeURL: relative, or https. Browsers ignore ASCII tab and newline in
// URLs and leading C0 controls and spaces, so those are removed first
// ("java\tscript:").
func safeURL(raw string) bool {
	u := strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, raw)
	u = strings.TrimLeft(u, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
	u = strings.TrimRight(u, " ")
	// A scheme ends at the first ':' before any '/', '?' or '#'.
	for i := 0; i < len(u); i++ {
		switch u[i] {
		case ':':
			return strings.EqualFold(u[:i], "https")
		case '/', '?', '#':
			// "//host/…" takes the page's scheme: https on a real origin.
			return true
		}
	}
	return true
}
