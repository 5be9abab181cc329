// Package schema embeds the official AHP 0.1 JSON Schemas (manifest, request,
// response) and compiles them, extended only where the spec text and the
// schema files disagree (the project's ahp-schema/NOTES.md; summarised in
// docs/design.md).
//
// The files under 0.1/ are byte-for-byte the published schemas; the
// extensions are applied in code so that a reader can diff them against the
// originals.
package schema

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed 0.1/*.json
var files embed.FS

// Base URL of the official schemas ($id prefix).
const baseURL = "https://agenthandshake.dev/schema/0.1/"

// Names of the embedded schemas.
const (
	ManifestSchema = "manifest.json"
	RequestSchema  = "request.json"
	ResponseSchema = "response.json"
)

// Official returns the unmodified bytes of one embedded schema file.
func Official(name string) ([]byte, error) {
	return files.ReadFile("0.1/" + name)
}

// Document returns the schema as this project applies it: the official file
// plus the extensions NOTES.md allows.
func Document(name string) (map[string]any, error) {
	raw, err := Official(name)
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	obj := doc.(map[string]any)
	if name == ManifestSchema {
		extendManifest(obj)
	}
	if name == RequestSchema {
		extendRequest(obj)
	}
	return obj, nil
}

// extendManifest admits exactly `integrations` (spec §4.4) at the top level
// and `auth_required` (Appendix D/E) on capabilities.
func extendManifest(doc map[string]any) {
	integration := map[string]any{
		"type":                 "object",
		"required":             []any{"url"},
		"additionalProperties": false,
		"properties": map[string]any{
			"url":     map[string]any{"type": "string", "minLength": float64(1)},
			"version": map[string]any{"type": "string"},
		},
	}
	props := doc["properties"].(map[string]any)
	props["integrations"] = map[string]any{
		"type":                 "object",
		"additionalProperties": integration,
	}
	capProps := doc["definitions"].(map[string]any)["capability"].(map[string]any)["properties"].(map[string]any)
	capProps["auth_required"] = map[string]any{"type": "boolean"}
}

// extendRequest admits the `auth` field that Appendix D.4 shows MCP/OpenAPI
// bridges sending; the gateway never forwards it upstream in the body.
func extendRequest(doc map[string]any) {
	props := doc["properties"].(map[string]any)
	props["auth"] = map[string]any{"type": "string", "maxLength": float64(4096)}
}

var (
	compileOnce sync.Once
	compiled    map[string]*jsonschema.Schema
	compileErr  error
)

// Compiled returns the compiled (extended) schema by name. The schemas are
// compiled once per process.
func Compiled(name string) (*jsonschema.Schema, error) {
	compileOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft7)
		c.AssertFormat()
		for _, n := range []string{ManifestSchema, RequestSchema, ResponseSchema} {
			doc, err := Document(n)
			if err != nil {
				compileErr = err
				return
			}
			if err := c.AddResource(baseURL+n, doc); err != nil {
				compileErr = err
				return
			}
		}
		compiled = make(map[string]*jsonschema.Schema, 3)
		for _, n := range []string{ManifestSchema, RequestSchema, ResponseSchema} {
			s, err := c.Compile(baseURL + n)
			if err != nil {
				compileErr = fmt.Errorf("compiling embedded schema %s: %w", n, err)
				return
			}
			compiled[n] = s
		}
	})
	if compileErr != nil {
		return nil, compileErr
	}
	s, ok := compiled[name]
	if !ok {
		return nil, fmt.Errorf("no embedded schema %q", name)
	}
	return s, nil
}

// Problem is one schema violation, located by a dotted field path such as
// capabilities[1].name.
type Problem struct {
	Field   string
	Message string
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// Check validates a JSON document (raw bytes) against the named schema and
// returns the violations, most specific first. A nil slice means valid.
func Check(name string, doc []byte) ([]Problem, error) {
	s, err := Compiled(name)
	if err != nil {
		return nil, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return []Problem{{Message: "not valid JSON: " + err.Error()}}, nil
	}
	return CheckValue(s, inst), nil
}

// CheckValue validates an already decoded value (as produced by
// jsonschema.UnmarshalJSON) against a compiled schema.
func CheckValue(s *jsonschema.Schema, inst any) []Problem {
	err := s.Validate(inst)
	if err == nil {
		return nil
	}
	verr, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return []Problem{{Message: err.Error()}}
	}
	var out []Problem
	seen := map[string]bool{}
	collect(verr, &out, seen)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

var printer = message.NewPrinter(language.English)

func collect(e *jsonschema.ValidationError, out *[]Problem, seen map[string]bool) {
	if len(e.Causes) > 0 {
		// A oneOf/anyOf failure's causes describe every branch; the
		// branch errors are more useful than the summary.
		for _, c := range e.Causes {
			collect(c, out, seen)
		}
		return
	}
	p := Problem{Field: FieldPath(e.InstanceLocation), Message: describe(e.ErrorKind)}
	key := p.String()
	if !seen[key] {
		seen[key] = true
		*out = append(*out, p)
	}
}

// describe words a violation for an operator or agent author.
func describe(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.AdditionalProperties:
		return fmt.Sprintf("unknown field(s) %s: not allowed here by the AHP 0.1 schema", quoteAll(k.Properties))
	case *kind.Required:
		return fmt.Sprintf("required field(s) %s missing", quoteAll(k.Missing))
	case *kind.Pattern:
		return fmt.Sprintf("%q does not match the required pattern %s", k.Got, k.Want)
	case *kind.Enum:
		want := make([]string, 0, len(k.Want))
		for _, w := range k.Want {
			b, _ := json.Marshal(w)
			want = append(want, string(b))
		}
		b, _ := json.Marshal(k.Got)
		return fmt.Sprintf("%s is not one of %s", b, strings.Join(want, ", "))
	case *kind.Type:
		return fmt.Sprintf("is %s, must be %s", k.Got, strings.Join(k.Want, " or "))
	}
	return k.LocalizedString(printer)
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = `"` + v + `"`
	}
	return strings.Join(q, ", ")
}

// FieldPath turns a JSON pointer's tokens into a readable path:
// ["capabilities","1","name"] becomes capabilities[1].name.
func FieldPath(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		if isIndex(t) {
			b.WriteString("[" + t + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(t)
	}
	return b.String()
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
