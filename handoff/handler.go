package handoff

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
	"github.com/caddy-ahp/caddy-ahp/pathguard"
)

// Next is the rest of the handler chain. caddyhttp.Handler satisfies it.
type Next interface {
	ServeHTTP(http.ResponseWriter, *http.Request) error
}

// AdmissionHeader tells the backend what the edge verified, e.g.
// "verified; purpose=create; difficulty=22", or "verified-agent;
// purpose=create; agent=https://chatgpt.com" for a creation exempt from
// the proof of work (Config.ProofExempt). The handler deletes it from
// every client request first, so the backend can trust it.
const AdmissionHeader = "X-Agent-Handoff-Admission"

// Well-known paths (spec §6.1) and the plugin's own beside it.
const (
	DiscoveryPath             = "/.well-known/agent-access"
	DefaultClaimChallengePath = "/.well-known/agent-access/claim-challenge"
	DefaultSolverPath         = "/.well-known/agent-access/solver.js"
)

// The spec's paths (§7, Appendix A), the defaults of Paths.
const (
	DefaultChallengePath = "/v1/sandboxes/challenge"
	DefaultCreatePath    = "/v1/sandboxes"
	DefaultClaimPath     = "/v1/sandboxes/*/claim"
	DefaultVerifyPath    = "/v1/claims/verify"
)

// DefaultUniformPaths and DefaultExchangePaths are the defaults of Paths.
var (
	DefaultUniformPaths  = []string{"/v1/sandboxes/*", "/v1/claims/*", "/exchange/*"}
	DefaultExchangePaths = []string{"/exchange/*"}
)

// Off, as a path, turns that endpoint off.
const Off = "off"

// Provider is what discovery says about the provider (spec §6.1).
type Provider struct {
	Name string
	Docs string
	// ContentTypes is the discovery document's content_types.
	ContentTypes []string
	// SandboxTTL is the sandboxes' lifetime (ttl_hours); default 48h.
	SandboxTTL time.Duration
	// BaseURL makes endpoints absolute ("https://api.example.com");
	// default the scheme and host of each discovery request.
	BaseURL string
	// HandleRotation declares that the backend rotates public handles on
	// publish and claim (spec §15): the edge cannot enforce it, so the
	// discovery flags say true only when the operator says so.
	HandleRotation bool
}

// Paths are the endpoints the handler stands in front of. Each is a
// pathguard pattern; "" takes the default, Off turns it off. With Verify
// off the edge verifies no claim: ClaimChallenge defaults to off (and
// may not be set), claim start answers get no claim challenge, and
// discovery says nothing of the claim method.
type Paths struct {
	Challenge      string
	Create         string
	Claim          string
	Verify         string
	ClaimChallenge string
	Solver         string
	// Uniform paths get the one failure answer; Exchange paths are only
	// consumed by POST; ClaimPages (the human's claim pages) get the
	// anti-framing headers.
	Uniform    []string
	Exchange   []string
	ClaimPages []string
}

// Exchange GET policies.
const (
	ExchangePage   = "page"   // answer GET/HEAD with a static confirmation form (default)
	ExchangeRefuse = "refuse" // answer GET/HEAD with 405
)

