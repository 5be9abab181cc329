package caddymodule

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/dustin/go-humanize"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-ahp/caddy-ahp/auth"
	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// parseDirective is `ahp [<matcher>] { … }`. A matcher chooses which of
// the site's pages the handler takes (those that get the Link header, the
// notice, Markdown and negotiation), never the plugin's own paths: outside
// it the manifest every page advertises would be the site's 404, and a
// call to the converse path would go around the gateway to the site's
// concierge route unchecked. So the matcher goes to the handler (`pages`),
// which tests it after its own paths, with the gateway's own spelling
// rules; the route itself matches every request.
func parseDirective(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	warnNonStrictProxies(h, "ahp")
	handler := new(Handler)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	if matcherSet != nil {
		handler.PagesRaw = caddyhttp.RawMatcherSets{matcherSet}
	}
	return h.NewRoute(nil, handler), nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	ahp [<matcher>] {
//	    manifest <file>
//	    name <text>
//	    description <text>
//	    modes <MODE1|MODE2|MODE3...>
//	    content <path> [<file>]
//	    converse <path>
//	    authentication none|bearer|api_key
//	    content_signals {
//	        ai_train|ai_input|search|attribution_required true|false
//	    }
//	    capability <name> {
//	        mode MODE1|MODE2|MODE3
//	        action_type query|action|async
//	        description <text>
//	        response_types <type...>
//	        accept_fallback [true|false]
//	        input_schema <file>
//	        output_schema <file>
//	    }
//	    async {
//	        supported [true|false]
//	        max_eta_seconds <n>
//	    }
//	    link <name> <url>
//	    discovery redirect|inline
//	    cache_control <value>
//	    notice off | notice {
//	        text <text>
//	        template <file>
//	    }
//	    rate_limit off | rate_limit {
//	        store memory | redis [<url>]
//	        key <placeholder>
//	        static|unauthenticated|authenticated|action|per_agent|verified <N/unit>|off
//	        headers x-ratelimit|ietf|both
//	        retry_jitter <duration>
//	        mode enforce|log
//	        token_budget <N/session>|off
//	        on_store_error open|closed
//	        timeout <duration>
//	        leases auto|off
//	        ipv6_prefix <bits>
//	        zone <name>
//	    }
//	    body_limit <size>
//	    max_tokens <n>
//	    session {
//	        max_turns <n>
//	        idle <duration>
//	    }
//	    auth {
//	        keys_file <file>
//	        key <key or {env.NAME}>
//	    }
//	    echo_signals [true|false]
//	    cors [true|false]
//	    concierge_timeout <duration>
//	    mcp <path> | mcp [<path>] { path <path>; origins <origin>... }
//	    openapi <path> [<base_url>]
//	    verified_agents [off] | verified_agents { ... }   (verified.go)
//	    robots extend|serve|off
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.Errf("ahp takes no arguments on its own line (got %q); put options in a block: ahp { ... }", d.Val())
	}
	m := &manifest.Manifest{}
	seen := onceOptions{}
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "capability", "link": // repeatable; each checks its own name
		default:
			if err := seen.once(d, "ahp", opt); err != nil {
				return err
			}
		}
		switch opt {
		case "manifest":
			if err := oneArg(d, &h.ManifestFile); err != nil {
				return err
			}
		case "name":
			if err := oneArg(d, &m.Name); err != nil {
				return err
			}
		case "description":
			if err := oneArg(d, &m.Description); err != nil {
				return err
			}
		case "modes":
			m.Modes = d.RemainingArgs()
			if len(m.Modes) == 0 {
				return d.Errf("ahp modes: list at least one of MODE1, MODE2, MODE3 (or leave modes out to derive them from the capabilities)")
			}
		case "content":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.Errf("ahp content: want `content <path> [<file>]`, e.g. `content /llms.txt` or `content /llms.txt ./llms.txt`")
			}
			endpoints(m).Content = args[0]
			if len(args) == 2 {
				h.ContentFile = args[1]
			}
		case "converse":
			if err := oneArg(d, &endpoints(m).Converse); err != nil {
				return err
			}
		case "authentication":
			if err := oneArg(d, &m.Authentication); err != nil {
				return err
			}
			switch m.Authentication {
			case manifest.AuthNone, manifest.AuthBearer, manifest.AuthAPIKey:
			case manifest.AuthSignedRequest:
				return d.Errf("ahp authentication signed_request: the spec leaves it undefined until AHP 0.2; use bearer or api_key")
			default:
				return d.Errf("ahp authentication %q: must be none, bearer or api_key", m.Authentication)
			}
		case "content_signals":
			if d.NextArg() {
				return d.Errf("ahp content_signals takes a block: content_signals { ai_input true ... }")
			}
			if m.ContentSignals == nil {
				m.ContentSignals = &manifest.ContentSignals{}
			}
			if err := parseContentSignals(d, m.ContentSignals); err != nil {
				return err
			}
		case "capability":
			c, err := parseCapability(d)
			if err != nil {
				return err
			}
			if m.Capability(c.Name) != nil {
				return d.Errf("ahp capability %q is declared twice", c.Name)
			}
			m.Capabilities = append(m.Capabilities, c)
		case "async":
			a, err := parseAsync(d)
			if err != nil {
				return err
			}
			m.Async = a
		case "link":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("ahp link: want `link <name> <url>`")
			}
			if m.Links == nil {
				m.Links = map[string]string{}
			}
			if _, dup := m.Links[args[0]]; dup {
				return d.Errf("ahp link %q: given twice; keep one URL for each link name", args[0])
			}
			m.Links[args[0]] = args[1]
		case "discovery":
			if err := oneArg(d, &h.Discovery); err != nil {
				return err
			}
			if h.Discovery != "redirect" && h.Discovery != "inline" {
				return d.Errf("ahp discovery %q: must be redirect (302 to the manifest) or inline (200 with the manifest)", h.Discovery)
			}
		case "cache_control":
			if err := oneArg(d, &h.CacheControl); err != nil {
				return err
			}
		case "notice":
			n, err := parseNotice(d)
			if err != nil {
				return err
			}
			h.Notice = n
		case "rate_limit":
			rl, err := parseRateLimit(d)
			if err != nil {
				return err
			}
			h.RateLimit = rl
		case "body_limit":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			n, err := humanize.ParseBytes(s)
			if err != nil || n == 0 || n > 16<<20 {
				return d.Errf("ahp body_limit %q: want a size such as 8KB or 16KiB (at most 16MiB)", s)
			}
			h.BodyLimit = int64(n)
		case "max_tokens":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 32768 {
				return d.Errf("ahp max_tokens %q: want a whole number from 1 to 32768 (the ceiling context.max_tokens is lowered to)", s)
			}
			h.MaxTokens = n
		case "session":
			sc, err := parseSession(d)
			if err != nil {
				return err
			}
			h.Session = sc
		case "auth":
			a, err := parseAuth(d)
			if err != nil {
				return err
			}
			h.Auth = a
		case "echo_signals":
			v, err := boolArg(d, true)
			if err != nil {
				return err
			}
			h.EchoSignals = &v
		case "cors":
			v, err := boolArg(d, true)
			if err != nil {
				return err
			}
			h.CORS = v
		case "concierge_timeout":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("ahp concierge_timeout %q: want a duration such as 60s", v)
			}
			h.ConciergeTimeout = caddy.Duration(dur)
		case "mcp":
			mc, err := parseMCP(d)
			if err != nil {
				return err
			}
			h.MCP = mc
		case "openapi":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.Errf("ahp openapi: want `openapi <path> [<base_url>]`, e.g. `openapi /openapi.json`")
			}
			h.OpenAPI = &OpenAPIConfig{Path: args[0]}
			if len(args) == 2 {
				h.OpenAPI.BaseURL = args[1]
			}
		case "concierge":
			if err := h.parseConcierge(d); err != nil {
				return err
			}
		case "markdown":
			if err := h.parseMarkdown(d); err != nil {
				return err
			}
		case "verified_agents":
			if err := h.parseVerifiedAgents(d); err != nil {
				return err
			}
		case "robots":
			mode, err := parseRobots(d)
			if err != nil {
				return err
			}
			h.Robots = mode
		case "redis", "store":
			// Options of rate_limit and of the global `ahp` block, written
			// in the site's ahp block.
			return d.Errf("ahp: unknown option %q; the Redis store is set in `rate_limit { store redis <url> }`, or once for every site in the global options: `{ ahp { redis <url> } }`", opt)
		case "{":
			// The block of an option given arguments on its line
			// (`rate_limit off { … }`): the arguments ended the option.
			return d.Errf("ahp: a block after an option's arguments on its line; an option takes either (`rate_limit off`, or `rate_limit { … }`)")
		default:
			if hint, ok := subBlockOption[opt]; ok {
				return d.Errf("ahp: unknown option %q; %s %s", opt, opt, hint)
			}
			return d.Errf("ahp: unknown option %s; see the `ahp` directive reference in README.md", shownOption(opt))
		}
	}
	if !isEmpty(m) {
		h.Manifest = m
	}
	return nil
}

