package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// integrationURL resolves a declared integration, or skips its group.
func (r *runner) integrationURL(group, key string) (*url.URL, integration, bool) {
	m := r.manifest
	if m == nil {
		r.skipAllNoManifest(group)
		return nil, integration{}, false
	}
	in, ok := m.Integrations[key]
	if !ok || in.URL == "" {
		r.skipAll(group, "the manifest declares no integrations."+key)
		return nil, in, false
	}
	u, err := r.c.resolve(r.manifestURL, in.URL)
	if err != nil {
		if errors.Is(err, errOffSite) {
			r.skipAll(group, err.Error()+"; the checker sends requests only to the site it checks")
		} else {
			r.skipAll(group, "integrations."+key+".url "+err.Error())
		}
		return nil, in, false
	}
	return u, in, true
}

// mcpSession is the transport state of one MCP conversation.
type mcpSession struct {
	url       *url.URL
	sessionID string // Mcp-Session-Id, when the server issues one
	version   string // the negotiated protocol version
}

// mcpCall sends one JSON-RPC request (Streamable HTTP: POST, JSON or SSE
// answer) and returns the response message with the given id.
func (r *runner) mcpCall(ctx context.Context, s *mcpSession, id int, method string, params any) (*exchange, map[string]any, error) {
	msg := map[string]any{"jsonrpc": "2.0", "method": method}
	if params != nil {
		msg["params"] = params
	}
	if id != 0 {
		msg["id"] = id
	}
	h := []string{"Content-Type", "application/json", "Accept", "application/json, text/event-stream"}
	if s.sessionID != "" {
		h = append(h, "Mcp-Session-Id", s.sessionID)
	}
	if s.version >= "2025-06-18" {
		h = append(h, "MCP-Protocol-Version", s.version)
	}
	ex := r.c.do(ctx, request{Method: http.MethodPost, URL: s.url, Body: mustJSON(msg), Header: headerOf(h...), RPCID: id})
	if ex.Err != nil {
		return ex, nil, errors.New(ex.failed())
	}
	r.keepAnswer("mcp", ex)
	if id == 0 {
		return ex, nil, nil
	}
	if ex.Status != http.StatusOK {
		return ex, nil, fmt.Errorf("%s: %s", method, describeAnswer(ex, ""))
	}
	resp, err := findRPCResponse(ex.contentType(), ex.Body, id)
	if err != nil {
		return ex, nil, fmt.Errorf("%s: %v", method, err)
	}
	if e, ok := resp["error"].(map[string]any); ok {
		return ex, resp, fmt.Errorf("%s: JSON-RPC error %v: %s", method, e["code"], clip(str(e["message"]), 120))
	}
	if _, ok := resp["result"].(map[string]any); !ok {
		return ex, resp, fmt.Errorf("%s: the response has no result object", method)
	}
	return ex, resp, nil
}

// findRPCResponse reads the JSON-RPC response with the id from a JSON body
// or an SSE stream (one event per message; "data:" lines joined by \n).
func findRPCResponse(mediaType string, body []byte, id int) (map[string]any, error) {
	var candidates [][]byte
	switch mediaType {
	case "text/event-stream":
		var data []string
		flush := func() {
			if len(data) > 0 {
				candidates = append(candidates, []byte(strings.Join(data, "\n")))
				data = nil
			}
		}
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 0, 64*1024), maxBody)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				flush()
			case strings.HasPrefix(line, "data:"):
				data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
			}
		}
		flush()
	case "application/json":
		candidates = [][]byte{body}
	default:
		return nil, fmt.Errorf("Content-Type %q: Streamable HTTP answers are application/json or text/event-stream", mediaType)
	}
	for _, c := range candidates {
		var v any
		if json.Unmarshal(c, &v) != nil {
			continue
		}
		msgs := []any{v}
		if arr, ok := v.([]any); ok {
			msgs = arr
		}
		for _, m := range msgs {
			obj, ok := m.(map[string]any)
			if !ok {
				continue
			}
			if n, ok := obj["id"].(float64); ok && int(n) == id {
				return obj, nil
			}
		}
	}
	return nil, fmt.Errorf("no JSON-RPC response with id %d in the answer: %s", id, clip(string(body), 80))
}

// mcp checks the MCP front door (Appendix D).
func (r *runner) mcp(ctx context.Context) {
	u, in, ok := r.integrationURL(GroupMCP, "mcp")
	if !ok {
		return
	}
	want := in.Version
	if want == "" {
		want = "2024-11-05" // the version Appendix D names
	}
	s := &mcpSession{url: u}
	ex, resp, err := r.mcpCall(ctx, s, 1, "initialize", map[string]any{
		"protocolVersion": want,
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "caddy-ahp-check", "version": r.opts.Version},
	})
	fixInit := "serve JSON-RPC 2.0 over HTTP POST at " + u.Path + " and answer initialize with protocolVersion, capabilities (tools) and serverInfo (Appendix D.1, D.6)"
	if err != nil {
		r.fail("mcp.initialize", err.Error(), fixInit, ex)
		r.skipAllBecause(GroupMCP, ex, "initialize failed")
		return
	}
	res := resp["result"].(map[string]any)
	var ps []string
	s.version, _ = res["protocolVersion"].(string)
	if s.version == "" {
		ps = append(ps, "no result.protocolVersion")
	}
	info, _ := res["serverInfo"].(map[string]any)
	if str(info["name"]) == "" {
		ps = append(ps, "no result.serverInfo.name")
	}
	caps, _ := res["capabilities"].(map[string]any)
	if _, ok := caps["tools"]; !ok {
		ps = append(ps, "result.capabilities has no tools")
	}
	if len(ps) > 0 {
		r.fail("mcp.initialize", joinProblems(ps), fixInit, ex)
	} else {
		saw := fmt.Sprintf("protocol %s, server %q", s.version, str(info["name"]))
		if str(info["manifest"]) != "" {
			saw += ", serverInfo.manifest " + str(info["manifest"])
		}
		r.pass("mcp.initialize", saw, ex)
	}
	s.sessionID = ex.Header.Get("Mcp-Session-Id")
	defer func() {
		if s.sessionID != "" { // end the session we started, politely
			r.send(ctx, http.MethodDelete, u, nil, "Mcp-Session-Id", s.sessionID)
		}
	}()
	r.mcpCall(ctx, s, 0, "notifications/initialized", nil)

	// tools/list, following up to five pages.
	var tools []map[string]any
	var listEx *exchange
	listed := true
	cursor := ""
	for page := 0; page < 5; page++ {
		var params any
		if cursor != "" {
			params = map[string]any{"cursor": cursor}
		}
		ex, resp, err := r.mcpCall(ctx, s, 2+page, "tools/list", params)
		listEx = ex
		if err != nil {
			r.fail("mcp.tools", err.Error(), "answer tools/list with result.tools (Appendix D.2)", ex)
			r.skipBecause("mcp.tools_mode2", ex, "tools/list failed")
			listed = false
			break
		}
		res := resp["result"].(map[string]any)
		arr, _ := res["tools"].([]any)
		for _, t := range arr {
			if obj, ok := t.(map[string]any); ok {
				tools = append(tools, obj)
			}
		}
		if cursor, _ = res["nextCursor"].(string); cursor == "" {
			break
		}
	}
	if listed {
		r.judgeTools(tools, listEx)
	}

	ex, resp, err = r.mcpCall(ctx, s, 10, "resources/list", nil)
	if err != nil {
		r.fail("mcp.resources", err.Error(), "answer resources/list with result.resources: the MODE1 content as MCP resources (Appendix D.2)", ex)
	} else if arr, ok := resp["result"].(map[string]any)["resources"].([]any); !ok {
		r.fail("mcp.resources", "result.resources is not an array", "answer resources/list with result.resources (Appendix D.2)", ex)
	} else {
		r.pass("mcp.resources", plural(len(arr), "resource"), ex)
	}
}

// judgeTools checks the tool list against the manifest.
func (r *runner) judgeTools(tools []map[string]any, ex *exchange) {
	byName := map[string]map[string]any{}
	for _, t := range tools {
		byName[str(t["name"])] = t
	}
	var missing3, missing2, badSchema []string
	mode3 := 0
	for _, c := range r.manifest.conversable() {
		t, ok := byName[c.Name]
		switch {
		case !ok && c.Mode == "MODE3":
			missing3 = append(missing3, c.Name)
		case !ok:
			missing2 = append(missing2, c.Name)
		default:
			if p := toolSchemaProblem(t); p != "" {
				badSchema = append(badSchema, c.Name+": "+p)
			}
		}
		if c.Mode == "MODE3" {
			mode3++
		}
	}
	var ps []string
	if len(missing3) > 0 {
		ps = append(ps, "no tool for MODE3 capabilities "+joinNames(missing3))
	}
	ps = append(ps, badSchema...)
	if len(ps) > 0 {
		r.fail("mcp.tools", joinProblems(ps), "list one tool per MODE3 capability, named as the capability, whose inputSchema has query (string, required) and session_id (string, optional) (Appendix D.3)", ex)
	} else {
		r.pass("mcp.tools", fmt.Sprintf("%s for %s; every tool takes query and session_id", plural(len(tools), "tool"), plural(mode3, "MODE3 capability")), ex)
	}
	n2 := 0
	for _, c := range r.manifest.conversable() {
		if c.Mode == "MODE2" {
			n2++
		}
	}
	switch {
	case n2 == 0:
		r.skip("mcp.tools_mode2", "no MODE2 capability")
	case len(missing2) > 0:
		r.fail("mcp.tools_mode2", "no tool for MODE2 capabilities "+joinNames(missing2), "expose MODE2 capabilities as tools too: clients find tools, not resources, first (Appendix D.2)", ex)
	default:
		r.pass("mcp.tools_mode2", fmt.Sprintf("%s, all tools", plural(n2, "MODE2 capability")), ex)
	}
}

// toolSchemaProblem checks Appendix D.3's rule: query (string) required,
// session_id (string) optional.
func toolSchemaProblem(t map[string]any) string {
	schema, _ := t["inputSchema"].(map[string]any)
	if schema == nil {
		return "no inputSchema"
	}
	props, _ := schema["properties"].(map[string]any)
	required := strs(schema["required"])
	var ps []string
	if q, ok := props["query"].(map[string]any); !ok || !allowsType(q, "string") {
		ps = append(ps, "no string property query")
	} else if !contains(required, "query") {
		ps = append(ps, "query is not required")
	}
	if sid, ok := props["session_id"].(map[string]any); !ok || !allowsType(sid, "string") {
		ps = append(ps, "no string property session_id")
	} else if contains(required, "session_id") {
		ps = append(ps, "session_id is required; it must be optional")
	}
	return strings.Join(ps, ", ")
}

func allowsType(schema map[string]any, t string) bool {
	switch v := schema["type"].(type) {
	case string:
		return v == t
	case []any:
		for _, x := range v {
			if x == t {
				return true
			}
		}
	}
	return false
}

