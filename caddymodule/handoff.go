package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/handoff"
	"github.com/caddy-ahp/caddy-ahp/limiter"
)

func init() {
	caddy.RegisterModule(AgentHandoff{})
	httpcaddyfile.RegisterHandlerDirective("agent_handoff", parseHandoffCaddyfile)
	// After the site's rewrites and auth and after ahp (which stands right
	// after forward_auth), before request_header, encode and every handler
	// that responds: the guard sees the path the backend will get, and the
	// path the client sent too (handoff.Config's OriginalURL), so neither
	// a rewrite nor a spelling walks around it. The content origin's
	// headers are set before the handlers that respond, so they reach
	// their answers and Caddy's error answers. Placed before request_header
	// rather than after forward_auth, the order does not hang on which of
	// this file's and module.go's init runs first.
	httpcaddyfile.RegisterDirectiveOrder("agent_handoff", httpcaddyfile.Before, "request_header")
}

// AgentHandoff puts the Agent Handoff Protocol 1.0-rc1 (package handoff)
// in front of a provider's backend: discovery, proof-of-work admission,
// claim hardening and uniform failures on the API origin; the rules of
// the sandbox content origin (mode sandbox_content) and of the preview
// origin (mode preview).
type AgentHandoff struct {
	// Mode is "" (the provider's API origin), "sandbox_content" or
	// "preview".
	Mode string `json:"mode,omitempty"`

	// Provider is what discovery says (spec §6.1); required on the API
	// origin.
	Provider *HandoffProvider `json:"provider,omitempty"`

	// Paths; "" takes the spec's, "off" turns one off.
	Challenge      string   `json:"challenge,omitempty"`
	Create         string   `json:"create,omitempty"`
	Claim          string   `json:"claim,omitempty"`
	Verify         string   `json:"verify,omitempty"`
	ClaimChallenge string   `json:"claim_challenge,omitempty"`
	Solver         string   `json:"solver,omitempty"`
	Uniform        []string `json:"uniform,omitempty"`
	Exchange       []string `json:"exchange,omitempty"`
	ClaimPages     []string `json:"claim_pages,omitempty"`
	// ExchangeGET is "page" (default: a static form) or "refuse" (405).
	ExchangeGET string `json:"exchange_get,omitempty"`
	// ExchangePage is an HTML file replacing the built-in exchange page.
	ExchangePage string `json:"exchange_page,omitempty"`
	// TrustedOrigins may POST to the exchange and claim verification
	// paths from their own pages ("https://app.example.com"); other
	// origins' browser posts get the uniform failure (spec §21: CSRF).
	TrustedOrigins []string `json:"trusted_origins,omitempty"`

	Difficulty   *HandoffDifficulty `json:"difficulty,omitempty"`
	ChallengeTTL caddy.Duration     `json:"challenge_ttl,omitempty"`
	Lockout      *HandoffLockout    `json:"lockout,omitempty"`
	// BodyLimit caps creation and verification bodies (default 16 KiB).
	BodyLimit int64           `json:"body_limit,omitempty"`
	Failure   *HandoffFailure `json:"failure,omitempty"`
	RateLimit *HandoffLimits  `json:"rate_limit,omitempty"`

	// Store of challenges, velocities, lockouts and rate limits: "memory"
	// (default) or "redis".
	Store string `json:"store,omitempty"`
	// Redis URL; "" means the global { ahp { redis <url> } }.
	Redis string `json:"redis,omitempty"`
	// OnStoreError is "closed" (default: 503, admission is a security
	// boundary) or "open" (this instance's memory while Redis fails).
	OnStoreError string `json:"on_store_error,omitempty"`
	// Timeout bounds one store operation (default 100ms).
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// Zone names this configuration's state and its metrics' site label
	// (default the provider's name; "preview" or "sandbox_content" for
	// those modes). Instances of one provider share a zone.
	Zone string `json:"zone,omitempty"`

	// SkipProofOfWork lists agents (Web Bot Auth origins, e.g.
	// https://chatgpt.com) that create sandboxes without a proof of work
	// once the site's `ahp { verified_agents }` verified them; still rate
	// limited and counted toward the velocities and the breaker.
	SkipProofOfWork []string `json:"skip_proof_of_work,omitempty"`

	// Content configures mode sandbox_content.
	Content *HandoffContent `json:"content,omitempty"`

	api     *handoff.Handler
	content *handoff.ContentHandler
	stores  *storeRefs
	logger  *zap.Logger
	// proxyCheck is the server's (proxies.go): the limits, the
	// per-network difficulty and the lockouts key on {client_ip}.
	proxyCheck        *proxyCheck
	releaseProxyCheck func()
}

