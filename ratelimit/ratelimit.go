// Package ratelimit is AHP §11 at the edge: the tiers of limits a site
// sets, whom a request is counted against, and what an agent sees (the
// X-RateLimit-* headers, optionally the IETF RateLimit and RateLimit-Policy
// fields, Retry-After, and the spec's 429 body). Decisions go to a
// limiter.Store (memory, or Redis shared by every instance); this package
// knows no Caddy.
//
// One Policy serves a whole site: discovery charges the static tier,
// the gateway the converse tiers, whichever door a capability call came
// through. Every header value it sets is that response's own (Caddy's
// `header` directive edits values in place), built from one small
// allocation per response.
package ratelimit

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// Headers selects the rate-limit fields of answers.
type Headers uint8

const (
	// HeadersAHP sends X-RateLimit-Limit, -Remaining, -Reset and -Window
	// (spec §11.1). The default.
	HeadersAHP Headers = iota
	// HeadersIETF sends RateLimit and RateLimit-Policy
	// (draft-ietf-httpapi-ratelimit-headers-11).
	HeadersIETF
	// HeadersBoth sends both sets.
	HeadersBoth
)

// Config is a site's rate-limit policy. A zero Limit turns its tier off.
type Config struct {
	// Store decides; shared by every handler of the process (and, with
	// Redis, of every instance).
	Store limiter.Store
	// Zone separates the keys of sites sharing one store.
	Zone string
	// Static limits the manifest, the content document, the OpenAPI
	// document and MCP requests that are not tool calls.
	Static limiter.Limit
	// Unauthenticated, Authenticated and Action limit capability calls:
	// Action for MODE3 action/async capabilities, Authenticated when the
	// plugin verified the credentials, Unauthenticated otherwise.
	Unauthenticated limiter.Limit
	Authenticated   limiter.Limit
	Action          limiter.Limit
	// Verified limits capability calls of agents that proved who they are
	// (Web Bot Auth) without verified credentials.
	Verified limiter.Limit
	// PerAgent adds a limit per agent identity on top of the client's own.
	PerAgent limiter.Limit
	// TokenBudget is the tokens a session may spend (§11.4); 0 is none.
	TokenBudget int64
	// ClientKey returns the client's identity (by default the peer
	// address; Caddy supplies {client_ip}, which honours trusted_proxies).
	ClientKey func(*http.Request) string
	// SecretKey marks ClientKey's values as secrets: stores hash them.
	SecretKey bool
	// IPv6Prefix groups IPv6 clients (default 64).
	IPv6Prefix int
	// Timeout, when positive, bounds one decision from outside. Zero arms
	// no timer: the stores of package limiter bound their own decisions.
	Timeout time.Duration
	// Headers selects the fields answers carry.
	Headers Headers
	// Jitter adds up to this much, at random, to Retry-After (never to
	// the body's retry_after, which stays the exact minimum), so refused
	// agents do not come back in lockstep.
	Jitter time.Duration
	// DryRun decides and counts as usual but never refuses: what would
	// have been refused is logged and observed instead, for rolling limits
	// out on a live site.
	DryRun   bool
	Logger   *zap.Logger
	Observer Observer
}

// Observer is told what the policy did, for metrics; it must be cheap
// and safe for concurrent use.
type Observer interface {
	// RateLimited gives the scope of a 429 (ip, agent, session_tokens);
	// dry is true for one a dry run let through.
	RateLimited(scope string, dry bool)
	StoreError()
	StoreFallback()
	// LimiterDecision is one batch's decision time; leased is true when
	// the Redis store answered it from a lease, with no round trip.
	LimiterDecision(d time.Duration, leased bool)
}

type nopObserver struct{}

func (nopObserver) RateLimited(string, bool)            {}
func (nopObserver) StoreError()                         {}
func (nopObserver) StoreFallback()                      {}
func (nopObserver) LimiterDecision(time.Duration, bool) {}

// Tier is one named limit with its header values rendered once.
type Tier struct {
	Name   string
	Limit  limiter.Limit
	limit  string // X-RateLimit-Limit
	window string // X-RateLimit-Window
	policy string // RateLimit-Policy member
}

