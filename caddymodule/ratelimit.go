package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/internal/logthrottle"
	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

// RateLimitConfig configures spec §11's limits. Every limit has the
// spec's recommended default; "off" turns one tier off.
type RateLimitConfig struct {
	// Off turns rate limiting off entirely.
	Off bool `json:"off,omitempty"`
	// Store is "memory" (default: this instance only) or "redis"
	// (shared by every instance using the same Redis).
	Store string `json:"store,omitempty"`
	// Redis is the Redis URL for store redis: redis:// or rediss://
	// (single node), redis+cluster:// or rediss+cluster:// (Cluster; more
	// seeds as ?addr=host:port), redis+sentinel:// or rediss+sentinel://
	// (Sentinel; ?master_name=...). Placeholders such as {env.REDIS_URL}
	// are replaced. Empty: the global `ahp { redis <url> }` option.
	Redis string `json:"redis,omitempty"`
	// Key identifies a client; default {client_ip}, which honours the
	// server's trusted_proxies. Any Caddy placeholder works.
	Key string `json:"key,omitempty"`
	// Limits as "N/second|minute|hour|day", or "off".
	Static          string `json:"static,omitempty"`
	Unauthenticated string `json:"unauthenticated,omitempty"`
	Authenticated   string `json:"authenticated,omitempty"`
	Action          string `json:"action,omitempty"`
	PerAgent        string `json:"per_agent,omitempty"`
	// Verified limits capability calls of agents that proved who they
	// are (verified_agents) without verified credentials; unset, they
	// count as unauthenticated.
	Verified string `json:"verified,omitempty"`
	// TokenBudget is "N/session" or "off".
	TokenBudget string `json:"token_budget,omitempty"`
	// OnStoreError is "open" (default: fall back to this instance's
	// memory store) or "closed" (answer 503).
	OnStoreError string `json:"on_store_error,omitempty"`
	// Timeout bounds one Redis decision; default 50ms.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// IPv6Prefix groups IPv6 clients; default 64.
	IPv6Prefix int `json:"ipv6_prefix,omitempty"`
	// Zone names this site's keys in a shared store; default the
	// manifest's name. Sites that must share limits use one zone.
	Zone string `json:"zone,omitempty"`
	// Headers selects the rate-limit fields: "x-ratelimit" (the spec's
	// X-RateLimit-*, default), "ietf" (RateLimit and RateLimit-Policy,
	// draft-ietf-httpapi-ratelimit-headers) or "both".
	Headers string `json:"headers,omitempty"`
	// RetryJitter adds up to this much, at random, to Retry-After, so
	// refused agents do not come back in lockstep.
	RetryJitter caddy.Duration `json:"retry_jitter,omitempty"`
	// Leases is "auto" (default) or "off". With the Redis store, a hot
	// key under a limit of at least 960 events per window is decided from
	// leases: an instance has Redis count a slice of the key's budget
	// ahead and hands it out without a round trip until it is spent or
	// the sub-window it was counted in ends (limiter/lease.go). No more
	// than N events per window either way; X-RateLimit-Remaining is then
	// the instance's view. "off" decides every event in Redis.
	Leases string `json:"leases,omitempty"`
	// Mode is "enforce" (default) or "log": decide and count as usual,
	// but log and count what would be refused instead of refusing it.
	Mode string `json:"mode,omitempty"`
}

// Spec §11.2 and §11.4's recommended defaults.
const (
	defaultStatic          = "120/minute"
	defaultUnauthenticated = "30/minute"
	defaultAuthenticated   = "120/minute"
	defaultAction          = "30/minute"
	defaultTokenBudget     = "10000/session"
)

// leasesForms is what `leases` takes, for its error messages.
const leasesForms = "want auto (default: with the Redis store, hot keys under limits of 960 or more per window are decided from leases, fewer round trips) or off (every event decided in Redis, X-RateLimit-Remaining exact across instances)"

// What on_store_error and mode take, for their error messages.
const (
	onStoreErrorForms = "must be open (fall back to per-instance memory limits) or closed (answer 503)"
	modeForms         = "must be enforce (refuse over the limits, default) or log (count and log what would be refused, refuse nothing: a dry run)"
	maxStoreTimeout   = 5 * time.Second
)