// HandoffProvider is discovery's provider (spec §6.1).
type HandoffProvider struct {
	Name         string         `json:"name"`
	Docs         string         `json:"docs,omitempty"`
	BaseURL      string         `json:"base_url,omitempty"`
	ContentTypes []string       `json:"content_types,omitempty"`
	SandboxTTL   caddy.Duration `json:"sandbox_ttl,omitempty"`
	// HandleRotation is the operator's declaration that the backend
	// rotates handles on publish and claim (the edge cannot enforce it).
	HandleRotation bool `json:"handle_rotation,omitempty"`
}

// HandoffDifficulty is the adaptive proof of work (spec §11.2).
type HandoffDifficulty struct {
	Base    int `json:"base,omitempty"`
	Ceiling int `json:"ceiling,omitempty"`
	// Window over which creations are counted (default 10m).
	Window caddy.Duration `json:"window,omitempty"`
	// GlobalStep, NetworkStep: creations per window adding one bit, over
	// all clients and per client network (/24, /48); -1 turns one off.
	GlobalStep  int64 `json:"global_step,omitempty"`
	NetworkStep int64 `json:"network_step,omitempty"`
	// CircuitBreaker refuses creation (503) at this many creations per
	// window; -1 turns it off.
	CircuitBreaker int64 `json:"circuit_breaker,omitempty"`
}

// HandoffLockout is claim verification's progressive lockout (spec §19.5).
type HandoffLockout struct {
	After int            `json:"after,omitempty"`
	Base  caddy.Duration `json:"base,omitempty"`
	Max   caddy.Duration `json:"max,omitempty"`
	Reset caddy.Duration `json:"reset,omitempty"`
}

// HandoffFailure is the uniform failure (spec §10).
type HandoffFailure struct {
	Status int            `json:"status,omitempty"`
	Body   string         `json:"body,omitempty"`
	Floor  caddy.Duration `json:"floor,omitempty"`
}

// HandoffLimits are the per-client rate limits, "N/unit" or "off".
type HandoffLimits struct {
	Challenge        string `json:"challenge,omitempty"`
	ChallengeNetwork string `json:"challenge_network,omitempty"`
	Create           string `json:"create,omitempty"`
	Verify           string `json:"verify,omitempty"`
	Code             string `json:"code,omitempty"`
	Uniform          string `json:"uniform,omitempty"`
}

// HandoffContent configures the sandbox content origin (spec §13, §14).
type HandoffContent struct {
	Routes     []string `json:"routes,omitempty"`
	Types      []string `json:"types,omitempty"`
	CSP        string   `json:"csp,omitempty"`
	HTMLChecks *bool    `json:"html_checks,omitempty"`
}

// Defaults of the directive (spec §29 for the difficulty; the velocity
// steps and limits are starting points to tune to a provider's traffic).
const (
	handoffBaseDifficulty    = 20
	handoffCeilingDifficulty = 28
	handoffGlobalStep        = 50
	handoffNetworkStep       = 5
	handoffCircuitBreaker    = 2000
	handoffLimitChallenge    = "60/minute"
	// Per /24 or /48: ten clients' worth, so that the 65,536 /64s of a
	// /48 cannot each take 60 a minute.
	handoffLimitChallengeNetwork = "600/minute"
	handoffLimitCreate           = "10/minute"
	handoffLimitVerify           = "30/hour"
	handoffLimitCode             = "10/hour"
	handoffLimitUniform          = "300/minute"
)

const (
	handoffModeContent = "sandbox_content"
	handoffModePreview = "preview"
	handoffDirective   = "agent_handoff"
)

