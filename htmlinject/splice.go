package htmlinject

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/bits"
	"strings"
)

// The splicer holds the most recent bytes of the body in a window and looks
// for the insertion point only when it must: at Close (backward from the
// end, where the last </body> almost always is), and at Flush (over the
// bytes that arrived since the last Flush). Bytes pushed out of the window
// by newer ones are written without being looked at: a </body> more than
// maxHold bytes before the end of the document is not where the snippet
// goes. The searches over every byte are the ones for the marker, anchored
// on its rarest byte, and for Require. See the package comment for the
// rules and their trade-offs.
const (
	// maxHold is how far from the end of the document the last </body> may
	// start and still count; the window always keeps the last maxHold bytes.
	maxHold = 64 << 10

	// maxTagLen bounds how far back from a marker the '<' of its tag may
	// lie for the word to count.
	maxTagLen = 2 << 10

	// bufSlack is how far the window may grow beyond maxHold before bytes
	// leave it, less the snippet's length, which must fit at Close. Bytes
	// then leave down to maxHold, so they go out at least bufSlack at a time
	// whatever the size of the Writes in, and a page up to maxHold+bufSlack
	// (minus the snippet) goes out in one Write, at Close.
	bufSlack = MaxSnippet
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
// so that a marker cut by a Write's edge can still be checked against its
// tag, and a Require cut by it still found (either word may start up to its
// length before the edge), and so that the inside-a-tag test has its
// look-back.
func (l limits) histKeep() int { return l.tagLen + maxWordLen }

func (l limits) bufCap() int { return l.histKeep() + l.hold + l.slack }

// windowMax is the most the window holds between Writes; the rest of the
// buffer keeps room for the snippet at Close.
func (l limits) windowMax(snippet []byte) int {
	return l.hold + l.slack - min(len(snippet), l.slack)
}

const (
	bodyEnd = "</body" // followed by whitespace, '/' or '>'
	// candLen is the length of a decided </body> candidate: bodyEnd and the
	// byte that ends the tag name.
	candLen = len(bodyEnd) + 1
)

// splicer inserts the snippet into a plain (decoded) HTML byte stream.
// Positions are indices into buf.
type splicer struct {
	w       io.Writer
	section []byte // the snippet
	marker  *marker
	require *require
	lim     limits

	// buf holds, in order: up to histKeep bytes already written (for the
	// notice check), then the window buf[out:] of bytes received but not
	// written. Its backing array is reused across responses.
	buf       []byte
	out       int
	windowMax int

	// Every marker starting before noticeFrom has been checked.
	noticeFrom int

	// Every '<' before docFrom has been checked for a start tag that shows
	// a document (docTag); isDoc tells whether one was found. noAppend
	// (application/xhtml+xml) forbids the end: past the root element an
	// XML document no longer parses.
	docFrom  int
	isDoc    bool
	noAppend bool

	// Every Require starting before requireFrom has been looked for, and
	// none found unless required is set.
	requireFrom int
	required    bool

	// Every </body> starting in [out, candFrom) has been seen; cand is the
	// last of them, or -1, and candOut tells whether it is outside any tag.
	candFrom int
	cand     int
	candOut  bool

	// sum answers the inside-a-tag test for the bytes dropped from buf;
	// base is how many there are.
	sum  summary
	base int64

	found    bool       // the page carries the marker (or see why): pass everything through
	why      passReason // why a page passes through, when not for the marker or Require
	lead     int        // how many of the body's first two bytes were checked
	text     bool       // the body's first byte other than whitespace was seen
	bom      int        // how many bytes of a UTF-8 byte order mark opened the body (3: past it)
	inserted bool
	err      error // sticky write error

	// dry: decide, write nothing (the first pass over a compressed body);
	// insertAt is then the offset in the body where the snippet goes, or
	// -1.
	dry      bool
	insertAt int64
}

// reset readies s for a body written to w, or, with in nil, for the pool.
func (s *splicer) reset(w io.Writer, in *Injector) {
	buf := s.buf[:0]
	if cap(buf) != spliceLimits.bufCap() {
		buf = nil // made at the first Write
	}
	*s = splicer{w: w, lim: spliceLimits, buf: buf, cand: -1, insertAt: -1}
	if in != nil {
		s.section = in.snippet
		s.windowMax = s.lim.windowMax(in.snippet)
		if in.marker.word != "" {
			s.marker = &in.marker
		}
		if in.require.word != "" {
			s.require = &in.require
		} else {
			s.required = true
		}
	}
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
		if !s.required {
			s.searchRequire()
		}
		if !s.isDoc {
			s.searchDoc(false)
		}
		if s.lead < 2 && s.foreignLead() || !s.text && s.jsonLead(piece) || s.searchNotice(false) {
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
			s.cand, s.candOut = c, !s.cannotClear(c)
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

// close ends the body: it inserts the snippet unless the page carries the
// marker or lacks Require, and writes everything still held, in one Write
// when the buffer has room.
func (s *splicer) close() error {
	if s.err != nil || s.found {
		return s.err
	}
	if s.searchNotice(true) || !s.required {
		return s.passThrough()
	}
	// The last </body> among the last maxHold bytes, else the end; but
	// never inside a tag: then the end, or nowhere.
	at, lo := -1, max(s.candFrom, len(s.buf)-s.lim.hold)
	if end := len(s.buf) - candLen + 1; end > lo {
		if at = lastCandidate(s.buf, lo, end); at >= 0 && s.cannotClear(at) {
			at = len(s.buf)
		}
	}
	if at < 0 && s.cand >= 0 && len(s.buf)-s.cand <= s.lim.hold && s.candOut {
		at = s.cand
	}
	if at < 0 || at == len(s.buf) {
		if s.cannotClear(len(s.buf)) {
			return s.passThrough()
		}
		// Only a document gets the snippet at its end: not a fragment, not
		// an empty body, not an XHTML page without </body>.
		if !s.isDoc {
			s.searchDoc(true)
		}
		if !s.isDoc || s.noAppend {
			s.why = passNotDocument
			return s.passThrough()
		}
		at = len(s.buf)
	}
	if s.dry {
		s.insertAt, s.inserted = s.base+int64(at), true
		return nil
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

// inTag reports whether buf[p] may lie inside a tag (see intag.go). The
// buffer keeps histKeep bytes before the window, and p is in the window.
func (s *splicer) inTag(p int) bool {
	return inTag(s.buf, p, &s.sum, s.base, s.lim.histKeep())
}

// cannotClear reports whether the snippet may not go at buf[p]: p may lie
// inside a tag, or in the text of a raw text element (a script string, a
// textarea) whose start tag lies within histKeep bytes before p.
func (s *splicer) cannotClear(p int) bool {
	return s.inTag(p) || inRawText(s.buf, p, s.lim.histKeep())
}

// passThrough is called once the page is known to get nothing: it goes out
// as it came.
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
	s.sum.fold(s.buf, keep)
	s.base += int64(keep)
	s.buf = s.buf[:copy(s.buf, s.buf[keep:])]
	s.out -= keep
	s.noticeFrom = max(0, s.noticeFrom-keep)
	s.docFrom = max(0, s.docFrom-keep)
	s.requireFrom = max(0, s.requireFrom-keep)
	s.candFrom -= keep
	if s.cand >= 0 {
		s.cand -= keep
	}
}

func (s *splicer) writeOut(p []byte) (int, error) {
	if s.dry {
		return len(p), nil
	}
	n, err := s.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		s.err = err
	}
	return n, err
}

// ReasonNotDocument is why a body without a </body> that holds no
// <!doctype>, <html>, <head> or <body> start tag (a fragment, an empty
// body), or an application/xhtml+xml page without a </body>, keeps its
// body.
const ReasonNotDocument = "not a document"

// passReason is why a page passed through, small so that a Stream stays
// in its allocation size class.
type passReason uint8

const (
	passMarker passReason = iota // the marker or Require decided, or nothing did
	passCharset
	passNotDocument
	passNotHTML
)

func (r passReason) String() string {
	switch r {
	case passCharset:
		return ReasonCharset
	case passNotDocument:
		return ReasonNotDocument
	case passNotHTML:
		return ReasonNotHTML
	}
	return ""
}

// docTagLen is the longest docTag: "<!doctype" and the byte after it.
const docTagLen = len("<!doctype") + 1

// searchDoc looks at every '<' received since the last call for the start
// of a docTag. Unless final, one too close to the end to tell waits for
// more bytes.
func (s *splicer) searchDoc(final bool) {
	b := s.buf
	for i := s.docFrom; i < len(b); i++ {
		k := bytes.IndexByte(b[i:], '<')
		if k < 0 {
			break
		}
		i += k
		if !final && len(b)-i < docTagLen {
			s.docFrom = i
			return
		}
		if docTag(b[i+1:]) {
			s.isDoc = true
			return
		}
	}
	s.docFrom = len(b)
}

// docTag reports whether b, following a '<', is a start tag only a
// document has: !doctype, html, head or body (ASCII case-insensitive),
// followed by whitespace, '/' or '>'.
func docTag(b []byte) bool {
	for _, name := range [...]string{"!doctype", "html", "head", "body"} {
		if len(b) > len(name) && equalFoldASCII(b[:len(name)], name) {
			c := b[len(name)]
			return isSpace(c) || c == '/' || c == '>'
		}
	}
	return false
}

// foreignLead checks the first two bytes of the body (buf still starts
// with them: nothing leaves the buffer before hundreds of bytes have come)
// and reports whether they show an encoding that is not ASCII-compatible:
// a UTF-16 or UTF-32 byte order mark (FE FF, FF FE, 00 00 FE FF), a NUL
// (UTF-16 or UTF-32 without a mark: "<" is 00 3C or 3C 00), or a byte that
// never starts UTF-8 text (FE, FF). The ASCII snippet would corrupt such a
// page, which its Content-Type may not label.
func (s *splicer) foreignLead() bool {
	b := s.buf[:min(2, len(s.buf))]
	for ; s.lead < len(b); s.lead++ {
		switch c := b[s.lead]; {
		case c == 0, s.lead == 0 && (c == 0xFE || c == 0xFF):
			s.why = passCharset
			return true
		}
	}
	return false
}

// utf8BOM is the UTF-8 byte order mark.
const utf8BOM = "\xEF\xBB\xBF"

// jsonLead looks for the body's first byte other than whitespace (and a
// UTF-8 byte order mark opening the body) in piece, the bytes just
// received, and reports whether it opens JSON ('{' or '['): a JSON answer
// labelled text/html (PHP's and Django's default type) whose strings hold
// page markup would get the snippet in a string, or after the value, and
// no longer parse. No page starts so.
func (s *splicer) jsonLead(piece []byte) bool {
	for _, c := range piece {
		if s.bom < len(utf8BOM) {
			// PHP sends a script's byte order mark before what it prints.
			if c == utf8BOM[s.bom] {
				s.bom++
				continue
			}
			if s.bom > 0 {
				s.text = true // a mark not whole: text
				return false
			}
			s.bom = len(utf8BOM)
		}
		if isSpace(c) {
			continue
		}
		s.text = true
		if c == '{' || c == '[' {
			s.why = passNotHTML
			return true
		}
		return false
	}
	return false
}

// searchNotice checks every marker received since the last call and
// reports whether one shows the page carries the snippet. Unless final, a
// word at the very end waits for the byte after it.
func (s *splicer) searchNotice(final bool) bool {
	m := s.marker
	if m == nil {
		return false
	}
	b := s.buf
	for q := m.index(b, s.noticeFrom); q >= 0; q = m.index(b, q+1) {
		if !final && q+len(m.word) == len(b) {
			s.noticeFrom = q
			return false
		}
		if m.isMarker(b, q, s.lim.tagLen) {
			return true
		}
	}
	s.noticeFrom = max(s.noticeFrom, len(b)-len(m.word)+1)
	return false
}

// searchRequire looks for Require in the bytes received since the last
// call; one cut at the end is found at the next.
func (s *splicer) searchRequire() {
	r := s.require
	if r.index(s.buf, s.requireFrom) >= 0 {
		s.required = true
		return
	}
	s.requireFrom = max(s.requireFrom, len(s.buf)-len(r.word)+1)
}

// isMarker reports whether the marker at b[q:] counts: it lies in the start
// tag opened by the last '<' before it, at most tagLen bytes back, after
// the tag's name (with attr set, as a whole token of that attribute). The
// buffer keeps enough history for that look back (histKeep).
func (m *marker) isMarker(b []byte, q, tagLen int) bool {
	lo := max(0, q-tagLen)
	t := bytes.LastIndexByte(b[lo:q], '<')
	if t < 0 {
		return false
	}
	t += lo
	if !isLetter(b[t+1]) {
		return false
	}
	if m.attr == "" {
		return afterTagName(b[t:q])
	}
	after, hasAfter := byte(0), false
	if e := q + len(m.word); e < len(b) {
		after, hasAfter = b[e], true
	}
	return attrHasToken(b[t:q], m.attr, after, hasAfter)
}

// afterTagName reports whether the start tag tag, cut just before a word,
// has ended its name before the word (and no '>' ended the tag).
func afterTagName(tag []byte) bool {
	if bytes.IndexByte(tag, '>') >= 0 {
		return false
	}
	for _, c := range tag[1:] {
		if isSpace(c) || c == '/' {
			return true
		}
	}
	return false
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

// attrHasToken reports whether the start tag tag, cut just before a word,
// puts that word as a whole token into the value of attribute attr (lower
// case). after is the byte following the word, if hasAfter. Attribute
// syntax follows the HTML tokenizer, except that any '>' ends the tag (a
// '>' inside a quoted value before the word makes it not count).
func attrHasToken(tag []byte, attr string, after byte, hasAfter bool) bool {
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
		isAttr := len(name) == len(attr) && equalFoldASCII(name, attr)
		if i == len(tag) { // the word starts an unquoted value
			return isAttr && hasAfter && (isSpace(after) || after == '>')
		}
		switch quote := tag[i]; quote {
		case '"', '\'':
			end := bytes.IndexByte(tag[i+1:], quote)
			if end < 0 { // the word is inside this quoted value
				v := tag[i+1:]
				return isAttr && (len(v) == 0 || isSpace(v[len(v)-1])) &&
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

// marker is Config.Marker, prepared for the search.
type marker struct {
	word string
	attr string // Config.MarkerAttr in lower case, or ""

	// The search runs bytes.IndexByte for word[anchor], the rarest of its
	// bytes in pages, and, where that byte is dense, tests sixteen positions
	// at a time for the pair word[anchor], word[anchor+1].
	anchor       int
	first, pairs uint64 // word[anchor], word[anchor+1], repeated in every byte
}

func newMarker(word, attr string) marker {
	m := marker{word: word, attr: strings.ToLower(attr), anchor: rarest(word[:len(word)-1])}
	m.first = swarLo * uint64(word[m.anchor])
	m.pairs = swarLo * uint64(word[m.anchor+1])
	return m
}

// rarest returns the index of the byte of w least common in HTML pages:
// punctuation before letters, rare letters before common ones.
func rarest(w string) int {
	const common = "etaoinsrhldcumfpgwybvkxjqz" // English letter frequency, commonest first
	best, rank := 0, -1
	for i := range len(w) {
		c := w[i]
		r := 100 // punctuation and digits
		if isLetter(c) {
			r = strings.IndexByte(common, c|0x20)
		}
		if r > rank {
			best, rank = i, r
		}
	}
	return best
}

const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// index returns the index of the first m.word in b at or after from, or -1.
// bytes.Index would anchor on the word's first byte, often among the
// commonest of a page, and fall back to a ~1 GB/s brute force. The anchor
// is rarer, and bytes.IndexByte finds it at memory speed; but a call per
// anchor costs more than testing eight bytes at a time where the anchor is
// dense (a '-' in utility classes, SVG paths), so dense stretches go to
// indexWords.
func (m *marker) index(b []byte, from int) int {
	const (
		window    = 32          // misses
		denseSpan = window * 40 // window misses in fewer bytes: an anchor every 40 bytes or closer
		denseRun  = 4 << 10     // bytes tested word by word before trying IndexByte again
	)
	w, a := m.word, m.anchor
	c, next := w[a], w[a+1]
	last := len(b) - len(w) + a // the last place a whole word's anchor can be
	misses, windowStart := 0, from
	for i := from + a; i <= last; i++ {
		k := bytes.IndexByte(b[i:last+1], c)
		if k < 0 {
			return -1
		}
		i += k
		// The byte after the anchor first: a call to compare the word
		// costs more than the rare miss it saves.
		if b[i+1] == next && string(b[i-a:i-a+len(w)]) == w {
			return i - a
		}
		if misses++; misses == window {
			if i-windowStart < denseSpan {
				end := min(i+1+denseRun, last+1)
				if q := m.indexWords(b, i+1, end); q >= 0 {
					return q
				}
				i = end - 1
			}
			misses, windowStart = 0, i
		}
	}
	return -1
}

// indexWords returns the index of the first m.word whose anchor is at an
// index in [from, to), or -1. It tests sixteen positions at a time, in two
// words, for the anchor followed by the next byte of the word (SWAR), and
// checks the candidates. The caller ensures from >= m.anchor and
// to <= len(b)-len(m.word)+m.anchor+1.
func (m *marker) indexWords(b []byte, from, to int) int {
	first, pairs := m.first, m.pairs
	i := from
	for ; i+16 <= to && i+17 <= len(b); i += 16 {
		v := b[i : i+17 : i+17] // one bounds check for the four loads
		// A byte of x is zero where v has the anchor followed by the next
		// byte; y marks the zero bytes of x (and, harmlessly, some bytes
		// above one: every candidate is checked).
		x0 := (binary.LittleEndian.Uint64(v[0:8]) ^ first) | (binary.LittleEndian.Uint64(v[1:9]) ^ pairs)
		x1 := (binary.LittleEndian.Uint64(v[8:16]) ^ first) | (binary.LittleEndian.Uint64(v[9:17]) ^ pairs)
		y0 := (x0 - swarLo) &^ x0 & swarHi
		y1 := (x1 - swarLo) &^ x1 & swarHi
		if y0|y1 != 0 {
			if q := m.checkWords(b, i, y0, y1); q >= 0 {
				return q
			}
		}
	}
	w, a := m.word, m.anchor
	for ; i < to; i++ {
		if b[i] == w[a] && string(b[i-a:i-a+len(w)]) == w {
			return i - a
		}
	}
	return -1
}

// checkWords checks the candidates indexWords marked in the sixteen bytes
// at b[i:]. It is a function of its own so that the loop keeps its few
// values in registers.
//
//go:noinline
func (m *marker) checkWords(b []byte, i int, y0, y1 uint64) int {
	w, a := m.word, m.anchor
	for ; y0 != 0; y0 &= y0 - 1 {
		k := i + bits.TrailingZeros64(y0)>>3
		if string(b[k-a:k-a+len(w)]) == w {
			return k - a
		}
	}
	for ; y1 != 0; y1 &= y1 - 1 {
		k := i + 8 + bits.TrailingZeros64(y1)>>3
		if string(b[k-a:k-a+len(w)]) == w {
			return k - a
		}
	}
	return -1
}

// require is Config.Require, prepared for the search.
type require struct {
	word   string
	anchor int // index of a byte that is not a letter, or -1
}

func newRequire(word string) require {
	r := require{word: word, anchor: -1}
	for i := range len(word) {
		if !isLetter(word[i]) {
			r.anchor = i
			break
		}
	}
	return r
}

// index returns the index of the first r.word in b at or after from, ASCII
// case-insensitively, or -1. It anchors bytes.IndexByte on a byte that is
// not a letter (the '<' of "<form"), else on the first letter in both cases.
func (r *require) index(b []byte, from int) int {
	w := r.word
	if len(b)-from < len(w) {
		return -1
	}
	if a := r.anchor; a >= 0 {
		last := len(b) - len(w) + a
		for i := from + a; i <= last; i++ {
			k := bytes.IndexByte(b[i:last+1], w[a])
			if k < 0 {
				return -1
			}
			i += k
			if equalFoldASCII(b[i-a:i-a+len(w)], w) {
				return i - a
			}
		}
		return -1
	}
	lo, up := w[0]|0x20, w[0]&^0x20
	end := len(b) - len(w) + 1
	for i := from; i < end; i++ {
		k := bytes.IndexByte(b[i:end], lo)
		if ku := bytes.IndexByte(b[i:end], up); ku >= 0 && (k < 0 || ku < k) {
			k = ku
		}
		if k < 0 {
			return -1
		}
		i += k
		if equalFoldASCII(b[i:i+len(w)], w) {
			return i
		}
	}
	return -1
}

// equalFoldASCII reports whether b equals s, ASCII letters matched in
// either case.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(s) {
		x, y := b[i], s[i]
		if x != y && !(x|0x20 == y|0x20 && isLetter(x)) {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { c |= 0x20; return 'a' <= c && c <= 'z' }

// isSpace is HTML's ASCII whitespace.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }
