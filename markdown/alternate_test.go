package markdown

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestAltLink: HTML answers with a 2xx status get the Markdown alternate,
// naming the URL the client asked for; other answers do not. HTML a
// Markdown request would get converted says Vary: Accept (RFC 9110
// §12.5.5: a shared cache must not give it to agents asking for the
// Markdown), once, whatever the Vary before.
func TestAltLink(t *testing.T) {
	cases := []struct {
		uri, ct  string
		status   int
		vary     []string
		want     string
		wantVary string
	}{
		{"/blog/post.html?page=2", "text/html; charset=utf-8", 200, nil, `</blog/post.html?page=2>; rel="alternate"; type="text/markdown"`, "Accept"},
		{"/x", "application/xhtml+xml", 200, []string{"Accept-Encoding"}, `</x>; rel="alternate"; type="text/markdown"`, "Accept-Encoding,Accept"},
		{"/x", "text/html", 200, []string{"Origin, accept"}, `</x>; rel="alternate"; type="text/markdown"`, "Origin, accept"},
		{"/x", "text/html", 200, []string{"*"}, `</x>; rel="alternate"; type="text/markdown"`, "*"},
		{"/x", "text/html", 404, nil, "", "Accept"},
		{"/x", "text/html", 206, nil, "", ""},
		{"/x", "text/html", 301, nil, "", ""},
		{"/x.css", "text/css", 200, nil, "", ""},
		{"/x", "", 200, nil, "", ""},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, c.uri, nil)
		rec := httptest.NewRecorder()
		shared := c.vary[:len(c.vary):len(c.vary)]
		if c.vary != nil {
			rec.Header()["Vary"] = shared
		}
		aw := Alternate(rec, r.URL)
		if c.ct != "" {
			aw.Header().Set("Content-Type", c.ct)
		}
		aw.WriteHeader(c.status)
		aw.Release()
		got := rec.Header().Get("Link")
		if got != c.want {
			t.Errorf("%s %s %d: Link %q, want %q", c.uri, c.ct, c.status, got, c.want)
		}
		if got := strings.Join(rec.Header()["Vary"], ","); got != c.wantVary {
			t.Errorf("%s %s %d: Vary %q, want %q", c.uri, c.ct, c.status, got, c.wantVary)
		}
		if strings.Join(shared, ",") != strings.Join(c.vary, ",") {
			t.Errorf("%s: the Vary slice another handler set was changed: %q", c.uri, shared)
		}
	}
}

// FuzzLinkTarget: whatever the client's URL holds, the alternate's target
// cannot end the <...> reference or the header field, and plain request
// URIs (none of the bytes it must encode: a raw query may hold a space)
// are kept as they are.
func FuzzLinkTarget(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "/a>b", "/a\"b", "/%3E", "/a,b;c", "/a\x00b", "/a b\r\n", "/? "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := linkTarget(s)
		if strings.ContainsAny(got, "<>\"\\,; \x7f") || hasControl(got) {
			t.Fatalf("linkTarget(%q) = %q", s, got)
		}
		if u, err := url.ParseRequestURI(s); err == nil && u.RequestURI() == s && !strings.ContainsAny(s, "<>\"\\ ,;\x7f") && !hasControl(s) {
			if got != s {
				t.Fatalf("a plain request URI changed: %q -> %q", s, got)
			}
		}
	})
}
