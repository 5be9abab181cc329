package notice

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
// the input is cut.
func referenceSplice(in, section []byte) []byte {
	text := make([]bool, len(in)) // positions the tokenizer sees as text
	last := -1                    // the last real </body>
	for i := 0; i < len(in); {
		text[i] = true
		if in[i] != '<' {
			i++
			continue
		}
		rest := in[i+1:]
		switch {
		case refTagAt(rest, "/body"):
			last = i
			i++
		case bytes.HasPrefix(rest, []byte("!--")):
			// The comment's content starts at the first '-', so that "<!-->"
			// is a whole comment.
			end := len(in)
			if k := bytes.Index(in[i+2:], []byte("-->")); k >= 0 {
				end = i + 2 + k + 3
			}
			text[i+1] = true
			i = end
		default:
			name := ""
			for _, n := range rawTextElements {
				if refTagAt(rest, n) {
					name = n
				}
			}
			if name == "" {
				i++
				continue
			}
			for k := i + 1; k <= i+len(name); k++ {
				text[k] = true
			}
			// Raw text runs to the first matching end tag.
			end := len(in)
			for j := i + 1 + len(name); j+1 < len(in); j++ {
				if in[j] == '<' && refTagAt(in[j+1:], "/"+name) {
					end = j + 2 + len(name)
					break
				}
			}
			i = end
		}
	}
	if refHasNotice(in, text) {
		return bytes.Clone(in)
	}
	at := len(in)
	if last >= 0 && len(in)-last <= maxHold {
		at = last
	}
	out := append([]byte{}, in[:at]...)
	out = append(out, section...)
	return append(out, in[at:]...)
}

// refTagAt reports whether b starts with name (ASCII case-insensitive)
// followed by a byte that ends a tag name.
func refTagAt(b []byte, name string) bool {
	if len(b) <= len(name) || !bytes.EqualFold(b[:len(name)], []byte(name)) {
		return false
	}
	switch b[len(name)] {
	case ' ', '\t', '\n', '\f', '\r', '/', '>':
		return true
	}
	return false
}

// refHasNotice: some "ahp-notice" in text is a class token of the start tag
// opened by the last '<' before it, that tag being at most maxTagLen bytes
// long up to the word.
func refHasNotice(in []byte, text []bool) bool {
	t := -1 // the last '<' before q
	for q, from := 0, 0; ; q++ {
		k := bytes.Index(in[q:], []byte(noticeClass))
		if k < 0 {
			return false
		}
		q += k
		if lt := bytes.LastIndexByte(in[from:q], '<'); lt >= 0 {
			t = from + lt
		}
		from = q
		if !text[q] || t < 0 || !isLetter(in[t+1]) || q-t > maxTagLen {
			continue
		}
		after, hasAfter := byte(0), false
		if e := q + len(noticeClass); e < len(in) {
			after, hasAfter = in[e], true
		}
		if classHasToken(in[t:q], after, hasAfter) {
			return true
		}
	}
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
	"</body>", "</BODY >", "</body", "<body>", "body", "<p>", "</p>", "text ", "a", "<div ", "<section ",
	"<script>", "</script>", "<SCRIPT ", "</script", "<style>", "</style>", "<title>", "</title>",
	"<textarea>", "</textarea>", "<noscript>", "</noscript>", "<xmp>", "</xmp>", "<s", "<t", "<n",
	"ahp-notice", "ahp-", "notice", "class", "CLASS", "class=", `class="`, "class='", `class="ahp-notice"`,
	`class=ahp-notice `, `<section class="ahp-notice">`, `<div class="x ahp-notice y">`, `id="ahp-notice"`,
	"</html>", "<html>", "&lt;", "é", "\x00",
}

func randomDoc(r *rand.Rand, n int) []byte {
	var b strings.Builder
	for range n {
		b.WriteString(vocabulary[r.IntN(len(vocabulary))])
	}
	return []byte(b.String())
}

func TestSpliceMatchesReference(t *testing.T) {
	in := mustNew(t, Config{})
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 20000 {
		doc := randomDoc(r, r.IntN(60))
		want := referenceSplice(doc, in.Section())
		for _, sizes := range [][]int{nil, {1}, randomChunks(r, len(doc)), randomChunks(r, len(doc))} {
			got, _ := spliceChunks(t, in, http.Header{}, doc, sizes...)
			if !bytes.Equal(got, want) {
				t.Fatalf("iteration %d, chunks %v:\ninput %q\ngot   %q\nwant  %q", iter, sizes, doc, got, want)
			}
		}
	}
}
