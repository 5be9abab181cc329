package caddymodule

import (
	"testing"
)

// TestReachHandoffUnderRewrite: the API mounted under a prefix —
// handle_path /api/* strips /api before agent_handoff, which then sees
// POST /v1/sandboxes (docs/agent-handoff.md) — loads: the block's matcher
// saw the path before the strip, so it cannot be judged by the probe.
func TestReachHandoffUnderRewrite(t *testing.T) {
	for name, cfg := range map[string]string{
		"handle_path":                 ":8080 {\n\thandle_path /api/* {\n\t\t" + reachHandoff + "\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\trespond hi\n}\n",
		"route with uri strip_prefix": ":8080 {\n\troute /api/* {\n\t\turi strip_prefix /api\n\t\t" + reachHandoff + "\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\trespond hi\n}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if err := validate(t, cfg); err != nil {
				t.Errorf("validate: %v; want it valid (POST /api/v1/sandboxes reaches agent_handoff as /v1/sandboxes)", err)
			}
		})
	}
}
