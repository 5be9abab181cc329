package htmlinject

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// referenceSplice states the splicing rules over a whole input, plainly and
// without streaming; the streaming splicer must give the same bytes however
// the input is cut. With l = spliceLimits:
//
//   - A page that carries the marker passes unchanged: some marker lies in
//     the start tag opened by the last '<' before it, at most l.tagLen bytes
//     back, after the tag's name (with MarkerAttr, as a whole token of that
//     attribute's value).
//   - So does a page without Require (ASCII case-insensitive), if set, and
//     one whose first two bytes hold a NUL, or whose first is FE or FF (UTF-16
//     or UTF-32, with or without a byte order mark), and one whose first byte
//     other than whitespace (after a UTF-8 byte order mark opening it) is
//     '{' or '[' (JSON labelled as HTML).
//   - Otherwise the snippet goes before the last "</body" (ASCII
//     case-insensitive, followed by whitespace, '/' or '>') that starts among
//     the last l.hold bytes of the input, else at the end, if the input
//     is a document: some '<' starts a "!doctype", "html", "head" or "body"
//     tag (refIsDocument); else nowhere.
//   - But never where refInTag says the position may be inside a tag, or
//     refInRawText that it may be in a script's or a textarea's text: such
//     a "</body" sends the snippet to the end; an end there leaves the page
//     unchanged.
func referenceSplice(doc []byte, in *Injector) []byte {
	at, ok := refSplicePos(doc, in)
	if !ok {
		return bytes.Clone(doc)
	}
	out := append([]byte{}, doc[:at]...)
	out = append(out, in.snippet...)
	return append(out, doc[at:]...)
}

// refSplicePos is where referenceSplice puts the snippet, if anywhere.
func refSplicePos(doc []byte, in *Injector) (int, bool) {
	l := spliceLimits
	if refHasMarker(doc, in, l.tagLen) {
		return 0, false
	}
	if refForeignLead(doc) || refJSONLead(doc) {
		return 0, false
	}
	if r := in.require.word; r != "" && !bytes.Contains(bytes.ToLower(doc), bytes.ToLower([]byte(r))) {
		return 0, false
	}
	last := -1
	for i := range doc {
		if doc[i] == '<' && refTagAt(doc[i+1:], "/body") {
			last = i
		}
	}
	at := len(doc)
	if last >= 0 && len(doc)-last <= l.hold && !refCannotClear(doc, last) {
		at = last
	}
	if at == len(doc) && !refIsDocument(doc) {
		return 0, false
	}
	if at == len(doc) && refCannotClear(doc, at) {
		return 0, false
	}
	return at, true
}

// refInTag reports whether position p of doc may lie inside a tag: both
// tests of intag.go say so. The quick one: an opener ('<' and an ASCII
// letter, '/', '!' or '?') starts after the last '>' before p, or that '>'
// exists and the last double or single quote before it follows a '=' and
// optional whitespace. The second: refStates, over the histKeep bytes
// before p, from the data state at the start of the document, else from
// every state, ends in one of tagStates (in a tag, or a bogus comment).
func refInTag(doc []byte, p int) bool {
	return refQuickInTag(doc, p) && refStatesInTag(doc, p, spliceLimits.histKeep())
}

// refForeignLead: not ASCII-compatible (UTF-16, UTF-32): a NUL among the
// first two bytes, or an FE or FF first.
func refForeignLead(doc []byte) bool {
	return len(doc) > 0 && (doc[0] == 0 || doc[0] == 0xFE || doc[0] == 0xFF) || len(doc) > 1 && doc[1] == 0
}

