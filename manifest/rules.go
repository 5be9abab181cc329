package manifest

import "fmt"

// RuleProblem is a broken spec rule about the manifest that its JSON
// Schema cannot express.
type RuleProblem struct {
	// Field is where: "modes", "capabilities[0] (book_demo).mode".
	Field string
	// Message says what the spec requires, in terms any site's operator
	// understands (the conformance checker prints it as is).
	Message string
	// Hint says how to fix it in this plugin's config ("" when the
	// message says it all); Validate appends it.
	Hint string
}

func (p RuleProblem) String() string { return p.Field + ": " + p.Message }

// SpecRules checks the spec's MUSTs about a manifest that no JSON Schema
// can say: how modes, capabilities, action types, schemas and
// authentication must agree. It is the one list of them: Validate runs it
// on the manifest this plugin serves, and the conformance checker
// (`caddy ahp check`) on the manifest a site serves, so that the two
// never disagree. Only the fields it reads matter: Modes, Authentication,
// Async and each capability's Name, Mode, ActionType and whether it has
// InputSchema and OutputSchema.
func SpecRules(m *Manifest) []RuleProblem {
	var ps []RuleProblem
	add := func(field, hint, format string, args ...any) {
		ps = append(ps, RuleProblem{Field: field, Message: fmt.Sprintf(format, args...), Hint: hint})
	}
	auth := m.Authentication
	if auth == "" {
		auth = AuthNone
	}
	seen := map[string]int{}
	hasConversable, has3 := false, false
	for i := range m.Capabilities {
		c := &m.Capabilities[i]
		field := capField(i, c.Name)
		if j, dup := seen[c.Name]; dup {
			add(field+".name", "", "duplicate capability name (also capabilities[%d]); names must be unique", j)
		}
		seen[c.Name] = i
		switch c.Mode {
		case Mode2:
			hasConversable = true
		case Mode3:
			hasConversable, has3 = true, true
		}
		// An unknown mode has its own error; "add it to modes" would fix nothing.
		if (c.Mode == Mode1 || c.Mode == Mode2 || c.Mode == Mode3) && len(m.Modes) > 0 && !m.HasMode(c.Mode) {
			add(field+".mode", "add it to `modes` or leave `modes` out to derive it", "%s is not listed in modes %v: an agent reading modes never uses this capability (spec §4.3, §5)", c.Mode, m.Modes)
		}
		if c.Mode == Mode3 {
			if c.ActionType == "" {
				add(field+".action_type", "add `action_type query|action|async`", "MODE3 capabilities must declare action_type query, action or async (spec §5.3)")
			}
			if len(c.InputSchema) == 0 {
				add(field+".input_schema", "add `input_schema <file.json>`", "MODE3 capabilities must declare input_schema (spec §5.3)")
			}
			if len(c.OutputSchema) == 0 {
				add(field+".output_schema", "add `output_schema <file.json>`", "MODE3 capabilities must declare output_schema (spec §5.3)")
			}
		} else if c.ActionType != "" && c.Mode != "" {
			add(field+".action_type", "set `mode MODE3` or remove action_type", "action_type is for MODE3 capabilities, not %s (spec §5.3)", c.Mode)
		}
		if c.NeedsAuth() && auth == AuthNone {
			add(field+".action_type", "set `authentication bearer` or `authentication api_key`", "%q capabilities must require authentication (spec §5.3), but authentication is %q", c.ActionType, auth)
		}
		if c.ActionType == ActionAsync && (m.Async == nil || !m.Async.Supported) {
			add(field+".action_type", "add `async { supported true }` or change action_type", "async capabilities require async.supported true (spec §5.3, §9)")
		}
	}
	if m.HasMode(Mode2) || m.HasMode(Mode3) {
		if len(m.Capabilities) == 0 {
			add("capabilities", "add a `capability <name> { ... }` block", "modes list MODE2/MODE3 but no capability is declared (spec §4.3)")
		} else {
			if m.HasMode(Mode2) && !hasConversable {
				add("modes", "add a MODE2 capability or remove MODE2 from `modes`", "modes lists MODE2 but no capability has mode MODE2 or MODE3 (spec §5.2)")
			}
			if m.HasMode(Mode3) && !has3 {
				add("modes", "add a MODE3 capability (with input_schema and output_schema) or remove MODE3 from `modes`", "modes lists MODE3 but no capability has mode MODE3 (spec §5.3: MODE3 capabilities are declared with explicit input and output schemas)")
			}
		}
	}
	if len(m.Modes) > 0 && !m.HasMode(Mode1) {
		add("modes", "", "must include MODE1: every AHP site keeps MODE1 compatibility (spec §5.1, §5.2, §12)")
	}
	return ps
}
