package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/bits"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
	"github.com/caddy-ahp/caddy-ahp/internal/jsonnum"
	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

// conciergeWriter watches the concierge's answer on its way to the agent.
// A JSON success answer is read (up to a cap) to account the session's
// tokens and session id and to echo the content signals; a non-JSON
// answer from a concierge that is down or busy becomes the spec's 503
// body, any other non-JSON error or success (an HTML error page, a
// misrouted page) the spec's 500 concierge_error: an agent reads only
// protocol bodies (§10). JSON answers of any status, SSE streams and 3xx
// stream through untouched.
type conciergeWriter struct {
	http.ResponseWriter
	g          *Gateway
	ctx        context.Context // the agent's request's, for accounting
	sessionID  string          // the request's session id, "" for a new session; a poll's, from its path
	statusPoll bool
	head       bool // a HEAD poll: no body to send, none to judge
	// The gateway's own fields (ownHeaders), held out of the answer's
	// header while the concierge's fields are copied in, and put back
	// when the answer's header is complete; see holdOwnHeaders.
	held    [len(ownHeaders)][]string
	holding bool
	// The concierge's Date and Content-Length of an answer being read:
	// the gateway composes that answer, and puts them back only if it
	// streams the concierge's instead.
	date, length []string

	wroteHeader bool
	status      int
	mode        int
	buf         *bytes.Buffer
}

const (
	passThrough = iota
	reading     // JSON answer being read for accounting
	replacing   // non-JSON 429/502/503/504 being replaced by the spec's 503
	failing     // other non-JSON answer being replaced by the spec's 500
	retrying    // JSON 429 without Retry-After, read for its retry_after
)

// retryBodyMax is the most of a concierge's JSON 429 the gateway reads for
// its retry_after: an AHP error body is a few hundred bytes.
const retryBodyMax = 16 << 10

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// ownHeaders are the fields the gateway sets on an answer before the
// concierge's arrive (rate limits, CORS). The agent must see one value of
// each, the gateway's, whatever the concierge sends.
// The rate-limit fields come first, in ratelimit.Fields' order, so that a
// call's held fields are copied into cw.held as they are.
var ownHeaders = [...]string{
	ratelimit.FieldNames[0], ratelimit.FieldNames[1], ratelimit.FieldNames[2], ratelimit.FieldNames[3],
	ratelimit.FieldNames[4], ratelimit.FieldNames[5], "Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
}

// ownHeadersOf is the set of ownHeaders a gateway with these limits and
// cors sets, by bit: holdOwnHeaders looks up only those.
func ownHeadersOf(limits *ratelimit.Policy, cors bool) (own uint8) {
	if limits != nil {
		switch limits.Headers() {
		case ratelimit.HeadersAHP:
			own |= 0b1111
		case ratelimit.HeadersIETF:
			own |= 0b110000
		case ratelimit.HeadersBoth:
			own |= 0b111111
		}
	}
	if cors {
		own |= corsHeaders
	}
	return own
}

// corsHeaders are the CORS fields among ownHeaders, by bit.
const corsHeaders = 0b11000000

// holdOwnHeaders takes the gateway's own fields out of h until the
// concierge's answer has its header (restoreOwnHeaders). Why: a Go map
// keeps 8 keys in its first group and grows into a table at the ninth.
// The spec's four rate-limit fields and Link on top of a proxied answer's
// five (Cache-Control, Content-Length, Content-Type, Date, Via) made ten:
// net/http then grew the header map, cloned it at WriteHeader into
// another table and sorted ten keys, 1.4 µs and 1.5 KB more per answer
// than eight (docs/performance.md, ninth pass). Held back, the map stays
// in its first group while the proxy copies the concierge's fields in;
// an answer the gateway reads then drops the concierge's Date and, when
// small, its Content-Length, which net/http writes itself.
func (cw *conciergeWriter) holdOwnHeaders(h http.Header, own uint8) {
	for ; own != 0; own &= own - 1 {
		i := bits.TrailingZeros8(own)
		if v := h[ownHeaders[i]]; len(v) > 0 {
			cw.held[i] = v
			cw.holding = true
			delete(h, ownHeaders[i])
		}
	}
}

// restoreOwnHeaders puts the gateway's fields back, in place of any the
// concierge sent under the same names. Once per answer.
func (cw *conciergeWriter) restoreOwnHeaders() {
	if !cw.holding {
		return
	}
	cw.holding = false
	hdr := cw.ResponseWriter.Header()
	for i, k := range ownHeaders {
		if v := cw.held[i]; v != nil {
			hdr[k] = v
		}
	}
}

