package handshake_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// upgrade dials the session's socket and returns the HTTP answer of a
// refused upgrade (status 101 when it was accepted).
func upgrade(t *testing.T, s *caddyproc.Server, sid, tok string) (int, map[string]any, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, fmt.Sprintf("ws://127.0.0.1:%d/ws/handshake/%s?token=%s", s.Port, sid, tok), nil)
	if err == nil {
		t.Cleanup(func() { _ = c.CloseNow() })
		return http.StatusSwitchingProtocols, nil, nil
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, resp.Header
}

// Through Caddy, an upgrade is refused before it is accepted: a wrong
// token, a session's socket cap, the client's upgrade rate ({client_ip}).
func TestWebSocketRefusalsThroughCaddy(t *testing.T) {
	l := newLegacy(t)
	s := caddyproc.Start(t, site(l, "ws_per_session 1\n\t\tws_rate 4/minute"))
	se := create(t, s, form)
	if st, m, _ := upgrade(t, s, se.ID, "wrong"); st != 403 || m["error"] != "invalid token" {
		t.Errorf("wrong token: %d %v", st, m)
	}
	if st, m, _ := upgrade(t, s, se.ID, se.Token); st != 101 {
		t.Fatalf("first socket: %d %v", st, m)
	}
	if st, m, _ := upgrade(t, s, se.ID, se.Token); st != 429 || m["error"] != "too many sockets open for this session" {
		t.Errorf("second socket of the session with ws_per_session 1: %d %v", st, m)
	}
	se2 := create(t, s, form)
	if st, m, _ := upgrade(t, s, se2.ID, se2.Token); st != 101 {
		t.Fatalf("another session's socket: %d %v", st, m)
	}
	if st, m, hd := upgrade(t, s, se2.ID, se2.Token); st != 429 || m["error"] != "rate limit exceeded" || hd.Get("Retry-After") == "" {
		t.Errorf("fifth upgrade with ws_rate 4/minute: %d %v", st, m)
	}
}

// A Host that is not a plain host[:port] never becomes the prompt's base
// URL: on a catch-all site, creation is refused and names base_url.
func TestPromptHostThroughCaddy(t *testing.T) {
	l := newLegacy(t)
	s := caddyproc.Start(t, fmt.Sprintf("http://:{{PORT}} {\n\thandshake_prompt\n\treverse_proxy %s\n}\n", strings.TrimPrefix(l.URL, "http://")))
	r := call(t, s, "POST", "/handshake/session", form, "Host", "shop.example%40evil.example")
	if r.status != 400 || !strings.Contains(fmt.Sprint(r.json["error"]), "base_url") {
		t.Errorf("hostile Host: %d %s", r.status, r.body)
	}
	r = call(t, s, "POST", "/handshake/session", form, "Host", "shop.example")
	if r.status != 200 || !strings.Contains(fmt.Sprint(r.json["prompt"]), "- baseUrl: http://shop.example\n") {
		t.Errorf("plain Host: %d %s", r.status, r.body)
	}
}

// Hook paths are the plugin's: clients cannot call them in any spelling,
// and the site sees X-Handshake-Hook only on the plugin's own calls.
func TestHookPathsThroughCaddy(t *testing.T) {
	l := newLegacy(t)
	s := caddyproc.Start(t, site(l, "hooks {\n\t\t\tcreate /hpp/hooks/create\n\t\t}"))
	for path, want := range map[string]int{"/hpp/hooks/create": 403, "/HPP/hooks/create": 400, "/hpp/hooks/create/": 400, "/hpp//hooks/create": 400, "/hpp/hooks/%63reate": 400} {
		if r := call(t, s, "POST", path, `{"sessionId":"forged"}`, "X-Handshake-Hook", "create"); r.status != want {
			t.Errorf("client POST %s: %d %s, want %d", path, r.status, r.body, want)
		}
	}
	if c := l.calls("create"); len(c) != 0 {
		t.Fatalf("client requests reached the create hook: %+v", c)
	}
	// Another path of the site: passes, without the client's header.
	call(t, s, "POST", "/hpp/hooks/other", `{}`, "X-Handshake-Hook", "create")
	if c := l.calls("other"); len(c) != 1 || c[0].marked != "" {
		t.Errorf("the site saw a client's X-Handshake-Hook: %+v", c)
	}
	se := create(t, s, form, "Cookie", "session=abc")
	if c := l.calls("create"); len(c) != 1 || c[0].marked != "create" || c[0].body["sessionId"] != se.ID || c[0].cookie != "session=abc" {
		t.Errorf("the plugin's create hook: %+v", c)
	}
}

// caddy validate refuses a create hook that would send the browser's
// cookies over plain http to another host, naming the fix.
func TestHookURLValidate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	cf := "http://127.0.0.1:8080 {\n\thandshake_prompt {\n\t\thooks {\n\t\t\tcreate http://auth.internal/create\n\t\t}\n\t}\n\trespond ok\n}\n"
	if err := os.WriteFile(path, []byte(cf), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := caddyproc.Cmd(t, dir, "validate", "--config", path, "--adapter", "caddyfile")
	if err == nil || !strings.Contains(out, `handshake_prompt: hooks create \"http://auth.internal/create\"`) || !strings.Contains(out, "use https://") {
		t.Errorf("validate: %v\n%s", err, out)
	}
}
