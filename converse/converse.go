// Package converse is the AHP converse request (spec §6.1): parsing and
// validation of the POST /agent/converse body against the AHP 0.1 request
// schema and the spec rules the schema cannot express (known capability,
// content type negotiation §6.6, callback URL safety §9/§13), and the
// body forwarded to the concierge.
//
// The package knows nothing of HTTP servers or Caddy; the gateway
// middleware calls it once per request.
//
// Parse accepts exactly what the official request schema accepts (with the
// `auth` field NOTES.md admits; FuzzParse checks this against the compiled
// schema), except that it also refuses, where the spec text or safety asks
// for more than the schema:
//
//   - duplicate field names: the gateway and the concierge could read
//     different values (encoding/json keeps the last, others the first);
//   - invalid UTF-8 and unpaired UTF-16 surrogate escapes: decoders
//     replace or keep them differently, so the text checked would not be
//     the text served;
//   - an unknown capability (unknown_capability) and accept_types with no
//     type in common with the capability's response_types and no
//     accept_fallback (unsupported_type, spec §6.6).
//
// Other choices where the spec is silent: an empty accept_types is no
// preference (like an absent one); a capability without response_types
// returns text/answer (§6.1's default); session_id "" is treated as absent
// (Request.SessionID is "" either way) but forwarded as sent; ahp versions
// other than 0.1 pass (§12: minor versions are compatible, the concierge
// decides); max_tokens may be written 1e3 or 500.0 (the schema calls those
// integers) and is forwarded as plain digits.
package converse

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// Request is a parsed, validated converse request body.
//
// Strings alias one copy of the body made by Parse, so a Request stays
// valid after the caller reuses its body buffer.
type Request struct {
	AHP        string
	Capability string
	Query      string
	// SessionID is "" when session_id is null or absent (or "").
	SessionID     string
	Clarification string
	Context       Context
	// Auth is the Appendix D.4 `auth` field sent by MCP/OpenAPI bridges.
	// It is never forwarded in the body (see Rules.ForwardBody); the
	// gateway moves it to the scheme's header.
	Auth string

	// Declared is the manifest's declaration of Capability, set when
	// Parse succeeds (ResponseTypes filled with text/answer if the
	// manifest gave none). Shared by all requests: read only.
	Declared *manifest.Capability

	// Positions in the parsed body that ForwardBody edits; see edit.
	edit edit
	// acceptBuf backs Context.AcceptTypes so that a typical request
	// (a handful of types) needs no slice allocation.
	acceptBuf [4]string
}

// Context is the request's optional `context` object.
type Context struct {
	RequestingAgent string
	UserIntent      string
	// MaxTokens is 0 when absent; otherwise the value the agent sent
	// (ForwardBody applies the ceiling, to an absent one too).
	MaxTokens   int
	AcceptTypes []string
	CallbackURL string
	Locale      string
}

// Resolver resolves callback hosts. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Options configure Rules.
type Options struct {
	// MaxTokensCeiling lowers context.max_tokens above it before the
	// body is forwarded, and sets it when absent (spec §11.4: "a hard
	// ceiling regardless"). 0 means no ceiling.
	MaxTokensCeiling int
	// Resolver resolves callback URL hosts; nil means net.DefaultResolver.
	Resolver Resolver
	// LookupTimeout bounds one callback host lookup; 0 means 2 seconds.
	LookupTimeout time.Duration
	// AllowHTTPCallbacks admits http:// callback URLs. For tests and
	// closed deployments only: callbacks carry MODE3 results.
	AllowHTTPCallbacks bool
	// AllowedCallbackNets are networks a callback may reach although the
	// address checks refuse them: an operator whose agents live on a
	// private network, or tests against local servers. Names internal by
	// convention (localhost, ...) stay refused; use literal addresses.
	AllowedCallbackNets []netip.Prefix
}

// Rules validate converse requests for one manifest. They are built once
// at provisioning and are safe for concurrent use. The errors they return
// may share slices (available_capabilities, available_types) with the
// Rules: callers must not modify them.
type Rules struct {
	caps      map[string]*capRule
	available []string // capability names, manifest order
	ceiling   int
	resolver  Resolver
	timeout   time.Duration
	allowHTTP bool
	allowNets []netip.Prefix
}