func newTier(name string, l limiter.Limit) *Tier {
	if l.Events <= 0 || l.Window <= 0 {
		return nil
	}
	secs := int64(math.Ceil(l.Window.Seconds()))
	return &Tier{
		Name:   name,
		Limit:  l,
		limit:  strconv.FormatInt(l.Events, 10),
		window: strconv.FormatInt(secs, 10),
		policy: `"` + name + `";q=` + strconv.FormatInt(l.Events, 10) + ";w=" + strconv.FormatInt(secs, 10),
	}
}

// Policy is a site's limits, built once.
type Policy struct {
	store      limiter.Store
	zone       string
	Static     *Tier
	Unauth     *Tier
	Authed     *Tier
	Action     *Tier
	Verified   *Tier
	PerAgent   *Tier
	Budget     int64
	keyFn      func(*http.Request) string
	secretKey  bool
	ipv6Prefix int
	timeout    time.Duration
	headers    Headers
	jitter     time.Duration
	dryRun     bool
	logger     *zap.Logger
	obs        Observer
}

// New builds a policy; nil when cfg has no store (rate limiting off).
func New(cfg Config) *Policy {
	if cfg.Store == nil {
		return nil
	}
	p := &Policy{
		store:      cfg.Store,
		zone:       cfg.Zone,
		Static:     newTier("static", cfg.Static),
		Unauth:     newTier("unauthenticated", cfg.Unauthenticated),
		Authed:     newTier("authenticated", cfg.Authenticated),
		Action:     newTier("action", cfg.Action),
		Verified:   newTier("verified", cfg.Verified),
		PerAgent:   newTier("per_agent", cfg.PerAgent),
		Budget:     cfg.TokenBudget,
		keyFn:      cfg.ClientKey,
		secretKey:  cfg.SecretKey,
		ipv6Prefix: cfg.IPv6Prefix,
		timeout:    cfg.Timeout,
		headers:    cfg.Headers,
		jitter:     cfg.Jitter,
		dryRun:     cfg.DryRun,
		logger:     cfg.Logger,
		obs:        cfg.Observer,
	}
	if p.ipv6Prefix <= 0 || p.ipv6Prefix > 128 {
		p.ipv6Prefix = 64
	}
	if p.keyFn == nil {
		p.keyFn = remoteIP
	}
	if p.logger == nil {
		p.logger = zap.NewNop()
	}
	if p.obs == nil {
		p.obs = nopObserver{}
	}
	return p
}

// Zone is the key namespace of the site.
func (p *Policy) Zone() string { return p.zone }

// Store is the decision store.
func (p *Policy) Store() limiter.Store { return p.store }

// DryRun reports whether refusals are only logged.
func (p *Policy) DryRun() bool { return p.dryRun }

// Headers is which rate-limit fields WriteHeaders sets.
func (p *Policy) Headers() Headers { return p.headers }

// remoteIP is the fallback client key outside Caddy: the peer address.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ClientKey is the store key of the request's client. IPv6 addresses are
// grouped by prefix: one host usually owns a whole /64 and could otherwise
// rotate addresses to escape its limit.
func (p *Policy) ClientKey(r *http.Request) string {
	kind, id := p.client(r)
	return p.zone + kind + id
}

// client is the kind ("|ip|" or "|key|") and identity of the request's
// client. An address already in canonical form (what Caddy's {client_ip}
// gives for IPv4) is used as it is: the key is built in one allocation.
func (p *Policy) client(r *http.Request) (kind, id string) {
	id, ip := ClientID(p.keyFn(r), p.ipv6Prefix)
	if ip {
		return "|ip|", id
	}
	return "|key|", id
}

// ClientID is the identity a client key is counted under: an IP address
// in canonical form (IPv4-mapped addresses as IPv4), an IPv6 address as
// its network of ipv6Prefix bits (2001:db8::/64), anything else as it is
// (ip false). A key already canonical is returned without allocating.
// Other packages that count clients (handshake) use it, so that a client
// is one client everywhere.
func ClientID(key string, ipv6Prefix int) (id string, ip bool) {
	// Nearly every key is Caddy's {client_ip} of an IPv4 client, already
	// canonical: parsing and formatting it again cost about 450
	// instructions of a converse call (bench/callgrind.sh).
	if canonicalIPv4(key) {
		return key, true
	}
	addr, err := netip.ParseAddr(key)
	if err != nil {
		return key, false
	}
	addr = addr.Unmap()
	if addr.Is6() && ipv6Prefix > 0 && ipv6Prefix < 128 {
		if pfx, err := addr.Prefix(ipv6Prefix); err == nil {
			return pfx.String(), true
		}
	}
	var buf [64]byte
	if canon := addr.AppendTo(buf[:0]); string(canon) != key {
		return string(canon), true
	}
	return key, true
}

