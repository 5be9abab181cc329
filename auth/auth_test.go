package auth

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/schema"
)

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestExtract(t *testing.T) {
	tests := []struct {
		name    string
		h       http.Header
		scheme  string
		cred    string
		present bool
	}{
		{"bearer", header("Authorization", "Bearer abc.DEF-123_~+/="), "bearer", "abc.DEF-123_~+/=", true},
		{"bearer lower case", header("Authorization", "bearer tok"), "bearer", "tok", true},
		{"bearer mixed case", header("Authorization", "BeArEr tok"), "bearer", "tok", true},
		{"bearer extra spaces", header("Authorization", "  Bearer    tok  "), "bearer", "tok", true},
		{"bearer tab", header("Authorization", "Bearer\ttok"), "bearer", "tok", true},
		{"bearer empty token", header("Authorization", "Bearer "), "bearer", "", false},
		{"bearer spaces only", header("Authorization", "Bearer    "), "bearer", "", false},
		{"bearer no space", header("Authorization", "Bearertok"), "bearer", "", false},
		{"bearer word only", header("Authorization", "Bearer"), "bearer", "", false},
		{"bearer inner space", header("Authorization", "Bearer to k"), "bearer", "", false},
		{"bearer control char", header("Authorization", "Bearer to\x01k"), "bearer", "", false},
		{"basic instead", header("Authorization", "Basic dXNlcjpwYXNz"), "bearer", "", false},
		{"bearer twice", header("Authorization", "Bearer a", "Authorization", "Bearer b"), "bearer", "", false},
		{"no header", header(), "bearer", "", false},
		{"api key for bearer", header("X-AHP-Key", "k"), "bearer", "", false},
		{"api key", header("X-AHP-Key", "k3y"), "api_key", "k3y", true},
		{"api key header case", header("x-ahp-key", "k3y"), "api_key", "k3y", true},
		{"api key spaces", header("X-AHP-Key", "  k3y \t"), "api_key", "k3y", true},
		{"api key empty", header("X-AHP-Key", ""), "api_key", "", false},
		{"api key twice", header("X-AHP-Key", "a", "X-AHP-Key", "b"), "api_key", "", false},
		{"bearer for api key", header("Authorization", "Bearer tok"), "api_key", "", false},
		{"none", header("Authorization", "Bearer tok", "X-AHP-Key", "k"), "none", "", false},
		{"signed_request", header("Authorization", "Bearer tok"), "signed_request", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred, present := Extract(tt.h, tt.scheme)
			if cred != tt.cred || present != tt.present {
				t.Errorf("Extract = %q, %v; want %q, %v", cred, present, tt.cred, tt.present)
			}
		})
	}
}

func TestExtractAllocs(t *testing.T) {
	h := header("Authorization", "Bearer tok")
	if n := testing.AllocsPerRun(100, func() { Extract(h, manifest.AuthBearer) }); n != 0 {
		t.Errorf("Extract allocates %v times", n)
	}
}

func TestSetHeader(t *testing.T) {
	h := header("Authorization", "Basic x")
	SetHeader(h, manifest.AuthBearer, "tok")
	if got, ok := Extract(h, manifest.AuthBearer); !ok || got != "tok" {
		t.Errorf("after SetHeader bearer: %q %v (%v)", got, ok, h)
	}
	h = header("X-AHP-Key", "a")
	SetHeader(h, manifest.AuthAPIKey, "k")
	if got, ok := Extract(h, manifest.AuthAPIKey); !ok || got != "k" {
		t.Errorf("after SetHeader api_key: %q %v (%v)", got, ok, h)
	}
}

func TestCheckScheme(t *testing.T) {
	for _, s := range []string{"", "none", "bearer", "api_key"} {
		if err := CheckScheme(s); err != nil {
			t.Errorf("CheckScheme(%q): %v", s, err)
		}
	}
	if err := CheckScheme("signed_request"); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("signed_request: %v", err)
	}
	if err := CheckScheme("oauth"); err == nil || !strings.Contains(err.Error(), "unknown authentication scheme") {
		t.Errorf("oauth: %v", err)
	}
}

