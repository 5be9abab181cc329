package htmlinject

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// Never inside a tag. Spliced into a tag, or into a quoted attribute value,
// the snippet's own quotes and '>' would end that value and that tag early,
// and whatever the page had in the rest of the value would become live
// markup: `<div title="…</body><img src=x onerror=…>">` is text until the
// notice goes before its "</body>". So the snippet goes only where a
// position p passes two tests of the bytes before it; both must say "maybe
// inside a tag" for p to be refused.
//
// The quick test, exact about tags whatever came before:
//
//	let g be the last '>' before p;
//	p may be inside a tag if an opener ('<' and a letter, '/', '!' or '?':
//	a tag, or a comment, see tagStates) starts after g, or, g being there,
//	if the last '"' or the last '\'' before g may open a value: it follows
//	a '=' and optional whitespace.
//
// If p lies inside a tag opened at t, either t is after g (an opener after
// g), or g lies inside that tag, and so inside one of its quoted values
// (everywhere else in a tag, '>' ends it); no quote of that kind lies
// between the value's opening quote and g, so the last one before g is
// that opening quote, which follows a '='. The quick test says "maybe" for
// a closing quote after a '=' too, as in a base64 nonce
// (`<script nonce="…=">…</script></body>`), so a "maybe" goes to
// the second test, which follows the tokenizer's tag, attribute and
// comment states (WHATWG HTML §13.2.5) over the lookBack bytes before p,
// from every state it could be in there (from the data state at the
// document's start): p is inside a tag if any of them ends in a tag state.
// The states converge within a tag or two, so a real page is judged
// exactly, and an attribute value longer than lookBack still counts: the
// state inside it was among those followed.
//
// Neither test follows raw text elements (script, style, textarea, title
// ...), as the rest of the package does not (see the trade-offs in the
// package comment); text in a script within lookBack bytes of p that looks
// like markup can sway the second test.
//
// The quick test needs the whole document before p, but the buffer keeps
// only its end: bytes dropped from the buffer are folded into a summary
// that answers the test's questions about them, so that the answer never
// depends on how the body was cut into Writes and Flushes. The buffer
// always keeps lookBack bytes before the window.

// summary answers the inside-a-tag test for the part of the document
// dropped from the buffer, so that the answer never depends on how the
// body was cut into Writes and Flushes.
type summary struct {
	gt            bool // the part holds a '>'
	openerAfterGT bool // a tag opener starts after its last '>' (or anywhere, without one)
	dqBeforeGT    bool // the last '"' before its last '>' may open a value
	sqBeforeGT    bool // the same for '\''
	dqLast        bool // its last '"' may open a value
	sqLast        bool // the same for '\''
	eqTail        bool // it ends with '=' and optional whitespace
}

// inTag reports whether position p of buf may lie inside a tag, the bytes
// before buf being summed up in sum, buf[0] being the document's byte at
// base, and lookBack bytes before p being in buf (unless base is 0).
func inTag(buf []byte, p int, sum *summary, base int64, lookBack int) bool {
	return quickInTag(buf, p, sum) && statesInTag(buf[max(0, p-lookBack):p], base == 0 && p <= lookBack)
}

// quickInTag is the quick test.
func quickInTag(buf []byte, p int, sum *summary) bool {
	g := lastIndexByte(buf[:p], '>')
	if hasOpener(buf, g+1, p) {
		return true
	}
	if g < 0 {
		return sum.openerAfterGT || sum.dqBeforeGT || sum.sqBeforeGT
	}
	return quoteOpens(buf, g, '"', sum.dqLast, sum) || quoteOpens(buf, g, '\'', sum.sqLast, sum)
}

// quoteOpens reports whether the last quote before buf[g] may open a value;
// without one in buf, the summary's last says.
func quoteOpens(buf []byte, g int, quote byte, last bool, sum *summary) bool {
	q := lastIndexByte(buf[:g], quote)
	if q < 0 {
		return last
	}
	return followsEquals(buf, q, sum)
}

