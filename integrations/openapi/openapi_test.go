package openapi

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-ahp/caddy-ahp/integrations/internal/sitetest"
	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/schema"
)

func newDoc(t testing.TB, m *manifest.Manifest, opts Options) *Document {
	t.Helper()
	d, _ := newDocSite(t, m, opts)
	return d
}

// newDocSite builds the document for m (the test manifest when nil) in
// front of the test site: its real gateway and limits.
func newDocSite(t testing.TB, m *manifest.Manifest, opts Options, siteOpts ...sitetest.Options) (*Document, *sitetest.Site) {
	t.Helper()
	if m == nil {
		m = sitetest.Manifest(t)
	}
	site := sitetest.New(t, m, siteOpts...)
	opts.Gateway, opts.Limits = site.Gateway, site.Limits
	d, err := New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	return d, site
}

// get fetches the document; header is key, value, ...
func get(t *testing.T, d *Document, method string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "http://shop.example/openapi.json", nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	d.ServeHTTP(w, r)
	return w
}

func docJSON(t *testing.T, d *Document, header ...string) map[string]any {
	t.Helper()
	w := get(t, d, http.MethodGet, header...)
	if w.Code != 200 {
		t.Fatalf("GET: %d", w.Code)
	}
	return sitetest.JSON(t, w.Body.Bytes())
}

// at walks a decoded JSON document along keys.
func at(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %q at %v", k, keys)
		}
		v = m[k]
	}
	return v
}

