package markdown

import (
	"net/http/httptest"
	"testing"
)

func TestPageURLIgnoresAHostileHost(t *testing.T) {
	r := httptest.NewRequest("GET", "http://example.com/blog/a.html?x=1", nil)
	if u := pageURL(r); u.String() != "http://example.com/blog/a.html?x=1" {
		t.Errorf("pageURL = %s", u)
	}
	r.Host = "evil.example/x"
	if u := pageURL(r); u.Host != "" || u.Path != "/blog/a.html" {
		t.Errorf("pageURL with Host %q = %s; want a site-relative base", r.Host, u)
	}
}
