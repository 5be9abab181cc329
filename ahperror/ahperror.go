// Package ahperror is the AHP error body (spec §10, §11): the JSON an agent
// receives for every request the plugin refuses, and the codes it may carry.
package ahperror

import (
	"net/http"
	"strconv"
	"unicode/utf8"
)

// Error codes (spec §10 and the response schema's code enum).
const (
	InvalidRequest    = "invalid_request"
	UnknownCapability = "unknown_capability"
	MissingField      = "missing_field"
	UnsupportedType   = "unsupported_type"
	AuthRequired      = "auth_required"
	Forbidden         = "forbidden"
	RequestTooLarge   = "request_too_large"
	RateLimited       = "rate_limited"
	ConciergeError    = "concierge_error"
	Unavailable       = "unavailable"
)

// Rate limit scopes (spec §11.3, §11.4).
const (
	ScopeIP            = "ip"
	ScopeAgent         = "agent"
	ScopeSession       = "session"
	ScopeSessionTokens = "session_tokens"
)

// Error is one error response. Status is the HTTP status; the other fields
// are the JSON body.
type Error struct {
	Status                int
	Code                  string
	Message               string
	AvailableCapabilities []string
	AvailableTypes        []string
	// Scope is set on rate_limited errors.
	Scope string
	// RetryAfter is set on rate_limited errors: seconds, or -1 for
	// "null" (retrying in the same session will not help, §11.4).
	RetryAfter int
	hasRetry   bool
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// New returns an error with the given status, code and message.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// RateLimit returns a 429 rate_limited error. retryAfter < 0 means null.
func RateLimit(scope, message string, retryAfter int) *Error {
	return &Error{Status: http.StatusTooManyRequests, Code: RateLimited, Message: message, Scope: scope, RetryAfter: retryAfter, hasRetry: true}
}

// AppendJSON appends the JSON body to dst. It is written by hand so that
// the refusal path (which a flood of bad requests exercises) stays cheap.
func (e *Error) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"status":"error","code":`...)
	dst = strconv.AppendQuote(dst, e.Code)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, e.Message)
	if e.AvailableCapabilities != nil {
		dst = append(dst, `,"available_capabilities":`...)
		dst = appendStrings(dst, e.AvailableCapabilities)
	}
	if e.AvailableTypes != nil {
		dst = append(dst, `,"available_types":`...)
		dst = appendStrings(dst, e.AvailableTypes)
	}
	if e.Scope != "" {
		dst = append(dst, `,"scope":`...)
		dst = strconv.AppendQuote(dst, e.Scope)
	}
	if e.hasRetry {
		dst = append(dst, `,"retry_after":`...)
		if e.RetryAfter < 0 {
			dst = append(dst, "null"...)
		} else {
			dst = strconv.AppendInt(dst, int64(e.RetryAfter), 10)
		}
	}
	return append(dst, "}\n"...)
}

// Write sends the error as the response: status, JSON content type, body.
// Headers already set on w (Link, rate limit headers) are kept.
func Write(w http.ResponseWriter, e *Error) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = nosniff
	delete(h, "Content-Length")
	if e.Status == http.StatusTooManyRequests && e.hasRetry && e.RetryAfter >= 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	var buf [512]byte
	body := e.AppendJSON(buf[:0])
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// Shared header values; net/http does the same to avoid an allocation per
// response. They are never modified in place.
var (
	jsonContentType = []string{"application/json; charset=utf-8"}
	noStore         = []string{"no-store"}
	nosniff         = []string{"nosniff"}
)

// appendString appends s as a JSON string. strconv.AppendQuote is not JSON
// (it emits \x escapes), so messages that may carry agent input use this.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
			i++
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			i++
		case c < 0x80:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == 0xFFFD && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else if r == '\u2028' || r == '\u2029' {
				dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(dst, '"')
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}
