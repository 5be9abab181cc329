package gateway

import (
	"encoding/json"
	"strings"
	"testing"
)

var jsonCases = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e+3`, `-12.0E-1`, `true`, `false`, `null`, ` {"a" : [1, "x", {"b": null}] } `,
	`{"s":"\u00e9\n\"\\\/\b\f\r\t"}`, "\"\xff\xfe\"", `{"status":"success","meta":{"tokens_used":42}}`,
	``, ` `, `{`, `}`, `[1,]`, `{"a":1,}`, `{"a"}`, `{"a":}`, `{a:1}`, `01`, `1.`, `.5`, `1e`, `1e+`, `-`, `+1`,
	`tru`, `nul`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"a\x01\"", `"abc`, `{"a":1}{`, `[1 2]`, `{"a":1 "b":2}`, `truefalse`,
	strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth),
	strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
	strings.Repeat(`{"a":`, maxJSONDepth) + "1" + strings.Repeat("}", maxJSONDepth),
	strings.Repeat(`{"a":`, maxJSONDepth+1) + "1" + strings.Repeat("}", maxJSONDepth+1),
}

func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range jsonCases {
		if got, want := validJSON([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("validJSON(%.60q) = %v, json.Valid says %v", s, got, want)
		}
	}
}

// FuzzValidJSON: validJSON is json.Valid, faster.
func FuzzValidJSON(f *testing.F) {
	for _, s := range jsonCases {
		if len(s) < 200 {
			f.Add([]byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	b.SetBytes(int64(len(conciergeAnswer)))
	for b.Loop() {
		if !validJSON(conciergeAnswer) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkValidJSONBaseline(b *testing.B) {
	b.SetBytes(int64(len(conciergeAnswer)))
	for b.Loop() {
		if !json.Valid(conciergeAnswer) {
			b.Fatal("invalid")
		}
	}
}
