// Package caddymodule is the only package that knows Caddy: it registers
// the plugin's modules and Caddyfile directives (ahp, agent_handoff,
// handshake_prompt), turns their configuration into the protocol packages'
// types at provisioning, composes those packages into handlers, and
// registers the `caddy ahp` commands.
package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/auth"
	"github.com/caddy-ahp/caddy-ahp/converse"
	"github.com/caddy-ahp/caddy-ahp/discovery"
	"github.com/caddy-ahp/caddy-ahp/gateway"
	"github.com/caddy-ahp/caddy-ahp/integrations/mcp"
	"github.com/caddy-ahp/caddy-ahp/integrations/openapi"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/notice"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterDirective("ahp", parseDirective)
	// After the site's own auth (basic_auth, forward_auth) and rewrites,
	// before encode and every handler that responds. A password-protected
	// site stays protected: the manifest, the content document, the
	// OpenAPI document and MCP answer only requests the site's auth let
	// through. The gateway sees paths as rewritten, and discovery matches
	// the path the client sent too, so a try_files fallback cannot hide
	// the manifest. Redirects from redir and 401s from basic_auth, which
	// answer before ahp runs, carry no Link header; `order ahp before
	// redir` restores that at the price of the site's auth not covering
	// the plugin's own documents (see the README). agent_handoff stands
	// right after ahp, before request_header (handoff.go): each names its
	// own neighbour, so the order holds whichever init runs first.
	httpcaddyfile.RegisterDirectiveOrder("ahp", httpcaddyfile.After, "forward_auth")
}

// Handler makes the site an AHP site: it serves the manifest at
// /.well-known/agent.json, adds the discovery Link header to every
// response, answers Accept: application/agent+json, and inserts the hidden
// agent notice into HTML pages.
type Handler struct {
	// ManifestFile is a manifest JSON file used as the base.
	ManifestFile string `json:"manifest_file,omitempty"`
	// Manifest holds inline manifest fields, in the manifest's own JSON
	// shape; they win over ManifestFile. A capability's input_schema or
	// output_schema may be a string: the path of a JSON Schema file.
	Manifest *manifest.Manifest `json:"manifest,omitempty"`
	// Discovery is how Accept: application/agent+json is answered:
	// "redirect" (302 to the manifest, default) or "inline" (200 with it).
	Discovery string `json:"discovery,omitempty"`
	// CacheControl of the manifest response; default "public, max-age=300".
	CacheControl string `json:"cache_control,omitempty"`
	// ContentFile is a local file served at the manifest's content path.
	ContentFile string `json:"content_file,omitempty"`
	// Notice configures the in-page agent notice; it is on by default.
	Notice *NoticeConfig `json:"notice,omitempty"`

	// RateLimit configures spec §11's limits; they are on by default with
	// the spec's recommended values and an in-memory store.
	RateLimit *RateLimitConfig `json:"rate_limit,omitempty"`
	// BodyLimit caps converse request bodies, in bytes (default 8 KB).
	BodyLimit int64 `json:"body_limit,omitempty"`
	// MaxTokens is the ceiling context.max_tokens is lowered to.
	MaxTokens int `json:"max_tokens,omitempty"`
	// Session configures the session constraints of spec §6.5.
	Session *SessionConfig `json:"session,omitempty"`
	// Auth configures credential verification.
	Auth *AuthConfig `json:"auth,omitempty"`
	// EchoSignals adds the manifest's content_signals to concierge
	// success answers that lack them; default true.
	EchoSignals *bool `json:"echo_signals,omitempty"`
	// CORS lets browser-based agents call the converse endpoint.
	CORS bool `json:"cors,omitempty"`
	// ConciergeTimeout bounds the concierge's answer (default 60s); past
	// it the agent gets the spec's 503.
	ConciergeTimeout caddy.Duration `json:"concierge_timeout,omitempty"`
	// MCP serves an MCP server (spec Appendix D) onto the converse
	// pipeline.
	MCP *MCPConfig `json:"mcp,omitempty"`
	// OpenAPI serves an OpenAPI 3.1 document (spec Appendix E) and maps
	// POST /capabilities/{name} onto the converse pipeline.
	OpenAPI *OpenAPIConfig `json:"openapi,omitempty"`
	// Concierge answers MODE2 capabilities from the site's own pages
	// (concierge.go); nil: every call goes to the site's concierge.
	Concierge *ConciergeConfig `json:"concierge,omitempty"`
	// Markdown answers Accept: text/markdown on HTML pages with the page
	// as Markdown (concierge.go); nil: off.
	Markdown *MarkdownConfig `json:"markdown,omitempty"`
	// VerifiedAgents verifies Web Bot Auth signatures (verified.go); nil:
	// off.
	VerifiedAgents *VerifiedAgentsConfig `json:"verified_agents,omitempty"`
	// Robots serves or extends /robots.txt with the manifest's content
	// signals (verified_robots.go): "extend", "serve" or "off" (default).
	Robots string `json:"robots,omitempty"`
	// Pages limits the site's requests the handler takes (the Caddyfile's
	// `ahp <matcher> { … }`): pages outside them get no Link header, notice,
	// Markdown or static-tier charge. The plugin's own paths (manifest,
	// content, converse and status in every spelling the gateway refuses,
	// MCP, OpenAPI, robots.txt when served) stay its own whatever they
	// match: outside the handler, a call to the converse path would reach
	// the site's concierge route unchecked. Empty: every request.
	PagesRaw caddyhttp.RawMatcherSets `json:"pages,omitempty" caddy:"namespace=http.matchers"`

	pagesMatch  caddyhttp.MatcherSets
	contentPath string
	discovery   *discovery.Handler
	limits      *ratelimit.Policy
	gateway     *gateway.Gateway
	mcp         *mcp.Server
	mcpPath     string
	openapi     *openapi.Document
	openapiPath string
	pages       *notice.Pages
	// markdown serves a request that asked for a page as Markdown,
	// reporting whether it did (set by provisionMarkdown).
	markdown func(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) (bool, error)
	// verify checks a request's agent signature, sets the placeholders
	// and the trusted X-AHP-Verified-Agent header, and returns the
	// refusal of an invalid signature the operator refuses, else nil
	// (set by provisionVerifiedStep).
	verify func(w http.ResponseWriter, r *http.Request) *ahperror.Error
	// robots answers /robots.txt with the content signals, reporting
	// whether it did (set by provisionRobots).
	robots     func(w http.ResponseWriter, r *http.Request, originalPath string, next caddyhttp.Handler) (bool, error)
	stores     *storeRefs
	metrics    *ahpMetrics
	logger     *zap.Logger
	proxyCheck *proxyCheck
	// releaseProxyCheck lets go of the server's shared proxyCheck.
	releaseProxyCheck func()
	edgeFields        *edgeFields
	// routes is the route list this handler claimed (claimRoutes).
	routes routeList
}

