// Package gateway is the converse gateway (AHP §5.2, §5.3, §6, §8–§11): it
// enforces the protocol before a capability call reaches the site's
// concierge, and watches the concierge's answer on its way back.
//
// Every door into a capability runs through one typed entry point,
// Converse: a converse request in; a refusal (the spec's error, for the
// door to render in its own format) or the concierge's answer out. The
// direct HTTP endpoint (ServeHTTP) and the MCP and OpenAPI front doors
// call it alike, so the same validation, credentials, limits, sessions
// and budgets hold whichever door an agent uses.
//
// What a call is charged, whichever door: exactly one client tier chosen
// by capability and credentials (action for MODE3 action/async
// capabilities, authenticated when the credentials were verified,
// unauthenticated otherwise), plus the agent's window and the session's
// turn. Never the static tier. A call refused before it is admitted (bad
// JSON, a wrong key, a path variant) still counts against the client's
// tier, so floods of bad calls are limited; the shared windows (the
// agent's, the session's) count only calls that were admitted.
//
// The package knows no Caddy: the site's route to its concierge is a Next.
package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/auth"
	"github.com/caddy-ahp/caddy-ahp/converse"
	"github.com/caddy-ahp/caddy-ahp/internal/deadline"
	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/pathguard"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

// Next is the rest of the site's handler chain: its route to the
// concierge. caddyhttp.Handler satisfies it.
type Next interface {
	ServeHTTP(http.ResponseWriter, *http.Request) error
}

// Config is what the gateway checks, built once at load.
type Config struct {
	Manifest *manifest.Manifest
	Rules    *converse.Rules
	// Keys verify credentials; nil means credentials pass to the
	// concierge unverified and calls count as unauthenticated.
	Keys *auth.Keys
	// Limits is the site's rate-limit policy; nil turns limits off.
	Limits *ratelimit.Policy
	// BodyLimit caps the request body (spec §6.5: 8 KB).
	BodyLimit int64
	// MaxTurns and Idle are the session constraints of spec §6.5.
	MaxTurns int
	Idle     time.Duration
	// EchoSignals adds the manifest's content_signals to success answers
	// that lack them (spec §7).
	EchoSignals bool
	// CORS answers preflights and lets browsers read answers.
	CORS bool
	// ResponseLimit caps the concierge JSON the gateway reads for token
	// accounting and signals; larger answers pass through unread.
	ResponseLimit int64
	// Timeout bounds the concierge's answer (0: DefaultTimeout).
	Timeout time.Duration
	// ErrorStatus maps an error from next to an HTTP status (Caddy's
	// handler errors); 0 means unknown.
	ErrorStatus func(error) int
	// Answerer, when set, answers the capability calls it takes itself
	// (the built-in concierge) after admission, instead of next.
	Answerer Answerer
	// VerifiedAgent returns the identity a request's agent proved (a Web
	// Bot Auth key directory's origin), "" for none. A verified agent is
	// charged the verified tier and its own per_agent window, whatever
	// name it types in requesting_agent.
	VerifiedAgent func(*http.Request) string
	Logger        *zap.Logger
	Observer      Observer
}

// Answerer answers capability calls in place of the site's concierge.
type Answerer interface {
	// Answers reports whether it answers calls to this capability.
	Answers(capability string) bool
	// Answer writes the answer to an admitted call to w and returns the
	// session id and the tokens to account (spec §6.5, §11.4).
	Answer(ctx context.Context, w http.ResponseWriter, req *converse.Request) (sessionID string, tokens int64, err error)
}

// Observer is told what the gateway did, for metrics.
type Observer interface {
	ConverseAllowed()
	// ConverseRejected gives the AHP error code of a refused call.
	ConverseRejected(code string)
}

type nopObserver struct{}

func (nopObserver) ConverseAllowed()        {}
func (nopObserver) ConverseRejected(string) {}

// Defaults of spec §6.5.
const (
	DefaultBodyLimit     = 8 << 10
	DefaultMaxTurns      = 10
	DefaultIdle          = 10 * time.Minute
	DefaultResponseLimit = 1 << 20
	// DefaultTimeout leaves room for LLM-backed concierges, which can take
	// tens of seconds, while still bounding a hung one.
	DefaultTimeout = 60 * time.Second
)

