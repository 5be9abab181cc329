// Package bridge is what the MCP and OpenAPI front doors share: each MODE2
// and MODE3 capability as a callable operation (its arguments schema,
// their validation, the AHP converse body they become), the internal
// request handed to the gateway's typed entry point (gateway.Converse), and
// a bounded recorder for the answer.
//
// Arguments objects (an MCP tools/call's arguments, an OpenAPI POST body)
// carry query, session_id and clarification, which map one to one onto the
// converse request (spec §6.1, §6.3), plus the capability's own
// input_schema properties. The request schema admits no other top-level
// field and its context object is closed, so those structured arguments
// travel inside query: after the agent's text, a blank line, then
//
//	Arguments: {"sku":"AHP-IMPL-001","qty":2}
//
// one line of compact JSON with sorted keys. The concierge that declared the
// input_schema parses that last line; an LLM concierge reads it as it is.
// Together they must fit the schema's 4096-character query limit.
package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/internal/jsonstr"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/schema"
)

// Argument names the front doors fill from the arguments object itself:
// the AHP request fields (spec §6.1, §6.3), and auth, the Appendix D.4
// credential field: taken out as a credential wherever it appears, so that
// a client following D.4 literally never has its token forwarded as text.
const (
	ArgQuery         = "query"
	ArgSessionID     = "session_id"
	ArgClarification = "clarification"
	ArgAuth          = "auth"
)

// Limits of the AHP 0.1 request schema.
const (
	maxQuery         = 4096
	maxSessionID     = 128
	maxClarification = 1024
)

// ArgumentsSeparator introduces the structured arguments inside query.
const ArgumentsSeparator = "\n\nArguments: "

// Capability is one MODE2 or MODE3 capability as a front door presents it.
// It is built once at load and read-only afterwards.
type Capability struct {
	Name        string
	Description string
	Mode        string
	// NeedsAuth: the site uses bearer or api_key and the capability
	// requires credentials (action and async capabilities, spec §5.3, or
	// auth_required in the manifest).
	NeedsAuth bool
	// Async capabilities may answer status "accepted" (spec §9).
	Async bool
	// ReadOnly is true for MODE2 and MODE3 query capabilities: no side
	// effects, so MCP clients need not ask before calling.
	ReadOnly bool
	// Structured reports whether the manifest gives an input_schema.
	Structured bool
	// Replaced names the input_schema's properties that are this door's
	// own arguments (query, session_id, clarification, auth): the
	// arguments keep their own definitions, so the door warns at load.
	Replaced []string

	// Schema is the JSON Schema (2020-12, the dialect of MCP tool schemas
	// and OpenAPI 3.1) of the arguments object, rendered: query,
	// session_id and clarification first, then the input_schema's
	// properties in their order, its required list and its other keywords.
	Schema json.RawMessage

	validator *jsonschema.Schema
	// The converse body around query and the optional fields.
	bodyHead []byte // {"ahp":"0.1","capability":"name","query":
	bodyTail []byte // ,"context":{...}}  or  }
}

