package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/handshake"
	"github.com/caddy-ahp/caddy-ahp/limiter"
)

func init() {
	caddy.RegisterModule(HandshakePrompt{})
	httpcaddyfile.RegisterHandlerDirective("handshake_prompt", parseHandshakeCaddyfile)
	// After redir and before rewrite, try_files, basic_auth and encode:
	// the endpoints must be reached as spelled, without the site's
	// credentials (agents hold only the session token), and pages are
	// rewritten wherever encode stands (compressed bodies are handled).
	// The resulting order is handshake_prompt → rewrite → basic_auth →
	// forward_auth → ahp → agent_handoff → … → reverse_proxy: ahp sits
	// behind the site's auth, so handshake_prompt's own answers (API,
	// client.js, WebSocket) carry no ahp Link; the site's pages still pass
	// through ahp and get it.
	httpcaddyfile.RegisterDirectiveOrder("handshake_prompt", httpcaddyfile.After, "redir")
}

// HandshakePrompt serves the Handshake Prompt Protocol (package handshake)
// in front of a site: any legacy form becomes agent-fillable.
type HandshakePrompt struct {
	// Prefix of the HTTP endpoints (default /handshake).
	Prefix string `json:"prefix,omitempty"`
	// WSPrefix of the WebSocket (default /ws/handshake).
	WSPrefix string `json:"ws_prefix,omitempty"`
	// TTL of a session, renewed by every use (default 30m).
	TTL caddy.Duration `json:"ttl,omitempty"`
	// MaxTTL bounds what extend may grow a session's TTL to (default 24h).
	MaxTTL caddy.Duration `json:"max_ttl,omitempty"`
	// Rate limits each session's agent requests (default "60/minute").
	Rate string `json:"rate,omitempty"`
	// CreateRate limits session creation per client IP, IPv6 by /64 (default
	// "30/minute"; "off" disables it).
	CreateRate string `json:"create_rate,omitempty"`
	// WSRate limits WebSocket upgrades per client IP (IPv6: /64), before the session
	// is looked up (default "120/minute"; "off" disables it).
	WSRate string `json:"ws_rate,omitempty"`
	// WSPerSession caps one session's open WebSockets on an instance
	// (default 8).
	WSPerSession int `json:"ws_per_session,omitempty"`
	// WSMax caps the open WebSockets of this store (zone) on an instance
	// (default 10000).
	WSMax int `json:"ws_max,omitempty"`
	// Store is "memory" (default: one instance) or "redis".
	Store string `json:"store,omitempty"`
	// Redis is the store's URL; "" means the global { ahp { redis <url> } }.
	Redis string `json:"redis,omitempty"`
	// MaxBytes bounds the bytes of the memory store's sessions together
	// (keys, values, changes, schemas; default 128 MiB, about 450 MB of
	// process memory at worst): past it creations get 503 and writes
	// that grow a session "too much data in the session". Memory store
	// only; handlers sharing a zone share the store and its bound.
	MaxBytes int64 `json:"max_bytes,omitempty"`
	// Zone namespaces sessions, Redis keys and metrics. Default: "default"
	// for a handler without browser_auth, hooks and base_url, else
	// "default-" and a digest of them (see defaultZone), so that sites in
	// one Caddy or on one Redis that differ in them never share sessions.
	// Instances of one site must agree on it; naming it shares sessions on
	// purpose.
	Zone string `json:"zone,omitempty"`
	// Hooks are the site's HTTP hooks.
	Hooks *HandshakeHooks `json:"hooks,omitempty"`
	// BrowserAuth binds sessions to the browser's login cookie.
	BrowserAuth *HandshakeBrowserAuth `json:"browser_auth,omitempty"`
	// Inject lists what to inject: "forms" adds the browser client to HTML
	// pages with a <form>.
	Inject []string `json:"inject,omitempty"`
	// BaseURL is the site's absolute URL in prompts (default: the
	// request's scheme and host).
	BaseURL string `json:"base_url,omitempty"`
	// Instructions is an optional block of the prompt.
	Instructions string `json:"instructions,omitempty"`
	// BodyLimit caps request bodies, in bytes (default 64 KiB).
	BodyLimit int64 `json:"body_limit,omitempty"`
	// Origins are extra origins allowed to open the WebSocket (host
	// patterns, coder/websocket's OriginPatterns); the site's own always is.
	Origins []string `json:"origins,omitempty"`

	handler *handshake.Handler
	stores  *storeRefs
	logger  *zap.Logger
	// proxyCheck is the server's (proxies.go): create_rate and ws_rate
	// key on {client_ip}.
	proxyCheck        *proxyCheck
	releaseProxyCheck func()
	// releaseBound withdraws this handler's max_bytes from the pooled
	// memory store's holders (storeBounds); nil with Redis.
	releaseBound func()
}

