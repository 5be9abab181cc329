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

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/auth"
	"github.com/caddy-ahp/caddy-ahp/gateway"
	"github.com/caddy-ahp/caddy-ahp/integrations/internal/bridge"
	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// reply is the outcome of one request: a result or an error, and the HTTP
// status a 2026-07-28 error takes (404 for an unknown method) when the
// request is alone in its HTTP request.
type reply struct {
	result []byte
	err    *rpcError
	status int
}

func errReply(code int, msg string) reply {
	return reply{err: &rpcError{code: code, message: msg}}
}

var emptyResult = []byte("{}")

func (s *Server) handle(w http.ResponseWriter, r *http.Request, m *message, e era, next gateway.Next, site *siteRead) reply {
	switch m.method {
	case "tools/list", "resources/list", "resources/templates/list":
		if hasCursor(m.params) {
			// Each list is one page and issues no cursor, so any cursor
			// is one this server never gave (MCP pagination: SHOULD be
			// -32602), never a reason to send page one again.
			return errReply(codeInvalidParams, "invalid params: unknown cursor (this server's lists have one page and issue no nextCursor)")
		}
	}
	switch m.method {
	case "initialize":
		if !e.modern {
			return s.initializeReply(m.params)
		}
	case "ping":
		if !e.modern {
			return reply{result: emptyResult}
		}
	case "server/discover":
		// A 2026-07-28 method; answered in every era, since it only
		// describes the server.
		return reply{result: s.discover}
	case "tools/list":
		if e.modern {
			return reply{result: s.toolsListModern}
		}
		return reply{result: s.toolsList}
	case "tools/call":
		return s.callTool(w, r, m.params, e, next)
	case "resources/list":
		if e.modern {
			return reply{result: s.resourcesModern.AppendTo(nil, s.baseURL(r))}
		}
		return reply{result: s.resources.AppendTo(nil, s.baseURL(r))}
	case "resources/templates/list":
		if e.modern {
			return reply{result: s.templatesModern.AppendTo(nil, s.baseURL(r))}
		}
		return reply{result: s.templates.AppendTo(nil, s.baseURL(r))}
	case "resources/read":
		return s.readResource(w, r, m.params, e, next, site)
	}
	rep := errReply(codeMethodNotFound, "method not found: "+m.method)
	if e.modern {
		// 2026-07-28: a method the server does not implement is a 404
		// with -32601, which tells a modern server from a legacy
		// HTTP+SSE one.
		rep.status = http.StatusNotFound
	}
	return rep
}

// initializeReply answers the legacy handshake: the client's version when
// we speak it, else our newest legacy one (lifecycle: version
// negotiation). An initialize without params or without protocolVersion
// (the AHP test suite's plain client) gets 2024-11-05, the version AHP
// Appendix D names.
func (s *Server) initializeReply(params json.RawMessage) reply {
	if len(params) == 0 {
		return reply{result: s.initialize[ManifestVersion]}
	}
	var p struct {
		ProtocolVersion json.RawMessage `json:"protocolVersion"`
	}
	if !isObject(params) || json.Unmarshal(params, &p) != nil {
		return errReply(codeInvalidParams, "invalid params: initialize takes an object: {protocolVersion, capabilities, clientInfo}")
	}
	if len(p.ProtocolVersion) == 0 || string(p.ProtocolVersion) == "null" {
		return reply{result: s.initialize[ManifestVersion]}
	}
	var v string
	if json.Unmarshal(p.ProtocolVersion, &v) != nil {
		return errReply(codeInvalidParams, "invalid params: initialize's params.protocolVersion must be a string")
	}
	if res, ok := s.initialize[v]; ok {
		return reply{result: res}
	}
	return reply{result: s.initialize[legacyVersions[0]]}
}

func isObject(raw json.RawMessage) bool { return len(raw) > 0 && raw[0] == '{' }

