package middleware

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
)

var jsonMarshal = json.Marshal

// conciergeWriter watches the concierge's answer on its way to the agent.
// A JSON success answer is read (up to a cap) to account the session's
// tokens and session id and to echo the content signals; an answer from a
// concierge that is down becomes the spec's 503 body; everything else
// streams through untouched.
type conciergeWriter struct {
	http.ResponseWriter
	h          *Handler
	sessionID  string // the request's session id, "" for a new session
	statusPoll bool

	wroteHeader bool
	status      int
	mode        int
	buf         *bytes.Buffer
}

const (
	passThrough = iota
	reading     // JSON answer being read for accounting
	replacing   // non-JSON 502/503/504 being replaced by the spec's 503
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func newConciergeWriter(w http.ResponseWriter, h *Handler, sessionID string) *conciergeWriter {
	return &conciergeWriter{ResponseWriter: w, h: h, sessionID: sessionID}
}

func (cw *conciergeWriter) WriteHeader(status int) {
	if cw.wroteHeader {
		return
	}
	if status >= 100 && status < 200 {
		cw.ResponseWriter.WriteHeader(status)
		return
	}
	cw.wroteHeader = true
	cw.status = status
	hdr := cw.ResponseWriter.Header()
	dedupeLinks(hdr)
	isJSON := isJSONType(hdr.Get("Content-Type"))
	switch {
	case status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
		if !isJSON {
			cw.mode = replacing
			return
		}
	case status >= 200 && status < 300 && isJSON && hdr.Get("Content-Encoding") == "" && !cw.statusPoll:
		cw.mode = reading
		cw.buf = bufPool.Get().(*bytes.Buffer)
		cw.buf.Reset()
		return
	}
	cw.ResponseWriter.WriteHeader(status)
}

func (cw *conciergeWriter) Write(p []byte) (int, error) {
	if !cw.wroteHeader {
		cw.WriteHeader(http.StatusOK)
	}
	switch cw.mode {
	case replacing:
		return len(p), nil
	case reading:
		if int64(cw.buf.Len()+len(p)) <= cw.h.gateway.ResponseLimit {
			return cw.buf.Write(p)
		}
		// Too big to read: send what we have and stream the rest.
		cw.h.logger.Debug("concierge answer larger than the gateway reads; passed through unaccounted",
			zap.Int64("limit", cw.h.gateway.ResponseLimit))
		cw.mode = passThrough
		cw.ResponseWriter.WriteHeader(cw.status)
		if _, err := cw.ResponseWriter.Write(cw.buf.Bytes()); err != nil {
			return 0, err
		}
		cw.releaseBuf()
	}
	return cw.ResponseWriter.Write(p)
}

func (cw *conciergeWriter) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(writerOnly{cw}, r)
}

// FlushError keeps streaming answers (SSE from a concierge) flowing; an
// answer being read is flushed only once complete.
func (cw *conciergeWriter) FlushError() error {
	if cw.mode != passThrough {
		return nil
	}
	if !cw.wroteHeader {
		cw.WriteHeader(http.StatusOK)
		if cw.mode != passThrough {
			return nil
		}
	}
	return http.NewResponseController(cw.ResponseWriter).Flush()
}

func (cw *conciergeWriter) Flush() { _ = cw.FlushError() }

func (cw *conciergeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(cw.ResponseWriter).Hijack()
}

func (cw *conciergeWriter) Unwrap() http.ResponseWriter { return cw.ResponseWriter }

func (cw *conciergeWriter) releaseBuf() {
	if cw.buf != nil {
		if cw.buf.Cap() <= 64<<10 {
			bufPool.Put(cw.buf)
		}
		cw.buf = nil
	}
}

// finish completes the answer after next returned err.
func (cw *conciergeWriter) finish(ctx context.Context, err error) error {
	h := cw.h
	if err != nil && !cw.wroteHeader {
		status := 0
		if h.errorStatus != nil {
			status = h.errorStatus(err)
		}
		if status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout {
			h.logger.Warn("concierge unavailable", zap.Int("proxy_status", status), zap.Error(err))
			cw.writeUnavailable()
			return nil
		}
		return err
	}
	switch cw.mode {
	case replacing:
		h.logger.Warn("concierge unavailable", zap.Int("status", cw.status))
		cw.writeUnavailable()
	case reading:
		cw.finishReading(ctx)
	}
	cw.releaseBuf()
	return err
}

func (cw *conciergeWriter) writeUnavailable() {
	cw.h.observer.ConverseRejected(ahperror.Unavailable)
	hdr := cw.ResponseWriter.Header()
	retry := hdr.Get("Retry-After")
	for _, k := range []string{"Content-Encoding", "Content-Length", "Etag", "Last-Modified"} {
		delete(hdr, k)
	}
	if retry == "" {
		hdr["Retry-After"] = retryOne
	}
	ahperror.Write(cw.ResponseWriter, ahperror.New(http.StatusServiceUnavailable, ahperror.Unavailable,
		"The concierge is temporarily unavailable; retry shortly."))
}

