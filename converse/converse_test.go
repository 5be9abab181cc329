package converse

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/schema"
)

func testManifest() *manifest.Manifest {
	return &manifest.Manifest{
		AHP:            "0.1",
		Authentication: manifest.AuthBearer,
		Capabilities: []manifest.Capability{
			{Name: "content_search", Mode: manifest.Mode2, ResponseTypes: []string{"text/answer", "application/feed"}},
			{Name: "get_video", Mode: manifest.Mode2, ResponseTypes: []string{"media/video"}, AcceptFallback: true},
			{Name: "book", Mode: manifest.Mode3, ActionType: manifest.ActionAction},
			{Name: "x_vendor", Mode: manifest.Mode2, ResponseTypes: []string{"x-acme/widget"}},
		},
	}
}

func testRules(opts Options) *Rules { return NewRules(testManifest(), opts) }

// typical is a request as an agent sends it (spec §6.1), about 400 bytes.
const typical = `{
  "ahp": "0.1",
  "capability": "content_search",
  "query": "What has the site owner written about AI agents and web protocols?",
  "session_id": "3f6c2a9e-7b1d-4e8a-9c0f-5d2b8a1e6f47",
  "context": {
    "requesting_agent": "my-research-bot/1.0",
    "user_intent": "research",
    "max_tokens": 500,
    "accept_types": ["text/answer", "application/feed", "media/video"],
    "locale": "en-US"
  }
}`

func TestParseTypical(t *testing.T) {
	r := testRules(Options{})
	var req Request
	if err := r.Parse([]byte(typical), &req); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Request{
		AHP:        "0.1",
		Capability: "content_search",
		Query:      "What has the site owner written about AI agents and web protocols?",
		SessionID:  "3f6c2a9e-7b1d-4e8a-9c0f-5d2b8a1e6f47",
		Context: Context{
			RequestingAgent: "my-research-bot/1.0",
			UserIntent:      "research",
			MaxTokens:       500,
			AcceptTypes:     []string{"text/answer", "application/feed", "media/video"},
			Locale:          "en-US",
		},
	}
	if !sameRequest(&req, &want) {
		t.Errorf("got %+v\nwant %+v", req, want)
	}
	if req.Declared == nil || req.Declared.Name != "content_search" {
		t.Errorf("Declared = %+v", req.Declared)
	}
}

// sameRequest compares the exported fields that carry request data.
func sameRequest(a, b *Request) bool {
	ac, bc := a.Context, b.Context
	if len(ac.AcceptTypes) == 0 && len(bc.AcceptTypes) == 0 {
		ac.AcceptTypes, bc.AcceptTypes = nil, nil
	}
	return a.AHP == b.AHP && a.Capability == b.Capability && a.Query == b.Query &&
		a.SessionID == b.SessionID && a.Clarification == b.Clarification && a.Auth == b.Auth &&
		reflect.DeepEqual(ac, bc)
}

