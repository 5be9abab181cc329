package httpx

import (
	"crypto/tls"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestIsJSONAndMediaType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json": true, "Application/JSON; charset=utf-8": true, "application/problem+json": true,
		"application/agent+json": true, " application/json ": true, "text/json": false, "application/jsonp": false,
		"text/html": false, "": false, "+json": false,
	} {
		if got := IsJSON(ct); got != want {
			t.Errorf("IsJSON(%q) = %v, want %v", ct, got, want)
		}
	}
	if got := MediaType(" Text/HTML ; charset=utf-8"); got != "text/html" {
		t.Errorf("MediaType = %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { IsJSON("Application/Problem+JSON; charset=utf-8") }); n != 0 {
		t.Errorf("IsJSON allocates %.0f times", n)
	}
}

func TestValidHostAndOrigin(t *testing.T) {
	for h, want := range map[string]bool{
		"example.com": true, "example.com:8443": true, "[::1]:8080": true, "my_host": true, "127.0.0.1": true,
		"": false, "evil.com/x": false, "a@b": false, "a b": false, "x\"y": false, "a%2Fb": false, "a,b": false,
	} {
		if got := ValidHost(h); got != want {
			t.Errorf("ValidHost(%q) = %v, want %v", h, got, want)
		}
	}
	r := httptest.NewRequest("GET", "http://example.com/x", nil)
	if got := PublicOrigin(r, false); got != "http://example.com" {
		t.Errorf("Origin = %q", got)
	}
	r.Header.Set("X-Forwarded-Proto", "https, http")
	if got := PublicOrigin(r, false); got != "http://example.com" {
		t.Errorf("untrusted X-Forwarded-Proto changed the scheme: %q", got)
	}
	if got := PublicOrigin(r, true); got != "https://example.com" {
		t.Errorf("trusted X-Forwarded-Proto ignored: %q", got)
	}
	r.TLS = &tls.ConnectionState{}
	r.Host = "evil.com/x"
	if got := PublicOrigin(r, false); got != "" {
		t.Errorf("an invalid Host made an origin: %q", got)
	}
}

// Behind a trusted proxy the public host is the first valid value of its
// X-Forwarded-Host (and the scheme its X-Forwarded-Proto); from any other
// peer both are ignored; a broken X-Forwarded-Host falls back to Host.
func TestPublicHostAndOrigin(t *testing.T) {
	for _, c := range []struct {
		name, host, fwdHost, fwdProto string
		trusted                       bool
		wantHost, wantOrigin          string
	}{
		{"trusted, host and proto", "backend:8080", "www.example.com", "https", true, "www.example.com", "https://www.example.com"},
		{"trusted, host only", "backend:8080", "www.example.com", "", true, "www.example.com", "http://www.example.com"},
		{"trusted, host with port", "backend:8080", "www.example.com:8443", "https", true, "www.example.com:8443", "https://www.example.com:8443"},
		{"trusted, a list: the first", "backend:8080", " www.example.com , proxy.internal", "https, http", true, "www.example.com", "https://www.example.com"},
		{"trusted, proto only", "backend:8080", "", "https", true, "backend:8080", "https://backend:8080"},
		{"trusted, invalid host", "backend:8080", "evil.com/x", "https", true, "backend:8080", "https://backend:8080"},
		{"trusted, invalid first of a list", "backend:8080", "a b, www.example.com", "", true, "backend:8080", "http://backend:8080"},
		{"trusted, empty first of a list", "backend:8080", ", www.example.com", "", true, "backend:8080", "http://backend:8080"},
		{"trusted, invalid both", "a/b", "x@y", "https", true, "a/b", ""},
		{"untrusted, host and proto", "backend:8080", "www.example.com", "https", false, "backend:8080", "http://backend:8080"},
		{"untrusted, host only", "backend:8080", "www.example.com", "", false, "backend:8080", "http://backend:8080"},
		{"untrusted, a list", "backend:8080", "www.example.com, x", "", false, "backend:8080", "http://backend:8080"},
	} {
		r := httptest.NewRequest("GET", "http://backend/x", nil)
		r.Host = c.host
		if c.fwdHost != "" {
			r.Header.Set("X-Forwarded-Host", c.fwdHost)
		}
		if c.fwdProto != "" {
			r.Header.Set("X-Forwarded-Proto", c.fwdProto)
		}
		if got := PublicHost(r, c.trusted); got != c.wantHost {
			t.Errorf("%s: PublicHost = %q, want %q", c.name, got, c.wantHost)
		}
		if got := PublicOrigin(r, c.trusted); got != c.wantOrigin {
			t.Errorf("%s: PublicOrigin = %q, want %q", c.name, got, c.wantOrigin)
		}
	}
	r := httptest.NewRequest("GET", "http://backend/x", nil)
	r.Header.Set("X-Forwarded-Host", "www.example.com")
	if n := testing.AllocsPerRun(100, func() { PublicHost(r, true) }); n != 0 {
		t.Errorf("PublicHost allocates %v times", n)
	}
}

