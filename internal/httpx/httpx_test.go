package httpx

import (
	"crypto/tls"
	"mime"
	"net/http/httptest"
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
	if got := Origin(r, false); got != "http://example.com" {
		t.Errorf("Origin = %q", got)
	}
	r.Header.Set("X-Forwarded-Proto", "https, http")
	if got := Origin(r, false); got != "http://example.com" {
		t.Errorf("untrusted X-Forwarded-Proto changed the scheme: %q", got)
	}
	if got := Origin(r, true); got != "https://example.com" {
		t.Errorf("trusted X-Forwarded-Proto ignored: %q", got)
	}
	r.TLS = &tls.ConnectionState{}
	r.Host = "evil.com/x"
	if got := Origin(r, false); got != "" {
		t.Errorf("an invalid Host made an origin: %q", got)
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
