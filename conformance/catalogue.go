package conformance

import (
	"fmt"
	"sort"
	"strings"
)

// Level is how strongly the spec asks for what a check verifies.
type Level string

// Levels. A failed MUST fails the report; a failed SHOULD is reported only.
const (
	Must   Level = "MUST"
	Should Level = "SHOULD"
)

// Check describes one named check.
type Check struct {
	// ID is stable: scripts may rely on it. It is "<group>.<name>".
	ID    string `json:"id"`
	Group string `json:"group"`
	Level Level  `json:"level"`
	// Spec names the document and section the check tests.
	Spec string `json:"spec"`
	// Title says what a passing site does, in one line.
	Title string `json:"title"`
	// OptIn names the option without which the check is skipped ("" for
	// checks that always run).
	OptIn string `json:"opt_in,omitempty"`
}

// Groups, in the order the checker runs them. "integrations" selects mcp
// and openapi together.
const (
	GroupDiscovery = "discovery"
	GroupContent   = "content"
	GroupConverse  = "converse"
	GroupMCP       = "mcp"
	GroupOpenAPI   = "openapi"
	GroupHandoff   = "handoff"
	GroupHPP       = "hpp"
	GroupRateLimit = "ratelimit"
)

// Groups lists every group in run order.
var Groups = []string{GroupDiscovery, GroupContent, GroupConverse, GroupMCP, GroupOpenAPI, GroupHandoff, GroupHPP, GroupRateLimit}

// groupAliases expand to several groups in --only/--skip.
var groupAliases = map[string][]string{"integrations": {GroupMCP, GroupOpenAPI}}

const (
	specAHP     = "AHP 0.1 "
	specHandoff = "Agent Handoff 1.0-rc1 "
	specHPP     = "HPP (handshake-prompt) "
)

