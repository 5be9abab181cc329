// Package markdown answers agents that ask for a page as Markdown
// ("Markdown for agents", the content negotiation Cloudflare offers at
// its edge and AHP §1.1 counts as MODE1-compatible): a GET or HEAD whose
// Accept header prefers text/markdown (Wants) gets the HTML page the site
// served, converted to clean Markdown of its main content.
//
// The package knows nothing of Caddy. The handler asks Wants, calls Begin
// (which prepares the request and returns the writer the next handler
// writes to) and Finish after the next handler returned:
//
//	if mdc != nil && markdown.Wants(r) {
//		mw := mdc.Begin(w, r, originalURL) // the URL before any rewrite
//		err := next.ServeHTTP(mw, r)
//		mw.Finish()
//		return err
//	}
//
// # What is converted
//
// Only HTML responses (text/html, application/xhtml+xml) with a body and a
// 2xx (not 204/205/206), 4xx or 5xx status are buffered and converted.
// Everything else streams through untouched, with Flush, Hijack, ReadFrom
// and Unwrap intact: redirects, 304s (their ETag is made the Markdown
// variant's), non-HTML answers (a site that serves text/markdown itself
// keeps doing so), responses marked Cache-Control: no-transform, and
// bodies over Options.MaxBytes, which pass through byte for byte once the
// cap is crossed (the buffered part first). A body that cannot be decoded
// or converted, or whose main content is empty, is sent as it came. An
// HTML page left as HTML says why in X-Markdown-Skipped (SkipTooLarge and
// the other Skip tokens): the agent asked for Markdown.
//
// Browsers and agents that ask for HTML never reach this code beyond
// Wants, whose quick filter is one scan of the Accept header for
// "markdown".
//
// # The request
//
// Begin removes Accept-Encoding (the body must be decoded anyway, and an
// upstream or `encode` that compresses it would only add work; the
// Markdown goes out uncompressed, it is a fraction of the page's size),
// Range and If-Range (the whole page is needed). If-None-Match keeps only
// the validators of the Markdown variant, with their "-md" suffix
// removed, so that the upstream can answer 304 for them; a body that
// arrives compressed anyway (gzip, deflate, br, zstd) is decoded.
//
// # The response
//
// Content-Type: text/markdown; charset=utf-8, Vary: Accept, an exact
// Content-Length, X-Markdown-Tokens (an estimate, see Tokens, as
// Cloudflare sends it), Content-Signal from the manifest's content signals
// (Options.ContentSignal) unless the upstream set one, and a weak ETag:
// the upstream's validator with "-md" appended, or a hash of the Markdown
// when the upstream sent none; If-None-Match is then checked against it
// (304). Content-Encoding, Accept-Ranges, Content-MD5 and digest fields go,
// since they described the HTML.
//
// A HEAD gets the header fields the GET would (RFC 9110 §9.3.2): whether
// a page is converted depends on its body (an app shell, a page over
// MaxBytes or undecodable stays HTML), so Begin asks the next handler for
// it with GET (Finish restores HEAD) and the body is not sent.
//
// # The alternate
//
// Requests that did not ask for Markdown go through Alternate: an HTML
// page answered 2xx (not 204/205/206) gets
// Link: <the page as requested>; rel="alternate"; type="text/markdown",
// so that an agent reading headers learns the variant exists. That page,
// and HTML error pages (converted too), say Vary: Accept, as does HTML
// passed through to a Markdown request: a shared cache must not give one
// variant to the requests that would get the other.
package markdown

import (
	"net/http"
	"net/url"

	"github.com/JohannesKaufmann/html-to-markdown/v2/converter"
	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

// DefaultMaxBytes is the default Options.MaxBytes: HTML bodies larger than
// this (as sent, and once decoded) pass through unconverted.
const DefaultMaxBytes = 1 << 20

// MediaType is what Markdown answers are labelled with.
const MediaType = "text/markdown; charset=utf-8"

// Options configure a Converter.
type Options struct {
	// MaxBytes caps the HTML body buffered for conversion; 0 means
	// DefaultMaxBytes. Memory per Markdown request in flight is at most
	// about three times this (body, decoded body, Markdown).
	MaxBytes int
	// ContentSignal is the Content-Signal header value sent with
	// Markdown (manifest.RenderSignals builds it from the manifest, the
	// same value discovery sends on pages); "" sends none.
	ContentSignal string
	// Logger receives debug messages on pages left unconverted; nil
	// means none.
	Logger *zap.Logger
}

// Converter converts HTML responses to Markdown. It is safe for
// concurrent use; build one per site at provisioning.
type Converter struct {
	conv     *converter.Converter
	maxBytes int
	signal   []string // never modified: copied into each response
	logger   *zap.Logger
}

// New returns a Converter for opts.
func New(opts Options) *Converter {
	c := &Converter{conv: newConverter(), maxBytes: opts.MaxBytes, logger: opts.Logger}
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultMaxBytes
	}
	if opts.ContentSignal != "" {
		c.signal = []string{opts.ContentSignal}
	}
	if c.logger == nil {
		c.logger = zap.NewNop()
	}
	return c
}

// pageURL is the URL the agent asked for, against which relative links
// resolve: the path and query of asked (r.URL when nil), on r's host.
func pageURL(r *http.Request, asked *url.URL) *url.URL {
	if asked == nil {
		asked = r.URL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	if !httpx.ValidHost(host) {
		// A Host no URL should carry: links stay site-relative.
		return &url.URL{Path: asked.Path, RawPath: asked.RawPath, RawQuery: asked.RawQuery}
	}
	return &url.URL{Scheme: scheme, Host: host, Path: asked.Path, RawPath: asked.RawPath, RawQuery: asked.RawQuery}
}
