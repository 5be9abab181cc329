package notice

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/bits"
)

// The splicer holds the most recent bytes of the body in a window and looks
// for the insertion point only when it must: at Close (backward from the
// end, where the last </body> almost always is), and at Flush (over the
// bytes that arrived since the last Flush). Bytes pushed out of the window
// by newer ones are written without being looked at: a </body> more than
// maxHold bytes before the end of the document is not where the notice
// goes. The one search over every byte is the one for an existing notice,
// anchored on the rare '-' of "ahp-notice". See the package comment for the
// rules and their trade-offs.
const (
	// maxHold is how far from the end of the document the last </body> may
	// start and still count; the window always keeps the last maxHold bytes.
	maxHold = 64 << 10

	// maxTagLen bounds how far back from an "ahp-notice" the '<' of its tag
	// may lie for the word to count as an existing notice.
	maxTagLen = 2 << 10

	// bufSlack is how far the window may grow beyond maxHold before bytes
	// leave it, less the section's length, which must fit at Close. Bytes
	// then leave down to maxHold, so they go out at least bufSlack at a time
	// whatever the size of the Writes in, and a page up to maxHold+bufSlack
	// (minus the section) goes out in one Write, at Close.
	bufSlack = maxSectionSize
)

// limits are the splicer's bounds. Tests shrink them (spliceLimits) so that
// small inputs reach the window's edges.
type limits struct {
	hold   int // maxHold
	tagLen int // maxTagLen
	slack  int // bufSlack
}

var spliceLimits = limits{hold: maxHold, tagLen: maxTagLen, slack: bufSlack}

// histKeep is how many written bytes stay in the buffer before the window,
// so that an "ahp-notice" cut by a Write's edge can still be checked
// against its tag: the word may start up to its length before the edge.
func (l limits) histKeep() int { return l.tagLen + 16 }

func (l limits) bufCap() int { return l.histKeep() + l.hold + l.slack }

// windowMax is the most the window holds between Writes; the rest of the
// buffer keeps room for the section at Close.
func (l limits) windowMax(section []byte) int {
	return l.hold + l.slack - min(len(section), l.slack)
}

const (
	noticeClass = "ahp-notice"
	bodyEnd     = "</body" // followed by whitespace, '/' or '>'
	// candLen is the length of a decided </body> candidate: bodyEnd and the
	// byte that ends the tag name.
	candLen = len(bodyEnd) + 1
)

// splicer inserts the section into a plain (decoded) HTML byte stream.
// Positions are indices into buf.
type splicer struct {
	w       io.Writer
	section []byte
	lim     limits

	// buf holds, in order: up to histKeep bytes already written (for the
	// notice check), then the window buf[out:] of bytes received but not
	// written. Its backing array is reused across responses.
	buf       []byte
	out       int
	windowMax int

	// Every "ahp-notice" starting before noticeFrom has been checked.
	noticeFrom int

	// Every </body> starting in [out, candFrom) has been seen; cand is the
	// last of them, or -1.
	candFrom int
	cand     int

	found    bool // the page already carries a notice: pass everything through
	inserted bool
	err      error // sticky write error
}

func (s *splicer) reset(w io.Writer, section []byte) {
	buf := s.buf[:0]
	if cap(buf) != spliceLimits.bufCap() {
		buf = nil // made at the first Write
	}
	*s = splicer{w: w, section: section, lim: spliceLimits, buf: buf, cand: -1,
		windowMax: spliceLimits.windowMax(section)}
}

// write accepts the next part of the body. It returns how many bytes of p
// were written or held, and the first error from the destination.
func (s *splicer) write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.found {
		if len(p) == 0 {
			return 0, nil
		}
		return s.writeOut(p)
	}
	if s.buf == nil {
		s.buf = make([]byte, 0, s.lim.bufCap())
	}
	n := 0
	for n < len(p) {
		piece := p[n:min(len(p), n+s.lim.hold)]
		// When the window would outgrow windowMax, all but the last maxHold
		// bytes leave it, in one Write.
		if window := len(s.buf) - s.out; window+len(piece) > s.windowMax {
			if err := s.release(s.out + window + len(piece) - s.lim.hold); err != nil {
				return n, err
			}
		}
		if cap(s.buf)-len(s.buf) < len(piece) {
			s.compact()
		}
		s.buf = append(s.buf, piece...)
		n += len(piece)
		if s.searchNotice(false) {
			if err := s.passThrough(); err != nil || n == len(p) {
				return n, err
			}
			w, err := s.writeOut(p[n:])
			return n + w, err
		}
	}
	return n, nil
}

