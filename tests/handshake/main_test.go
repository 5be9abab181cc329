// Package handshake_test runs the Handshake Prompt directive in a real
// Caddy built from this repository, in front of a real legacy site
// (httptest), with a real redis-server for the shared store, and drives
// its browser client in a real headless Chromium.
package handshake_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

func TestMain(m *testing.M) { os.Exit(caddyproc.Main(m)) }

// legacy is the site behind Caddy: a contact page with a form, and the
// hook endpoints the tests configure.
type legacy struct {
	*httptest.Server
	mu    sync.Mutex
	hooks []hookCall
	// answers by hook name: status and body
	answer map[string]func(body []byte) (int, string)
}

type hookCall struct {
	name, cookie string
	marked       string // X-Handshake-Hook as the site saw it
	body         map[string]any
}

const contactPage = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Contact</title></head>
<body>
<h1>Book a demo</h1>
<form id="book" action="/book" method="post">
  <label for="name">Your name</label> <input id="name" name="name" required>
  <label for="email">Email</label> <input id="email" name="email" type="email" required>
  <label for="guests">Guests</label> <input id="guests" name="guests" type="number">
  <label for="piece">Piece</label>
  <select id="piece" name="piece"><option value="">Choose…</option><option value="desk">Walnut desk</option><option value="table">Oak table</option></select>
  <label><input type="checkbox" name="newsletter"> Newsletter</label>
  <input type="hidden" name="terms" value="0"><label><input type="checkbox" name="terms" value="1"> Terms</label>
  <textarea name="notes"></textarea>
  <button>Send</button>
</form>
<p id="events"></p>
<script>
document.getElementById("guests").addEventListener("change", function (e) {
  document.getElementById("events").textContent += "guests-changed:" + e.target.value + ";";
});
</script>
</body></html>`

func newLegacy(t *testing.T) *legacy { return newLegacyTB(t) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func newLegacyTB(t testing.TB) *legacy {
	l := &legacy{answer: map[string]func([]byte) (int, string){}}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/hpp/hooks/") {
			name := strings.TrimPrefix(r.URL.Path, "/hpp/hooks/")
			b, _ := io.ReadAll(r.Body)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			l.mu.Lock()
			l.hooks = append(l.hooks, hookCall{name: name, cookie: r.Header.Get("Cookie"), marked: r.Header.Get("X-Handshake-Hook"), body: m})
			fn := l.answer[name]
			l.mu.Unlock()
			status, body := 200, `{}`
			if fn != nil {
				status, body = fn(b)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
			return
		}
		switch r.URL.Path {
		case "/contact.html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, contactPage)
		case "/about.html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, "<html><body><p>No form here.</p></body></html>")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(l.Close)
	return l
}

func (l *legacy) calls(name string) []hookCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []hookCall
	for _, c := range l.hooks {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

func (l *legacy) setAnswer(name string, fn func([]byte) (int, string)) {
	l.mu.Lock()
	l.answer[name] = fn
	l.mu.Unlock()
}

// site is a Caddyfile for the site on {{PORT}} with handshake_prompt's
// options, in front of the legacy site.
func site(l *legacy, options string) string {
	return fmt.Sprintf(`http://127.0.0.1:{{PORT}} {
	handshake_prompt {
%s
	}
	reverse_proxy %s
}
`, options, strings.TrimPrefix(l.URL, "http://"))
}

type reply struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func call(t *testing.T, s *caddyproc.Server, method, path, body string, headers ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := s.Do(method, path, rd, headers...)
	out := reply{status: r.StatusCode, header: r.Header, body: r.Bytes}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(r.Bytes, &out.json); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, r.Bytes)
		}
	}
	return out
}

type sess struct{ ID, Token, Prompt string }

const form = `{"mode":"form-fill","schema":[{"key":"name","type":"string","required":true},{"key":"guests","type":"int"},{"key":"email","type":"string","required":true}],"context":{"name":"","email":"me@example.com"}}`

func create(t *testing.T, s *caddyproc.Server, body string, headers ...string) sess {
	t.Helper()
	r := call(t, s, "POST", "/handshake/session", body, headers...)
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	return sess{ID: r.json["sessionId"].(string), Token: r.json["token"].(string), Prompt: r.json["prompt"].(string)}
}

func agent(t *testing.T, s *caddyproc.Server, method, path string, se sess, body string) reply {
	t.Helper()
	return call(t, s, method, strings.ReplaceAll(path, "SID", se.ID), body, "X-Handshake-Token", se.Token)
}

func dial(t *testing.T, s *caddyproc.Server, se sess) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://127.0.0.1:%d/ws/handshake/%s?token=%s", s.Port, se.ID, se.Token), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func frame(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("frame %s: %v", b, err)
	}
	return m
}

func js(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
