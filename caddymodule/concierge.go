package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/concierge"
	"github.com/caddy-ahp/caddy-ahp/converse"
	"github.com/caddy-ahp/caddy-ahp/gateway"
	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// ConciergeConfig configures the built-in concierge (`concierge builtin
// { ... }`): MODE2 capability calls answered from the site's own pages,
// read through the site's own handler chain (concierge_fetch.go). Zero
// values take the defaults.
type ConciergeConfig struct {
	// Pages are where the crawl starts: sitemaps, robots.txt, text
	// documents (llms.txt) and HTML pages. Default /sitemap.xml,
	// /llms.txt, /. The manifest's content document is always read.
	Pages []string `json:"pages,omitempty"`
	// MaxPages bounds the pages indexed (default 500).
	MaxPages int `json:"max_pages,omitempty"`
	// MaxText bounds the text kept of the whole site, in bytes (default
	// 16 MiB; the index takes about 2.5 times its text in memory).
	MaxText int64 `json:"max_text,omitempty"`
	// Refresh is how often the site is read again (default 1h); negative:
	// never after the first build.
	Refresh caddy.Duration `json:"refresh,omitempty"`
	// Host is the Host header of the concierge's requests to the site;
	// default the site's first host name (with the listener's port when
	// it is not the scheme's default), else localhost.
	Host string `json:"host,omitempty"`
	// IgnoreRobots reads the pages the site's robots.txt disallows for
	// caddy-ahp-concierge (its own group, else *), which are skipped by
	// default. Caddyfile: `robots ignore`.
	IgnoreRobots bool `json:"ignore_robots,omitempty"`
}

// MarkdownConfig configures Markdown for agents (`markdown`).
type MarkdownConfig struct {
	// MaxSize caps the HTML converted, in bytes (default 1 MiB); larger
	// pages pass through as HTML.
	MaxSize int64 `json:"max_size,omitempty"`
}

// Bounds of the options, so a typo cannot make the concierge read a
// site without end or take all memory.
const (
	maxConciergePages = 100000
	maxConciergeText  = 1 << 30
	minRefresh        = time.Minute
	maxMarkdownSize   = 64 << 20
)

func (h *Handler) parseConcierge(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 1 || args[0] != "builtin" {
		return d.Errf("ahp concierge: want `concierge builtin` (optionally with a block: pages, max_pages, max_text, refresh, host, robots); " +
			"a concierge service of your own needs no option: route the exact converse paths to it after ahp, e.g. `@concierge path /agent/converse /agent/converse/status/*` and `handle @concierge { reverse_proxy concierge:9000 }`")
	}
	if h.Concierge != nil {
		return d.Errf("ahp concierge: given twice")
	}
	c := &ConciergeConfig{}
	seen := onceOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if err := seen.once(d, "ahp concierge", opt); err != nil {
			return err
		}
		switch opt {
		case "pages":
			c.Pages = d.RemainingArgs()
			if len(c.Pages) == 0 {
				return d.Errf("ahp concierge pages: list at least one path, e.g. `pages /sitemap.xml /llms.txt /`")
			}
			for _, p := range c.Pages {
				if err := checkSitePath(p); err != nil {
					return d.Errf("ahp concierge pages %q: %v", p, err)
				}
			}
		case "max_pages":
			var s string
			if err := oneArgIn(d, "ahp concierge", &s); err != nil {
				return err
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > maxConciergePages {
				return d.Errf("ahp concierge max_pages %q: want a whole number from 1 to %d", s, maxConciergePages)
			}
			c.MaxPages = n
		case "max_text":
			var s string
			if err := oneArgIn(d, "ahp concierge", &s); err != nil {
				return err
			}
			n, err := humanize.ParseBytes(s)
			if err != nil || n < 1<<10 || n > maxConciergeText {
				return d.Errf("ahp concierge max_text %q: want a size from 1KiB to 1GiB, such as 16MiB (the index takes about 2.5 times this in memory)", s)
			}
			c.MaxText = int64(n)
		case "refresh":
			var s string
			if err := oneArgIn(d, "ahp concierge", &s); err != nil {
				return err
			}
			if s == "off" || s == "never" {
				c.Refresh = -1
				continue
			}
			dur, err := caddy.ParseDuration(s)
			if err != nil || dur < minRefresh {
				return d.Errf("ahp concierge refresh %q: want a duration of at least 1m, such as 1h, or off (read the site once)", s)
			}
			c.Refresh = caddy.Duration(dur)
		case "host":
			if err := oneArgIn(d, "ahp concierge", &c.Host); err != nil {
				return err
			}
			if strings.ContainsAny(c.Host, "/ \t@*{}") {
				return d.Errf("ahp concierge host %q: want a host name, optionally with a port, such as example.com or localhost:8080", c.Host)
			}
		case "robots":
			var s string
			if err := oneArgIn(d, "ahp concierge", &s); err != nil {
				return err
			}
			switch s {
			case "obey":
				c.IgnoreRobots = false
			case "ignore":
				c.IgnoreRobots = true
			default:
				return d.Errf("ahp concierge robots %q: want `robots obey` (the default: pages the site's robots.txt disallows for caddy-ahp-concierge are not read) or `robots ignore`", s)
			}
		default:
			return d.Errf("ahp concierge: unknown option %q; known: pages, max_pages, max_text, refresh, host, robots", opt)
		}
	}
	h.Concierge = c
	return nil
}