// flush writes every held byte that the insertion can no longer affect:
// everything before the last </body> candidate, or, without one, all but a
// "</bod" cut at the end of the window.
func (s *splicer) flush() error {
	if s.err != nil || s.found {
		return s.err
	}
	if end := len(s.buf) - candLen + 1; end > s.candFrom {
		if c := lastCandidate(s.buf, s.candFrom, end); c >= 0 {
			s.cand = c
		}
		s.candFrom = end
	}
	if s.cand >= 0 && len(s.buf)-s.cand > s.lim.hold {
		s.cand = -1 // too far from the end to count, now and later
	}
	x := s.cand
	if x < 0 {
		x = len(s.buf) - partialBodyEnd(s.buf[s.out:])
	}
	return s.release(x)
}

// close ends the body: it inserts the section unless the page had one and
// writes everything still held, in one Write when the buffer has room.
func (s *splicer) close() error {
	if s.err != nil || s.found {
		return s.err
	}
	if s.searchNotice(true) {
		return s.passThrough()
	}
	// The last </body> among the last maxHold bytes, else the end.
	at, lo := -1, max(s.candFrom, len(s.buf)-s.lim.hold)
	if end := len(s.buf) - candLen + 1; end > lo {
		at = lastCandidate(s.buf, lo, end)
	}
	if at < 0 && s.cand >= 0 && len(s.buf)-s.cand <= s.lim.hold {
		at = s.cand
	}
	if at < 0 {
		at = len(s.buf)
	}
	if cap(s.buf)-len(s.buf) < len(s.section) && s.out > 0 {
		at -= s.out
		s.buf = s.buf[:copy(s.buf[:cap(s.buf)], s.buf[s.out:])] // the history is no longer needed
		s.out = 0
	}
	if cap(s.buf)-len(s.buf) < len(s.section) {
		// A window full of page and a large template: three Writes.
		if err := s.release(at); err != nil {
			return err
		}
		if _, err := s.writeOut(s.section); err != nil {
			return err
		}
		s.inserted = true
		return s.release(len(s.buf))
	}
	end := len(s.buf)
	s.buf = s.buf[:end+len(s.section)]
	copy(s.buf[at+len(s.section):], s.buf[at:end])
	copy(s.buf[at:], s.section)
	if err := s.release(len(s.buf)); err != nil {
		return err
	}
	s.inserted = true
	return nil
}

// passThrough is called once an existing notice is found: the page goes
// out as it came.
func (s *splicer) passThrough() error {
	s.found = true
	return s.release(len(s.buf))
}

// release writes the window up to x.
func (s *splicer) release(x int) error {
	if x <= s.out {
		return s.err
	}
	w, err := s.writeOut(s.buf[s.out:x])
	s.out += w
	if s.cand < s.out {
		s.cand = -1
	}
	s.candFrom = max(s.candFrom, s.out)
	return err
}

