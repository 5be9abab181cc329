package middleware

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/auth"
	"github.com/caddy-ahp/caddy-ahp/converse"
	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/pathguard"
)

// Gateway configures the converse gateway (spec §5.2, §5.3, §6, §8–§11):
// what it checks before a request may reach the concierge.
type Gateway struct {
	Rules *converse.Rules
	// Keys verify credentials; nil means credentials are passed on
	// unverified and count as unauthenticated.
	Keys *auth.Keys
	// BodyLimit caps the request body (spec §6.5: 8 KB).
	BodyLimit int64
	// MaxTurns and Idle are the session constraints of spec §6.5.
	MaxTurns int
	Idle     time.Duration
	// EchoSignals adds the manifest's content_signals to success
	// responses that lack them (spec §7).
	EchoSignals bool
	// CORS answers preflight requests and lets browsers read responses.
	CORS bool
	// ResponseLimit caps the concierge JSON the gateway reads for token
	// accounting and signals; larger bodies pass through unread.
	ResponseLimit int64
	// Timeout bounds the concierge's answer: past it the agent gets the
	// spec's 503 instead of waiting on a concierge that hangs.
	Timeout time.Duration
}

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

type gateway struct {
	Gateway
	conversePath string
	statusPrefix string
	converse     *pathguard.Pattern
	status       *pathguard.Pattern
	scheme       string
	policy       auth.Policy
	signalsJSON  []byte // `"content_signals":{...}`
}

func newGateway(cfg *Gateway, m *manifest.Manifest) (*gateway, error) {
	if cfg == nil || m.ConversePath() == "" {
		return nil, nil
	}
	if cfg.Rules == nil {
		return nil, errors.New("ahp: gateway without request rules")
	}
	g := &gateway{Gateway: *cfg, conversePath: m.ConversePath(), scheme: m.Authentication}
	g.statusPrefix = strings.TrimSuffix(g.conversePath, "/") + "/status/"
	var err error
	if g.converse, err = pathguard.Compile(g.conversePath); err != nil {
		return nil, fmt.Errorf("ahp converse: %v", err)
	}
	if g.status, err = pathguard.Compile(g.statusPrefix + "*"); err != nil {
		return nil, fmt.Errorf("ahp converse: %v", err)
	}
	if g.scheme == "" {
		g.scheme = manifest.AuthNone
	}
	g.policy = auth.Policy{Scheme: g.scheme, Keys: cfg.Keys}
	if g.BodyLimit <= 0 {
		g.BodyLimit = DefaultBodyLimit
	}
	if g.MaxTurns <= 0 {
		g.MaxTurns = DefaultMaxTurns
	}
	if g.Idle <= 0 {
		g.Idle = DefaultIdle
	}
	if g.ResponseLimit <= 0 {
		g.ResponseLimit = DefaultResponseLimit
	}
	if g.Timeout <= 0 {
		g.Timeout = DefaultTimeout
	}
	if m.ContentSignals != nil {
		b, err := jsonMarshal(m.ContentSignals)
		if err != nil {
			return nil, err
		}
		g.signalsJSON = append([]byte(`"content_signals":`), b...)
	}
	return g, nil
}

// admission is the per-request state of a converse request, pooled. Its
// body buffer is what the concierge reads, and the HTTP transport may
// close a request body after the handler returned, so the admission goes
// back to the pool only when both the handler and the body are done.
type admission struct {
	body    []byte
	req     converse.Request
	windows [2]limiter.WindowCheck
	session limiter.SessionCheck
	batch   limiter.Batch
	fwd     forwardBody
	cw      conciergeWriter
	refs    atomic.Int32
}

var admissionPool = sync.Pool{New: func() any { return &admission{body: make([]byte, 0, DefaultBodyLimit+1)} }}

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
	a.batch = limiter.Batch{}
	a.cw = conciergeWriter{}
	a.fwd = forwardBody{}
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

var (
	allowConverse = []string{"POST, OPTIONS"}
	allowStatus   = []string{"GET, HEAD"}
	corsAllowAny  = []string{"*"}
	corsConverse  = []string{"POST, OPTIONS"}
	corsReqHdrs   = []string{"Content-Type, Authorization, X-AHP-Key"}
	corsExposed   = []string{"Link, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, X-RateLimit-Window"}
)

