package mcp

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
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
	`{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, `{"jsonrpc":"2.0","id":-0,"method":"ping"}`,
	`[{"jsonrpc":"2.0","id":9007199254740991,"method":"ping"},{"jsonrpc":"2.0","id":-9007199254740992,"result":{}}]`,
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
			if m.id != nil && m.id[0] != '"' {
				// An id echoed as a number is an integer every client
				// decodes back exactly.
				n, err := strconv.ParseInt(string(m.id), 10, 64)
				if err != nil || n > maxID || n < -maxID {
					t.Fatalf("id %s accepted from %q: not an integer within ±(2^53-1)", m.id, body)
				}
			}
			if m.notRequest && (m.err == nil || m.id != nil) {
				t.Fatalf("a refused notification or response with err %v and id %q from %q", m.err, m.id, body)
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

// FuzzServeHTTP drives the whole server with arbitrary bodies in front of
// the test site: every answer is a 202 without a body or a JSON-RPC
// response (one object or, for a batch, an array of them) in valid JSON,
// and any converse request the concierge receives passed the real
// gateway.
func FuzzServeHTTP(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	m := sitetest.Manifest(f)
	site := sitetest.New(f, m)
	srv, err := New(m, Options{MaxRequestBytes: 8 << 10, Gateway: site.Gateway, Limits: site.Limits, Content: site.Content})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		before := len(site.Received())
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", sitetest.Bearer)
		w := httptest.NewRecorder()
		if err := srv.ServeHTTP(w, r, site); err != nil {
			t.Fatal(err)
		}
		checkAnswer(t, w, body)
		for _, rec := range site.Received()[before:] {
			if rec.Method == http.MethodPost && rec.Parsed == nil {
				t.Fatalf("the gateway forwarded a body its rules refuse: %s (from %q)", rec.Body, body)
			}
		}
	})
}

// checkAnswer asserts what every answer of the endpoint is: a 202 without
// a body, or a known status with a JSON-RPC answer in valid JSON.
func checkAnswer(t *testing.T, w *httptest.ResponseRecorder, input string) {
	t.Helper()
	switch w.Code {
	case http.StatusAccepted:
		if w.Body.Len() != 0 {
			t.Fatalf("202 with a body for %q", input)
		}
		return
	case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge:
	default:
		t.Fatalf("status %d for %q", w.Code, input)
	}
	out := w.Body.Bytes()
	if !json.Valid(out) {
		t.Fatalf("invalid JSON answer %q for %q", out, input)
	}
	if out[0] == '[' {
		var list []map[string]json.RawMessage
		if json.Unmarshal(out, &list) != nil || len(list) == 0 {
			t.Fatalf("bad batch answer %q", out)
		}
		return
	}
	var one map[string]json.RawMessage
	if json.Unmarshal(out, &one) != nil || (one["result"] == nil) == (one["error"] == nil) {
		t.Fatalf("not one JSON-RPC response: %q", out)
	}
	if w.Code != http.StatusOK && one["error"] == nil {
		t.Fatalf("HTTP %d with a result: %q", w.Code, out)
	}
}

// FuzzRequestHeaders fuzzes the 2026-07-28 request metadata: the
// MCP-Protocol-Version, Mcp-Method and Mcp-Name headers (the Base64
// sentinel form included) against a body. The server never panics, every
// answer is a JSON-RPC one, a request whose headers do not match its body
// never reaches the concierge, and one that does is answered 200.
func FuzzRequestHeaders(f *testing.F) {
	f.Add("2026-07-28", "tools/call", "site_info", "site_info", "tools/call")
	f.Add("2026-07-28", "tools/call", "=?base64?c2l0ZV9pbmZv?=", "site_info", "tools/call")
	f.Add("2026-07-28", "tools/call", "=?base64?!!?=", "site_info", "tools/call")
	f.Add("2026-07-28", "tools/list", "", "", "tools/list")
	f.Add("2026-07-28", "Tools/List", "", "", "tools/list")
	f.Add("2025-06-18", "", "", "", "tools/list")
	f.Add("", "", "", "", "ping")
	f.Add("2027-01-01", "tools/list", "", "", "tools/list")
	f.Add("2026-07-28", "resources/read", "/llms.txt", "/llms.txt", "resources/read")
	f.Add("2026-07-28", "tools/call", "site_info\u0000", "site_info", "tools/call")
	m := sitetest.Manifest(f)
	site := sitetest.New(f, m)
	srv, err := New(m, Options{Gateway: site.Gateway, Limits: site.Limits, Content: site.Content})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, version, method, name, bodyName, bodyMethod string) {
		params := `"arguments":{"query":"hi"},"name":` + string(mustJSON(bodyName))
		if bodyMethod == "resources/read" {
			params = `"uri":` + string(mustJSON(bodyName))
		}
		body := `{"jsonrpc":"2.0","id":1,"method":` + string(mustJSON(bodyMethod)) + `,"params":{` + params +
			`,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		// The transport drops what net/http would not send.
		for k, v := range map[string]string{"Mcp-Protocol-Version": version, "Mcp-Method": method, "Mcp-Name": name} {
			if v != "" && !strings.ContainsAny(v, "\r\n\x00") {
				r.Header.Set(k, v)
			}
		}
		before := len(site.Received())
		w := httptest.NewRecorder()
		if err := srv.ServeHTTP(w, r, site); err != nil {
			t.Fatal(err)
		}
		checkAnswer(t, w, body)
		reached := len(site.Received()) > before
		decodedName, okName := decodeSentinel(r.Header.Get("Mcp-Name"))
		matches := r.Header.Get("Mcp-Protocol-Version") == "2026-07-28" && r.Header.Get("Mcp-Method") == bodyMethod &&
			okName && decodedName == bodyName && printableASCII(r.Header.Get("Mcp-Name"))
		if reached && !matches && r.Header.Get("Mcp-Protocol-Version") == "2026-07-28" {
			t.Fatalf("a request whose headers do not match its body reached the concierge: %v %s", r.Header, body)
		}
		if matches && bodyMethod == "tools/call" && bodyName == "site_info" && w.Code != 200 {
			t.Fatalf("a matching call was refused: %d %s", w.Code, w.Body)
		}
	})
}

