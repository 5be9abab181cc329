package htmlinject

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
)

var errClosed = errors.New("htmlinject: write to a closed Stream")

var splicerPool = sync.Pool{New: func() any { return new(splicer) }}

// Stream splices the snippet into one response body. It is not safe for
// concurrent use. Close must be called once the body is complete, even after
// an error: it releases pooled state (and, for a compressed body, the
// decoding coroutine and the compressed bytes held).
type Stream struct {
	sp       *splicer
	cd       *codec // nil for an identity body
	inserted bool
	reason   passReason // why Close inserted nothing, when not for the marker or Require
}

// Begin is called at WriteHeader time for an eligible response, before the
// header is sent. It adjusts h for a modified body and returns the Stream
// that writes it to dst, re-encoded with the response's Content-Encoding.
// For an encoding it cannot handle (anything but identity, gzip, x-gzip,
// deflate, br or zstd, or several stacked) it returns ErrUnsupportedEncoding
// and leaves h untouched.
func (in *Injector) Begin(dst io.Writer, h http.Header) (*Stream, error) {
	enc, ok := in.rewritable(h)
	if !ok {
		return nil, ErrUnsupportedEncoding
	}
	adjustHeader(h)
	sp := splicerPool.Get().(*splicer)
	sp.reset(dst, in)
	sp.noAppend = mediaType(first(h["Content-Type"])) == "application/xhtml+xml"
	s := &Stream{sp: sp}
	if enc != identity {
		s.cd = newCodec(enc, dst, sp, in.maxDecoded)
	}
	return s, nil
}

// rewritable returns the content coding of a body described by h, and
// whether Begin can rewrite a body in it.
func (in *Injector) rewritable(h http.Header) (coding, bool) {
	enc, ok := contentCoding(h["Content-Encoding"])
	return enc, ok && (enc == identity || in.maxDecoded >= 0)
}

// adjustHeader makes h describe a modified body: the length and anything
// that vouches for the exact bytes no longer hold; the validators stay, the
// ETag weakened so that caches never mix the two variants.
//
// Fields are deleted or replaced, never edited in place: a handler below
// may hand every response the same value slices (a response cache, a
// precomputed header), and an edit would change, and race on, its copy.
func adjustHeader(h http.Header) {
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	h.Del("Content-Md5")
	h.Del("Digest")
	h.Del("Content-Digest")
	h.Del("Repr-Digest")
	weakenETag(h)
}

// weakenETag replaces a strong ETag with its weak form, in a slice of its
// own.
func weakenETag(h http.Header) {
	if v := h["Etag"]; len(v) > 0 && v[0] != "" && !strings.HasPrefix(v[0], "W/") {
		h["Etag"] = []string{"W/" + v[0]}
	}
}

// Write writes the next part of the body. It holds back the most recent
// bytes (at least maxHold, at most 16 KiB more) and writes what leaves that
// window in one Write to dst; a page up to 80 KiB reaches dst only at Flush
// or Close, in one piece with the snippet.
func (s *Stream) Write(p []byte) (int, error) {
	switch {
	case s.sp == nil:
		return 0, errClosed
	case s.cd != nil:
		return s.cd.write(p)
	default:
		return s.sp.write(p)
	}
}

// Flush writes to dst every byte that the insertion can no longer affect,
// so that progressive rendering keeps working. A compressed body is held
// until Close, or until it is known to pass through unchanged: Flush
// writes nothing of it (see Config.MaxDecoded). Flushing dst itself is the
// caller's job.
func (s *Stream) Flush() error {
	switch {
	case s.sp == nil:
		return errClosed
	case s.cd != nil:
		return s.cd.flush()
	default:
		return s.sp.flush()
	}
}

// Close ends the body: it inserts the snippet if the page qualifies (at the
// end when there is no </body>), writes what was held back and releases
// pooled state. Only Inserted may be called afterwards.
func (s *Stream) Close() error {
	if s.sp == nil {
		return errClosed
	}
	var err error
	if s.cd != nil {
		err = s.cd.close()
		s.cd = nil
	} else {
		err = s.sp.close()
	}
	s.inserted = s.sp.inserted
	if !s.inserted {
		s.reason = s.sp.why
	}
	s.sp.reset(nil, nil)
	splicerPool.Put(s.sp)
	s.sp = nil
	return err
}

// Abort ends the body without writing anything more: the response broke
// off (the handler panicked, the client went away). It stops a compressed
// body's decoding coroutine and releases what Close would; Close must not
// be called afterwards, and Abort after Close does nothing.
func (s *Stream) Abort() {
	if s.sp == nil {
		return
	}
	if s.cd != nil {
		s.cd.release()
		s.cd = nil
	}
	s.sp.reset(nil, nil)
	splicerPool.Put(s.sp)
	s.sp = nil
}

// Inserted reports whether Close inserted the snippet; it is false when the
// page carried the marker, lacked Require, or could not be decoded.
func (s *Stream) Inserted() bool { return s.inserted }

// Reason says why Close inserted nothing when the page showed it is no
// place for the snippet (ReasonCharset, ReasonNotDocument, ReasonNotHTML
// for JSON labelled as HTML); "" otherwise.
func (s *Stream) Reason() string { return s.reason.String() }
