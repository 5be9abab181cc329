package markdown

import (
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestPageURLIgnoresAHostileHost(t *testing.T) {
	r := httptest.NewRequest("GET", "http://example.com/blog/a.html?x=1", nil)
	if u := pageURL(r, nil); u.String() != "http://example.com/blog/a.html?x=1" {
		t.Errorf("pageURL = %s", u)
	}
	r.Host = "evil.example/x"
	if u := pageURL(r, nil); u.Host != "" || u.Path != "/blog/a.html" {
		t.Errorf("pageURL with Host %q = %s; want a site-relative base", r.Host, u)
	}
}

// TestPageURLIsTheURLAsked: relative links resolve against the URL the
// agent asked for, not the one a rewrite made of it, on the request's host.
func TestPageURLIsTheURLAsked(t *testing.T) {
	r := httptest.NewRequest("GET", "https://shop.example/index.php?p=oak", nil)
	asked, _ := url.Parse("/blog/oak-care/?page=2")
	if u := pageURL(r, asked); u.String() != "https://shop.example/blog/oak-care/?page=2" {
		t.Errorf("pageURL = %s", u)
	}
}
