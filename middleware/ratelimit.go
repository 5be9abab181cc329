package middleware

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// RateLimits configures the limits of spec §11. A zero Limit turns its
// tier off.
type RateLimits struct {
	// Store decides; it is shared by every handler of the process (and,
	// with Redis, of every instance). nil turns rate limiting off.
	Store limiter.Store
	// Zone separates the keys of different sites sharing one store.
	Zone string
	// Static limits the manifest and the MODE1 content document.
	Static limiter.Limit
	// Unauthenticated and Authenticated limit MODE2/MODE3 requests by
	// whether the plugin verified the request's credentials.
	Unauthenticated limiter.Limit
	Authenticated   limiter.Limit
	// Action limits MODE3 action and async capabilities.
	Action limiter.Limit
	// PerAgent adds a limit keyed by context.requesting_agent on top of
	// the client's own limit; it never replaces it.
	PerAgent limiter.Limit
	// TokenBudget is the tokens a session may spend (spec §11.4); 0 is
	// no budget.
	TokenBudget int64
	// ClientKey returns the client's identity (the configured key, by
	// default the client IP as Caddy resolves it behind trusted proxies).
	ClientKey func(*http.Request) string
	// SecretKey marks ClientKey's values as secrets (a key built from
	// credentials): the store hashes them before they become keys.
	SecretKey bool
	// IPv6Prefix groups IPv6 clients by this prefix length (default 64:
	// one host usually owns a whole /64).
	IPv6Prefix int
	// Timeout, when positive, bounds one store decision from outside: a
	// backstop for stores that do not bound themselves. Zero arms no
	// deadline (no timer per request): the stores of package limiter
	// bound their own decisions.
	Timeout time.Duration
}

// ErrorStatus maps an error from the next handler to an HTTP status (the
// Caddy adapter reads caddyhttp.HandlerError); 0 means unknown.
type ErrorStatus func(error) int

// tier is one rate-limit tier with its header values rendered once.
type tier struct {
	name   string
	limit  limiter.Limit
	nHdr   []string // X-RateLimit-Limit
	winHdr []string // X-RateLimit-Window
}

func newTier(name string, l limiter.Limit) *tier {
	if l.Events <= 0 || l.Window <= 0 {
		return nil
	}
	secs := int64(math.Ceil(l.Window.Seconds()))
	return &tier{
		name:   name,
		limit:  l,
		nHdr:   []string{strconv.FormatInt(l.Events, 10)},
		winHdr: []string{strconv.FormatInt(secs, 10)},
	}
}

type rateLimiter struct {
	store      limiter.Store
	zone       string
	static     *tier
	unauth     *tier
	authed     *tier
	action     *tier
	perAgent   *tier
	budget     int64
	keyFn      func(*http.Request) string
	secretKey  bool
	ipv6Prefix int
	timeout    time.Duration
}

func newRateLimiter(cfg *RateLimits) *rateLimiter {
	if cfg == nil || cfg.Store == nil {
		return nil
	}
	rl := &rateLimiter{
		store:      cfg.Store,
		zone:       cfg.Zone,
		static:     newTier("static", cfg.Static),
		unauth:     newTier("unauthenticated", cfg.Unauthenticated),
		authed:     newTier("authenticated", cfg.Authenticated),
		action:     newTier("action", cfg.Action),
		perAgent:   newTier("per_agent", cfg.PerAgent),
		budget:     cfg.TokenBudget,
		keyFn:      cfg.ClientKey,
		secretKey:  cfg.SecretKey,
		ipv6Prefix: cfg.IPv6Prefix,
		timeout:    cfg.Timeout,
	}
	if rl.ipv6Prefix <= 0 || rl.ipv6Prefix > 128 {
		rl.ipv6Prefix = 64
	}
	if rl.keyFn == nil {
		rl.keyFn = remoteIP
	}
	return rl
}

// remoteIP is the fallback client key: the peer address, for use outside
// Caddy (Caddy supplies {client_ip}, which honours trusted_proxies).
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientKey is the store key of the request's client: IPv6 addresses are
// grouped by prefix, since one host usually owns a whole /64 and could
// otherwise rotate addresses to escape its limit.
func (rl *rateLimiter) clientKey(r *http.Request) string {
	k := rl.keyFn(r)
	if addr, err := netip.ParseAddr(k); err == nil {
		addr = addr.Unmap()
		if addr.Is6() && rl.ipv6Prefix < 128 {
			if p, err := addr.Prefix(rl.ipv6Prefix); err == nil {
				return rl.zone + "|ip|" + p.String()
			}
		}
		return rl.zone + "|ip|" + addr.String()
	}
	return rl.zone + "|key|" + k
}

