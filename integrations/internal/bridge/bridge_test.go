package bridge

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/converse"
	"github.com/caddy-ahp/caddy-ahp/integrations/internal/sitetest"
	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
	"github.com/caddy-ahp/caddy-ahp/schema"
)

func capability(t testing.TB, m *manifest.Manifest, name string) *Capability {
	t.Helper()
	caps, err := Capabilities(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range caps {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no capability %q", name)
	return nil
}

func TestArgumentsSchema(t *testing.T) {
	cases := []struct{ name, input, want string }{
		{"none", ``, `{"type":"object","properties":{"query":Q,"session_id":S,"clarification":C},"required":["query"],"additionalProperties":false}`},
		{"empty object", `{"type":"object"}`, `{"type":"object","properties":{"query":Q,"session_id":S,"clarification":C},"required":["query"]}`},
		{"merged, order kept, reserved dropped, required deduplicated",
			`{"$schema":"http://json-schema.org/draft-07/schema#","$id":"x","type":"object","title":"T",
			  "properties":{"zeta":{"type":"string"},"query":{"type":"integer"},"auth":{"type":"string"},"alpha":{"type":"number"}},
			  "required":["zeta","query","zeta"],"additionalProperties":false}`,
			`{"type":"object","properties":{"query":Q,"session_id":S,"clarification":C,"zeta":{"type":"string"},"alpha":{"type":"number"}},` +
				`"required":["query","zeta"],"additionalProperties":false,"title":"T"}`},
	}
	r := strings.NewReplacer("Q", string(querySchema), "S", string(sessionSchema), "C", string(clarificationSchema))
	for _, c := range cases {
		got, err := argumentsSchema(json.RawMessage(c.input))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var want bytes.Buffer
		if err := json.Compact(&want, []byte(r.Replace(c.want))); err != nil {
			t.Fatal(err)
		}
		if string(got) != want.String() {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, want.String())
		}
	}
	for _, bad := range []string{`[]`, `{"type":"array"}`, `{"properties":[]}`, `{"required":"a"}`,
		`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}}}`} {
		if _, err := argumentsSchema(json.RawMessage(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestReplacedArguments: an input_schema property named as one of the
// doors' own arguments is named, for the warning at load.
func TestReplacedArguments(t *testing.T) {
	in := `{"type":"object","properties":{"zeta":{"type":"string"},"query":{"type":"integer"},"auth":{"type":"string"}}}`
	if got := replacedArguments(json.RawMessage(in)); strings.Join(got, ",") != "query,auth" {
		t.Errorf("replaced %q, want query,auth", got)
	}
	for _, none := range []string{``, `{"type":"object"}`, `{"properties":{"zeta":{}}}`} {
		if got := replacedArguments(json.RawMessage(none)); got != nil {
			t.Errorf("%s: replaced %q", none, got)
		}
	}
}

func TestParseArguments(t *testing.T) {
	m := sitetest.Manifest(t)
	inv := capability(t, m, "inventory_check")
	call, aerr := inv.ParseArguments([]byte(`{"qty":2,"query":"In stock? <b>&</b>","sku":"Ü-1","session_id":null,"auth":"tok"}`))
	if aerr != nil {
		t.Fatal(aerr)
	}
	if call.Query != "In stock? <b>&</b>\n\nArguments: {\"qty\":2,\"sku\":\"Ü-1\"}" || call.SessionID != "" || call.Auth != "tok" {
		t.Errorf("call = %+v", call)
	}
	for raw, want := range map[string]string{
		`{"sku":"a"}`:                       "query is required",
		`null`:                              "query is required",
		`[1]`:                               "must be a JSON object",
		`{"query":"q","sku":"a"} {}`:        "not valid JSON",
		`{"query":"q"}`:                     "sku",
		`{"query":"q","sku":"a","auth":1}`:  "auth must be a string",
		`{"query":"q","sku":"a","qty":1.5}`: "qty",
		`{"query":"q","sku":"a","session_id":` + `"` + strings.Repeat("s", 129) + `"}`: "session_id",
	} {
		if _, aerr := inv.ParseArguments([]byte(raw)); aerr == nil || !strings.Contains(aerr.Message, want) {
			t.Errorf("%s: %v, want %q", raw, aerr, want)
		}
	}
	// 4096 characters, not bytes: multi-byte runes fit.
	if _, aerr := capability(t, m, "site_info").ParseArguments([]byte(`{"query":"` + strings.Repeat("é", 4096) + `"}`)); aerr != nil {
		t.Errorf("4096 two-byte characters: %v", aerr)
	}
}

// A schema's format is asserted, as the operator who wrote it expects:
// a call with no email address in "email" goes back to the model.
func TestParseArgumentsAssertsFormat(t *testing.T) {
	m := sitetest.Parse(t, `{"ahp":"0.1","name":"Shop","description":"d","endpoints":{"converse":"/agent/converse"},
	  "content_signals":{"ai_input":true},
	  "capabilities":[{"name":"book","description":"Book","mode":"MODE3","action_type":"query",
	    "input_schema":{"type":"object","properties":{"email":{"type":"string","format":"email"},"day":{"type":"string","format":"date"},"x":{"type":"string","format":"no-such-format"}},"required":["email"]},
	    "output_schema":{"type":"object"}}]}`)
	book := capability(t, m, "book")
	if _, aerr := book.ParseArguments([]byte(`{"query":"q","email":"a@example.com","day":"2026-12-24","x":"anything"}`)); aerr != nil {
		t.Errorf("valid formats refused: %v", aerr)
	}
	for raw, field := range map[string]string{
		`{"query":"q","email":"tomorrow"}`:                     "email",
		`{"query":"q","email":"a@example.com","day":"Friday"}`: "day",
	} {
		if _, aerr := book.ParseArguments([]byte(raw)); aerr == nil || !strings.Contains(aerr.Message, field) {
			t.Errorf("%s: %v, want a refusal naming %s", raw, aerr, field)
		}
	}
}

// FuzzParseArguments: untrusted arguments never panic the parser, and what
// it accepts becomes a converse body the official request schema and the
// real converse validator both accept, without the credential.
func FuzzParseArguments(f *testing.F) {
	for _, s := range []string{
		`{"query":"q","sku":"a","qty":2}`, `{"query":"q","sku":"a","address":{"city":"x"}}`, `{"query":"\u0000\ud800","sku":"\u2028"}`,
		`{"query":"q","sku":"a","session_id":"s","clarification":"c","auth":"Bearer x"}`, `{}`, `null`, `[]`, `{"query":1e999}`,
	} {
		f.Add("inventory_check", s)
	}
	f.Add("get_quote", `{"query":"q","anything":[1,{"a":null}]}`)
	f.Add("site_info", `{"query":"q"}`)
	m := sitetest.Manifest(f)
	caps, err := Capabilities(m)
	if err != nil {
		f.Fatal(err)
	}
	byName := map[string]*Capability{}
	for _, c := range caps {
		byName[c.Name] = c
	}
	rules := converse.NewRules(m, converse.Options{})
	f.Fuzz(func(t *testing.T, name, raw string) {
		c := byName[name]
		if c == nil {
			return
		}
		call, aerr := c.ParseArguments([]byte(raw))
		if aerr != nil {
			return
		}
		body := c.AppendBody(nil, &call)
		if problems, err := schema.Check(schema.RequestSchema, body); err != nil || problems != nil {
			t.Fatalf("body %s against the request schema: %v %v", body, problems, err)
		}
		var req converse.Request
		if e := rules.Parse(body, &req); e != nil {
			t.Fatalf("converse.Parse refused %s: %v", body, e)
		}
		if req.Auth != "" || (call.Auth != "" && bytes.Contains(body, []byte(`"auth"`))) {
			t.Fatalf("a credential in the body: %s", body)
		}
	})
}

func TestCredential(t *testing.T) {
	h := http.Header{}
	for _, c := range []struct {
		scheme, sent, want string
		bad                bool
	}{
		{manifest.AuthBearer, "Bearer abc", "abc", false},
		{manifest.AuthBearer, "bearer  abc ", "abc", false},
		{manifest.AuthBearer, "abc", "abc", false},
		{manifest.AuthAPIKey, "key-1", "key-1", false},
		{manifest.AuthNone, "abc", "", false},
		{"", "abc", "", false},
		{manifest.AuthBearer, "", "", false},
		{manifest.AuthBearer, "a b", "", true},
		{manifest.AuthBearer, "é", "", true},
		{manifest.AuthBearer, strings.Repeat("k", 4097), "", true},
	} {
		got, err := Credential(h, c.scheme, c.sent)
		if got != c.want || (err != nil) != c.bad {
			t.Errorf("Credential(%s, %q) = %q, %v", c.scheme, c.sent, got, err)
		}
		if err != nil && strings.Contains(err.Error(), c.sent) {
			t.Errorf("the error repeats the credential: %v", err)
		}
	}
	// A credential already in the scheme's header passes through and wins.
	if got, _ := Credential(http.Header{"Authorization": {"Bearer header-token"}}, manifest.AuthBearer, "other"); got != "" {
		t.Errorf("header present: %q", got)
	}
	if got, _ := Credential(http.Header{"Authorization": {"Basic x"}}, manifest.AuthBearer, "other"); got != "other" {
		t.Errorf("another auth scheme in the header: %q", got)
	}
}

func TestBaseURL(t *testing.T) {
	for _, c := range []struct {
		host, proto string
		tls, trust  bool
		want        string
	}{
		{"shop.example", "", false, false, "http://shop.example"},
		{"shop.example:8443", "", true, false, "https://shop.example:8443"},
		{"[::1]:80", "", false, false, "http://[::1]:80"},
		{"shop.example", "https", false, false, "http://shop.example"},
		{"shop.example", "https, http", false, true, "https://shop.example"},
		{"shop.example", "HTTP", true, true, "http://shop.example"},
		{"shop.example", "gopher", false, true, "http://shop.example"},
		{"", "", false, false, ""},
		{`a"b`, "", false, false, ""},
		{"a/b", "", false, false, ""},
		{"a b", "", false, false, ""},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = c.host
		if c.proto != "" {
			r.Header.Set("X-Forwarded-Proto", c.proto)
		}
		if !c.tls {
			r.TLS = nil
		}
		if c.tls && r.TLS == nil {
			r = httptest.NewRequest(http.MethodGet, "https://x/", nil)
			r.Host = c.host
			if c.proto != "" {
				r.Header.Set("X-Forwarded-Proto", c.proto)
			}
		}
		if got := BaseURL(r, c.trust); got != c.want {
			t.Errorf("%+v: %q", c, got)
		}
	}
}

func TestRecorder(t *testing.T) {
	rec := NewRecorder(10)
	rec.WriteHeader(http.StatusEarlyHints)
	if rec.Written() {
		t.Error("1xx counted as the answer")
	}
	rec.Header().Set("X-RateLimit-Remaining", "3")
	rec.WriteHeader(http.StatusTeapot)
	rec.WriteHeader(http.StatusOK)
	if n, err := rec.Write([]byte("12345")); n != 5 || err != nil {
		t.Fatal(n, err)
	}
	if _, err := rec.Write([]byte("678901")); err != ErrResponseTooLarge || !rec.Overflowed() {
		t.Errorf("over the limit: %v", err)
	}
	if rec.Status() != http.StatusTeapot || string(rec.Body()) != "12345" {
		t.Errorf("status %d body %q", rec.Status(), rec.Body())
	}
	dst := http.Header{}
	rec.CopyRateLimit(dst)
	rec.Release()
	if dst.Get("X-RateLimit-Remaining") != "3" {
		t.Errorf("copied headers = %v", dst)
	}
	rec = NewRecorder(0)
	defer rec.Release()
	if rec.Written() || rec.Status() != 200 || len(rec.Body()) != 0 || len(rec.Header()) != 0 {
		t.Error("a pooled recorder was not reset")
	}
}

func TestSplice(t *testing.T) {
	ph := Placeholder()
	s := Splice([]byte(`{"a":"`+ph+`/x","b":"`+ph+`"}`), ph)
	got := s.AppendTo(nil, "https://h")
	if string(got) != `{"a":"https://h/x","b":"https://h"}` || s.Len("https://h") != len(got) {
		t.Errorf("%s (%d)", got, s.Len("https://h"))
	}
	var buf bytes.Buffer
	if err := s.WriteTo(&buf, "https://h"); err != nil || buf.String() != string(got) {
		t.Errorf("WriteTo = %q", buf.String())
	}
	if got := Splice([]byte("static"), "").AppendTo(nil, "ignored"); string(got) != "static" {
		t.Errorf("no placeholder: %q", got)
	}
}

func TestNewConverseRequest(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "http://shop.example/mcp?x=1", strings.NewReader("ignored"))
	r.Header.Set("Accept-Encoding", "gzip")
	r.Header.Set("Mcp-Session-Id", "s")
	r.Header.Set("Mcp-Name", "n")
	r.Header.Set("Origin", "https://shop.example")
	r.Header.Set("If-Match", "*")
	r.Header.Set("Cookie", "c=1")
	r.Header.Set("Content-Length", "7")
	r2 := NewConverseRequest(r, "/agent/converse", manifest.AuthAPIKey, "key-1")
	if r2.Method != "POST" || r2.URL.Path != "/agent/converse" || r2.URL.RawQuery != "" || r2.RequestURI != "/agent/converse" || r2.Host != "shop.example" {
		t.Errorf("request line: %s %s %s %s", r2.Method, r2.URL, r2.RequestURI, r2.Host)
	}
	if r2.Header.Get("X-AHP-Key") != "key-1" || r2.Header.Get("Cookie") != "c=1" || r2.Header.Get("Accept-Encoding") != "" ||
		r2.Header.Get("Mcp-Session-Id") != "" || r2.Header.Get("Mcp-Name") != "" || r2.Header.Get("Origin") != "" ||
		r2.Header.Get("If-Match") != "" || r2.Header.Get("Content-Length") != "" || r2.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers: %v", r2.Header)
	}
	if r.Header.Get("Accept-Encoding") != "gzip" || r.URL.Path != "/mcp" || r.Header.Get("X-AHP-Key") != "" {
		t.Error("the original request was modified")
	}
	if r2.Body != http.NoBody || r2.ContentLength != 0 {
		t.Errorf("the body is Converse's argument, not the request's: %v %d", r2.Body, r2.ContentLength)
	}
	g := NewGetRequest(r, "/llms.txt", "", "*/*")
	if g.Method != "GET" || g.ContentLength != 0 || g.Header.Get("Content-Type") != "" || g.Header.Get("Accept") != "*/*" {
		t.Errorf("GET: %s %d %v", g.Method, g.ContentLength, g.Header)
	}
}

// TestCopyRateLimitOwnsValues: the copied values share nothing with the
// recorder (pooled, reused) nor with each other.
func TestCopyRateLimitOwnsValues(t *testing.T) {
	rec := NewRecorder(0)
	src := []string{"5"}
	rec.Header()["X-Ratelimit-Remaining"] = src
	rec.Header()["Ratelimit"] = []string{`"unauthenticated";r=5;t=60`}
	rec.Header()["Retry-After"] = []string{"7"}
	dst := http.Header{}
	rec.CopyRateLimit(dst)
	rec.Release()
	src[0] = "edited"
	dst["Ratelimit"][0] = "edited too"
	if dst.Get("X-Ratelimit-Remaining") != "5" || dst.Get("Retry-After") != "7" {
		t.Errorf("copied values changed with their source or their neighbours: %v", dst)
	}
	if cap(dst["Ratelimit"]) != 1 {
		t.Errorf("a copied value has room to grow into its neighbour: cap %d", cap(dst["Ratelimit"]))
	}
}

func TestChargeStatic(t *testing.T) {
	if ChargeStatic(nil, http.Header{}, httptest.NewRequest(http.MethodGet, "/", nil)) != nil {
		t.Error("no policy refused")
	}
	store := limiter.NewMemory(limiter.MemoryOptions{})
	defer store.Close()
	p := ratelimit.New(ratelimit.Config{Store: store, Zone: "z", Static: limiter.Limit{Events: 1, Window: time.Minute}})
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	h := http.Header{}
	if refusal := ChargeStatic(p, h, r); refusal != nil || h.Get("X-Ratelimit-Remaining") != "0" || h.Get("Content-Type") != "" {
		t.Errorf("first: %v %v", refusal, h)
	}
	h = http.Header{}
	refusal := ChargeStatic(p, h, r)
	if refusal == nil || refusal.Status != 429 || !bytes.Contains(refusal.Body, []byte(`"rate_limited"`)) {
		t.Fatalf("second: %+v", refusal)
	}
	if h.Get("Retry-After") == "" || h.Get("X-Ratelimit-Limit") != "1" || h.Get("Content-Length") != "" || h.Get("Content-Type") != "" {
		t.Errorf("headers of the refusal: %v (the AHP body's own must stay out)", h)
	}
}
