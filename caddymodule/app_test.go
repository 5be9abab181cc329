package caddymodule

import (
	"strings"
	"testing"
)

// The global option's Redis URL is checked where it is written, and its
// errors name it: a site's `store redis` (no URL) was refused as "ahp
// rate_limit store redis: redis URL <redacted>: not a URL", sending the
// reader to a block that holds no URL, and a global URL no site used yet
// loaded however wrong (the next site to take it failed then). The
// error never shows the URL's password.
func TestGlobalRedisURLCheckedAndNamed(t *testing.T) {
	const site = ":8080 {\n\t" + plainAhp + "\n\trespond hi\n}\n"
	const withStore = ":8080 {\n\tahp {\n\t\tname Shop\n\t\tcontent_signals {\n\t\t\tai_input true\n\t\t}\n\t\trate_limit {\n\t\t\tstore redis\n\t\t}\n\t}\n\trespond hi\n}\n"
	for _, c := range []struct{ global, in, want string }{
		{"ahp {\n\t\tredis h0st:6379\n\t}", withStore, "ahp global option redis"},
		{"ahp {\n\t\tredis http://:s3cretpass@h:6379\n\t}", site, "ahp global option redis"},
		{"ahp {\n\t\tredis redis://:{env.AHP_TEST_UNSET_PASSWORD}@h:6379/0\n\t}", site, "ahp global option redis"},
	} {
		err := validateWithGlobals(t, c.global, c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("global %s: got %v, want an error naming %q", c.global, err, c.want)
		} else if strings.Contains(err.Error(), "s3cretpass") {
			t.Errorf("the error shows the Redis password: %v", err)
		}
	}
	if err := validateWithGlobals(t, "ahp {\n\t\tredis redis://127.0.0.1:1/0\n\t}", site); err != nil {
		t.Errorf("a valid global Redis URL: %v", err)
	}
}
