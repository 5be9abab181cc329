package handoff

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

// Failure is the one answer every failure on a uniform path gets (spec
// §10, §17.3, §19.5): the same status, body and headers, leaving no
// earlier than Floor after the request arrived, so "not found",
// "expired", "used", "invalid" and "locked out" cannot be told apart by
// status, body or timing.
type Failure struct {
	// Status of the failure (default 404).
	Status int
	// Body of the failure, JSON (default DefaultFailureBody).
	Body []byte
	// Floor is the earliest a failure answer leaves after the request
	// arrived (default 250ms). Set it above the backend's slowest failure.
	Floor time.Duration
}

// DefaultFailureBody is the uniform failure's default body.
const DefaultFailureBody = `{"error":"not_found","message":"Not found. The link or code is unknown, expired, already used or not valid here."}`

// DefaultFloor is Failure.Floor's default.
const DefaultFloor = 250 * time.Millisecond

func (f *Failure) normalize() error {
	if f.Status == 0 {
		f.Status = http.StatusNotFound
	}
	if f.Status < 400 || f.Status > 599 {
		return fmt.Errorf("failure status %d: want a 4xx or 5xx status", f.Status)
	}
	if len(f.Body) == 0 {
		f.Body = []byte(DefaultFailureBody)
	}
	if !json.Valid(f.Body) {
		return errors.New("failure body: not valid JSON")
	}
	if f.Floor == 0 {
		f.Floor = DefaultFloor
	}
	if f.Floor < 0 {
		f.Floor = 0
	}
	return nil
}

// failure writes the uniform failure once Floor has passed since start.
// It returns nil even if the client went away: the request was answered
// as far as this handler is concerned.
func (h *Handler) failure(w http.ResponseWriter, r *http.Request, start time.Time) error {
	h.waitFloor(r.Context(), start)
	writeFailure(w, &h.fail)
	h.observer.UniformFailure()
	return nil
}

// waitFloor blocks until start+Floor (on the handler's clock).
func (h *Handler) waitFloor(ctx context.Context, start time.Time) {
	d := h.fail.Floor - h.now().Sub(start)
	if d <= 0 {
		return
	}
	h.sleep(ctx, d)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// writeFailure writes f with headers of its own: fresh slices, since
// other handlers may edit header values in place.
func writeFailure(w http.ResponseWriter, f *Failure) {
	hd := w.Header()
	hd["Content-Type"] = []string{"application/json"}
	hd["Content-Length"] = []string{strconv.Itoa(len(f.Body))}
	hd["Cache-Control"] = []string{"no-store"}
	hd["X-Content-Type-Options"] = []string{"nosniff"}
	hd["X-Frame-Options"] = []string{"DENY"}
	hd["Content-Security-Policy"] = []string{"default-src 'none'; frame-ancestors 'none'"}
	hd["Referrer-Policy"] = []string{"no-referrer"}
	hd["X-Robots-Tag"] = []string{"noindex, nofollow"}
	w.WriteHeader(f.Status)
	_, _ = w.Write(f.Body)
}

// interceptWriter stands between the backend and the client on the paths
// whose failures are replaced: the backend writes its headers into a
// staging map; a success (below 400) copies them out and streams, a
// failure discards headers and body alike, so nothing of a backend
// failure (its status, body, Set-Cookie, Content-Length …) reaches the
// client. Informational (1xx) answers are dropped.
type interceptWriter struct {
	w      http.ResponseWriter
	staged http.Header
	status int // 0 until the backend wrote its header
	failed bool
	// passFailures lets failures through unchanged (a path that is not
	// uniform); only capture applies.
	passFailures bool

	// capture, when set, buffers a 2xx JSON answer up to captureLimit so
	// that the handler may rewrite it; beyond the limit it streams as is.
	capture      bool
	captured     bool
	buf          bytes.Buffer
	captureLimit int
}

func newInterceptWriter(w http.ResponseWriter) *interceptWriter {
	return &interceptWriter{w: w, staged: make(http.Header, 8)}
}

func (iw *interceptWriter) Header() http.Header {
	if iw.status != 0 && !iw.failed && !iw.captured {
		return iw.w.Header()
	}
	return iw.staged
}

func (iw *interceptWriter) WriteHeader(code int) {
	if iw.status != 0 || code < 200 {
		return
	}
	iw.status = code
	if code >= 400 && !iw.passFailures {
		iw.failed = true
		return
	}
	if iw.capture && code < 300 && httpx.IsJSON(iw.staged.Get("Content-Type")) && iw.staged.Get("Content-Encoding") == "" {
		iw.captured = true
		return
	}
	iw.release()
}

// release copies the staged headers out and writes the status. A
// backend's X-Frame-Options never replaces the plugin's.
func (iw *interceptWriter) release() {
	dst := iw.w.Header()
	for k, v := range iw.staged {
		if k == "X-Frame-Options" && len(dst[k]) > 0 {
			continue
		}
		cur := dst[k]
		dst[k] = append(cur[:len(cur):len(cur)], v...) // never into a shared array
	}
	iw.w.WriteHeader(iw.status)
}

func (iw *interceptWriter) Write(b []byte) (int, error) {
	if iw.status == 0 {
		iw.WriteHeader(http.StatusOK)
	}
	switch {
	case iw.failed:
		return len(b), nil
	case iw.captured:
		if iw.buf.Len()+len(b) <= iw.captureLimit {
			return iw.buf.Write(b)
		}
		// Too large to rewrite: stream it unchanged.
		iw.captured = false
		iw.release()
		if _, err := iw.w.Write(iw.buf.Bytes()); err != nil {
			return 0, err
		}
		iw.buf.Reset()
	}
	return iw.w.Write(b)
}

// Flush passes through once the answer streams.
func (iw *interceptWriter) Flush() {
	if iw.status != 0 && !iw.failed && !iw.captured {
		_ = http.NewResponseController(iw.w).Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (iw *interceptWriter) Unwrap() http.ResponseWriter { return iw.w }

// succeeded reports whether the backend answered below 400.
func (iw *interceptWriter) succeeded() bool { return iw.status != 0 && !iw.failed }
