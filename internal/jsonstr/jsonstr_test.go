package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// encodingJSON is the reference: encoding/json's default (HTML-safe) string
// encoding.
func encodingJSON(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	_ = enc.Encode(s)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "tab\tnl\ncr\r", "\x00\x1f\x7f", "<script>&amp;</script>",
		"line\u2028sep\u2029", "héllo wörld ✓ 日本", "bad \xff utf8 \xc3", "emoji 😀"} {
		if got, want := AppendString(nil, s), encodingJSON(s); !bytes.Equal(got, want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

func TestAppendStrings(t *testing.T) {
	if got := string(AppendStrings(nil, []string{"a", "b<"})); got != `["a","b\u003c"]` {
		t.Errorf("got %s", got)
	}
	if got := string(AppendStrings(nil, nil)); got != `[]` {
		t.Errorf("got %s", got)
	}
}

func TestAppendStringAllocatesNothing(t *testing.T) {
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { AppendString(buf[:0], "hello <world> \u2028 \xff") }); n != 0 {
		t.Errorf("%.0f allocations", n)
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("hello")
	f.Add("\xff\u2028<>&\"\\\n")
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendString(nil, s)
		if !json.Valid(got) {
			t.Fatalf("invalid JSON %s", got)
		}
		if utf8.ValidString(s) {
			if want := encodingJSON(s); !bytes.Equal(got, want) {
				t.Fatalf("%q: got %s, want %s", s, got, want)
			}
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil || (utf8.ValidString(s) && back != s) {
			t.Fatalf("%q round trip: %q %v", s, back, err)
		}
	})
}