func TestDocument(t *testing.T) {
	d := newDoc(t, nil, Options{MCPPath: "/mcp"})
	doc := docJSON(t, d)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v", doc["openapi"])
	}
	if at(t, doc, "info", "title") != "Test Shop" || at(t, doc, "info", "description") != "A shop for testing the front doors." || at(t, doc, "info", "version") != "0.1" {
		t.Errorf("info = %v (Appendix E.1: title and description from the manifest, version the AHP version)", doc["info"])
	}
	if url := doc["servers"].([]any)[0].(map[string]any)["url"]; url != "http://shop.example" {
		t.Errorf("servers[0].url = %v", url)
	}
	if at(t, doc, "x-ahp", "mcp") != "/mcp" || at(t, doc, "x-ahp", "manifest") != "/.well-known/agent.json" {
		t.Errorf("x-ahp = %v", doc["x-ahp"])
	}

	// Paths in manifest order: MODE2/MODE3 capabilities as POST, the
	// async status poll, the MODE1 content as GET; no MODE1 capability.
	w := get(t, d, http.MethodGet)
	var raw struct {
		Paths json.RawMessage `json:"paths"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &raw)
	var order []string
	dec := json.NewDecoder(bytes.NewReader(raw.Paths))
	_, _ = dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		order = append(order, k.(string))
		var skip json.RawMessage
		_ = dec.Decode(&skip)
	}
	want := []string{"/capabilities/site_info", "/capabilities/content_search", "/capabilities/inventory_check",
		"/capabilities/book_demo", "/capabilities/get_quote", "/agent/converse/status/{session_id}", "/llms.txt"}
	if !slices.Equal(order, want) {
		t.Errorf("paths = %v, want %v", order, want)
	}

	paths := doc["paths"].(map[string]any)
	op := at(t, paths, "/capabilities/inventory_check", "post").(map[string]any)
	if op["operationId"] != "inventory_check" || op["summary"] != "Check stock levels for a product" {
		t.Errorf("operation = %v", op)
	}
	for _, code := range []string{"200", "400", "401", "403", "413", "429", "500", "503"} {
		if _, ok := op["responses"].(map[string]any)[code]; !ok {
			t.Errorf("inventory_check has no %s response", code)
		}
	}
	if ref := at(t, op, "responses", "200", "$ref"); ref != "#/components/responses/Answer" {
		t.Errorf("200 = %v", ref)
	}
	if ref := at(t, doc, "components", "responses", "Answer", "content", "application/json", "schema", "$ref"); ref != "#/components/schemas/AHPResponse" {
		t.Errorf("answer schema = %v", ref)
	}
	if ref := at(t, op, "requestBody", "content", "application/json", "schema", "$ref"); ref != "#/components/schemas/inventory_check.request" {
		t.Errorf("request schema = %v", ref)
	}
	args := at(t, doc, "components", "schemas", "inventory_check.request").(map[string]any)
	if req := args["required"].([]any); len(req) != 2 || req[0] != "query" || req[1] != "sku" {
		t.Errorf("required = %v", req)
	}
	for _, p := range []string{"query", "session_id", "clarification", "sku", "qty", "address"} {
		if _, ok := args["properties"].(map[string]any)[p]; !ok {
			t.Errorf("request schema lacks %s", p)
		}
	}
	if ref := at(t, args, "properties", "address", "$ref"); ref != "#/components/schemas/inventory_check.defs.address" {
		t.Errorf("address $ref = %v, want the hoisted definition", ref)
	}
	if _, ok := at(t, doc, "components", "schemas").(map[string]any)["inventory_check.defs.address"]; !ok {
		t.Error("the definition was not hoisted into components")
	}

	// Security: required on action/async capabilities, optional on the
	// others (a key picks the authenticated tier).
	sec := func(path string) string {
		b, _ := json.Marshal(at(t, paths, path, "post", "security"))
		return string(b)
	}
	if s := sec("/capabilities/book_demo"); s != `[{"bearerAuth":[]}]` {
		t.Errorf("book_demo security = %s", s)
	}
	if s := sec("/capabilities/site_info"); s != `[{},{"bearerAuth":[]}]` {
		t.Errorf("site_info security = %s", s)
	}
	if s := at(t, doc, "components", "securitySchemes", "bearerAuth"); s.(map[string]any)["type"] != "http" || s.(map[string]any)["scheme"] != "bearer" {
		t.Errorf("bearerAuth = %v", s)
	}
	quote := at(t, paths, "/capabilities/get_quote", "post").(map[string]any)
	if d := quote["description"].(string); !strings.Contains(d, "GET /agent/converse/status/{session_id}") || !strings.Contains(d, "accepted") {
		t.Errorf("async description lacks the polling pattern: %q", d)
	}
	// A poller stops at every final status of spec §9.2: expired too.
	for _, d := range []string{quote["description"].(string), at(t, paths, "/agent/converse/status/{session_id}", "get", "description").(string)} {
		if !strings.Contains(d, "success, failed or expired") {
			t.Errorf("polling description %q does not name every final status", d)
		}
	}
	if _, ok := quote["responses"].(map[string]any)["202"]; !ok {
		t.Error("async capability lacks a 202 response")
	}
	if _, ok := at(t, paths, "/llms.txt", "get", "responses", "200", "content").(map[string]any)["text/plain"]; !ok {
		t.Errorf("content operation = %v", at(t, paths, "/llms.txt"))
	}
	if codes := at(t, doc, "components", "schemas", "AHPError", "properties", "code", "enum").([]any); len(codes) != 10 {
		t.Errorf("AHPError code enum = %v", codes)
	}
}

// TestDocumentSchemesMatchRequestSchema: every capability's request body
// schema, once turned into a converse body, stays within the official
// request schema (checked in bridge terms: the schema says query is a
// 1..4096 string, session_id at most 128).
func TestDocumentSchemesMatchRequestSchema(t *testing.T) {
	d := newDoc(t, nil, Options{})
	doc := docJSON(t, d)
	q := at(t, doc, "components", "schemas", "site_info.request", "properties", "query").(map[string]any)
	if q["maxLength"] != json.Number("4096") || q["minLength"] != json.Number("1") {
		t.Errorf("query schema = %v", q)
	}
	if at(t, doc, "components", "schemas", "site_info.request", "additionalProperties") != false {
		t.Error("a capability without input_schema should take no other fields")
	}
}

func TestDocumentAuthSchemes(t *testing.T) {
	m := sitetest.Parse(t, strings.Replace(sitetest.ManifestJSON, `"authentication": "bearer"`, `"authentication": "api_key"`, 1))
	doc := docJSON(t, newDoc(t, m, Options{}))
	s := at(t, doc, "components", "securitySchemes", "apiKey").(map[string]any)
	if s["type"] != "apiKey" || s["in"] != "header" || s["name"] != "X-AHP-Key" {
		t.Errorf("apiKey scheme = %v", s)
	}
	b, _ := json.Marshal(at(t, doc, "paths", "/capabilities/book_demo", "post", "security"))
	if string(b) != `[{"apiKey":[]}]` {
		t.Errorf("security = %s", b)
	}

	open := sitetest.Parse(t, `{"ahp":"0.1","name":"Open","endpoints":{"converse":"/agent/converse"},"content_signals":{"ai_input":true},
		"capabilities":[{"name":"site_info","description":"Info","mode":"MODE2"}]}`)
	doc = docJSON(t, newDoc(t, open, Options{}))
	if _, ok := doc["components"].(map[string]any)["securitySchemes"]; ok {
		t.Error("securitySchemes on a site without auth")
	}
	op := at(t, doc, "paths", "/capabilities/site_info", "post").(map[string]any)
	if _, ok := op["security"]; ok {
		t.Error("security on a site without auth")
	}
	if _, ok := op["responses"].(map[string]any)["401"]; ok {
		t.Error("401 on a site without auth")
	}
	if _, ok := doc["paths"].(map[string]any)["/agent/converse/status/{session_id}"]; ok {
		t.Error("a status operation without async capabilities")
	}
}

func TestServeDocument(t *testing.T) {
	d := newDoc(t, nil, Options{})
	w := get(t, d, http.MethodGet)
	h := w.Header()
	if h.Get("Content-Type") != "application/json" || h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Etag") == "" || h.Get("Cache-Control") != DefaultCacheControl {
		t.Errorf("headers = %v", h)
	}
	if h.Get("Content-Length") != strconvItoa(w.Body.Len()) {
		t.Errorf("Content-Length %s for %d bytes", h.Get("Content-Length"), w.Body.Len())
	}
	etag := h.Get("Etag")

	head := get(t, d, http.MethodHead)
	if head.Code != 200 || head.Body.Len() != 0 || head.Header().Get("Content-Length") != h.Get("Content-Length") {
		t.Errorf("HEAD: %d, %d bytes, Content-Length %s", head.Code, head.Body.Len(), head.Header().Get("Content-Length"))
	}
	if nm := get(t, d, http.MethodGet, "If-None-Match", `"other", W/`+etag); nm.Code != http.StatusNotModified || nm.Body.Len() != 0 {
		t.Errorf("If-None-Match: %d", nm.Code)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		if w := get(t, d, m); w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d Allow %q", m, w.Code, w.Header().Get("Allow"))
		}
	}

	// Another host, another document (and ETag); TLS makes it https;
	// X-Forwarded-Proto only when trusted.
	r := httptest.NewRequest(http.MethodGet, "https://other.example:8443/openapi.json", nil)
	r.TLS = &tls.ConnectionState{}
	w2 := httptest.NewRecorder()
	d.ServeHTTP(w2, r)
	if url := sitetest.JSON(t, w2.Body.Bytes())["servers"].([]any)[0].(map[string]any)["url"]; url != "https://other.example:8443" {
		t.Errorf("TLS servers url = %v", url)
	}
	if w2.Header().Get("Etag") == etag {
		t.Error("the ETag does not depend on the host")
	}
	if url := at(t, docJSON(t, d, "X-Forwarded-Proto", "https"), "servers").([]any)[0].(map[string]any)["url"]; url != "http://shop.example" {
		t.Errorf("untrusted X-Forwarded-Proto: %v", url)
	}
	trusted := newDoc(t, nil, Options{TrustForwardedProto: true})
	if url := at(t, docJSON(t, trusted, "X-Forwarded-Proto", "https"), "servers").([]any)[0].(map[string]any)["url"]; url != "https://shop.example" {
		t.Errorf("trusted X-Forwarded-Proto: %v", url)
	}
	// Trusted per request: only when TrustedPeer says the peer is a
	// trusted proxy; then Vary names X-Forwarded-Proto, added to the
	// Vary: Accept discovery set before.
	for _, peerTrusted := range []bool{true, false} {
		pd := newDoc(t, nil, Options{TrustedPeer: func(*http.Request) bool { return peerTrusted }})
		r := httptest.NewRequest(http.MethodGet, "http://shop.example/openapi.json", nil)
		r.Header.Set("X-Forwarded-Proto", "https")
		w := httptest.NewRecorder()
		w.Header()["Vary"] = []string{"Accept"}
		pd.ServeHTTP(w, r)
		url := sitetest.JSON(t, w.Body.Bytes())["servers"].([]any)[0].(map[string]any)["url"]
		wantURL, wantVary := "http://shop.example", []string{"Accept"}
		if peerTrusted {
			wantURL, wantVary = "https://shop.example", []string{"Accept", "X-Forwarded-Proto", "X-Forwarded-Host"}
		}
		if url != wantURL || !slices.Equal(w.Header()["Vary"], wantVary) {
			t.Errorf("TrustedPeer %v, X-Forwarded-Proto https: servers url %v, Vary %q; want %s, %q", peerTrusted, url, w.Header()["Vary"], wantURL, wantVary)
		}
	}
	// Behind a load balancer that rewrites Host, the public host is its
	// X-Forwarded-Host (the first, valid, value) from a trusted peer only;
	// the ETag and Vary follow it, and the Vary values are this response's
	// own.
	etags := map[string]string{}
	peerTrusted := false
	pd := newDoc(t, nil, Options{TrustedPeer: func(*http.Request) bool { return peerTrusted }})
	for _, c := range []struct {
		name        string
		trusted     bool
		fwdHost     string
		wantURL     string
		wantVary    []string
		wantVaryOwn bool
	}{
		{"trusted", true, "www.example.com", "https://www.example.com", []string{"X-Forwarded-Proto", "X-Forwarded-Host"}, true},
		{"trusted, a list", true, "www.example.com, lb.internal", "https://www.example.com", []string{"X-Forwarded-Proto", "X-Forwarded-Host"}, true},
		{"trusted, another host", true, "api.example.com", "https://api.example.com", []string{"X-Forwarded-Proto", "X-Forwarded-Host"}, true},
		{"trusted, invalid", true, "evil.example/x", "https://backend:8080", []string{"X-Forwarded-Proto", "X-Forwarded-Host"}, true},
		{"untrusted", false, "www.example.com", "http://backend:8080", nil, false},
	} {
		peerTrusted = c.trusted
		r := httptest.NewRequest(http.MethodGet, "http://backend:8080/openapi.json", nil)
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("X-Forwarded-Host", c.fwdHost)
		w := httptest.NewRecorder()
		pd.ServeHTTP(w, r)
		url := sitetest.JSON(t, w.Body.Bytes())["servers"].([]any)[0].(map[string]any)["url"]
		if url != c.wantURL || !slices.Equal(w.Header()["Vary"], c.wantVary) {
			t.Errorf("%s, X-Forwarded-Host %q: servers url %v, Vary %q; want %s, %q", c.name, c.fwdHost, url, w.Header()["Vary"], c.wantURL, c.wantVary)
		}
		if prev, seen := etags[c.wantURL]; seen && prev != w.Header().Get("Etag") {
			t.Errorf("%s: one URL, two ETags", c.name)
		}
		etags[c.wantURL] = w.Header().Get("Etag")
		if c.wantVaryOwn {
			w.Header()["Vary"][0] = "edited"
			w2 := httptest.NewRecorder()
			pd.ServeHTTP(w2, r)
			if got := w2.Header()["Vary"]; !slices.Equal(got, c.wantVary) {
				t.Errorf("%s: editing one response's Vary changed the next's: %q", c.name, got)
			}
		}
	}
	if len(etags) != 4 {
		t.Errorf("the ETag does not follow the forwarded host: %v", etags)
	}
	// A Host that is no host: a relative server URL.
	r = httptest.NewRequest(http.MethodGet, "/openapi.json", nil)
	r.Host = `evil"host`
	w3 := httptest.NewRecorder()
	d.ServeHTTP(w3, r)
	if url := sitetest.JSON(t, w3.Body.Bytes())["servers"].([]any)[0].(map[string]any)["url"]; url != "/" {
		t.Errorf("bad Host: servers url = %v", url)
	}

	static := newDoc(t, nil, Options{BaseURL: "https://www.example.com/", CacheControl: "no-cache"})
	ws := get(t, static, http.MethodGet)
	if url := sitetest.JSON(t, ws.Body.Bytes())["servers"].([]any)[0].(map[string]any)["url"]; url != "https://www.example.com" || ws.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("configured base URL: %v, %q", url, ws.Header().Get("Cache-Control"))
	}
	for _, bad := range []string{"example.com", "ftp://example.com", "https://example.com/?a=1", "https://"} {
		if _, err := New(sitetest.Manifest(t), Options{BaseURL: bad, Gateway: d.gw}); err == nil {
			t.Errorf("base URL %q accepted", bad)
		}
	}
}

func strconvItoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestCapabilityName(t *testing.T) {
	d := newDoc(t, nil, Options{})
	for _, c := range []struct{ method, path, contentType, want string }{
		// A capability's path is the door's whatever the method.
		{"POST", "/capabilities/site_info", "application/json", "site_info"},
		{"GET", "/capabilities/get_quote", "", "get_quote"},
		{"OPTIONS", "/capabilities/get_quote", "", ""}, // a CORS preflight: the site's
		{"POST", "/capabilities/site_info", "text/plain", "site_info"},
		// Another name: only a JSON POST, an agent's call to a name not on
		// offer (contact is MODE1, not in the document).
		{"POST", "/capabilities/contact", "Application/JSON; charset=utf-8", "contact"},
		{"POST", "/capabilities/nope", "application/x-www-form-urlencoded", ""},
		{"POST", "/capabilities/other", "application/vnd.agent+json", "other"}, // any JSON type, as the gateway takes
		{"GET", "/capabilities/nope", "", ""},
		{"POST", "/capabilities/", "application/json", ""},
		{"POST", "/capabilities/site_info/x", "application/json", ""},
		{"POST", "/site_info", "application/json", ""},
	} {
		r := httptest.NewRequest(c.method, c.path, nil)
		if c.contentType != "" {
			r.Header.Set("Content-Type", c.contentType)
		}
		name, ok := d.CapabilityName(r, r.URL.Path)
		if name != c.want || ok != (c.want != "") {
			t.Errorf("CapabilityName(%s %s %q) = %q %v, want %q", c.method, c.path, c.contentType, name, ok, c.want)
		}
	}
	if got := d.Capabilities(); !slices.Equal(got, []string{"site_info", "content_search", "inventory_check", "book_demo", "get_quote"}) {
		t.Errorf("Capabilities() = %v", got)
	}
}

