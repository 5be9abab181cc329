// Package standin serves stand-in sites for the conformance checker's
// tests: a complete AHP site in plain net/http (discovery, notice, converse
// gateway with rate limits, MCP, OpenAPI, Agent Handoff, Handshake Prompt)
// that passes every check, and named Breaks, each of which breaks one rule
// the way real sites (and the AHP reference implementation) do.
//
// It is test code: small, in memory, one client at a time.
package standin

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/handoff"
)

// Break names one way to break the site.
type Break string

// The breaks. Each comment says what the site then does wrong.
const (
	NoLink            Break = "no-link"              // no Link header on any answer
	NoLinkOn404       Break = "no-link-404"          // no Link header on 404s
	NoLinkOnHead      Break = "no-link-head"         // no Link header on HEAD answers
	ManifestMissing   Break = "manifest-missing"     // 404 at /.well-known/agent.json
	ManifestType      Break = "manifest-type"        // the manifest as text/plain
	ManifestSchema    Break = "manifest-schema"      // a field the schema does not allow
	ManifestRules     Break = "manifest-rules"       // a MODE3 capability without output_schema
	NoNotice          Break = "no-notice"            // pages without the notice
	NoticeVisible     Break = "notice-visible"       // the notice without display:none
	NoticeTwice       Break = "notice-twice"         // the notice twice in a page
	NoticeOutsideBody Break = "notice-outside-body"  // the notice after </html>
	NoNegotiation     Break = "no-negotiation"       // Accept: application/agent+json ignored
	NegotiateWildcard Break = "negotiate-wildcard"   // */* answered with the manifest
	NegotiateQ0       Break = "negotiate-q0"         // ;q=0 answered with the manifest
	NoVary            Break = "no-vary"              // negotiated pages without Vary: Accept
	RedirectPOST      Break = "redirect-post"        // POSTs with Accept: application/agent+json redirected (the reference implementation's bug)
	HTML413           Break = "html-413"             // 413 as an HTML page (the reference implementation's)
	NoBodyCap         Break = "no-body-cap"          // bodies of any size read
	NoAuth            Break = "no-auth"              // action capabilities run without credentials
	NoWWWAuthenticate Break = "no-www-authenticate"  // 401 without WWW-Authenticate
	UnknownCapCode    Break = "unknown-cap-code"     // unknown capability answered 400 invalid_request
	NoAvailableCaps   Break = "no-available-caps"    // unknown_capability without available_capabilities
	MissingFieldCode  Break = "missing-field-code"   // a missing query answered 400 invalid_request
	BadAnswer         Break = "bad-answer"           // the concierge's answer fails the response schema
	NoSignals         Break = "no-signals"           // answers without meta.content_signals
	NoRateHeaders     Break = "no-rate-headers"      // no X-RateLimit-* headers
	RateResetDelta    Break = "rate-reset-delta"     // X-RateLimit-Reset as seconds until the reset
	RateNoWindow429   Break = "rate-no-window-429"   // the 429 without X-RateLimit-Window (the reference implementation's)
	NoRetryAfter      Break = "no-retry-after"       // the 429 without Retry-After
	NoRateLimit       Break = "no-rate-limit"        // headers but never a 429
	UndeclaredLimits  Break = "undeclared-limits"    // limits enforced, none in the manifest
	WrongDeclared     Break = "wrong-declared"       // the manifest declares 60/minute, 30 are enforced
	MCPMissingTool    Break = "mcp-missing-tool"     // no tool for a MODE3 capability
	MCPToolSchema     Break = "mcp-tool-schema"      // query not required in a tool's inputSchema
	MCPNoMode2        Break = "mcp-no-mode2"         // MODE2 capabilities are not tools
	MCPSSE            Break = "mcp-sse"              // answers as text/event-stream (valid: not a break of any rule)
	OpenAPI30         Break = "openapi-30"           // an OpenAPI 3.0 document
	OpenAPIMissing    Break = "openapi-missing-path" // no path for a capability
	OpenAPINoSecurity Break = "openapi-no-security"  // no security on an action capability
	OpenAPINoPolling  Break = "openapi-no-polling"   // an async capability's operation says nothing of polling
	HandoffDocument   Break = "handoff-document"     // the discovery document lacks create_endpoint
	HandoffChallenge  Break = "handoff-challenge"    // challenges without algorithm
	HandoffUnsolved   Break = "handoff-unsolved"     // any nonce admitted
	HandoffReplay     Break = "handoff-replay"       // a used challenge admits again
	HandoffUnknown    Break = "handoff-unknown"      // a challenge the site never issued admits, whatever the nonce
	HandoffOracle     Break = "handoff-oracle"       // "already used" told apart from "unknown"
	NoHandoff         Break = "no-handoff"           // no /.well-known/agent-access
	HPPNoToken        Break = "hpp-no-token"         // the context served without the token
	HPPOverwrite      Break = "hpp-overwrite"        // the agent overwrites the user's field
	HPPUnknown200     Break = "hpp-unknown-200"      // unknown sessions answered 200
	ContentMissing    Break = "content-missing"      // endpoints.content answers 404
	ContentHTML       Break = "content-html"         // the content document as text/html
	MCPInitNoTools    Break = "mcp-init-no-tools"    // initialize without capabilities.tools
	MCPNoResources    Break = "mcp-no-resources"     // resources/list not implemented
	HandoffAdmitShape Break = "handoff-admit-shape"  // the created sandbox without public_handle
	HPPSessionShape   Break = "hpp-session-shape"    // the session answer without expiresIn
	HPPContextBy      Break = "hpp-context-by"       // the context shows the user's field as the agent's
	Always429         Break = "always-429"           // every request answered 429 rate_limited (the manifest too)
	NoticeEmpty       Break = "notice-empty"         // the notice without text
	NoContent         Break = "no-content"           // the manifest declares no endpoints.content
	ResponseTypeOdd   Break = "response-type-odd"    // a response type neither in the registry nor x- (application/pdf)
)