// Config is everything a Handler needs, built once at load.
type Config struct {
	Provider   Provider
	Paths      Paths
	Difficulty Difficulty
	// ChallengeTTL is how long a challenge may be spent (default 5
	// minutes, spec §29).
	ChallengeTTL time.Duration
	// Lockout of claim verification; zero fields take the defaults
	// (5 failures, 1m doubling to 1h, forgotten after 24h).
	Lockout Lockout
	// BodyLimit caps creation and claim verification bodies (default
	// 16 KiB); larger ones are refused unread.
	BodyLimit int64
	Failure   Failure
	// ExchangeGET is ExchangePage (default) or ExchangeRefuse.
	ExchangeGET string
	// ExchangePageHTML replaces DefaultExchangePage: a static page whose
	// form posts to the page's own URL. It may hold no script (the page is
	// served with a CSP that runs none).
	ExchangePageHTML []byte
	// TrustedOrigins are the origins ("https://app.example.com") whose
	// pages may POST to the exchange and claim verification paths from
	// another origin (spec §21: CSRF). Without them only same-origin posts
	// and requests that are not a browser's (no Sec-Fetch-Site, no Origin)
	// pass: a page elsewhere cannot make a visitor's browser spend an
	// exchange code (logging it into someone's preview) or a claim.
	TrustedOrigins []string
	// Preview makes this the preview origin's handler (spec §16): no
	// provider endpoints; exchange, uniform and claim page paths, the
	// solver, read-only, hardened cookies.
	Preview bool

	Store  Store
	Limits *RateLimits
	// Zone namespaces the rate-limit keys (default the provider's name);
	// instances of one provider share a zone.
	Zone string

	// ProofExempt returns the agent (its Web Bot Auth origin) when this
	// creation may skip the proof of work, "" otherwise; nil exempts
	// nobody. It is asked about creations only, never about a claim.
	// Exempt creations are still rate limited per client and counted
	// toward the velocities and the circuit breaker.
	ProofExempt func(*http.Request) string

	// ClientIP returns the client's address (Caddy's client_ip, which
	// honours trusted_proxies); default the peer's.
	ClientIP func(*http.Request) string
	// TrustedProxy reports whether r's peer is a proxy the operator
	// trusts (Caddy's trusted_proxies): its X-Forwarded-Proto then
	// chooses the scheme of discovery's endpoints, so a site behind a
	// TLS-terminating proxy advertises https. nil trusts no peer; a
	// client's own header never counts.
	TrustedProxy func(*http.Request) bool
	// OriginalURL returns the URL the client sent when the site rewrote
	// it before this handler (Caddy keeps it in the request's context).
	OriginalURL func(*http.Request) *url.URL
	// RequestID returns the request's id for logs.
	RequestID func(*http.Request) string
	// Now and Sleep are the clock (tests replace them).
	Now   func() time.Time
	Sleep func(context.Context, time.Duration)

	Logger   *zap.Logger
	Observer Observer
}

// Defaults of Config.
const (
	DefaultChallengeTTL = 5 * time.Minute
	DefaultBodyLimit    = 16 << 10
	DefaultSandboxTTL   = 48 * time.Hour
)

// DefaultLockout is the lockout of claim verification when none is set.
var DefaultLockout = Lockout{After: 5, Base: time.Minute, Max: time.Hour, Reset: 24 * time.Hour}

// route kinds, in the order a request is matched against them.
type routeKind uint8

const (
	routeDiscovery routeKind = iota
	routeSolver
	routeClaimChallenge
	routeChallenge
	routeCreate
	routeVerify
	routeClaim
	routeExchange
	routeClaimPage
	routeUniform
	routeKinds
)

var routeNames = [routeKinds]string{"discovery", "solver", "claim_challenge", "challenge", "create", "verify", "claim", "exchange", "claim_page", "uniform"}

type route struct {
	kind    routeKind
	pattern *pathguard.Pattern
}

// Handler is the Agent Handoff edge for one provider site.
type Handler struct {
	routes       []route
	difficulty   Difficulty
	challengeTTL time.Duration
	lockout      Lockout
	bodyLimit    int64
	fail         Failure
	exchangeGET  string
	exchangePage []byte
	crossOrigin  *http.CrossOriginProtection
	store        Store
	limits       *RateLimits
	keyPrefix    string
	proofExempt  func(*http.Request) string

	clientIPFunc func(*http.Request) string
	trustedProxy func(*http.Request) bool
	originalURL  func(*http.Request) *url.URL
	requestID    func(*http.Request) string
	now          func() time.Time
	sleep        func(context.Context, time.Duration)
	logger       *zap.Logger
	observer     Observer

	discovery *discovery
	paths     Paths // resolved
	preview   bool
}

