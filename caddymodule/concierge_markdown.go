package caddymodule

import (
	"bufio"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/markdown"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

// provisionMarkdown returns the Markdown step of ServeHTTP, nil when off.
// The step is also where the built-in concierge's own requests leave the
// plugin for the site (concierge_fetch.go), so it exists whenever the
// concierge is on.
func (h *Handler) provisionMarkdown(ctx caddy.Context, m *manifest.Manifest) (func(http.ResponseWriter, *http.Request, caddyhttp.Handler) (bool, error), error) {
	// provisionConcierge only runs for manifests with a converse
	// endpoint; a `concierge builtin` without one must not pass silently.
	if h.Concierge != nil && m.ConversePath() == "" {
		return nil, h.checkConcierge(m)
	}
	s := &markdownStep{h: h, internal: h.Concierge != nil}
	if h.Markdown != nil {
		mx, err := registerConciergeMetrics(ctx.GetMetricsRegistry())
		if err != nil {
			return nil, fmt.Errorf("ahp markdown: metrics: %v", err)
		}
		s.converted = mx.markdown.WithLabelValues(m.Name)
		s.conv = markdown.New(markdown.Options{
			MaxBytes:      int(h.Markdown.MaxSize),
			ContentSignal: markdown.ContentSignal(m.ContentSignals),
			Logger:        h.logger.Named("markdown"),
		})
	}
	if s.conv == nil && !s.internal {
		return nil, nil
	}
	return s.serve, nil
}

type markdownStep struct {
	h         *Handler
	conv      *markdown.Converter
	internal  bool
	converted prometheus.Counter
}

// serve answers a page request that asked for Markdown, and advertises
// the Markdown variant on HTML pages that did not.
func (s *markdownStep) serve(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) (bool, error) {
	if s.internal && isInternalFetch(r) {
		return true, s.h.serveInternalFetch(w, r, next)
	}
	if s.conv == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false, nil
	}
	if markdown.Wants(r) {
		// A conversion costs CPU (about 0.3 ms per KB of markup): it
		// counts against the static tier, like the plugin's documents.
		if !s.h.limits.ChargeStatic(w, r) {
			return true, nil
		}
		mw := s.conv.Begin(w, r)
		err := next.ServeHTTP(mw, r)
		if ferr := mw.Finish(); err == nil {
			err = ferr
		}
		if _, ok := w.Header()["X-Markdown-Tokens"]; ok {
			s.converted.Inc()
		}
		return true, err
	}
	aw := getAltWriter(w, r)
	defer aw.release()
	if s.h.pages != nil {
		return true, s.h.pages.ServeHTTP(aw, r, next)
	}
	return true, next.ServeHTTP(aw, r)
}

// altWriter adds the Markdown variant's Link to HTML pages:
//
//	Link: </the/page?q>; rel="alternate"; type="text/markdown"
//
// The Markdown is the same URL asked for with Accept: text/markdown (there
// is no /page.md), so the link names the page itself with the type that
// selects the variant (RFC 8288 §3.4.1: `type` is a hint of the media
// type of the result of dereferencing the link).
type altWriter struct {
	http.ResponseWriter
	page        *url.URL // as the client sent it
	wroteHeader bool
}

var altWriters = sync.Pool{New: func() any { return new(altWriter) }}

func getAltWriter(w http.ResponseWriter, r *http.Request) *altWriter {
	aw := altWriters.Get().(*altWriter)
	aw.ResponseWriter = w
	aw.page = originalURL(r)
	return aw
}

func (aw *altWriter) release() {
	*aw = altWriter{}
	altWriters.Put(aw)
}

// linkTarget makes a request URI safe between < and > in a Link value:
// characters that could end the reference or the field are escaped.
func linkTarget(uri string) string {
	if !strings.ContainsAny(uri, "<>\"\\ ,;\x7f") && !hasControl(uri) {
		return uri
	}
	var b strings.Builder
	for i := 0; i < len(uri); i++ {
		c := uri[i]
		if c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '"' || c == '\\' || c == ',' || c == ';' {
			b.WriteByte('%')
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' {
			return true
		}
	}
	return false
}

func (aw *altWriter) WriteHeader(status int) {
	if !aw.wroteHeader && (status < 100 || status >= 200 || status == http.StatusSwitchingProtocols) {
		aw.wroteHeader = true
		h := aw.ResponseWriter.Header()
		if status >= 200 && status < 300 && status != http.StatusNoContent && status != http.StatusPartialContent && isHTMLType(h.Get("Content-Type")) {
			h["Link"] = append(h["Link"][:len(h["Link"]):len(h["Link"])], "<"+linkTarget(aw.page.RequestURI())+`>; rel="alternate"; type="text/markdown"`)
		}
	}
	aw.ResponseWriter.WriteHeader(status)
}

func isHTMLType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "text/html" || mt == "application/xhtml+xml")
}

func (aw *altWriter) Write(p []byte) (int, error) {
	if !aw.wroteHeader {
		aw.WriteHeader(http.StatusOK)
	}
	return aw.ResponseWriter.Write(p)
}

// ReadFrom keeps sendfile and splice (file_server, reverse_proxy).
func (aw *altWriter) ReadFrom(r io.Reader) (int64, error) {
	if !aw.wroteHeader {
		aw.WriteHeader(http.StatusOK)
	}
	if rf, ok := aw.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(httpx.WriterOnly{Writer: aw.ResponseWriter}, r)
}

// FlushError is what http.ResponseController calls.
func (aw *altWriter) FlushError() error {
	if !aw.wroteHeader {
		aw.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(aw.ResponseWriter).Flush()
}

func (aw *altWriter) Flush() { _ = aw.FlushError() }

func (aw *altWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(aw.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the writers below.
func (aw *altWriter) Unwrap() http.ResponseWriter { return aw.ResponseWriter }