// subBlockOption says where an option of a sub-block belongs when it is
// written directly in the ahp block (as handoffOptionHint does for
// agent_handoff).
var subBlockOption = func() map[string]string {
	m := map[string]string{
		"key":     "goes inside auth { } (a credential) or rate_limit { } (the client key)",
		"mode":    "goes inside capability <name> { } (MODE1|MODE2|MODE3) or rate_limit { } (enforce|log)",
		"timeout": "goes inside rate_limit { } (the longest Redis decision); the concierge's wait is concierge_timeout",
	}
	for block, opts := range map[string][]string{
		"rate_limit { }": {"static", "unauthenticated", "authenticated", "action", "per_agent", "verified", "token_budget",
			"on_store_error", "leases", "ipv6_prefix", "zone", "headers", "retry_jitter"},
		"session { }":           {"max_turns", "idle"},
		"auth { }":              {"keys_file"},
		"content_signals { }":   {"ai_train", "ai_input", "search", "attribution_required"},
		"capability <name> { }": {"action_type", "response_types", "accept_fallback", "input_schema", "output_schema"},
		"async { }":             {"supported", "max_eta_seconds"},
		"notice { }":            {"text", "template"},
		"concierge builtin { }": {"pages", "max_pages", "max_text", "refresh", "host"},
		"markdown { }":          {"max_size"},
		"mcp { }":               {"path", "origins", "hosts"},
		"verified_agents { }": {"pin", "fetch", "trusted_ca", "allow_networks", "allow_ports", "on_invalid", "shared_cache",
			"agents", "directory_urls", "clock_skew", "max_validity", "fetch_timeout"},
	} {
		for _, o := range opts {
			m[o] = "goes inside " + block
		}
	}
	return m
}()