// post calls ServeCapability with the test site behind the gateway.
func post(t *testing.T, d *Document, site *sitetest.Site, name, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "http://shop.example/capabilities/"+name+"?utm=x", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			r.Header.Del(header[i])
		} else {
			r.Header.Set(header[i], header[i+1])
		}
	}
	w := httptest.NewRecorder()
	if err := d.ServeCapability(w, r, name, site); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestServeCapability(t *testing.T) {
	// Calls with credentials are charged other tiers; the unauthenticated
	// one admits two.
	d, site := newDocSite(t, nil, Options{}, sitetest.Options{Unauthenticated: limiter.Limit{Events: 2, Window: time.Minute}})

	w := post(t, d, site, "inventory_check", `{"query":"In stock?","sku":"AHP-1","qty":3,"session_id":"s-9"}`,
		"Accept-Encoding", "gzip", "Authorization", sitetest.Bearer)
	got := site.Last(t)
	wantBody := `{"ahp":"0.1","capability":"inventory_check","query":"In stock?\n\nArguments: {\"qty\":3,\"sku\":\"AHP-1\"}",` +
		`"session_id":"s-9","context":{"accept_types":["application/data","text/answer"]}}`
	if string(got.Body) != wantBody {
		t.Errorf("converse body\n got %s\nwant %s", got.Body, wantBody)
	}
	if problems, err := schema.Check(schema.RequestSchema, got.Body); err != nil || problems != nil {
		t.Errorf("request schema: %v %v", problems, err)
	}
	if got.Method != "POST" || got.Path != "/agent/converse" || got.RawQuery != "" || got.Header.Get("Accept-Encoding") != "" ||
		got.Header.Get("Authorization") != sitetest.Bearer || got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("internal request = %s %s?%s %v", got.Method, got.Path, got.RawQuery, got.Header)
	}
	// The pipeline's answer goes through unchanged.
	if w.Code != 200 || w.Header().Get("X-Ratelimit-Remaining") == "" || w.Header().Get("Link") == "" {
		t.Errorf("response %d %v", w.Code, w.Header())
	}
	if resp := sitetest.JSON(t, w.Body.Bytes()); at(t, resp, "response", "answer") != "inventory_check says: In stock?\n\nArguments: {\"qty\":3,\"sku\":\"AHP-1\"}" {
		t.Errorf("body = %v", resp)
	}

	// Appendix D.4's body auth field is moved to the header.
	w = post(t, d, site, "book_demo", `{"query":"Book it","auth":"Bearer `+sitetest.Key+`","date":"2026-12-01"}`)
	got = site.Last(t)
	if w.Code != 200 || got.Header.Get("Authorization") != sitetest.Bearer {
		t.Errorf("body auth: %d, Authorization %q", w.Code, got.Header.Get("Authorization"))
	}
	if bytes.Contains(got.Body, []byte(sitetest.Key)) || bytes.Contains(got.Body, []byte(`"auth"`)) {
		t.Errorf("credentials in the converse body: %s", got.Body)
	}

	// Refusals of the gateway are its AHP bodies with their status, and
	// never reach the concierge.
	before := len(site.Received())
	w = post(t, d, site, "book_demo", `{"query":"Book it"}`)
	if resp := sitetest.JSON(t, w.Body.Bytes()); w.Code != 401 || resp["code"] != "auth_required" || w.Header().Get("X-Ratelimit-Remaining") != "1" {
		t.Errorf("no credentials: %d %v %v", w.Code, resp, w.Header())
	}
	w = post(t, d, site, "site_info", `{"query":"hi"}`)
	w = post(t, d, site, "site_info", `{"query":"hi"}`)
	if resp := sitetest.JSON(t, w.Body.Bytes()); w.Code != 429 || w.Header().Get("Retry-After") == "" || resp["code"] != "rate_limited" {
		t.Errorf("rate limited: %d %v", w.Code, w.Header())
	}
	if n := len(site.Received()) - before; n != 1 {
		t.Errorf("%d of the calls reached the concierge, want 1", n)
	}
}

