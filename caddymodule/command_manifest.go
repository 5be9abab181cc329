package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-ahp/caddy-ahp/manifest"
)

func init() {
	registerAHPSubcommand(func() *cobra.Command {
		cmd := &cobra.Command{
			Use:   "manifest [--config <file>] [--adapter <name>] [--site <host>]",
			Short: "Print the manifest each ahp block of a config would serve, or every problem with its fix",
			Long: `Adapt the config (as 'caddy run' would), provision each ahp handler on its
own, without starting a server or touching the network, and print the
manifest it would serve at /.well-known/agent.json: the inline fields, the
base manifest file, and what the plugin adds (rate_limits, integrations)
merged exactly as at run time.

A config with problems prints each one, with the fix, on stderr and exits 1.
With several ahp blocks each manifest is preceded by a "# site" line;
--site <host> prints only the block(s) serving that host. Relative paths in
the config resolve from the current directory, as for 'caddy run'.`,
			Example: `  caddy ahp manifest --config Caddyfile
  caddy ahp manifest --config Caddyfile --site example.com > agent.json`,
		}
		f := cmd.Flags()
		f.StringP("config", "c", "", "the configuration file (default: ./Caddyfile)")
		f.StringP("adapter", "a", "", "the config adapter (default: caddyfile for Caddyfiles)")
		f.String("site", "", "print only the ahp block(s) serving this host")
		cmd.RunE = ahpRunE(runManifest)
		return cmd
	})
}

// ahpBlock is one ahp handler in an adapted config.
type ahpBlock struct {
	server string
	listen []string
	hosts  []string
	raw    json.RawMessage
}

func (b ahpBlock) label() string {
	hosts := "any host"
	if len(b.hosts) > 0 {
		hosts = strings.Join(b.hosts, ", ")
	}
	return fmt.Sprintf("%s (server %s, %s)", hosts, b.server, strings.Join(b.listen, " "))
}

func runManifest(cmd *cobra.Command, args []string) error {
	if len(args) != 0 {
		return usageErrorf("unexpected arguments %q; give the config with --config", args)
	}
	f := cmd.Flags()
	configFile, _ := f.GetString("config")
	adapter, _ := f.GetString("adapter")
	site, _ := f.GetString("site")
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	logger := problemsLogger(errOut)
	// Caddy's own log (loading the config, anything logged through
	// caddy.Log() while the blocks provision) is held, and only its
	// warnings and errors reach stderr: "using config from file" is no
	// problem.
	_, caddyLog, held := caddy.BufferedLog()
	defer caddy.UnbufferDefaultLogger(caddyLog)
	defer held.FlushTo(logger)
	cfg, file, _, err := caddycmd.LoadConfig(configFile, adapter)
	held.FlushTo(logger)
	if err != nil {
		return fmt.Errorf("loading the config: %v", err)
	}
	if cfg == nil {
		return usageErrorf("no config: give one with --config (no ./Caddyfile here)")
	}
	blocks, globalRedis, err := findAHPBlocks(cfg)
	if err != nil {
		return fmt.Errorf("reading the adapted config of %s: %v", file, err)
	}
	if len(blocks) == 0 {
		return fmt.Errorf("%s has no ahp handler: add an `ahp { … }` block to a site", file)
	}
	if site != "" {
		var picked []ahpBlock
		for _, b := range blocks {
			for _, h := range b.hosts {
				if strings.EqualFold(h, site) {
					picked = append(picked, b)
					break
				}
			}
		}
		if len(picked) == 0 {
			var labels []string
			for _, b := range blocks {
				labels = append(labels, b.label())
			}
			return usageErrorf("no ahp block serves %q; the blocks are: %s", site, strings.Join(labels, "; "))
		}
		blocks = picked
	}
	failed := 0
	for _, b := range blocks {
		doc, err := renderManifest(b, globalRedis, logger)
		held.FlushTo(logger)
		if err != nil {
			failed++
			fmt.Fprintf(errOut, "%s:\n  %s\n", b.label(), strings.ReplaceAll(provisionMessage(err), "\n", "\n  "))
			continue
		}
		if len(blocks) > 1 {
			fmt.Fprintf(out, "# site: %s\n", b.label())
		}
		_, _ = out.Write(doc)
	}
	if failed > 0 {
		fmt.Fprintf(errOut, "%d of %d ahp block(s) have problems.\n", failed, len(blocks))
		return exitCode(1)
	}
	return nil
}

// provisionMessage drops Caddy's module-loading prefixes: the plugin's own
// message names the directive and the fix.
func provisionMessage(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "provision http.handlers.ahp: "); i >= 0 {
		msg = msg[i+len("provision http.handlers.ahp: "):]
	}
	return msg
}

