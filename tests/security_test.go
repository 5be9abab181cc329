package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
)

// rawRequest sends one request exactly as written (net/http's client
// would clean or refuse some of these targets) and reads the answer.
func (s *caddyServer) rawRequest(method, target string, body string, headers ...string) response {
	s.T().Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), 5*time.Second)
	if err != nil {
		s.T().Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\nContent-Length: %d\r\n", method, target, s.port, len(body))
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", headers[i], headers[i+1])
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		s.T().Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		s.T().Fatalf("%s %q: %v", method, target, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return response{resp, out}
}

// TestEveryConverseSpellingIsGuarded is the hole of the security review:
// a site routing `handle /agent/*` to a concierge (as the README once
// did) must not let any spelling of the converse or status path reach it
// unchecked. The stand-in concierge, like Express, would answer any path.
func TestEveryConverseSpellingIsGuarded(t *testing.T) {
	c := newConcierge(t)
	s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), `rate_limit {
			unauthenticated 1000/minute
		}`))
	spellings := []string{
		"/agent/converse/", "/AGENT/CONVERSE", "/Agent/Converse", "/agent//converse", "//agent/converse",
		"/agent/./converse", "/agent/x/../converse", "/agent/converse%2F", "/agent%2Fconverse", "/agent/converse;x",
		"/agent;x/converse", "/agent/converse%00", "/agent/%63onverse", "/agent/%2563onverse", "/agent/converse.",
		"/agent/converse%20", "/agent/converse.json", "/agent%5Cconverse",
	}
	bodies := map[string]string{
		"unknown field":             `{"capability":"site_info","query":"hi","evil":1}`,
		"MODE3 without credentials": `{"capability":"book_demo","query":"book it"}`,
		"callback to metadata":      `{"capability":"site_info","query":"hi","context":{"callback_url":"https://169.254.169.254/x"}}`,
		"50 KB body":                `{"capability":"site_info","query":"` + strings.Repeat("a", 50<<10) + `"}`,
	}
	for _, target := range spellings {
		for what, body := range bodies {
			r := s.rawRequest(http.MethodPost, target, body, "Content-Type", "application/json")
			if r.StatusCode < 400 || r.StatusCode >= 500 {
				t.Errorf("POST %s (%s): status %d, want a refusal\n%s", target, what, r.StatusCode, r.body)
				continue
			}
			var e struct{ Status, Code string }
			if err := json.Unmarshal(r.body, &e); err != nil || e.Status != "error" || e.Code == "" {
				t.Errorf("POST %s (%s): not an AHP error body: %s", target, what, r.body)
			}
			if r.Header.Get("Link") == "" {
				t.Errorf("POST %s (%s): no Link header", target, what)
			}
		}
	}
	for _, target := range []string{"/agent/converse/STATUS/abc", "/AGENT/converse/status/abc", "/agent/converse//status/abc",
		"/agent/converse/status//abc", "/agent/converse/status/abc;x", "/agent/converse/status/a%2Fb", "/agent/converse/./status/abc"} {
		r := s.rawRequest(http.MethodGet, target, "")
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: status %d, want 400\n%s", target, r.StatusCode, r.body)
		}
	}
	if n := c.count(); n != 0 {
		t.Fatalf("the concierge received %d requests through spellings of its path; want none (first: %s)", n, c.last().path)
	}
	// The exact spellings still work.
	if r := s.converse(`{"capability":"site_info","query":"When are you open?"}`); r.StatusCode != http.StatusOK {
		t.Fatalf("exact converse path: %d %s", r.StatusCode, r.body)
	}
	// The site declares bearer authentication, so a poll carries one (a
	// poll without is refused: TestGatewayForwards).
	if r := s.get("/agent/converse/status/abc", "Authorization", "Bearer some-token"); r.StatusCode != http.StatusOK {
		t.Fatalf("exact status path: %d %s", r.StatusCode, r.body)
	}
}