// HandshakeHooks are the hooks' targets: a path (through the site's own
// handlers) or an http(s) URL.
type HandshakeHooks struct {
	Create  string         `json:"create,omitempty"`
	Action  string         `json:"action,omitempty"`
	Done    string         `json:"done,omitempty"`
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

// HandshakeBrowserAuth names the cookie that identifies the browser.
type HandshakeBrowserAuth struct {
	Cookie string `json:"cookie"`
}

// CaddyModule returns the Caddy module information.
func (HandshakePrompt) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.handshake_prompt",
		New: func() caddy.Module { return new(HandshakePrompt) },
	}
}

// Provision builds the handler. Sessions and their sockets live in the
// shared store pool (keyed by store, URL and zone), so `caddy reload`
// keeps both; limiter stores and Redis clients are ahp's.
func (hp *HandshakePrompt) Provision(ctx caddy.Context) error {
	if hp.logger == nil { // tests may watch the warnings
		hp.logger = ctx.Logger()
	}
	const dir = "handshake_prompt"
	if hp.earlierHandshake(ctx) {
		prefix, ws := hp.endpointPrefixes()
		return fmt.Errorf("%s: a second handshake_prompt block on the endpoints of another (prefix %s or ws_prefix %s) in this site; "+
			"the first answers every request for them, so this one's settings would be lost: merge the two blocks into one "+
			"(one may come from an imported snippet), or give this one a prefix and ws_prefix of its own", dir, prefix, ws)
	}
	hp.stores = new(storeRefs)
	hp.proxyCheck, hp.releaseProxyCheck = proxyCheckFor(ctx)
	zone := hp.Zone
	if zone == "" {
		zone = hp.defaultZone()
	}
	m, err := registerHandshakeMetrics(ctx.GetMetricsRegistry())
	if err != nil {
		return fmt.Errorf("%s: metrics: %v", dir, err)
	}
	if hp.Rate == "off" {
		// As the Caddyfile refuses it: read as no limit, the handler
		// would apply its default, silently.
		return fmt.Errorf("%s rate off: the protocol limits every session; give a limit such as 60/minute, or leave rate out for 60/minute", dir)
	}
	rate, err := parseHandshakeRate(hp.Rate, "60/minute", dir+" rate")
	if err != nil {
		return err
	}
	createRate, err := parseHandshakeRate(hp.CreateRate, "30/minute", dir+" create_rate")
	if err != nil {
		return err
	}
	wsRate, err := parseHandshakeRate(hp.WSRate, "120/minute", dir+" ws_rate")
	if err != nil {
		return err
	}
	if err := hp.checkBounds(); err != nil {
		return err
	}
	var url string
	switch hp.Store {
	case "", "memory":
	case "redis":
		if hp.MaxBytes != 0 {
			return fmt.Errorf("%s store redis: max_bytes bounds the memory store only (Redis's memory is bounded by its own maxmemory); drop max_bytes, or use `store memory max_bytes <size>` (JSON: \"store\": \"memory\")", dir)
		}
		if url, err = redisURL(ctx, hp.Redis, dir+" store redis"); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s store %s: must be memory or redis [<url>]%s", dir, shownStoreKind(hp.Store), urlAsKindHint(hp.Store, "store", "redis"))
	}
	store, err := hp.sessionStore(url, zone, m)
	if err != nil {
		return err
	}
	// Redis failures the limiter absorbs (it falls back to this instance's
	// memory) are logged, throttled, by limiterStore and counted here; it
	// does not know the request, hence endpoint "-".
	limiterErrors := m.storeErrors.WithLabelValues(zone, "limiter", "-")
	lim, err := hp.stores.limiterStore(ctx, hp.Store, hp.Redis, limiter.DefaultRedisTimeout, false, true, dir+" store", hp.logger, func(error) { limiterErrors.Inc() })
	if err != nil {
		return err
	}
	cfg := handshake.Config{
		Prefix: hp.Prefix, WSPrefix: hp.WSPrefix, TTL: time.Duration(hp.TTL), MaxTTL: time.Duration(hp.MaxTTL),
		Rate: rate, CreateRate: createRate, WSRate: wsRate, WSPerSession: hp.WSPerSession, WSMax: hp.WSMax, Limiter: lim, Zone: zone, Store: store, CacheRecords: url != "",
		BaseURL: hp.BaseURL, Instructions: hp.Instructions, BodyLimit: hp.BodyLimit, OriginPatterns: hp.Origins,
		ClientIP: clientIP, Logger: hp.logger, Observer: handshakeObserver{m, zone},
		HandlerErrorStatus: handlerErrorStatus,
	}
	if hp.BrowserAuth != nil {
		if hp.BrowserAuth.Cookie == "" {
			return fmt.Errorf("%s browser_auth: name the login cookie: browser_auth cookie <name>", dir)
		}
		cfg.BrowserCookie = hp.BrowserAuth.Cookie
	}
	for _, what := range hp.Inject {
		if what != "forms" {
			return fmt.Errorf("%s inject %q: the only thing to inject is forms (inject forms)", dir, what)
		}
		cfg.InjectForms = true
	}
	if hk := hp.Hooks; hk != nil {
		cfg.Hooks.Timeout = time.Duration(hk.Timeout)
		cfg.Hooks.Create, cfg.Hooks.Action, cfg.Hooks.Done = hookTarget(hk.Create), hookTarget(hk.Action), hookTarget(hk.Done)
	}
	if hp.handler, err = handshake.New(cfg); err != nil {
		return fmt.Errorf("%s: %v", dir, strings.TrimPrefix(err.Error(), "handshake: "))
	}
	return nil
}