// CaddyModule returns the Caddy module information.
func (AgentHandoff) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.agent_handoff",
		New: func() caddy.Module { return new(AgentHandoff) },
	}
}

// Provision builds the handler. Stores come from the shared pool, so
// `caddy reload` keeps challenges, velocities and lockouts, and every
// instance naming the same Redis and zone shares them.
func (a *AgentHandoff) Provision(ctx caddy.Context) error {
	if a.logger == nil { // tests may watch the warnings
		a.logger = ctx.Logger()
	}
	if a.earlierHandoff(ctx) {
		return fmt.Errorf("%s: a second agent_handoff block in this site; only the first would act, and this one would refuse "+
			"every creation the first admitted (it removes the admission header the first sets): merge the two blocks into one", handoffDirective)
	}
	a.stores = new(storeRefs)
	a.proxyCheck, a.releaseProxyCheck = proxyCheckFor(ctx)
	m, err := registerHandoffMetrics(ctx.GetMetricsRegistry())
	if err != nil {
		return fmt.Errorf("%s: metrics: %v", handoffDirective, err)
	}
	switch a.Mode {
	case handoffModeContent:
		return a.provisionContent(m)
	case "", handoffModePreview:
	default:
		return fmt.Errorf("%s %q: the form is `agent_handoff { … }`, `agent_handoff sandbox_content` or `agent_handoff preview`", handoffDirective, a.Mode)
	}
	if a.Content != nil {
		return fmt.Errorf("%s: routes, types, csp and html_checks belong to `agent_handoff sandbox_content { … }`", handoffDirective)
	}
	preview := a.Mode == handoffModePreview
	prov := handoff.Provider{}
	if a.Provider != nil {
		p := a.Provider
		prov = handoff.Provider{Name: p.Name, Docs: p.Docs, BaseURL: p.BaseURL, ContentTypes: p.ContentTypes,
			SandboxTTL: time.Duration(p.SandboxTTL), HandleRotation: p.HandleRotation}
	}
	if !preview && prov.Name == "" {
		return fmt.Errorf(`%s: name the provider: provider "Example FAQ" https://docs.example.com/agents`, handoffDirective)
	}
	zone := a.Zone
	if zone == "" {
		zone = prov.Name
		if preview {
			zone = handoffModePreview
		}
	}
	role := handoffRoleAPI
	if preview {
		role = handoffRolePreview
	}
	obs := newHandoffObserver(m, zone, role)

	if err := a.checkBounds(); err != nil {
		return err
	}
	diff, err := a.difficulty()
	if err != nil {
		return err
	}
	if !preview && diff.Base < handoffLowDifficulty {
		// Legitimate for tests, but likely a value meant as Anubis's hex
		// digits (difficulty 4 there is 16 bits): a warning, not an error.
		a.logger.Warn(handoffLowDifficultyWarning, zap.Int("difficulty", diff.Base),
			zap.Float64("hashes_to_solve", float64(uint64(1)<<diff.Base)))
	}
	limits, err := a.limits()
	if err != nil {
		return err
	}
	// A request waits on each store operation: bounded as ahp's
	// rate_limit timeout is, so a slow Redis cannot hold requests for
	// minutes.
	if t := time.Duration(a.Timeout); t < 0 || t > maxStoreTimeout {
		return fmt.Errorf("%s timeout %s: want a duration such as 100ms (at most 5s; leave it out for 100ms)", handoffDirective, t)
	}
	failOpen := false
	switch a.OnStoreError {
	case "", "closed":
	case "open":
		failOpen = true
	default:
		return fmt.Errorf("%s on_store_error %q: want open or closed", handoffDirective, a.OnStoreError)
	}
	store, err := a.store(ctx, zone, failOpen, obs)
	if err != nil {
		return err
	}
	limStore, err := a.stores.limiterStore(ctx, a.Store, a.Redis, time.Duration(a.Timeout), false, failOpen,
		handoffDirective+" store", a.logger, func(error) { obs.StoreError() })
	if err != nil {
		return err
	}
	limits.Store = limStore

	cfg := handoff.Config{
		Provider:       prov,
		Paths:          handoff.Paths{Challenge: a.Challenge, Create: a.Create, Claim: a.Claim, Verify: a.Verify, ClaimChallenge: a.ClaimChallenge, Solver: a.Solver, Uniform: a.Uniform, Exchange: a.Exchange, ClaimPages: a.ClaimPages},
		Difficulty:     diff,
		ChallengeTTL:   time.Duration(a.ChallengeTTL),
		BodyLimit:      a.BodyLimit,
		ExchangeGET:    a.ExchangeGET,
		TrustedOrigins: a.TrustedOrigins,
		Preview:        preview,
		Store:          store,
		Limits:         limits,
		Zone:           zone,
		ClientIP:       clientIP,
		TrustedProxy:   trustedProxy,
		OriginalURL:    clientURL,
		RequestID:      requestID,
		Logger:         a.logger,
		Observer:       obs,
	}
	if l := a.Lockout; l != nil {
		cfg.Lockout = handoff.Lockout{After: l.After, Base: time.Duration(l.Base), Max: time.Duration(l.Max), Reset: time.Duration(l.Reset)}
	}
	if f := a.Failure; f != nil {
		cfg.Failure = handoff.Failure{Status: f.Status, Body: []byte(f.Body), Floor: time.Duration(f.Floor)}
		if f.Floor < 0 {
			return fmt.Errorf("%s failure floor: must not be negative", handoffDirective)
		}
	}
	if len(a.SkipProofOfWork) > 0 {
		if preview {
			return fmt.Errorf("%s preview: skip_proof_of_work belongs to the API site's agent_handoff block", handoffDirective)
		}
		if cfg.ProofExempt, err = a.skipProofOfWork(ctx); err != nil {
			return err
		}
	}
	if a.ExchangePage != "" {
		page, err := os.ReadFile(a.ExchangePage)
		if err != nil {
			return fmt.Errorf("%s exchange_page: %v", handoffDirective, err)
		}
		if strings.Contains(strings.ToLower(string(page)), "<script") {
			return fmt.Errorf("%s exchange_page %s: the exchange page may hold no script (spec §17.2)", handoffDirective, a.ExchangePage)
		}
		cfg.ExchangePageHTML = page
	}
	if a.api, err = handoff.New(cfg); err != nil {
		return fmt.Errorf("%s: %v", handoffDirective, err)
	}
	if err := checkReach(ctx, a, handoffDirective, handoffReachFix, a.reachProbes()); err != nil {
		return err
	}
	if !preview {
		// Last: a configuration refused before here creates no gauge
		// series for its zone.
		if err := a.holdGauges(m, zone, diff.Base); err != nil {
			return err
		}
		obs.holdGaugesFor(m, zone)
	}
	if !preview && a.Verify == handoff.Off {
		// Legitimate (a backend may verify claims itself), but the
		// spec's two factors are then the backend's to enforce: say so
		// at `caddy validate` and at every start.
		a.logger.Warn(handoffVerifyOffWarning, zap.String("provider", prov.Name))
	}
	return nil
}

