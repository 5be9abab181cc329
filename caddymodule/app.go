package caddymodule

import (
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	caddy.RegisterModule(App{})
	httpcaddyfile.RegisterGlobalOption("ahp", parseGlobalOption)
}

// App holds settings shared by every `ahp` handler of the server, set with
// the global option:
//
//	{
//	    ahp {
//	        redis redis://127.0.0.1:6379/0
//	    }
//	}
//
// Handlers with `rate_limit { store redis }` and no URL of their own use
// this Redis; all handlers naming one URL share one client.
type App struct {
	// Redis is the default Redis URL (see RateLimitConfig.Redis).
	Redis string `json:"redis,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "ahp",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision checks the Redis URL where it is written: a site's `store
// redis` with no URL of its own would otherwise report its faults as that
// site's, whose block holds no URL, and a URL no site takes yet would load
// however wrong. The errors never show the password; building a client
// connects nothing.
func (a *App) Provision(caddy.Context) error {
	if a.Redis == "" {
		return nil
	}
	resolved, err := caddy.NewReplacer().ReplaceOrErr(a.Redis, true, false)
	if err != nil {
		return fmt.Errorf("ahp global option redis: %v; set its environment variable, or leave the placeholder out", err)
	}
	client, err := newRedisClient(resolved)
	if err != nil {
		return fmt.Errorf("ahp global option redis: %v", err)
	}
	return client.Close()
}

// Start implements caddy.App; the shared clients start with their first
// handler (see the usage pool in ratelimit.go).
func (*App) Start() error { return nil }

// Stop implements caddy.App.
func (*App) Stop() error { return nil }

func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	app := new(App)
	d.Next() // option name
	if existing != nil {
		// Caddy hands over the earlier block's value: taking this one would
		// silently drop the first block's settings.
		return nil, d.Errf("ahp global option: given twice; merge the two blocks into one")
	}
	if d.NextArg() {
		return nil, d.Errf("ahp global option takes a block: ahp { redis <url> }")
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "redis":
			if app.Redis != "" {
				return nil, d.Errf("ahp global option redis: given twice; keep one URL")
			}
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			app.Redis = d.Val()
			if d.NextArg() {
				// Not ArgErr, which quotes the extra token: a password
				// written apart from the URL, or the half of one holding a
				// space.
				return nil, d.Errf("ahp global option redis: want one URL (redis://[:password@]host:port/db; percent-encode a space in the password as %%20)")
			}
		default:
			return nil, d.Errf("ahp global option: unknown option %s; known: redis", shownOption(d.Val()))
		}
	}
	return httpcaddyfile.App{Name: "ahp", Value: caddyconfig.JSON(app, nil)}, nil
}

// globalApp returns the global ahp settings, or nil when none are set.
func globalApp(ctx caddy.Context) (*App, error) {
	v, err := ctx.AppIfConfigured("ahp")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return v.(*App), nil
}

var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
)
