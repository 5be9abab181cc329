// Package auth is AHP authentication at the edge (spec §8.2, §5.3):
// extracting credentials from a request in the manifest's scheme,
// verifying them against the operator's keys, and deciding the outcome
// (none needed, 401 auth_required, 403 forbidden, verified).
//
// Credentials are never logged or echoed: the errors here name the header
// and scheme expected, not what was sent.
package auth

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// Header names, in canonical form so that lookups need no allocation.
const (
	HeaderAuthorization = "Authorization"
	// HeaderAPIKey is X-AHP-Key (spec §8.2) as net/http canonicalises it.
	HeaderAPIKey = "X-Ahp-Key"
)

// CheckScheme validates the manifest's authentication scheme at config
// time. "" (not given) counts as none.
func CheckScheme(scheme string) error {
	switch scheme {
	case "", manifest.AuthNone, manifest.AuthBearer, manifest.AuthAPIKey:
		return nil
	case manifest.AuthSignedRequest:
		return fmt.Errorf("authentication %q is not supported: AHP 0.1 leaves its details to 0.2; use %q or %q", scheme, manifest.AuthBearer, manifest.AuthAPIKey)
	}
	return fmt.Errorf("unknown authentication scheme %q: use %q, %q or %q", scheme, manifest.AuthNone, manifest.AuthBearer, manifest.AuthAPIKey)
}

// Extract returns the credential carried by h in scheme:
//
//   - "bearer": Authorization: Bearer <token>. The scheme name is matched
//     case-insensitively (RFC 9110 §11.1), spaces and tabs around the
//     token are ignored;
//   - "api_key": X-AHP-Key: <key>, surrounding spaces ignored.
//
// present is false when there is no credential in that scheme: no header,
// another auth scheme, an empty token, a token with inner spaces or
// control characters, or more than one such header (ambiguous: the
// gateway and the concierge could pick different ones). For "none" and
// unknown schemes it is always false.
func Extract(h http.Header, scheme string) (credential string, present bool) {
	switch scheme {
	case manifest.AuthBearer:
		v, ok := single(h, HeaderAuthorization)
		if !ok {
			return "", false
		}
		return bearerToken(v)
	case manifest.AuthAPIKey:
		v, ok := single(h, HeaderAPIKey)
		if !ok {
			return "", false
		}
		return token(v)
	}
	return "", false
}

// single returns the only value of the canonical header key.
func single(h http.Header, key string) (string, bool) {
	vals := h[key]
	if len(vals) != 1 {
		return "", false
	}
	return vals[0], true
}

// bearerToken parses `Bearer <token>`.
func bearerToken(v string) (string, bool) {
	const prefix = "bearer"
	v = trimOWS(v)
	if len(v) <= len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", false
	}
	if c := v[len(prefix)]; c != ' ' && c != '\t' {
		return "", false
	}
	return token(v[len(prefix):])
}

// token trims s and returns it if it is a usable credential.
func token(s string) (string, bool) {
	s = trimOWS(s)
	if !isToken(s) {
		return "", false
	}
	return s, true
}

func trimOWS(s string) string {
	return strings.Trim(s, " \t")
}

// isToken accepts a non-empty run of visible ASCII: what a key may hold
// (see checkKey) and what a header can carry without ambiguity.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// SetHeader puts credential in h in scheme's header, replacing what was
// there. The gateway uses it to move a bridge's body `auth` field
// (Appendix D.4) to the header the concierge reads.
func SetHeader(h http.Header, scheme, credential string) {
	switch scheme {
	case manifest.AuthBearer:
		h[HeaderAuthorization] = []string{"Bearer " + credential}
	case manifest.AuthAPIKey:
		h[HeaderAPIKey] = []string{credential}
	}
}

// Policy is how a site authenticates converse requests.
type Policy struct {
	// Scheme is the manifest's authentication scheme.
	Scheme string
	// Keys verifies credentials. With no keys the plugin cannot tell a
	// good credential from a bad one: it passes them on for the
	// concierge to verify and counts the request as unauthenticated.
	Keys *Keys
}

// Result is the outcome of a successful Check.
type Result struct {
	// Credential is the credential found ("" if none), to forward to the
	// concierge in the scheme's header (see SetHeader). FromBody reports
	// that it came from the body's auth field, so the header must be set.
	Credential string
	FromBody   bool
	// Verified is true only for a credential matching a configured key:
	// it alone selects the authenticated rate limit tier.
	Verified bool
	// KeyID names the matched key (see Keys.Verify).
	KeyID string
}

