package middleware

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardWriter is a ResponseWriter that allocates nothing per request, so
// the benchmarks measure the pipeline, not the recorder.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(status int)      { d.status = status }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func (d *discardWriter) reset() {
	for k := range d.h {
		delete(d.h, k)
	}
	d.status = 0
}

var smallBody = []byte("{\"ok\":true}\n")

// legacyNext stands for the site behind the plugin: a JSON answer, the
// kind of response that only gets the Link header.
var legacyNext = nextFunc(func(w http.ResponseWriter, r *http.Request) error {
	w.Header()["Content-Type"] = []string{"application/json"}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(smallBody)
	return err
})

// BenchmarkPassThroughBaseline calls the next handler directly: what the
// site costs without the plugin.
func BenchmarkPassThroughBaseline(b *testing.B) {
	w := &discardWriter{h: http.Header{}}
	r := httptest.NewRequest(http.MethodGet, "/api/items", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		_ = legacyNext.ServeHTTP(w, r)
	}
}

// BenchmarkPassThrough is the same request through the AHP pipeline: it
// gets the Link and Vary headers and the notice check, nothing else.
func BenchmarkPassThrough(b *testing.B) {
	h := testHandler(b, Config{})
	w := &discardWriter{h: http.Header{}}
	r := httptest.NewRequest(http.MethodGet, "/api/items", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		_ = h.ServeHTTP(w, r, legacyNext)
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
		_ = h.ServeHTTP(w, r, legacyNext)
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
		_ = h.ServeHTTP(w, r, legacyNext)
	}
}