func mustJSON(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c > 0x7e {
			return false
		}
	}
	return true
}

// FuzzAccept: sseOnly, which scans Accept in place, agrees with a plain
// split-and-compare reading of the header, and a header sent as one line
// or as several (RFC 9110 § 5.3: the same list) gets the same answer.
func FuzzAccept(f *testing.F) {
	for _, s := range []string{"text/event-stream", "application/json, text/event-stream", "text/*;q=0, application/json;q=0.000",
		"TEXT/EVENT-STREAM ;Q=0.", "*/*", ",,;;=", "text/event-stream;q=0.001", "application/*; q = 0 ", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		sse, js := false, false
		for _, part := range strings.Split(accept, ",") {
			fields := strings.Split(part, ";")
			zero := false
			for _, p := range fields[1:] {
				k, q, ok := strings.Cut(p, "=")
				if ok && strings.ToLower(strings.TrimSpace(k)) == "q" {
					q = strings.TrimSpace(q)
					zero = q == "0" || strings.HasPrefix(q, "0.") && strings.Trim(q[2:], "0") == ""
					break
				}
			}
			if zero {
				continue
			}
			mt := strings.TrimSpace(fields[0])
			for _, r := range []string{"text/event-stream", "text/*"} {
				sse = sse || strings.EqualFold(mt, r)
			}
			for _, r := range []string{"application/json", "application/*", "*/*"} {
				js = js || strings.EqualFold(mt, r)
			}
		}
		want := sse && !js
		if got := sseOnly([]string{accept}); got != want {
			t.Fatalf("sseOnly(%q) = %v, want %v", accept, got, want)
		}
		if got := sseOnly(strings.Split(accept, ",")); got != want {
			t.Fatalf("sseOnly of %q as separate lines = %v, want %v", accept, got, want)
		}
	})
}