// Check decides a request's authentication. required is the capability's
// need for credentials (manifest.Capability.NeedsAuth: action and async
// capabilities, spec §5.3). bodyAuth is the request body's `auth` field
// (Appendix D.4, sent by MCP/OpenAPI bridges), used when no header
// carries a credential; a "Bearer " prefix in it is accepted.
//
// Errors: 401 auth_required when required and no credential is present;
// 403 forbidden when keys are configured and the credential matches none,
// whether or not the capability requires it (an agent that sends a wrong
// key should learn so, not be served silently as anonymous).
//
// With keys configured, a request never passes with a credential the
// gateway could not read, whether or not the capability requires one: the
// concierge must only ever see a verified credential. So, whatever the
// capability, these are refused with 401 auth_required, whose message
// names the one header the scheme expects (the agent did not authenticate
// in a way the site understands; 403 is kept for a readable credential
// that matches no key):
//
//   - two Authorization or two X-AHP-Key headers;
//   - in the scheme's header, a value that is not one credential: another
//     Authorization scheme (Basic, Token ...), a bearer token with inner
//     spaces or control characters, an empty value;
//   - the other scheme's header (X-AHP-Key on a bearer site, Authorization
//     on an api_key site).
//
// After a successful Check the gateway deletes the credential headers from the
// request it forwards and sets the verified credential back (Forward). The
// body's auth field is read only without a credential header, and is never
// forwarded (the gateway removes it from the body). Without keys nothing
// changes: a readable credential passes unverified, an unreadable one
// counts as absent, and the headers are forwarded as sent.
func (p *Policy) Check(h http.Header, bodyAuth string, required bool) (Result, *ahperror.Error) {
	if p.Scheme == "" || p.Scheme == manifest.AuthNone {
		return Result{}, nil
	}
	keyed := p.Keys.Len() > 0
	if keyed && p.unreadable(h) {
		return Result{}, p.unreadableError()
	}
	var res Result
	cred, present := Extract(h, p.Scheme)
	if !present && bodyAuth != "" {
		cred, present = fromBody(bodyAuth, p.Scheme)
		res.FromBody = present
	}
	if !present {
		if required {
			return Result{}, p.missing()
		}
		return Result{}, nil
	}
	res.Credential = cred
	if !keyed {
		return res, nil
	}
	id, ok := p.Keys.Verify(cred)
	if !ok {
		return Result{}, p.wrong(res.FromBody)
	}
	res.Verified, res.KeyID = true, id
	return res, nil
}

// CheckPoll is Check for an async status poll (§9.1): a credential is
// required whenever the site has a scheme, since only async capabilities
// start jobs and they MUST require authentication (§5.3). A poll has no
// body, so no auth field.
func (p *Policy) CheckPoll(h http.Header) (Result, *ahperror.Error) {
	res, e := p.Check(h, "", true)
	switch e {
	case missingBearer:
		e = missingBearerPoll
	case missingAPIKey:
		e = missingAPIKeyPoll
	}
	return res, e
}

// IsMissing reports whether e is Check's refusal of a call that carried no
// credential, so a front door can say where its own clients may send one.
func IsMissing(e *ahperror.Error) bool {
	return e == missingBearer || e == missingAPIKey
}

// IsMissingPoll reports whether message is CheckPoll's refusal of a poll
// that carried no credential (a front door reads it back from the status
// path's answer, to say where its own clients may send one).
func IsMissingPoll(message string) bool {
	return message == missingBearerPoll.Message || message == missingAPIKeyPoll.Message
}

// IsWrong reports whether e is Check's refusal of a credential sent in the
// scheme's header that matches no key (a door that moved a credential there
// from elsewhere names where the agent sent it).
func IsWrong(e *ahperror.Error) bool {
	return e == wrongBearer || e == wrongAPIKey
}

// IsWrongMessage reports whether message is the refusal IsWrong names, as
// a door reads it back from the status path's answer.
func IsWrongMessage(message string) bool {
	return message == wrongBearer.Message || message == wrongAPIKey.Message
}

// unreadable reports whether h carries a credential header that is not
// exactly one readable credential in p's scheme.
func (p *Policy) unreadable(h http.Header) bool {
	own, other := HeaderAuthorization, HeaderAPIKey
	if p.Scheme == manifest.AuthAPIKey {
		own, other = other, own
	}
	if _, sent := h[other]; sent {
		return true
	}
	vals, sent := h[own]
	if !sent {
		return false
	}
	_, ok := Extract(h, p.Scheme)
	return !ok || len(vals) != 1
}

