// Package ahperror is the AHP error body (spec §10, §11): the JSON an agent
// receives for every request the plugin refuses, and the codes it may carry.
package ahperror

import (
	"net/http"
	"strconv"

	"github.com/caddy-ahp/caddy-ahp/internal/jsonstr"
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
	dst = jsonstr.AppendString(dst, e.Message)
	if e.AvailableCapabilities != nil {
		dst = append(dst, `,"available_capabilities":`...)
		dst = jsonstr.AppendStrings(dst, e.AvailableCapabilities)
	}
	if e.AvailableTypes != nil {
		dst = append(dst, `,"available_types":`...)
		dst = jsonstr.AppendStrings(dst, e.AvailableTypes)
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
// Headers already set on w (Link, rate limit headers, a Retry-After with
// jitter) are kept; a 429 without Retry-After gets one from RetryAfter.
// Every value set is this response's own: Caddy's header handler edits
// values in place, so a shared slice would leak one response's edit into
// every other.
func Write(w http.ResponseWriter, e *Error) {
	var buf [512]byte
	body := e.AppendJSON(buf[:0])
	h := w.Header()
	v := make([]string, 5)
	v[0], v[1], v[2], v[3] = "application/json; charset=utf-8", "no-store", "nosniff", strconv.Itoa(len(body))
	h["Content-Type"], h["Cache-Control"], h["X-Content-Type-Options"], h["Content-Length"] = v[0:1:1], v[1:2:2], v[2:3:3], v[3:4:4]
	if _, ok := h["Retry-After"]; !ok && e.Status == http.StatusTooManyRequests && e.hasRetry && e.RetryAfter >= 0 {
		v[4] = strconv.Itoa(e.RetryAfter)
		h["Retry-After"] = v[4:5:5]
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}
