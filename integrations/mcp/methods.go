package mcp

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/integrations/internal/bridge"
	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// reply is the outcome of one request: a result or an error, and for auth
// failures the HTTP status and challenge the response takes when the
// request is not part of a batch.
type reply struct {
	result    []byte
	err       *rpcError
	status    int
	challenge string
}

func errReply(code int, msg string) reply {
	return reply{err: &rpcError{code: code, message: msg}}
}

var emptyResult = []byte("{}")

func (s *Server) handle(w http.ResponseWriter, r *http.Request, m *message, dispatch Dispatch) reply {
	switch m.method {
	case "initialize":
		return s.initializeReply(m.params)
	case "ping":
		return reply{result: emptyResult}
	case "tools/list":
		return reply{result: s.toolsList}
	case "tools/call":
		return s.callTool(w, r, m.params, dispatch)
	case "resources/list":
		return reply{result: s.resources.AppendTo(nil, bridge.BaseURL(r, s.trustProto))}
	case "resources/templates/list":
		return reply{result: s.templates.AppendTo(nil, bridge.BaseURL(r, s.trustProto))}
	case "resources/read":
		return s.readResource(w, r, m.params, dispatch)
	}
	return errReply(codeMethodNotFound, "method not found: "+m.method)
}

func (s *Server) initializeReply(params json.RawMessage) reply {
	var p struct {
		ProtocolVersion *string `json:"protocolVersion"`
	}
	if !isObject(params) || json.Unmarshal(params, &p) != nil || p.ProtocolVersion == nil {
		return errReply(codeInvalidParams, "invalid params: initialize needs params.protocolVersion (a string)")
	}
	// Answer the client's version when we speak it, else our latest
	// (lifecycle: version negotiation).
	if res, ok := s.initialize[*p.ProtocolVersion]; ok {
		return reply{result: res}
	}
	return reply{result: s.initialize[protocolVersions[0]]}
}

func isObject(raw json.RawMessage) bool { return len(raw) > 0 && raw[0] == '{' }

