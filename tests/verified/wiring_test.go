package verified_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
	"github.com/caddy-ahp/caddy-ahp/internal/webbotauthtest"
)

// With `on_invalid refuse`, an invalid signature is answered with the
// spec's 403 before anything else, the manifest included, and never
// reaches the site; unsigned, unverifiable and verified requests pass.
func TestRefuseInvalid(t *testing.T) {
	up := newUpstream(t)
	dir := webbotauthtest.NewDirectory(t)
	a := webbotauthtest.NewAgent(t, dir.Origin())
	dir.Serve(a)
	lost := webbotauthtest.NewAgent(t, "https://127.0.0.1:"+strconv.Itoa(caddyproc.FreePort(t)))
	ca := writeTemp(t, "ca.pem", dir.CAPEM())
	e := &edge{caddyproc.Start(t, fmt.Sprintf(`
http://refuse.test:{{PORT}} {
	ahp {
		name "Refusing Shop"
		content_signals {
			ai_input true
		}
		converse /agent/converse
		capability site_info {
			mode MODE2
			description "About the shop"
		}
		mcp /mcp
		verified_agents {
			trusted_ca %s
			allow_networks 127.0.0.0/8
			on_invalid refuse
		}
	}
	reverse_proxy %s
}
`, ca, up.Listener.Addr()))}
	tampered := func(method, path, body string) caddyproc.Response {
		return e.call(method, "refuse.test", path, body, a.Headers(e.authority("refuse.test"), "/elsewhere")...)
	}
	before := up.count()
	for _, r := range []caddyproc.Response{
		tampered("GET", "/", ""),
		tampered("GET", "/.well-known/agent.json", ""),
		tampered("POST", "/agent/converse", converseBody("x")),
	} {
		b := decodeRefusal(t, r)
		if r.StatusCode != 403 || b.Code != "forbidden" || !strings.Contains(string(r.Bytes), "Web Bot Auth signature is invalid") ||
			!strings.Contains(r.Header.Get("Link"), `rel="ahp-manifest"`) || r.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("%d %v %s", r.StatusCode, r.Header, r.Bytes)
		}
	}
	// On the MCP endpoint the refusal is in that door's shape, a JSON-RPC
	// error carrying the AHP body, which MCP clients read.
	r := tampered("POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	var rpc struct {
		JSONRPC string `json:"jsonrpc"`
		Error   struct {
			Code    int
			Message string
			Data    struct{ Status, Code string }
		}
	}
	if err := json.Unmarshal(r.Bytes, &rpc); err != nil || r.StatusCode != 403 || rpc.JSONRPC != "2.0" || rpc.Error.Code != 403 ||
		!strings.HasPrefix(rpc.Error.Message, "forbidden: The request's Web Bot Auth signature is invalid") ||
		rpc.Error.Data.Code != "forbidden" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("MCP endpoint: %d %v %s", r.StatusCode, r.Header, r.Bytes)
	}
	if up.count() != before {
		t.Fatal("a refused request reached the site")
	}
	for name, r := range map[string]caddyproc.Response{
		"unsigned":     e.call("GET", "refuse.test", "/", ""),
		"unverifiable": e.signed(lost, "GET", "refuse.test", "/", ""),
		"verified":     e.signed(a, "GET", "refuse.test", "/", ""),
	} {
		if r.StatusCode != 200 {
			t.Errorf("%s: %d %s", name, r.StatusCode, r.Bytes)
		}
	}
	if got := up.last().verified; len(got) != 1 || got[0] != a.Origin {
		t.Errorf("the verified request reached the site with %q", got)
	}
}

// robots extend appends the signals to the site's robots.txt (proxied or
// from file_server), or serves them alone where the site has none;
// robots serve answers without asking the site.
func TestRobots(t *testing.T) {
	up := newUpstream(t)
	www := t.TempDir()
	fileRobots := "User-agent: GPTBot\nDisallow: /\n"
	if err := os.WriteFile(filepath.Join(www, "robots.txt"), []byte(fileRobots), 0o600); err != nil {
		t.Fatal(err)
	}
	site := func(host, robots, handler string) string {
		return fmt.Sprintf(`
http://%s:{{PORT}} {
	ahp {
		name %q
		content_signals {
			ai_train false
			ai_input true
			search true
		}
		robots %s
	}
	%s
}
`, host, host, robots, handler)
	}
	proxy := "reverse_proxy " + up.Listener.Addr().String()
	e := &edge{caddyproc.Start(t,
		site("extend.test", "extend", proxy)+
			site("norobots.test", "extend", proxy)+
			site("serve.test", "serve", proxy)+
			site("files.test", "extend", "root * "+www+"\n\tfile_server")+
			site("nofiles.test", "extend", "root * "+t.TempDir()+"\n\tfile_server")+
			site("off.test", "off", proxy))}
	group := "# Content signals from this site's AHP manifest (/.well-known/agent.json)\nUser-agent: *\n" +
		"Content-Signal: ai-train=no, search=yes, ai-input=yes\nContent-Usage: / train-ai=n, ai-use=y, search=y\n"
	for _, c := range []struct {
		host, want string
		asksSite   bool
	}{
		{"extend.test", siteRobots + "\n" + group, true},
		{"norobots.test", group, true},
		{"serve.test", group, false},
		{"files.test", fileRobots + "\n" + group, false},
		{"nofiles.test", group, false},
		{"off.test", siteRobots, true},
	} {
		before := up.count()
		r := e.call("GET", c.host, "/robots.txt", "", "Accept-Encoding", "gzip", "If-None-Match", "*")
		if r.StatusCode != 200 || string(r.Bytes) != c.want {
			t.Errorf("%s: %d %q, want %q", c.host, r.StatusCode, r.Bytes, c.want)
			continue
		}
		if asked := up.count() > before; asked != c.asksSite {
			t.Errorf("%s: the upstream asked: %v", c.host, asked)
		}
		if r.Header.Get("Content-Signal") != "ai-train=no, search=yes, ai-input=yes" || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") ||
			r.Header.Get("Content-Encoding") != "" {
			t.Errorf("%s: headers %v", c.host, r.Header)
		}
		if c.host == "off.test" {
			continue
		}
		if r.Header.Get("Etag") != "" || r.Header.Get("Last-Modified") != "" || r.Header.Get("Content-Length") != strconv.Itoa(len(c.want)) {
			t.Errorf("%s: headers %v", c.host, r.Header)
		}
		h := e.call("HEAD", c.host, "/robots.txt", "")
		if h.StatusCode != 200 || len(h.Bytes) != 0 || h.Header.Get("Content-Length") != strconv.Itoa(len(c.want)) {
			t.Errorf("%s HEAD: %d %v", c.host, h.StatusCode, h.Header)
		}
		if p := e.call("POST", c.host, "/robots.txt", ""); p.StatusCode == http.StatusOK && string(p.Bytes) == c.want {
			t.Errorf("%s: POST /robots.txt answered with the robots.txt", c.host)
		}
	}
}
