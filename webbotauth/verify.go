// Package webbotauth verifies Web Bot Auth request signatures: HTTP
// Message Signatures (RFC 9421) made with an agent's Ed25519 key, whose
// public keys the agent publishes in a key directory (a JWKS) named by
// the Signature-Agent header (draft-ietf-webbotauth-httpsig-protocol).
//
// A [Verifier] answers, for one request, who signed it: the agent's
// directory origin (for example https://chatgpt.com) once the signature,
// its time bounds and the key fetched from that origin all check out.
// Unsigned requests cost a header lookup and no allocation. Directories
// are fetched over HTTPS only, without redirects, with size and time
// limits and the caller's address checks, on port 443 unless allowed,
// cached per Cache-Control, and their keys optionally shared between
// instances through a [SharedCache] (Redis) once a signature verified
// with them. Operators may pin an agent's keys instead.
//
// Naming a new origin needs no key, so fetches are what any client can
// make a verifier do: they are budgeted per client network, a share of
// the fetch slots stays for agents already known, failures are cached
// apart from keys, and an agent whose keys are known keeps them (for up
// to MaxStale) whenever a refresh cannot happen.
//
// The structured fields are parsed with github.com/dunglas/httpsfv; the
// signature base of RFC 9421 §2.5 is rebuilt here for the components
// Web Bot Auth agents sign. This package does not know Caddy.
package webbotauth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Outcome is what verification concluded about a request. The draft's
// deployment guidance keeps verified, invalid and unverified apart; an
// unsigned request is a fourth case that says nothing about its sender.
type Outcome uint8

const (
	// Unsigned: no Web Bot Auth signature (no Signature-Input, or none
	// tagged web-bot-auth).
	Unsigned Outcome = iota
	// Verified: the signature, its time bounds and the agent's key
	// check out. Result.Agent is who signed.
	Verified
	// Invalid: the request carries a Web Bot Auth signature that is
	// malformed, expired, not yet valid, or does not verify.
	Invalid
	// Unverified: the signature could not be checked, for want of
	// information rather than because it is wrong: the key directory is
	// unreachable or does not list the key, or the signature uses a
	// component or algorithm this verifier does not implement.
	Unverified
)

// String is the outcome's name, for logs and metric labels.
func (o Outcome) String() string {
	switch o {
	case Unsigned:
		return "unsigned"
	case Verified:
		return "verified"
	case Invalid:
		return "invalid"
	case Unverified:
		return "unverified"
	}
	return "unknown"
}

// Result is the verdict on one request.
type Result struct {
	Outcome Outcome
	// Agent is the verified signer's identifier: its directory origin
	// (https://host, with a port only when it is not 443), or with
	// Options.DirectoryURLs the JWKS URL, query included (two queries may
	// be two key sets). Set only when Outcome is Verified.
	Agent string
	// KeyID is the JWK thumbprint the signature named (set when the
	// signature was parsed far enough to read it).
	KeyID string
	// Reason says why the outcome is not Verified, for logs. It never
	// contains the signature.
	Reason string
}

// failure is an outcome other than Verified with its reason.
type failure struct {
	outcome Outcome
	reason  string
}

func invalid(reason string) *failure    { return &failure{Invalid, reason} }
func unverified(reason string) *failure { return &failure{Unverified, reason} }

// Pinned is an agent whose keys the operator configured: requests naming
// Agent in Signature-Agent are verified with these keys and its directory
// is never fetched.
type Pinned struct {
	// Agent is the agent's Signature-Agent value: an https origin
	// (https://chatgpt.com), or a JWKS URL with Options.DirectoryURLs.
	Agent string
	// JWKS is a JWK Set, or a single JWK, holding Ed25519 public keys
	// (the contents of the file the operator named).
	JWKS []byte
}

