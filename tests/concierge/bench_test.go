package concierge_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// genSite serves a generated site of n pages of about 600 words (a
// Zipf-distributed pseudo-word vocabulary, as natural text is, with
// navigation, scripts and a footer around the main content), with a
// sitemap listing them: the size the speed target names.
func genSite(tb testing.TB, n int) *httptest.Server {
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
	words := func(r *rand.Rand, z *rand.Zipf, n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(vocab[z.Uint64()])
		}
		return b.String()
	}
	page := func(i int) string {
		r := rand.New(rand.NewPCG(uint64(i), 7))
		z := rand.NewZipf(r, 1.1, 2, uint64(len(vocab)-1))
		var b strings.Builder
		title := words(r, z, 4)
		fmt.Fprintf(&b, `<!DOCTYPE html><html><head><title>%s | Generated Site</title><script>var a = %d;</script></head><body>`, title, i)
		b.WriteString(`<header><nav><a href="/">Home</a> <a href="/p/1">One</a></nav></header><main>`)
		fmt.Fprintf(&b, "<h1>%s</h1>", title)
		for left := 600; left > 0; {
			fmt.Fprintf(&b, "<h2>%s</h2>", words(r, z, 3))
			for p := 0; p < 3 && left > 0; p++ {
				k := min(left, 40+r.IntN(40))
				fmt.Fprintf(&b, "<p>%s.</p>", words(r, z, k))
				left -= k
			}
		}
		b.WriteString(`</main><footer>Generated Site, 1 Example Street.</footer></body></html>`)
		return b.String()
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch p := req.URL.Path; {
		case p == "/sitemap.xml":
			w.Header().Set("Content-Type", "application/xml")
			var b strings.Builder
			b.WriteString(`<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">`)
			for i := range n {
				fmt.Fprintf(&b, "<url><loc>http://%s/p/%d</loc></url>", req.Host, i)
			}
			b.WriteString("</urlset>")
			_, _ = io.WriteString(w, b.String())
		case strings.HasPrefix(p, "/p/"):
			i, err := strconv.Atoi(strings.TrimPrefix(p, "/p/"))
			if err != nil || i < 0 || i >= n {
				http.NotFound(w, req)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, page(i))
		case p == "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, page(0))
		default:
			http.NotFound(w, req)
		}
	}))
	tb.Cleanup(srv.Close)
	return srv
}

var indexBuilt = regexp.MustCompile(`"concierge index built","pages":(\d+),"passages":(\d+),"terms":(\d+),"text_bytes":(\d+),"index_bytes":(\d+)`)

