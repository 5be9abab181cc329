package notice

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/bits"
)

// Where the notice goes, and how little is held back to put it there.
//
// The splicer finds the last </body> with a light state machine instead of an
// HTML parser: in text it jumps from '<' to '<' (bytes.IndexByte), and it
// only tracks what can hide a "</body>" from the HTML tokenizer: comments
// (up to "-->") and raw text elements such as <script> and <style> (up to
// their end tag). Attribute values are not tracked, so a "</body>" or
// "<!--" inside a quoted attribute value is taken at face value; pages do
// not do that in practice, and the cost would be a per-byte scan.
//
// Output is the input with the section inserted once: before the last real
// </body> (any case, ended by whitespace, '/' or '>'), else at the end of the
// document. Bytes before a candidate </body> are written as soon as they
// arrive; the candidate and what follows it are held until a later candidate
// replaces it or the body ends (see maxHold).
//
// A page already carrying a notice passes through byte for byte: one where
// "ahp-notice", in text, is a whole token of the class attribute of the
// start tag opened by the last '<' before it (no '>' in between, at most
// maxTagLen bytes back). The word elsewhere (text, scripts, comments, other
// attributes, "&lt;section class=...") does not count. The whole-input
// statement of these rules, referenceSplice in the tests, is what the fuzz
// targets compare against.
const (
	// maxHold bounds the bytes held back from a </body> candidate on. Real
	// pages end a few hundred bytes after </body>; a tail longer than this
	// means the candidate was not the end of the page, so it is released and
	// the notice goes at the end unless a later </body> comes. Per response,
	// memory is thus at most maxHold (+ maxTagLen) whatever the page size.
	maxHold = 32 << 10

	// maxTagLen bounds how much of a start tag is remembered to check its
	// class attribute for an existing notice. Longer tags are not checked.
	maxTagLen = 2 << 10

	// pendMax exceeds the longest token the scanner must see whole before
	// deciding: "</noframes" or "ahp-notice", each plus the byte after it.
	pendMax = 16
)

// Scanner states.
const (
	stText    uint8 = iota
	stComment       // inside <!-- ... -->
	stRaw           // inside a raw text element, up to its end tag
)

// rawTextElements are the elements whose content the HTML tokenizer does not
// parse as markup (script data, RAWTEXT and RCDATA).
var rawTextElements = [...]string{"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript"}

const noticeClass = "ahp-notice"

// Classes of the byte after a '<' in text.
const (
	ltOther    = iota
	ltStartTag // a letter that starts no raw text element name
	ltRawStart // the first letter of a raw text element name
	ltEndTag   // '/'
	ltBang     // '!'
)

var afterLT = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = ltStartTag, ltStartTag
	}
	for _, name := range rawTextElements {
		t[name[0]], t[name[0]-'a'+'A'] = ltRawStart, ltRawStart
	}
	t['/'], t['!'] = ltEndTag, ltBang
	return t
}()

var (
	commentEnd = []byte("-->")
	endTagOpen = []byte("</")
)

// splicer inserts the section into a plain (decoded) HTML byte stream.
// Offsets are positions in that stream, not counting the section.
type splicer struct {
	w       io.Writer
	section []byte

	// Scanner state.
	state uint8
	raw   uint8 // rawTextElements index while state == stRaw
	found bool  // the page already carries a notice: pass everything through

	// The last '<' in text (or the one ending a raw text element), for the
	// existing-notice check: its offset, whether it opens a start tag that
	// no '>' has closed yet, and, when it lies before the current input, the
	// tag's bytes so far (tag) or that they outgrew maxTagLen (tagLong).
	ltOff   int64
	ltTag   bool
	tagLong bool
	tag     []byte

	// Bytes at the end of the previous input that the scanner could not
	// decide on yet (a token cut by a chunk edge); scanned again with the
	// next input.
	pend    [pendMax]byte
	npend   int
	pendOff int64

	// Emission. Bytes [out, total) have been received but not written; those
	// before the current input are in hold.
	total   int64
	out     int64
	buf     []byte // backing array of hold, reused across responses
	hold    []byte
	cur     []byte // current input, during feed
	curOff  int64
	cand    bool  // a </body> candidate is held
	candOff int64 // its offset

	inserted bool
	err      error // sticky write error
}