// TestConverseSpellingsAreRateLimited: refusing a spelling counts against
// the client like any refusal, so variants cannot be flooded for free.
func TestConverseSpellingsAreRateLimited(t *testing.T) {
	c := newConcierge(t)
	s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), `rate_limit {
			unauthenticated 3/minute
		}`))
	var last response
	for i := 0; i < 4; i++ {
		last = s.rawRequest(http.MethodPost, "/AGENT/converse", `{"capability":"site_info","query":"hi"}`, "Content-Type", "application/json")
	}
	if last.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("4th variant spelling within 3/minute: status %d, want 429\n%s", last.StatusCode, last.body)
	}
	if c.count() != 0 {
		t.Fatalf("the concierge received %d requests", c.count())
	}
}

// validate runs `caddy validate` on a Caddyfile (global options added).
func validate(t *testing.T, caddyfile string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	full := "{\n\tadmin off\n\tauto_https off\n}\n" + strings.NewReplacer("{{REPO}}", repoRoot(), "{{PORT}}", "8080").Replace(caddyfile)
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	return caddyCmd(t, dir, "validate", "--config", path, "--adapter", "caddyfile")
}

// Point 1: a key set that is empty (every key commented out, or an empty
// auth block) is a configuration error, never "verification off".
func TestSecurityEmptyKeySetRefused(t *testing.T) {
	revoked := writeKeys(t, "# old: Zq3xV9tL0pR7mK2wY8bN4cH6 (revoked)")
	for name, auth := range map[string]string{
		"keys file with only comments": "auth {\n\t\t\tkeys_file " + revoked + "\n\t\t}",
		"empty auth block":             "auth {\n\t\t}",
	} {
		out, err := validate(t, gatewaySite("127.0.0.1:1", auth))
		if err == nil || !strings.Contains(out, "no keys") || !strings.Contains(out, "ahp auth") {
			t.Errorf("%s: validate %v, want a refusal naming ahp auth and the missing keys:\n%s", name, err, out)
		}
	}
}

// Point 2: refused requests spend nothing shared (the agent window, a
// session's turns), in memory and through a real Redis.
func TestSecuritySharedBudgetsOnlyForAdmitted(t *testing.T) {
	rs := redistest.Start(t)
	for _, store := range []string{"memory", "redis redis://" + rs.Addr() + "/0"} {
		t.Run(strings.Fields(store)[0], func(t *testing.T) {
			c := newConcierge(t)
			s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), `rate_limit {
			store `+store+`
			key {http.request.header.X-Client}
			unauthenticated 3/minute
			per_agent 5/minute
			zone `+strings.ReplaceAll(t.Name(), "/", ".")+`
		}
		session {
			max_turns 5
		}`))
			victimBody := `{"capability":"site_info","query":"hi","session_id":"victim-session","context":{"requesting_agent":"VictimBot/1.0"}}`
			for range 20 {
				s.converse(victimBody, "X-Client", "attacker")
			}
			admitted := 0
			for range 5 {
				if r := s.converse(victimBody, "X-Client", "victim"); r.StatusCode == 200 {
					admitted++
				}
			}
			// The attacker's 3 admitted calls spent 3 of VictimBot's 5
			// and 3 of the session's 5 turns; its 17 refusals, nothing.
			if admitted != 2 {
				t.Fatalf("after the attacker's flood the victim got %d calls; want 2 (5 − the attacker's 3 admitted)", admitted)
			}
		})
	}
}