// decide runs one batch with the configured timeout.
func (h *Handler) decide(ctx context.Context, b *limiter.Batch) error {
	rl := h.limits
	start := time.Now()
	var err error
	if rl.timeout <= 0 {
		err = rl.store.Do(ctx, b)
	} else {
		dctx, cancel := context.WithTimeout(ctx, rl.timeout)
		err = rl.store.Do(dctx, b)
		cancel()
	}
	h.observer.LimiterDecision(time.Since(start))
	return err
}

// writeHeaders sets the X-RateLimit-* headers (spec §11.1) from the
// binding decision: the refusing one, else the one with least remaining.
func writeRateHeaders(h http.Header, t *tier, d *limiter.Decision) {
	h["X-Ratelimit-Limit"] = t.nHdr
	if d.Remaining >= 0 && d.Remaining < int64(len(smallInts)) {
		h["X-Ratelimit-Remaining"] = smallInts[d.Remaining]
	} else {
		h["X-Ratelimit-Remaining"] = []string{strconv.FormatInt(d.Remaining, 10)}
	}
	reset := d.Reset.Unix()
	if d.Reset.Nanosecond() > 0 {
		reset++ // never announce a reset before it happens
	}
	h["X-Ratelimit-Reset"] = resetHeader(reset)
	h["X-Ratelimit-Window"] = t.winHdr
}

// smallInts are the header values of common Remaining counts, shared by
// every response (never modified in place), so most responses format none.
var smallInts = func() (v [1024][]string) {
	for i := range v {
		v[i] = []string{strconv.Itoa(i)}
	}
	return v
}()

// lastReset caches the X-RateLimit-Reset value of the current second:
// under load, most responses announce one of a few reset times.
var lastReset atomic.Pointer[resetValue]

type resetValue struct {
	unix int64
	hdr  []string
}

func resetHeader(unix int64) []string {
	if v := lastReset.Load(); v != nil && v.unix == unix {
		return v.hdr
	}
	v := &resetValue{unix: unix, hdr: []string{strconv.FormatInt(unix, 10)}}
	lastReset.Store(v)
	return v.hdr
}

// retryAfterSeconds rounds up, so that an agent that waits exactly that
// long is admitted.
func retryAfterSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}

// limitStatic applies the static tier to the manifest and content
// endpoints; it reports false when it answered the request itself.
func (h *Handler) limitStatic(w http.ResponseWriter, r *http.Request) bool {
	rl := h.limits
	if rl == nil || rl.static == nil {
		return true
	}
	var win [1]limiter.WindowCheck
	win[0] = limiter.WindowCheck{Key: rl.clientKey(r) + "|static", Secret: rl.secretKey, Limit: rl.static.limit}
	b := limiter.Batch{Windows: win[:]}
	if err := h.decide(r.Context(), &b); err != nil {
		h.storeFailed(w, err)
		return false
	}
	h.noteDegraded(&b)
	d := &b.Windows[0].Decision
	writeRateHeaders(w.Header(), rl.static, d)
	if !d.Allowed {
		h.observer.RateLimited(ahperror.ScopeIP)
		ahperror.Write(w, ahperror.RateLimit(ahperror.ScopeIP,
			"Rate limit exceeded for this client: "+rl.static.limit.String()+" on the manifest and content endpoints.",
			retryAfterSeconds(d.RetryAfter)))
		return false
	}
	return true
}

// storeFailed answers a request whose limits could not be decided: the
// store failed closed (on_store_error closed) or broke.
func (h *Handler) storeFailed(w http.ResponseWriter, err error) {
	// ErrStoreUnavailable was counted and logged by the resilient store.
	if !errors.Is(err, limiter.ErrStoreUnavailable) {
		h.observer.StoreError()
		h.logger.Error("rate limit decision failed", zap.Error(err))
	}
	w.Header()["Retry-After"] = retryOne
	ahperror.Write(w, ahperror.New(http.StatusServiceUnavailable, ahperror.Unavailable,
		"Rate limiting is temporarily unavailable; retry shortly."))
}

var retryOne = []string{"1"}

func (h *Handler) noteDegraded(b *limiter.Batch) {
	if b.Degraded {
		h.observer.StoreFallback()
	}
}
