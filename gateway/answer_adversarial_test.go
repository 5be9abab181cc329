package gateway

import (
	"encoding/json"
	"strings"
	"testing"
)

// Adversarial inputs for inspectAnswer against encoding/json: nesting at
// encoding/json's depth limit (at the top level, in meta, in meta's
// members), duplicate and escaped meta keys.
func TestInspectAnswerAdversarial(t *testing.T) {
	var cases []string
	for _, n := range []int{9997, 9998, 9999, 10000, 10001} {
		cases = append(cases,
			`{"a":`+strings.Repeat("[", n)+strings.Repeat("]", n)+`}`,
			`{"meta":{"x":`+strings.Repeat("[", n)+strings.Repeat("]", n)+`}}`,
			`{"meta":`+strings.Repeat(`{"a":`, n)+`1`+strings.Repeat("}", n)+`}`,
			`{"meta":{"tokens_used":3,"x":`+strings.Repeat("[", n)+strings.Repeat("]", n)+`}}`,
		)
	}
	cases = append(cases,
		`{"meta":{"tokens_used":5},"m\u0065ta":{"tokens_used":7}}`,
		`{"m\u0065ta":{"tokens_used":5},"meta":{}}`,
		`{"meta":{"tokens_used":5},"meta":null}`,
		`{"meta":{"tokens_used":5,"content_signals":1},"meta":{"tokens_used":2}}`,
		`{"meta":{"tokens_used":5,"tokens_\u0075sed":"x"}}`,
		`{"meta":{"tokens_used":5,"tokens_used":9}}`,
		`{"meta":{"content_signals":1},"meta":{"content_signal\u0073":null}}`,
		`{"meta":{"tokens_used":5},"meta":{"tokens_used":5,}}`,
		`{"meta":{"tokens_used":5} , "meta" : { "tokens_used" : 6 } }`,
		`{"meta":{"\ud800":1,"tokens_used":4}}`,
		`{"meta":{"tokens_used\u0000":4}}`,
		`{"status":"success","meta":{"tokens_used":1},"status":"s\u0075ccess"}`,
		`{"meta":{"tokens_used":1}}x`,
		`{"meta":{"tokens_used":1}`,
		`{"meta":{"tokens_used":1}}}`,
		`{"meta":{"tokens_used":01}}`,
		`{"meta":{"tokens_used":1},}`,
		`{"meta":{"tokens_used":1e400}}`,
	)
	for _, s := range cases {
		body := []byte(s)
		info, ok := inspectAnswer(body)
		var top map[string]json.RawMessage
		want := json.Valid(body) && json.Unmarshal(body, &top) == nil && top != nil
		short := s
		if len(short) > 80 {
			short = short[:40] + "…" + short[len(short)-40:]
		}
		if ok != want {
			t.Errorf("inspectAnswer(%q) ok = %v; encoding/json: %v", short, ok, want)
			continue
		}
		if !ok {
			continue
		}
		var meta map[string]json.RawMessage
		if json.Unmarshal(top["meta"], &meta) == nil && meta != nil {
			_, signals := meta["content_signals"]
			n := countOracle(meta["tokens_used"])
			if info.hasSignals != signals || info.tokens != n {
				t.Errorf("%q: signals %v tokens %d; encoding/json reads %v, %d", short, info.hasSignals, info.tokens, signals, n)
			}
		}
		if info.canSplice() {
			// The splice offsets must be where encoding/json sees them.
			if body[info.objClose] != '}' {
				t.Errorf("%q: objClose %d is %q", short, info.objClose, body[info.objClose])
			}
			if info.metaOpen >= 0 && body[info.metaOpen-1] != '{' {
				t.Errorf("%q: metaOpen %d after %q", short, info.metaOpen, body[info.metaOpen-1])
			}
		}
	}
}