// validate checks the options a JSON config can get wrong that limits()
// does not parse, with the Caddyfile parser's bounds: a JSON config must
// not load what the Caddyfile refuses (on_store_error "close" failing
// open, a 10m Redis timeout holding every request).
func (c *RateLimitConfig) validate() error {
	switch c.OnStoreError {
	case "", "open", "closed":
	default:
		return fmt.Errorf("ahp rate_limit on_store_error %q: %s", c.OnStoreError, onStoreErrorForms)
	}
	switch c.Mode {
	case "", "enforce", "log":
	default:
		return fmt.Errorf("ahp rate_limit mode %q: %s", c.Mode, modeForms)
	}
	if c.Leases != "" && c.Leases != "auto" && c.Leases != "off" {
		return fmt.Errorf("ahp rate_limit leases %q: %s", c.Leases, leasesForms)
	}
	if t := time.Duration(c.Timeout); t < 0 || t > maxStoreTimeout {
		return fmt.Errorf("ahp rate_limit timeout %s: want a duration such as 50ms (at most 5s; leave it out for 50ms)", t)
	}
	if j := time.Duration(c.RetryJitter); j != 0 && (j < time.Second || j > time.Hour) {
		return fmt.Errorf("ahp rate_limit retry_jitter %s: want a duration from 1s to 1h, such as 5s (Retry-After is in whole seconds), or leave it out", j)
	}
	if err := checkZone("ahp rate_limit zone", c.Zone); err != nil {
		return err
	}
	if c.Key != "" && (!strings.Contains(c.Key, "{") || !placeholdersClosed(c.Key)) {
		return fmt.Errorf("ahp rate_limit key %q names no placeholder (or a brace is missing), so every client would share one limit: write {client_ip} (the default) or a placeholder such as {http.request.header.X-Api-Key}", c.Key)
	}
	if c.IPv6Prefix < 0 || c.IPv6Prefix > 128 {
		return fmt.Errorf("ahp rate_limit ipv6_prefix %d: want a prefix length from 1 to 128 (default 64)", c.IPv6Prefix)
	}
	_, err := c.headers()
	return err
}

// validateOff refuses, with rate limiting off, what only its store keeps:
// sessions (their turns and idle, spec §6.5) and token budgets (§11.4).
// With no store nothing would enforce them, silently.
func (c *RateLimitConfig) validateOff(session *SessionConfig) error {
	// A JSON config may set limits beside "off"; none would be enforced.
	for _, f := range []struct{ name, value string }{
		{"static", c.Static}, {"unauthenticated", c.Unauthenticated}, {"authenticated", c.Authenticated},
		{"action", c.Action}, {"per_agent", c.PerAgent}, {"verified", c.Verified},
	} {
		if f.value != "" && f.value != "off" {
			return fmt.Errorf("ahp rate_limit %s %q: rate limiting is off, so no limit is enforced; remove `off` (and turn off only the tiers you do not want), or remove %s", f.name, f.value, f.name)
		}
	}
	if c.TokenBudget != "" && c.TokenBudget != "off" {
		return fmt.Errorf("ahp rate_limit token_budget %q: rate limiting is off, so no store keeps sessions and nothing enforces a budget; "+
			"remove `off` (turn off the tiers you do not want, e.g. `unauthenticated off`, in a rate_limit block), or remove token_budget", c.TokenBudget)
	}
	if session != nil && (session.MaxTurns != 0 || session.Idle != 0) {
		return fmt.Errorf("ahp session: rate_limit is off, so no store keeps sessions and max_turns and idle are not enforced; " +
			"replace `rate_limit off` with a rate_limit block that turns off the tiers you do not want (e.g. `unauthenticated off`), or remove the session block")
	}
	return nil
}

// parsedLimits are the limits with defaults applied.
type parsedLimits struct {
	static, unauth, authed, action, perAgent, verified limiter.Limit
	budget                                             int64
}