// MCPConfig configures the MCP front door.
type MCPConfig struct {
	// Path of the MCP endpoint, e.g. /mcp.
	Path string `json:"path"`
	// Origins are the browser origins allowed besides the endpoint's own
	// (Streamable HTTP requires servers to check Origin); "*" allows any.
	Origins []string `json:"origins,omitempty"`
	// Hosts are the site's host names: when set, a browser's Origin is
	// the endpoint's own only on a request sent to one of them (DNS
	// rebinding on a site block that answers every host; behind a
	// trusted proxy, the host is its X-Forwarded-Host).
	Hosts []string `json:"hosts,omitempty"`
}

// OpenAPIConfig configures the OpenAPI front door.
type OpenAPIConfig struct {
	// Path of the document, e.g. /openapi.json.
	Path string `json:"path"`
	// BaseURL is servers[0].url; default the scheme and host of each
	// request for the document (behind a proxy in trusted_proxies, its
	// X-Forwarded-Proto and X-Forwarded-Host).
	BaseURL string `json:"base_url,omitempty"`
}

// SessionConfig configures session limits.
type SessionConfig struct {
	// MaxTurns per session (default 10).
	MaxTurns int `json:"max_turns,omitempty"`
	// Idle is the inactivity after which a session expires (default 10m).
	Idle caddy.Duration `json:"idle,omitempty"`
}

// AuthConfig configures the keys the gateway verifies credentials
// against. Without keys, credentials pass to the concierge unverified and
// requests count as unauthenticated.
type AuthConfig struct {
	// KeysFile holds one key per line, optionally "name: key".
	KeysFile string `json:"keys_file,omitempty"`
	// Keys are keys given in the config, typically {env.*} placeholders.
	Keys []string `json:"keys,omitempty"`
}