// Point 2, the key: per_agent counts a verified key's calls under the key,
// whatever requesting_agent they type, so a key holder can neither spend a
// typed name's budget nor escape its own by changing names; another key and
// anonymous callers keep theirs.
func TestSecurityPerAgentKeyedOnVerifiedKey(t *testing.T) {
	const partnerKey = "pArtner-0123456789-abcdef"
	c := newConcierge(t)
	s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), `auth {
			keys_file `+writeKeys(t, goodKey, "partner: "+partnerKey)+`
		}
		rate_limit {
			unauthenticated 100/minute
			authenticated 100/minute
			per_agent 2/minute
		}`))
	named := func(name string) string {
		return `{"capability":"site_info","query":"hi","context":{"requesting_agent":"` + name + `"}}`
	}
	var statuses []int
	var last response
	for _, name := range []string{"VictimBot/1.0", "bot-b", "bot-c"} {
		last = s.converse(named(name), "Authorization", "Bearer "+goodKey)
		statuses = append(statuses, last.StatusCode)
	}
	if statuses[0] != 200 || statuses[1] != 200 || statuses[2] != 429 {
		t.Fatalf("one key under three names within per_agent 2/minute: %v; want 200, 200, 429", statuses)
	}
	var e struct{ Scope string }
	_ = json.Unmarshal(last.body, &e)
	if e.Scope != "agent" {
		t.Errorf("the key's 429: scope %q, want agent: %s", e.Scope, last.body)
	}
	// The key's calls spent nothing of the names it typed, nor of another key.
	for i := range 2 {
		if r := s.converse(named("VictimBot/1.0")); r.StatusCode != 200 {
			t.Errorf("anonymous VictimBot/1.0 call %d after the key used its name: %d %s", i+1, r.StatusCode, r.body)
		}
		if r := s.converse(named("VictimBot/1.0"), "Authorization", "Bearer "+partnerKey); r.StatusCode != 200 {
			t.Errorf("the partner key's call %d: %d %s", i+1, r.StatusCode, r.body)
		}
	}
}

// Point 3: with keys configured, a credential the gateway cannot read is
// refused, and the concierge never sees an unverified credential.
func TestSecurityUnreadableCredentialsRefused(t *testing.T) {
	c := newConcierge(t)
	s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), "auth {\n\t\t\tkeys_file "+writeKeys(t, goodKey)+"\n\t\t}"))
	for name, headers := range map[string][]string{
		"two bearer headers":       {"Authorization", "Bearer " + goodKey, "Authorization", "Bearer " + goodKey},
		"bearer with inner space":  {"Authorization", "Bearer " + goodKey + " extra"},
		"Basic scheme":             {"Authorization", "Basic YWxpY2U6c2VjcmV0"},
		"Token scheme":             {"Authorization", "Token " + goodKey},
		"X-AHP-Key on bearer site": {"X-AHP-Key", goodKey},
		"bearer plus X-AHP-Key":    {"Authorization", "Bearer " + goodKey, "X-AHP-Key", "stray-key-0123456789"},
	} {
		r := s.converse(siteInfo, headers...)
		if r.StatusCode != 401 && r.StatusCode != 403 {
			t.Errorf("%s: %d %s, want a refusal", name, r.StatusCode, r.body)
		}
	}
	if n := c.count(); n != 0 {
		t.Fatalf("the concierge received %d requests with unreadable credentials", n)
	}
	if r := s.converse(siteInfo, "Authorization", "Bearer "+goodKey, "Cookie", "session=abc"); r.StatusCode != 200 {
		t.Fatalf("a verified key: %d %s", r.StatusCode, r.body)
	}
	if h := c.last().header; h.Get("Authorization") != "Bearer "+goodKey || h.Get("X-Ahp-Key") != "" {
		t.Errorf("forwarded credentials: Authorization %q, X-AHP-Key %q", h.Get("Authorization"), h.Get("X-Ahp-Key"))
	}
}

// Point 4: only JSON reaches the concierge, on converse and the OpenAPI
// capability paths alike (a cross-site "simple request" cannot send it).
func TestSecurityOnlyJSONReachesTheConcierge(t *testing.T) {
	c := newConcierge(t)
	s := startCaddy(t, frontDoorSite(t, c, "# content\n", ""))
	for _, path := range []string{"/agent/converse", "/capabilities/site_info"} {
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
			headers := []string{}
			if ct != "" {
				headers = append(headers, "Content-Type", ct)
			}
			r := s.rawRequest(http.MethodPost, path, `{"capability":"site_info","query":"hi"}`, headers...)
			if r.StatusCode != http.StatusUnsupportedMediaType {
				t.Errorf("POST %s with Content-Type %q: %d, want 415", path, ct, r.StatusCode)
			}
		}
	}
	if n := c.count(); n != 0 {
		t.Fatalf("the concierge received %d non-JSON requests", n)
	}
}