// Capabilities returns the manifest's MODE2 and MODE3 capabilities, in
// manifest order. A capability whose input_schema cannot serve as the
// schema of an arguments object is an error naming it.
func Capabilities(m *manifest.Manifest) ([]*Capability, error) {
	authScheme := m.Authentication == manifest.AuthBearer || m.Authentication == manifest.AuthAPIKey
	var out []*Capability
	for i := range m.Capabilities {
		mc := &m.Capabilities[i]
		if mc.Mode != manifest.Mode2 && mc.Mode != manifest.Mode3 {
			continue
		}
		c := &Capability{
			Name:        mc.Name,
			Description: mc.Description,
			Mode:        mc.Mode,
			NeedsAuth:   authScheme && (mc.NeedsAuth() || mc.AuthRequired),
			Async:       mc.ActionType == manifest.ActionAsync,
			ReadOnly:    mc.Mode == manifest.Mode2 || mc.ActionType == "" || mc.ActionType == manifest.ActionQuery,
			Structured:  len(mc.InputSchema) > 0,
		}
		var err error
		if c.Schema, err = argumentsSchema(mc.InputSchema); err != nil {
			return nil, fmt.Errorf("capability %q: input_schema: %w", mc.Name, err)
		}
		c.Replaced = replacedArguments(mc.InputSchema)
		if c.validator, err = compile(c.Schema); err != nil {
			return nil, fmt.Errorf("capability %q: input_schema: %w", mc.Name, err)
		}
		c.bodyHead = fmt.Appendf(nil, `{"ahp":%s,"capability":%s,"query":`, jsonstr.AppendString(nil, manifest.Version), jsonstr.AppendString(nil, mc.Name))
		c.bodyTail = bodyTail(mc.ResponseTypes)
		out = append(out, c)
	}
	return out, nil
}

// bodyTail closes the converse body. The agent behind a front door can
// take any content type the capability offers (MCP and OpenAPI carry JSON
// payloads as they are), so context.accept_types lists them all, in the
// manifest's preference order: the concierge picks its first choice
// instead of falling back to text/answer (spec §6.6).
func bodyTail(types []string) []byte {
	if len(types) == 0 {
		return []byte("}")
	}
	b := []byte(`,"context":{"accept_types":[`)
	for i, t := range types {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonstr.AppendString(b, t)
	}
	return append(b, "]}}"...)
}

// The AHP fields every arguments object accepts. query's description is
// the Appendix D.3 wording made generic.
var (
	querySchema = json.RawMessage(`{"type":"string","minLength":1,"maxLength":4096,` +
		`"description":"Your question or request for this capability, in natural language."}`)
	sessionSchema = json.RawMessage(`{"type":"string","maxLength":128,` +
		`"description":"Optional: continue an existing conversation session (the session_id of an earlier answer)."}`)
	clarificationSchema = json.RawMessage(`{"type":"string","maxLength":1024,` +
		`"description":"Optional: your answer to a clarification question, sent with the session_id it came with."}`)
)

// argumentsSchema merges the AHP fields with a capability's input_schema.
// The AHP fields win over input_schema properties of the same name: they
// are what the converse request carries. Without an input_schema the object
// is closed, since nothing else could reach the concierge.
func argumentsSchema(input json.RawMessage) (json.RawMessage, error) {
	var top map[string]json.RawMessage
	var props []member
	var required []string
	if bytes.Contains(input, []byte(`"x-mcp-header"`)) {
		// MCP 2026-07-28 servers must validate every Mcp-Param header a
		// tool declares; arguments reach the concierge in the body alone,
		// so this front door declares none.
		return nil, errors.New(`x-mcp-header is not supported: arguments travel in the request body; remove the annotation`)
	}
	if len(input) > 0 {
		if err := json.Unmarshal(input, &top); err != nil {
			return nil, errors.New("must be a JSON object")
		}
		if t, ok := top["type"]; ok && !bytes.Equal(bytes.TrimSpace(t), []byte(`"object"`)) {
			return nil, errors.New(`must describe an object ("type": "object"): its properties become arguments next to query`)
		}
		if p, ok := top["properties"]; ok {
			var err error
			if props, err = orderedMembers(p); err != nil {
				return nil, fmt.Errorf("properties: %w", err)
			}
		}
		if r, ok := top["required"]; ok {
			if err := json.Unmarshal(r, &required); err != nil {
				return nil, errors.New("required must be an array of strings")
			}
		}
		// A new root: its own $id or dialect would change how the
		// merged schema resolves and is read.
		for _, k := range []string{"type", "properties", "required", "$schema", "$id"} {
			delete(top, k)
		}
	}

	b := []byte(`{"type":"object","properties":{"query":`)
	b = append(b, querySchema...)
	b = append(b, `,"session_id":`...)
	b = append(b, sessionSchema...)
	b = append(b, `,"clarification":`...)
	b = append(b, clarificationSchema...)
	for _, p := range props {
		if isReserved(p.key) {
			continue
		}
		b = append(b, ',')
		b = jsonstr.AppendString(b, p.key)
		b = append(b, ':')
		b = append(b, p.value...)
	}
	b = append(b, `},"required":["query"`...)
	for i, r := range required {
		if r == ArgQuery || slices.Contains(required[:i], r) {
			continue
		}
		b = append(b, ',')
		b = jsonstr.AppendString(b, r)
	}
	b = append(b, ']')
	if len(input) == 0 {
		b = append(b, `,"additionalProperties":false`...)
	}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = append(b, ',')
		b = jsonstr.AppendString(b, k)
		b = append(b, ':')
		b = append(b, top[k]...)
	}
	b = append(b, '}')
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Sentence ends s with a period, so that notes can follow a manifest
// description.
func Sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasSuffix(s, ".") || strings.HasSuffix(s, "!") || strings.HasSuffix(s, "?") {
		return s
	}
	return s + "."
}

