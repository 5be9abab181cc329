package markdown

import (
	"bufio"
	"bytes"
	"compress/flate"
	"errors"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

// etagSuffix marks the Markdown variant's validators, as `encode` marks
// its codings' ("-gzip").
const etagSuffix = "-md"

// Writer is the response writer the next handler writes a Markdown
// request's answer to. Get one from Converter.Begin; call Finish once the
// next handler returned.
type Writer struct {
	http.ResponseWriter
	c    *Converter
	page *url.URL
	// head: the agent's HEAD, asked of the next handler as req's GET.
	head bool
	req  *http.Request
	// inm is the agent's If-None-Match, checked against the variant's ETag.
	inm string

	state       uint8
	wroteHeader bool
	status      int
	buf         *bytes.Buffer
}

const (
	undecided uint8 = iota
	passing         // streaming through untouched
	buffering       // an HTML body being collected for conversion
	finished
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Begin prepares r for a Markdown answer (see the package doc: it removes
// Accept-Encoding, Range and If-Range, and keeps only the Markdown
// variant's validators in If-None-Match) and returns the writer the next
// handler must write to. page is the URL the client asked for, before any
// rewrite (a handler that runs after `rewrite` or `try_files` sees the
// rewritten r.URL, which relative links must not resolve against); nil
// takes r.URL. Call it only when Wants(r) is true.
func (c *Converter) Begin(w http.ResponseWriter, r *http.Request, page *url.URL) *Writer {
	mw := &Writer{ResponseWriter: w, c: c, page: pageURL(r, page)}
	if r.Method == http.MethodHead {
		// Whether the GET gets Markdown depends on the page's body.
		mw.head, mw.req = true, r
		r.Method = http.MethodGet
	}
	h := r.Header
	delete(h, "Accept-Encoding")
	delete(h, "Range")
	delete(h, "If-Range")
	if v := h["If-None-Match"]; len(v) > 0 {
		mw.inm = strings.Join(v, ",")
		if kept := upstreamValidators(mw.inm); kept != "" {
			h["If-None-Match"] = []string{kept}
		} else {
			delete(h, "If-None-Match")
		}
	}
	return mw
}

// upstreamValidators turns the agent's If-None-Match into the upstream's:
// "*" stays, validators of the Markdown variant lose their suffix (the
// upstream knows them without it), others go (they name representations
// this answer cannot be).
func upstreamValidators(inm string) string {
	var out []string
	for _, t := range strings.Split(inm, ",") {
		t = strings.TrimSpace(t)
		switch {
		case t == "*":
			return "*"
		case strings.HasSuffix(t, etagSuffix+`"`):
			out = append(out, strings.TrimSuffix(t, etagSuffix+`"`)+`"`)
		}
	}
	return strings.Join(out, ", ")
}

func (mw *Writer) WriteHeader(status int) {
	if mw.wroteHeader {
		return
	}
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		mw.ResponseWriter.WriteHeader(status)
		return
	}
	mw.wroteHeader = true
	mw.status = status
	hdr := mw.ResponseWriter.Header()
	switch {
	case status == http.StatusNotModified:
		// A 304 carries the headers the 200 would have had.
		variantETag(hdr)
		addVary(hdr)
		mw.pass(status)
	default:
		ok, reason := mw.convertible(status, hdr)
		if ok {
			mw.state = buffering
			mw.buf = bufPool.Get().(*bytes.Buffer)
			mw.buf.Reset()
			return
		}
		if variantStatus(status) && isHTML(hdr.Get("Content-Type")) {
			addVary(hdr) // as flushBuffered: HTML of a negotiated URL
		}
		if reason != "" {
			skipped(hdr, reason)
		}
		mw.pass(status)
	}
}

// The reasons X-Markdown-Skipped gives for HTML a Markdown request got as
// it came: the agent asked for Markdown and should learn why it has none
// (a page too large for max_size looks like a site without the feature).
const (
	SkipTooLarge    = "too-large"    // over Options.MaxBytes, as sent or decoded
	SkipNoTransform = "no-transform" // Cache-Control: no-transform
	SkipEncoding    = "encoding"     // a content coding or charset not decoded here
	SkipEmpty       = "empty"        // no main content (ErrEmpty)
	SkipUnreadable  = "unreadable"   // a body that does not decode or convert
)

// skipped sets X-Markdown-Skipped. The slice is this response's own: a
// shared one could be appended to by a handler above.
func skipped(hdr http.Header, reason string) {
	hdr["X-Markdown-Skipped"] = []string{reason}
}

// skipReason names why Convert or decode failed.
func skipReason(err error) string {
	switch {
	case errors.Is(err, ErrEmpty):
		return SkipEmpty
	case errors.Is(err, errTooLarge):
		return SkipTooLarge
	case errors.Is(err, ErrCharset):
		return SkipEncoding
	}
	return SkipUnreadable
}

func (mw *Writer) pass(status int) {
	mw.state = passing
	mw.ResponseWriter.WriteHeader(status)
}

// convertible reports whether a response is an HTML page this package
// converts, and for an HTML page it does not, why (X-Markdown-Skipped).
func (mw *Writer) convertible(status int, hdr http.Header) (ok bool, reason string) {
	if !variantStatus(status) || !isHTML(hdr.Get("Content-Type")) {
		return false, ""
	}
	if _, ok := contentCoding(hdr["Content-Encoding"]); !ok {
		return false, SkipEncoding
	}
	for _, v := range hdr["Cache-Control"] {
		if containsFoldASCII(v, "no-transform") {
			return false, SkipNoTransform // RFC 9111 §5.2.2.6: intermediaries must not transform
		}
	}
	return true, ""
}

func isHTML(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(mt)
	return strings.EqualFold(mt, "text/html") || strings.EqualFold(mt, "application/xhtml+xml")
}

func (mw *Writer) Write(p []byte) (int, error) {
	if !mw.wroteHeader {
		hdr := mw.ResponseWriter.Header()
		if _, typed := hdr["Content-Type"]; !typed && len(p) > 0 {
			// net/http would sniff; sniff the same way to decide.
			hdr["Content-Type"] = []string{http.DetectContentType(p)}
		}
		mw.WriteHeader(http.StatusOK)
	}
	if mw.state != buffering {
		if mw.head {
			return len(p), nil // the GET's body, not the HEAD's
		}
		return mw.ResponseWriter.Write(p)
	}
	if mw.buf.Len()+len(p) <= mw.c.maxBytes {
		return mw.buf.Write(p)
	}
	// Over the cap: what came so far, then the rest, unchanged.
	mw.c.logger.Debug("markdown: page larger than max_bytes; passed through as HTML",
		zap.Int("max_bytes", mw.c.maxBytes))
	if err := mw.flushBuffered(SkipTooLarge); err != nil {
		return 0, err
	}
	if mw.head {
		return len(p), nil
	}
	return mw.ResponseWriter.Write(p)
}

// flushBuffered gives up on conversion: the original headers and the
// buffered body go out as they came, with X-Markdown-Skipped: reason.
func (mw *Writer) flushBuffered(reason string) error {
	mw.state = passing
	hdr := mw.ResponseWriter.Header()
	// Still the answer of a negotiated URL: a cache must not give it to
	// requests that would get the Markdown (RFC 9110 §12.5.5).
	addVary(hdr)
	skipped(hdr, reason)
	mw.ResponseWriter.WriteHeader(mw.status)
	var err error
	if !mw.head {
		_, err = mw.ResponseWriter.Write(mw.buf.Bytes())
	}
	mw.releaseBuf()
	return err
}

func (mw *Writer) releaseBuf() {
	if mw.buf != nil {
		if mw.buf.Cap() <= 256<<10 {
			bufPool.Put(mw.buf)
		}
		mw.buf = nil
	}
}

// ReadFrom keeps sendfile for bodies that pass through; a body being
// buffered is read through Write, which applies the cap.
func (mw *Writer) ReadFrom(r io.Reader) (int64, error) {
	if !mw.wroteHeader && mw.ResponseWriter.Header().Get("Content-Type") != "" {
		mw.WriteHeader(http.StatusOK)
	}
	if mw.wroteHeader && mw.state == passing {
		if mw.head {
			return io.Copy(io.Discard, r)
		}
		if rf, ok := mw.ResponseWriter.(io.ReaderFrom); ok {
			return rf.ReadFrom(r)
		}
	}
	return io.Copy(httpx.WriterOnly{Writer: mw}, r)
}

// FlushError flushes a body passing through; a body being buffered is
// sent whole at Finish.
func (mw *Writer) FlushError() error {
	if mw.state == buffering {
		return nil
	}
	if !mw.wroteHeader {
		// Flushing commits the headers: decide now.
		mw.WriteHeader(http.StatusOK)
		if mw.state == buffering {
			return nil
		}
	}
	return http.NewResponseController(mw.ResponseWriter).Flush()
}

// Flush implements http.Flusher for handlers that assert it.
func (mw *Writer) Flush() { _ = mw.FlushError() }

func (mw *Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(mw.ResponseWriter).Hijack()
	if err == nil {
		mw.wroteHeader = true
		mw.state = finished
	}
	return conn, brw, err
}

// Unwrap lets http.ResponseController reach the writers below.
func (mw *Writer) Unwrap() http.ResponseWriter { return mw.ResponseWriter }

// Finish converts and sends a buffered page; it does nothing for answers
// that passed through or were never written (the next handler returned
// an error before writing: Caddy's error handling then writes to the
// writer above). It returns a write error, if any.
func (mw *Writer) Finish() error {
	if mw.req != nil {
		mw.req.Method = http.MethodHead
		mw.req = nil
	}
	if mw.state != buffering {
		mw.state = finished
		return nil
	}
	defer func() { mw.state = finished }()
	hdr := mw.ResponseWriter.Header()
	md, err := mw.convert(hdr)
	if err != nil {
		mw.c.logger.Debug("markdown: page left as HTML", zap.String("path", mw.page.Path), zap.Error(err))
		return mw.flushBuffered(skipReason(err))
	}
	mw.releaseBuf()
	mw.markdownHeaders(hdr)
	if !variantETag(hdr) {
		h := fnv.New64a()
		_, _ = h.Write(md)
		hdr["Etag"] = []string{`W/"md-` + strconv.FormatUint(h.Sum64(), 36) + `"`}
	}
	hdr["X-Markdown-Tokens"] = []string{strconv.Itoa(Tokens(md))}
	status := mw.status
	if status == http.StatusOK && mw.inm != "" && etagMatches(mw.inm, hdr.Get("Etag")) {
		for _, k := range []string{"Content-Type", "Content-Length", "X-Markdown-Tokens"} {
			delete(hdr, k)
		}
		mw.ResponseWriter.WriteHeader(http.StatusNotModified)
		return nil
	}
	hdr["Content-Length"] = []string{strconv.Itoa(len(md))}
	mw.ResponseWriter.WriteHeader(status)
	if mw.head {
		return nil
	}
	_, err = mw.ResponseWriter.Write(md)
	return err
}

func (mw *Writer) convert(hdr http.Header) ([]byte, error) {
	body := mw.buf.Bytes()
	coding, _ := contentCoding(hdr["Content-Encoding"])
	if coding != "" {
		decoded, err := decode(coding, body, mw.c.maxBytes)
		if err != nil {
			return nil, err
		}
		body = decoded
	}
	return mw.c.Convert(body, hdr.Get("Content-Type"), mw.page)
}

// markdownHeaders turns the HTML's header fields into the Markdown's.
func (mw *Writer) markdownHeaders(hdr http.Header) {
	for _, k := range []string{"Content-Encoding", "Content-Length", "Accept-Ranges", "Content-Range",
		"Content-Md5", "Digest", "Content-Digest", "Repr-Digest", "Content-Location", "X-Markdown-Skipped"} {
		delete(hdr, k)
	}
	hdr["Content-Type"] = []string{MediaType}
	addVary(hdr)
	if mw.c.signal != nil && hdr.Get("Content-Signal") == "" {
		hdr["Content-Signal"] = []string{mw.c.signal[0]}
	}
}

// variantETag rewrites the upstream's ETag into the Markdown variant's
// (weak: the bytes are ours) and reports whether there was one.
func variantETag(hdr http.Header) bool {
	etag := hdr.Get("Etag")
	if etag == "" {
		return false
	}
	opaque := strings.TrimPrefix(etag, "W/")
	if len(opaque) < 2 || opaque[0] != '"' || opaque[len(opaque)-1] != '"' {
		delete(hdr, "Etag") // malformed: no validator rather than a wrong one
		return false
	}
	if !strings.HasSuffix(opaque, etagSuffix+`"`) {
		opaque = opaque[:len(opaque)-1] + etagSuffix + `"`
	}
	hdr["Etag"] = []string{"W/" + opaque}
	return true
}

// etagMatches is If-None-Match's weak comparison (RFC 9110 §13.1.2).
func etagMatches(inm, etag string) bool {
	want := strings.TrimPrefix(etag, "W/")
	for _, t := range strings.Split(inm, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == want {
			return true
		}
	}
	return false
}

// addVary lists Accept in Vary (unless it or "*" is there): the answer
// depends on it. The slice is this response's own, appended to a fresh
// array (another handler may share the old one); no allocation when it
// is listed already, as it is when discovery added it.
func addVary(hdr http.Header) {
	vary := hdr["Vary"]
	for _, v := range vary {
		for len(v) > 0 {
			f := v
			if i := strings.IndexByte(v, ','); i >= 0 {
				f, v = v[:i], v[i+1:]
			} else {
				v = ""
			}
			f = strings.TrimSpace(f)
			if f == "*" || strings.EqualFold(f, "Accept") {
				return
			}
		}
	}
	hdr["Vary"] = append(vary[:len(vary):len(vary)], "Accept")
}

// contentCoding reads Content-Encoding: "" for identity, the coding's name
// for one this package decodes, ok false for others or stacked codings.
func contentCoding(values []string) (string, bool) {
	coding := ""
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			item = strings.ToLower(strings.TrimSpace(item))
			switch item {
			case "", "identity":
				continue
			case "gzip", "x-gzip", "deflate", "br", "zstd":
			default:
				return "", false
			}
			if coding != "" {
				return "", false
			}
			coding = item
		}
	}
	return coding, true
}

