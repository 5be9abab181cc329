package caddymodule

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// keyCodes sends one manifest request from each address to h and returns
// the answers' status codes.
func keyCodes(t *testing.T, h *Handler, addrs ...string) []int {
	t.Helper()
	var codes []int
	for _, addr := range addrs {
		r, _ := caddyRequest(http.MethodGet, "/.well-known/agent.json")
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: addr}))
		r.RemoteAddr = net.JoinHostPort(addr, "1234")
		w := httptest.NewRecorder()
		_ = h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
		codes = append(codes, w.Code)
	}
	return codes
}

// TestRateLimitKeyNamesAClient: a key that can only be a constant (no
// placeholder, a brace forgotten) would put every client in one bucket, so
// it does not load; a request for which a placeholder of the key comes out
// empty (one Caddy does not have, a header the request lacks, also inside
// a longer key) is limited by its address — an IPv6 one by its /64, as the
// default key counts it — not in one bucket with every other such request.
func TestRateLimitKeyNamesAClient(t *testing.T) {
	for _, key := range []string{"client_ip", "{client_ip", "client_ip}", "{}", "{a{b}}"} {
		_, err := provisionJSON(t, `{`+jsonShop+`,"rate_limit":{"key":"`+key+`","zone":"key-literal","static":"1/minute"}}`)
		if err == nil || !strings.Contains(err.Error(), "ahp rate_limit key") || !strings.Contains(err.Error(), "{client_ip}") {
			t.Errorf("key %q: %v, want it refused naming the directive and {client_ip}", key, err)
		}
	}
	for i, key := range []string{"{remote_ip}", "{http.request.header.X-Api-Key}", "tenant-{http.request.header.X-Api-Key}"} {
		h, err := provisionJSON(t, `{`+jsonShop+`,"rate_limit":{"key":"`+key+`","zone":"key-empty-`+string(rune('a'+i))+`","static":"1/minute"}}`)
		if err != nil {
			t.Fatalf("key %s: %v", key, err)
		}
		if codes := keyCodes(t, h, "192.0.2.1", "198.51.100.2", "192.0.2.1"); codes[0] != http.StatusOK || codes[1] != http.StatusOK || codes[2] != http.StatusTooManyRequests {
			t.Errorf("key %s: answers %v, want 200 200 429 (each address its own 1/minute)", key, codes)
		}
		if codes := keyCodes(t, h, "2001:db8::1", "2001:db8::2"); codes[1] != http.StatusTooManyRequests {
			t.Errorf("key %s: two addresses of one /64 answered %v, want the second refused (one /64 is one client)", key, codes)
		}
	}
}

// TestRateLimitKeyFallbackIsNoKeyValue: the address bucket of requests
// without the key's header is not one a client can name by sending that
// address as the header's value.
func TestRateLimitKeyFallbackIsNoKeyValue(t *testing.T) {
	h, err := provisionJSON(t, `{`+jsonShop+`,"rate_limit":{"key":"{http.request.header.X-Api-Key}","zone":"review-key-collide","static":"1/minute"}}`)
	if err != nil {
		t.Fatal(err)
	}
	send := func(addr, apiKey string) int {
		r, _ := caddyRequest(http.MethodGet, "/.well-known/agent.json")
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: addr}))
		r.RemoteAddr = net.JoinHostPort(addr, "1234")
		if apiKey != "" {
			r.Header.Set("X-Api-Key", apiKey)
		}
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddyhttp.NewTestReplacer(r)))
		w := httptest.NewRecorder()
		_ = h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
		return w.Code
	}
	if c := send("198.51.100.9", "192.0.2.1"); c != http.StatusOK {
		t.Fatalf("attacker's first request: %d", c)
	}
	if c := send("192.0.2.1", ""); c != http.StatusOK {
		t.Errorf("a visitor at 192.0.2.1 without the header answered %d after another client sent X-Api-Key: 192.0.2.1; want 200 (its own bucket)", c)
	}
}
