package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/converse"
	"github.com/caddy-ahp/caddy-ahp/discovery"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/webbotauth"
)

// VerifiedAgentHeader tells the site's handlers and concierge which agent
// a request proved to be (a Web Bot Auth key directory's origin). The
// plugin deletes it from every request before deciding it, so it can be
// trusted behind the plugin.
const VerifiedAgentHeader = "X-Ahp-Verified-Agent"

// The placeholders the verification step sets on every request, for any
// Caddy route to match on (`@signed expression {ahp.agent.verified} ==
// "true"`). Unlike the header they cannot come from the client at all,
// so handlers of this plugin that decide on the agent (agent_handoff's
// proof-of-work skip) read them.
const (
	placeholderVerified = "ahp.agent.verified" // "true" or "false"
	placeholderAgent    = "ahp.agent.id"       // the verified agent's origin, "" for none
	placeholderOutcome  = "ahp.agent.outcome"  // verified, invalid, unverified, unsigned
)

// VerifiedAgentsConfig configures Web Bot Auth verification
// (`verified_agents { ... }`); docs/verified-agents.md has the reference.
type VerifiedAgentsConfig struct {
	// Pinned agents are verified with the keys of a local JWK or JWKS
	// file; their directories are never fetched.
	Pinned []PinnedAgent `json:"pinned,omitempty"`
	// NoFetch verifies pinned agents only: nothing is ever fetched and
	// every other signature is unverified.
	NoFetch bool `json:"no_fetch,omitempty"`
	// TrustedCAFiles are PEM files of CAs trusted for directory fetches
	// besides the system roots (private directories, tests).
	TrustedCAFiles []string `json:"trusted_ca_files,omitempty"`
	// AllowNetworks are networks (CIDR) a directory may be fetched from
	// although the address rules refuse them (private directories), on
	// any port.
	AllowNetworks []string `json:"allow_networks,omitempty"`
	// AllowPorts are ports besides 443 a directory may be fetched from
	// on any host.
	AllowPorts []int `json:"allow_ports,omitempty"`
	// OnInvalid is "unsigned" (default: an invalid signature counts as
	// none) or "refuse" (403 with the spec's error body).
	OnInvalid string `json:"on_invalid,omitempty"`
	// SharedCache shares fetched directories between instances: "" (the
	// rate_limit's Redis when its store is redis, else none), "off", or
	// "redis" (SharedCacheRedis, else the global `ahp { redis }`).
	SharedCache      string `json:"shared_cache,omitempty"`
	SharedCacheRedis string `json:"shared_cache_redis,omitempty"`
	// Agents get a label of their own in metrics (pinned agents too);
	// other verified agents count as "other".
	Agents []string `json:"agents,omitempty"`
	// DirectoryURLs accepts Signature-Agent values naming a JWKS URL
	// with a path (draft -01); the agent is then that URL.
	DirectoryURLs bool `json:"directory_urls,omitempty"`
	// ClockSkew tolerated on created and expires (default 1m);
	// MaxValidity is the longest expires-created accepted (default
	// 24h); FetchTimeout bounds one directory fetch (default 5s).
	ClockSkew    caddy.Duration `json:"clock_skew,omitempty"`
	MaxValidity  caddy.Duration `json:"max_validity,omitempty"`
	FetchTimeout caddy.Duration `json:"fetch_timeout,omitempty"`
}

// PinnedAgent is an agent whose keys the operator configured.
type PinnedAgent struct {
	// Agent is the agent's Signature-Agent origin, e.g. https://chatgpt.com.
	Agent string `json:"agent"`
	// KeysFile holds the agent's JWK or JWKS (public keys only).
	KeysFile string `json:"keys_file"`
}

