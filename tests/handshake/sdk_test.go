package handshake_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
)

// sdkAgent does on the wire exactly what the SDK's stdlib agent client
// (handshake-prompt-agent 0.2.0, handshake_prompt_agent/client.py) does:
// Python's urllib.request over HTTP/1.1, one connection per request
// (Connection: close), urllib's default headers and its capitalisation of
// header names (Content-type, X-handshake-token), a JSON body as
// json.dumps(ensure_ascii=False) writes it, the diff's since escaped by
// urllib.parse.quote, a non-2xx answer turned into HPPError carrying the
// body's "error". The client cannot be installed here (its registry is out
// of reach) nor copied into the repository, so its requests are reproduced
// byte for byte instead.
type sdkAgent struct {
	t                *testing.T
	sid, token, base string
	prefix           string
}

// sdkError is the client's HPPError.
type sdkError struct {
	msg  string
	code int
	body map[string]any
}

func (e *sdkError) Error() string { return fmt.Sprintf("HPPError(%q, code=%d)", e.msg, e.code) }

// newSDKAgent is HandshakeAgent(sid, token, base_url).
func newSDKAgent(t *testing.T, sid, token, base string) *sdkAgent {
	return &sdkAgent{t: t, sid: sid, token: token, base: strings.TrimRight(base, "/"), prefix: "/handshake"}
}

// getContext is get_context().
func (a *sdkAgent) getContext() (map[string]any, error) {
	return a.do("GET", a.prefix+"/context/"+a.sid, nil)
}

// getDiff is get_diff(since).
func (a *sdkAgent) getDiff(since string) (map[string]any, error) {
	path := a.prefix + "/diff/" + a.sid
	if since != "" {
		path += "?since=" + pyQuote(since)
	}
	return a.do("GET", path, nil)
}

// action is action(values, stream, interval_ms): one set action per key,
// in the dict's order.
func (a *sdkAgent) action(values pyDict, stream bool, intervalMs int) (map[string]any, error) {
	actions := make([]any, 0, len(values))
	for _, kv := range values {
		actions = append(actions, pyDict{{"type", "set"}, {"key", kv.k}, {"value", kv.v}})
	}
	body := pyDumps(pyDict{{"actions", actions}, {"stream", stream}, {"intervalMs", intervalMs}})
	return a.do("POST", a.prefix+"/action/"+a.sid, []byte(body))
}

