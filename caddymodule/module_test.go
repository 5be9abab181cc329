package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// provisionJSON provisions an ahp handler from its JSON config (what
// `caddy run --config x.json` loads), returning Provision's or
// Validate's error; on success the handler is cleaned up with the test.
func provisionJSON(t *testing.T, raw string) (*Handler, error) {
	t.Helper()
	h := new(Handler)
	if err := json.Unmarshal([]byte(raw), h); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	err := h.Provision(ctx)
	if err == nil {
		err = h.Validate()
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	return h, err
}

const jsonShop = `"manifest":{"name":"Shop","content_signals":{"ai_input":true,"ai_train":false,"search":true}}`

// A JSON config is held to the Caddyfile's bounds: a misspelt
// on_store_error used to load and fail open (anything but exactly
// "closed" counted as open), a misspelt mode to enforce, a 1h Redis
// timeout to hold every request that long.
func TestJSONRateLimitOptionsValidated(t *testing.T) {
	for _, c := range []struct{ rateLimit, want string }{
		{`"on_store_error":"close"`, `ahp rate_limit on_store_error "close": must be open`},
		{`"on_store_error":"Closed"`, `ahp rate_limit on_store_error "Closed": must be open`},
		{`"mode":"dry-run"`, `ahp rate_limit mode "dry-run": must be enforce`},
		{`"leases":"sometimes"`, `ahp rate_limit leases "sometimes": want auto`},
		{`"timeout":"10m"`, `ahp rate_limit timeout 10m0s: want a duration such as 50ms (at most 5s`},
		{`"timeout":-1`, `ahp rate_limit timeout -1ns`},
		{`"retry_jitter":"1ms"`, `ahp rate_limit retry_jitter 1ms: want a duration from 1s to 1h`},
		{`"ipv6_prefix":129`, `ahp rate_limit ipv6_prefix 129: want a prefix length from 1 to 128`},
		{`"headers":"X-RateLimit"`, `ahp rate_limit headers "X-RateLimit": must be x-ratelimit`},
	} {
		_, err := provisionJSON(t, `{`+jsonShop+`,"rate_limit":{`+c.rateLimit+`}}`)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("rate_limit {%s}: got %v, want an error containing %q", c.rateLimit, err, c.want)
		}
	}
	for _, c := range []struct{ option, want string }{
		{`"body_limit":1073741824`, "ahp body_limit 1073741824: want a size in bytes up to 16 MiB"},
		{`"max_tokens":40000`, "ahp max_tokens 40000: want a whole number from 1 to 32768"},
		{`"concierge_timeout":-1`, "ahp concierge_timeout -1ns: want a positive duration"},
		{`"session":{"max_turns":-1}`, "ahp session: max_turns must be at least 1"},
	} {
		_, err := provisionJSON(t, `{`+jsonShop+`,`+c.option+`}`)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.option, err, c.want)
		}
	}
	// The values the Caddyfile takes still load.
	if _, err := provisionJSON(t, `{`+jsonShop+`,"body_limit":16777216,"max_tokens":32768,"rate_limit":{"on_store_error":"open","mode":"log","leases":"off","timeout":"5s","retry_jitter":"1h","ipv6_prefix":128,"headers":"both"}}`); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
}

// on_store_error closed, spelt right, does close: with Redis down a
// request is answered 503, not admitted from per-instance memory.
func TestJSONOnStoreErrorClosedRefusesWhenRedisDown(t *testing.T) {
	h, err := provisionJSON(t, `{`+jsonShop+`,"rate_limit":{"store":"redis","redis":"redis://127.0.0.1:1/0","on_store_error":"closed","timeout":"20ms"}}`)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := caddyRequest(http.MethodGet, "/.well-known/agent.json")
	w := httptest.NewRecorder()
	_ = h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("on_store_error closed, Redis down: answered %d, want 503", w.Code)
	}
}

