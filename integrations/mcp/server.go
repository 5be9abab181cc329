package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/integrations/internal/bridge"
	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// Dispatch runs an internal request through the whole AHP pipeline and the
// rest of the site's handler chain, exactly as if it had arrived from the
// client (same context and RemoteAddr, so the same client IP and rate-limit
// key). openapi.Dispatch is the same type.
type Dispatch = func(w http.ResponseWriter, r *http.Request) error

// ManifestVersion is the version to declare in the manifest's
// integrations.mcp: the one AHP Appendix D names. Clients may negotiate any
// of the versions the server speaks.
const ManifestVersion = "2024-11-05"

// Protocol versions this server speaks, newest first. 2024-11-05 is the one
// AHP Appendix D names; the later ones are the Streamable HTTP revisions
// today's clients use. Nothing this server does differs between them.
var protocolVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26", ManifestVersion}

// batchesRemovedIn is the first revision without JSON-RPC batches.
const batchesRemovedIn = "2025-06-18"

// Defaults of Options.
const (
	DefaultMaxRequestBytes = 64 << 10
	DefaultServerName      = "AHP site"
)

// Options configure a Server.
type Options struct {
	// Path is the MCP endpoint (e.g. "/mcp"). The caller routes requests
	// for it to ServeHTTP; New only checks that it does not shadow an AHP
	// endpoint.
	Path string
	// ServerName is serverInfo.name; default the manifest's name, else
	// DefaultServerName. ServerVersion is serverInfo.version; default the
	// AHP version (Appendix D.6).
	ServerName, ServerVersion string
	// MaxRequestBytes caps the MCP request body (413 beyond);
	// DefaultMaxRequestBytes when 0.
	MaxRequestBytes int64
	// MaxResponseBytes caps a recorded internal answer (a tool result, a
	// resource); bridge.DefaultMaxResponse (1 MiB) when 0.
	MaxResponseBytes int
	// TrustForwardedProto lets X-Forwarded-Proto choose the scheme of the
	// absolute resource URIs. Set it only when the peer is a trusted
	// proxy.
	TrustForwardedProto bool
	// Logger receives dispatch failures (never credentials); nil is a
	// no-op logger.
	Logger *zap.Logger
}

// Server is the MCP front door of one site. It is built once at load, holds
// no per-client state and is safe for concurrent use.
type Server struct {
	scheme       string
	conversePath string
	maxRequest   int64
	maxResponse  int
	trustProto   bool
	logger       *zap.Logger

	tools     map[string]*bridge.Capability
	toolNames string // for unknown-tool messages

	// Pre-rendered results.
	initialize map[string][]byte // by protocol version
	toolsList  []byte
	resources  *bridge.Spliced // resources/list, base URL open
	templates  *bridge.Spliced // resources/templates/list

	// MODE1 content: a local path (and query) or an absolute URL.
	contentPath, contentQuery string
	contentURL                *url.URL
	contentName, contentMIME  string
	// statusPrefix is the async poll path prefix (spec §9.1).
	statusPrefix string
}

// New builds the server for m: tools, resources and the initialize results
// are rendered here, once.
func New(m *manifest.Manifest, opts Options) (*Server, error) {
	if m == nil {
		return nil, errors.New("mcp: no manifest")
	}
	caps, err := bridge.Capabilities(m)
	if err != nil {
		return nil, fmt.Errorf("mcp: %w", err)
	}
	s := &Server{
		scheme:       m.Authentication,
		conversePath: m.ConversePath(),
		maxRequest:   opts.MaxRequestBytes,
		maxResponse:  opts.MaxResponseBytes,
		trustProto:   opts.TrustForwardedProto,
		logger:       opts.Logger,
		tools:        make(map[string]*bridge.Capability, len(caps)),
	}
	if s.maxRequest <= 0 {
		s.maxRequest = DefaultMaxRequestBytes
	}
	if s.logger == nil {
		s.logger = zap.NewNop()
	}
	if len(caps) > 0 && !strings.HasPrefix(s.conversePath, "/") {
		return nil, fmt.Errorf("mcp: endpoints.converse must be a path on this site (such as /agent/converse), not %q: tool calls run through the site's own converse pipeline", s.conversePath)
	}
	if s.conversePath != "" {
		s.statusPrefix = strings.TrimSuffix(s.conversePath, "/") + "/status/"
	}
	if err := s.setContent(m.ContentPath()); err != nil {
		return nil, err
	}
	if p := opts.Path; p != "" {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("mcp: path %q must start with /", p)
		}
		if p == s.conversePath || p == s.contentPath || p == manifest.WellKnownPath {
			return nil, fmt.Errorf("mcp: path %q is an AHP endpoint already; choose another, such as /mcp", p)
		}
	}
	names := make([]string, 0, len(caps))
	for _, c := range caps {
		s.tools[c.Name] = c
		names = append(names, c.Name)
	}
	s.toolNames = strings.Join(names, ", ")

	if err := s.render(m, opts, caps); err != nil {
		return nil, fmt.Errorf("mcp: %w", err)
	}
	return s, nil
}

