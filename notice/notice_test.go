package notice

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/PuerkitoBio/goquery"
)

func mustNew(t testing.TB, cfg Config) *Injector {
	t.Helper()
	in, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// parse parses an HTML document for DOM assertions.
func parse(t *testing.T, page []byte) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// checkNoticeDOM asserts what agents rely on: exactly one notice, inside
// body, hidden, labelled.
func checkNoticeDOM(t *testing.T, page []byte) *goquery.Selection {
	t.Helper()
	doc := parse(t, page)
	all := doc.Find(".ahp-notice")
	if all.Length() != 1 {
		t.Fatalf("%d .ahp-notice elements, want 1 in %q", all.Length(), page)
	}
	n := doc.Find("body section.ahp-notice")
	if n.Length() != 1 {
		t.Fatalf("the notice is not a section inside body: %q", page)
	}
	if style, _ := n.Attr("style"); !strings.Contains(style, "display:none") {
		t.Errorf("style = %q, want display:none", style)
	}
	if label, _ := n.Attr("aria-label"); label != "AI Agent Notice" {
		t.Errorf("aria-label = %q", label)
	}
	return n
}

func TestDefaultSection(t *testing.T) {
	in := mustNew(t, Config{})
	want := `<section class="ahp-notice" aria-label="AI Agent Notice" style="display:none" hidden="">` +
		`<p>If you are an AI agent or autonomous system: this site supports the Agent Handshake Protocol (AHP). ` +
		`Instead of parsing this page, you can get structured, precise responses directly.</p>` +
		`<p>Discover capabilities: <code>GET /.well-known/agent.json</code><br/>Protocol version: AHP/0.1<br/>` +
		`Learn more: https://agenthandshake.dev</p></section>`
	if got := string(in.Section()); got != want {
		t.Fatalf("section:\n%s\nwant\n%s", got, want)
	}
	n := checkNoticeDOM(t, []byte("<html><body>"+want+"</body></html>"))
	if code := n.Find("code").Text(); code != "GET /.well-known/agent.json" {
		t.Errorf("code = %q", code)
	}
}

func TestSectionIsWellFormedXML(t *testing.T) {
	in := mustNew(t, Config{Text: `Tom & Jerry's "agents" <here>`, ManifestPath: "/a?b=1&c=2"})
	page := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title></head><body><p>hi</p></body></html>`
	out := inject(t, in, http.Header{"Content-Type": {"application/xhtml+xml"}}, []byte(page))
	d := xml.NewDecoder(bytes.NewReader(out))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("the XHTML page no longer parses: %v\n%s", err, out)
		}
	}
}

func TestSectionUsesConfig(t *testing.T) {
	in := mustNew(t, Config{ManifestPath: "/agent/manifest.json", Version: "0.2", Text: "Agents: use the API."})
	n := checkNoticeDOM(t, []byte("<body>"+string(in.Section())+"</body>"))
	if got := n.Find("p").First().Text(); got != "Agents: use the API." {
		t.Errorf("first paragraph = %q", got)
	}
	if got := n.Find("code").Text(); got != "GET /agent/manifest.json" {
		t.Errorf("code = %q", got)
	}
	if !strings.Contains(n.Text(), "Protocol version: AHP/0.2") {
		t.Errorf("no version in %q", n.Text())
	}
}

func TestConfiguredStringsAreEscaped(t *testing.T) {
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)> & "quotes"`
	in := mustNew(t, Config{Text: evil, Version: evil, ManifestPath: "/x" + evil})
	n := checkNoticeDOM(t, []byte("<body>"+string(in.Section())+"</body>"))
	if n.Find("script, img").Length() != 0 {
		t.Fatalf("configured text injected markup: %s", in.Section())
	}
	if got := n.Find("p").First().Text(); got != evil {
		t.Errorf("text = %q, want it verbatim", got)
	}

	dir := t.TempDir()
	tpl := filepath.Join(dir, "notice.html")
	os.WriteFile(tpl, []byte(`<p>Welcome to {{.SiteName}}: see <a href="{{.ManifestPath}}">{{.ManifestPath}}</a> (AHP/{{.Version}})</p>`), 0o644)
	in = mustNew(t, Config{TemplateFile: tpl, SiteName: evil})
	n = checkNoticeDOM(t, []byte("<body>"+string(in.Section())+"</body>"))
	if n.Find("script, img").Length() != 0 {
		t.Fatalf("site name injected markup: %s", in.Section())
	}
	if got := n.Find("p").Text(); !strings.Contains(got, "Welcome to "+evil+": see") {
		t.Errorf("template text = %q", got)
	}
}

func TestTemplate(t *testing.T) {
	dir := t.TempDir()
	tpl := filepath.Join(dir, "notice.html")
	os.WriteFile(tpl, []byte(`<p>{{.SiteName}} speaks AHP/{{.Version}}: <code>GET {{.ManifestPath}}</code></p>`+"\n"), 0o644)
	in := mustNew(t, Config{TemplateFile: tpl, SiteName: "Example Shop"})
	want := `<section class="ahp-notice" aria-label="AI Agent Notice" style="display:none" hidden="">` +
		`<p>Example Shop speaks AHP/0.1: <code>GET /.well-known/agent.json</code></p>` + "\n</section>"
	if got := string(in.Section()); got != want {
		t.Fatalf("section = %q, want %q", got, want)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // in the message
	}{
		{"relative manifest path", Config{ManifestPath: "agent.json"}, "manifest path"},
		{"text and template", Config{Text: "x", TemplateFile: write("a.html", "x")}, "cannot both be set"},
		{"missing template", Config{TemplateFile: filepath.Join(dir, "nope.html")}, "fix the path"},
		{"template syntax", Config{TemplateFile: write("b.html", "{{.SiteName")}, "fix the template syntax"},
		{"unknown field", Config{TemplateFile: write("c.html", "{{.Owner}}")}, "{{.SiteName}}"},
		{"huge template", Config{TemplateFile: write("d.html", strings.Repeat("x", maxSectionSize))}, "keep it under"},
		// Fine HTML, but the section goes into XHTML pages too.
		{"template with a void element", Config{TemplateFile: write("e.html", `<p>Agents: see {{.ManifestPath}}<br>thanks</p>`)}, "not well-formed XML"},
		{"template with an HTML entity", Config{TemplateFile: write("f.html", `<p>AHP&nbsp;{{.Version}}</p>`)}, "&#160;"},
		{"template with an unclosed element", Config{TemplateFile: write("g.html", `<p>AHP {{.Version}}`)}, "g.html"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "notice: ") {
				t.Fatalf("error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// inject writes page through a Stream in one Write and returns the output.
func inject(t *testing.T, in *Injector, h http.Header, page []byte) []byte {
	t.Helper()
	var dst bytes.Buffer
	s, err := in.Begin(&dst, h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(page); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dst.Bytes()
}

// TestInjectsOnce: the notice goes before </body>, into the DOM, once; a
// page that carries one, by its class, passes through unchanged.
func TestInjectsOnce(t *testing.T) {
	in := mustNew(t, Config{})
	page := []byte("<html><head><title>t</title></head><body><p>hi</p></body></html>")
	out := inject(t, in, http.Header{"Content-Type": {"text/html"}}, page)
	if want := "<p>hi</p>" + string(in.Section()) + "</body>"; !strings.Contains(string(out), want) {
		t.Fatalf("got %q", out)
	}
	checkNoticeDOM(t, out)
	if again := inject(t, in, http.Header{}, out); !bytes.Equal(again, out) {
		t.Fatalf("a page with the notice was changed: %q", again)
	}
	other := []byte(`<html><body><div id="ahp-notice">x</div></body></html>`)
	if out := inject(t, in, http.Header{}, other); bytes.Equal(out, other) {
		t.Fatal("an id is not the notice's class: the page should get one")
	}
}

func TestSkipWrappers(t *testing.T) {
	r, _ := http.NewRequest("HEAD", "http://example.com/", nil)
	if SkipRequest(r) == "" {
		t.Error("HEAD should be skipped")
	}
	if SkipResponse(200, http.Header{"Content-Type": {"text/html"}}) != "" || SkipResponse(200, http.Header{"Content-Type": {"text/plain"}}) == "" {
		t.Error("SkipResponse should take HTML and only HTML")
	}
}

// abortingGzipNext is reverse_proxy when the upstream body breaks off, or
// the client goes away, in the middle of a gzip page: it flushes, then
// panics with http.ErrAbortHandler.
type abortingGzipNext struct{ body []byte }

func (p abortingGzipNext) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Content-Encoding", "gzip")
	w.WriteHeader(200)
	w.Write(p.body[:len(p.body)/2])
	http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler)
}

// TestAbortedCompressedPageReleasesItsDecoder: a compressed page that
// breaks off must not leave its decoding coroutine (and its decoder's
// window) behind; the panic still goes up, and nothing more is written.
func TestAbortedCompressedPageReleasesItsDecoder(t *testing.T) {
	pages := &Pages{Injector: mustNew(t, Config{})}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte("<html><body>" + strings.Repeat("<p>hello world</p>", 5000) + "</body></html>"))
	zw.Close()
	next := abortingGzipNext{body: buf.Bytes()}
	serve := func() (rec *httptest.ResponseRecorder, panicked any) {
		defer func() { panicked = recover() }() // net/http recovers ErrAbortHandler
		rec = httptest.NewRecorder()
		pages.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil), next)
		return rec, nil
	}
	serve()
	before := runtime.NumGoroutine()
	for range 100 {
		rec, panicked := serve()
		if panicked != http.ErrAbortHandler {
			t.Fatalf("the panic below became %v", panicked)
		}
		if rec.Body.Len() != 0 {
			t.Fatalf("an aborted compressed page wrote %d bytes", rec.Body.Len())
		}
	}
	// Coroutines end within Abort; give the runtime a bounded moment to
	// reap their goroutines.
	after := runtime.NumGoroutine()
	for deadline := time.Now().Add(2 * time.Second); after > before+5 && time.Now().Before(deadline); after = runtime.NumGoroutine() {
		runtime.Gosched()
	}
	if after > before+5 {
		t.Fatalf("goroutines: %d before, %d after 100 aborted gzip pages: each left its decoding coroutine behind", before, after)
	}
}

// TestMinifiedPageRawTextDecoy: html-minifier's removeOptionalTags drops
// </body></html>; the only "</body>" left may then be in a script string
// or a textarea's text. The notice goes into the DOM, once, and neither the
// script nor the textarea changes.
func TestMinifiedPageRawTextDecoy(t *testing.T) {
	in := mustNew(t, Config{})
	for _, page := range []string{
		`<!doctype html><title>x</title><p>hi<script>var frame = "<html><body></body></html>";</script>`,
		`<!doctype html><title>x</title><p>Paste your HTML:<textarea name=h><body></body></textarea>`,
	} {
		out := inject(t, in, http.Header{"Content-Type": {"text/html"}}, []byte(page))
		checkNoticeDOM(t, out)
		before, after := parse(t, []byte(page)).Find("script, textarea").Text(), parse(t, out).Find("script, textarea").Text()
		if before != after {
			t.Errorf("script/textarea text %q became %q", before, after)
		}
	}
}

// staticNext is a handler below that answers one page with a copy of hdr.
type staticNext struct {
	hdr  http.Header
	body []byte
}

func (s staticNext) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	for k, v := range s.hdr {
		w.Header()[k] = append([]string(nil), v...)
	}
	w.WriteHeader(200)
	_, err := w.Write(s.body)
	return err
}

