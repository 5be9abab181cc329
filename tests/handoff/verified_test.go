package handoff_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
	"github.com/caddy-ahp/caddy-ahp/internal/webbotauthtest"
)

// creations is a provider backend that records what each creation
// carried: the admission header and the verified-agent header.
type creations struct {
	*httptest.Server
	mu   sync.Mutex
	seen []creationSeen
}

type creationSeen struct{ admission, agent []string }

func newCreations(t *testing.T) *creations {
	t.Helper()
	c := &creations{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/v1/sandboxes" {
			http.NotFound(w, r)
			return
		}
		c.mu.Lock()
		c.seen = append(c.seen, creationSeen{r.Header.Values("X-Agent-Handoff-Admission"), r.Header.Values("X-Ahp-Verified-Agent")})
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"sbx_1","status":"active"}`))
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *creations) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func (c *creations) last() creationSeen {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) == 0 {
		return creationSeen{}
	}
	return c.seen[len(c.seen)-1]
}

// agents are two Web Bot Auth agents whose key directories Caddy can
// fetch: listed (named in skip_proof_of_work) and unlisted; ca is the
// file of their directories' certificates, for trusted_ca.
type agents struct {
	listed, unlisted *webbotauthtest.Agent
	ca               string
}

func newAgents(t *testing.T) agents {
	t.Helper()
	d1, d2 := webbotauthtest.NewDirectory(t), webbotauthtest.NewDirectory(t)
	a := agents{listed: webbotauthtest.NewAgent(t, d1.Origin()), unlisted: webbotauthtest.NewAgent(t, d2.Origin())}
	d1.Serve(a.listed)
	d2.Serve(a.unlisted)
	a.ca = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(a.ca, append(d1.CAPEM(), d2.CAPEM()...), 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

// verifiedSite is an API origin whose ahp block verifies agents and
// whose agent_handoff lets the listed one skip the proof of work; extra
// goes into the agent_handoff block.
func verifiedSite(backend string, ag agents, extra string) string {
	return fmt.Sprintf(`http://api.localhost:{{PORT}} {
	ahp {
		name "Test FAQ"
		content_signals {
			ai_input true
		}
		rate_limit off
		notice off
		verified_agents {
			trusted_ca %s
			allow_networks 127.0.0.0/8
		}
	}
	agent_handoff {
		provider "Test FAQ"
		difficulty 8 12
		skip_proof_of_work %s
		rate_limit {
			challenge 10000/minute
			create 10000/minute
		}
%s
	}
	reverse_proxy %s
}
`, ag.ca, ag.listed.Origin, extra, backend)
}

// signedCall sends a creation signed by a (for signedPath: the path the
// signature covers).
func (e *edge) signedCall(a *webbotauthtest.Agent, signedPath, method, path, body string, headers ...string) caddyproc.Response {
	e.T().Helper()
	return e.apiCall(method, path, body, append(a.Headers(e.api(), signedPath), headers...)...)
}

const noAdmission = `{"metadata":{"name":"demo"}}`

// A verified agent on the list creates without a proof of work, and the
// backend is told which agent; an unlisted verified agent, an unsigned
// request, a badly signed one and a client's own X-Ahp-Verified-Agent
// still need the proof of work.
func TestVerifiedAgentSkipsProofOfWork(t *testing.T) {
	ag := newAgents(t)
	be := newCreations(t)
	e := &edge{Server: caddyproc.Start(t, verifiedSite(be.Listener.Addr().String(), ag, ""))}

	r := e.signedCall(ag.listed, "/v1/sandboxes", "POST", "/v1/sandboxes", noAdmission,
		"X-Agent-Handoff-Admission", "verified; purpose=create; difficulty=99")
	if r.StatusCode != 201 {
		t.Fatalf("the listed agent without a proof of work: %d %s", r.StatusCode, r.Bytes)
	}
	got := be.last()
	if len(got.admission) != 1 || got.admission[0] != "verified-agent; purpose=create; agent="+ag.listed.Origin {
		t.Fatalf("the backend was told %q", got.admission)
	}
	if len(got.agent) != 1 || got.agent[0] != ag.listed.Origin {
		t.Fatalf("X-Ahp-Verified-Agent at the backend: %q", got.agent)
	}

	// Every other request needs its proof of work.
	other := webbotauthtest.NewAgent(t, ag.listed.Origin) // the listed origin, another key
	n := be.count()
	for name, r := range map[string]caddyproc.Response{
		"unlisted agent":             e.signedCall(ag.unlisted, "/v1/sandboxes", "POST", "/v1/sandboxes", noAdmission),
		"unsigned":                   e.apiCall("POST", "/v1/sandboxes", noAdmission),
		"signed for another path":    e.signedCall(ag.listed, "/v1/other", "POST", "/v1/sandboxes", noAdmission),
		"another key, listed origin": e.signedCall(other, "/v1/sandboxes", "POST", "/v1/sandboxes", noAdmission),
		"client's verified header":   e.apiCall("POST", "/v1/sandboxes", noAdmission, "X-Ahp-Verified-Agent", ag.listed.Origin),
		"client's admission header": e.apiCall("POST", "/v1/sandboxes", noAdmission,
			"X-Ahp-Verified-Agent", ag.listed.Origin, "X-Agent-Handoff-Admission", "verified-agent; purpose=create; agent="+ag.listed.Origin),
	} {
		if r.StatusCode != 400 || !strings.Contains(string(r.Bytes), `missing \"admission\"`) {
			t.Errorf("%s without a proof of work: %d %s", name, r.StatusCode, r.Bytes)
		}
	}
	if be.count() != n {
		t.Fatal("a creation without a proof of work reached the backend")
	}

	// With one, the unlisted agent creates as anyone does.
	c := e.challenge("/v1/sandboxes/challenge")
	if r := e.signedCall(ag.unlisted, "/v1/sandboxes", "POST", "/v1/sandboxes", admission(c, solve(t, c))); r.StatusCode != 201 {
		t.Fatalf("the unlisted agent with a proof of work: %d %s", r.StatusCode, r.Bytes)
	}
	if got := be.last(); len(got.admission) != 1 || !strings.HasPrefix(got.admission[0], "verified; purpose=create; difficulty=") {
		t.Fatalf("the backend was told %q", got.admission)
	}

	m := scrapeHandoff(t, e)
	for series, want := range map[string]string{
		`caddy_ahp_handoff_admissions_total{outcome="exempt",site="Test FAQ"}`:    "1",
		`caddy_ahp_handoff_admissions_total{outcome="admitted",site="Test FAQ"}`:  "1",
		`caddy_ahp_handoff_admissions_total{outcome="malformed",site="Test FAQ"}`: "6",
		`caddy_ahp_handoff_velocity{site="Test FAQ"}`:                             "2",
	} {
		if m[series] != want {
			t.Errorf("%s = %q, want %s", series, m[series], want)
		}
	}
}

