package middleware

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/notice"
)

// responseWriter sits between the next handler and the client for pages
// that pass through. At WriteHeader it makes sure the response carries
// exactly one ahp-manifest link and decides whether the body gets the
// in-page notice; it streams everything else untouched.
//
// It keeps Flush, Hijack, ReadFrom and Unwrap working: wrappers that hide
// them break SSE, WebSockets and sendfile, a recurring bug in plugins.
type responseWriter struct {
	http.ResponseWriter
	h *Handler

	// noticeSkip is why this request's response keeps its body as it is
	// ("" means it may get the notice once its headers are known).
	noticeSkip  string
	wroteHeader bool
	hijacked    bool
	stream      *notice.Stream
}

var writerPool = sync.Pool{New: func() any { return new(responseWriter) }}

func (h *Handler) wrap(w http.ResponseWriter, noticeSkip string) *responseWriter {
	rw := writerPool.Get().(*responseWriter)
	rw.ResponseWriter = w
	rw.h = h
	rw.noticeSkip = noticeSkip
	return rw
}

// finish completes the body (the notice goes in at its end when there is
// no </body>) and returns the writer to the pool.
func (rw *responseWriter) finish() {
	if rw.stream != nil {
		if err := rw.stream.Close(); err != nil {
			rw.h.logger.Debug("in-page notice: completing the body failed", zap.Error(err))
		}
		// Only Close knows: the page may have carried a notice already.
		if rw.stream.Inserted() {
			rw.h.observer.NoticeInjected()
		} else {
			rw.h.observer.NoticeSkipped("present")
		}
	}
	*rw = responseWriter{}
	writerPool.Put(rw)
}

func (rw *responseWriter) WriteHeader(status int) {
	if rw.wroteHeader {
		return
	}
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		// informational responses are not the final response
		rw.ResponseWriter.WriteHeader(status)
		return
	}
	rw.wroteHeader = true
	hdr := rw.ResponseWriter.Header()
	dedupeLinks(hdr)
	if rw.noticeSkip == "" && rw.h.notice != nil {
		rw.beginNotice(status, hdr)
	}
	rw.ResponseWriter.WriteHeader(status)
}

func (rw *responseWriter) beginNotice(status int, hdr http.Header) {
	if reason := notice.SkipResponse(status, hdr); reason != "" {
		rw.h.observer.NoticeSkipped(reason)
		return
	}
	stream, err := rw.h.notice.Begin(rw.ResponseWriter, hdr)
	if err != nil {
		rw.h.observer.NoticeSkipped("encoding")
		rw.h.logger.Debug("in-page notice: leaving the page unchanged",
			zap.String("content_encoding", hdr.Get("Content-Encoding")), zap.Error(err))
		return
	}
	rw.stream = stream
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.stream != nil {
		return rw.stream.Write(p)
	}
	return rw.ResponseWriter.Write(p)
}

// ReadFrom keeps sendfile and splice for bodies that are not rewritten
// (file_server and reverse_proxy hand their bodies over this way).
func (rw *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.stream != nil {
		bp := copyBufPool.Get().(*[]byte)
		n, err := io.CopyBuffer(writerOnly{rw.stream}, r, *bp)
		copyBufPool.Put(bp)
		return n, err
	}
	if rf, ok := rw.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{rw.ResponseWriter}, r)
}

// copyBufPool holds the buffers of rewritten bodies handed over through
// ReadFrom, so a page does not cost a fresh 32 KiB.
var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// writerOnly hides ReadFrom so io.Copy does not recurse into it.
type writerOnly struct{ io.Writer }

// FlushError is what http.ResponseController calls. A rewritten body
// first pushes out every byte that the insertion can no longer change,
// so progressive rendering keeps working.
func (rw *responseWriter) FlushError() error {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.stream != nil {
		if err := rw.stream.Flush(); err != nil {
			return err
		}
	}
	return http.NewResponseController(rw.ResponseWriter).Flush()
}

// Flush implements http.Flusher for handlers that still assert it.
func (rw *responseWriter) Flush() { _ = rw.FlushError() }

func (rw *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(rw.ResponseWriter).Hijack()
	if err == nil {
		rw.hijacked = true
		rw.wroteHeader = true
	}
	return conn, brw, err
}

// Push keeps HTTP/2 server push (Caddy's push handler) working.
func (rw *responseWriter) Push(target string, opts *http.PushOptions) error {
	if p, ok := rw.ResponseWriter.(http.Pusher); ok {
		return p.Push(target, opts)
	}
	return http.ErrNotSupported
}

// Unwrap lets http.ResponseController reach the writers below.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// Interface guards
var (
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ http.Flusher        = (*responseWriter)(nil)
	_ http.Hijacker       = (*responseWriter)(nil)
	_ http.Pusher         = (*responseWriter)(nil)
	_ io.ReaderFrom       = (*responseWriter)(nil)
)