func (s *Server) setContent(content string) error {
	if content == "" {
		return nil
	}
	u, err := url.Parse(content)
	if err != nil {
		return fmt.Errorf("mcp: endpoints.content %q is not a URL: %w", content, err)
	}
	switch {
	case u.IsAbs():
		if u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("mcp: endpoints.content %q: only http(s) URLs can be resources", content)
		}
		s.contentURL = u
	case strings.HasPrefix(u.Path, "/"):
		s.contentPath, s.contentQuery = u.Path, u.RawQuery
	default:
		return fmt.Errorf("mcp: endpoints.content %q must be a path starting with / or an absolute URL", content)
	}
	s.contentMIME = guessMIME(u.Path)
	s.contentName = path.Base(u.Path)
	if s.contentName == "/" || s.contentName == "." {
		s.contentName = "content"
	}
	return nil
}

// guessMIME names a content document's type for resources/list, before
// any read; resources/read reports what the site actually served. The
// table is fixed (not mime.TypeByExtension) so that the listing does not
// depend on the host's mime files.
func guessMIME(p string) string {
	switch strings.ToLower(path.Ext(p)) {
	case ".txt":
		return "text/plain"
	case ".md", ".markdown":
		return "text/markdown"
	case ".json":
		return "application/json"
	case ".html", ".htm":
		return "text/html"
	case ".xml":
		return "application/xml"
	}
	return ""
}

// Wire shapes of what New renders.
type (
	serverInfo struct {
		Name     string `json:"name"`
		Version  string `json:"version"`
		AHP      string `json:"ahp"`
		Manifest string `json:"manifest"`
	}
	initializeResult struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ServerInfo      serverInfo      `json:"serverInfo"`
		Instructions    string          `json:"instructions,omitempty"`
	}
	toolDef struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		InputSchema json.RawMessage `json:"inputSchema"`
		Annotations toolAnnotations `json:"annotations"`
	}
	toolAnnotations struct {
		ReadOnlyHint bool `json:"readOnlyHint"`
	}
	resourceDef struct {
		URI         string `json:"uri"`
		Name        string `json:"name"`
		Description string `json:"description,omitempty"`
		MIMEType    string `json:"mimeType,omitempty"`
	}
	templateDef struct {
		URITemplate string `json:"uriTemplate"`
		Name        string `json:"name"`
		Description string `json:"description,omitempty"`
		MIMEType    string `json:"mimeType,omitempty"`
	}
)

func (s *Server) render(m *manifest.Manifest, opts Options, caps []*bridge.Capability) error {
	info := serverInfo{Name: opts.ServerName, Version: opts.ServerVersion, AHP: manifest.Version, Manifest: manifest.WellKnownPath}
	if info.Name == "" {
		info.Name = m.Name
	}
	if info.Name == "" {
		info.Name = DefaultServerName
	}
	if info.Version == "" {
		info.Version = manifest.Version
	}
	s.initialize = make(map[string][]byte, len(protocolVersions))
	for _, v := range protocolVersions {
		b, err := json.Marshal(initializeResult{
			ProtocolVersion: v,
			// Appendix D.6; listChanged is false: the lists change
			// only with a config reload, which ends the connection.
			Capabilities: json.RawMessage(`{"tools":{},"resources":{}}`),
			ServerInfo:   info,
			Instructions: instructions(m, info.Name),
		})
		if err != nil {
			return err
		}
		s.initialize[v] = b
	}

	tools := make([]toolDef, 0, len(caps))
	for _, c := range caps {
		tools = append(tools, toolDef{
			Name:        c.Name,
			Description: toolDescription(c, s.scheme),
			InputSchema: c.Schema,
			Annotations: toolAnnotations{ReadOnlyHint: c.ReadOnly},
		})
	}
	var err error
	if s.toolsList, err = json.Marshal(struct {
		Tools []toolDef `json:"tools"`
	}{tools}); err != nil {
		return err
	}

	// Resource URIs are absolute URLs on the host the client reached,
	// spliced per request: the same site answers under several names.
	ph := bridge.Placeholder()
	resources := []resourceDef{}
	if uri := s.contentURI(ph); uri != "" {
		resources = append(resources, resourceDef{
			URI:         uri,
			Name:        s.contentName,
			Description: "The agent-readable content of " + info.Name + " (AHP MODE1).",
			MIMEType:    s.contentMIME,
		})
	}
	if s.resources, err = spliceJSON(struct {
		Resources []resourceDef `json:"resources"`
	}{resources}, ph); err != nil {
		return err
	}
	templates := []templateDef{}
	if s.statusPrefix != "" && hasAsync(m, caps) {
		templates = append(templates, templateDef{
			URITemplate: ph + s.statusPrefix + "{session_id}",
			Name:        "async-status",
			Description: "The status of an asynchronous request (AHP §9): read it with the session_id of an \"accepted\" answer until its status is success or failed.",
			MIMEType:    "application/json",
		})
	}
	s.templates, err = spliceJSON(struct {
		ResourceTemplates []templateDef `json:"resourceTemplates"`
	}{templates}, ph)
	return err
}