// WarnReplaced warns, once per capability at load (so at `caddy
// validate`), of input_schema properties the door's own arguments replace:
// an operator who declared "query" with other rules would otherwise see
// them ignored without a word.
func WarnReplaced(logger *zap.Logger, door string, caps []*Capability) {
	for _, c := range caps {
		if len(c.Replaced) > 0 {
			logger.Warn("ahp "+door+": the capability's input_schema declares properties that are this door's own arguments; their own definitions are used, and the schema's are ignored: rename the properties",
				zap.String("capability", c.Name), zap.Strings("properties", c.Replaced))
		}
	}
}

// replacedArguments returns the properties of a valid input_schema that
// are the doors' own arguments (see argumentsSchema, which left them out).
func replacedArguments(input json.RawMessage) []string {
	var top struct {
		Properties json.RawMessage `json:"properties"`
	}
	if len(input) == 0 || json.Unmarshal(input, &top) != nil || len(top.Properties) == 0 {
		return nil
	}
	props, err := orderedMembers(top.Properties)
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range props {
		if isReserved(p.key) {
			out = append(out, p.key)
		}
	}
	return out
}

func isReserved(name string) bool {
	return name == ArgQuery || name == ArgSessionID || name == ArgClarification || name == ArgAuth
}

type member struct {
	key   string
	value json.RawMessage
}

// orderedMembers returns an object's members in document order (a map
// would sort them): a tool's parameters read best in the order the
// operator wrote them.
func orderedMembers(raw json.RawMessage) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("must be an object")
	}
	var out []member
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		key := t.(string)
		if i := slices.IndexFunc(out, func(m member) bool { return m.key == key }); i >= 0 {
			out[i].value = v
			continue
		}
		out = append(out, member{key, v})
	}
	return out, nil
}

// compile builds the validator for an arguments schema. References
// outside the schema are not fetched: validation must not depend on the
// network or the file system at load. format is asserted (email, date,
// uri …; unknown formats pass): 2020-12 makes it an annotation by
// default, but an operator who wrote "format": "email" expects a call
// with no address refused at the door, for the model to correct, rather
// than handed to the concierge.
func compile(doc json.RawMessage) (*jsonschema.Schema, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(jsonschema.SchemeURLLoader{})
	const loc = "urn:caddy-ahp:arguments"
	if err := c.AddResource(loc, v); err != nil {
		return nil, err
	}
	s, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("not a usable JSON Schema (references must stay inside it): %w", err)
	}
	return s, nil
}

// Call is a validated arguments object, ready to become a converse body.
type Call struct {
	// Query is the agent's query, with the structured arguments appended
	// (see the package comment).
	Query         string
	SessionID     string
	Clarification string
	// Auth is the arguments' auth member, a credential for the
	// internal request's header (see Credential); never in the body.
	Auth string
}