// canonicalIPv4 reports whether s is an IPv4 address exactly as netip
// formats one: four decimal octets of at most 255, no leading zeros
// (FuzzCanonicalIPv4 holds it to netip).
func canonicalIPv4(s string) bool {
	if len(s) < len("0.0.0.0") || len(s) > len("255.255.255.255") {
		return false
	}
	octets, v, digits := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || v > 255 {
				return false
			}
			octets++
			v, digits = 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' || digits == 3 || (digits == 1 && v == 0) {
			return false // not a digit, a fourth digit, or a leading zero
		}
		v = v*10 + int(c-'0')
		digits++
	}
	return octets == 4
}

// Window is the check of tier t for the request's client.
func (p *Policy) Window(r *http.Request, t *Tier) limiter.WindowCheck {
	kind, id := p.client(r)
	return limiter.WindowCheck{Key: p.zone + kind + id + "|" + t.Name, Secret: p.secretKey, Limit: t.Limit}
}

// Decide runs one batch through the store, bounded by the configured
// timeout, and observes its cost and any fallback.
func (p *Policy) Decide(ctx context.Context, b *limiter.Batch) error {
	start := time.Now()
	var err error
	if p.timeout <= 0 {
		err = p.store.Do(ctx, b)
	} else {
		dctx, cancel := context.WithTimeout(ctx, p.timeout)
		err = p.store.Do(dctx, b)
		cancel()
	}
	p.obs.LimiterDecision(time.Since(start), b.Leased)
	if err == nil && b.Degraded {
		p.obs.StoreFallback()
	}
	return err
}

// MaxAddedTokens caps the tokens one answer adds to a session: far beyond
// any budget, yet small enough that a session's sum cannot overflow the
// stores' int64 (Redis's HINCRBY refuses an overflow, which would lose the
// count) within its turns.
const MaxAddedTokens = 1 << 50

// AddTokens records the tokens a concierge answer spent in a session.
func (p *Policy) AddTokens(ctx context.Context, session string, tokens int64, idle time.Duration) {
	p.addTokens(ctx, session, 0, tokens, idle)
}

// AddJobTokens records the tokens of an async job's answer (AHP §9): the
// answer that accepted it (limiter.JobOpen), or its result
// (limiter.JobClose), which counts once however often it is polled.
func (p *Policy) AddJobTokens(ctx context.Context, session string, step limiter.JobStep, tokens int64, idle time.Duration) {
	p.addTokens(ctx, session, step, tokens, idle)
}

func (p *Policy) addTokens(ctx context.Context, session string, step limiter.JobStep, tokens int64, idle time.Duration) {
	tokens = min(tokens, MaxAddedTokens)
	// The agent may hang up once it has the answer; the tokens still count.
	ctx = context.WithoutCancel(ctx)
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	var err error
	if step == 0 {
		err = p.store.AddTokens(ctx, p.zone+"|"+session, tokens, idle)
	} else {
		err = p.store.AddJobTokens(ctx, p.zone+"|"+session, step, tokens, idle)
	}
	// ErrStoreUnavailable was counted and logged by the resilient store
	// (as in Unavailable): counting it here would count one failure twice,
	// then every answer while the store is skipped.
	if err != nil && !errors.Is(err, limiter.ErrStoreUnavailable) {
		p.obs.StoreError()
		p.logger.Warn("recording session tokens failed", zap.Error(err))
	}
}

// SessionKey is the store id of a session of this site.
func (p *Policy) SessionKey(id string) string { return p.zone + "|" + id }

// AgentKey is the store key of an agent identity's window.
func (p *Policy) AgentKey(identity string) string { return p.zone + "|agent|" + identity }

