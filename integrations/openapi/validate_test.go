package openapi

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/caddy-ahp/caddy-ahp/integrations/internal/sitetest"
	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// load parses and validates a served document with kin-openapi, which
// validates OpenAPI 3.1 documents with JSON Schema 2020-12 semantics.
func load(t *testing.T, d *Document) *openapi3.T {
	t.Helper()
	w := get(t, d, http.MethodGet)
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(w.Body.Bytes())
	if err != nil {
		t.Fatalf("kin-openapi cannot load the document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("not read as OpenAPI 3.1: %q", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableSchemaFormatValidation(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("the document is not valid OpenAPI 3.1: %v", err)
	}
	return doc
}

// TestValidOpenAPI31 validates the documents of several manifests.
func TestValidOpenAPI31(t *testing.T) {
	manifests := map[string]*manifest.Manifest{
		"bearer, all kinds of capabilities": sitetest.Manifest(t),
		"api_key":                           sitetest.Parse(t, strings.Replace(sitetest.ManifestJSON, `"authentication": "bearer"`, `"authentication": "api_key"`, 1)),
		"no auth, MODE2 only": sitetest.Parse(t, `{"ahp":"0.1","name":"Open","endpoints":{"converse":"/agent/converse","content":"/docs.md"},
			"content_signals":{"ai_input":true},"capabilities":[{"name":"site_info","description":"Info","mode":"MODE2"}]}`),
		"MODE1 only": sitetest.Parse(t, `{"ahp":"0.1","content_signals":{"ai_input":true},"endpoints":{"content":"/llms.txt"}}`),
	}
	for name, m := range manifests {
		t.Run(name, func(t *testing.T) {
			load(t, newDoc(t, m, Options{BaseURL: "https://shop.example"}))
			load(t, newDoc(t, m, Options{}))
		})
	}
}

// TestDocumentedSchemas: what ServeCapability accepts and what the site
// answers match the schemas the document publishes. A kin-openapi router
// finds the operation of each request, openapi3filter validates the request
// and the response against it.
func TestDocumentedSchemas(t *testing.T) {
	d, site := newDocSite(t, nil, Options{BaseURL: "http://shop.example"})
	doc := load(t, d)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}

	cases := []struct {
		name, body string
		valid      bool // per the documented request schema
		status     int  // ServeCapability's answer
	}{
		{"site_info", `{"query":"Who are you?"}`, true, 200},
		{"site_info", `{"query":"clarify","session_id":"abc-123"}`, true, 200},
		{"site_info", `{"query":"error:concierge_error"}`, true, 500},
		{"site_info", `{"query":"error:unavailable"}`, true, 503},
		{"content_search", `{"query":"agents"}`, true, 200},
		{"inventory_check", `{"query":"stock?","sku":"A-1","qty":2,"address":{"city":"Paris"}}`, true, 200},
		{"book_demo", `{"query":"Book it","date":"2026-12-01"}`, true, 200},
		{"get_quote", `{"query":"100 units"}`, true, 202},
		{"site_info", `{}`, false, 400},
		{"site_info", `{"query":"hi","extra":true}`, false, 400},
		{"inventory_check", `{"query":"stock?"}`, false, 400},
		{"inventory_check", `{"query":"stock?","sku":"A-1","address":{}}`, false, 400},
		{"inventory_check", `{"query":"stock?","sku":"A-1","qty":0}`, false, 400},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodPost, "http://shop.example/capabilities/"+c.name, strings.NewReader(c.body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", sitetest.Bearer)
		route, params, err := router.FindRoute(r)
		if err != nil {
			t.Fatalf("%s: no route: %v", c.name, err)
		}
		in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
		if err := openapi3filter.ValidateRequest(ctx, in); (err == nil) != c.valid {
			t.Errorf("%s %s: documented schema says valid=%v (%v)", c.name, c.body, err == nil, err)
		}

		r = httptest.NewRequest(http.MethodPost, "http://shop.example/capabilities/"+c.name, strings.NewReader(c.body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", sitetest.Bearer)
		w := httptest.NewRecorder()
		if err := d.ServeCapability(w, r, c.name, site); err != nil {
			t.Fatal(err)
		}
		if w.Code != c.status {
			t.Errorf("%s %s: ServeCapability answered %d, want %d: %s", c.name, c.body, w.Code, c.status, w.Body)
			continue
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: w.Code, Header: w.Header(),
			Body: readCloser(w.Body.Bytes()), Options: opts}
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s %s: the %d answer does not match the documented response: %v\n%s", c.name, c.body, w.Code, err, w.Body)
		}
	}
}

type bodyReader struct{ *bytes.Reader }

func (bodyReader) Close() error { return nil }

func readCloser(b []byte) bodyReader { return bodyReader{bytes.NewReader(b)} }