// capRule is what Parse needs to know about one capability.
type capRule struct {
	declared       *manifest.Capability
	responseTypes  []string
	acceptFallback bool
}

// NewRules builds the rules for m and opts. It copies what it needs from
// m's capabilities, so later changes to m do not affect it.
func NewRules(m *manifest.Manifest, opts Options) *Rules {
	r := &Rules{
		caps:      make(map[string]*capRule, len(m.Capabilities)),
		available: make([]string, 0, len(m.Capabilities)),
		ceiling:   opts.MaxTokensCeiling,
		resolver:  opts.Resolver,
		timeout:   opts.LookupTimeout,
		allowHTTP: opts.AllowHTTPCallbacks,
		allowNets: slices.Clone(opts.AllowedCallbackNets),
	}
	if r.resolver == nil {
		r.resolver = net.DefaultResolver
	}
	if r.timeout <= 0 {
		r.timeout = 2 * time.Second
	}
	for i := range m.Capabilities {
		c := m.Capabilities[i] // a copy: Declared must not alias m
		c.InputSchema = slices.Clone(c.InputSchema)
		c.OutputSchema = slices.Clone(c.OutputSchema)
		types := slices.Clone(c.ResponseTypes)
		if len(types) == 0 {
			// §6.1: without accept_types the concierge answers in
			// text/answer; a capability that declares nothing returns that.
			types = []string{DefaultType}
		}
		c.ResponseTypes = types
		r.caps[c.Name] = &capRule{declared: &c, responseTypes: types, acceptFallback: c.AcceptFallback}
		r.available = append(r.available, c.Name)
	}
	return r
}

// DefaultType is the content type a concierge answers with when the agent
// states none (spec §6.1, §6.6).
const DefaultType = "text/answer"

