package gateway

import (
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
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
		"application/json":                            http.StatusOK,
		"application/json; charset=utf-8":             http.StatusOK,
		`application/json; Charset="UTF-8"`:           http.StatusOK,
		"application/json;charset=utf8":               http.StatusOK,
		"application/json; charset=shift_jis":         http.StatusUnsupportedMediaType,
		"application/json; charset=iso-8859-1":        http.StatusUnsupportedMediaType,
		"application/json; x=1; charset=utf-16":       http.StatusUnsupportedMediaType,
		"application/json; charset*=UTF-8''shift_jis": http.StatusUnsupportedMediaType, // RFC 2231
		"application/json; charset*0=shift_jis":       http.StatusUnsupportedMediaType,
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

// FuzzBodyLabels holds the gateway's reading of a converse call's
// Content-Type and Content-Encoding to mime.ParseMediaType: whatever a
// concierge that parses the field by RFC 2045/2231 reads as a charset
// other than UTF-8, or as a type other than JSON, the gateway refuses,
// and a body whose Content-Encoding names a coding is never taken as
// identity.
func FuzzBodyLabels(f *testing.F) {
	for _, s := range []string{"application/json", "application/json; charset=utf-8", `application/json; Charset="UTF-8"`,
		"application/json;charset=utf8", "application/json; charset=shift_jis", "application/json; x=1; charset=utf-16",
		`application/json; x="a;charset=sjis"`, "application/agent+json; charset=UTF-8", "text/plain", "application/json; charset",
		"application/json; charset*=UTF-8''utf-8",
		"application/json; charset*=UTF-8''shift_jis", "application/json; charset*0=shift_jis"} {
		f.Add(s, "identity")
	}
	f.Add("application/json", "gzip, identity")
	f.Add("application/json", " ,IDENTITY")
	f.Fuzz(func(t *testing.T, ctype, coding string) {
		admitted := httpx.IsJSON(ctype) && utf8Charset(ctype)
		if mt, params, err := mime.ParseMediaType(ctype); err == nil && admitted {
			if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
				t.Fatalf("%q admitted: ParseMediaType reads type %q", ctype, mt)
			}
			if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
				t.Fatalf("%q admitted: ParseMediaType reads charset %q", ctype, cs)
			}
		}
		if identityCoding([]string{coding}) {
			for _, c := range strings.Split(coding, ",") {
				if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
					t.Fatalf("%q taken as identity, but names %q", coding, c)
				}
			}
		}
	})
}