func endpoints(m *manifest.Manifest) *manifest.Endpoints {
	if m.Endpoints == nil {
		m.Endpoints = &manifest.Endpoints{}
	}
	return m.Endpoints
}

func isEmpty(m *manifest.Manifest) bool {
	b, _ := json.Marshal(m)
	return string(b) == "{}"
}

// oneArg reads exactly one argument for the current option of the ahp
// block.
func oneArg(d *caddyfile.Dispenser, dst *string) error { return oneArgIn(d, "ahp", dst) }

// oneArgIn reads exactly one argument for the current option of the block
// where ("ahp rate_limit"), which the error names: `ahp zone` would send
// the reader looking for an option the ahp block does not have.
func oneArgIn(d *caddyfile.Dispenser, where string, dst *string) error {
	opt := d.Val()
	args := d.RemainingArgs()
	if len(args) != 1 {
		return d.Errf("%s %s: want exactly one value, got %d", where, opt, len(args))
	}
	*dst = args[0]
	return nil
}

// boolArg reads an optional true/false argument; a bare option means true.
func boolArg(d *caddyfile.Dispenser, bare bool) (bool, error) {
	opt := d.Val()
	args := d.RemainingArgs()
	switch len(args) {
	case 0:
		if bare {
			return true, nil
		}
		return false, d.Errf("ahp %s: want true or false", opt)
	case 1:
		switch strings.ToLower(args[0]) {
		case "true", "on", "yes":
			return true, nil
		case "false", "off", "no":
			return false, nil
		}
	}
	return false, d.Errf("ahp %s: want true or false, got %q", opt, strings.Join(args, " "))
}