func (c *RateLimitConfig) limits() (parsedLimits, error) {
	var p parsedLimits
	var err error
	parse := func(field, value, def string, dst *limiter.Limit) {
		if err != nil {
			return
		}
		if value == "" {
			value = def
		}
		if value == "" || value == "off" {
			return
		}
		l, e := limiter.ParseLimit(value)
		if e != nil {
			err = fmt.Errorf("ahp rate_limit %s %q: %v", field, value, e)
			return
		}
		*dst = l
	}
	parse("static", c.Static, defaultStatic, &p.static)
	parse("unauthenticated", c.Unauthenticated, defaultUnauthenticated, &p.unauth)
	parse("authenticated", c.Authenticated, defaultAuthenticated, &p.authed)
	parse("action", c.Action, defaultAction, &p.action)
	parse("per_agent", c.PerAgent, "", &p.perAgent)
	parse("verified", c.Verified, "", &p.verified)
	if err != nil {
		return p, err
	}
	budget := c.TokenBudget
	if budget == "" {
		budget = defaultTokenBudget
	}
	if budget != "off" {
		n, ok := strings.CutSuffix(budget, "/session")
		var v int64
		if _, e := fmt.Sscanf(n, "%d", &v); !ok || e != nil || v <= 0 || fmt.Sprint(v) != n {
			return p, fmt.Errorf("ahp rate_limit token_budget %q: want N/session, e.g. 10000/session, or off", budget)
		}
		p.budget = v
	}
	return p, nil
}

// overlay is what the limits say in the manifest (spec §11.5), so that
// manifest and behaviour cannot disagree. verifiesKeys is whether the
// gateway verifies credentials (keys loaded, authentication not none):
// only then can a call be charged the authenticated tier, so only then is
// it declared; without it an agent that sends its key would be promised
// the authenticated limit and held to the unauthenticated one.
func (p parsedLimits) overlay(hasConverse, verifiesKeys bool) *manifest.Manifest {
	str := func(l limiter.Limit) string {
		if l.Events == 0 {
			return ""
		}
		return l.String()
	}
	budget := ""
	if p.budget > 0 && hasConverse {
		budget = fmt.Sprintf("%d/session", p.budget)
	}
	rl := &manifest.RateLimits{}
	if hasConverse {
		if s := str(p.unauth); s != "" || budget != "" {
			rl.Unauthenticated = &manifest.RateLimitTier{Requests: s, TokenBudget: budget}
		}
		if s := str(p.authed); verifiesKeys && (s != "" || budget != "") {
			rl.Authenticated = &manifest.RateLimitTier{Requests: s, TokenBudget: budget}
		}
	} else if s := str(p.static); s != "" {
		rl.Unauthenticated = &manifest.RateLimitTier{Requests: s}
	}
	m := &manifest.Manifest{}
	if rl.Unauthenticated != nil || rl.Authenticated != nil {
		m.RateLimits = rl
	}
	if rl.Unauthenticated != nil {
		m.RateLimit = rl.Unauthenticated.Requests
	}
	return m
}

// clientKeyFunc turns the configured key into a function of the request.
func clientKeyFunc(tmpl string, ipv6Prefix int, logger *zap.Logger) (fn func(*http.Request) string, secret bool) {
	clientIP := func(r *http.Request) string {
		if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
			return ip
		}
		return r.RemoteAddr
	}
	switch tmpl {
	case "", "{client_ip}", "{http.vars.client_ip}":
		return clientIP, false
	}
	secret = !(tmpl == "{remote_host}" || tmpl == "{http.request.remote.host}")
	var warned sync.Once
	return func(r *http.Request) string {
		repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		if repl == nil {
			return r.RemoteAddr
		}
		if k, err := repl.ReplaceFunc(tmpl, noEmptyPlaceholder); err == nil {
			return k
		}
		// A placeholder came out empty (a header the request lacks, one
		// Caddy does not have): the key would be one constant for all such
		// requests, and the first client would lock out the rest. They are
		// limited by address instead (an IPv6 one by its /64, as the default
		// key counts it), under a NUL no header value can hold: a client
		// must not spend an address's bucket by sending it as the key.
		warned.Do(func() {
			logger.Warn("ahp rate_limit key: a placeholder came out empty for a request; such requests are limited by client address (is it spelled right?)",
				zap.String("key", tmpl))
		})
		id, _ := ratelimit.ClientID(clientIP(r), ipv6Prefix)
		return "\x00" + id
	}, secret
}