// compact moves the window, and the history before it, to the front of buf.
func (s *splicer) compact() {
	keep := max(0, s.out-s.lim.histKeep())
	if keep == 0 {
		return
	}
	s.buf = s.buf[:copy(s.buf, s.buf[keep:])]
	s.out -= keep
	s.noticeFrom = max(0, s.noticeFrom-keep)
	s.candFrom -= keep
	if s.cand >= 0 {
		s.cand -= keep
	}
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

// searchNotice checks every "ahp-notice" received since the last call and
// reports whether one makes the page carry a notice. Unless final, a word at
// the very end waits for the byte after it.
func (s *splicer) searchNotice(final bool) bool {
	b := s.buf
	for q := indexNotice(b, s.noticeFrom); q >= 0; q = indexNotice(b, q+1) {
		if !final && q+len(noticeClass) == len(b) {
			s.noticeFrom = q
			return false
		}
		if isNotice(b, q, s.lim.tagLen) {
			return true
		}
	}
	s.noticeFrom = max(s.noticeFrom, len(b)-len(noticeClass)+1)
	return false
}

// isNotice reports whether the "ahp-notice" at b[q:] is a class token of the
// start tag opened by the last '<' before it, at most tagLen bytes back.
// The buffer keeps enough history for that look back (histKeep).
func isNotice(b []byte, q, tagLen int) bool {
	lo := max(0, q-tagLen)
	t := bytes.LastIndexByte(b[lo:q], '<')
	if t < 0 {
		return false
	}
	t += lo
	if !isLetter(b[t+1]) {
		return false
	}
	after, hasAfter := byte(0), false
	if e := q + len(noticeClass); e < len(b) {
		after, hasAfter = b[e], true
	}
	return classHasToken(b[t:q], after, hasAfter)
}

// lastCandidate returns the last c in [lo, hi) where b holds "</body"
// (ASCII case-insensitive) followed by whitespace, '/' or '>', or -1. The
// caller ensures hi+candLen-1 <= len(b).
func lastCandidate(b []byte, lo, hi int) int {
	// Real pages end a few bytes after their last </body>: look there byte
	// by byte first.
	i := hi - 1
	for stop := max(lo, hi-64); i >= stop; i-- {
		if b[i] == '<' && isCandidate(b[i:]) {
			return i
		}
	}
	// Then block by block from the end, each searched forward at memory
	// speed.
	const block = 4 << 10
	for hi = i + 1; hi > lo; {
		from := max(lo, hi-block)
		if c := lastCandidateIn(b, from, hi); c >= 0 {
			return c
		}
		hi = from
	}
	return -1
}

// lastCandidateIn is lastCandidate with a forward search anchored on the
// 'y' of "</body", the rarest of its bytes in pages.
func lastCandidateIn(b []byte, lo, hi int) int {
	const y = len(bodyEnd) - 1 // index of the 'y'
	last := -1
	seg := b[lo+y : hi+y]
	for _, c := range [2]byte{'y', 'Y'} {
		for i := 0; ; i++ {
			k := bytes.IndexByte(seg[i:], c)
			if k < 0 {
				break
			}
			i += k
			if lo+i > last && isCandidate(b[lo+i:]) {
				last = lo + i
			}
		}
	}
	return last
}

// isCandidate reports whether b starts with a </body> tag: "</body"
// (ASCII case-insensitive) and a byte that ends the tag name.
func isCandidate(b []byte) bool {
	if len(b) < candLen || b[0] != '<' || b[1] != '/' {
		return false
	}
	// One 32-bit test for "body" in any case: |0x20 lowers ASCII letters.
	if binary.LittleEndian.Uint32(b[2:6])|0x20202020 != 'b'|'o'<<8|'d'<<16|'y'<<24 {
		return false
	}
	c := b[6]
	return isSpace(c) || c == '/' || c == '>'
}

// partialBodyEnd returns the length of the suffix of b that may still
// become a </body> candidate: a proper or whole "</body" whose next byte has
// not arrived.
func partialBodyEnd(b []byte) int {
	for k := min(len(bodyEnd), len(b)); k > 0; k-- {
		if isBodyEndPrefix(b[len(b)-k:]) {
			return k
		}
	}
	return 0
}

// isBodyEndPrefix reports whether b is a prefix of "</body", ASCII
// case-insensitive.
func isBodyEndPrefix(b []byte) bool {
	for k, c := range b {
		if k >= 2 {
			c |= 0x20
		}
		if c != bodyEnd[k] {
			return false
		}
	}
	return true
}

// classHasToken reports whether the start tag tag, cut just before an
// "ahp-notice", puts that word as a whole token into the tag's class
// attribute. after is the byte following the word, if hasAfter. Attribute
// syntax follows the HTML tokenizer, except that any '>' ends the tag (a
// '>' inside a quoted value before the word makes it not count).
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
// at an index in [from, to), or -1. It tests sixteen positions at a time,
// in two words, for a '-' followed by an 'n' (SWAR), and checks the
// candidates. The caller ensures from >= noticeDash and
// to <= len(b)-len(noticeClass)+noticeDash+1.
func indexNoticeWords(b []byte, from, to int) int {
	const (
		lo     = 0x0101010101010101
		hi     = 0x8080808080808080
		dashes = lo * '-'
		ns     = lo * 'n'
	)
	i := from
	for ; i+16 <= to && i+17 <= len(b); i += 16 {
		w := b[i : i+17 : i+17] // one bounds check for the four loads
		// A byte of x is zero where w has '-' followed by 'n'; m marks the
		// zero bytes of x (and, harmlessly, some bytes above one: every
		// candidate is checked).
		x0 := (binary.LittleEndian.Uint64(w[0:8]) ^ dashes) | (binary.LittleEndian.Uint64(w[1:9]) ^ ns)
		x1 := (binary.LittleEndian.Uint64(w[8:16]) ^ dashes) | (binary.LittleEndian.Uint64(w[9:17]) ^ ns)
		m0 := (x0 - lo) &^ x0 & hi
		m1 := (x1 - lo) &^ x1 & hi
		if m0|m1 == 0 {
			continue
		}
		for ; m0 != 0; m0 &= m0 - 1 {
			k := i + bits.TrailingZeros64(m0)>>3
			if string(b[k-noticeDash:k-noticeDash+len(noticeClass)]) == noticeClass {
				return k - noticeDash
			}
		}
		for ; m1 != 0; m1 &= m1 - 1 {
			k := i + 8 + bits.TrailingZeros64(m1)>>3
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