// NoticeConfig configures the in-page agent notice (spec §3.3).
type NoticeConfig struct {
	// Off disables the notice.
	Off bool `json:"off,omitempty"`
	// Text replaces the notice's first paragraph (HTML-escaped).
	Text string `json:"text,omitempty"`
	// Template is an html/template file rendering the notice's content.
	Template string `json:"template,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.ahp",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision builds and validates the manifest and everything requests
// share. A bad manifest stops the config load here, so `caddy validate`,
// `caddy run` and `caddy reload` refuse it before any request is served.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if err := h.claimRoutes(ctx); err != nil {
		return err
	}
	h.stores = new(storeRefs)
	h.proxyCheck, h.releaseProxyCheck = proxyCheckFor(ctx)
	h.edgeFields = new(edgeFields)
	var err error
	if l, ok := ctx.Value(manifestOnlyKey{}).(*zap.Logger); ok {
		h.logger = l // `caddy ahp manifest`: see manifestOnlyKey
	}
	if h.metrics, err = registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("ahp: metrics: %v", err)
	}
	if h.PagesRaw != nil {
		mods, err := ctx.LoadModule(h, "PagesRaw")
		if err != nil {
			return fmt.Errorf("ahp pages: loading the matchers: %v", err)
		}
		if err := h.pagesMatch.FromInterface(mods); err != nil {
			return fmt.Errorf("ahp pages: %v", err)
		}
	}

	// The limits go into the manifest, so they are parsed first.
	rlCfg := h.RateLimit
	if rlCfg == nil {
		rlCfg = &RateLimitConfig{}
	}
	if err := h.validateOptions(); err != nil {
		return err
	}
	var limits parsedLimits
	if !rlCfg.Off {
		if err := rlCfg.validate(); err != nil {
			return err
		}
		if limits, err = rlCfg.limits(); err != nil {
			return err
		}
	} else if err := rlCfg.validateOff(h.Session); err != nil {
		return err
	}
	declared := h.declaredManifest()
	hasConverse := declared.ConversePath() != ""
	// The keys decide whether the authenticated tier can apply, so they
	// are loaded before the manifest that declares it.
	var keys *auth.Keys
	if h.Auth != nil {
		// Only the gateway checks keys: without it the block protects
		// nothing, and its keys_file would go unread.
		if !hasConverse {
			return errors.New("ahp auth: the manifest has no converse endpoint, so no request is checked against these keys; " +
				"add `converse /agent/converse` and a MODE2 or MODE3 capability to the ahp block, or remove the auth block")
		}
		if keys, err = loadKeys(h.Auth); err != nil {
			return err
		}
	}
	overlay := &manifest.Manifest{}
	if !rlCfg.Off {
		verifiesKeys := keys.Len() > 0 && declared.Authentication != "" && declared.Authentication != manifest.AuthNone
		overlay = limits.overlay(hasConverse, verifiesKeys)
	}
	// The front doors are declared in the manifest whenever they are on
	// (spec §4.4.3: agents must find them there).
	if h.MCP != nil || h.OpenAPI != nil {
		overlay.Integrations = map[string]*manifest.Integration{}
		if h.MCP != nil {
			overlay.Integrations["mcp"] = &manifest.Integration{URL: h.MCP.Path, Version: mcp.ManifestVersion}
		}
		if h.OpenAPI != nil {
			overlay.Integrations["openapi"] = &manifest.Integration{URL: h.OpenAPI.Path, Version: openapi.Version}
		}
	}

	m, doc, err := manifest.Build(manifest.Source{File: h.ManifestFile, Inline: h.Manifest, Overlay: overlay})
	if err != nil {
		return fmt.Errorf("ahp: %w", err)
	}
	// The schema allows signed_request, and the Caddyfile refuses it; a
	// JSON config or a manifest file must not declare a scheme in which
	// the gateway can read no credential (every action call would be 401).
	if err := auth.CheckScheme(m.Authentication); err != nil {
		return fmt.Errorf("ahp: %v (in the ahp block: `authentication bearer`)", err)
	}
	if (declared.RateLimits != nil || declared.RateLimit != "") && servedRateLimitsDiffer(declared, overlay) {
		h.warnRateLimitsReplaced(rlCfg.Off)
	}
	if servedRateLimitsDiffer(m, overlay) {
		// The overlay leaves a field it does not set as the manifest had
		// it: with limiting off, or every declared tier off, the file's
		// own limits would be promised with nothing enforcing them.
		m.RateLimits, m.RateLimit = overlay.RateLimits, overlay.RateLimit
		if doc, err = manifest.Render(m); err != nil {
			return fmt.Errorf("ahp: %w", err)
		}
	}

	var injector *notice.Injector
	if h.Notice == nil || !h.Notice.Off {
		cfg := notice.Config{ManifestPath: manifest.WellKnownPath, Version: m.AHP, SiteName: m.Name}
		if h.Notice != nil {
			cfg.Text, cfg.TemplateFile = h.Notice.Text, h.Notice.Template
		}
		injector, err = notice.New(cfg)
		if err != nil {
			return fmt.Errorf("ahp: notice: %w", err)
		}
	}

	site := m.Name
	zone := ""
	if !rlCfg.Off {
		if zone = rlCfg.Zone; zone == "" {
			zone = m.Name
		}
	}
	obs := newObserver(h.metrics, site, zone)
	if !rlCfg.Off {
		if h.limits, err = h.rateLimits(ctx, rlCfg, limits, zone, obs); err != nil {
			return err
		}
	}
	h.contentPath = m.ContentPath()
	if h.discovery, err = discovery.New(discovery.Config{
		Manifest:     m,
		Document:     doc,
		Mode:         h.Discovery,
		CacheControl: h.CacheControl,
		ContentFile:  h.ContentFile,
		Signals:      true,
		Limits:       h.limits,
		Logger:       h.logger,
		Observer:     obs,
	}); err != nil {
		return err
	}
	if h.verify, err = h.provisionVerifiedStep(ctx, m); err != nil {
		return err
	}
	if h.robots, err = provisionRobots(h.Robots, m, h.CacheControl, h.logger); err != nil {
		return err
	}
	if h.markdown, err = h.provisionMarkdown(ctx, m); err != nil {
		return err
	}
	if m.ConversePath() != "" {
		answerer, err := h.provisionConcierge(ctx, m)
		if err != nil {
			return err
		}
		if h.gateway, err = h.newGateway(m, obs, answerer, keys); err != nil {
			return err
		}
	}
	if h.MCP != nil {
		h.mcpPath = h.MCP.Path
		if h.mcp, err = mcp.New(m, mcp.Options{Path: h.mcpPath, Gateway: h.gateway, Limits: h.limits,
			Content: h.discovery, Origins: h.MCP.Origins, Hosts: h.MCP.Hosts, TrustedPeer: trustedProxy, Logger: h.logger}); err != nil {
			return fmt.Errorf("ahp mcp: %v", err)
		}
	}
	if h.OpenAPI != nil {
		h.openapiPath = h.OpenAPI.Path
		if h.openapi, err = openapi.New(m, openapi.Options{BaseURL: h.OpenAPI.BaseURL, MCPPath: h.mcpPath,
			TrustedPeer: trustedProxy, Gateway: h.gateway, Limits: h.limits, Logger: h.logger}); err != nil {
			return fmt.Errorf("ahp openapi: %v", err)
		}
	}
	if err := checkPaths(m, h.mcpPath, h.openapiPath, h.openapi); err != nil {
		return err
	}
	if injector != nil {
		h.pages = &notice.Pages{
			Injector:  injector,
			ErrorPage: (&errorPages{logger: h.logger}).serve,
			Observer:  obs,
			Logger:    h.logger,
		}
	}
	if err := checkReach(ctx, h, "ahp", ahpReachFix, h.reachProbes(m)); err != nil {
		return err
	}
	h.logger.Debug("AHP manifest ready",
		zap.Strings("modes", m.Modes),
		zap.Int("capabilities", len(m.Capabilities)),
		zap.Int("bytes", len(doc.JSON)))
	return nil
}

// validateOptions checks, for a JSON config, the bounds the Caddyfile
// parser enforces on the handler's own options; zero means the default.
func (h *Handler) validateOptions() error {
	if h.BodyLimit < 0 || h.BodyLimit > 16<<20 {
		return fmt.Errorf("ahp body_limit %d: want a size in bytes up to 16 MiB (16777216), or leave it out for 8 KB", h.BodyLimit)
	}
	if h.MaxTokens < 0 || h.MaxTokens > 32768 {
		return fmt.Errorf("ahp max_tokens %d: want a whole number from 1 to 32768, or leave it out", h.MaxTokens)
	}
	if h.ConciergeTimeout < 0 {
		return fmt.Errorf("ahp concierge_timeout %s: want a positive duration such as 60s, or leave it out", time.Duration(h.ConciergeTimeout))
	}
	if s := h.Session; s != nil && (s.MaxTurns < 0 || s.Idle < 0) {
		return fmt.Errorf("ahp session: max_turns must be at least 1 and idle a positive duration such as 10m (or leave them out for 10 turns, 10m)")
	}
	return nil
}

// declaredManifest is the operator's manifest (inline fields over the
// base file) before the overlay, which depends on its converse endpoint
// and authentication. A file that cannot be read is left to
// manifest.Build to report.
func (h *Handler) declaredManifest() *manifest.Manifest {
	base := &manifest.Manifest{}
	if h.ManifestFile != "" {
		if f, err := manifest.LoadFile(h.ManifestFile); err == nil {
			base = f
		}
	}
	return manifest.Merge(base, h.Manifest.Clone())
}

// servedRateLimitsDiffer reports whether m's rate_limits or rate_limit are
// not exactly the overlay's, which holds what the rate_limit block enforces.
func servedRateLimitsDiffer(m, overlay *manifest.Manifest) bool {
	return m.RateLimit != overlay.RateLimit || !reflect.DeepEqual(m.RateLimits, overlay.RateLimits)
}

// warnRateLimitsReplaced says, at provision (so at `caddy validate`), that
// the manifest's own limits are not served as written.
func (h *Handler) warnRateLimitsReplaced(off bool) {
	msg := "ahp: the manifest's own rate_limits and rate_limit are replaced by what the rate_limit block enforces; " +
		"set the limits in the rate_limit block and remove them from the manifest"
	if off {
		msg = "ahp: rate_limit is off, so the manifest's own rate_limits and rate_limit are left out of the served manifest (nothing here enforces them); " +
			"remove them from the manifest, or turn rate limiting on with a rate_limit block"
	}
	h.logger.Warn(msg, zap.String("manifest_file", h.ManifestFile))
}

// newGateway builds the converse gateway; keys are those of the auth
// block (nil: credentials pass unverified).
func (h *Handler) newGateway(m *manifest.Manifest, obs *observer, answerer gateway.Answerer, keys *auth.Keys) (*gateway.Gateway, error) {
	cfg := gateway.Config{
		Answerer:    answerer,
		Manifest:    m,
		Rules:       converse.NewRules(m, converse.Options{MaxTokensCeiling: h.MaxTokens}),
		Limits:      h.limits,
		BodyLimit:   h.BodyLimit,
		EchoSignals: h.EchoSignals == nil || *h.EchoSignals,
		CORS:        h.CORS,
		Timeout:     time.Duration(h.ConciergeTimeout),
		ErrorStatus: errorStatus,
		Logger:      h.logger,
		Observer:    obs,
	}
	if h.verify != nil {
		cfg.VerifiedAgent = verifiedAgent
	}
	if s := h.Session; s != nil {
		cfg.MaxTurns, cfg.Idle = s.MaxTurns, time.Duration(s.Idle)
	}
	if h.Auth != nil {
		if keys.Len() > 0 && (m.Authentication == "" || m.Authentication == manifest.AuthNone) {
			return nil, errors.New("ahp auth: keys are configured but authentication is none; set `authentication bearer` or `authentication api_key`")
		}
		cfg.Keys = keys
	}
	return gateway.New(cfg)
}

// loadKeys reads the configured keys; placeholders such as {env.AHP_KEY}
// are replaced first. Errors never include a key.
func loadKeys(a *AuthConfig) (*auth.Keys, error) {
	repl := caddy.NewReplacer()
	var sets []*auth.Keys
	if a.KeysFile != "" {
		f, err := os.Open(a.KeysFile)
		if err != nil {
			return nil, fmt.Errorf("ahp auth keys_file: %v", err)
		}
		defer f.Close()
		k, err := auth.ParseKeys(f)
		if err != nil {
			return nil, fmt.Errorf("ahp auth keys_file %s: %v", a.KeysFile, err)
		}
		sets = append(sets, k)
	}
	if len(a.Keys) > 0 {
		raw := make([]string, len(a.Keys))
		for i, k := range a.Keys {
			raw[i] = repl.ReplaceKnown(k, "")
		}
		k, err := auth.NewConfigKeys(raw...)
		if err != nil {
			return nil, fmt.Errorf("ahp auth key: %v", err)
		}
		sets = append(sets, k)
	}
	keys, err := auth.Merge(sets...)
	if err != nil {
		return nil, fmt.Errorf("ahp auth: %v", err)
	}
	return keys, nil
}

// checkPaths refuses front doors that would shadow each other or an AHP
// endpoint. With the OpenAPI door on (doc not nil): no path of the
// plugin's at a capability's /capabilities/{name}, which the door answers
// for every method, and no converse endpoint at any /capabilities/{name},
// since the door, which comes first, answers every JSON POST there
// (unknown_capability): every direct AHP call would be taken as OpenAPI
// arguments and refused. (The manifest, the content document, MCP and the
// OpenAPI document are answered before the door.)
func checkPaths(m *manifest.Manifest, mcpPath, openapiPath string, doc *openapi.Document) error {
	used := map[string]string{manifest.WellKnownPath: "the manifest"}
	if p := m.ConversePath(); p != "" {
		used[p] = "converse"
	}
	if p := m.ContentPath(); p != "" {
		used[p] = "content"
	}
	for _, door := range []struct{ name, path string }{{"mcp", mcpPath}, {"openapi", openapiPath}} {
		if door.path == "" {
			continue
		}
		if !strings.HasPrefix(door.path, "/") {
			return fmt.Errorf("ahp %s %q: must be a path such as /%s", door.name, door.path, door.name)
		}
		if other, ok := used[door.path]; ok {
			return fmt.Errorf("ahp %s %s: the path is already %s's; choose another", door.name, door.path, other)
		}
		used[door.path] = door.name
	}
	if doc == nil {
		return nil
	}
	openapiCaps := doc.Capabilities()
	// In a fixed order, so that the same mistake gives the same message.
	for _, owner := range []string{"converse", "content", "mcp", "openapi"} {
		for p, o := range used {
			name, under := strings.CutPrefix(p, openapi.CapabilityPrefix)
			if o != owner || !under || name == "" || strings.Contains(name, "/") {
				continue
			}
			what := "answers POST " + p + " with JSON bodies"
			if slices.Contains(openapiCaps, name) {
				what = "answers " + p + " (capability " + strconv.Quote(name) + ")"
			} else if owner != "converse" {
				continue
			}
			return fmt.Errorf("ahp %s %s: the openapi door %s; choose a path outside %s, such as %s", owner, p, what, openapi.CapabilityPrefix, suggestedPaths[owner])
		}
	}
	return nil
}

// trustedProxy reports whether Caddy found r's peer in the server's
// trusted_proxies: the front doors then take its X-Forwarded-Proto as the
// client's scheme and its X-Forwarded-Host as the host, so a site behind a
// TLS-terminating proxy or a load balancer that rewrites Host advertises
// its public https URLs (GPT Actions requires https) and MCP's Origin
// check compares a browser's Origin with the host the browser reached.
func trustedProxy(r *http.Request) bool {
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	return trusted
}

// suggestedPaths are the usual paths of what checkPaths refuses, for its
// error messages.
var suggestedPaths = map[string]string{"converse": "/agent/converse", "content": "/llms.txt", "mcp": "/mcp", "openapi": "/openapi.json"}

// errorStatus reads the status Caddy handlers attach to their errors (the
// reverse proxy's 502/503/504 when the concierge is down).
func errorStatus(err error) int {
	var he caddyhttp.HandlerError
	if errors.As(err, &he) {
		return he.StatusCode
	}
	return 0
}

// Cleanup releases the stores this handler held, after a reload or stop.
func (h *Handler) Cleanup() error {
	h.releaseRoutes()
	h.stores.release()
	if h.releaseProxyCheck != nil {
		h.releaseProxyCheck()
	}
	return nil
}

// routeLists holds the ahp handler of each route list being provisioned
// or served. A second handler in the same routes runs behind the first,
// which answers the manifest, the front doors and the gateway: the
// second's manifest fields would be dropped without a word. Handlers
// leave at Cleanup; the keys are the config's own modules, so a reload
// never meets the config it replaces.
var routeLists = struct {
	sync.Mutex
	m map[routeList]*Handler
}{m: map[routeList]*Handler{}}

// routeList is where a handler stands: its server and the subroute whose
// routes hold it (a site block's, a handle or route block's), nil for the
// server's own lists.
type routeList struct {
	server *caddyhttp.Server
	parent *caddyhttp.Subroute
}

// claimRoutes refuses a second ahp handler in one route list.
func (h *Handler) claimRoutes(ctx caddy.Context) error {
	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	mods := ctx.Modules()
	if srv == nil || len(mods) < 2 || mods[len(mods)-1] != caddy.Module(h) {
		return nil // not inside a server's routes (a command's throwaway context)
	}
	// A site block, handle or route block is a subroute: two ahp in one
	// would answer the same requests, the second never reached. A server's
	// own route list may hold one per route (JSON, a route per host), but
	// not two in one route: that is a lone :port site's whole Caddyfile
	// block, which Caddy adapts without a subroute.
	parent, _ := mods[len(mods)-2].(*caddyhttp.Subroute)
	key := routeList{srv, parent}
	routeLists.Lock()
	defer routeLists.Unlock()
	if _, taken := routeLists.m[key]; taken {
		if parent == nil {
			return nil // the server's routes, all of them, were checked by the claimant
		}
		return errSecondAHP
	}
	// Once per server, not per handler: a JSON config may hold thousands
	// of host routes, each with its own ahp.
	if parent == nil && serverRouteHoldsTwo(srv) {
		return errSecondAHP
	}
	routeLists.m[key] = h
	h.routes = key
	return nil
}

const ahpReachFix = "put ahp directly in the site block, outside handle and route blocks (`ahp <matcher> {…}` limits the pages it takes), " +
	"or move the concierge's handle inside the same block as ahp"

// reachProbes are the requests ahp must see: the manifest, and each door
// to the gateway it serves itself.
func (h *Handler) reachProbes(m *manifest.Manifest) []reachProbe {
	probes := []reachProbe{{method: http.MethodGet, path: manifest.WellKnownPath, what: "the manifest"}}
	if p := m.ConversePath(); p != "" {
		probes = append(probes, reachProbe{method: http.MethodPost, path: p, what: "the converse endpoint"})
	}
	if h.mcp != nil {
		probes = append(probes, reachProbe{method: http.MethodPost, path: h.mcpPath, what: "the MCP endpoint"})
	}
	if h.openapi != nil {
		probes = append(probes, reachProbe{method: http.MethodGet, path: h.openapiPath, what: "the OpenAPI document"})
	}
	return probes
}

var errSecondAHP = errors.New("ahp: a second ahp block in the same site (or handle block); the first answers the manifest and the gateway, so this one's settings would be lost: " +
	"merge the two into one ahp block (one may come from an imported snippet), or give each host its own site block")

// serverRouteHoldsTwo reports whether one route of srv's own lists holds
// two ahp handlers. It runs while the routes are provisioned: a route
// already loaded has its Handlers, the one being loaded and those after it
// only their raw JSON.
func serverRouteHoldsTwo(srv *caddyhttp.Server) bool {
	lists := []caddyhttp.RouteList{srv.Routes}
	if srv.Errors != nil {
		lists = append(lists, srv.Errors.Routes)
	}
	for _, list := range lists {
		for i := range list {
			if ahpHandlers(&list[i]) > 1 {
				return true
			}
		}
	}
	for _, r := range srv.NamedRoutes {
		if ahpHandlers(r) > 1 {
			return true
		}
	}
	return false
}

// ahpHandlers counts r's ahp handlers, loaded or still raw.
func ahpHandlers(r *caddyhttp.Route) int {
	loaded, raw := 0, 0
	for _, hd := range r.Handlers {
		if _, ok := hd.(*Handler); ok {
			loaded++
		}
	}
	for _, m := range r.HandlersRaw {
		var mod struct {
			Handler string `json:"handler"`
		}
		if json.Unmarshal(m, &mod) == nil && mod.Handler == "ahp" {
			raw++
		}
	}
	return max(loaded, raw)
}

func (h *Handler) releaseRoutes() {
	if h.routes.server == nil {
		return
	}
	routeLists.Lock()
	if routeLists.m[h.routes] == h {
		delete(routeLists.m, h.routes)
	}
	routeLists.Unlock()
}

// Validate checks what Provision cannot have caught already.
func (h *Handler) Validate() error {
	if h.discovery == nil {
		return fmt.Errorf("ahp: handler was not provisioned")
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler: a request meets
// discovery, then the front doors, then the gateway, then the site's pages
// with the notice, each deciding in turn whether the request is its own.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// The built-in concierge reading the site through the whole server
	// (concierge_fetch.go): the site as an anonymous visitor sees it,
	// without the plugin's notice, Markdown, limits or budgets.
	if h.Concierge != nil && isInternalFetch(r) {
		return h.serveInternalFetch(w, r, next)
	}
	original := originalURL(r)
	h.proxyCheck.check(r, h.logger)
	// Only the plugin says which agent a request proved to be, and which
	// callback addresses it checked: no client value reaches any route, in
	// any spelling a PHP or CGI site would read as the plugin's.
	h.edgeFields.delete(r, VerifiedAgentHeader, converse.CallbackAddrsHeader)
	if h.verify != nil {
		if e := h.verify(w, r); e != nil {
			// An invalid signature the operator refuses. On the MCP
			// endpoint in that door's shape (a JSON-RPC error, as its
			// own refusals of a whole request), which MCP clients read.
			if h.mcp != nil && (r.URL.Path == h.mcpPath || original.Path == h.mcpPath) {
				h.mcp.Refuse(w, r, e)
			} else {
				ahperror.Write(w, e)
			}
			return nil
		}
	}
	if h.pagesMatch != nil {
		in, err := h.pagesMatch.AnyMatchWithError(r)
		if err != nil {
			return err
		}
		if !in && !h.ownsPath(r, original) {
			return next.ServeHTTP(w, r) // a page outside `ahp <matcher>`: the site's alone
		}
	}

	// Discovery: the Link header on every response; the manifest, a
	// negotiated manifest and a local content document answered here.
	lw, answered := h.discovery.Serve(w, r, original.Path)
	if answered {
		return nil
	}
	defer lw.Release()
	w = lw
	path := r.URL.Path

	// robots.txt with the content signals' group, when asked for.
	if h.robots != nil {
		if served, err := h.robots(w, r, original.Path, next); served {
			return err
		}
	}

	// The front doors: MCP and OpenAPI call the gateway's entry point
	// with the site's route to its concierge (next); each charges what
	// it answers itself to the static tier, capability calls never.
	if h.mcp != nil && (path == h.mcpPath || original.Path == h.mcpPath) {
		return h.mcp.ServeHTTP(w, r, next)
	}
	if h.openapi != nil {
		if path == h.openapiPath || original.Path == h.openapiPath {
			h.openapi.ServeHTTP(w, r)
			return nil
		}
		// The path the client sent too: a try_files fallback must not
		// turn a capability call into a page request.
		name, ok := h.openapi.CapabilityName(r, path)
		if !ok && original.Path != path {
			name, ok = h.openapi.CapabilityName(r, original.Path)
		}
		if ok {
			return h.openapi.ServeCapability(w, r, name, next)
		}
	}

	// The gateway: the converse endpoint, its status path, and every
	// spelling of them that is not the exact one.
	if h.gateway != nil {
		if route := h.gateway.Route(r.URL, original); route != gateway.NotGateway {
			toGatewayPath(h.gateway, r, original, route)
			return h.gateway.ServeHTTP(w, r, route, next)
		}
	}

	// The site's pages: as Markdown for an agent that asked for it, else
	// with the in-page notice.
	if h.markdown != nil {
		if served, err := h.markdown(w, r, next); served {
			return err
		}
	}
	if h.pages != nil {
		return h.pages.ServeHTTP(w, r, next)
	}
	return next.ServeHTTP(w, r)
}

// ownsPath reports whether the request is for one of the plugin's own
// paths, which `ahp <matcher>` never takes from it: the same tests the
// parts below make, the gateway's spellings it refuses included.
func (h *Handler) ownsPath(r *http.Request, original *url.URL) bool {
	is := func(p string) bool { return p != "" && (r.URL.Path == p || original.Path == p) }
	switch {
	case is(manifest.WellKnownPath), is(h.contentPath),
		h.robots != nil && is(robotsPath),
		h.mcp != nil && is(h.mcpPath),
		h.openapi != nil && is(h.openapiPath):
		return true
	}
	if h.openapi != nil {
		if _, ok := h.openapi.CapabilityName(r, r.URL.Path); ok {
			return true
		}
		if _, ok := h.openapi.CapabilityName(r, original.Path); ok {
			return true
		}
	}
	return h.gateway != nil && h.gateway.Route(r.URL, original) != gateway.NotGateway
}

// toGatewayPath puts r back on the gateway path its route was found on.
// When a rewrite before ahp took the path away from the gateway's
// (try_files' fallback to /index.html, a `rewrite` or `uri strip_prefix`
// of the converse path), the call goes on with the path the client sent:
// the site's route to its concierge matches the manifest's paths, as it
// must for the MCP and OpenAPI doors' calls, so all three doors reach it
// alike. A rewrite onto a gateway path is kept: it is that path already.
// The URL is changed in place, as Caddy's rewrite changes it, so that
// placeholders such as {path} in the concierge's route see it too.
func toGatewayPath(g *gateway.Gateway, r *http.Request, original *url.URL, route gateway.Route) {
	if route == gateway.VariantRoute || original.Path == r.URL.Path || g.Route(r.URL, nil) == route {
		return
	}
	r.URL.Path, r.URL.RawPath = original.Path, original.RawPath
}

// originalURL is the URL the client sent, before any rewrite of the
// site's; Caddy keeps it in the request's context.
func originalURL(r *http.Request) *url.URL {
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		return orig.URL
	}
	return r.URL
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