func utf16le(s string) []byte {
	out := []byte{0xFF, 0xFE} // BOM
	for _, u := range utf16.Encode([]rune(s)) {
		out = append(out, byte(u), byte(u>>8))
	}
	return out
}

// TestUTF16PageIsNotCorrupted: ASCII bytes spliced into a UTF-16 page
// decode as garbage every visitor sees; such a page passes through, whether
// its Content-Type says utf-16 or only its byte order mark does.
func TestUTF16PageIsNotCorrupted(t *testing.T) {
	in := mustNew(t, Config{})
	page := utf16le("<!DOCTYPE html><html><head><meta charset=\"utf-16\"></head><body><p>hi</p></body></html>\n")
	for _, ct := range []string{"text/html; charset=utf-16", "text/html"} {
		next := staticNext{hdr: http.Header{"Content-Type": {ct}}, body: page}
		rec := httptest.NewRecorder()
		if err := (&Pages{Injector: in}).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil), next); err != nil {
			t.Fatal(err)
		}
		if got := rec.Body.Bytes(); !bytes.Equal(got, page) {
			t.Fatalf("%s: UTF-16 page changed: %d bytes in, %d out", ct, len(page), len(got))
		}
	}
}

// TestFragmentsGetNoNotice: an htmx / fetch() partial is not a page: each
// swap would add one more notice to the live DOM (or break table markup);
// nor is an empty body, and a prefixed XHTML page without </body> would no
// longer parse with the notice after its root.
func TestFragmentsGetNoNotice(t *testing.T) {
	pages := &Pages{Injector: mustNew(t, Config{})}
	frag := "<tr><td>row 41</td></tr>"
	html := http.Header{"Content-Type": {"text/html; charset=utf-8"}}
	for _, hdr := range []http.Header{{"Hx-Request": {"true"}}, {"Sec-Fetch-Dest": {"empty"}}, {}} {
		r := httptest.NewRequest("GET", "/rows?page=2", nil)
		maps.Copy(r.Header, hdr)
		rec := httptest.NewRecorder()
		pages.ServeHTTP(rec, r, staticNext{hdr: html, body: []byte(frag)})
		if got := rec.Body.String(); got != frag {
			t.Fatalf("request header %v: the fragment changed:\n%s", hdr, got)
		}
	}
	in := mustNew(t, Config{})
	if out := inject(t, in, html, nil); len(out) != 0 {
		t.Errorf("an empty text/html body became %d bytes", len(out))
	}
	x := `<?xml version="1.0"?><h:html xmlns:h="http://www.w3.org/1999/xhtml"><h:body><h:p>x</h:p></h:body></h:html>`
	if out := inject(t, in, http.Header{"Content-Type": {"application/xhtml+xml"}}, []byte(x)); string(out) != x {
		t.Errorf("prefixed XHTML: %s", out)
	}
}