// callTool runs tools/call through the gateway's entry point. Refusals of
// a call to a known tool, by this door (arguments the tool's schema
// refuses, a credential no header can carry) or by the gateway (auth,
// limits, validation, sessions) or the concierge, are tool results with
// isError (MCP 2025-11-25 SEP-1303; issue 12): the model reads them and can
// correct itself. Only a call that names no tool is a JSON-RPC error.
// Door refusals are charged to the client's tier as the gateway charges
// its own (gateway.Refused).
func (s *Server) callTool(w http.ResponseWriter, r *http.Request, params json.RawMessage, e era, next gateway.Next) reply {
	var p struct {
		Name      *string         `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
		Meta      struct {
			Auth json.RawMessage `json:"auth"`
		} `json:"_meta"`
	}
	if !isObject(params) || json.Unmarshal(params, &p) != nil {
		return s.protocolRefusal(w, r, "invalid params: tools/call needs params {name, arguments}")
	}
	if p.Name == nil {
		return s.protocolRefusal(w, r, "invalid params: params.name (the tool) is missing")
	}
	tool, ok := s.tools[*p.Name]
	if !ok {
		msg := "invalid params: unknown tool " + strconv.Quote(*p.Name)
		if s.toolNames != "" {
			msg += "; the tools are: " + s.toolNames
		}
		return s.protocolRefusal(w, r, msg)
	}
	var sent string
	if a := bytes.TrimSpace(p.Meta.Auth); len(a) > 0 && string(a) != "null" {
		if json.Unmarshal(a, &sent) != nil {
			return s.doorRefusal(w, r, e, ahperror.New(http.StatusBadRequest, ahperror.InvalidRequest, "params._meta.auth must be a string (a credential)"))
		}
	}
	call, aerr := tool.ParseArguments(p.Arguments)
	if aerr != nil {
		code := ahperror.InvalidRequest
		if aerr.Missing {
			code = ahperror.MissingField
		}
		return s.doorRefusal(w, r, e, ahperror.New(http.StatusBadRequest, code, tool.Name+": "+aerr.Message))
	}
	if sent == "" {
		sent = call.Auth
	}
	cred, moved, err := s.credential(r.Header, sent)
	if err != nil {
		return s.doorRefusal(w, r, e, ahperror.New(http.StatusBadRequest, ahperror.InvalidRequest,
			"the credential (params._meta.auth or the auth argument): "+err.Error()))
	}

	obp := bytesPool.Get().(*[]byte)
	body := tool.AppendBody((*obp)[:0], &call)
	defer putBytes(obp, body)
	rec := bridge.NewRecorder(s.maxResponse)
	defer rec.Release()
	req := bridge.NewConverseRequest(r, s.gw.ConversePath(), s.scheme, cred)
	if moved {
		delete(req.Header, auth.HeaderAuthorization)
	}
	refusal, derr := s.gw.Converse(rec, req, body, next)
	rec.CopyRateLimit(w.Header())
	if refusal != nil {
		return s.result(ahpErrorResult(s.authWording(refusal, cred != "" && !moved, moved)), e)
	}
	if derr != nil && r.Context().Err() == nil {
		s.logger.Error("mcp: tools/call: the site behind the gateway failed", zap.String("tool", tool.Name), zap.Error(derr))
	}
	return s.result(s.toolResult(rec, derr, tool.Name, s.baseURL(r)), e)
}

// credential is the credential to set on an internal request, from the
// headers or else sent (params._meta.auth, an auth argument); moved
// reports a bearer token taken as an api_key site's key (D.5), whose
// Authorization header the internal request must drop.
func (s *Server) credential(h http.Header, sent string) (cred string, moved bool, err error) {
	if key, ok := bridge.BearerAPIKey(h, s.scheme); ok {
		return key, true, nil
	}
	cred, err = bridge.Credential(h, s.scheme, sent)
	return cred, false, err
}

// Credential refusals in this door's words: the gateway's name only the
// header, and a model that sent params._meta.auth would look for a
// header it never set.
var (
	wrongSent = ahperror.New(http.StatusForbidden, ahperror.Forbidden,
		"The credential in params._meta.auth (or the auth argument) is not accepted by this site.")
	wrongMoved = ahperror.New(http.StatusForbidden, ahperror.Forbidden,
		"The key in the Authorization: Bearer header is not accepted by this site (manifest authentication: api_key).")
	missingBearer = ahperror.New(http.StatusUnauthorized, ahperror.AuthRequired,
		"This tool requires authentication: send the token in an Authorization: Bearer <token> header on the MCP request, or in params._meta.auth (manifest authentication: bearer).")
	missingAPIKey = ahperror.New(http.StatusUnauthorized, ahperror.AuthRequired,
		"This tool requires authentication: send the key in an X-AHP-Key header (or Authorization: Bearer <key>) on the MCP request, or in params._meta.auth (manifest authentication: api_key).")
)

// wrongSentPoll is wrongSent's wording for a status read, which takes
// no auth argument.
const wrongSentPoll = "The credential in params._meta.auth is not accepted by this site."

// missingPoll is this door's wording of a status read refused for want
// of a credential.
func (s *Server) missingPoll() string {
	if s.scheme == manifest.AuthAPIKey {
		return "A status read requires authentication, as the async call did: send the key in params._meta.auth, or in an X-AHP-Key header (or Authorization: Bearer <key>) on the MCP request (manifest authentication: api_key)."
	}
	return "A status read requires authentication, as the async call did: send the token in params._meta.auth, or in an Authorization: Bearer <token> header on the MCP request (manifest authentication: bearer)."
}

// authWording returns the gateway's refusal e, or this door's wording of
// it when it is about the credential; fromSent reports a credential the
// door took from params._meta.auth or the auth argument, moved a bearer
// token it took as an api_key site's key (the gateway's wording names
// X-AHP-Key, which the agent never sent).
func (s *Server) authWording(e *ahperror.Error, fromSent, moved bool) *ahperror.Error {
	switch {
	case fromSent && auth.IsWrong(e):
		return wrongSent
	case moved && auth.IsWrong(e):
		return wrongMoved
	case auth.IsMissing(e) && s.scheme == manifest.AuthAPIKey:
		return missingAPIKey
	case auth.IsMissing(e):
		return missingBearer
	}
	return e
}

// unknownTool is what a tools/call naming no tool counts as in the
// rejected metric: the direct path's refusal of an unknown capability.
var unknownTool = ahperror.New(http.StatusBadRequest, ahperror.UnknownCapability, "unknown tool")

// protocolRefusal answers a tools/call that names no tool of this server
// (-32602), charged to the client's tier; over its limit, the 429 instead
// (a JSON-RPC error carrying the AHP body).
func (s *Server) protocolRefusal(w http.ResponseWriter, r *http.Request, msg string) reply {
	if s.gw == nil { // no capabilities, no gateway: charged static
		return errReply(codeInvalidParams, msg)
	}
	if e := s.gw.Refused(w.Header(), r, unknownTool); e != unknownTool {
		return reply{err: ahpRPCError(e.Status, e.AppendJSON(nil))}
	}
	return errReply(codeInvalidParams, msg)
}

// pollRefusal answers a status read this door refuses before the status
// path (-32602), charged as that path charges its own refusals: the
// request was not charged static, and must not go free. Over the
// client's limit, the 429 instead.
func (s *Server) pollRefusal(w http.ResponseWriter, r *http.Request, msg string) reply {
	e := ahperror.New(http.StatusBadRequest, ahperror.InvalidRequest, msg)
	if got := s.gw.Refused(w.Header(), r, e); got != e {
		return reply{err: ahpRPCError(got.Status, got.AppendJSON(nil))}
	}
	return errReply(codeInvalidParams, "invalid params: "+msg)
}

// doorRefusal is a call this door refuses before it becomes a converse
// request, charged as the gateway charges its own refusals; the tool
// result carries the refusal, or the 429 the charge produced.
func (s *Server) doorRefusal(w http.ResponseWriter, r *http.Request, e era, refusal *ahperror.Error) reply {
	return s.result(ahpErrorResult(s.gw.Refused(w.Header(), r, refusal)), e)
}

// result renders a tool result for the request's era.
func (s *Server) result(res callResult, e era) reply {
	out, err := json.Marshal(res)
	if err != nil {
		return errReply(codeInternalError, "internal error: "+err.Error())
	}
	if e.modern {
		out = s.modern(out)
	}
	return reply{result: out}
}

// Kinds of readable resources.
const (
	readNone = iota
	readContent
	readStatus
)

// readParams are the params of resources/read.
type readParams struct {
	URI  *string `json:"uri"`
	Meta struct {
		Auth json.RawMessage `json:"auth"`
	} `json:"_meta"`
}

// readResource reads a listed resource, or an async status URI: the
// content document from its local file or through the site (next), a
// status through the gateway's status path (which charges it as a direct
// poll).
func (s *Server) readResource(w http.ResponseWriter, r *http.Request, params json.RawMessage, e era, next gateway.Next, site *siteRead) reply {
	var p readParams
	if !isObject(params) || json.Unmarshal(params, &p) != nil || p.URI == nil {
		return errReply(codeInvalidParams, "invalid params: resources/read needs params.uri (a string)")
	}
	uri := *p.URI
	notFound := codeResourceNotFound
	if e.modern {
		notFound = codeInvalidParams // 2026-07-28 changed the code
	}
	target, query, kind := s.resolve(r, uri)
	if kind == readNone {
		return errReply(notFound, "resource not found: "+uri+" is not a resource of this server (see resources/list)")
	}
	cache := cacheHint{ttlMs: 0, scope: "private"}
	if kind == readContent && (s.content == nil || !s.content.HasContentFile()) {
		rec, derr := site.read(s, r, target, query, next)
		rec.CopyRateLimit(w.Header())
		return s.resourceResult(rec, derr, uri, e, notFound, cache)
	}
	rec := bridge.NewRecorder(s.maxResponse)
	defer rec.Release()
	var derr error
	if kind == readStatus {
		// A poll needs the credential the call had (the gateway's status
		// path requires one), taken from _meta.auth as tools/call takes it
		// (D.5); a header wins.
		var sent string
		if a := bytes.TrimSpace(p.Meta.Auth); len(a) > 0 && string(a) != "null" && json.Unmarshal(a, &sent) != nil {
			return s.pollRefusal(w, r, "params._meta.auth must be a string (a credential)")
		}
		cred, moved, err := s.credential(r.Header, sent)
		if err != nil {
			return s.pollRefusal(w, r, "the credential in params._meta.auth: "+err.Error())
		}
		poll := bridge.NewGetRequest(r, target, "", "application/json")
		if moved {
			delete(poll.Header, auth.HeaderAuthorization)
		}
		if cred != "" {
			auth.SetHeader(poll.Header, s.scheme, cred)
		}
		derr = s.gw.ServeHTTP(rec, poll, gateway.StatusRoute, next)
		if st := rec.Status(); st == http.StatusUnauthorized || st == http.StatusForbidden {
			// The gateway's refusal names only the header; say where an
			// MCP client can send the credential, or where it sent the
			// wrong one, as tools/call does.
			if b, _, ok := parseAHP(rec.Body()); ok {
				msg := ""
				switch {
				case auth.IsMissingPoll(b.Message):
					msg = s.missingPoll()
				case cred != "" && !moved && auth.IsWrongMessage(b.Message):
					msg = wrongSentPoll
				case moved && auth.IsWrongMessage(b.Message):
					msg = wrongMoved.Message
				}
				if msg != "" {
					rec.CopyRateLimit(w.Header()) // the refusal was charged
					// data: the AHP body, in the same words.
					data := bytes.TrimSpace(ahperror.New(st, b.Code, msg).AppendJSON(nil))
					return reply{err: &rpcError{code: codeInternalError, message: b.Code + ": " + msg, data: data}}
				}
			}
		}
	} else {
		s.content.ServeContentFile(rec, bridge.NewGetRequest(r, target, query, "*/*"))
		cache = cacheHint{ttlMs: contentTTL, scope: "public"}
	}
	if derr != nil && r.Context().Err() == nil {
		s.logger.Error("mcp: resources/read: the site failed", zap.String("path", target), zap.Error(derr))
	}
	rec.CopyRateLimit(w.Header())
	return s.resourceResult(rec, derr, uri, e, notFound, cache)
}

// siteRead is one request's read of the content document through the
// site. The static tier charged the request once, so the site is asked
// once, however many reads of the document a batch holds (up to
// maxBatch): the later ones answer from the first's recording.
type siteRead struct {
	rec *bridge.Recorder
	err error
}

func (sr *siteRead) read(s *Server, r *http.Request, target, query string, next gateway.Next) (*bridge.Recorder, error) {
	if sr.rec == nil {
		sr.rec = bridge.NewRecorder(s.maxResponse)
		sr.err = next.ServeHTTP(sr.rec, bridge.NewGetRequest(r, target, query, "*/*"))
		if sr.err != nil && r.Context().Err() == nil {
			s.logger.Error("mcp: resources/read: the site failed", zap.String("path", target), zap.Error(sr.err))
		}
	}
	return sr.rec, sr.err
}

// release gives the recording back once the request's answer is written.
func (sr *siteRead) release() {
	if sr.rec != nil {
		sr.rec.Release()
	}
}

// resolve maps a resource URI to the path to read on this site. Absolute
// URIs must name the host the client reached (the scheme may differ behind
// a TLS-terminating proxy); nothing else on the site is readable this way,
// so the MCP endpoint is no general proxy. A status URI must be exactly
// the gateway's status path (no spelling that only cleaning makes match).
func (s *Server) resolve(r *http.Request, uri string) (target, query string, kind int) {
	u, err := url.Parse(uri)
	if err != nil || u.Opaque != "" || u.User != nil {
		return "", "", readNone
	}
	if u.Scheme != "" || u.Host != "" {
		if (u.Scheme != "http" && u.Scheme != "https") || !s.reachedAs(r, u.Host) {
			return "", "", readNone
		}
	}
	switch {
	case s.contentPath != "" && u.Path == s.contentPath && u.RawQuery == s.contentQuery:
		return u.Path, u.RawQuery, readContent
	case s.contentURL != nil && u.IsAbs() && u.Path == s.contentURL.Path && u.RawQuery == s.contentURL.RawQuery &&
		s.reachedAs(r, s.contentURL.Host):
		return u.Path, u.RawQuery, readContent
	case s.statusPrefix != "" && strings.HasPrefix(u.Path, s.statusPrefix) && u.RawQuery == "" && u.Fragment == "":
		id := u.Path[len(s.statusPrefix):]
		if id == "" || strings.Contains(id, "/") || s.gw.Route(&url.URL{Path: u.Path, RawPath: u.RawPath}, nil) != gateway.StatusRoute {
			return "", "", readNone
		}
		return u.Path, "", readStatus
	}
	return "", "", readNone
}

// reachedAs reports whether host names the site as r reached it: its
// Host, or behind a trusted proxy the public host resources/list wrote
// into the URIs (X-Forwarded-Host), which a client reads back as listed.
func (s *Server) reachedAs(r *http.Request, host string) bool {
	return strings.EqualFold(host, r.Host) || s.trusted(r) && strings.EqualFold(host, httpx.PublicHost(r, true))
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
// one line of UTF-8 JSON (for structuredContent and the JSON text block);
// ok is false for anything but a JSON object with a string status.
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
	return b, validUTF8(buf.Bytes()), b.Status != ""
}

// validUTF8 replaces each byte of b that is not UTF-8 with U+FFFD, as
// encoding/json reads it (and as the answer's text blocks carry it). In
// JSON that json.Compact passed such bytes can only be inside strings;
// kept as they are, structuredContent would make the whole response
// invalid UTF-8, which an MCP client refuses at once (RFC 8259 §8.1).
func validUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			out = append(out, "\uFFFD"...)
		} else {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
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

// toolResult maps the recorded answer of an admitted call to a tools/call
// result:
//
//   - success: content[0].text is response.answer;
//   - clarification_needed and accepted become instructions for the
//     model (the question and options; the session_id and status URI);
//   - an AHP error from the concierge is a tool error, isError with
//     content[0].text "code: message";
//   - a JSON answer that is not an AHP body is a tool error named after
//     its status, the body passed on as text (the gateway has already
//     replaced non-JSON answers, an HTML 502 page, with AHP errors).
//
// Every AHP body also goes out whole as structuredContent and, for clients
// that read only content, as a JSON text block (MCP 2025-06-18 asks for
// both).
func (s *Server) toolResult(rec *bridge.Recorder, derr error, tool, base string) callResult {
	if !rec.Written() && derr != nil {
		return toolError(ahperror.Unavailable, "the site could not answer this call; try again later", nil)
	}
	if rec.Overflowed() {
		return toolError(ahperror.ConciergeError, "the concierge's answer exceeds "+strconv.Itoa(s.maxResponseOrDefault())+" bytes", nil)
	}
	status := rec.Status()
	b, compact, isAHP := parseAHP(rec.Body())
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
		return callResult{
			Content:           []textContent{text(code + ": " + msg), text(string(compact))},
			StructuredContent: compact,
			IsError:           true,
		}
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
	return res
}

// ahpErrorResult is a refused call as a tool result: isError, the code and
// message as the text, the AHP error body as structuredContent and as a
// JSON text block.
func ahpErrorResult(e *ahperror.Error) callResult {
	body := bytes.TrimSpace(e.AppendJSON(nil))
	return callResult{
		Content:           []textContent{text(e.Code + ": " + e.Message), text(string(body))},
		StructuredContent: body,
		IsError:           true,
	}
}

func (s *Server) maxResponseOrDefault() int {
	if s.maxResponse > 0 {
		return s.maxResponse
	}
	return bridge.DefaultMaxResponse
}

// toolError is a call this door answers for the site: the code and
// message as the text, then extra, and, as for every other tool error,
// the AHP error body as structuredContent and as a JSON text block (an
// agent reading structuredContent finds the code there too).
func toolError(code, msg string, extra []textContent) callResult {
	body := bytes.TrimSpace(ahperror.New(0, code, msg).AppendJSON(nil))
	content := append(append([]textContent{text(code + ": " + msg)}, extra...), text(string(body)))
	return callResult{Content: content, StructuredContent: body, IsError: true}
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
		sb.WriteString(" (resources/read, or GET it) until its status is success, failed or expired.")
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

// cacheHint is a 2026-07-28 read result's ttlMs and cacheScope.
type cacheHint struct {
	ttlMs int
	scope string
}

// resourceResult maps a recorded read. Failures are JSON-RPC errors (a
// read has no isError): notFound for a 404, internal error otherwise,
// "code: message" from an AHP body, which goes along as data.
func (s *Server) resourceResult(rec *bridge.Recorder, derr error, uri string, e era, notFound int, cache cacheHint) reply {
	if !rec.Written() && derr != nil {
		return errReply(codeInternalError, "internal error: the site could not answer this read")
	}
	if rec.Overflowed() {
		return errReply(codeInternalError, "internal error: the resource exceeds "+strconv.Itoa(s.maxResponseOrDefault())+" bytes")
	}
	status := rec.Status()
	if status < 200 || status >= 300 {
		b, compact, isAHP := parseAHP(rec.Body())
		if status == http.StatusNotFound {
			return reply{err: &rpcError{code: notFound, message: "resource not found: " + uri, data: compact}}
		}
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
	if e.modern {
		out = s.modern(cacheable(out, cache.ttlMs, cache.scope))
	}
	return reply{result: out}
}

func baseMIME(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// hasCursor reports a non-null "cursor" in a list request's params.
func hasCursor(params json.RawMessage) bool {
	if len(params) < len(`{"cursor":""}`) {
		return false
	}
	var p struct {
		Cursor json.RawMessage `json:"cursor"`
	}
	return json.Unmarshal(params, &p) == nil && len(p.Cursor) > 0 && string(p.Cursor) != "null"
}
