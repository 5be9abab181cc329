package notice

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

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