const handoffVerifyOffWarning = "agent_handoff verify off: the edge verifies no claim, so discovery omits claim.method, " +
	"no claim challenge is issued and claim start answers pass unchanged; the backend must itself require the claim code " +
	"and a fresh proof of work of its own (spec §19.2), or turn verify on"

// handoffLowDifficulty is the base below which creation costs a client
// next to nothing: 2^12 hashes take about a millisecond.
const handoffLowDifficulty = 12

const handoffLowDifficultyWarning = "agent_handoff difficulty: the base is in bits (leading zero bits of the SHA-256), " +
	"not hex digits as in Anubis, and below 12 bits a proof of work costs a client about a millisecond; " +
	"the spec's default is difficulty 20 28 (Anubis's difficulty 4 is 16 bits here)"

const handoffReachFix = "put agent_handoff directly in the site block with no matcher of its own (it acts only on its " +
	"endpoints' paths and passes every other request on), outside handle and route blocks, " +
	"or move the handle that proxies the API inside the same block as agent_handoff"

// reachProbes are the requests the edge must see. Creation, claims and
// the exchange would otherwise reach the backend unchecked (a client's
// own admission header included); discovery, the challenges and the
// solver would otherwise be missing or the backend's, while the config
// looks valid: a matcher such as `agent_handoff /v1/* { … }` leaves the
// well-known paths and the exchange out. An endpoint turned off is not
// probed.
func (a *AgentHandoff) reachProbes() []reachProbe {
	var probes []reachProbe
	add := func(method, path, what string) {
		if path != "" {
			probes = append(probes, reachProbe{method: method, path: path, what: what, mounted: true})
		}
	}
	p := a.api.Paths()
	// What would pass unchecked first, so the error names the worst.
	add(http.MethodPost, p.Create, "sandbox creation")
	add(http.MethodPost, p.Claim, "claim start")
	add(http.MethodPost, p.Verify, "claim verification")
	exchange, page := "the exchange", "the exchange's scanner-safe page"
	if a.Mode != handoffModePreview {
		// The API origin guards exchange paths too, by default: a site
		// that serves none says so.
		exchange += "; exchange off turns it off on a site that serves none"
		page += "; exchange off turns it off on a site that serves none"
	}
	for _, path := range p.Exchange {
		add(http.MethodPost, path, exchange)
		// GET too: the scanner-safe page stands between a link preview
		// and the code's single use.
		add(http.MethodGet, path, page)
	}
	if a.Mode == handoffModePreview {
		return probes
	}
	add(http.MethodGet, handoff.DiscoveryPath, "discovery")
	add(http.MethodGet, p.Challenge, "the creation challenge")
	add(http.MethodGet, p.ClaimChallenge, "the claim challenge; claim_challenge off turns it off")
	add(http.MethodGet, p.Solver, "the solver; solver off turns it off")
	return probes
}

