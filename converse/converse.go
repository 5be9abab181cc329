// Package converse is the AHP converse request (spec §6.1): parsing and
// validation of the POST /agent/converse body against the AHP 0.1 request
// schema and the spec rules the schema cannot express (known capability,
// content type negotiation §6.6, callback URL safety §9/§13), and the
// body forwarded to the concierge.
//
// The package knows nothing of HTTP servers or Caddy; the gateway
// middleware calls it once per request.
package converse

import (
	"context"
	"net/netip"
	"time"

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
	// Parse succeeds.
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
	// (ForwardBody applies the ceiling).
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
	// body is forwarded (spec §11.4). 0 means no ceiling.
	MaxTokensCeiling int
	// Resolver resolves callback URL hosts; nil means net.DefaultResolver.
	Resolver Resolver
	// LookupTimeout bounds one callback host lookup; 0 means 2 seconds.
	LookupTimeout time.Duration
	// AllowHTTPCallbacks admits http:// callback URLs. Only for tests
	// against local servers: callbacks carry MODE3 results.
	AllowHTTPCallbacks bool
}

// Rules validate converse requests for one manifest. They are built once
// at provisioning and are safe for concurrent use.
type Rules struct {
	caps      map[string]*capRule
	available []string // capability names, manifest order
	ceiling   int
	resolver  Resolver
	timeout   time.Duration
	allowHTTP bool
}

// capRule is what Parse needs to know about one capability.
type capRule struct {
	declared       *manifest.Capability
	responseTypes  []string
	acceptFallback bool
}

// NewRules builds the rules for m (which it does not keep a reference to
// beyond its capability declarations) and opts.
func NewRules(m *manifest.Manifest, opts Options) *Rules {
	panic("not implemented yet")
}

// Parse decodes and validates body (already capped in size by the caller)
// into req, which it overwrites. See the package documentation for the
// rules; errors are 400s with the spec's codes and name the field.
func (r *Rules) Parse(body []byte, req *Request) *ahperror.Error {
	panic("not implemented yet")
}

// CheckCallback validates a context.callback_url (spec §9, §13).
func (r *Rules) CheckCallback(ctx context.Context, rawURL string) *ahperror.Error {
	panic("not implemented yet")
}

// ForwardBody returns the bytes to send upstream for req, which Parse
// produced from original.
func (r *Rules) ForwardBody(req *Request, original []byte) []byte {
	panic("not implemented yet")
}

// edit records where ForwardBody must change the body.
type edit struct{}
