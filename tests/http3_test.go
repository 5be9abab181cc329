package tests

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
	"github.com/quic-go/quic-go/http3"
)

// Over HTTP/3 (Caddy serves it on every TLS site by default) the
// refusals of an oversized body must be well-formed responses: they ask
// HTTP/1.1 to close the connection, and a Connection field in an HTTP/3
// response makes the client reject it as malformed (RFC 9114 §4.2), so
// the agent got a transport error in place of 413 request_too_large.
func TestHTTP3TooLargeRefusals(t *testing.T) {
	httpPort := caddyproc.FreePort(t)
	s := caddyproc.StartFull(t, fmt.Sprintf(`{
	admin localhost:{{ADMIN}}
	persist_config off
	grace_period 1s
	local_certs
	skip_install_trust
	http_port %d
	https_port {{PORT}}
	auto_https disable_redirects
}
https://localhost:{{PORT}} {
	tls internal
	ahp {
		name "H3 Site"
		description "Served over HTTP/3"
		converse /agent/converse
		content_signals {
			ai_input true
		}
		capability site_info {
			mode MODE2
			description "General information"
		}
		mcp /mcp
		openapi /openapi.json
	}
	respond /agent/converse `+"`"+`{"status":"success","response":"ok"}`+"`"+`
	respond "<html><body>hi</body></html>"
}
`, httpPort))
	tr := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}}
	defer tr.Close()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	base := fmt.Sprintf("https://localhost:%d", s.Port)

	// The site answers over HTTP/3 at all (the certificate is issued at start).
	var resp *http.Response
	var err error
	for i := 0; i < 50; i++ {
		if resp, err = client.Get(base + "/"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("GET / over HTTP/3: %v", err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 3 || resp.Header.Get("Link") == "" {
		t.Fatalf("GET /: %s, Link %q", resp.Proto, resp.Header.Get("Link"))
	}

	for _, c := range []struct{ path, body, accept string }{
		{"/agent/converse", `{"capability":"site_info","query":"` + strings.Repeat("x", 9000) + `"}`, ""},
		{"/mcp", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 70000) + `"}}`, "application/json, text/event-stream"},
		{"/capabilities/site_info", `{"query":"hi"` + strings.Repeat(" ", 70000) + `}`, ""},
	} {
		req, _ := http.NewRequest(http.MethodPost, base+c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		if c.accept != "" {
			req.Header.Set("Accept", c.accept)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("POST %s (%d bytes) over HTTP/3: %v", c.path, len(c.body), err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s over HTTP/3: %d %s, want 413", c.path, resp.StatusCode, b)
		}
	}
}
