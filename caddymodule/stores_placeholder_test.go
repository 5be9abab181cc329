package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// A Redis URL whose placeholder comes out empty (its environment variable
// unset on this machine) is refused at load, naming the option and the
// placeholder: with {env.REDIS_HOST} empty, redis://:6379/0 dialled
// localhost while the operator believed the limits shared, and `caddy
// validate` passed; with {env.REDIS_PASSWORD} empty the client went
// without a password and every decision failed at run time; with
// {env.REDIS_URL} empty the error said only "not a URL". The global
// option's URL is checked the same way, where it is written, and the
// message names it.
func TestRedisURLEmptyPlaceholderRefused(t *testing.T) {
	t.Setenv("RV_SET_REDIS_HOST", "127.0.0.1")
	const site = `http://a:8080 {
	ahp {
		name Shop
		content_signals {
			ai_input true
		}
		rate_limit {
			store redis %s
		}
	}
	reverse_proxy 127.0.0.1:9
}`
	const option = "ahp rate_limit store redis"
	for _, c := range []struct{ name, global, url, where, want string }{
		{"empty host", "", "redis://{env.RV_UNSET_REDIS_HOST}:6379/0", option, "{env.RV_UNSET_REDIS_HOST}"},
		{"empty password", "", "redis://:{env.RV_UNSET_REDIS_PASSWORD}@127.0.0.1:6379/0", option, "{env.RV_UNSET_REDIS_PASSWORD}"},
		{"empty URL", "", "{env.RV_UNSET_REDIS_URL}", option, "{env.RV_UNSET_REDIS_URL}"},
		{"global option", "ahp {\n\t\tredis {env.RV_UNSET_REDIS_URL}\n\t}", "", "ahp global option redis", "{env.RV_UNSET_REDIS_URL}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := validateWithGlobals(t, c.global, strings.Replace(site, "%s", c.url, 1))
			if err == nil || !strings.Contains(err.Error(), c.where) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want an error naming the option and %s", err, c.want)
			}
		})
	}
	if err := validateWithGlobals(t, "", strings.Replace(site, "%s", "redis://{env.RV_SET_REDIS_HOST}:6379/0", 1)); err != nil {
		t.Fatalf("a placeholder that is set: %v", err)
	}
}

// validateWithGlobals is `caddy validate` of a Caddyfile with global
// options besides the tests' own.
func validateWithGlobals(t *testing.T, globals, sites string) error {
	t.Helper()
	in := "{\n\tadmin off\n\tauto_https off\n\tstorage file_system " + t.TempDir() + "\n\t" + globals + "\n}\n" + sites
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}