// Gateway guards one site's converse endpoint.
type Gateway struct {
	rules         *converse.Rules
	keys          *auth.Keys
	policy        auth.Policy
	limits        *ratelimit.Policy
	bodyLimit     int64
	maxTurns      int
	idle          time.Duration
	cors          bool
	own           uint8 // the ownHeaders this gateway sets, by bit
	responseLimit int64
	timeout       time.Duration
	deadlines     *deadline.Watch // the concierge calls under timeout
	errorStatus   func(error) int
	answerer      Answerer
	verifiedAgent func(*http.Request) string
	logger        *zap.Logger
	obs           Observer

	conversePath string
	statusPrefix string
	converse     *pathguard.Pattern
	status       *pathguard.Pattern
	statusRoot   *pathguard.Pattern // {converse}/status, where no call or poll lives
	screen       *pathguard.Screen  // the three at once, for the pages that are none of them
	scheme       string
	signalsJSON  []byte // `"content_signals":{...}`, nil when not echoed
}

// New builds the gateway of a manifest with a converse endpoint.
func New(cfg Config) (*Gateway, error) {
	m := cfg.Manifest
	if m == nil || m.ConversePath() == "" {
		return nil, errors.New("ahp: the gateway needs a manifest with endpoints.converse")
	}
	if cfg.Rules == nil {
		return nil, errors.New("ahp: gateway without request rules")
	}
	g := &Gateway{
		rules:         cfg.Rules,
		keys:          cfg.Keys,
		limits:        cfg.Limits,
		bodyLimit:     cfg.BodyLimit,
		maxTurns:      cfg.MaxTurns,
		idle:          cfg.Idle,
		cors:          cfg.CORS,
		responseLimit: cfg.ResponseLimit,
		timeout:       cfg.Timeout,
		errorStatus:   cfg.ErrorStatus,
		answerer:      cfg.Answerer,
		verifiedAgent: cfg.VerifiedAgent,
		logger:        cfg.Logger,
		obs:           cfg.Observer,
		conversePath:  m.ConversePath(),
		scheme:        m.Authentication,
	}
	g.statusPrefix = m.StatusPrefix()
	g.own = ownHeadersOf(g.limits, g.cors)
	var err error
	if g.converse, err = pathguard.Compile(g.conversePath); err != nil {
		return nil, fmt.Errorf("ahp converse: %v", err)
	}
	if g.status, err = pathguard.Compile(g.statusPrefix + "*"); err != nil {
		return nil, fmt.Errorf("ahp converse: %v", err)
	}
	if g.statusRoot, err = pathguard.Compile(strings.TrimSuffix(g.statusPrefix, "/")); err != nil {
		return nil, fmt.Errorf("ahp converse: %v", err)
	}
	g.screen = pathguard.NewScreen(g.converse, g.status, g.statusRoot)
	if g.scheme == "" {
		g.scheme = manifest.AuthNone
	}
	g.policy = auth.Policy{Scheme: g.scheme, Keys: cfg.Keys}
	if g.bodyLimit <= 0 {
		g.bodyLimit = DefaultBodyLimit
	}
	if g.maxTurns <= 0 {
		g.maxTurns = DefaultMaxTurns
	}
	if g.idle <= 0 {
		g.idle = DefaultIdle
	}
	if g.responseLimit <= 0 {
		g.responseLimit = DefaultResponseLimit
	}
	if g.timeout <= 0 {
		g.timeout = DefaultTimeout
	}
	g.deadlines = deadline.NewWatch(g.timeout)
	if g.logger == nil {
		g.logger = zap.NewNop()
	}
	if g.obs == nil {
		g.obs = nopObserver{}
	}
	if cfg.EchoSignals && m.ContentSignals != nil {
		b, err := json.Marshal(m.ContentSignals)
		if err != nil {
			return nil, err
		}
		g.signalsJSON = append([]byte(`"content_signals":`), b...)
	}
	return g, nil
}

// ConversePath is endpoints.converse.
func (g *Gateway) ConversePath() string { return g.conversePath }

// Route is which of the gateway's paths a request is for.
type Route uint8

const (
	// NotGateway: another path; the gateway has nothing to say.
	NotGateway Route = iota
	// ConverseRoute: exactly endpoints.converse.
	ConverseRoute
	// StatusRoute: exactly {converse}/status/{id} (spec §9).
	StatusRoute
	// VariantRoute: a spelling of either that only cleaning makes match
	// (case, //, /./, %2F, ;params …). It is refused, never forwarded:
	// whatever route the site wrote to its concierge, no spelling walks
	// around the gateway.
	VariantRoute
)

