package routes

import (
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// With a matcher on ahp, every spelling the gateway refuses still meets
// it, including those Caddy's path matcher would not fold (a second
// percent-decoding, '\' for '/'): on a route matcher they would pass around
// ahp to the site's broad concierge route unchecked (here the MODE3
// capability needs a bearer token: the gateway answers 401 or 400).
func TestMatcherOnAHPRefusedSpellingsMeetTheGateway(t *testing.T) {
	s := caddyproc.Start(t, `:{{PORT}} {
	ahp /docs/* {
		name "Docs"
		content_signals {
			ai_input true
		}
		converse /agent/converse
		authentication bearer
		capability book {
			mode MODE3
			action_type action
			description "Book"
			input_schema {{REPO}}/examples/schemas/book_demo.in.json
			output_schema {{REPO}}/examples/schemas/book_demo.out.json
		}
	}
	@concierge path /agent/*
	handle @concierge {
		respond "the concierge, reached: {http.request.uri.path}" 200
	}
	respond "a page" 200
}
`)
	for _, p := range []string{
		`/agent\converse`,     // IIS and .NET read '\' as '/'
		"/agent/%2563onverse", // a stack that decodes twice
		"/agent/converse",     // control: exact spelling meets the gateway
	} {
		r := s.Do("POST", p, strings.NewReader(`{"capability":"book","query":"book it"}`),
			"Content-Type", "application/json")
		if strings.Contains(string(r.Bytes), "the concierge, reached") {
			t.Errorf("POST %s = %d %q; a spelling pathguard refuses reached the concierge route without the gateway", p, r.StatusCode, r.Bytes)
		}
	}
}

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
