package converse

import (
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/internal/jsonnum"
	"github.com/caddy-ahp/caddy-ahp/internal/jsonstr"
)

// Limits from the AHP 0.1 request schema (request.json, plus the `auth`
// extension in package schema).
const (
	maxCapability    = 64
	maxQuery         = 4096
	maxSessionID     = 128
	maxClarification = 1024
	maxAuth          = 4096
	maxAgent         = 128
	maxIntent        = 256
	minMaxTokens     = 1
	maxMaxTokens     = 32768
)

// maxDepth bounds nesting inside values the request never allows (unknown
// fields, wrong types), which are skipped only to tell "not JSON" from
// "wrong JSON". encoding/json allows 10000; any depth here is an error
// anyway, so the bound only has to keep the stack small.
const maxDepth = 256

// scanner is a single-pass JSON reader specialised to the request's shape.
// A generic decoder would cost more allocations, and would accept what the
// schema does not: encoding/json matches field names case-insensitively
// and lets the last of two duplicate fields win.
type scanner struct {
	s string // the body; unescaped strings alias it
	i int

	syntax string // first JSON syntax error; parsing stops there
	synAt  int
	first  *ahperror.Error // first schema or spec violation
}

func (p *scanner) fail(msg string) bool {
	if p.syntax == "" {
		p.syntax, p.synAt = msg, p.i
	}
	return false
}

// violation records the message made of parts if it is the first. The
// parts are joined only then: a body of many bad fields costs no more
// than one.
func (p *scanner) violation(parts ...string) {
	if p.first == nil {
		p.first = invalid(strings.Join(parts, ""))
	}
}

func invalid(msg string) *ahperror.Error {
	return ahperror.New(http.StatusBadRequest, ahperror.InvalidRequest, msg)
}

func (p *scanner) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (p *scanner) peek() byte {
	p.ws()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *scanner) expect(c byte) bool {
	if p.peek() != c {
		if p.i >= len(p.s) {
			return p.fail("unexpected end of input")
		}
		return p.fail("expected '" + string(c) + "'")
	}
	p.i++
	return true
}

// str reads a JSON string at p.i (which holds '"'). A string without
// escapes is a substring of the body (no allocation). lone reports an
// unpaired UTF-16 surrogate escape: valid JSON syntax, but no Unicode
// text, and decoders disagree on it (encoding/json substitutes U+FFFD,
// others keep or reject it), so the request is refused.
func (p *scanner) str() (v string, lone, ok bool) {
	p.i++ // opening quote
	start := p.i
	s := p.s
	i := jsonstr.Plain(s, p.i)
	p.i = i
	switch {
	case i == len(s):
		return "", false, p.fail("unterminated string")
	case s[i] == '"':
		p.i++
		return s[start:i], false, true
	case s[i] == '\\':
		return p.strEscaped(start)
	}
	return "", false, p.fail("control character in string")
}

func (p *scanner) strEscaped(start int) (v string, lone, ok bool) {
	// Grown by append: sized to the rest of the body, many short escaped
	// strings would allocate quadratically.
	buf := make([]byte, 0, min(len(p.s)-start, 2*(p.i-start)+16))
	buf = append(buf, p.s[start:p.i]...)
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return string(buf), lone, true
		case c < 0x20:
			return "", false, p.fail("control character in string")
		case c != '\\':
			buf = append(buf, c)
			p.i++
			continue
		}
		p.i++ // backslash
		if p.i >= len(p.s) {
			break
		}
		e := p.s[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", false, false
			}
			if r >= 0xD800 && r < 0xDC00 && strings.HasPrefix(p.s[p.i:], `\u`) {
				save := p.i
				p.i += 2
				r2, ok := p.hex4()
				if !ok {
					return "", false, false
				}
				if r2 >= 0xDC00 && r2 < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
				} else {
					p.i = save // r2 is read again on its own
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				lone = true
				r = utf8.RuneError
			}
			buf = utf8.AppendRune(buf, r)
		default:
			p.i--
			return "", false, p.fail("invalid escape in string")
		}
	}
	return "", false, p.fail("unterminated string")
}

