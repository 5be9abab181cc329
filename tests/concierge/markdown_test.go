package concierge_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

const (
	mdType     = "text/markdown; charset=utf-8"
	browser    = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	altOakLink = `</blog/caring-for-oak.html>; rel="alternate"; type="text/markdown"`
)

func varies(h http.Header, token string) bool {
	for _, v := range h.Values("Vary") {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func hasLink(h http.Header, link string) bool {
	return strings.Contains(strings.Join(h.Values("Link"), ", "), link)
}

// TestMarkdownNegotiation: an explicit Accept: text/markdown gets the page
// as Markdown with its headers; browsers, q=0 and non-HTML answers are
// untouched; HTML pages advertise the variant.
func TestMarkdownNegotiation(t *testing.T) {
	s := startSite(t, "")

	md := s.Get("/blog/caring-for-oak.html", "Accept", "text/markdown")
	want, err := os.ReadFile(filepath.Join(caddyproc.RepoRoot(), "markdown", "testdata", "demo-oak.md"))
	if err != nil {
		t.Fatal(err)
	}
	if md.StatusCode != 200 || md.Header.Get("Content-Type") != mdType || string(md.Bytes) != string(want) {
		t.Fatalf("markdown: %d %q\n%s", md.StatusCode, md.Header.Get("Content-Type"), md.Bytes)
	}
	if !varies(md.Header, "Accept") || md.Header.Get("X-Markdown-Tokens") == "" ||
		!strings.Contains(md.Header.Get("Content-Signal"), "ai-train=no") || !strings.Contains(md.Header.Get("Content-Signal"), "search=yes") {
		t.Errorf("markdown headers: %v", md.Header)
	}
	if strings.Contains(string(md.Bytes), "ahp-notice") || strings.Contains(string(md.Bytes), "<") {
		t.Errorf("markdown holds markup: %s", md.Bytes)
	}
	// Counted against the static tier (a conversion costs CPU).
	if md.Header.Get("X-Ratelimit-Limit") != "120" {
		t.Errorf("markdown is not counted as static: %q", md.Header.Get("X-Ratelimit-Limit"))
	}
	if hasLink(md.Header, `rel="alternate"`) {
		t.Errorf("the Markdown answer advertises itself: %q", md.Header.Values("Link"))
	}

	// A browser gets the HTML page, with the notice and the alternate.
	html := s.Get("/blog/caring-for-oak.html", "Accept", browser)
	if html.StatusCode != 200 || !strings.HasPrefix(html.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(html.Bytes), `class="ahp-notice"`) {
		t.Fatalf("browser: %d %q", html.StatusCode, html.Header.Get("Content-Type"))
	}
	if !hasLink(html.Header, altOakLink) || !hasLink(html.Header, `rel="ahp-manifest"`) {
		t.Errorf("HTML page links: %q", html.Header.Values("Link"))
	}
	if html.Header.Get("X-Ratelimit-Limit") != "" {
		t.Errorf("an ordinary page was rate limited")
	}

	// q=0 refuses Markdown; */* alone never asks for it.
	for _, accept := range []string{"text/markdown;q=0, text/html", "*/*", "text/html;q=0.9, text/markdown;q=0.5"} {
		r := s.Get("/blog/caring-for-oak.html", "Accept", accept)
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Errorf("Accept %q: %q", accept, r.Header.Get("Content-Type"))
		}
	}
	// Markdown preferred by weight.
	if r := s.Get("/about.html", "Accept", "text/html;q=0.5, text/markdown"); r.Header.Get("Content-Type") != mdType {
		t.Errorf("markdown preferred: %q", r.Header.Get("Content-Type"))
	}

	// Non-HTML answers pass through untouched, without the alternate.
	js := s.Get("/data.json", "Accept", "text/markdown, application/json;q=0.5")
	if js.StatusCode != 200 || js.Header.Get("Content-Type") != "application/json" || string(js.Bytes) != `{"pieces":["table","desk"]}` {
		t.Errorf("JSON: %d %q %s", js.StatusCode, js.Header.Get("Content-Type"), js.Bytes)
	}
	if css := s.Get("/style.css", "Accept", browser); hasLink(css.Header, `rel="alternate"`) || hasLink(js.Header, `rel="alternate"`) {
		t.Errorf("a non-HTML answer advertises Markdown: %q", css.Header.Values("Link"))
	}

	// HEAD announces what GET gets, without a body.
	head := s.Do(http.MethodHead, "/blog/caring-for-oak.html", nil, "Accept", "text/markdown")
	if head.StatusCode != 200 || head.Header.Get("Content-Type") != mdType || len(head.Bytes) != 0 {
		t.Errorf("HEAD: %d %q %d bytes", head.StatusCode, head.Header.Get("Content-Type"), len(head.Bytes))
	}

	// A missing page keeps its status.
	nf := s.Get("/no-such-page.html", "Accept", "text/markdown")
	if nf.StatusCode != 404 {
		t.Errorf("missing page: %d", nf.StatusCode)
	}
}

// TestMarkdownConditional: the Markdown variant has its own validator;
// If-None-Match with it gets 304 (with Vary: Accept), the HTML's does not
// match it, and a page the upstream compresses whatever it is asked is
// decoded and converted.
func TestMarkdownConditional(t *testing.T) {
	s := startSite(t, "")
	for _, path := range []string{"/blog/walnut-desk.html", "/gz.html"} {
		md := s.Get(path, "Accept", "text/markdown", "Accept-Encoding", "gzip")
		etag := md.Header.Get("Etag")
		if md.StatusCode != 200 || md.Header.Get("Content-Type") != mdType || md.Header.Get("Content-Encoding") != "" || !strings.HasPrefix(etag, `W/"`) {
			t.Fatalf("%s: %d %q %q etag %q\n%s", path, md.StatusCode, md.Header.Get("Content-Type"), md.Header.Get("Content-Encoding"), etag, md.Bytes)
		}
		if !strings.HasPrefix(string(md.Bytes), "# ") {
			t.Errorf("%s: not Markdown: %q", path, md.Bytes)
		}
		again := s.Get(path, "Accept", "text/markdown", "If-None-Match", etag)
		if again.StatusCode != http.StatusNotModified || len(again.Bytes) != 0 || !varies(again.Header, "Accept") || again.Header.Get("Etag") != etag {
			t.Errorf("%s: If-None-Match %s: %d vary %q etag %q", path, etag, again.StatusCode, again.Header.Values("Vary"), again.Header.Get("Etag"))
		}
		html := s.Get(path, "Accept", browser, "Accept-Encoding", "identity")
		if html.Header.Get("Etag") == etag {
			t.Errorf("%s: the HTML and the Markdown share the validator %s", path, etag)
		}
		// The HTML's validator does not make a Markdown request a 304.
		if h := html.Header.Get("Etag"); h != "" {
			if r := s.Get(path, "Accept", "text/markdown", "If-None-Match", h); r.StatusCode != 200 || r.Header.Get("Content-Type") != mdType {
				t.Errorf("%s: If-None-Match with the HTML's validator: %d %q", path, r.StatusCode, r.Header.Get("Content-Type"))
			}
		}
	}
	gz := s.Get("/gz.html", "Accept", "text/markdown")
	if !strings.Contains(string(gz.Bytes), "Gift cards for any amount") || !strings.Contains(string(gz.Bytes), "](http://127.0.0.1:") {
		t.Errorf("compressed page: %s", gz.Bytes)
	}
}

// TestMetrics: answers, Markdown conversions and the index's size are
// exposed through Caddy's admin /metrics.
func TestMetrics(t *testing.T) {
	s := startSite(t, "")
	s.converse(`{"capability":"content_search","query":"How do I care for oak?"}`)
	s.Get("/about.html", "Accept", "text/markdown")
	resp, err := caddyproc.Client.Get(fmt.Sprintf("http://localhost:%d/metrics", s.Admin))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	const site = `site="Harbor & Pine Furniture Co."`
	for _, want := range []string{
		`caddy_ahp_concierge_answers_total{` + site + `,status="200"} `,
		`caddy_ahp_markdown_converted_total{` + site + `} 1`,
		`caddy_ahp_concierge_index{` + site + `,what="pages"} 13`,
		`caddy_ahp_concierge_index{` + site + `,what="index_bytes"} `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
}