func (cw *conciergeWriter) WriteHeader(status int) {
	if cw.wroteHeader {
		return
	}
	hdr := cw.ResponseWriter.Header()
	if status >= 100 && status < 200 {
		// Without the gateway's fields: Caddy's proxy puts back its
		// snapshot of the header after a 1xx, which would drop fields
		// restored now; the final answer gets them.
		cw.ResponseWriter.WriteHeader(status)
		return
	}
	cw.wroteHeader = true
	cw.status = status
	ctype := headerValue(hdr, "Content-Type")
	isJSON := httpx.IsJSON(ctype)
	if isJSON {
		if status >= 200 && status < 300 && headerValue(hdr, "Content-Encoding") == "" && (!cw.statusPoll || cw.sessionID != "" || cw.g.signalsJSON != nil && !cw.head) {
			cw.mode = reading
			cw.buf = bufPool.Get().(*bytes.Buffer)
			cw.buf.Reset()
			// The gateway writes this answer: its date, and its length
			// (finishReading). Dropped before the gateway's fields go
			// back, so the map never holds both (holdOwnHeaders).
			cw.date, cw.length = hdr["Date"], hdr["Content-Length"]
			delete(hdr, "Date")
			delete(hdr, "Content-Length")
			cw.restoreOwnHeaders()
			return
		}
	}
	cw.restoreOwnHeaders()
	if isJSON && status == http.StatusTooManyRequests && headerValue(hdr, "Retry-After") == "" {
		// Every 429 carries Retry-After (§11.1), a concierge's own too:
		// its body's retry_after, read before the header goes, or 1 when
		// that cannot be read (no body, an encoded one).
		if cw.head || headerValue(hdr, "Content-Encoding") != "" {
			hdr["Retry-After"] = []string{"1"}
		} else {
			cw.mode = retrying
			cw.buf = bufPool.Get().(*bytes.Buffer)
			cw.buf.Reset()
			return
		}
	}
	switch {
	case isJSON:
		// Any other JSON answer streams through untouched.
	case status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout ||
		status == http.StatusTooManyRequests:
		cw.mode = replacing
		return
	case cw.head && ctype == "":
		// A HEAD answer often names no type: nothing to judge it by.
	case status >= 400 || status >= 200 && status < 300 && !isEventStream(ctype):
		cw.mode = failing
		return
	}
	cw.ResponseWriter.WriteHeader(status)
}

// isEventStream reports whether a success answer is an event stream: a
// concierge streaming its answer, passed on as it comes.
func isEventStream(ctype string) bool {
	if i := strings.IndexByte(ctype, ';'); i >= 0 {
		ctype = ctype[:i]
	}
	return strings.EqualFold(strings.TrimSpace(ctype), "text/event-stream")
}

func (cw *conciergeWriter) Write(p []byte) (int, error) {
	if !cw.wroteHeader {
		cw.WriteHeader(http.StatusOK)
	}
	switch cw.mode {
	case replacing, failing:
		return len(p), nil
	case retrying:
		if cw.buf.Len()+len(p) <= retryBodyMax {
			return cw.buf.Write(p)
		}
		if err := cw.writeRetry(false); err != nil {
			return 0, err
		}
	case reading:
		if int64(cw.buf.Len()+len(p)) <= cw.g.responseLimit {
			return cw.buf.Write(p)
		}
		// Too big to read: send what we have and stream the rest.
		cw.g.logger.Debug("concierge answer larger than the gateway reads; passed through unaccounted",
			zap.Int64("limit", cw.g.responseLimit))
		cw.mode = passThrough
		hdr := cw.ResponseWriter.Header()
		if cw.date != nil {
			hdr["Date"] = cw.date
		}
		if cw.length != nil {
			hdr["Content-Length"] = cw.length
		}
		cw.ResponseWriter.WriteHeader(cw.status)
		if _, err := cw.ResponseWriter.Write(cw.buf.Bytes()); err != nil {
			return 0, err
		}
		cw.releaseBuf()
	}
	return cw.ResponseWriter.Write(p)
}

func (cw *conciergeWriter) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(httpx.WriterOnly{Writer: cw}, r)
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

// statusClientClosed is the status Caddy's reverse_proxy gives the error
// of a request whose client went away (nginx's 499).
const statusClientClosed = 499

