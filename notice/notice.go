// Package notice renders the in-page AHP agent notice (spec §3.3) and
// splices it into HTML response bodies as they stream through.
//
// The package knows nothing about Caddy: the middleware asks SkipRequest and
// SkipResponse whether a response is eligible, calls Begin at WriteHeader
// time and writes the body through the returned Stream.
package notice

import (
	"errors"
	"io"
	"net/http"
)

// Config is what the operator configures
// (Caddyfile: `notice { text "..." template <file> }`, `notice off`).
type Config struct {
	ManifestPath string // default "/.well-known/agent.json"
	Version      string // AHP version, default "0.1"
	SiteName     string // manifest name, may be empty; usable by templates
	Text         string // replaces the first paragraph of the default text; plain text, HTML-escaped
	TemplateFile string // optional html/template file rendering the section's inner HTML
}

// ErrUnsupportedEncoding is returned by Begin for a Content-Encoding the
// injector cannot decode and re-encode; the response must pass untouched.
var ErrUnsupportedEncoding = errors.New("notice: unsupported Content-Encoding")

// Injector holds the rendered section and is safe for concurrent use.
type Injector struct {
	section []byte
}

// New renders the section once.
func New(cfg Config) (*Injector, error) {
	return &Injector{}, nil
}

// Section returns the exact bytes inserted into pages. Callers must not modify it.
func (in *Injector) Section() []byte { return in.section }

// SkipRequest reports why the response to r must pass untouched, or "".
func SkipRequest(r *http.Request) string { return "" }

// SkipResponse reports why a response with this status and header must pass
// untouched, or "".
func SkipResponse(status int, h http.Header) string { return "" }

// Begin prepares h for a modified body and returns the Stream to write it through.
func (in *Injector) Begin(dst io.Writer, h http.Header) (*Stream, error) {
	return &Stream{}, nil
}

// Stream splices the section into one response body.
type Stream struct{}

func (s *Stream) Write(p []byte) (int, error) { return len(p), nil }
func (s *Stream) Flush() error                { return nil }
func (s *Stream) Close() error                { return nil }
func (s *Stream) Inserted() bool              { return false }