func (p *scanner) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		p.i = len(p.s)
		return 0, p.fail("unterminated string")
	}
	var r rune
	for _, c := range []byte(p.s[p.i : p.i+4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, p.fail(`invalid \u escape in string`)
		}
		r = r<<4 | rune(c)
	}
	p.i += 4
	return r, true
}

// number reads a JSON number literal and returns it.
func (p *scanner) number() (string, bool) {
	start := p.i
	if p.i < len(p.s) && p.s[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.s) && p.s[p.i] == '0':
		p.i++
	case p.i < len(p.s) && p.s[p.i] >= '1' && p.s[p.i] <= '9':
		p.digits()
	default:
		return "", p.fail("invalid number")
	}
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		if p.digits() == 0 {
			return "", p.fail("invalid number")
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return "", p.fail("invalid number")
		}
	}
	return p.s[start:p.i], true
}

func (p *scanner) digits() int {
	start := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}

func (p *scanner) literal(word string) bool {
	if !strings.HasPrefix(p.s[p.i:], word) {
		return p.fail("invalid literal")
	}
	p.i += len(word)
	return true
}

// skip reads any JSON value, checking only its syntax.
func (p *scanner) skip(depth int) bool {
	if depth > maxDepth {
		return p.fail("nested too deeply")
	}
	switch p.peek() {
	case '"':
		_, _, ok := p.str()
		return ok
	case '{':
		p.i++
		if p.peek() == '}' {
			p.i++
			return true
		}
		for {
			if p.peek() != '"' {
				return p.fail("expected a field name")
			}
			if _, _, ok := p.str(); !ok {
				return false
			}
			if !p.expect(':') || !p.skip(depth+1) {
				return false
			}
			switch p.peek() {
			case ',':
				p.i++
			case '}':
				p.i++
				return true
			default:
				return p.fail("expected ',' or '}'")
			}
		}
	case '[':
		p.i++
		if p.peek() == ']' {
			p.i++
			return true
		}
		for {
			if !p.skip(depth + 1) {
				return false
			}
			switch p.peek() {
			case ',':
				p.i++
			case ']':
				p.i++
				return true
			default:
				return p.fail("expected ',' or ']'")
			}
		}
	case 't':
		return p.literal("true")
	case 'f':
		return p.literal("false")
	case 'n':
		return p.literal("null")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		_, ok := p.number()
		return ok
	case 0:
		return p.fail("unexpected end of input")
	}
	return p.fail("unexpected character")
}

// stringField reads the value of a string field named field (a path such
// as "context.locale"). isStr is false (and a violation recorded) when the
// value is not a string; null is accepted, as "", when nullable.
func (p *scanner) stringField(field string, nullable bool) (v string, isStr, ok bool) {
	switch p.peek() {
	case '"':
		v, lone, ok := p.str()
		if lone {
			p.violation(field, " contains an unpaired UTF-16 surrogate escape (\\ud800-\\udfff); send valid Unicode text")
			return "", false, ok
		}
		return v, ok, ok
	case 'n':
		if nullable {
			return "", false, p.literal("null")
		}
	}
	if nullable {
		p.violation(field, " must be a string or null")
	} else {
		p.violation(field, " must be a string")
	}
	return "", false, p.skip(1)
}

// Member flags, for duplicate and required field detection.
const (
	hasAHP = 1 << iota
	hasCapability
	hasQuery
	hasSessionID
	hasClarification
	hasContext
	hasAuth
)

const (
	hasAgent = 1 << iota
	hasIntent
	hasMaxTokens
	hasAcceptTypes
	hasCallback
	hasLocale
)

// duplicate records a repeated field. Duplicates are refused rather than
// resolved: the gateway and the concierge could otherwise read different
// values for the same field (encoding/json keeps the last, other parsers
// the first), letting a request pass validation with one meaning and be
// served with another.
func (p *scanner) duplicate(seen *uint, flag uint, field string) {
	if *seen&flag != 0 && p.first == nil {
		p.violation("duplicate field ", quoteField(field), ": each field may appear only once")
	}
	*seen |= flag
}

// quoteField quotes a field name taken from the request for a message,
// bounded so that a long junk key does not bloat the error body.
func quoteField(name string) string {
	const limit = 64
	if len(name) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut] + "…"
	}
	return strconv.Quote(name)
}

