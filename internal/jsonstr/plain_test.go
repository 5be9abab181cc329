package jsonstr

import (
	"math/bits"
	"strings"
	"testing"
)

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

// Plain stops where a byte-by-byte look stops, from any offset, on
// strings and byte slices alike.
func FuzzPlain(f *testing.F) {
	f.Add("The showroom is open 9 to 5, \"every\" day\\n", 0)
	f.Add(strings.Repeat("é", 9)+"\x1f", 3)
	f.Fuzz(func(t *testing.T, s string, i int) {
		if i < 0 || i > len(s) {
			return
		}
		want := i
		for want < len(s) && s[want] != '"' && s[want] != '\\' && s[want] >= 0x20 {
			want++
		}
		if got := Plain(s, i); got != want {
			t.Fatalf("Plain(%q, %d) = %d, want %d", s, i, got, want)
		}
		if got := Plain([]byte(s), i); got != want {
			t.Fatalf("Plain([]byte(%q), %d) = %d, want %d", s, i, got, want)
		}
	})
}

func BenchmarkPlain(b *testing.B) {
	s := "The workshop is open Tuesday to Saturday, 10 to 6; ask for a tour.\""
	bs := []byte(s)
	b.Run("string", func(b *testing.B) {
		for b.Loop() {
			_ = Plain(s, 0)
		}
	})
	b.Run("bytes", func(b *testing.B) {
		for b.Loop() {
			_ = Plain(bs, 0)
		}
	})
	b.Run("byte table", func(b *testing.B) {
		for b.Loop() {
			i := 0
			for i < len(s) && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20 {
				i++
			}
			_ = i
		}
	})
}
