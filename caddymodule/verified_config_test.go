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

// A JSON shared_cache_redis without "shared_cache": "redis" is refused,
// as rate_limit refuses a Redis URL without store redis: it was ignored,
// and each instance fetched agents' keys for itself while the operator
// believed them shared. The error never shows the URL's password.
func TestJSONSharedCacheRedisWithoutKindRefused(t *testing.T) {
	const url = "redis://:s3cretpass@127.0.0.1:1/0"
	for _, kind := range []string{``, `"shared_cache":"off",`} {
		_, err := provisionJSON(t, `{`+jsonShop+`,"verified_agents":{`+kind+`"shared_cache_redis":"`+url+`"}}`)
		if err == nil || !strings.Contains(err.Error(), "ahp verified_agents shared_cache") || !strings.Contains(err.Error(), "shared_cache redis <url>") {
			t.Errorf("verified_agents {%s shared_cache_redis: <url>}: got %v, want the URL refused without shared_cache redis", kind, err)
		} else if strings.Contains(err.Error(), "s3cretpass") {
			t.Errorf("the error shows the Redis password: %v", err)
		}
	}
}
