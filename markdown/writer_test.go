package markdown

import (
	"bufio"
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

func TestWants(t *testing.T) {
	cases := []struct {
		accept []string
		method string
		want   bool
	}{
		{[]string{"text/markdown"}, "GET", true},
		{[]string{"text/markdown"}, "HEAD", true},
		{[]string{"text/markdown"}, "POST", false},
		{[]string{"TEXT/Markdown; charset=utf-8"}, "GET", true},
		{[]string{"text/markdown, text/html, */*"}, "GET", true},          // named first (Claude Code's order)
		{[]string{"text/html, text/markdown"}, "GET", false},              // HTML named first at the same weight
		{[]string{"text/html;q=0.9, text/markdown"}, "GET", true},         // higher weight
		{[]string{"text/markdown;q=0.9, text/html"}, "GET", false},        // lower weight
		{[]string{"text/markdown;q=0.5, */*"}, "GET", false},              // */* gives HTML 1.0
		{[]string{"text/markdown, */*;q=0.8"}, "GET", true},               // above the wildcard
		{[]string{"text/markdown;q=0.5, text/*;q=0.4, */*"}, "GET", true}, // text/* is more specific than */*
		{[]string{"text/markdown;q=0"}, "GET", false},
		{[]string{"text/markdown;q=0.000"}, "GET", false},
		{[]string{"text/markdown;q=1.5"}, "GET", false}, // malformed weight: does not count
		{[]string{"text/markdown;q=abc, text/html"}, "GET", false},
		{[]string{"*/*"}, "GET", false},
		{[]string{"text/*"}, "GET", false},
		{[]string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, "GET", false}, // a browser
		{[]string{"text/html", "text/markdown;q=0.2"}, "GET", false},                                // two header lines
		{[]string{"text/html;q=0.1", "text/markdown;q=0.2"}, "GET", true},
		{[]string{`text/html;foo="a,text/markdown"`}, "GET", false}, // inside a quoted parameter
		{[]string{"text/x-markdown"}, "GET", false},
		{nil, "GET", false},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(tc.method, "/", nil)
		r.Header["Accept"] = tc.accept
		if got := Wants(r); got != tc.want {
			t.Errorf("%s Accept %q: Wants = %v, want %v", tc.method, tc.accept, got, tc.want)
		}
	}
}

// upstream is a next handler for the writer tests.
type upstream func(w http.ResponseWriter, r *http.Request)

// serve runs one Markdown request through Begin/next/Finish and returns
// the recorded response and the request the upstream saw.
func serve(t *testing.T, c *Converter, req *http.Request, next upstream) (*httptest.ResponseRecorder, *http.Request) {
	t.Helper()
	rec := httptest.NewRecorder()
	var seen *http.Request
	mw := c.Begin(rec, req, nil)
	next(mw, req)
	seen = req
	if err := mw.Finish(); err != nil {
		t.Fatal(err)
	}
	return rec, seen
}

func mdRequest(target string) *http.Request {
	r := httptest.NewRequest("GET", target, nil)
	r.Host = "shop.example"
	r.Header.Set("Accept", "text/markdown")
	r.Header.Set("Accept-Encoding", "gzip, br")
	return r
}

const oakPage = `<!DOCTYPE html><html><head><title>Caring for oak | Harbor &amp; Pine</title></head>
<body><nav><a href="/">Home</a></nav><main><h1>Caring for an oak table</h1><p>Keep the room at 35–55% humidity. <a href="/contact.html">Ask us</a>.</p></main>
<footer>Footer</footer></body></html>`

const oakMarkdown = "# Caring for an oak table\n\nKeep the room at 35–55% humidity. [Ask us](http://shop.example/contact.html).\n"

func htmlUpstream(body string, extra http.Header) upstream {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		h.Set("Accept-Ranges", "bytes")
		h.Set("Vary", "Accept-Encoding")
		for k, v := range extra {
			h[k] = v
		}
		w.WriteHeader(200)
		io.WriteString(w, body)
	}
}