var errTooLarge = errors.New("markdown: decoded page larger than max_bytes")

// ErrCoding is returned by Decode for a content coding it does not
// decode, or for several stacked codings.
var ErrCoding = errors.New("markdown: unsupported content coding")

// Decode returns body with the header's Content-Encoding (gzip, deflate,
// br or zstd; identity or none returns body itself) undone, refusing more
// than limit decoded bytes. The concierge's crawl uses it for pages that
// arrive compressed.
func Decode(header http.Header, body []byte, limit int) ([]byte, error) {
	coding, ok := contentCoding(header["Content-Encoding"])
	switch {
	case !ok:
		return nil, ErrCoding
	case coding == "":
		return body, nil
	}
	return decode(coding, body, limit)
}

// decode undoes a content coding, refusing output beyond limit bytes (a
// small compressed body can expand enormously).
func decode(coding string, body []byte, limit int) ([]byte, error) {
	var r io.Reader
	src := bytes.NewReader(body)
	switch coding {
	case "gzip", "x-gzip":
		gz, err := gzip.NewReader(src)
		if err != nil {
			return nil, err
		}
		r = gz
	case "deflate":
		// RFC 9110 deflate is zlib; some servers send raw deflate.
		if zr, err := zlib.NewReader(src); err == nil {
			r = zr
		} else {
			r = flate.NewReader(bytes.NewReader(body))
		}
	case "br":
		r = brotli.NewReader(src)
	case "zstd":
		d, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(8<<20),
			zstd.WithDecoderMaxMemory(uint64(limit)+1))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		r = d
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, errTooLarge
	}
	return out, nil
}

// Interface guards
var (
	_ http.ResponseWriter = (*Writer)(nil)
	_ http.Flusher        = (*Writer)(nil)
	_ http.Hijacker       = (*Writer)(nil)
	_ io.ReaderFrom       = (*Writer)(nil)
)
