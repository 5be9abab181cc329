// Package handoff_test runs the agent_handoff directive in a real Caddy
// built from this repository, in front of the stand-in provider backend of
// examples/handoff (a real HTTP server), with real redis-server processes
// for the shared store and a real headless Chromium for the human's claim.
package handoff_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/examples/handoff/provider"
	"github.com/caddy-ahp/caddy-ahp/handoff"
	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

func TestMain(m *testing.M) { os.Exit(caddyproc.Main(m)) }

// backend is the example provider behind Caddy. Its public URLs depend on
// Caddy's port, known only once Caddy runs, so the provider is built late;
// it counts what reaches it.
type backend struct {
	*httptest.Server
	prov  atomic.Pointer[provider.Provider]
	mu    sync.Mutex
	calls []string // "METHOD path"
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.calls = append(b.calls, r.Method+" "+r.URL.Path)
		b.mu.Unlock()
		p := b.prov.Load()
		if p == nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(b.Close)
	return b
}

// serve points the backend's URLs at Caddy's port.
func (b *backend) serve(port int) {
	b.prov.Store(provider.New(provider.Options{
		APIBase:       fmt.Sprintf("http://api.localhost:%d", port),
		ContentDomain: fmt.Sprintf("sandbox.localhost:%d", port),
		PreviewBase:   fmt.Sprintf("http://preview.localhost:%d", port),
	}))
}

func (b *backend) count(prefix string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// siteConfig is the Caddyfile of the three origins; extra goes into the
// API site's agent_handoff block.
func siteConfig(backendAddr, extra string) string {
	return `http://api.localhost:{{PORT}} {
	agent_handoff {
		provider "Test FAQ" https://docs.test/agents
		content_types faq
		handle_rotation
		difficulty 8 12
		claim_page /claim
		failure {
			floor 60ms
		}
		rate_limit {
			challenge 10000/minute
			create 10000/minute
			verify 10000/minute
			code 10000/minute
			uniform 10000/minute
		}
` + extra + `
	}
	reverse_proxy ` + backendAddr + `
}

http://*.sandbox.localhost:{{PORT}} {
	agent_handoff sandbox_content
	reverse_proxy ` + backendAddr + `
}

http://preview.localhost:{{PORT}} {
	agent_handoff preview
	reverse_proxy ` + backendAddr + `
}
`
}

// edge is one Caddy process with its backend.
type edge struct {
	*caddyproc.Server
	be *backend
}

func startEdge(t *testing.T, extra string) *edge {
	t.Helper()
	be := newBackend(t)
	s := caddyproc.Start(t, siteConfig(be.Listener.Addr().String(), extra))
	be.serve(s.Port)
	return &edge{s, be}
}

func (e *edge) api() string { return fmt.Sprintf("api.localhost:%d", e.Port) }

// call sends a request to one of the origins by Host.
func (e *edge) call(method, host, path, body string, headers ...string) caddyproc.Response {
	e.T().Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	h := append([]string{"Host", host}, headers...)
	if body != "" {
		h = append(h, "Content-Type", "application/json")
	}
	return e.Do(method, path, rd, h...)
}

func (e *edge) apiCall(method, path, body string, headers ...string) caddyproc.Response {
	e.T().Helper()
	return e.call(method, e.api(), path, body, headers...)
}

type challengeAnswer struct {
	Challenge  string `json:"challenge"`
	Difficulty int    `json:"difficulty"`
	Algorithm  string `json:"algorithm"`
	ExpiresAt  string `json:"expires_at"`
}

func decode(t testing.TB, r caddyproc.Response, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Bytes, v); err != nil {
		t.Fatalf("%d %q: %v", r.StatusCode, r.Bytes, err)
	}
}

func (e *edge) challenge(path string) challengeAnswer {
	e.T().Helper()
	r := e.apiCall("GET", path, "")
	if r.StatusCode != 200 {
		e.T().Fatalf("GET %s: %d %s", path, r.StatusCode, r.Bytes)
	}
	var c challengeAnswer
	decode(e.T(), r, &c)
	return c
}

func solve(t testing.TB, c challengeAnswer) string {
	t.Helper()
	n, err := handoff.Solve(context.Background(), c.Challenge, c.Difficulty)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// unsolved is a nonce that does not solve c.
func unsolved(c challengeAnswer) string {
	for i := 0; ; i++ {
		if n := strconv.Itoa(i); !handoff.Verify(c.Challenge, n, c.Difficulty) {
			return n
		}
	}
}

func admission(c challengeAnswer, nonce string) string {
	return `{"admission":{"type":"proof_of_work","challenge":"` + c.Challenge + `","nonce":"` + nonce + `"},"metadata":{}}`
}

func verification(code string, c challengeAnswer, nonce string) string {
	return `{"code":"` + code + `","proof_of_work":{"challenge":"` + c.Challenge + `","nonce":"` + nonce + `"}}`
}

type created struct {
	ID         string `json:"id"`
	Handle     string `json:"public_handle"`
	AgentToken struct {
		Token string `json:"token"`
	} `json:"agent_token"`
}

// create solves a challenge and creates a sandbox.
func (e *edge) create() created {
	e.T().Helper()
	c := e.challenge("/v1/sandboxes/challenge")
	r := e.apiCall("POST", "/v1/sandboxes", admission(c, solve(e.T(), c)))
	if r.StatusCode != 201 {
		e.T().Fatalf("create: %d %s", r.StatusCode, r.Bytes)
	}
	var s created
	decode(e.T(), r, &s)
	return s
}

// publish adds an FAQ and publishes it; it returns the new handle.
func (e *edge) publish(s created) (newHandle, oldHandle string) {
	e.T().Helper()
	auth := []string{"Authorization", "Bearer " + s.AgentToken.Token}
	r := e.apiCall("POST", "/v1/faqs", `{"title":"Opening hours","questions":[{"question":"When?","answer":"9 to 5"}]}`, auth...)
	var faq struct {
		ID string `json:"faq_id"`
	}
	decode(e.T(), r, &faq)
	r = e.apiCall("POST", "/v1/faqs/"+faq.ID+"/publish", "", auth...)
	if r.StatusCode != 200 {
		e.T().Fatalf("publish: %d %s", r.StatusCode, r.Bytes)
	}
	var names struct {
		New string `json:"new_handle"`
		Old string `json:"previous_handle"`
	}
	decode(e.T(), r, &names)
	return names.New, names.Old
}

type claimStart struct {
	Claim struct {
		Code string          `json:"code"`
		URL  string          `json:"url"`
		PoW  challengeAnswer `json:"pow_challenge"`
	} `json:"claim"`
}

func (e *edge) startClaim(s created) claimStart {
	e.T().Helper()
	r := e.apiCall("POST", "/v1/sandboxes/"+s.ID+"/claim", "", "Authorization", "Bearer "+s.AgentToken.Token)
	if r.StatusCode != 201 {
		e.T().Fatalf("claim start: %d %s", r.StatusCode, r.Bytes)
	}
	var c claimStart
	decode(e.T(), r, &c)
	return c
}

// measure sends a request and reports how long the answer took.
func (e *edge) measure(method, host, path, body string, headers ...string) (caddyproc.Response, time.Duration) {
	e.T().Helper()
	start := time.Now()
	r := e.call(method, host, path, body, headers...)
	return r, time.Since(start)
}