// Exempt creations count toward the velocity like solved ones, in the
// store every instance shares: through one instance they raise the
// difficulty the other issues, and trip the circuit breaker, which then
// refuses the listed agent too.
func TestVerifiedAgentCountsTowardVelocity(t *testing.T) {
	ag := newAgents(t)
	be := newCreations(t)
	rs := redistest.Start(t)
	cfg := verifiedSite(be.Listener.Addr().String(), ag, `		store redis redis://`+rs.Addr()+`/0
		timeout 2s
		velocity {
			global_step 1
			network_step off
			circuit_breaker 3
		}`)
	a := &edge{Server: caddyproc.Start(t, cfg)}
	b := &edge{Server: caddyproc.Start(t, cfg)}

	for i := range 2 {
		if r := a.signedCall(ag.listed, "/v1/sandboxes", "POST", "/v1/sandboxes", noAdmission); r.StatusCode != 201 {
			t.Fatalf("exempt creation %d at A: %d %s", i+1, r.StatusCode, r.Bytes)
		}
	}
	c := b.challenge("/v1/sandboxes/challenge")
	if c.Difficulty != 10 {
		t.Fatalf("B issues difficulty %d after 2 exempt creations through A, want 10 (base 8, +1 per creation)", c.Difficulty)
	}
	if r := b.apiCall("POST", "/v1/sandboxes", admission(c, solve(t, c))); r.StatusCode != 201 {
		t.Fatalf("a solved creation at B: %d %s", r.StatusCode, r.Bytes)
	}
	// Three creations in the window: the breaker is open for everyone.
	n := be.count()
	for name, r := range map[string]caddyproc.Response{
		"listed agent at A": a.signedCall(ag.listed, "/v1/sandboxes", "POST", "/v1/sandboxes", noAdmission),
		"listed agent at B": b.signedCall(ag.listed, "/v1/sandboxes", "POST", "/v1/sandboxes", noAdmission),
		"a challenge at A":  a.apiCall("GET", "/v1/sandboxes/challenge", ""),
	} {
		if r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
			t.Errorf("%s at the breaker: %d %v %s", name, r.StatusCode, r.Header, r.Bytes)
		}
	}
	if be.count() != n {
		t.Fatal("an exempt creation passed the open breaker")
	}
	if m := scrapeHandoff(t, a); m[`caddy_ahp_handoff_admissions_total{outcome="exempt",site="Test FAQ"}`] != "2" ||
		m[`caddy_ahp_handoff_admissions_total{outcome="tripped",site="Test FAQ"}`] != "2" {
		t.Fatalf("A's admissions: %v", m)
	}
}