// endpointPrefixes are the handler's prefix and ws_prefix as
// handshake.New settles them.
func (hp *HandshakePrompt) endpointPrefixes() (prefix, ws string) {
	return handshakePrefix(hp.Prefix, handshake.DefaultPrefix), handshakePrefix(hp.WSPrefix, handshake.DefaultWSPrefix)
}

func handshakePrefix(p, def string) string {
	if p == "" {
		return def
	}
	return strings.TrimRight(p, "/")
}

// earlierHandshake reports whether another handshake_prompt that every
// request of this one passes first (before it in the same route, or in an
// earlier route with no matcher of a list on the way down) serves its
// prefix or its ws_prefix: that one answers all of this one's requests
// there. As for agent_handoff's earlierHandoff, routes with matchers may
// keep two blocks apart, and doubt never refuses: so may a path rewritten
// between them (handle_path /x/*: the first saw /x/handshake/…).
func (hp *HandshakePrompt) earlierHandshake(ctx caddy.Context) bool {
	steps := reachSteps(ctx, hp)
	if len(steps) == 0 {
		return false
	}
	prefix, ws := hp.endpointPrefixes()
	collides := func(p, w string) bool {
		p, w = handshakePrefix(p, handshake.DefaultPrefix), handshakePrefix(w, handshake.DefaultWSPrefix)
		return p == prefix || w == ws
	}
	// below[i]: the path may be rewritten between the start of step i's
	// route and this handler (in its handlers before the way down, or in
	// the steps under it), as reachBlocked reads it.
	below := make([]bool, len(steps)+1)
	for i := len(steps) - 1; i >= 0; i-- {
		st := steps[i]
		below[i] = below[i+1]
		for _, raw := range st.list[st.at].HandlersRaw[:st.handler] {
			below[i] = below[i] || decodeRawHandler(raw).rewrites()
		}
		if i+1 < len(steps) {
			next := steps[i+1]
			for j := 0; j < next.at; j++ {
				below[i] = below[i] || routeRewrites(&next.list[j])
			}
		}
	}
	for i, st := range steps {
		last := i == len(steps)-1
		for j := st.at - 1; j >= 0 && !below[i]; j-- {
			rt := &st.list[j]
			if routeRewrites(rt) {
				break // it and the routes before it may have seen another path
			}
			if len(rt.MatcherSets) > 0 || len(rt.MatcherSetsRaw) > 0 {
				continue
			}
			for _, h := range rt.Handlers {
				if o, ok := h.(*HandshakePrompt); ok && collides(o.Prefix, o.WSPrefix) {
					return true
				}
			}
		}
		if below[i] && !last {
			continue
		}
		// The route on the way is still raw while its handlers load; in
		// the last one this handler is among them (after any rewrite of
		// its own: st.handler is the first handshake_prompt).
		same := 0
		for k, raw := range st.list[st.at].HandlersRaw {
			if !last && k >= st.handler {
				break
			}
			var h struct {
				Handler  string `json:"handler"`
				Prefix   string `json:"prefix"`
				WSPrefix string `json:"ws_prefix"`
			}
			if json.Unmarshal(raw, &h) == nil && h.Handler == "handshake_prompt" && collides(h.Prefix, h.WSPrefix) {
				same++
			}
		}
		if same > 1 || !last && same > 0 {
			return true
		}
	}
	return false
}

