package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/fileserver"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// A directive that guards endpoints guards nothing where the requests for
// them never reach it: `ahp` in a catch-all `handle {}` beside the
// concierge's own `handle`, in `handle /blog/*`, or after a reverse_proxy
// in a `route` block loads, serves its manifest, and lets every converse
// call reach the concierge around the gateway. At provision the handler
// walks from its server's routes down the routes that hold it, and asks of
// each request it must see whether those routes let it through: each
// route on the way must match it, and no earlier route of the same list
// may take it first. Only what a synthetic request settles is believed (a
// path, a method); any other matcher (a host, a header, an expression)
// might go either way, and doubt never refuses.

// reachProbe is a request a directive must see to do its work.
type reachProbe struct {
	method, path string
	// what names the endpoint in the error, e.g. "the converse endpoint".
	what string
	// mounted: path is what the handler sees, after the site's rewrites
	// (agent_handoff's API may sit under handle_path /api/*); otherwise it
	// is what clients send (ahp's manifest is at the site's root).
	mounted bool
}

// reachStep is one route on the way from the server to the handler: the
// list holding it, its index there, and the index among its (still raw)
// handlers of the next module down.
type reachStep struct {
	list    caddyhttp.RouteList
	at      int
	handler int
}

// checkReach refuses the config when one of probes cannot reach self,
// naming the directive, the endpoint, why, and fix. It finds nothing to
// say where the way down is not plain routes and subroutes (error routes,
// named routes, a reverse_proxy's handle_response).
func checkReach(ctx caddy.Context, self caddy.Module, directive, fix string, probes []reachProbe) error {
	steps := reachSteps(ctx, self)
	if steps == nil {
		return nil
	}
	for _, p := range probes {
		if why := reachBlocked(ctx, steps, probeRequest(p), p.mounted); why != "" {
			return fmt.Errorf("%s: %s %s (%s) never reaches this %s block: %s; %s", directive, p.method, p.path, p.what, directive, why, fix)
		}
	}
	return nil
}

// reachSteps finds the routes holding self while it is provisioned.
// Caddy provisions a list's routes in order and clears a route's raw
// handlers only once it has loaded them all, so in each list on the way
// the route being loaded is the first that still has raw handlers.
func reachSteps(ctx caddy.Context, self caddy.Module) []reachStep {
	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	mods := ctx.Modules()
	if srv == nil || len(mods) < 2 || mods[len(mods)-1] != self {
		return nil
	}
	start := -1
	for i := len(mods) - 2; i >= 0; i-- {
		if _, ok := mods[i].(*caddyhttp.Subroute); ok {
			continue
		}
		if _, ok := mods[i].(*caddyhttp.App); ok {
			start = i + 1
		}
		break
	}
	if start < 0 {
		return nil
	}
	list := srv.Routes
	var steps []reachStep
	for _, m := range mods[start:] {
		at := -1
		for i := range list {
			if len(list[i].HandlersRaw) > 0 {
				at = i
				break
			}
		}
		if at < 0 {
			return nil // error or named routes: loaded after srv.Routes
		}
		name := caddy.GetModuleName(m)
		hi := -1
		for j, raw := range list[at].HandlersRaw {
			if rawHandlerName(raw) == name {
				hi = j // the first of its kind: the fewest handlers before it
				break
			}
		}
		if hi < 0 {
			return nil
		}
		steps = append(steps, reachStep{list: list, at: at, handler: hi})
		if sr, ok := m.(*caddyhttp.Subroute); ok {
			list = sr.Routes
		}
	}
	return steps
}

