package gateway

import (
	"bytes"
	"encoding/json"
	"math/bits"
	"reflect"
	"strings"
	"testing"
)

var signals = []byte(`"content_signals":{"ai_input":true}`)

// withSignals is the spliced answer in one piece.
func (info answerInfo) withSignals(body, signals []byte) []byte {
	parts := info.spliceSignals(body, signals)
	return bytes.Join(parts[:], nil)
}

func TestInspectAnswer(t *testing.T) {
	tests := []struct {
		body        string
		ok          bool
		status, sid string
		tokens      int64
		hasSignals  bool
		spliced     string
	}{
		{`{"status":"success","session_id":"s1","response":{"answer":"x"},"meta":{"tokens_used":42}}`, true, "success", "s1", 42, false,
			`{"status":"success","session_id":"s1","response":{"answer":"x"},"meta":{"content_signals":{"ai_input":true},"tokens_used":42}}`},
		{`{"status":"success","response":{}}`, true, "success", "", 0, false,
			`{"status":"success","response":{},"meta":{"content_signals":{"ai_input":true}}}`},
		{`{"status":"success","meta":{}}`, true, "success", "", 0, false,
			`{"status":"success","meta":{"content_signals":{"ai_input":true}}}`},
		{`{}`, true, "", "", 0, false, `{"meta":{"content_signals":{"ai_input":true}}}`},
		{` { "meta" : { "content_signals" : {} , "tokens_used" : 7 } , "status" : "success" } `, true, "success", "", 7, true, ""},
		{`{"status":"success","session_id":null,"meta":null}`, true, "success", "", 0, false, ""},
		{`{"status":5,"meta":{"tokens_used":"many"}}`, true, "", "", 0, false, ""},
		{`{"meta":{"tokens_used":-3}}`, true, "", "", 0, false, ""},
		{`{"status":"success"`, false, "", "", 0, false, ""},
		{`[1,2]`, false, "", "", 0, false, ""},
		{``, false, "", "", 0, false, ""},
		{`{"a":1} {"b":2}`, false, "", "", 0, false, ""},
	}
	for _, tt := range tests {
		info, ok := inspectAnswer([]byte(tt.body))
		if ok != tt.ok {
			t.Errorf("%s: ok = %v", tt.body, ok)
			continue
		}
		if !ok {
			continue
		}
		if info.success != (tt.status == "success") || info.sessionID != tt.sid || info.tokens != tt.tokens || info.hasSignals != tt.hasSignals {
			t.Errorf("%s: got %+v", tt.body, info)
		}
		if tt.spliced == "" && tt.ok && info.canSplice() && !info.hasSignals && info.metaSeen && info.metaOpen < 0 {
			t.Errorf("%s: a non-object meta must not be spliced", tt.body)
		}
		if tt.spliced != "" {
			if got := string(info.withSignals([]byte(tt.body), signals)); got != tt.spliced {
				t.Errorf("%s: spliced\n got %s\nwant %s", tt.body, got, tt.spliced)
			}
		}
	}
}

// FuzzConciergeAnswer: concierge answers are untrusted input. Whatever the
// bytes, inspecting never panics; an answer it accepts comes out of the
// splice as valid JSON equal to the input plus meta.content_signals.
func FuzzConciergeAnswer(f *testing.F) {
	for _, s := range []string{`{"status":"success","meta":{"tokens_used":1}}`, `{}`, `{"meta":{}}`, `{"a":[{"meta":{}}],"meta":{"x":null}}`, `{"status":"success"`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		info, ok := inspectAnswer(body)
		if !ok || !info.canSplice() {
			return
		}
		var before map[string]any
		if err := json.Unmarshal(body, &before); err != nil {
			t.Fatalf("accepted a body encoding/json refuses: %v", err)
		}
		out := info.withSignals(body, signals)
		var after map[string]any
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("splice made invalid JSON: %v\n%s", err, out)
		}
		meta, _ := after["meta"].(map[string]any)
		if meta == nil || !reflect.DeepEqual(meta["content_signals"], map[string]any{"ai_input": true}) {
			t.Fatalf("no signals in meta: %s", out)
		}
		delete(meta, "content_signals")
		if m, _ := before["meta"].(map[string]any); m == nil && len(meta) == 0 {
			after["meta"] = before["meta"]
			if _, had := before["meta"]; !had {
				delete(after, "meta")
			}
		}
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("splice changed more than meta.content_signals:\n%s\n%s", body, out)
		}
	})
}

// FuzzInspectAnswerAgrees: the one-pass scan accepts exactly the bodies
// json.Valid accepts whose value is an object, and reads the same status,
// session_id, tokens_used and content_signals as encoding/json does (the
// last of duplicate keys wins in both).
func FuzzInspectAnswerAgrees(f *testing.F) {
	for _, s := range append([]string{`{"status":"success","session_id":"s\u00e9","meta":{"tokens_used":42,"content_signals":{}}}`,
		`{"status":"succ\u0065ss","meta":{"tokens_used":7}}`, ` {"meta":null,"status":"success"} `, `{"a":"` + strings.Repeat("x", 40) + `\"\\\n"}`,
		`{"status":"success","status":"failure"}`, `{"session_id":"a","session_id":5}`}, jsonCases...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		info, ok := inspectAnswer(body)
		var top map[string]json.RawMessage
		want := json.Valid(body) && json.Unmarshal(body, &top) == nil && top != nil
		if ok != want {
			t.Fatalf("inspectAnswer(%q) ok = %v; json.Valid and an object: %v", body, ok, want)
		}
		if !ok {
			return
		}
		var status, session string
		_ = json.Unmarshal(top["status"], &status)
		_ = json.Unmarshal(top["session_id"], &session)
		if info.success != (status == "success") || info.sessionID != session {
			t.Fatalf("%q: success %v, session %q; encoding/json reads status %q, session %q", body, info.success, info.sessionID, status, session)
		}
		var meta map[string]json.RawMessage
		if json.Unmarshal(top["meta"], &meta) == nil && meta != nil {
			_, signals := meta["content_signals"]
			var n int64
			if raw := meta["tokens_used"]; len(raw) > 0 && raw[0] >= '0' && raw[0] <= '9' && json.Unmarshal(raw, &n) == nil && len(raw) <= 18 && bytes.IndexAny(raw, ".eE") < 0 {
				// a plain non-negative integer
			} else {
				n = 0
			}
			if info.hasSignals != signals || info.tokens != n {
				t.Fatalf("%q: signals %v tokens %d; encoding/json reads %v, %d", body, info.hasSignals, info.tokens, signals, n)
			}
		}
	})
}

// special8 finds a quote, a backslash or a control byte exactly when a
// byte-by-byte look does, and its lowest mark is the first such byte.
func FuzzSpecial8(f *testing.F) {
	f.Add(uint64(0x2020202020202020))
	f.Add(uint64(0x7f80ff2122235b5d))
	f.Fuzz(func(t *testing.T, x uint64) {
		first := 8
		for k := 7; k >= 0; k-- {
			if c := byte(x >> (8 * k)); c == '"' || c == '\\' || c < 0x20 {
				first = k
			}
		}
		if got := bits.TrailingZeros64(special8(x)) >> 3; got != first {
			t.Fatalf("special8(%#016x) marks byte %d first, want %d", x, got, first)
		}
	})
}