// Route classifies a request by its path as sent and, when an earlier
// handler rewrote it, by its original path too: a variant in either is
// refused, an exact path in either is guarded.
func (g *Gateway) Route(u, original *url.URL) Route {
	route := g.route(u)
	if original != nil && original != u && (original.Path != u.Path || original.RawPath != u.RawPath) {
		if o := g.route(original); o == VariantRoute || (route == NotGateway && o != NotGateway) {
			route = o
		}
	}
	return route
}

func (g *Gateway) route(u *url.URL) Route {
	if !g.screen.MayMatch(u.Path) {
		return NotGateway // every page of the site that is not the gateway's
	}
	switch g.converse.Match(u) {
	case pathguard.Exact:
		return ConverseRoute
	case pathguard.Variant:
		return VariantRoute
	}
	switch g.status.Match(u) {
	case pathguard.Exact:
		return StatusRoute
	case pathguard.Variant:
		return VariantRoute
	}
	// The status path without an id, in any spelling ("/status/" too):
	// nothing lives there, and the site's route for the status path
	// (Caddy's `path {converse}/status/*` matches "{converse}/status/")
	// would hand it to the concierge unchecked.
	if g.statusRoot.Match(u) != pathguard.None {
		return VariantRoute
	}
	return NotGateway
}

// ServeHTTP serves a request Route placed on one of the gateway's paths.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request, route Route, next Next) error {
	switch route {
	case ConverseRoute:
		return g.serveConverse(w, r, next)
	case StatusRoute:
		return g.serveStatus(w, r, next)
	case VariantRoute:
		g.refuse(w, r, ahperror.New(http.StatusBadRequest, ahperror.InvalidRequest,
			"this spelling of the path is refused; send the request to exactly "+g.conversePath+
				" (or "+g.statusPrefix+"{session_id}) as the manifest gives it"))
		return nil
	}
	return next.ServeHTTP(w, r)
}

// refuse counts a call refused before admission against the client's
// tier, then sends the refusal (or the 429 the count itself produced).
func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, e *ahperror.Error) {
	ahperror.Write(w, g.Refused(w.Header(), r, e))
}

// rejected counts a refusal by its code; 429s are counted by the rate
// limiter (by scope), not twice.
func (g *Gateway) rejected(e *ahperror.Error) {
	if e.Code != ahperror.RateLimited {
		g.obs.ConverseRejected(e.Code)
	}
}

// Refused charges a call refused before it became a converse request (by
// the gateway, or by a door: arguments that fail the capability's schema,
// a body that is not JSON …) to the client's unauthenticated tier, and
// counts it by its code in the rejected metric, so a door's refusals show
// as the direct path's do. It returns what to send: e, or the 429 (or
// 503) when the client is over its limit; the rate-limit headers are set
// on h either way.
func (g *Gateway) Refused(h http.Header, r *http.Request, e *ahperror.Error) *ahperror.Error {
	a := getAdmission()
	limited := g.admit(h, r, a, g.clientTier(false, false), false, auth.Result{})
	a.release()
	if limited != nil {
		e = limited
	}
	g.rejected(e)
	return e
}

// What the gateway's paths answer; OPTIONS only where cors answers
// preflights (without it an OPTIONS is refused like any other method).
const (
	allowConverse     = "POST"
	allowConverseCORS = "POST, OPTIONS"
	allowStatus       = "GET, HEAD"
	allowStatusCORS   = "GET, HEAD, OPTIONS"
)

var corsExposed = "Link, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, X-RateLimit-Window, RateLimit, RateLimit-Policy"

// setCORS lets browser-based agents read answers (the `cors` option).
func setCORS(h http.Header) {
	v := make([]string, 2)
	v[0], v[1] = "*", corsExposed
	h["Access-Control-Allow-Origin"], h["Access-Control-Expose-Headers"] = v[0:1:1], v[1:2:2]
}

