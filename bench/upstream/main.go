// Command upstream is the legacy site the benchmarks put Caddy and nginx in
// front of: a realistic 70 KB HTML page, a small stylesheet, and a JSON
// stand-in for a concierge's converse endpoint.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9101", "listen address")
	size := flag.Int("page", 70<<10, "approximate size of the HTML page in bytes")
	flag.Parse()

	page := []byte(htmlPage(*size))
	css := []byte(strings.Repeat("body{font-family:Georgia,serif;margin:0 auto;max-width:46rem}\n", 32))
	answer := []byte(`{"status":"success","session_id":null,"response":{"content_type":"text/answer","answer":"The workshop is open Tuesday to Saturday, 10 to 6.","sources":[{"title":"Contact","url":"/contact.html","relevance":"direct"}]},"meta":{"tokens_used":42,"capability_used":"site_info","mode":"MODE2","cached":false}}`)

	mux := http.NewServeMux()
	serve := func(body []byte, ct string) http.HandlerFunc {
		length := strconv.Itoa(len(body))
		return func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{ct}
			h["Content-Length"] = []string{length}
			h["Cache-Control"] = []string{"no-cache"}
			_, _ = w.Write(body)
		}
	}
	mux.HandleFunc("/", serve(page, "text/html; charset=utf-8"))
	mux.HandleFunc("/style.css", serve(css, "text/css; charset=utf-8"))
	conv := serve(answer, "application/json")
	mux.HandleFunc("/agent/converse", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conv(w, r)
	})
	log.Printf("upstream on %s: / is %d bytes", *addr, len(page))
	log.Fatal(http.ListenAndServe(*addr, mux))
}

// htmlPage builds a deterministic page shaped like a real one: head with
// meta and styles, navigation, many articles with links, an inline script
// and a footer, then </body></html>.
func htmlPage(size int) string {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Harbor &amp; Pine Furniture Co. | Journal</title>
<link rel="stylesheet" href="/style.css">
<style>.card{border:1px solid #d8cbb8;padding:1rem;margin:1rem 0}.card h2{font-size:1.2rem}</style>
</head>
<body>
<header><a class="logo" href="/">Harbor &amp; Pine</a>
<nav><a href="/">Home</a> <a href="/blog/">Journal</a> <a href="/about.html">About</a> <a href="/contact.html">Contact</a></nav>
</header>
<main>
`)
	for i := 0; b.Len() < size-900; i++ {
		fmt.Fprintf(&b, `<article class="card" id="post-%d">
<h2><a href="/blog/post-%d.html">Workshop notes, part %d: choosing timber for a dining table</a></h2>
<p class="meta">Posted by <a href="/people/ingrid">Ingrid Lindqvist</a> on <time datetime="2026-03-%02d">March %d, 2026</time></p>
<p>Quartersawn white oak moves less with the seasons than flatsawn boards, which matters for a top that spans
two metres. We dry every board for eighteen months before it reaches the bench, then let it rest in the shop
for another two weeks so that it settles to our humidity. <a href="/blog/post-%d.html#more">Read more</a></p>
</article>
`, i, i, i, i%28+1, i%28+1, i)
	}
	b.WriteString(`</main>
<script>
  // analytics snippet of an old template; a closing tag in a string: "</body>"
  window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);}
</script>
<footer><p>Harbor &amp; Pine Furniture Co., 1200 NW Naito Pkwy, Portland, OR.</p></footer>
</body>
</html>
`)
	return b.String()
}
