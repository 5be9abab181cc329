package routes

import (
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// Pages of the site that merely begin with the plugin's paths (a guide at
// /mcp-guide, a FAQ at /agent/converse-faq) are outside `ahp /docs/*` like
// any other page: no Link header, notice, Markdown or static-tier charge.
func TestMatcherOnAHPLeavesLookalikePages(t *testing.T) {
	s := caddyproc.Start(t, `:{{PORT}} {
	ahp /docs/* {
		name "Docs"
		content_signals {
			ai_input true
		}
		converse /agent/converse
		capability ask {
			mode MODE2
			description "Ask"
			response_types text/answer
		}
		mcp /mcp
	}
	handle /whoami {
		respond "agent: {http.request.header.X-AHP-Verified-Agent}" 200
	}
	respond "a page" 200
}
`)
	for _, p := range []string{"/mcp-guide", "/agent/converse-faq", "/about"} {
		if r := s.Get(p); r.Header.Get("Link") != "" || string(r.Bytes) != "a page" {
			t.Errorf("GET %s = %d %q, Link %q; a page outside the matcher is the site's alone", p, r.StatusCode, r.Bytes, r.Header.Get("Link"))
		}
	}
	// Only the plugin says which agent a request proved to be, on pages
	// outside the matcher too: a client's own value never reaches a route.
	if r := s.Get("/whoami", "X-AHP-Verified-Agent", "https://forged.example"); string(r.Bytes) != "agent: " {
		t.Errorf("GET /whoami with a forged X-AHP-Verified-Agent = %q; want it dropped", r.Bytes)
	}
}
