package tests

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// Caddy's request_body max_size in front of ahp, below the plugin's own
// caps: a chunked body over it is refused as too large by the converse
// gateway and both front doors, naming the size that was exceeded (not
// the door's own 64 KiB, which the agent never reached).
func TestRequestBodyMaxSizeRefusals(t *testing.T) {
	s := startCaddy(t, `:{{PORT}} {
	request_body {
		max_size 1000
	}
	ahp {
		name "Small Bodies"
		description "A site that caps request bodies"
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
`)
	for _, c := range []struct{ path, body, want string }{
		{"/agent/converse", `{"capability":"site_info","query":"` + strings.Repeat("x", 2000) + `"}`, "exceeds 1000 bytes"},
		{"/mcp", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 2000) + `"}}`, "exceeds 1000 bytes"},
		{"/capabilities/site_info", `{"query":"hi"` + strings.Repeat(" ", 2000) + `}`, "exceeds 1000 bytes"},
	} {
		// No Content-Length: request_body's reader stops the read, not
		// its early check of the length.
		req, _ := http.NewRequest(http.MethodPost, s.url(c.path), io.MultiReader(strings.NewReader(c.body)))
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := caddyproc.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := readAll(t, resp)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), c.want) {
			t.Errorf("POST %s, %d bytes chunked: %d %s; want 413 saying %q", c.path, len(c.body), resp.StatusCode, b, c.want)
		}
	}
}