// Resolver resolves directory host names. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Options configure a Verifier. The zero value of every field but
// CheckAddr is a sensible default.
type Options struct {
	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time
	// ClockSkew is tolerated on created (in the future) and expires (in
	// the past). Default 1 minute.
	ClockSkew time.Duration
	// MaxValidity is the longest expires-created window accepted: a long
	// window makes a captured signature a long-lived bearer token. The
	// draft recommends at most 24 hours, the default.
	MaxValidity time.Duration

	// Pinned agents are verified with configured keys, never fetched.
	Pinned []Pinned
	// NoFetch verifies pinned agents only; other signed requests are
	// Unverified. CheckAddr is then not needed.
	NoFetch bool
	// DirectoryURLs also accepts Signature-Agent values that name a JWKS
	// URL with a path (draft -01 makes every value a direct JWKS URL);
	// the agent is then identified by that URL. By default only origins
	// (and the explicit well-known directory URL) are accepted, as the
	// agents deployed today send, and the agent is the origin.
	DirectoryURLs bool

	// CheckAddr refuses an address a directory fetch must not connect
	// to (private, loopback, link-local, metadata ...): it is given every
	// address a directory host resolves to, and the fetch is refused if
	// it refuses any. Required unless NoFetch: pass the project's callback
	// address rules.
	CheckAddr func(netip.Addr) error
	// CheckHost refuses a directory host name before it is looked up
	// (single labels, internal names ...). Optional.
	CheckHost func(host string) error
	// Resolver resolves directory hosts; nil means net.DefaultResolver.
	Resolver Resolver
	// ExtraCAsPEM are PEM certificates trusted for directory fetches in
	// addition to the system roots: for private directories and tests.
	ExtraCAsPEM []byte
	// FetchTimeout bounds one directory fetch, connection included, and
	// how long one request waits for fetches in all, however many
	// signatures it carries. Default 5 seconds.
	FetchTimeout time.Duration
	// MaxDirectoryBytes bounds a directory body after content decoding.
	// Default 64 KiB.
	MaxDirectoryBytes int64
	// DefaultTTL caches a directory that gives no Cache-Control or
	// Expires; MinTTL and MaxTTL bound what it gives. Defaults 1 hour,
	// 1 minute, 24 hours.
	DefaultTTL, MinTTL, MaxTTL time.Duration
	// NegativeTTL caches a failed fetch (default 1 minute; the draft
	// asks for at most 5 minutes).
	NegativeTTL time.Duration
	// MaxStale keeps using a directory past its expiry while refreshing
	// it fails (an outage must not revoke an agent's keys, the draft
	// says). Default 24 hours.
	MaxStale time.Duration
	// MaxEntries bounds the directories with keys cached in memory
	// (default 10000); MaxFailures the failed fetches (default 1024),
	// kept apart so that failures, which any client can cause, never
	// push out an agent's keys.
	MaxEntries, MaxFailures int
	// MaxConcurrentFetches bounds directory fetches in flight (default
	// 16); directories nobody has keys from yet get three quarters of
	// them, the rest stay for refreshing known agents. A signed request
	// that would need another fetch is served the keys fetched before
	// while they are within MaxStale, else Unverified.
	MaxConcurrentFetches int
	// ClientAddr is the address of the client that sent r: directory
	// fetches are budgeted per client network (/24 for IPv4, /48 for
	// IPv6), since a client needs no key to make the verifier fetch a
	// directory. nil means r.RemoteAddr; behind a proxy pass the real
	// client's address (Caddy's {client_ip}). It is only called when a
	// request needs a fetch.
	ClientAddr func(r *http.Request) netip.Addr
	// MaxFetchesPerNetwork bounds the fetches one client network may
	// have in flight (default MaxConcurrentFetches/8, at least 1);
	// NetworkFetchBurst and NetworkFetchInterval its rate: a burst of
	// fetches (default 8), then one per interval (default 10 seconds).
	MaxFetchesPerNetwork int
	NetworkFetchBurst    int
	NetworkFetchInterval time.Duration
	// AllowPorts are ports besides 443 a directory may be fetched from,
	// on any host. A Signature-Agent naming another port is Unverified
	// without a fetch (directories are https on 443; another port lets
	// any client aim the fetcher at whatever listens there), unless
	// every address its host resolves to is in AnyPortOn (the
	// operator's own directory networks).
	AllowPorts []uint16
	AnyPortOn  []netip.Prefix
	// Shared, when set, shares agents' keys between instances (once a
	// signature verified with them); see NewRedisCache.
	Shared SharedCache
	// UserAgent is sent on directory fetches. Default "caddy-ahp-webbotauth".
	UserAgent string
	// OnFetch, when set, is called after every directory fetch over the
	// network with its URL and error (nil on success): for metrics.
	OnFetch func(url string, err error)
	// AllowTestKeys admits the RFC 9421 example key, which the draft
	// asks verifiers to refuse. For tests only.
	AllowTestKeys bool
	// OnSharedCacheError, when set, is called on every failed read or
	// write of Shared (for a metric: the log says so at most once per
	// SharedCacheLogEvery).
	OnSharedCacheError func(err error)
	// Logger logs directory fetches; nil means no logging.
	Logger *zap.Logger
}