func hasAsync(m *manifest.Manifest, caps []*bridge.Capability) bool {
	if m.Async != nil && m.Async.Supported {
		return true
	}
	for _, c := range caps {
		if c.Async {
			return true
		}
	}
	return false
}

// spliceJSON marshals v and cuts it where the placeholder stands.
func spliceJSON(v any, ph string) (*bridge.Spliced, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return bridge.Splice(b, ph), nil
}

// contentURI is the resource URI of the content document with base as
// the origin, "" when the site has none.
func (s *Server) contentURI(base string) string {
	switch {
	case s.contentURL != nil:
		return s.contentURL.String()
	case s.contentPath != "":
		u := base + s.contentPath
		if s.contentQuery != "" {
			u += "?" + s.contentQuery
		}
		return u
	}
	return ""
}

func instructions(m *manifest.Manifest, name string) string {
	var b strings.Builder
	b.WriteString(name)
	if m.Description != "" {
		b.WriteString(": ")
		b.WriteString(m.Description)
	}
	b.WriteString("\n\nThis MCP server is the front door of an Agent Handshake Protocol (AHP) site: each tool is one capability of the site's concierge. " +
		"Ask in natural language in `query`. To continue a conversation, pass the `session_id` of an earlier answer; " +
		"to answer a clarification question, call the tool again with that session_id and your answer in `clarification`. " +
		"The full AHP manifest is at " + manifest.WellKnownPath + ".")
	return b.String()
}

// toolDescription is the manifest's description, with notes an agent needs
// before calling: credentials, asynchronous answers.
func toolDescription(c *bridge.Capability, scheme string) string {
	var notes []string
	if c.NeedsAuth {
		how := "a bearer token (Authorization header, or params._meta.auth)"
		if scheme == manifest.AuthAPIKey {
			how = "an API key (X-AHP-Key header, or params._meta.auth)"
		}
		notes = append(notes, "Requires "+how+".")
	}
	if c.Async {
		notes = append(notes, "May answer asynchronously: an accepted answer gives a session_id and a status URI to read (resources/read) until the result is ready.")
	}
	if len(notes) == 0 {
		return c.Description
	}
	return strings.TrimSpace(bridge.Sentence(c.Description) + " " + strings.Join(notes, " "))
}

// Shared header values, never modified in place.
var (
	allowPost      = []string{"POST"}
	jsonContent    = []string{"application/json"}
	sseContent     = []string{"text/event-stream"}
	noStore        = []string{"no-store"}
	nosniffContent = []string{"nosniff"}
)

// Pools for request bodies and rendered responses: MCP messages are small
// and a busy agent sends many.
var (
	bufPool   = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	bytesPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}
)

func getBuf() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

func putBuf(b *bytes.Buffer) {
	if b.Cap() > 256<<10 {
		return
	}
	b.Reset()
	bufPool.Put(b)
}

// putBytes returns the slice grown from *p to the pool.
func putBytes(p *[]byte, grown []byte) {
	if cap(grown) > 256<<10 {
		return
	}
	*p = grown[:0]
	bytesPool.Put(p)
}