const (
	goodKey  = "Zq3xV9tL0pR7mK2wY8bN4cH6"
	otherKey = "7fJ2kL9mQ4rT8vX1zB5nC3dG"
)

func TestPolicyCheck(t *testing.T) {
	keys, err := NewKeys("partner: " + goodKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		policy   Policy
		h        http.Header
		bodyAuth string
		required bool

		status   int // 0: no error
		verified bool
		cred     string
		fromBody bool
	}{
		{"none scheme", Policy{Scheme: "none", Keys: keys}, header(), "", true, 0, false, "", false},
		{"empty scheme", Policy{}, header("Authorization", "Bearer x"), "", false, 0, false, "", false},
		{"optional, absent", Policy{Scheme: "bearer", Keys: keys}, header(), "", false, 0, false, "", false},
		{"required, absent", Policy{Scheme: "bearer", Keys: keys}, header(), "", true, 401, false, "", false},
		{"required, wrong scheme", Policy{Scheme: "bearer", Keys: keys}, header("Authorization", "Basic "+goodKey), "", true, 401, false, "", false},
		{"required, api key absent", Policy{Scheme: "api_key", Keys: keys}, header("Authorization", "Bearer "+goodKey), "", true, 401, false, "", false},
		{"required, good key", Policy{Scheme: "bearer", Keys: keys}, header("Authorization", "Bearer "+goodKey), "", true, 0, true, goodKey, false},
		{"required, wrong key", Policy{Scheme: "bearer", Keys: keys}, header("Authorization", "Bearer "+otherKey), "", true, 403, false, "", false},
		{"optional, wrong key", Policy{Scheme: "bearer", Keys: keys}, header("Authorization", "Bearer "+otherKey), "", false, 403, false, "", false},
		{"optional, good key", Policy{Scheme: "bearer", Keys: keys}, header("Authorization", "Bearer "+goodKey), "", false, 0, true, goodKey, false},
		{"api key good", Policy{Scheme: "api_key", Keys: keys}, header("X-AHP-Key", goodKey), "", true, 0, true, goodKey, false},
		{"api key wrong", Policy{Scheme: "api_key", Keys: keys}, header("X-AHP-Key", otherKey), "", true, 403, false, "", false},
		{"no keys: passed through unverified", Policy{Scheme: "bearer"}, header("Authorization", "Bearer anything"), "", true, 0, false, "anything", false},
		{"no keys: absent still 401", Policy{Scheme: "bearer"}, header(), "", true, 401, false, "", false},
		{"empty keys like none", Policy{Scheme: "api_key", Keys: &Keys{}}, header("X-AHP-Key", "whatever"), "", true, 0, false, "whatever", false},
		{"body auth", Policy{Scheme: "bearer", Keys: keys}, header(), goodKey, true, 0, true, goodKey, true},
		{"body auth with Bearer prefix", Policy{Scheme: "bearer", Keys: keys}, header(), "Bearer " + goodKey, true, 0, true, goodKey, true},
		{"body auth wrong", Policy{Scheme: "bearer", Keys: keys}, header(), otherKey, true, 403, false, "", false},
		{"body auth blank", Policy{Scheme: "bearer", Keys: keys}, header(), "   ", true, 401, false, "", false},
		{"header wins over body", Policy{Scheme: "bearer", Keys: keys}, header("Authorization", "Bearer "+goodKey), otherKey, true, 0, true, goodKey, false},
		{"body auth api key", Policy{Scheme: "api_key", Keys: keys}, header(), goodKey, true, 0, true, goodKey, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, e := tt.policy.Check(tt.h, tt.bodyAuth, tt.required)
			if tt.status == 0 {
				if e != nil {
					t.Fatalf("refused: %v", e)
				}
				if res.Verified != tt.verified || res.Credential != tt.cred || res.FromBody != tt.fromBody {
					t.Errorf("got %+v, want verified=%v credential=%q fromBody=%v", res, tt.verified, tt.cred, tt.fromBody)
				}
				if res.Verified && res.KeyID != "partner" {
					t.Errorf("KeyID = %q", res.KeyID)
				}
				return
			}
			if e == nil {
				t.Fatalf("accepted (%+v), want %d", res, tt.status)
			}
			wantCode := map[int]string{401: ahperror.AuthRequired, 403: ahperror.Forbidden}[tt.status]
			if e.Status != tt.status || e.Code != wantCode {
				t.Errorf("got %d %s, want %d %s", e.Status, e.Code, tt.status, wantCode)
			}
			if res != (Result{}) {
				t.Errorf("a refusal returned a result: %+v", res)
			}
			body := string(e.AppendJSON(nil))
			for _, secret := range []string{goodKey, otherKey} {
				if strings.Contains(body, secret) {
					t.Errorf("error body echoes the credential: %s", body)
				}
			}
			if tt.status == 401 && !strings.Contains(e.Message, map[string]string{"bearer": "Authorization: Bearer", "api_key": "X-AHP-Key"}[tt.policy.Scheme]) {
				t.Errorf("401 message does not say where credentials go: %s", e.Message)
			}
			assertSchemaValidError(t, e)
		})
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
}

