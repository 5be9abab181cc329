package mcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/discovery"
	"github.com/caddy-ahp/caddy-ahp/gateway"
	"github.com/caddy-ahp/caddy-ahp/integrations/internal/bridge"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

// ManifestVersion is the version to declare in the manifest's
// integrations.mcp: the one AHP Appendix D names. Clients may use any of
// the versions the server speaks.
const ManifestVersion = "2024-11-05"

// modernVersion is the stateless revision: every request carries its
// version (header and _meta), there is no initialize and no session.
const modernVersion = "2026-07-28"

// legacyVersions are the revisions with an initialize handshake, newest
// first. 2024-11-05 is the one AHP Appendix D names; nothing this
// stateless server does differs between them but batches (see
// batchesRemovedIn).
var legacyVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26", ManifestVersion}

// supportedVersions is every revision the endpoint serves, newest first:
// server/discover's supportedVersions and an unsupported version error's
// data.supported.
var supportedVersions = append([]string{modernVersion}, legacyVersions...)

// batchesRemovedIn is the first revision without JSON-RPC batches.
const batchesRemovedIn = "2025-06-18"

// Defaults of Options.
const (
	DefaultMaxRequestBytes = 64 << 10
	DefaultServerName      = "AHP site"
	// listTTL is how long (ttlMs) a 2026-07-28 client may keep the tool
	// and resource lists and the discover result: they change only with
	// a config reload. Five minutes, as the manifest's Cache-Control.
	listTTL = 5 * 60 * 1000
	// contentTTL is how long the content document read from a local file
	// may be kept.
	contentTTL = 60 * 1000
)

// Options configure a Server.
type Options struct {
	// Path is the MCP endpoint (e.g. "/mcp"). The caller routes requests
	// for it to ServeHTTP; New only checks that it does not shadow an AHP
	// endpoint.
	Path string
	// Gateway runs tool calls (gateway.Converse) and async status reads
	// (its status path). Required when the manifest has MODE2 or MODE3
	// capabilities.
	Gateway *gateway.Gateway
	// Limits charges the static tier for every request that is not a
	// capability call or a status read (nil: no limits).
	Limits *ratelimit.Policy
	// Content serves the MODE1 content document when it is a local file
	// (nil, or no file: the content is read through the site).
	Content *discovery.Handler
	// Origins are the browser origins allowed besides the endpoint's own
	// ("https://agent.example"; "*" allows any). Requests without Origin
	// (non-browser clients) always pass.
	Origins []string
	// Hosts are the site's own host names ("shop.example", an IP
	// literal; no port). Empty: an Origin naming the request's Host is
	// the endpoint's own, whatever the Host. Set: only on a request sent
	// to one of them (behind a trusted proxy, the host the client sent
	// it to: the proxy's X-Forwarded-Host). A site that answers every
	// Host (a catch-all site block) needs them: a DNS-rebinding page's
	// Origin always names the Host its browser sent.
	Hosts []string
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
	// TrustForwardedProto lets X-Forwarded-Proto choose the scheme and
	// X-Forwarded-Host the host of the absolute resource URIs and of the
	// Origin check (httpx.PublicHost). Set it only when every peer is a
	// trusted proxy.
	TrustForwardedProto bool
	// TrustedPeer, when set, reports whether a request came from a
	// trusted proxy (Caddy: the server's trusted_proxies), whose
	// X-Forwarded-Proto then chooses the scheme of the resource URIs and
	// X-Forwarded-Host the public host: theirs, and the one a same-origin
	// browser's Origin names.
	TrustedPeer func(*http.Request) bool
	// Logger receives failures of the site behind (never credentials);
	// nil is a no-op logger.
	Logger *zap.Logger
}