func TestConvertsHTML(t *testing.T) {
	c := New(Options{ContentSignal: "ai-train=no, search=yes, ai-input=yes"})
	req := mdRequest("/blog/oak.html")
	req.Header.Set("Range", "bytes=0-10")
	req.Header.Set("If-Range", `"v1"`)
	rec, seen := serve(t, c, req, htmlUpstream(oakPage, http.Header{"Etag": {`"v1"`}, "Last-Modified": {"Mon, 01 Jan 2024 00:00:00 GMT"}}))
	if rec.Code != 200 || rec.Body.String() != oakMarkdown {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
	h := rec.Header()
	want := map[string]string{
		"Content-Type":      "text/markdown; charset=utf-8",
		"Content-Length":    strconv.Itoa(len(oakMarkdown)),
		"Etag":              `W/"v1-md"`,
		"X-Markdown-Tokens": strconv.Itoa(Tokens(oakMarkdown)),
		"Content-Signal":    "ai-train=no, search=yes, ai-input=yes",
		"Last-Modified":     "Mon, 01 Jan 2024 00:00:00 GMT",
		"Accept-Ranges":     "",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if v := h.Values("Vary"); len(v) != 2 || v[0] != "Accept-Encoding" || v[1] != "Accept" {
		t.Errorf("Vary %q", v)
	}
	for _, k := range []string{"Accept-Encoding", "Range", "If-Range"} {
		if seen.Header.Get(k) != "" {
			t.Errorf("upstream got %s", k)
		}
	}
}

func TestConditionalRequests(t *testing.T) {
	c := New(Options{})
	// The agent's validator of the Markdown variant goes upstream without
	// its suffix, and the upstream's 304 comes back as the variant's.
	req := mdRequest("/oak")
	req.Header.Set("If-None-Match", `W/"v1-md", "other"`)
	var upstreamINM string
	rec, _ := serve(t, c, req, func(w http.ResponseWriter, r *http.Request) {
		upstreamINM = r.Header.Get("If-None-Match")
		w.Header().Set("Etag", `"v1"`)
		w.WriteHeader(http.StatusNotModified)
	})
	if upstreamINM != `W/"v1"` {
		t.Errorf("upstream If-None-Match %q, want only the variant's validator, unsuffixed", upstreamINM)
	}
	if rec.Code != 304 || rec.Header().Get("Etag") != `W/"v1-md"` || !strings.Contains(strings.Join(rec.Header().Values("Vary"), ","), "Accept") {
		t.Errorf("304: %d %v", rec.Code, rec.Header())
	}
	// An HTML validator is not sent upstream for a Markdown request.
	req = mdRequest("/oak")
	req.Header.Set("If-None-Match", `"v1"`)
	rec, seen := serve(t, c, req, htmlUpstream(oakPage, http.Header{"Etag": {`"v1"`}}))
	if seen.Header.Get("If-None-Match") != "" || rec.Code != 200 {
		t.Errorf("HTML validator: upstream got %q, answer %d", seen.Header.Get("If-None-Match"), rec.Code)
	}
	// No upstream validator: the variant's is derived from the Markdown,
	// and an upstream that ignores conditionals still yields a 304.
	rec, _ = serve(t, c, mdRequest("/oak"), htmlUpstream(oakPage, nil))
	etag := rec.Header().Get("Etag")
	if !strings.HasPrefix(etag, `W/"md-`) {
		t.Fatalf("derived ETag %q", etag)
	}
	req = mdRequest("/oak")
	req.Header.Set("If-None-Match", etag)
	rec, _ = serve(t, c, req, htmlUpstream(oakPage, nil))
	if rec.Code != 304 || rec.Body.Len() != 0 || rec.Header().Get("Etag") != etag || rec.Header().Get("Content-Length") != "" {
		t.Errorf("If-None-Match on the derived ETag: %d %v %q", rec.Code, rec.Header(), rec.Body.String())
	}
}

func compress(t *testing.T, coding string, p []byte) []byte {
	var b bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "deflate":
		w = zlib.NewWriter(&b)
	case "raw-deflate":
		w, _ = flate.NewWriter(&b, 1)
	case "br":
		w = brotli.NewWriter(&b)
	case "zstd":
		w, _ = zstd.NewWriter(&b)
	}
	w.Write(p)
	w.Close()
	return b.Bytes()
}

// TestCompressedUpstream: Begin asks for identity, but an upstream that
// compresses anyway is decoded.
func TestCompressedUpstream(t *testing.T) {
	c := New(Options{})
	for _, coding := range []string{"gzip", "deflate", "raw-deflate", "br", "zstd"} {
		name := coding
		if coding == "raw-deflate" {
			name = "deflate"
		}
		body := compress(t, coding, []byte(oakPage))
		rec, _ := serve(t, c, mdRequest("/oak"), func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Encoding", name)
			w.Write(body)
		})
		if rec.Body.String() != oakMarkdown || rec.Header().Get("Content-Encoding") != "" {
			t.Errorf("%s: %q %v", coding, rec.Body.String(), rec.Header())
		}
	}
}