// Point 5: OpenAPI capability calls refused before the gateway count
// against the client, as refusals on the converse endpoint do.
func TestSecurityOpenAPIRefusalsAreLimited(t *testing.T) {
	c := newConcierge(t)
	s := startCaddy(t, frontDoorSite(t, c, "# content\n", "rate_limit {\n\t\t\tunauthenticated 3/minute\n\t\t}"))
	var statuses []int
	for range 10 {
		r := s.do(http.MethodPost, "/capabilities/site_info", strings.NewReader(`{"nope":1}`), "Content-Type", "application/json")
		statuses = append(statuses, r.StatusCode)
	}
	if statuses[0] != 400 || statuses[9] != 429 {
		t.Fatalf("ten invalid OpenAPI calls within 3/minute: %v; want 400s, then 429s", statuses)
	}
}

// Point 6: behind the site's basic_auth, the plugin's own documents are
// as protected as the site.
func TestSecurityPluginDocumentsBehindSiteAuth(t *testing.T) {
	c := newConcierge(t)
	// bcrypt of "secret" at cost 4: cost 14 takes seconds per request under -race.
	const hash = "$2a$04$dD3fUvhgbMKN0XA0jrOdSuJRVxsQ3gj1QnSe7c6iKaPPbt8s1Wedu"
	site := strings.Replace(frontDoorSite(t, c, "# private content\n", ""), "\thandle /agent/* {", "\tbasic_auth {\n\t\talice "+hash+"\n\t}\n\thandle /agent/* {", 1)
	s := startCaddy(t, site)
	paths := []string{"/.well-known/agent.json", "/llms.txt", "/openapi.json"}
	for _, p := range paths {
		if r := s.get(p); r.StatusCode != 401 || strings.Contains(string(r.body), "private content") {
			t.Errorf("GET %s without credentials: %d %s; want 401", p, r.StatusCode, r.body)
		}
		if r := s.get(p, "Authorization", "Basic YWxpY2U6c2VjcmV0"); r.StatusCode != 200 {
			t.Errorf("GET %s as alice: %d", p, r.StatusCode)
		}
	}
	mcp := `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"/llms.txt"}}`
	if r := s.do(http.MethodPost, "/mcp", strings.NewReader(mcp), "Content-Type", "application/json", "Accept", "application/json, text/event-stream"); r.StatusCode != 401 || strings.Contains(string(r.body), "private content") {
		t.Errorf("MCP resources/read without credentials: %d %s; want 401", r.StatusCode, r.body)
	}
}

// Point 7: trusting proxies without trusted_proxies_strict lets clients
// choose their address (the leftmost X-Forwarded-For); the plugin says so.
func TestSecurityWarnsOnNonStrictTrustedProxies(t *testing.T) {
	c := newConcierge(t)
	s := startCaddyGlobals(t, "servers {\n\t\ttrusted_proxies static private_ranges\n\t}", gatewaySite(c.Listener.Addr().String(), ""))
	// At startup (the Caddyfile's adaptation), before any request.
	if !strings.Contains(s.logs.String(), "trusted_proxies_strict") {
		t.Errorf("no warning at startup about trusted_proxies without trusted_proxies_strict:\n%s", s.logs.String())
	}
	// And for a JSON config, which has no adaptation, at the first request
	// whose client address came from X-Forwarded-For.
	s.converse(siteInfo, "X-Forwarded-For", "203.0.113.9")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.logs.String(), "trusted_proxies_strict") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning about trusted_proxies without trusted_proxies_strict:\n%s", s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	strict := startCaddyGlobals(t, "servers {\n\t\ttrusted_proxies static private_ranges\n\t\ttrusted_proxies_strict\n\t}", gatewaySite(c.Listener.Addr().String(), ""))
	strict.converse(siteInfo, "X-Forwarded-For", "203.0.113.9")
	strict.get("/")
	if strings.Contains(strict.logs.String(), "trusted_proxies_strict") {
		t.Errorf("warned with trusted_proxies_strict on:\n%s", strict.logs.String())
	}
}

