package handoff

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/limiter"
)

const exemptAgent = "https://agent.example"

// recorder is an Observer that counts admission outcomes.
type recorder struct {
	NopObserver
	mu         sync.Mutex
	admissions map[string]int
	velocity   int64
}

func (o *recorder) Admission(outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.admissions == nil {
		o.admissions = map[string]int{}
	}
	o.admissions[outcome]++
}

func (o *recorder) Velocity(global int64, _ int) {
	o.mu.Lock()
	o.velocity = global
	o.mu.Unlock()
}

// exemptFixture exempts requests whose X-Test-Agent is exemptAgent (the
// test's stand-in for a verified agent on the list) and counts how often
// the handler asked.
func exemptFixture(t *testing.T, edit func(*Config)) (*fixture, *atomic.Int64, *recorder) {
	t.Helper()
	asked := new(atomic.Int64)
	obs := &recorder{}
	f := newFixture(t, func(c *Config) {
		c.Observer = obs
		c.ProofExempt = func(r *http.Request) string {
			asked.Add(1)
			if a := r.Header.Get("X-Test-Agent"); a == exemptAgent {
				return a
			}
			return ""
		}
		if edit != nil {
			edit(c)
		}
	})
	return f, asked, obs
}

// An exempt agent creates without a proof of work; the backend is told
// which agent, in the header only the edge sets; the body reaches it
// unchanged, and an admission in it is neither needed nor spent. Others
// still need the proof of work.
func TestCreateExempt(t *testing.T) {
	f, asked, obs := exemptFixture(t, nil)
	body := `{"metadata":{"agent":"listed"}}`
	r := f.do("POST", "/v1/sandboxes", body, "X-Test-Agent", exemptAgent, AdmissionHeader, "verified; purpose=create; difficulty=99")
	if r.StatusCode != 200 {
		t.Fatalf("exempt creation: %d %s", r.StatusCode, r.body)
	}
	got := f.be.last()
	if v := got.header[AdmissionHeader]; len(v) != 1 || v[0] != "verified-agent; purpose=create; agent="+exemptAgent {
		t.Fatalf("admission header at the backend: %q", v)
	}
	if string(got.body) != body {
		t.Fatalf("the body changed on its way: %s", got.body)
	}

	// Without the exemption the same body lacks its admission.
	n := f.be.count()
	for name, hdr := range map[string][]string{
		"unlisted agent": {"X-Test-Agent", "https://other.example"},
		"no agent":       nil,
	} {
		r := f.do("POST", "/v1/sandboxes", body, hdr...)
		if r.StatusCode != 400 || !strings.Contains(string(r.body), `missing \"admission\"`) {
			t.Errorf("%s without a proof of work: %d %s", name, r.StatusCode, r.body)
		}
	}
	if f.be.count() != n {
		t.Fatal("a creation without a proof of work reached the backend")
	}

	// An exempt agent that solved a challenge anyway: admitted as exempt,
	// and the challenge stays unspent (another client can still use it).
	c := f.challenge("/v1/sandboxes/challenge")
	solved := admissionBody(c.Challenge, solveT(t, c))
	if r := f.do("POST", "/v1/sandboxes", solved, "X-Test-Agent", exemptAgent); r.StatusCode != 200 ||
		f.be.last().header.Get(AdmissionHeader) != "verified-agent; purpose=create; agent="+exemptAgent {
		t.Fatalf("exempt with an admission: %d %q", r.StatusCode, f.be.last().header.Get(AdmissionHeader))
	}
	if r := f.do("POST", "/v1/sandboxes", solved); r.StatusCode != 200 || f.be.last().header.Get(AdmissionHeader) != "verified; purpose=create; difficulty=6" {
		t.Fatalf("the challenge an exempt creation carried: %d %s", r.StatusCode, r.body)
	}

	// The body is still checked: malformed, or a malformed admission.
	n = f.be.count()
	for _, b := range []string{`{"metadata":`, `[1]`, ``, `{"admission":"x"}`, `{"Admission":{}}`, `{"metadata":{}} {}`} {
		if r := f.do("POST", "/v1/sandboxes", b, "X-Test-Agent", exemptAgent); r.StatusCode != 400 {
			t.Errorf("exempt, body %q: %d %s", b, r.StatusCode, r.body)
		}
	}
	if f.be.count() != n {
		t.Fatal("a malformed exempt creation reached the backend")
	}

	// The exemption is asked about creations only: never for a claim, a
	// challenge or another path, and a claim still needs its proof.
	before := asked.Load()
	f.do("GET", "/v1/sandboxes/challenge", "", "X-Test-Agent", exemptAgent)
	f.do("GET", "/some/page", "", "X-Test-Agent", exemptAgent)
	f.do("GET", "/v1/sandboxes", "", "X-Test-Agent", exemptAgent)
	claim := f.do("POST", DefaultVerifyPath, `{"code":"RAPTOR-AB12-CD34-EF56-GH78"}`, "X-Test-Agent", exemptAgent)
	if claim.StatusCode != 404 {
		t.Fatalf("a claim without a proof of work from an exempt agent: %d %s", claim.StatusCode, claim.body)
	}
	if asked.Load() != before {
		t.Fatalf("ProofExempt asked %d times outside creation", asked.Load()-before)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.admissions["exempt"] != 2 || obs.admissions["admitted"] != 1 {
		t.Fatalf("admission outcomes: %v", obs.admissions)
	}
}

// Exempt creations are rate limited per client, raise the difficulty and
// trip the breaker like solved ones; the breaker refuses them too.
func TestCreateExemptCounts(t *testing.T) {
	f, _, obs := exemptFixture(t, func(c *Config) {
		c.Difficulty = Difficulty{Base: 6, Ceiling: 10, Window: time.Minute, GlobalStep: 1, Breaker: 3}
	})
	exempt := func() result {
		t.Helper()
		return f.do("POST", "/v1/sandboxes", `{}`, "X-Test-Agent", exemptAgent)
	}
	if r := exempt(); r.StatusCode != 200 {
		t.Fatalf("exempt: %d %s", r.StatusCode, r.body)
	}
	if r := exempt(); r.StatusCode != 200 {
		t.Fatalf("exempt: %d %s", r.StatusCode, r.body)
	}
	c := f.challenge("/v1/sandboxes/challenge")
	if c.Difficulty != 8 {
		t.Fatalf("difficulty after 2 exempt creations: %d, want 8 (base 6, +1 per creation)", c.Difficulty)
	}
	if r := f.do("POST", "/v1/sandboxes", admissionBody(c.Challenge, solveT(t, c))); r.StatusCode != 200 {
		t.Fatalf("solved: %d %s", r.StatusCode, r.body)
	}
	n := f.be.count()
	for _, r := range []result{exempt(), f.do("GET", "/v1/sandboxes/challenge", "")} {
		if r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
			t.Fatalf("at the breaker: %d %v %s", r.StatusCode, r.Header, r.body)
		}
	}
	if f.be.count() != n {
		t.Fatal("an exempt creation passed the open breaker")
	}
	obs.mu.Lock()
	if obs.admissions["tripped"] != 2 || obs.velocity != 3 {
		t.Fatalf("outcomes %v velocity %d", obs.admissions, obs.velocity)
	}
	obs.mu.Unlock()
	f.clk.Add(61 * time.Second)
	if r := exempt(); r.StatusCode != 200 {
		t.Fatalf("after the window: %d", r.StatusCode)
	}

	// Per-client rate limit.
	f, _, _ = exemptFixture(t, func(c *Config) { c.Limits.Create = limiter.Limit{Events: 1, Window: time.Minute} })
	if r := exempt(); r.StatusCode != 200 {
		t.Fatalf("first: %d", r.StatusCode)
	}
	if r := exempt(); r.StatusCode != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("second exempt creation over the limit: %d", r.StatusCode)
	}
}

// A store failing closed refuses exempt creations (503); failing open
// admits them from the fallback.
func TestCreateExemptStoreFailure(t *testing.T) {
	for _, open := range []bool{false, true} {
		f, _, _ := exemptFixture(t, func(c *Config) {
			c.Store = &Resilient{Primary: &failing{broken: true, Store: NewMemory(MemoryOptions{})}, Fallback: NewMemory(MemoryOptions{}), FailOpen: open}
		})
		r := f.do("POST", "/v1/sandboxes", `{}`, "X-Test-Agent", exemptAgent)
		if want := map[bool]int{false: 503, true: 200}[open]; r.StatusCode != want {
			t.Fatalf("open %v: %d, want %d", open, r.StatusCode, want)
		}
	}
}
