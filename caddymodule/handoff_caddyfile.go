package caddymodule

import (
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/caddy-ahp/caddy-ahp/webbotauth"
)

func parseHandoffCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	warnNonStrictProxies(h, handoffDirective)
	a := new(AgentHandoff)
	err := a.UnmarshalCaddyfile(h.Dispenser)
	return a, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	agent_handoff [<matcher>] {
//	    provider <name> [<docs-url>]
//	    base_url <url>
//	    content_types <type...>
//	    sandbox_ttl <duration>
//	    handle_rotation
//	    challenge|create|claim|verify|claim_challenge|solver <path>|off
//	    uniform <path...>|off
//	    exchange <path...>|off
//	    exchange_get page|refuse
//	    exchange_page <file>
//	    trusted_origins <origin...>
//	    claim_page <path...>
//	    difficulty <base> [<ceiling>]
//	    velocity {
//	        window <duration>
//	        global_step <n>|off
//	        network_step <n>|off
//	        circuit_breaker <n>|off
//	    }
//	    challenge_ttl <duration>
//	    lockout {
//	        after <n>
//	        base <duration>
//	        max <duration>
//	        reset <duration>
//	    }
//	    body_limit <size>
//	    failure {
//	        status <code>
//	        body <json>
//	        floor <duration>
//	    }
//	    rate_limit {
//	        challenge|challenge_network|create|verify|code|uniform <N/unit>|off
//	    }
//	    skip_proof_of_work <agent-origin...>
//	    store memory | redis [<url>]
//	    on_store_error open|closed
//	    timeout <duration>
//	    zone <name>
//	}
//
//	agent_handoff [<matcher>] sandbox_content [{
//	    routes <path...>
//	    types <type...>
//	    csp <policy>
//	    html_checks on|off
//	}]
//
//	agent_handoff [<matcher>] preview [{
//	    exchange, exchange_get, exchange_page, trusted_origins, uniform, claim_page,
//	    failure, rate_limit, store, on_store_error, timeout, zone as above
//	}]
func (a *AgentHandoff) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		switch d.Val() {
		case handoffModeContent, handoffModePreview:
			a.Mode = d.Val()
		default:
			return d.Errf("agent_handoff %q: the form is `agent_handoff { … }`, `agent_handoff sandbox_content` or `agent_handoff preview`", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	seen := onceOptions{}
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "claim_page", "trusted_origins", "skip_proof_of_work": // these add up
		default:
			where := handoffDirective
			if a.Mode != "" {
				where += " " + a.Mode
			}
			if err := seen.once(d, where, opt); err != nil {
				return err
			}
		}
		if a.Mode == handoffModeContent {
			if err := a.unmarshalContent(d, opt); err != nil {
				return err
			}
			continue
		}
		if a.Mode == handoffModePreview {
			switch opt {
			case "provider", "base_url", "content_types", "sandbox_ttl", "handle_rotation", "challenge", "create",
				"claim", "verify", "claim_challenge", "difficulty", "velocity", "challenge_ttl", "lockout", "body_limit", "skip_proof_of_work":
				return d.Errf("agent_handoff preview: %s belongs to the API site's agent_handoff block", opt)
			}
		}
		if err := a.unmarshalOption(d, opt); err != nil {
			return err
		}
	}
	return nil
}