// Point 8: a </body> inside an attribute value never takes the notice.
func TestSecurityNoticeNeverInsideATag(t *testing.T) {
	const page = `<html><body><p>hi</p><div title="x</body><img src=x onerror=alert(1)>">y</div></body></html>`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	}))
	t.Cleanup(up.Close)
	s := startCaddy(t, "http://127.0.0.1:{{PORT}} {\n"+ahpBlock("")+"\treverse_proxy "+up.Listener.Addr().String()+"\n}")
	r := s.get("/")
	title := regexp.MustCompile(`title="[^"]*"`).Find(r.body)
	if strings.Contains(string(title), "ahp-notice") {
		t.Fatalf("the notice was spliced into an attribute value: %s", title)
	}
	assertNoticeInDOM(t, "page with </body> in an attribute", r.body)
}

// Point 9: a Redis password appears in no error, whatever it holds.
func TestSecurityRedisPasswordsRedacted(t *testing.T) {
	for _, url := range []string{
		"redis://:pa/ss-SECRET@127.0.0.1:6379/0",
		"redis://:SECRET?x@127.0.0.1:6379/0",
		"redis+sentinel://127.0.0.1:26379?password=SECRET&sentinel_password=SECRET", // no master_name: refused
		"redis://user:SECRET@127.0.0.1:notaport/0",
	} {
		out, err := validate(t, gatewaySite("127.0.0.1:1", "rate_limit {\n\t\t\tstore redis "+url+"\n\t\t}"))
		if strings.Contains(out, "SECRET") {
			t.Errorf("%s: the password is in caddy's output (err %v):\n%s", url, err, out)
		}
		// The URL was read (and refused or tried), not skipped.
		if !strings.Contains(out, "redis") {
			t.Errorf("%s: caddy's output says nothing of the Redis URL:\n%s", url, out)
		}
	}
}

// Point 11: the concierge gets the callback's checked addresses to pin
// (DNS rebinding), and no client can supply them.
func TestSecurityCallbackAddressesPinned(t *testing.T) {
	c := newConcierge(t)
	s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), ""))
	body := `{"capability":"site_info","query":"hi","context":{"callback_url":"https://93.184.216.34/hook"}}`
	if r := s.converse(body, "X-AHP-Callback-Addrs", "127.0.0.1"); r.StatusCode != 200 {
		t.Fatalf("public callback: %d %s", r.StatusCode, r.body)
	}
	if got := c.last().header.Values("X-Ahp-Callback-Addrs"); len(got) != 1 || got[0] != "93.184.216.34" {
		t.Fatalf("X-AHP-Callback-Addrs at the concierge: %q; want exactly the checked address", got)
	}
	if r := s.converse(siteInfo, "X-AHP-Callback-Addrs", "127.0.0.1"); r.StatusCode != 200 || c.last().header.Get("X-Ahp-Callback-Addrs") != "" {
		t.Fatalf("a client's own X-AHP-Callback-Addrs reached the concierge: %q", c.last().header.Get("X-Ahp-Callback-Addrs"))
	}
}