// followsEquals reports whether '=' and optional whitespace come right
// before buf[q].
func followsEquals(buf []byte, q int, sum *summary) bool {
	i := q - 1
	for i >= 0 && isSpace(buf[i]) {
		i--
	}
	if i < 0 {
		return sum.eqTail
	}
	return buf[i] == '='
}

// hasOpener reports whether a tag or comment opener starts in buf[lo:hi]:
// '<' followed by an ASCII letter, '/', '!' or '?' (bytes after hi may
// complete it). Comments count because a bogus one ends at the first '>'
// (tagStates); the second test tells them from tags.
func hasOpener(buf []byte, lo, hi int) bool {
	for i := lo; i < hi; i++ {
		k := bytes.IndexByte(buf[i:hi], '<')
		if k < 0 {
			return false
		}
		i += k
		if i+1 < len(buf) {
			if c := buf[i+1]; isLetter(c) || c == '/' || c == '!' || c == '?' {
				return true
			}
		}
	}
	return false
}

// fold adds buf[:n], about to leave the buffer, to sum. The bytes after n
// are still in buf, so that an opener cut at n is seen whole.
func (sum *summary) fold(buf []byte, n int) {
	part := buf[:n]
	next := *sum
	if g := lastIndexByte(part, '>'); g >= 0 {
		next.gt = true
		next.openerAfterGT = hasOpener(buf, g+1, n)
		next.dqBeforeGT = quoteOpens(part, g, '"', sum.dqLast, sum)
		next.sqBeforeGT = quoteOpens(part, g, '\'', sum.sqLast, sum)
	} else {
		next.openerAfterGT = sum.openerAfterGT || hasOpener(buf, 0, n)
	}
	if q := lastIndexByte(part, '"'); q >= 0 {
		next.dqLast = followsEquals(part, q, sum)
	}
	if q := lastIndexByte(part, '\''); q >= 0 {
		next.sqLast = followsEquals(part, q, sum)
	}
	i := n - 1
	for i >= 0 && isSpace(part[i]) {
		i--
	}
	if i >= 0 {
		next.eqTail = part[i] == '='
	}
	*sum = next
}

// lastIndexByte is bytes.LastIndexByte, faster: the last 256 bytes (where
// a '"' or a '>' almost always is) are tested eight at a time, backward;
// then blocks from the end are searched forward with bytes.IndexByte, at
// memory speed, for the search for the last single quote of a page that has none
// goes through the whole buffer.
func lastIndexByte(b []byte, c byte) int {
	const (
		lo7 = 0x7f7f7f7f7f7f7f7f
		hi  = 0x8080808080808080
	)
	pattern := swarLo * uint64(c)
	i := len(b)
	for stop := max(0, len(b)-256); i-8 >= stop; i -= 8 {
		x := binary.LittleEndian.Uint64(b[i-8:i]) ^ pattern
		// The high bit of each byte of y is set where x is not zero
		// (exactly, no borrow between bytes).
		y := ((x&lo7 + lo7) | x) & hi
		if zeros := ^y & hi; zeros != 0 {
			return i - 8 + (63-bits.LeadingZeros64(zeros))>>3
		}
	}
	for stop := max(0, len(b)-256); i > stop; i-- {
		if b[i-1] == c {
			return i - 1
		}
	}
	const block = 4 << 10
	for hi := i; hi > 0; {
		lo := max(0, hi-block)
		if k := bytes.IndexByte(b[lo:hi], c); k >= 0 {
			last := lo + k
			for {
				k := bytes.IndexByte(b[last+1:hi], c)
				if k < 0 {
					return last
				}
				last += 1 + k
			}
		}
		hi = lo
	}
	return -1
}