func (h *Handler) parseMarkdown(d *caddyfile.Dispenser) error {
	if h.Markdown != nil {
		return d.Errf("ahp markdown: given twice")
	}
	mc := &MarkdownConfig{}
	if d.NextArg() {
		switch d.Val() {
		case "on":
		case "off":
			if d.NextArg() || d.NextBlock(d.Nesting()) {
				return d.Errf("ahp markdown off: takes nothing more")
			}
			return nil
		default:
			return d.Errf("ahp markdown %q: want `markdown`, `markdown off` or a block: markdown { max_size 1MiB }", d.Val())
		}
		if d.NextArg() {
			return d.Errf("ahp markdown: want `markdown`, `markdown off` or a block: markdown { max_size 1MiB }")
		}
	}
	seen := onceOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := seen.once(d, "ahp markdown", d.Val()); err != nil {
			return err
		}
		switch d.Val() {
		case "max_size":
			var s string
			if err := oneArgIn(d, "ahp markdown", &s); err != nil {
				return err
			}
			n, err := humanize.ParseBytes(s)
			if err != nil || n < 1<<10 || n > maxMarkdownSize {
				return d.Errf("ahp markdown max_size %q: want a size from 1KiB to 64MiB, such as 1MiB (conversion takes about 0.3 ms per KB)", s)
			}
			mc.MaxSize = int64(n)
		default:
			return d.Errf("ahp markdown: unknown option %q; known: max_size", d.Val())
		}
	}
	h.Markdown = mc
	return nil
}

// check holds the JSON configuration (what the admin API and `caddy
// validate --config x.json` take) to the bounds the Caddyfile enforces.
func (c *ConciergeConfig) check() error {
	for _, p := range c.Pages {
		if err := checkSitePath(p); err != nil {
			return fmt.Errorf("ahp concierge pages %q: %v", p, err)
		}
	}
	if c.MaxPages < 0 || c.MaxPages > maxConciergePages {
		return fmt.Errorf("ahp concierge max_pages %d: want a whole number from 1 to %d (0 or none: 500)", c.MaxPages, maxConciergePages)
	}
	if c.MaxText != 0 && (c.MaxText < 1<<10 || c.MaxText > maxConciergeText) {
		return fmt.Errorf("ahp concierge max_text %d: want a size from 1KiB to 1GiB (1024 to %d bytes; 0 or none: 16MiB)", c.MaxText, maxConciergeText)
	}
	if c.Refresh > 0 && time.Duration(c.Refresh) < minRefresh {
		return fmt.Errorf("ahp concierge refresh %s: want at least 1m, such as 1h (%d ns in JSON), or a negative value to read the site once (Caddyfile: refresh off)",
			time.Duration(c.Refresh), time.Hour)
	}
	if strings.ContainsAny(c.Host, "/ \t@*{}") {
		return fmt.Errorf("ahp concierge host %q: want a host name, optionally with a port, such as example.com or localhost:8080", c.Host)
	}
	return nil
}

// check holds the JSON configuration to the bounds the Caddyfile enforces.
func (mc *MarkdownConfig) check() error {
	if mc.MaxSize != 0 && (mc.MaxSize < 1<<10 || mc.MaxSize > maxMarkdownSize) {
		return fmt.Errorf("ahp markdown max_size %d: want a size from 1KiB to 64MiB (1024 to %d bytes; 0 or none: 1MiB)", mc.MaxSize, maxMarkdownSize)
	}
	return nil
}