func TestParseValues(t *testing.T) {
	r := testRules(Options{})
	tests := []struct {
		name string
		body string
		want Request
	}{
		{"minimal", `{"capability":"content_search","query":"q"}`,
			Request{Capability: "content_search", Query: "q"}},
		{"null session and clarification", `{"capability":"book","query":"q","session_id":null,"clarification":null}`,
			Request{Capability: "book", Query: "q"}},
		{"clarification", `{"capability":"content_search","query":"q","session_id":"abc-123","clarification":"blog_posts"}`,
			Request{Capability: "content_search", Query: "q", SessionID: "abc-123", Clarification: "blog_posts"}},
		{"escapes decoded", `{"capability":"content_search","query":"a\"b\\c\/d\n\u00e9\ud83d\ude00"}`,
			Request{Capability: "content_search", Query: "a\"b\\c/d\né😀"}},
		{"escaped field name", `{"\u0063apability":"content_search","query":"q"}`,
			Request{Capability: "content_search", Query: "q"}},
		{"auth field", `{"capability":"book","query":"q","auth":"Bearer abc"}`,
			Request{Capability: "book", Query: "q", Auth: "Bearer abc"}},
		{"max_tokens 1e3 is an integer", `{"capability":"content_search","query":"q","context":{"max_tokens":1e3}}`,
			Request{Capability: "content_search", Query: "q", Context: Context{MaxTokens: 1000}}},
		{"max_tokens 512.0 is an integer", `{"capability":"content_search","query":"q","context":{"max_tokens":512.0}}`,
			Request{Capability: "content_search", Query: "q", Context: Context{MaxTokens: 512}}},
		{"max_tokens 32768e-0", `{"capability":"content_search","query":"q","context":{"max_tokens":3276.8e1}}`,
			Request{Capability: "content_search", Query: "q", Context: Context{MaxTokens: 32768}}},
		{"callback", `{"capability":"book","query":"q","context":{"callback_url":"https://agent.example/cb?id=1"}}`,
			Request{Capability: "book", Query: "q", Context: Context{CallbackURL: "https://agent.example/cb?id=1"}}},
		{"empty accept_types is no preference", `{"capability":"get_video","query":"q","context":{"accept_types":[]}}`,
			Request{Capability: "get_video", Query: "q"}},
		{"fallback capability accepts anything", `{"capability":"get_video","query":"q","context":{"accept_types":["text/answer"]}}`,
			Request{Capability: "get_video", Query: "q", Context: Context{AcceptTypes: []string{"text/answer"}}}},
		{"default response type", `{"capability":"book","query":"q","context":{"accept_types":["x-foo/bar","text/answer"]}}`,
			Request{Capability: "book", Query: "q", Context: Context{AcceptTypes: []string{"x-foo/bar", "text/answer"}}}},
		{"many accept types", `{"capability":"x_vendor","query":"q","context":{"accept_types":["text/a","text/b","text/c","text/d","text/e","x-acme/widget"]}}`,
			Request{Capability: "x_vendor", Query: "q", Context: Context{AcceptTypes: []string{"text/a", "text/b", "text/c", "text/d", "text/e", "x-acme/widget"}}}},
		{"whitespace everywhere", " \t\r\n{ \"capability\" : \"content_search\" , \"query\" : \"q\" , \"context\" : { } } \n",
			Request{Capability: "content_search", Query: "q"}},
		{"max lengths", `{"capability":"` + "a" + strings.Repeat("b", 63) + `","query":"` + strings.Repeat("é", 4096) + `"}`,
			Request{Capability: "a" + strings.Repeat("b", 63), Query: strings.Repeat("é", 4096)}},
		{"locale forms", `{"capability":"content_search","query":"q","context":{"locale":"zh-Hant-TW"}}`,
			Request{Capability: "content_search", Query: "q", Context: Context{Locale: "zh-Hant-TW"}}},
	}
	// The capability names above that the manifest lacks are added so
	// that these cases test values only.
	m := testManifest()
	m.Capabilities = append(m.Capabilities, manifest.Capability{Name: "a" + strings.Repeat("b", 63)})
	r = NewRules(m, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req Request
			if err := r.Parse([]byte(tt.body), &req); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !sameRequest(&req, &tt.want) {
				t.Errorf("got %+v\nwant %+v", req, tt.want)
			}
			if problems, _ := schema.Check(schema.RequestSchema, []byte(tt.body)); problems != nil {
				t.Errorf("the request schema rejects what Parse accepts: %v", problems)
			}
		})
	}
}

// errorCase is a body Parse must refuse. specOnly marks refusals the schema
// alone would not make (documented in Parse and DESIGN below).
type errorCase struct {
	name     string
	body     string
	code     string
	msg      string // substring of the message
	specOnly bool
}

