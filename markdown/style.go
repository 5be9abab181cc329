package markdown

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// hiddenStyle reports whether an inline style attribute hides its element
// from visitors: display:none, or visibility:hidden or collapse, as the
// cascade within the attribute resolves them (the last declaration wins,
// an !important one over those that are not). Text a visitor never sees
// must not reach an agent: it is the usual way to slip instructions to
// agents alone. Comments and escapes are undone first, as a browser
// would, so `display:/**/n\6f ne` hides too; the words in other
// properties' values ("content: 'display:none'") do not count.
func hiddenStyle(style string) bool {
	if strings.ContainsAny(style, `\/`) {
		style = unescapeCSS(style)
	}
	var display, visibility string
	var displayImportant, visibilityImportant bool
	for rest := style; rest != ""; {
		var decl string
		decl, rest = nextDeclaration(rest)
		name, value, ok := strings.Cut(decl, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		value, important := importance(strings.TrimSpace(value))
		switch {
		case strings.EqualFold(name, "display"):
			if important || !displayImportant {
				display, displayImportant = value, important
			}
		case strings.EqualFold(name, "visibility"):
			if important || !visibilityImportant {
				visibility, visibilityImportant = value, important
			}
		}
	}
	return strings.EqualFold(display, "none") ||
		strings.EqualFold(visibility, "hidden") || strings.EqualFold(visibility, "collapse")
}

// nextDeclaration splits off the declaration before the first ';' that is
// outside quotes and brackets (a url("a;b") is one value).
func nextDeclaration(s string) (decl, rest string) {
	var quote byte
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(' || c == '[' || c == '{':
			depth++
		case (c == ')' || c == ']' || c == '}') && depth > 0:
			depth--
		case c == ';' && depth == 0:
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// importance strips a trailing !important (any case, spaces allowed
// around the '!') from a declaration's value.
func importance(v string) (string, bool) {
	const word = "important"
	if len(v) < len(word)+1 || !strings.EqualFold(v[len(v)-len(word):], word) {
		return v, false
	}
	head := strings.TrimRight(v[:len(v)-len(word)], " \t\n\r\f")
	if !strings.HasSuffix(head, "!") {
		return v, false
	}
	return strings.TrimSpace(head[:len(head)-1]), true
}

// unescapeCSS removes comments (outside strings) and resolves backslash
// escapes (CSS Syntax §4.3.7): a hex code point of up to six digits and
// one optional white space after it, an escaped newline (nothing), or the
// character itself. An escaped character is never syntax: one that would
// be (`\;`, `\"`, `\!`, `\ `) becomes U+FFFD, which no name or keyword
// holds, so it can neither split a declaration nor open a string.
func unescapeCSS(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	var quote byte
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			j := i + 1
			for j < len(s) && j < i+7 && isHex(s[j]) {
				j++
			}
			var r rune
			if j == i+1 {
				if s[j] == '\n' {
					i = j + 1 // a line continuation inside a string
					continue
				}
				var size int
				r, size = utf8.DecodeRuneInString(s[j:])
				j += size
			} else {
				cp, _ := strconv.ParseUint(s[i+1:j], 16, 32)
				r = rune(cp)
				if cp == 0 || cp > utf8.MaxRune || (cp >= 0xD800 && cp <= 0xDFFF) {
					r = utf8.RuneError
				}
				if j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n') {
					j++
				}
			}
			if r < utf8.RuneSelf && !isNameByte(byte(r)) {
				r = utf8.RuneError
			}
			b.WriteRune(r)
			i = j
		case quote != 0:
			if c == quote {
				quote = 0
			}
			b.WriteByte(c)
			i++
		case c == '"' || c == '\'':
			quote = c
			b.WriteByte(c)
			i++
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return b.String() // an open comment runs to the end
			}
			i += 2 + end + 2
			b.WriteByte(' ') // a comment separates tokens: disp/**/lay is not display
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