// serveConverse enforces the protocol on POST {converse}, then hands the
// request to next (the site's reverse_proxy to its concierge).
func (h *Handler) serveConverse(w http.ResponseWriter, r *http.Request, next Next) error {
	g := h.gateway
	hdr := w.Header()
	if g.CORS {
		hdr["Access-Control-Allow-Origin"] = corsAllowAny
		hdr["Access-Control-Expose-Headers"] = corsExposed
		if r.Method == http.MethodOptions {
			hdr["Access-Control-Allow-Methods"] = corsConverse
			hdr["Access-Control-Allow-Headers"] = corsReqHdrs
			hdr["Access-Control-Max-Age"] = corsMaxAge
			hdr["Allow"] = allowConverse
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
	}
	if r.Method != http.MethodPost {
		hdr["Allow"] = allowConverse
		h.reject(w, ahperror.New(http.StatusMethodNotAllowed, ahperror.InvalidRequest,
			"method "+r.Method+" is not allowed on "+g.conversePath+"; send the AHP request with POST"))
		return nil
	}

	a := getAdmission()
	defer a.release()

	// The body: never read more than the cap (plus one byte to notice it
	// is exceeded), and refuse early when Content-Length says so.
	var tooLarge bool
	if r.ContentLength > g.BodyLimit {
		tooLarge = true
	} else {
		body, err := readCapped(r.Body, a.body, g.BodyLimit)
		a.body = body
		if err != nil && !errors.Is(err, errTooLarge) {
			h.logger.Debug("reading converse request body", zap.Error(err))
			h.reject(w, ahperror.New(http.StatusBadRequest, ahperror.InvalidRequest, "the request body could not be read"))
			return nil
		}
		tooLarge = errors.Is(err, errTooLarge)
	}
	if tooLarge {
		// The client is refused; the rest of its body is not read, so
		// keep-alive on this connection cannot continue.
		hdr["Connection"] = connClose
		if !h.admitClient(w, r, a, h.limits.tierOr(nil)) {
			return nil
		}
		h.reject(w, ahperror.New(http.StatusRequestEntityTooLarge, ahperror.RequestTooLarge,
			"the request body exceeds "+strconv.FormatInt(g.BodyLimit, 10)+" bytes (spec §6.5)"))
		return nil
	}

	if e := g.Rules.Parse(a.body, &a.req); e != nil {
		if h.admitClient(w, r, a, h.limits.tierOr(nil)) {
			h.reject(w, e)
		}
		return nil
	}
	req := &a.req

	// Credentials: the scheme's header, or the body's `auth` field that
	// MCP/OpenAPI bridges and some agents send (Appendix D.4, §14.3).
	cred, authErr := g.policy.Check(r.Header, req.Auth, req.Declared.NeedsAuth() || req.Declared.AuthRequired)
	if authErr != nil {
		if h.admitClient(w, r, a, h.limits.tierOr(nil)) {
			h.reject(w, authErr)
		}
		return nil
	}
	verified := cred.Verified

	// One store round trip decides the client's tier limit, the agent's
	// limit and the session's turn.
	var t *tier
	if rl := h.limits; rl != nil {
		switch {
		case req.Declared.NeedsAuth() && rl.action != nil:
			t = rl.action
		case verified && rl.authed != nil:
			t = rl.authed
		default:
			t = rl.unauth
		}
	}
	if !h.admit(w, r, a, t, true) {
		return nil
	}

	if req.Context.CallbackURL != "" {
		if e := g.Rules.CheckCallback(r.Context(), req.Context.CallbackURL); e != nil {
			h.reject(w, e)
			return nil
		}
	}

	// Forward: the checked body (auth removed, max_tokens capped) and the
	// credentials in the header the concierge reads.
	fwd := g.Rules.ForwardBody(req, a.body)
	a.refs.Add(1)
	a.fwd.a = a
	a.fwd.Reset(fwd)
	r.Body = &a.fwd
	r.ContentLength = int64(len(fwd))
	delete(r.Header, "Content-Length") // the transport writes it from ContentLength
	r.TransferEncoding = nil
	if cred.FromBody {
		auth.SetHeader(r.Header, g.scheme, cred.Credential)
	}
	// The gateway reads concierge answers (tokens, session ids), so it
	// asks for them uncompressed; they are small JSON documents.
	delete(r.Header, "Accept-Encoding")
	h.observer.ConverseAllowed()

	ctx, cancel := context.WithTimeout(r.Context(), g.Timeout)
	defer cancel()
	cw := &a.cw
	*cw = conciergeWriter{ResponseWriter: w, h: h, sessionID: req.SessionID}
	err := next.ServeHTTP(cw, r.WithContext(ctx))
	return cw.finish(r.Context(), err)
}

// refuseVariant answers a spelling of a gateway path that only cleaning
// makes match (case, //, /./, %2F, ;params …): it never reaches the
// concierge, and counts against the client's limit like any refusal.
func (h *Handler) refuseVariant(w http.ResponseWriter, r *http.Request, canonical string) {
	a := getAdmission()
	defer a.release()
	if h.admitClient(w, r, a, h.limits.tierOr(nil)) {
		h.reject(w, ahperror.New(http.StatusBadRequest, ahperror.InvalidRequest,
			"this spelling of the path is refused; send the request to exactly "+canonical+" as the manifest gives it"))
	}
}

// admitClient decides the client's limit for a request that is about to be
// refused anyway, so that floods of bad requests are limited too. It
// reports whether the refusal may be sent (false: a 429 or 503 went out).
func (h *Handler) admitClient(w http.ResponseWriter, r *http.Request, a *admission, t *tier) bool {
	return h.admit(w, r, a, t, false)
}

// admit runs the request's one store round trip: the client's window in
// tier t, the requesting agent's window and, for full requests, the session
// turn. It writes the rate-limit headers and answers 429 (or the session's
// refusal) itself, reporting false then.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, a *admission, t *tier, full bool) bool {
	rl := h.limits
	g := h.gateway
	b := &a.batch
	b.Windows = a.windows[:0]
	b.Session = nil
	var tiers [2]*tier // the tier of each window, for headers and scope
	if rl != nil && t != nil {
		tiers[len(b.Windows)] = t
		b.Windows = append(b.Windows, limiter.WindowCheck{Key: rl.clientKey(r) + "|" + t.name, Secret: rl.secretKey, Limit: t.limit})
	}
	agent := a.req.Context.RequestingAgent
	if full && rl != nil && rl.perAgent != nil && agent != "" {
		tiers[len(b.Windows)] = rl.perAgent
		b.Windows = append(b.Windows, limiter.WindowCheck{Key: rl.zone + "|agent|" + agent, Limit: rl.perAgent.limit})
	}
	if full && a.req.SessionID != "" && rl != nil {
		a.session = limiter.SessionCheck{
			ID:          rl.zone + "|" + a.req.SessionID,
			MaxTurns:    g.MaxTurns,
			Idle:        g.Idle,
			TokenBudget: rl.budget,
		}
		b.Session = &a.session
	}
	if len(b.Windows) == 0 && b.Session == nil {
		return true
	}
	if err := h.decide(r.Context(), b); err != nil {
		h.observer.ConverseRejected(ahperror.Unavailable)
		h.storeFailed(w, err)
		return false
	}
	h.noteDegraded(b)

	// Headers from the binding window: a refusing one, else the one with
	// the least remaining.
	bind := -1
	for i := range b.Windows {
		d, best := &b.Windows[i].Decision, (*limiter.Decision)(nil)
		if bind >= 0 {
			best = &b.Windows[bind].Decision
		}
		if best == nil || (!d.Allowed && best.Allowed) || (d.Allowed == best.Allowed && d.Remaining < best.Remaining) {
			bind = i
		}
	}
	if bind >= 0 {
		bt, d := tiers[bind], &b.Windows[bind].Decision
		writeRateHeaders(w.Header(), bt, d)
		if !d.Allowed {
			scope, msg := ahperror.ScopeIP, "Rate limit exceeded for this client: "+bt.limit.String()+" ("+bt.name+")."
			if bt == rl.perAgent && b.Windows[bind].Key != "" && strings.HasPrefix(b.Windows[bind].Key, rl.zone+"|agent|") {
				scope, msg = ahperror.ScopeAgent, "Rate limit exceeded for this agent identity: "+bt.limit.String()+"."
			}
			h.observer.RateLimited(scope)
			ahperror.Write(w, ahperror.RateLimit(scope, msg, retryAfterSeconds(d.RetryAfter)))
			return false
		}
	}
	if s := b.Session; s != nil {
		switch s.Outcome {
		case limiter.SessionTooManyTurns:
			h.reject(w, ahperror.New(http.StatusBadRequest, ahperror.InvalidRequest,
				"session '"+a.req.SessionID+"' has reached its limit of "+strconv.Itoa(g.MaxTurns)+
					" turns (spec §6.5); start a new session by sending session_id null"))
			return false
		case limiter.SessionExpired:
			h.reject(w, ahperror.New(http.StatusBadRequest, ahperror.InvalidRequest,
				"session '"+a.req.SessionID+"' expired after "+g.Idle.String()+
					" of inactivity (spec §6.5); start a new session by sending session_id null"))
			return false
		case limiter.SessionOverBudget:
			h.observer.RateLimited(ahperror.ScopeSessionTokens)
			ahperror.Write(w, ahperror.RateLimit(ahperror.ScopeSessionTokens,
				"Token budget for this session has been exhausted.", -1))
			return false
		}
	}
	return true
}

