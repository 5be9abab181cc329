package markdown

import "unicode"

// Tokens estimates how many tokens an LLM tokenizer makes of text, with
// no tokenizer at hand: a token per 4 bytes of ASCII (the usual rule of
// thumb for English with BPE tokenizers), one per Han, Hiragana, Katakana
// or Hangul character (those are about a token each), and one per 2 other
// non-ASCII characters (accented Latin, Cyrillic, Greek ... split into
// pieces of a few characters). It errs high rather than low for budgets.
func Tokens[T ~string | ~[]byte](text T) int {
	ascii, wide, other := 0, 0, 0
	for i := 0; i < len(text); {
		c := text[i]
		if c < 0x80 {
			ascii++
			i++
			continue
		}
		// Decode by hand: utf8.DecodeRune would need one signature per type.
		var r rune
		n := 1 // a stray byte counts as one character
		switch {
		case c >= 0xF8:
		case c >= 0xF0:
			n, r = 4, rune(c&0x07)
		case c >= 0xE0:
			n, r = 3, rune(c&0x0F)
		case c >= 0xC0:
			n, r = 2, rune(c&0x1F)
		}
		for j := 1; j < n; j++ {
			if i+j >= len(text) || text[i+j]&0xC0 != 0x80 {
				n, r = 1, 0
				break
			}
			r = r<<6 | rune(text[i+j]&0x3F)
		}
		i += n
		if n >= 3 && unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul) {
			wide++
		} else {
			other++
		}
	}
	return (ascii+3)/4 + wide + (other+1)/2
}
