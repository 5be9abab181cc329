package caddymodule

import (
	"fmt"
	"strings"
	"testing"
)

// `rate_limit { verified N/unit }` on a site without `verified_agents`
// would never apply (no request can be a verified agent there): refused
// at load with the fix named, like skip_proof_of_work without it.
func TestVerifiedTierWithoutVerifiedAgentsRefused(t *testing.T) {
	const site = "ahp {\n\t\tname Shop\n\t\tconverse /agent/converse\n\t\tcontent_signals {\n\t\t\tai_input true\n\t\t}\n\t\tcapability ask {\n\t\t\tmode MODE2\n\t\t\tdescription Ask\n\t\t}\n\t\trate_limit {\n\t\t\tverified 120/minute\n\t\t}\n\t\t%s\n\t}"
	if _, err := provisionCaddyfile(t, fmt.Sprintf(site, "verified_agents")); err != nil {
		t.Fatalf("with verified_agents: %v", err)
	}
	for _, without := range []string{"", "verified_agents off"} {
		_, err := provisionCaddyfile(t, fmt.Sprintf(site, without))
		if err == nil || !strings.Contains(err.Error(), "verified_agents") || !strings.Contains(err.Error(), "rate_limit verified") {
			t.Fatalf("rate_limit verified with %q: %v; want it refused, naming verified_agents and rate_limit verified", without, err)
		}
	}
	// JSON too.
	if _, err := provisionJSON(t, `{`+jsonShop+`,"rate_limit":{"verified":"10/minute"}}`); err == nil || !strings.Contains(err.Error(), "verified_agents") {
		t.Fatalf("JSON rate_limit verified without verified_agents: %v", err)
	}
}
