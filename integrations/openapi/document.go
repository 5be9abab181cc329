package openapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/integrations/internal/bridge"
	"github.com/caddy-ahp/caddy-ahp/internal/jsonstr"
	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// Version is the OpenAPI version of the document (Appendix E.1), to declare
// in the manifest's integrations.openapi.
const Version = "3.1.0"

// CapabilityPrefix is where capability operations live (Appendix E.2).
const CapabilityPrefix = "/capabilities/"

// Security scheme names (components.securitySchemes), as Appendix E uses
// for bearer; apiKey for X-AHP-Key.
const (
	schemeBearer = "bearerAuth"
	schemeAPIKey = "apiKey"
)

// The document's shapes. Structs, not maps, keep the top level in the
// order a reader expects; ordered keeps paths in manifest order.
type (
	document struct {
		OpenAPI    string     `json:"openapi"`
		Info       info       `json:"info"`
		Servers    []server   `json:"servers"`
		Paths      ordered    `json:"paths"`
		Components components `json:"components"`
		XAHP       xahp       `json:"x-ahp"`
	}
	info struct {
		Title       string `json:"title"`
		Description string `json:"description,omitempty"`
		Version     string `json:"version"`
	}
	server struct {
		URL         string `json:"url"`
		Description string `json:"description,omitempty"`
	}
	xahp struct {
		Version  string `json:"version"`
		Manifest string `json:"manifest"`
		MCP      string `json:"mcp,omitempty"`
	}
	components struct {
		Schemas         ordered              `json:"schemas"`
		Responses       ordered              `json:"responses"`
		Headers         ordered              `json:"headers"`
		SecuritySchemes map[string]secScheme `json:"securitySchemes,omitempty"`
	}
	secScheme struct {
		Type        string `json:"type"`
		Scheme      string `json:"scheme,omitempty"`
		In          string `json:"in,omitempty"`
		Name        string `json:"name,omitempty"`
		Description string `json:"description,omitempty"`
	}
	operation struct {
		OperationID string                `json:"operationId"`
		Summary     string                `json:"summary,omitempty"`
		Description string                `json:"description,omitempty"`
		Parameters  []parameter           `json:"parameters,omitempty"`
		RequestBody *requestBody          `json:"requestBody,omitempty"`
		Responses   ordered               `json:"responses"`
		Security    []map[string][]string `json:"security,omitempty"`
	}
	parameter struct {
		Name        string          `json:"name"`
		In          string          `json:"in"`
		Required    bool            `json:"required"`
		Description string          `json:"description,omitempty"`
		Schema      json.RawMessage `json:"schema"`
	}
	requestBody struct {
		Required bool                 `json:"required"`
		Content  map[string]mediaType `json:"content"`
	}
	mediaType struct {
		Schema json.RawMessage `json:"schema"`
	}
	response struct {
		Description string               `json:"description"`
		Headers     map[string]ref       `json:"headers,omitempty"`
		Content     map[string]mediaType `json:"content,omitempty"`
	}
	ref struct {
		Ref string `json:"$ref"`
	}
)

// ordered is a JSON object that keeps its members in insertion order.
type ordered []member

type member struct {
	key   string
	value any
}

func (o *ordered) add(key string, value any) { *o = append(*o, member{key, value}) }

