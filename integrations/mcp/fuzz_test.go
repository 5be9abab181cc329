package mcp

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/integrations/internal/sitetest"
)

var fuzzSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05"}}`,
	`{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"inventory_check","arguments":{"query":"q","sku":"s","qty":2},"_meta":{"auth":"Bearer x"}}}`,
	`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"error:rate_limited"}}}`,
	`{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"/llms.txt"}}`,
	`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
	`[{"jsonrpc":"2.0","id":1,"method":"ping"},7,{"jsonrpc":"2.0","id":2,"result":{}}]`,
	`{"jsonrpc":"2.0","id":null,"method":"ping"}`,
	`{"jsonrpc":"2.0","id":1e400,"method":"ping","params":null}`,
	`{"jsonrpc":"2.0","id":"\ud800","method":"tools/list"}`,
	`[]`, `{`, `"x"`, ``, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"\u0000<>&\u2028"}}}`,
}

// FuzzDecodeBody: the envelope decoder never panics, and every message it
// returns is answerable: its error response (with its id) is valid JSON.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, batch, err := decodeBody(body)
		if err != nil {
			if !json.Valid(appendError(nil, nil, err)) {
				t.Fatalf("invalid error response for %q", body)
			}
			return
		}
		if len(msgs) == 0 || (!batch && len(msgs) != 1) || len(msgs) > maxBatch {
			t.Fatalf("%d messages (batch %v) from %q", len(msgs), batch, body)
		}
		for _, m := range msgs {
			if m.err == nil && !m.response && m.method == "" {
				t.Fatalf("a request without a method from %q", body)
			}
			if m.id != nil && !json.Valid(m.id) {
				t.Fatalf("id %q is not JSON", m.id)
			}
			if !json.Valid(appendError(nil, m.id, &rpcError{code: 1, message: m.method})) {
				t.Fatalf("unanswerable message from %q", body)
			}
			if m.id != nil && !json.Valid(appendResult(nil, m.id, emptyResult)) {
				t.Fatalf("unanswerable id %q", m.id)
			}
		}
	})
}

// FuzzServeHTTP drives the whole server with arbitrary bodies against the
// fake site: every answer is a 202 without a body or a JSON-RPC response
// (one object or, for a batch, an array of them) in valid JSON, and any
// internal request the site receives passed the real converse validator
// or is a GET of a resource.
func FuzzServeHTTP(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	m := sitetest.Manifest(f)
	srv, err := New(m, Options{MaxRequestBytes: 8 << 10})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		site := sitetest.New(t, m)
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", sitetest.Bearer)
		w := httptest.NewRecorder()
		if err := srv.ServeHTTP(w, r, site.Dispatch); err != nil {
			t.Fatal(err)
		}
		switch w.Code {
		case http.StatusAccepted:
			if w.Body.Len() != 0 {
				t.Fatalf("202 with a body for %q", body)
			}
			return
		case http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
		out := w.Body.Bytes()
		if !json.Valid(out) {
			t.Fatalf("invalid JSON answer %q for %q", out, body)
		}
		if out[0] == '[' {
			var list []map[string]json.RawMessage
			if json.Unmarshal(out, &list) != nil || len(list) == 0 {
				t.Fatalf("bad batch answer %q", out)
			}
		}
		for _, rec := range site.Received() {
			if rec.Method == http.MethodPost && rec.Parsed == nil {
				t.Fatalf("the converse validator refused our body %s (from %q)", rec.Body, body)
			}
		}
	})
}