// IsDocument agrees with mime.ParseMediaType on every field value
// net/http would send.
func FuzzIsDocument(f *testing.F) {
	for _, s := range []string{"text/html", "text/html; charset=utf-8", " Text/Plain ;x", "text/css", "", ";", "text/markdown\t;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ct string) {
		got := IsDocument(ct)
		for i := 0; i < len(ct); i++ {
			if (ct[i] < ' ' && ct[i] != '\t') || ct[i] > '~' {
				return // not a field value net/http would send (ParseMediaType also folds Unicode)
			}
		}
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return // IsDocument reads what ParseMediaType refuses too; it only must not panic
		}
		want := false
		for _, d := range DocumentTypes {
			want = want || mt == d
		}
		if got != want {
			t.Errorf("IsDocument(%q) = %v, ParseMediaType says %q", ct, got, mt)
		}
	})
}

// cgiName is the variable a CGI-style site reads a field as (Caddy's
// php_fastcgi, WSGI): upper case, '-' as '_'; PHP's $_SERVER folds '.'
// onto '_' too.
func cgiName(field string) string {
	return "HTTP_" + strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToUpper(field))
}

func TestDeleteEdgeFields(t *testing.T) {
	h := http.Header{
		"X-Agent-Handoff-Admission":  {"edge"},
		"X_agent_handoff_admission":  {"forged"},
		"X_AGENT-HANDOFF_ADMISSION":  {"forged"},
		"X-Ahp-Verified-Agent":       {"forged"},
		"X_Ahp_Verified_Agent":       {"forged"},
		"X-Agent-Handoff-Admissions": {"kept: longer"},
		"X-Agent-Handoff-Admissiom":  {"kept: one letter off"},
		"X.Ahp.Verified.Agent":       {"forged: PHP folds '.'"},
		"X~Ahp~Verified~Agent":       {"kept: '~' is not '-'"},
		"Accept":                     {"kept"},
	}
	DeleteEdgeFields(h, "X-Agent-Handoff-Admission", "X-Ahp-Verified-Agent")
	if len(h) != 4 || h["X~Ahp~Verified~Agent"] == nil || h["Accept"] == nil {
		t.Fatalf("left %v", h)
	}
	for k := range h {
		if n := cgiName(k); n == cgiName("X-Agent-Handoff-Admission") || n == cgiName("X-Ahp-Verified-Agent") {
			t.Errorf("%q is left, which a site reads as %s", k, n)
		}
	}
	// The names a mutant could confuse: SameField agrees with cgiName on
	// what is one variable, for every pair of these spellings.
	names := []string{"X-A-B", "x_a_b", "X_A-B", "X-A-C", "X-AB", "X.A.B", "X~A~B", "x-a-b "}
	for _, a := range names {
		for _, b := range names {
			if got, want := SameField(a, b), cgiName(a) == cgiName(b); got != want {
				t.Errorf("SameField(%q, %q) = %v, want %v", a, b, got, want)
			}
		}
	}
	h = http.Header{"Accept": {"a"}, "User-Agent": {"b"}, "Content-Type": {"c"}}
	if n := testing.AllocsPerRun(100, func() { DeleteEdgeFields(h, "X-Agent-Handoff-Admission", "X-Ahp-Verified-Agent") }); n != 0 {
		t.Errorf("DeleteEdgeFields allocates %v times for a request without the fields", n)
	}
}

// A browser's request header, as every request carries one: the price of
// looking for the edge's fields in every spelling, against deleting the
// canonical names only (the baseline).
func benchHeader() http.Header {
	return http.Header{
		"Accept": {"text/html"}, "Accept-Encoding": {"gzip, br"}, "Accept-Language": {"en"},
		"Cookie": {"a=b"}, "User-Agent": {"Mozilla/5.0"}, "Sec-Fetch-Mode": {"navigate"},
		"Upgrade-Insecure-Requests": {"1"}, "Cache-Control": {"max-age=0"},
	}
}

func BenchmarkDeleteEdgeFieldsBaseline(b *testing.B) {
	h := benchHeader()
	for b.Loop() {
		delete(h, "X-Ahp-Verified-Agent")
		delete(h, "X-Ahp-Callback-Addrs")
	}
}

func BenchmarkDeleteEdgeFields(b *testing.B) {
	h := benchHeader()
	for b.Loop() {
		DeleteEdgeFields(h, "X-Ahp-Verified-Agent", "X-Ahp-Callback-Addrs")
	}
}

// Media types are ASCII (RFC 9110 §8.3.1): case folds, Unicode folding
// does not (strings.EqualFold alone took the Kelvin sign for a 'k').
func TestIsDocumentASCIICase(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/html":                 true,
		"TEXT/Markdown; charset=x":  true,
		" text/plain ":              true,
		"text/css":                  false,
		"text/mar\u212adown":        false,
		"text/htm":                  false,
		"application/xhtml+xml;q=1": true,
	} {
		if got := IsDocument(ct); got != want {
			t.Errorf("IsDocument(%q) = %v, want %v", ct, got, want)
		}
	}
}

// Connection: close only for HTTP/1.x: an HTTP/3 response carrying it is
// malformed.
func TestCloseAfter(t *testing.T) {
	for _, c := range []struct {
		major int
		want  bool
	}{{1, true}, {2, false}, {3, false}} {
		r := &http.Request{ProtoMajor: c.major}
		h := http.Header{}
		CloseAfter(h, r)
		if got := h.Get("Connection") == "close"; got != c.want {
			t.Errorf("HTTP/%d: Connection %q", c.major, h.Get("Connection"))
		}
	}
}