// ArgError is an arguments object the capability refuses.
type ArgError struct {
	// Field is the offending argument's path ("" for the whole object).
	Field   string
	Message string
	// Missing is set when query is absent (AHP missing_field).
	Missing bool
}

func (e *ArgError) Error() string { return e.Message }

// ParseArguments validates an arguments object (raw JSON; empty or null
// means {}) against the capability's schema and turns it into a Call.
func (c *Capability) ParseArguments(raw []byte) (Call, *ArgError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		raw = []byte("{}")
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return Call{}, &ArgError{Message: "the arguments are not valid JSON"}
	}
	obj, ok := inst.(map[string]any)
	if !ok {
		return Call{}, &ArgError{Message: "the arguments must be a JSON object"}
	}
	// The AHP request admits null for these (§6.1 shows session_id:
	// null); the published schema keeps to plain strings for the sake of
	// strict tool-calling clients.
	for _, k := range []string{ArgSessionID, ArgClarification} {
		if v, ok := obj[k]; ok && v == nil {
			delete(obj, k)
		}
	}
	var call Call
	if v, ok := obj[ArgAuth]; ok {
		if call.Auth, ok = v.(string); !ok && v != nil {
			return Call{}, &ArgError{Field: ArgAuth, Message: "auth must be a string (a credential)"}
		}
		delete(obj, ArgAuth)
	}
	if _, ok := obj[ArgQuery]; !ok {
		return Call{}, &ArgError{Field: ArgQuery, Message: "query is required: the question or request for " + c.Name, Missing: true}
	}
	if problems := schema.CheckValue(c.validator, obj); len(problems) > 0 {
		return Call{}, argProblems(problems)
	}
	call.Query, _ = obj[ArgQuery].(string)
	call.SessionID, _ = obj[ArgSessionID].(string)
	call.Clarification, _ = obj[ArgClarification].(string)
	for _, k := range []string{ArgQuery, ArgSessionID, ArgClarification} {
		delete(obj, k)
	}
	if len(obj) > 0 {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // the concierge (maybe an LLM) reads this text
		if err := enc.Encode(obj); err != nil {
			return Call{}, &ArgError{Message: "the arguments cannot be encoded: " + err.Error()}
		}
		call.Query += ArgumentsSeparator + strings.TrimSuffix(buf.String(), "\n")
	}
	if utf8.RuneCountInString(call.Query) > maxQuery {
		return Call{}, &ArgError{Field: ArgQuery, Message: "query and the structured arguments together exceed 4096 characters"}
	}
	return call, nil
}

func argProblems(problems []schema.Problem) *ArgError {
	const most = 3
	e := &ArgError{Field: problems[0].Field}
	var b strings.Builder
	for i, p := range problems {
		if i == most {
			fmt.Fprintf(&b, "; and %d more", len(problems)-most)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		if p.Field == "" {
			b.WriteString("arguments: ")
		}
		b.WriteString(p.String())
	}
	e.Message = b.String()
	return e
}

// AppendBody appends the converse request body for call to dst. It holds
// no credentials: those travel in headers (see NewConverseRequest).
func (c *Capability) AppendBody(dst []byte, call *Call) []byte {
	dst = append(dst, c.bodyHead...)
	dst = jsonstr.AppendString(dst, call.Query)
	if call.SessionID != "" {
		dst = append(dst, `,"session_id":`...)
		dst = jsonstr.AppendString(dst, call.SessionID)
	}
	if call.Clarification != "" {
		dst = append(dst, `,"clarification":`...)
		dst = jsonstr.AppendString(dst, call.Clarification)
	}
	return append(dst, c.bodyTail...)
}

// ReadBody reads at most limit bytes of body. tooLarge reports a body
// over the limit; what was read is then incomplete and must be refused.
func ReadBody(buf *bytes.Buffer, body io.Reader, limit int64) (tooLarge bool, err error) {
	n, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	if err != nil {
		return false, err
	}
	return n > limit, nil
}