// Limit is the converse endpoint's rate limit per minute.
const Limit = 30

// Difficulty of the stand-in's proof of work (small: tests solve it).
const Difficulty = 8

// Site is a running stand-in site.
type Site struct {
	*httptest.Server
	breaks map[Break]bool

	mu         sync.Mutex
	used       int       // converse requests in the current window
	windowEnd  time.Time // end of the current fixed window
	challenges map[string]bool
	spent      map[string]bool
	sessions   map[string]*hppSession
	// Requests counts every request the site received, by method and path.
	requests map[string]int
}

// New starts a stand-in site with the given breaks; it stops when the test
// ends.
func New(t testing.TB, breaks ...Break) *Site {
	s := &Site{breaks: map[Break]bool{}, challenges: map[string]bool{}, spent: map[string]bool{}, sessions: map[string]*hppSession{}, requests: map[string]int{}}
	for _, b := range breaks {
		s.breaks[b] = true
	}
	s.Server = httptest.NewServer(s)
	t.Cleanup(s.Close)
	return s
}

// Requests reports how many requests for "METHOD /path" the site received;
// "DELETE /v1/sandboxes/{id}" counts the deletions of every sandbox.
func (s *Site) Requests(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[key]
}

// Issued reports whether the site issued the challenge.
func (s *Site) Issued(challenge string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.challenges[challenge]
}

func (s *Site) broken(b Break) bool { return s.breaks[b] }

const linkValue = `</.well-known/agent.json>; rel="ahp-manifest"; type="application/agent+json"`