// request parses the top-level object into req.
func (p *scanner) request(req *Request) bool {
	if !p.expect('{') {
		return false
	}
	var seen uint
	prevEnd := -1      // end of the previous member's value
	authFirst := false // the auth member is the first and its removal runs to the next key
	if p.peek() == '}' {
		p.i++
		return p.requireFields(seen)
	}
	for {
		if p.peek() != '"' {
			return p.fail("expected a field name")
		}
		keyStart := p.i
		if authFirst {
			req.edit.authTo = keyStart
			authFirst = false
		}
		key, lone, ok := p.str()
		if !ok || !p.expect(':') {
			return false
		}
		if lone {
			p.violation("a field name contains an unpaired UTF-16 surrogate escape")
		}
		switch key {
		case "ahp":
			p.duplicate(&seen, hasAHP, key)
			v, isStr, ok := p.stringField(key, false)
			if !ok {
				return false
			}
			if isStr && !isVersion(v) {
				p.violation(`ahp must be a protocol version such as "0.1"`)
			}
			req.AHP = v
		case "capability":
			p.duplicate(&seen, hasCapability, key)
			v, isStr, ok := p.stringField(key, false)
			if !ok {
				return false
			}
			if isStr && (len(v) > maxCapability || !isName(v)) {
				p.violation("capability must be a capability name: a lowercase letter, then lowercase letters, digits or '_', at most 64 characters")
			}
			req.Capability = v
		case "query":
			p.duplicate(&seen, hasQuery, key)
			v, isStr, ok := p.stringField(key, false)
			if !ok {
				return false
			}
			if isStr {
				if n := runes(v, maxQuery); n < 1 || n > maxQuery {
					p.violation("query must be 1 to 4096 characters long")
				}
			}
			req.Query = v
		case "session_id":
			p.duplicate(&seen, hasSessionID, key)
			v, isStr, ok := p.stringField(key, true)
			if !ok {
				return false
			}
			if isStr && runes(v, maxSessionID) > maxSessionID {
				p.violation("session_id must be at most 128 characters long")
			}
			req.SessionID = v
		case "clarification":
			p.duplicate(&seen, hasClarification, key)
			v, isStr, ok := p.stringField(key, true)
			if !ok {
				return false
			}
			if isStr && runes(v, maxClarification) > maxClarification {
				p.violation("clarification must be at most 1024 characters long")
			}
			req.Clarification = v
		case "auth":
			p.duplicate(&seen, hasAuth, key)
			v, isStr, ok := p.stringField(key, false)
			if !ok {
				return false
			}
			if isStr && runes(v, maxAuth) > maxAuth {
				p.violation("auth must be at most 4096 characters long")
			}
			req.Auth = v
		case "context":
			p.duplicate(&seen, hasContext, key)
			if !p.context(req) {
				return false
			}
		default:
			if p.first == nil {
				p.violation("unknown field ", quoteField(key), ": an AHP 0.1 request has only ahp, capability, query, session_id, clarification and context")
			}
			if !p.skip(1) {
				return false
			}
		}
		if key == "auth" {
			// Remove the member with the separator before it, or, if it
			// is first, with the one after it (see ForwardBody).
			switch {
			case prevEnd >= 0:
				req.edit.authFrom, req.edit.authTo = prevEnd, p.i
			default:
				req.edit.authFrom, req.edit.authTo = keyStart, p.i
				authFirst = true
			}
		}
		prevEnd = p.i
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			req.edit.objClose = p.i
			p.i++
			return p.requireFields(seen)
		default:
			return p.fail("expected ',' or '}' after a field")
		}
	}
}

func (p *scanner) requireFields(seen uint) bool {
	if p.first != nil {
		return true
	}
	switch {
	case seen&hasCapability == 0:
		p.first = ahperror.New(http.StatusBadRequest, ahperror.MissingField, `required field "capability" is missing: name one of the capabilities in the manifest`)
	case seen&hasQuery == 0:
		p.first = ahperror.New(http.StatusBadRequest, ahperror.MissingField, `required field "query" is missing`)
	}
	return true
}

