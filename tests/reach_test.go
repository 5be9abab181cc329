package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// The operator review's placements of a directive where requests for its
// own endpoints never reach it, and its warning about trusted_proxies for
// every directive keying limits on {client_ip}: each runs `caddy validate`
// on a whole Caddyfile the way an operator would.

// validateFull writes caddyfile, global options included, into a temp dir
// and runs `caddy validate` on it from the repository root (where the
// examples' relative paths resolve).
func validateFull(t *testing.T, caddyfile string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	return caddyproc.Cmd(t, caddyproc.RepoRoot(), "validate", "--config", path, "--adapter", "caddyfile")
}

func reachLastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

const reachAHPBlock = `		ahp {
			name "S"
			description "d"
			converse /agent/converse
			authentication bearer
			content_signals {
				ai_input true
			}
			capability book_demo {
				mode MODE3
				action_type action
				description "Book"
				response_types application/data
				input_schema examples/schemas/book_demo.in.json
				output_schema examples/schemas/book_demo.out.json
			}
			auth {
				key abcdefghijklmnopqrstuvwxyz
			}
		}
`

// TestDirectiveNeverReachedIsRefused: an operator who puts `ahp`
// into the catch-all `handle {}` next to `reverse_proxy legacy`, with the
// concierge in its own `handle @concierge` (the README's route, one level
// down), gets a config that validates and runs silently, and in which every
// converse call reaches the concierge around the gateway: no credentials
// check for the MODE3 action, no validation, no rate limit, no Link
// (the operator review reproduced it end to end). The same holds
// for ahp in `handle /blog/*` (its manifest and converse path are never
// its own) and for ahp after a responding handler in a `route` block.
// `caddy validate` refuses a directive placed where its own paths cannot
// reach it, naming the endpoint and the fix; ahp beside the concierge's
// handle inside the same catch-all handle still loads.
func TestDirectiveNeverReachedIsRefused(t *testing.T) {
	cases := map[string]string{
		"catch-all handle beside the concierge handle": `{
	admin off
	auto_https off
}

http://localhost:19601 {
	@concierge path /agent/converse /agent/converse/status/*
	handle @concierge {
		reverse_proxy localhost:19082
	}
	handle {
` + reachAHPBlock + `		reverse_proxy localhost:19081
	}
}
`,
		"handle with a path matcher": `{
	admin off
	auto_https off
}

http://localhost:19601 {
	handle /blog/* {
` + reachAHPBlock + `		reverse_proxy localhost:19081
	}
	handle {
		reverse_proxy localhost:19081
	}
}
`,
		// agent_handoff the same way: /v1/* reaches the provider's backend
		// around the proof of work, with a client's forged
		// X-Agent-Handoff-Admission header unstripped (the stand-in backend
		// then creates a sandbox).
		"agent_handoff in the catch-all handle, the API in handle /v1/*": `{
	admin off
	auto_https off
}

http://localhost:19611 {
	handle /v1/* {
		reverse_proxy 127.0.0.1:19000
	}
	handle {
		agent_handoff {
			provider "Example FAQ" https://docs.example.com/agents
			content_types faq
		}
		reverse_proxy 127.0.0.1:19000
	}
}
`,
		"after reverse_proxy in a route block": `{
	admin off
	auto_https off
}

http://localhost:19601 {
	route {
		reverse_proxy localhost:19081
` + reachAHPBlock + `	}
}
`,
	}
	for name, cf := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := validateFull(t, cf)
			if err == nil || !strings.Contains(out, "never reaches this") || !strings.Contains(out, "directly in the site block") {
				t.Errorf("caddy validate accepted the directive where requests for its own paths (manifest, converse, create) never reach it, or did not say how to fix it (err %v):\n%s", err, reachLastLines(out, 4))
			}
		})
	}
	out, err := validateFull(t, `{
	admin off
	auto_https off
}

http://localhost:19601 {
	handle /static/* {
		file_server
	}
	handle {
`+reachAHPBlock+`		@concierge path /agent/converse /agent/converse/status/*
		handle @concierge {
			reverse_proxy localhost:19082
		}
		reverse_proxy localhost:19081
	}
}
`)
	if err != nil {
		t.Errorf("ahp and the concierge's handle inside one catch-all handle: %v; want it valid:\n%s", err, reachLastLines(out, 4))
	}
}

// TestNonStrictProxiesWarnedForEveryDirective: README.md promises
// that "the plugin warns at startup when a Caddyfile's servers block trusts
// proxies without [trusted_proxies_strict]". It does for ahp, but
// agent_handoff (per-client and per-network limits, per-network PoW
// difficulty, claim lockouts) and handshake_prompt (create_rate, ws_rate)
// key on the same {client_ip}, which a client then forges with
// X-Forwarded-For; a site with only those directives must hear it too
// (at startup here; at the first forged address for a JSON config:
// caddymodule's TestNonStrictProxiesWarnedOncePerServerAtRuntime).
func TestNonStrictProxiesWarnedForEveryDirective(t *testing.T) {
	blocks := map[string]string{
		"agent_handoff":    "\tagent_handoff {\n\t\tprovider \"P\" https://p.example/docs\n\t}\n",
		"handshake_prompt": "\thandshake_prompt {\n\t\tinject forms\n\t}\n",
	}
	for name, blk := range blocks {
		t.Run(name, func(t *testing.T) {
			out, err := validateFull(t, "{\n\tadmin off\n\tservers {\n\t\ttrusted_proxies static private_ranges\n\t}\n}\n\nhttp://localhost:19603 {\n"+
				blk+"\treverse_proxy localhost:19700\n}\n")
			if err != nil {
				t.Fatalf("caddy validate: %v\n%s", err, out)
			}
			if !strings.Contains(out, "trusted_proxies_strict") {
				t.Errorf("%s behind trusted_proxies without trusted_proxies_strict: no warning; clients can pick their own {client_ip}:\n%s", name, reachLastLines(out, 3))
			}
		})
	}
}
