package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
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
	if r := s.get("/agent/converse/status/abc"); r.StatusCode != http.StatusOK {
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
