package bridge

import (
	"bytes"
	"errors"
	"net/http"
	"sync"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

// DefaultMaxResponse bounds a recorded answer: a concierge answer or a
// content document far larger than this is no tool result.
const DefaultMaxResponse = 1 << 20

// ErrResponseTooLarge is returned by Recorder.Write past the limit, so the
// handler producing the answer stops early.
var ErrResponseTooLarge = errors.New("ahp: internal response exceeds the recorder's limit")

// Recorder is an in-memory http.ResponseWriter for internal requests, with
// a bounded body. Get one with NewRecorder and give it back with Release.
type Recorder struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	limit    int
	overflow bool
}

var recorders = sync.Pool{New: func() any { return &Recorder{header: make(http.Header)} }}

// NewRecorder returns an empty recorder keeping at most limit body bytes
// (DefaultMaxResponse when limit <= 0).
func NewRecorder(limit int) *Recorder {
	rec := recorders.Get().(*Recorder)
	if limit <= 0 {
		limit = DefaultMaxResponse
	}
	rec.limit = limit
	return rec
}

// Release returns rec to the pool; rec and what it returned (Body, Header)
// must not be used afterwards.
func (rec *Recorder) Release() {
	clear(rec.header)
	rec.status, rec.overflow = 0, false
	if rec.body.Cap() > 64<<10 {
		rec.body = bytes.Buffer{} // do not pin one large answer's memory
	}
	rec.body.Reset()
	recorders.Put(rec)
}

func (rec *Recorder) Header() http.Header { return rec.header }

// WriteHeader records the first final status; informational responses
// (103 Early Hints) are not the answer.
func (rec *Recorder) WriteHeader(code int) {
	if rec.status != 0 || (code >= 100 && code < 200) {
		return
	}
	rec.status = code
}

func (rec *Recorder) Write(p []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.overflow {
		return 0, ErrResponseTooLarge
	}
	if rec.body.Len()+len(p) > rec.limit {
		rec.overflow = true
		return 0, ErrResponseTooLarge
	}
	return rec.body.Write(p)
}

// Flush is a no-op: handlers that stream (a reverse proxy) may flush.
func (rec *Recorder) Flush() {}

// Written reports whether the handler wrote a status or a body.
func (rec *Recorder) Written() bool { return rec.status != 0 }

// Status is the recorded status, 200 if the handler wrote nothing.
func (rec *Recorder) Status() int {
	if rec.status == 0 {
		return http.StatusOK
	}
	return rec.status
}

// Body is the recorded body; valid until Release.
func (rec *Recorder) Body() []byte { return rec.body.Bytes() }

// Overflowed reports a body over the limit: Body is then incomplete.
func (rec *Recorder) Overflowed() bool { return rec.overflow }

// IsJSON reports whether the recorded Content-Type is JSON
// (application/json or a +json type).
func (rec *Recorder) IsJSON() bool { return httpx.IsJSON(rec.header.Get("Content-Type")) }

// rateLimitHeaders are the rate-limit fields a front door passes on from
// an internal answer to its own response: spec §11.1's, the IETF draft's
// (the `headers ietf|both` option) and Retry-After.
var rateLimitHeaders = []string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "X-Ratelimit-Window",
	"Ratelimit", "Ratelimit-Policy", "Retry-After"}

// CopyRateLimit copies the rate limit headers of the recorded answer to
// dst, replacing earlier values: after several calls in one front-door
// request, the last answer's budget is the current one. The values are
// copied into one allocation that belongs to dst alone (the recorder's
// header map is reused, and Caddy's header directive edits values in
// place).
func (rec *Recorder) CopyRateLimit(dst http.Header) {
	n := 0
	for _, k := range rateLimitHeaders {
		n += len(rec.header[k])
	}
	if n == 0 {
		return
	}
	vals := make([]string, 0, n)
	for _, k := range rateLimitHeaders {
		if v, ok := rec.header[k]; ok && len(v) > 0 {
			start := len(vals)
			vals = append(vals, v...)
			dst[k] = vals[start:len(vals):len(vals)]
		}
	}
}
