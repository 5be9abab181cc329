package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// Source is how an operator gives the manifest: an optional base file and
// inline fields that win over it.
type Source struct {
	// File is the path of a manifest JSON file used as the base.
	File string
	// Inline holds fields given in the Caddy config; every field set
	// here replaces the file's value. Capabilities replace the file's
	// capability of the same name and are appended otherwise.
	Inline *Manifest
	// Overlay holds fields the plugin itself owns (rate limits from the
	// rate_limit block, integrations from mcp/openapi). It is applied
	// last, so the manifest can never disagree with behaviour.
	Overlay *Manifest
}

// Build loads, merges, completes and validates the manifest, and renders
// the bytes to serve. Any problem is returned as an error that names the
// field and the fix; nothing is half-built.
func Build(src Source) (*Manifest, *Document, error) {
	base := &Manifest{}
	if src.File != "" {
		m, err := LoadFile(src.File)
		if err != nil {
			return nil, nil, err
		}
		base = m
	}
	if src.Inline != nil {
		inline := src.Inline.Clone()
		if err := inline.resolveSchemaFiles(""); err != nil {
			return nil, nil, err
		}
		base = Merge(base, inline)
	}
	if src.Overlay != nil {
		base = Merge(base, src.Overlay.Clone())
	}
	base.Complete()
	if err := Validate(base); err != nil {
		return nil, nil, err
	}
	doc, err := Render(base)
	if err != nil {
		return nil, nil, err
	}
	return base, doc, nil
}

// LoadFile reads a manifest file. Unknown fields are an error (the schema
// forbids them). Capability schemas given as file paths resolve relative
// to the manifest file's directory.
func LoadFile(path string) (*Manifest, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w (check the path given to `manifest`)", path, err)
	}
	m, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	if err := m.resolveSchemaFiles(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	return m, nil
}

// Parse decodes manifest JSON strictly: one object, no unknown fields.
func Parse(raw []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, describeDecodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the manifest's JSON object")
	}
	return &m, nil
}

func describeDecodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("not valid JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ):
		return fmt.Errorf("field %s: is a JSON %s, must be %s", typ.Field, typ.Value, jsonKind(typ.Type.Kind().String()))
	}
	return fmt.Errorf("%v (fields must be those of the AHP 0.1 manifest)", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	case "bool":
		return "true or false"
	case "int", "int64":
		return "an integer"
	}
	return goKind
}

// resolveSchemaFiles replaces capability schemas given as strings (file
// paths) by the JSON object the file holds.
func (m *Manifest) resolveSchemaFiles(dir string) error {
	for i := range m.Capabilities {
		c := &m.Capabilities[i]
		for _, s := range []struct {
			field string
			val   *json.RawMessage
		}{{"input_schema", &c.InputSchema}, {"output_schema", &c.OutputSchema}} {
			raw := bytes.TrimSpace(*s.val)
			if len(raw) == 0 || raw[0] != '"' {
				continue
			}
			var path string
			if err := json.Unmarshal(raw, &path); err != nil {
				return fmt.Errorf("capability %q %s: %v", c.Name, s.field, err)
			}
			if dir != "" && !filepath.IsAbs(path) {
				path = filepath.Join(dir, path)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("capability %q %s: %w (give the path of a JSON Schema file)", c.Name, s.field, err)
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(data, &obj); err != nil {
				return fmt.Errorf("capability %q %s: %s is not a JSON object: %v", c.Name, s.field, path, err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, data); err != nil {
				return fmt.Errorf("capability %q %s: %s: %v", c.Name, s.field, path, err)
			}
			*s.val = compact.Bytes()
		}
	}
	return nil
}

// Merge lays every field set in over onto base and returns base.
func Merge(base, over *Manifest) *Manifest {
	if over == nil {
		return base
	}
	setString(&base.AHP, over.AHP)
	setString(&base.Name, over.Name)
	setString(&base.Description, over.Description)
	setString(&base.Authentication, over.Authentication)
	setString(&base.RateLimit, over.RateLimit)
	if over.Modes != nil {
		base.Modes = over.Modes
	}
	if over.Endpoints != nil {
		if base.Endpoints == nil {
			base.Endpoints = &Endpoints{}
		}
		setString(&base.Endpoints.Converse, over.Endpoints.Converse)
		setString(&base.Endpoints.Content, over.Endpoints.Content)
	}
	// Only the base's capabilities are replaced by name: duplicates within
	// one source stay, so that validation reports them.
	baseCount := len(base.Capabilities)
	for _, c := range over.Capabilities {
		replaced := false
		for i := 0; i < baseCount; i++ {
			if base.Capabilities[i].Name == c.Name {
				base.Capabilities[i] = c
				replaced = true
				break
			}
		}
		if !replaced {
			base.Capabilities = append(base.Capabilities, c)
		}
	}
	if over.RateLimits != nil {
		base.RateLimits = over.RateLimits
	}
	if over.ContentSignals != nil {
		if base.ContentSignals == nil {
			base.ContentSignals = &ContentSignals{}
		}
		setBool(&base.ContentSignals.AITrain, over.ContentSignals.AITrain)
		setBool(&base.ContentSignals.AIInput, over.ContentSignals.AIInput)
		setBool(&base.ContentSignals.Search, over.ContentSignals.Search)
		setBool(&base.ContentSignals.AttributionRequired, over.ContentSignals.AttributionRequired)
	}
	if over.Async != nil {
		base.Async = over.Async
	}
	for k, v := range over.Links {
		if base.Links == nil {
			base.Links = map[string]string{}
		}
		base.Links[k] = v
	}
	for k, v := range over.Integrations {
		if base.Integrations == nil {
			base.Integrations = map[string]*Integration{}
		}
		base.Integrations[k] = v
	}
	return base
}

func setString(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func setBool(dst **bool, v *bool) {
	if v != nil {
		*dst = v
	}
}

// Complete fills what the operator may leave out: the protocol version,
// the modes (derived from the capabilities unless given), and auth_required
// on capabilities that need credentials.
func (m *Manifest) Complete() {
	if m.AHP == "" {
		m.AHP = Version
	}
	if m.Modes == nil {
		m.Modes = DeriveModes(m.Capabilities)
	}
	for i := range m.Capabilities {
		c := &m.Capabilities[i]
		if c.NeedsAuth() && m.Authentication != "" && m.Authentication != AuthNone {
			c.AuthRequired = true
		}
	}
}

// DeriveModes lists MODE1 (every AHP site serves the manifest and, being a
// site, its pages) plus the modes of the capabilities. MODE3 implies MODE2:
// spec §5.3 says all MODE2 requirements apply to it.
func DeriveModes(caps []Capability) []string {
	set := map[string]bool{Mode1: true}
	for _, c := range caps {
		switch c.Mode {
		case Mode2:
			set[Mode2] = true
		case Mode3:
			set[Mode2] = true
			set[Mode3] = true
		}
	}
	modes := make([]string, 0, len(set))
	for m := range set {
		modes = append(modes, m)
	}
	sort.Strings(modes)
	return modes
}