// handlerErrorStatus is the status a Caddy handler's error carries
// (caddyauth refuses with caddyhttp.Error(401, ...)), 0 for none.
func handlerErrorStatus(err error) int {
	var he caddyhttp.HandlerError
	if errors.As(err, &he) {
		return he.StatusCode
	}
	return 0
}

// defaultZone is the zone of a handler that names none. Every site block
// of a Caddy (and every Caddy on one Redis) that leaves zone out would
// otherwise share one set of sessions, so that a session created where
// anyone may create one would be served where browser_auth guards
// creation, its action and done hooks called for a session its create hook
// never saw. The zone is therefore derived from what decides who may use a
// session and what sees it, the same on every instance and across reloads:
// browser_auth's cookie, the hooks' targets, base_url. Handlers that
// differ in them never see each other's sessions (404); bare handlers keep
// "default". Handlers identical in them still share one: a zone per site
// keeps those apart (their path hooks may reach different applications).
func (hp *HandshakePrompt) defaultZone() string {
	var cookie, create, action, done string
	if hp.BrowserAuth != nil {
		cookie = hp.BrowserAuth.Cookie
	}
	if hk := hp.Hooks; hk != nil {
		create, action, done = hk.Create, hk.Action, hk.Done
	}
	if cookie == "" && create == "" && action == "" && done == "" && hp.BaseURL == "" {
		return "default"
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{"handshake_prompt zone", cookie, create, action, done, hp.BaseURL}, "\x00")))
	return "default-" + hex.EncodeToString(sum[:6])
}

func hookTarget(s string) *handshake.Hook {
	switch {
	case s == "":
		return nil
	case strings.HasPrefix(s, "/"):
		return &handshake.Hook{Path: s}
	default:
		return &handshake.Hook{URL: s}
	}
}

