package tests

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/caddy-ahp/caddy-ahp/notice"
)

// section is the exact notice the test sites insert.
func section(t testing.TB) []byte {
	in, err := notice.New(notice.Config{SiteName: "Example Site"})
	if err != nil {
		t.Fatal(err)
	}
	return in.Section()
}

// assertNoticeInDOM parses the page and checks the notice: present once,
// inside body, hidden, with the aria-label agents look for.
func assertNoticeInDOM(t *testing.T, what string, page []byte) {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(page))
	if err != nil {
		t.Fatalf("%s: not parseable HTML: %v", what, err)
	}
	sel := doc.Find("section.ahp-notice")
	if sel.Length() != 1 {
		t.Fatalf("%s: %d ahp-notice sections in the DOM, want 1", what, sel.Length())
	}
	if sel.Closest("body").Length() != 1 {
		t.Errorf("%s: the notice is not inside body", what)
	}
	if label, _ := sel.Attr("aria-label"); label != "AI Agent Notice" {
		t.Errorf("%s: aria-label = %q", what, label)
	}
	if style, _ := sel.Attr("style"); !strings.Contains(strings.ReplaceAll(style, " ", ""), "display:none") {
		t.Errorf("%s: style = %q, want hidden", what, style)
	}
	// The hidden attribute keeps it hidden where a CSP forbids inline styles.
	if _, hidden := sel.Attr("hidden"); !hidden {
		t.Errorf("%s: the notice lacks the hidden attribute", what)
	}
	if !strings.Contains(sel.Text(), "/.well-known/agent.json") || !strings.Contains(sel.Text(), "AHP/0.1") {
		t.Errorf("%s: notice text = %q", what, sel.Text())
	}
}

// withoutNotice removes the inserted section, to compare with the
// upstream's bytes.
func withoutNotice(t *testing.T, page, sec []byte) []byte {
	t.Helper()
	if bytes.Count(page, sec) != 1 {
		t.Fatalf("the section appears %d times in the raw page", bytes.Count(page, sec))
	}
	return bytes.Replace(page, sec, nil, 1)
}

func compress(t testing.TB, enc string, b []byte) []byte {
	var buf bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		w = zlib.NewWriter(&buf)
	case "br":
		w = brotli.NewWriter(&buf)
	case "zstd":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decompress(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	var err error
	switch enc {
	case "", "identity":
		return b
	case "gzip":
		r, err = gzip.NewReader(bytes.NewReader(b))
	case "deflate":
		r, err = zlib.NewReader(bytes.NewReader(b))
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	case "zstd":
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(b))
		r = d
	default:
		t.Fatalf("unexpected Content-Encoding %q", enc)
	}
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("client cannot decode the %s body: %v", enc, err)
	}
	return out
}

const page = "<!DOCTYPE html><html><head><title>Legacy</title></head><body><h1>Hello</h1><p>Old page.</p></body></html>\n"

// pageUpstream answers every path with a page shaped by the path.
func pageUpstream(t testing.TB) *httptest.Server {
	big := strings.Repeat("<p>"+strings.Repeat("lorem ipsum dolor sit amet ", 40)+"</p>\n", 48_000) // ~50 MB
	mux := http.NewServeMux()
	html := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		html(w)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(page)))
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Tue, 01 Sep 2026 10:00:00 GMT")
		w.Header().Set("Accept-Ranges", "bytes")
		io.WriteString(w, page)
	})
	for _, enc := range []string{"gzip", "deflate", "br", "zstd"} {
		body := compress(t, enc, []byte(page))
		mux.HandleFunc("/"+enc, func(w http.ResponseWriter, r *http.Request) {
			html(w)
			w.Header().Set("Content-Encoding", enc)
			w.Header().Set("Vary", "Accept-Encoding")
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.Write(body)
		})
	}
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		html(w)
		for _, part := range strings.SplitAfter(page, ">") {
			io.WriteString(w, part)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/upper", func(w http.ResponseWriter, r *http.Request) {
		html(w)
		io.WriteString(w, "<html><BODY><p>Shouting</p></BODY >\n</HTML>")
	})
	mux.HandleFunc("/decoys", func(w http.ResponseWriter, r *http.Request) {
		html(w)
		io.WriteString(w, `<html><body><!-- old footer </body> --><script>var s = "</body>";</script><p>real content</p></body></html>`)
	})
	mux.HandleFunc("/nobody", func(w http.ResponseWriter, r *http.Request) {
		html(w)
		io.WriteString(w, "<!doctype html><title>Minified</title><p>A page with no body tags")
	})
	mux.HandleFunc("/fragment", func(w http.ResponseWriter, r *http.Request) {
		html(w)
		io.WriteString(w, "<tr><td>A fragment: no notice</td></tr>")
	})
	mux.HandleFunc("/xhtml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xhtml+xml")
		io.WriteString(w, `<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body><p>x</p></body></html>`)
	})
	mux.HandleFunc("/has-notice", func(w http.ResponseWriter, r *http.Request) {
		html(w)
		io.WriteString(w, `<html><body><section class="ahp-notice" aria-label="AI Agent Notice" style="display:none">site's own</section></body></html>`)
	})
	mux.HandleFunc("/notfound", func(w http.ResponseWriter, r *http.Request) {
		html(w)
		w.WriteHeader(404)
		io.WriteString(w, "<html><body><h1>Not found</h1></body></html>")
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		html(w)
		io.WriteString(w, "<html><body>")
		io.WriteString(w, big)
		io.WriteString(w, "</body></html>")
	})
	// Untouched responses.
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"html":"</body>"}`)
	})
	mux.HandleFunc("/no-transform", func(w http.ResponseWriter, r *http.Request) {
		html(w)
		w.Header().Set("Cache-Control", "no-transform")
		io.WriteString(w, page)
	})
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: </body>\n\n")
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) {
		html(w)
		w.WriteHeader(204)
	})
	mux.HandleFunc("/unknown-encoding", func(w http.ResponseWriter, r *http.Request) {
		html(w)
		w.Header().Set("Content-Encoding", "compress")
		io.WriteString(w, "not really compressed </body>")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

const noticeSite = `
http://127.0.0.1:{{PORT}} {
	ahp {
		name "Example Site"
		content_signals {
			ai_input true
		}
	}
	%s
}`

func TestNoticeCases(t *testing.T) {
	up := pageUpstream(t)
	s := startCaddy(t, fmt.Sprintf(noticeSite, "reverse_proxy "+up.Listener.Addr().String()))
	sec := section(t)

	injected := []struct {
		path   string
		accept string // the client's Accept-Encoding
		want   string // the upstream's page without the notice
	}{
		{"/plain", "", page},
		{"/chunked", "", page},
		{"/gzip", "gzip", page},
		{"/deflate", "deflate", page},
		{"/br", "br", page},
		{"/zstd", "zstd", page},
		{"/upper", "", "<html><BODY><p>Shouting</p></BODY >\n</HTML>"},
		{"/decoys", "", `<html><body><!-- old footer </body> --><script>var s = "</body>";</script><p>real content</p></body></html>`},
		{"/nobody", "", "<!doctype html><title>Minified</title><p>A page with no body tags"},
		{"/notfound", "", "<html><body><h1>Not found</h1></body></html>"},
	}
	for _, c := range injected {
		t.Run(c.path, func(t *testing.T) {
			var r response
			if c.accept != "" {
				r = s.get(c.path, "Accept-Encoding", c.accept)
			} else {
				r = s.get(c.path)
			}
			body := decompress(t, r.Header.Get("Content-Encoding"), r.body)
			if got := string(withoutNotice(t, body, sec)); got != c.want {
				t.Errorf("apart from the notice the page changed:\n got %q\nwant %q", got, c.want)
			}
			assertNoticeInDOM(t, c.path, body)
			if cl := r.Header.Get("Content-Length"); cl != "" && cl != fmt.Sprint(len(r.body)) {
				t.Errorf("Content-Length %s for %d bytes", cl, len(r.body))
			}
			if r.Header.Get("Accept-Ranges") != "" {
				t.Errorf("Accept-Ranges kept on a rewritten page")
			}
			assertOneLink(t, c.path, r)
		})
	}
	t.Run("placement", func(t *testing.T) {
		body := s.get("/upper").body
		if !bytes.HasSuffix(body, append(append([]byte(nil), sec...), "</BODY >\n</HTML>"...)) {
			t.Errorf("not before the last </BODY >: %q", body)
		}
		body = s.get("/decoys").body
		if !bytes.HasSuffix(body, append(append([]byte(nil), sec...), "</body></html>"...)) {
			t.Errorf("not before the real </body>: %q", body)
		}
		body = s.get("/nobody").body
		if !bytes.HasSuffix(body, sec) {
			t.Errorf("not at the end of a page without </body>: %q", body)
		}
	})
	t.Run("headers", func(t *testing.T) {
		r := s.get("/plain")
		if etag := r.Header.Get("ETag"); etag != `W/"v1"` {
			t.Errorf("ETag = %q, want the weak W/\"v1\"", etag)
		}
		if lm := r.Header.Get("Last-Modified"); lm != "Tue, 01 Sep 2026 10:00:00 GMT" {
			t.Errorf("Last-Modified = %q", lm)
		}
		// HEAD's header fields are GET's (RFC 9110 §9.3.2), its body none.
		h := s.do("HEAD", "/plain", nil)
		if etag, cl := h.Header.Get("ETag"), h.Header["Content-Length"]; etag != `W/"v1"` || len(cl) != 0 || len(h.body) != 0 {
			t.Errorf("HEAD: ETag %q, Content-Length %q, %d bytes; want GET's weak ETag, no length, no body", etag, cl, len(h.body))
		}
	})
	t.Run("xhtml", func(t *testing.T) {
		if r := s.get("/xhtml"); bytes.Count(r.body, sec) != 1 {
			t.Errorf("xhtml page: %q", r.body)
		}
	})

	untouched := []struct {
		name    string
		method  string
		path    string
		headers []string
	}{
		{"page already carrying a notice", "GET", "/has-notice", nil},
		{"JSON", "GET", "/json", nil},
		{"no-transform", "GET", "/no-transform", nil},
		{"event stream", "GET", "/events", nil},
		{"204", "GET", "/empty", nil},
		{"HEAD", "HEAD", "/plain", nil},
		{"unknown encoding", "GET", "/unknown-encoding", []string{"Accept-Encoding", "compress"}},
		{"304 from the upstream", "GET", "/plain", []string{"If-None-Match", `"v1"`}},
		{"fragment", "GET", "/fragment", nil},
		{"htmx request", "GET", "/plain", []string{"HX-Request", "true"}},
		{"fetch() request", "GET", "/plain", []string{"Sec-Fetch-Dest", "empty"}},
	}
	for _, c := range untouched {
		t.Run(c.name, func(t *testing.T) {
			direct := directGet(t, c.method, up.URL+c.path, c.headers...)
			r := s.do(c.method, c.path, nil, c.headers...)
			if r.StatusCode != direct.StatusCode || !bytes.Equal(r.body, direct.body) {
				t.Errorf("changed: status %d→%d body %q→%q", direct.StatusCode, r.StatusCode, direct.body, r.body)
			}
			if bytes.Contains(r.body, sec) {
				t.Error("notice inserted")
			}
		})
	}
}

func directGet(t *testing.T, method, url string, headers ...string) response {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return response{resp, readAll(t, resp)}
}

// Pages are streamed, not buffered: the first bytes of a page reach the
// client while the upstream is still writing it, and flushes go through.
func TestNoticeStreams(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html><body><h1>First part, sent at once</h1>"+strings.Repeat(" ", 4096))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(20 * time.Second):
		}
		io.WriteString(w, "<p>second part</p></body></html>")
	}))
	defer up.Close()
	defer close(release)
	s := startCaddy(t, fmt.Sprintf(noticeSite, "reverse_proxy "+up.Listener.Addr().String()+" {\n\t\tflush_interval -1\n\t}"))

	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response head while the upstream is mid-page: %v", err)
	}
	first := make([]byte, len("<html><body><h1>First part"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("the first bytes did not arrive before the upstream finished: %v", err)
	}
	release <- struct{}{}
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	full := append(first, rest...)
	if bytes.Count(full, section(t)) != 1 || !bytes.HasSuffix(full, []byte("</body></html>")) {
		t.Errorf("streamed page: %q", full[len(full)-min(len(full), 600):])
	}
}

// A 50 MB page goes through with its bytes intact and the notice once.
func TestNoticeBigPage(t *testing.T) {
	up := pageUpstream(t)
	s := startCaddy(t, fmt.Sprintf(noticeSite, "reverse_proxy "+up.Listener.Addr().String()))
	direct := directGet(t, "GET", up.URL+"/big")
	r := s.get("/big")
	if len(direct.body) < 45<<20 {
		t.Fatalf("upstream page is only %d bytes", len(direct.body))
	}
	if got := withoutNotice(t, r.body, section(t)); !bytes.Equal(got, direct.body) {
		t.Errorf("50 MB page changed apart from the notice (%d vs %d bytes)", len(got), len(direct.body))
	}
}

// Caddy's own handlers: file_server pages, ranges and 304s, error pages
// from handle_errors, and `encode` compressing the final page.
func TestNoticeWithCaddyHandlers(t *testing.T) {
	dir := t.TempDir()
	// Big enough for encode's minimum length (512 bytes).
	bigPage := strings.Replace(page, "<p>Old page.</p>", strings.Repeat("<p>Old page, with more to say.</p>\n", 100), 1)
	for name, body := range map[string]string{
		"index.html": bigPage,
		"404.html":   "<html><body><h1>Lost</h1></body></html>",
		"data.json":  `{"a":"</body>"}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startCaddy(t, fmt.Sprintf(noticeSite, `encode zstd gzip
	root * `+dir+`
	file_server
	handle_errors 404 {
		rewrite * /404.html
		file_server
	}`))
	sec := section(t)
	for _, enc := range []string{"gzip", "zstd"} {
		r := s.get("/index.html", "Accept-Encoding", enc)
		if r.Header.Get("Content-Encoding") != enc {
			t.Errorf("encode %s: Content-Encoding = %q: the final page must still be compressed", enc, r.Header.Get("Content-Encoding"))
		}
		body := decompress(t, r.Header.Get("Content-Encoding"), r.body)
		if got := withoutNotice(t, body, sec); string(got) != bigPage {
			t.Errorf("encode %s: page changed: %q", enc, got)
		}
	}
	r := s.get("/index.html")
	assertNoticeInDOM(t, "file_server", r.body)

	// handle_errors pages get the notice too.
	r = s.get("/missing.html")
	if r.StatusCode != 404 || !strings.Contains(string(r.body), "Lost") {
		t.Fatalf("error page: %d %q", r.StatusCode, r.body)
	}
	assertNoticeInDOM(t, "handle_errors page", r.body)
	assertOneLink(t, "handle_errors page", r)

	// A range request gets its 206 untouched.
	r = s.get("/index.html", "Range", "bytes=0-9")
	if r.StatusCode != 206 || string(r.body) != bigPage[:10] {
		t.Errorf("range: %d %q", r.StatusCode, r.body)
	}
	// A conditional request gets its 304.
	full := s.get("/index.html")
	if etag := full.Header.Get("ETag"); etag != "" {
		if r := s.get("/index.html", "If-None-Match", etag); r.StatusCode != 304 || len(r.body) != 0 {
			t.Errorf("If-None-Match %s: %d", etag, r.StatusCode)
		}
	}
	if r := s.get("/data.json"); string(r.body) != `{"a":"</body>"}` {
		t.Errorf("JSON changed: %q", r.body)
	}
}

// WebSocket upgrades pass through untouched.
func TestNoticeSkipsWebSocket(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want an upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo: " + line)
		brw.Flush()
	}))
	defer up.Close()
	s := startCaddy(t, fmt.Sprintf(noticeSite, "reverse_proxy "+up.Listener.Addr().String()))
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", err, resp)
	}
	fmt.Fprintf(conn, "</body> hello\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: </body> hello\n" {
		t.Errorf("upgraded stream: %q %v", line, err)
	}
}

// TestAbortedCompressedPagesLeaveNoDecoder: clients that go away in the
// middle of a proxied gzip page (reverse_proxy then panics with
// http.ErrAbortHandler) must not leave a decoding coroutine behind in
// Caddy each: they would hold their decoders' windows for good.
func TestAbortedCompressedPagesLeaveNoDecoder(t *testing.T) {
	var text strings.Builder
	for i := 0; text.Len() < 400<<10; i++ {
		fmt.Fprintf(&text, "<p>%x</p>", uint64(i)*0x9e3779b97f4a7c15)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	io.WriteString(zw, "<html><body>"+text.String()+"</body></html>")
	zw.Close()
	body := z.Bytes()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(200)
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the rest never comes: Caddy gave up
	}))
	defer up.Close()
	s := startCaddy(t, fmt.Sprintf(noticeSite, "reverse_proxy "+up.Listener.Addr().String()))

	// coroutines counts the goroutines parked in a first decoding pass.
	coroutines := func() int {
		resp, err := http.Get(fmt.Sprintf("http://localhost:%d/debug/pprof/goroutine?debug=1", s.admin))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		n := 0
		for _, block := range strings.Split(string(b), "\n\n") {
			if !strings.Contains(block, "htmlinject.(*codec).firstPass") {
				continue
			}
			for _, line := range strings.Split(block, "\n") {
				var k int
				if strings.Contains(line, " @ 0x") {
					fmt.Sscanf(line, "%d", &k)
				}
				n += k
			}
		}
		return n
	}
	const clients = 20
	for range clients {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /page HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n\r\n")
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Read(make([]byte, 512)); err != nil { // the head: the page is in flight
			t.Fatal(err)
		}
		conn.Close()
	}
	n := coroutines()
	for deadline := time.Now().Add(10 * time.Second); n > 0 && time.Now().Before(deadline); n = coroutines() {
		time.Sleep(50 * time.Millisecond) // polling Caddy, bounded
	}
	if n > 0 {
		t.Fatalf("%d decoding coroutines still alive after %d clients went away mid-page", n, clients)
	}
}
