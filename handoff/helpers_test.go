package handoff

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// backend is a stand-in for the provider's backend: it records what
// reached it and answers with fn.
type backend struct {
	mu    sync.Mutex
	calls []*seen
	fn    func(w http.ResponseWriter, r *http.Request, body []byte)
}

type seen struct {
	method, path string
	header       http.Header
	body         []byte
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	b.calls = append(b.calls, &seen{r.Method, r.URL.Path, r.Header.Clone(), body})
	b.mu.Unlock()
	if b.fn != nil {
		b.fn(w, r, body)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	_, _ = w.Write([]byte(`{"ok":true}`))
	return nil
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.calls)
}

func (b *backend) last() *seen {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.calls) == 0 {
		return nil
	}
	return b.calls[len(b.calls)-1]
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a handler in front of a backend, with memory stores.
type fixture struct {
	t   *testing.T
	h   *Handler
	be  *backend
	clk *clock
	cfg Config
}

// testConfig is the handler configuration the tests start from: low
// difficulty, a short floor, generous limits.
func testConfig() Config {
	return Config{
		Provider:   Provider{Name: "Test Provider", Docs: "https://docs.example.com/agents", ContentTypes: []string{"faq"}},
		Difficulty: Difficulty{Base: 6, Ceiling: 10, Window: time.Minute, GlobalStep: 100, NetworkStep: 100},
		Failure:    Failure{Floor: 20 * time.Millisecond},
		Limits: &RateLimits{
			Challenge: limiter.Limit{Events: 1000, Window: time.Minute},
			Create:    limiter.Limit{Events: 1000, Window: time.Minute},
			Verify:    limiter.Limit{Events: 1000, Window: time.Minute},
			Code:      limiter.Limit{Events: 1000, Window: time.Minute},
			Uniform:   limiter.Limit{Events: 1000, Window: time.Minute},
		},
	}
}

func newFixture(t *testing.T, edit func(*Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, be: &backend{}, clk: &clock{t: t0}}
	cfg := testConfig()
	cfg.Store = NewMemory(MemoryOptions{})
	mem := limiter.NewMemory(limiter.MemoryOptions{SweepInterval: -1})
	t.Cleanup(func() { mem.Close() })
	cfg.Limits.Store = mem
	cfg.Now = f.clk.Now
	cfg.ClientIP = func(r *http.Request) string {
		if ip := r.Header.Get("X-Test-Client"); ip != "" {
			return ip
		}
		return "198.51.100.7"
	}
	if edit != nil {
		edit(&cfg)
	}
	f.cfg = cfg
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.h = h
	return f
}

type result struct {
	*http.Response
	body    []byte
	elapsed time.Duration
}

// do sends a request through the handler; headers are name, value pairs.
func (f *fixture) do(method, target, body string, headers ...string) result {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	start := time.Now()
	if err := f.h.ServeHTTP(w, r, f.be); err != nil {
		f.t.Fatalf("%s %s: %v", method, target, err)
	}
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	return result{res, b, time.Since(start)}
}

type challengeAnswer struct {
	Challenge   string `json:"challenge"`
	Difficulty  int    `json:"difficulty"`
	Algorithm   string `json:"algorithm"`
	Input       string `json:"input"`
	NonceFormat string `json:"nonce_format"`
	ExpiresAt   string `json:"expires_at"`
	Note        string `json:"note"`
}

func (f *fixture) challenge(path string) challengeAnswer {
	f.t.Helper()
	r := f.do("GET", path, "")
	if r.StatusCode != 200 {
		f.t.Fatalf("GET %s: %d %s", path, r.StatusCode, r.body)
	}
	var c challengeAnswer
	if err := json.Unmarshal(r.body, &c); err != nil {
		f.t.Fatalf("challenge answer %s: %v", r.body, err)
	}
	return c
}

func solveT(t testing.TB, c challengeAnswer) string {
	t.Helper()
	n, err := Solve(context.Background(), c.Challenge, c.Difficulty)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// badNonce is a nonce that does not solve c.
func badNonce(t testing.TB, c challengeAnswer) string {
	t.Helper()
	for i := 0; ; i++ {
		n := strconv.Itoa(i)
		if Work(c.Challenge, n) < c.Difficulty {
			return n
		}
	}
}

func admissionBody(challenge, nonce string) string {
	return `{"admission":{"type":"proof_of_work","challenge":"` + challenge + `","nonce":"` + nonce + `"},"metadata":{"agent":"test"}}`
}

func verifyBody(code, challenge, nonce string) string {
	return `{"code":"` + code + `","proof_of_work":{"challenge":"` + challenge + `","nonce":"` + nonce + `"}}`
}

// sameFailure asserts r is the uniform failure, byte for byte.
func sameFailure(t *testing.T, what string, r result, want result) {
	t.Helper()
	if r.StatusCode != want.StatusCode || !bytes.Equal(r.body, want.body) {
		t.Errorf("%s: %d %s, want the uniform failure %d %s", what, r.StatusCode, r.body, want.StatusCode, want.body)
	}
	if !equalHeaders(r.Header, want.Header) {
		t.Errorf("%s: headers %v, want %v", what, r.Header, want.Header)
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w := b[k]
		if len(v) != len(w) {
			return false
		}
		for i := range v {
			if v[i] != w[i] {
				return false
			}
		}
	}
	return true
}
