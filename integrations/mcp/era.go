package mcp

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddy-ahp/caddy-ahp/internal/jsonstr"
)

// era is how one HTTP request is served: the stateless 2026-07-28 revision
// (modern) or one of the initialize-era revisions (legacy), decided per
// request from the MCP-Protocol-Version header and the body's _meta.
type era struct {
	modern bool
	// version is the header's legacy version; "" when the header is
	// absent (a client older than 2025-06-18, or the AHP suite's plain
	// client).
	version string
}

// transportError refuses a whole HTTP request: its status and JSON-RPC
// error (id is the request's when it could be read).
type transportError struct {
	status int
	id     json.RawMessage
	err    *rpcError
}

// Names of the request metadata (2026-07-28, basic/index and
// transports/streamable-http).
const (
	metaProtocolVersion    = "io.modelcontextprotocol/protocolVersion"
	metaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
	headerProtocolVersion  = "Mcp-Protocol-Version"
	headerMethod           = "Mcp-Method"
	headerName             = "Mcp-Name"
	base64Prefix           = "=?base64?"
	base64Suffix           = "?="
)

func isLegacy(v string) bool {
	for _, l := range legacyVersions {
		if v == l {
			return true
		}
	}
	return false
}

// requestMeta is what 2026-07-28 reads from a request's params: the name
// the Mcp-Name header mirrors and the per-request _meta. Member names of
// _meta are matched exactly (a map).
type requestMeta struct {
	Name *string                    `json:"name"`
	URI  *string                    `json:"uri"`
	Meta map[string]json.RawMessage `json:"_meta"`
}

func readMeta(params json.RawMessage) (requestMeta, bool) {
	var rm requestMeta
	if len(params) == 0 {
		return rm, true
	}
	if params[0] != '{' || json.Unmarshal(params, &rm) != nil {
		return rm, false
	}
	return rm, true
}

// readMeta is readMeta(m.params), decoded once per message.
func (m *message) readMeta() (requestMeta, bool) {
	if !m.metaRead {
		m.meta, m.metaOK = readMeta(m.params)
		m.metaRead = true
	}
	return m.meta, m.metaOK
}

// metaVersion is the _meta protocol version of m's params, "" when absent
// or not a string.
func (m *message) metaVersion() string {
	if len(m.params) == 0 || m.params[0] != '{' {
		return ""
	}
	rm, _ := m.readMeta()
	var v string
	if raw, ok := rm.Meta[metaProtocolVersion]; ok {
		_ = json.Unmarshal(raw, &v)
	}
	return v
}

// decideEra applies the transport's version rules to a decoded request.
// The header names the revision; a body whose _meta names one must agree
// with it. A request without the header is initialize-era (2025-06-18 §
// Protocol Version Header: clients before it sent none) unless its body
// is a 2026-07-28 one, which needs the header. An unknown version gets
// UnsupportedProtocolVersion with the versions served, so a 2026 client
// can pick one; initialize is exempt, its body negotiates.
func (s *Server) decideEra(h http.Header, msgs []message, batch bool) (era, *transportError) {
	hv := strings.TrimSpace(h.Get(headerProtocolVersion))
	var single *message
	var id json.RawMessage
	if !batch && len(msgs) == 1 {
		single = &msgs[0]
		id = single.id
	}
	mv := ""
	if single != nil && single.err == nil {
		mv = single.metaVersion()
	}
	switch {
	case hv == "":
		if mv != "" {
			return era{}, &transportError{http.StatusBadRequest, id, &rpcError{code: codeHeaderMismatch,
				message: "header mismatch: the MCP-Protocol-Version header is required; the request's _meta names " + strconv.Quote(mv)}}
		}
		return era{}, nil
	case hv == modernVersion:
		if batch {
			return era{}, &transportError{http.StatusBadRequest, nil, invalid("MCP " + modernVersion + " has no JSON-RPC batches; send one message per request")}
		}
		return era{modern: true}, nil
	case isLegacy(hv):
		if mv != "" && mv != hv {
			return era{}, &transportError{http.StatusBadRequest, id, &rpcError{code: codeHeaderMismatch,
				message: "header mismatch: MCP-Protocol-Version " + strconv.Quote(hv) + " does not match the _meta protocol version " + strconv.Quote(mv)}}
		}
		if batch && hv >= batchesRemovedIn {
			return era{}, &transportError{http.StatusBadRequest, nil, invalid("MCP " + hv + " has no JSON-RPC batches; send one message per request")}
		}
		return era{version: hv}, nil
	}
	if single != nil && single.method == "initialize" {
		return era{}, nil
	}
	data := append([]byte(`{"supported":`), s.supportedJSON...)
	data = append(data, `,"requested":`...)
	data = append(jsonstr.AppendString(data, hv), '}')
	return era{}, &transportError{http.StatusBadRequest, id, &rpcError{code: codeUnsupportedVersion,
		message: "unsupported protocol version " + strconv.Quote(hv) + "; supported: " + strings.Join(supportedVersions, ", "), data: data}}
}