var errorCases = []errorCase{
	// Not a JSON object.
	{"empty", ``, ahperror.InvalidRequest, "body is empty", false},
	{"spaces only", `   `, ahperror.InvalidRequest, "not valid JSON", false},
	{"not JSON", `capability=x&query=y`, ahperror.InvalidRequest, "not valid JSON", false},
	{"truncated", `{"capability":"content_search","query":"q"`, ahperror.InvalidRequest, "not valid JSON", false},
	{"trailing comma", `{"capability":"content_search","query":"q",}`, ahperror.InvalidRequest, "not valid JSON", false},
	{"trailing data", `{"capability":"content_search","query":"q"} {}`, ahperror.InvalidRequest, "unexpected data after", false},
	{"single quotes", `{'capability':'content_search'}`, ahperror.InvalidRequest, "not valid JSON", false},
	{"raw newline in string", "{\"capability\":\"content_search\",\"query\":\"a\nb\"}", ahperror.InvalidRequest, "control character", false},
	{"bad escape", `{"capability":"content_search","query":"\x"}`, ahperror.InvalidRequest, "invalid escape", false},
	{"bad unicode escape", `{"capability":"content_search","query":"\u12G4"}`, ahperror.InvalidRequest, `invalid \u escape`, false},
	{"leading zero", `{"capability":"content_search","query":"q","context":{"max_tokens":0500}}`, ahperror.InvalidRequest, "not valid JSON", false},
	{"array", `[{"capability":"content_search","query":"q"}]`, ahperror.InvalidRequest, "must be a JSON object", false},
	{"string", `"content_search"`, ahperror.InvalidRequest, "must be a JSON object", false},
	{"null", `null`, ahperror.InvalidRequest, "must be a JSON object", false},
	{"BOM", "\ufeff{\"capability\":\"content_search\",\"query\":\"q\"}", ahperror.InvalidRequest, "not valid JSON", false},
	{"syntax error after a violation", `{"nope":1,`, ahperror.InvalidRequest, "not valid JSON", false},
	{"deep nesting in unknown field", `{"x":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`, ahperror.InvalidRequest, "nested too deeply", false},

	// Encoding: the schema validator decodes these leniently.
	{"invalid UTF-8", "{\"capability\":\"content_search\",\"query\":\"\xff\"}", ahperror.InvalidRequest, "not valid UTF-8", true},
	{"lone high surrogate", `{"capability":"content_search","query":"\ud800"}`, ahperror.InvalidRequest, "query contains an unpaired UTF-16 surrogate", true},
	{"lone low surrogate", `{"capability":"content_search","query":"a\udc00b"}`, ahperror.InvalidRequest, "unpaired UTF-16 surrogate", true},
	{"reversed pair", `{"capability":"content_search","query":"\ude00\ud83d"}`, ahperror.InvalidRequest, "unpaired UTF-16 surrogate", true},
	{"surrogate in field name", `{"capability":"content_search","query":"q","\ud800":1}`, ahperror.InvalidRequest, "unpaired", false},
	{"duplicate field", `{"capability":"content_search","query":"q","capability":"book"}`, ahperror.InvalidRequest, `duplicate field "capability"`, true},
	{"duplicate via escape", `{"capability":"content_search","query":"q","c\u0061pability":"book"}`, ahperror.InvalidRequest, `duplicate field "capability"`, true},
	{"duplicate in context", `{"capability":"content_search","query":"q","context":{"locale":"en","locale":"fr"}}`, ahperror.InvalidRequest, `duplicate field "context.locale"`, true},

	// Required fields.
	{"no capability", `{"query":"q"}`, ahperror.MissingField, `"capability" is missing`, false},
	{"no query", `{"capability":"content_search"}`, ahperror.MissingField, `"query" is missing`, false},
	{"empty object", `{}`, ahperror.MissingField, `"capability" is missing`, false},
	{"only context", `{"context":{}}`, ahperror.MissingField, `"capability" is missing`, false},

	// Unknown fields: additionalProperties false, and names match exactly.
	{"unknown field", `{"capability":"content_search","query":"q","foo":1}`, ahperror.InvalidRequest, `unknown field "foo"`, false},
	{"field name case", `{"Capability":"content_search","query":"q","capability":"content_search"}`, ahperror.InvalidRequest, `unknown field "Capability"`, false},
	{"unknown context field", `{"capability":"content_search","query":"q","context":{"temperature":1}}`, ahperror.InvalidRequest, `unknown field "context.temperature"`, false},
	{"long unknown field name is cut", `{"capability":"content_search","query":"q","` + strings.Repeat("z", 500) + `":1}`, ahperror.InvalidRequest, strings.Repeat("z", 64) + "…", false},

	// Types.
	{"capability number", `{"capability":1,"query":"q"}`, ahperror.InvalidRequest, "capability must be a string", false},
	{"capability null", `{"capability":null,"query":"q"}`, ahperror.InvalidRequest, "capability must be a string", false},
	{"query array", `{"capability":"content_search","query":["q"]}`, ahperror.InvalidRequest, "query must be a string", false},
	{"query null", `{"capability":"content_search","query":null}`, ahperror.InvalidRequest, "query must be a string", false},
	{"ahp number", `{"ahp":0.1,"capability":"content_search","query":"q"}`, ahperror.InvalidRequest, "ahp must be a string", false},
	{"session_id number", `{"capability":"content_search","query":"q","session_id":12}`, ahperror.InvalidRequest, "session_id must be a string or null", false},
	{"clarification bool", `{"capability":"content_search","query":"q","clarification":true}`, ahperror.InvalidRequest, "clarification must be a string or null", false},
	{"auth null", `{"capability":"content_search","query":"q","auth":null}`, ahperror.InvalidRequest, "auth must be a string", false},
	{"auth object", `{"capability":"content_search","query":"q","auth":{"token":"x"}}`, ahperror.InvalidRequest, "auth must be a string", false},
	{"context string", `{"capability":"content_search","query":"q","context":"x"}`, ahperror.InvalidRequest, "context must be an object", false},
	{"context null", `{"capability":"content_search","query":"q","context":null}`, ahperror.InvalidRequest, "context must be an object", false},
	{"requesting_agent number", `{"capability":"content_search","query":"q","context":{"requesting_agent":1}}`, ahperror.InvalidRequest, "context.requesting_agent must be a string", false},
	{"user_intent null", `{"capability":"content_search","query":"q","context":{"user_intent":null}}`, ahperror.InvalidRequest, "context.user_intent must be a string", false},
	{"accept_types string", `{"capability":"content_search","query":"q","context":{"accept_types":"text/answer"}}`, ahperror.InvalidRequest, "context.accept_types must be an array", false},
	{"accept_types item number", `{"capability":"content_search","query":"q","context":{"accept_types":["text/answer",1]}}`, ahperror.InvalidRequest, "context.accept_types must be an array of strings", false},
	{"callback_url number", `{"capability":"content_search","query":"q","context":{"callback_url":1}}`, ahperror.InvalidRequest, "context.callback_url must be a string", false},
	{"locale array", `{"capability":"content_search","query":"q","context":{"locale":["en"]}}`, ahperror.InvalidRequest, "context.locale must be a string", false},

	// max_tokens.
	{"max_tokens zero", `{"capability":"content_search","query":"q","context":{"max_tokens":0}}`, ahperror.InvalidRequest, "context.max_tokens must be an integer between 1 and 32768", false},
	{"max_tokens negative", `{"capability":"content_search","query":"q","context":{"max_tokens":-5}}`, ahperror.InvalidRequest, "context.max_tokens must be an integer", false},
	{"max_tokens too big", `{"capability":"content_search","query":"q","context":{"max_tokens":32769}}`, ahperror.InvalidRequest, "context.max_tokens must be an integer", false},
	{"max_tokens huge", `{"capability":"content_search","query":"q","context":{"max_tokens":99999999999999999999999}}`, ahperror.InvalidRequest, "context.max_tokens", false},
	{"max_tokens 1e5", `{"capability":"content_search","query":"q","context":{"max_tokens":1e5}}`, ahperror.InvalidRequest, "context.max_tokens", false},
	{"max_tokens fraction", `{"capability":"content_search","query":"q","context":{"max_tokens":10.5}}`, ahperror.InvalidRequest, "context.max_tokens", false},
	{"max_tokens tiny", `{"capability":"content_search","query":"q","context":{"max_tokens":1e-3}}`, ahperror.InvalidRequest, "context.max_tokens", false},
	{"max_tokens string", `{"capability":"content_search","query":"q","context":{"max_tokens":"500"}}`, ahperror.InvalidRequest, "context.max_tokens", false},
	{"max_tokens null", `{"capability":"content_search","query":"q","context":{"max_tokens":null}}`, ahperror.InvalidRequest, "context.max_tokens", false},
	{"max_tokens -0", `{"capability":"content_search","query":"q","context":{"max_tokens":-0}}`, ahperror.InvalidRequest, "context.max_tokens", false},

	// Patterns and lengths.
	{"capability uppercase", `{"capability":"Content_search","query":"q"}`, ahperror.InvalidRequest, "capability must be a capability name", false},
	{"capability digit first", `{"capability":"1abc","query":"q"}`, ahperror.InvalidRequest, "capability must be a capability name", false},
	{"capability empty", `{"capability":"","query":"q"}`, ahperror.InvalidRequest, "capability must be a capability name", false},
	{"capability trailing newline", `{"capability":"content_search\n","query":"q"}`, ahperror.InvalidRequest, "capability must be a capability name", false},
	{"capability too long", `{"capability":"a` + strings.Repeat("b", 64) + `","query":"q"}`, ahperror.InvalidRequest, "at most 64 characters", false},
	{"query empty", `{"capability":"content_search","query":""}`, ahperror.InvalidRequest, "query must be 1 to 4096 characters", false},
	{"query too long", `{"capability":"content_search","query":"` + strings.Repeat("é", 4097) + `"}`, ahperror.InvalidRequest, "query must be 1 to 4096 characters", false},
	{"session_id too long", `{"capability":"content_search","query":"q","session_id":"` + strings.Repeat("s", 129) + `"}`, ahperror.InvalidRequest, "session_id must be at most 128", false},
	{"clarification too long", `{"capability":"content_search","query":"q","clarification":"` + strings.Repeat("c", 1025) + `"}`, ahperror.InvalidRequest, "clarification must be at most 1024", false},
	{"auth too long", `{"capability":"content_search","query":"q","auth":"` + strings.Repeat("a", 4097) + `"}`, ahperror.InvalidRequest, "auth must be at most 4096", false},
	{"requesting_agent too long", `{"capability":"content_search","query":"q","context":{"requesting_agent":"` + strings.Repeat("r", 129) + `"}}`, ahperror.InvalidRequest, "context.requesting_agent must be at most 128", false},
	{"requesting_agent 128 wide characters then one", `{"capability":"content_search","query":"q","context":{"requesting_agent":"` + strings.Repeat("é", 129) + `"}}`, ahperror.InvalidRequest, "context.requesting_agent must be at most 128", false},
	{"user_intent too long", `{"capability":"content_search","query":"q","context":{"user_intent":"` + strings.Repeat("u", 257) + `"}}`, ahperror.InvalidRequest, "context.user_intent must be at most 256", false},
	{"ahp pattern", `{"ahp":"v0.1","capability":"content_search","query":"q"}`, ahperror.InvalidRequest, "ahp must be a protocol version", false},
	{"ahp no minor", `{"ahp":"1","capability":"content_search","query":"q"}`, ahperror.InvalidRequest, "ahp must be a protocol version", false},
	{"accept type pattern", `{"capability":"content_search","query":"q","context":{"accept_types":["video/mp4"]}}`, ahperror.InvalidRequest, `"video/mp4" is not one`, false},
	{"accept type uppercase", `{"capability":"content_search","query":"q","context":{"accept_types":["text/Answer"]}}`, ahperror.InvalidRequest, "context.accept_types must list content types", false},
	{"accept type x- empty", `{"capability":"content_search","query":"q","context":{"accept_types":["x-/a"]}}`, ahperror.InvalidRequest, "context.accept_types must list content types", false},
	{"accept type wildcard", `{"capability":"content_search","query":"q","context":{"accept_types":["text/*"]}}`, ahperror.InvalidRequest, "context.accept_types must list content types", false},
	{"locale bad", `{"capability":"content_search","query":"q","context":{"locale":"english"}}`, ahperror.InvalidRequest, "context.locale must be a BCP 47 language tag", false},
	{"locale trailing dash", `{"capability":"content_search","query":"q","context":{"locale":"en-"}}`, ahperror.InvalidRequest, "context.locale", false},
	{"locale long subtag", `{"capability":"content_search","query":"q","context":{"locale":"en-abcdefghi"}}`, ahperror.InvalidRequest, "context.locale", false},
	{"callback relative", `{"capability":"content_search","query":"q","context":{"callback_url":"/cb"}}`, ahperror.InvalidRequest, "context.callback_url must be an absolute URI", false},
	{"callback unparsable", `{"capability":"content_search","query":"q","context":{"callback_url":"https://a b/"}}`, ahperror.InvalidRequest, "context.callback_url must be an absolute URI", false},
	{"callback ipv6 zone", `{"capability":"content_search","query":"q","context":{"callback_url":"https://[fe80::1%25eth0]/"}}`, ahperror.InvalidRequest, "context.callback_url must be an absolute URI", false},

	// Spec rules on schema-valid requests.
	{"requesting_agent with CR LF", `{"capability":"content_search","query":"q","context":{"requesting_agent":"bot/1.0\r\nX-Injected: 1"}}`, ahperror.InvalidRequest, "context.requesting_agent must hold printable characters only", true},
	{"requesting_agent with LF", `{"capability":"content_search","query":"q","context":{"requesting_agent":"bot\nAdmin"}}`, ahperror.InvalidRequest, "context.requesting_agent must hold printable", true},
	{"requesting_agent with NUL", `{"capability":"content_search","query":"q","context":{"requesting_agent":"VictimBot/1.0\u0000x"}}`, ahperror.InvalidRequest, "context.requesting_agent must hold printable", true},
	{"requesting_agent with a tab", `{"capability":"content_search","query":"q","context":{"requesting_agent":"bot\t1"}}`, ahperror.InvalidRequest, "context.requesting_agent must hold printable", true},
	{"requesting_agent with ESC", `{"capability":"content_search","query":"q","context":{"requesting_agent":"bot\u001b[31m"}}`, ahperror.InvalidRequest, "context.requesting_agent must hold printable", true},
	{"requesting_agent with DEL", `{"capability":"content_search","query":"q","context":{"requesting_agent":"bot\u007f"}}`, ahperror.InvalidRequest, "context.requesting_agent must hold printable", true},
	{"requesting_agent with a C1 control", `{"capability":"content_search","query":"q","context":{"requesting_agent":"bot\u0085"}}`, ahperror.InvalidRequest, "context.requesting_agent must hold printable", true},
	{"requesting_agent with U+2028", `{"capability":"content_search","query":"q","context":{"requesting_agent":"bot\u2028x"}}`, ahperror.InvalidRequest, "context.requesting_agent must hold printable", true},
	{"requesting_agent with U+2029", "{\"capability\":\"content_search\",\"query\":\"q\",\"context\":{\"requesting_agent\":\"bot\u2029x\"}}", ahperror.InvalidRequest, "context.requesting_agent must hold printable", true},
	{"requesting_agent with a bidi override", `{"capability":"content_search","query":"q","context":{"requesting_agent":"bot\u202egnp.exe"}}`, ahperror.InvalidRequest, "context.requesting_agent must hold printable", true},
	{"requesting_agent with an isolate", "{\"capability\":\"content_search\",\"query\":\"q\",\"context\":{\"requesting_agent\":\"bot\u2066x\"}}", ahperror.InvalidRequest, "context.requesting_agent must hold printable", true},
	{"requesting_agent with a zero-width space", `{"capability":"content_search","query":"q","context":{"requesting_agent":"Victim\u200bBot"}}`, ahperror.InvalidRequest, "context.requesting_agent must hold printable", true},
	{"requesting_agent with a BOM", `{"capability":"content_search","query":"q","context":{"requesting_agent":"\ufeffbot"}}`, ahperror.InvalidRequest, "context.requesting_agent must hold printable", true},
	{"requesting_agent with a soft hyphen", `{"capability":"content_search","query":"q","context":{"requesting_agent":"Victim\u00adBot"}}`, ahperror.InvalidRequest, "context.requesting_agent must hold printable", true},
	{"requesting_agent with private use", `{"capability":"content_search","query":"q","context":{"requesting_agent":"bot\ue000"}}`, ahperror.InvalidRequest, "context.requesting_agent must hold printable", true},
	{"unknown capability", `{"capability":"foobar","query":"q"}`, ahperror.UnknownCapability, "'foobar' is not supported", true},
	{"unsupported type", `{"capability":"content_search","query":"q","context":{"accept_types":["media/video","media/audio"]}}`, ahperror.UnsupportedType, "accept one of available_types", true},
	{"unsupported default type", `{"capability":"book","query":"q","context":{"accept_types":["application/feed"]}}`, ahperror.UnsupportedType, "capability 'book'", true},
}

