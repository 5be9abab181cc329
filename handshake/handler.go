// Package handshake serves the Handshake Prompt Protocol (HPP) at the edge:
// a browser page creates a session for its form, the user pastes the
// session's prompt into an AI agent, the agent reads and fills the form
// through a token-authenticated API, and the page fills live over a
// WebSocket while the user's own edits stay protected.
//
// It speaks the wire format of the reference Python SDK (handshake-prompt
// 0.1/0.2) so that the SDK's agent client, browser client and prompts work
// unchanged, and fixes the SDK's bugs (see docs/handshake-prompt.md).
//
// The package knows no Caddy. Handler is net/http middleware: it answers
// the paths under its prefixes and passes every other request to next.
// Sessions live in a Store: MemoryStore for one instance, RedisStore for
// many, whose WebSocket frames fan out through Redis pub/sub so that an
// agent writing through one instance fills the page whose socket is on
// another.
package handshake

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/htmlinject"
	"github.com/caddy-ahp/caddy-ahp/internal/jsonstr"
	"github.com/caddy-ahp/caddy-ahp/internal/logthrottle"
	"github.com/caddy-ahp/caddy-ahp/limiter"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

// Next is the rest of the site's handler chain (caddyhttp.Handler
// satisfies it).
type Next interface {
	ServeHTTP(http.ResponseWriter, *http.Request) error
}

// Defaults, as the SDK's.
const (
	DefaultPrefix    = "/handshake"
	DefaultWSPrefix  = "/ws/handshake"
	DefaultTTL       = 30 * time.Minute
	DefaultMaxTTL    = 24 * time.Hour
	DefaultBodyLimit = 64 << 10
	// DefaultWSPerSession caps one session's sockets on an instance (a
	// page open in a few tabs, reconnections overlapping).
	DefaultWSPerSession = 8
	// DefaultWSMax caps an instance's sockets per store (about 17 KB
	// each: 10,000 ≈ 170 MB).
	DefaultWSMax = 10000
)

// Config configures a Handler.
type Config struct {
	Prefix   string // default /handshake
	WSPrefix string // default /ws/handshake
	TTL      time.Duration
	// MaxTTL bounds what extend may make a session's TTL (default 24h);
	// a longer one is refused with the SDK's 403.
	MaxTTL time.Duration
	// Rate is the per-session limit of agent requests, extend included
	// (default 60/minute).
	Rate limiter.Limit
	// UserRate limits a session's user edits (notify, userEdit; default
	// 600/minute): they need no token by default.
	UserRate limiter.Limit
	// CreateRate limits session creation per client (ClientIP); zero: off.
	CreateRate limiter.Limit
	// WSRate limits WebSocket upgrades per client (ClientIP), checked
	// before anything else of an upgrade; zero: off.
	WSRate limiter.Limit
	// WSPerSession caps a session's sockets on this instance (default
	// DefaultWSPerSession); WSMax caps the sockets of this handler's store
	// on this instance (default DefaultWSMax).
	WSPerSession, WSMax int
	// Limiter decides the limits; required.
	Limiter limiter.Store
	// Zone namespaces the limiter's keys (the site's name).
	Zone string
	// Store keeps sessions; required.
	Store Store
	// CacheRecords keeps sessions' immutable records in this instance
	// (for a remote store: the token is then checked without a round trip).
	CacheRecords bool
	// BaseURL is the site's absolute URL for the prompt; default the
	// request's scheme and host.
	BaseURL string
	// Instructions is an optional block of the prompt.
	Instructions string
	// BodyLimit caps request bodies (default 64 KiB).
	BodyLimit int64
	// BrowserCookie, when set, binds sessions to the value of this cookie
	// at creation: creation, notify and the WebSocket require it.
	BrowserCookie string
	// Hooks are the site's HTTP hooks.
	Hooks Hooks
	// InjectForms adds the browser client's <script> to HTML pages that
	// contain a <form>.
	InjectForms bool
	// ClientIP identifies a client for CreateRate; default RemoteAddr's host.
	ClientIP func(*http.Request) string
	// HandlerErrorStatus is the HTTP status a site handler's error stands
	// for (caddymodule: a caddyhttp.HandlerError's StatusCode), 0 for none.
	// A path hook whose handlers return an error with a 4xx status (an
	// authentication handler refusing the plugin's call) answered that
	// status: a veto, not a failure.
	HandlerErrorStatus func(error) int
	// OriginPatterns allows cross-origin WebSockets (coder/websocket's).
	OriginPatterns []string
	Logger         *zap.Logger
	Observer       Observer
}