// ServeHTTP answers one HTTP request to the MCP endpoint. Tool calls and
// resource reads run through dispatch. It always writes the response itself
// and returns nil; dispatch failures become tool errors and are logged.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request, dispatch Dispatch) error {
	if r.Method != http.MethodPost {
		// No server-to-client SSE stream to GET, and no session to
		// DELETE (the server is stateless): 405 tells clients so.
		w.Header()["Allow"] = allowPost
		s.writeHTTPError(w, http.StatusMethodNotAllowed, &rpcError{code: codeInvalidRequest,
			message: "method not allowed: this MCP endpoint takes JSON-RPC over POST (it offers no SSE stream and keeps no sessions)"})
		return nil
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		s.writeHTTPError(w, http.StatusUnsupportedMediaType, &rpcError{code: codeInvalidRequest,
			message: "invalid request: Content-Type must be application/json"})
		return nil
	}

	in := getBuf()
	defer putBuf(in)
	tooLarge, err := bridge.ReadBody(in, r.Body, s.maxRequest)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			tooLarge = true
		} else {
			return nil // the client went away mid-body
		}
	}
	if tooLarge {
		s.writeHTTPError(w, http.StatusRequestEntityTooLarge, &rpcError{code: codeInvalidRequest,
			message: "invalid request: the body exceeds " + strconv.FormatInt(s.maxRequest, 10) + " bytes"})
		return nil
	}

	msgs, batch, rerr := decodeBody(in.Bytes())
	if rerr != nil {
		s.writeHTTPError(w, http.StatusBadRequest, rerr)
		return nil
	}
	version := r.Header.Get("Mcp-Protocol-Version")
	if version != "" && !supported(version) && !(len(msgs) == 1 && msgs[0].method == "initialize") {
		// 2025-06-18 §Protocol Version Header. initialize is exempt:
		// its body negotiates the version.
		s.writeHTTPError(w, http.StatusBadRequest, &rpcError{code: codeInvalidRequest,
			message: "invalid request: unsupported MCP-Protocol-Version " + strconv.Quote(version) + "; supported: " + strings.Join(protocolVersions, ", ")})
		return nil
	}
	if batch && version >= batchesRemovedIn {
		s.writeHTTPError(w, http.StatusBadRequest, &rpcError{code: codeInvalidRequest,
			message: "invalid request: MCP " + version + " has no JSON-RPC batches; send one message per request"})
		return nil
	}

	obp := bytesPool.Get().(*[]byte)
	ob := *obp
	defer func() { putBytes(obp, ob) }()
	status := http.StatusOK
	replies := 0
	var challenge string
	// spans locate each response in ob, for SSE framing.
	var spans [][2]int
	for i := range msgs {
		m := &msgs[i]
		var rep reply
		switch {
		case m.err != nil:
			rep.err = m.err
		case m.response:
			continue
		case m.id == nil:
			continue // a notification: nothing to answer
		default:
			rep = s.handle(w, r, m, dispatch)
		}
		if batch {
			if replies == 0 {
				ob = append(ob, '[')
			} else {
				ob = append(ob, ',')
			}
		} else if rep.status != 0 {
			// Auth failures keep their HTTP meaning (see the package
			// comment); in a batch they stay JSON-RPC errors.
			status, challenge = rep.status, rep.challenge
		}
		start := len(ob)
		if rep.err != nil {
			ob = appendError(ob, m.id, rep.err)
		} else {
			ob = appendResult(ob, m.id, rep.result)
		}
		spans = append(spans, [2]int{start, len(ob)})
		replies++
	}
	if replies == 0 {
		// Only notifications and responses: 202 without a body
		// (Streamable HTTP).
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	if batch {
		ob = append(ob, ']')
	}
	if challenge != "" {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	s.write(w, r, status, ob, spans)
	return nil
}

func supported(v string) bool {
	for _, p := range protocolVersions {
		if v == p {
			return true
		}
	}
	return false
}

// write sends JSON-RPC output: application/json, or one SSE event per
// response (spans locate them in body) for a client that accepts only
// text/event-stream.
func (s *Server) write(w http.ResponseWriter, r *http.Request, status int, body []byte, spans [][2]int) {
	h := w.Header()
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = nosniffContent
	if !sseOnly(r.Header["Accept"]) {
		h["Content-Type"] = jsonContent
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return
	}
	h["Content-Type"] = sseContent
	w.WriteHeader(status)
	for _, sp := range spans {
		// encoding/json output has no raw newlines: one data line.
		_, _ = w.Write([]byte("event: message\ndata: "))
		_, _ = w.Write(body[sp[0]:sp[1]])
		_, _ = w.Write([]byte("\n\n"))
	}
}

// sseOnly reports an Accept that lists text/event-stream and no media
// range covering application/json (q=0 excludes a range).
func sseOnly(accept []string) bool {
	sse, js := false, false
	for _, v := range accept {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(part)
			if err != nil {
				continue
			}
			if q, err := strconv.ParseFloat(params["q"], 64); err == nil && q <= 0 {
				continue
			}
			switch mt {
			case "text/event-stream":
				sse = true
			case "application/json", "application/*", "*/*":
				js = true
			}
		}
	}
	return sse && !js
}

// writeHTTPError answers a request refused as a whole: an HTTP error status
// with a JSON-RPC error (id null) as the body, which SDK clients surface.
func (s *Server) writeHTTPError(w http.ResponseWriter, status int, e *rpcError) {
	body := appendError(nil, nil, e)
	h := w.Header()
	h["Content-Type"] = jsonContent
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = nosniffContent
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