func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests[r.Method+" "+r.URL.Path]++
	s.mu.Unlock()
	if !s.broken(NoLink) && !(s.broken(NoLinkOnHead) && r.Method == http.MethodHead) {
		w.Header().Set("Link", linkValue)
	}
	if s.broken(Always429) {
		w.Header().Set("Retry-After", "60")
		ahpError(w, http.StatusTooManyRequests, "rate_limited", "Rate limit exceeded.", "scope", "ip", "retry_after", 60)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/.well-known/agent.json":
		s.serveManifest(w, r)
	case p == "/llms.txt" && s.broken(ContentMissing):
		s.page(w, r, http.StatusNotFound, "Not found")
	case p == "/llms.txt":
		ct := "text/markdown; charset=utf-8"
		if s.broken(ContentHTML) {
			ct = "text/html; charset=utf-8"
		}
		w.Header().Set("Content-Type", ct)
		io.WriteString(w, "# Stand-in Site\n\n> A site for the conformance checker's tests.\n")
	case p == "/agent/converse":
		if r.Method == http.MethodPost && !s.limit(w) {
			return
		}
		if s.negotiate(w, r) {
			return
		}
		s.serveConverse(w, r)
	case p == "/mcp":
		s.serveMCP(w, r)
	case p == "/openapi.json":
		s.serveOpenAPI(w, r)
	case p == "/.well-known/agent-access" && !s.broken(NoHandoff):
		s.serveAgentAccess(w, r)
	case p == "/v1/sandboxes/challenge":
		s.serveChallenge(w, r)
	case p == "/v1/sandboxes" && r.Method == http.MethodPost:
		s.serveCreate(w, r)
	case strings.HasPrefix(p, "/v1/sandboxes/") && r.Method == http.MethodDelete:
		s.mu.Lock()
		s.requests["DELETE /v1/sandboxes/{id}"]++
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(p, "/handshake/"):
		s.serveHPP(w, r)
	case p == "/":
		if s.negotiate(w, r) {
			return
		}
		s.page(w, r, http.StatusOK, "Welcome")
	default:
		if s.negotiate(w, r) {
			return
		}
		if s.broken(NoLinkOn404) {
			w.Header().Del("Link")
		}
		s.page(w, r, http.StatusNotFound, "Not found")
	}
}

const notice = `<section class="ahp-notice" aria-label="AI Agent Notice" style="display:none" hidden=""><p>If you are an AI agent: this site supports AHP. <code>GET /.well-known/agent.json</code></p></section>`

func (s *Site) page(w http.ResponseWriter, r *http.Request, status int, title string) {
	n := notice
	switch {
	case s.broken(NoNotice):
		n = ""
	case s.broken(NoticeVisible):
		n = strings.Replace(strings.Replace(notice, ` style="display:none"`, "", 1), ` hidden=""`, "", 1)
	case s.broken(NoticeTwice):
		n = notice + notice
	case s.broken(NoticeEmpty):
		n = `<section class="ahp-notice" aria-label="AI Agent Notice" style="display:none" hidden=""></section>`
	}
	body := "<!doctype html><html><head><title>" + title + "</title></head><body><h1>" + title + "</h1>" + n + "</body></html>"
	if s.broken(NoticeOutsideBody) {
		body = "<!doctype html><html><head><title>" + title + "</title></head><body><h1>" + title + "</h1></body></html>" + notice
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		io.WriteString(w, body)
	}
}

// negotiate answers Accept: application/agent+json with a 302 to the
// manifest; it reports whether it answered.
func (s *Site) negotiate(w http.ResponseWriter, r *http.Request) bool {
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	if get && !s.broken(NoVary) {
		w.Header().Add("Vary", "Accept")
	}
	if s.broken(NoNegotiation) {
		return false
	}
	if !get && !(s.broken(RedirectPOST) && r.Method == http.MethodPost) {
		return false
	}
	if !wantsManifest(r.Header.Get("Accept"), s.broken(NegotiateWildcard), s.broken(NegotiateQ0)) {
		return false
	}
	w.Header().Set("Location", "/.well-known/agent.json")
	w.WriteHeader(http.StatusFound)
	return true
}

// wantsManifest: application/agent+json with q > 0 (or, broken, */* or
// any q).
func wantsManifest(accept string, wildcard, ignoreQ bool) bool {
	for _, part := range strings.Split(accept, ",") {
		fields := strings.Split(part, ";")
		mt := strings.ToLower(strings.TrimSpace(fields[0]))
		q := 1.0
		for _, f := range fields[1:] {
			if k, v, ok := strings.Cut(strings.TrimSpace(f), "="); ok && strings.EqualFold(k, "q") {
				q, _ = strconv.ParseFloat(v, 64)
			}
		}
		if mt == "application/agent+json" && (q > 0 || ignoreQ) {
			return true
		}
		if mt == "*/*" && wildcard {
			return true
		}
	}
	return false
}