// Observer is told what happens, for metrics.
type Observer interface {
	SessionCreated()
	Refused(endpoint string, status int)
	Actions(applied, rejected, errors int)
	HookFailed(hook string)
	// StoreFailed: the session store (or, for store "limiter", the rate
	// limiter) could not answer; refusals such as a full store are not
	// failures. Every failure is counted; the log is throttled.
	StoreFailed(store, endpoint string)
	// Injected: a page got the client (or, false, was found to carry it).
	Injected(inserted bool)
}

type nopObserver struct{}

func (nopObserver) SessionCreated()         {}
func (nopObserver) Refused(string, int)     {}
func (nopObserver) Actions(int, int, int)   {}
func (nopObserver) HookFailed(string)       {}
func (nopObserver) StoreFailed(_, _ string) {}
func (nopObserver) Injected(bool)           {}

// Handler serves HPP.
type Handler struct {
	cfg      Config
	routes   routes
	records  *recordCache
	injector *htmlinject.Injector
	clientJS []byte
	jsETag   string
	log      *zap.Logger
	obs      Observer
	now      func() time.Time
	// storeLog and limiterLog throttle the logging of failing stores.
	storeLog, limiterLog logthrottle.Throttle
	// hookAuthLog throttles the warning about path hooks refused by the
	// site's authentication.
	hookAuthLog logthrottle.Throttle
	// stripHook: hooks are configured, so no client's X-Handshake-Hook
	// may reach the site.
	stripHook bool
	// sockets are the caps a socket is admitted within.
	sockets SocketCaps
}

// socketCaps derives the per-client and per-network socket caps from
// ws_max and ws_per_session, as the memory store's session caps are
// shares of its sessions: a client gets a tenth of ws_max (1000 of the
// default 10,000, far more than a visitor's tabs), never less than one
// session's sockets; its network twice that. No option: whoever needs
// more sockets per address raises ws_max.
func socketCaps(perSession, total int) SocketCaps {
	perClient := max(total/10, perSession)
	return SocketCaps{PerSession: perSession, PerClient: perClient, PerNetwork: 2 * perClient, Total: total}
}

