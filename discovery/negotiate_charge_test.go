package discovery

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

// With discovery inline, a negotiated answer is the manifest itself and
// is charged to the static tier as a GET of its path is; otherwise
// Accept: application/agent+json on any page fetched the manifest without
// limit. A 302 is charged when it is followed.
func TestNegotiatedManifestChargedInline(t *testing.T) {
	for _, c := range []struct {
		mode       string
		wantStatus int // the third negotiated request's, under static 2/minute
	}{
		{Inline, http.StatusTooManyRequests},
		{Redirect, http.StatusFound},
	} {
		t.Run(c.mode, func(t *testing.T) {
			store := limiter.NewMemory(limiter.MemoryOptions{})
			defer store.Close()
			lim := ratelimit.New(ratelimit.Config{Store: store, Zone: "negotiate",
				Static:    limiter.Limit{Events: 2, Window: time.Minute},
				ClientKey: func(*http.Request) string { return "192.0.2.9" }})
			h := testHandler(t, Config{Mode: c.mode, Limits: lim})
			var w *httptest.ResponseRecorder
			for range 3 {
				w = httptest.NewRecorder()
				r := httptest.NewRequest(http.MethodGet, "/any/page", nil)
				r.Header.Set("Accept", "application/agent+json")
				if _, answered := h.Serve(w, r, r.URL.Path); !answered {
					t.Fatal("a negotiated GET was not answered")
				}
			}
			if w.Code != c.wantStatus {
				t.Errorf("third negotiated GET: %d, want %d", w.Code, c.wantStatus)
			}
		})
	}
}

// A converse call's status (§6.4) is the protocol's own answer: polled
// with Accept: application/agent+json (a client's default for the site),
// it reaches the gateway, not a 302 to the manifest that would break the
// poll. Other pages are negotiated as before.
func TestStatusPollIsNotNegotiated(t *testing.T) {
	yes := true
	m, doc, err := manifest.Build(manifest.Source{Inline: &manifest.Manifest{
		Name:           "Test",
		ContentSignals: &manifest.ContentSignals{AIInput: &yes},
		Endpoints:      &manifest.Endpoints{Converse: "/agent/converse"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Manifest: m, Document: doc})
	if err != nil {
		t.Fatal(err)
	}
	for path, negotiated := range map[string]bool{
		"/agent/converse/status/q-1": false,
		"/agent/converse":            true, // a GET there is the gateway's 405 otherwise; §3.4 holds
		"/agent/page":                true,
	} {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Accept", "application/agent+json, application/json")
		w := httptest.NewRecorder()
		lw, answered := h.Serve(w, r, path)
		if answered != negotiated {
			t.Errorf("GET %s with Accept application/agent+json: answered %v (status %d), want %v", path, answered, w.Code, negotiated)
		}
		if lw != nil {
			lw.Release()
		}
	}
}