// New validates cfg and builds a Handler.
func New(cfg Config) (*Handler, error) {
	h := &Handler{
		difficulty:   cfg.Difficulty,
		challengeTTL: cfg.ChallengeTTL,
		lockout:      cfg.Lockout,
		bodyLimit:    cfg.BodyLimit,
		fail:         cfg.Failure,
		exchangeGET:  cfg.ExchangeGET,
		exchangePage: cfg.ExchangePageHTML,
		store:        cfg.Store,
		limits:       cfg.Limits,
		proofExempt:  cfg.ProofExempt,
		clientIPFunc: cfg.ClientIP,
		trustedProxy: cfg.TrustedProxy,
		originalURL:  cfg.OriginalURL,
		requestID:    cfg.RequestID,
		now:          cfg.Now,
		sleep:        cfg.Sleep,
		logger:       cfg.Logger,
		observer:     cfg.Observer,
		preview:      cfg.Preview,
	}
	if h.store == nil {
		return nil, errors.New("no store")
	}
	if h.limits != nil && h.limits.Store == nil {
		h.limits = nil
	}
	if h.challengeTTL <= 0 {
		h.challengeTTL = DefaultChallengeTTL
	}
	if h.challengeTTL > 5*time.Minute {
		return nil, fmt.Errorf("challenge_ttl %s: the spec allows at most 5 minutes (§29)", h.challengeTTL)
	}
	if h.bodyLimit <= 0 {
		h.bodyLimit = DefaultBodyLimit
	}
	if err := h.difficulty.Validate(); err != nil {
		return nil, fmt.Errorf("difficulty: %v", err)
	}
	l := &h.lockout
	if l.After == 0 {
		l.After = DefaultLockout.After
	}
	if l.Base == 0 {
		l.Base = DefaultLockout.Base
	}
	if l.Max == 0 {
		l.Max = max(DefaultLockout.Max, l.Base)
	}
	if l.Reset == 0 {
		l.Reset = DefaultLockout.Reset
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if err := h.fail.normalize(); err != nil {
		return nil, err
	}
	switch h.exchangeGET {
	case "":
		h.exchangeGET = ExchangePage
	case ExchangePage, ExchangeRefuse:
	default:
		return nil, fmt.Errorf("exchange GET policy %q: want %s or %s", h.exchangeGET, ExchangePage, ExchangeRefuse)
	}
	if len(h.exchangePage) == 0 {
		h.exchangePage = []byte(DefaultExchangePage)
	}
	h.crossOrigin = http.NewCrossOriginProtection()
	for _, o := range cfg.TrustedOrigins {
		if err := h.crossOrigin.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("trusted origin %q: %v (want scheme://host[:port], e.g. https://app.example.com)", o, err)
		}
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.sleep == nil {
		h.sleep = sleepCtx
	}
	if h.logger == nil {
		h.logger = zap.NewNop()
	}
	if h.observer == nil {
		h.observer = NopObserver{}
	}
	zone := cfg.Zone
	if zone == "" {
		zone = cfg.Provider.Name
	}
	if zone == "" && h.preview {
		zone = "preview"
	}
	h.keyPrefix = "handoff:" + zone + ":"
	paths := cfg.Paths
	if h.preview {
		// The preview origin has none of the provider's endpoints.
		paths.Challenge, paths.Create, paths.Claim, paths.Verify, paths.ClaimChallenge = Off, Off, Off, Off, Off
	}
	if paths.Verify == Off {
		// Claim challenges are spent only at verify: with it off, none
		// is issued (claim start answers get no pow_challenge either).
		switch paths.ClaimChallenge {
		case "":
			paths.ClaimChallenge = Off
		case Off:
		default:
			return nil, fmt.Errorf("claim_challenge %s: claim challenges can be spent only at verify, which is off; turn verify on or write claim_challenge off", paths.ClaimChallenge)
		}
	}
	if err := h.compileRoutes(paths, !h.preview); err != nil {
		return nil, err
	}
	if h.preview {
		return h, nil
	}
	var err error
	if h.discovery, err = newDiscovery(cfg.Provider, h); err != nil {
		return nil, err
	}
	return h, nil
}

// Paths are the endpoints this handler serves, defaults applied: "" for
// one turned off, nil lists for lists turned off. Discovery
// (DiscoveryPath) is served too unless the handler is a preview's.
func (h *Handler) Paths() Paths { return h.paths }

func (h *Handler) compileRoutes(p Paths, withDiscovery bool) error {
	one := func(v, def string) []string {
		switch v {
		case "":
			return []string{def}
		case Off:
			return nil
		}
		return []string{v}
	}
	list := func(v, def []string) []string {
		if v == nil {
			return def
		}
		if len(v) == 1 && v[0] == Off {
			return nil
		}
		return v
	}
	var discovery []string
	if withDiscovery {
		discovery = []string{DiscoveryPath}
	}
	byKind := [routeKinds][]string{
		routeDiscovery:      discovery,
		routeSolver:         one(p.Solver, DefaultSolverPath),
		routeClaimChallenge: one(p.ClaimChallenge, DefaultClaimChallengePath),
		routeChallenge:      one(p.Challenge, DefaultChallengePath),
		routeCreate:         one(p.Create, DefaultCreatePath),
		routeVerify:         one(p.Verify, DefaultVerifyPath),
		routeClaim:          one(p.Claim, DefaultClaimPath),
		routeExchange:       list(p.Exchange, DefaultExchangePaths),
		routeClaimPage:      list(p.ClaimPages, nil),
		routeUniform:        list(p.Uniform, DefaultUniformPaths),
	}
	seen := map[string]string{}
	for kind, patterns := range byKind {
		for _, s := range patterns {
			// A path may be uniform and something else; nothing else may
			// share a path.
			if other, dup := seen[s]; dup && kind != int(routeUniform) {
				return fmt.Errorf("%s %s: the path is already %s's; choose another", routeNames[kind], s, other)
			}
			if kind != int(routeUniform) {
				seen[s] = routeNames[kind]
			}
			p, err := pathguard.Compile(s)
			if err != nil {
				return fmt.Errorf("%s: %v", routeNames[kind], err)
			}
			h.routes = append(h.routes, route{kind: routeKind(kind), pattern: p})
		}
	}
	first := func(v []string) string {
		if len(v) == 0 {
			return ""
		}
		return v[0]
	}
	h.paths = Paths{
		Challenge: first(byKind[routeChallenge]), Create: first(byKind[routeCreate]),
		Claim: first(byKind[routeClaim]), Verify: first(byKind[routeVerify]),
		ClaimChallenge: first(byKind[routeClaimChallenge]), Solver: first(byKind[routeSolver]),
		Uniform: byKind[routeUniform], Exchange: byKind[routeExchange], ClaimPages: byKind[routeClaimPage],
	}
	return nil
}

// match classifies a request: the first route whose pattern it spells
// exactly, whether it is also on a uniform path, and whether any pattern
// matched only a variant spelling (then it is refused, never forwarded).
// When the site rewrote the path, the path the client sent is classified
// too: a variant of either is refused, an exact match of either is
// handled, so neither a rewrite nor a spelling walks around the edge.
func (h *Handler) match(r *http.Request) (kind routeKind, matched, uniform, variant bool) {
	kind, uniform, variant = h.classify(r.URL)
	if h.originalURL != nil && !variant {
		if o := h.originalURL(r); o != nil && (o.Path != r.URL.Path || o.RawPath != r.URL.RawPath) {
			k, u, v := h.classify(o)
			kind, uniform, variant = min(kind, k), uniform || u, v
		}
	}
	return kind, kind != routeKinds, uniform, variant
}

// classify matches u against the routes in priority order. The first
// exact match decides the route; the patterns after it are asked only
// whether they are uniform paths (an exact spelling of a higher-priority
// route is a plain path, which can be a variant of a lower one only by
// case or a ".ext" suffix, and it is handled by the higher route anyway).
// This keeps pathguard's full cleaning off the common path.
func (h *Handler) classify(u *url.URL) (kind routeKind, uniform, variant bool) {
	kind = routeKinds
	for i := range h.routes {
		rt := &h.routes[i]
		if kind != routeKinds && rt.kind != routeUniform {
			continue
		}
		switch rt.pattern.Match(u) {
		case pathguard.Variant:
			return rt.kind, true, true
		case pathguard.Exact:
			if rt.kind == routeUniform {
				uniform = true
			}
			kind = min(kind, rt.kind)
		}
	}
	return kind, uniform, false
}

// ServeHTTP implements the edge: requests on no configured path pass
// untouched (but for the admission header, which only the edge may set).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next Next) error {
	httpx.DeleteEdgeFields(r.Header, AdmissionHeader)
	if h.preview {
		return h.servePreview(w, r, next)
	}
	kind, matched, uniform, variant := h.match(r)
	if !matched {
		return next.ServeHTTP(w, r)
	}
	start := h.now()
	if variant {
		h.log(r, "path.variant_refused", zapRoute(kind))
		return h.failure(w, r, start)
	}
	switch kind {
	case routeDiscovery:
		return h.discovery.serve(w, r)
	case routeSolver:
		return serveSolver(w, r)
	case routeClaimChallenge:
		return h.serveChallenge(w, r, PurposeClaim)
	case routeChallenge:
		return h.serveChallenge(w, r, PurposeCreate)
	case routeCreate:
		if r.Method != http.MethodPost {
			return next.ServeHTTP(w, r)
		}
		return h.serveCreate(w, r, next)
	case routeVerify:
		return h.serveVerify(w, r, next, start)
	case routeClaim:
		return h.serveClaimStart(w, r, next, start, uniform)
	case routeExchange:
		return h.serveExchange(w, r, next, start)
	case routeClaimPage:
		setNoFrames(w.Header())
		if uniform {
			return h.serveUniform(w, r, next, start)
		}
		// Staged, so that a backend's own X-Frame-Options cannot sit
		// beside DENY (browsers ignore conflicting values).
		iw := newInterceptWriter(w)
		iw.passFailures = true
		return next.ServeHTTP(iw, r)
	}
	return h.serveUniform(w, r, next, start)
}

