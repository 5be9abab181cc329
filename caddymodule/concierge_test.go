package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"github.com/prometheus/client_golang/prometheus"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/concierge"
	"github.com/caddy-ahp/caddy-ahp/converse"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/markdown"
)

// TestSiteHostNames: the concierge reads a site as the Host its site
// block's address names (with the listener's port), and takes the site's
// names as its own for absolute links; wildcards and placeholders are not
// names to send.
func TestSiteHostNames(t *testing.T) {
	h, other := &Handler{}, &Handler{}
	site := func(hosts ...string) caddyhttp.Route {
		return caddyhttp.Route{
			MatcherSets: caddyhttp.MatcherSets{{caddyhttp.MatchHost(hosts)}},
			Handlers: []caddyhttp.MiddlewareHandler{&caddyhttp.Subroute{Routes: caddyhttp.RouteList{
				{Handlers: []caddyhttp.MiddlewareHandler{h}},
			}}},
		}
	}
	elsewhere := caddyhttp.Route{
		MatcherSets: caddyhttp.MatcherSets{{caddyhttp.MatchHost{"other.example"}}},
		Handlers:    []caddyhttp.MiddlewareHandler{other},
	}
	cases := []struct {
		name      string
		srv       *caddyhttp.Server
		option    string
		wantHost  string
		wantHosts []string
	}{
		{"site address with port", &caddyhttp.Server{Listen: []string{":8080"}, Routes: caddyhttp.RouteList{elsewhere, site("shop.example", "*.shop.example")}},
			"", "shop.example:8080", []string{"shop.example"}},
		{"default port", &caddyhttp.Server{Listen: []string{":80"}, Routes: caddyhttp.RouteList{site("shop.example")}},
			"", "shop.example", []string{"shop.example"}},
		{"https default port", &caddyhttp.Server{Listen: []string{":443"}, TLSConnPolicies: caddytls.ConnectionPolicies{{}}, Routes: caddyhttp.RouteList{site("shop.example")}},
			"", "shop.example", []string{"shop.example"}},
		{"no host matcher", &caddyhttp.Server{Listen: []string{":9000"}, Routes: caddyhttp.RouteList{{Handlers: []caddyhttp.MiddlewareHandler{h}}}},
			"", "localhost:9000", []string{"localhost"}},
		{"only a wildcard", &caddyhttp.Server{Listen: []string{":8443"}, Routes: caddyhttp.RouteList{site("*.shop.example", "{env.HOST}")}},
			"", "localhost:8443", []string{"localhost"}},
		{"host option", &caddyhttp.Server{Listen: []string{":8080"}, Routes: caddyhttp.RouteList{site("shop.example")}},
			"www.shop.example:8080", "www.shop.example:8080", []string{"www.shop.example", "shop.example"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, hosts := newSiteFetch(c.srv, h, c.option)
			if f.host != c.wantHost || strings.Join(hosts, ",") != strings.Join(c.wantHosts, ",") {
				t.Errorf("host %q hosts %q, want %q %q", f.host, hosts, c.wantHost, c.wantHosts)
			}
		})
	}
}

// TestFetchRefusesOtherSites: the concierge's fetch only ever asks its own
// server for a path; anything naming another host is refused before a
// request exists.
func TestFetchRefusesOtherSites(t *testing.T) {
	f := &siteFetch{srv: &caddyhttp.Server{}, host: "shop.example"}
	for _, p := range []string{"http://evil.example/", "//evil.example/x", "evil", "", "/a b", "/x#frag"} {
		if _, _, _, err := f.fetch(context.Background(), p); err == nil {
			t.Errorf("fetch %q: no error", p)
		}
	}
}

// TestFetchRecoversHandlerPanics: a handler's panic (reverse_proxy aborts
// a broken upstream body with http.ErrAbortHandler) becomes a failed
// fetch, not a crashed process: no net/http goroutine recovers it here.
// An unprovisioned server panics on its first log line.
func TestFetchRecoversHandlerPanics(t *testing.T) {
	f := &siteFetch{srv: &caddyhttp.Server{}, host: "shop.example"}
	status, _, _, err := f.fetch(context.Background(), "/")
	if err == nil || status != 0 {
		t.Fatalf("status %d err %v, want an error", status, err)
	}
}