// finish completes the answer after next returned err.
func (cw *conciergeWriter) finish(err error) error {
	g := cw.g
	cw.restoreOwnHeaders() // the concierge may have written nothing
	if err != nil && !cw.wroteHeader {
		status := 0
		if g.errorStatus != nil {
			status = g.errorStatus(err)
		}
		switch {
		case status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout,
			status == http.StatusTooManyRequests: // a rate limiter in the concierge's route: busy, not broken
			g.logger.Warn("concierge unavailable", zap.Int("proxy_status", status), zap.Error(err))
			cw.writeUnavailable()
			return nil
		case status == statusClientClosed || errors.Is(err, context.Canceled):
			// The agent is gone: nothing to answer, Caddy logs it as usual.
			return err
		}
		// Any other error (`error 404`, a file_server miss, a handler in the
		// concierge route refusing) would reach the agent as the site's
		// handle_errors page: the agent gets the protocol's error instead,
		// and the operator the error in this log.
		if status == 0 {
			status = http.StatusInternalServerError
		}
		g.logger.Warn("concierge route returned an error; the agent gets 500 concierge_error",
			zap.Int("status", status), zap.Error(err))
		cw.status = status
		cw.writeConciergeError()
		return nil
	}
	switch cw.mode {
	case replacing:
		g.logger.Warn("concierge unavailable", zap.Int("status", cw.status))
		cw.writeUnavailable()
	case failing:
		g.logger.Warn("concierge answered without an AHP JSON body; the agent gets 500 concierge_error",
			zap.Int("status", cw.status), zap.String("content_type", headerValue(cw.ResponseWriter.Header(), "Content-Type")))
		cw.writeConciergeError()
	case reading:
		cw.finishReading()
	case retrying:
		if err := cw.writeRetry(true); err != nil {
			g.logger.Debug("writing concierge answer", zap.Error(err))
		}
	}
	cw.releaseBuf()
	return err
}

// writeRetry sends a concierge's JSON 429 that came without Retry-After,
// unchanged, with one: the retry_after of the body read whole (complete),
// else 1. What was read goes first; a body too long to read streams on.
func (cw *conciergeWriter) writeRetry(complete bool) error {
	v := "1"
	if complete {
		v = retryAfterOf(cw.buf.Bytes())
	}
	cw.ResponseWriter.Header()["Retry-After"] = []string{v}
	cw.mode = passThrough
	cw.ResponseWriter.WriteHeader(cw.status)
	_, err := cw.ResponseWriter.Write(cw.buf.Bytes())
	cw.releaseBuf()
	return err
}

// retryAfterOf is the Retry-After of an AHP 429 body: its retry_after in
// whole seconds, rounded up; 1 when it is null (§11.4: a new session, not
// a wait, is what helps), absent, not a number or not JSON.
func retryAfterOf(body []byte) string {
	var v struct {
		RetryAfter *float64 `json:"retry_after"`
	}
	if json.Unmarshal(body, &v) != nil || v.RetryAfter == nil || !(*v.RetryAfter >= 0) {
		return "1"
	}
	return strconv.FormatInt(int64(math.Ceil(min(*v.RetryAfter, math.MaxInt32))), 10)
}

// replacedBodyFields describe the concierge's body, which the agent does
// not get in place of the spec's error.
var replacedBodyFields = [...]string{"Content-Encoding", "Content-Length", "Content-Range", "Content-Language",
	"Content-Disposition", "Content-Md5", "Etag", "Last-Modified"}

// replaceAnswer sends e in place of the concierge's answer: a HEAD poll
// gets the headers GET would, without the body.
func (cw *conciergeWriter) replaceAnswer(e *ahperror.Error) {
	cw.g.obs.ConverseRejected(e.Code)
	hdr := cw.ResponseWriter.Header()
	for _, k := range replacedBodyFields {
		delete(hdr, k)
	}
	var w http.ResponseWriter = cw.ResponseWriter
	if cw.head {
		w = headersOnly{w}
	}
	ahperror.Write(w, e)
}

// headersOnly sends a HEAD answer's headers and drops its body (a
// recorder, as the MCP door's, would keep it).
type headersOnly struct{ http.ResponseWriter }

func (headersOnly) Write(p []byte) (int, error) { return len(p), nil }

func (cw *conciergeWriter) writeUnavailable() {
	hdr := cw.ResponseWriter.Header()
	if headerValue(hdr, "Retry-After") == "" {
		hdr["Retry-After"] = []string{"1"}
	}
	cw.replaceAnswer(ahperror.New(http.StatusServiceUnavailable, ahperror.Unavailable,
		"The concierge is temporarily unavailable; retry shortly."))
}

