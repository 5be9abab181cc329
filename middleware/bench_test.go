package middleware

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/converse"
	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/manifest"
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

// conciergeAnswer is a typical concierge reply: an answer and its meta.
var conciergeAnswer = []byte(`{"status":"success","response":{"answer":"The showroom is open 9 to 5."},"meta":{"tokens_used":42,"capability_used":"site_info"}}`)

// conciergeNext stands for reverse_proxy to the concierge: it reads and
// closes the forwarded body (as net/http's Transport does) and answers JSON.
var conciergeNext = nextFunc(func(w http.ResponseWriter, r *http.Request) error {
	var buf [512]byte
	for {
		if _, err := r.Body.Read(buf[:]); err != nil {
			break
		}
	}
	r.Body.Close()
	w.Header()["Content-Type"] = []string{"application/json"}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(conciergeAnswer)
	return err
})

var converseRequest = []byte(`{"ahp":"0.1","capability":"site_info","query":"When is the showroom open?","context":{"requesting_agent":"bench-bot/1.0","accept_types":["text/answer"]}}`)

func converseHandler(b *testing.B, limits bool) *Handler {
	yes := true
	m, doc, err := manifest.Build(manifest.Source{Inline: &manifest.Manifest{
		Name:           "Bench",
		Endpoints:      &manifest.Endpoints{Converse: "/agent/converse"},
		ContentSignals: &manifest.ContentSignals{AIInput: &yes},
		Capabilities:   []manifest.Capability{{Name: "site_info", Mode: "MODE2", Description: "General information"}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Manifest: m, Document: doc, Gateway: &Gateway{Rules: converse.NewRules(m, converse.Options{}), EchoSignals: true}}
	if limits {
		store := limiter.NewMemory(limiter.MemoryOptions{})
		b.Cleanup(func() { store.Close() })
		huge := limiter.Limit{Events: 1 << 40, Window: time.Minute}
		cfg.RateLimits = &RateLimits{Store: store, Zone: "bench", Unauthenticated: huge, Authenticated: huge, Static: huge,
			ClientKey: func(*http.Request) string { return "192.0.2.7" }}
	}
	h, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// benchConverse posts a typical converse request through the gateway.
// Compare with BenchmarkConverseBaseline, the concierge alone.
func benchConverse(b *testing.B, h *Handler) {
	w := &discardWriter{h: http.Header{}}
	body := bytes.NewReader(converseRequest)
	r := httptest.NewRequest(http.MethodPost, "/agent/converse", body)
	r.Header.Set("Content-Type", "application/json")
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		body.Reset(converseRequest)
		r.Body = io.NopCloser(body)
		if h == nil {
			_ = conciergeNext.ServeHTTP(w, r)
		} else {
			_ = h.ServeHTTP(w, r, conciergeNext)
		}
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

func BenchmarkConverseBaseline(b *testing.B) { benchConverse(b, nil) }

// BenchmarkConverse: validation, concierge answer inspection and signal
// echo, no limits.
func BenchmarkConverse(b *testing.B) { benchConverse(b, converseHandler(b, false)) }

// BenchmarkConverseLimited adds the memory store's decision and headers.
func BenchmarkConverseLimited(b *testing.B) { benchConverse(b, converseHandler(b, true)) }
