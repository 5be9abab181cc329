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
//   - So does a page without Require (ASCII case-insensitive), if set.
//   - Otherwise the snippet goes before the last "</body" (ASCII
//     case-insensitive, followed by whitespace, '/' or '>') that starts among
//     the last l.hold bytes of the input, else at the end.
func referenceSplice(doc []byte, in *Injector) []byte {
	l := spliceLimits
	if refHasMarker(doc, in, l.tagLen) {
		return bytes.Clone(doc)
	}
	if r := in.require.word; r != "" && !bytes.Contains(bytes.ToLower(doc), bytes.ToLower([]byte(r))) {
		return bytes.Clone(doc)
	}
	last := -1
	for i := range doc {
		if doc[i] == '<' && refTagAt(doc[i+1:], "/body") {
			last = i
		}
	}
	at := len(doc)
	if last >= 0 && len(doc)-last <= l.hold {
		at = last
	}
	out := append([]byte{}, doc[:at]...)
	out = append(out, in.snippet...)
	return append(out, doc[at:]...)
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
	"</html>", "<html>", "&lt;", "é", "\x00",
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
	for iter := range 20000 {
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