// TestPassesThroughUnchanged: whatever is not converted reaches the
// client byte for byte with its own headers.
func TestPassesThroughUnchanged(t *testing.T) {
	big := "<html><body><main><p>" + strings.Repeat("word ", 3000) + "</p></main></body></html>"
	badGzip := append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, []byte("not really gzip at all")...)
	cases := []struct {
		name    string
		header  http.Header
		status  int
		body    []byte
		skipped string // X-Markdown-Skipped: why an HTML page stayed HTML
	}{
		{"over the size cap", http.Header{"Content-Type": {"text/html"}}, 200, []byte(big), "too-large"},
		{"broken gzip", http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"gzip"}}, 200, badGzip, "unreadable"},
		{"unknown coding", http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"compress"}}, 200, []byte("\x1f\x9d..."), "encoding"},
		{"stacked codings", http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"gzip, br"}}, 200, []byte("??"), "encoding"},
		{"unreadable charset", http.Header{"Content-Type": {"text/html; charset=iso-2022-kr"}}, 200, []byte(oakPage), "encoding"},
		{"JSON", http.Header{"Content-Type": {"application/json"}}, 200, []byte(`{"a":1}`), ""},
		{"Markdown from the site", http.Header{"Content-Type": {"text/markdown"}}, 200, []byte("# Native\n"), ""},
		{"redirect", http.Header{"Content-Type": {"text/html"}, "Location": {"/new"}}, 301, []byte(`<a href="/new">Moved</a>`), ""},
		{"no-transform", http.Header{"Content-Type": {"text/html"}, "Cache-Control": {"public, no-transform"}}, 200, []byte(oakPage), "no-transform"},
		{"partial content", http.Header{"Content-Type": {"text/html"}, "Content-Range": {"bytes 0-3/100"}}, 206, []byte("<htm"), ""},
		{"empty app shell", http.Header{"Content-Type": {"text/html"}}, 200, []byte(`<html><body><div id="root"></div><script src="/app.js"></script></body></html>`), "empty"},
		{"gzip over the cap once decoded", http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"gzip"}}, 200, compress(t, "gzip", []byte(big)), "too-large"},
	}
	c := New(Options{MaxBytes: 4096})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec, _ := serve(t, c, mdRequest("/x"), func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tc.status)
				// In pieces, as upstreams write.
				for p := tc.body; len(p) > 0; {
					n := min(len(p), 1000)
					w.Write(p[:n])
					p = p[n:]
				}
			})
			if rec.Code != tc.status || !bytes.Equal(rec.Body.Bytes(), tc.body) {
				t.Errorf("%d %q, want %d and the body unchanged", rec.Code, rec.Body.String(), tc.status)
			}
			for k, v := range tc.header {
				if got := rec.Header()[k]; strings.Join(got, ",") != strings.Join(v, ",") {
					t.Errorf("header %s: %q, want %q", k, got, v)
				}
			}
			if rec.Header().Get("X-Markdown-Tokens") != "" {
				t.Error("a page passed through has no Markdown token count")
			}
			if got := rec.Header()["X-Markdown-Skipped"]; strings.Join(got, ",") != tc.skipped || tc.skipped == "" && got != nil {
				t.Errorf("X-Markdown-Skipped %q, want %q", got, tc.skipped)
			}
			// HTML of a negotiated URL, even when not converted, says
			// Vary: Accept (RFC 9110 §12.5.5), or a shared cache gives it
			// to the agents that would get the Markdown.
			wantVary := isHTML(tc.header.Get("Content-Type")) && variantStatus(tc.status)
			if got := strings.Join(rec.Header()["Vary"], ","); (got == "Accept") != wantVary {
				t.Errorf("Vary %q (want Accept: %v)", got, wantVary)
			}
		})
	}
}