// Point 12: Azure's wire server is no callback; a configured key with ':'
// is one key; requesting_agent is printable text.
func TestSecuritySmallerPoints(t *testing.T) {
	c := newConcierge(t)
	const colonKey = "abc:def-0123456789-ghijkl"
	t.Setenv("AHP_TEST_COLON_KEY", colonKey)
	s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), "auth {\n\t\t\tkey {env.AHP_TEST_COLON_KEY}\n\t\t}"))
	if r := s.converse(`{"capability":"site_info","query":"hi","context":{"callback_url":"https://168.63.129.16/x"}}`); r.StatusCode != 400 {
		t.Errorf("callback to Azure's wire server: %d %s", r.StatusCode, r.body)
	}
	if r := s.converse(siteInfo, "Authorization", "Bearer "+colonKey); r.StatusCode != 200 {
		t.Errorf("the whole key with ':': %d %s", r.StatusCode, r.body)
	}
	if r := s.converse(siteInfo, "Authorization", "Bearer def-0123456789-ghijkl"); r.StatusCode != 403 {
		t.Errorf("the part after ':' accepted as the key: %d %s", r.StatusCode, r.body)
	}
	for _, agent := range []string{`bot\r\nX-Evil: 1`, `bot\u0000`, `bot\u2028`, `bot\u202e`} {
		if r := s.converse(`{"capability":"site_info","query":"hi","context":{"requesting_agent":"` + agent + `"}}`); r.StatusCode != 400 {
			t.Errorf("requesting_agent %s: %d %s", agent, r.StatusCode, r.body)
		}
	}
}

// Point 10: a compressed page is decoded only so far (8 MiB): past the
// bound it passes through exactly as the upstream sent it, and a small one
// still gets the notice, in every coding.
func TestSecurityCompressedPagesBounded(t *testing.T) {
	small := []byte("<html><body><p>small page</p></body></html>")
	huge := append([]byte("<html><body>"), bytes.Repeat([]byte("<p>a page that decodes to more than the bound</p>\n"), 9<<20/50)...)
	huge = append(huge, "</body></html>"...)
	for _, enc := range []string{"gzip", "br", "zstd"} {
		bodies := map[string][]byte{"/small": compress(t, enc, small), "/huge": compress(t, enc, huge)}
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Encoding", enc)
			w.Write(bodies[r.URL.Path])
		}))
		s := startCaddy(t, "http://127.0.0.1:{{PORT}} {\n"+ahpBlock("")+"\treverse_proxy "+up.Listener.Addr().String()+"\n}")
		r := s.get("/huge", "Accept-Encoding", enc)
		if !bytes.Equal(r.body, bodies["/huge"]) {
			t.Errorf("%s: a page decoding past the bound was changed (%d bytes in, %d out)", enc, len(bodies["/huge"]), len(r.body))
		}
		r = s.get("/small", "Accept-Encoding", enc)
		if page := decompress(t, enc, r.body); !bytes.Contains(page, []byte(`class="ahp-notice"`)) {
			t.Errorf("%s: the small page lacks the notice: %s", enc, page)
		}
		up.Close()
	}
}

// Unicode case folding: Caddy's path matcher (strings.ToLower) reads
// "/agent/concİerge" as "/agent/concierge", so the gateway must too.
func TestConverseSpellingUnicodeFold(t *testing.T) {
	c := newConcierge(t)
	site := strings.Replace(gatewaySite(c.Listener.Addr().String(), ""), "converse /agent/converse", "converse /agent/concierge", 1)
	site = strings.Replace(site, "handle /agent/* {", "handle /agent/concierge* {", 1)
	s := startCaddy(t, site)
	for _, target := range []string{"/agent/conc%C4%B0erge", "/agent/conc%c4%b0erge", "/AGENT/CONC%C4%B0ERGE"} {
		r := s.rawRequest(http.MethodPost, target, `{"capability":"book_demo","query":"x","evil":1}`, "Content-Type", "text/plain")
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s: %d %s, want 400", target, r.StatusCode, r.body)
		}
	}
	if n := c.count(); n != 0 {
		t.Fatalf("the concierge received %d requests through a Unicode spelling", n)
	}
}

