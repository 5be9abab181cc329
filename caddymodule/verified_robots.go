package caddymodule

import (
	"fmt"
	"mime"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// robots.txt with the manifest's content signals (`robots extend|serve|off`):
// the one source of the Content-Signal and Content-Usage headers also
// writes the robots.txt lines, so manifest, headers and robots.txt say
// the same.

// The robots option's values.
const (
	RobotsOff    = "off"    // robots.txt is the site's business (default)
	RobotsExtend = "extend" // the site's robots.txt with the signals' group appended
	RobotsServe  = "serve"  // the plugin answers /robots.txt with the signals' group alone
)

const robotsPath = "/robots.txt"

// maxRobotsBytes is the most of the site's robots.txt extended: RFC 9309
// §2.5 asks crawlers to parse at least 500 KiB. A longer file passes
// through unchanged (the group would be past what crawlers read anyway).
const maxRobotsBytes = 500 << 10

// parseRobots reads `robots extend|serve|off`.
func parseRobots(d *caddyfile.Dispenser) (string, error) {
	args := d.RemainingArgs()
	if len(args) != 1 || (args[0] != RobotsExtend && args[0] != RobotsServe && args[0] != RobotsOff) {
		return "", d.Errf("ahp robots: want extend (append the content signals to the site's robots.txt), serve (answer /robots.txt with them alone) or off")
	}
	return args[0], nil
}

// provisionRobots returns the robots.txt step of ServeHTTP, nil when off.
// The step reports whether it answered the request.
func provisionRobots(mode string, m *manifest.Manifest, cacheControl string, logger *zap.Logger) (func(http.ResponseWriter, *http.Request, string, caddyhttp.Handler) (bool, error), error) {
	switch mode {
	case "", RobotsOff:
		return nil, nil
	case RobotsExtend, RobotsServe:
	default:
		return nil, fmt.Errorf("ahp robots %q: must be extend, serve or off", mode)
	}
	group := manifest.RenderSignals(m.ContentSignals).RobotsGroup
	if group == "" {
		return nil, fmt.Errorf("ahp robots %s: the manifest sets no content signal, so there is nothing to put in robots.txt; add content_signals { ai_train false ... } or remove robots", mode)
	}
	if cacheControl == "" {
		cacheControl = "public, max-age=300"
	}
	s := &robotsStep{extend: mode == RobotsExtend, group: group, cacheControl: cacheControl, logger: logger}
	return s.serve, nil
}

type robotsStep struct {
	extend       bool
	group        string
	cacheControl string
	logger       *zap.Logger
}

// serve answers GET and HEAD of /robots.txt (as sent or as rewritten).
func (s *robotsStep) serve(w http.ResponseWriter, r *http.Request, originalPath string, next caddyhttp.Handler) (bool, error) {
	if (r.URL.Path != robotsPath && originalPath != robotsPath) ||
		(r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false, nil
	}
	if !s.extend {
		s.write(w, r.Method == http.MethodHead, nil, "")
		return true, nil
	}
	return true, s.extendSite(w, r, next)
}

// extendSite fetches the site's own robots.txt through the rest of the
// chain and appends the group. What is not a plain-text robots.txt (an
// error, a redirect, an HTML page from a catch-all route, a compressed
// body) passes through unchanged; a missing one (404, 410) becomes the
// group alone, which allows what a missing robots.txt allows.
func (s *robotsStep) extendSite(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// The answer is new content: the client's validators and ranges do
	// not apply to it, and it is read uncompressed to be appended to.
	for _, f := range []string{"Accept-Encoding", "Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since"} {
		delete(r.Header, f)
	}
	// A HEAD's length depends on the site's body: ask for it.
	head := r.Method == http.MethodHead
	if head {
		r.Method = http.MethodGet
		defer func() { r.Method = http.MethodHead }()
	}
	rw := &robotsWriter{ResponseWriter: w}
	err := next.ServeHTTP(rw, r)
	switch rw.mode {
	case robotsUndecided:
		if err != nil {
			if st := errorStatus(err); st != http.StatusNotFound && st != http.StatusGone {
				return err
			}
		}
		s.write(w, head, nil, "")
		return nil
	case robotsMissing:
		s.write(w, head, nil, "")
		return nil
	case robotsBuffer:
		if err != nil {
			return err
		}
		s.write(w, head, rw.buf, rw.Header().Get("Content-Type"))
		return nil
	}
	if rw.why != "" {
		if c := s.logger.Check(zap.DebugLevel, "robots.txt passed through unchanged"); c != nil {
			c.Write(zap.String("reason", rw.why))
		}
	}
	return err
}

// write answers with site (nil: none) and the group: 200, the site's
// headers but for what described the site's body.
func (s *robotsStep) write(w http.ResponseWriter, head bool, site []byte, contentType string) {
	n := len(site)
	sep := ""
	if n > 0 {
		if site[n-1] != '\n' {
			sep = "\n"
		}
		sep += "\n" // a blank line ends the site's last group
	}
	h := w.Header()
	for _, f := range []string{"Content-Encoding", "Content-Range", "Accept-Ranges", "Etag", "Last-Modified"} {
		delete(h, f)
	}
	if contentType == "" {
		contentType = "text/plain; charset=utf-8"
	}
	v := make([]string, 3)
	v[0], v[1] = contentType, strconv.Itoa(n+len(sep)+len(s.group))
	h["Content-Type"], h["Content-Length"] = v[0:1:1], v[1:2:2]
	if site == nil {
		v[2] = s.cacheControl
		h["Cache-Control"] = v[2:3:3]
	}
	w.WriteHeader(http.StatusOK)
	if head {
		return
	}
	if n > 0 {
		_, _ = w.Write(site)
		_, _ = w.Write([]byte(sep))
	}
	_, _ = w.Write([]byte(s.group))
}

const (
	robotsUndecided = iota
	robotsPass      // not extendable: streamed unchanged
	robotsBuffer    // a plain-text robots.txt, held to be extended
	robotsMissing   // 404 or 410: the body is dropped
)

// robotsWriter decides at the status line whether the site's answer is a
// robots.txt to extend. It holds at most maxRobotsBytes.
type robotsWriter struct {
	http.ResponseWriter
	mode   int
	status int
	buf    []byte
	why    string // why it passed through, for the debug log
}

func (rw *robotsWriter) WriteHeader(status int) {
	if rw.mode != robotsUndecided {
		return
	}
	if status < 200 {
		rw.ResponseWriter.WriteHeader(status) // 1xx: informational, not the answer
		return
	}
	h := rw.Header()
	switch {
	case status == http.StatusNotFound || status == http.StatusGone:
		rw.mode = robotsMissing
		return
	case status != http.StatusOK:
		rw.why = "status " + strconv.Itoa(status)
	case h.Get("Content-Encoding") != "" && h.Get("Content-Encoding") != "identity":
		rw.why = "encoded as " + h.Get("Content-Encoding")
	case !plainText(h.Get("Content-Type")):
		rw.why = "content type " + h.Get("Content-Type")
	default:
		if cl, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && cl > maxRobotsBytes {
			rw.why = "larger than " + strconv.Itoa(maxRobotsBytes) + " bytes"
			break
		}
		rw.mode, rw.status = robotsBuffer, status
		return
	}
	rw.mode = robotsPass
	rw.ResponseWriter.WriteHeader(status)
}

func (rw *robotsWriter) Write(p []byte) (int, error) {
	if rw.mode == robotsUndecided {
		rw.WriteHeader(http.StatusOK)
	}
	switch rw.mode {
	case robotsMissing:
		return len(p), nil
	case robotsBuffer:
		if len(rw.buf)+len(p) <= maxRobotsBytes {
			rw.buf = append(rw.buf, p...)
			return len(p), nil
		}
		// Too long to extend: what was held goes out as it came.
		rw.mode, rw.why = robotsPass, "larger than "+strconv.Itoa(maxRobotsBytes)+" bytes"
		rw.ResponseWriter.WriteHeader(rw.status)
		if _, err := rw.ResponseWriter.Write(rw.buf); err != nil {
			return 0, err
		}
		rw.buf = nil
	}
	return rw.ResponseWriter.Write(p)
}

// FlushError flushes only what passes through: a held body must not send
// its headers early.
func (rw *robotsWriter) FlushError() error {
	if rw.mode != robotsPass {
		return nil
	}
	return http.NewResponseController(rw.ResponseWriter).Flush()
}

func (rw *robotsWriter) Flush() { _ = rw.FlushError() }

// Unwrap lets http.ResponseController reach the connection.
func (rw *robotsWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// plainText admits text/plain and an absent type (which file servers and
// proxies may leave out for a .txt file).
func plainText(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "text/plain"
}
