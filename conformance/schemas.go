package conformance

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/caddy-ahp/caddy-ahp/schema"
)

// ReportSchema is the JSON Schema (2020-12) of the JSON report: the
// documented, stable format of `caddy ahp check --json`.
//
//go:embed report.schema.json
var ReportSchema []byte

// agentAccessSchema is the shape this checker expects of an Agent Handoff
// discovery document (spec §6.1; which fields are required is ours, see
// docs/conformance.md).
//
//go:embed agent-access.schema.json
var agentAccessSchema []byte

const ahpSchemaBase = "https://agenthandshake.dev/schema/0.1/"

var (
	schemasOnce sync.Once
	schemasErr  error
	// responseBranches are the response schema's definitions by the
	// status that selects them; validating against the branch rather than
	// the whole oneOf follows the spec where the schema file disagrees
	// (a success with a string session_id also matches pending_response).
	responseBranches map[string]*jsonschema.Schema
	agentAccess      *jsonschema.Schema
)

func compileSchemas() error {
	schemasOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft7)
		for _, n := range []string{schema.ManifestSchema, schema.RequestSchema, schema.ResponseSchema} {
			doc, err := schema.Document(n)
			if err != nil {
				schemasErr = err
				return
			}
			if err := c.AddResource(ahpSchemaBase+n, doc); err != nil {
				schemasErr = err
				return
			}
		}
		branches := map[string]string{
			"success":              "success_response",
			"clarification_needed": "clarification_response",
			"accepted":             "accepted_response",
			"pending":              "pending_response",
			"error":                "error_response",
		}
		responseBranches = map[string]*jsonschema.Schema{}
		for status, def := range branches {
			s, err := c.Compile(ahpSchemaBase + schema.ResponseSchema + "#/definitions/" + def)
			if err != nil {
				schemasErr = err
				return
			}
			responseBranches[status] = s
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(agentAccessSchema))
		if err != nil {
			schemasErr = err
			return
		}
		const id = "https://github.com/caddy-ahp/caddy-ahp/conformance/agent-access.schema.json"
		ac := jsonschema.NewCompiler()
		if err := ac.AddResource(id, doc); err != nil {
			schemasErr = err
			return
		}
		agentAccess, schemasErr = ac.Compile(id)
	})
	return schemasErr
}

// checkResponse validates a converse answer against the response schema's
// branch for its status; problems are readable lines.
func checkResponse(body []byte) []string {
	if err := compileSchemas(); err != nil {
		return []string{"the checker's schemas do not compile: " + err.Error()}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return []string{"not JSON: " + clip(string(body), 80)}
	}
	obj, ok := inst.(map[string]any)
	if !ok {
		return []string{"not a JSON object"}
	}
	status, _ := obj["status"].(string)
	s, ok := responseBranches[status]
	if !ok {
		return []string{fmt.Sprintf("status %q is not one of success, clarification_needed, accepted, pending, error", status)}
	}
	return problemStrings(schema.CheckValue(s, inst))
}

// checkAgainst validates a JSON body against a compiled schema.
func checkAgainst(s *jsonschema.Schema, body []byte) []string {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return []string{"not JSON: " + clip(string(body), 80)}
	}
	return problemStrings(schema.CheckValue(s, inst))
}

func problemStrings(ps []schema.Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