// BenchmarkAnswer compares, through one real Caddy, a built-in answer on a
// 500-page site with what the README example did before: the same gateway
// proxying converse to a `respond` of a same-size canned answer, and with
// a bare `respond` of that body. Read the ratios in the same run. The
// index's size (the index's own estimate) and the Caddy process's
// resident memory are reported too.
//
//	go test -run '^$' -bench Answer -benchtime 2000x ./tests/concierge
func BenchmarkAnswer(b *testing.B) {
	gen := genSite(b, 500)
	canned := strings.Repeat("x", 1100) // about the size of a built-in answer
	cannedJSON := `{"status":"success","session_id":null,"response":{"content_type":"text/answer","answer":"` + canned + `"},"meta":{"tokens_used":300,"capability_used":"content_search","mode":"MODE2","cached":false}}`
	standin, proxied := caddyproc.FreePort(b), caddyproc.FreePort(b)
	ahpBlock := func(extra string) string {
		return `ahp {
		name "Generated Site"
		description "d"
		converse /agent/converse
		content_signals {
			ai_input true
		}
		capability content_search {
			mode MODE2
			description "Search"
			response_types text/answer
		}
		rate_limit off
` + extra + `
	}`
	}
	s := caddyproc.Start(b, fmt.Sprintf(`http://127.0.0.1:{{PORT}} {
	%s
	reverse_proxy %s
}
http://127.0.0.1:%d {
	%s
	handle /agent/* {
		reverse_proxy 127.0.0.1:%d
	}
	reverse_proxy %s
}
http://127.0.0.1:%d {
	header Content-Type application/json
	respond `+"`%s`"+` 200
}
`, ahpBlock("\t\tconcierge builtin"), strings.TrimPrefix(gen.URL, "http://"),
		proxied, ahpBlock(""), standin, strings.TrimPrefix(gen.URL, "http://"), standin, cannedJSON))

	deadline := time.Now().Add(60 * time.Second)
	for !indexBuilt.MatchString(s.Logs.String()) {
		if time.Now().After(deadline) {
			b.Fatalf("no index:\n%s", s.Logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := indexBuilt.FindStringSubmatch(s.Logs.String())
	pages, _ := strconv.Atoi(m[1])
	textBytes, _ := strconv.Atoi(m[4])
	indexBytes, _ := strconv.Atoi(m[5])

	// Questions made of words the site uses.
	probe := s.Get("/p/42")
	words := strings.Fields(regexp.MustCompile(`<[^>]*>|[.]`).ReplaceAllString(string(probe.Bytes), " "))
	var questions []string
	for i := 0; i+3 < len(words) && len(questions) < 50; i += 17 {
		questions = append(questions, fmt.Sprintf(`{"capability":"content_search","query":"%s %s %s"}`, words[i], words[i+1], words[i+3]))
	}
	post := func(b *testing.B, url, body string) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := caddyproc.Client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n < 200 {
			b.Fatalf("%s: %d, %d bytes", url, resp.StatusCode, n)
		}
	}
	answered := 0
	for _, q := range questions {
		_, a := (&site{Server: s}).converse(q)
		if len(a.sources()) > 0 {
			answered++
		}
	}
	if answered < len(questions)/2 {
		b.Fatalf("only %d of %d benchmark questions find a page", answered, len(questions))
	}
	b.Run("builtin", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			post(b, s.URL("/agent/converse"), questions[i%len(questions)])
		}
		b.ReportMetric(float64(pages), "pages")
		b.ReportMetric(float64(indexBytes)/(1<<20), "index_MiB")
		b.ReportMetric(float64(textBytes)/(1<<20), "text_MiB")
	})
	b.Run("proxied-respond", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			post(b, fmt.Sprintf("http://127.0.0.1:%d/agent/converse", proxied), questions[i%len(questions)])
		}
	})
	b.Run("respond", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			post(b, fmt.Sprintf("http://127.0.0.1:%d/", standin), questions[i%len(questions)])
		}
	})
	if rss := residentKB(s.Cmd.Process.Pid); rss > 0 {
		b.Logf("caddy resident memory after the runs: %d KiB; index %d bytes for %d pages (%d bytes of text)", rss, indexBytes, pages, textBytes)
	}
}

// residentKB reads a process's VmRSS (Linux), 0 elsewhere.
func residentKB(pid int) int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return 0
}

// BenchmarkMarkdown fetches the 72 KB benchmark page through one real
// Caddy as a browser gets it (HTML, with the notice) and as an agent
// asking for Markdown gets it: the cost of the conversion, end to end.
//
//	go test -run '^$' -bench Markdown -benchtime 300x ./tests/concierge
func BenchmarkMarkdown(b *testing.B) {
	var page []byte
	for _, p := range []string{"htmlinject/testdata/page70k.html", "notice/testdata/page70k.html"} {
		if raw, err := os.ReadFile(caddyproc.RepoRoot() + "/" + p); err == nil {
			page = raw
			break
		}
	}
	if page == nil {
		b.Fatal("the 72 KB benchmark page is missing")
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	}))
	b.Cleanup(up.Close)
	s := caddyproc.Start(b, fmt.Sprintf(`http://127.0.0.1:{{PORT}} {
	ahp {
		name "Bench"
		description "d"
		content_signals {
			ai_input true
		}
		rate_limit off
		markdown
	}
	reverse_proxy %s
}
`, strings.TrimPrefix(up.URL, "http://")))
	get := func(b *testing.B, accept, wantType string) int64 {
		req, _ := http.NewRequest(http.MethodGet, s.URL("/page.html"), nil)
		req.Header.Set("Accept", accept)
		resp, err := caddyproc.Client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), wantType) {
			b.Fatalf("%s: %d %q", accept, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return n
	}
	b.Run("html", func(b *testing.B) {
		var n int64
		for b.Loop() {
			n = get(b, "text/html", "text/html")
		}
		b.ReportMetric(float64(n), "body_bytes")
	})
	b.Run("markdown", func(b *testing.B) {
		var n int64
		for b.Loop() {
			n = get(b, "text/markdown", "text/markdown")
		}
		b.ReportMetric(float64(n), "body_bytes")
	})
}