// TestHead: a HEAD gets the header fields a GET of the same page gets
// (RFC 9110 §9.3.2), and no body. Whether a page is converted depends on
// its body (app shells and pages over the cap stay HTML), so the next
// handler is asked for it with GET; the request is a HEAD again after.
func TestHead(t *testing.T) {
	c := New(Options{MaxBytes: 1 << 10})
	for name, body := range map[string]string{
		"converted":        oakPage,
		"app shell":        `<html><head><title>App</title></head><body><div id="root"></div><script>boot()</script></body></html>`,
		"over the cap":     "<html><body><main><p>" + strings.Repeat("word ", 1000) + "</p></main></body></html>",
		"not modified":     "",
		"through ReadFrom": "",
	} {
		t.Run(name, func(t *testing.T) {
			answer := func(method string) (*httptest.ResponseRecorder, string) {
				req := mdRequest("/oak")
				req.Method = method
				if name == "not modified" {
					req.Header.Set("If-None-Match", `W/"v1-md"`)
				}
				var seen string
				rec, _ := serve(t, c, req, func(w http.ResponseWriter, r *http.Request) {
					seen = r.Method
					h := w.Header()
					h.Set("Etag", `"v1"`)
					switch name {
					case "not modified":
						w.WriteHeader(http.StatusNotModified)
					case "through ReadFrom":
						h.Set("Content-Type", "image/png")
						h.Set("Content-Length", "4")
						_, _ = w.(io.ReaderFrom).ReadFrom(strings.NewReader("\x89PNG"))
					default:
						htmlUpstream(body, nil)(w, r)
					}
				})
				if req.Method != method {
					t.Errorf("%s: the request is a %s after Finish", method, req.Method)
				}
				return rec, seen
			}
			get, _ := answer(http.MethodGet)
			head, seen := answer(http.MethodHead)
			if seen != http.MethodGet {
				t.Errorf("the next handler was asked with %s", seen)
			}
			if name == "converted" && get.Header().Get("Content-Type") != MediaType {
				t.Fatalf("GET: %q", get.Header().Get("Content-Type"))
			}
			if head.Code != get.Code || head.Body.Len() != 0 {
				t.Errorf("HEAD: %d with %d bytes; GET: %d", head.Code, head.Body.Len(), get.Code)
			}
			for _, k := range []string{"Content-Type", "Content-Length", "Etag", "Vary", "X-Markdown-Tokens", "X-Markdown-Skipped"} {
				if g, h := strings.Join(get.Header()[k], ","), strings.Join(head.Header()[k], ","); g != h {
					t.Errorf("%s: GET %q, HEAD %q", k, g, h)
				}
			}
		})
	}
}

func TestSniffsUntypedBodies(t *testing.T) {
	rec, _ := serve(t, New(Options{}), mdRequest("/oak"), func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, oakPage) // no header, no WriteHeader: net/http would sniff text/html
	})
	if rec.Body.String() != oakMarkdown {
		t.Errorf("%q", rec.Body.String())
	}
}

// TestNothingWrittenOnError: the next handler returned an error before
// writing; Finish must leave the response to Caddy's error handling.
func TestNothingWrittenOnError(t *testing.T) {
	rec := httptest.NewRecorder()
	mw := New(Options{}).Begin(rec, mdRequest("/oak"), nil)
	if err := mw.Finish(); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 || rec.Body.Len() != 0 || len(rec.Header()) != 0 || rec.Flushed {
		t.Errorf("wrote %d %v", rec.Code, rec.Header())
	}
}

// flushHijacker records flushes and hijacks.
type flushHijacker struct {
	*httptest.ResponseRecorder
	flushes int
	hijacks int
}

func (f *flushHijacker) Flush() { f.flushes++; f.ResponseRecorder.Flush() }
func (f *flushHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	f.hijacks++
	return nil, nil, errors.New("test hijack")
}

func TestFlushHijackUnwrap(t *testing.T) {
	c := New(Options{})
	// A stream (SSE) passing through is flushed as it goes.
	fh := &flushHijacker{ResponseRecorder: httptest.NewRecorder()}
	mw := c.Begin(fh, mdRequest("/events"), nil)
	mw.Header().Set("Content-Type", "text/event-stream")
	io.WriteString(mw, "data: 1\n\n")
	if err := http.NewResponseController(mw).Flush(); err != nil || fh.flushes != 1 {
		t.Errorf("flush through: %v, %d flushes", err, fh.flushes)
	}
	mw.Finish()
	// A page being buffered is not flushed piecemeal.
	fh = &flushHijacker{ResponseRecorder: httptest.NewRecorder()}
	mw = c.Begin(fh, mdRequest("/oak"), nil)
	mw.Header().Set("Content-Type", "text/html")
	io.WriteString(mw, oakPage[:50])
	mw.Flush()
	if fh.flushes != 0 || fh.Body.Len() != 0 {
		t.Errorf("buffered page flushed: %d flushes, %q", fh.flushes, fh.Body.String())
	}
	io.WriteString(mw, oakPage[50:])
	mw.Finish()
	if fh.Body.String() != oakMarkdown {
		t.Errorf("after a flush: %q", fh.Body.String())
	}
	// Hijack reaches the connection's writer.
	fh = &flushHijacker{ResponseRecorder: httptest.NewRecorder()}
	mw = c.Begin(fh, mdRequest("/ws"), nil)
	if _, _, err := http.NewResponseController(mw).Hijack(); err == nil || err.Error() != "test hijack" || fh.hijacks != 1 {
		t.Errorf("hijack: %v", err)
	}
	if mw.Unwrap() != http.ResponseWriter(fh) {
		t.Error("Unwrap")
	}
}

// TestReadFrom: bodies handed over by io.Copy (file_server, reverse_proxy)
// are converted, and pass through via the writer's ReadFrom otherwise.
func TestReadFrom(t *testing.T) {
	c := New(Options{})
	rec, _ := serve(t, c, mdRequest("/oak"), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.(io.ReaderFrom).ReadFrom(strings.NewReader(oakPage))
	})
	if rec.Body.String() != oakMarkdown {
		t.Errorf("ReadFrom HTML: %q", rec.Body.String())
	}
	rec, _ = serve(t, c, mdRequest("/img"), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.(io.ReaderFrom).ReadFrom(strings.NewReader("\x89PNG..."))
	})
	if rec.Body.String() != "\x89PNG..." {
		t.Errorf("ReadFrom PNG: %q", rec.Body.String())
	}
}

// FuzzWriter: any body, cut into any writes, comes out either as the
// Markdown of the page or byte for byte as it went in.
func FuzzWriter(f *testing.F) {
	f.Add([]byte(oakPage), uint8(7), false)
	f.Add([]byte("<p>x</p>"), uint8(1), true)
	f.Add([]byte{0x1f, 0x8b, 8, 0}, uint8(2), true)
	f.Add([]byte(strings.Repeat("<li>item", 500)), uint8(200), false)
	c := New(Options{MaxBytes: 2048})
	f.Fuzz(func(t *testing.T, body []byte, chunk uint8, gz bool) {
		step := int(chunk) + 1
		want, convErr := c.Convert(body, "text/html", &url0)
		rec := httptest.NewRecorder()
		mw := c.Begin(rec, mdRequest("/p"), nil)
		mw.Header().Set("Content-Type", "text/html")
		if gz {
			mw.Header().Set("Content-Encoding", "gzip")
		}
		for p := body; len(p) > 0; {
			n := min(len(p), step)
			mw.Write(p[:n])
			p = p[n:]
		}
		mw.Finish()
		got := rec.Body.Bytes()
		switch {
		// First: a body that is its own Markdown ("0\n") is converted.
		case !gz && convErr == nil && len(body) <= 2048 && bytes.Equal(got, want):
			if rec.Header().Get("Content-Type") != MediaType || rec.Header().Get("Content-Length") != strconv.Itoa(len(got)) {
				t.Fatalf("Markdown headers %v", rec.Header())
			}
		case bytes.Equal(got, body):
			if rec.Header().Get("Content-Type") != "text/html" {
				t.Fatalf("body passed through with the Markdown type")
			}
			switch why := rec.Header().Get("X-Markdown-Skipped"); why {
			case SkipTooLarge, SkipEncoding, SkipEmpty, SkipUnreadable:
			default:
				if len(body) > 0 {
					t.Fatalf("HTML passed through with X-Markdown-Skipped %q", why)
				}
			}
		case gz && rec.Header().Get("Content-Type") == MediaType:
			// A body that happened to be gzip: converted from its decoding.
		default:
			t.Fatalf("body %q came out as %q", body, got)
		}
		// A HEAD gets the same header fields, and no body.
		head := mdRequest("/p")
		head.Method = http.MethodHead
		hrec := httptest.NewRecorder()
		mw = c.Begin(hrec, head, nil)
		mw.Header().Set("Content-Type", "text/html")
		if gz {
			mw.Header().Set("Content-Encoding", "gzip")
		}
		for p := body; len(p) > 0; {
			n := min(len(p), step)
			mw.Write(p[:n])
			p = p[n:]
		}
		mw.Finish()
		for _, k := range []string{"Content-Type", "Content-Length", "Content-Encoding", "Vary"} {
			if g, h := rec.Header().Get(k), hrec.Header().Get(k); g != h {
				t.Fatalf("%s: GET %q, HEAD %q", k, g, h)
			}
		}
		if hrec.Body.Len() != 0 || head.Method != http.MethodHead {
			t.Fatalf("HEAD: %d bytes, method %s after", hrec.Body.Len(), head.Method)
		}
	})
}

var url0 = *mustURL("http://shop.example/p")

// benchPage is the 72 KB page the notice benchmarks use (caddyserver.com's
// home page).
func benchPage(b *testing.B) []byte {
	for _, p := range []string{"../htmlinject/testdata/page70k.html", "../notice/testdata/page70k.html"} {
		if page, err := os.ReadFile(p); err == nil {
			return page
		}
	}
	b.Fatal("the 72 KB benchmark page is missing")
	return nil
}

// BenchmarkMarkdownPage converts the 72 KB page through the writer, as a
// Markdown request gets it; BenchmarkHTMLPage is the baseline: the same
// page written through untouched, as every other request gets it.
func BenchmarkMarkdownPage(b *testing.B) {
	page := benchPage(b)
	c := New(Options{})
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	var out int
	for b.Loop() {
		rec := &discard{h: http.Header{}}
		mw := c.Begin(rec, mdRequest("/"), nil)
		mw.Header().Set("Content-Type", "text/html; charset=utf-8")
		writeChunks(mw, page)
		mw.Finish()
		out = rec.n
	}
	b.ReportMetric(float64(out), "md-bytes")
}

func BenchmarkHTMLPage(b *testing.B) {
	page := benchPage(b)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		rec := &discard{h: http.Header{}}
		rec.Header().Set("Content-Type", "text/html; charset=utf-8")
		writeChunks(rec, page)
	}
}

func writeChunks(w io.Writer, page []byte) {
	for p := page; len(p) > 0; {
		n := min(len(p), 32<<10)
		w.Write(p[:n])
		p = p[n:]
	}
}

// discard is a ResponseWriter that counts and copies nothing (a socket's
// copy is the same for both benchmarks).
type discard struct {
	h http.Header
	n int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