var errEmptyPlaceholder = errors.New("empty placeholder")

// noEmptyPlaceholder stops a key's replacement at the first placeholder
// that comes out empty.
func noEmptyPlaceholder(_ string, val any) (any, error) {
	if caddy.ToString(val) == "" {
		return nil, errEmptyPlaceholder
	}
	return val, nil
}

// placeholdersClosed reports whether every '{' of a key opens a placeholder
// that a '}' closes before the next '{', and no '}' stands alone: a key
// with a brace forgotten is a constant.
func placeholdersClosed(key string) bool {
	open := -1
	for i := 0; i < len(key); i++ {
		switch key[i] {
		case '{':
			if open >= 0 {
				return false
			}
			open = i
		case '}':
			if open < 0 || i == open+1 {
				return false
			}
			open = -1
		}
	}
	return open < 0
}

// newRedisClient builds a go-redis client from the URL forms documented on
// RateLimitConfig.Redis: see limiter.NewRedisClient. Its errors never hold
// the password.
func newRedisClient(raw string) (redis.UniversalClient, error) { return limiter.NewRedisClient(raw) }

// redactURL hides a URL's password, for error messages and logs.
func redactURL(raw string) string { return limiter.RedactURL(raw) }

// throttledLog logs a recurring store failure at most once per period,
// with the number of occurrences in between, so a dead Redis cannot
// flood the logs.
type throttledLog struct {
	logger *zap.Logger
	every  time.Duration
	t      logthrottle.Throttle
}

func (t *throttledLog) warn(msg string, err error, failOpen bool) {
	n, ok := t.t.Allow(time.Now(), t.every)
	if !ok {
		return
	}
	policy := "closed: answering 503"
	if failOpen {
		policy = "open: limiting per instance from memory"
	}
	t.logger.Warn(msg, zap.Error(err), zap.String("on_store_error", policy), zap.Int("suppressed_since_last", n))
}

// rateLimits builds the site's rate-limit policy.
func (h *Handler) rateLimits(ctx caddy.Context, cfg *RateLimitConfig, p parsedLimits, zone string, obs *observer) (*ratelimit.Policy, error) {
	store, err := h.stores.limiterStore(ctx, cfg.Store, cfg.Redis, time.Duration(cfg.Timeout), cfg.Leases == "off", cfg.OnStoreError != "closed",
		"ahp rate_limit store", h.logger, func(error) { obs.StoreError() })
	if err != nil {
		return nil, err
	}
	headers, err := cfg.headers()
	if err != nil {
		return nil, err
	}
	prefix := cfg.IPv6Prefix
	if prefix == 0 {
		prefix = 64
	}
	keyFn, secret := clientKeyFunc(cfg.Key, prefix, h.logger)
	return ratelimit.New(ratelimit.Config{
		Store:           store,
		Zone:            zone,
		Static:          p.static,
		Unauthenticated: p.unauth,
		Authenticated:   p.authed,
		Action:          p.action,
		PerAgent:        p.perAgent,
		Verified:        p.verified,
		TokenBudget:     p.budget,
		ClientKey:       keyFn,
		SecretKey:       secret,
		IPv6Prefix:      cfg.IPv6Prefix,
		Headers:         headers,
		Jitter:          time.Duration(cfg.RetryJitter),
		DryRun:          cfg.Mode == "log",
		Logger:          h.logger,
		Observer:        obs,
		// No backstop deadline: the memory store cannot hang and the Redis
		// store bounds each decision by its own timeout.
	}), nil
}

func (c *RateLimitConfig) headers() (ratelimit.Headers, error) {
	switch c.Headers {
	case "", "x-ratelimit":
		return ratelimit.HeadersAHP, nil
	case "ietf":
		return ratelimit.HeadersIETF, nil
	case "both":
		return ratelimit.HeadersBoth, nil
	}
	return 0, fmt.Errorf("ahp rate_limit headers %q: must be x-ratelimit (the spec's X-RateLimit-*, default), ietf (RateLimit and RateLimit-Policy) or both", c.Headers)
}
