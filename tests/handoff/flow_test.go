package handoff_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/handoff"
)

// Appendix A, end to end, through a real Caddy in front of the example
// backend: an agent that knows only the spec discovers the provider,
// solves the challenge, creates a sandbox, publishes (the handle rotates),
// shows a preview through an exchange code, starts a claim, and the claim
// is verified with code and proof of work (the handle rotates again, the
// agent's token dies).
func TestAppendixAFlow(t *testing.T) {
	e := startEdge(t, "")

	// Discovery (§6.1).
	r := e.apiCall("GET", handoff.DiscoveryPath, "")
	var doc struct {
		AHPVersion string `json:"ahp_version"`
		Sandbox    struct {
			Enabled           bool     `json:"enabled"`
			Admission         []string `json:"admission"`
			ChallengeEndpoint string   `json:"challenge_endpoint"`
			CreateEndpoint    string   `json:"create_endpoint"`
			TTLHours          int      `json:"ttl_hours"`
		} `json:"sandbox"`
		Security map[string]bool `json:"security"`
		Claim    struct {
			Method string `json:"method"`
		} `json:"claim"`
	}
	decode(t, r, &doc)
	api := "http://" + e.api()
	if doc.AHPVersion != "1.0" || !doc.Sandbox.Enabled || doc.Sandbox.Admission[0] != "proof_of_work" ||
		doc.Sandbox.ChallengeEndpoint != api+"/v1/sandboxes/challenge" || doc.Sandbox.CreateEndpoint != api+"/v1/sandboxes" ||
		doc.Sandbox.TTLHours != 48 || !doc.Security["adaptive_pow"] || doc.Claim.Method != "code_plus_pow" || r.Header.Get("Etag") == "" {
		t.Fatalf("discovery: %s", r.Bytes)
	}

	// Admission (§7.1, §7.2): the agent follows the document.
	c := e.challenge(strings.TrimPrefix(doc.Sandbox.ChallengeEndpoint, api))
	if c.Algorithm != handoff.Algorithm || c.Difficulty != 8 || len(c.Challenge) != 64 {
		t.Fatalf("challenge: %+v", c)
	}
	body := admission(c, solve(t, c))
	r = e.apiCall("POST", "/v1/sandboxes", body)
	if r.StatusCode != 201 {
		t.Fatalf("create: %d %s", r.StatusCode, r.Bytes)
	}
	var s created
	decode(t, r, &s)
	if r := e.apiCall("POST", "/v1/sandboxes", body); r.StatusCode != 403 {
		t.Fatalf("replay: %d %s", r.StatusCode, r.Bytes)
	}
	if n := e.be.count("POST /v1/sandboxes"); n != 1 {
		t.Fatalf("%d creations reached the backend, want 1", n)
	}

	// Content, publish, handle rotation (§7.3, §15).
	handle, old := e.publish(s)
	if handle == old || handle == "" {
		t.Fatalf("publish did not rotate the handle: %q -> %q", old, handle)
	}
	page := e.call("GET", handle+".sandbox.localhost:"+fmt.Sprint(e.Port), "/", "")
	if page.StatusCode != 200 || !strings.Contains(string(page.Bytes), "Opening hours") ||
		page.Header.Get("X-Robots-Tag") != "noindex, nofollow" || page.Header.Get("Set-Cookie") != "" ||
		!strings.Contains(page.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("published page: %d %v\n%s", page.StatusCode, page.Header, page.Bytes)
	}
	gone := e.call("GET", old+".sandbox.localhost:"+fmt.Sprint(e.Port), "/", "")
	if gone.StatusCode != 404 || gone.Header.Get("Location") != "" {
		t.Fatalf("the old handle: %d %v", gone.StatusCode, gone.Header)
	}

	// A preview through an exchange code (§17): GET shows the form and
	// consumes nothing; the POST consumes it once.
	r = e.apiCall("POST", "/v1/sandboxes/"+s.ID+"/preview", "", "Authorization", "Bearer "+s.AgentToken.Token)
	var link struct {
		URL string `json:"exchange_url"`
	}
	decode(t, r, &link)
	exchangePath := strings.TrimPrefix(link.URL, fmt.Sprintf("http://preview.localhost:%d", e.Port))
	preview := fmt.Sprintf("preview.localhost:%d", e.Port)
	for range 3 { // link unfurlers, scanners, prefetchers
		if g := e.call("GET", preview, exchangePath, ""); g.StatusCode != 200 || !strings.Contains(string(g.Bytes), `<form method="post">`) {
			t.Fatalf("exchange GET: %d %s", g.StatusCode, g.Bytes)
		}
	}
	if n := e.be.count("GET /exchange/"); n != 0 {
		t.Fatalf("%d exchange GETs reached the backend", n)
	}
	x := e.call("POST", preview, exchangePath, "")
	cookie := x.Header.Get("Set-Cookie")
	if x.StatusCode != 303 || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "Secure") || !strings.Contains(cookie, "SameSite=Strict") {
		t.Fatalf("exchange POST: %d %v", x.StatusCode, x.Header)
	}
	if again := e.call("POST", preview, exchangePath, ""); again.StatusCode != 404 {
		t.Fatalf("a used exchange code: %d", again.StatusCode)
	}
	// The preview is read-only at the edge (§16.1): any other write is 405
	// and never reaches the backend.
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		if r := e.call(m, preview, "/preview", "{}"); r.StatusCode != 405 {
			t.Fatalf("%s on the preview: %d", m, r.StatusCode)
		}
	}
	if n := e.be.count("POST /preview") + e.be.count("PUT /preview") + e.be.count("DELETE /preview"); n != 0 {
		t.Fatalf("%d writes to the preview reached the backend", n)
	}

	// Claim start (§19, Appendix A): the answer carries a fresh claim challenge.
	cs := e.startClaim(s)
	pc := cs.Claim.PoW
	if cs.Claim.Code == "" || len(pc.Challenge) != 64 || pc.Challenge == c.Challenge || pc.Difficulty < 8 {
		t.Fatalf("claim start: %+v", cs)
	}
	// The human's page (the backend's) is served with anti-framing headers
	// and finds the solver on its own origin.
	if p := e.apiCall("GET", "/claim", ""); p.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(p.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("claim page headers: %v", p.Header)
	}
	if js := e.apiCall("GET", handoff.DefaultSolverPath, ""); js.StatusCode != 200 || !strings.HasPrefix(js.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("solver: %d %v", js.StatusCode, js.Header)
	}

	// Verification: code + proof of work.
	v := e.apiCall("POST", "/v1/claims/verify", verification(cs.Claim.Code, pc, solve(t, pc)))
	if v.StatusCode != 200 || v.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("verify: %d %v %s", v.StatusCode, v.Header, v.Bytes)
	}
	var claimed struct{ Status string }
	_ = json.Unmarshal(v.Bytes, &claimed)
	if claimed.Status != "claimed" {
		t.Fatalf("verify answer: %s", v.Bytes)
	}

	// After the claim: the token is dead, the handle rotated (§7.4, §19.4).
	if r := e.apiCall("GET", "/v1/sandboxes/"+s.ID, "", "Authorization", "Bearer "+s.AgentToken.Token); r.StatusCode != 404 {
		t.Fatalf("the agent token after the claim: %d", r.StatusCode)
	}
	if r := e.call("GET", handle+".sandbox.localhost:"+fmt.Sprint(e.Port), "/", ""); r.StatusCode != 404 {
		t.Fatalf("the published handle after the claim: %d", r.StatusCode)
	}
	// The same code again: the uniform failure.
	pc2 := e.challenge(handoff.DefaultClaimChallengePath)
	if r := e.apiCall("POST", "/v1/claims/verify", verification(cs.Claim.Code, pc2, solve(t, pc2))); r.StatusCode != 404 || string(r.Bytes) != handoff.DefaultFailureBody {
		t.Fatalf("a used claim code: %d %s", r.StatusCode, r.Bytes)
	}
}

// A configuration reload keeps challenges (the stores live in Caddy's
// usage pool): one issued before `caddy reload` is spent after it.
func TestReloadKeepsChallenges(t *testing.T) {
	e := startEdge(t, "")
	c := e.challenge("/v1/sandboxes/challenge")
	e.Reload(siteConfig(e.be.Listener.Addr().String(), "\t\tbody_limit 8KB"))
	if r := e.apiCall("POST", "/v1/sandboxes", admission(c, solve(t, c))); r.StatusCode != 201 {
		t.Fatalf("a challenge issued before the reload: %d %s", r.StatusCode, r.Bytes)
	}
}
