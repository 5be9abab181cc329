package discovery

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/limiter"
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