// preflight answers a CORS preflight for a path that takes methods and
// reads headers; the four values come from one allocation, this
// response's own.
func preflight(w http.ResponseWriter, hdr http.Header, methods, headers string) {
	v := make([]string, 4)
	v[0], v[1], v[2], v[3] = methods, headers, "86400", methods
	hdr["Access-Control-Allow-Methods"], hdr["Access-Control-Allow-Headers"] = v[0:1:1], v[1:2:2]
	hdr["Access-Control-Max-Age"], hdr["Allow"] = v[2:3:3], v[3:4:4]
	w.WriteHeader(http.StatusNoContent)
}

// serveConverse is the direct AHP endpoint: POST {converse}.
func (g *Gateway) serveConverse(w http.ResponseWriter, r *http.Request, next Next) error {
	hdr := w.Header()
	if g.cors {
		setCORS(hdr)
		if r.Method == http.MethodOptions {
			preflight(w, hdr, allowConverseCORS, "Content-Type, Authorization, X-AHP-Key")
			return nil
		}
	}
	if r.Method != http.MethodPost {
		allow := allowConverse
		if g.cors {
			allow = allowConverseCORS
		}
		hdr["Allow"] = []string{allow}
		g.refuse(w, r, ahperror.New(http.StatusMethodNotAllowed, ahperror.InvalidRequest,
			"method "+r.Method+" is not allowed on "+g.conversePath+"; send the AHP request with POST"))
		return nil
	}
	// A cross-site form or fetch without preflight can only send
	// text/plain, form or multipart bodies with the user's cookies:
	// requiring JSON keeps the concierge out of reach of such "simple
	// requests" (spec §6.1: the body is application/json).
	ctypes := r.Header["Content-Type"]
	if len(ctypes) > 1 {
		// A singleton field (RFC 9110 §8.3): the gateway would check one
		// and a concierge might read the other.
		g.refuse(w, r, ahperror.New(http.StatusBadRequest, ahperror.InvalidRequest,
			"the request has more than one Content-Type; send one: application/json"))
		return nil
	}
	ctype := ""
	if len(ctypes) == 1 {
		ctype = ctypes[0]
	}
	if !httpx.IsJSON(ctype) {
		g.refuse(w, r, ahperror.New(http.StatusUnsupportedMediaType, ahperror.InvalidRequest,
			"the request body must be JSON: send Content-Type: application/json"))
		return nil
	}
	if !utf8Charset(ctype) {
		g.refuse(w, r, ahperror.New(http.StatusUnsupportedMediaType, ahperror.InvalidRequest,
			"the request body must be UTF-8 JSON (RFC 8259): send Content-Type: application/json without a charset, or with charset=utf-8"))
		return nil
	}

	a := getAdmission()
	defer a.release()
	// Never read more than the cap (plus one byte to notice it is
	// exceeded), and refuse early when Content-Length says so.
	if r.ContentLength > g.bodyLimit {
		return g.tooLarge(w, r)
	}
	// Room for the body and the read that says it ended: a pooled buffer
	// grows to the calls it serves instead of starting at the cap, so the
	// pool refilled after each GC allocates little.
	switch n := r.ContentLength; {
	case n >= 0 && cap(a.body) <= int(n):
		a.body = make([]byte, 0, n+1)
	case n < 0 && cap(a.body) == 0:
		a.body = make([]byte, 0, 1<<10) // chunked: grown as it is read
	}
	body, err := readCapped(r.Body, a.body, g.bodyLimit)
	a.body = body
	if errors.Is(err, errTooLarge) {
		return g.tooLarge(w, r)
	}
	// A smaller cap of the site's own (request_body max_size) ends the
	// read with MaxBytesError: the body is too large, not unreadable.
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		httpx.CloseAfter(w.Header(), r)
		g.refuse(w, r, ahperror.New(http.StatusRequestEntityTooLarge, ahperror.RequestTooLarge,
			"the request body exceeds "+strconv.FormatInt(mbe.Limit, 10)+" bytes"))
		return nil
	}
	if err != nil {
		g.logger.Debug("reading converse request body", zap.Error(err))
		g.refuse(w, r, ahperror.New(http.StatusBadRequest, ahperror.InvalidRequest, "the request body could not be read"))
		return nil
	}
	refusal, err := g.converseWith(w, r, a, next)
	if refusal != nil {
		ahperror.Write(w, refusal)
	}
	return err
}

// identityCoding reports whether a request's Content-Encoding values name
// no coding but identity.
func identityCoding(values []string) bool {
	for _, v := range values {
		for v != "" {
			var c string
			c, v, _ = strings.Cut(v, ",")
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return false
			}
		}
	}
	return true
}