func (a *AgentHandoff) unmarshalOption(d *caddyfile.Dispenser, opt string) error {
	var err error
	switch opt {
	case "provider":
		args := d.RemainingArgs()
		if len(args) < 1 || len(args) > 2 {
			return d.Errf(`provider: want provider <name> [<docs-url>], e.g. provider "Example FAQ" https://docs.example.com/agents`)
		}
		a.provider().Name = args[0]
		if len(args) == 2 {
			a.provider().Docs = args[1]
		}
	case "base_url":
		a.provider().BaseURL, err = hoArg(d)
	case "content_types":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		a.provider().ContentTypes = args
	case "sandbox_ttl":
		a.provider().SandboxTTL, err = hoDuration(d)
	case "handle_rotation":
		if d.NextArg() {
			return d.ArgErr()
		}
		a.provider().HandleRotation = true
	case "challenge":
		a.Challenge, err = hoArg(d)
	case "create":
		a.Create, err = hoArg(d)
	case "claim":
		a.Claim, err = hoArg(d)
	case "verify":
		a.Verify, err = hoArg(d)
	case "claim_challenge":
		a.ClaimChallenge, err = hoArg(d)
	case "solver":
		a.Solver, err = hoArg(d)
	case "uniform":
		a.Uniform, err = hoPaths(d)
	case "exchange":
		a.Exchange, err = hoPaths(d)
	case "claim_page":
		var pages []string
		pages, err = hoPaths(d)
		a.ClaimPages = append(a.ClaimPages, pages...)
	case "exchange_get":
		a.ExchangeGET, err = hoArg(d)
	case "exchange_page":
		a.ExchangePage, err = hoArg(d)
	case "trusted_origins":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.Errf("trusted_origins: want one or more origins whose pages may post exchange codes and claims, e.g. trusted_origins https://app.example.com")
		}
		a.TrustedOrigins = append(a.TrustedOrigins, args...)
	case "difficulty":
		args := d.RemainingArgs()
		if len(args) < 1 || len(args) > 2 {
			return d.Errf("difficulty: want difficulty <base> [<ceiling>], in bits, e.g. difficulty 20 28")
		}
		c := a.difficultyCfg()
		if c.Base, err = strconv.Atoi(args[0]); err != nil || c.Base < 1 {
			return d.Errf("difficulty %q: the base is a number of bits, e.g. 20", args[0])
		}
		if len(args) == 2 {
			if c.Ceiling, err = strconv.Atoi(args[1]); err != nil || c.Ceiling < 1 {
				return d.Errf("difficulty ceiling %q: a number of bits, e.g. 28", args[1])
			}
		}
	case "velocity":
		if d.NextArg() {
			return d.ArgErr()
		}
		c := a.difficultyCfg()
		seenSub := onceOptions{}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			if err := seenSub.once(d, handoffDirective+" "+opt, d.Val()); err != nil {
				return err
			}
			switch d.Val() {
			case "window":
				c.Window, err = hoDuration(d)
			case "global_step":
				c.GlobalStep, err = hoCountOrOff(d)
			case "network_step":
				c.NetworkStep, err = hoCountOrOff(d)
			case "circuit_breaker":
				c.CircuitBreaker, err = hoCountOrOff(d)
			default:
				return d.Errf("velocity: unknown option %q; known: window, global_step, network_step, circuit_breaker", d.Val())
			}
			if err != nil {
				return err
			}
		}
	case "challenge_ttl":
		a.ChallengeTTL, err = hoDuration(d)
	case "lockout":
		if d.NextArg() {
			return d.ArgErr()
		}
		if a.Lockout == nil {
			a.Lockout = &HandoffLockout{}
		}
		seenSub := onceOptions{}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			if err := seenSub.once(d, handoffDirective+" "+opt, d.Val()); err != nil {
				return err
			}
			switch d.Val() {
			case "after":
				var n int64
				n, err = hoCount(d)
				a.Lockout.After = int(n)
			case "base":
				a.Lockout.Base, err = hoDuration(d)
			case "max":
				a.Lockout.Max, err = hoDuration(d)
			case "reset":
				a.Lockout.Reset, err = hoDuration(d)
			default:
				return d.Errf("lockout: unknown option %q; known: after, base, max, reset", d.Val())
			}
			if err != nil {
				return err
			}
		}
	case "body_limit":
		var s string
		if s, err = hoArg(d); err != nil {
			return err
		}
		n, perr := humanize.ParseBytes(s)
		if perr != nil || n == 0 || n > 1<<30 {
			return d.Errf("body_limit %q: want a size such as 16KB", s)
		}
		a.BodyLimit = int64(n)
	case "failure":
		if d.NextArg() {
			return d.ArgErr()
		}
		if a.Failure == nil {
			a.Failure = &HandoffFailure{}
		}
		seenSub := onceOptions{}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			if err := seenSub.once(d, handoffDirective+" "+opt, d.Val()); err != nil {
				return err
			}
			switch d.Val() {
			case "status":
				var n int64
				n, err = hoCount(d)
				a.Failure.Status = int(n)
			case "body":
				a.Failure.Body, err = hoArg(d)
			case "floor":
				a.Failure.Floor, err = hoDuration(d)
			default:
				return d.Errf("failure: unknown option %q; known: status, body, floor", d.Val())
			}
			if err != nil {
				return err
			}
		}
	case "rate_limit":
		if d.NextArg() {
			return d.ArgErr()
		}
		if a.RateLimit == nil {
			a.RateLimit = &HandoffLimits{}
		}
		seenSub := onceOptions{}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			if err := seenSub.once(d, handoffDirective+" "+opt, d.Val()); err != nil {
				return err
			}
			var dst *string
			switch d.Val() {
			case "challenge":
				dst = &a.RateLimit.Challenge
			case "challenge_network":
				dst = &a.RateLimit.ChallengeNetwork
			case "create":
				dst = &a.RateLimit.Create
			case "verify":
				dst = &a.RateLimit.Verify
			case "code":
				dst = &a.RateLimit.Code
			case "uniform":
				dst = &a.RateLimit.Uniform
			default:
				return d.Errf("rate_limit: unknown tier %q; known: challenge, challenge_network, create, verify, code, uniform", d.Val())
			}
			if *dst, err = hoArg(d); err != nil {
				return err
			}
		}
	case "skip_proof_of_work":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.Errf("skip_proof_of_work: want one or more agent origins, e.g. skip_proof_of_work https://chatgpt.com")
		}
		for _, arg := range args {
			if _, err := webbotauth.NormalizeAgent(arg, true); err != nil {
				return d.Errf("skip_proof_of_work %q: %v; name agents by the origin they sign with, e.g. https://chatgpt.com", arg, err)
			}
		}
		a.SkipProofOfWork = append(a.SkipProofOfWork, args...)
	case "store":
		args := d.RemainingArgs()
		switch {
		case len(args) == 1 && args[0] == "memory":
			a.Store = "memory"
		case len(args) >= 1 && len(args) <= 2 && args[0] == "redis":
			a.Store = "redis"
			if len(args) == 2 {
				a.Redis = args[1]
			}
		default:
			return d.Errf("store: want store memory, or store redis [<url>] (default URL: the global { ahp { redis <url> } })")
		}
	case "on_store_error":
		a.OnStoreError, err = hoArg(d)
	case "timeout":
		if a.Timeout, err = hoDuration(d); err == nil && time.Duration(a.Timeout) > maxStoreTimeout {
			return d.Errf("agent_handoff timeout %s: want a duration such as 100ms (at most 5s, as ahp's rate_limit timeout)", time.Duration(a.Timeout))
		}
	case "zone":
		a.Zone, err = hoArg(d)
	default:
		return d.Errf("agent_handoff: unknown option %s; %s", shownOption(opt), handoffOptionHint(opt))
	}
	return err
}

