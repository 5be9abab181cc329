package conformance

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// TestRulesMatchValidator: on the same manifests, `caddy ahp check`
// (discovery.manifest_rules) and the plugin's validator (`caddy ahp
// manifest`, the ahp directive) agree: each manifest below is valid
// against the schema and breaks at most the rules named, and both refuse
// it for those rules exactly, or both accept it.
func TestRulesMatchValidator(t *testing.T) {
	const base = `"ahp":"0.1","name":"s","description":"d","content_signals":{"ai_input":true},"endpoints":{"converse":"/agent/converse"}`
	const schemas = `"input_schema":{"type":"object"},"output_schema":{"type":"object"}`
	cases := []struct {
		name, body string
		fields     []string // the problems' fields, in order; none: valid
	}{
		{"valid MODE1+2+3", `{` + base + `,"modes":["MODE1","MODE2","MODE3"],"authentication":"bearer",
			"capabilities":[{"name":"a","description":"d","mode":"MODE2"},{"name":"b","description":"d","mode":"MODE3","action_type":"action",` + schemas + `}]}`, nil},
		{"valid MODE1", `{` + base + `,"modes":["MODE1"]}`, nil},
		{"no MODE1", `{` + base + `,"modes":["MODE2","MODE3"],"authentication":"bearer",
			"capabilities":[{"name":"a","description":"d","mode":"MODE2"},{"name":"b","description":"d","mode":"MODE3","action_type":"query",` + schemas + `}]}`,
			[]string{"modes"}},
		{"capability mode not in modes", `{` + base + `,"modes":["MODE1"],
			"capabilities":[{"name":"a","description":"d","mode":"MODE2"},{"name":"b","description":"d","mode":"MODE3","action_type":"query",` + schemas + `}]}`,
			[]string{"capabilities[0] (a).mode", "capabilities[1] (b).mode"}},
		{"MODE3 in modes, no MODE3 capability", `{` + base + `,"modes":["MODE1","MODE2","MODE3"],
			"capabilities":[{"name":"a","description":"d","mode":"MODE2"}]}`,
			[]string{"modes"}},
		{"MODE2 in modes, only MODE1 capabilities", `{` + base + `,"modes":["MODE1","MODE2"],
			"capabilities":[{"name":"a","description":"d","mode":"MODE1"}]}`,
			[]string{"modes"}},
		{"action_type on MODE2", `{` + base + `,"modes":["MODE1","MODE2"],
			"capabilities":[{"name":"a","description":"d","mode":"MODE2","action_type":"query"}]}`,
			[]string{"capabilities[0] (a).action_type"}},
		{"MODE3 without schemas or action_type", `{` + base + `,"modes":["MODE1","MODE3"],
			"capabilities":[{"name":"b","description":"d","mode":"MODE3"}]}`,
			[]string{"capabilities[0] (b).action_type", "capabilities[0] (b).input_schema", "capabilities[0] (b).output_schema"}},
		{"action without authentication", `{` + base + `,"modes":["MODE1","MODE3"],
			"capabilities":[{"name":"b","description":"d","mode":"MODE3","action_type":"action",` + schemas + `}]}`,
			[]string{"capabilities[0] (b).action_type"}},
		{"async without async.supported", `{` + base + `,"modes":["MODE1","MODE3"],"authentication":"api_key",
			"capabilities":[{"name":"b","description":"d","mode":"MODE3","action_type":"async",` + schemas + `}]}`,
			[]string{"capabilities[0] (b).action_type"}},
		{"duplicate names", `{` + base + `,"modes":["MODE1","MODE2"],
			"capabilities":[{"name":"a","description":"d","mode":"MODE2"},{"name":"a","description":"e","mode":"MODE2"}]}`,
			[]string{"capabilities[1] (a).name"}},
		{"MODE2 without capabilities", `{` + base + `,"modes":["MODE1","MODE2"]}`, []string{"capabilities"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sm, err := parseSiteManifest([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			var checker []string
			for _, p := range manifest.SpecRules(sm.typed()) {
				checker = append(checker, p.Field)
			}
			if got := sm.rules(); len(got) != len(checker) {
				t.Fatalf("rules() %q", got)
			}
			var m manifest.Manifest
			if err := json.Unmarshal([]byte(tc.body), &m); err != nil {
				t.Fatal(err)
			}
			var validator []string
			var verr *manifest.ValidationError
			if err := manifest.Validate(&m); errors.As(err, &verr) {
				for _, p := range verr.Problems {
					validator = append(validator, p.Field)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			want := strings.Join(tc.fields, " | ")
			if got := strings.Join(checker, " | "); got != want {
				t.Errorf("checker: %q, want %q", got, want)
			}
			if got := strings.Join(validator, " | "); got != want {
				t.Errorf("validator: %q, want %q", got, want)
			}
		})
	}
}