// cachedHeader is what a handler below that serves cached responses hands
// out: the same value slices every time.
var cachedHeader = http.Header{"Content-Type": {"text/html"}, "Etag": {`"v1"`}}

type cachedNext struct{}

func (cachedNext) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	for k, v := range cachedHeader {
		w.Header()[k] = v
	}
	w.WriteHeader(200)
	w.Write([]byte("<html><body>x</body></html>"))
	return nil
}

// TestHeaderSlicesFromBelowAreNotEdited: weakening the ETag of a page with
// the notice must not rewrite (and race on) the slice the handler below
// shares between responses.
func TestHeaderSlicesFromBelowAreNotEdited(t *testing.T) {
	pages := &Pages{Injector: mustNew(t, Config{})}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			pages.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil), cachedNext{})
			if got := rec.Header().Get("Etag"); got != `W/"v1"` {
				t.Errorf("the page with the notice has ETag %s", got)
			}
		}()
	}
	wg.Wait()
	if got := cachedHeader["Etag"][0]; got != `"v1"` {
		t.Fatalf("the handler's own cached ETag value was rewritten to %s", got)
	}
}

// etagNext is file_server / http.ServeContent: 304 on a (weakly) matching
// If-None-Match, else the page (or, with css, a stylesheet).
type etagNext struct{ css bool }