// callTool runs tools/call through the converse pipeline.
func (s *Server) callTool(w http.ResponseWriter, r *http.Request, params json.RawMessage, dispatch Dispatch) reply {
	var p struct {
		Name      *string         `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
		Meta      struct {
			Auth json.RawMessage `json:"auth"`
		} `json:"_meta"`
	}
	if !isObject(params) || json.Unmarshal(params, &p) != nil {
		return errReply(codeInvalidParams, "invalid params: tools/call needs params {name, arguments}")
	}
	if p.Name == nil {
		return errReply(codeInvalidParams, "invalid params: params.name (the tool) is missing")
	}
	tool, ok := s.tools[*p.Name]
	if !ok {
		msg := "invalid params: unknown tool " + strconv.Quote(*p.Name)
		if s.toolNames != "" {
			msg += "; the tools are: " + s.toolNames
		}
		return errReply(codeInvalidParams, msg)
	}
	var sent string
	if a := bytes.TrimSpace(p.Meta.Auth); len(a) > 0 && string(a) != "null" {
		if json.Unmarshal(a, &sent) != nil {
			return errReply(codeInvalidParams, "invalid params: params._meta.auth must be a string")
		}
	}
	call, aerr := tool.ParseArguments(p.Arguments)
	if aerr != nil {
		e := &rpcError{code: codeInvalidParams, message: "invalid params: " + tool.Name + ": " + aerr.Message}
		if aerr.Field != "" {
			e.data = bridge.AppendString([]byte(`{"field":`), aerr.Field)
			e.data = append(e.data, '}')
		}
		return reply{err: e}
	}
	if sent == "" {
		sent = call.Auth
	}
	cred, err := bridge.Credential(r.Header, s.scheme, sent)
	if err != nil {
		return errReply(codeInvalidParams, "invalid params: the credential (params._meta.auth or the auth argument): "+err.Error())
	}

	body := tool.AppendBody(make([]byte, 0, 256+len(call.Query)), &call)
	rec := bridge.NewRecorder(s.maxResponse)
	defer rec.Release()
	derr := dispatch(rec, bridge.NewConverseRequest(r, s.conversePath, body, s.scheme, cred))
	if derr != nil && r.Context().Err() == nil {
		s.logger.Error("mcp: tools/call dispatch failed", zap.String("tool", tool.Name), zap.Error(derr))
	}
	rec.CopyRateLimit(w.Header())
	return s.toolResult(rec, derr, tool.Name, bridge.BaseURL(r, s.trustProto))
}

// readResource reads a listed resource, or an async status URI, with an
// internal GET through the site.
func (s *Server) readResource(w http.ResponseWriter, r *http.Request, params json.RawMessage, dispatch Dispatch) reply {
	var p struct {
		URI *string `json:"uri"`
	}
	if !isObject(params) || json.Unmarshal(params, &p) != nil || p.URI == nil {
		return errReply(codeInvalidParams, "invalid params: resources/read needs params.uri (a string)")
	}
	uri := *p.URI
	target, query, accept, ok := s.resolve(r, uri)
	if !ok {
		return errReply(codeResourceNotFound, "resource not found: "+uri+" is not a resource of this server (see resources/list)")
	}
	rec := bridge.NewRecorder(s.maxResponse)
	defer rec.Release()
	derr := dispatch(rec, bridge.NewGetRequest(r, target, query, accept))
	if derr != nil && r.Context().Err() == nil {
		s.logger.Error("mcp: resources/read dispatch failed", zap.String("path", target), zap.Error(derr))
	}
	rec.CopyRateLimit(w.Header())
	return s.resourceResult(rec, derr, uri)
}

// resolve maps a resource URI to the path to GET on this site. Absolute
// URIs must name the host the client reached (the scheme may differ behind
// a TLS-terminating proxy); nothing else on the site is readable this way,
// so the MCP endpoint is no general proxy.
func (s *Server) resolve(r *http.Request, uri string) (target, query, accept string, ok bool) {
	u, err := url.Parse(uri)
	if err != nil || u.Opaque != "" || u.User != nil {
		return "", "", "", false
	}
	if u.Scheme != "" || u.Host != "" {
		if (u.Scheme != "http" && u.Scheme != "https") || !strings.EqualFold(u.Host, r.Host) {
			return "", "", "", false
		}
	}
	switch {
	case s.contentPath != "" && u.Path == s.contentPath && u.RawQuery == s.contentQuery:
		return u.Path, u.RawQuery, "*/*", true
	case s.contentURL != nil && u.IsAbs() && u.Path == s.contentURL.Path && u.RawQuery == s.contentURL.RawQuery &&
		strings.EqualFold(s.contentURL.Host, r.Host):
		return u.Path, u.RawQuery, "*/*", true
	case s.statusPrefix != "" && strings.HasPrefix(u.Path, s.statusPrefix) && u.RawQuery == "":
		id := u.Path[len(s.statusPrefix):]
		if id == "" || strings.Contains(id, "/") {
			return "", "", "", false
		}
		return u.Path, "", "application/json", true
	}
	return "", "", "", false
}

// ahpBody is the part of an AHP response (spec §6, §9.2, §10) that the
// tool result's text is made of. The whole body goes to structuredContent.
type ahpBody struct {
	Status    string  `json:"status"`
	SessionID *string `json:"session_id"`
	Response  *struct {
		Answer string `json:"answer"`
	} `json:"response"`
	Clarification *struct {
		Question string   `json:"question"`
		Options  []string `json:"options"`
		FreeForm bool     `json:"free_form"`
	} `json:"clarification"`
	Poll       string `json:"poll"`
	ETASeconds *int64 `json:"eta_seconds"`
	Progress   string `json:"progress"`
	Code       string `json:"code"`
	Message    string `json:"message"`
}

// parseAHP decodes body as an AHP response object. compact is the body as
// one line of JSON (for structuredContent and the JSON text block); ok is
// false for anything but a JSON object with a string status.
func parseAHP(body []byte) (b ahpBody, compact []byte, ok bool) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return b, nil, false
	}
	var buf bytes.Buffer
	if json.Compact(&buf, trimmed) != nil {
		return b, nil, false
	}
	// A field of an unexpected type leaves it unset; the rest still
	// reads (encoding/json goes on after a type mismatch).
	if err := json.Unmarshal(trimmed, &b); err != nil {
		if _, typeErr := err.(*json.UnmarshalTypeError); !typeErr {
			return b, nil, false
		}
	}
	return b, buf.Bytes(), b.Status != ""
}

// Wire shape of a tools/call result. Content blocks are text only: every
// client revision understands them.
type (
	textContent struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	callResult struct {
		Content           []textContent   `json:"content"`
		StructuredContent json.RawMessage `json:"structuredContent,omitempty"`
		IsError           bool            `json:"isError,omitempty"`
	}
)

func text(s string) textContent { return textContent{Type: "text", Text: s} }

// toolResult maps the recorded pipeline answer to a tools/call reply:
//
//   - 401 and 403 (missing or refused credentials) stay HTTP-level: a
//     JSON-RPC error (codeAuthRequired, codeForbidden) with the AHP error
//     body as data, and the status on the HTTP response;
//   - other AHP errors are tool errors: isError, content[0].text
//     "code: message";
//   - success: content[0].text is response.answer;
//   - clarification_needed and accepted become instructions for the
//     model (the question and options; the session_id and status URI).
//
// Every AHP body also goes out whole as structuredContent and, for clients
// that read only content, as a JSON text block (MCP 2025-06-18 asks for
// both).
func (s *Server) toolResult(rec *bridge.Recorder, derr error, tool, base string) reply {
	if !rec.Written() && derr != nil {
		return toolError("unavailable", "the site could not answer this call; try again later", nil)
	}
	if rec.Overflowed() {
		return toolError(ahpCodeFor(http.StatusInternalServerError), "the concierge's answer exceeds "+strconv.Itoa(s.maxResponseOrDefault())+" bytes", nil)
	}
	status := rec.Status()
	b, compact, isAHP := parseAHP(rec.Body())
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		return s.authFailure(rec, status, b, compact, isAHP)
	}
	if !isAHP {
		msg := "the site answered HTTP " + strconv.Itoa(status) + " without an AHP response body"
		var extra []textContent
		if body := rec.Body(); len(body) > 0 {
			extra = append(extra, text(passThroughText(body)))
		}
		return toolError(ahpCodeFor(status), msg, extra)
	}
	if b.Status == "error" || status >= 400 {
		code, msg := b.Code, b.Message
		if code == "" {
			code = ahpCodeFor(status)
		}
		if msg == "" {
			msg = http.StatusText(status)
		}
		return result(callResult{
			Content:           []textContent{text(code + ": " + msg), text(string(compact))},
			StructuredContent: compact,
			IsError:           true,
		})
	}

	var first string
	isError := false
	switch b.Status {
	case "success":
		if b.Response != nil {
			first = b.Response.Answer
		}
	case "clarification_needed":
		first = clarificationText(b, tool)
	case "accepted":
		first = acceptedText(b, base)
	default: // status poll answers (§9.2): pending, success, failed, expired
		first = b.Status
		if b.Progress != "" {
			first += ": " + b.Progress
		}
		isError = b.Status == "failed" || b.Status == "expired"
	}
	res := callResult{StructuredContent: compact, IsError: isError}
	if first != "" {
		res.Content = append(res.Content, text(first))
	}
	res.Content = append(res.Content, text(string(compact)))
	return result(res)
}

func (s *Server) maxResponseOrDefault() int {
	if s.maxResponse > 0 {
		return s.maxResponse
	}
	return bridge.DefaultMaxResponse
}

func result(res callResult) reply {
	out, err := json.Marshal(res)
	if err != nil {
		return errReply(codeInternalError, "internal error: "+err.Error())
	}
	return reply{result: out}
}

func toolError(code, msg string, extra []textContent) reply {
	return result(callResult{Content: append([]textContent{text(code + ": " + msg)}, extra...), IsError: true})
}

// authFailure keeps a 401 or 403 an HTTP auth failure, so that clients
// configured with credentials (or able to ask for them) react as they do
// to any HTTP endpoint; SDK clients read the JSON-RPC error in the body
// and keep the connection.
func (s *Server) authFailure(rec *bridge.Recorder, status int, b ahpBody, compact []byte, isAHP bool) reply {
	code, rpcCode := "auth_required", codeAuthRequired
	if status == http.StatusForbidden {
		code, rpcCode = "forbidden", codeForbidden
	}
	msg := http.StatusText(status)
	var data json.RawMessage
	if isAHP {
		if b.Code != "" {
			code = b.Code
		}
		if b.Message != "" {
			msg = b.Message
		}
		data = compact
	}
	rep := reply{err: &rpcError{code: rpcCode, message: code + ": " + msg, data: data}, status: status}
	if status == http.StatusUnauthorized {
		rep.challenge = rec.Header().Get("WWW-Authenticate")
		if rep.challenge == "" {
			rep.challenge = s.challenge()
		}
	}
	return rep
}

// challenge is the WWW-Authenticate of a 401 (RFC 9110 requires one) when
// the pipeline gave none: Bearer (RFC 6750) or, for X-AHP-Key, a scheme
// named after the header.
func (s *Server) challenge() string {
	if s.scheme == manifest.AuthAPIKey {
		return `AHP-Key realm="ahp", header="X-AHP-Key"`
	}
	return `Bearer realm="ahp"`
}

func clarificationText(b ahpBody, tool string) string {
	var sb strings.Builder
	sb.WriteString("The concierge needs clarification")
	if b.Clarification != nil && b.Clarification.Question != "" {
		sb.WriteString(": ")
		sb.WriteString(b.Clarification.Question)
	}
	if b.Clarification != nil && len(b.Clarification.Options) > 0 {
		sb.WriteString("\nOptions: ")
		sb.WriteString(strings.Join(b.Clarification.Options, ", "))
		if b.Clarification.FreeForm {
			sb.WriteString(" (or a free-form answer)")
		}
	}
	sb.WriteString("\nTo answer, call ")
	sb.WriteString(tool)
	sb.WriteString(" again with the same query")
	if b.SessionID != nil && *b.SessionID != "" {
		sb.WriteString(", session_id ")
		sb.WriteString(strconv.Quote(*b.SessionID))
	}
	sb.WriteString(" and your answer in clarification.")
	return sb.String()
}

func acceptedText(b ahpBody, base string) string {
	var sb strings.Builder
	sb.WriteString("Accepted: the request is being processed asynchronously")
	if b.SessionID != nil && *b.SessionID != "" {
		sb.WriteString(" (session_id ")
		sb.WriteString(strconv.Quote(*b.SessionID))
		sb.WriteString(")")
	}
	if b.ETASeconds != nil {
		sb.WriteString(", expected in about ")
		sb.WriteString(strconv.FormatInt(*b.ETASeconds, 10))
		sb.WriteString(" seconds")
	}
	sb.WriteString(".")
	if b.Poll != "" {
		poll := b.Poll
		if strings.HasPrefix(poll, "/") {
			poll = base + poll
		}
		sb.WriteString(" Read the resource ")
		sb.WriteString(poll)
		sb.WriteString(" (resources/read, or GET it) until its status is success or failed.")
	}
	return sb.String()
}

// ahpCodeFor names the AHP error code of an HTTP status whose body gave
// none (spec §10).
func ahpCodeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request"
	case http.StatusUnauthorized:
		return "auth_required"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return "unavailable"
	}
	return "concierge_error"
}

// passThroughText is a non-AHP body as text, unmangled when it is UTF-8.
func passThroughText(body []byte) string {
	if !utf8.Valid(body) {
		return "(a binary body of " + strconv.Itoa(len(body)) + " bytes)"
	}
	return string(body)
}

// Wire shape of a resources/read result: text contents, or blob contents
// (base64, which encoding/json gives []byte) for a body that is not UTF-8.
type resourceContents struct {
	URI      string  `json:"uri"`
	MIMEType string  `json:"mimeType,omitempty"`
	Text     *string `json:"text,omitempty"`
	Blob     []byte  `json:"blob,omitempty"`
}

func (s *Server) resourceResult(rec *bridge.Recorder, derr error, uri string) reply {
	if !rec.Written() && derr != nil {
		return errReply(codeInternalError, "internal error: the site could not answer this read")
	}
	if rec.Overflowed() {
		return errReply(codeInternalError, "internal error: the resource exceeds "+strconv.Itoa(s.maxResponseOrDefault())+" bytes")
	}
	status := rec.Status()
	b, compact, isAHP := parseAHP(rec.Body())
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return s.authFailure(rec, status, b, compact, isAHP)
	case status == http.StatusNotFound:
		return reply{err: &rpcError{code: codeResourceNotFound, message: "resource not found: " + uri, data: compact}}
	case status < 200 || status >= 300:
		msg := "the site answered HTTP " + strconv.Itoa(status)
		if isAHP && b.Code != "" {
			msg = b.Code + ": " + b.Message
		}
		return reply{err: &rpcError{code: codeInternalError, message: msg, data: compact}}
	}
	c := resourceContents{URI: uri, MIMEType: baseMIME(rec.Header().Get("Content-Type"))}
	if c.MIMEType == "" {
		c.MIMEType = s.contentMIME
	}
	if body := rec.Body(); utf8.Valid(body) {
		t := string(body)
		c.Text = &t
	} else {
		c.Blob = body
	}
	out, err := json.Marshal(struct {
		Contents []resourceContents `json:"contents"`
	}{[]resourceContents{c}})
	if err != nil {
		return errReply(codeInternalError, "internal error: "+err.Error())
	}
	return reply{result: out}
}

func baseMIME(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}