func parseHandshakeRate(s, def, what string) (limiter.Limit, error) {
	switch s {
	case "":
		s = def
	case "off":
		return limiter.Limit{}, nil
	}
	l, err := limiter.ParseLimit(s)
	if err != nil {
		return limiter.Limit{}, fmt.Errorf("%s: %v", what, err)
	}
	return l, nil
}

// clientIP is Caddy's {client_ip}, which honours trusted_proxies.
func clientIP(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return ip
}

type pooledSessions struct {
	handshake.Store
	untrack func()       // the memory store's bytes metric; nil for Redis
	bounds  *storeBounds // the memory store's holders' max_bytes; nil for Redis
}

// storeBounds is the max_bytes each handler holding a pooled memory store
// configured (0: none stated), in the order they were provisioned. The
// store's bound is the latest stated one still held, the default when
// none is: a reload's new value applies as its handler provisions, a
// failed reload's cleanup gives the running configuration its own value
// back, and a site sharing the zone that states none changes nothing.
type storeBounds struct {
	mu    sync.Mutex
	next  uint64
	holds []boundHold
}

type boundHold struct {
	id uint64
	n  int64
}

// add records a holder's max_bytes and applies the resulting bound to s;
// the returned func withdraws it (and applies again). It reports the
// bound before and after.
func (b *storeBounds) add(s *handshake.MemoryStore, n int64) (release func(), was, now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	id := b.next
	b.holds = append(b.holds, boundHold{id, n})
	was, now = s.MaxBytes(), b.applyLocked(s)
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.holds = slices.DeleteFunc(b.holds, func(h boundHold) bool { return h.id == id })
		b.applyLocked(s)
	}, was, now
}

func (b *storeBounds) applyLocked(s *handshake.MemoryStore) int64 {
	n := int64(handshake.DefaultMaxBytes)
	for i := len(b.holds) - 1; i >= 0; i-- {
		if b.holds[i].n != 0 {
			n = b.holds[i].n
			break
		}
	}
	s.SetMaxBytes(n)
	return n
}

func (p pooledSessions) Destruct() error {
	if p.untrack != nil {
		p.untrack()
	}
	return p.Close()
}

// sessionStore is the pooled session store (with its hub of open sockets)
// for this store kind, URL and zone.
func (hp *HandshakePrompt) sessionStore(url, zone string, m *handshakeMetrics) (handshake.Store, error) {
	key := "hpp:memory:" + zone
	var client redis.UniversalClient
	if url != "" {
		key = "hpp:redis:" + zone + ":" + url
		// This handler's own reference to the client, taken whether or
		// not it builds the store: the store is shared by every handler
		// holding it, and so must be the client under it.
		var err error
		if client, err = hp.stores.redisClient(url); err != nil {
			return nil, fmt.Errorf("handshake_prompt store redis: %v", err)
		}
	}
	v, loaded, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		var s handshake.Store
		var untrack func()
		var bounds *storeBounds
		if client == nil {
			ms := handshake.NewMemoryStore()
			// The store outlives this configuration: its warnings follow
			// the running one's log.
			ms.SetLogger(caddyLog("http.handlers.handshake_prompt"))
			untrack = m.memoryBytes.track(zone, ms)
			bounds = new(storeBounds)
			s = ms
		} else {
			s = handshake.NewRedisStore(client, handshake.RedisOptions{Zone: zone})
		}
		gauge := m.socketsOpen.WithLabelValues(zone)
		s.Hub().OnOpen = func(d int) { gauge.Add(float64(d)) }
		connected := m.sessionsOpen.WithLabelValues(zone)
		s.Hub().OnSession = func(d int) { connected.Add(float64(d)) }
		return pooledSessions{s, untrack, bounds}, nil
	})
	if err != nil {
		return nil, err
	}
	hp.stores.hold(key)
	ps := v.(pooledSessions)
	if ms, ok := ps.Store.(*handshake.MemoryStore); ok {
		var was, now int64
		hp.releaseBound, was, now = ps.bounds.add(ms, hp.MaxBytes)
		if loaded && was != now {
			hp.logger.Info("handshake_prompt: the memory store's max_bytes changed (sites sharing a zone share its store; the latest max_bytes stated applies)",
				zap.String("zone", zone), zap.Int64("max_bytes", now), zap.Int64("was", was))
		}
	}
	store := ps.Store
	return store, nil
}