func zapRoute(k routeKind) zap.Field { return zap.String("route", routeNames[k]) }

// serveUniform forwards a request on a uniform path after its rate limit,
// and replaces any failure with the uniform one.
func (h *Handler) serveUniform(w http.ResponseWriter, r *http.Request, next Next, start time.Time) error {
	if refused, err := h.limitUniform(w, r, start); refused || err != nil {
		return err
	}
	iw := newInterceptWriter(w)
	err := next.ServeHTTP(iw, r)
	return h.finishUniform(w, r, iw, err, start)
}

// limitUniform applies the uniform tier; it answers the refusal itself
// (429 after the floor) and reports whether it did.
func (h *Handler) limitUniform(w http.ResponseWriter, r *http.Request, start time.Time) (bool, error) {
	ip := h.clientIP(r)
	res, err := h.check(r.Context(), tierUniform, ip, clientKey(ip), "")
	if err != nil {
		h.storeError(r, err)
		return true, h.failure(w, r, start)
	}
	if !res.allowed {
		h.observer.RateLimited(string(res.tier))
		h.log(r, "uniform.rate_limited")
		h.waitFloor(r.Context(), start)
		writeError(w, http.StatusTooManyRequests, "rate_limited", "Too many requests; retry later.", res.retryAfter)
		return true, nil
	}
	return false, nil
}