// Parse decodes and validates body (already capped in size by the caller)
// into req, which it overwrites; req is meaningful only when Parse
// returns nil. Every error is a 400 whose message names the field:
//
//   - invalid_request: not UTF-8, not JSON, not an object, a field of the
//     wrong type or outside the AHP 0.1 request schema (patterns, lengths,
//     max_tokens 1..32768, callback_url not a URI), an unknown field, a
//     duplicate field, an unpaired UTF-16 surrogate escape;
//   - missing_field: capability or query absent;
//   - unknown_capability: the capability is not in the manifest (with
//     available_capabilities);
//   - unsupported_type: context.accept_types shares nothing with the
//     capability's response_types and it has no accept_fallback (with
//     available_types). An empty accept_types is treated as absent.
//
// Parse does not resolve context.callback_url; call CheckCallback.
func (r *Rules) Parse(body []byte, req *Request) *ahperror.Error {
	*req = Request{}
	if len(body) == 0 {
		return invalid("request body is empty: send a JSON object with capability and query")
	}
	// JSON text must be UTF-8 (RFC 8259 §8.1). encoding/json would
	// silently replace bad bytes, so the concierge could see other text
	// than the gateway checked.
	if !utf8.Valid(body) {
		return invalid("request body is not valid UTF-8")
	}
	p := scanner{s: string(body)}
	if p.peek() == '{' {
		if p.request(req) {
			p.ws()
			if p.i < len(p.s) {
				p.fail("unexpected data after the JSON object")
			}
		}
	} else if p.skip(0) {
		p.ws()
		if p.i == len(p.s) {
			return invalid("request body must be a JSON object with capability and query")
		}
		p.fail("unexpected data after the JSON value")
	}
	if p.syntax != "" {
		return invalid("request body is not valid JSON: " + p.syntax + " at byte " + strconv.Itoa(p.synAt))
	}
	if p.first != nil {
		*req = Request{}
		return p.first
	}
	cr := r.caps[req.Capability]
	if cr == nil {
		e := ahperror.New(http.StatusBadRequest, ahperror.UnknownCapability,
			"The capability '"+req.Capability+"' is not supported; use one of available_capabilities.")
		e.AvailableCapabilities = r.available
		return e
	}
	req.Declared = cr.declared
	if len(req.Context.AcceptTypes) > 0 && !cr.acceptFallback && !overlaps(req.Context.AcceptTypes, cr.responseTypes) {
		e := ahperror.New(http.StatusBadRequest, ahperror.UnsupportedType,
			"capability '"+req.Capability+"' cannot return any type in context.accept_types and has no accept_fallback; accept one of available_types.")
		e.AvailableTypes = cr.responseTypes
		return e
	}
	return nil
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// ForwardBody returns the bytes to send upstream for req, which Parse
// produced from original. When nothing must change it returns original
// itself. Otherwise it returns a copy edited in place, byte for byte
// identical elsewhere:
//
//   - the `auth` member is removed: credentials travel upstream in
//     headers only (the gateway moves them there), never in a body the
//     concierge may log or pass to an LLM;
//   - context.max_tokens above the ceiling is lowered to it (spec §11.4:
//     "a hard ceiling regardless"), and one absent is set to it, first in
//     context (`"context":{...}` is added when absent), so an agent cannot
//     escape the ceiling by leaving the hint out;
//   - one written in another notation than plain digits (1e3, 500.0; the
//     schema calls those integers) is rewritten as digits, so that a
//     concierge decoding it into an integer type does not fail.
func (r *Rules) ForwardBody(req *Request, original []byte) []byte {
	fwd, _ := r.ForwardBodyInto(nil, req, original)
	return fwd
}

// ForwardBodyInto is ForwardBody for a caller that pools buffers: an
// edited body is written into buf's capacity (grown when too small), and
// edited reports that fwd is that buffer rather than original.
func (r *Rules) ForwardBodyInto(buf []byte, req *Request, original []byte) (fwd []byte, edited bool) {
	e := &req.edit
	tokens := req.Context.MaxTokens
	if r.ceiling > 0 && (tokens > r.ceiling || tokens == 0) {
		tokens = r.ceiling
	}
	// The max_tokens edit: the literal's range replaced, or, when absent,
	// an insertion (an empty range) at the start of context or at the end
	// of the request.
	from, to := e.tokensFrom, e.tokensTo
	rewriteTokens := to > 0 && (tokens != req.Context.MaxTokens || !e.tokensCanonical)
	insertTokens := to == 0 && tokens > 0
	if insertTokens {
		from = e.objClose
		if e.ctxOpen > 0 {
			from = e.ctxOpen
		}
		to = from
	}
	if e.authTo == 0 && !rewriteTokens && !insertTokens {
		return original, false
	}
	if need := len(original) + len(`,"context":{"max_tokens":}`) + 20; cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	out := buf[:0]
	pos := 0
	// The two edits never overlap (auth is top level, max_tokens inside
	// context or after every member); apply them in body order.
	editTokens := rewriteTokens || insertTokens
	authFirst := e.authTo > 0 && (!editTokens || e.authFrom < from)
	if authFirst {
		out = append(out, original[pos:e.authFrom]...)
		pos = e.authTo
	}
	if editTokens {
		out = append(out, original[pos:from]...)
		switch {
		case !insertTokens:
		case e.ctxOpen > 0:
			out = append(out, `"max_tokens":`...)
		default:
			out = append(out, `,"context":{"max_tokens":`...)
		}
		out = strconv.AppendInt(out, int64(tokens), 10)
		switch {
		case !insertTokens:
		case e.ctxOpen == 0:
			out = append(out, '}')
		case !e.ctxEmpty:
			out = append(out, ',')
		}
		pos = to
	}
	if e.authTo > 0 && !authFirst {
		out = append(out, original[pos:e.authFrom]...)
		pos = e.authTo
	}
	return append(out, original[pos:]...), true
}

// edit records where ForwardBody must change the body: the byte range of
// the auth member with one separator, and of the max_tokens literal (a
// zero "to" means absent); where a max_tokens could go: just inside
// context's '{' (0: no context), or at the request's closing '}'.
type edit struct {
	authFrom, authTo     int
	tokensFrom, tokensTo int
	tokensCanonical      bool
	ctxOpen              int
	ctxEmpty             bool
	objClose             int
}
