package discovery

import (
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
