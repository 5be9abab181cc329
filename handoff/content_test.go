package handoff

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

type contentAnswer struct {
	status int
	header http.Header
	body   string
}

func serveContent(t *testing.T, c *ContentHandler, method, target string, up func(w http.ResponseWriter, r *http.Request)) (contentAnswer, int) {
	t.Helper()
	calls := 0
	next := nextFunc(func(w http.ResponseWriter, r *http.Request) error {
		calls++
		up(w, r)
		return nil
	})
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("Accept-Encoding", "gzip, br")
	w := httptest.NewRecorder()
	if err := c.ServeHTTP(w, r, next); err != nil {
		t.Fatal(err)
	}
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	return contentAnswer{res.StatusCode, res.Header, string(b)}, calls
}

type nextFunc func(http.ResponseWriter, *http.Request) error

func (f nextFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

func answer(status int, ct, body string, headers ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Add(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

const page = `<!DOCTYPE html><html><head><title>FAQ</title><link rel="stylesheet" href="/assets/faq.css"></head>
<body><h1>FAQ</h1><p>See <a href="https://example.com/docs">the docs</a> or <a href="/assets/more">more</a>.</p>
<img src="/assets/logo.png" alt=""><p>Write &lt;svg onload=alert(1)&gt; as text.</p></body></html>`

func TestSandboxContent(t *testing.T) {
	c, err := NewContent(ContentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// A clean page passes, with the origin's headers and only safe
	// headers of the backend's.
	a, calls := serveContent(t, c, "GET", "/", answer(200, "text/html; charset=utf-8", page,
		"Set-Cookie", "track=1", "Refresh", "0;url=https://phish.example", "Link", "<https://evil.example>; rel=preload",
		"Access-Control-Allow-Origin", "*", "Cache-Control", "max-age=60", "X-Robots-Tag", "all"))
	if a.status != 200 || a.body != page || calls != 1 {
		t.Fatalf("clean page: %d calls %d\n%s", a.status, calls, a.body)
	}
	for _, h := range []string{"Set-Cookie", "Refresh", "Link", "Access-Control-Allow-Origin"} {
		if v := a.header.Get(h); v != "" {
			t.Errorf("%s: %q reached the client", h, v)
		}
	}
	if a.header.Get("Cache-Control") != "max-age=60" || a.header.Get("X-Robots-Tag") != "noindex, nofollow" ||
		a.header.Get("Content-Security-Policy") != DefaultContentCSP || a.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers: %v", a.header)
	}
	if !strings.Contains(DefaultContentCSP, "default-src 'none'") || strings.Contains(DefaultContentCSP, "unsafe-inline") ||
		!strings.Contains(DefaultContentCSP, "img-src 'self'") {
		t.Errorf("the CSP must forbid scripts, inline styles and foreign images: %s", DefaultContentCSP)
	}

	refusals := []struct {
		name, method, path string
		up                 func(http.ResponseWriter, *http.Request)
		reaches            bool
	}{
		{"a path off the routes", "GET", "/admin", answer(200, "text/html", "x"), false},
		{"a variant of a route", "GET", "/ASSETS/x.css", answer(200, "text/css", "x"), false},
		{"a dot segment", "GET", "/assets/../secret", answer(200, "text/plain", "x"), false},
		{"POST", "POST", "/", answer(200, "text/html", "x"), false},
		{"a redirect", "GET", "/", answer(302, "", "", "Location", "https://new.example/"), true},
		{"SVG by type", "GET", "/assets/a.png", answer(200, "image/svg+xml", "<svg/>"), true},
		{"SVG sniffed", "GET", "/assets/a.png", answer(200, "image/png", "\xef\xbb\xbf <?xml version=\"1.0\"?><!-- x --><svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>"), true},
		{"SVG doctype", "GET", "/assets/a", answer(200, "text/plain", `<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x"><x/>`), true},
		{"SVG namespaced", "GET", "/assets/a", answer(200, "text/plain", `<s:svg xmlns:s="http://www.w3.org/2000/svg"/>`), true},
		{"JavaScript", "GET", "/assets/a.js", answer(200, "text/javascript", "alert(1)"), true},
		{"no type", "GET", "/assets/a", answer(200, "", "x"), true},
		{"encoded", "GET", "/assets/a.css", answer(200, "text/css", "x", "Content-Encoding", "gzip"), true},
		{"inline script", "GET", "/", answer(200, "text/html", "<p>hi</p><SCRIPT>alert(1)</SCRIPT>"), true},
		{"inline svg", "GET", "/", answer(200, "text/html", "<p>hi</p><svg><circle/></svg>"), true},
		{"event handler", "GET", "/", answer(200, "text/html", `<img src="/x.png" onerror="alert(1)">`), true},
		{"style attribute", "GET", "/", answer(200, "text/html", `<p style="background:url(https://evil.example)">x</p>`), true},
		{"style element", "GET", "/", answer(200, "text/html", `<style>body{}</style>`), true},
		{"javascript: URL", "GET", "/", answer(200, "text/html", `<a href="java&#x09;script:alert(1)">x</a>`), true},
		{"javascript: URL, tab", "GET", "/", answer(200, "text/html", "<a href=\"java\tscript:alert(1)\">x</a>"), true},
		{"data: URL", "GET", "/", answer(200, "text/html", `<img src="data:image/svg+xml;base64,PHN2Zz4=">`), true},
		{"http: URL", "GET", "/", answer(200, "text/html", `<img src="http://tracker.example/p.gif">`), true},
		{"srcset", "GET", "/", answer(200, "text/html", `<img srcset="/a.png 1x, javascript:x 2x">`), true},
		{"meta refresh", "GET", "/", answer(200, "text/html", `<meta http-equiv="Refresh" content="0;url=https://phish.example">`), true},
		{"iframe", "GET", "/", answer(200, "text/html", `<iframe src="https://example.com"></iframe>`), true},
	}
	var first contentAnswer
	for i, tc := range refusals {
		a, calls := serveContent(t, c, tc.method, tc.path, tc.up)
		want := 404
		if tc.method == "POST" {
			want = 405
		}
		if a.status != want || a.header.Get("Location") != "" || a.header.Get("X-Robots-Tag") == "" {
			t.Errorf("%s: %d %v %q", tc.name, a.status, a.header, a.body)
		}
		if (calls == 1) != tc.reaches {
			t.Errorf("%s: reached the backend %d times", tc.name, calls)
		}
		if i == 0 {
			first = a
		} else if want == 404 && (a.body != first.body || a.header.Get("Content-Type") != first.header.Get("Content-Type")) {
			t.Errorf("%s: the refusal differs from the others: %q", tc.name, a.body)
		}
	}

	// Routes and types are configurable; SVG never is.
	if _, err := NewContent(ContentConfig{Types: []string{"image/svg+xml"}}); err == nil {
		t.Error("a content origin serving SVG was configured")
	}
	c, err = NewContent(ContentConfig{Routes: []string{"/faq/*"}, Types: []string{"text/plain"}})
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := serveContent(t, c, "GET", "/", answer(200, "text/plain", "x")); a.status != 404 {
		t.Errorf("/ without the route: %d", a.status)
	}
	if a, _ := serveContent(t, c, "GET", "/faq/a", answer(200, "text/plain", strings.Repeat("x", 2000))); a.status != 200 || len(a.body) != 2000 {
		t.Errorf("a long plain answer: %d %d bytes", a.status, len(a.body))
	}
	if a, _ := serveContent(t, c, "GET", "/faq/a", answer(200, "text/html", "<p>x</p>")); a.status != 404 {
		t.Errorf("HTML off the type list: %d", a.status)
	}
}

// Compressed answers (from the upstream, or from encode in the site) are
// decoded to be judged and go out as they came.
func TestSandboxContentCompressed(t *testing.T) {
	c, err := NewContent(ContentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	gz := func(s string) string {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write([]byte(s))
		_ = zw.Close()
		return b.String()
	}
	br := func(s string) string {
		var b bytes.Buffer
		bw := brotli.NewWriter(&b)
		_, _ = bw.Write([]byte(s))
		_ = bw.Close()
		return b.String()
	}
	zs := func(s string) string {
		e, _ := zstd.NewWriter(nil)
		return string(e.EncodeAll([]byte(s), nil))
	}
	clean := gz(page)
	a, _ := serveContent(t, c, "GET", "/", answer(200, "text/html", clean, "Content-Encoding", "gzip", "Vary", "Accept-Encoding"))
	if a.status != 200 || a.body != clean || a.header.Get("Content-Encoding") != "gzip" || a.header.Get("Content-Length") != strconv.Itoa(len(clean)) {
		t.Fatalf("a clean gzip page: %d %v", a.status, a.header)
	}
	for name, tc := range map[string]struct{ ct, coding, body string }{
		"gzip script":  {"text/html", "gzip", gz("<p>x</p><script>alert(1)</script>")},
		"br svg":       {"image/png", "br", br("<svg onload=alert(1)>")},
		"zstd handler": {"text/html", "zstd", zs(`<img src=/a onerror=alert(1)>`)},
		"broken gzip":  {"text/html", "gzip", "not gzip at all"},
		"unknown":      {"text/html", "compress", "x"},
		"bomb":         {"text/plain", "gzip", gz(strings.Repeat("a", 4*MaxCheckedHTML+10))},
	} {
		if a, _ := serveContent(t, c, "GET", "/", answer(200, tc.ct, tc.body, "Content-Encoding", tc.coding)); a.status != 404 || a.header.Get("Content-Encoding") != "" {
			t.Errorf("%s: %d %v", name, a.status, a.header)
		}
	}
}

func TestPreviewOrigin(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Preview = true; c.Provider = Provider{} })
	f.be.fn = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Add("Set-Cookie", "preview=abc; Domain=example.net; Path=/; SameSite=None")
		w.Header().Add("Set-Cookie", "other=1")
		w.WriteHeader(200)
		_, _ = w.Write([]byte("ok"))
	}
	r := f.do("GET", "/preview/faq", "")
	if r.StatusCode != 200 || r.Header.Get("X-Frame-Options") != "DENY" || r.Header.Get("X-Robots-Tag") == "" ||
		!strings.Contains(r.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("preview GET: %d %v", r.StatusCode, r.Header)
	}
	for _, c := range r.Header.Values("Set-Cookie") {
		if !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "Secure") || !strings.Contains(c, "SameSite=Strict") || strings.Contains(c, "Domain") {
			t.Errorf("cookie not hardened: %s", c)
		}
	}
	n := f.be.count()
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		if r := f.do(m, "/preview/faq", "{}"); r.StatusCode != 405 {
			t.Errorf("%s on the preview: %d", m, r.StatusCode)
		}
	}
	if f.be.count() != n {
		t.Fatal("a state-changing request reached the preview backend")
	}
	// The exchange POST is the one write allowed, and its cookie is hardened.
	r = f.do("POST", "/exchange/rr_exch_x", "")
	if r.StatusCode != 200 || f.be.count() != n+1 || !strings.Contains(r.Header.Get("Set-Cookie"), "SameSite=Strict") {
		t.Fatalf("exchange POST: %d %v", r.StatusCode, r.Header)
	}
	// The preview and the exchange both forbid framing: one policy, once.
	if csp := r.Header.Values("Content-Security-Policy"); len(csp) != 1 || csp[0] != "frame-ancestors 'none'" {
		t.Errorf("exchange POST on the preview origin: Content-Security-Policy %q, want it once", csp)
	}
	if r := f.do("GET", "/exchange/rr_exch_x", ""); r.StatusCode != 200 || f.be.count() != n+1 {
		t.Fatalf("exchange GET: %d", r.StatusCode)
	}
	if r := f.do("GET", "/.well-known/agent-access", ""); f.be.count() != n+2 || r.StatusCode != 200 {
		t.Fatal("the preview origin answered discovery itself")
	}
}