// parseVerifiedAgents reads
//
//	verified_agents [off] | verified_agents {
//	    pin <agent> <jwk_or_jwks_file>
//	    fetch on|off
//	    trusted_ca <pem_file...>
//	    allow_networks <cidr...>
//	    allow_ports <port...>
//	    on_invalid unsigned|refuse
//	    shared_cache off | redis [<url>]
//	    agents <agent...>
//	    directory_urls
//	    clock_skew <duration>
//	    max_validity <duration>
//	    fetch_timeout <duration>
//	}
func (h *Handler) parseVerifiedAgents(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return d.Errf("ahp verified_agents: want `verified_agents`, `verified_agents off` or a block: verified_agents { ... }")
		}
		h.VerifiedAgents = nil
		return nil
	}
	c := &VerifiedAgentsConfig{}
	seen := onceOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		switch opt {
		case "pin", "trusted_ca", "allow_networks", "allow_ports", "agents": // these add up
		default:
			if err := seen.once(d, "ahp verified_agents", opt); err != nil {
				return err
			}
		}
		args := d.RemainingArgs()
		bad := func(format string, a ...any) error {
			return d.Errf("ahp verified_agents "+opt+": "+format, a...)
		}
		switch opt {
		case "pin":
			if len(args) != 2 {
				return bad("want `pin <agent origin> <jwk or jwks file>`, e.g. `pin https://chatgpt.com /etc/caddy/chatgpt.jwks`")
			}
			if _, err := webbotauth.NormalizeAgent(args[0], true); err != nil {
				return bad("%q: %v", args[0], err)
			}
			c.Pinned = append(c.Pinned, PinnedAgent{Agent: args[0], KeysFile: args[1]})
		case "fetch":
			if len(args) != 1 || (args[0] != "on" && args[0] != "off") {
				return bad("want on (fetch agents' key directories, default) or off (pinned agents only)")
			}
			c.NoFetch = args[0] == "off"
		case "trusted_ca":
			if len(args) == 0 {
				return bad("want one or more PEM files")
			}
			c.TrustedCAFiles = append(c.TrustedCAFiles, args...)
		case "allow_networks":
			if len(args) == 0 {
				return bad("want one or more networks, e.g. 10.0.0.0/8")
			}
			for _, a := range args {
				if _, err := netip.ParsePrefix(a); err != nil {
					return bad("%q is not a network in CIDR form such as 10.0.0.0/8 or fd00::/8", a)
				}
			}
			c.AllowNetworks = append(c.AllowNetworks, args...)
		case "allow_ports":
			if len(args) == 0 {
				return bad("want one or more ports, e.g. 8443 (directories are fetched from port 443 otherwise)")
			}
			for _, a := range args {
				p, err := strconv.Atoi(a)
				if err != nil || p < 1 || p > 65535 {
					return bad("%q is not a port (1-65535)", a)
				}
				c.AllowPorts = append(c.AllowPorts, p)
			}
		case "on_invalid":
			if len(args) != 1 || (args[0] != "unsigned" && args[0] != "refuse") {
				return bad("want unsigned (an invalid signature counts as none, default) or refuse (answer 403)")
			}
			c.OnInvalid = args[0]
		case "shared_cache":
			switch {
			case len(args) == 1 && args[0] == "off":
				c.SharedCache = "off"
			case len(args) >= 1 && len(args) <= 2 && args[0] == "redis":
				c.SharedCache = "redis"
				if len(args) == 2 {
					c.SharedCacheRedis = args[1]
				}
			default:
				return bad("want `shared_cache off` or `shared_cache redis [<url>]`")
			}
		case "agents":
			if len(args) == 0 {
				return bad("want one or more agent origins, e.g. https://chatgpt.com")
			}
			for _, a := range args {
				if _, err := webbotauth.NormalizeAgent(a, true); err != nil {
					return bad("%q: %v", a, err)
				}
			}
			c.Agents = append(c.Agents, args...)
		case "directory_urls":
			if len(args) != 0 {
				return bad("takes no value")
			}
			c.DirectoryURLs = true
		case "clock_skew", "max_validity", "fetch_timeout":
			var dur time.Duration
			var err error
			if len(args) == 1 {
				dur, err = caddy.ParseDuration(args[0])
			}
			if len(args) != 1 || err != nil || dur <= 0 {
				return bad("want a duration such as 30s")
			}
			switch opt {
			case "clock_skew":
				c.ClockSkew = caddy.Duration(dur)
			case "max_validity":
				c.MaxValidity = caddy.Duration(dur)
			default:
				c.FetchTimeout = caddy.Duration(dur)
			}
		default:
			return d.Errf("ahp verified_agents: unknown option %s; known: pin, fetch, trusted_ca, allow_networks, allow_ports, on_invalid, shared_cache, agents, directory_urls, clock_skew, max_validity, fetch_timeout", shownOption(opt))
		}
	}
	if err := c.validate(); err != nil {
		return d.Err(err.Error())
	}
	h.VerifiedAgents = c
	return nil
}

