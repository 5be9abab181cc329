package doors

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// Behind a load balancer that rewrites Host (Host: backend:8080,
// X-Forwarded-Host: www.example.com, X-Forwarded-Proto: https), the doors
// name the public host when the balancer is one of the server's
// trusted_proxies (Caddy decides, as for {client_ip}): a same-origin
// browser's MCP call passes the Origin check, hosts is checked against the
// public host, and /openapi.json advertises https://www.example.com,
// varying on both fields. From a peer the server does not trust, the
// fields are anyone's and change nothing.
func TestDoorsBehindTrustedProxyUseForwardedHost(t *testing.T) {
	c := newConcierge(t)
	ping := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	forwarded := []string{"Host", "backend:8080", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "www.example.com"}
	for _, tc := range []struct {
		name, trusted string
		peerTrusted   bool
	}{
		{"the peer trusted", "127.0.0.1/32", true},
		{"the peer not trusted", "192.0.2.0/24", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := siteFull(t, c, "trusted_proxies static "+tc.trusted+"\n\t\ttrusted_proxies_strict", "http://:{{PORT}}",
				"mcp {\n\t\t\tpath /mcp\n\t\t\thosts www.example.com\n\t\t}", "")

			// A same-origin browser client of www.example.com.
			r := post(s, "/mcp", ping, append(forwarded, "Origin", "https://www.example.com")...)
			if want := map[bool]int{true: 200, false: 403}[tc.peerTrusted]; r.StatusCode != want {
				t.Errorf("Origin https://www.example.com: %d, want %d: %s", r.StatusCode, want, r.Bytes)
			}
			if cors := r.Header.Get("Access-Control-Allow-Origin"); cors != "" {
				t.Errorf("a same-origin answer has Access-Control-Allow-Origin %q", cors)
			}
			// hosts is checked against the public host: the backend's
			// name is not one of the site's, forwarded or not.
			if r := post(s, "/mcp", ping, "Host", "backend:8080", "Origin", "http://backend:8080"); r.StatusCode != 403 {
				t.Errorf("Origin naming the backend's Host, not in hosts: %d, want 403", r.StatusCode)
			}
			// A rebinding page through the trusted balancer names its
			// own host in both; hosts refuses it.
			if r := post(s, "/mcp", ping, "Host", "backend:8080", "X-Forwarded-Host", "attacker.example", "Origin", "http://attacker.example"); r.StatusCode != 403 {
				t.Errorf("rebinding through the balancer: %d, want 403", r.StatusCode)
			}

			r = s.Get("/openapi.json", forwarded...)
			var doc struct {
				Servers []struct{ URL string } `json:"servers"`
			}
			if err := json.Unmarshal(r.Bytes, &doc); err != nil || len(doc.Servers) == 0 {
				t.Fatalf("%d %v %s", r.StatusCode, err, r.Bytes)
			}
			wantURL := map[bool]string{true: "https://www.example.com", false: "http://backend:8080"}[tc.peerTrusted]
			if doc.Servers[0].URL != wantURL {
				t.Errorf("servers[0].url %q, want %s", doc.Servers[0].URL, wantURL)
			}
			var vary []string
			for _, v := range r.Header.Values("Vary") {
				for _, f := range strings.Split(v, ",") {
					vary = append(vary, strings.TrimSpace(f))
				}
			}
			for _, f := range []string{"X-Forwarded-Proto", "X-Forwarded-Host"} {
				if slices.Contains(vary, f) != tc.peerTrusted {
					t.Errorf("Vary %q: %s named %v, want %v", vary, f, !tc.peerTrusted, tc.peerTrusted)
				}
			}
			if !slices.Contains(vary, "Accept") {
				t.Errorf("Vary %q lost discovery's Accept", vary)
			}
		})
	}
}