func (o ordered) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, m := range o {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonstr.AppendString(b, m.key)
		b = append(b, ':')
		v, err := json.Marshal(m.value)
		if err != nil {
			return nil, err
		}
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

// Shared schemas (Appendix E.3, completed from spec §6 and §9.2, and the
// §10 error body).
const (
	ahpResponseSchema = `{
  "type": "object",
  "description": "An AHP response (spec §6): a success, a clarification request, an accepted async request, or a status poll answer.",
  "required": ["status"],
  "properties": {
    "status": {"type": "string", "enum": ["success", "clarification_needed", "accepted", "pending", "failed", "expired", "error"]},
    "session_id": {"type": ["string", "null"], "description": "Pass it back as session_id to continue the conversation."},
    "response": {
      "type": "object",
      "properties": {
        "content_type": {"type": "string", "description": "text/answer, application/data, application/feed, media/*, file/download, application/action-result or x-*/*"},
        "answer": {"type": "string", "description": "The answer, in plain text or Markdown."},
        "payload": {"type": "object", "description": "Structured payload of non-text content types (spec Appendix C)."},
        "sources": {"type": "array", "items": {"type": "object", "properties": {
          "title": {"type": "string"}, "url": {"type": "string"}, "relevance": {"type": "string", "enum": ["direct", "indirect", "background"]}}}},
        "follow_up": {"type": "object", "properties": {"suggested_queries": {"type": "array", "items": {"type": "string"}}}}
      }
    },
    "clarification": {
      "type": "object",
      "description": "Present with status clarification_needed: send the answer as clarification, with the same session_id.",
      "properties": {
        "question": {"type": "string"},
        "options": {"type": ["array", "null"], "items": {"type": "string"}},
        "free_form": {"type": "boolean"}
      }
    },
    "eta_seconds": {"type": ["integer", "null"], "minimum": 0},
    "poll": {"type": "string", "description": "Present with status accepted: the status URL to poll."},
    "progress": {"type": "string"},
    "meta": {
      "type": "object",
      "properties": {
        "mode": {"type": "string", "enum": ["MODE1", "MODE2", "MODE3"]},
        "cached": {"type": "boolean"},
        "tokens_used": {"type": "integer", "minimum": 0},
        "capability_used": {"type": "string"},
        "content_type": {"type": "string"},
        "fallback_from": {"type": "string"},
        "content_signals": {"type": "object", "additionalProperties": {"type": "boolean"}}
      }
    }
  }
}`
	ahpErrorSchemaHead = `{
  "type": "object",
  "description": "An AHP error (spec §10).",
  "required": ["status", "code", "message"],
  "properties": {
    "status": {"type": "string", "enum": ["error"]},
    "code": {"type": "string", "enum": `
	ahpErrorSchemaTail = `},
    "message": {"type": "string"},
    "available_capabilities": {"type": "array", "items": {"type": "string"}},
    "available_types": {"type": "array", "items": {"type": "string"}},
    "scope": {"type": "string", "enum": ["ip", "agent", "session", "session_tokens"]},
    "retry_after": {"type": ["integer", "null"], "minimum": 0, "description": "Seconds until a retry may succeed; null: start a new session."}
  }
}`
)

var errorCodes = []string{ahperror.InvalidRequest, ahperror.UnknownCapability, ahperror.MissingField, ahperror.UnsupportedType,
	ahperror.AuthRequired, ahperror.Forbidden, ahperror.RequestTooLarge, ahperror.RateLimited, ahperror.ConciergeError, ahperror.Unavailable}

func compactJSON(s string) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		panic("openapi: bad built-in schema: " + err.Error())
	}
	return b.Bytes()
}

var (
	refResponse = json.RawMessage(`{"$ref":"#/components/schemas/AHPResponse"}`)
	refError    = json.RawMessage(`{"$ref":"#/components/schemas/AHPError"}`)
)

// build assembles the document for m. serverURL is the placeholder the
// caller splices.
func build(m *manifest.Manifest, caps []*bridge.Capability, serverURL string) (*document, error) {
	title := m.Name
	if title == "" {
		title = "AHP site"
	}
	d := &document{
		OpenAPI: Version,
		Info:    info{Title: title, Description: m.Description, Version: manifest.Version},
		Servers: []server{{URL: serverURL}},
		XAHP:    xahp{Version: manifest.Version, Manifest: manifest.WellKnownPath},
	}
	codes, _ := json.Marshal(errorCodes)
	d.Components.Schemas.add("AHPResponse", compactJSON(ahpResponseSchema))
	d.Components.Schemas.add("AHPError", compactJSON(ahpErrorSchemaHead+string(codes)+ahpErrorSchemaTail))

	scheme := ""
	switch m.Authentication {
	case manifest.AuthBearer:
		scheme = schemeBearer
		d.Components.SecuritySchemes = map[string]secScheme{schemeBearer: {Type: "http", Scheme: "bearer",
			Description: "The site's bearer token, sent as Authorization: Bearer <token>."}}
	case manifest.AuthAPIKey:
		scheme = schemeAPIKey
		d.Components.SecuritySchemes = map[string]secScheme{schemeAPIKey: {Type: "apiKey", In: "header", Name: "X-AHP-Key",
			Description: "The site's API key, sent as X-AHP-Key: <key>."}}
	}
	addSharedResponses(d, scheme != "")

	converse := m.ConversePath()
	statusPath := ""
	if strings.HasPrefix(converse, "/") {
		statusPath = strings.TrimSuffix(converse, "/") + "/status/{session_id}"
	}
	anyAsync := false
	for _, c := range caps {
		op, err := capabilityOperation(d, c, scheme, statusPath)
		if err != nil {
			return nil, fmt.Errorf("capability %q: %w", c.Name, err)
		}
		d.Paths.add(CapabilityPrefix+c.Name, map[string]any{"post": op})
		anyAsync = anyAsync || c.Async
	}
	if anyAsync && statusPath != "" {
		d.Paths.add(statusPath, map[string]any{"get": statusOperation(scheme)})
	}
	if p := m.ContentPath(); strings.HasPrefix(p, "/") && !strings.ContainsAny(p, "?#{}") {
		d.Paths.add(p, map[string]any{"get": contentOperation(p)})
	}
	return d, nil
}

// addSharedResponses adds components.responses and components.headers
// used by every operation.
func addSharedResponses(d *document, auth bool) {
	for _, h := range []struct{ name, desc string }{
		{"X-RateLimit-Limit", "Requests allowed in the current window (spec §11.1)."},
		{"X-RateLimit-Remaining", "Requests remaining in the current window."},
		{"X-RateLimit-Reset", "Unix time when the window resets."},
		{"X-RateLimit-Window", "Window duration in seconds."},
		{"Retry-After", "Seconds to wait before retrying."},
	} {
		d.Components.Headers.add(h.name, map[string]any{"description": h.desc, "schema": json.RawMessage(`{"type":"integer"}`)})
	}
	errResp := func(desc string, headers ...string) response {
		r := response{Description: desc, Content: map[string]mediaType{"application/json": {Schema: refError}}}
		for _, h := range headers {
			if r.Headers == nil {
				r.Headers = map[string]ref{}
			}
			r.Headers[h] = ref{"#/components/headers/" + h}
		}
		return r
	}
	answer := func(desc string) response {
		return response{Description: desc, Headers: rateHeaders(), Content: map[string]mediaType{"application/json": {Schema: refResponse}}}
	}
	d.Components.Responses.add("Answer", answer("The concierge's answer: success, clarification_needed, or accepted for an async capability."))
	d.Components.Responses.add("Accepted", answer("Accepted for asynchronous processing: poll the status URL in poll."))
	d.Components.Responses.add("BadRequest", errResp("Bad request: invalid_request, missing_field, unknown_capability or unsupported_type."))
	if auth {
		d.Components.Responses.add("Unauthorized", errResp("Authentication required (auth_required): send the site's credential."))
		d.Components.Responses.add("Forbidden", errResp("The credential is not accepted (forbidden)."))
	}
	d.Components.Responses.add("RequestTooLarge", errResp("The request body is too large (request_too_large)."))
	d.Components.Responses.add("RateLimited", errResp("Rate limit or token budget exceeded (rate_limited); wait Retry-After seconds, or start a new session when retry_after is null.",
		"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Window"))
	d.Components.Responses.add("ConciergeError", errResp("The concierge failed (concierge_error)."))
	d.Components.Responses.add("Unavailable", errResp("The concierge is temporarily unavailable (unavailable)."))
}

func errorResponses(r *ordered, auth bool) {
	r.add("400", ref{"#/components/responses/BadRequest"})
	if auth {
		r.add("401", ref{"#/components/responses/Unauthorized"})
		r.add("403", ref{"#/components/responses/Forbidden"})
	}
	r.add("413", ref{"#/components/responses/RequestTooLarge"})
	r.add("429", ref{"#/components/responses/RateLimited"})
	r.add("500", ref{"#/components/responses/ConciergeError"})
	r.add("503", ref{"#/components/responses/Unavailable"})
}

func rateHeaders() map[string]ref {
	h := map[string]ref{}
	for _, n := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Window"} {
		h[n] = ref{"#/components/headers/" + n}
	}
	return h
}

// security is an operation's requirement: the scheme when the capability
// needs credentials; the scheme or nothing ({}) when it merely accepts
// them (a verified key selects the authenticated rate limit tier).
func security(scheme string, required bool) []map[string][]string {
	if scheme == "" {
		return nil
	}
	s := []map[string][]string{{scheme: {}}}
	if !required {
		s = append([]map[string][]string{{}}, s...)
	}
	return s
}

func capabilityOperation(d *document, c *bridge.Capability, scheme, statusPath string) (*operation, error) {
	argsName := c.Name + ".request"
	args, defs, err := componentSchema(c.Schema, c.Name)
	if err != nil {
		return nil, err
	}
	d.Components.Schemas.add(argsName, args)
	for _, def := range defs {
		d.Components.Schemas.add(def.key, def.value)
	}

	desc := []string{bridge.Sentence(c.Description)}
	if c.NeedsAuth {
		desc = append(desc, "Requires the site's credential.")
	}
	if c.Async && statusPath != "" {
		desc = append(desc, "Asynchronous: an answer with status \"accepted\" gives a session_id; poll GET "+
			statusPath+" (getAsyncStatus) until the status is success, failed or expired.")
	}
	op := &operation{
		OperationID: c.Name,
		Summary:     c.Description,
		Description: strings.Join(desc, " "),
		RequestBody: &requestBody{Required: true, Content: map[string]mediaType{
			"application/json": {Schema: json.RawMessage(`{"$ref":"#/components/schemas/` + argsName + `"}`)}}},
		Security: security(scheme, c.NeedsAuth),
	}
	op.Responses.add("200", ref{"#/components/responses/Answer"})
	if c.Async {
		op.Responses.add("202", ref{"#/components/responses/Accepted"})
	}
	errorResponses(&op.Responses, scheme != "")
	return op, nil
}