// context parses the context object into req.Context.
func (p *scanner) context(req *Request) bool {
	if p.peek() != '{' {
		if p.peek() == 0 {
			return p.fail("unexpected end of input")
		}
		p.violation("context must be an object")
		return p.skip(1)
	}
	p.i++
	req.edit.ctxOpen = p.i
	c := &req.Context
	var seen uint
	if p.peek() == '}' {
		req.edit.ctxEmpty = true
		p.i++
		return true
	}
	for {
		if p.peek() != '"' {
			return p.fail("expected a field name")
		}
		key, lone, ok := p.str()
		if !ok || !p.expect(':') {
			return false
		}
		if lone {
			p.violation("a field name in context contains an unpaired UTF-16 surrogate escape")
		}
		switch key {
		case "requesting_agent":
			p.duplicate(&seen, hasAgent, "context.requesting_agent")
			v, isStr, ok := p.stringField("context.requesting_agent", false)
			if !ok {
				return false
			}
			if isStr && runes(v, maxAgent) > maxAgent {
				p.violation("context.requesting_agent must be at most 128 characters long")
			}
			if isStr && !printable(v) {
				p.violation(agentUnprintable)
			}
			c.RequestingAgent = v
		case "user_intent":
			p.duplicate(&seen, hasIntent, "context.user_intent")
			v, isStr, ok := p.stringField("context.user_intent", false)
			if !ok {
				return false
			}
			if isStr && runes(v, maxIntent) > maxIntent {
				p.violation("context.user_intent must be at most 256 characters long")
			}
			c.UserIntent = v
		case "max_tokens":
			p.duplicate(&seen, hasMaxTokens, "context.max_tokens")
			if !p.maxTokens(req) {
				return false
			}
		case "accept_types":
			p.duplicate(&seen, hasAcceptTypes, "context.accept_types")
			if !p.acceptTypes(req) {
				return false
			}
		case "callback_url":
			p.duplicate(&seen, hasCallback, "context.callback_url")
			v, isStr, ok := p.stringField("context.callback_url", false)
			if !ok {
				return false
			}
			if isStr {
				if msg := uriProblem(v); msg != "" {
					p.violation("context.callback_url must be an absolute URI: ", msg)
				}
			}
			c.CallbackURL = v
		case "locale":
			p.duplicate(&seen, hasLocale, "context.locale")
			v, isStr, ok := p.stringField("context.locale", false)
			if !ok {
				return false
			}
			if isStr && !isLocale(v) {
				p.violation(`context.locale must be a BCP 47 language tag such as "en" or "en-US"`)
			}
			c.Locale = v
		default:
			if p.first == nil {
				p.violation("unknown field ", quoteField("context."+key), ": context has only requesting_agent, user_intent, max_tokens, accept_types, callback_url and locale")
			}
			if !p.skip(1) {
				return false
			}
		}
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return true
		default:
			return p.fail("expected ',' or '}' after a field")
		}
	}
}

const maxTokensMsg = "context.max_tokens must be an integer between 1 and 32768"

func (p *scanner) maxTokens(req *Request) bool {
	c := p.peek()
	if c != '-' && (c < '0' || c > '9') {
		p.violation(maxTokensMsg)
		return p.skip(1)
	}
	start := p.i
	lit, ok := p.number()
	if !ok {
		return false
	}
	n, canonical, ok := integerIn(lit, minMaxTokens, maxMaxTokens)
	if !ok {
		p.violation(maxTokensMsg)
		return true
	}
	req.Context.MaxTokens = n
	req.edit.tokensFrom, req.edit.tokensTo = start, p.i
	req.edit.tokensCanonical = canonical
	return true
}

func (p *scanner) acceptTypes(req *Request) bool {
	const field = "context.accept_types"
	if p.peek() != '[' {
		if p.peek() == 0 {
			return p.fail("unexpected end of input")
		}
		p.violation(field, " must be an array of content types")
		return p.skip(1)
	}
	p.i++
	types := req.acceptBuf[:0]
	defer func() { req.Context.AcceptTypes = types }()
	if p.peek() == ']' {
		p.i++
		return true
	}
	for {
		if p.peek() == '"' {
			v, lone, ok := p.str()
			if !ok {
				return false
			}
			switch {
			case lone:
				p.violation(field, " contains an unpaired UTF-16 surrogate escape")
			case !isContentType(v) && p.first == nil:
				p.violation(field, ` must list content types such as "text/answer" or "x-vendor/type"; `, quoteField(v), " is not one")
			}
			types = append(types, v)
		} else {
			p.violation(field, " must be an array of strings")
			if !p.skip(2) {
				return false
			}
		}
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return true
		default:
			return p.fail("expected ',' or ']' in context.accept_types")
		}
	}
}

