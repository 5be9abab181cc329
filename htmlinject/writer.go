package htmlinject

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

// Observer is told what happened to each page, for metrics.
type Observer interface {
	Injected()
	// Skipped gives the reason a page kept its body as it was: why the
	// request or the response was not eligible, or, for a page read to
	// its end, ReasonPresent or ReasonNotRequired.
	Skipped(reason string)
}

// Reasons a page read to its end kept its body.
const (
	// ReasonPresent: the page already carried the snippet.
	ReasonPresent = "present"
	// ReasonNotRequired: the page carried the snippet, or lacked the text
	// Config.Require asks for.
	ReasonNotRequired = "present or not required"
)

// Writer sits between the rest of the site and the client for one
// response: at WriteHeader it decides whether the body gets the snippet
// and streams it through a Stream if so; everything else passes untouched.
// It keeps Flush, Hijack, ReadFrom, Push and Unwrap working: wrappers that
// hide them break SSE, WebSockets and sendfile, a recurring bug in
// plugins. Get one with Wrap; Finish completes the body and returns the
// Writer to its pool.
type Writer struct {
	http.ResponseWriter
	in          *Injector
	obs         Observer
	logger      *zap.Logger
	skip        string   // why this response keeps its body ("" = decide at WriteHeader)
	headOfPage  bool     // a HEAD whose GET would be judged at WriteHeader: its header is made GET's
	ifNoneMatch []string // the request's, for a 304
	wroteHeader bool
	stream      *Stream
}

var writers = sync.Pool{New: func() any { return new(Writer) }}

// Wrap returns the Writer of one response to r. obs and logger may be nil.
func (in *Injector) Wrap(w http.ResponseWriter, r *http.Request, obs Observer, logger *zap.Logger) *Writer {
	iw := writers.Get().(*Writer)
	iw.ResponseWriter, iw.in, iw.obs, iw.logger = w, in, obs, logger
	// The request is judged here, as the client sent it: handlers below
	// (Caddy's request_header, encode's If-None-Match) edit r.Header in
	// place, and a client's no-transform or fetch() must hold whatever
	// they do. Judging the fields only for pages saved five lookups a
	// stylesheet, and was undone for this.
	iw.skip = SkipRequest(r)
	iw.headOfPage = iw.skip == ReasonHEAD && skipRequestHeaders(r.Header) == ""
	iw.ifNoneMatch = r.Header["If-None-Match"]
	if iw.skip != "" && obs != nil {
		obs.Skipped(iw.skip)
	}
	return iw
}

// ForPage reports whether the response to the request may be a page's:
// one that may get the snippet, or a HEAD whose header is made GET's. An
// error page for it belongs in this writer too.
func (iw *Writer) ForPage() bool { return iw.skip == "" || iw.headOfPage }

// Wrote reports whether the response has started.
func (iw *Writer) Wrote() bool { return iw.wroteHeader }

// Finish completes the body (the snippet goes at its end when there was
// no place before it) and returns iw to its pool.
func (iw *Writer) Finish() {
	if s := iw.stream; s != nil {
		if err := s.Close(); err != nil && iw.logger != nil {
			iw.logger.Debug("injecting into the page: completing the body failed", zap.Error(err))
		}
		if iw.obs != nil {
			// Only Close knows: the page may have carried the snippet
			// already, or lacked what it requires.
			switch {
			case s.Inserted():
				iw.obs.Injected()
			case s.Reason() != "":
				iw.obs.Skipped(s.Reason())
			case iw.in.require.word == "":
				iw.obs.Skipped(ReasonPresent)
			default:
				iw.obs.Skipped(ReasonNotRequired)
			}
		}
	}
	*iw = Writer{}
	writers.Put(iw)
}

// ReasonAborted: the response broke off before its end (see Abort).
const ReasonAborted = "aborted"

// Abort is Finish for a response that broke off: the handler below
// panicked (reverse_proxy panics with http.ErrAbortHandler when the
// upstream body breaks off or the client goes away). It releases the
// Stream, stopping a compressed body's decoding coroutine, and writes
// nothing more. iw is not returned to its pool: code below that still
// holds it gets errors, not another response's Writer.
func (iw *Writer) Abort() {
	if s := iw.stream; s != nil {
		s.Abort()
		if iw.obs != nil {
			iw.obs.Skipped(ReasonAborted)
		}
	}
}

func (iw *Writer) WriteHeader(status int) {
	if iw.wroteHeader {
		return
	}
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		// informational responses are not the final response
		iw.ResponseWriter.WriteHeader(status)
		return
	}
	iw.wroteHeader = true
	switch {
	case iw.skip == "":
		if status == http.StatusNotModified {
			notModified(iw.ResponseWriter.Header(), iw.ifNoneMatch)
		}
		iw.begin(status, iw.ResponseWriter.Header())
	case iw.headOfPage:
		iw.headLikeGet(status, iw.ResponseWriter.Header())
	}
	iw.ResponseWriter.WriteHeader(status)
}