// checkSitePath accepts a path of this site, with an optional query.
func checkSitePath(p string) error {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return errors.New("must be a path on this site, such as /sitemap.xml")
	}
	if strings.ContainsAny(p, "# \t\r\n") {
		return errors.New("must be a path without spaces or a fragment")
	}
	return nil
}

// checkConcierge is the load-time check of `concierge builtin` against the
// manifest. It is an error when the built-in concierge would answer
// nothing (no converse endpoint, or no capability it can answer); calls
// it leaves to the site (MODE3, types it cannot make) are only logged,
// since whether a route after ahp answers them is the site's business.
func (h *Handler) checkConcierge(m *manifest.Manifest) error {
	c := h.Concierge
	if c == nil {
		return nil
	}
	if m.ConversePath() == "" {
		return errors.New("ahp concierge builtin: the manifest has no converse endpoint; add `converse /agent/converse` (and a MODE2 capability) to the ahp block")
	}
	probe := concierge.New(concierge.NewIndex(nil, concierge.IndexOptions{}), m, concierge.Options{})
	var answered, left []string
	for _, cp := range m.Capabilities {
		switch {
		case probe.Answers(cp.Name):
			answered = append(answered, cp.Name)
		case cp.Mode != manifest.Mode3:
			left = append(left, cp.Name)
		}
	}
	if len(answered) == 0 {
		return errors.New("ahp concierge builtin: no capability it can answer: declare a MODE2 capability whose response_types include text/answer or application/feed (e.g. `capability content_search { mode MODE2; response_types text/answer }`), or remove `concierge builtin`")
	}
	// MODE3 capabilities are the site's own service's by design; a MODE2
	// one the built-in concierge cannot make is worth a word, since the
	// operator may have meant it to answer it.
	if len(left) > 0 {
		h.logger.Warn("ahp concierge builtin: these MODE2 capabilities only return types the built-in concierge cannot make (it makes text/answer and application/feed); their calls go to the handlers after ahp, so route the exact converse paths to a concierge of yours (`@concierge path /agent/converse /agent/converse/status/*`, `handle @concierge { reverse_proxy concierge:9000 }`), or add text/answer to their response_types",
			zap.Strings("capabilities", left), zap.String("converse", m.ConversePath()))
	}
	return nil
}

// provisionConcierge builds the built-in concierge, nil when off. The
// index and the answering concierge are made when the site has started
// (reading the site needs its handler chain to be running), from a
// process-wide pool, so that `caddy reload` keeps both; until then calls
// get the concierge's own 503 with Retry-After.
func (h *Handler) provisionConcierge(ctx caddy.Context, m *manifest.Manifest) (gateway.Answerer, error) {
	cfg := h.Concierge
	if cfg == nil {
		return nil, nil
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := h.checkConcierge(m); err != nil {
		return nil, err
	}
	srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if !ok || srv == nil {
		if ctx.Value(manifestOnlyKey{}) != nil {
			return nil, nil // checked; `caddy ahp manifest` starts no site
		}
		return nil, errors.New("ahp concierge builtin: the ahp handler is not inside an HTTP server; use it in a site block")
	}
	copts := concierge.Options{Logger: h.logger.Named("concierge")}
	// max_tokens is a hard ceiling (spec §11.4): an agent that sends no
	// context.max_tokens gets the concierge's own bound, never more than it.
	if h.MaxTokens > 0 && h.MaxTokens < concierge.DefaultMaxAnswerTokens {
		copts.MaxAnswerTokens = h.MaxTokens
	}
	if h.Session != nil {
		copts.SessionIdle = time.Duration(h.Session.Idle)
	}
	mx, err := registerConciergeMetrics(ctx.GetMetricsRegistry())
	if err != nil {
		return nil, fmt.Errorf("ahp concierge builtin: metrics: %v", err)
	}
	mjson, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("ahp concierge builtin: %v", err)
	}
	a := &builtinAnswerer{
		waiting:  concierge.New(concierge.NewIndex(nil, concierge.IndexOptions{}), m, copts),
		ceiling:  h.MaxTokens,
		site:     m.Name,
		logger:   h.logger,
		manifest: m,
		copts:    copts,
		cfg:      *cfg,
		srv:      srv,
		h:        h,
		mhash:    sha256.Sum256(mjson),
		metrics:  mx,
	}
	eventsApp, err := ctx.App("events")
	if err != nil {
		return nil, fmt.Errorf("ahp concierge builtin: %v", err)
	}
	if err := eventsApp.(*caddyevents.App).On("started", &startedHook{a: a}); err != nil {
		return nil, fmt.Errorf("ahp concierge builtin: %v", err)
	}
	return a, nil
}