// agentUnprintable refuses a requesting_agent with characters that are
// not printable: it goes into logs, rate-limit keys and the concierge's
// headers and prompts, where CR/LF split lines, NUL ends strings and
// invisible or bidi characters disguise it.
const agentUnprintable = "context.requesting_agent must hold printable characters only: " +
	"no control characters (CR, LF, NUL, tab, DEL ...), line or paragraph separators, " +
	"or invisible format characters (zero-width, bidi overrides, U+FEFF ...)"

// printable reports whether s holds only graphic characters (Unicode L,
// M, N, P, S and space separators, unicode.IsGraphic): no C0 or C1
// control, DEL, format (Cf: U+200B-U+200F, U+202A-U+202E, U+2066-U+2069,
// U+FEFF ...), line or paragraph separator, private use or unassigned
// code point.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			for _, r := range s[i:] {
				if !unicode.IsGraphic(r) {
					return false
				}
			}
			return true
		}
		if c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// runes counts the characters of s (what JSON Schema's maxLength counts),
// stopping early once past limit.
func runes(s string, limit int) int {
	if len(s) <= limit {
		return utf8.RuneCountInString(s)
	}
	n := 0
	for range s {
		n++
		if n > limit {
			break
		}
	}
	return n
}

// integerIn reports whether the JSON number literal lit is an integer
// within [lo, hi] (lo >= 1), with JSON Schema's meaning of "integer": any
// number whose value is whole, so 1.0 and 1e2 qualify. canonical reports
// that lit is written as plain digits.
func integerIn(lit string, lo, hi int) (n int, canonical, ok bool) {
	if len(lit) <= 9 && isDigits(lit) {
		n, _ = strconv.Atoi(lit)
		return n, true, n >= lo && n <= hi
	}
	whole, frac, neg, huge := jsonnum.Value(lit)
	if frac || neg || huge || whole > uint64(hi) {
		return 0, false, false
	}
	return int(whole), false, int(whole) >= lo
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isVersion matches ^[0-9]+\.[0-9]+$.
func isVersion(s string) bool {
	dot := strings.IndexByte(s, '.')
	return dot > 0 && isDigits(s[:dot]) && isDigits(s[dot+1:])
}

// isName matches ^[a-z][a-z0-9_]*$.
func isName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// isContentType matches
// ^(text|application|media|file|x-[a-z][a-z0-9-]*)/[a-z][a-z0-9_-]*$.
func isContentType(s string) bool {
	slash := strings.IndexByte(s, '/')
	if slash < 0 {
		return false
	}
	top, sub := s[:slash], s[slash+1:]
	switch top {
	case "text", "application", "media", "file":
	default:
		if !strings.HasPrefix(top, "x-") || !lowerWord(top[2:], "-") {
			return false
		}
	}
	return lowerWord(sub, "_-")
}

// lowerWord matches [a-z][a-z0-9<extra>]*.
func lowerWord(s, extra string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

// isLocale matches ^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$.
func isLocale(s string) bool {
	for part := 0; ; part++ {
		end := strings.IndexByte(s, '-')
		seg := s
		if end >= 0 {
			seg = s[:end]
		}
		if part == 0 {
			if len(seg) < 2 || len(seg) > 3 || !alnum(seg, false) {
				return false
			}
		} else if len(seg) < 2 || len(seg) > 8 || !alnum(seg, true) {
			return false
		}
		if end < 0 {
			return true
		}
		s = s[end+1:]
	}
}

func alnum(s string, digits bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20 // ASCII lower case; maps no non-letter onto a letter
		if !(c >= 'a' && c <= 'z' || digits && s[i] >= '0' && s[i] <= '9') {
			return false
		}
	}
	return true
}