func TestServeCapabilityRefusals(t *testing.T) {
	d, site := newDocSite(t, nil, Options{MaxBodyBytes: 256})
	cases := []struct {
		name, cap, body string
		header          []string
		status          int
		code            string
	}{
		{"no query", "site_info", `{}`, nil, 400, "missing_field"},
		{"empty body", "site_info", ``, nil, 400, "missing_field"},
		{"not JSON", "site_info", `query=hi`, nil, 400, "invalid_request"},
		{"an array", "site_info", `[]`, nil, 400, "invalid_request"},
		{"query not a string", "site_info", `{"query":1}`, nil, 400, "invalid_request"},
		{"unknown field", "site_info", `{"query":"hi","capability":"book_demo"}`, nil, 400, "invalid_request"},
		{"bad structured input", "inventory_check", `{"query":"hi","sku":1}`, nil, 400, "invalid_request"},
		{"auth not a string", "site_info", `{"query":"hi","auth":5}`, nil, 400, "invalid_request"},
		{"auth with spaces", "site_info", `{"query":"hi","auth":"a b c"}`, nil, 400, "invalid_request"},
		{"too large", "site_info", `{"query":"` + strings.Repeat("x", 300) + `"}`, nil, 413, "request_too_large"},
		{"form body", "site_info", `{"query":"hi"}`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "invalid_request"},
		{"unknown capability", "nope", `{"query":"hi"}`, nil, 400, "unknown_capability"},
	}
	for _, c := range cases {
		w := post(t, d, site, c.cap, c.body, c.header...)
		resp := sitetest.JSON(t, w.Body.Bytes())
		if w.Code != c.status || resp["code"] != c.code || resp["status"] != "error" {
			t.Errorf("%s: %d %v, want %d %s", c.name, w.Code, resp, c.status, c.code)
		}
		if problems, _ := schema.Check(schema.ResponseSchema, w.Body.Bytes()); problems != nil {
			t.Errorf("%s: not an AHP error body: %v", c.name, problems)
		}
		// A refusal here is counted as the direct path's are, by its code.
		if got := site.Rejected(); len(got) != 1 || got[0] != c.code {
			t.Errorf("%s: counted as rejected %v, want [%s]", c.name, got, c.code)
		}
	}
	if n := len(site.Received()); n != 0 {
		t.Errorf("%d refused requests reached the site", n)
	}
	// No Content-Type is refused too: a cross-site fetch of a typeless
	// Blob sends none, with the user's cookies and without a preflight.
	if w := post(t, d, site, "site_info", `{"query":"hi"}`, "Content-Type", ""); w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("no Content-Type: %d, want 415", w.Code)
	}
	// Any JSON type is JSON, as on the gateway's own path.
	if w := post(t, d, site, "site_info", `{"query":"hi"}`, "Content-Type", "application/vnd.example+json; charset=utf-8"); w.Code != http.StatusOK {
		t.Errorf("a +json body: %d %s, want 200", w.Code, w.Body)
	}
	r := httptest.NewRequest(http.MethodGet, "/capabilities/site_info", nil)
	w := httptest.NewRecorder()
	_ = d.ServeCapability(w, r, "site_info", site)
	if w.Code != 405 || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET: %d %q", w.Code, w.Header().Get("Allow"))
	}
}