// reachBlocked says why r cannot reach the end of steps, "" when it can
// or when that is in doubt.
func reachBlocked(ctx caddy.Context, steps []reachStep, r *http.Request, mounted bool) string {
	// A mounted probe is the path the handler sees. Where the path may be
	// rewritten between a route's matchers and the handler (handle_path, a
	// uri strip_prefix in the block), those matchers saw another path:
	// they are in doubt too.
	below := make([]bool, len(steps))
	for i := len(steps) - 1; mounted && i >= 0; i-- {
		st := steps[i]
		for _, raw := range st.list[st.at].HandlersRaw[:st.handler] {
			below[i] = below[i] || decodeRawHandler(raw).rewrites()
		}
		if i+1 < len(steps) {
			below[i] = below[i] || below[i+1]
			next := steps[i+1]
			for j := 0; j < next.at; j++ {
				below[i] = below[i] || routeRewrites(&next.list[j])
			}
		}
	}
	rewritten := false // once a path may have been rewritten, path matchers are in doubt
	for si, st := range steps {
		rewritten = rewritten || below[si]
		cur := &st.list[st.at]
		groups := map[string]bool{} // groups whose earlier route may have run
		for i := 0; i < st.at; i++ {
			rt := &st.list[i]
			m := matchRoute(ctx, rt, r, rewritten)
			if m == matchNo {
				continue
			}
			sameGroup := rt.Group != "" && rt.Group == cur.Group
			if sameGroup && m == matchYes {
				return "an earlier handle block of the same site or block matches it, and only one handle block of a list runs"
			}
			sure := m == matchYes && (rt.Group == "" || !groups[rt.Group])
			if rt.Group != "" {
				groups[rt.Group] = true
			}
			if sure && rt.Terminal {
				return "a route before it matches it and ends the list (terminal)"
			}
			if sure {
				if name := routeAnswers(ctx, rt, r, rewritten); name != "" {
					return "a route before it answers it first (" + name + ")"
				}
			}
			// A route that may run and go on to ours may rewrite the path;
			// one that ends the list, or shares our group, never goes on.
			if !rewritten && !rt.Terminal && !sameGroup && routeRewrites(rt) {
				rewritten = true
			}
		}
		if matchRoute(ctx, cur, r, rewritten) == matchNo {
			return "its own matcher, or that of the handle or route block holding it, does not match it"
		}
		for _, raw := range cur.HandlersRaw[:st.handler] {
			h := decodeRawHandler(raw)
			if h.answers(ctx, r, rewritten) {
				return h.Handler + ", before it in the same block, answers it first"
			}
			rewritten = rewritten || h.rewrites()
		}
	}
	return ""
}