// openapi checks the OpenAPI front door (Appendix E).
func (r *runner) openapi(ctx context.Context) {
	u, _, ok := r.integrationURL(GroupOpenAPI, "openapi")
	if !ok {
		return
	}
	ex := r.get(ctx, u, "Accept", "application/json")
	fix := "serve a valid OpenAPI 3.1 document at " + u.Path + " (spec §4.4.2, Appendix E)"
	if ex.Err != nil {
		r.fail("openapi.document", ex.failed(), fix, ex)
		r.skipAllBecause(GroupOpenAPI, ex, "no document")
		return
	}
	r.keepAnswer("openapi", ex)
	if to, ok := r.offSiteRedirect(ex); ok {
		// Not the site's fault: clients follow it; the checker does not.
		r.skipAll(GroupOpenAPI, "integrations.openapi.url redirects to "+clip(to.Redacted(), maxItem)+", another host, which the checker does not follow (it sends requests only to the site it checks)")
		return
	}
	if ex.Status != http.StatusOK {
		r.fail("openapi.document", statusText(ex.Status), fix, ex)
		r.skipAllBecause(GroupOpenAPI, ex, "no document")
		return
	}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(ex.Body)
	if err != nil {
		r.fail("openapi.document", "not an OpenAPI document: "+clip(err.Error(), 200), fix, ex)
		r.skipAllBecause(GroupOpenAPI, ex, "no document")
		return
	}
	var ps []string
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		ps = append(ps, fmt.Sprintf("openapi is %q; §4.4.2 requires 3.1.x", doc.OpenAPI))
	} else if err := doc.Validate(ctx); err != nil {
		ps = append(ps, "invalid: "+clip(err.Error(), 300))
	}
	if doc.Info == nil || doc.Info.Title == "" {
		ps = append(ps, "no info.title")
	} else if name := r.manifest.Name; name != "" && doc.Info.Title != name {
		ps = append(ps, fmt.Sprintf("info.title is %q, not the manifest's name %q (E.1)", doc.Info.Title, name))
	}
	if len(doc.Servers) == 0 || doc.Servers[0].URL == "" {
		ps = append(ps, "no servers[0].url: the site's base URL (E.1)")
	}
	if len(ps) > 0 {
		r.fail("openapi.document", joinProblems(ps), fix, ex)
	} else {
		r.pass("openapi.document", fmt.Sprintf("OpenAPI %s, %s", doc.OpenAPI, plural(doc.Paths.Len(), "path")), ex)
	}

	caps := r.manifest.conversable()
	var missing []string
	ops := map[string]*openapi3.Operation{}
	for _, c := range caps {
		var item *openapi3.PathItem
		if doc.Paths != nil {
			item = doc.Paths.Value("/capabilities/" + c.Name)
		}
		if item == nil || item.Post == nil {
			missing = append(missing, "POST /capabilities/"+c.Name)
			continue
		}
		ops[c.Name] = item.Post
	}
	switch {
	case len(caps) == 0:
		r.skip("openapi.paths", "no MODE2/MODE3 capability")
	case len(missing) > 0:
		r.fail("openapi.paths", "missing "+joinNames(missing), "describe each MODE2/MODE3 capability as POST /capabilities/{name} (Appendix E.2)", ex)
	default:
		r.pass("openapi.paths", "POST /capabilities/{name} for "+plural(len(caps), "capability"), ex)
	}

	var needAuth, async []string
	for _, c := range caps {
		if c.needsAuth() {
			needAuth = append(needAuth, c.Name)
		}
		if c.ActionType == "async" {
			async = append(async, c.Name)
		}
	}
	if len(needAuth) == 0 {
		r.skip("openapi.security", "no capability needs credentials")
	} else {
		var ps []string
		if doc.Components == nil || len(doc.Components.SecuritySchemes) == 0 {
			ps = append(ps, "no components.securitySchemes")
		}
		for _, name := range needAuth {
			op, ok := ops[name]
			// An operation's own security, even an empty list, replaces
			// the document's (OpenAPI 3.1 §4.8.10): security: [] is public,
			// and an empty requirement {} among them makes it optional.
			reqs := doc.Security
			if ok && op.Security != nil {
				reqs = *op.Security
			}
			public := len(reqs) == 0
			for _, req := range reqs {
				public = public || len(req) == 0
			}
			if ok && public {
				ps = append(ps, "POST /capabilities/"+name+" has no security requirement")
			}
		}
		if len(ps) > 0 {
			r.fail("openapi.security", joinProblems(ps), "declare the site's scheme in components.securitySchemes and require it on the operations of capabilities that need credentials (Appendix E.1, E.5)", ex)
		} else {
			r.pass("openapi.security", "security on "+joinNames(needAuth), ex)
		}
	}
	if len(async) == 0 {
		r.skip("openapi.async_polling", "no async capability")
	} else {
		var bad []string
		for _, name := range async {
			op, ok := ops[name]
			if !ok {
				continue
			}
			if !strings.Contains(strings.ToLower(op.Description+" "+op.Summary), "poll") {
				bad = append(bad, name)
			}
		}
		if len(bad) > 0 {
			r.fail("openapi.async_polling", "the operations of "+joinNames(bad)+" do not describe polling", "say in the operation's description how to poll for the result (status accepted, then GET the poll URL) (Appendix E.5)", ex)
		} else {
			r.pass("openapi.async_polling", "polling described for "+joinNames(async), ex)
		}
	}
}
