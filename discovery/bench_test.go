package discovery

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardWriter is a ResponseWriter that allocates nothing per request.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(status int)      { d.status = status }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func (d *discardWriter) reset() {
	clear(d.h)
	d.status = 0
}

var smallBody = []byte("{\"ok\":true}\n")

// page stands for the site behind the plugin: a small answer that only
// gets the Link header.
func page(w http.ResponseWriter) {
	w.Header()["Content-Type"] = []string{"application/json"}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(smallBody)
}

// BenchmarkPassThroughBaseline is the site without discovery.
func BenchmarkPassThroughBaseline(b *testing.B) {
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		page(w)
	}
}

// BenchmarkPassThrough is the same answer through discovery: the Link and
// Vary headers, the Accept check, the link writer.
func BenchmarkPassThrough(b *testing.B) {
	h := testHandler(b, Config{})
	w := &discardWriter{h: http.Header{}}
	r := httptest.NewRequest(http.MethodGet, "/api/items", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		lw, _ := h.Serve(w, r, r.URL.Path)
		page(lw)
		lw.Release()
	}
}

// BenchmarkManifest serves /.well-known/agent.json.
func BenchmarkManifest(b *testing.B) {
	h := testHandler(b, Config{})
	w := &discardWriter{h: http.Header{}}
	r := httptest.NewRequest(http.MethodGet, "/.well-known/agent.json", nil)
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		h.Serve(w, r, r.URL.Path)
	}
}

// BenchmarkNegotiate answers Accept: application/agent+json with a redirect.
func BenchmarkNegotiate(b *testing.B) {
	h := testHandler(b, Config{})
	w := &discardWriter{h: http.Header{}}
	r := httptest.NewRequest(http.MethodGet, "/page", nil)
	r.Header.Set("Accept", "application/agent+json")
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		h.Serve(w, r, r.URL.Path)
	}
}

// BenchmarkProxiedHeaders is what net/http does with a proxied answer's
// header map (five fields from Caddy's reverse_proxy: Cache-Control,
// Content-Length, Content-Type, Date, Via), built fresh and written as
// the server does, with the fields discovery adds: none (plain Caddy),
// Link and Vary (a stylesheet), and the content signals too (a page).
// Nine fields are past the eight a Go map holds before it grows, the
// reason the signals go on pages only.
func BenchmarkProxiedHeaders(b *testing.B) {
	base := [][2]string{{"Cache-Control", "no-cache"}, {"Content-Length", "1984"},
		{"Content-Type", "text/css; charset=utf-8"}, {"Date", "Wed, 02 Dec 2026 14:58:53 GMT"}, {"Via", "1.1 Caddy"}}
	h := testHandler(b, Config{Signals: true})
	for _, c := range []struct {
		name   string
		fields int
	}{{"plain", 0}, {"stylesheet", 2}, {"page", 4}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				hdr := make(http.Header)
				if c.fields > 0 {
					addLinkIn(hdr, true, make([]string, 2))
				}
				if c.fields > 2 {
					addSignals(hdr, h.signals)
				}
				for _, kv := range base {
					hdr[kv[0]] = []string{kv[1]}
				}
				_ = hdr.Write(io.Discard)
			}
		})
	}
}