// Validate checks what Provision cannot have caught already.
func (hp *HandshakePrompt) Validate() error {
	if hp.handler == nil {
		return fmt.Errorf("handshake_prompt: handler was not provisioned")
	}
	return checkZone("handshake_prompt zone", hp.Zone)
}

// Cleanup releases the stores; sessions and sockets live on while the new
// configuration holds the same store.
func (hp *HandshakePrompt) Cleanup() error {
	if hp.releaseBound != nil {
		hp.releaseBound()
		hp.releaseBound = nil
	}
	hp.stores.release()
	if hp.releaseProxyCheck != nil {
		hp.releaseProxyCheck()
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (hp *HandshakePrompt) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	hp.proxyCheck.check(r, hp.logger)
	return hp.handler.ServeHTTP(w, r, next)
}

var (
	_ caddy.Provisioner           = (*HandshakePrompt)(nil)
	_ caddy.Validator             = (*HandshakePrompt)(nil)
	_ caddy.CleanerUpper          = (*HandshakePrompt)(nil)
	_ caddyhttp.MiddlewareHandler = (*HandshakePrompt)(nil)
)

// Bounds of store memory max_bytes: below 1 MiB a few full sessions fill
// the store; above 1 TiB is a typo.
const (
	minStoreBytes = 1 << 20
	maxStoreBytes = 1 << 40
)

// checkBounds holds a JSON configuration to the Caddyfile parser's bounds
// (zero takes the default): a body limit of a TiB, a 1ns session or a
// billion sockets would otherwise pass `caddy validate`.
func (hp *HandshakePrompt) checkBounds() error {
	const dir = "handshake_prompt"
	for _, d := range []struct {
		name string
		v    caddy.Duration
	}{{"ttl", hp.TTL}, {"max_ttl", hp.MaxTTL}} {
		if d.v != 0 && time.Duration(d.v) < time.Second {
			return fmt.Errorf("%s %s %s: want a duration of at least 1s, e.g. 30m", dir, d.name, time.Duration(d.v))
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"ws_per_session", hp.WSPerSession}, {"ws_max", hp.WSMax}} {
		if n.v < 0 || n.v > 1000000 {
			return fmt.Errorf("%s %s %d: want a number of sockets from 1 to 1000000 (or leave it out for the default)", dir, n.name, n.v)
		}
	}
	if hp.BodyLimit != 0 && (hp.BodyLimit < 1024 || hp.BodyLimit > 16<<20) {
		return fmt.Errorf("%s body_limit %d: want a size from 1KiB to 16MiB, e.g. 64KiB", dir, hp.BodyLimit)
	}
	if hp.MaxBytes != 0 && (hp.MaxBytes < minStoreBytes || hp.MaxBytes > maxStoreBytes) {
		return fmt.Errorf("%s store memory max_bytes %d: want a size from 1MiB to 1TiB, e.g. 256MiB (or leave it out for 128MiB)", dir, hp.MaxBytes)
	}
	if hk := hp.Hooks; hk != nil && (hk.Timeout < 0 || time.Duration(hk.Timeout) > time.Minute) {
		return fmt.Errorf("%s hooks timeout %s: want a duration up to 1m, e.g. 2s", dir, time.Duration(hk.Timeout))
	}
	return nil
}
