package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// siteManifest is a lenient view of a site's manifest: what the checks need,
// read from whatever the site served, even if it fails the schema (the
// schema check reports that; the other checks still learn what they can).
type siteManifest struct {
	raw            map[string]any
	Name           string
	AHP            string
	Modes          []string
	Converse       string // as declared (may be "")
	Content        string
	Authentication string
	Capabilities   []capability
	Integrations   map[string]integration
	// DeclaresLimits is true when rate_limits or rate_limit is present.
	DeclaresLimits bool
	// UnauthRequests is rate_limits.unauthenticated.requests, else
	// rate_limit ("30/minute"), else "".
	UnauthRequests string
	HasSignals     bool
	AsyncSupported bool
}

type capability struct {
	Name, Mode, ActionType string
	ResponseTypes          []string
	AcceptFallback         bool
	AuthRequired           bool
	HasInput, HasOutput    bool
}

// needsAuth: the spec requires credentials for action and async
// capabilities (§5.3); a capability may also say so itself.
func (c capability) needsAuth() bool {
	return c.ActionType == "action" || c.ActionType == "async" || c.AuthRequired
}

// wantsCredentials: the site declares an authentication scheme, so it may
// rightly ask any request for credentials, the checker's included.
func (m *siteManifest) wantsCredentials() bool {
	return m.Authentication != "" && m.Authentication != "none"
}

type integration struct{ URL, Version string }

// parseSiteManifest decodes the manifest leniently; the error is for bodies
// that are not a JSON object at all.
func parseSiteManifest(body []byte) (*siteManifest, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("not JSON: data after the first value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not a JSON object but %s", jsonKind(v))
	}
	m := &siteManifest{raw: obj}
	m.AHP = str(obj["ahp"])
	m.Name = str(obj["name"])
	m.Modes = strs(obj["modes"])
	if ep, ok := obj["endpoints"].(map[string]any); ok {
		m.Converse, m.Content = str(ep["converse"]), str(ep["content"])
	}
	m.Authentication = str(obj["authentication"])
	if caps, ok := obj["capabilities"].([]any); ok {
		for _, c := range caps {
			co, ok := c.(map[string]any)
			if !ok {
				continue
			}
			m.Capabilities = append(m.Capabilities, capability{
				Name: str(co["name"]), Mode: str(co["mode"]), ActionType: str(co["action_type"]),
				ResponseTypes: strs(co["response_types"]), AcceptFallback: co["accept_fallback"] == true,
				AuthRequired: co["auth_required"] == true,
				HasInput:     co["input_schema"] != nil, HasOutput: co["output_schema"] != nil,
			})
		}
	}
	if in, ok := obj["integrations"].(map[string]any); ok {
		m.Integrations = map[string]integration{}
		for k, v := range in {
			if io, ok := v.(map[string]any); ok {
				m.Integrations[k] = integration{URL: str(io["url"]), Version: str(io["version"])}
			}
		}
	}
	_, hasTiers := obj["rate_limits"]
	_, hasShort := obj["rate_limit"]
	m.DeclaresLimits = hasTiers || hasShort
	if rl, ok := obj["rate_limits"].(map[string]any); ok {
		if ua, ok := rl["unauthenticated"].(map[string]any); ok {
			m.UnauthRequests = str(ua["requests"])
		}
	}
	if m.UnauthRequests == "" {
		m.UnauthRequests = str(obj["rate_limit"])
	}
	_, m.HasSignals = obj["content_signals"].(map[string]any)
	if as, ok := obj["async"].(map[string]any); ok {
		m.AsyncSupported = as["supported"] == true
	}
	return m, nil
}

func (m *siteManifest) hasMode(mode string) bool {
	for _, v := range m.Modes {
		if v == mode {
			return true
		}
	}
	return false
}

// conversePath is where the converse endpoint is: the declared one, or
// the spec's default for sites with MODE2/MODE3 (§5.2).
func (m *siteManifest) conversePath() string {
	if m.Converse != "" {
		return m.Converse
	}
	if m.hasMode("MODE2") || m.hasMode("MODE3") || len(m.conversable()) > 0 {
		return "/agent/converse"
	}
	return ""
}

// conversable lists MODE2 and MODE3 capabilities, the ones the converse
// endpoint serves.
func (m *siteManifest) conversable() []capability {
	var out []capability
	for _, c := range m.Capabilities {
		if c.Mode == "MODE2" || c.Mode == "MODE3" {
			out = append(out, c)
		}
	}
	return out
}

// rules are the spec's MUSTs about the manifest that its schema cannot
// say: manifest.SpecRules, the same list `caddy ahp manifest` and the
// plugin's validator enforce, so that the checker never passes a manifest
// the plugin refuses (nor the reverse).
func (m *siteManifest) rules() []string {
	var ps []string
	for _, p := range manifest.SpecRules(m.typed()) {
		ps = append(ps, p.String())
	}
	return ps
}

// present stands for a schema the site declares: SpecRules asks only
// whether there is one.
var present = json.RawMessage(`{}`)

// typed is what SpecRules reads of the manifest, in the plugin's model.
func (m *siteManifest) typed() *manifest.Manifest {
	t := &manifest.Manifest{Modes: m.Modes, Authentication: m.Authentication}
	if m.AsyncSupported {
		t.Async = &manifest.Async{Supported: true}
	}
	for _, c := range m.Capabilities {
		tc := manifest.Capability{Name: c.Name, Mode: c.Mode, ActionType: c.ActionType}
		if c.HasInput {
			tc.InputSchema = present
		}
		if c.HasOutput {
			tc.OutputSchema = present
		}
		t.Capabilities = append(t.Capabilities, tc)
	}
	return t
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// looksLikeA2A spots an A2A agent card, which used the same path before
// A2A moved to /.well-known/agent-card.json.
func (m *siteManifest) looksLikeA2A() bool {
	_, skills := m.raw["skills"]
	_, ver := m.raw["protocolVersion"]
	_, caps := m.raw["capabilities"].(map[string]any)
	return m.AHP == "" && (skills || ver || caps)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func strs(v any) []string {
	arr, _ := v.([]any)
	var out []string
	for _, x := range arr {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// decodeObject decodes a JSON object answer (numbers as json.Number).
func decodeObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON (%v): %s", err, clip(string(body), 80))
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("JSON %s, not an object", jsonKind(v))
	}
	return obj, nil
}

// maxListed is the most items a "saw" lists; a site's documents may hold
// thousands of capabilities, and a report line should stay readable.
const maxListed = 20

// maxItem clips each listed item (a site may send a 100 KB name).
const maxItem = 300

// joinProblems renders a problem list for "saw".
func joinProblems(ps []string) string {
	if len(ps) == 1 {
		return clip(ps[0], maxItem)
	}
	return fmt.Sprintf("%d problems: %s", len(ps), joinListed(ps, "; "))
}

// joinNames lists names (capabilities, paths) for "saw".
func joinNames(names []string) string { return joinListed(names, ", ") }

// joinListed joins the first maxListed items (each clipped) and says how
// many more there are.
func joinListed(items []string, sep string) string {
	shown := items
	if len(shown) > maxListed {
		shown = shown[:maxListed]
	}
	var b strings.Builder
	for i, it := range shown {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(clip(it, maxItem))
	}
	if more := len(items) - len(shown); more > 0 {
		fmt.Fprintf(&b, "%s… and %d more", sep, more)
	}
	return b.String()
}