// validate holds a JSON configuration to the Caddyfile's rules: `fetch
// off` needs a pinned agent, a shared cache's URL needs shared_cache
// redis, and durations are positive (a negative one would silently
// become the default).
func (c *VerifiedAgentsConfig) validate() error {
	if c.NoFetch && len(c.Pinned) == 0 {
		return errors.New("ahp verified_agents: `fetch off` (JSON no_fetch) verifies pinned agents only, and none is pinned; add `pin <agent> <file>` or remove `fetch off`")
	}
	if c.SharedCacheRedis != "" && c.SharedCache != "redis" {
		// Ignored, each instance would fetch agents' keys for itself while
		// the operator believes them shared (as rate_limit's store refuses).
		return fmt.Errorf("ahp verified_agents shared_cache: a Redis URL (%s) was given without shared_cache redis; write `shared_cache redis <url>` (JSON: \"shared_cache\": \"redis\"), or drop the URL", redactURL(c.SharedCacheRedis))
	}
	for _, o := range []struct {
		name string
		d    caddy.Duration
	}{{"clock_skew", c.ClockSkew}, {"max_validity", c.MaxValidity}, {"fetch_timeout", c.FetchTimeout}} {
		if o.d < 0 {
			return fmt.Errorf("ahp verified_agents %s: want a positive duration such as 30s, or none for the default", o.name)
		}
	}
	return nil
}

// provisionVerifiedStep returns the verification step of ServeHTTP, nil
// when off. The step returns the refusal of an invalid signature the
// operator refuses, which ServeHTTP writes, else nil.
func (h *Handler) provisionVerifiedStep(ctx caddy.Context, m *manifest.Manifest) (func(http.ResponseWriter, *http.Request) *ahperror.Error, error) {
	step, err := h.newVerifiedStep(ctx, m)
	if step == nil || err != nil {
		return nil, err
	}
	return step.serve, nil
}

// verifiedAgent is the gateway's view of the verified agent: the header
// the verification step set.
func verifiedAgent(r *http.Request) string { return r.Header.Get(VerifiedAgentHeader) }

// verifiedAgentOf is the agent r proved to be, from its placeholders,
// which no client can set: "" when it proved none or verification is off.
// For other handlers of this plugin (agent_handoff) that run after ahp.
func verifiedAgentOf(r *http.Request) string {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		return ""
	}
	if v, _ := repl.GetString(placeholderVerified); v != "true" {
		return ""
	}
	id, _ := repl.GetString(placeholderAgent)
	return id
}

// verifiedStep verifies one site's requests.
type verifiedStep struct {
	verifier *webbotauth.Verifier
	refuse   bool
	obs      *verifiedObserver
	logger   *zap.Logger
}

// serve verifies r as the client sent it, sets the placeholders and, for
// a verified agent, the trusted header. It returns the refusal of an
// invalid signature the operator refuses, for the caller to write (on the
// MCP endpoint in that door's shape), else nil.
func (s *verifiedStep) serve(w http.ResponseWriter, r *http.Request) *ahperror.Error {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	// An unsigned request (nearly all of them) costs a map lookup.
	if len(r.Header["Signature-Input"]) == 0 {
		s.obs.outcome(webbotauth.Unsigned, "")
		setAgentPlaceholders(repl, valueFalse, valueNoAgent, outcomeValue(webbotauth.Unsigned))
		return nil
	}
	// The signature covers the request as the agent sent it: Caddy keeps
	// the method and target from before any rewrite in the context (with
	// no header, Host or TLS, which no handler before this one changes).
	req := *r
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		req.Method, req.RequestURI, req.URL = orig.Method, orig.RequestURI, orig.URL
	}
	res := s.verifier.Verify(r.Context(), &req)
	s.obs.outcome(res.Outcome, res.Agent)
	if res.Outcome == webbotauth.Verified {
		r.Header[VerifiedAgentHeader] = []string{res.Agent}
		setAgentPlaceholders(repl, valueTrue, res.Agent, outcomeValue(webbotauth.Verified))
		return nil
	}
	if c := s.logger.Check(zap.DebugLevel, "web bot auth signature not verified"); c != nil {
		// The key id is a public key's thumbprint; the signature itself
		// is never logged.
		c.Write(zap.String("outcome", res.Outcome.String()), zap.String("reason", res.Reason), zap.String("keyid", res.KeyID))
	}
	setAgentPlaceholders(repl, valueFalse, valueNoAgent, outcomeValue(res.Outcome))
	if res.Outcome == webbotauth.Invalid && s.refuse {
		w.Header().Add("Link", discovery.LinkValue)
		return ahperror.New(http.StatusForbidden, ahperror.Forbidden,
			"The request's Web Bot Auth signature is invalid ("+res.Reason+"). Sign the request again (created and expires around now, the authority and path as sent), or send it unsigned.")
	}
	return nil
}