// A Redis URL without store redis is refused, as agent_handoff does,
// instead of silently counting per instance in memory; the error never
// shows the URL's password.
func TestJSONRedisURLWithoutStoreRefused(t *testing.T) {
	const url = "redis://:s3cretpass@127.0.0.1:1/0"
	for _, store := range []string{``, `"store":"memory",`} {
		_, err := provisionJSON(t, `{`+jsonShop+`,"rate_limit":{`+store+`"redis":"`+url+`"}}`)
		if err == nil || !strings.Contains(err.Error(), "ahp rate_limit store: a Redis URL") || !strings.Contains(err.Error(), "store redis <url>") {
			t.Errorf("rate_limit {%s redis: <url>}: got %v, want the URL refused without store redis", store, err)
		} else if strings.Contains(err.Error(), "s3cretpass") {
			t.Errorf("the error shows the Redis password: %v", err)
		}
	}

	hp := &HandshakePrompt{Redis: url, Zone: "redis-without-store"}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := hp.Provision(ctx)
	if err == nil {
		_ = hp.Cleanup()
	}
	if err == nil || !strings.Contains(err.Error(), "handshake_prompt store: a Redis URL") {
		t.Errorf("handshake_prompt {redis: <url>} without store redis: got %v, want it refused", err)
	} else if strings.Contains(err.Error(), "s3cretpass") {
		t.Errorf("the error shows the Redis password: %v", err)
	}
}

// provisionCaddyfile provisions an ahp handler from its Caddyfile block.
// provisionCaddyfile provisions the handler an ahp block configures;
// each of set changes it first (what the Caddyfile's route would, such as
// the pages matcher).
func provisionCaddyfile(t *testing.T, block string, set ...func(*Handler)) (*Handler, error) {
	t.Helper()
	h := new(Handler)
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(block)); err != nil {
		t.Fatal(err)
	}
	for _, f := range set {
		f(h)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	err := h.Provision(ctx)
	t.Cleanup(func() { _ = h.Cleanup() })
	return h, err
}