// TestCaptureWriter: bodies are kept up to the cap and the rest is
// discarded without failing the handler; informational statuses are not
// the answer.
func TestCaptureWriter(t *testing.T) {
	w := &captureWriter{header: make(http.Header)}
	w.WriteHeader(http.StatusEarlyHints)
	big := strings.Repeat("x", fetchBodyLimit/2+1)
	for range 3 {
		if n, err := w.Write([]byte(big)); n != len(big) || err != nil {
			t.Fatalf("write: %d %v", n, err)
		}
	}
	if w.status != http.StatusOK || len(w.body) != fetchBodyLimit {
		t.Errorf("status %d, %d bytes kept", w.status, len(w.body))
	}
	// What http.ResponseController asks for is there, so Caddy's server
	// options neither fail nor log on internal requests.
	rc := http.NewResponseController(w)
	if rc.Flush() != nil || rc.EnableFullDuplex() != nil || rc.SetReadDeadline(time.Time{}) != nil || rc.SetWriteDeadline(time.Time{}) != nil {
		t.Error("response controller calls fail")
	}
}

// TestReloadDuringRebuildReadsTheNewSite: a reload that lands while the
// previous reload's rebuild still reads the site (through the previous
// configuration's server) has the site read once more through its own,
// or a route newly behind basic_auth stays quoted until the next refresh
// (never, with refresh off).
func TestReloadDuringRebuildReadsTheNewSite(t *testing.T) {
	page := func(body string) (int, http.Header, []byte, error) {
		return 200, http.Header{"Content-Type": {"text/html"}}, []byte("<html><head><title>T</title></head><body><main><h1>Hours</h1><p>" + body + "</p></main></body></html>"), nil
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var newCalls atomic.Int32
	fetchOld := func(ctx context.Context, p string) (int, http.Header, []byte, error) {
		once.Do(func() { close(entered) })
		select { // a slow site: the rebuild is still running
		case <-release:
		case <-ctx.Done():
		}
		return page("a page the new configuration puts behind basic_auth")
	}
	fetchNew := func(ctx context.Context, p string) (int, http.Header, []byte, error) {
		newCalls.Add(1)
		return page("what the new configuration shows")
	}
	pi := newPooledIndex(concierge.NewIndex(fetchOld, concierge.IndexOptions{StartPages: []string{"/"}, Hosts: []string{"localhost"}, Refresh: -1}), newHeldLog(zap.NewNop()))
	defer func() { _ = pi.Destruct() }()
	pi.started.Store(true) // as after the first start

	// Reload 1, as start() does it: SetFetch, then rebuild.
	pi.ix.SetFetch(fetchOld)
	pi.rebuild()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first rebuild never read the site")
	}
	// Reload 2 while reload 1's rebuild reads the site.
	pi.ix.SetFetch(fetchNew)
	pi.rebuild()
	close(release)
	done := make(chan struct{})
	go func() { pi.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the rebuilds did not end")
	}
	if newCalls.Load() == 0 {
		t.Fatal("the site was never read through the new configuration's server: the index keeps what the previous configuration showed")
	}
	if pi.running.Load() || pi.pending.Load() {
		t.Errorf("after the rebuilds: running %v, pending %v", pi.running.Load(), pi.pending.Load())
	}
}

// TestReloadLowersAnswerBound: max_tokens is a hard ceiling (spec §11.4),
// also for agents that send no context.max_tokens, whose answers the
// concierge bounds itself. A reload that lowers max_tokens gets a
// concierge built with the new bound, not the pooled one of the previous
// configuration; started fresh, the same configuration is the control.
func TestReloadLowersAnswerBound(t *testing.T) {
	for _, reload := range []bool{false, true} {
		t.Run(fmt.Sprintf("reload=%v", reload), func(t *testing.T) { answerBoundAfterStart(t, reload) })
	}
}

