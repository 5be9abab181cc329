package markdown

import (
	"strings"
	"unicode/utf8"
)

// Icon fonts (Font Awesome 4, IcoMoon, Fontello, a theme's own) draw
// their glyphs at code points of Unicode's Private Use Areas, which mean
// nothing without the font: "<i class="fa">&#xf095;</i> 0117 496 0123"
// reached an agent as "*\uf095* 0117 496 0123", and a glyph alone as a
// paragraph of one unreadable character. Strip drops them from every
// text node, so neither Markdown for agents nor the concierge sees them.

// privateUse reports whether s may hold a private-use character: it has
// a byte that starts one (U+E000–U+F8FF begin with 0xEE or 0xEF, planes
// 15 and 16 with 0xF3 or 0xF4). Most text has none, and this is all it
// costs.
func privateUse(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0xEE && (c <= 0xEF || c == 0xF3 || c == 0xF4) {
			return true
		}
	}
	return false
}

// withoutPrivateUse is s less its private-use characters.
func withoutPrivateUse(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !isPrivateUse(r) {
			if b.Cap() == 0 {
				b.Grow(len(s))
			}
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func isPrivateUse(r rune) bool {
	return r >= 0xE000 && r <= 0xF8FF || r >= 0xF0000 && r <= 0x10FFFD
}
