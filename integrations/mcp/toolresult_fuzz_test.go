package mcp

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/caddy-ahp/caddy-ahp/integrations/internal/bridge"
)

// FuzzToolResult: whatever the concierge answers (status and body, which
// the gateway passes on when it is JSON), the tools/call result is UTF-8
// JSON (RFC 8259 §8.1: an MCP client decodes the whole response as UTF-8,
// one stray byte fails it all); structuredContent, when set, is the
// answer as encoding/json reads it; and a success's first text block is
// its response.answer.
func FuzzToolResult(f *testing.F) {
	for _, s := range []string{
		`{"status":"success","session_id":"s","response":{"answer":"Open 9-5"},"meta":{"tokens_used":3}}`,
		`{"status":"clarification_needed","clarification":{"question":"Which?","options":["a","b"],"free_form":true},"session_id":"s"}`,
		`{"status":"accepted","session_id":"s","poll":"/agent/converse/status/s","eta_seconds":5}`,
		`{"status":"error","code":"rate_limited","message":"slow down"}`, `{"status":"pending","progress":"half"}`,
		`{"status":5}`, `{"status":"success","response":{"answer":7}}`, `<html>502</html>`,
		"\xff\xfe", `{"status":"success","response":{"answer":"\ud800"}}`,
	} {
		f.Add(uint16(200), []byte(s))
	}
	f.Add(uint16(429), []byte(`{"status":"error","code":"rate_limited","message":"m","retry_after":3}`))
	s := &Server{}
	f.Fuzz(func(t *testing.T, status uint16, body []byte) {
		code := int(status)
		if code < 200 || code > 599 {
			code = 200
		}
		rec := bridge.NewRecorder(1 << 20)
		defer rec.Release()
		rec.WriteHeader(code)
		_, _ = rec.Write(body)
		out, err := json.Marshal(s.toolResult(rec, nil, "site_info", "https://shop.example"))
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if !utf8.Valid(out) || !json.Valid(out) {
			t.Fatalf("%q: the result is not UTF-8 JSON: %q", body, out)
		}
		var res struct {
			Content           []struct{ Text string }
			StructuredContent json.RawMessage
			IsError           bool
		}
		if err := json.Unmarshal(out, &res); err != nil || len(res.Content) == 0 {
			t.Fatalf("%q: %v %s", body, err, out)
		}
		var ahp struct {
			Status   any
			Response struct{ Answer any }
		}
		if json.Valid(body) && json.Unmarshal(body, &ahp) == nil {
			if st, isString := ahp.Status.(string); !isString || st == "" {
				return // not an AHP body: a tool error of this door's own
			}
			var got, want any
			_ = json.Unmarshal(res.StructuredContent, &got)
			_ = json.Unmarshal(body, &want)
			if !jsonEqual(got, want) {
				t.Fatalf("%q: structuredContent %s", body, res.StructuredContent)
			}
			if a, isString := ahp.Response.Answer.(string); isString && ahp.Status == "success" && code < 400 && a != "" && res.Content[0].Text != a {
				t.Fatalf("%q: first text %q, answer %q", body, res.Content[0].Text, a)
			}
		}
	})
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
