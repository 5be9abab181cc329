package handoff_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/handoff"
	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// With debug logging on, through the whole flow and its failures, no log
// line holds an agent token, a claim code, an exchange code or an
// Authorization value; every line of the plugin's has a request id and an
// action, and the client's network, never its address (spec §22). The
// access logs use the filters docs/agent-handoff.md gives, word for word:
// the preview site's drops the URI, which holds exchange codes in every
// spelling a client may send (a case, an encoded slash, a dot segment, the
// double slash of a base URL joined with "/exchange/…"); the content
// site's drops the handle from the host (spec §12.1, §15.1, §22).
func TestLogsHoldNoSecrets(t *testing.T) {
	be := newBackend(t)
	previewAccess := `
	log {
		output file {{DIR}}/access.log
		format filter {
			request>uri replace REDACTED
		}
	}
`
	contentAccess := `
	log {
		output file {{DIR}}/access-content.log
		format filter {
			request>host regexp "^[^.]+\." "REDACTED."
			request>tls>server_name regexp "^[^.]+\." "REDACTED."
		}
	}
`
	cfg := strings.Replace(siteConfig(be.Listener.Addr().String(), ""), "\tagent_handoff preview\n", "\tagent_handoff preview\n"+previewAccess, 1)
	cfg = strings.Replace(cfg, "\tagent_handoff sandbox_content\n", "\tagent_handoff sandbox_content\n"+contentAccess, 1)
	s := caddyproc.Start(t, cfg)
	be.serve(s.Port)
	e := &edge{s, be}

	// Debug logging for everything, through the admin API.
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/config/logging/logs/default/level", s.Admin), strings.NewReader(`"DEBUG"`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := caddyproc.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("turning debug logging on: %d %s", resp.StatusCode, b)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.Logs.String(), `"level":"debug"`); {
		if time.Now().After(deadline) {
			t.Fatal("no debug log line after turning debug logging on")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The level change reloaded the config: the old server resets the
	// keep-alive connections it had, which the client would reuse next.
	caddyproc.Client.CloseIdleConnections()

	sb := e.create()
	handle, oldHandle := e.publish(sb)
	content := func(h string) string { return fmt.Sprintf("%s.sandbox.localhost:%d", h, e.Port) }
	if r := e.call("GET", content(handle), "/", ""); r.StatusCode != 200 {
		t.Fatalf("the published page: %d %s", r.StatusCode, r.Bytes)
	}
	e.call("GET", content(oldHandle), "/", "")
	cs := e.startClaim(sb)
	auth := []string{"Authorization", "Bearer " + sb.AgentToken.Token}
	// An exchange code, looked at by a scanner, then used, then reused.
	r := e.apiCall("POST", "/v1/sandboxes/"+sb.ID+"/preview", "", auth...)
	var link struct {
		URL string `json:"exchange_url"`
	}
	decode(t, r, &link)
	code := link.URL[strings.LastIndex(link.URL, "/")+1:]
	preview := fmt.Sprintf("preview.localhost:%d", e.Port)
	// Variant spellings of the live code: refused and not spent, but
	// logged as sent unless the filter ignores spelling.
	for _, p := range []string{"/Exchange/" + code, "/exchange%2F" + code, "/exchange%2f" + code, "/./exchange/" + code,
		"//exchange/" + code, "/exchange//" + code, "/exch%61nge/" + code} {
		if r := e.call("POST", preview, p, ""); r.StatusCode != 404 {
			t.Fatalf("POST %s: %d, want the uniform 404", p, r.StatusCode)
		}
	}
	e.call("GET", preview, "/exchange/"+code, "")
	e.call("POST", preview, "/exchange/"+code, "")
	e.call("POST", preview, "/exchange/"+code, "")
	// Failures carrying secrets: a wrong claim code, a wrong token, a bad
	// proof of work with the right code.
	wrongCode := "RAPTOR-LEAK-TEST-0000-0000"
	pc := e.challenge(handoff.DefaultClaimChallengePath)
	e.apiCall("POST", "/v1/claims/verify", verification(wrongCode, pc, solve(t, pc)))
	pc = e.challenge(handoff.DefaultClaimChallengePath)
	e.apiCall("POST", "/v1/claims/verify", verification(cs.Claim.Code, pc, unsolved(pc)))
	wrongToken := "ex_sbx_WrongTokenThatMustNotBeLogged0000000000"
	e.apiCall("GET", "/v1/sandboxes/"+sb.ID, "", "Authorization", "Bearer "+wrongToken)
	// The claim itself.
	pc = cs.Claim.PoW
	if r := e.apiCall("POST", "/v1/claims/verify", verification(cs.Claim.Code, pc, solve(t, pc))); r.StatusCode != 200 {
		t.Fatalf("claim: %d %s", r.StatusCode, r.Bytes)
	}
	time.Sleep(100 * time.Millisecond) // let the last lines reach the buffer

	logs := s.Logs.String()
	accessLog, err := os.ReadFile(filepath.Join(s.Dir, "access.log"))
	if err != nil || len(accessLog) == 0 {
		t.Fatalf("access log: %v", err)
	}
	secrets := map[string]string{
		"agent token": sb.AgentToken.Token, "claim code": cs.Claim.Code, "wrong claim code": wrongCode,
		"exchange code": code, "wrong token": wrongToken, "handle": handle, "old handle": oldHandle,
	}
	contentLog, err := os.ReadFile(filepath.Join(s.Dir, "access-content.log"))
	if err != nil || len(contentLog) == 0 {
		t.Fatalf("content access log: %v", err)
	}
	for what, secret := range secrets {
		for _, line := range strings.Split(logs, "\n") {
			if !strings.Contains(line, secret) {
				continue
			}
			// Caddy's own reverse_proxy debug line records the request it
			// forwards; the exchange POST's URI holds the code, a content
			// request's Host the handle. That is Caddy's debug output,
			// judged apart (see the docs).
			if (what == "exchange code" || strings.HasSuffix(what, "handle")) && strings.Contains(line, `"msg":"upstream roundtrip"`) {
				continue
			}
			t.Errorf("%s in a log line: %.400s", what, line)
		}
		if strings.Contains(string(accessLog), secret) {
			t.Errorf("%s in the access log", what)
		}
		if strings.Contains(string(contentLog), secret) {
			t.Errorf("%s in the content site's access log", what)
		}
	}
	if !strings.Contains(string(accessLog), `"uri":"REDACTED"`) {
		t.Errorf("the access log does not show the redacted URI:\n%.1500s", accessLog)
	}
	if !strings.Contains(string(contentLog), fmt.Sprintf(`"host":"REDACTED.sandbox.localhost:%d"`, e.Port)) {
		t.Errorf("the content site's access log does not show the redacted host:\n%.1500s", contentLog)
	}

	// The plugin's own lines.
	actions := map[string]bool{}
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"msg":"agent handoff"`) {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("unparsable log line %q", line)
		}
		action, _ := v["action"].(string)
		id, _ := v["request_id"].(string)
		network, _ := v["network"].(string)
		if action == "" || len(id) < 16 || network != "127.0.0.0/24" {
			t.Errorf("a plugin log line without action, request id or coarse network: %s", line)
		}
		if strings.Contains(line, `"127.0.0.1"`) {
			t.Errorf("a plugin log line with the client's address: %s", line)
		}
		actions[action] = true
	}
	for _, want := range []string{"challenge.issued", "create.admitted", "claim.challenge_added", "claim.failed", "claim.refused", "claim.verified", "exchange.page"} {
		if !actions[want] {
			t.Errorf("no %s line among the plugin's logs (saw %v)", want, actions)
		}
	}
}
