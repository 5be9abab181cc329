package mcp

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/integrations/internal/sitetest"
	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// start serves a Server for m (the test manifest when nil) at /mcp of an
// httptest server, dispatching into a fake site.
func start(t *testing.T, m *manifest.Manifest, opts Options) (*Server, *sitetest.Site, *httptest.Server) {
	t.Helper()
	if m == nil {
		m = sitetest.Manifest(t)
	}
	if opts.Path == "" {
		opts.Path = "/mcp"
	}
	srv, err := New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	site := sitetest.New(t, m)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/mcp" {
			http.NotFound(w, r)
			return
		}
		if err := srv.ServeHTTP(w, r, site.Dispatch); err != nil {
			t.Errorf("ServeHTTP: %v", err)
		}
	}))
	t.Cleanup(ts.Close)
	return srv, site, ts
}