// Manifest is the stand-in's manifest, before breaks.
func (s *Site) Manifest() map[string]any {
	caps := []any{
		map[string]any{"name": "site_info", "description": "About the site", "mode": "MODE2", "response_types": []any{"text/answer"}},
		map[string]any{"name": "book_demo", "description": "Book a demo", "mode": "MODE3", "action_type": "action", "auth_required": true,
			"input_schema":  map[string]any{"type": "object", "properties": map[string]any{"email": map[string]any{"type": "string"}}},
			"output_schema": map[string]any{"type": "object"}},
		map[string]any{"name": "research", "description": "Deep research, answered later", "mode": "MODE3", "action_type": "async", "auth_required": true,
			"input_schema": map[string]any{"type": "object"}, "output_schema": map[string]any{"type": "object"}},
	}
	m := map[string]any{
		"ahp": "0.1", "name": "Stand-in Site", "description": "A site for the conformance checker's tests.",
		"modes":           []any{"MODE1", "MODE2", "MODE3"},
		"endpoints":       map[string]any{"converse": "/agent/converse", "content": "/llms.txt"},
		"capabilities":    caps,
		"authentication":  "bearer",
		"rate_limits":     map[string]any{"unauthenticated": map[string]any{"requests": fmt.Sprintf("%d/minute", Limit)}},
		"content_signals": map[string]any{"ai_train": false, "ai_input": true, "search": true},
		"async":           map[string]any{"supported": true},
		"integrations": map[string]any{
			"mcp":     map[string]any{"url": "/mcp", "version": "2024-11-05"},
			"openapi": map[string]any{"url": "/openapi.json", "version": "3.1.0"},
		},
	}
	if s.broken(ManifestSchema) {
		m["x_extra"] = true
	}
	if s.broken(ManifestRules) {
		delete(caps[1].(map[string]any), "output_schema")
	}
	if s.broken(ResponseTypeOdd) {
		caps[0].(map[string]any)["response_types"] = []any{"text/answer", "application/pdf"}
	}
	if s.broken(NoContent) {
		delete(m["endpoints"].(map[string]any), "content")
	}
	if s.broken(UndeclaredLimits) {
		delete(m, "rate_limits")
	}
	if s.broken(WrongDeclared) {
		m["rate_limits"] = map[string]any{"unauthenticated": map[string]any{"requests": "60/minute"}}
	}
	return m
}

func (s *Site) serveManifest(w http.ResponseWriter, r *http.Request) {
	if s.broken(ManifestMissing) {
		s.page(w, r, http.StatusNotFound, "Not found")
		return
	}
	ct := "application/json"
	if s.broken(ManifestType) {
		ct = "text/plain; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	json.NewEncoder(w).Encode(s.Manifest())
}

// writeJSON writes v with status as application/json.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func ahpError(w http.ResponseWriter, status int, code, msg string, extra ...any) {
	body := map[string]any{"status": "error", "code": code, "message": msg}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	writeJSON(w, status, body)
}