// onceOptions refuses an option given twice in one block: the second would
// otherwise silently replace the first (a second `auth {}` dropping the
// first's keys, a second `rate_limit {}` dropping `store redis`). Options
// meant to repeat (capability, link, key, origins) are not checked.
type onceOptions map[string]bool

// once reports an error naming where (e.g. "ahp rate_limit") and the
// option when the option was already given in this block.
func (o onceOptions) once(d *caddyfile.Dispenser, where, opt string) error {
	if o[opt] {
		fix := "keep one value"
		if blockOptions[opt] {
			fix = "merge the two blocks into one"
		}
		return d.Errf("%s %s: given twice; %s", where, opt, fix)
	}
	o[opt] = true
	return nil
}

// blockOptions are the options that take a block, for onceOptions' fix.
var blockOptions = map[string]bool{
	"content_signals": true, "capability": true, "async": true, "notice": true, "rate_limit": true,
	"session": true, "auth": true, "mcp": true, "concierge": true, "markdown": true,
	"verified_agents": true, "hooks": true, "velocity": true, "lockout": true, "failure": true,
}

func parseContentSignals(d *caddyfile.Dispenser, cs *manifest.ContentSignals) error {
	seen := onceOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if err := seen.once(d, "ahp content_signals", name); err != nil {
			return err
		}
		v, err := boolArg(d, false)
		if err != nil {
			return err
		}
		switch name {
		case "ai_train":
			cs.AITrain = &v
		case "ai_input":
			cs.AIInput = &v
		case "search":
			cs.Search = &v
		case "attribution_required":
			cs.AttributionRequired = &v
		default:
			return d.Errf("ahp content_signals: unknown signal %q; the spec defines ai_train, ai_input, search, attribution_required", name)
		}
	}
	return nil
}

func parseCapability(d *caddyfile.Dispenser) (manifest.Capability, error) {
	var c manifest.Capability
	if !d.NextArg() {
		return c, d.Errf("ahp capability: want `capability <name> { ... }`")
	}
	c.Name = d.Val()
	if d.NextArg() {
		return c, d.Errf("ahp capability %q: options go in a block: capability %s { mode MODE2 ... }", c.Name, c.Name)
	}
	seen := onceOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if err := seen.once(d, "ahp capability "+strconv.Quote(c.Name), opt); err != nil {
			return c, err
		}
		var err error
		switch opt {
		case "mode":
			err = oneArgIn(d, "ahp capability "+strconv.Quote(c.Name), &c.Mode)
		case "action_type":
			err = oneArgIn(d, "ahp capability "+strconv.Quote(c.Name), &c.ActionType)
		case "description":
			err = oneArgIn(d, "ahp capability "+strconv.Quote(c.Name), &c.Description)
		case "response_types":
			c.ResponseTypes = d.RemainingArgs()
			if len(c.ResponseTypes) == 0 {
				err = d.Errf("ahp capability %q response_types: list at least one type, e.g. text/answer", c.Name)
			}
		case "accept_fallback":
			c.AcceptFallback, err = boolArg(d, true)
		case "input_schema", "output_schema":
			var path string
			if err = oneArgIn(d, "ahp capability "+strconv.Quote(c.Name), &path); err == nil {
				raw, _ := json.Marshal(path)
				if opt == "input_schema" {
					c.InputSchema = raw
				} else {
					c.OutputSchema = raw
				}
			}
		default:
			err = d.Errf("ahp capability %q: unknown option %q; known: mode, action_type, description, response_types, accept_fallback, input_schema, output_schema", c.Name, opt)
		}
		if err != nil {
			return c, err
		}
	}
	return c, nil
}

func parseAsync(d *caddyfile.Dispenser) (*manifest.Async, error) {
	a := &manifest.Async{}
	if d.NextArg() {
		return nil, d.Errf("ahp async takes a block: async { supported true }")
	}
	seen := onceOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := seen.once(d, "ahp async", d.Val()); err != nil {
			return nil, err
		}
		switch d.Val() {
		case "supported":
			v, err := boolArg(d, true)
			if err != nil {
				return nil, err
			}
			a.Supported = v
		case "max_eta_seconds":
			var s string
			if err := oneArgIn(d, "ahp async", &s); err != nil {
				return nil, err
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return nil, d.Errf("ahp async max_eta_seconds: want a whole number of seconds, got %q", s)
			}
			a.MaxETASeconds = &n
		default:
			return nil, d.Errf("ahp async: unknown option %q; known: supported, max_eta_seconds", d.Val())
		}
	}
	return a, nil
}