func TestParseErrors(t *testing.T) {
	r := testRules(Options{})
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			req := Request{Capability: "stale", Auth: "stale"}
			err := r.Parse([]byte(tt.body), &req)
			if err == nil {
				t.Fatalf("Parse accepted %q", tt.body)
			}
			if err.Status != http.StatusBadRequest || err.Code != tt.code {
				t.Errorf("got %d %s, want 400 %s (%s)", err.Status, err.Code, tt.code, err.Message)
			}
			if !strings.Contains(err.Message, tt.msg) {
				t.Errorf("message %q does not contain %q", err.Message, tt.msg)
			}
			if req.Auth == "stale" {
				t.Error("Parse left the previous request's fields in req")
			}
			// The schema must agree, except where the spec adds rules.
			problems, cerr := schema.Check(schema.RequestSchema, []byte(tt.body))
			if cerr != nil {
				t.Fatal(cerr)
			}
			if schemaRejects := problems != nil; schemaRejects == tt.specOnly {
				t.Errorf("schema rejects: %v, want %v (problems %v)", schemaRejects, !tt.specOnly, problems)
			}
			assertSchemaValidError(t, err)
		})
	}
}

func TestParseErrorDetails(t *testing.T) {
	r := testRules(Options{})
	var req Request
	err := r.Parse([]byte(`{"capability":"foobar","query":"q"}`), &req)
	if want := []string{"content_search", "get_video", "book", "x_vendor"}; err == nil || !reflect.DeepEqual(err.AvailableCapabilities, want) {
		t.Errorf("available_capabilities = %v, want %v", err.AvailableCapabilities, want)
	}
	err = r.Parse([]byte(`{"capability":"content_search","query":"q","context":{"accept_types":["media/video"]}}`), &req)
	if want := []string{"text/answer", "application/feed"}; err == nil || !reflect.DeepEqual(err.AvailableTypes, want) {
		t.Errorf("available_types = %v, want %v", err.AvailableTypes, want)
	}
	err = r.Parse([]byte(`{"capability":"book","query":"q","context":{"accept_types":["media/video"]}}`), &req)
	if want := []string{"text/answer"}; err == nil || !reflect.DeepEqual(err.AvailableTypes, want) {
		t.Errorf("available_types for a capability without response_types = %v, want %v", err.AvailableTypes, want)
	}
	// The first violation in body order is the one reported.
	err = r.Parse([]byte(`{"capability":"BAD","query":"","nope":1}`), &req)
	if err == nil || !strings.HasPrefix(err.Message, "capability must be") {
		t.Errorf("got %v, want the capability violation first", err)
	}
	// Syntax errors win over violations earlier in the body.
	err = r.Parse([]byte(`{"capability":"BAD","query":}`), &req)
	if err == nil || !strings.Contains(err.Message, "not valid JSON") {
		t.Errorf("got %v, want a syntax error", err)
	}
}