// handoffOptionHint says where an option that is not the block's own
// belongs, or lists the block's options.
func handoffOptionHint(opt string) string {
	switch opt {
	case "window", "global_step", "network_step", "circuit_breaker":
		return opt + " goes inside velocity { }"
	case "after", "base", "max", "reset":
		return opt + " goes inside lockout { }"
	case "status", "body", "floor":
		return opt + " goes inside failure { }"
	case "challenge_network", "code":
		return opt + " is a tier of rate_limit { }"
	case "routes", "types", "csp", "html_checks":
		return opt + " belongs to `agent_handoff sandbox_content { … }`, the content origin's block"
	}
	return "known: provider, base_url, content_types, sandbox_ttl, handle_rotation, challenge, create, claim, verify, " +
		"claim_challenge, solver, uniform, exchange, exchange_get, exchange_page, trusted_origins, claim_page, difficulty, " +
		"velocity, challenge_ttl, lockout, body_limit, failure, rate_limit, skip_proof_of_work, store, on_store_error, timeout, zone"
}

func (a *AgentHandoff) unmarshalContent(d *caddyfile.Dispenser, opt string) error {
	if a.Content == nil {
		a.Content = &HandoffContent{}
	}
	c := a.Content
	var err error
	switch opt {
	case "routes":
		c.Routes, err = hoPaths(d)
	case "types":
		c.Types = d.RemainingArgs()
		if len(c.Types) == 0 {
			return d.ArgErr()
		}
	case "csp":
		c.CSP, err = hoArg(d)
	case "html_checks":
		var v string
		if v, err = hoArg(d); err != nil {
			return err
		}
		on := v == "on"
		if !on && v != "off" {
			return d.Errf("html_checks %q: want on or off", v)
		}
		c.HTMLChecks = &on
	case "zone":
		a.Zone, err = hoArg(d)
	default:
		return d.Errf("agent_handoff sandbox_content: unknown option %q; known: routes, types, csp, html_checks, zone", opt)
	}
	return err
}