// builtinAnswerer is the gateway's view of the built-in concierge.
type builtinAnswerer struct {
	// live answers once the site has started; waiting (over an index
	// that is never built) answers before that: 503, Retry-After.
	live    atomic.Pointer[concierge.Concierge]
	waiting *concierge.Concierge
	ceiling int // max_tokens: context.max_tokens above it is lowered
	site    string
	logger  *zap.Logger
	metrics *conciergeMetrics

	// What the start hook needs to make the index and the concierge.
	manifest *manifest.Manifest
	copts    concierge.Options
	cfg      ConciergeConfig
	srv      *caddyhttp.Server
	h        *Handler
	mhash    [32]byte
}

// Answers reports whether the built-in concierge answers a capability:
// MODE1/MODE2 capabilities that can return text/answer or
// application/feed. Other calls go to the next handler.
func (a *builtinAnswerer) Answers(capability string) bool { return a.waiting.Answers(capability) }

// Answer answers an admitted call and reports the session and the tokens
// the gateway accounts.
func (a *builtinAnswerer) Answer(ctx context.Context, w http.ResponseWriter, req *converse.Request) (string, int64, error) {
	c := a.live.Load()
	if c == nil {
		c = a.waiting
	}
	maxTokens := req.Context.MaxTokens
	if a.ceiling > 0 && maxTokens > a.ceiling {
		maxTokens = a.ceiling // spec §11.4, as ForwardBody does for proxied calls
	}
	rep := c.Answer(ctx, concierge.Request{
		Capability:    req.Capability,
		Query:         req.Query,
		SessionID:     req.SessionID,
		Clarification: req.Clarification,
		AcceptTypes:   req.Context.AcceptTypes,
		MaxTokens:     maxTokens,
		Locale:        req.Context.Locale,
	})
	a.metrics.answered(a.site, rep.Status)
	err := rep.Write(w)
	return rep.SessionID, int64(rep.TokensUsed), err
}

// startedHook runs when the configuration holding the handler has
// started: its servers are serving, so the site can be read through them.
type startedHook struct{ a *builtinAnswerer }

func (s *startedHook) Handle(context.Context, caddy.Event) error {
	s.a.start()
	return nil
}

// start gets the site's index and concierge from the pool (a reload with
// the same options finds the ones the previous configuration used), points
// the index at this configuration's server and starts it, or, when it was
// already running, has it read the site again in the background, since
// the new configuration may show visitors other pages (the previous index
// answers meanwhile).
func (a *builtinAnswerer) start() {
	fetch, hosts := newSiteFetch(a.srv, a.h, a.cfg.Host)
	opts := concierge.IndexOptions{
		StartPages:   a.cfg.Pages,
		ContentPath:  a.manifest.ContentPath(),
		Hosts:        hosts,
		MaxPages:     a.cfg.MaxPages,
		MaxTotalText: int(a.cfg.MaxText),
		IgnoreRobots: a.cfg.IgnoreRobots,
		Refresh:      time.Duration(a.cfg.Refresh),
		Logger:       a.logger.Named("concierge"),
	}
	indexKey := indexPoolKey(a.srv, fetch.host, opts)
	v, _, err := stores.LoadOrNew(indexKey, func() (caddy.Destructor, error) {
		log := newHeldLog(opts.Logger)
		opts.Logger = log.logger()
		return newPooledIndex(concierge.NewIndex(fetch.fetch, opts), log), nil
	})
	if err != nil { // the constructor cannot fail; be safe anyway
		a.logger.Error("ahp concierge builtin: index", zap.Error(err))
		return
	}
	a.h.stores.hold(indexKey)
	pi := v.(*pooledIndex)
	pi.ix.SetFetch(fetch.fetch)
	pi.log.set(a.logger.Named("concierge")) // this configuration runs now: its log, its level
	if a.metrics != nil {
		a.metrics.indexes.sites.Store(pi, a.site)
	}
	if !pi.started.Swap(true) {
		pi.ix.Start()
		a.logger.Info("ahp concierge builtin: reading the site", zap.String("host", fetch.host),
			zap.Strings("start_pages", opts.StartPages), zap.String("site", a.site))
	} else {
		pi.rebuild()
		a.logger.Info("ahp concierge builtin: configuration reloaded; keeping the index and reading the site again in the background",
			zap.String("host", fetch.host), zap.String("site", a.site))
	}

	ckey := conciergePoolKey(indexKey, a.mhash, a.copts)
	cv, _, err := stores.LoadOrNew(ckey, func() (caddy.Destructor, error) {
		copts := a.copts
		log := newHeldLog(copts.Logger)
		copts.Logger = log.logger()
		return pooledConcierge{concierge.New(pi.ix, a.manifest, copts), log}, nil
	})
	if err != nil {
		a.logger.Error("ahp concierge builtin: concierge", zap.Error(err))
		return
	}
	a.h.stores.hold(ckey)
	pc := cv.(pooledConcierge)
	pc.log.set(a.copts.Logger)
	a.live.Store(pc.Concierge)
}