// utf8Charset reports whether a Content-Type names no charset or UTF-8
// (FuzzBodyLabels holds it to mime.ParseMediaType).
// The gateway checks the body as UTF-8 (RFC 8259 §8.1) and forwards the
// agent's Content-Type: a concierge that decodes by another charset
// (Spring's Jackson converter does) reads other text than was checked; in
// Shift_JIS the "\\" after an "Á" (C3 81) is half of a character, so an
// escaped backslash becomes an escape ("\\u000a": a line feed).
func utf8Charset(ctype string) bool {
	_, params, ok := strings.Cut(ctype, ";")
	for ok {
		var p string
		p, params, ok = strings.Cut(params, ";")
		name, v, _ := strings.Cut(p, "=")
		name = strings.TrimSpace(name)
		if len(name) > len("charset") && strings.EqualFold(name[:len("charset")+1], "charset*") {
			// RFC 2231's charset*=UTF-8''shift_jis or charset*0=…, which
			// mime.ParseMediaType (and a concierge using it) reads as the
			// charset: no agent needs them, so they are refused unread.
			return false
		}
		if !strings.EqualFold(name, "charset") {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if !strings.EqualFold(v, "utf-8") && !strings.EqualFold(v, "utf8") {
			return false
		}
	}
	return true
}

func (g *Gateway) tooLarge(w http.ResponseWriter, r *http.Request) error {
	// The rest of the body is not read, so keep-alive cannot continue.
	httpx.CloseAfter(w.Header(), r)
	g.refuse(w, r, ahperror.New(http.StatusRequestEntityTooLarge, ahperror.RequestTooLarge,
		"the request body exceeds "+strconv.FormatInt(g.bodyLimit, 10)+" bytes (spec §6.5)"))
	return nil
}

// Converse is the gateway's entry point for every door. body is the AHP
// converse request; r is the request to forward (for a front door, an
// internal POST to the converse path built from the door's request, so
// the client, its address and its headers are the door's). When the call
// is refused, Converse returns the refusal for the door to render (the
// rate-limit headers and any Retry-After are already on w.Header()) and
// writes nothing. When it is admitted, the concierge's answer (or, in
// place of a non-JSON one, the spec's 503 or 500) goes to w, and the error
// is next's.
func (g *Gateway) Converse(w http.ResponseWriter, r *http.Request, body []byte, next Next) (*ahperror.Error, error) {
	a := getAdmission()
	defer a.release()
	if int64(len(body)) > g.bodyLimit {
		// Only doors call Converse: the agent sent arguments, not this
		// body, and a query within its schema's 4096 characters can still
		// make more than the cap's bytes, so say what to shorten.
		e := ahperror.New(http.StatusRequestEntityTooLarge, ahperror.RequestTooLarge,
			"the call is too large: its arguments make an AHP request of "+strconv.Itoa(len(body))+
				" bytes and this site accepts at most "+strconv.FormatInt(g.bodyLimit, 10)+
				" (spec §6.5); shorten the query (outside ASCII, a character takes 2 to 4 bytes)")
		return g.Refused(w.Header(), r, e), nil
	}
	a.body = append(a.body[:0], body...)
	return g.converseWith(w, r, a, next)
}

// converseWith admits the call in a.body and forwards it.
func (g *Gateway) converseWith(w http.ResponseWriter, r *http.Request, a *admission, next Next) (*ahperror.Error, error) {
	hdr := w.Header()
	if e := g.rules.Parse(a.body, &a.req); e != nil {
		// The body is checked as it came: a coded one (gzip, br) fails
		// as JSON it is not, and the agent is told what to fix (RFC 9110
		// §12.5.3: a 415 names the codings a request may use). Looked up
		// only here: a valid body's label is dropped before forwarding;
		// JSON refused for its fields keeps that refusal.
		if ce := r.Header["Content-Encoding"]; len(ce) > 0 && !identityCoding(ce) && !validJSON(a.body) {
			hdr["Accept-Encoding"] = []string{"identity"}
			e = ahperror.New(http.StatusUnsupportedMediaType, ahperror.InvalidRequest,
				"the request body could not be read as JSON with its Content-Encoding: send it uncompressed, without Content-Encoding")
		}
		return g.refusal(hdr, r, a, e), nil
	}
	req := &a.req

	// Credentials: the scheme's header, or the body's `auth` field that
	// bridges and some agents send (Appendix D.4, §14.3).
	cred, e := g.policy.Check(r.Header, req.Auth, req.Declared.NeedsAuth() || req.Declared.AuthRequired)
	if e != nil {
		if e.Status == http.StatusUnauthorized {
			hdr["Www-Authenticate"] = []string{auth.Challenge(g.scheme)}
		}
		return g.refusal(hdr, r, a, e), nil
	}
	// What of the callback needs no lookup is checked before admission, so
	// a callback refused for its form or its address spends nothing shared.
	if req.Context.CallbackURL != "" {
		if e := g.rules.PrecheckCallback(req.Context.CallbackURL); e != nil {
			return g.refusal(hdr, r, a, e), nil
		}
	}

	// One store round trip decides the client's tier, the agent's window
	// and the session's turn.
	agent := ""
	if g.verifiedAgent != nil {
		agent = g.verifiedAgent(r)
	}
	// A forwarded call's rate-limit fields wait in a.fields for the
	// concierge's answer (conciergeWriter.holdOwnHeaders says why).
	a.holdFields = true
	e = g.admitCall(hdr, r, a, req.Declared.NeedsAuth(), cred, agent)
	a.holdFields = false
	if e != nil {
		g.rejected(e)
		return e, nil
	}

	// The callback's addresses as checked: the concierge connects only to
	// those (or through an egress proxy), so a DNS answer that changes
	// between check and use cannot point it inside (DNS rebinding). The
	// lookup runs after admission (a client over its limit triggers none);
	// a host refused by its answer has spent the turn, as an admitted call
	// would have.
	// (Its other spellings, which PHP would read as this one, went at the
	// edge with the verified agent's: caddymodule's ServeHTTP.)
	builtIn := g.answerer != nil && g.answerer.Answers(req.Capability)
	dropForwarded(r.Header, !builtIn, !builtIn)
	if req.Context.CallbackURL != "" {
		addrs, e := g.rules.CheckCallback(r.Context(), req.Context.CallbackURL)
		if e != nil {
			a.writeFields(hdr)
			g.rejected(e)
			return e, nil
		}
		r.Header[converse.CallbackAddrsHeader] = []string{converse.FormatCallbackAddrs(addrs)}
	}

	if builtIn {
		a.writeFields(hdr)
		g.obs.ConverseAllowed()
		session, tokens, err := g.answerer.Answer(r.Context(), w, req)
		if g.limits != nil && session != "" && (tokens > 0 || req.SessionID == "") {
			g.limits.AddTokens(r.Context(), session, tokens, g.idle)
		}
		return nil, err
	}

	// Forward: the checked body (auth removed, max_tokens capped or set
	// to the ceiling), and only a verified credential (or, with no keys to
	// verify against, the one the agent sent) in the header the concierge
	// reads.
	fwd, edited := g.rules.ForwardBodyInto(a.edited, req, a.body)
	if edited {
		a.edited = fwd
	}
	a.refs.Add(1)
	a.fwd.a = a
	a.fwd.Reset(fwd)
	r.Body = &a.fwd
	r.ContentLength = int64(len(fwd)) // Content-Length went above
	r.TransferEncoding = nil
	g.policy.Forward(r.Header, cred)
	g.obs.ConverseAllowed()

	// The concierge's bound (internal/deadline: not context.WithTimeout,
	// the largest cost of this path that was not the protocol's work).
	ctx := g.deadlines.Start(r.Context())
	defer ctx.Stop()
	cw := &a.cw
	*cw = conciergeWriter{ResponseWriter: w, g: g, ctx: r.Context(), sessionID: req.SessionID}
	if a.hasFields {
		copy(cw.held[:], a.fields[:])
		cw.holding = true
	}
	cw.holdOwnHeaders(hdr, g.own&corsHeaders) // the rate-limit fields never went on hdr
	return nil, cw.finish(next.ServeHTTP(cw, r.WithContext(ctx)))
}

// refusal counts a refused call against the client's tier and returns
// what to send: e, or the 429 the count produced.
func (g *Gateway) refusal(h http.Header, r *http.Request, a *admission, e *ahperror.Error) *ahperror.Error {
	if limited := g.admit(h, r, a, g.clientTier(false, false), false, auth.Result{}); limited != nil {
		e = limited
	}
	g.rejected(e)
	return e
}

// clientTier selects the tier a call is charged to: action for MODE3
// action and async capabilities, authenticated for verified credentials,
// verified for a verified agent, unauthenticated otherwise.
func (g *Gateway) clientTier(action, verified bool) *ratelimit.Tier {
	return g.tier(action, verified, false)
}

func (g *Gateway) tier(action, keyVerified, agentVerified bool) *ratelimit.Tier {
	p := g.limits
	switch {
	case p == nil:
		return nil
	// Action and authenticated always have a limit unless turned off; off,
	// their calls get no request limit (nil), not another tier's.
	case action:
		return p.Action
	case keyVerified:
		return p.Authed
	case agentVerified && p.Verified != nil:
		return p.Verified
	}
	return p.Unauth
}

// serveStatus rate limits and proxies the async status path (spec §9).
func (g *Gateway) serveStatus(w http.ResponseWriter, r *http.Request, next Next) error {
	hdr := w.Header()
	if g.cors {
		setCORS(hdr)
		if r.Method == http.MethodOptions {
			preflight(w, hdr, allowStatusCORS, "Authorization, X-AHP-Key")
			return nil
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		allow := allowStatus
		if g.cors {
			allow = allowStatusCORS
		}
		hdr["Allow"] = []string{allow}
		g.refuse(w, r, ahperror.New(http.StatusMethodNotAllowed, ahperror.InvalidRequest,
			"method "+r.Method+" is not allowed on the status path; poll it with GET"))
		return nil
	}
	// A poll needs a credential whenever the site has a scheme (see
	// CheckPoll), so a job's result is never an anonymous read, at any
	// door (§4.4.3). With keys, nothing the gateway could not verify
	// reaches the concierge; which key may read which job is the
	// concierge's to decide.
	cred, e := g.policy.CheckPoll(r.Header)
	if e != nil {
		if e.Status == http.StatusUnauthorized {
			hdr["Www-Authenticate"] = []string{auth.Challenge(g.scheme)}
		}
		g.refuse(w, r, e)
		return nil
	}
	// The tier the caller's calls are charged to (a job's capability, and
	// so the action tier, is not known here).
	agentVerified := g.verifiedAgent != nil && g.verifiedAgent(r) != ""
	a := getAdmission()
	e = g.admit(hdr, r, a, g.tier(false, cred.Verified, agentVerified), false, auth.Result{})
	a.release()
	if e != nil {
		g.rejected(e)
		ahperror.Write(w, e)
		return nil
	}
	dropForwarded(r.Header, true, false)
	g.policy.Forward(r.Header, cred)
	r.Body, r.ContentLength = http.NoBody, 0 // a poll carries no body
	ctx := g.deadlines.Start(r.Context())
	defer ctx.Stop()
	cw := &conciergeWriter{ResponseWriter: w, g: g, ctx: r.Context(), statusPoll: true, head: r.Method == http.MethodHead}
	cw.holdOwnHeaders(hdr, g.own)
	if g.limits != nil && r.Method == http.MethodGet {
		// The job's session, whose result's tokens count (§9.1); a path
		// an earlier handler rewrote names none the gateway can trust. (A
		// HEAD answer has no body to read, and its headers stay as sent.)
		if id, ok := strings.CutPrefix(r.URL.Path, g.statusPrefix); ok && id != "" {
			cw.sessionID = id
		}
	}
	return cw.finish(next.ServeHTTP(cw, r.WithContext(ctx)))
}

// dropForwarded removes, in one pass over a request's fields, what the
// concierge must not get:
//   - what would make the call a tunnel: Caddy's reverse_proxy passes on
//     Upgrade (h2c, websocket) and then relays the concierge's 101 and
//     every byte after it, past every check of the gateway. A call and a
//     poll are one request and one answer. Connection goes with the
//     fields it names, as a proxy removes them, so that none of those
//     becomes end to end (and none of the fields the gateway sets
//     afterwards can be named for removal);
//   - Expect: the gateway has read the body (and net/http has answered
//     the agent's 100-continue); the concierge gets all of it at once;
//   - the callback addresses, which only the gateway sets (after this);
//   - with length, Content-Length: the transport writes it from the
//     request's ContentLength, which the gateway sets; and
//     Content-Encoding: the gateway checked the body's bytes as they came,
//     uncoded, and forwards those (a poll, none), so a concierge that
//     decoded them by the agent's label (gzip, br) would serve other bytes
//     than those checked (a coded body fails the check: converseWith);
//   - with encoding, Accept-Encoding: the gateway reads concierge
//     answers (tokens, session ids), so it asks for them uncompressed;
//     they are small JSON documents.
//
// One pass, because deleting or looking up a field the request does not
// have still hashes its name: seven of those were a tenth of the
// plugin's map work per call (docs/performance.md, ninth pass).
func dropForwarded(h http.Header, length, encoding bool) {
	var conn []string
	for k, v := range h {
		switch k {
		case "Connection":
			conn = v
			delete(h, k)
		case "Upgrade", "Http2-Settings", "Expect", converse.CallbackAddrsHeader:
			delete(h, k)
		case "Content-Length", "Content-Encoding":
			if length {
				delete(h, k)
			}
		case "Accept-Encoding":
			if encoding {
				delete(h, k)
			}
		}
	}
	for _, v := range conn {
		for v != "" {
			var name string
			name, v, _ = strings.Cut(v, ",")
			switch name = strings.TrimSpace(name); {
			case name == "":
			case strings.EqualFold(name, "keep-alive"):
				// The usual token, deleted without allocating its
				// canonical form.
				delete(h, "Keep-Alive")
			case strings.EqualFold(name, "close"), strings.EqualFold(name, "upgrade"):
				// No field of that name beyond Upgrade, which goes below.
			default:
				delete(h, http.CanonicalHeaderKey(name))
			}
		}
	}
}

// admission is the per-request state of a call, pooled. Its body buffer
// is what the concierge reads, and the HTTP transport may close a request
// body after the handler returned, so the admission goes back to the pool
// only when both the handler and the body are done.
type admission struct {
	body    []byte
	edited  []byte // the forwarded body when it differs from body
	req     converse.Request
	agent   string // the verified agent, "" for none
	windows [2]limiter.WindowCheck
	session limiter.SessionCheck
	batch   limiter.Batch
	fwd     forwardBody
	cw      conciergeWriter
	refs    atomic.Int32
	// A call's rate-limit fields, held for its answer (holdFields set
	// while it is admitted, hasFields once decided).
	fields                ratelimit.Fields
	holdFields, hasFields bool
}

// writeFields puts the rate-limit fields admission held on h: the call
// is answered otherwise than by the concierge.
func (a *admission) writeFields(h http.Header) {
	if a.hasFields {
		a.fields.Write(h)
		a.hasFields = false
	}
}

// admissionPool's admissions start without a body buffer: sync.Pool is
// emptied by every GC, and 32 busy connections refilling it with 8 KB
// each added to the allocation that paces the next GC.
var admissionPool = sync.Pool{New: func() any { return new(admission) }}

func getAdmission() *admission {
	a := admissionPool.Get().(*admission)
	a.refs.Store(1)
	return a
}

// release drops one reference; the last one returns a to the pool.
func (a *admission) release() {
	if a.refs.Add(-1) != 0 {
		return
	}
	a.req = converse.Request{}
	a.agent = ""
	a.batch = limiter.Batch{}
	a.cw = conciergeWriter{}
	a.fields, a.holdFields, a.hasFields = ratelimit.Fields{}, false, false
	a.fwd = forwardBody{}
	if cap(a.edited) > 64<<10 {
		a.edited = nil
	}
	if cap(a.body) <= 64<<10 {
		a.body = a.body[:0]
		admissionPool.Put(a)
	}
}

// forwardBody is the request body handed to the concierge.
type forwardBody struct {
	bytes.Reader
	a      *admission
	closed atomic.Bool
}

func (b *forwardBody) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		b.a.release()
	}
	return nil
}

var errTooLarge = errors.New("body too large")

// readCapped reads r into buf (reusing its capacity) up to limit bytes;
// errTooLarge means there was more.
func readCapped(r io.Reader, buf []byte, limit int64) ([]byte, error) {
	if r == nil || r == http.NoBody {
		return buf[:0], nil
	}
	buf = buf[:0]
	for {
		if int64(len(buf)) > limit {
			return buf, errTooLarge
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), int(limit)+1)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if int64(len(buf)) > limit {
				return buf, errTooLarge
			}
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