// Catalogue lists every check in report order.
var Catalogue = []Check{
	{ID: "discovery.manifest_status", Level: Must, Spec: specAHP + "§3.1", Title: "GET /.well-known/agent.json answers 200"},
	{ID: "discovery.manifest_content_type", Level: Must, Spec: specAHP + "§3.1", Title: "the manifest is served as application/json"},
	{ID: "discovery.manifest_schema", Level: Must, Spec: specAHP + "§3.1, §4, Appendix A", Title: "the manifest is valid against the AHP 0.1 manifest schema (with the documented extensions)"},
	{ID: "discovery.manifest_rules", Level: Must, Spec: specAHP + "§4.3, §5.1–§5.3, §9, §12", Title: "the manifest meets the spec's rules that the schema cannot express"},
	{ID: "discovery.response_types", Level: Should, Spec: specAHP + "§6.6, Appendix C.2, C.3", Title: "every response_types entry is a core registry type or an x- extension type"},
	{ID: "discovery.link_home", Level: Should, Spec: specAHP + "§3.2", Title: "the home page carries the ahp-manifest Link header"},
	{ID: "discovery.link_not_found", Level: Should, Spec: specAHP + "§3.2", Title: "a 404 carries the ahp-manifest Link header"},
	{ID: "discovery.link_head", Level: Should, Spec: specAHP + "§3.2", Title: "a HEAD request carries the ahp-manifest Link header"},
	{ID: "discovery.link_manifest", Level: Should, Spec: specAHP + "§3.2", Title: "the manifest response carries the ahp-manifest Link header"},
	{ID: "discovery.notice_present", Level: Should, Spec: specAHP + "§3.3", Title: "the home page's raw HTML holds the agent notice"},
	{ID: "discovery.notice_once", Level: Should, Spec: specAHP + "§3.3", Title: "the notice appears once"},
	{ID: "discovery.notice_in_body", Level: Should, Spec: specAHP + "§3.3", Title: "the notice is inside <body>"},
	{ID: "discovery.notice_hidden", Level: Should, Spec: specAHP + "§3.3", Title: "the notice is hidden from human readers (display:none or equivalent)"},
	{ID: "discovery.notice_text", Level: Should, Spec: specAHP + "§3.3", Title: "the notice's text points agents to /.well-known/agent.json"},
	{ID: "discovery.notice_not_found", Level: Should, Spec: specAHP + "§3.3", Title: "an HTML 404 page holds the notice"},
	{ID: "discovery.accept_negotiation", Level: Should, Spec: specAHP + "§3.4", Title: "Accept: application/agent+json is answered with a 302 to the manifest or the manifest itself"},
	{ID: "discovery.accept_q0", Level: Should, Spec: specAHP + "§3.4; RFC 9110 §12.4.2", Title: "application/agent+json;q=0 is not answered with the manifest"},
	{ID: "discovery.accept_wildcard", Level: Should, Spec: specAHP + "§3.4", Title: "Accept: */* and a browser's Accept get the page, not the manifest"},
	{ID: "discovery.vary_accept", Level: Should, Spec: specAHP + "§3.4; RFC 9110 §12.5.5", Title: "pages negotiated on Accept say so with Vary: Accept"},

	{ID: "content.declared", Level: Should, Spec: specAHP + "§5.1", Title: "the manifest declares endpoints.content, the primary content URL"},
	{ID: "content.reachable", Level: Must, Spec: specAHP + "§4.3, §5.1", Title: "endpoints.content answers 200"},
	{ID: "content.type", Level: Should, Spec: specAHP + "§5.1, Appendix B", Title: "the content document is text/plain, text/markdown or JSON"},

	{ID: "converse.unknown_capability", Level: Must, Spec: specAHP + "§10", Title: "an unknown capability gets 400 unknown_capability"},
	{ID: "converse.available_capabilities", Level: Should, Spec: specAHP + "§10", Title: "unknown_capability lists the manifest's capabilities in available_capabilities"},
	{ID: "converse.missing_field", Level: Must, Spec: specAHP + "§6.1, §10", Title: "a request without query (or capability) gets 400 missing_field"},
	{ID: "converse.body_cap", Level: Should, Spec: specAHP + "§6.5", Title: "a 9 KB body is refused with 413 (8 KB cap)"},
	{ID: "converse.too_large_body", Level: Must, Spec: specAHP + "§10", Title: "a 413 carries the spec's JSON error body (request_too_large)"},
	{ID: "converse.auth_required", Level: Must, Spec: specAHP + "§5.3, §8.2, §10", Title: "an action capability without credentials gets 401 auth_required"},
	{ID: "converse.www_authenticate", Level: Should, Spec: specAHP + "§8.2; RFC 9110 §11.6.1", Title: "a 401 names its scheme in WWW-Authenticate"},
	{ID: "converse.error_schema", Level: Must, Spec: specAHP + "§10, Appendix A", Title: "every error answer is application/json and valid against the response schema"},
	{ID: "converse.accept_agent_json", Level: Must, Spec: specAHP + "§3.4, §5.2", Title: "a POST with Accept: application/agent+json reaches the converse endpoint (no redirect)"},
	{ID: "converse.query", Level: Must, Spec: specAHP + "§5.2, §6.2, §6.3", Title: "a query to a MODE2 capability is answered, valid against the response schema"},
	{ID: "converse.signals_echo", Level: Should, Spec: specAHP + "§7", Title: "answers echo the content signals in meta.content_signals"},

	{ID: "mcp.initialize", Level: Must, Spec: specAHP + "§4.4.1, Appendix D.1, D.6", Title: "the MCP endpoint answers initialize (JSON-RPC 2.0 over HTTP POST)"},
	{ID: "mcp.tools", Level: Must, Spec: specAHP + "Appendix D.2, D.3", Title: "tools/list has one tool per MODE3 capability, each taking query and session_id"},
	{ID: "mcp.tools_mode2", Level: Should, Spec: specAHP + "Appendix D.2", Title: "MODE2 capabilities are MCP tools too"},
	{ID: "mcp.resources", Level: Must, Spec: specAHP + "§4.4.1, Appendix D.2", Title: "the MCP endpoint answers resources/list"},

	{ID: "openapi.document", Level: Must, Spec: specAHP + "§4.4.2, Appendix E.1", Title: "the OpenAPI document is valid OpenAPI 3.1"},
	{ID: "openapi.paths", Level: Must, Spec: specAHP + "§4.4.2, Appendix E.2", Title: "one POST /capabilities/{name} per MODE2/MODE3 capability"},
	{ID: "openapi.security", Level: Must, Spec: specAHP + "Appendix E.1, E.5", Title: "capabilities that need credentials carry a security scheme"},
	{ID: "openapi.async_polling", Level: Must, Spec: specAHP + "Appendix E.5", Title: "async capabilities document the polling pattern"},

	{ID: "handoff.document", Level: Must, Spec: specHandoff + "§6.1", Title: "/.well-known/agent-access is a well-formed discovery document"},
	{ID: "handoff.challenge", Level: Must, Spec: specHandoff + "§7.1, §29", Title: "the challenge endpoint issues a sha256_leading_zeros challenge"},
	{ID: "handoff.unsolved", Level: Must, Spec: specHandoff + "§11", Title: "an admission with an unsolved nonce is refused", OptIn: "--create-sandbox"},
	{ID: "handoff.unknown_challenge", Level: Must, Spec: specHandoff + "§9, §11", Title: "an admission for a challenge the site never issued is refused", OptIn: "--create-sandbox"},
	{ID: "handoff.admission", Level: Must, Spec: specHandoff + "§7.2", Title: "a solved admission creates a sandbox (201)", OptIn: "--create-sandbox"},
	{ID: "handoff.replay", Level: Must, Spec: specHandoff + "§9, §11", Title: "replaying a used admission is refused", OptIn: "--create-sandbox"},
	{ID: "handoff.uniform_errors", Level: Must, Spec: specHandoff + "§10", Title: "a replayed, an unknown and an unsolved challenge get identical answers", OptIn: "--create-sandbox"},

	{ID: "hpp.session", Level: Must, Spec: specHPP + "POST {prefix}/session", Title: "a session is created with id, token and URLs", OptIn: "--hpp"},
	{ID: "hpp.context", Level: Must, Spec: specHPP + "GET {prefix}/context/<sid>", Title: "the context is served with the token", OptIn: "--hpp"},
	{ID: "hpp.token_required", Level: Must, Spec: specHPP + "GET {prefix}/context/<sid>", Title: "the context is refused (403) without the token or with a wrong one", OptIn: "--hpp"},
	{ID: "hpp.user_field_protected", Level: Must, Spec: specHPP + "POST {prefix}/action/<sid>", Title: "the agent cannot overwrite a field the user filled", OptIn: "--hpp"},
	{ID: "hpp.unknown_session", Level: Should, Spec: specHPP + "GET {prefix}/context/<sid>", Title: "an unknown session gets 404", OptIn: "--hpp"},

	{ID: "ratelimit.declared", Level: Must, Spec: specAHP + "§11.5", Title: "a site that limits requests declares its limits in the manifest"},
	{ID: "ratelimit.active", Level: Should, Spec: specAHP + "§6.5, §13", Title: "the AHP endpoints are rate limited"},
	{ID: "ratelimit.headers", Level: Must, Spec: specAHP + "§11.1", Title: "limited responses carry all four X-RateLimit-* headers, with coherent values"},
	{ID: "ratelimit.matches_manifest", Level: Should, Spec: specAHP + "§11.5", Title: "the enforced limit is the one the manifest declares"},
	{ID: "ratelimit.exceeded", Level: Must, Spec: specAHP + "§10, §11.1", Title: "past the limit: 429 with Retry-After, X-RateLimit-* and the rate_limited body", OptIn: "--rate-limit"},
}