func answerBoundAfterStart(t *testing.T, reload bool) {
	m := &manifest.Manifest{AHP: "0.1", Name: "Bound Shop", Description: "d", Modes: []string{"MODE2"},
		Endpoints:    &manifest.Endpoints{Converse: "/agent/converse"},
		Capabilities: []manifest.Capability{{Name: "content_search", Mode: "MODE2", Description: "search", ResponseTypes: []string{"text/answer"}}}}
	srv := &caddyhttp.Server{Listen: []string{":65011"}}
	mjson, _ := json.Marshal(m)
	answerer := func(ceiling int) *builtinAnswerer {
		h := &Handler{MaxTokens: ceiling, logger: zap.NewNop(), stores: new(storeRefs)}
		copts := concierge.Options{Logger: zap.NewNop()}
		if ceiling > 0 && ceiling < concierge.DefaultMaxAnswerTokens { // as provisionConcierge does
			copts.MaxAnswerTokens = ceiling
		}
		return &builtinAnswerer{waiting: concierge.New(concierge.NewIndex(nil, concierge.IndexOptions{}), m, copts),
			ceiling: ceiling, site: m.Name, logger: zap.NewNop(), manifest: m, copts: copts,
			cfg: ConciergeConfig{Refresh: -1}, srv: srv, h: h, mhash: sha256.Sum256(mjson)}
	}
	// An index already read, as the pool holds it after the first start.
	long := strings.Repeat("The workshop oils every oak table by hand with hard wax oil before it ships. ", 40)
	site := func(ctx context.Context, p string) (int, http.Header, []byte, error) {
		return 200, http.Header{"Content-Type": {"text/html"}}, []byte("<html><head><title>Oak care</title></head><body><main><h1>Oak care</h1><p>" + long + "</p></main></body></html>"), nil
	}
	_, hosts := newSiteFetch(srv, &Handler{}, "")
	key := indexPoolKey(srv, "localhost:65011", concierge.IndexOptions{Hosts: hosts, Refresh: -1, Logger: zap.NewNop()})
	ix := concierge.NewIndex(site, concierge.IndexOptions{StartPages: []string{"/"}, Hosts: hosts, Refresh: -1})
	if err := ix.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	pi := newPooledIndex(ix, newHeldLog(zap.NewNop()))
	pi.started.Store(true)
	if _, loaded, _ := stores.LoadOrNew(key, func() (caddy.Destructor, error) { return pi, nil }); loaded {
		t.Fatal("index key in use")
	}
	defer func() { _, _ = stores.Delete(key) }()

	if reload {
		first := answerer(0) // no max_tokens: answers up to the default bound
		first.start()
		defer func() { _ = first.h.Cleanup() }()
	}
	second := answerer(100) // (reloaded) with `max_tokens 100`
	second.start()
	defer func() { _ = second.h.Cleanup() }()
	pi.wg.Wait() // the reload's rebuild, so the index is not read mid-test

	rec := httptest.NewRecorder()
	if _, _, err := second.Answer(context.Background(), rec, &converse.Request{Capability: "content_search", Query: "How is the oak table oiled?"}); err != nil {
		t.Fatal(err)
	}
	var body struct {
		Response struct {
			Answer string `json:"answer"`
		} `json:"response"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Response.Answer == "" {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
	if n := markdown.Tokens(body.Response.Answer); n > 100 {
		t.Errorf("with max_tokens 100 the answer is %d tokens", n)
	}
}

// TestConciergePoolKeyNamesEveryOption: any option that shapes the
// concierge changes its pool key, so a reload never keeps a concierge
// built with other options.
func TestConciergePoolKeyNamesEveryOption(t *testing.T) {
	var h [32]byte
	base := concierge.Options{MaxSessions: 10, SessionIdle: time.Minute, MaxAnswerTokens: 100}
	k := conciergePoolKey("ix", h, base)
	for name, o := range map[string]concierge.Options{
		"MaxSessions":     {MaxSessions: 11, SessionIdle: time.Minute, MaxAnswerTokens: 100},
		"SessionIdle":     {MaxSessions: 10, SessionIdle: time.Hour, MaxAnswerTokens: 100},
		"MaxAnswerTokens": {MaxSessions: 10, SessionIdle: time.Minute, MaxAnswerTokens: 99},
	} {
		if conciergePoolKey("ix", h, o) == k {
			t.Errorf("%s: same key", name)
		}
	}
	h[0] = 1
	if conciergePoolKey("ix", h, base) == k || conciergePoolKey("iy", [32]byte{}, base) == k {
		t.Error("manifest or index: same key")
	}
}

// TestIndexMetricsSumSameSiteName: two indexes labelled with one site
// (two site blocks importing one ahp block, an http and an https server,
// the old and the new index across a reload) are summed: the same series
// twice would make every scrape of Caddy's /metrics fail with a 500.
func TestIndexMetricsSumSameSiteName(t *testing.T) {
	reg := prometheus.NewRegistry()
	mx, err := registerConciergeMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	site := func(ctx context.Context, p string) (int, http.Header, []byte, error) {
		return 200, http.Header{"Content-Type": {"text/html"}}, []byte("<html><body><main><h1>Oak</h1><p>Oak tables are oiled by hand.</p></main></body></html>"), nil
	}
	var ixs []*pooledIndex
	for range 2 {
		ix := concierge.NewIndex(site, concierge.IndexOptions{StartPages: []string{"/"}, Refresh: -1})
		if err := ix.Build(context.Background()); err != nil {
			t.Fatal(err)
		}
		pi := newPooledIndex(ix, newHeldLog(zap.NewNop()))
		ixs = append(ixs, pi)
		mx.indexes.sites.Store(pi, "Harbor & Pine")
		defer mx.indexes.sites.Delete(pi)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering the registry Caddy's /metrics serves: %v", err)
	}
	want := 2 * ixs[0].ix.Stats().Pages
	for _, mf := range mfs {
		if mf.GetName() != "caddy_ahp_concierge_index" {
			continue
		}
		for _, m := range mf.GetMetric() {
			what := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "what" {
					what = l.GetValue()
				}
			}
			if what == "pages" {
				if got := int(m.GetGauge().GetValue()); got != want || want == 0 {
					t.Errorf("pages %d, want the sum %d", got, want)
				}
				return
			}
		}
	}
	t.Error("no pages series")
}

// TestJSONConciergeBoundsChecked: the bounds the Caddyfile enforces
// (refresh at least 1m, max_pages up to 100000, markdown max_size up to
// 64MiB, ...) hold for a JSON config too, what the admin API and `caddy
// validate --config x.json` take: a refresh of 1ns would read the whole
// site back to back, forever.
func TestJSONConciergeBoundsChecked(t *testing.T) {
	in := "{\n\tadmin off\n\tauto_https off\n\tstorage file_system " + t.TempDir() + "\n}\n" + `http://shop.test:8080 {
	ahp {
		name "Shop"
		description "A shop"
		content_signals {
			ai_input true
		}
		converse /agent/converse
		capability content_search {
			description "Search the shop"
			mode MODE2
			response_types text/answer
		}
		concierge builtin {
			refresh 1h
		}
		markdown
	}
	respond "hi"
}
`
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	js := string(out)
	validate := func(js string) error {
		var cfg caddy.Config
		if err := json.Unmarshal([]byte(js), &cfg); err != nil {
			t.Fatal(err)
		}
		return caddy.Validate(&cfg)
	}
	const refresh = `"refresh":3600000000000`
	for name, c := range map[string]struct{ old, new, want string }{
		"refresh off":            {refresh, `"refresh":-1`, ""},
		"refresh 1m":             {refresh, `"refresh":60000000000`, ""},
		"max_pages 100000":       {refresh, refresh + `,"max_pages":100000`, ""},
		"markdown max_size 1KiB": {`"markdown":{}`, `"markdown":{"max_size":1024}`, ""},
		"refresh 1ns":            {refresh, `"refresh":1`, "ahp concierge refresh"},
		"max_pages 1e9":          {refresh, refresh + `,"max_pages":1000000000`, "ahp concierge max_pages"},
		"max_pages -1":           {refresh, refresh + `,"max_pages":-1`, "ahp concierge max_pages"},
		"max_text 2GiB":          {refresh, refresh + `,"max_text":2147483648`, "ahp concierge max_text"},
		"pages elsewhere":        {refresh, refresh + `,"pages":["//evil.example/"]`, "ahp concierge pages"},
		"host with a path":       {refresh, refresh + `,"host":"shop.test/x"`, "ahp concierge host"},
		"markdown max_size 8GiB": {`"markdown":{}`, `"markdown":{"max_size":8589934592}`, "ahp markdown max_size"},
	} {
		bad := strings.Replace(js, c.old, c.new, 1)
		if bad == js {
			t.Fatalf("%s: could not patch %s", name, js)
		}
		err := validate(bad)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: caddy validate says %v, want an error naming %q", name, err, c.want)
		}
	}
}

// The concierge and markdown sub-blocks refuse a repeated option, as every
// other block does: a second `pages` line silently dropped the first's.
func TestConciergeAndMarkdownRefuseRepeats(t *testing.T) {
	for name, block := range map[string]string{
		"concierge pages": `ahp {
	concierge builtin {
		pages /a.html
		pages /sitemap.xml
	}
}`,
		"concierge max_pages": `ahp {
	concierge builtin {
		max_pages 10
		max_pages 20
	}
}`,
		"markdown max_size": `ahp {
	markdown {
		max_size 2MiB
		max_size 8KiB
	}
}`,
	} {
		h := new(Handler)
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(block))
		if err == nil || !strings.Contains(err.Error(), "given twice") {
			t.Errorf("%s: a repeated option was accepted (err %v)", name, err)
		}
	}
}

// TestConciergeRobotsOption: `robots ignore` reaches the index's options;
// anything but obey or ignore is refused naming both.
func TestConciergeRobotsOption(t *testing.T) {
	for block, want := range map[string]bool{
		"ahp {\n\tconcierge builtin\n}":                           false,
		"ahp {\n\tconcierge builtin {\n\t\trobots obey\n\t}\n}":   false,
		"ahp {\n\tconcierge builtin {\n\t\trobots ignore\n\t}\n}": true,
	} {
		h := new(Handler)
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(block)); err != nil {
			t.Fatalf("%s: %v", block, err)
		}
		if h.Concierge.IgnoreRobots != want {
			t.Errorf("%s: IgnoreRobots %v", block, h.Concierge.IgnoreRobots)
		}
	}
	h := new(Handler)
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("ahp {\n\tconcierge builtin {\n\t\trobots maybe\n\t}\n}"))
	if err == nil || !strings.Contains(err.Error(), "ahp concierge robots") || !strings.Contains(err.Error(), "robots ignore") {
		t.Errorf("robots maybe: %v", err)
	}
}
