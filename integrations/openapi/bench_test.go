package openapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/integrations/internal/bridge"
	"github.com/caddy-ahp/caddy-ahp/integrations/internal/sitetest"
)

// BenchmarkServeDocument serves the document rendered at load, with the
// request's host spliced in. Compare with BenchmarkRenderPerRequest, the
// baseline of building and marshalling it per request (the ratio is the
// point: go test -bench . ./integrations/openapi/).
func BenchmarkServeDocument(b *testing.B) {
	d := newDoc(b, sitetest.Manifest(b), Options{})
	r := httptest.NewRequest(http.MethodGet, "http://shop.example/openapi.json", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		w.Body.Reset()
		d.ServeHTTP(w, r)
	}
}

func BenchmarkRenderPerRequest(b *testing.B) {
	m := sitetest.Manifest(b)
	caps, err := bridge.Capabilities(m)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		doc, err := build(m, caps, "http://shop.example")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.MarshalIndent(doc, "", "  "); err != nil {
			b.Fatal(err)
		}
	}
}