// skip_proof_of_work where nothing in the site verifies agents fails
// `caddy validate` naming the fix. Where ahp verifies but not on the
// creation path (ahp in a route for other paths), validation cannot tell: the listed agent
// then needs its proof of work, and the log says why, once.
func TestSkipProofOfWorkConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	cfg := "http://api.localhost:" + fmt.Sprint(caddyproc.FreePort(t)) + ` {
	agent_handoff {
		provider X
		skip_proof_of_work https://chatgpt.com
	}
	respond 404
}
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := caddyproc.Cmd(t, dir, "validate", "--config", path, "--adapter", "caddyfile")
	if err == nil || !strings.Contains(out, "agent_handoff skip_proof_of_work: nothing in this site verifies agents") ||
		!strings.Contains(out, "add verified_agents to the site's ahp block (ahp { verified_agents })") {
		t.Fatalf("validate said (err %v):\n%s", err, lastLine(out))
	}

	ag := newAgents(t)
	be := newCreations(t)
	// ahp only inside a route for other paths (its manifest among them, or
	// the config is refused as unreachable): a matcher on ahp itself no
	// longer keeps its edge checks (verification included) off any path.
	site := verifiedSite(be.Listener.Addr().String(), ag, "")
	site = strings.Replace(site, "\tahp {", "\t@edge path /.well-known/* /docs/*\n\troute @edge {\n\tahp {", 1)
	site = strings.Replace(site, "\t}\n\tagent_handoff {", "\t}\n\t}\n\tagent_handoff {", 1)
	e := &edge{Server: caddyproc.Start(t, site)}
	for range 2 {
		if r := e.signedCall(ag.listed, "/v1/sandboxes", "POST", "/v1/sandboxes", noAdmission); r.StatusCode != 400 {
			t.Fatalf("the listed agent where ahp does not verify creations: %d %s", r.StatusCode, r.Bytes)
		}
	}
	if n := strings.Count(e.Logs.String(), "without passing ahp's verified_agents"); n != 1 {
		t.Fatalf("the warning was logged %d times, want once:\n%s", n, e.Logs.String())
	}
}

// scrapeHandoff reads the handoff series from Caddy's admin /metrics.
func scrapeHandoff(t *testing.T, e *edge) map[string]string {
	t.Helper()
	resp, err := caddyproc.Client.Get(fmt.Sprintf("http://localhost:%d/metrics", e.Admin))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range metricLine.FindAllStringSubmatch(string(b), -1) {
		got[m[1]+m[2]] = m[3]
	}
	return got
}
