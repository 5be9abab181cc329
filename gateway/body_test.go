package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The request body buffer starts empty and grows to the calls it serves:
// every size around the cap, with and without Content-Length, one after
// another through the same pool, reaches the concierge whole or is
// refused as too large; nothing of an earlier call shows in a later one.
func TestBodyAroundTheCap(t *testing.T) {
	g := testGateway(t, testOptions{})
	call := func(n int, chunked bool) (int, string, string) {
		// JSON's own whitespace pads it: a query is at most 4096 characters.
		head := `{"capability":"site_info","query":"hi"`
		body := head + strings.Repeat(" ", max(0, n-len(head)-1)) + "}"
		var got string
		next := nextFunc(func(w http.ResponseWriter, r *http.Request) error {
			b, _ := io.ReadAll(r.Body)
			got = string(b)
			return answering(`{"status":"success","response":{"answer":"x"}}`)(w, r)
		})
		var rd io.Reader = strings.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd) // no length: read as it comes
		}
		r := httptest.NewRequest(http.MethodPost, "/agent/converse", rd)
		if chunked {
			r.ContentLength = -1
		}
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		_ = g.ServeHTTP(w, r, ConverseRoute, next)
		if w.Code == http.StatusOK && got != body {
			t.Fatalf("%d bytes (chunked %v): the concierge got %d bytes, not the body", len(body), chunked, len(got))
		}
		return w.Code, body, w.Body.String()
	}
	for _, chunked := range []bool{false, true} {
		for _, n := range []int{40, 900, 1023, 1024, 1025, 5000, DefaultBodyLimit - 1, DefaultBodyLimit, DefaultBodyLimit + 1, 100, 20000, 60} {
			code, body, msg := call(n, chunked)
			want := http.StatusOK
			if len(body) > DefaultBodyLimit {
				want = http.StatusRequestEntityTooLarge
			}
			if code != want {
				t.Errorf("%d bytes (chunked %v): status %d, want %d: %s", len(body), chunked, code, want, msg)
			}
		}
	}
}

// Caddy's request_body max_size, below the gateway's own cap, wraps the
// body in http.MaxBytesReader: a chunked body over it is too large (413
// request_too_large naming that size), as the MCP and OpenAPI doors answer
// it, not a body that "could not be read" (400).
func TestBodyOverRequestBodyMaxSize(t *testing.T) {
	g := testGateway(t, testOptions{})
	body := `{"capability":"site_info","query":"` + strings.Repeat("x", 3000) + `"}`
	r := httptest.NewRequest(http.MethodPost, "/agent/converse", io.MultiReader(strings.NewReader(body)))
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	r.Body = http.MaxBytesReader(w, r.Body, 1000)
	next := nextFunc(func(w http.ResponseWriter, r *http.Request) error {
		t.Fatal("a body over request_body's max_size reached the concierge")
		return nil
	})
	_ = g.ServeHTTP(w, r, ConverseRoute, next)
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), `"request_too_large"`) || !strings.Contains(w.Body.String(), "1000 bytes") {
		t.Fatalf("status %d: %s; want 413 request_too_large naming 1000 bytes", w.Code, w.Body.String())
	}
}