// An AHP path under the OpenAPI door's /capabilities/ is refused at load:
// the door answers first (every request for a capability, every JSON POST
// to another name), so a converse endpoint there had every
// spec-conformant AHP call parsed as OpenAPI arguments and refused.
func TestPathsUnderOpenAPICapabilityRefused(t *testing.T) {
	shop := func(opts string) string {
		return `ahp {
			name Shop
			content_signals {
				ai_input true
			}
			capability ask {
				mode MODE2
				description Ask
			}
			rate_limit off
			` + opts + `
		}`
	}
	for _, c := range []struct{ opts, want string }{
		{"converse /capabilities/ask\nopenapi /openapi.json", `ahp converse /capabilities/ask: the openapi door answers /capabilities/ask (capability "ask"); choose a path outside /capabilities/, such as /agent/converse`},
		{"converse /agent/converse\nmcp /capabilities/ask\nopenapi /openapi.json", `ahp mcp /capabilities/ask: the openapi door answers /capabilities/ask`},
		{"converse /agent/converse\nopenapi /capabilities/ask", `ahp openapi /capabilities/ask: the openapi door answers /capabilities/ask`},
		{"converse /agent/converse\ncontent /capabilities/ask\nopenapi /openapi.json", `ahp content /capabilities/ask: the openapi door answers /capabilities/ask`},
		{"converse /capabilities/other\nopenapi /openapi.json", `ahp converse /capabilities/other: the openapi door answers POST /capabilities/other with JSON bodies; choose a path outside /capabilities/, such as /agent/converse`},
	} {
		_, err := provisionCaddyfile(t, shop(c.opts))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error containing %q", c.opts, err, c.want)
		}
	}
	// Without the door, or at a path the door does not answer, it loads,
	// and a direct AHP call reaches the site.
	for _, opts := range []string{"converse /capabilities/ask", "converse /api/capabilities/ask\nopenapi /openapi.json",
		"converse /capabilities/a/ask\nopenapi /openapi.json"} {
		h, err := provisionCaddyfile(t, shop(opts))
		if err != nil {
			t.Errorf("%q refused: %v", opts, err)
			continue
		}
		path := strings.Fields(opts)[1]
		reached := false
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			reached = true
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"status":"success","session_id":"s1","response":{"type":"text/answer","content":"hi"}}`)
			return nil
		})
		r, _ := caddyRequest(http.MethodPost, path)
		r.Body = io.NopCloser(strings.NewReader(`{"ahp":"0.1","capability":"ask","query":"hello","context":{}}`))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		_ = h.ServeHTTP(w, r, next)
		if !reached {
			t.Errorf("%q: a direct AHP call to %s was answered %d %s", opts, path, w.Code, w.Body.String())
		}
	}
}

// Under /capabilities/ the OpenAPI door answers what is an agent's call,
// wherever `ahp <matcher>` puts the pages: a capability's path for any
// method (405 to a GET), a JSON POST to a name not on offer
// (unknown_capability, with the names), each as an AHP error body. A
// legacy site's own pages there, a GET of another name or its HTML form's
// POST, stay the site's.
func TestOpenAPIDoorOwnsItsCalls(t *testing.T) {
	h, err := provisionCaddyfile(t, `ahp {
		name Shop
		converse /agent/converse
		content_signals {
			ai_input true
		}
		capability ask {
			mode MODE2
			description Ask
		}
		openapi /openapi.json
		rate_limit off
	}`, func(h *Handler) {
		// As `ahp /docs/* { … }` puts it.
		h.PagesRaw = caddyhttp.RawMatcherSets{{"path": json.RawMessage(`["/docs/*"]`)}}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path, contentType string
		status                    int
		code                      string // the AHP error's; "" for the site's page
	}{
		{http.MethodGet, "/capabilities/ask", "", http.StatusMethodNotAllowed, "invalid_request"},
		{http.MethodHead, "/capabilities/ask", "", http.StatusMethodNotAllowed, "invalid_request"},
		{http.MethodPost, "/capabilities/nope", "application/json; charset=utf-8", http.StatusBadRequest, "unknown_capability"},
		{http.MethodPost, "/capabilities/ask", "text/plain", http.StatusUnsupportedMediaType, "invalid_request"},
		{http.MethodGet, "/capabilities/overview", "", http.StatusOK, ""},
		{http.MethodPost, "/capabilities/contact", "application/x-www-form-urlencoded", http.StatusOK, ""},
		{http.MethodPost, "/capabilities/ask/more", "application/json", http.StatusOK, ""},
		// a CORS preflight is the site's to answer, and costs nothing
		{http.MethodOptions, "/capabilities/ask", "", http.StatusOK, ""},
	} {
		reached := false
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			reached = true
			_, _ = io.WriteString(w, "<p>the site's page</p>")
			return nil
		})
		r, _ := caddyRequest(c.method, c.path)
		if c.contentType != "" {
			r.Header.Set("Content-Type", c.contentType)
			r.Body = io.NopCloser(strings.NewReader(`{"query":"q"}`))
		}
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, next); err != nil {
			t.Fatal(err)
		}
		label := c.method + " " + c.path + " " + c.contentType
		if w.Code != c.status || reached != (c.code == "") {
			t.Errorf("%s: %d, site reached %v; want %d, site reached %v", label, w.Code, reached, c.status, c.code == "")
			continue
		}
		if c.code == "" {
			continue
		}
		var e struct {
			Status                string   `json:"status"`
			Code                  string   `json:"code"`
			AvailableCapabilities []string `json:"available_capabilities"`
		}
		if c.method != http.MethodHead {
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Status != "error" || e.Code != c.code {
				t.Errorf("%s: body %s, want AHP error %s", label, w.Body.String(), c.code)
			}
		}
		if c.code == "unknown_capability" && !slices.Equal(e.AvailableCapabilities, []string{"ask"}) {
			t.Errorf("%s: available_capabilities %v", label, e.AvailableCapabilities)
		}
		if c.status == http.StatusMethodNotAllowed && w.Header().Get("Allow") != "POST" {
			t.Errorf("%s: Allow %q", label, w.Header().Get("Allow"))
		}
	}
}

// A keys_file line whose key holds ':' fails to load with the file and
// the line named, and no piece of the key in the error (which reaches
// `caddy validate` output and the logs).
func TestKeysFileErrorHidesKeyPiece(t *testing.T) {
	secretPiece := "Zm9v+YmFy/SECRETpart"
	file := t.TempDir() + "/keys"
	if err := os.WriteFile(file, []byte("# keys\n"+secretPiece+":tail0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadKeys(&AuthConfig{KeysFile: file})
	if err == nil || !strings.Contains(err.Error(), "ahp auth keys_file "+file+": keys file line 2:") {
		t.Fatalf("got %v, want an error naming the keys_file and line 2", err)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("the error quotes a piece of the key: %v", err)
	}
}

// Behind a TLS-terminating proxy in the server's trusted_proxies, the
// doors take X-Forwarded-Proto as the client's scheme: /openapi.json
// advertises https (GPT Actions requires it) with Vary naming the header
// next to discovery's Accept, and MCP's resource URIs are https. From any
// other peer the header is ignored.
func TestDoorsBehindTrustedProxyUseForwardedProto(t *testing.T) {
	h, err := provisionCaddyfile(t, `ahp {
		name Shop
		converse /agent/converse
		content /llms.txt
		content_signals {
			ai_input true
		}
		capability ask {
			mode MODE2
			description Ask
		}
		openapi /openapi.json
		mcp /mcp
		rate_limit off
	}`)
	if err != nil {
		t.Fatal(err)
	}
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	for _, trusted := range []bool{true, false} {
		send := func(method, path, body string) *httptest.ResponseRecorder {
			r, _ := caddyRequest(method, path)
			// As Caddy prepares a request from a peer (not) in trusted_proxies.
			r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{
				caddyhttp.TrustedProxyVarKey: trusted, caddyhttp.ClientIPVarKey: "203.0.113.9"}))
			r.RemoteAddr = "10.0.0.2:5555"
			r.Header.Set("X-Forwarded-Proto", "https")
			r.Header.Set("X-Forwarded-For", "203.0.113.9")
			if body != "" {
				r.Body = io.NopCloser(strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Accept", "application/json, text/event-stream")
			}
			w := httptest.NewRecorder()
			if err := h.ServeHTTP(w, r, next); err != nil {
				t.Fatal(err)
			}
			return w
		}
		scheme := map[bool]string{true: "https", false: "http"}[trusted]

		w := send(http.MethodGet, "/openapi.json", "")
		var doc struct {
			Servers []struct{ URL string } `json:"servers"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || len(doc.Servers) == 0 {
			t.Fatalf("%d %v %s", w.Code, err, w.Body.String())
		}
		if doc.Servers[0].URL != scheme+"://shop.example" {
			t.Errorf("trusted proxy %v: servers[0].url %q, want %s://shop.example", trusted, doc.Servers[0].URL, scheme)
		}
		vary := strings.Join(w.Header().Values("Vary"), ", ")
		if !strings.Contains(vary, "Accept") || strings.Contains(vary, "X-Forwarded-Proto") != trusted {
			t.Errorf("trusted proxy %v: Vary %q", trusted, vary)
		}

		w = send(http.MethodPost, "/mcp", `{"jsonrpc":"2.0","id":1,"method":"resources/list"}`)
		if want := `"uri":"` + scheme + `://shop.example/llms.txt"`; !strings.Contains(w.Body.String(), want) {
			t.Errorf("trusted proxy %v: MCP resources/list %d %s, want %s", trusted, w.Code, w.Body.String(), want)
		}
	}
}

// auth keys are checked only by the gateway, which stands at the converse
// endpoint: on a site without one they protect nothing, and a keys_file
// that does not exist used to load without a word. `caddy validate`
// refuses the block there, naming it and the fix; with a converse
// endpoint the keys are loaded and a missing file is named.
func TestAuthWithoutConverseRefused(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-keys")
	const mode1 = "ahp {\n\t\tname Shop\n\t\tcontent_signals {\n\t\t\tai_input true\n\t\t}\n\t\t%s\n\t}"
	for name, auth := range map[string]string{
		"a keys_file that does not exist": "auth {\n\t\t\tkeys_file " + missing + "\n\t\t}",
		"a key":                           "auth {\n\t\t\tkey partner-key-0123456789\n\t\t}",
	} {
		err := validate(t, "example.localhost {\n\t"+fmt.Sprintf(mode1, auth)+"\n\trespond hi\n}\n")
		if err == nil || !strings.Contains(err.Error(), "ahp auth: the manifest has no converse endpoint") || !strings.Contains(err.Error(), "remove the auth block") {
			t.Errorf("%s on a MODE1 site: %v; want it refused, naming the fix", name, err)
		}
	}
	const mode2 = "ahp {\n\t\tname Shop\n\t\tconverse /agent/converse\n\t\tauthentication bearer\n\t\tcontent_signals {\n\t\t\tai_input true\n\t\t}\n\t\tcapability ask {\n\t\t\tmode MODE2\n\t\t\tdescription Ask\n\t\t}\n\t\t%s\n\t}"
	_, err := provisionCaddyfile(t, fmt.Sprintf(mode2, "auth {\n\t\t\tkeys_file "+missing+"\n\t\t}"))
	if err == nil || !strings.Contains(err.Error(), "ahp auth keys_file") || !strings.Contains(err.Error(), missing) {
		t.Errorf("a missing keys_file on a MODE2 site: %v; want an error naming it", err)
	}
	if _, err := provisionCaddyfile(t, fmt.Sprintf(mode2, "auth {\n\t\t\tkey partner-key-0123456789\n\t\t}")); err != nil {
		t.Errorf("a key on a MODE2 site: %v", err)
	}
}

// authentication signed_request is refused wherever it comes from, not
// only in the Caddyfile: a JSON config or a manifest file declaring it
// loaded, and then no credential could ever be presented in it (the
// gateway reads only bearer and api_key), so every action or async call
// was refused 401 auth_required at run time.
func TestSignedRequestAuthenticationRefused(t *testing.T) {
	const want = `authentication "signed_request" is not supported`
	const caps = `"endpoints":{"converse":"/agent/converse"},"capabilities":[{"name":"ask","mode":"MODE2","description":"Ask","response_types":["text/answer"]}]`
	_, err := provisionJSON(t, `{"manifest":{"name":"Shop","authentication":"signed_request","content_signals":{"ai_input":true},`+caps+`}}`)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "bearer") {
		t.Errorf("JSON manifest with authentication signed_request: got %v, want it refused naming bearer or api_key", err)
	}
	file := filepath.Join(t.TempDir(), "agent.json")
	if err := os.WriteFile(file, []byte(`{"name":"Shop","authentication":"signed_request","content_signals":{"ai_input":true},`+caps+`}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = provisionCaddyfile(t, "ahp {\n\tmanifest "+file+"\n}")
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("manifest file with authentication signed_request: got %v, want it refused", err)
	}
	// The ahp block's own authentication wins over the file's, and loads.
	if _, err := provisionCaddyfile(t, "ahp {\n\tmanifest "+file+"\n\tauthentication bearer\n}"); err != nil {
		t.Errorf("the file's signed_request overridden by authentication bearer: %v", err)
	}
}