// tierOr returns the unauthenticated tier, the one every request belongs
// to until its credentials are verified.
func (rl *rateLimiter) tierOr(t *tier) *tier {
	if rl == nil {
		return nil
	}
	if t != nil {
		return t
	}
	return rl.unauth
}

// reject sends an AHP error from the gateway.
func (h *Handler) reject(w http.ResponseWriter, e *ahperror.Error) {
	h.observer.ConverseRejected(e.Code)
	ahperror.Write(w, e)
}

var connClose = []string{"close"}

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

// serveStatus rate limits and proxies the async status path
// ({converse}/status/{session_id}, spec §9).
func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request, next Next) error {
	g := h.gateway
	if g.CORS {
		w.Header()["Access-Control-Allow-Origin"] = corsAllowAny
		w.Header()["Access-Control-Expose-Headers"] = corsExposed
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header()["Allow"] = allowStatus
		h.reject(w, ahperror.New(http.StatusMethodNotAllowed, ahperror.InvalidRequest,
			"method "+r.Method+" is not allowed on the status path; poll it with GET"))
		return nil
	}
	var t *tier
	if rl := h.limits; rl != nil {
		t = rl.unauth
		if cred, ok := auth.Extract(r.Header, g.scheme); ok && g.Keys.Len() > 0 {
			if _, valid := g.Keys.Verify(cred); valid && rl.authed != nil {
				t = rl.authed
			}
		}
	}
	a := getAdmission()
	ok := h.admit(w, r, a, t, false)
	a.release()
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.Timeout)
	defer cancel()
	cw := &conciergeWriter{ResponseWriter: w, h: h, statusPoll: true}
	err := next.ServeHTTP(cw, r.WithContext(ctx))
	return cw.finish(r.Context(), err)
}

// accountTokens records a concierge answer's tokens and session id
// (spec §6.5, §11.4) before the agent sees the answer, so that its next
// turn is judged on up-to-date totals.
func (h *Handler) accountTokens(ctx context.Context, sessionID string, tokens int64) {
	rl := h.limits
	if rl == nil || sessionID == "" {
		return
	}
	// The agent may hang up once it has the answer; the tokens still count.
	ctx = context.WithoutCancel(ctx)
	if rl.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rl.timeout)
		defer cancel()
	}
	if err := rl.store.AddTokens(ctx, rl.zone+"|"+sessionID, tokens, h.gateway.Idle); err != nil {
		h.observer.StoreError()
		h.logger.Warn("recording session tokens failed", zap.Error(err))
	}
}