// earlierHandoff reports whether a route before this block's, in the
// same list and matching every request, holds an agent_handoff of the
// same mode: two blocks in one site. Refused rather than warned about:
// the first answers discovery and the challenges, and the second, seeing
// the first's admitted creations, strips their admission header and
// refuses them. Routes with matchers (a host each) may keep two blocks
// apart, and doubt never refuses.
func (a *AgentHandoff) earlierHandoff(ctx caddy.Context) bool {
	steps := reachSteps(ctx, a)
	if len(steps) == 0 {
		return false
	}
	st := steps[len(steps)-1]
	// The Caddyfile puts a site's directives with the same matchers in
	// one route: still raw while its handlers load.
	same := 0
	for _, raw := range st.list[st.at].HandlersRaw {
		var h struct {
			Handler, Mode string
		}
		if json.Unmarshal(raw, &h) == nil && h.Handler == handoffDirective && h.Mode == a.Mode {
			same++
		}
	}
	if same > 1 {
		return true
	}
	for i := 0; i < st.at; i++ {
		rt := &st.list[i]
		if len(rt.MatcherSets) > 0 || len(rt.MatcherSetsRaw) > 0 {
			continue
		}
		for _, h := range rt.Handlers {
			if o, ok := h.(*AgentHandoff); ok && o.Mode == a.Mode {
				return true
			}
		}
	}
	return false
}

func (a *AgentHandoff) provisionContent(m *handoffMetrics) error {
	if a.Provider != nil || a.Challenge != "" || a.Create != "" || a.Verify != "" || a.Claim != "" || len(a.Uniform) > 0 || len(a.Exchange) > 0 || len(a.SkipProofOfWork) > 0 {
		return fmt.Errorf("%s sandbox_content: takes only routes, types, csp and html_checks; the provider's endpoints go in the API site's agent_handoff block", handoffDirective)
	}
	zone := a.Zone
	if zone == "" {
		zone = handoffModeContent
	}
	cfg := handoff.ContentConfig{RequestID: requestID, Logger: a.logger, Observer: newHandoffObserver(m, zone, handoffRoleContent), ErrorStatus: errorStatus}
	if c := a.Content; c != nil {
		cfg.Routes, cfg.Types, cfg.CSP, cfg.HTMLChecks = c.Routes, c.Types, c.CSP, c.HTMLChecks
	}
	var err error
	if a.content, err = handoff.NewContent(cfg); err != nil {
		return fmt.Errorf("%s sandbox_content: %v", handoffDirective, err)
	}
	return nil
}