// A backend failure on the content origin is not returned to Caddy, which
// would log it with the request, Host and so the public handle included,
// in its error log, which the access-log filter the docs give does not
// reach (§12.1, §15.1, §22). The agent gets the error's status; the
// plugin's line names the failure without the host.
func TestSandboxContentBackendErrorNotReturned(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	const handle = "hdl-secret-7f3a9c"
	errDown := errors.New("dial tcp 10.0.0.5:8000: connect: connection refused")
	c, err := NewContent(ContentConfig{Logger: zap.New(core), ErrorStatus: func(err error) int {
		if errors.Is(err, errDown) {
			return http.StatusBadGateway
		}
		return 0
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		up     func(w http.ResponseWriter) error
		status int
	}{
		{"nothing written", func(http.ResponseWriter) error { return fmt.Errorf("proxy: %w", errDown) }, http.StatusBadGateway},
		{"no status known", func(http.ResponseWriter) error { return errors.New("boom") }, http.StatusInternalServerError},
		{"after the answer", func(w http.ResponseWriter) error {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "partial")
			return errDown
		}, 200},
	} {
		r := httptest.NewRequest("GET", "http://"+handle+".sandbox.example.net/", nil)
		w := httptest.NewRecorder()
		next := nextFunc(func(w http.ResponseWriter, _ *http.Request) error { return tc.up(w) })
		if err := c.ServeHTTP(w, r, next); err != nil {
			t.Errorf("%s: the error %q went back to Caddy, whose error log shows the Host (the handle)", tc.name, err)
		}
		if w.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, w.Code, tc.status)
		}
	}
	if logs.Len() == 0 {
		t.Fatal("the backend failures were not logged")
	}
	for _, e := range logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += fmt.Sprintf(" %s=%v", k, v)
		}
		if strings.Contains(line, handle) || strings.Contains(line, "10.0.0.5") {
			t.Errorf("log line holds the handle or the backend's address: %s", line)
		}
	}
}