func parseNotice(d *caddyfile.Dispenser) (*NoticeConfig, error) {
	n := &NoticeConfig{}
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return nil, d.Errf("ahp notice: want `notice off` or a block: notice { text \"...\" }")
		}
		n.Off = true
		return n, nil
	}
	seen := onceOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := seen.once(d, "ahp notice", d.Val()); err != nil {
			return nil, err
		}
		switch d.Val() {
		case "text":
			if err := oneArgIn(d, "ahp notice", &n.Text); err != nil {
				return nil, err
			}
		case "template":
			if err := oneArgIn(d, "ahp notice", &n.Template); err != nil {
				return nil, err
			}
		default:
			return nil, d.Errf("ahp notice: unknown option %q; known: text, template", d.Val())
		}
	}
	if n.Text != "" && n.Template != "" {
		return nil, d.Errf("ahp notice: give either text or template, not both")
	}
	return n, nil
}

func parseRateLimit(d *caddyfile.Dispenser) (*RateLimitConfig, error) {
	rl := &RateLimitConfig{}
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return nil, d.Errf("ahp rate_limit: want `rate_limit off` or a block: rate_limit { ... }")
		}
		rl.Off = true
		return rl, nil
	}
	seen := onceOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if err := seen.once(d, "ahp rate_limit", opt); err != nil {
			return nil, err
		}
		var err error
		switch opt {
		case "store":
			args := d.RemainingArgs()
			switch {
			case len(args) == 1 && args[0] == "memory":
				rl.Store = "memory"
			case len(args) >= 1 && len(args) <= 2 && args[0] == "redis":
				rl.Store = "redis"
				if len(args) == 2 {
					rl.Redis = args[1]
				}
			default:
				err = d.Errf("ahp rate_limit store: want `store memory` or `store redis [<url>]`")
			}
		case "key":
			err = oneArgIn(d, "ahp rate_limit", &rl.Key)
		case "static":
			err = oneArgIn(d, "ahp rate_limit", &rl.Static)
		case "unauthenticated":
			err = oneArgIn(d, "ahp rate_limit", &rl.Unauthenticated)
		case "authenticated":
			err = oneArgIn(d, "ahp rate_limit", &rl.Authenticated)
		case "action":
			err = oneArgIn(d, "ahp rate_limit", &rl.Action)
		case "per_agent":
			err = oneArgIn(d, "ahp rate_limit", &rl.PerAgent)
		case "verified":
			err = oneArgIn(d, "ahp rate_limit", &rl.Verified)
		case "token_budget":
			err = oneArgIn(d, "ahp rate_limit", &rl.TokenBudget)
		case "on_store_error":
			if err = oneArgIn(d, "ahp rate_limit", &rl.OnStoreError); err == nil && rl.OnStoreError != "open" && rl.OnStoreError != "closed" {
				err = d.Errf("ahp rate_limit on_store_error %q: %s", rl.OnStoreError, onStoreErrorForms)
			}
		case "timeout":
			var s string
			if err = oneArgIn(d, "ahp rate_limit", &s); err == nil {
				var dur time.Duration
				dur, err = caddy.ParseDuration(s)
				if err != nil || dur <= 0 || dur > maxStoreTimeout {
					err = d.Errf("ahp rate_limit timeout %q: want a duration such as 50ms (at most 5s)", s)
				}
				rl.Timeout = caddy.Duration(dur)
			}
		case "ipv6_prefix":
			var s string
			if err = oneArgIn(d, "ahp rate_limit", &s); err == nil {
				rl.IPv6Prefix, err = strconv.Atoi(s)
				if err != nil || rl.IPv6Prefix < 1 || rl.IPv6Prefix > 128 {
					err = d.Errf("ahp rate_limit ipv6_prefix %q: want a prefix length from 1 to 128 (default 64)", s)
				}
			}
		case "zone":
			err = oneArgIn(d, "ahp rate_limit", &rl.Zone)
		case "headers":
			if err = oneArgIn(d, "ahp rate_limit", &rl.Headers); err == nil {
				_, err = rl.headers()
			}
		case "retry_jitter":
			var s string
			if err = oneArgIn(d, "ahp rate_limit", &s); err == nil {
				var dur time.Duration
				dur, err = caddy.ParseDuration(s)
				if err != nil || dur < time.Second || dur > time.Hour {
					err = d.Errf("ahp rate_limit retry_jitter %q: want a duration from 1s to 1h, such as 5s (Retry-After is in whole seconds)", s)
				}
				rl.RetryJitter = caddy.Duration(dur)
			}
		case "leases":
			if err = oneArgIn(d, "ahp rate_limit", &rl.Leases); err == nil && rl.Leases != "auto" && rl.Leases != "off" {
				err = d.Errf("ahp rate_limit leases %q: %s", rl.Leases, leasesForms)
			}
		case "mode":
			if err = oneArgIn(d, "ahp rate_limit", &rl.Mode); err == nil && rl.Mode != "enforce" && rl.Mode != "log" {
				err = d.Errf("ahp rate_limit mode %q: %s", rl.Mode, modeForms)
			}
		default:
			err = d.Errf("ahp rate_limit: unknown option %s; known: store, key, static, unauthenticated, authenticated, action, per_agent, verified, token_budget, on_store_error, timeout, leases, ipv6_prefix, zone, headers, retry_jitter, mode", shownOption(opt))
		}
		if err != nil {
			return nil, err
		}
	}
	// Check the limits now, so that `caddy adapt` already names a typo.
	if _, err := rl.limits(); err != nil {
		return nil, d.Err(err.Error())
	}
	return rl, nil
}