// Verifier verifies Web Bot Auth signatures. It is safe for concurrent
// use; build one per configuration and share it.
type Verifier struct {
	now         func() time.Time
	skew        time.Duration
	maxValidity time.Duration
	dirURLs     bool
	pinned      map[string]*KeySet
	dir         *directory // nil with NoFetch
}

// New builds a Verifier. It fails on a configuration mistake: a pinned
// agent or key that does not parse, unparseable extra CAs, or fetching
// enabled without CheckAddr.
func New(opts Options) (*Verifier, error) {
	v := &Verifier{
		now:         opts.Now,
		skew:        opts.ClockSkew,
		maxValidity: opts.MaxValidity,
		dirURLs:     opts.DirectoryURLs,
		pinned:      make(map[string]*KeySet, len(opts.Pinned)),
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.skew <= 0 {
		v.skew = time.Minute
	}
	if v.maxValidity <= 0 {
		v.maxValidity = 24 * time.Hour
	}
	for _, p := range opts.Pinned {
		id, _, f := agentID(p.Agent, v.dirURLs)
		if f != nil {
			return nil, fmt.Errorf("webbotauth: pinned agent %q: %s", p.Agent, f.reason)
		}
		ks, err := ParseJWKS(p.JWKS, opts.AllowTestKeys)
		if err != nil {
			return nil, fmt.Errorf("webbotauth: pinned keys of %s: %w", id, err)
		}
		if v.pinned[id] != nil {
			return nil, fmt.Errorf("webbotauth: agent %s is pinned twice", id)
		}
		v.pinned[id] = ks
	}
	if !opts.NoFetch {
		if opts.CheckAddr == nil {
			return nil, errors.New("webbotauth: Options.CheckAddr is required to fetch key directories (or set NoFetch)")
		}
		d, err := newDirectory(&opts, v.now)
		if err != nil {
			return nil, err
		}
		v.dir = d
	}
	return v, nil
}

// Close releases the directory fetcher's idle connections. The Verifier
// stays usable.
func (v *Verifier) Close() {
	if v.dir != nil {
		v.dir.client.CloseIdleConnections()
	}
}

// Verify checks the request's Web Bot Auth signature, on the request as
// it arrived: before any rewrite of its path, query or Host (the
// signature covers them as the agent sent them). Requests without
// Signature-Input cost a map lookup. A signed request may wait for the
// agent's key directory to be fetched the first time (Options.FetchTimeout
// at most for all its signatures together, or ctx); afterwards it is
// verified from memory.
//
// With several web-bot-auth signatures (an agent and a remote browser
// signing in turn), the first that verifies wins; if none does, the
// result is the first signature's. A malformed one is only its own
// failure.
func (v *Verifier) Verify(ctx context.Context, r *http.Request) Result {
	if len(r.Header["Signature-Input"]) == 0 {
		return Result{}
	}
	inputs, ok := fieldValues(r.Header, "Signature-Input")
	sigs, ok2 := fieldValues(r.Header, "Signature")
	if !ok || !ok2 {
		return Result{Outcome: Invalid, Reason: "Signature-Input or Signature is too large"}
	}
	ins, f := parseSignatureInput(inputs)
	if f != nil {
		return f.result("")
	}
	if len(ins) == 0 {
		return Result{Reason: "no web-bot-auth signature"}
	}
	parts, f := partsOf(r)
	if f != nil {
		return f.result(ins[0].keyid)
	}
	st := verifyState{r: r, parts: &parts, sigs: sigs, now: v.now()}
	if v.dir != nil {
		st.deadline = st.now.Add(v.dir.timeout)
	}
	var first Result
	for i := range ins {
		res := v.verifyOne(ctx, &st, &ins[i])
		if res.Outcome == Verified {
			return res
		}
		if i == 0 {
			first = res
		}
	}
	return first
}

// verifyState is what the signatures of one request share.
type verifyState struct {
	r      *http.Request
	parts  *requestParts
	sigs   []string
	now    time.Time
	sa     signatureAgent
	saDone bool
	saFail *failure
	fields fieldCache
	// deadline ends the waits for directory fetches of all the request's
	// signatures together: FetchTimeout per request, not per signature.
	deadline time.Time
}

func (f *failure) result(keyid string) Result {
	return Result{Outcome: f.outcome, KeyID: keyid, Reason: f.reason}
}

func (v *Verifier) verifyOne(ctx context.Context, st *verifyState, in *sigInput) Result {
	// Checks that need no key come first, so that a request that cannot
	// verify never costs a directory fetch.
	if in.bad != nil {
		return in.bad.result(in.keyid)
	}
	if f := v.checkProfile(in, st.now); f != nil {
		return f.result(in.keyid)
	}
	sig, f := parseSignature(st.sigs, in.label)
	if f != nil {
		return f.result(in.keyid)
	}
	if len(sig) != ed25519.SignatureSize {
		return invalid("signature is not 64 bytes").result(in.keyid)
	}
	if !st.saDone {
		st.saDone = true
		if vals, ok := fieldValues(st.r.Header, "Signature-Agent"); !ok {
			st.saFail = invalid("Signature-Agent is too large")
		} else {
			st.sa, st.saFail = parseSignatureAgent(vals)
			st.fields.saDict = st.sa.dict
		}
	}
	if st.saFail != nil {
		return st.saFail.result(in.keyid)
	}
	raw, f := st.sa.agentURL(in)
	if f != nil {
		return f.result(in.keyid)
	}
	id, fetchURL, f := agentID(raw, v.dirURLs)
	if f != nil {
		return f.result(in.keyid)
	}
	if _, ok := v.pinned[id]; !ok && v.dir == nil {
		// No key can be found: not worth building the base.
		return unverified("agent " + id + " is not pinned and directory fetching is off").result(in.keyid)
	}
	base, f := signatureBase(st.r, st.parts, in, &st.fields)
	if f != nil {
		return f.result(in.keyid)
	}
	pub, e, f := v.key(ctx, st, id, fetchURL, in.keyid)
	if f != nil {
		return f.result(in.keyid)
	}
	if !ed25519.Verify(pub, base, sig) {
		return invalid("signature does not verify").result(in.keyid)
	}
	if e != nil && e.unshared.Load() {
		v.dir.share(fetchURL, e)
	}
	return Result{Outcome: Verified, Agent: id, KeyID: in.keyid}
}

// checkProfile applies the Web Bot Auth profile and the time bounds.
func (v *Verifier) checkProfile(in *sigInput, now time.Time) *failure {
	if in.keyid == "" {
		return invalid("no keyid")
	}
	if in.alg != "" && in.alg != "ed25519" {
		return unverified("algorithm " + in.alg + " is not supported (ed25519 only)")
	}
	if in.created == 0 || in.expires == 0 {
		return invalid("created and expires are required")
	}
	if in.expires <= in.created {
		return invalid("expires is not after created")
	}
	if in.expires-in.created > int64(v.maxValidity/time.Second) {
		return invalid("validity window longer than " + v.maxValidity.String())
	}
	s := now.Unix()
	if in.created > s+int64(v.skew/time.Second) {
		return invalid("created is in the future")
	}
	if in.expires < s-int64(v.skew/time.Second) {
		return invalid("expired")
	}
	covers := false
	for _, it := range in.components {
		if c := it.Value.(string); c == "@authority" || c == "@target-uri" {
			covers = true
			break
		}
	}
	if !covers {
		return invalid("covers neither @authority nor @target-uri")
	}
	return nil
}

// key finds the public key keyid of agent id: pinned, or from its
// directory (with the cache entry it came from). An unknown keyid in a
// directory fetched a while ago is worth one refetch (a key rotated in
// since), at most once per MinTTL. Fetches are waited for until the
// request's deadline. The caller has checked that id is pinned or that
// fetching is on.
func (v *Verifier) key(ctx context.Context, st *verifyState, id, fetchURL, keyid string) (ed25519.PublicKey, *dirEntry, *failure) {
	if ks, ok := v.pinned[id]; ok {
		pub, why := ks.lookup(keyid, st.now)
		if pub == nil {
			return nil, nil, unverified(why + " for pinned agent " + id)
		}
		return pub, nil, nil
	}
	if port, ok := v.dir.portAllowed(fetchURL); !ok {
		return nil, nil, unverified("agent " + id + ": port " + port + " is not allowed (key directories are fetched from port 443)")
	}
	e, f := v.dir.keys(ctx, st.r, fetchURL, false, st.deadline)
	if f != nil {
		return nil, nil, f
	}
	pub, why := e.keys.lookup(keyid, st.now)
	if pub == nil && why == "unknown keyid" {
		if e2, f := v.dir.keys(ctx, st.r, fetchURL, true, st.deadline); f == nil && e2.keys != e.keys {
			e = e2
			pub, why = e.keys.lookup(keyid, st.now)
		}
	}
	if pub == nil {
		return nil, nil, unverified(why + " in the directory of " + id)
	}
	return pub, e, nil
}

// WellKnownPath is where an agent's key directory lives on its origin.
const WellKnownPath = "/.well-known/http-message-signatures-directory"

// MediaType is the key directory's media type.
const MediaType = "application/http-message-signatures-directory+json"

// NormalizeAgent returns the identifier Verify reports (Result.Agent) for
// an agent written in configuration: lists of agents (which may skip
// proof of work, which get a label in metrics) compare equal to
// Result.Agent only once normalized so. directoryURLs is
// Options.DirectoryURLs.
func NormalizeAgent(raw string, directoryURLs bool) (string, error) {
	id, _, f := agentID(raw, directoryURLs)
	if f != nil {
		return "", errors.New(f.reason)
	}
	return id, nil
}

// agentID normalizes a Signature-Agent URL into the agent's identifier
// and the URL its directory is fetched from. Only https URLs without user
// info or fragment pass; the host is lower-cased and port 443 dropped
// (RFC 3986 §6.2.2-6.2.3). An origin's query is ignored (its directory
// is the well-known one); a directory URL's query is part of both: two
// queries may be two directories with two key sets (one per tenant of a
// key service), and an agent is whose keys verified it.
func agentID(raw string, directoryURLs bool) (id, fetch string, f *failure) {
	if raw == "" || len(raw) > maxAgentURLLen {
		return "", "", unverified("Signature-Agent URL is empty or too long")
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return "", "", unverified("Signature-Agent URL contains a space, control or non-ASCII byte")
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || !strings.EqualFold(u.Scheme, "https") || u.Host == "" ||
		u.User != nil || u.Fragment != "" {
		return "", "", unverified("Signature-Agent is not an https URL")
	}
	// url.Parse decodes a percent-encoded host: chatg%D1%80t.com would
	// become a Unicode lookalike of chatgpt.com as the agent's identity
	// (and its directory fetched from the xn-- name). A host is written
	// as it is registered, ASCII (xn-- for IDNs), or refused.
	authority := raw[len(u.Scheme)+len("://"):] // a host makes Parse need the "//"
	if i := strings.IndexAny(authority, "/?#"); i >= 0 {
		authority = authority[:i]
	}
	if strings.ContainsRune(authority, '%') {
		return "", "", unverified("Signature-Agent URL has a percent-encoded host (write an IDN in its xn-- form)")
	}
	host := strings.ToLower(u.Hostname())
	if host == "" || strings.ContainsAny(host, "%@") {
		return "", "", unverified("Signature-Agent URL has no valid host")
	}
	authority = host
	if strings.Contains(host, ":") {
		authority = "[" + host + "]"
	}
	if port := u.Port(); port != "" && port != "443" {
		authority += ":" + port
	} else if port == "" && strings.HasSuffix(u.Host, ":") {
		return "", "", unverified("Signature-Agent URL has an empty port")
	}
	origin := "https://" + authority
	switch p := u.EscapedPath(); p {
	case "", "/", WellKnownPath:
		return origin, origin + WellKnownPath, nil
	default:
		if !directoryURLs {
			return "", "", unverified("Signature-Agent names a path; only agent origins are accepted (the directory is fetched from " + WellKnownPath + ")")
		}
		if strings.Contains(p, "/./") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..") {
			return "", "", unverified("Signature-Agent URL has dot segments")
		}
		fetch = origin + p
		if u.RawQuery != "" {
			fetch += "?" + u.RawQuery
		}
		// Escaping the path can make it three times longer (^ is %5E):
		// the identity is held to the bound its input was, so that it
		// normalizes to itself (FuzzSignatureAgent).
		if len(fetch) > maxAgentURLLen {
			return "", "", unverified("Signature-Agent URL is empty or too long")
		}
		return fetch, fetch, nil
	}
}