func (s *splicer) reset(w io.Writer, section []byte) {
	buf, tag := s.buf[:0], s.tag[:0]
	*s = splicer{w: w, section: section, buf: buf, hold: buf, tag: tag, ltOff: -1}
}

// write accepts the next part of the body. It returns how many bytes of p
// were written or held, and the first error from the destination.
func (s *splicer) write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	base := s.total
	if err := s.feed(p, false); err != nil {
		n := s.out - base
		if n < 0 {
			n = 0
		}
		return int(n), err
	}
	return len(p), nil
}

// close ends the body: it inserts the section unless the page had one and
// writes everything still held.
func (s *splicer) close() error {
	if err := s.feed(nil, true); err != nil {
		return err
	}
	if !s.found {
		at := s.total
		if s.cand {
			at = s.candOff
		}
		if err := s.emitUpTo(at); err != nil {
			return err
		}
		if _, err := s.writeOut(s.section); err != nil {
			return err
		}
		s.inserted = true
	}
	return s.emitUpTo(s.total)
}

// feed scans p, writes every byte the insertion can no longer affect, and
// keeps the rest in hold.
func (s *splicer) feed(p []byte, final bool) error {
	base := s.total
	s.cur, s.curOff = p, base
	s.total += int64(len(p))
	if !s.found {
		s.scanInput(p, base, final)
	}

	safe := s.total
	if !s.found {
		if s.cand && s.total-s.candOff > maxHold {
			s.cand = false
		}
		if s.cand {
			safe = s.candOff
		} else if s.npend > 0 && s.state == stText && isBodyEndPrefix(s.pend[:s.npend]) {
			safe = s.pendOff // a "</bo" cut by the chunk edge may become the candidate
		}
	}
	err := s.emitUpTo(safe)
	if err == nil {
		s.keep()
	}
	s.cur = nil
	return err
}

// scanInput runs the scanner over p, first finishing any token left pending
// by the previous input.
func (s *splicer) scanInput(p []byte, base int64, final bool) {
	start := 0
	if s.npend > 0 {
		// Scan the pending bytes followed by the start of p in a small window;
		// pendMax bytes of p are enough to decide the pending token, so the
		// window resolves at least the pending bytes unless p is that short.
		var win [2 * pendMax]byte
		n := copy(win[:], s.pend[:s.npend])
		k := copy(win[n:n+pendMax], p)
		whole := k == len(p)
		u := s.scan(win[:n+k], s.pendOff, final && whole)
		if whole {
			s.setPend(win[u:n+k], s.pendOff+int64(u))
			return
		}
		start = u - n
	}
	u := s.scan(p[start:], base+int64(start), final)
	s.setPend(p[start+u:], base+int64(start+u))
}

func (s *splicer) setPend(b []byte, off int64) {
	if len(b) > pendMax {
		panic("notice: scanner left more than pendMax bytes undecided")
	}
	s.npend = copy(s.pend[:], b)
	s.pendOff = off
}

// Results of matching a token that may be cut by the end of the input.
const (
	noMatch = iota
	match
	needMore
)