// probeRequest is a request for p, with a path that a "*" segment of the
// endpoint's pattern matches.
func probeRequest(p reachProbe) *http.Request {
	segs := strings.Split(p.path, "/")
	for i, s := range segs {
		if s == "*" {
			segs[i] = "x"
		}
	}
	r := &http.Request{Method: p.method, URL: &url.URL{Path: strings.Join(segs, "/")}, Host: "reach.invalid",
		Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	return r.WithContext(context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
}

// matchResult is what a synthetic request settles about a matcher.
type matchResult uint8

const (
	matchMaybe matchResult = iota // not settled by the request: a host, a header, a rewritten path
	matchNo
	matchYes
)

func (m matchResult) not() matchResult {
	switch m {
	case matchYes:
		return matchNo
	case matchNo:
		return matchYes
	}
	return matchMaybe
}

// matchRoute matches r against rt's matcher sets, loaded or still raw.
func matchRoute(ctx caddy.Context, rt *caddyhttp.Route, r *http.Request, rewritten bool) matchResult {
	switch {
	case len(rt.MatcherSets) > 0:
		return anySet(len(rt.MatcherSets), func(i int) matchResult { return matchSet(rt.MatcherSets[i], r, rewritten) })
	case len(rt.MatcherSetsRaw) > 0:
		return anySet(len(rt.MatcherSetsRaw), func(i int) matchResult { return matchRawSet(ctx, rt.MatcherSetsRaw[i], r, rewritten) })
	}
	return matchYes
}

// anySet is the OR of n matcher sets.
func anySet(n int, set func(int) matchResult) matchResult {
	res := matchNo
	for i := 0; i < n; i++ {
		switch set(i) {
		case matchYes:
			return matchYes
		case matchMaybe:
			res = matchMaybe
		}
	}
	return res
}

// matchSet is the AND of one loaded set's matchers.
func matchSet(set caddyhttp.MatcherSet, r *http.Request, rewritten bool) matchResult {
	res := matchYes
	for _, m := range set {
		switch matchOne(m, r, rewritten) {
		case matchNo:
			return matchNo
		case matchMaybe:
			res = matchMaybe
		}
	}
	return res
}

// matchRawSet is the AND of one raw set's matchers. Only those a request
// settles are decoded, into a fresh value: the route keeps its own.
func matchRawSet(ctx caddy.Context, set caddy.ModuleMap, r *http.Request, rewritten bool) matchResult {
	res := matchYes
	for name, raw := range set {
		v := matchMaybe
		switch name {
		case "path", "path_regexp", "method":
			if m := decodeMatcher(ctx, name, raw); m != nil {
				v = matchOne(m, r, rewritten)
			}
		case "not":
			var sets []caddy.ModuleMap
			if json.Unmarshal(raw, &sets) == nil && len(sets) > 0 {
				v = anySet(len(sets), func(i int) matchResult { return matchRawSet(ctx, sets[i], r, rewritten) }).not()
			}
		}
		switch v {
		case matchNo:
			return matchNo
		case matchMaybe:
			res = matchMaybe
		}
	}
	return res
}

func decodeMatcher(ctx caddy.Context, name string, raw json.RawMessage) any {
	info, err := caddy.GetModule("http.matchers." + name)
	if err != nil {
		return nil
	}
	m := info.New()
	if json.Unmarshal(raw, m) != nil {
		return nil
	}
	if p, ok := m.(caddy.Provisioner); ok && p.Provision(ctx) != nil {
		return nil
	}
	return m
}

// matchOne evaluates the matchers a request's method and path settle;
// the rest are in doubt.
func matchOne(m any, r *http.Request, rewritten bool) matchResult {
	var ok bool
	var err error
	switch m := m.(type) {
	case *caddyhttp.MatchMethod:
		ok, err = m.MatchWithError(r)
	case *caddyhttp.MatchPath:
		if rewritten || strings.Contains(strings.Join(*m, ""), "{") {
			return matchMaybe // a placeholder: the request's, not ours
		}
		ok, err = m.MatchWithError(r)
	case *caddyhttp.MatchPathRE:
		if rewritten {
			return matchMaybe
		}
		ok, err = m.MatchWithError(r)
	case *caddyhttp.MatchNot:
		if len(m.MatcherSets) == 0 {
			return matchMaybe
		}
		return anySet(len(m.MatcherSets), func(i int) matchResult { return matchSet(m.MatcherSets[i], r, rewritten) }).not()
	default:
		return matchMaybe
	}
	switch {
	case err != nil:
		return matchMaybe
	case ok:
		return matchYes
	}
	return matchNo
}

// routeAnswers names the handler of rt that surely answers r without
// passing it on, "" for none.
func routeAnswers(ctx caddy.Context, rt *caddyhttp.Route, r *http.Request, rewritten bool) string {
	for _, h := range routeHandlers(rt) {
		if h.answers(ctx, r, rewritten) {
			return h.Handler
		}
		rewritten = rewritten || h.rewrites()
	}
	return ""
}

// routeRewrites reports whether rt may change the request's path.
func routeRewrites(rt *caddyhttp.Route) bool {
	for _, h := range routeHandlers(rt) {
		if h.rewrites() {
			return true
		}
	}
	return false
}

// reachHandler is what reachability needs of a handler, loaded or raw.
type reachHandler struct {
	Handler        string              `json:"handler"`
	HandleResponse []json.RawMessage   `json:"handle_response"`
	PassThru       bool                `json:"pass_thru"`
	Routes         caddyhttp.RouteList `json:"routes"`
}

func rawHandlerName(raw json.RawMessage) string {
	var h struct {
		Handler string `json:"handler"`
	}
	_ = json.Unmarshal(raw, &h)
	return h.Handler
}

func decodeRawHandler(raw json.RawMessage) reachHandler {
	var h reachHandler
	if json.Unmarshal(raw, &h) != nil {
		return reachHandler{} // answers nothing, rewrites nothing: doubt never refuses
	}
	return h
}

func routeHandlers(rt *caddyhttp.Route) []reachHandler {
	if len(rt.Handlers) == 0 {
		hs := make([]reachHandler, len(rt.HandlersRaw))
		for i, raw := range rt.HandlersRaw {
			hs[i] = decodeRawHandler(raw)
		}
		return hs
	}
	hs := make([]reachHandler, len(rt.Handlers))
	for i, h := range rt.Handlers {
		hs[i].Handler = caddy.GetModuleName(h)
		switch h := h.(type) {
		case *reverseproxy.Handler:
			if len(h.HandleResponse) > 0 {
				hs[i].HandleResponse = []json.RawMessage{nil}
			}
		case *fileserver.FileServer:
			hs[i].PassThru = h.PassThru
		case *caddyhttp.Subroute:
			hs[i].Routes = h.Routes
		}
	}
	return hs
}

// answers reports whether h surely answers r rather than passing it on:
// a reverse_proxy (but forward_auth's, whose handle_response goes on), a
// static response (respond, redir, abort), an error, a file_server that
// does not pass through, or a subroute with one of those in a route that
// surely runs.
func (h reachHandler) answers(ctx caddy.Context, r *http.Request, rewritten bool) bool {
	switch h.Handler {
	case "static_response", "error":
		return true
	case "reverse_proxy":
		return len(h.HandleResponse) == 0
	case "file_server":
		return !h.PassThru
	case "subroute":
		groups := map[string]bool{}
		for i := range h.Routes {
			rt := &h.Routes[i]
			m := matchRoute(ctx, rt, r, rewritten)
			if m == matchNo {
				continue
			}
			sure := m == matchYes && (rt.Group == "" || !groups[rt.Group])
			if rt.Group != "" {
				groups[rt.Group] = true
			}
			if sure && routeAnswers(ctx, rt, r, rewritten) != "" {
				return true
			}
			if rt.Terminal {
				return false // the routes after it run only if it does not
			}
			rewritten = rewritten || routeRewrites(rt)
		}
	}
	return false
}

// rewrites reports whether h may change the request's path: a rewrite
// (uri, try_files, handle_path), or a subroute holding one.
func (h reachHandler) rewrites() bool {
	if h.Handler == "rewrite" {
		return true
	}
	if h.Handler == "subroute" {
		for i := range h.Routes {
			if routeRewrites(&h.Routes[i]) {
				return true
			}
		}
	}
	return false
}
