package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The gateway checks the body's bytes as they came, uncoded: a
// Content-Encoding the agent sent with them must not reach the concierge,
// which would decode (gunzip, brotli ...) other bytes than those checked,
// or fail on the checked ones. A poll forwards no body, so no coding.
func TestForwardedBodyCarriesNoContentEncoding(t *testing.T) {
	g := testGateway(t, testOptions{limits: true})
	for _, coding := range []string{"gzip", "br", "identity", "Identity, identity"} {
		var seen http.Header
		var body []byte
		next := nextFunc(func(w http.ResponseWriter, r *http.Request) error {
			seen = r.Header.Clone()
			body, _ = io.ReadAll(r.Body)
			return answering(`{"status":"success","response":{"answer":"x"}}`)(w, r)
		})
		const sent = `{"capability":"site_info","query":"hi"}`
		if w := call(g, sent, next, "Content-Encoding", coding); w.Code != http.StatusOK {
			t.Fatalf("Content-Encoding %s: %d %s", coding, w.Code, w.Body)
		}
		if v, ok := seen["Content-Encoding"]; ok || string(body) != sent {
			t.Errorf("Content-Encoding %s: the concierge got Content-Encoding %q with the body %s", coding, v, body)
		}

		poll := httptest.NewRequest(http.MethodGet, "/agent/converse/status/job1", nil)
		poll.Header.Set("Authorization", "Bearer "+testKey)
		poll.Header.Set("Content-Encoding", coding)
		var polled http.Header
		_ = g.ServeHTTP(httptest.NewRecorder(), poll, StatusRoute, nextFunc(func(w http.ResponseWriter, r *http.Request) error {
			polled = r.Header.Clone()
			return nil
		}))
		if v, ok := polled["Content-Encoding"]; ok {
			t.Errorf("poll: the concierge got Content-Encoding %q without a body", v)
		}
	}
}

// A coded body (gzip, br …) is refused for what it is, 415 with the
// codings a request may use (RFC 9110 §12.5.3), not as JSON that is "not
// valid UTF-8"; the concierge never sees it. (A body that is JSON as it
// came passes whatever its label: above.)
func TestCodedBodyIsRefused(t *testing.T) {
	g := testGateway(t, testOptions{limits: true})
	for _, coding := range []string{"gzip", "br", "identity, gzip", "deflate"} {
		reached := false
		next := nextFunc(func(w http.ResponseWriter, r *http.Request) error {
			reached = true
			return answering(`{"status":"success","response":{"answer":"x"}}`)(w, r)
		})
		w := call(g, "\x1f\x8b\x08\x00 coded bytes", next, "Content-Encoding", coding)
		if w.Code != http.StatusUnsupportedMediaType || reached {
			t.Errorf("Content-Encoding %s: %d (concierge reached: %v) %s, want 415", coding, w.Code, reached, w.Body)
			continue
		}
		if v := w.Header().Get("Accept-Encoding"); v != "identity" {
			t.Errorf("Content-Encoding %s: Accept-Encoding %q, want identity", coding, v)
		}
		if !strings.Contains(w.Body.String(), `"invalid_request"`) || !strings.Contains(w.Body.String(), "Content-Encoding") {
			t.Errorf("Content-Encoding %s: body %s, want invalid_request naming Content-Encoding", coding, w.Body)
		}
	}
}

// A JSON body labelled gzip that is refused for its fields gets that
// refusal, not the coding's.
func TestMislabelledJSONKeepsItsRefusal(t *testing.T) {
	g := testGateway(t, testOptions{limits: true})
	w := call(g, `{"capability":"nope","query":"hi"}`, answering(`{}`), "Content-Encoding", "gzip")
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"unknown_capability"`) {
		t.Errorf("%d %s, want 400 unknown_capability", w.Code, w.Body)
	}
}
