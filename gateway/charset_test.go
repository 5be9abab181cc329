package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The gateway checks a body as UTF-8 (RFC 8259 §8.1), so a call that
// declares another charset is refused, not forwarded under that label: a
// concierge that decodes by it (Spring's Jackson converter does) reads
// other text than was checked. In Shift_JIS, 0x81 and the byte after it
// are one character, so "Á\\u000a" (Á is C3 81), a printable agent name
// to the gateway, is a line feed to such a concierge.
func TestBodyInAnotherCharsetIsRefused(t *testing.T) {
	g := testGateway(t, testOptions{limits: true})
	const body = `{"capability":"site_info","query":"hi","context":{"requesting_agent":"Á\\u000a"}}`
	for ct, want := range map[string]int{
		"application/json":                      http.StatusOK,
		"application/json; charset=utf-8":       http.StatusOK,
		`application/json; Charset="UTF-8"`:     http.StatusOK,
		"application/json;charset=utf8":         http.StatusOK,
		"application/json; charset=shift_jis":   http.StatusUnsupportedMediaType,
		"application/json; charset=iso-8859-1":  http.StatusUnsupportedMediaType,
		"application/json; x=1; charset=utf-16": http.StatusUnsupportedMediaType,
	} {
		called := false
		next := nextFunc(func(w http.ResponseWriter, r *http.Request) error {
			called = true
			return answering(`{"status":"success","response":{"answer":"x"}}`)(w, r)
		})
		r := httptest.NewRequest(http.MethodPost, "/agent/converse", strings.NewReader(body))
		r.Header["Content-Type"] = []string{ct}
		w := httptest.NewRecorder()
		_ = g.ServeHTTP(w, r, ConverseRoute, next)
		if w.Code != want || called != (want == http.StatusOK) {
			t.Errorf("Content-Type %q: %d (concierge called %v), want %d: %s", ct, w.Code, called, want, w.Body)
		}
	}
}

// Content-Type is a singleton field: with two, the gateway would check one
// and a concierge might decode by the other (a Shift_JIS label after the
// JSON one).
func TestTwoContentTypesAreRefused(t *testing.T) {
	g := testGateway(t, testOptions{limits: true})
	for _, cts := range [][]string{
		{"application/json", "application/json; charset=shift_jis"},
		{"application/json", "application/json"},
	} {
		called := false
		next := nextFunc(func(w http.ResponseWriter, r *http.Request) error {
			called = true
			return answering(`{"status":"success","response":{"answer":"x"}}`)(w, r)
		})
		r := httptest.NewRequest(http.MethodPost, "/agent/converse", strings.NewReader(`{"capability":"site_info","query":"hi"}`))
		r.Header["Content-Type"] = cts
		w := httptest.NewRecorder()
		_ = g.ServeHTTP(w, r, ConverseRoute, next)
		if w.Code != http.StatusBadRequest || called || !strings.Contains(w.Body.String(), `"invalid_request"`) {
			t.Errorf("Content-Type %q: %d (concierge called %v) %s, want 400 invalid_request", cts, w.Code, called, w.Body)
		}
	}
}
