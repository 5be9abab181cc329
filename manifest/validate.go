package manifest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/caddy-ahp/caddy-ahp/schema"
)

// ValidationError lists every problem found in a manifest.
type ValidationError struct {
	Problems []schema.Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid AHP manifest")
	if len(e.Problems) == 1 {
		b.WriteString(": ")
		b.WriteString(e.Problems[0].String())
		return b.String()
	}
	fmt.Fprintf(&b, " (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Validate checks a completed manifest against the AHP 0.1 schema (as
// extended by package schema) and against the spec rules a schema cannot
// express. It returns a *ValidationError naming every problem.
func Validate(m *Manifest) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("invalid AHP manifest: %v", err)
	}
	problems, err := schema.Check(schema.ManifestSchema, raw)
	if err != nil {
		return err
	}
	for i := range problems {
		problems[i] = withHint(m, problems[i])
	}
	problems = append(problems, specRules(m)...)
	if len(problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: problems}
}

// specRules are the MUSTs of the spec that the JSON Schema cannot say:
// SpecRules (shared with the conformance checker), with their fixes in
// config terms, and the rules of serving the manifest from this plugin.
func specRules(m *Manifest) []schema.Problem {
	var ps []schema.Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, schema.Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	for _, p := range SpecRules(m) {
		msg := p.Message
		if p.Hint != "" {
			msg += ": " + p.Hint
		}
		ps = append(ps, schema.Problem{Field: p.Field, Message: msg})
	}
	needsConverse := m.HasMode(Mode2) || m.HasMode(Mode3)
	for i := range m.Capabilities {
		if c := m.Capabilities[i].Mode; c == Mode2 || c == Mode3 {
			needsConverse = true
		}
	}
	converse := m.ConversePath()
	if needsConverse && converse == "" {
		add("endpoints.converse", "MODE2/MODE3 require a converse endpoint (spec §5.2): add `converse /agent/converse`")
	}
	if converse != "" && !strings.HasPrefix(converse, "/") {
		add("endpoints.converse", "%q must be a path on this site, such as /agent/converse, so that requests to it pass through the plugin", converse)
	}
	if content := m.ContentPath(); content != "" && !strings.HasPrefix(content, "/") && !strings.Contains(content, "://") {
		add("endpoints.content", "%q must be a path such as /llms.txt or an absolute URL", content)
	}
	if converse != "" && converse == m.ContentPath() {
		add("endpoints", "converse and content cannot be the same path %q", converse)
	}
	for _, p := range []string{converse, m.ContentPath()} {
		if p == WellKnownPath {
			add("endpoints", "%s is the manifest's own path; choose another", p)
		}
	}
	return ps
}

func capField(i int, name string) string {
	if name == "" {
		return "capabilities[" + strconv.Itoa(i) + "]"
	}
	return fmt.Sprintf("capabilities[%d] (%s)", i, name)
}

var capIndex = regexp.MustCompile(`^capabilities\[(\d+)\]`)

// withHint names the capability and adds the fix for the schema violations
// an operator is likely to make.
func withHint(m *Manifest, p schema.Problem) schema.Problem {
	if sm := capIndex.FindStringSubmatch(p.Field); sm != nil {
		i, _ := strconv.Atoi(sm[1])
		if i < len(m.Capabilities) {
			p.Field = capField(i, m.Capabilities[i].Name) + p.Field[len(sm[0]):]
		}
	}
	hint := ""
	switch {
	case p.Field == "" && strings.Contains(p.Message, `"content_signals"`):
		hint = "add a `content_signals { ... }` block to the ahp block with at least `ai_input true|false` (and ai_train, search): spec §7 requires the site's AI usage declaration"
	case p.Field == "content_signals" && strings.Contains(p.Message, `"ai_input"`):
		hint = "add `ai_input true|false` to content_signals"
	case strings.HasSuffix(p.Field, ".name") && strings.Contains(p.Message, "pattern"):
		hint = "capability names are lowercase letters, digits and _, starting with a letter (e.g. content_search)"
	case strings.Contains(p.Field, "response_types") && strings.Contains(p.Message, "pattern"):
		hint = "use a registry type such as text/answer, application/data, application/feed, media/video, or an x-vendor/type extension"
	case strings.HasSuffix(p.Field, "requests") || p.Field == "rate_limit":
		hint = "write limits as N/second, N/minute, N/hour or N/day"
	case strings.HasSuffix(p.Field, ".description") && strings.Contains(p.Message, "maxLength"):
		hint = "shorten the description"
	case strings.HasPrefix(p.Field, "capabilities[") && strings.Contains(p.Message, `"description"`) && strings.Contains(p.Message, "missing"):
		hint = "add `description \"...\"` to the capability block"
	case strings.HasPrefix(p.Field, "capabilities[") && strings.Contains(p.Message, `"mode"`) && strings.Contains(p.Message, "missing"):
		hint = "add `mode MODE1|MODE2|MODE3` to the capability block"
	}
	if hint != "" {
		p.Message += "; " + hint
	}
	return p
}