// New checks cfg and builds a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil || cfg.Limiter == nil {
		return nil, errors.New("handshake: a store and a limiter are required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.WSPrefix == "" {
		cfg.WSPrefix = DefaultWSPrefix
	}
	// The messages quote the option as written: trimmed, `/` would read "".
	for _, p := range []struct {
		name string
		v    *string
	}{{"prefix", &cfg.Prefix}, {"ws_prefix", &cfg.WSPrefix}} {
		written := *p.v
		*p.v = strings.TrimRight(written, "/")
		if !strings.HasPrefix(*p.v, "/") || strings.ContainsAny(*p.v, "*?#%; \t") {
			return nil, errors.New("handshake: " + p.name + " " + strconv.Quote(written) + ": must be a plain path below the site's root, such as /handshake")
		}
	}
	if cfg.Prefix == cfg.WSPrefix {
		return nil, errors.New("handshake: prefix and ws_prefix must differ")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = DefaultMaxTTL
	}
	if cfg.MaxTTL < cfg.TTL {
		return nil, fmt.Errorf("handshake: max_ttl %s is shorter than ttl %s (defaults 24h and 30m): raise max_ttl or lower ttl", cfg.MaxTTL, cfg.TTL)
	}
	if cfg.Rate.Events == 0 {
		cfg.Rate = limiter.Limit{Events: 60, Window: time.Minute}
	}
	if cfg.UserRate.Events == 0 {
		cfg.UserRate = limiter.Limit{Events: 600, Window: time.Minute}
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.WSPerSession <= 0 {
		cfg.WSPerSession = DefaultWSPerSession
	}
	if cfg.WSMax <= 0 {
		cfg.WSMax = DefaultWSMax
	}
	if cfg.BaseURL != "" {
		written := cfg.BaseURL
		cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
		u, err := url.Parse(cfg.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			shown := strconv.Quote(written)
			if strings.ContainsAny(written, "@?#") { // may hold a credential
				shown = limiter.RedactURL(written)
			}
			return nil, errors.New("handshake: base_url " + shown + ": want the site's absolute URL, such as https://example.com")
		}
	}
	for _, p := range cfg.OriginPatterns {
		if err := checkOriginPattern(p); err != nil {
			return nil, err
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if err := cfg.Hooks.check(cfg.Prefix, cfg.WSPrefix); err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, obs: cfg.Observer, now: time.Now,
		stripHook: cfg.Hooks.Create != nil || cfg.Hooks.Action != nil || cfg.Hooks.Done != nil,
		sockets:   socketCaps(cfg.WSPerSession, cfg.WSMax)}
	if h.obs == nil {
		h.obs = nopObserver{}
	}
	var err error
	if h.routes, err = newRoutes(cfg.Prefix, cfg.WSPrefix, cfg.Hooks.paths()); err != nil {
		return nil, err
	}
	if cfg.CacheRecords {
		h.records = newRecordCache(recordCacheSize)
	}
	h.clientJS, h.jsETag = clientScript(cfg.Prefix, cfg.WSPrefix)
	if cfg.InjectForms {
		if h.injector, err = htmlinject.New(htmlinject.Config{Snippet: ScriptTag(cfg.Prefix), Marker: "hpp-client", Require: "<form"}); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// checkOriginPattern refuses an origins pattern that could never match a
// browser's Origin: coder/websocket matches it (path.Match, case-folded)
// against the Origin's host, or its scheme://host when the pattern has a
// "://", so a malformed pattern would refuse every cross-origin upgrade at
// run time and one with a path or a trailing / matches nothing.
func checkOriginPattern(p string) error {
	const want = "; want a host pattern (app.example.com, *.example.com, localhost:3000) or a scheme and host (https://app.example.com)"
	if _, err := path.Match(strings.ToLower(p), ""); err != nil {
		return errors.New("handshake: origins " + strconv.Quote(p) + ": not a valid pattern (" + err.Error() + ": check [ ] and \\)" + want)
	}
	host := p
	if i := strings.Index(p, "://"); i >= 0 {
		host = p[i+3:]
	}
	if host == "" || strings.ContainsAny(host, "/?#@ ") {
		return errors.New("handshake: origins " + strconv.Quote(p) + ": an Origin has no path, query, userinfo or trailing /, so this never matches" + want)
	}
	return nil
}

// Config returns the configuration in effect, defaults filled in.
func (h *Handler) Config() Config { return h.cfg }

// ServeHTTP answers HPP's paths and passes every other request to next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next Next) error {
	rt, sid, variant := h.routes.match(r.URL)
	if variant {
		// A spelling that only cleaning makes one of ours (case, //, %2F,
		// ;params ...): never the site's, never ours.
		writeError(w, http.StatusBadRequest, "non-canonical path")
		h.obs.Refused("path", http.StatusBadRequest)
		return nil
	}
	switch rt {
	case routeNone:
		if h.stripHook {
			httpx.DeleteEdgeFields(r.Header, "X-Handshake-Hook")
		}
		if h.injector != nil {
			return h.inject(w, r, next)
		}
		return next.ServeHTTP(w, r)
	case routeClientJS:
		h.serveClientJS(w, r)
		return nil
	case routeWS:
		h.serveWS(w, r, sid)
		return nil
	case routeHook:
		writeError(w, http.StatusForbidden, "this path is a handshake_prompt hook: only the plugin calls it")
		h.obs.Refused(rt.name(), http.StatusForbidden)
		return nil
	}
	if !methodOK(w, r, rt) {
		h.obs.Refused(rt.name(), http.StatusMethodNotAllowed)
		return nil
	}
	switch rt {
	case routeCreate:
		h.create(w, r, next)
	case routeContext:
		h.context(w, r, sid)
	case routeAction:
		h.action(w, r, sid, next)
	case routeNotify:
		h.notify(w, r, sid)
	case routeDiff:
		h.diff(w, r, sid)
	case routeExtend:
		h.extend(w, r, sid)
	case routePrompt:
		h.prompt(w, r, sid)
	}
	return nil
}

func methodOK(w http.ResponseWriter, r *http.Request, rt route) bool {
	want := rt.method()
	if r.Method == want || (want == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	w.Header()["Allow"] = []string{want}
	writeError(w, http.StatusMethodNotAllowed, "method not allowed; use "+want)
	return false
}

// writeJSON sends a JSON answer that no cache may keep (it may hold a
// token or a session's values).
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	hd := w.Header()
	hd["Content-Type"] = []string{"application/json"}
	hd["Cache-Control"] = []string{"no-store"}
	hd["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError sends the SDK's error body, {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	b := make([]byte, 0, len(msg)+16)
	b = append(b, `{"error":`...)
	b = jsonstr.AppendString(b, msg)
	b = append(b, '}')
	writeJSON(w, status, b)
}

// Errors, in the SDK's words.
const (
	msgNotFound     = "session not found or expired"
	msgInvalidToken = "invalid token"
	msgMissingToken = "missing token: send it in the X-Handshake-Token header"
	msgRateLimited  = "rate limit exceeded"
	msgBrowserAuth  = "browser auth failed"
)

// token is the request's token: the X-Handshake-Token header, else ?token=.
func token(r *http.Request) string {
	if t := r.Header.Get("X-Handshake-Token"); t != "" {
		return t
	}
	if !strings.Contains(r.URL.RawQuery, "token=") {
		return ""
	}
	return r.URL.Query().Get("token")
}

// validSID: sessions ids are 32 lowercase hex digits; anything else is
// answered 404 without asking the store.
func validSID(sid string) bool {
	if len(sid) != 32 {
		return false
	}
	for i := 0; i < len(sid); i++ {
		c := sid[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// lookup finds a session's record (the instance's cache first).
func (h *Handler) lookup(ctx context.Context, sid string) (*Record, error) {
	if !validSID(sid) {
		return nil, ErrNotFound
	}
	if h.records != nil {
		if rec := h.records.get(sid); rec != nil {
			return rec, nil
		}
	}
	rec, err := h.cfg.Store.Lookup(ctx, sid)
	if err == nil && h.records != nil {
		h.records.put(rec)
	}
	return rec, err
}

// authorize runs the SDK's checks in the SDK's order: 404, then 403, then
// 429 (the session's Rate, which every token request counts against). It
// writes the refusal and returns nil then.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, sid, endpoint string) *Record {
	rec, err := h.lookup(r.Context(), sid)
	if err != nil {
		h.storeError(w, endpoint, err)
		return nil
	}
	if tok := token(r); !rec.TokenOK(tok) {
		// The SDK says "invalid token" for no token too; an agent that
		// sent none (or sent it as a bearer) is told where it goes.
		msg := msgInvalidToken
		if tok == "" {
			msg = msgMissingToken
		}
		writeError(w, http.StatusForbidden, msg)
		h.obs.Refused(endpoint, http.StatusForbidden)
		return nil
	}
	if !h.admit(w, r, "hpp:"+h.cfg.Zone+":"+sid, h.cfg.Rate, endpoint) {
		return nil
	}
	return rec
}

// admit asks the limiter; a refusal is the SDK's 429 with Retry-After.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, key string, l limiter.Limit, endpoint string) bool {
	b := limiter.Batch{Windows: []limiter.WindowCheck{{Key: key, Limit: l}}}
	if err := h.cfg.Limiter.Do(r.Context(), &b); err != nil {
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			// The client hung up before it was decided: no store failure
			// (any client could inflate the count by resetting requests).
			return false
		}
		h.obs.StoreFailed("limiter", endpoint)
		if n, ok := h.limiterLog.Allow(h.now(), failureLogEvery); ok {
			h.log.Warn("handshake: rate-limit store failed", zap.String("endpoint", endpoint), zap.Error(err), zap.Int("suppressed", n))
		}
		writeError(w, http.StatusServiceUnavailable, "rate limit store unavailable, try again")
		h.obs.Refused(endpoint, http.StatusServiceUnavailable)
		return false
	}
	if b.Allowed() {
		return true
	}
	secs := int64(math.Ceil(b.Windows[0].Decision.RetryAfter.Seconds()))
	w.Header()["Retry-After"] = []string{strconv.FormatInt(max(secs, 1), 10)}
	writeError(w, http.StatusTooManyRequests, msgRateLimited)
	h.obs.Refused(endpoint, http.StatusTooManyRequests)
	return false
}

// storeError answers a store failure: 404 for a missing session, 503 for
// a store that cannot answer (logged; never with a token).
func (h *Handler) storeError(w http.ResponseWriter, endpoint string, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, msgNotFound)
		h.obs.Refused(endpoint, http.StatusNotFound)
	case errors.Is(err, ErrFull):
		writeError(w, http.StatusServiceUnavailable, "too many sessions, try again later")
		h.obs.Refused(endpoint, http.StatusServiceUnavailable)
	case errors.Is(err, ErrTooManyFields):
		writeError(w, http.StatusBadRequest, "too many fields in the session")
		h.obs.Refused(endpoint, http.StatusBadRequest)
	case errors.Is(err, ErrSessionFull):
		writeError(w, http.StatusBadRequest, msgSessionFull)
		h.obs.Refused(endpoint, http.StatusBadRequest)
	case errors.Is(err, context.Canceled):
		// The client hung up: no store failure, nothing to count or log
		// (any client could flood both by resetting its requests).
	default:
		h.storeFailed(endpoint, err)
		writeError(w, http.StatusServiceUnavailable, "session store unavailable, try again")
		h.obs.Refused(endpoint, http.StatusServiceUnavailable)
	}
}

const msgSessionFull = "too much data in the session"

// storeFailed counts a session store failure and logs it, at most once
// per failureLogEvery (with how many were not logged since).
func (h *Handler) storeFailed(endpoint string, err error) {
	h.obs.StoreFailed("sessions", endpoint)
	if n, ok := h.storeLog.Allow(h.now(), failureLogEvery); ok {
		h.log.Error("handshake: session store failed", zap.String("endpoint", endpoint), zap.Error(err), zap.Int("suppressed", n))
	}
}

// readBody reads a body up to the cap: 413 beyond it. An empty body is
// "{}" (the SDK's get_json(silent=True) or {}).
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, endpoint string) ([]byte, bool) {
	if r.ContentLength > h.cfg.BodyLimit {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
		h.obs.Refused(endpoint, http.StatusRequestEntityTooLarge)
		return nil, false
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.BodyLimit+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "could not read the request body")
		h.obs.Refused(endpoint, http.StatusBadRequest)
		return nil, false
	}
	if int64(len(b)) > h.cfg.BodyLimit {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
		h.obs.Refused(endpoint, http.StatusRequestEntityTooLarge)
		return nil, false
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return []byte("{}"), true
	}
	return b, true
}