// FieldNames are the rate-limit fields an answer may carry, in the order
// of Fields.
var FieldNames = [6]string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "X-Ratelimit-Window",
	"Ratelimit", "Ratelimit-Policy"}

// Fields are a decision's rate-limit field values by FieldNames' index
// (nil: not sent), for a handler that puts them on its answer later than
// it decides (the gateway's, while the concierge's fields come in).
type Fields [len(FieldNames)][]string

// Write sets f's fields on h.
func (f *Fields) Write(h http.Header) {
	for i, v := range f {
		if v != nil {
			h[FieldNames[i]] = v
		}
	}
}

// Fields sets f to the rate-limit fields of tier t's decision d, each
// value that response's own.
func (p *Policy) Fields(f *Fields, t *Tier, d *limiter.Decision) {
	reset := d.Reset.Unix()
	if d.Reset.Nanosecond() > 0 {
		reset++ // never announce a reset before it happens
	}
	// Both numbers in one string, each value a slice of it.
	var buf [40]byte
	b := strconv.AppendInt(buf[:0], max(d.Remaining, 0), 10)
	n := len(b)
	nums := string(strconv.AppendInt(b, reset, 10))
	remaining, resetAt := nums[:n], nums[n:]
	*f = Fields{}
	switch p.headers {
	case HeadersAHP:
		v := make([]string, 4)
		v[0], v[1], v[2], v[3] = t.limit, remaining, resetAt, t.window
		f[0], f[1], f[2], f[3] = v[0:1:1], v[1:2:2], v[2:3:3], v[3:4:4]
	case HeadersIETF:
		v := make([]string, 2)
		v[0], v[1] = p.ietf(t, remaining, d.ResetIn), t.policy
		f[4], f[5] = v[0:1:1], v[1:2:2]
	case HeadersBoth:
		v := make([]string, 6)
		v[0], v[1], v[2], v[3] = t.limit, remaining, resetAt, t.window
		v[4], v[5] = p.ietf(t, remaining, d.ResetIn), t.policy
		f[0], f[1], f[2], f[3], f[4], f[5] = v[0:1:1], v[1:2:2], v[2:3:3], v[3:4:4], v[4:5:5], v[5:6:6]
	}
}

// WriteHeaders sets the rate-limit fields of tier t's decision d on h,
// each value that response's own.
func (p *Policy) WriteHeaders(h http.Header, t *Tier, d *limiter.Decision) {
	var f Fields
	p.Fields(&f, t, d)
	if p.headers == HeadersAHP { // the default, on every static answer: no loop
		h[FieldNames[0]], h[FieldNames[1]], h[FieldNames[2]], h[FieldNames[3]] = f[0], f[1], f[2], f[3]
		return
	}
	f.Write(h)
}

// ietf is the RateLimit field: the policy, what remains, and the seconds
// until more becomes available (t is delay-seconds, not a timestamp),
// rounded up. The delay is the store's own (resetIn): Reset minus this
// instance's clock would be off by the instance's skew from Redis's.
func (p *Policy) ietf(t *Tier, remaining string, resetIn time.Duration) string {
	secs := max(int64((resetIn+time.Second-1)/time.Second), 0)
	return `"` + t.Name + `";r=` + remaining + ";t=" + strconv.FormatInt(secs, 10)
}

// RetryAfter is the Retry-After value for a refusal that may be retried
// after d: whole seconds rounded up (an agent that waits that long is
// admitted), plus the configured jitter.
func (p *Policy) RetryAfter(d time.Duration) (header string, body int) {
	body = RetrySeconds(d)
	header = strconv.Itoa(body)
	if p.jitter > 0 {
		header = strconv.Itoa(body + int(rand.Int64N(int64(p.jitter/time.Second)+1)))
	}
	return header, body
}

// RetrySeconds rounds d up to whole seconds, at least 1.
func RetrySeconds(d time.Duration) int {
	return max(int(math.Ceil(d.Seconds())), 1)
}