// Server is the MCP front door of one site. It is built once at load, holds
// no per-client state and is safe for concurrent use.
type Server struct {
	scheme      string
	gw          *gateway.Gateway
	limits      *ratelimit.Policy
	content     *discovery.Handler
	origins     originSet
	hosts       map[string]bool // Options.Hosts, lower-cased; nil: any
	maxRequest  int64
	maxResponse int
	trustProto  bool
	trustedPeer func(*http.Request) bool // Options.TrustedPeer
	logger      *zap.Logger

	tools     map[string]*bridge.Capability
	toolNames string // for unknown-tool messages

	// Pre-rendered results, legacy (initialize-era) and modern
	// (2026-07-28: resultType, cache hints, serverInfo in _meta).
	initialize      map[string][]byte // by protocol version
	toolsList       []byte
	resources       *bridge.Spliced // resources/list, base URL open
	templates       *bridge.Spliced // resources/templates/list
	discover        []byte
	toolsListModern []byte
	resourcesModern *bridge.Spliced
	templatesModern *bridge.Spliced
	modernTail      []byte // ,"resultType":"complete","_meta":{serverInfo}
	supportedJSON   []byte // supportedVersions as a JSON array

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
		scheme:      m.Authentication,
		gw:          opts.Gateway,
		limits:      opts.Limits,
		content:     opts.Content,
		maxRequest:  opts.MaxRequestBytes,
		maxResponse: opts.MaxResponseBytes,
		trustProto:  opts.TrustForwardedProto,
		trustedPeer: opts.TrustedPeer,
		logger:      opts.Logger,
		tools:       make(map[string]*bridge.Capability, len(caps)),
	}
	if s.origins, err = parseOrigins(opts.Origins); err != nil {
		return nil, err
	}
	if s.hosts, err = parseHosts(opts.Hosts); err != nil {
		return nil, err
	}
	if s.maxRequest <= 0 {
		s.maxRequest = DefaultMaxRequestBytes
	}
	if s.logger == nil {
		s.logger = zap.NewNop()
	}
	bridge.WarnReplaced(s.logger, "mcp", caps)
	if len(caps) > 0 && s.gw == nil {
		return nil, errors.New("mcp: the site's capabilities need the converse gateway (endpoints.converse on this site, such as /agent/converse): tool calls run through it")
	}
	if s.gw != nil {
		s.statusPrefix = strings.TrimSuffix(s.gw.ConversePath(), "/") + "/status/"
	}
	if err := s.setContent(m.ContentPath()); err != nil {
		return nil, err
	}
	if p := opts.Path; p != "" {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("mcp: path %q must start with /", p)
		}
		taken := ""
		switch p {
		case m.ConversePath():
			taken = "the converse endpoint"
		case s.contentPath:
			taken = "the content document"
		case manifest.WellKnownPath:
			taken = "the manifest"
		}
		if taken != "" {
			other := "/mcp"
			if p == other {
				other = "/agent/mcp"
			}
			return nil, fmt.Errorf("mcp: path %q is %s's already; give MCP another, such as %s", p, taken, other)
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
	discoverResult struct {
		SupportedVersions []string        `json:"supportedVersions"`
		Capabilities      json.RawMessage `json:"capabilities"`
		ServerInfo        serverInfo      `json:"serverInfo"`
		Instructions      string          `json:"instructions,omitempty"`
		TTLMs             int             `json:"ttlMs"`
		CacheScope        string          `json:"cacheScope"`
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
	// Appendix D.6; listChanged is false: the lists change only with a
	// config reload.
	capabilities := json.RawMessage(`{"tools":{},"resources":{}}`)
	instr := instructions(m, info.Name)
	s.initialize = make(map[string][]byte, len(legacyVersions))
	for _, v := range legacyVersions {
		b, err := json.Marshal(initializeResult{ProtocolVersion: v, Capabilities: capabilities, ServerInfo: info, Instructions: instr})
		if err != nil {
			return err
		}
		s.initialize[v] = b
	}

	// 2026-07-28: every result says what it is and who answered
	// (serverInfo in _meta, with the AHP additions); lists and reads say
	// how long they may be kept.
	infoJSON, err := json.Marshal(info)
	if err != nil {
		return err
	}
	s.modernTail = append([]byte(`,"resultType":"complete","_meta":{"io.modelcontextprotocol/serverInfo":`), infoJSON...)
	s.modernTail = append(s.modernTail, '}')
	if s.discover, err = json.Marshal(discoverResult{SupportedVersions: supportedVersions, Capabilities: capabilities,
		ServerInfo: info, Instructions: instr, TTLMs: listTTL, CacheScope: "public"}); err != nil {
		return err
	}
	s.discover = s.modern(s.discover)
	if s.supportedJSON, err = json.Marshal(supportedVersions); err != nil {
		return err
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
	if s.toolsList, err = json.Marshal(struct {
		Tools []toolDef `json:"tools"`
	}{tools}); err != nil {
		return err
	}
	s.toolsListModern = s.modern(cacheable(s.toolsList, listTTL, "public"))

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
	raw, err := json.Marshal(struct {
		Resources []resourceDef `json:"resources"`
	}{resources})
	if err != nil {
		return err
	}
	s.resources = bridge.Splice(raw, ph)
	s.resourcesModern = bridge.Splice(s.modern(cacheable(raw, listTTL, "public")), ph)
	templates := []templateDef{}
	if s.statusPrefix != "" && hasAsync(m, caps) {
		templates = append(templates, templateDef{
			URITemplate: ph + s.statusPrefix + "{session_id}",
			Name:        "async-status",
			Description: "The status of an asynchronous request (AHP §9): read it with the session_id of an \"accepted\" answer until its status is success, failed or expired.",
			MIMEType:    "application/json",
		})
	}
	if raw, err = json.Marshal(struct {
		ResourceTemplates []templateDef `json:"resourceTemplates"`
	}{templates}); err != nil {
		return err
	}
	s.templates = bridge.Splice(raw, ph)
	s.templatesModern = bridge.Splice(s.modern(cacheable(raw, listTTL, "public")), ph)
	return nil
}

// cacheable adds a 2026-07-28 CacheableResult's ttlMs and cacheScope to a
// result object.
func cacheable(res []byte, ttlMs int, scope string) []byte {
	out := make([]byte, 0, len(res)+48)
	out = append(out, res[:len(res)-1]...)
	out = append(out, `,"ttlMs":`...)
	out = strconv.AppendInt(out, int64(ttlMs), 10)
	out = append(out, `,"cacheScope":"`...)
	out = append(out, scope...)
	return append(out, `"}`...)
}

// modern turns a result object into a 2026-07-28 one: resultType and
// serverInfo in _meta.
func (s *Server) modern(res []byte) []byte {
	out := make([]byte, 0, len(res)+len(s.modernTail))
	out = append(out, res[:len(res)-1]...)
	out = append(out, s.modernTail...)
	return append(out, '}')
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

// baseURL is the origin of r for absolute resource URIs: X-Forwarded-Proto
// and X-Forwarded-Host choose the scheme and host when r's peer is trusted.
func (s *Server) baseURL(r *http.Request) string {
	return bridge.BaseURL(r, s.trusted(r))
}

// trusted reports whether r's peer is a trusted proxy (every peer is,
// with Options.TrustForwardedProto).
func (s *Server) trusted(r *http.Request) bool {
	return s.trustProto || s.trustedPeer != nil && s.trustedPeer(r)
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
			how = "an API key (X-AHP-Key header, Authorization: Bearer <key>, or params._meta.auth)"
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
