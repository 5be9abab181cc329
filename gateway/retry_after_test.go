package gateway

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// Every 429 carries Retry-After (§11.1). A concierge that limits its own
// calls and answers the spec's JSON 429 without one gets it from its
// body's retry_after; the body reaches the agent unchanged.
func TestConcierge429GetsRetryAfter(t *testing.T) {
	long := `{"status":"error","code":"rate_limited","message":"` + strings.Repeat("x", retryBodyMax) + `","retry_after":30}`
	g := testGateway(t, testOptions{limits: true})
	for _, c := range []struct {
		name, method, body, retryAfter, encoding, want string
	}{
		{"retry_after", http.MethodPost, `{"status":"error","code":"rate_limited","message":"slow down","retry_after":47}`, "", "", "47"},
		{"fraction rounded up", http.MethodPost, `{"status":"error","code":"rate_limited","message":"m","retry_after":2.2}`, "", "", "3"},
		{"null: a new session helps", http.MethodPost, `{"status":"error","code":"rate_limited","message":"m","scope":"session_tokens","retry_after":null}`, "", "", "1"},
		{"absent", http.MethodPost, `{"status":"error","code":"rate_limited","message":"m"}`, "", "", "1"},
		{"negative", http.MethodPost, `{"status":"error","code":"rate_limited","message":"m","retry_after":-5}`, "", "", "1"},
		{"a string", http.MethodPost, `{"status":"error","code":"rate_limited","message":"m","retry_after":"soon"}`, "", "", "1"},
		{"not JSON", http.MethodPost, `slow down`, "", "", "1"},
		{"huge", http.MethodPost, `{"retry_after":1e300}`, "", "", "2147483647"},
		{"the concierge's own kept", http.MethodPost, `{"status":"error","code":"rate_limited","message":"m","retry_after":47}`, "9", "", "9"},
		{"too long to read", http.MethodPost, long, "", "", "1"},
		{"encoded", http.MethodPost, "\x1f\x8b not read", "", "gzip", "1"},
		{"poll", http.MethodGet, `{"status":"error","code":"rate_limited","message":"m","retry_after":12}`, "", "", "12"},
		{"HEAD poll", http.MethodHead, "", "", "", "1"},
	} {
		next := nextFunc(func(w http.ResponseWriter, r *http.Request) error {
			h := w.Header()
			h.Set("Content-Type", "application/json")
			h.Set("Content-Length", strconv.Itoa(len(c.body)))
			if c.retryAfter != "" {
				h.Set("Retry-After", c.retryAfter)
			}
			if c.encoding != "" {
				h.Set("Content-Encoding", c.encoding)
			}
			w.WriteHeader(http.StatusTooManyRequests)
			// In pieces, as a proxy copies a body.
			for b := c.body; b != ""; {
				n := min(len(b), 4096)
				if _, err := w.Write([]byte(b[:n])); err != nil {
					return err
				}
				b = b[n:]
			}
			return nil
		})
		var w *httptest.ResponseRecorder
		if c.method == http.MethodPost {
			w = call(g, `{"capability":"site_info","query":"hi"}`, next)
		} else {
			w = httptest.NewRecorder()
			r := httptest.NewRequest(c.method, "/agent/converse/status/job1", nil)
			r.Header.Set("Authorization", "Bearer "+testKey)
			_ = g.ServeHTTP(w, r, StatusRoute, next)
		}
		if w.Code != http.StatusTooManyRequests || w.Body.String() != c.body {
			t.Errorf("%s: %d %.80q, want the concierge's 429 unchanged", c.name, w.Code, w.Body)
		}
		if got := w.Header().Values("Retry-After"); len(got) != 1 || got[0] != c.want {
			t.Errorf("%s: Retry-After %q, want %q", c.name, got, c.want)
		}
		if c.method == http.MethodPost && w.Header().Get("X-RateLimit-Limit") == "" {
			t.Errorf("%s: no X-RateLimit-Limit: the gateway's own fields must stay on the 429", c.name)
		}
	}
}