// findAHPBlocks walks the adapted config's HTTP servers (subroutes
// included) for ahp handlers, with the hosts their routes match.
func findAHPBlocks(cfg []byte) ([]ahpBlock, string, error) {
	var c struct {
		Apps struct {
			HTTP *struct {
				Servers map[string]struct {
					Listen []string          `json:"listen"`
					Routes []json.RawMessage `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
			AHP *struct {
				Redis string `json:"redis"`
			} `json:"ahp"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		return nil, "", err
	}
	globalRedis := ""
	if c.Apps.AHP != nil {
		globalRedis = c.Apps.AHP.Redis
	}
	if c.Apps.HTTP == nil {
		return nil, globalRedis, nil
	}
	names := make([]string, 0, len(c.Apps.HTTP.Servers))
	for n := range c.Apps.HTTP.Servers {
		names = append(names, n)
	}
	sort.Strings(names)
	var blocks []ahpBlock
	for _, n := range names {
		srv := c.Apps.HTTP.Servers[n]
		err := walkRoutes(srv.Routes, nil, func(hosts []string, raw json.RawMessage) {
			blocks = append(blocks, ahpBlock{server: n, listen: srv.Listen, hosts: hosts, raw: raw})
		})
		if err != nil {
			return nil, "", err
		}
	}
	return blocks, globalRedis, nil
}

func walkRoutes(routes []json.RawMessage, hosts []string, found func([]string, json.RawMessage)) error {
	for _, raw := range routes {
		var rt struct {
			Match  []map[string]json.RawMessage `json:"match"`
			Handle []json.RawMessage            `json:"handle"`
		}
		if err := json.Unmarshal(raw, &rt); err != nil {
			return err
		}
		h := hosts
		for _, set := range rt.Match {
			if v, ok := set["host"]; ok {
				var list []string
				if err := json.Unmarshal(v, &list); err == nil {
					h = append(append([]string(nil), h...), list...)
				}
			}
		}
		for _, hraw := range rt.Handle {
			var hd struct {
				Handler string            `json:"handler"`
				Routes  []json.RawMessage `json:"routes"`
			}
			if err := json.Unmarshal(hraw, &hd); err != nil {
				return err
			}
			switch hd.Handler {
			case "ahp":
				found(h, hraw)
			case "subroute":
				if err := walkRoutes(hd.Routes, h, found); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// renderManifest provisions the block's handler in a throwaway context, as
// `caddy run` would, and asks it for its manifest. Provisioning reports
// every configuration problem; serving the manifest gives the exact bytes,
// whatever the plugin added to them. The handler that serves uses the
// memory store: the manifest does not depend on it, and the command must
// not need a Redis server.
func renderManifest(b ahpBlock, globalRedis string, logger *zap.Logger) ([]byte, error) {
	raw, usesRedis, err := withStore(b.raw, globalRedis, false)
	if err != nil {
		return nil, err
	}
	if _, err := provisionAHP(raw, "", logger); err != nil {
		return nil, err
	}
	if usesRedis {
		if raw, _, err = withStore(b.raw, globalRedis, true); err != nil {
			return nil, err
		}
	}
	host := "localhost"
	if len(b.hosts) > 0 && !strings.ContainsAny(b.hosts[0], "*{") {
		host = b.hosts[0]
	}
	return provisionAHP(raw, host, logger)
}

// provisionAHP loads the handler in a context of its own and, given a
// host, serves GET /.well-known/agent.json through it; the context is
// cancelled afterwards, which runs the handler's Cleanup. The handler logs
// to logger.
func provisionAHP(raw json.RawMessage, host string, logger *zap.Logger) ([]byte, error) {
	// No HTTP server runs here: the built-in concierge is checked but not
	// started (it reads the site through its server; the manifest does
	// not depend on it).
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.WithValue(context.Background(), manifestOnlyKey{}, logger)})
	defer cancel()
	mod, err := ctx.LoadModuleByID("http.handlers.ahp", raw)
	if err != nil {
		return nil, err
	}
	if host == "" {
		return nil, nil
	}
	h := mod.(caddyhttp.MiddlewareHandler)
	req := httptest.NewRequest(http.MethodGet, "http://"+host+manifest.WellKnownPath, nil)
	req.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	req = caddyhttp.PrepareRequest(req, caddy.NewReplacer(), rec, nil)
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		w.WriteHeader(http.StatusNotFound)
		return nil
	})
	if err := h.ServeHTTP(rec, req, next); err != nil {
		return nil, fmt.Errorf("serving the manifest: %v", err)
	}
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the handler answered %d instead of the manifest", res.StatusCode)
	}
	return body, nil
}

// withStore prepares a handler's JSON for loading on its own: without the
// route's "handler" key, with the global Redis URL filled in for `store
// redis` without one (the throwaway context has no global options), or,
// with memory, with the store switched to memory. usesRedis reports
// whether the block uses Redis.
func withStore(raw json.RawMessage, globalRedis string, memory bool) (json.RawMessage, bool, error) {
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, false, err
	}
	delete(h, "handler")
	// Two options may name Redis: rate_limit { store redis } and
	// verified_agents { shared_cache redis }.
	limitsRedis := redisOption(h, "rate_limit", "store", "redis", "memory", globalRedis, memory)
	cacheRedis := redisOption(h, "verified_agents", "shared_cache", "shared_cache_redis", "off", globalRedis, memory)
	out, err := json.Marshal(h)
	return out, limitsRedis || cacheRedis, err
}

// manifestOnlyKey marks the context `caddy ahp manifest` provisions a
// handler in, with no HTTP server around it. Its value is the *zap.Logger
// the handler logs to: the context has no Caddy config, whose absence
// would give the handler Caddy's development logger, DEBUG lines and all.
type manifestOnlyKey struct{}

// problemsLogger is the log of `caddy ahp manifest`: its stderr is for
// problems and their fixes, so warnings and errors only, without the
// timestamps of a server's log.
func problemsLogger(w io.Writer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = ""
	enc.EncodeLevel = zapcore.CapitalLevelEncoder
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(w), zapcore.WarnLevel))
}

// redisOption handles one option of block that may name Redis (kind
// "redis", its URL in urlKey): with memory, it is switched to offValue;
// otherwise a missing URL takes the global one. It reports whether the
// option named Redis.
func redisOption(h map[string]any, block, kind, urlKey, offValue, globalRedis string, memory bool) bool {
	b, _ := h[block].(map[string]any)
	if b == nil || b[kind] != "redis" {
		return false
	}
	if memory {
		b[kind] = offValue
		delete(b, urlKey)
	} else if s, _ := b[urlKey].(string); s == "" && globalRedis != "" {
		b[urlKey] = globalRedis
	}
	return true
}