// Every refusal this package can produce.
func TestErrorsValidate(t *testing.T) {
	for _, e := range []*ahperror.Error{missingBearer, missingAPIKey, wrongBearer, wrongAPIKey, wrongBody, unreadableBearer, unreadableAPIKey} {
		assertSchemaValidError(t, e)
	}
}

func BenchmarkPolicyCheck(b *testing.B) {
	raw := make([]string, 0, 20)
	for i := 0; i < 20; i++ {
		raw = append(raw, strings.Repeat(string(rune('a'+i)), 32))
	}
	keys, err := NewKeys(raw...)
	if err != nil {
		b.Fatal(err)
	}
	p := &Policy{Scheme: manifest.AuthBearer, Keys: keys}
	h := header("Authorization", "Bearer "+raw[7])
	b.ReportAllocs()
	for b.Loop() {
		if _, e := p.Check(h, "", true); e != nil {
			b.Fatal(e)
		}
	}
}

// TestUnreadableCredentials: with keys configured, a credential the
// gateway cannot read is refused (401, naming the header to send), never
// passed on; without keys, the behaviour is as before.
func TestUnreadableCredentials(t *testing.T) {
	keys, err := NewKeys("partner: " + goodKey)
	if err != nil {
		t.Fatal(err)
	}
	good := "Bearer " + goodKey
	tests := []struct {
		name   string
		scheme string
		h      http.Header
	}{
		{"two bearer headers", "bearer", header("Authorization", good, "Authorization", good)},
		{"two bearer headers, one wrong", "bearer", header("Authorization", good, "Authorization", "Bearer "+otherKey)},
		{"bearer with an inner space", "bearer", header("Authorization", "Bearer "+goodKey+" x")},
		{"bearer with a control character", "bearer", header("Authorization", "Bearer "+goodKey+"\x01")},
		{"Basic", "bearer", header("Authorization", "Basic dXNlcjpwYXNzd29yZA==")},
		{"Token", "bearer", header("Authorization", "Token "+goodKey)},
		{"no scheme", "bearer", header("Authorization", goodKey)},
		{"empty Authorization", "bearer", header("Authorization", "")},
		{"Bearer alone", "bearer", header("Authorization", "Bearer")},
		{"Bearer and spaces", "bearer", header("Authorization", "Bearer   ")},
		{"X-AHP-Key on a bearer site", "bearer", header("X-AHP-Key", goodKey)},
		{"X-AHP-Key beside a good bearer", "bearer", header("Authorization", good, "X-AHP-Key", goodKey)},
		{"empty X-AHP-Key on a bearer site", "bearer", header("X-AHP-Key", "")},
		{"two api keys", "api_key", header("X-AHP-Key", goodKey, "X-AHP-Key", goodKey)},
		{"api key with an inner space", "api_key", header("X-AHP-Key", goodKey+" "+goodKey)},
		{"empty api key", "api_key", header("X-AHP-Key", "")},
		{"Authorization on an api_key site", "api_key", header("Authorization", good)},
		{"Authorization beside a good api key", "api_key", header("X-AHP-Key", goodKey, "Authorization", "Basic eDp5")},
	}
	for _, tt := range tests {
		for _, required := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/required=%v", tt.name, required), func(t *testing.T) {
				p := Policy{Scheme: tt.scheme, Keys: keys}
				res, e := p.Check(tt.h, "", required)
				if e == nil {
					t.Fatalf("passed with %+v: an unreadable credential must be refused", res)
				}
				if e.Status != http.StatusUnauthorized || e.Code != ahperror.AuthRequired {
					t.Errorf("got %d %s, want 401 auth_required", e.Status, e.Code)
				}
				want := map[string]string{"bearer": "Authorization: Bearer <token>", "api_key": "X-AHP-Key: <key>"}[tt.scheme]
				if !strings.Contains(e.Message, want) || strings.Contains(e.Message, goodKey) {
					t.Errorf("message %q should name %q and no key", e.Message, want)
				}
				assertSchemaValidError(t, e)

				// Without keys, nothing is refused for being unreadable:
				// the credential, if readable, goes on unverified.
				p.Keys = nil
				res, e = p.Check(tt.h, "", required)
				cred, present := Extract(tt.h, tt.scheme)
				switch {
				case present && (e != nil || res.Credential != cred || res.Verified):
					t.Errorf("without keys: %+v, %v; want %q passed unverified", res, e, cred)
				case !present && required && (e == nil || e != p.missing()):
					t.Errorf("without keys, required: %v, want the plain 401", e)
				case !present && !required && e != nil:
					t.Errorf("without keys, optional: %v", e)
				}
			})
		}
	}
}

