package mcp

import (
	"net/http"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/integrations/internal/sitetest"
)

// TestResourceURIsReadableBehindProxy: behind a trusted proxy that
// rewrites Host, resources/list names the resources on the public host
// (X-Forwarded-Host); reading the URI it listed must work, and a status
// URI the accepted answer gave must too.
func TestResourceURIsReadableBehindProxy(t *testing.T) {
	f := newFixture(t, nil, Options{TrustedPeer: func(*http.Request) bool { return true }})
	hdr := []string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "www.example.com"}
	_, resp := f.rpc("resources/list", "", hdr...)
	uri := resultOf(t, resp)["resources"].([]any)[0].(map[string]any)["uri"].(string)
	if uri != "https://www.example.com/llms.txt" {
		t.Fatalf("listed %s", uri)
	}
	_, resp = f.rpc("resources/read", `{"uri":"`+uri+`"}`, hdr...)
	if _, ok := resp["result"]; !ok {
		t.Fatalf("reading the listed %s: %v", uri, resp)
	}
	if c := resultOf(t, resp)["contents"].([]any)[0].(map[string]any); c["text"] != sitetest.Content {
		t.Errorf("read %s: %v", uri, c)
	}
	// The public host only from a trusted peer: from another, the
	// forwarded name is no name of this site.
	u := newFixture(t, nil, Options{TrustedPeer: func(*http.Request) bool { return false }})
	_, resp = u.rpc("resources/read", `{"uri":"https://www.example.com/llms.txt"}`, hdr...)
	if code, _ := errorOf(t, resp); code != codeResourceNotFound {
		t.Errorf("untrusted X-Forwarded-Host read: %v, want -32002", resp)
	}
}
