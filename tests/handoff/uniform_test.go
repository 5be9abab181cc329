package handoff_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/handoff"
	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// headerLines is every header but Date (the clock's, not an oracle), as
// sorted "Name: value" lines.
func headerLines(h http.Header) string {
	var lines []string
	for k, vs := range h {
		if k == "Date" {
			continue
		}
		for _, v := range vs {
			lines = append(lines, k+": "+v)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// Every failure on a uniform path is one answer (status, body, headers)
// and leaves no earlier than the floor (60ms in these sites): not found,
// expired, used, invalid, locked out, unauthorized, a backend error, a
// backend that is down, and every variant spelling of a guarded path. The
// example backend answers these with distinct statuses and bodies.
func TestUniformFailures(t *testing.T) {
	e := startEdge(t, `		lockout {
			after 2
			base 1h
		}`)
	s := e.create()
	handle, _ := e.publish(s)
	_ = handle
	cs := e.startClaim(s)
	auth := []string{"Authorization", "Bearer " + s.AgentToken.Token}
	solved := func() string {
		pc := e.challenge(handoff.DefaultClaimChallengePath)
		return verification("RAPTOR-0000-0000-0000-0000", pc, solve(t, pc))
	}
	preview := fmt.Sprintf("preview.localhost:%d", e.Port)
	type attempt struct {
		what, method, host, path, body string
		headers                        []string
	}
	attempts := []attempt{
		{"unknown sandbox", "GET", e.api(), "/v1/sandboxes/sbx_doesnotexist000000000", "", auth},
		{"another agent's sandbox, no token", "GET", e.api(), "/v1/sandboxes/" + s.ID, "", nil},
		{"a wrong token", "GET", e.api(), "/v1/sandboxes/" + s.ID, "", []string{"Authorization", "Bearer ex_sbx_wrong"}},
		{"claim start, unknown sandbox", "POST", e.api(), "/v1/sandboxes/sbx_nope/claim", "", auth},
		{"verify: wrong code", "POST", e.api(), "/v1/claims/verify", solved(), nil},
		{"verify: a bad proof of work", "POST", e.api(), "/v1/claims/verify", func() string {
			pc := e.challenge(handoff.DefaultClaimChallengePath)
			return verification(cs.Claim.Code, pc, unsolved(pc))
		}(), nil},
		{"verify: a creation challenge", "POST", e.api(), "/v1/claims/verify", func() string {
			c := e.challenge("/v1/sandboxes/challenge")
			return verification(cs.Claim.Code, c, solve(t, c))
		}(), nil},
		{"verify: unknown challenge", "POST", e.api(), "/v1/claims/verify", verification(cs.Claim.Code, challengeAnswer{Challenge: strings.Repeat("ab", 32)}, "1"), nil},
		{"verify: malformed", "POST", e.api(), "/v1/claims/verify", `{"code":`, nil},
		{"verify: GET", "GET", e.api(), "/v1/claims/verify", "", nil},
		{"verify: locked out, right code", "POST", e.api(), "/v1/claims/verify", func() string {
			pc := e.challenge(handoff.DefaultClaimChallengePath)
			return verification(cs.Claim.Code, pc, solve(t, pc))
		}(), nil},
		{"exchange: unknown code", "POST", preview, "/exchange/ex_exch_unknown", "", nil},
		{"variant: case", "GET", e.api(), "/V1/sandboxes/" + s.ID, "", auth},
		{"variant: trailing slash", "POST", e.api(), "/v1/claims/verify/", solved(), nil},
		{"variant: encoded slash", "POST", e.api(), "/v1/claims%2Fverify", solved(), nil},
		{"variant: ;params", "GET", e.api(), "/v1/sandboxes/challenge;x=1", "", nil},
		{"variant: dot segment", "POST", e.api(), "/v1/./claims/verify", solved(), nil},
		{"variant: double slash", "GET", e.api(), "/v1//sandboxes/challenge", "", nil},
		{"variant: suffix", "POST", e.api(), "/v1/claims/verify.json", solved(), nil},
	}
	var first caddyproc.Response
	for i, a := range attempts {
		r, took := e.measure(a.method, a.host, a.path, a.body, a.headers...)
		if took < 60*time.Millisecond {
			t.Errorf("%s: answered after %s, before the 60ms floor", a.what, took)
		}
		if i == 0 {
			first = r
			if r.StatusCode != 404 || string(r.Bytes) != handoff.DefaultFailureBody {
				t.Fatalf("%s: %d %s", a.what, r.StatusCode, r.Bytes)
			}
			continue
		}
		if r.StatusCode != first.StatusCode || !bytes.Equal(r.Bytes, first.Bytes) || headerLines(r.Header) != headerLines(first.Header) {
			t.Errorf("%s: differs from the uniform failure:\n%d %s\n%s\nwant\n%d %s\n%s", a.what,
				r.StatusCode, r.Bytes, headerLines(r.Header), first.StatusCode, first.Bytes, headerLines(first.Header))
		}
	}
	// The variants never reached the backend.
	if n := e.be.count("GET /V1/") + e.be.count("POST /v1/claims/verify/") + e.be.count("POST /v1/claims/verify.json"); n != 0 {
		t.Errorf("%d variant spellings reached the backend", n)
	}
}

// A backend that is down on a uniform path: the uniform failure, not a
// 502 that tells the path exists.
func TestUniformBackendDown(t *testing.T) {
	s := caddyproc.Start(t, `http://api.localhost:{{PORT}} {
	agent_handoff {
		provider "Down"
		failure {
			floor 30ms
		}
	}
	reverse_proxy 127.0.0.1:9
}
`)
	r := s.Do("GET", "/v1/sandboxes/anything", nil, "Host", fmt.Sprintf("api.localhost:%d", s.Port))
	if r.StatusCode != 404 || string(r.Bytes) != handoff.DefaultFailureBody {
		t.Fatalf("backend down: %d %s", r.StatusCode, r.Bytes)
	}
}
