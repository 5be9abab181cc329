package caddymodule

import (
	"strings"
	"testing"
)

// A JSON config is held to the Caddyfile's bounds for verified_agents:
// `no_fetch` with nothing pinned would verify nobody, and a negative
// clock_skew, max_validity or fetch_timeout would silently become the
// default.
func TestJSONVerifiedAgentsValidated(t *testing.T) {
	for _, c := range []struct{ va, want string }{
		{`"no_fetch":true`, "pin"},
		{`"clock_skew":-60000000000`, "clock_skew"},
		{`"max_validity":-1`, "max_validity"},
		{`"fetch_timeout":-1`, "fetch_timeout"},
	} {
		_, err := provisionJSON(t, `{`+jsonShop+`,"verified_agents":{`+c.va+`}}`)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "verified_agents") {
			t.Errorf("verified_agents {%s}: got %v, want an error naming verified_agents and %q", c.va, err, c.want)
		}
	}
	if _, err := provisionJSON(t, `{`+jsonShop+`,"verified_agents":{"clock_skew":30000000000}}`); err != nil {
		t.Errorf("a valid verified_agents refused: %v", err)
	}
}
