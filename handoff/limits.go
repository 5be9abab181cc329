package handoff

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// RateLimits are the per-client limits of the handoff paths (spec §10:
// before existence checks; §19.5: per client and per claim code). They run
// in a limiter.Store shared with the rest of the plugin; a zero Limit turns
// one tier off.
type RateLimits struct {
	Store limiter.Store
	// Challenge: challenge requests (creation and claim) per client.
	Challenge limiter.Limit
	// ChallengeNetwork: challenge requests per client network (/24, /48),
	// counted only when the client's own window admits them. Without it an
	// IPv6 /48 holds 65,536 client budgets, and every challenge issued is
	// kept until it expires: this caps what one network can make a store
	// hold.
	ChallengeNetwork limiter.Limit
	// Create: creation attempts per client.
	Create limiter.Limit
	// Verify: claim verifications per client.
	Verify limiter.Limit
	// Code: claim verifications per claim code (keyed by its hash).
	Code limiter.Limit
	// Uniform: requests on the uniform paths per client.
	Uniform limiter.Limit
}

// tier names a rate-limit tier in keys, metrics and logs.
type tier string

const (
	tierChallenge tier = "challenge"
	tierNetwork   tier = "challenge_network"
	tierCreate    tier = "create"
	tierVerify    tier = "verify"
	tierCode      tier = "code"
	tierUniform   tier = "uniform"
)

func (l *RateLimits) limit(t tier) limiter.Limit {
	if l == nil {
		return limiter.Limit{}
	}
	switch t {
	case tierChallenge:
		return l.Challenge
	case tierCreate:
		return l.Create
	case tierVerify:
		return l.Verify
	case tierCode:
		return l.Code
	case tierNetwork:
		return l.ChallengeNetwork
	case tierUniform:
		return l.Uniform
	}
	return limiter.Limit{}
}

// limitResult is a rate-limit decision.
type limitResult struct {
	allowed    bool
	retryAfter time.Duration
	tier       tier // the tier that refused
}

// check decides the client's tier (client is clientKey(ip)) and, in the
// same store call, a tier the client shares with others: the claim code's
// when code is set (verify), the client network's for challenges. A store
// failure with the closed policy returns limiter.ErrStoreUnavailable.
func (h *Handler) check(ctx context.Context, t tier, ip, client, code string) (limitResult, error) {
	lim := h.limits.limit(t)
	var shared limiter.WindowCheck
	switch {
	case code != "":
		// The store hashes a Secret key before it keeps it. The code's
		// window is shared by every client guessing it: it counts only
		// attempts the client's own window admitted, so a client over its
		// limit cannot exhaust it for the human who holds the code.
		shared = limiter.WindowCheck{Secret: true, Limit: h.limits.limit(tierCode), Shared: true}
		if shared.Limit.Events > 0 {
			shared.Key = h.keyPrefix + "code:" + code
		}
	case t == tierChallenge:
		shared = limiter.WindowCheck{Limit: h.limits.limit(tierNetwork), Shared: true}
		if shared.Limit.Events > 0 {
			shared.Key = h.keyPrefix + string(tierNetwork) + ":" + Network(ip)
		}
	}
	if lim.Events == 0 && shared.Limit.Events == 0 {
		return limitResult{allowed: true}, nil
	}
	var ws [2]limiter.WindowCheck
	var tiers [2]tier
	n := 0
	if lim.Events > 0 {
		ws[n], tiers[n] = limiter.WindowCheck{Key: h.keyPrefix + string(t) + ":" + client, Limit: lim}, t
		n++
	}
	if shared.Limit.Events > 0 {
		ws[n], tiers[n] = shared, tierNetwork
		if code != "" {
			tiers[n] = tierCode
		}
		n++
	}
	b := limiter.Batch{Windows: ws[:n]}
	if err := h.limits.Store.Do(ctx, &b); err != nil {
		return limitResult{}, err
	}
	for i := range b.Windows {
		if b.Windows[i].Skipped {
			continue
		}
		if d := b.Windows[i].Decision; !d.Allowed {
			return limitResult{retryAfter: d.RetryAfter, tier: tiers[i]}, nil
		}
	}
	return limitResult{allowed: true}, nil
}

// clientIP is the client's address: the configured function (Caddy's
// client_ip, which honours trusted_proxies), else the peer's.
func (h *Handler) clientIP(r *http.Request) string {
	if h.clientIPFunc != nil {
		if ip := h.clientIPFunc(r); ip != "" {
			return ip
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Network coarsens an address to its network: /24 for IPv4, /48 for IPv6
// (spec §11.2's per-network velocity, §22's coarse abuse signals). An
// unparsable address is returned as "unknown", never as given.
func Network(ip string) string { return prefix(ip, 24, 48) }

// clientKey is the rate-limit and lockout identity of a client: its
// address, IPv6 grouped by /64 (one subscriber's allocation).
func clientKey(ip string) string { return prefix(ip, 32, 64) }

func prefix(ip string, v4, v6 int) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "unknown"
	}
	a = a.Unmap().WithZone("")
	bits := v6
	if a.Is4() {
		bits = v4
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return "unknown"
	}
	return p.String()
}

// codeKey is what a claim code becomes before it is kept anywhere: its
// SHA-256, so stores and logs never hold a code.
func codeKey(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}
