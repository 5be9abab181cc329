package caddymodule

import (
	"strings"
	"testing"
)

// Two handshake_prompt blocks in one site on the same endpoints (an
// imported snippet and the site's own block, say) are refused: the first
// answers every request for them, so the second's ttl, rate, hooks, store
// and zone were lost without a word. Blocks on endpoints of their own, in
// routes a matcher keeps apart, or apart by a path rewritten between them
// (handle_path), still load.
func TestHandshakeTwoBlocksOnOneEndpointRefused(t *testing.T) {
	site := func(body ...string) string {
		return "http://a:8080 {\n\t" + strings.Join(body, "\n\t") + "\n\treverse_proxy 127.0.0.1:9\n}\n"
	}
	for _, c := range []struct {
		name, in string
		refused  bool
	}{
		{"same defaults", site("handshake_prompt {\n\t\tttl 1h\n\t}", "handshake_prompt {\n\t\trate 10/minute\n\t}"), true},
		{"same prefix", site("handshake_prompt {\n\t\tprefix /hs\n\t}", "handshake_prompt {\n\t\tprefix /hs/\n\t\tws_prefix /ws/other\n\t}"), true},
		{"same ws_prefix", site("handshake_prompt {\n\t\tprefix /one\n\t}", "handshake_prompt {\n\t\tprefix /two\n\t}"), true},
		{"an earlier route", site("route {\n\t\thandshake_prompt\n\t}", "handshake_prompt {\n\t\tzone other\n\t}"), true},
		{"endpoints of their own", site("handshake_prompt", "handshake_prompt {\n\t\tprefix /hs2\n\t\tws_prefix /ws/hs2\n\t}"), false},
		{"one block", site("handshake_prompt"), false},
		{"kept apart by matchers", site("@a host a.example\n\thandshake_prompt @a", "@b host b.example\n\thandshake_prompt @b {\n\t\tzone b\n\t}"), false},
		// /x/handshake/… reaches the second as /handshake/…, which the
		// first, seeing /x/handshake/…, passed on.
		{"kept apart by handle_path", site("handle_path /x/* {\n\t\thandshake_prompt\n\t}", "handshake_prompt {\n\t\tzone other\n\t}"), false},
		{"kept apart by uri strip_prefix", site("handshake_prompt", "route /x/* {\n\t\turi strip_prefix /x\n\t\thandshake_prompt {\n\t\t\tzone other\n\t\t}\n\t}"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := validate(t, c.in)
			if c.refused && (err == nil || !strings.Contains(err.Error(), "handshake_prompt: a second handshake_prompt block")) {
				t.Fatalf("got %v; want the second block refused", err)
			}
			if !c.refused && err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}