// The placeholders' values as interfaces made once: a string turned into
// an interface per request would allocate.
var (
	valueTrue     any = "true"
	valueFalse    any = "false"
	valueNoAgent  any = ""
	outcomeValues     = [...]any{
		webbotauth.Unsigned:   webbotauth.Unsigned.String(),
		webbotauth.Verified:   webbotauth.Verified.String(),
		webbotauth.Invalid:    webbotauth.Invalid.String(),
		webbotauth.Unverified: webbotauth.Unverified.String(),
	}
)

func outcomeValue(o webbotauth.Outcome) any {
	if int(o) < len(outcomeValues) {
		return outcomeValues[o]
	}
	return o.String()
}

func setAgentPlaceholders(repl *caddy.Replacer, verified, agent, outcome any) {
	if repl == nil {
		return
	}
	repl.Set(placeholderVerified, verified)
	repl.Set(placeholderAgent, agent)
	repl.Set(placeholderOutcome, outcome)
}

// newVerifiedStep builds the step from the configuration, nil when off.
func (h *Handler) newVerifiedStep(ctx caddy.Context, m *manifest.Manifest) (*verifiedStep, error) {
	c := h.VerifiedAgents
	if c == nil {
		if rl := h.RateLimit; rl != nil && !rl.Off && rl.Verified != "" {
			// Like skip_proof_of_work without verified_agents: no request
			// can be a verified agent here, so the tier would never apply.
			return nil, errors.New("ahp rate_limit verified: nothing in this site verifies agents, so the verified tier would never apply; " +
				"add verified_agents to this ahp block, or remove `rate_limit { verified ... }`")
		}
		return nil, nil
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	switch c.OnInvalid {
	case "", "unsigned", "refuse":
	default:
		return nil, fmt.Errorf("ahp verified_agents on_invalid %q: must be unsigned or refuse", c.OnInvalid)
	}
	site := m.Name
	vm, err := registerVerifiedMetrics(ctx.GetMetricsRegistry())
	if err != nil {
		return nil, fmt.Errorf("ahp verified_agents: metrics: %v", err)
	}

	// Everything the verifier is built from, files' contents included,
	// names it in the pool: a reload with the same configuration keeps
	// its directory cache, a changed key file builds a new one.
	opts, fingerprint, err := c.options()
	if err != nil {
		return nil, err
	}
	labelled := make([]string, 0, len(c.Agents)+len(c.Pinned))
	for _, a := range c.Agents {
		id, err := webbotauth.NormalizeAgent(a, c.DirectoryURLs)
		if err != nil {
			return nil, fmt.Errorf("ahp verified_agents agents %q: %v", a, err)
		}
		labelled = append(labelled, id)
	}
	for _, p := range c.Pinned {
		if id, err := webbotauth.NormalizeAgent(p.Agent, c.DirectoryURLs); err == nil {
			labelled = append(labelled, id)
		}
	}
	obs := newVerifiedObserver(vm, site, labelled)
	opts.OnFetch = obs.fetched

	cacheURL, err := c.sharedCacheURL(ctx, h.RateLimit)
	if err != nil {
		return nil, err
	}
	if cacheURL != "" {
		client, err := h.stores.redisClient(cacheURL)
		if err != nil {
			return nil, fmt.Errorf("ahp verified_agents shared_cache redis: %v", err)
		}
		opts.Shared = webbotauth.NewRedisCache(client, "", 0)
		opts.OnSharedCacheError = obs.sharedCacheError
		fingerprint.Write([]byte("\x00redis\x00" + cacheURL))
	}
	fingerprint.Write([]byte("\x00site\x00" + site))
	key := "ahp:webbotauth:" + hex.EncodeToString(fingerprint.Sum(nil))
	opts.Logger = caddyLog("ahp.verified_agents") // the verifier outlives this configuration
	v, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		v, err := webbotauth.New(opts)
		if err != nil {
			return nil, err
		}
		return pooledVerifier{v}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("ahp verified_agents: %v", err)
	}
	h.stores.hold(key)
	return &verifiedStep{
		verifier: v.(pooledVerifier).Verifier,
		refuse:   c.OnInvalid == "refuse",
		obs:      obs,
		logger:   h.logger,
	}, nil
}

type pooledVerifier struct{ *webbotauth.Verifier }

