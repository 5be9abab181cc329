package notice

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	want := `<section class="ahp-notice" aria-label="AI Agent Notice" style="display:none">` +
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
	out, _ := spliceChunks(t, in, http.Header{"Content-Type": {"application/xhtml+xml"}}, []byte(page))
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
	want := `<section class="ahp-notice" aria-label="AI Agent Notice" style="display:none">` +
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "notice: ") {
				t.Fatalf("error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestSkipRequest(t *testing.T) {
	for _, tc := range []struct {
		method string
		header http.Header
		skip   bool
	}{
		{"GET", nil, false},
		{"POST", nil, false},
		{"GET", http.Header{"Accept-Encoding": {"gzip, br"}}, false},
		{"GET", http.Header{"Range": {"bytes=0-99"}}, false}, // decided by the 206 it gets
		{"HEAD", nil, true},
		{"CONNECT", nil, true},
		{"GET", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, true},
		{"GET", http.Header{"Connection": {"keep-alive, upgrade"}}, true},
		{"GET", http.Header{"Upgrade": {"h2c"}}, true},
		{"GET", http.Header{"Cache-Control": {"max-age=0, No-Transform"}}, true},
		{"GET", http.Header{"Cache-Control": {"no-cache"}}, false},
	} {
		r, _ := http.NewRequest(tc.method, "http://example.com/", nil)
		if tc.header != nil {
			r.Header = tc.header
		}
		if got := SkipRequest(r); (got != "") != tc.skip {
			t.Errorf("%s %v: SkipRequest = %q, want skip %v", tc.method, tc.header, got, tc.skip)
		}
	}
}

func TestSkipResponse(t *testing.T) {
	html := func(kv ...string) http.Header {
		h := http.Header{"Content-Type": {"text/html; charset=utf-8"}}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	for _, tc := range []struct {
		status int
		header http.Header
		skip   bool
	}{
		{200, html(), false},
		{404, html(), false},
		{500, html(), false},
		{302, html(), false},
		{429, html(), false},
		{200, http.Header{"Content-Type": {"text/html"}}, false},
		{200, http.Header{"Content-Type": {"TEXT/HTML; Charset=ISO-8859-1"}}, false},
		{200, http.Header{"Content-Type": {" text/html ;charset=utf-8"}}, false},
		{200, http.Header{"Content-Type": {"application/xhtml+xml"}}, false},
		{200, http.Header{"Content-Type": {"application/XHTML+XML; charset=utf-8"}}, false},
		{200, html("Content-Encoding", "gzip"), false}, // Begin decides on encodings
		{100, html(), true},
		{101, html(), true},
		{103, html(), true},
		{204, html(), true},
		{205, html(), true},
		{304, html(), true},
		{206, html(), true},
		{200, html("Content-Range", "bytes 0-99/1000"), true},
		{200, html("Cache-Control", "public, no-transform"), true},
		{200, html("Content-Disposition", "attachment; filename=page.html"), true},
		{200, html("Content-Disposition", "inline"), false},
		{200, http.Header{"Content-Type": {"text/event-stream"}}, true},
		{200, http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, true},
		{200, http.Header{"Content-Type": {"application/json"}}, true},
		{200, http.Header{"Content-Type": {"text/htmlx"}}, true},
		{200, http.Header{"Content-Type": {"image/svg+xml"}}, true},
		{200, http.Header{"Content-Type": {"application/xml"}}, true},
		{200, http.Header{}, true},
	} {
		if got := SkipResponse(tc.status, tc.header); (got != "") != tc.skip {
			t.Errorf("%d %v: SkipResponse = %q, want skip %v", tc.status, tc.header, got, tc.skip)
		}
	}
}

func TestBeginAdjustsHeader(t *testing.T) {
	in := mustNew(t, Config{})
	h := http.Header{
		"Content-Type":   {"text/html"},
		"Content-Length": {"1234"},
		"Accept-Ranges":  {"bytes"},
		"Etag":           {`"abc123"`},
		"Last-Modified":  {"Mon, 02 Jan 2006 15:04:05 GMT"},
		"Cache-Control":  {"public, max-age=60"},
		"Vary":           {"Accept-Encoding"},
		"Content-Digest": {"sha-256=:x:"},
		"Set-Cookie":     {"a=b"},
	}
	s, err := in.Begin(&bytes.Buffer{}, h)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := http.Header{
		"Content-Type":  {"text/html"},
		"Etag":          {`W/"abc123"`},
		"Last-Modified": {"Mon, 02 Jan 2006 15:04:05 GMT"},
		"Cache-Control": {"public, max-age=60"},
		"Vary":          {"Accept-Encoding"},
		"Set-Cookie":    {"a=b"},
	}
	if !maps.EqualFunc(h, want, func(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }) {
		t.Fatalf("header = %v\nwant %v", h, want)
	}

	weak := http.Header{"Etag": {`W/"abc"`}}
	s2, _ := in.Begin(&bytes.Buffer{}, weak)
	s2.Close()
	if got := weak.Get("Etag"); got != `W/"abc"` {
		t.Errorf("weak ETag became %q", got)
	}
}

func TestBeginUnsupportedEncoding(t *testing.T) {
	in := mustNew(t, Config{})
	for _, ce := range [][]string{{"compress"}, {"gzip, br"}, {"gzip", "gzip"}, {"zstd, identity, br"}, {"exi"}, {"dcb"}} {
		h := http.Header{"Content-Type": {"text/html"}, "Content-Encoding": ce, "Content-Length": {"10"}, "Etag": {`"x"`}}
		before := h.Clone()
		s, err := in.Begin(&bytes.Buffer{}, h)
		if !errors.Is(err, ErrUnsupportedEncoding) || s != nil {
			t.Errorf("%q: Begin = %v, %v; want ErrUnsupportedEncoding", ce, s, err)
		}
		if !maps.EqualFunc(h, before, func(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }) {
			t.Errorf("%q: header changed to %v", ce, h)
		}
	}
	for _, ce := range [][]string{nil, {""}, {"identity"}, {"GZIP"}, {"x-gzip"}, {"br, identity"}, {" zstd "}, {"Deflate"}} {
		h := http.Header{"Content-Encoding": ce}
		s, err := in.Begin(&bytes.Buffer{}, h)
		if err != nil {
			t.Errorf("%q: %v", ce, err)
			continue
		}
		s.Close()
	}
}