// The async status path follows the call's credential rules: with keys,
// nothing unverified (and no client-sent callback addresses) reaches the
// concierge (found in review).
func TestSecurityStatusPathCredentials(t *testing.T) {
	c := newConcierge(t)
	s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), "auth {\n\t\t\tkeys_file "+writeKeys(t, goodKey)+"\n\t\t}\n\t\tcors"))
	for name, headers := range map[string][]string{
		"Basic scheme":             {"Authorization", "Basic YWxpY2U6c2VjcmV0"},
		"X-AHP-Key on bearer site": {"X-AHP-Key", "guessed-key-0123456789"},
		"two bearer headers":       {"Authorization", "Bearer " + goodKey, "Authorization", "Bearer " + goodKey},
		"wrong bearer":             {"Authorization", "Bearer wrong-key-0123456789abc"},
	} {
		if r := s.get("/agent/converse/status/abc", headers...); r.StatusCode != 401 && r.StatusCode != 403 {
			t.Errorf("%s: %d %s, want a refusal", name, r.StatusCode, r.body)
		}
	}
	if n := c.count(); n != 0 {
		t.Fatalf("the concierge received %d status polls with unverifiable credentials", n)
	}
	if r := s.get("/agent/converse/status/abc", "Authorization", "Bearer "+goodKey, "X-AHP-Callback-Addrs", "169.254.169.254"); r.StatusCode != 200 {
		t.Fatalf("a verified poll: %d %s", r.StatusCode, r.body)
	}
	if h := c.last().header; h.Get("Authorization") != "Bearer "+goodKey || h.Get("X-Ahp-Callback-Addrs") != "" {
		t.Errorf("forwarded poll: Authorization %q, X-AHP-Callback-Addrs %q", h.Get("Authorization"), h.Get("X-Ahp-Callback-Addrs"))
	}
	if r := s.do(http.MethodOptions, "/agent/converse/status/abc", nil, "Origin", "https://agent.example", "Access-Control-Request-Method", "GET"); r.StatusCode != 204 {
		t.Errorf("CORS preflight on the status path: %d", r.StatusCode)
	}
}

// A callback refused for its form or address before any lookup spends no
// session turn (found in review).
func TestSecurityRefusedCallbackSpendsNoTurn(t *testing.T) {
	c := newConcierge(t)
	s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), "session {\n\t\t\tmax_turns 2\n\t\t}"))
	bad := `{"capability":"site_info","query":"hi","session_id":"victim-session","context":{"callback_url":"https://169.254.169.254/x"}}`
	for range 3 {
		if r := s.converse(bad); r.StatusCode != 400 {
			t.Fatalf("metadata callback: %d %s", r.StatusCode, r.body)
		}
	}
	for i := range 2 {
		if r := s.converse(`{"capability":"site_info","query":"hi","session_id":"victim-session"}`); r.StatusCode != 200 {
			t.Fatalf("turn %d of the victim's session after refused callbacks: %d %s", i+1, r.StatusCode, r.body)
		}
	}
}

// The README's route: the status path without an id never reaches the
// concierge, in any spelling, with or without credentials.
func TestSecurityStatusRootRefused(t *testing.T) {
	c := newConcierge(t)
	site := gatewaySite(c.Listener.Addr().String(), "auth {\n\t\t\tkeys_file "+writeKeys(t, goodKey)+"\n\t\t}")
	site = strings.Replace(site, "handle /agent/* {", "@concierge path /agent/converse /agent/converse/status/*\n\thandle @concierge {", 1)
	s := startCaddy(t, site)
	for _, target := range []string{"/agent/converse/status/", "/AGENT/converse/status/", "/agent/converse/status/./", "/agent/converse/status", "/agent/converse/status//"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			if r := s.rawRequest(method, target, `{"capability":"book_demo","query":"x"}`, "Content-Type", "application/json", "Authorization", "Basic YWxpY2U6c2VjcmV0"); r.StatusCode != http.StatusBadRequest {
				t.Errorf("%s %s: %d %s, want 400", method, target, r.StatusCode, r.body)
			}
		}
	}
	if n := c.count(); n != 0 {
		t.Fatalf("the concierge received %d requests for the status path without an id (first: %s)", n, c.last().path)
	}
	if r := s.get("/agent/converse/status/abc", "Authorization", "Bearer "+goodKey); r.StatusCode != 200 {
		t.Fatalf("a status poll: %d %s", r.StatusCode, r.body)
	}
}