// writeConciergeError replaces a non-JSON answer: the concierge failed
// (or the site routes the converse path to something else). The status
// helps the site's operator; the page itself is not the agent's to read.
// The message is short: a door's recorder may cap the answer it reads.
func (cw *conciergeWriter) writeConciergeError() {
	cw.replaceAnswer(ahperror.New(http.StatusInternalServerError, ahperror.ConciergeError,
		"The concierge failed (HTTP "+strconv.Itoa(cw.status)+", not an AHP answer)."))
}

// finishReading accounts and completes a JSON answer that was read whole.
func (cw *conciergeWriter) finishReading() {
	g := cw.g
	body := cw.buf.Bytes()
	parts := [5][]byte{body}
	info, ok := inspectAnswer(body)
	if !ok {
		g.logger.Warn("concierge answer is not a JSON object; passed through unchanged",
			zap.Int("status", cw.status), zap.Int("bytes", len(body)))
	} else {
		if g.limits != nil {
			cw.account(&info)
		}
		// A finished job's result is the standard success answer
		// (§9.1): its signals are echoed as a call's are (§7).
		if g.signalsJSON != nil && info.success && info.canSplice() {
			parts = info.spliceSignals(body, g.signalsJSON)
			// The bytes changed: a strong validator would now lie.
			if etag := headerValue(cw.ResponseWriter.Header(), "Etag"); etag != "" && !strings.HasPrefix(etag, "W/") {
				cw.ResponseWriter.Header()["Etag"] = []string{"W/" + etag}
			}
			delete(cw.ResponseWriter.Header(), "Content-Md5")
		}
	}
	out := body
	if parts[1] != nil {
		// One Write through Caddy's writers is cheaper than five: join the
		// pieces in a pooled buffer.
		joined := bufPool.Get().(*bytes.Buffer)
		joined.Reset()
		for _, p := range parts {
			joined.Write(p)
		}
		defer bufPool.Put(joined)
		out = joined.Bytes()
	}
	if len(out) > autoLengthMax {
		cw.ResponseWriter.Header()["Content-Length"] = []string{strconv.Itoa(len(out))}
	}
	cw.ResponseWriter.WriteHeader(cw.status)
	if _, err := cw.ResponseWriter.Write(out); err != nil {
		g.logger.Debug("writing concierge answer", zap.Error(err))
	}
}

// autoLengthMax is the largest answer whose Content-Length the gateway
// leaves to the server: net/http (2 KB), its HTTP/2 (4 KB) and quic-go's
// HTTP/3 write the length of an answer written whole before the handler
// returns, without a header map key (holdOwnHeaders says why that
// matters). Larger answers get theirs here, so they are never chunked.
const autoLengthMax = 1024

// account records the tokens of an answer read whole, in one store call
// at most.
func (cw *conciergeWriter) account(info *answerInfo) {
	g := cw.g
	switch {
	case cw.statusPoll:
		if cw.sessionID == "" {
			return // a path an earlier handler rewrote names no job to count
		}
		// An async job's result (§9.1: the standard success format, or
		// failed or expired) counts once, however often it is polled.
		if !info.pending && !info.accepted && info.tokens > 0 {
			g.limits.AddJobTokens(cw.ctx, cw.sessionID, limiter.JobClose, info.tokens, g.idle)
		}
	case info.accepted:
		// A job accepted: its result, polled on the answer's session id
		// (§6.4, §9.1), will count once.
		session := info.sessionID
		if session == "" {
			session = cw.sessionID
		}
		if session != "" {
			g.limits.AddJobTokens(cw.ctx, session, limiter.JobOpen, info.tokens, g.idle)
		}
	default:
		session := cw.sessionID
		if session == "" {
			session = info.sessionID // an id the concierge assigned
		}
		if session != "" && (info.tokens > 0 || (cw.sessionID == "" && info.sessionID != "")) {
			g.limits.AddTokens(cw.ctx, session, info.tokens, g.idle)
		}
	}
}