func (n etagNext) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Etag", `"v1"`)
	if r.Header.Get("If-None-Match") != "" {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if n.css {
		w.Header().Set("Content-Type", "text/css")
		w.WriteHeader(200)
		w.Write([]byte("p{}"))
		return nil
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(200)
	w.Write([]byte("<html><body><p>hi</p></body></html>"))
	return nil
}

// TestNotModifiedCarriesTheETagOfThe200: RFC 9110 §15.4.5: a 304 carries
// the ETag the 200 would have carried: weak for a page with the notice,
// strong, as it was, for a stylesheet.
func TestNotModifiedCarriesTheETagOfThe200(t *testing.T) {
	pages := &Pages{Injector: mustNew(t, Config{})}
	for _, css := range []bool{false, true} {
		rec := httptest.NewRecorder()
		pages.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil), etagNext{css})
		etag200 := rec.Header().Get("Etag")
		if want := map[bool]string{false: `W/"v1"`, true: `"v1"`}[css]; etag200 != want {
			t.Fatalf("css %v: the 200 carries ETag %s, want %s", css, etag200, want)
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("If-None-Match", `"other", `+etag200)
		rec = httptest.NewRecorder()
		pages.ServeHTTP(rec, r, etagNext{css})
		if rec.Code != 304 || rec.Header().Get("Etag") != etag200 {
			t.Errorf("css %v: the 200 carried ETag %s; the 304 revalidating it: status %d, ETag %s", css, etag200, rec.Code, rec.Header().Get("Etag"))
		}
	}
}

