package concierge

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
)

// genSite is a generated site of n pages for size and speed tests: a
// sitemap listing every page, pages of about pageWords words of text in
// sections under h2 headings, words drawn from a Zipf distribution over a
// vocabulary of pseudo-words (as natural text is), with navigation,
// footer and scripts around the main content like a real template.
type genSite struct {
	n         int
	pageWords int
	vocab     []string
}

func newGenSite(n, pageWords int) *genSite {
	syl := []string{"ka", "ro", "mi", "ten", "sel", "dor", "an", "ve", "lu", "pri", "gon", "sa", "ti", "ber", "ol", "nu", "fra", "el", "qui", "mos"}
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	var vocab []string
	for len(vocab) < 20000 {
		var b strings.Builder
		for k := 2 + r.IntN(3); k > 0; k-- {
			b.WriteString(syl[r.IntN(len(syl))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			vocab = append(vocab, w)
		}
	}
	return &genSite{n: n, pageWords: pageWords, vocab: vocab}
}

func (g *genSite) words(r *rand.Rand, z *rand.Zipf, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(g.vocab[z.Uint64()])
		if i%12 == 11 {
			b.WriteByte('.')
		}
	}
	return b.String()
}

// page renders page i; the same i always gives the same page.
func (g *genSite) page(i int) string {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	z := rand.NewZipf(r, 1.1, 2, uint64(len(g.vocab)-1))
	var b strings.Builder
	title := g.words(r, z, 4)
	fmt.Fprintf(&b, `<!DOCTYPE html><html><head><title>%s | Generated Site</title><script>var analytics = {id: %d};</script></head><body>`, title, i)
	b.WriteString(`<header><nav><a href="/">Home</a> <a href="/p/1">One</a> <a href="/p/2">Two</a></nav></header><main>`)
	fmt.Fprintf(&b, "<h1>%s</h1>", title)
	left := g.pageWords
	for s := 0; left > 0; s++ {
		fmt.Fprintf(&b, "<h2>%s</h2>", g.words(r, z, 3))
		for p := 0; p < 3 && left > 0; p++ {
			n := min(left, 40+r.IntN(40))
			fmt.Fprintf(&b, "<p>%s</p>", g.words(r, z, n))
			left -= n
		}
	}
	fmt.Fprintf(&b, `<p>See also <a href="/p/%d">another page</a>.</p></main><footer>Generated Site, 1 Example Street.</footer></body></html>`, (i*7+1)%g.n)
	return b.String()
}

func (g *genSite) fetch(ctx context.Context, path string) (int, http.Header, []byte, error) {
	switch {
	case path == "/sitemap.xml":
		var b strings.Builder
		b.WriteString(`<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">`)
		for i := 0; i < g.n; i++ {
			fmt.Fprintf(&b, "<url><loc>https://gen.example/p/%d</loc></url>", i)
		}
		b.WriteString("</urlset>")
		return 200, http.Header{"Content-Type": {"application/xml"}}, []byte(b.String()), nil
	case strings.HasPrefix(path, "/p/"):
		i, err := strconv.Atoi(path[3:])
		if err != nil || i < 0 || i >= g.n {
			break
		}
		return 200, http.Header{"Content-Type": {"text/html; charset=utf-8"}}, []byte(g.page(i)), nil
	}
	return 404, http.Header{"Content-Type": {"text/plain"}}, []byte("not found"), nil
}

// query returns a question made of words from page i's text, as an agent
// asking about that page would.
func (g *genSite) query(i int) string {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	z := rand.NewZipf(r, 1.1, 2, uint64(len(g.vocab)-1))
	title := g.words(r, z, 4)
	return "What about " + strings.Join(strings.Fields(title)[:2], " ") + "?"
}
