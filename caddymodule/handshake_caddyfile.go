package caddymodule

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/caddy-ahp/caddy-ahp/limiter"
)

func parseHandshakeCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	warnNonStrictProxies(h, "handshake_prompt")
	hp := new(HandshakePrompt)
	err := hp.UnmarshalCaddyfile(h.Dispenser)
	return hp, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	handshake_prompt [<matcher>] {
//	    prefix <path>                  # default /handshake
//	    ws_prefix <path>               # default /ws/handshake
//	    ttl <duration>                 # default 30m, renewed by every use
//	    max_ttl <duration>             # default 24h, the most extend grants
//	    rate <N/unit>                  # default 60/minute per session
//	    create_rate <N/unit>|off       # default 30/minute per client IP
//	    ws_rate <N/unit>|off           # default 120/minute per client IP
//	    ws_per_session <n>             # default 8 sockets per session
//	    ws_max <n>                     # default 10000 sockets per instance
//	    store memory [max_bytes <size>] | redis [<url>]   # default memory, max_bytes 128MiB
//	    zone <name>                    # default: "default", or derived from browser_auth, hooks, base_url
//	    hooks {
//	        create <path|url>
//	        action <path|url>
//	        done <path|url>
//	        timeout <duration>         # default 2s
//	    }
//	    browser_auth cookie <name>
//	    inject forms
//	    base_url <url>
//	    instructions <text>
//	    body_limit <size>              # default 64KiB
//	    origins <host pattern...>
//	}
//
// A bare `handshake_prompt` uses every default.
func (hp *HandshakePrompt) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.Errf("handshake_prompt takes no arguments on its own line (got %q); put options in a block: handshake_prompt { ... }", d.Val())
	}
	seen := onceOptions{}
	for d.NextBlock(0) {
		opt := d.Val()
		if opt != "origins" { // origins adds up; every other option is set once
			if err := seen.once(d, "handshake_prompt", opt); err != nil {
				return err
			}
		}
		args := d.RemainingArgs()
		one := func() (string, error) {
			if len(args) != 1 {
				return "", d.Errf("handshake_prompt %s: want exactly one value, got %d", opt, len(args))
			}
			return args[0], nil
		}
		switch opt {
		case "prefix", "ws_prefix", "base_url", "instructions", "zone":
			v, err := one()
			if err != nil {
				return err
			}
			switch opt {
			case "prefix", "ws_prefix":
				if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, "*?#%; ") {
					return d.Errf("handshake_prompt %s %q: want a plain path such as /handshake", opt, v)
				}
				if opt == "prefix" {
					hp.Prefix = v
				} else {
					hp.WSPrefix = v
				}
			case "base_url":
				if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
					return d.Errf("handshake_prompt base_url %q: want the site's absolute URL, e.g. https://example.com", v)
				}
				hp.BaseURL = v
			case "instructions":
				hp.Instructions = v
			case "zone":
				hp.Zone = v
			}
		case "ttl", "max_ttl":
			v, err := one()
			if err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur < time.Second {
				return d.Errf("handshake_prompt %s %q: want a duration of at least 1s, e.g. 30m", opt, v)
			}
			if opt == "ttl" {
				hp.TTL = caddy.Duration(dur)
			} else {
				hp.MaxTTL = caddy.Duration(dur)
			}
		case "ws_per_session", "ws_max":
			v, err := one()
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1_000_000 {
				return d.Errf("handshake_prompt %s %q: want a number of sockets from 1 to 1000000", opt, v)
			}
			if opt == "ws_per_session" {
				hp.WSPerSession = n
			} else {
				hp.WSMax = n
			}
		case "rate", "create_rate", "ws_rate":
			v, err := one()
			if err != nil {
				return err
			}
			if v == "off" && opt == "rate" {
				return d.Errf("handshake_prompt rate off: the protocol limits every session; give a limit such as 60/minute")
			}
			if v != "off" {
				if _, err := limiter.ParseLimit(v); err != nil {
					return d.Errf("handshake_prompt %s: %v", opt, err)
				}
			}
			switch opt {
			case "rate":
				hp.Rate = v
			case "create_rate":
				hp.CreateRate = v
			default:
				hp.WSRate = v
			}
		case "store":
			if len(args) > 0 && args[0] == "redis" && slices.Contains(args, "max_bytes") {
				return d.Errf("handshake_prompt store redis: max_bytes bounds the memory store only (Redis's memory is bounded by its own maxmemory); drop max_bytes, or use `store memory max_bytes <size>`")
			}
			memoryBound := len(args) == 3 && args[0] == "memory" && args[1] == "max_bytes"
			if len(args) == 0 || len(args) > 2 && !memoryBound || (args[0] == "memory" && len(args) != 1 && !memoryBound) {
				return d.Errf("handshake_prompt store: want `store memory [max_bytes <size>]` or `store redis [<url>]`")
			}
			switch args[0] {
			case "memory", "redis":
				hp.Store = args[0]
			default:
				return d.Errf("handshake_prompt store %s: must be memory or redis [<url>]%s", shownStoreKind(args[0]), urlAsKindHint(args[0], "store", "redis"))
			}
			switch {
			case memoryBound:
				n, err := humanize.ParseBytes(args[2])
				if err != nil || n < minStoreBytes || n > maxStoreBytes {
					return d.Errf("handshake_prompt store memory max_bytes %q: want a size from 1MiB to 1TiB, e.g. 256MiB", args[2])
				}
				hp.MaxBytes = int64(n)
			case len(args) == 2:
				hp.Redis = args[1]
			}
		case "hooks":
			if len(args) > 0 {
				return d.Errf("handshake_prompt hooks takes a block: hooks { create /hooks/create }")
			}
			hk := &HandshakeHooks{}
			seenHooks := onceOptions{}
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				name := d.Val()
				if err := seenHooks.once(d, "handshake_prompt hooks", name); err != nil {
					return err
				}
				vals := d.RemainingArgs()
				if len(vals) != 1 {
					return d.Errf("handshake_prompt hooks %s: want exactly one value", name)
				}
				v := vals[0]
				switch name {
				case "create", "action", "done":
					if !strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
						return d.Errf("handshake_prompt hooks %s %s: want a path of the site (/hooks/%s) or an http(s) URL", name, shownHookTarget(v), name)
					}
					switch name {
					case "create":
						hk.Create = v
					case "action":
						hk.Action = v
					default:
						hk.Done = v
					}
				case "timeout":
					dur, err := caddy.ParseDuration(v)
					if err != nil || dur <= 0 || dur > time.Minute {
						return d.Errf("handshake_prompt hooks timeout %q: want a duration up to 1m, e.g. 2s", v)
					}
					hk.Timeout = caddy.Duration(dur)
				default:
					return d.Errf("handshake_prompt hooks: unknown hook %q; known: create, action, done, timeout", name)
				}
			}
			hp.Hooks = hk
		case "browser_auth":
			if len(args) != 2 || args[0] != "cookie" {
				return d.Errf("handshake_prompt browser_auth: want `browser_auth cookie <name>` (the site's login cookie)")
			}
			hp.BrowserAuth = &HandshakeBrowserAuth{Cookie: args[1]}
		case "inject":
			if len(args) != 1 || args[0] != "forms" {
				return d.Errf("handshake_prompt inject: want `inject forms` (adds the browser client to pages with a <form>)")
			}
			hp.Inject = []string{"forms"}
		case "body_limit":
			v, err := one()
			if err != nil {
				return err
			}
			n, err := humanize.ParseBytes(v)
			if err != nil || n < 1024 || n > 16<<20 {
				return d.Errf("handshake_prompt body_limit %q: want a size from 1KiB to 16MiB, e.g. 64KiB", v)
			}
			hp.BodyLimit = int64(n)
		case "origins":
			if len(args) == 0 {
				return d.Errf("handshake_prompt origins: list host patterns, e.g. origins app.example.com")
			}
			hp.Origins = append(hp.Origins, args...)
		default:
			return d.Errf("handshake_prompt: unknown option %s; known: prefix, ws_prefix, ttl, max_ttl, rate, create_rate, ws_rate, ws_per_session, ws_max, store, zone, hooks, browser_auth, inject, base_url, instructions, body_limit, origins", shownOption(opt))
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*HandshakePrompt)(nil)

// shownHookTarget is how a config error shows a hook target it refuses:
// quoted, unless it may hold a credential (userinfo, a query), which is
// redacted as Redis URLs are (HTTPS://user:pass@host passes no prefix check).
func shownHookTarget(v string) string {
	if strings.ContainsAny(v, "@?#") {
		return redactURL(v)
	}
	return strconv.Quote(v)
}