// digestTrailerNext is reverse_proxy with an upstream that sends
// Content-Digest as a trailer (RFC 9530): announce, body, then the value.
type digestTrailerNext struct{ page []byte }

func (d digestTrailerNext) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Trailer", "Content-Digest")
	w.WriteHeader(200)
	w.Write(d.page)
	sum := sha256.Sum256(d.page)
	w.Header().Set("Content-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":")
	return nil
}

// TestDigestTrailerMatchesTheBody: a Content-Digest trailer must vouch for
// the bytes the client got.
func TestDigestTrailerMatchesTheBody(t *testing.T) {
	page := []byte("<html><body><p>hi</p></body></html>")
	pages := &Pages{Injector: mustNew(t, Config{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pages.ServeHTTP(w, r, digestTrailerNext{page})
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := sha256.Sum256(body)
	got := "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
	if d := resp.Trailer.Get("Content-Digest"); d != got {
		t.Fatalf("a body of %d bytes carries a Content-Digest trailer %q; the body's is %s", len(body), d, got)
	}
}

// streamingGzipNext is a progressively rendered page (SSR streaming)
// behind Caddy's encode: each part written and flushed. It records how
// many bytes the client had after the first flush.
type streamingGzipNext struct {
	head      string
	afterHead *int
}

func (s streamingGzipNext) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Content-Encoding", "gzip")
	w.WriteHeader(200)
	zw := gzip.NewWriter(w)
	zw.Write([]byte(s.head + strings.Repeat("<p>part</p>", 100)))
	zw.Flush()
	http.NewResponseController(w).Flush()
	*s.afterHead = w.(interface{ Unwrap() http.ResponseWriter }).Unwrap().(*httptest.ResponseRecorder).Body.Len()
	zw.Write([]byte("</body></html>"))
	return zw.Close()
}

// TestStreamedCompressedPage states the trade-off of docs/htmlinject.md: a
// compressed page is held until its end, Flush or not; a page that
// carries its own notice early streams once the notice is decoded.
func TestStreamedCompressedPage(t *testing.T) {
	pages := &Pages{Injector: mustNew(t, Config{})}
	head := "<!doctype html><html><head><title>t</title></head><body><h1>Loading</h1>"
	var n int
	rec := httptest.NewRecorder()
	pages.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil), streamingGzipNext{head, &n})
	if n != 0 {
		t.Errorf("%d bytes of a compressed page went out before its end", n)
	}
	own := `<section class="ahp-notice" hidden>AHP: GET /.well-known/agent.json</section>`
	rec = httptest.NewRecorder()
	pages.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil), streamingGzipNext{head + own, &n})
	if n == 0 {
		t.Errorf("a compressed page with its own notice did not stream: 0 bytes after the first flush")
	}
}
