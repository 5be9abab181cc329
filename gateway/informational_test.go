package gateway

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// caddy1xx is Caddy's reverse_proxy relaying an upstream's 1xx (its
// httptrace Got1xxResponse hook, caddy v2.11.9 reverseproxy.go:1082): it
// snapshots the writer's header, writes the 1xx with the upstream's
// fields, then puts the snapshot back. 100 Continue (an agent's
// `Expect: 100-continue`, forwarded) and 103 Early Hints both take it.
func caddy1xx(code int, final nextFunc) nextFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		h := w.Header()
		own := h.Clone()
		h["Link"] = []string{"</a.css>; rel=preload"}
		w.WriteHeader(code)
		clear(h)
		maps.Copy(h, own)
		return final(w, r)
	}
}

// finalWriter keeps the header as net/http sends it: a 1xx goes out with
// the map of the moment; the final answer's header is the map at its
// WriteHeader (or first Write).
type finalWriter struct {
	h, sent http.Header
	code    int
}

func (f *finalWriter) Header() http.Header { return f.h }
func (f *finalWriter) WriteHeader(code int) {
	if f.code != 0 || code < 200 {
		return
	}
	f.code, f.sent = code, f.h.Clone()
}
func (f *finalWriter) Write(p []byte) (int, error) {
	f.WriteHeader(http.StatusOK)
	return len(p), nil
}

// A 1xx (a concierge's 103 Early Hints, or 100 Continue) goes out
// without the gateway's fields; the final answer after it has them.
// Caddy's proxy puts its header snapshot back after a 1xx, so fields
// restored at the 1xx were lost (review of fce8a49).
func TestOwnFieldsSurviveA1xx(t *testing.T) {
	g := testGateway(t, testOptions{limits: true, cors: true})
	for _, code := range []int{http.StatusContinue, http.StatusEarlyHints} {
		for _, route := range []Route{ConverseRoute, StatusRoute} {
			r := httptest.NewRequest(http.MethodPost, "/agent/converse", strings.NewReader(`{"capability":"site_info","query":"hi"}`))
			if route == StatusRoute {
				r = httptest.NewRequest(http.MethodGet, "/agent/converse/status/job1", nil)
				r.Header.Set("Authorization", "Bearer "+testKey) // a poll needs a credential (CheckPoll)
			}
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Origin", "https://agent.example")
			w := &finalWriter{h: http.Header{}}
			_ = g.ServeHTTP(w, r, route, caddy1xx(code, answering(`{"status":"success","response":{"answer":"x"}}`)))
			h := w.sent
			for _, k := range []string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "X-Ratelimit-Window", "Access-Control-Allow-Origin"} {
				if len(h[k]) != 1 {
					t.Errorf("route %v, after a %d: %s = %q on the %d answer, want the gateway's one value", route, code, k, h[k], w.code)
				}
			}
		}
	}
}