// headerValue is h.Get(key) for a key already in canonical form: the same
// lookup without canonicalizing the key again on every request.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// answerInfo is what the gateway reads from a concierge answer.
type answerInfo struct {
	success    bool // status is "success"
	accepted   bool // status is "accepted": an async job (§6.4)
	pending    bool // status is "pending": a job not done (§9.2)
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
// false for anything that is not a single valid JSON object. Every answer
// passes through here, so it validates and reads in one pass, without
// allocating: each member's value is checked by jsonValue (json.Valid's
// grammar), meta's while its members are read.
func inspectAnswer(body []byte) (answerInfo, bool) {
	info := answerInfo{metaOpen: -1, objEmpty: true}
	i := skipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return info, false
	}
	end, ok := jsonObject(body, i, 1, func(key []byte, v int) (int, bool) {
		info.objEmpty = false
		if keyIs(key, "meta") {
			info.metaSeen = true
			info.metaOpen, info.metaEmpty, info.tokens, info.hasSignals = -1, false, 0, false
			if v < len(body) && body[v] == '{' {
				info.metaOpen = v + 1
				return info.readMeta(body, v)
			}
			return jsonValue(body, v, 2)
		}
		end, ok := jsonValue(body, v, 2)
		if !ok {
			return end, false
		}
		val := body[v:end]
		switch {
		case keyIs(key, "status"):
			st := "success"
			if string(val) != `"success"` {
				st = stringValue(val)
			}
			info.success, info.accepted, info.pending = st == "success", st == "accepted", st == "pending"
		case keyIs(key, "session_id"):
			info.sessionID = stringValue(val)
		}
		return end, true
	})
	info.objClose = end - 1
	return info, ok && skipWS(body, end) == len(body)
}

// readMeta checks meta's object at b[i] == '{' and reads its tokens_used
// and whether it has content_signals in the same pass.
func (info *answerInfo) readMeta(b []byte, i int) (int, bool) {
	info.metaEmpty = true
	return jsonObject(b, i, 2, func(key []byte, v int) (int, bool) {
		info.metaEmpty = false
		end, ok := jsonValue(b, v, 3)
		switch {
		case !ok:
		case keyIs(key, "tokens_used"):
			info.tokens = parseCount(b[v:end])
		case keyIs(key, "content_signals"):
			info.hasSignals = true
		}
		return end, ok
	})
}

// parseCount reads tokens_used, a JSON Schema integer (response.json):
// any JSON number counts, so that no spelling of a count spends nothing.
// A whole value counts as itself (150, 150.0, 1.5e2 alike, read by
// jsonnum as converse reads max_tokens), a fraction is rounded up (an
// error toward refusing the next turn), a value beyond int64 counts as
// math.MaxInt64; negatives and non-numbers count as 0.
func parseCount(v []byte) int64 {
	if len(v) > 0 && len(v) <= 18 {
		var n int64
		for _, c := range v {
			if c < '0' || c > '9' {
				return parseNumber(v)
			}
			n = n*10 + int64(c-'0')
		}
		return n
	}
	return parseNumber(v)
}

// parseNumber is parseCount's slow path for a number jsonValue accepted
// written otherwise than in at most 18 plain digits.
func parseNumber(v []byte) int64 {
	if len(v) == 0 || v[0] != '-' && (v[0] < '0' || v[0] > '9') {
		return 0 // not a number
	}
	whole, frac, _, huge := jsonnum.Value(v)
	if frac {
		whole++ // a non-zero fraction rounds up
	}
	if huge || whole > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(whole)
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// keyIs compares a raw key with a name; keys written with escapes (rare)
// are decoded first.
func keyIs(raw []byte, name string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == name
	}
	var k string
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	return json.Unmarshal(quoted, &k) == nil && k == name
}

// stringValue returns a JSON string value, or "" for any other value.
func stringValue(v []byte) string {
	if len(v) < 2 || v[0] != '"' {
		return ""
	}
	// Without escapes the bytes are the string, if they are UTF-8; JSON
	// decoders (encoding/json, and the agent's) read invalid bytes as
	// U+FFFD, so such a session id is decoded as the agent will see it.
	if bytes.IndexByte(v, '\\') < 0 && utf8.Valid(v) {
		return string(v[1 : len(v)-1])
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// canSplice reports whether signals can be added: meta is an object
// without them, or absent (a meta of another type is left alone).
func (info answerInfo) canSplice() bool {
	return !info.hasSignals && (info.metaOpen >= 0 || !info.metaSeen)
}

// spliceSignals returns, in order, the pieces of body with
// `"content_signals":{...}` added to its meta object (created when
// absent); every other byte stays as it was.
func (info answerInfo) spliceSignals(body, signals []byte) [5][]byte {
	if info.metaOpen >= 0 {
		sep := commaBytes
		if info.metaEmpty {
			sep = nil
		}
		return [5][]byte{body[:info.metaOpen], signals, sep, body[info.metaOpen:]}
	}
	open := metaOpenComma
	if info.objEmpty {
		open = metaOpenComma[1:]
	}
	return [5][]byte{body[:info.objClose], open, signals, closeBrace, body[info.objClose:]}
}

var (
	commaBytes    = []byte(",")
	metaOpenComma = []byte(`,"meta":{`)
	closeBrace    = []byte("}")
)