// Refusal is the 429 of a window that refused (tier t, decision d, the
// spec's scope), with Retry-After set on h; nil in a dry run, which logs
// the refusal it lets through instead.
func (p *Policy) Refusal(h http.Header, r *http.Request, t *Tier, d *limiter.Decision, scope, message string) *ahperror.Error {
	p.obs.RateLimited(scope, p.dryRun)
	if p.dryRun {
		p.logger.Info("rate limit would refuse (dry run)", zap.String("tier", t.Name), zap.String("scope", scope),
			zap.String("path", r.URL.Path), zap.Duration("retry_after", d.RetryAfter))
		return nil
	}
	header, body := p.RetryAfter(d.RetryAfter)
	h["Retry-After"] = []string{header}
	return ahperror.RateLimit(scope, message, body)
}

// BudgetRefusal is the 429 of a session that spent its token budget
// (§11.4): retry_after null in the body, since retrying in that session
// will not help; nil in a dry run. Every 429 carries Retry-After (§11.1),
// set on h: idle, the session's idle timeout, after which the exhausted
// session is gone; an agent that honours it (§11.6) starts its next
// session no sooner, which is what a budget meant to bound a site's LLM
// spending asks of it.
func (p *Policy) BudgetRefusal(h http.Header, r *http.Request, idle time.Duration) *ahperror.Error {
	p.obs.RateLimited(ahperror.ScopeSessionTokens, p.dryRun)
	if p.dryRun {
		p.logger.Info("token budget would refuse (dry run)", zap.String("path", r.URL.Path))
		return nil
	}
	header, _ := p.RetryAfter(idle)
	h["Retry-After"] = []string{header}
	return ahperror.RateLimit(ahperror.ScopeSessionTokens, "Token budget for this session has been exhausted.", -1)
}

// Unavailable is the answer to a request whose limits could not be
// decided: the store failed closed (on_store_error closed) or broke.
func (p *Policy) Unavailable(h http.Header, err error) *ahperror.Error {
	// ErrStoreUnavailable was counted and logged by the resilient store;
	// a client that hung up is no store failure, and any client could
	// flood the log and the metric by resetting its requests.
	switch {
	case errors.Is(err, context.Canceled):
		p.logger.Debug("rate limit decision abandoned: the client went away")
	case !errors.Is(err, limiter.ErrStoreUnavailable):
		p.obs.StoreError()
		p.logger.Error("rate limit decision failed", zap.Error(err))
	}
	h["Retry-After"] = []string{"1"}
	return ahperror.New(http.StatusServiceUnavailable, ahperror.Unavailable,
		"Rate limiting is temporarily unavailable; retry shortly.")
}

// ChargeStatic charges the static tier (the manifest, the content document, the
// OpenAPI document, MCP requests other than tool calls). It reports false
// when it answered the request itself (429 or 503).
func (p *Policy) ChargeStatic(w http.ResponseWriter, r *http.Request) bool {
	return p.chargeStatic(w, r, "on the manifest, content and integration documents.")
}

// ChargeMarkdown charges the static tier for a page answered as Markdown.
// Its refusal says what was limited (the tier is shared with the
// documents, so the count is of both) and that the page itself, as HTML,
// is not, so an agent over the limit knows it can still read it.
func (p *Policy) ChargeMarkdown(w http.ResponseWriter, r *http.Request) bool {
	return p.chargeStatic(w, r, "on pages answered as Markdown and the manifest, content and integration documents together; the page itself, asked for without Accept: text/markdown, is not limited.")
}

func (p *Policy) chargeStatic(w http.ResponseWriter, r *http.Request, what string) bool {
	if p == nil || p.Static == nil {
		return true
	}
	var win [1]limiter.WindowCheck
	win[0] = p.Window(r, p.Static)
	b := limiter.Batch{Windows: win[:]}
	h := w.Header()
	if err := p.Decide(r.Context(), &b); err != nil {
		ahperror.Write(w, p.Unavailable(h, err))
		return false
	}
	d := &b.Windows[0].Decision
	p.WriteHeaders(h, p.Static, d)
	if !d.Allowed {
		if e := p.Refusal(h, r, p.Static, d, ahperror.ScopeIP,
			"Rate limit exceeded for this client: "+p.Static.Limit.String()+" "+what); e != nil {
			ahperror.Write(w, e)
			return false
		}
	}
	return true
}
