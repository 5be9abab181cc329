package handoff

import (
	"net/http"
	"testing"
)

// A preview backend's own X-Frame-Options and Referrer-Policy (Rails
// sends SAMEORIGIN and strict-origin-when-cross-origin by default) must
// not sit beside the edge's: browsers ignore conflicting X-Frame-Options
// values and apply the last Referrer-Policy, so the preview's DENY and
// no-referrer (spec §21, §16) would be lost. Caddy's reverse_proxy adds
// the backend's header values to the ones already set, as this backend
// does; on the plain preview pages and on the exchange POST alike.
func TestPreviewHeadersWinOverBackend(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Preview = true; c.Provider = Provider{} })
	f.be.fn = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Add("X-Frame-Options", "SAMEORIGIN")
		w.Header().Add("Referrer-Policy", "unsafe-url")
		w.Header().Add("Content-Type", "text/html")
		w.WriteHeader(200)
		_, _ = w.Write([]byte("<p>preview</p>"))
	}
	for _, p := range []struct{ method, path string }{{"GET", "/preview/faq"}, {"POST", "/exchange/rr_exch_x"}} {
		r := f.do(p.method, p.path, "")
		if r.StatusCode != 200 || string(r.body) != "<p>preview</p>" {
			t.Fatalf("%s %s: %d %s", p.method, p.path, r.StatusCode, r.body)
		}
		if got := r.Header.Values("X-Frame-Options"); len(got) != 1 || got[0] != "DENY" {
			t.Errorf("%s %s: X-Frame-Options %q, want only DENY", p.method, p.path, got)
		}
		if got := r.Header.Values("Referrer-Policy"); len(got) != 1 || got[0] != "no-referrer" {
			t.Errorf("%s %s: Referrer-Policy %q, want only no-referrer", p.method, p.path, got)
		}
	}
}