// indexPoolKey names a site's index: its server's listeners, the Host the
// concierge reads it as, and the options that shape the index. A reload
// that keeps them keeps the index.
func indexPoolKey(srv *caddyhttp.Server, host string, o concierge.IndexOptions) string {
	var b strings.Builder
	b.WriteString("ahp:concierge-index:")
	b.WriteString(strings.Join(srv.Listen, ","))
	b.WriteString("|")
	b.WriteString(host)
	fmt.Fprintf(&b, "|%q|%q|%q|%d|%d|%s|%t", o.StartPages, o.ContentPath, o.Hosts, o.MaxPages, o.MaxTotalText, o.Refresh, o.IgnoreRobots)
	return b.String()
}

// conciergePoolKey names the concierge answering from an index for one
// manifest with one set of options: a reload that changes none of them
// keeps its sessions; one that changes any (a lower max_tokens, spec
// §11.4's hard ceiling) gets a concierge built with the new ones.
func conciergePoolKey(indexKey string, mhash [32]byte, o concierge.Options) string {
	return fmt.Sprintf("ahp:concierge:%x|%s|%d|%d|%s", mhash[:], o.SessionIdle, o.MaxSessions, o.MaxAnswerTokens, indexKey)
}

// pooledIndex is a site's index in the pool; it outlives reloads.
type pooledIndex struct {
	ix      *concierge.Index
	log     *heldLog // the running configuration's, set by start
	started atomic.Bool
	// Rebuilds after a reload run under ctx, which Destruct ends.
	ctx     context.Context
	cancel  context.CancelFunc
	running atomic.Bool
	// pending asks for one more build: a reload that lands while a
	// rebuild reads the site through the previous configuration's server
	// must still see the site through its own (a route newly behind auth).
	pending atomic.Bool
	wg      sync.WaitGroup
}

func newPooledIndex(ix *concierge.Index, log *heldLog) *pooledIndex {
	ctx, cancel := context.WithCancel(context.Background())
	return &pooledIndex{ix: ix, log: log, ctx: ctx, cancel: cancel}
}

// rebuild reads the site again in the background, one rebuild at a time.
// Asked while one runs, it has that one build once more when done, with
// the fetch current then: requests in between collapse into that build.
func (p *pooledIndex) rebuild() {
	p.pending.Store(true)
	if !p.running.CompareAndSwap(false, true) {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			for p.pending.Swap(false) && p.ctx.Err() == nil {
				_ = p.ix.Build(p.ctx) // the index logs failures and keeps the previous snapshot
			}
			p.running.Store(false)
			// A request that came after the last Swap saw running set and
			// left it to this goroutine: take it, unless another took it.
			if !p.pending.Load() || p.ctx.Err() != nil || !p.running.CompareAndSwap(false, true) {
				return
			}
		}
	}()
}

// Destruct runs when no configuration holds the index any more.
func (p *pooledIndex) Destruct() error {
	if conciergeMetricsSet != nil {
		conciergeMetricsSet.indexes.sites.Delete(p)
	}
	p.cancel()
	p.wg.Wait()
	return p.ix.Close()
}

// pooledConcierge keeps a concierge (and its sessions) across reloads.
type pooledConcierge struct {
	*concierge.Concierge
	log *heldLog // the running configuration's, set by start
}

func (pooledConcierge) Destruct() error { return nil }