// checkModern validates a 2026-07-28 request against its headers
// (transports/streamable-http § Server Validation) and its required _meta
// (basic/index § _meta). Notifications and responses carry no headers this
// revision defines.
func checkModern(h http.Header, m *message) *transportError {
	if m.err != nil || m.response || m.id == nil {
		return nil
	}
	mismatch := func(msg string) *transportError {
		return &transportError{http.StatusBadRequest, m.id, &rpcError{code: codeHeaderMismatch, message: "header mismatch: " + msg}}
	}
	method, ok := headerValue(h, headerMethod, false)
	switch {
	case !ok:
		return mismatch("the Mcp-Method header holds characters a header value may not")
	case method == "":
		return mismatch("the Mcp-Method header is required")
	case method != m.method:
		return mismatch("Mcp-Method " + strconv.Quote(method) + " does not match the body's method " + strconv.Quote(m.method))
	}
	rm, ok := m.readMeta()
	if !ok {
		return &transportError{http.StatusBadRequest, m.id, &rpcError{code: codeInvalidParams, message: "invalid params: params must be an object"}}
	}
	if bodyName, named := nameOf(m.method, rm); named {
		name, ok := headerValue(h, headerName, true)
		switch {
		case !ok:
			return mismatch("the Mcp-Name header is not a valid value (visible ASCII, or =?base64?...?=)")
		case name == "":
			return mismatch("the Mcp-Name header is required for " + m.method)
		case bodyName == nil:
			return mismatch("Mcp-Name is set but the body names nothing")
		case name != *bodyName:
			return mismatch("Mcp-Name " + strconv.Quote(name) + " does not match the body's " + strconv.Quote(*bodyName))
		}
	}
	var v string
	if raw, ok := rm.Meta[metaProtocolVersion]; !ok || json.Unmarshal(raw, &v) != nil || v == "" {
		return &transportError{http.StatusBadRequest, m.id, &rpcError{code: codeInvalidParams,
			message: "invalid params: params._meta[\"" + metaProtocolVersion + "\"] (a string) is required in MCP " + modernVersion}}
	}
	if v != modernVersion {
		return mismatch("MCP-Protocol-Version " + strconv.Quote(modernVersion) + " does not match the _meta protocol version " + strconv.Quote(v))
	}
	if raw, ok := rm.Meta[metaClientCapabilities]; !ok || len(raw) == 0 || raw[0] != '{' {
		return &transportError{http.StatusBadRequest, m.id, &rpcError{code: codeInvalidParams,
			message: "invalid params: params._meta[\"" + metaClientCapabilities + "\"] (an object) is required in MCP " + modernVersion}}
	}
	return nil
}

// nameOf is the body value Mcp-Name mirrors, for the methods that have
// one.
func nameOf(method string, rm requestMeta) (*string, bool) {
	switch method {
	case "tools/call", "prompts/get":
		return rm.Name, true
	case "resources/read":
		return rm.URI, true
	}
	return nil, false
}

// headerValue reads a request metadata header. Values are visible ASCII,
// space and tab (RFC 9110 field values); with sentinel set, a value in the
// =?base64?...?= form is decoded (transports § Value Encoding). ok is false
// for a value with other bytes or a sentinel that does not decode.
func headerValue(h http.Header, name string, sentinel bool) (string, bool) {
	v := h.Get(name)
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c > 0x7e {
			return "", false
		}
	}
	if !sentinel {
		return v, true
	}
	return decodeSentinel(v)
}

// decodeSentinel decodes the Base64 sentinel form; other values are
// returned as they are.
func decodeSentinel(v string) (string, bool) {
	enc, ok := strings.CutPrefix(v, base64Prefix)
	if !ok {
		return v, true
	}
	enc, ok = strings.CutSuffix(enc, base64Suffix)
	if !ok {
		return v, true
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", false
	}
	return string(b), true
}