// Forward rewrites the headers of the request the gateway forwards, after
// a successful Check that returned res. With keys configured, every
// credential header goes and only the verified credential comes back, in
// the scheme's header. Without keys, the headers stay as sent, except that
// a credential from the body's auth field is set in the scheme's header.
func (p *Policy) Forward(h http.Header, res Result) {
	if p.Scheme == "" || p.Scheme == manifest.AuthNone {
		return
	}
	if p.Keys.Len() > 0 {
		httpx.DeleteEdgeFields(h, HeaderAuthorization, HeaderAPIKey)
		if res.Verified {
			SetHeader(h, p.Scheme, res.Credential)
		}
		return
	}
	if res.FromBody && res.Credential != "" {
		httpx.DeleteEdgeFields(h, HeaderAuthorization, HeaderAPIKey)
		SetHeader(h, p.Scheme, res.Credential)
	}
}

func fromBody(v, scheme string) (string, bool) {
	if scheme == manifest.AuthBearer {
		if tok, ok := bearerToken(v); ok {
			return tok, true
		}
	}
	return token(v)
}

// Expected describes, for messages, where scheme's credential goes.
func Expected(scheme string) string {
	switch scheme {
	case manifest.AuthBearer, manifest.AuthAPIKey:
		return "an " + credentialHeader(scheme)
	}
	return "credentials"
}

// credentialHeader names scheme's header without an article, for
// messages that count it ("send exactly one …").
func credentialHeader(scheme string) string {
	if scheme == manifest.AuthAPIKey {
		return "X-AHP-Key: <key> header"
	}
	return "Authorization: Bearer <token> header"
}

// Precomputed refusals: a flood of unauthenticated requests should not
// allocate. The messages never include what the agent sent.
var (
	missingBearer = ahperror.New(http.StatusUnauthorized, ahperror.AuthRequired,
		"This capability requires authentication: send one "+credentialHeader(manifest.AuthBearer)+" (manifest authentication: bearer).")
	missingAPIKey = ahperror.New(http.StatusUnauthorized, ahperror.AuthRequired,
		"This capability requires authentication: send one "+credentialHeader(manifest.AuthAPIKey)+" (manifest authentication: api_key).")
	missingBearerPoll = ahperror.New(http.StatusUnauthorized, ahperror.AuthRequired,
		"A status poll requires authentication, as the async call did: send one "+credentialHeader(manifest.AuthBearer)+" (manifest authentication: bearer).")
	missingAPIKeyPoll = ahperror.New(http.StatusUnauthorized, ahperror.AuthRequired,
		"A status poll requires authentication, as the async call did: send one "+credentialHeader(manifest.AuthAPIKey)+" (manifest authentication: api_key).")
	wrongBearer = ahperror.New(http.StatusForbidden, ahperror.Forbidden,
		"The bearer token in the Authorization header is not accepted by this site.")
	wrongAPIKey = ahperror.New(http.StatusForbidden, ahperror.Forbidden,
		"The key in the X-AHP-Key header is not accepted by this site.")
	wrongBody = ahperror.New(http.StatusForbidden, ahperror.Forbidden,
		"The credential in the request's auth field is not accepted by this site.")
	unreadableBearer = ahperror.New(http.StatusUnauthorized, ahperror.AuthRequired,
		"The credential sent could not be read: send exactly one "+credentialHeader(manifest.AuthBearer)+" and no X-AHP-Key header (manifest authentication: bearer).")
	unreadableAPIKey = ahperror.New(http.StatusUnauthorized, ahperror.AuthRequired,
		"The credential sent could not be read: send exactly one "+credentialHeader(manifest.AuthAPIKey)+" and no Authorization header (manifest authentication: api_key).")
)

// unreadableError is the 401 for a credential p cannot read.
func (p *Policy) unreadableError() *ahperror.Error {
	if p.Scheme == manifest.AuthAPIKey {
		return unreadableAPIKey
	}
	return unreadableBearer
}

// missing returns the 401 for p's scheme. The returned error is shared:
// callers must not modify it.
func (p *Policy) missing() *ahperror.Error {
	if p.Scheme == manifest.AuthAPIKey {
		return missingAPIKey
	}
	return missingBearer
}

func (p *Policy) wrong(fromBody bool) *ahperror.Error {
	switch {
	case fromBody:
		return wrongBody
	case p.Scheme == manifest.AuthAPIKey:
		return wrongAPIKey
	}
	return wrongBearer
}