// limit counts a converse request in a fixed one-minute window and sets
// the rate limit headers; it reports whether the request is within it.
func (s *Site) limit(w http.ResponseWriter) bool {
	s.mu.Lock()
	now := time.Now()
	if now.After(s.windowEnd) {
		s.windowEnd, s.used = now.Add(time.Minute), 0
	}
	s.used++
	over := s.used > Limit && !s.broken(NoRateLimit)
	remaining := max(Limit-s.used, 0)
	reset := s.windowEnd.Unix()
	s.mu.Unlock()
	if s.broken(NoRateHeaders) {
		return !over
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(Limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	if s.broken(RateResetDelta) {
		h.Set("X-RateLimit-Reset", strconv.FormatInt(reset-now.Unix(), 10))
	} else {
		h.Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
	}
	if !(over && s.broken(RateNoWindow429)) {
		h.Set("X-RateLimit-Window", "60")
	}
	if over {
		retry := reset - now.Unix() + 1
		if !s.broken(NoRetryAfter) {
			h.Set("Retry-After", strconv.FormatInt(retry, 10))
		}
		ahpError(w, http.StatusTooManyRequests, "rate_limited", "Rate limit exceeded.", "scope", "ip", "retry_after", retry)
	}
	return !over
}

func (s *Site) serveConverse(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		ahpError(w, http.StatusMethodNotAllowed, "invalid_request", "POST only")
		return
	}
	limit := int64(8 << 10)
	if s.broken(NoBodyCap) {
		limit = 1 << 20
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil || int64(len(body)) > limit {
		if s.broken(HTML413) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			io.WriteString(w, "<!DOCTYPE html><html><body><pre>PayloadTooLargeError: request entity too large</pre></body></html>")
			return
		}
		ahpError(w, http.StatusRequestEntityTooLarge, "request_too_large", "The request body exceeds 8 KB.")
		return
	}
	var req struct {
		Capability *string `json:"capability"`
		Query      *string `json:"query"`
	}
	if json.Unmarshal(body, &req) != nil {
		ahpError(w, http.StatusBadRequest, "invalid_request", "The body is not a JSON object.")
		return
	}
	caps := map[string]string{"site_info": "", "book_demo": "action", "research": "async"}
	if req.Capability != nil {
		if _, ok := caps[*req.Capability]; !ok {
			code := "unknown_capability"
			if s.broken(UnknownCapCode) {
				code = "invalid_request"
			}
			extra := []any{"available_capabilities", []any{"site_info", "book_demo", "research"}}
			if s.broken(NoAvailableCaps) {
				extra = nil
			}
			ahpError(w, http.StatusBadRequest, code, "The capability '"+*req.Capability+"' is not supported.", extra...)
			return
		}
	}
	if req.Capability == nil || req.Query == nil {
		code := "missing_field"
		if s.broken(MissingFieldCode) {
			code = "invalid_request"
		}
		ahpError(w, http.StatusBadRequest, code, "capability and query are required")
		return
	}
	if caps[*req.Capability] != "" && !s.broken(NoAuth) && !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		if !s.broken(NoWWWAuthenticate) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ahp"`)
		}
		ahpError(w, http.StatusUnauthorized, "auth_required", "This capability requires a bearer token.")
		return
	}
	answer := map[string]any{
		"status": "success", "session_id": nil,
		"response": map[string]any{"content_type": "text/answer", "answer": "A stand-in site for tests."},
		"meta":     map[string]any{"tokens_used": 12, "mode": "MODE2", "content_signals": map[string]any{"ai_train": false, "ai_input": true}},
	}
	if s.broken(NoSignals) {
		delete(answer["meta"].(map[string]any), "content_signals")
	}
	if s.broken(BadAnswer) {
		answer["response"] = "A stand-in site for tests."
	}
	writeJSON(w, http.StatusOK, answer)
}