// refJSONLead: the first byte other than whitespace, after a UTF-8 byte
// order mark opening the document, opens JSON.
func refJSONLead(doc []byte) bool {
	t := bytes.TrimLeft(bytes.TrimPrefix(doc, []byte(utf8BOM)), " \t\n\f\r")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// refIsDocument: some '<' starts "!doctype", "html", "head" or "body"
// (ASCII case-insensitive) followed by whitespace, '/' or '>'.
func refIsDocument(doc []byte) bool {
	for i := range doc {
		if doc[i] == '<' && (refTagAt(doc[i+1:], "!doctype") || refTagAt(doc[i+1:], "html") ||
			refTagAt(doc[i+1:], "head") || refTagAt(doc[i+1:], "body")) {
			return true
		}
	}
	return false
}

// refCannotClear: refInTag, or refInRawText.
func refCannotClear(doc []byte, p int) bool {
	return refInTag(doc, p) || refInRawText(doc, p)
}

// refInRawText reports whether, going back from p over at most histKeep
// bytes, the first tag of a raw text element (script, style, textarea,
// title, xmp, iframe, noembed, noframes, noscript, plaintext, template)
// met is a start tag rather than an end tag.
func refInRawText(doc []byte, p int) bool {
	names := []string{"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript", "plaintext", "template"}
	for i := p - 1; i >= max(0, p-spliceLimits.histKeep()); i-- {
		if doc[i] != '<' {
			continue
		}
		for _, name := range names {
			if refTagAt(doc[i+1:], name) {
				return true
			}
			if refTagAt(doc[i+1:], "/"+name) {
				return false
			}
		}
	}
	return false
}

func refQuickInTag(doc []byte, p int) bool {
	g := bytes.LastIndexByte(doc[:p], '>')
	for i := g + 1; i < p; i++ {
		if doc[i] == '<' && i+1 < len(doc) && (isLetter(doc[i+1]) || doc[i+1] == '/' || doc[i+1] == '!' || doc[i+1] == '?') {
			return true
		}
	}
	if g < 0 {
		return false
	}
	for _, quote := range []byte{'"', '\''} {
		q := bytes.LastIndexByte(doc[:g], quote)
		if q < 0 {
			continue
		}
		i := q - 1
		for i >= 0 && isSpace(doc[i]) {
			i--
		}
		if i >= 0 && doc[i] == '=' {
			return true
		}
	}
	return false
}

func refStatesInTag(doc []byte, p, lookBack int) bool {
	from := max(0, p-lookBack)
	var states []int
	if from == 0 {
		states = []int{stData}
	} else {
		for st := range numStates {
			states = append(states, st)
		}
	}
	for _, c := range doc[from:p] {
		seen := map[int]bool{}
		var next []int
		for _, st := range states {
			n := refStep(st, c)
			if !seen[n] {
				seen[n] = true
				next = append(next, n)
			}
		}
		states = next
	}
	for _, st := range states {
		if tagStates&(1<<st) != 0 {
			return true
		}
	}
	return false
}

// refStep is the tokenizer's transition, written out from the states of
// WHATWG HTML §13.2.5 (tags, attributes, comments; bogus comments standing
// for DOCTYPEs), with reconsuming resolved.
func refStep(st int, c byte) int {
	letter := isLetter(c)
	space := isSpace(c)
	switch st {
	case stData:
		if c == '<' {
			return stTagOpen
		}
		return stData
	case stTagOpen:
		switch {
		case letter:
			return stTagName
		case c == '/':
			return stEndTagOpen
		case c == '!':
			return stMarkupDecl
		case c == '?':
			return stBogusComment
		}
		return refStep(stData, c)
	case stEndTagOpen:
		switch {
		case letter:
			return stTagName
		case c == '>':
			return stData
		}
		return refStep(stBogusComment, c)
	case stTagName:
		switch {
		case space:
			return stBeforeAttr
		case c == '/':
			return stSelfClosing
		case c == '>':
			return stData
		}
		return stTagName
	case stBeforeAttr:
		switch {
		case space:
			return stBeforeAttr
		case c == '/', c == '>':
			return refStep(stAfterAttrName, c)
		}
		return stAttrName
	case stAttrName:
		switch {
		case space, c == '/', c == '>':
			return refStep(stAfterAttrName, c)
		case c == '=':
			return stBeforeValue
		}
		return stAttrName
	case stAfterAttrName:
		switch {
		case space:
			return stAfterAttrName
		case c == '/':
			return stSelfClosing
		case c == '=':
			return stBeforeValue
		case c == '>':
			return stData
		}
		return refStep(stAttrName, c)
	case stBeforeValue:
		switch {
		case space:
			return stBeforeValue
		case c == '"':
			return stDQValue
		case c == '\'':
			return stSQValue
		case c == '>':
			return stData
		}
		return refStep(stUnquoted, c)
	case stDQValue:
		if c == '"' {
			return stAfterQuoted
		}
		return stDQValue
	case stSQValue:
		if c == '\'' {
			return stAfterQuoted
		}
		return stSQValue
	case stUnquoted:
		switch {
		case space:
			return stBeforeAttr
		case c == '>':
			return stData
		}
		return stUnquoted
	case stAfterQuoted:
		switch {
		case space:
			return stBeforeAttr
		case c == '/':
			return stSelfClosing
		case c == '>':
			return stData
		}
		return refStep(stBeforeAttr, c)
	case stSelfClosing:
		if c == '>' {
			return stData
		}
		return refStep(stBeforeAttr, c)
	case stBogusComment:
		if c == '>' {
			return stData
		}
		return stBogusComment
	case stMarkupDecl:
		if c == '-' {
			return stMarkupDash
		}
		return refStep(stBogusComment, c)
	case stMarkupDash:
		if c == '-' {
			return stCommentStart
		}
		return refStep(stBogusComment, c)
	case stCommentStart:
		switch c {
		case '-':
			return stCommentDash1
		case '>':
			return stData
		}
		return refStep(stComment, c)
	case stCommentDash1:
		switch c {
		case '-':
			return stCommentEnd
		case '>':
			return stData
		}
		return refStep(stComment, c)
	case stComment:
		if c == '-' {
			return stCommentDash
		}
		return stComment
	case stCommentDash:
		if c == '-' {
			return stCommentEnd
		}
		return refStep(stComment, c)
	case stCommentEnd:
		switch c {
		case '>':
			return stData
		case '!':
			return stCommentBang
		case '-':
			return stCommentEnd
		}
		return refStep(stComment, c)
	case stCommentBang:
		switch c {
		case '-':
			return stCommentDash
		case '>':
			return stData
		}
		return refStep(stComment, c)
	}
	panic("unknown state")
}

// refTagAt reports whether b starts with name (ASCII case-insensitive)
// followed by a byte that ends a tag name.
func refTagAt(b []byte, name string) bool {
	if len(b) <= len(name) {
		return false
	}
	for k := range len(name) {
		c := b[k]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[k] {
			return false
		}
	}
	switch b[len(name)] {
	case ' ', '\t', '\n', '\f', '\r', '/', '>':
		return true
	}
	return false
}

// refHasMarker: some marker lies in the start tag opened by the last '<'
// before it, that tag being at most tagLen bytes long up to the word, after
// the tag's name (or, with an attribute, as a token of its value).
func refHasMarker(doc []byte, in *Injector, tagLen int) bool {
	m := in.marker
	if m.word == "" {
		return false
	}
	for q := 0; ; q++ {
		k := bytes.Index(doc[q:], []byte(m.word))
		if k < 0 {
			return false
		}
		q += k
		t := bytes.LastIndexByte(doc[:q], '<')
		if t < 0 || q-t > tagLen || !isLetter(doc[t+1]) {
			continue
		}
		tag := doc[t:q]
		if m.attr == "" {
			if !bytes.ContainsRune(tag, '>') && bytes.ContainsAny(tag, " \t\n\f\r/") {
				return true
			}
			continue
		}
		after, hasAfter := byte(0), false
		if e := q + len(m.word); e < len(doc) {
			after, hasAfter = doc[e], true
		}
		if attrHasToken(tag, m.attr, after, hasAfter) {
			return true
		}
	}
}

// withLimits runs the rest of the test with the splicer's bounds shrunk to
// l, so that small inputs reach the window's edges.
func withLimits(t testing.TB, l limits) {
	saved := spliceLimits
	spliceLimits = l
	t.Cleanup(func() { spliceLimits = saved })
}

// smallLimits picks small bounds from r: windows of a few dozen bytes,
// short tags, and slack that may or may not hold the snippet at Close.
func smallLimits(r *rand.Rand) limits {
	return limits{hold: 1 + r.IntN(80), tagLen: 1 + r.IntN(40), slack: []int{0, 1, 64, 4096}[r.IntN(4)]}
}

// spliceChunks writes body through a Stream in the given chunk sizes
// (repeating the last one) and returns what reached dst.
func spliceChunks(t testing.TB, in *Injector, h http.Header, body []byte, sizes ...int) ([]byte, *Stream) {
	t.Helper()
	var dst bytes.Buffer
	s, err := in.Begin(&dst, h)
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	for k := 0; len(body) > 0; k++ {
		n := len(body)
		if len(sizes) > 0 {
			n = sizes[min(k, len(sizes)-1)]
		}
		n = max(1, min(n, len(body)))
		if w, err := s.Write(body[:n]); err != nil || w != n {
			t.Fatalf("Write: %d, %v", w, err)
		}
		body = body[n:]
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return dst.Bytes(), s
}

// spliceRandomly writes body in random chunks with a Flush after some of
// them, checks that each Flush leaves nothing held but a </body> and what
// follows it or a "</bod" cut at the end, and returns what reached dst.
func spliceRandomly(t testing.TB, in *Injector, body []byte, r *rand.Rand) []byte {
	t.Helper()
	var dst bytes.Buffer
	s, err := in.Begin(&dst, http.Header{})
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, n := range randomChunks(r, len(body)) {
		if _, err := s.Write(body[sent : sent+n]); err != nil {
			t.Fatal(err)
		}
		sent += n
		if r.IntN(3) > 0 {
			continue
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		if s.sp.found {
			continue
		}
		// Nothing is inserted before Close, so dst has a prefix of the body.
		held := body[dst.Len():sent]
		if len(held) > 0 && !isCandidate(held) && !(len(held) <= len(bodyEnd) && isBodyEndPrefix(held)) {
			t.Fatalf("after Flush %d bytes are held: %q", len(held), held)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dst.Bytes()
}

// randomChunks cuts n bytes at random places, favouring small pieces.
func randomChunks(r *rand.Rand, n int) []int {
	var sizes []int
	for n > 0 {
		k := 1 + r.IntN(min(n, 1+r.IntN(64)))
		if r.IntN(8) == 0 {
			k = 1 + r.IntN(n)
		}
		sizes = append(sizes, k)
		n -= k
	}
	return sizes
}

// writeChunks writes body to w in the given sizes.
func writeChunks(w io.Writer, body []byte, sizes []int) error {
	for _, n := range sizes {
		if _, err := w.Write(body[:n]); err != nil {
			return err
		}
		body = body[n:]
	}
	return nil
}

// vocabulary for generated documents: the tokens the scanner cares about,
// in pieces, plus filler.
var vocabulary = []string{
	"<", ">", "/", "</", "<!", "-", "--", "-->", "<!--", "!", " ", "\n", "\t", "=", `"`, "'",
	"</body>", "</BODY >", "</body", "</bOdY/", "</bod", "<body>", "body", "<p>", "</p>", "text ", "a", "<div ", "<section ",
	"<script>", "</script>", "<SCRIPT ", "</script", "<style>", "</style>", "<title>", "</title>",
	"<textarea>", "</textarea>", "<noscript>", "</noscript>", "<xmp>", "</xmp>", "<s", "<t", "<n",
	"ahp-notice", "ahp-", "notice", "class", "CLASS", "class=", `class="`, "class='", `class="ahp-notice"`,
	`class=ahp-notice `, `<section class="ahp-notice">`, `<div class="x ahp-notice y">`, `id="ahp-notice"`,
	"</html>", "<html>", "<!doctype html>", "<HEAD>", "<!DOCTYPE", "&lt;", "é", "\x00",
	"<form", "<FORM ", "<for", "m", "hpp-client", "hpp-", "client", `id="hpp-client"`, "<i data-hpp-client>",
}

func randomDoc(r *rand.Rand, n int) []byte {
	var b strings.Builder
	for range n {
		b.WriteString(vocabulary[r.IntN(len(vocabulary))])
	}
	return []byte(b.String())
}

// handshakeConfig is the other user's: a script for pages with a form,
// marked by a word anywhere in a start tag.
func handshakeConfig() Config {
	return Config{Snippet: []byte(`<script src="/handshake/client.js" defer></script>`), Marker: "hpp-client", Require: "<form"}
}

// testConfigs are the configurations the randomised tests cycle through.
var testConfigs = []func() Config{noticeConfig, handshakeConfig,
	func() Config { return Config{Snippet: []byte("<b>x</b>")} },           // no marker, no requirement
	func() Config { c := handshakeConfig(); c.Require = "body"; return c }, // a letter anchor
}

func TestSpliceMatchesReference(t *testing.T) {
	var ins []*Injector
	for _, c := range testConfigs {
		ins = append(ins, mustNew(t, c()))
	}
	r := rand.New(rand.NewPCG(1, 2))
	defaults := spliceLimits
	withLimits(t, defaults)
	for iter := range iterations(20000) {
		spliceLimits = defaults
		if iter%2 == 1 {
			spliceLimits = smallLimits(r)
		}
		doc := randomDoc(r, r.IntN(60))
		in := ins[iter%len(ins)]
		want := referenceSplice(doc, in)
		for _, sizes := range [][]int{nil, {1}, randomChunks(r, len(doc)), randomChunks(r, len(doc))} {
			got, _ := spliceChunks(t, in, http.Header{}, doc, sizes...)
			if !bytes.Equal(got, want) {
				t.Fatalf("iteration %d, limits %+v, chunks %v:\ninput %q\ngot   %q\nwant  %q", iter, spliceLimits, sizes, doc, got, want)
			}
		}
		if got := spliceRandomly(t, in, doc, r); !bytes.Equal(got, want) {
			t.Fatalf("iteration %d, limits %+v, with flushes:\ninput %q\ngot   %q\nwant  %q", iter, spliceLimits, doc, got, want)
		}
	}
}