// The manifest given to NewRules may change later (a config reload builds a
// new one, but nothing forbids reuse); Rules must not see it.
func TestNewRulesCopiesManifest(t *testing.T) {
	m := testManifest()
	r := NewRules(m, Options{})
	m.Capabilities[0].Name = "renamed"
	m.Capabilities[0].ResponseTypes[0] = "media/audio"
	var req Request
	if err := r.Parse([]byte(`{"capability":"content_search","query":"q","context":{"accept_types":["text/answer"]}}`), &req); err != nil {
		t.Fatal(err)
	}
	if req.Declared.Name != "content_search" {
		t.Errorf("Declared aliases the manifest: %q", req.Declared.Name)
	}
}

// Strings in Request must survive the caller reusing its body buffer.
func TestParseCopiesBody(t *testing.T) {
	r := testRules(Options{})
	body := []byte(typical)
	var req Request
	if err := r.Parse(body, &req); err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 'X'
	}
	if req.Query != "What has the site owner written about AI agents and web protocols?" || req.Context.AcceptTypes[1] != "application/feed" {
		t.Errorf("Request aliases the body buffer: %+v", req)
	}
}

func TestParseAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts are checked in the full run")
	}
	r := testRules(Options{})
	body := []byte(typical)
	var req Request
	allocs := testing.AllocsPerRun(100, func() {
		if err := r.Parse(body, &req); err != nil {
			t.Fatal(err)
		}
	})
	// One copy of the body; everything else aliases it.
	if allocs > 1 {
		t.Errorf("Parse of a typical request allocates %v times, want 1", allocs)
	}
}

// A body built to make the validator work hard must cost memory in
// proportion to its size, whatever it repeats (a quadratic cost would be
// megabytes here).
func TestParseHostileBodiesAllocateLinearly(t *testing.T) {
	r := testRules(Options{})
	const n = 700 // about 8 KB each
	build := func(item string) []byte {
		var b strings.Builder
		b.WriteString(`{"capability":"content_search","query":"q"`)
		for range n {
			b.WriteString(",")
			b.WriteString(item)
		}
		b.WriteString("}")
		return []byte(b.String())
	}
	bodies := map[string][]byte{
		"unknown escaped fields": build(`"\u0078":1`),
		"duplicate fields":       build(`"query":"\n"`),
		"wrong types":            build(`"query":[1]`),
		"escaped accept types": []byte(`{"capability":"content_search","query":"q","context":{"accept_types":[` +
			strings.TrimSuffix(strings.Repeat(`"t\/a",`, n), ",") + `]}}`),
	}
	for name, body := range bodies {
		var req Request
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := r.Parse(body, &req)
		runtime.ReadMemStats(&after)
		if err == nil && name != "escaped accept types" {
			t.Errorf("%s: accepted", name)
		}
		if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(16*len(body)+4096); got > limit {
			t.Errorf("%s: Parse of %d bytes allocated %d bytes, want at most %d", name, len(body), got, limit)
		}
	}
}