// TestForward: with keys, only the verified credential reaches the
// concierge; without, the headers stay as sent (a body credential is set).
func TestForward(t *testing.T) {
	keys, _ := NewKeys(goodKey)
	p := Policy{Scheme: manifest.AuthBearer, Keys: keys}
	h := header("Authorization", "  bearer   "+goodKey+" ", "Cookie", "a=b")
	res, e := p.Check(h, "", true)
	if e != nil {
		t.Fatal(e)
	}
	p.Forward(h, res)
	if got := h["Authorization"]; len(got) != 1 || got[0] != "Bearer "+goodKey || h.Get("Cookie") != "a=b" {
		t.Errorf("forwarded %v", h)
	}
	h = header()
	res, _ = p.Check(h, "", false)
	p.Forward(h, res)
	if len(h) != 0 {
		t.Errorf("an anonymous request gained %v", h)
	}
	h = header()
	res, e = p.Check(h, "Bearer "+goodKey, true)
	if e != nil || !res.FromBody {
		t.Fatal(res, e)
	}
	p.Forward(h, res)
	if h.Get("Authorization") != "Bearer "+goodKey {
		t.Errorf("body credential not set: %v", h)
	}

	open := Policy{Scheme: manifest.AuthAPIKey}
	h = header("X-AHP-Key", "anything", "Authorization", "Basic eDp5")
	res, _ = open.Check(h, "", true)
	open.Forward(h, res)
	if h.Get("X-AHP-Key") != "anything" || h.Get("Authorization") != "Basic eDp5" {
		t.Errorf("without keys the headers should stay: %v", h)
	}
	h = header()
	res, _ = open.Check(h, "k3y-from-body", true)
	open.Forward(h, res)
	if h.Get("X-AHP-Key") != "k3y-from-body" {
		t.Errorf("without keys a body credential should be set: %v", h)
	}
}

// TestRefusalWording: the 401s are read by agent authors (and by the
// agents' models): each names the one header to send, in plain English.
func TestRefusalWording(t *testing.T) {
	for e, want := range map[*ahperror.Error]string{
		missingBearer:    "This capability requires authentication: send one Authorization: Bearer <token> header (manifest authentication: bearer).",
		missingAPIKey:    "This capability requires authentication: send one X-AHP-Key: <key> header (manifest authentication: api_key).",
		unreadableBearer: "The credential sent could not be read: send exactly one Authorization: Bearer <token> header and no X-AHP-Key header (manifest authentication: bearer).",
		unreadableAPIKey: "The credential sent could not be read: send exactly one X-AHP-Key: <key> header and no Authorization header (manifest authentication: api_key).",
	} {
		if e.Message != want {
			t.Errorf("message\n %q\nwant\n %q", e.Message, want)
		}
	}
}