// scan advances the state machine over b, whose first byte is at offset base.
// It reports candidates to s.candidate and an existing notice in s.found. It
// returns how many bytes it decided on; unless final, the rest (fewer than
// pendMax bytes) must be scanned again with more input.
func (s *splicer) scan(b []byte, base int64, final bool) int {
	if s.found {
		return len(b)
	}
	// The notice class is rare: one fast search per input, and the hits are
	// checked only where they lie in text.
	hit := indexNotice(b, 0)
	i := 0
	for i < len(b) {
		switch s.state {
		case stText:
			j := bytes.IndexByte(b[i:], '<')
			end := len(b)
			if j >= 0 {
				end = i + j
			}
			for ; hit >= 0 && hit < end; hit = indexNotice(b, hit+1) {
				if hit < i {
					continue // it was in a comment or raw text
				}
				if !final && hit+len(noticeClass) >= len(b) {
					return s.stop(b, base, hit) // the byte after it decides
				}
				if s.isNotice(b, base, hit) {
					s.found = true
					return len(b)
				}
			}
			if j < 0 {
				if !final {
					if k := partialSuffix(b[i:], noticeClass); k > 0 {
						return s.stop(b, base, len(b)-k)
					}
				}
				return s.stop(b, base, len(b))
			}
			i = end
			s.ltOff, s.ltTag, s.tagLong = base+int64(i), false, false
			if i+1 == len(b) {
				if final {
					return s.stop(b, base, len(b))
				}
				return s.stop(b, base, i)
			}
			switch afterLT[b[i+1]] {
			case ltStartTag: // the common case: nothing to track but the tag's start
				s.ltTag = true
				i++
			case ltEndTag:
				if i+2 < len(b) && b[i+2]|0x20 != 'b' {
					i += 2
					break
				}
				switch matchTagName(b[i+2:], "body", final) {
				case needMore:
					return s.stop(b, base, i)
				case match:
					s.candidate(base + int64(i))
				}
				i += 2
			case ltRawStart:
				s.ltTag = true
				k, m := matchRawStart(b[i+1:], final)
				switch m {
				case needMore:
					return s.stop(b, base, i)
				case match:
					s.state, s.raw = stRaw, k
					i += 1 + len(rawTextElements[k])
				default:
					i++
				}
			case ltBang:
				rest := b[i+2:]
				if len(rest) < 2 && !final && bytes.HasPrefix([]byte("--"), rest) {
					return s.stop(b, base, i)
				}
				if len(rest) >= 2 && rest[0] == '-' && rest[1] == '-' {
					// Search "-->" from the first '-' so that "<!-->" and
					// "<!--->" close at once, as in HTML.
					s.state = stComment
				}
				i += 2
			default:
				i++
			}

		case stComment:
			k := bytes.Index(b[i:], commentEnd)
			if k < 0 {
				if final {
					return s.stop(b, base, len(b))
				}
				return s.stop(b, base, max(i, len(b)-2)) // "--" may be cut
			}
			i += k + len(commentEnd)
			s.state = stText
			s.ltTag = false // a tag opened inside the comment is not one

		case stRaw:
			k := bytes.Index(b[i:], endTagOpen)
			if k < 0 {
				if !final && b[len(b)-1] == '<' {
					return s.stop(b, base, len(b)-1)
				}
				return s.stop(b, base, len(b))
			}
			j := i + k
			name := rawTextElements[s.raw]
			switch matchTagName(b[j+2:], name, final) {
			case needMore:
				return s.stop(b, base, j)
			case match:
				s.state = stText
				s.ltOff, s.ltTag = base+int64(j), false
				i = j + 2 + len(name)
			default:
				i = j + 2
			}
		}
	}
	return s.stop(b, base, len(b))
}

// stop records, for the notice check in the next input, the bytes of a start
// tag still open at the end of b[:n], and returns n.
func (s *splicer) stop(b []byte, base int64, n int) int {
	if s.state != stText || !s.ltTag || s.tagLong {
		s.tag = s.tag[:0]
		return n
	}
	seg := b[:n]
	if s.ltOff >= base {
		seg = b[s.ltOff-base : n]
		s.tag = s.tag[:0]
	}
	switch {
	case bytes.IndexByte(seg, '>') >= 0:
		s.ltTag = false
		s.tag = s.tag[:0]
	case len(s.tag)+len(seg) > maxTagLen:
		s.tagLong = true
		s.tag = s.tag[:0]
	default:
		s.tag = append(s.tag, seg...)
	}
	return n
}

// isNotice reports whether the "ahp-notice" at b[q:] is a class of the start
// tag opened by the last '<'.
func (s *splicer) isNotice(b []byte, base int64, q int) bool {
	if !s.ltTag || s.tagLong {
		return false
	}
	var tag []byte
	if s.ltOff >= base {
		t := int(s.ltOff - base)
		if q-t > maxTagLen {
			return false
		}
		tag = b[t:q]
	} else {
		if len(s.tag)+q > maxTagLen {
			return false
		}
		tag = append(s.tag, b[:q]...) // s.tag keeps its length; the spare capacity is scratch
	}
	after, hasAfter := byte(0), false
	if e := q + len(noticeClass); e < len(b) {
		after, hasAfter = b[e], true
	}
	return classHasToken(tag, after, hasAfter)
}

// candidate notes a real </body> at off: everything before it is final.
func (s *splicer) candidate(off int64) {
	if s.emitUpTo(off) == nil {
		s.cand, s.candOff = true, off
	}
}

// emitUpTo writes the received bytes up to offset x.
func (s *splicer) emitUpTo(x int64) error {
	if s.err != nil {
		return s.err
	}
	if n := min(x-s.out, int64(len(s.hold))); n > 0 {
		w, err := s.writeOut(s.hold[:n])
		s.hold = s.hold[w:]
		s.out += int64(w)
		if err != nil {
			return err
		}
	}
	if x > s.out {
		w, err := s.writeOut(s.cur[s.out-s.curOff : x-s.curOff])
		s.out += int64(w)
		if err != nil {
			return err
		}
	}
	return nil
}

// keep moves the unwritten bytes of the current input into hold.
func (s *splicer) keep() {
	rest := s.cur
	if s.out > s.curOff {
		rest = s.cur[s.out-s.curOff:]
	}
	if len(rest) == 0 && len(s.hold) == 0 {
		s.hold = s.buf[:0]
		return
	}
	n := copy(s.buf[:cap(s.buf)], s.hold) // hold lies inside buf: this moves it to the front
	s.buf = append(s.buf[:n], rest...)
	s.hold = s.buf
}

func (s *splicer) writeOut(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		s.err = err
	}
	return n, err
}

// classHasToken reports whether the start tag tag, cut just before an
// "ahp-notice", puts that word as a whole token into the tag's class
// attribute. after is the byte following the word, if hasAfter. Attribute
// syntax follows the HTML tokenizer, except that any '>' ends the tag (see
// the package comment on attribute values).
func classHasToken(tag []byte, after byte, hasAfter bool) bool {
	if bytes.IndexByte(tag, '>') >= 0 {
		return false
	}
	i := 1
	for i < len(tag) && !isSpace(tag[i]) && tag[i] != '/' { // tag name
		i++
	}
	for {
		for i < len(tag) && (isSpace(tag[i]) || tag[i] == '/') {
			i++
		}
		if i == len(tag) {
			return false // the word starts an attribute name
		}
		nameStart := i
		i++ // a leading '=' belongs to the name
		for i < len(tag) && !isSpace(tag[i]) && tag[i] != '/' && tag[i] != '=' {
			i++
		}
		name := tag[nameStart:i]
		for i < len(tag) && isSpace(tag[i]) {
			i++
		}
		if i == len(tag) {
			return false // in or after an attribute name
		}
		if tag[i] != '=' {
			continue
		}
		i++
		for i < len(tag) && isSpace(tag[i]) {
			i++
		}
		isClass := len(name) == 5 && bytes.EqualFold(name, []byte("class"))
		if i == len(tag) { // the word starts an unquoted value
			return isClass && hasAfter && (isSpace(after) || after == '>')
		}
		switch quote := tag[i]; quote {
		case '"', '\'':
			end := bytes.IndexByte(tag[i+1:], quote)
			if end < 0 { // the word is inside this quoted value
				v := tag[i+1:]
				return isClass && (len(v) == 0 || isSpace(v[len(v)-1])) &&
					hasAfter && (after == quote || isSpace(after))
			}
			i += end + 2
		default:
			for i < len(tag) && !isSpace(tag[i]) {
				i++
			}
			if i == len(tag) {
				return false // the word continues an unquoted value
			}
		}
	}
}

// matchTagName matches b against name (ASCII case-insensitive) followed by
// a byte that ends a tag name.
func matchTagName(b []byte, name string, final bool) int {
	for k := 0; k < len(name); k++ {
		if k == len(b) {
			if final {
				return noMatch
			}
			return needMore
		}
		if b[k]|0x20 != name[k] {
			return noMatch
		}
	}
	if len(b) == len(name) {
		if final {
			return noMatch
		}
		return needMore
	}
	if c := b[len(name)]; isSpace(c) || c == '/' || c == '>' {
		return match
	}
	return noMatch
}