func (h *Handler) badRequest(w http.ResponseWriter, endpoint string, err error) {
	writeError(w, http.StatusBadRequest, err.Error())
	h.obs.Refused(endpoint, http.StatusBadRequest)
}

// browserCredential is the browser_auth cookie's value, "" without one.
func (h *Handler) browserCredential(r *http.Request) string {
	if h.cfg.BrowserCookie == "" {
		return ""
	}
	c, err := r.Cookie(h.cfg.BrowserCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashToken(t string) [sha256.Size]byte { return sha256.Sum256([]byte(t)) }

// baseURL is the site's absolute URL for the prompt: base_url, else the
// request's scheme and Host. It is "" when the Host is not a plain
// host[:port]: the user pastes the prompt, token included, into an agent
// that will send the token to that URL, so no client-chosen userinfo,
// path or escape may steer it elsewhere.
func (h *Handler) baseURL(r *http.Request) string {
	if h.cfg.BaseURL != "" {
		return h.cfg.BaseURL
	}
	if !httpx.ValidHost(r.Host) {
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

const msgBadHost = "cannot build the prompt: the request's Host header is not a plain host[:port]; the site can set base_url"

// refuseHost answers a request whose prompt would have no valid base URL.
func (h *Handler) refuseHost(w http.ResponseWriter, endpoint string) {
	writeError(w, http.StatusBadRequest, msgBadHost)
	h.obs.Refused(endpoint, http.StatusBadRequest)
}
