package handshake

// inject forms: pages with a <form> get the browser client's <script>,
// through the AHP notice's streaming injector (package htmlinject: bodies
// stream, compressed ones are decoded and re-encoded, a page that already
// has the script is left alone).

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/caddy-ahp/caddy-ahp/htmlinject"
)

// inject passes the request on with a writer that adds the client to HTML
// responses the injector accepts.
func (h *Handler) inject(w http.ResponseWriter, r *http.Request, next Next) error {
	if htmlinject.SkipRequest(r) != "" {
		return next.ServeHTTP(w, r)
	}
	iw := injectPool.Get().(*injectWriter)
	iw.ResponseWriter, iw.in = w, h.injector
	err := next.ServeHTTP(iw, r)
	if iw.stream != nil {
		if cerr := iw.stream.Close(); cerr != nil {
			h.log.Debug("handshake: completing an injected page failed", zapErr(cerr))
		}
		h.obs.Injected(iw.stream.Inserted())
	}
	*iw = injectWriter{}
	injectPool.Put(iw)
	return err
}

var injectPool = sync.Pool{New: func() any { return new(injectWriter) }}

// injectWriter keeps Flush, Hijack, ReadFrom and Unwrap working, as the
// AHP notice's writer does.
type injectWriter struct {
	http.ResponseWriter
	in          *htmlinject.Injector
	wroteHeader bool
	stream      *htmlinject.Stream
}

func (iw *injectWriter) WriteHeader(status int) {
	if iw.wroteHeader {
		return
	}
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		iw.ResponseWriter.WriteHeader(status)
		return
	}
	iw.wroteHeader = true
	hdr := iw.ResponseWriter.Header()
	if htmlinject.SkipResponse(status, hdr) == "" {
		if s, err := iw.in.Begin(iw.ResponseWriter, hdr); err == nil {
			iw.stream = s
		}
	}
	iw.ResponseWriter.WriteHeader(status)
}

func (iw *injectWriter) Write(p []byte) (int, error) {
	if !iw.wroteHeader {
		iw.WriteHeader(http.StatusOK)
	}
	if iw.stream != nil {
		return iw.stream.Write(p)
	}
	return iw.ResponseWriter.Write(p)
}

func (iw *injectWriter) ReadFrom(r io.Reader) (int64, error) {
	if !iw.wroteHeader {
		iw.WriteHeader(http.StatusOK)
	}
	if iw.stream != nil {
		return io.Copy(writerOnly{iw.stream}, r)
	}
	if rf, ok := iw.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{iw.ResponseWriter}, r)
}

type writerOnly struct{ io.Writer }

func (iw *injectWriter) FlushError() error {
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

func (iw *injectWriter) Flush() { _ = iw.FlushError() }

func (iw *injectWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(iw.ResponseWriter).Hijack()
	if err == nil {
		iw.wroteHeader = true
	}
	return c, brw, err
}

func (iw *injectWriter) Unwrap() http.ResponseWriter { return iw.ResponseWriter }

var (
	_ http.Flusher  = (*injectWriter)(nil)
	_ http.Hijacker = (*injectWriter)(nil)
	_ io.ReaderFrom = (*injectWriter)(nil)
)
