package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-ahp/caddy-ahp/webbotauth"
)

// skipProofOfWork builds handoff.Config.ProofExempt from
// `skip_proof_of_work <agent...>`: a creation may skip the proof of work
// when the request proved (Web Bot Auth, verified by the site's `ahp {
// verified_agents }`, which runs first in the default order) to come from
// a listed agent. The identity is read from ahp's placeholders, which no
// client can set; the X-Ahp-Verified-Agent header is never consulted.
func (a *AgentHandoff) skipProofOfWork(ctx caddy.Context) (func(*http.Request) string, error) {
	set := make(map[string]struct{}, len(a.SkipProofOfWork))
	for _, raw := range a.SkipProofOfWork {
		id, err := webbotauth.NormalizeAgent(raw, true)
		if err != nil {
			return nil, fmt.Errorf("%s skip_proof_of_work %q: %v; name agents by the origin they sign with, e.g. https://chatgpt.com", handoffDirective, raw, err)
		}
		set[id] = struct{}{}
	}
	if !siteVerifiesAgents(ctx) {
		return nil, fmt.Errorf("%s skip_proof_of_work: nothing in this site verifies agents, so no agent could skip the proof of work; "+
			"add verified_agents to the site's ahp block (ahp { verified_agents }), or remove skip_proof_of_work", handoffDirective)
	}
	var warned atomic.Bool
	return func(r *http.Request) string {
		id := verifiedAgentOf(r)
		if _, ok := set[id]; ok {
			return id
		}
		// The configuration check above cannot see matchers or a changed
		// order; a creation that no verification ran for says so once.
		if id == "" && !warned.Load() && !agentVerificationRan(r) && warned.CompareAndSwap(false, true) {
			a.logger.Warn("agent_handoff skip_proof_of_work: a creation reached agent_handoff without passing ahp's verified_agents, so no agent can skip the proof of work on it; " +
				"make ahp { verified_agents } handle this site's creation path ahead of agent_handoff (the default directive order)")
		}
		return ""
	}, nil
}

// agentVerificationRan reports whether ahp's verification step ran for r:
// it sets {ahp.agent.verified} on every request it sees.
func agentVerificationRan(r *http.Request) bool {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		return false
	}
	_, ok := repl.Get(placeholderVerified)
	return ok
}

// siteVerifiesAgents reports whether an ahp handler with verified_agents
// can run on this handler's site: in the routes of any subroute enclosing
// it (the site's, a handle block's), or among its server's routes outside
// other sites (a Caddyfile puts each site in a subroute behind its host
// matcher; a single site without a host is inlined). Routes provisioned
// already are inspected as modules, the rest as their JSON. The check
// errs towards yes: ahp with a matcher, in a sibling block or ordered
// after agent_handoff passes it, and is caught at run time. Outside a
// server being provisioned (unit tests) it answers yes.
func siteVerifiesAgents(ctx caddy.Context) bool {
	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil {
		return true
	}
	for _, m := range ctx.Modules() {
		if sr, ok := m.(*caddyhttp.Subroute); ok && routesVerify(sr.Routes, false) {
			return true
		}
	}
	if routesVerify(srv.Routes, true) {
		return true
	}
	for _, rt := range srv.NamedRoutes {
		if rt != nil && routesVerify(caddyhttp.RouteList{*rt}, false) {
			return true
		}
	}
	return false
}

// routesVerify looks for a verifying ahp in routes, descending into
// subroutes; at a server's top level, not into those of routes with a
// host matcher (other sites).
func routesVerify(routes caddyhttp.RouteList, top bool) bool {
	for i := range routes {
		rt := &routes[i]
		descend := !top || !hasHostMatcher(rt)
		for _, h := range rt.Handlers {
			switch h := h.(type) {
			case *Handler:
				if h.VerifiedAgents != nil {
					return true
				}
			case *caddyhttp.Subroute:
				if descend && routesVerify(h.Routes, false) {
					return true
				}
			}
		}
		for _, raw := range rt.HandlersRaw {
			if rawHandlerVerifies(raw, descend) {
				return true
			}
		}
	}
	return false
}

// rawRoute is a route's JSON, as much as the check needs.
type rawRoute struct {
	Match  []map[string]json.RawMessage `json:"match"`
	Handle []json.RawMessage            `json:"handle"`
}

func rawHandlerVerifies(raw json.RawMessage, descend bool) bool {
	var h struct {
		Handler        string          `json:"handler"`
		VerifiedAgents json.RawMessage `json:"verified_agents"`
		Routes         []rawRoute      `json:"routes"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return false
	}
	switch h.Handler {
	case "ahp":
		return len(h.VerifiedAgents) > 0 && string(h.VerifiedAgents) != "null"
	case "subroute":
		if !descend {
			return false
		}
		for _, rt := range h.Routes {
			for _, hr := range rt.Handle {
				if rawHandlerVerifies(hr, true) {
					return true
				}
			}
		}
	}
	return false
}

func hasHostMatcher(rt *caddyhttp.Route) bool {
	for _, set := range rt.MatcherSetsRaw {
		if _, ok := set["host"]; ok {
			return true
		}
	}
	for _, set := range rt.MatcherSets {
		for _, m := range set {
			switch m.(type) {
			case *caddyhttp.MatchHost, caddyhttp.MatchHost:
				return true
			}
		}
	}
	return false
}