// finishReading accounts and completes a JSON answer that was read whole.
func (cw *conciergeWriter) finishReading(ctx context.Context) {
	h := cw.h
	body := cw.buf.Bytes()
	info, ok := inspectAnswer(body)
	if !ok {
		h.logger.Warn("concierge answer is not a JSON object; passed through unchanged",
			zap.Int("status", cw.status), zap.Int("bytes", len(body)))
	} else {
		session := cw.sessionID
		if session == "" {
			session = info.sessionID // an id the concierge assigned
		}
		if info.tokens > 0 || (cw.sessionID == "" && info.sessionID != "") {
			h.accountTokens(ctx, session, info.tokens)
		}
		if h.gateway.EchoSignals && info.status == "success" && info.canSplice() && h.gateway.signalsJSON != nil {
			body = info.withSignals(body, h.gateway.signalsJSON)
			// The bytes changed: a strong validator would now lie.
			if etag := cw.ResponseWriter.Header().Get("Etag"); etag != "" && !strings.HasPrefix(etag, "W/") {
				cw.ResponseWriter.Header().Set("Etag", "W/"+etag)
			}
			delete(cw.ResponseWriter.Header(), "Content-Md5")
		}
	}
	hdr := cw.ResponseWriter.Header()
	hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	cw.ResponseWriter.WriteHeader(cw.status)
	if _, err := cw.ResponseWriter.Write(body); err != nil {
		h.logger.Debug("writing concierge answer", zap.Error(err))
	}
}

func isJSONType(ct string) bool {
	mt := ct
	for i := 0; i < len(ct); i++ {
		if ct[i] == ';' {
			mt = ct[:i]
			break
		}
	}
	mt = trimOWSRight(mt[skipOWS(mt, 0):])
	return equalFoldASCII(mt, "application/json") || (len(mt) > 5 && equalFoldASCII(mt[len(mt)-5:], "+json"))
}

// answerInfo is what the gateway reads from a concierge answer.
type answerInfo struct {
	status     string
	sessionID  string
	tokens     int64
	hasSignals bool
	metaSeen   bool
	metaOpen   int // offset just after meta's '{', or -1
	metaEmpty  bool
	objClose   int // offset of the top-level '}'
	objEmpty   bool
}

// inspectAnswer scans the top level of a JSON object answer. It reports
// false for anything that is not a single valid JSON object.
func inspectAnswer(body []byte) (answerInfo, bool) {
	info := answerInfo{metaOpen: -1, objEmpty: true}
	if !json.Valid(body) {
		return info, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return info, false
	}
	for dec.More() {
		info.objEmpty = false
		tok, err := dec.Token()
		if err != nil {
			return info, false
		}
		key, _ := tok.(string)
		switch key {
		case "status", "session_id":
			var s *string
			if err := dec.Decode(&s); err != nil {
				// not a string (null or other): fine, nothing to read
				continue
			}
			if s != nil {
				if key == "status" {
					info.status = *s
				} else {
					info.sessionID = *s
				}
			}
		case "meta":
			info.metaSeen = true
			info.metaOpen = -1
			off := int(dec.InputOffset())
			for off < len(body) && (body[off] == ':' || body[off] == ' ' || body[off] == '\t' || body[off] == '\n' || body[off] == '\r') {
				off++
			}
			var meta map[string]json.RawMessage
			if err := dec.Decode(&meta); err != nil || meta == nil || off >= len(body) || body[off] != '{' {
				continue
			}
			info.metaOpen = off + 1
			info.metaEmpty = len(meta) == 0
			if raw, ok := meta["tokens_used"]; ok {
				if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil && n > 0 {
					info.tokens = n
				}
			}
			_, info.hasSignals = meta["content_signals"]
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return info, false
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return info, false
	}
	info.objClose = int(dec.InputOffset()) - 1
	return info, info.objClose >= 0 && info.objClose < len(body) && body[info.objClose] == '}'
}

// canSplice reports whether signals can be added: meta is an object
// without them, or absent (a meta of another type is left alone).
func (info answerInfo) canSplice() bool {
	return !info.hasSignals && (info.metaOpen >= 0 || !info.metaSeen)
}

// withSignals returns body with `"content_signals":{...}` added to its meta
// object (created when absent); every other byte stays as it was.
func (info answerInfo) withSignals(body, signals []byte) []byte {
	out := make([]byte, 0, len(body)+len(signals)+16)
	if info.metaOpen >= 0 {
		out = append(out, body[:info.metaOpen]...)
		out = append(out, signals...)
		if !info.metaEmpty {
			out = append(out, ',')
		}
		return append(out, body[info.metaOpen:]...)
	}
	out = append(out, body[:info.objClose]...)
	if !info.objEmpty {
		out = append(out, ',')
	}
	out = append(out, `"meta":{`...)
	out = append(out, signals...)
	out = append(out, '}')
	return append(out, body[info.objClose:]...)
}
