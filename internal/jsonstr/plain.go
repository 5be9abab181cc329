package jsonstr

import "math/bits"

// Plain returns the offset of the first byte at or after i in s that a
// JSON string cannot hold as it is ('"', '\\' or a control character),
// or len(s). It is the inner loop of the module's JSON scanners (the
// gateway's answer check, converse's request parser), which every call
// runs over every string: strings in bodies are mostly plain text, so it
// looks at eight bytes at a time and goes straight to the first special
// one (measured with callgrind: a third of the byte-table loop's
// instructions on a typical request).
func Plain[T string | []byte](s T, i int) int {
	for ; len(s)-i >= 8; i += 8 {
		w := s[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		if m := special8(x); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(s) && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20 {
		i++
	}
	return i
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special8 marks the high bit of every byte of x (little-endian) that is
// '"', '\\' or below 0x20 (the classic "has zero byte" and "has byte less
// than" tests): bytes of 0x80 and above never match, and the lowest mark
// is exact (a borrow can only add marks above a real one).
func special8(x uint64) uint64 {
	q := x ^ (ones * '"')
	s := x ^ (ones * '\\')
	return ((x-ones*0x20)&^x | (q-ones)&^q | (s-ones)&^s) & highs
}
