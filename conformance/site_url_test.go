package conformance_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/conformance"
	"github.com/caddy-ahp/caddy-ahp/conformance/standin"
)

// tlsSite serves h over https for example.com, and over http a redirect
// of every request to https, as most sites do; the returned client dials
// both and trusts the https one.
func tlsSite(t *testing.T, h http.Handler) (*http.Client, *atomic.Int32) {
	t.Helper()
	secure := httptest.NewTLSServer(h)
	t.Cleanup(secure.Close)
	var plainPOSTs atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost {
			plainPOSTs.Add(1)
		}
		http.Redirect(w, r, "https://example.com"+r.URL.RequestURI(), http.StatusPermanentRedirect)
	}))
	t.Cleanup(plain.Close)
	tr := secure.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		switch addr {
		case "example.com:443":
			addr = secure.Listener.Addr().String()
		case "example.com:80":
			addr = plain.Listener.Addr().String()
		default:
			return nil, fmt.Errorf("the test dials only example.com, not %s", addr)
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr}, &plainPOSTs
}

// TestRedirectToHTTPS: a conforming site that redirects http to https,
// checked as http://example.com, passes: after the manifest's redirect the
// checker works on the https site, and sends it its POSTs, instead of
// resolving the endpoints against the http URL and meeting redirects.
func TestRedirectToHTTPS(t *testing.T) {
	site := standin.New(t)
	hc, plainPOSTs := tlsSite(t, site)
	rep := run(t, site, func(o *conformance.Options) { o.URL, o.HTTPClient = "http://example.com", hc })
	if got := failed(rep); len(got) > 0 {
		t.Errorf("failed %v:\n%s", got, dump(rep))
	}
	if plainPOSTs.Load() != 0 || site.Requests("POST /agent/converse") == 0 {
		t.Errorf("%d POSTs to http, %d converse POSTs to https", plainPOSTs.Load(), site.Requests("POST /agent/converse"))
	}
	if rep.Target != "https://example.com/" {
		t.Errorf("target %q, want the https site", rep.Target)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "https://example.com/") {
		t.Errorf("no note says the checker moved to https: %q", rep.Notes)
	}
}

// TestRedirectToHTTPSHandoffAlone: run alone, the Agent Handoff checks'
// first GET is what moves the run to https; the challenge and creation
// POSTs go there.
func TestRedirectToHTTPSHandoffAlone(t *testing.T) {
	site := standin.New(t)
	hc, plainPOSTs := tlsSite(t, site)
	rep := run(t, site, func(o *conformance.Options) {
		o.URL, o.HTTPClient, o.Only = "http://example.com", hc, []string{"handoff"}
	})
	if got := failed(rep); len(got) > 0 || plainPOSTs.Load() != 0 {
		t.Errorf("failed %v, %d POSTs to http:\n%s", got, plainPOSTs.Load(), dump(rep))
	}
}

// TestRedirectToHTTPSHPPAlone: run alone, the Handshake Prompt checks
// start with a POST, which no redirect carries; the checker first asks the
// http site where it lives, and sends the session's POSTs to https.
func TestRedirectToHTTPSHPPAlone(t *testing.T) {
	site := standin.New(t)
	hc, plainPOSTs := tlsSite(t, site)
	rep := run(t, site, func(o *conformance.Options) {
		o.URL, o.HTTPClient, o.Only = "http://example.com", hc, []string{"hpp"}
	})
	if got := failed(rep); len(got) > 0 || plainPOSTs.Load() != 0 {
		t.Errorf("failed %v, %d POSTs to http:\n%s", got, plainPOSTs.Load(), dump(rep))
	}
	if rep.Target != "https://example.com/" {
		t.Errorf("target %q, want the https site", rep.Target)
	}
}

// TestRedirectToOtherHost: a manifest that redirects to another host is
// not followed (requests stay on the checked site); the failure says which
// site to check instead.
func TestRedirectToOtherHost(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://www.example.org"+r.URL.RequestURI(), http.StatusMovedPermanently)
	}))
	defer srv.Close()
	rep := runOpts(t, conformance.Options{URL: srv.URL, Only: []string{"discovery.manifest_status"}})
	r := results(rep, "discovery.manifest_status")[""]
	if r.Status != conformance.Fail || !strings.Contains(r.Fix, "caddy ahp check https://www.example.org") || !strings.Contains(r.Saw, "another host") {
		t.Errorf("manifest_status: %s saw %q fix %q", r.Status, r.Saw, r.Fix)
	}
}

// TestDefaultPortSameSite: https://example.com:443 and https://example.com
// are one site: links naming the manifest either way are on it.
func TestDefaultPortSameSite(t *testing.T) {
	const manifest = `{"ahp":"0.1","name":"x","modes":["MODE1"],"content_signals":{"ai_input":true}}`
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", `<https://example.com/.well-known/agent.json>; rel="ahp-manifest"; type="application/agent+json"`)
		if r.URL.Path == "/.well-known/agent.json" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, manifest)
			return
		}
		http.NotFound(w, r)
	})
	hc, _ := tlsSite(t, h)
	rep := runOpts(t, conformance.Options{URL: "https://example.com:443", HTTPClient: hc, Only: []string{"discovery.link_not_found", "discovery.link_manifest"}})
	if got := failed(rep); len(got) > 0 {
		t.Errorf("failed %v:\n%s", got, dump(rep))
	}
	if rep.Target != "https://example.com/" {
		t.Errorf("target %q", rep.Target)
	}
}

// TestSitePathNoted: a path in the site argument is not checked (the
// spec's endpoints are at fixed paths or in the manifest); the report
// says so rather than dropping it silently.
func TestSitePathNoted(t *testing.T) {
	srv := hostileSite(t, map[string]any{"ahp": "0.1", "name": "x", "modes": []any{"MODE1"}, "content_signals": map[string]any{}})
	rep := runOpts(t, conformance.Options{URL: srv + "/blog/", Only: []string{"discovery.manifest_status"}})
	if notes := strings.Join(rep.Notes, "\n"); !strings.Contains(notes, "/blog/") {
		t.Errorf("notes %q say nothing of the path", notes)
	}
	var text strings.Builder
	conformance.WriteText(&text, rep, false)
	if !strings.Contains(text.String(), "\nnote: the path /blog/ of the site URL is ignored") {
		t.Errorf("the text report does not show the note:\n%s", text.String())
	}
	// A query is noted, not echoed: it may hold a token.
	rep = runOpts(t, conformance.Options{URL: srv + "/?token=s3cret", Only: []string{"discovery.manifest_status"}})
	if notes := strings.Join(rep.Notes, "\n"); len(rep.Notes) != 1 || strings.Contains(notes, "s3cret") {
		t.Errorf("notes for a query: %q", notes)
	}
	rep = runOpts(t, conformance.Options{URL: srv + "/", Only: []string{"discovery.manifest_status"}})
	if len(rep.Notes) != 0 {
		t.Errorf("notes for a root URL: %q", rep.Notes)
	}
}