var catalogueByID = func() map[string]*Check {
	m := make(map[string]*Check, len(Catalogue))
	for i := range Catalogue {
		c := &Catalogue[i]
		c.Group = c.ID[:strings.IndexByte(c.ID, '.')]
		m[c.ID] = c
	}
	return m
}()

// Lookup returns the check with the given id.
func Lookup(id string) (Check, bool) {
	c, ok := catalogueByID[id]
	if !ok {
		return Check{}, false
	}
	return *c, true
}

// selection decides which checks run and are reported, from --only and
// --skip lists of groups, aliases and check ids.
type selection struct {
	only, skip map[string]bool
}

func newSelection(only, skip []string) (selection, error) {
	expand := func(names []string, flag string) (map[string]bool, error) {
		if len(names) == 0 {
			return nil, nil
		}
		out := map[string]bool{}
		for _, n := range names {
			n = strings.TrimSpace(strings.ToLower(n))
			if n == "" {
				continue
			}
			if gs, ok := groupAliases[n]; ok {
				for _, g := range gs {
					out[g] = true
				}
				continue
			}
			if isGroup(n) {
				out[n] = true
				continue
			}
			if _, ok := catalogueByID[n]; ok {
				out[n] = true
				continue
			}
			return nil, fmt.Errorf("%s: unknown group or check %q; groups: %s (and integrations); `caddy ahp check --list` lists the checks", flag, n, strings.Join(Groups, ", "))
		}
		return out, nil
	}
	var s selection
	var err error
	if s.only, err = expand(only, "--only"); err != nil {
		return s, err
	}
	if s.skip, err = expand(skip, "--skip"); err != nil {
		return s, err
	}
	return s, nil
}

func isGroup(name string) bool {
	for _, g := range Groups {
		if g == name {
			return true
		}
	}
	return false
}

// reports says whether a check's result is reported.
func (s selection) reports(id string) bool {
	group := id[:strings.IndexByte(id, '.')]
	if s.skip[id] || s.skip[group] {
		return false
	}
	return s.only == nil || s.only[id] || s.only[group]
}

// runs says whether any check of the group is reported, i.e. whether the
// group's requests are worth sending.
func (s selection) runs(group string) bool {
	for _, c := range Catalogue {
		if c.Group == group && s.reports(c.ID) {
			return true
		}
	}
	return false
}

// runsAny is runs over several groups.
func (s selection) runsAny(groups ...string) bool {
	for _, g := range groups {
		if s.runs(g) {
			return true
		}
	}
	return false
}

// sortResults orders results as the catalogue does; results of one check
// (one per capability, say) keep their order.
func sortResults(rs []Result) {
	index := make(map[string]int, len(Catalogue))
	for i, c := range Catalogue {
		index[c.ID] = i
	}
	sort.SliceStable(rs, func(i, j int) bool { return index[rs[i].ID] < index[rs[j].ID] })
}