func assertSchemaValidError(t *testing.T, e *ahperror.Error) {
	t.Helper()
	body := e.AppendJSON(nil)
	problems, err := schema.Check(schema.ResponseSchema, body)
	if err != nil {
		t.Fatal(err)
	}
	if problems != nil {
		t.Errorf("error body %s does not validate against the response schema: %v", body, problems)
	}
	var decoded map[string]any
	if err := json.Unmarshal(body, &decoded); err != nil {
		t.Errorf("error body is not JSON: %v", err)
	}
	if bytes.Contains(body, []byte("stale")) {
		t.Errorf("error body leaks old request data: %s", body)
	}
}

func TestForwardBody(t *testing.T) {
	tests := []struct {
		name    string
		ceiling int
		body    string
		want    string // "" means: the original, unchanged
	}{
		{"unchanged", 1000, typical, ""},
		{"no ceiling", 0, `{"capability":"content_search","query":"q","context":{"max_tokens":32768}}`, ""},
		{"at the ceiling", 500, `{"capability":"content_search","query":"q","context":{"max_tokens":500}}`, ""},
		{"above the ceiling", 256, `{"capability":"content_search","query":"q","context":{"max_tokens":500,"locale":"en"}}`,
			`{"capability":"content_search","query":"q","context":{"max_tokens":256,"locale":"en"}}`},
		{"non-canonical integer", 0, `{"capability":"content_search","query":"q","context":{"max_tokens":5e2}}`,
			`{"capability":"content_search","query":"q","context":{"max_tokens":500}}`},
		{"auth last", 0, `{"capability":"book","query":"q","auth":"tok"}`,
			`{"capability":"book","query":"q"}`},
		{"auth middle with spaces", 0, `{ "capability" : "book" , "auth" : "tok" , "query" : "q" }`,
			`{ "capability" : "book" , "query" : "q" }`},
		{"auth first", 0, `{"auth":"tok", "capability":"book","query":"q"}`,
			`{"capability":"book","query":"q"}`},
		{"auth first with newline", 0, "{\n  \"auth\": \"tok\",\n  \"capability\": \"book\",\n  \"query\": \"q\"\n}",
			"{\n  \"capability\": \"book\",\n  \"query\": \"q\"\n}"},
		{"auth before capped context", 100, `{"capability":"book","auth":"tok","query":"q","context":{"max_tokens":3000}}`,
			`{"capability":"book","query":"q","context":{"max_tokens":100}}`},
		{"auth after capped context", 100, `{"capability":"book","query":"q","context":{"max_tokens":3000},"auth":"tok"}`,
			`{"capability":"book","query":"q","context":{"max_tokens":100}}`},
		{"absent: the ceiling first in context", 500, `{"capability":"content_search","query":"q","context":{"locale":"en"}}`,
			`{"capability":"content_search","query":"q","context":{"max_tokens":500,"locale":"en"}}`},
		{"absent from an empty context", 500, `{"capability":"content_search","query":"q","context": { } }`,
			`{"capability":"content_search","query":"q","context": {"max_tokens":500 } }`},
		{"absent with no context", 500, `{"capability":"content_search","query":"q"}`,
			`{"capability":"content_search","query":"q","context":{"max_tokens":500}}`},
		{"absent with no context, spaces", 500, "{ \"capability\" : \"content_search\" , \"query\" : \"q\" \n}",
			"{ \"capability\" : \"content_search\" , \"query\" : \"q\" \n,\"context\":{\"max_tokens\":500}}"},
		{"absent with no context, auth last", 100, `{"capability":"book","query":"q","auth":"tok"}`,
			`{"capability":"book","query":"q","context":{"max_tokens":100}}`},
		{"absent with no context, auth first", 100, `{"auth":"tok","capability":"book","query":"q"}`,
			`{"capability":"book","query":"q","context":{"max_tokens":100}}`},
		{"absent, auth after context", 100, `{"capability":"book","query":"q","context":{"locale":"en"},"auth":"tok"}`,
			`{"capability":"book","query":"q","context":{"max_tokens":100,"locale":"en"}}`},
		{"absent, auth before context", 100, `{"capability":"book","auth":"tok","query":"q","context":{}}`,
			`{"capability":"book","query":"q","context":{"max_tokens":100}}`},
		{"absent without a ceiling", 0, `{"capability":"content_search","query":"q"}`, ""},
		{"auth first and capped context", 100, `{"auth":"tok","context":{"max_tokens":1e4},"capability":"book","query":"q"}`,
			`{"context":{"max_tokens":100},"capability":"book","query":"q"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRules(Options{MaxTokensCeiling: tt.ceiling})
			body := []byte(tt.body)
			var req Request
			if err := r.Parse(body, &req); err != nil {
				t.Fatal(err)
			}
			got := r.ForwardBody(&req, body)
			if tt.want == "" {
				if &got[0] != &body[0] || len(got) != len(body) {
					t.Errorf("ForwardBody copied a body it need not change: %s", got)
				}
				return
			}
			if string(got) != tt.want {
				t.Errorf("ForwardBody:\n got %s\nwant %s", got, tt.want)
			}
			if string(body) != tt.body {
				t.Error("ForwardBody modified the original")
			}
			var again Request
			if err := r.Parse(got, &again); err != nil {
				t.Errorf("forwarded body does not parse: %v", err)
			}
		})
	}
}

func TestForwardBodyFastPathAllocs(t *testing.T) {
	r := testRules(Options{MaxTokensCeiling: 1000})
	body := []byte(typical)
	var req Request
	if err := r.Parse(body, &req); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { r.ForwardBody(&req, body) }); n != 0 {
		t.Errorf("ForwardBody of an unchanged body allocates %v times", n)
	}
}

// A pooled buffer makes an edited body, the ceiling inserted, without
// allocating.
func TestForwardBodyIntoAllocs(t *testing.T) {
	r := testRules(Options{MaxTokensCeiling: 1000})
	body := []byte(`{"auth":"tok","capability":"book","query":"q"}`)
	var req Request
	if err := r.Parse(body, &req); err != nil {
		t.Fatal(err)
	}
	buf, edited := r.ForwardBodyInto(nil, &req, body)
	if !edited || string(buf) != `{"capability":"book","query":"q","context":{"max_tokens":1000}}` {
		t.Fatalf("ForwardBodyInto: %s (edited %v)", buf, edited)
	}
	if n := testing.AllocsPerRun(100, func() { buf, _ = r.ForwardBodyInto(buf, &req, body) }); n != 0 {
		t.Errorf("ForwardBodyInto with a buffer allocates %v times", n)
	}
}

func BenchmarkParseTypical(b *testing.B) {
	r := testRules(Options{MaxTokensCeiling: 1000})
	body := []byte(typical)
	var req Request
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Parse(body, &req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseEncodingJSON is the baseline BenchmarkParseTypical is
// compared with: decoding the same body into a struct with encoding/json,
// without any of the validation.
func BenchmarkParseEncodingJSON(b *testing.B) {
	type ctx struct {
		RequestingAgent string   `json:"requesting_agent"`
		UserIntent      string   `json:"user_intent"`
		MaxTokens       int      `json:"max_tokens"`
		AcceptTypes     []string `json:"accept_types"`
		CallbackURL     string   `json:"callback_url"`
		Locale          string   `json:"locale"`
	}
	type request struct {
		AHP           string  `json:"ahp"`
		Capability    string  `json:"capability"`
		Query         string  `json:"query"`
		SessionID     *string `json:"session_id"`
		Clarification *string `json:"clarification"`
		Context       *ctx    `json:"context"`
	}
	body := []byte(typical)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var req request
		if err := json.Unmarshal(body, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkForwardBody(b *testing.B) {
	for _, bc := range []struct {
		name    string
		ceiling int
		body    string
	}{
		{"unchanged", 1000, typical},
		{"capped", 100, typical},
		{"auth_removed", 1000, strings.Replace(typical, `"ahp": "0.1",`, `"ahp": "0.1", "auth": "Bearer 7fJ2kL9mQ4rT8vX1zB5nC3dG",`, 1)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := testRules(Options{MaxTokensCeiling: bc.ceiling})
			body := []byte(bc.body)
			var req Request
			if err := r.Parse(body, &req); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				_ = r.ForwardBody(&req, body)
			}
		})
	}
}