// difficulty applies the defaults; -1 turns a step or the breaker off.
// checkBounds holds a JSON configuration to the Caddyfile parser's bounds
// (zero takes the default): a body limit past 1 GiB would be buffered per
// request, and a negative one or a negative challenge_ttl or sandbox_ttl
// would silently become the default.
func (a *AgentHandoff) checkBounds() error {
	if a.BodyLimit < 0 || a.BodyLimit > 1<<30 {
		return fmt.Errorf("%s body_limit %d: want a size in bytes up to 1 GiB (1073741824), such as 16384, or leave it out for 16KB", handoffDirective, a.BodyLimit)
	}
	if a.ChallengeTTL < 0 {
		return fmt.Errorf("%s challenge_ttl %s: want a positive duration up to 5m, or leave it out for 5m", handoffDirective, time.Duration(a.ChallengeTTL))
	}
	if p := a.Provider; p != nil && p.SandboxTTL < 0 {
		return fmt.Errorf("%s sandbox_ttl %s: want a positive duration such as 48h, or leave it out for 48h", handoffDirective, time.Duration(p.SandboxTTL))
	}
	return nil
}

func (a *AgentHandoff) difficulty() (handoff.Difficulty, error) {
	d := handoff.Difficulty{Base: handoffBaseDifficulty, Ceiling: handoffCeilingDifficulty,
		GlobalStep: handoffGlobalStep, NetworkStep: handoffNetworkStep, Breaker: handoffCircuitBreaker}
	if c := a.Difficulty; c != nil {
		if c.Base != 0 {
			d.Base = c.Base
			if c.Ceiling == 0 {
				d.Ceiling = max(c.Base, handoffCeilingDifficulty)
			}
		}
		if c.Ceiling != 0 {
			d.Ceiling = c.Ceiling
		}
		d.Window = time.Duration(c.Window)
		pick := func(v, def int64) int64 {
			switch {
			case v < 0:
				return 0
			case v == 0:
				return def
			}
			return v
		}
		d.GlobalStep, d.NetworkStep, d.Breaker = pick(c.GlobalStep, d.GlobalStep), pick(c.NetworkStep, d.NetworkStep), pick(c.CircuitBreaker, d.Breaker)
	}
	if err := d.Validate(); err != nil {
		return d, fmt.Errorf("%s difficulty: %v (difficulty <base> <ceiling>, in bits: e.g. difficulty 20 28)", handoffDirective, err)
	}
	return d, nil
}

func (a *AgentHandoff) limits() (*handoff.RateLimits, error) {
	c := a.RateLimit
	if c == nil {
		c = &HandoffLimits{}
	}
	l := &handoff.RateLimits{}
	for _, t := range []struct {
		name, value, def string
		dst              *limiter.Limit
	}{
		{"challenge", c.Challenge, handoffLimitChallenge, &l.Challenge},
		{"challenge_network", c.ChallengeNetwork, handoffLimitChallengeNetwork, &l.ChallengeNetwork},
		{"create", c.Create, handoffLimitCreate, &l.Create},
		{"verify", c.Verify, handoffLimitVerify, &l.Verify},
		{"code", c.Code, handoffLimitCode, &l.Code},
		{"uniform", c.Uniform, handoffLimitUniform, &l.Uniform},
	} {
		v := t.value
		if v == "" {
			v = t.def
		}
		if v == "off" {
			continue
		}
		lim, err := limiter.ParseLimit(v)
		if err != nil {
			return nil, fmt.Errorf("%s rate_limit %s: %v", handoffDirective, t.name, err)
		}
		*t.dst = lim
	}
	return l, nil
}

// handoffGauges holds a zone's difficulty and velocity series while a
// configuration that runs the zone holds it. Taken last in Provision, so
// a configuration refused by `caddy reload` never writes the running
// zone's gauges; set only when the zone is new, so a reload does not show
// a velocity of 0 while the kept store counts on; and when the last holder
// goes (the zone renamed or removed), its series leave /metrics instead of
// exporting the last values for good.
type handoffGauges struct {
	m    *handoffMetrics
	zone string
}

func (g handoffGauges) Destruct() error {
	g.m.difficulty.DeleteLabelValues(g.zone)
	g.m.velocity.DeleteLabelValues(g.zone)
	return nil
}