// The tokenizer states the second test follows: data, tags and their
// attributes, comments, and bogus comments (which also stand for DOCTYPEs
// and CDATA sections: all end at the first '>'). Raw text is not followed.
const (
	stData          = iota
	stTagOpen       // '<'
	stEndTagOpen    // "</"
	stTagName       // "<a"
	stBeforeAttr    // "<a "
	stAttrName      // "<a b"
	stAfterAttrName // "<a b "
	stBeforeValue   // "<a b="
	stDQValue       // `<a b="`
	stSQValue       // "<a b='"
	stUnquoted      // "<a b=c"
	stAfterQuoted   // `<a b="c"`
	stSelfClosing   // "<a /"
	stBogusComment  // "<?", "</ ", "<!x"
	stMarkupDecl    // "<!"
	stMarkupDash    // "<!-"
	stCommentStart  // "<!--"
	stCommentDash1  // "<!---"
	stComment       // "<!-- x"
	stCommentDash   // "<!-- x-"
	stCommentEnd    // "<!-- x--"
	stCommentBang   // "<!-- x--!"
	numStates
)

// tagStates are the states the snippet may not follow: inside a tag, and
// in a bogus comment or just before one the snippet's '<' would open ("</",
// "<!", "<!-"). A bogus comment ends at the first '>', the snippet's
// opening tag's: that tag, display:none and hidden with it, would go into
// the comment, and the notice's text show on the page.
const tagStates = 1<<stTagName | 1<<stBeforeAttr | 1<<stAttrName | 1<<stAfterAttrName | 1<<stBeforeValue |
	1<<stDQValue | 1<<stSQValue | 1<<stUnquoted | 1<<stAfterQuoted | 1<<stSelfClosing |
	1<<stBogusComment | 1<<stEndTagOpen | 1<<stMarkupDecl | 1<<stMarkupDash

// Byte classes for the transitions.
const (
	clOther = iota
	clSpace
	clSlash
	clGT
	clEq
	clDQ
	clSQ
	clLT
	clLetter
	clDash
	clBang
	clQuestion
	numClasses
)

var (
	byteClass [256]uint8
	// nextState[s][c] is the state after a byte of class c in state s.
	nextState [numStates][numClasses]uint8
)

func init() {
	for c := range 256 {
		b := byte(c)
		switch {
		case isSpace(b):
			byteClass[c] = clSpace
		case isLetter(b):
			byteClass[c] = clLetter
		default:
			byteClass[c] = map[byte]uint8{'/': clSlash, '>': clGT, '=': clEq, '"': clDQ, '\'': clSQ,
				'<': clLT, '-': clDash, '!': clBang, '?': clQuestion}[b]
		}
	}
	set := func(s int, def uint8, pairs ...uint8) {
		for c := range numClasses {
			nextState[s][c] = def
		}
		for i := 0; i < len(pairs); i += 2 {
			nextState[s][pairs[i]] = pairs[i+1]
		}
	}
	set(stData, stData, clLT, stTagOpen)
	set(stTagOpen, stData, clLetter, stTagName, clSlash, stEndTagOpen, clBang, stMarkupDecl, clQuestion, stBogusComment, clLT, stTagOpen)
	set(stEndTagOpen, stBogusComment, clLetter, stTagName, clGT, stData)
	set(stTagName, stTagName, clSpace, stBeforeAttr, clSlash, stSelfClosing, clGT, stData)
	set(stBeforeAttr, stAttrName, clSpace, stBeforeAttr, clSlash, stSelfClosing, clGT, stData)
	set(stAttrName, stAttrName, clSpace, stAfterAttrName, clSlash, stSelfClosing, clGT, stData, clEq, stBeforeValue)
	set(stAfterAttrName, stAttrName, clSpace, stAfterAttrName, clSlash, stSelfClosing, clGT, stData, clEq, stBeforeValue)
	set(stBeforeValue, stUnquoted, clSpace, stBeforeValue, clDQ, stDQValue, clSQ, stSQValue, clGT, stData)
	set(stDQValue, stDQValue, clDQ, stAfterQuoted)
	set(stSQValue, stSQValue, clSQ, stAfterQuoted)
	set(stUnquoted, stUnquoted, clSpace, stBeforeAttr, clGT, stData)
	// After a quoted value anything else starts an attribute name, '=' too.
	set(stAfterQuoted, stAttrName, clSpace, stBeforeAttr, clSlash, stSelfClosing, clGT, stData)
	set(stSelfClosing, stAttrName, clSpace, stBeforeAttr, clSlash, stSelfClosing, clGT, stData)
	set(stBogusComment, stBogusComment, clGT, stData)
	set(stMarkupDecl, stBogusComment, clDash, stMarkupDash, clGT, stData)
	set(stMarkupDash, stBogusComment, clDash, stCommentStart, clGT, stData)
	set(stCommentStart, stComment, clDash, stCommentDash1, clGT, stData)
	set(stCommentDash1, stComment, clDash, stCommentEnd, clGT, stData)
	set(stComment, stComment, clDash, stCommentDash)
	set(stCommentDash, stComment, clDash, stCommentEnd)
	set(stCommentEnd, stComment, clGT, stData, clBang, stCommentBang, clDash, stCommentEnd)
	set(stCommentBang, stComment, clDash, stCommentDash, clGT, stData)
}

