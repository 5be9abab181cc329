package manifest

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/schema"
)

func boolp(b bool) *bool { return &b }

func signals() *ContentSignals {
	return &ContentSignals{AITrain: boolp(false), AIInput: boolp(true), Search: boolp(true)}
}

func TestBuildMinimal(t *testing.T) {
	m, doc, err := Build(Source{Inline: &Manifest{Name: "Example", ContentSignals: signals()}})
	if err != nil {
		t.Fatal(err)
	}
	if m.AHP != "0.1" {
		t.Errorf("ahp = %q, want 0.1", m.AHP)
	}
	if !reflect.DeepEqual(m.Modes, []string{"MODE1"}) {
		t.Errorf("modes = %v, want [MODE1]", m.Modes)
	}
	problems, err := schema.Check(schema.ManifestSchema, doc.JSON)
	if err != nil || problems != nil {
		t.Fatalf("rendered manifest does not validate: %v %v", err, problems)
	}
	if !strings.HasPrefix(doc.ETag, `"`) || !strings.HasSuffix(doc.ETag, `"`) || len(doc.ETag) < 10 {
		t.Errorf("ETag %q is not a strong quoted tag", doc.ETag)
	}
	_, doc2, _ := Build(Source{Inline: &Manifest{Name: "Example 2", ContentSignals: signals()}})
	if doc2.ETag == doc.ETag {
		t.Error("different manifests share an ETag")
	}
}

func TestBuildFileAndInline(t *testing.T) {
	inline := &Manifest{
		Name:           "Example Site",
		Authentication: AuthBearer,
		Endpoints:      &Endpoints{Converse: "/agent/converse"},
		ContentSignals: &ContentSignals{AITrain: boolp(false), Search: boolp(true)},
		Capabilities: []Capability{
			{Name: "content_search", Description: "Find posts by topic", Mode: Mode2, ResponseTypes: []string{"text/answer", "application/feed"}, AcceptFallback: true},
			{Name: "book_demo", Description: "Book a product demo", Mode: Mode3, ActionType: ActionAction,
				InputSchema: json.RawMessage(`"testdata/book_demo.in.json"`), OutputSchema: json.RawMessage(`"testdata/book_demo.out.json"`)},
		},
	}
	m, doc, err := Build(Source{File: "testdata/base.json", Inline: inline})
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "Example Site" || m.Description != "From the file." {
		t.Errorf("name/description = %q/%q: inline must win, file must fill the rest", m.Name, m.Description)
	}
	if m.ContentPath() != "/llms.txt" || m.ConversePath() != "/agent/converse" {
		t.Errorf("endpoints = %+v", m.Endpoints)
	}
	cs := m.ContentSignals
	if *cs.AITrain != false || *cs.AIInput != true || *cs.Search != true {
		t.Errorf("content signals not merged field by field: %+v", cs)
	}
	if got := m.CapabilityNames(); !reflect.DeepEqual(got, []string{"site_info", "content_search", "book_demo"}) {
		t.Errorf("capabilities = %v", got)
	}
	if c := m.Capability("content_search"); c.Description != "Find posts by topic" || !c.AcceptFallback {
		t.Errorf("inline capability must replace the file's: %+v", c)
	}
	if !reflect.DeepEqual(m.Modes, []string{"MODE1", "MODE2", "MODE3"}) {
		t.Errorf("derived modes = %v", m.Modes)
	}
	book := m.Capability("book_demo")
	if !book.AuthRequired {
		t.Error("action capability behind bearer auth must carry auth_required")
	}
	var in map[string]any
	if err := json.Unmarshal(book.InputSchema, &in); err != nil || in["type"] != "object" {
		t.Errorf("input_schema file not inlined: %s", book.InputSchema)
	}
	if problems, _ := schema.Check(schema.ManifestSchema, doc.JSON); problems != nil {
		t.Fatalf("rendered manifest does not validate: %v", problems)
	}
}

func TestLoadFileResolvesSchemasNextToTheFile(t *testing.T) {
	m, _, err := Build(Source{File: "testdata/with_schema_path.json"})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(m.Capability("book_demo").OutputSchema); !strings.Contains(s, "confirmation") {
		t.Errorf("output_schema = %s", s)
	}
}