func (s *Site) serveMCP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	var msg struct {
		ID     any    `json:"id"`
		Method string `json:"method"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": -32700, "message": "parse error"}})
		return
	}
	if msg.ID == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	tool := func(name, desc string) map[string]any {
		req := []any{"query"}
		if s.broken(MCPToolSchema) {
			req = []any{}
		}
		return map[string]any{"name": name, "description": desc, "inputSchema": map[string]any{"type": "object",
			"properties": map[string]any{"query": map[string]any{"type": "string"}, "session_id": map[string]any{"type": "string"}}, "required": req}}
	}
	var result any
	switch msg.Method {
	case "initialize":
		w.Header().Set("Mcp-Session-Id", "standin-session")
		caps := map[string]any{"tools": map[string]any{}, "resources": map[string]any{}}
		if s.broken(MCPInitNoTools) {
			delete(caps, "tools")
		}
		result = map[string]any{"protocolVersion": "2024-11-05", "capabilities": caps,
			"serverInfo": map[string]any{"name": "Stand-in Site", "version": "0.1", "ahp": "0.1", "manifest": "/.well-known/agent.json"}}
	case "tools/list":
		tools := []any{}
		if !s.broken(MCPNoMode2) {
			tools = append(tools, tool("site_info", "About the site"))
		}
		if !s.broken(MCPMissingTool) {
			tools = append(tools, tool("book_demo", "Book a demo"))
		}
		tools = append(tools, tool("research", "Deep research"))
		result = map[string]any{"tools": tools}
	case "resources/list":
		if s.broken(MCPNoResources) {
			writeJSON(w, http.StatusOK, map[string]any{"jsonrpc": "2.0", "id": msg.ID, "error": map[string]any{"code": -32601, "message": "method not found"}})
			return
		}
		result = map[string]any{"resources": []any{map[string]any{"uri": "http://" + r.Host + "/llms.txt", "name": "llms.txt", "mimeType": "text/markdown"}}}
	default:
		writeJSON(w, http.StatusOK, map[string]any{"jsonrpc": "2.0", "id": msg.ID, "error": map[string]any{"code": -32601, "message": "method not found"}})
		return
	}
	resp := map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": result}
	if s.broken(MCPSSE) {
		b, _ := json.Marshal(resp)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: message\ndata: %s\n\n", b)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Site) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	op := func(name, summary string, secure bool, desc string) map[string]any {
		o := map[string]any{
			"operationId": name, "summary": summary, "description": desc,
			"requestBody": map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{
				"type": "object", "required": []any{"query"},
				"properties": map[string]any{"query": map[string]any{"type": "string"}, "session_id": map[string]any{"type": "string"}}}}}},
			"responses": map[string]any{"200": map[string]any{"description": "Successful response",
				"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/AHPResponse"}}}}},
		}
		if secure {
			o["security"] = []any{map[string]any{"bearerAuth": []any{}}}
		}
		return map[string]any{"post": o}
	}
	paths := map[string]any{
		"/capabilities/site_info": op("site_info", "About the site", false, "Ask about the site."),
		"/capabilities/book_demo": op("book_demo", "Book a demo", !s.broken(OpenAPINoSecurity), "Book a demo."),
		"/capabilities/research":  op("research", "Deep research", true, "Answers status accepted; poll the returned poll URL until the status is success."),
	}
	if s.broken(OpenAPINoPolling) {
		paths["/capabilities/research"] = op("research", "Deep research", true, "Deep research.")
	}
	if s.broken(OpenAPIMissing) {
		delete(paths, "/capabilities/book_demo")
	}
	version := "3.1.0"
	if s.broken(OpenAPI30) {
		version = "3.0.3"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"openapi": version,
		"info":    map[string]any{"title": "Stand-in Site", "description": "A site for the conformance checker's tests.", "version": "0.1"},
		"servers": []any{map[string]any{"url": "http://" + r.Host}},
		"paths":   paths,
		"components": map[string]any{
			"schemas":         map[string]any{"AHPResponse": map[string]any{"type": "object", "properties": map[string]any{"status": map[string]any{"type": "string"}}}},
			"securitySchemes": map[string]any{"bearerAuth": map[string]any{"type": "http", "scheme": "bearer"}},
		},
	})
}

func (s *Site) serveAgentAccess(w http.ResponseWriter, _ *http.Request) {
	sandbox := map[string]any{"enabled": true, "admission": []any{"proof_of_work"}, "challenge_endpoint": "/v1/sandboxes/challenge", "create_endpoint": "/v1/sandboxes", "ttl_hours": 48}
	if s.broken(HandoffDocument) {
		delete(sandbox, "create_endpoint")
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"ahp_version": "1.0", "provider": map[string]any{"name": "Stand-in", "docs": "https://example.com/docs"},
		"sandbox":  sandbox,
		"security": map[string]any{"handle_rotation_on_claim": true, "handle_rotation_on_publish": true, "adaptive_pow": true},
		"claim":    map[string]any{"method": "code_plus_pow"},
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Site) serveChallenge(w http.ResponseWriter, _ *http.Request) {
	ch := randomHex(32)
	s.mu.Lock()
	s.challenges[ch] = true
	s.mu.Unlock()
	body := map[string]any{"challenge": ch, "difficulty": Difficulty, "algorithm": "sha256_leading_zeros",
		"expires_at": time.Now().Add(5 * time.Minute).UTC().Format(time.RFC3339), "input": "challenge+nonce", "nonce_format": "decimal"}
	if s.broken(HandoffChallenge) {
		delete(body, "algorithm")
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Site) serveCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Admission struct{ Type, Challenge, Nonce string } `json:"admission"`
	}
	_ = json.NewDecoder(io.LimitReader(r.Body, 8<<10)).Decode(&req)
	ch, nonce := req.Admission.Challenge, req.Admission.Nonce
	s.mu.Lock()
	issued, spent := s.challenges[ch], s.spent[ch]
	solved := handoff.Verify(ch, nonce, Difficulty) || s.broken(HandoffUnsolved)
	ok := issued && solved && (!spent || s.broken(HandoffReplay)) || !issued && s.broken(HandoffUnknown)
	if issued && solved {
		s.spent[ch] = true
	}
	s.mu.Unlock()
	if !ok {
		msg := "admission refused"
		if s.broken(HandoffOracle) && spent {
			msg = "challenge already used"
		}
		writeJSON(w, http.StatusForbidden, map[string]any{"error": "admission_refused", "message": msg})
		return
	}
	id := randomHex(16)
	created := map[string]any{
		"id": "sbx_" + id, "public_handle": randomHex(16), "status": "active", "expires_at": time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339),
		"agent_token": map[string]any{"token": "tok_" + randomHex(32), "expires_at": time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339), "scopes": []any{"sandbox:manage"}},
		"endpoints":   map[string]any{"delete": "/v1/sandboxes/sbx_" + id},
	}
	if s.broken(HandoffAdmitShape) {
		delete(created, "public_handle")
	}
	writeJSON(w, http.StatusCreated, created)
}

type hppSession struct {
	token   string
	context map[string]map[string]any
}

func (s *Site) serveHPP(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/handshake/")
	kind, sid, _ := strings.Cut(rest, "/")
	hppErr := func(status int, msg string) { writeJSON(w, status, map[string]any{"error": msg}) }
	if kind == "session" && sid == "" && r.Method == http.MethodPost {
		var req struct {
			Context map[string]any `json:"context"`
			Schema  []struct {
				Key string `json:"key"`
			} `json:"schema"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			hppErr(http.StatusBadRequest, "invalid JSON")
			return
		}
		sess := &hppSession{token: randomHex(16), context: map[string]map[string]any{}}
		for _, f := range req.Schema {
			v, by := req.Context[f.Key], "user"
			if v == nil || v == "" {
				by = "empty"
			}
			sess.context[f.Key] = map[string]any{"value": v, "by": by, "at": time.Now().UTC().Format(time.RFC3339)}
		}
		id := randomHex(16)
		s.mu.Lock()
		s.sessions[id] = sess
		s.mu.Unlock()
		created := map[string]any{"sessionId": id, "token": sess.token, "wsUrl": "/ws/handshake/" + id,
			"contextUrl": "/handshake/context/" + id, "actionUrl": "/handshake/action/" + id, "diffUrl": "/handshake/diff/" + id,
			"notifyUrl": "/handshake/notify/" + id, "expiresIn": 1800}
		if s.broken(HPPSessionShape) {
			delete(created, "expiresIn")
		}
		writeJSON(w, http.StatusOK, created)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[sid]
	if sess == nil {
		if s.broken(HPPUnknown200) {
			writeJSON(w, http.StatusOK, map[string]any{})
			return
		}
		hppErr(http.StatusNotFound, "session not found or expired")
		return
	}
	if r.Header.Get("X-Handshake-Token") != sess.token && !s.broken(HPPNoToken) {
		hppErr(http.StatusForbidden, "invalid token")
		return
	}
	switch {
	case kind == "context" && r.Method == http.MethodGet:
		shown := sess.context
		if s.broken(HPPContextBy) {
			shown = map[string]map[string]any{}
			for k, f := range sess.context {
				shown[k] = map[string]any{"value": f["value"], "by": "ai", "at": f["at"]}
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"sessionId": sid, "mode": "form-fill", "schema": []any{}, "context": shown, "missing": []any{}, "meta": map[string]any{}, "expiresIn": 1800})
	case kind == "action" && r.Method == http.MethodPost:
		var req struct {
			Actions []struct {
				Type, Key string
				Value     any
			} `json:"actions"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		applied, rejected := []any{}, []any{}
		for _, a := range req.Actions {
			f := sess.context[a.Key]
			if f != nil && (f["by"] == "user" || f["by"] == "user_edit") && !s.broken(HPPOverwrite) {
				rejected = append(rejected, a.Key)
				continue
			}
			sess.context[a.Key] = map[string]any{"value": a.Value, "by": "ai", "at": time.Now().UTC().Format(time.RFC3339)}
			applied = append(applied, a.Key)
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "applied": applied, "rejected": rejected, "errors": []any{}, "missing": []any{}, "context": sess.context})
	default:
		hppErr(http.StatusNotFound, "not found")
	}
}