func (a *AgentHandoff) holdGauges(m *handoffMetrics, zone string, base int) error {
	key := "handoff:gauges:" + zone
	_, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		m.difficulty.WithLabelValues(zone).Set(float64(base))
		m.velocity.WithLabelValues(zone).Set(0)
		return handoffGauges{m: m, zone: zone}, nil
	})
	if err != nil {
		return err
	}
	a.stores.hold(key)
	return nil
}

type pooledHandoffMemory struct{ *handoff.Memory }

func (pooledHandoffMemory) Destruct() error { return nil }

// store is the pooled memory store of the zone, or Redis over the shared
// client with the failure policy applied.
func (a *AgentHandoff) store(ctx caddy.Context, zone string, failOpen bool, obs *handoffObserver) (handoff.Store, error) {
	key := "handoff:memory:" + zone
	v, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		return pooledHandoffMemory{handoff.NewMemory(handoff.MemoryOptions{})}, nil
	})
	if err != nil {
		return nil, err
	}
	a.stores.hold(key)
	memory := v.(pooledHandoffMemory).Memory
	switch a.Store {
	case "", "memory":
		if a.Redis != "" {
			return nil, fmt.Errorf("%s: a Redis URL was given with store memory; write store redis %s", handoffDirective, redactURL(a.Redis))
		}
		return memory, nil
	case "redis":
	default:
		return nil, fmt.Errorf("%s store %s: must be memory or redis [<url>]%s", handoffDirective, shownStoreKind(a.Store), urlAsKindHint(a.Store, "store", "redis"))
	}
	url, err := redisURL(ctx, a.Redis, handoffDirective+" store redis")
	if err != nil {
		return nil, err
	}
	client, err := a.stores.redisClient(url)
	if err != nil {
		return nil, fmt.Errorf("%s store redis: %v", handoffDirective, err)
	}
	logs := &throttledLog{logger: a.logger, every: 10 * time.Second}
	return &handoff.Resilient{
		Primary:  handoff.NewRedis(client, handoff.RedisOptions{Zone: zone, Timeout: time.Duration(a.Timeout)}),
		Fallback: memory,
		FailOpen: failOpen,
		OnError: func(err error) {
			obs.StoreError()
			logs.warn("agent handoff store failing", err, failOpen)
		},
	}, nil
}

// clientURL is the URL the client sent, before the site's rewrites;
// Caddy keeps it in the request's context.
func clientURL(r *http.Request) *url.URL {
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		return orig.URL
	}
	return r.URL
}

// requestID is Caddy's {http.request.uuid}, the id its logs can show.
func requestID(r *http.Request) string {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		return ""
	}
	id, _ := repl.GetString("http.request.uuid")
	return id
}

// Validate checks what Provision cannot have caught already.
func (a *AgentHandoff) Validate() error {
	if a.api == nil && a.content == nil {
		return fmt.Errorf("%s: handler was not provisioned", handoffDirective)
	}
	if p := a.Provider; p != nil && p.Docs != "" {
		// Agents would read a bare host as a path of the discovery document.
		if u, err := url.Parse(p.Docs); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("%s provider %q %q: the docs URL must be absolute, e.g. https://docs.example.com/agents", handoffDirective, p.Name, p.Docs)
		}
	}
	return checkZone(handoffDirective+" zone", a.Zone)
}

// Cleanup releases the stores after a reload or stop.
func (a *AgentHandoff) Cleanup() error {
	a.stores.release()
	if a.releaseProxyCheck != nil {
		a.releaseProxyCheck()
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (a *AgentHandoff) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	a.proxyCheck.check(r, a.logger)
	if a.content != nil {
		return a.content.ServeHTTP(w, r, next)
	}
	return a.api.ServeHTTP(w, r, next)
}

var (
	_ caddy.Provisioner           = (*AgentHandoff)(nil)
	_ caddy.Validator             = (*AgentHandoff)(nil)
	_ caddy.CleanerUpper          = (*AgentHandoff)(nil)
	_ caddyhttp.MiddlewareHandler = (*AgentHandoff)(nil)
)