// do is _do(urllib.request.Request(...)): the request as http.client
// writes it, the answer as urlopen and the client read it.
func (a *sdkAgent) do(method, path string, body []byte) (map[string]any, error) {
	a.t.Helper()
	u, err := url.Parse(a.base + path)
	if err != nil {
		a.t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return nil, &sdkError{msg: "connection error: " + err.Error()}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nAccept-Encoding: identity\r\nHost: %s\r\n", method, u.RequestURI(), u.Host)
	if body != nil {
		fmt.Fprintf(&req, "Content-Length: %d\r\n", len(body))
	}
	fmt.Fprintf(&req, "Content-type: application/json; charset=utf-8\r\nX-handshake-token: %s\r\nUser-agent: Python-urllib/3.11\r\nConnection: close\r\n\r\n", a.token)
	req.Write(body)
	if _, err := conn.Write(req.Bytes()); err != nil {
		a.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		a.t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var payload map[string]any
		if json.Unmarshal(text, &payload) != nil {
			payload = map[string]any{"error": string(text)}
		}
		msg, ok := payload["error"].(string)
		if !ok {
			msg = fmt.Sprintf("HTTP %d", resp.StatusCode)
		}
		return nil, &sdkError{msg: msg, code: resp.StatusCode, body: payload}
	}
	out := map[string]any{}
	if len(text) > 0 {
		if err := json.Unmarshal(text, &out); err != nil {
			a.t.Fatalf("%s %s: json.loads failed on %q: %v", method, path, text, err)
		}
	}
	return out, nil
}

// sdkPromptLine is parse_prompt's pattern.
var sdkPromptLine = regexp.MustCompile(`^\s*-?\s*(\w+)\s*:\s*(.+?)\s*$`)

// sdkParsePrompt is parse_prompt(prompt_text): the first occurrence of
// sessionId, token, baseUrl (required), mode, expiresIn and skill.
func sdkParsePrompt(text string) (map[string]string, error) {
	result := map[string]string{}
	for _, line := range regexp.MustCompile(`\r\n|\r|\n`).Split(text, -1) {
		m := sdkPromptLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		switch m[1] {
		case "sessionId", "token", "baseUrl", "mode", "expiresIn", "skill":
			if _, seen := result[m[1]]; !seen {
				result[m[1]] = m[2]
			}
		}
	}
	var missing []string
	for _, k := range []string{"sessionId", "token", "baseUrl"} {
		if _, ok := result[k]; !ok {
			missing = append(missing, k)
		}
	}
	if missing != nil {
		return nil, fmt.Errorf("missing fields in prompt: %v", missing)
	}
	return result, nil
}

// pyDict is a Python dict: insertion-ordered.
type pyDict []struct {
	k string
	v any
}

// pyDumps is json.dumps(v, ensure_ascii=False) for the values the client
// sends: default separators (", ", ": "), non-ASCII written as is.
func pyDumps(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		if v {
			return "true"
		}
		return "false"
	case int:
		return strconv.Itoa(v)
	case string:
		var b strings.Builder
		b.WriteByte('"')
		for _, r := range v {
			switch r {
			case '"':
				b.WriteString(`\"`)
			case '\\':
				b.WriteString(`\\`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			default:
				if r < 0x20 {
					fmt.Fprintf(&b, `\u%04x`, r)
				} else {
					b.WriteRune(r)
				}
			}
		}
		b.WriteByte('"')
		return b.String()
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = pyDumps(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case pyDict:
		parts := make([]string, len(v))
		for i, kv := range v {
			parts[i] = pyDumps(kv.k) + ": " + pyDumps(kv.v)
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	panic(fmt.Sprintf("pyDumps: %T", v))
}

// pyQuote is urllib.parse.quote(s): everything but letters, digits,
// "_.-~" and "/" percent-encoded ("+" of an offset included).
func pyQuote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.-~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// The SDK's agent client, unchanged, against handshake_prompt with the
// Redis store: it parses the prompt the session answer carries, reads the
// context, writes (streamed, as its default), reads the diff with and
// without since, and gets the SDK's errors as HPPError. Every field the
// client and its docs read is there, with the SDK's types.
func TestSDKAgentClient(t *testing.T) {
	l := newLegacy(t)
	s := caddyproc.Start(t, site(l, "store redis redis://"+redistest.Start(t).Addr()+"/0"))
	se := create(t, s, `{"mode":"form-fill","schema":[{"key":"name","type":"string","required":true},{"key":"guests","type":"int"},{"key":"email","type":"string","required":true},{"key":"notes","type":"string"}],"context":{"name":"","email":"me@example.com"}}`)

	creds, err := sdkParsePrompt(se.Prompt)
	if err != nil {
		t.Fatalf("parse_prompt: %v\n%s", err, se.Prompt)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", s.Port)
	if creds["sessionId"] != se.ID || creds["token"] != se.Token || creds["baseUrl"] != base || creds["mode"] != "form-fill" || creds["expiresIn"] != "1800s" {
		t.Fatalf("parse_prompt: %v", creds)
	}
	// The Usage lines an LLM agent follows carry the real URLs.
	if !strings.Contains(se.Prompt, "1. GET  "+base+"/handshake/context/"+se.ID+" ") || !strings.Contains(se.Prompt, "2. POST "+base+"/handshake/action/"+se.ID+" ") {
		t.Errorf("usage lines:\n%s", se.Prompt)
	}
	agent := newSDKAgent(t, creds["sessionId"], creds["token"], creds["baseUrl"])

	ctx, err := agent.getContext()
	if err != nil {
		t.Fatalf("get_context: %v", err)
	}
	for _, k := range []string{"sessionId", "mode", "schema", "context", "missing", "expiresIn"} {
		if _, ok := ctx[k]; !ok {
			t.Errorf("get_context lacks %q: %v", k, ctx)
		}
	}
	if js(t, ctx["missing"]) != `["name"]` || ctx["context"].(map[string]any)["email"].(map[string]any)["by"] != "user" {
		t.Errorf("get_context: %v", ctx)
	}

	// action(values) with the client's defaults: stream=True, interval_ms=300.
	res, err := agent.action(pyDict{{"name", "Zoë Ada"}, {"email", "agent@example.com"}, {"guests", 3}, {"notes", "Line one\nLine \"two\""}}, true, 300)
	if err != nil {
		t.Fatalf("action: %v", err)
	}
	if res["ok"] != true || js(t, res["applied"]) != `["name","guests","notes"]` || js(t, res["rejected"]) != `["email"]` ||
		js(t, res["errors"]) != `[]` || js(t, res["missing"]) != `[]` {
		t.Fatalf("action: %v", res)
	}
	if got := res["context"].(map[string]any)["name"].(map[string]any); got["value"] != "Zoë Ada" || got["by"] != "ai" {
		t.Errorf("action's context: %v", got)
	}
	if got := res["context"].(map[string]any)["notes"].(map[string]any)["value"]; got != "Line one\nLine \"two\"" {
		t.Errorf("a value with a line break and quotes: %q", got)
	}
	// The CLI's --no-stream: stream=False; a type mismatch is an error, not a refusal.
	res, err = agent.action(pyDict{{"guests", "three"}}, false, 300)
	if err != nil || js(t, res["errors"]) != `[{"key":"guests","msg":"type mismatch, expected int"}]` {
		t.Fatalf("action --no-stream, a wrong type: %v %v", res, err)
	}

	diff, err := agent.getDiff("")
	if err != nil {
		t.Fatalf("get_diff: %v", err)
	}
	changes := diff["changes"].([]any)
	if len(changes) != 3 || diff["sessionId"] != se.ID {
		t.Fatalf("get_diff: %v", diff)
	}
	first := changes[0].(map[string]any)
	at, _ := first["at"].(string)
	if first["key"] != "name" || first["by"] != "ai" || !strings.HasSuffix(at, "+00:00") {
		t.Fatalf("a change: %v", first)
	}
	// get_diff(since=<at>) quotes the "+" of the offset; later changes only.
	time.Sleep(2 * time.Millisecond)
	if _, err := agent.action(pyDict{{"notes", "later"}}, false, 300); err != nil {
		t.Fatal(err)
	}
	all, err := agent.getDiff("")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, c := range all["changes"].([]any) {
		if c := c.(map[string]any); c["at"].(string) > at {
			want = append(want, c["key"].(string)+"="+fmt.Sprint(c["to"]))
		}
	}
	diff, err = agent.getDiff(at)
	if err != nil {
		t.Fatalf("get_diff(since=%q): %v", at, err)
	}
	if diff["since"] != at {
		t.Errorf("since echoed as %v, want %q", diff["since"], at)
	}
	var got []string
	for _, c := range diff["changes"].([]any) {
		c := c.(map[string]any)
		got = append(got, c["key"].(string)+"="+fmt.Sprint(c["to"]))
	}
	if len(want) == 0 || want[len(want)-1] != "notes=later" || strings.Join(got, ";") != strings.Join(want, ";") {
		t.Errorf("get_diff(since): %v, want the changes after %s: %v", got, at, want)
	}

	// HPPError: the SDK's statuses and messages.
	for _, c := range []struct {
		agent *sdkAgent
		code  int
		msg   string
	}{
		{newSDKAgent(t, se.ID, "not-the-token", base), 403, "invalid token"},
		{newSDKAgent(t, strings.Repeat("0", 32), se.Token, base), 404, "session not found or expired"},
	} {
		_, err := c.agent.getContext()
		e, ok := err.(*sdkError)
		if !ok || e.code != c.code || e.msg != c.msg {
			t.Errorf("HPPError: %v, want %d %q", err, c.code, c.msg)
		}
	}
}

// Bad bodies through Caddy with the Redis store: malformed JSON, a JSON
// array, an oversized body; a clear 400/413 each, and the session is
// unchanged.
func TestBadBodiesThroughCaddy(t *testing.T) {
	l := newLegacy(t)
	s := caddyproc.Start(t, site(l, "store redis redis://"+redistest.Start(t).Addr()+"/0\n\t\tbody_limit 4KB"))
	se := create(t, s, form)
	for _, c := range []struct {
		path, body string
		status     int
		msg        string
	}{
		{"/handshake/session", `{"mode":`, 400, "invalid JSON body"},
		{"/handshake/session", `[1]`, 400, "request body must be a JSON object"},
		{"/handshake/action/SID", `{"actions":`, 400, "invalid JSON body"},
		{"/handshake/action/SID", `{"actions":[{"type":"set","key":"name","value":"` + strings.Repeat("x", 8000) + `"}]}`, 413, "request body too large"},
	} {
		r := agent(t, s, "POST", c.path, se, c.body)
		if r.status != c.status || r.json["error"] != c.msg {
			t.Errorf("%s %.30q: %d %s, want %d %q", c.path, c.body, r.status, r.body, c.status, c.msg)
		}
	}
	c := agent(t, s, "GET", "/handshake/context/SID", se, "")
	if c.status != 200 || !strings.Contains(string(c.body), `"name":{"value":null,"by":"empty"`) && !strings.Contains(string(c.body), `"name":{"value":"","by":"empty"`) {
		t.Errorf("the session changed: %d %s", c.status, c.body)
	}
}