func parseSession(d *caddyfile.Dispenser) (*SessionConfig, error) {
	sc := &SessionConfig{}
	if d.NextArg() {
		return nil, d.Errf("ahp session takes a block, one option per line: session {\n\tmax_turns 10\n\tidle 10m\n}")
	}
	seen := onceOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var s string
		opt := d.Val()
		if err := seen.once(d, "ahp session", opt); err != nil {
			return nil, err
		}
		if err := oneArgIn(d, "ahp session", &s); err != nil {
			return nil, err
		}
		switch opt {
		case "max_turns":
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				return nil, d.Errf("ahp session max_turns %q: want a whole number of turns, at least 1", s)
			}
			sc.MaxTurns = n
		case "idle":
			dur, err := caddy.ParseDuration(s)
			if err != nil || dur <= 0 {
				return nil, d.Errf("ahp session idle %q: want a duration such as 10m", s)
			}
			sc.Idle = caddy.Duration(dur)
		default:
			return nil, d.Errf("ahp session: unknown option %q; known: max_turns, idle", opt)
		}
	}
	return sc, nil
}

func parseAuth(d *caddyfile.Dispenser) (*AuthConfig, error) {
	a := &AuthConfig{}
	if d.NextArg() {
		return nil, d.Errf("ahp auth takes a block, one option per line: auth {\n\tkeys_file <file>\n\tkey {env.AHP_KEY}\n}")
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "keys_file":
			if a.KeysFile != "" {
				return nil, d.Errf("ahp auth keys_file: given twice; put every key in one file, or give further keys with `key`")
			}
			if err := oneArgIn(d, "ahp auth", &a.KeysFile); err != nil {
				return nil, err
			}
		case "key":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return nil, d.Errf("ahp auth key: want one key (or {env.NAME}), taken whole; to name keys, put \"name: key\" lines in a keys_file")
			}
			a.Keys = append(a.Keys, args[0])
		default:
			// A key written without `key` is a plain word: shown only
			// when too short to be one.
			shown := "(not shown: it may be a key; write `key <key>`)"
			if len(d.Val()) < auth.MinKeyLength {
				shown = shownOption(d.Val())
			}
			return nil, d.Errf("ahp auth: unknown option %s; known: keys_file, key", shown)
		}
	}
	return a, nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
