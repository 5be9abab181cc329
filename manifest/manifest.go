// Package manifest is the AHP manifest (spec §4): its model, how an operator
// gives it (a base file plus inline fields), its validation against the AHP
// 0.1 schema and the spec rules a schema cannot express, and its rendering to
// the bytes served at /.well-known/agent.json.
package manifest

import (
	"encoding/json"
	"strings"
)

// Version is the AHP protocol version this plugin speaks.
const Version = "0.1"

// WellKnownPath is where spec §3.1 requires the manifest to be served.
const WellKnownPath = "/.well-known/agent.json"

// MediaType is the media type agents use to ask for the manifest (§3.2, §3.4).
const MediaType = "application/agent+json"

// Modes (spec §5).
const (
	Mode1 = "MODE1"
	Mode2 = "MODE2"
	Mode3 = "MODE3"
)

// Action types of MODE3 capabilities (spec §5.3).
const (
	ActionQuery  = "query"
	ActionAction = "action"
	ActionAsync  = "async"
)

// Authentication schemes (spec §8.2).
const (
	AuthNone          = "none"
	AuthBearer        = "bearer"
	AuthAPIKey        = "api_key"
	AuthSignedRequest = "signed_request"
)

// Manifest is the AHP manifest document. The same type carries the partial
// manifest an operator writes inline in the Caddy config: a zero field means
// "not given" there, so that inline fields can be laid over a base file.
type Manifest struct {
	AHP            string                  `json:"ahp,omitempty"`
	Name           string                  `json:"name,omitempty"`
	Description    string                  `json:"description,omitempty"`
	Modes          []string                `json:"modes,omitempty"`
	Endpoints      *Endpoints              `json:"endpoints,omitempty"`
	Capabilities   []Capability            `json:"capabilities,omitempty"`
	Authentication string                  `json:"authentication,omitempty"`
	RateLimits     *RateLimits             `json:"rate_limits,omitempty"`
	RateLimit      string                  `json:"rate_limit,omitempty"`
	ContentSignals *ContentSignals         `json:"content_signals,omitempty"`
	Async          *Async                  `json:"async,omitempty"`
	Links          map[string]string       `json:"links,omitempty"`
	Integrations   map[string]*Integration `json:"integrations,omitempty"`
}

// Endpoints are the AHP endpoint paths (or URLs).
type Endpoints struct {
	Converse string `json:"converse,omitempty"`
	Content  string `json:"content,omitempty"`
}

// Capability is one named function of the concierge.
type Capability struct {
	Name           string   `json:"name"`
	Description    string   `json:"description,omitempty"`
	Mode           string   `json:"mode,omitempty"`
	ActionType     string   `json:"action_type,omitempty"`
	ResponseTypes  []string `json:"response_types,omitempty"`
	AcceptFallback bool     `json:"accept_fallback,omitempty"`
	// AuthRequired is emitted for capabilities that need credentials
	// (Appendix D/E use it); see schema.extendManifest.
	AuthRequired bool `json:"auth_required,omitempty"`
	// InputSchema and OutputSchema hold a JSON Schema object. In the
	// Caddy config and in a manifest file they may instead hold a string:
	// the path of a file containing the schema, read at load.
	InputSchema  json.RawMessage `json:"input_schema,omitempty"`
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
}

// NeedsAuth reports whether the spec requires credentials for this
// capability (§5.3: action and async capabilities).
func (c *Capability) NeedsAuth() bool {
	return c.ActionType == ActionAction || c.ActionType == ActionAsync
}

// ContentSignals are the site's AI usage declarations (spec §7). Pointers
// tell "false" from "not given".
type ContentSignals struct {
	AITrain             *bool `json:"ai_train,omitempty"`
	AIInput             *bool `json:"ai_input,omitempty"`
	Search              *bool `json:"search,omitempty"`
	AttributionRequired *bool `json:"attribution_required,omitempty"`
}

// RateLimits is the manifest's rate limit declaration (spec §11.5).
type RateLimits struct {
	Unauthenticated *RateLimitTier `json:"unauthenticated,omitempty"`
	Authenticated   *RateLimitTier `json:"authenticated,omitempty"`
}

// RateLimitTier is one tier of RateLimits.
type RateLimitTier struct {
	Requests    string `json:"requests,omitempty"`
	TokenBudget string `json:"token_budget,omitempty"`
}

// Async is the async model declaration (spec §9).
type Async struct {
	Supported     bool `json:"supported"`
	MaxETASeconds *int `json:"max_eta_seconds,omitempty"`
}

// Integration is one platform integration (spec §4.4).
type Integration struct {
	URL     string `json:"url"`
	Version string `json:"version,omitempty"`
}

// Capability returns the capability with the given name, or nil.
func (m *Manifest) Capability(name string) *Capability {
	for i := range m.Capabilities {
		if m.Capabilities[i].Name == name {
			return &m.Capabilities[i]
		}
	}
	return nil
}

// CapabilityNames lists the capability names in manifest order.
func (m *Manifest) CapabilityNames() []string {
	names := make([]string, len(m.Capabilities))
	for i := range m.Capabilities {
		names[i] = m.Capabilities[i].Name
	}
	return names
}

// HasMode reports whether modes lists mode.
func (m *Manifest) HasMode(mode string) bool {
	for _, v := range m.Modes {
		if v == mode {
			return true
		}
	}
	return false
}

// ConversePath is the converse endpoint path, or "" when there is none.
func (m *Manifest) ConversePath() string {
	if m.Endpoints == nil {
		return ""
	}
	return m.Endpoints.Converse
}

// StatusPrefix is where the async status of a converse call is polled
// (spec §6.4: {converse}/status/{session_id}), or "" without a converse
// endpoint.
func (m *Manifest) StatusPrefix() string {
	if c := m.ConversePath(); c != "" {
		return strings.TrimSuffix(c, "/") + "/status/"
	}
	return ""
}

// ContentPath is the MODE1 content endpoint path, or "" when there is none.
func (m *Manifest) ContentPath() string {
	if m.Endpoints == nil {
		return ""
	}
	return m.Endpoints.Content
}

// Clone returns a deep copy, so that merging never aliases caller data.
func (m *Manifest) Clone() *Manifest {
	if m == nil {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic("manifest: cloning a manifest that cannot be marshalled: " + err.Error())
	}
	var c Manifest
	if err := json.Unmarshal(b, &c); err != nil {
		panic("manifest: cloning: " + err.Error())
	}
	return &c
}