func statusOperation(scheme string) *operation {
	op := &operation{
		OperationID: "getAsyncStatus",
		Summary:     "Status of an asynchronous request",
		Description: "Poll the result of an async capability call (spec §9) with the session_id of its accepted answer, until the status is success, failed or expired.",
		Parameters: []parameter{{Name: "session_id", In: "path", Required: true,
			Description: "The session_id of the accepted answer.", Schema: json.RawMessage(`{"type":"string","maxLength":128}`)}},
		Security: security(scheme, true),
	}
	op.Responses.add("200", response{Description: "The status: pending, success (with the response), failed or expired.",
		Content: map[string]mediaType{"application/json": {Schema: refResponse}}})
	op.Responses.add("404", response{Description: "No such async request.", Content: map[string]mediaType{"application/json": {Schema: refError}}})
	errorResponses(&op.Responses, scheme != "")
	return op
}

func contentOperation(p string) *operation {
	mime := "text/plain"
	switch {
	case strings.HasSuffix(p, ".md"), strings.HasSuffix(p, ".markdown"):
		mime = "text/markdown"
	case strings.HasSuffix(p, ".json"):
		mime = "application/json"
	case strings.HasSuffix(p, ".html"), strings.HasSuffix(p, ".htm"):
		mime = "text/html"
	}
	op := &operation{
		OperationID: "getSiteContent",
		Summary:     "The site's agent-readable content",
		Description: "The site's MODE1 content document (AHP §5.1), such as llms.txt: read it whole instead of parsing the site's pages.",
	}
	op.Responses.add("200", response{Description: "The content document.",
		Content: map[string]mediaType{mime: {Schema: json.RawMessage(`{"type":"string"}`)}}})
	return op
}

var componentName = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// componentSchema turns a capability's arguments schema into a component:
// its definitions ($defs or definitions, the targets of its local $refs)
// become components of their own, named "<capability>.defs.<name>", and
// every local $ref is rewritten to the component it now points into.
func componentSchema(schema json.RawMessage, capName string) (json.RawMessage, ordered, error) {
	var root map[string]any
	dec := json.NewDecoder(bytes.NewReader(schema))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return nil, nil, err
	}
	var defs ordered
	hoisted := map[string]string{} // "#/definitions/x" → component name
	for _, kw := range []string{"$defs", "definitions"} {
		m, ok := root[kw].(map[string]any)
		if !ok {
			continue
		}
		delete(root, kw)
		for _, name := range slices.Sorted(maps.Keys(m)) {
			if !componentName.MatchString(name) {
				return nil, nil, fmt.Errorf("input_schema %s name %q: use letters, digits, '.', '-' and '_' so it can be an OpenAPI component", kw, name)
			}
			comp := capName + ".defs." + name
			hoisted["#/"+kw+"/"+name] = comp
			defs.add(comp, m[name])
		}
	}
	self := "#/components/schemas/" + capName + ".request"
	var rewriteErr error
	rewrite := func(v any) {
		walkRefs(v, func(r string) string {
			for from, comp := range hoisted {
				if r == from || strings.HasPrefix(r, from+"/") {
					return "#/components/schemas/" + comp + r[len(from):]
				}
			}
			if r == "#" || strings.HasPrefix(r, "#/") {
				return self + r[1:]
			}
			if rewriteErr == nil {
				rewriteErr = errors.New("input_schema $ref " + r + ": only references inside the schema can be published")
			}
			return r
		})
	}
	rewrite(root)
	for i := range defs {
		rewrite(defs[i].value)
	}
	if rewriteErr != nil {
		return nil, nil, rewriteErr
	}
	out, err := json.Marshal(root)
	return out, defs, err
}

// walkRefs replaces every "$ref" string value under v with f(ref).
func walkRefs(v any, f func(string) string) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if s, ok := child.(string); ok && k == "$ref" {
				v[k] = f(s)
				continue
			}
			walkRefs(child, f)
		}
	case []any:
		for _, child := range v {
			walkRefs(child, f)
		}
	}
}
