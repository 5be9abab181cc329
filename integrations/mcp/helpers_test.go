package mcp

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/integrations/internal/sitetest"
	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// newServer builds a Server for m (the test manifest when nil) in front
// of the test site: its real gateway, limits and discovery.
func newServer(t testing.TB, m *manifest.Manifest, opts Options, siteOpts ...sitetest.Options) (*Server, *sitetest.Site) {
	t.Helper()
	if m == nil {
		m = sitetest.Manifest(t)
	}
	site := sitetest.New(t, m, siteOpts...)
	opts.Gateway, opts.Limits, opts.Content = site.Gateway, site.Limits, site.Content
	srv, err := New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	return srv, site
}

// start serves a Server for m at /mcp of an httptest server, in front of
// the test site.
func start(t *testing.T, m *manifest.Manifest, opts Options, siteOpts ...sitetest.Options) (*Server, *sitetest.Site, *httptest.Server) {
	t.Helper()
	if opts.Path == "" {
		opts.Path = "/mcp"
	}
	srv, site := newServer(t, m, opts, siteOpts...)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/mcp" {
			http.NotFound(w, r)
			return
		}
		if err := srv.ServeHTTP(w, r, site); err != nil {
			t.Errorf("ServeHTTP: %v", err)
		}
	}))
	t.Cleanup(ts.Close)
	return srv, site, ts
}
