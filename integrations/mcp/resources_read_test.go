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

// TestRefusedStatusReadCharged: a status read is charged as the status
// path charges it, the door's own refusals of its credential too (a
// _meta.auth that is no string, or that no header can carry), as
// tools/call charges them, and params it cannot read static: otherwise
// a client floods status reads for free, 32 to a batch.
func TestRefusedStatusReadCharged(t *testing.T) {
	f := newFixture(t, nil, Options{})
	for name, params := range map[string]string{
		"_meta.auth not a string": `{"uri":"/agent/converse/status/q-1","_meta":{"auth":7}}`,
		"_meta.auth with a space": `{"uri":"/agent/converse/status/q-1","_meta":{"auth":"a b"}}`,
		"_meta not an object":     `{"uri":"/agent/converse/status/q-1","_meta":5}`,
	} {
		f.site.Charged()
		_, resp := f.rpc("resources/read", params)
		if code, _ := errorOf(t, resp); code != codeInvalidParams {
			t.Errorf("%s: %v, want -32602", name, resp)
		}
		if got := f.site.Charged(); len(got) != 1 {
			t.Errorf("%s: charged %v, want one charge", name, got)
		}
	}
}