// matchRawStart matches b, which follows a '<' and starts with a letter,
// against the raw text element names.
func matchRawStart(b []byte, final bool) (uint8, int) {
	var first, last uint8 // rawTextElements index range sharing b's first letter
	switch b[0] | 0x20 {
	case 's':
		first, last = 0, 1
	case 't':
		first, last = 2, 3
	case 'x':
		first, last = 4, 4
	case 'i':
		first, last = 5, 5
	case 'n':
		first, last = 6, 8
	default:
		return 0, noMatch
	}
	result := noMatch
	for k := first; k <= last; k++ {
		switch matchTagName(b, rawTextElements[k], final) {
		case match:
			return k, match
		case needMore:
			result = needMore
		}
	}
	return 0, result
}

// isBodyEndPrefix reports whether b could be the start of "</body".
func isBodyEndPrefix(b []byte) bool {
	const end = "</body"
	if len(b) > len(end) {
		return false
	}
	for k, c := range b {
		if k < 2 {
			if c != end[k] {
				return false
			}
		} else if c|0x20 != end[k] {
			return false
		}
	}
	return true
}

// partialSuffix returns the length of the longest suffix of b that is a
// proper prefix of word.
func partialSuffix(b []byte, word string) int {
	for k := min(len(word)-1, len(b)); k > 0; k-- {
		if string(b[len(b)-k:]) == word[:k] {
			return k
		}
	}
	return 0
}

// indexNotice returns the index of the first "ahp-notice" in b at or after
// from, or -1. bytes.Index would anchor on 'a', among the commonest bytes of
// a page, and fall back to a ~1 GB/s brute force. '-' is rarer, and
// bytes.IndexByte finds it at memory speed; but a call per '-' costs more
// than testing eight bytes at a time where '-' is dense (utility classes,
// SVG paths), so dense stretches go to indexNoticeWords.
func indexNotice(b []byte, from int) int {
	const (
		window    = 32          // misses
		denseSpan = window * 40 // window misses in fewer bytes: '-' every 40 bytes or closer
		denseRun  = 4 << 10     // bytes tested word by word before trying IndexByte again
	)
	last := len(b) - len(noticeClass) + noticeDash // the last place a whole word's '-' can be
	misses, windowStart := 0, from
	for i := from + noticeDash; i <= last; i++ {
		k := bytes.IndexByte(b[i:last+1], '-')
		if k < 0 {
			return -1
		}
		i += k
		if string(b[i-noticeDash:i-noticeDash+len(noticeClass)]) == noticeClass {
			return i - noticeDash
		}
		if misses++; misses == window {
			if i-windowStart < denseSpan {
				end := min(i+1+denseRun, last+1)
				if q := indexNoticeWords(b, i+1, end); q >= 0 {
					return q
				}
				i = end - 1
			}
			misses, windowStart = 0, i
		}
	}
	return -1
}

// noticeDash is the index of the '-' in "ahp-notice".
const noticeDash = 3

// indexNoticeWords returns the index of the first "ahp-notice" whose '-' is
// at an index in [from, to), or -1. It tests eight positions at a time for a
// '-' followed by an 'n' (SWAR), and checks the candidates. The caller
// ensures from >= noticeDash and to <= len(b)-len(noticeClass)+noticeDash+1.
func indexNoticeWords(b []byte, from, to int) int {
	const (
		lo = 0x0101010101010101
		hi = 0x8080808080808080
	)
	i := from
	for ; i+8 <= to && i+9 <= len(b); i += 8 {
		// A byte of x is zero where b has '-' followed by 'n'; m marks the
		// zero bytes of x (and, harmlessly, some bytes above one: every
		// candidate is checked).
		x := binary.LittleEndian.Uint64(b[i:i+8]) ^ (lo * '-') | binary.LittleEndian.Uint64(b[i+1:i+9]) ^ (lo * 'n')
		for m := (x - lo) &^ x & hi; m != 0; m &= m - 1 {
			k := i + bits.TrailingZeros64(m)>>3
			if string(b[k-noticeDash:k-noticeDash+len(noticeClass)]) == noticeClass {
				return k - noticeDash
			}
		}
	}
	for ; i < to; i++ {
		if b[i] == '-' && string(b[i-noticeDash:i-noticeDash+len(noticeClass)]) == noticeClass {
			return i - noticeDash
		}
	}
	return -1
}

func isLetter(c byte) bool { c |= 0x20; return 'a' <= c && c <= 'z' }

// isSpace is HTML's ASCII whitespace.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }
