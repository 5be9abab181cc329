package markdown

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

// AlternateWriter adds the Markdown variant's Link to HTML pages:
//
//	Link: </the/page?q>; rel="alternate"; type="text/markdown"
//
// The Markdown is the same URL asked for with Accept: text/markdown (there
// is no /page.md), so the link names the page itself with the type that
// selects the variant (RFC 8288 §3.4.1: `type` is a hint of the media
// type of the result of dereferencing the link).
type AlternateWriter struct {
	http.ResponseWriter
	page        *url.URL // as the client sent it
	wroteHeader bool
}

var alternateWriters = sync.Pool{New: func() any { return new(AlternateWriter) }}

// Alternate returns a writer that advertises the Markdown variant of page
// (the URL as the client sent it, before any rewrite) on an HTML answer.
// Release it once the handler it was passed to returned.
func Alternate(w http.ResponseWriter, page *url.URL) *AlternateWriter {
	aw := alternateWriters.Get().(*AlternateWriter)
	aw.ResponseWriter = w
	aw.page = page
	return aw
}

// Release returns the writer to its pool; it must not be used after.
func (aw *AlternateWriter) Release() {
	*aw = AlternateWriter{}
	alternateWriters.Put(aw)
}

// linkTarget makes a request URI safe between < and > in a Link value:
// characters that could end the reference or the field are escaped.
func linkTarget(uri string) string {
	if !strings.ContainsAny(uri, "<>\"\\ ,;\x7f") && !hasControl(uri) {
		return uri
	}
	var b strings.Builder
	for i := 0; i < len(uri); i++ {
		c := uri[i]
		if c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '"' || c == '\\' || c == ',' || c == ';' {
			b.WriteByte('%')
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' {
			return true
		}
	}
	return false
}

func (aw *AlternateWriter) WriteHeader(status int) {
	if !aw.wroteHeader && (status < 100 || status >= 200 || status == http.StatusSwitchingProtocols) {
		aw.wroteHeader = true
		h := aw.ResponseWriter.Header()
		if variantStatus(status) && isHTML(h.Get("Content-Type")) {
			// The URL is negotiated: an agent asking for Markdown gets
			// another answer, so a shared cache must key on Accept (RFC
			// 9110 §12.5.5), error pages included (they are converted too).
			addVary(h)
			if status < 300 {
				h["Link"] = append(h["Link"][:len(h["Link"]):len(h["Link"])], "<"+linkTarget(aw.page.RequestURI())+`>; rel="alternate"; type="text/markdown"`)
			}
		}
	}
	aw.ResponseWriter.WriteHeader(status)
}

// variantStatus reports the statuses whose HTML a Markdown request gets
// converted (Writer.convertible).
func variantStatus(status int) bool {
	switch {
	case status == http.StatusNoContent || status == http.StatusResetContent || status == http.StatusPartialContent:
		return false
	case status < 200 || (status >= 300 && status < 400):
		return false
	}
	return true
}

func (aw *AlternateWriter) Write(p []byte) (int, error) {
	if !aw.wroteHeader {
		aw.WriteHeader(http.StatusOK)
	}
	return aw.ResponseWriter.Write(p)
}

// ReadFrom keeps sendfile and splice (file_server, reverse_proxy).
func (aw *AlternateWriter) ReadFrom(r io.Reader) (int64, error) {
	if !aw.wroteHeader {
		aw.WriteHeader(http.StatusOK)
	}
	if rf, ok := aw.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(httpx.WriterOnly{Writer: aw.ResponseWriter}, r)
}

// FlushError is what http.ResponseController calls.
func (aw *AlternateWriter) FlushError() error {
	if !aw.wroteHeader {
		aw.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(aw.ResponseWriter).Flush()
}

func (aw *AlternateWriter) Flush() { _ = aw.FlushError() }

func (aw *AlternateWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(aw.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the writers below.
func (aw *AlternateWriter) Unwrap() http.ResponseWriter { return aw.ResponseWriter }