func TestExplicitModesKept(t *testing.T) {
	m, _, err := Build(Source{Inline: &Manifest{Modes: []string{Mode1}, ContentSignals: signals()}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.Modes, []string{Mode1}) {
		t.Errorf("modes = %v", m.Modes)
	}
}

// Each bad manifest must be refused with a message naming the field and
// saying how to fix it.
func TestValidationErrors(t *testing.T) {
	mode3 := func(c Capability) *Manifest {
		return &Manifest{
			Authentication: AuthBearer, Endpoints: &Endpoints{Converse: "/agent/converse"},
			ContentSignals: signals(), Capabilities: []Capability{c},
		}
	}
	schemaObj := json.RawMessage(`{"type":"object"}`)
	tests := []struct {
		name string
		m    *Manifest
		want []string
	}{
		{"no content signals", &Manifest{}, []string{`"content_signals"`, "content_signals {"}},
		{"no ai_input", &Manifest{ContentSignals: &ContentSignals{AITrain: boolp(true)}}, []string{"content_signals", `"ai_input"`}},
		{"bad capability name", &Manifest{ContentSignals: signals(), Endpoints: &Endpoints{Converse: "/c"},
			Capabilities: []Capability{{Name: "Book-Demo", Description: "x", Mode: Mode2}}},
			[]string{"capabilities[0] (Book-Demo).name", "lowercase"}},
		{"missing description", &Manifest{ContentSignals: signals(), Endpoints: &Endpoints{Converse: "/c"},
			Capabilities: []Capability{{Name: "x", Mode: Mode2}}},
			[]string{"capabilities[0] (x)", `"description"`, "description \""}},
		{"bad mode", &Manifest{ContentSignals: signals(), Endpoints: &Endpoints{Converse: "/c"},
			Capabilities: []Capability{{Name: "x", Description: "d", Mode: "MODE4"}}},
			[]string{"capabilities[0] (x).mode", "MODE4"}},
		{"bad response type", &Manifest{ContentSignals: signals(), Endpoints: &Endpoints{Converse: "/c"},
			Capabilities: []Capability{{Name: "x", Description: "d", Mode: Mode2, ResponseTypes: []string{"video"}}}},
			[]string{"response_types[0]", "text/answer"}},
		{"MODE3 without action_type", mode3(Capability{Name: "b", Description: "d", Mode: Mode3, InputSchema: schemaObj, OutputSchema: schemaObj}),
			[]string{"capabilities[0] (b).action_type", "action_type query|action|async"}},
		{"MODE3 without schemas", mode3(Capability{Name: "b", Description: "d", Mode: Mode3, ActionType: ActionQuery}),
			[]string{"capabilities[0] (b).input_schema", "capabilities[0] (b).output_schema"}},
		{"action without auth", &Manifest{ContentSignals: signals(), Endpoints: &Endpoints{Converse: "/c"},
			Capabilities: []Capability{{Name: "b", Description: "d", Mode: Mode3, ActionType: ActionAction, InputSchema: schemaObj, OutputSchema: schemaObj}}},
			[]string{"(b).action_type", "must require authentication", "authentication bearer"}},
		{"async without async.supported", mode3(Capability{Name: "b", Description: "d", Mode: Mode3, ActionType: ActionAsync, InputSchema: schemaObj, OutputSchema: schemaObj}),
			[]string{"async capabilities require async.supported", "async { supported true }"}},
		{"MODE2 without converse", &Manifest{ContentSignals: signals(),
			Capabilities: []Capability{{Name: "s", Description: "d", Mode: Mode2}}},
			[]string{"endpoints.converse", "converse /agent/converse"}},
		{"converse not a path", &Manifest{ContentSignals: signals(), Endpoints: &Endpoints{Converse: "https://other.example/c"},
			Capabilities: []Capability{{Name: "s", Description: "d", Mode: Mode2}}},
			[]string{"endpoints.converse", "must be a path"}},
		{"modes without MODE1", &Manifest{ContentSignals: signals(), Modes: []string{Mode2}, Endpoints: &Endpoints{Converse: "/c"},
			Capabilities: []Capability{{Name: "s", Description: "d", Mode: Mode2}}},
			[]string{"modes", "must include MODE1"}},
		{"capability mode not in modes", &Manifest{ContentSignals: signals(), Modes: []string{Mode1}, Endpoints: &Endpoints{Converse: "/c"},
			Capabilities: []Capability{{Name: "s", Description: "d", Mode: Mode2}}},
			[]string{"(s).mode", "not listed in modes"}},
		// An unknown mode is refused for what it is, not with "add it to
		// modes", which would fix nothing.
		{"unknown mode", &Manifest{ContentSignals: signals(), Modes: []string{Mode1}, Endpoints: &Endpoints{Converse: "/c"},
			Capabilities: []Capability{{Name: "s", Description: "d", Mode: "mode2"}}},
			[]string{"(s).mode"}},
		{"duplicate capability", &Manifest{ContentSignals: signals(), Endpoints: &Endpoints{Converse: "/c"},
			Capabilities: []Capability{{Name: "s", Description: "d", Mode: Mode2}, {Name: "s", Description: "d", Mode: Mode2}}},
			[]string{"duplicate capability name"}},
		{"bad rate limit", &Manifest{ContentSignals: signals(), RateLimit: "30 per minute"},
			[]string{"rate_limit", "N/minute"}},
		{"description too long", &Manifest{ContentSignals: signals(), Description: strings.Repeat("x", 600)},
			[]string{"description", "512"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Build(Source{Inline: tt.m})
			if err == nil {
				t.Fatal("bad manifest accepted")
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("error is %T, want *ValidationError: %v", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct{ file, want string }{
		{"testdata/missing.json", "check the path given to `manifest`"},
		{"testdata/unknown_field.json", `unknown field "colour"`},
	}
	for _, tt := range tests {
		_, _, err := Build(Source{File: tt.file})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.file) {
			t.Errorf("%s: error %v, want it to name the file and say %q", tt.file, err, tt.want)
		}
	}
}

func TestParseRejectsTrailingDataAndWrongTypes(t *testing.T) {
	if _, err := Parse([]byte(`{"ahp":"0.1"} {}`)); err == nil {
		t.Error("trailing data accepted")
	}
	_, err := Parse([]byte(`{"modes":"MODE1"}`))
	if err == nil || !strings.Contains(err.Error(), "modes") || !strings.Contains(err.Error(), "an array") {
		t.Errorf("wrong type error = %v", err)
	}
}

func TestMissingSchemaFileNamed(t *testing.T) {
	_, _, err := Build(Source{Inline: &Manifest{
		Authentication: AuthBearer, Endpoints: &Endpoints{Converse: "/c"}, ContentSignals: signals(),
		Capabilities: []Capability{{Name: "b", Description: "d", Mode: Mode3, ActionType: ActionAction,
			InputSchema: json.RawMessage(`"testdata/nope.json"`), OutputSchema: json.RawMessage(`{}`)}},
	}})
	if err == nil || !strings.Contains(err.Error(), `capability "b" input_schema`) {
		t.Errorf("error = %v", err)
	}
}

func TestIntegrationsAdmitted(t *testing.T) {
	_, doc, err := Build(Source{Inline: &Manifest{ContentSignals: signals(),
		Integrations: map[string]*Integration{"mcp": {URL: "/mcp", Version: "2024-11-05"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc.JSON), `"integrations"`) {
		t.Error("integrations missing")
	}
	// The official schema alone rejects it; the extension admits exactly it.
	official, _ := schema.Official(schema.ManifestSchema)
	if !strings.Contains(string(official), `"additionalProperties": false`) {
		t.Fatal("official schema changed")
	}
}

func TestDeriveModes(t *testing.T) {
	tests := []struct {
		caps []Capability
		want []string
	}{
		{nil, []string{"MODE1"}},
		{[]Capability{{Mode: Mode1}}, []string{"MODE1"}},
		{[]Capability{{Mode: Mode2}}, []string{"MODE1", "MODE2"}},
		{[]Capability{{Mode: Mode3}}, []string{"MODE1", "MODE2", "MODE3"}},
	}
	for _, tt := range tests {
		if got := DeriveModes(tt.caps); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("DeriveModes(%v) = %v, want %v", tt.caps, got, tt.want)
		}
	}
}

// TestUnknownModeNotSentToModes: a capability's unknown mode gets the
// schema's error only; "add it to modes" would fix nothing.
func TestUnknownModeNotSentToModes(t *testing.T) {
	_, _, err := Build(Source{Inline: &Manifest{ContentSignals: signals(), Modes: []string{Mode1}, Endpoints: &Endpoints{Converse: "/c"},
		Capabilities: []Capability{{Name: "s", Description: "d", Mode: "mode2"}}}})
	if err == nil || strings.Contains(err.Error(), "not listed in modes") || !strings.Contains(err.Error(), "MODE2") {
		t.Errorf("mode2: %v, want the modes a capability may have and no advice to list it", err)
	}
}