func (a *AgentHandoff) provider() *HandoffProvider {
	if a.Provider == nil {
		a.Provider = &HandoffProvider{}
	}
	return a.Provider
}

func (a *AgentHandoff) difficultyCfg() *HandoffDifficulty {
	if a.Difficulty == nil {
		a.Difficulty = &HandoffDifficulty{}
	}
	return a.Difficulty
}

func hoArg(d *caddyfile.Dispenser) (string, error) {
	opt := d.Val()
	args := d.RemainingArgs()
	if len(args) != 1 {
		return "", d.Errf("%s: want exactly one value", opt)
	}
	return args[0], nil
}

func hoPaths(d *caddyfile.Dispenser) ([]string, error) {
	opt := d.Val()
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.Errf("%s: want one or more paths, or off", opt)
	}
	for _, p := range args {
		if p != "off" && !strings.HasPrefix(p, "/") {
			return nil, d.Errf("%s %q: a path starts with /", opt, p)
		}
	}
	return args, nil
}

func hoDuration(d *caddyfile.Dispenser) (caddy.Duration, error) {
	opt := d.Val()
	s, err := hoArg(d)
	if err != nil {
		return 0, err
	}
	v, err := caddy.ParseDuration(s)
	if err != nil || v <= 0 {
		return 0, d.Errf("%s %q: want a duration such as 90s, 10m or 48h", opt, s)
	}
	return caddy.Duration(v), nil
}

func hoCount(d *caddyfile.Dispenser) (int64, error) {
	opt := d.Val()
	s, err := hoArg(d)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, d.Errf("%s %q: want a whole number >= 1", opt, s)
	}
	return n, nil
}

// hoCountOrOff is a count, or -1 for off. 0 is refused with the hint:
// it almost always means off, and as a count it would trip or step at
// every creation.
func hoCountOrOff(d *caddyfile.Dispenser) (int64, error) {
	opt := d.Val()
	if d.CountRemainingArgs() == 1 {
		d.NextArg()
		switch d.Val() {
		case "off":
			return -1, nil
		case "0":
			return 0, d.Errf("%s 0: to turn it off write %s off; otherwise want a whole number >= 1", opt, opt)
		}
		d.Prev()
	}
	return hoCount(d)
}

var _ caddyfile.Unmarshaler = (*AgentHandoff)(nil)