// headLikeGet gives a HEAD answer the header fields GET's would carry
// (RFC 9110 §9.3.2): where GET gets the snippet, no Content-Length (the
// length GET's body will have is not known without it) and a weak ETag.
// The body stays empty.
func (iw *Writer) headLikeGet(status int, h http.Header) {
	if status == http.StatusNotModified {
		notModified(h, iw.ifNoneMatch)
		return
	}
	if SkipResponse(status, h) != "" {
		return
	}
	if _, ok := iw.in.rewritable(h); ok { // else GET leaves the page alone too
		adjustHeader(h)
	}
}

// notModified gives a 304 the ETag the 200 would have carried (RFC 9110
// §15.4.5): weakened, when the 200 gets the snippet. A 304 rarely says
// whether its 200 is a page, so a strong ETag is weakened when the 304 is
// labelled HTML, or when the request's If-None-Match lists its weak form:
// the client holds a copy with the snippet. The weak form (W/"v1") still
// matches for If-None-Match, so this changes nothing but the field.
func notModified(h http.Header, ifNoneMatch []string) {
	v := h["Etag"]
	if len(v) == 0 || v[0] == "" || strings.HasPrefix(v[0], "W/") {
		return
	}
	if ct := h["Content-Type"]; len(ct) > 0 {
		if mt := mediaType(ct[0]); mt == "text/html" || mt == "application/xhtml+xml" {
			weakenETag(h)
			return
		}
	}
	for _, field := range ifNoneMatch {
		for field != "" {
			var tag string
			tag, field, _ = strings.Cut(field, ",")
			tag = strings.TrimSpace(tag)
			if len(tag) == len(v[0])+2 && strings.HasPrefix(tag, "W/") && tag[2:] == v[0] {
				weakenETag(h)
				return
			}
		}
	}
}

func (iw *Writer) begin(status int, hdr http.Header) {
	if reason := SkipResponse(status, hdr); reason != "" {
		if iw.obs != nil {
			iw.obs.Skipped(reason)
		}
		return
	}
	stream, err := iw.in.Begin(iw.ResponseWriter, hdr)
	if err != nil {
		if iw.obs != nil {
			iw.obs.Skipped("encoding")
		}
		if iw.logger != nil {
			iw.logger.Debug("injecting into the page: leaving it unchanged",
				zap.String("content_encoding", hdr.Get("Content-Encoding")), zap.Error(err))
		}
		return
	}
	iw.stream = stream
}

func (iw *Writer) Write(p []byte) (int, error) {
	if !iw.wroteHeader {
		iw.WriteHeader(http.StatusOK)
	}
	if iw.stream != nil {
		return iw.stream.Write(p)
	}
	return iw.ResponseWriter.Write(p)
}

// ReadFrom keeps sendfile and splice for bodies that are not rewritten
// (file_server and reverse_proxy hand their bodies over this way).
func (iw *Writer) ReadFrom(r io.Reader) (int64, error) {
	if !iw.wroteHeader {
		iw.WriteHeader(http.StatusOK)
	}
	if iw.stream != nil {
		bp := copyBufs.Get().(*[]byte)
		n, err := io.CopyBuffer(httpx.WriterOnly{Writer: iw.stream}, r, *bp)
		copyBufs.Put(bp)
		return n, err
	}
	if rf, ok := iw.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(httpx.WriterOnly{Writer: iw.ResponseWriter}, r)
}

// copyBufs hold the buffers of rewritten bodies handed over through
// ReadFrom, so a page does not cost a fresh 32 KiB.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// FlushError is what http.ResponseController calls. A rewritten body
// first pushes out every byte the insertion can no longer change, so
// progressive rendering keeps working.
func (iw *Writer) FlushError() error {
	if !iw.wroteHeader {
		iw.WriteHeader(http.StatusOK)
	}
	if iw.stream != nil {
		if err := iw.stream.Flush(); err != nil {
			return err
		}
	}
	return http.NewResponseController(iw.ResponseWriter).Flush()
}

// Flush implements http.Flusher for handlers that still assert it.
func (iw *Writer) Flush() { _ = iw.FlushError() }

func (iw *Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(iw.ResponseWriter).Hijack()
	if err == nil {
		iw.wroteHeader = true
	}
	return conn, brw, err
}

// Push keeps HTTP/2 server push working.
func (iw *Writer) Push(target string, opts *http.PushOptions) error {
	if p, ok := iw.ResponseWriter.(http.Pusher); ok {
		return p.Push(target, opts)
	}
	return http.ErrNotSupported
}

// Unwrap lets http.ResponseController reach the writers below.
func (iw *Writer) Unwrap() http.ResponseWriter { return iw.ResponseWriter }

// Interface guards
var (
	_ http.Flusher  = (*Writer)(nil)
	_ http.Hijacker = (*Writer)(nil)
	_ http.Pusher   = (*Writer)(nil)
	_ io.ReaderFrom = (*Writer)(nil)
)