func (p pooledVerifier) Destruct() error { p.Close(); return nil }

// options turns the configuration into the verifier's options (without
// the shared cache, the fetch hook and the logger), reading the files,
// and returns a hash of everything that went in.
func (c *VerifiedAgentsConfig) options() (webbotauth.Options, hash.Hash, error) {
	fp := sha256.New()
	cfgJSON, _ := json.Marshal(c)
	fp.Write(cfgJSON)
	opts := webbotauth.Options{
		NoFetch:       c.NoFetch,
		DirectoryURLs: c.DirectoryURLs,
		ClockSkew:     time.Duration(c.ClockSkew),
		MaxValidity:   time.Duration(c.MaxValidity),
		FetchTimeout:  time.Duration(c.FetchTimeout),
	}
	repl := caddy.NewReplacer()
	for _, p := range c.Pinned {
		file := repl.ReplaceKnown(p.KeysFile, "")
		data, err := os.ReadFile(file)
		if err != nil {
			return opts, nil, fmt.Errorf("ahp verified_agents pin %s: reading the keys: %v", p.Agent, err)
		}
		opts.Pinned = append(opts.Pinned, webbotauth.Pinned{Agent: p.Agent, JWKS: data})
		fp.Write([]byte("\x00pin\x00"))
		fp.Write(data)
	}
	for _, f := range c.TrustedCAFiles {
		data, err := os.ReadFile(repl.ReplaceKnown(f, ""))
		if err != nil {
			return opts, nil, fmt.Errorf("ahp verified_agents trusted_ca: %v", err)
		}
		opts.ExtraCAsPEM = append(append(opts.ExtraCAsPEM, data...), '\n')
		fp.Write([]byte("\x00ca\x00"))
		fp.Write(data)
	}
	var allow []netip.Prefix
	for _, n := range c.AllowNetworks {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return opts, nil, fmt.Errorf("ahp verified_agents allow_networks %q: not a network in CIDR form such as 10.0.0.0/8", n)
		}
		allow = append(allow, p.Masked())
	}
	for _, p := range c.AllowPorts {
		if p < 1 || p > 65535 {
			return opts, nil, fmt.Errorf("ahp verified_agents allow_ports %d: not a port (1-65535)", p)
		}
		opts.AllowPorts = append(opts.AllowPorts, uint16(p))
	}
	if !c.NoFetch {
		opts.CheckAddr = directoryAddrCheck(allow)
		opts.CheckHost = directoryHostCheck
		// The operator's own directory networks may use any port.
		opts.AnyPortOn = allow
		opts.ClientAddr = verifiedClientAddr
	}
	return opts, fp, nil
}

// verifiedClientAddr is {client_ip} (which honours trusted_proxies), else
// the peer: directory fetches are budgeted per client network.
func verifiedClientAddr(r *http.Request) netip.Addr {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok {
		if a, err := netip.ParseAddr(ip); err == nil {
			return a
		}
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr()
	}
	return netip.Addr{}
}

// sharedCacheURL is the Redis URL of the shared directory cache, "" for
// none: the rate_limit's Redis by default, so that a fleet that shares
// limits shares agents' keys too.
func (c *VerifiedAgentsConfig) sharedCacheURL(ctx caddy.Context, rl *RateLimitConfig) (string, error) {
	switch c.SharedCache {
	case "off":
		return "", nil
	case "redis":
		return redisURL(ctx, c.SharedCacheRedis, "ahp verified_agents shared_cache redis")
	case "":
		if c.NoFetch || rl == nil || rl.Off || rl.Store != "redis" {
			return "", nil
		}
		return redisURL(ctx, rl.Redis, "ahp rate_limit store")
	}
	return "", fmt.Errorf("ahp verified_agents shared_cache %s: must be off or redis [<url>]%s", shownStoreKind(c.SharedCache), urlAsKindHint(c.SharedCache, "shared_cache", "shared_cache_redis"))
}

// directoryAddrCheck refuses directory addresses by the rules callback
// URLs follow (public unicast only), except in the allowed networks.
func directoryAddrCheck(allow []netip.Prefix) func(netip.Addr) error {
	return func(a netip.Addr) error {
		if why := converse.RefusedAddr(a.WithZone(""), allow); why != "" {
			return errors.New(why)
		}
		return nil
	}
}

// directoryHostCheck refuses directory host names no callback may name.
func directoryHostCheck(host string) error {
	if why := converse.RefusedHost(host); why != "" {
		return errors.New(why)
	}
	return nil
}