// finishUniform answers after the backend: its success went out already;
// a failure, or an error before anything was written, becomes the
// uniform failure. The error is logged here, without the request's path
// or query (an exchange code may be in them), and not returned: Caddy
// would log it with the URI.
func (h *Handler) finishUniform(w http.ResponseWriter, r *http.Request, iw *interceptWriter, err error, start time.Time) error {
	if iw.succeeded() {
		if err != nil {
			h.log(r, "backend.error_after_success", zap.String("error", errorClass(err)))
		}
		return nil
	}
	if err != nil {
		h.log(r, "backend.error", zap.String("error", errorClass(err)))
	}
	return h.failure(w, r, start)
}

// errorClass names an error without its text: proxy errors quote the URL.
func errorClass(err error) string {
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return fmt.Sprintf("%T", err)
}

// setNoFrames sets the anti-framing headers of claim and preview answers
// (spec §21). A policy set earlier (by the operator or the backend) stays: every
// Content-Security-Policy field is enforced. Twice on one answer (a preview
// origin's exchange) it is added once.
func setNoFrames(h http.Header) {
	h["X-Frame-Options"] = []string{"DENY"}
	csp := h["Content-Security-Policy"]
	for _, v := range csp {
		if v == noFramesPolicy {
			return
		}
	}
	// A value set earlier may be shared: the full slice expression makes
	// append copy rather than write into its array.
	h["Content-Security-Policy"] = append(csp[:len(csp):len(csp)], noFramesPolicy)
}

const noFramesPolicy = "frame-ancestors 'none'"

// log writes one line at info: the action, the request id and the
// client's network, never a path, query, code or token.
func (h *Handler) log(r *http.Request, action string, fields ...zap.Field) {
	h.logAt(zap.InfoLevel, r, action, fields...)
}

func (h *Handler) debug(r *http.Request, action string, fields ...zap.Field) {
	h.logAt(zap.DebugLevel, r, action, fields...)
}

func (h *Handler) logAt(level zapcore.Level, r *http.Request, action string, fields ...zap.Field) {
	ce := h.logger.Check(level, "agent handoff")
	if ce == nil {
		return
	}
	id := ""
	if h.requestID != nil {
		id = h.requestID(r)
	}
	ce.Write(append([]zap.Field{
		zap.String("action", action),
		zap.String("request_id", id),
		zap.String("network", Network(h.clientIP(r))),
	}, fields...)...)
}
