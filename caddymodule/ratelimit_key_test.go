package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestRateLimitKeyNamesAClient: a key with no placeholder (the braces
// forgotten) would put every client in one bucket, so it does not load;
// a key that comes out empty for a request (a placeholder Caddy does not
// have, a header the request lacks) limits that request by its address,
// not in one bucket with every other such request.
func TestRateLimitKeyNamesAClient(t *testing.T) {
	_, err := provisionJSON(t, `{`+jsonShop+`,"rate_limit":{"key":"client_ip","zone":"key-literal","static":"1/minute"}}`)
	if err == nil || !strings.Contains(err.Error(), "ahp rate_limit key") || !strings.Contains(err.Error(), "{client_ip}") {
		t.Errorf("a key without a placeholder: %v, want it refused naming the directive and {client_ip}", err)
	}
	for _, key := range []string{"{remote_ip}", "{http.request.header.X-Api-Key}"} {
		h, err := provisionJSON(t, `{`+jsonShop+`,"rate_limit":{"key":"`+key+`","zone":"key-empty-`+strings.Trim(key, "{}")+`","static":"1/minute"}}`)
		if err != nil {
			t.Fatalf("key %s: %v", key, err)
		}
		var codes []int
		for _, addr := range []string{"192.0.2.1", "198.51.100.2", "192.0.2.1"} {
			r, _ := caddyRequest(http.MethodGet, "/.well-known/agent.json")
			r.RemoteAddr = addr + ":1234"
			caddyhttp.SetVar(r.Context(), caddyhttp.ClientIPVarKey, addr)
			w := httptest.NewRecorder()
			_ = h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
			codes = append(codes, w.Code)
		}
		if codes[0] != http.StatusOK || codes[1] != http.StatusOK || codes[2] != http.StatusTooManyRequests {
			t.Errorf("key %s: answers %v, want 200 200 429 (each address its own 1/minute)", key, codes)
		}
	}
}