// statesInTag reports whether following b from the data state (atStart) or
// from every state may end inside a tag.
func statesInTag(b []byte, atStart bool) bool {
	set := uint32(1)<<numStates - 1
	if atStart {
		set = 1 << stData
	}
	for i := 0; i < len(b); i++ {
		if set == 1<<stData {
			// Text: on to the next '<'.
			k := bytes.IndexByte(b[i:], '<')
			if k < 0 {
				return false
			}
			i += k
		}
		c := byteClass[b[i]]
		next := uint32(0)
		for rest := set; rest != 0; rest &= rest - 1 {
			next |= 1 << nextState[bits.TrailingZeros32(rest)][c]
		}
		set = next
	}
	return set&tagStates != 0
}

// Raw text. A page that omits its optional end tags (minifiers drop
// </body></html>) may hold its only "</body>" in a script string or a
// textarea's text: `<script>var f = "<html><body></body></html>";</script>`.
// The snippet there would break the script or show as text, and never be
// in the DOM. So a position p whose lookBack bytes before it hold the start
// tag of an element whose text is not markup, not followed by its end tag,
// is refused like one inside a tag. Only those bytes are looked at, so the
// answer does not depend on how the body was cut; a raw text element that
// opened further back is not seen.

// rawTextNames are the elements whose content the tokenizer does not read
// as markup (WHATWG HTML §13.1.2: raw text and escapable raw text elements,
// and those parsed as raw text when scripting is on), and template, whose
// content is not in the document's tree.
var rawTextNames = [...]string{"script", "style", "textarea", "title", "xmp", "iframe",
	"noembed", "noframes", "noscript", "plaintext", "template"}

// inRawText reports whether buf[p] may lie in the text of a raw text
// element: going back from p, over at most lookBack bytes, the first such
// element's tag met is a start tag.
func inRawText(buf []byte, p, lookBack int) bool {
	lo := max(0, p-lookBack)
	for i := p; i > lo; {
		k := lastIndexByte(buf[lo:i], '<')
		if k < 0 {
			return false
		}
		i = lo + k
		if start, ok := rawTextTag(buf[i+1:]); ok {
			return start
		}
	}
	return false
}

// rawTextTag reports whether b, following a '<', is the start or end tag
// of a raw text element: its name, ASCII case-insensitive, after an
// optional '/', then whitespace, '/' or '>'. start tells which.
func rawTextTag(b []byte) (start, ok bool) {
	start = true
	if len(b) > 0 && b[0] == '/' {
		start, b = false, b[1:]
	}
	if len(b) < 4 {
		return false, false
	}
	switch b[0] | 0x20 { // the first letters of rawTextNames
	case 's', 't', 'x', 'i', 'n', 'p':
	default:
		return false, false
	}
	for _, name := range rawTextNames {
		if len(b) > len(name) && equalFoldASCII(b[:len(name)], name) {
			if c := b[len(name)]; isSpace(c) || c == '/' || c == '>' {
				return start, true
			}
		}
	}
	return false, false
}