// TestCharging is the charging rule at this door: a capability call is
// charged the gateway's tiers, never the static tier; a call refused here
// the client's tier; the document the static tier.
func TestCharging(t *testing.T) {
	d, site := newDocSite(t, nil, Options{})
	site.Charged()
	post(t, d, site, "site_info", `{"query":"hi"}`)
	if got := site.Charged(); !slices.Equal(got, []string{"unauthenticated"}) {
		t.Errorf("capability call: charged %v", got)
	}
	post(t, d, site, "book_demo", `{"query":"hi"}`, "Authorization", sitetest.Bearer)
	if got := site.Charged(); !slices.Equal(got, []string{"action"}) {
		t.Errorf("action with a key: charged %v", got)
	}
	post(t, d, site, "site_info", `{}`)
	if got := site.Charged(); !slices.Equal(got, []string{"unauthenticated"}) {
		t.Errorf("refused call: charged %v", got)
	}
	get(t, d, http.MethodGet)
	if got := site.Charged(); !slices.Equal(got, []string{"static"}) {
		t.Errorf("document: charged %v", got)
	}
}

// truncatedBody fails as a truncated chunked body or a reset client does.
type truncatedBody struct{ r io.Reader }

func (b truncatedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// A body that fails to read is refused as the converse endpoint refuses
// it: an AHP 400 invalid_request, charged to the client's tier, never the
// read error handed to Caddy (a plain 500 that costs nothing).
func TestServeCapabilityBodyReadError(t *testing.T) {
	d, site := newDocSite(t, nil, Options{})
	site.Charged()
	r := httptest.NewRequest(http.MethodPost, "http://shop.example/capabilities/site_info", nil)
	r.Body = io.NopCloser(truncatedBody{strings.NewReader(`{"query":"hi"}`)})
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	if err := d.ServeCapability(w, r, "site_info", site); err != nil {
		t.Fatalf("the read error went to Caddy: %v", err)
	}
	resp := sitetest.JSON(t, w.Body.Bytes())
	if w.Code != http.StatusBadRequest || resp["code"] != "invalid_request" {
		t.Errorf("%d %v, want 400 invalid_request", w.Code, resp)
	}
	if problems, _ := schema.Check(schema.ResponseSchema, w.Body.Bytes()); problems != nil {
		t.Errorf("not an AHP error body: %v", problems)
	}
	if got := site.Charged(); !slices.Equal(got, []string{"unauthenticated"}) {
		t.Errorf("charged %v, want the client's tier", got)
	}
	if n := len(site.Received()); n != 0 {
		t.Errorf("%d unreadable requests reached the site", n)
	}
}

// TestHeadersOwned: no two responses share a header value (Caddy's header
// directive edits values in place).
func TestHeadersOwned(t *testing.T) {
	d := newDoc(t, nil, Options{TrustForwardedProto: true})
	w1 := get(t, d, http.MethodGet)
	w2 := get(t, d, http.MethodGet)
	for k, v := range w1.Header() {
		if len(v) > 0 && len(w2.Header()[k]) > 0 && &v[0] == &w2.Header()[k][0] {
			t.Errorf("%s: two responses share one value slice", k)
		}
	}
}

// TestReplacedPropertiesWarned: an input_schema property that is one of
// the door's own fields (query ...) is named in a warning at load.
func TestReplacedPropertiesWarned(t *testing.T) {
	m := sitetest.Parse(t, strings.Replace(sitetest.ManifestJSON, `"properties": {"date": {"type": "string"}}`,
		`"properties": {"date": {"type": "string"}, "session_id": {"type": "integer"}}`, 1))
	core, logs := observer.New(zap.WarnLevel)
	newDoc(t, m, Options{Logger: zap.New(core)})
	all := logs.All()
	if len(all) != 1 || !strings.HasPrefix(all[0].Message, "ahp openapi: ") || all[0].ContextMap()["capability"] != "book_demo" {
		t.Errorf("warnings: %+v", all)
	}
}
