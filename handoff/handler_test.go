package handoff

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// A backend error after its success went out is logged by its class only,
// as one before it is: a proxy error quotes the backend URL, which may
// carry an exchange code.
func TestBackendErrorAfterSuccessLogsNoURL(t *testing.T) {
	const code = "exch_S3CRETCODE"
	backendErr := &url.Error{Op: "Get", URL: "http://backend.internal/claim?code=" + code, Err: io.ErrUnexpectedEOF}
	core, logs := observer.New(zapcore.DebugLevel)
	h := &Handler{logger: zap.New(core)}
	w := httptest.NewRecorder()
	iw := &interceptWriter{w: w, status: http.StatusOK} // the success went out
	if err := h.finishUniform(w, httptest.NewRequest("GET", "/claim", nil), iw, backendErr, time.Now()); err != nil {
		t.Fatal(err)
	}
	lines := logs.All()
	if len(lines) != 1 || lines[0].ContextMap()["action"] != "backend.error_after_success" {
		t.Fatalf("logged %v, want one backend.error_after_success", lines)
	}
	for k, v := range lines[0].ContextMap() {
		if strings.Contains(fmt.Sprint(v), code) {
			t.Errorf("%s=%v holds the exchange code", k, v)
		}
	}
}

func TestDiscovery(t *testing.T) {
	f := newFixture(t, nil)
	r := f.do("GET", "http://api.example.com/.well-known/agent-access", "")
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s %s", r.StatusCode, r.Header.Get("Content-Type"), r.body)
	}
	want := `{"ahp_version":"1.0","provider":{"name":"Test Provider","docs":"https://docs.example.com/agents"},` +
		`"sandbox":{"enabled":true,"admission":["proof_of_work"],"challenge_endpoint":"http://api.example.com/v1/sandboxes/challenge",` +
		`"create_endpoint":"http://api.example.com/v1/sandboxes","ttl_hours":48},` +
		`"security":{"handle_rotation_on_claim":false,"handle_rotation_on_publish":false,"adaptive_pow":true},` +
		`"content_types":["faq"],"claim":{"method":"code_plus_pow","verify_endpoint":"http://api.example.com/v1/claims/verify",` +
		`"challenge_endpoint":"http://api.example.com/.well-known/agent-access/claim-challenge"}}`
	if string(r.body) != want {
		t.Fatalf("discovery:\n%s\nwant\n%s", r.body, want)
	}
	etag := r.Header.Get("Etag")
	if etag == "" || !strings.Contains(r.Header.Get("Cache-Control"), "max-age") {
		t.Fatalf("not cacheable: %v", r.Header)
	}
	if r := f.do("GET", "http://api.example.com/.well-known/agent-access", "", "If-None-Match", etag); r.StatusCode != 304 || len(r.body) != 0 {
		t.Fatalf("If-None-Match: %d %q", r.StatusCode, r.body)
	}
	if f.be.count() != 0 {
		t.Fatal("discovery reached the backend")
	}

	// A base URL, declared handle rotation, no adaptive difficulty.
	f = newFixture(t, func(c *Config) {
		c.Provider.BaseURL = "https://api.example.com/"
		c.Provider.HandleRotation = true
		c.Provider.SandboxTTL = 24 * time.Hour
		c.Difficulty = Difficulty{Base: 20, Ceiling: 20}
	})
	var doc discoveryDoc
	if err := json.Unmarshal(f.do("GET", "http://evil.example/.well-known/agent-access", "").body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Sandbox.ChallengeEndpoint != "https://api.example.com/v1/sandboxes/challenge" || doc.Sandbox.TTLHours != 24 ||
		!doc.Security.HandleRotationOnClaim || !doc.Security.HandleRotationOnPublish || doc.Security.AdaptivePoW {
		t.Fatalf("%+v", doc)
	}
}

func TestChallengeAnswer(t *testing.T) {
	f := newFixture(t, nil)
	r := f.do("GET", "/v1/sandboxes/challenge", "")
	if r.StatusCode != 200 || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %v", r.StatusCode, r.Header)
	}
	var c challengeAnswer
	if err := json.Unmarshal(r.body, &c); err != nil {
		t.Fatal(err)
	}
	if !ValidChallenge(c.Challenge) || c.Difficulty != 6 || c.Algorithm != Algorithm || c.Input != "challenge+nonce" ||
		c.NonceFormat != "decimal" || c.ExpiresAt != "2026-01-23T12:05:00Z" || c.Note == "" {
		t.Fatalf("challenge answer: %s", r.body)
	}
	if c2 := f.challenge("/v1/sandboxes/challenge"); c2.Challenge == c.Challenge {
		t.Fatal("two challenges are equal")
	}
	if r := f.do("POST", "/v1/sandboxes/challenge", ""); r.StatusCode != 405 {
		t.Fatalf("POST challenge: %d", r.StatusCode)
	}
	if f.be.count() != 0 {
		t.Fatal("the challenge reached the backend")
	}
}

func TestCreateAdmission(t *testing.T) {
	f := newFixture(t, nil)
	// The admission header is the edge's alone, on every path.
	f.do("GET", "/some/page", "", AdmissionHeader, "verified; purpose=create; difficulty=99")
	if got := f.be.last().header.Get(AdmissionHeader); got != "" {
		t.Fatalf("a client's admission header reached the backend: %q", got)
	}
	// Nor in a spelling a PHP or CGI backend reads as the edge's
	// (HTTP_X_AGENT_HANDOFF_ADMISSION), on a path the edge does not guard.
	f.do("GET", "/index.php?route=/v1/claims/verify", "", "X_Agent_Handoff_Admission", "verified; purpose=claim; difficulty=28")
	if hd := f.be.last().header; len(hd.Values("X_Agent_Handoff_Admission")) != 0 || hd.Get(AdmissionHeader) != "" {
		t.Fatalf("a client's underscore admission header reached the backend: %v", hd)
	}

	c := f.challenge("/v1/sandboxes/challenge")
	body := admissionBody(c.Challenge, solveT(t, c))
	r := f.do("POST", "/v1/sandboxes", body, AdmissionHeader, "forged", "X_agent_handoff_admission", "verified-agent; purpose=create; agent=https://chatgpt.com")
	if r.StatusCode != 200 {
		t.Fatalf("create: %d %s", r.StatusCode, r.body)
	}
	got := f.be.last()
	if got.header.Get(AdmissionHeader) != "verified; purpose=create; difficulty=6" || len(got.header[AdmissionHeader]) != 1 {
		t.Fatalf("admission header at the backend: %q", got.header[AdmissionHeader])
	}
	for k := range got.header {
		if k != AdmissionHeader && httpx.SameField(k, AdmissionHeader) {
			t.Fatalf("the backend also got %s: %q, which PHP reads as the edge's admission", k, got.header[k])
		}
	}
	if string(got.body) != body {
		t.Fatalf("the body changed on its way: %s", got.body)
	}

	// Every refusal that depends on the store is one identical answer.
	n := f.be.count()
	replay := f.do("POST", "/v1/sandboxes", body)
	if replay.StatusCode != 403 {
		t.Fatalf("replay: %d %s", replay.StatusCode, replay.body)
	}
	c = f.challenge("/v1/sandboxes/challenge")
	wrong := f.do("POST", "/v1/sandboxes", admissionBody(c.Challenge, badNonce(t, c)))
	unknown := f.do("POST", "/v1/sandboxes", admissionBody(newChallenge(t), "1"))
	c = f.challenge("/v1/sandboxes/challenge")
	nonce := solveT(t, c)
	f.clk.Add(5 * time.Minute)
	expired := f.do("POST", "/v1/sandboxes", admissionBody(c.Challenge, nonce))
	claimCh := f.challenge(DefaultClaimChallengePath)
	crossPurpose := f.do("POST", "/v1/sandboxes", admissionBody(claimCh.Challenge, solveT(t, claimCh)))
	for name, res := range map[string]result{"wrong nonce": wrong, "unknown": unknown, "expired": expired, "a claim challenge": crossPurpose} {
		sameFailure(t, name, res, replay)
	}
	if f.be.count() != n {
		t.Fatal("a refused creation reached the backend")
	}

	// A difficulty below the stored one: a challenge issued while the
	// difficulty was higher.
	f = newFixture(t, func(c *Config) { c.Difficulty = Difficulty{Base: 6, Ceiling: 12, Window: time.Minute, NetworkStep: 1} })
	for range 2 { // two admissions from this network: +2 bits
		c := f.challenge("/v1/sandboxes/challenge")
		if r := f.do("POST", "/v1/sandboxes", admissionBody(c.Challenge, solveT(t, c))); r.StatusCode != 200 {
			t.Fatalf("create: %d %s", r.StatusCode, r.body)
		}
	}
	c = f.challenge("/v1/sandboxes/challenge")
	if c.Difficulty != 8 {
		t.Fatalf("difficulty after two creations: %d, want 8", c.Difficulty)
	}
	var low string
	for i := 0; ; i++ {
		n := strconv.Itoa(i)
		if w := Work(c.Challenge, n); w >= 6 && w < 8 {
			low = n
			break
		}
	}
	sameFailure(t, "solved below the stored difficulty", f.do("POST", "/v1/sandboxes", admissionBody(c.Challenge, low)), replay)
}

func jsonNum(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestCreateMalformed(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.BodyLimit = 1024 })
	ok := strings.Repeat("a", 64)
	cases := map[string]string{
		"not JSON":          `{"admission":`,
		"an array":          `[1]`,
		"no admission":      `{"metadata":{}}`,
		"admission string":  `{"admission":"x"}`,
		"wrong type":        `{"admission":{"type":"captcha","challenge":"` + ok + `","nonce":"1"}}`,
		"no type":           `{"admission":{"challenge":"` + ok + `","nonce":"1"}}`,
		"short challenge":   `{"admission":{"type":"proof_of_work","challenge":"abc","nonce":"1"}}`,
		"upper challenge":   `{"admission":{"type":"proof_of_work","challenge":"` + strings.ToUpper(ok) + `","nonce":"1"}}`,
		"number nonce":      `{"admission":{"type":"proof_of_work","challenge":"` + ok + `","nonce":1}}`,
		"long nonce":        `{"admission":{"type":"proof_of_work","challenge":"` + ok + `","nonce":"123456789012345678901"}}`,
		"twice":             `{"admission":{"type":"proof_of_work","challenge":"` + ok + `","nonce":"1"},"admission":{}}`,
		"trailing data":     `{"admission":{"type":"proof_of_work","challenge":"` + ok + `","nonce":"1"}} {}`,
		"nonce twice":       `{"admission":{"type":"proof_of_work","challenge":"` + ok + `","nonce":"1","nonce":"2"}}`,
		"case-folded admit": `{"Admission":{"type":"proof_of_work","challenge":"` + ok + `","nonce":"1"}}`,
	}
	for name, body := range cases {
		r := f.do("POST", "/v1/sandboxes", body)
		var e struct{ Error, Message string }
		if r.StatusCode != 400 || json.Unmarshal(r.body, &e) != nil || e.Error != "invalid_request" || e.Message == "" {
			t.Errorf("%s: %d %s", name, r.StatusCode, r.body)
		}
	}
	// Too large: refused from Content-Length, unread.
	big := strings.Repeat(" ", 2000)
	req := httptest.NewRequest("POST", "/v1/sandboxes", &countingReader{r: strings.NewReader(big)})
	req.ContentLength = int64(len(big))
	w := httptest.NewRecorder()
	if err := f.h.ServeHTTP(w, req, f.be); err != nil || w.Code != 413 {
		t.Fatalf("too large: %d %v", w.Code, err)
	}
	if n := req.Body.(*countingReader).n.Load(); n != 0 {
		t.Fatalf("read %d bytes of a body declared too large", n)
	}
	// Chunked (no Content-Length): read up to the cap, no further.
	req = httptest.NewRequest("POST", "/v1/sandboxes", &countingReader{r: strings.NewReader(big + big)})
	req.ContentLength = -1
	w = httptest.NewRecorder()
	if err := f.h.ServeHTTP(w, req, f.be); err != nil || w.Code != 413 {
		t.Fatalf("too large, chunked: %d %v", w.Code, err)
	}
	if n := req.Body.(*countingReader).n.Load(); n > 1025+512 {
		t.Fatalf("read %d bytes of an oversized chunked body, cap 1024", n)
	}
	if f.be.count() != 0 {
		t.Fatal("a malformed creation reached the backend")
	}
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return nil }

func TestRateLimits(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Limits.Challenge = limiter.Limit{Events: 2, Window: time.Minute}
		c.Limits.Create = limiter.Limit{Events: 1, Window: time.Minute}
	})
	f.challenge("/v1/sandboxes/challenge")
	f.challenge(DefaultClaimChallengePath)
	r := f.do("GET", "/v1/sandboxes/challenge", "")
	if r.StatusCode != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("third challenge: %d %v", r.StatusCode, r.Header)
	}
	if r := f.do("GET", "/v1/sandboxes/challenge", "", "X-Test-Client", "203.0.113.9"); r.StatusCode != 200 {
		t.Fatalf("another client: %d", r.StatusCode)
	}
	f.do("POST", "/v1/sandboxes", `{}`)
	if r := f.do("POST", "/v1/sandboxes", `{}`); r.StatusCode != 429 {
		t.Fatalf("second creation attempt: %d", r.StatusCode)
	}
}

func TestCircuitBreaker(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Difficulty.Breaker = 2 })
	pending := f.challenge("/v1/sandboxes/challenge")
	for range 2 {
		c := f.challenge("/v1/sandboxes/challenge")
		if r := f.do("POST", "/v1/sandboxes", admissionBody(c.Challenge, solveT(t, c))); r.StatusCode != 200 {
			t.Fatalf("create: %d", r.StatusCode)
		}
	}
	for _, r := range []result{
		f.do("GET", "/v1/sandboxes/challenge", ""),
		f.do("POST", "/v1/sandboxes", admissionBody(pending.Challenge, solveT(t, pending))),
	} {
		if r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
			t.Fatalf("over the breaker: %d %v %s", r.StatusCode, r.Header, r.body)
		}
	}
	f.clk.Add(61 * time.Second)
	// The refused challenge was left unspent: once the window passed it admits.
	if r := f.do("POST", "/v1/sandboxes", admissionBody(pending.Challenge, solveT(t, pending))); r.StatusCode != 200 {
		t.Fatalf("after the window: %d %s", r.StatusCode, r.body)
	}
}

// claimBackend answers claim starts and verifications like a provider:
// distinct failures the edge must make identical.
func claimBackend(code string) func(w http.ResponseWriter, r *http.Request, body []byte) {
	var mu sync.Mutex
	used := false
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend", "yes")
		switch {
		case strings.HasSuffix(r.URL.Path, "/claim"):
			if strings.Contains(r.URL.Path, "/missing/") {
				w.WriteHeader(404)
				_, _ = w.Write([]byte(`{"error":"sandbox_not_found"}`))
				return
			}
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"claim": {"code": "` + code + `", "url": "https://example.com/claim"}}`))
		case r.URL.Path == DefaultVerifyPath:
			var v ClaimVerification
			v, _ = ParseClaimVerification(body)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case v.Code != code:
				w.Header().Set("Set-Cookie", "oracle=1")
				w.WriteHeader(401)
				_, _ = w.Write([]byte(`{"error":"invalid_code"}`))
			case used:
				w.WriteHeader(410)
				_, _ = w.Write([]byte(`{"error":"already_used"}`))
			default:
				used = true
				w.WriteHeader(200)
				_, _ = w.Write([]byte(`{"status":"claimed"}`))
			}
		default:
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"error":"no such thing","path":"` + r.URL.Path + `"}`))
		}
	}
}

func TestClaimFlow(t *testing.T) {
	const code = "RAPTOR-AB12-CD34-EF56-GH78"
	f := newFixture(t, nil)
	f.be.fn = claimBackend(code)

	r := f.do("POST", "/v1/sandboxes/sbx1/claim", `{}`, "Accept-Encoding", "gzip")
	if r.StatusCode != 201 || r.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(r.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("claim start: %d %v %s", r.StatusCode, r.Header, r.body)
	}
	if f.be.last().header.Get("Accept-Encoding") != "" {
		t.Fatal("the claim start asked the backend for a compressed answer it must rewrite")
	}
	var start struct {
		Claim struct {
			Code string          `json:"code"`
			URL  string          `json:"url"`
			PoW  challengeAnswer `json:"pow_challenge"`
		} `json:"claim"`
	}
	if err := json.Unmarshal(r.body, &start); err != nil || start.Claim.Code != code || !ValidChallenge(start.Claim.PoW.Challenge) {
		t.Fatalf("claim start answer: %v %s", err, r.body)
	}
	if !strings.HasPrefix(string(r.body), `{"claim": {"code": "`+code+`", "url": "https://example.com/claim",`) {
		t.Fatalf("the answer was not kept byte for byte: %s", r.body)
	}
	if r.Header.Get("Content-Length") != strconv.Itoa(len(r.body)) {
		t.Fatalf("Content-Length %q for %d bytes", r.Header.Get("Content-Length"), len(r.body))
	}
	pc := start.Claim.PoW
	// The claim challenge does not admit a creation.
	if r := f.do("POST", "/v1/sandboxes", admissionBody(pc.Challenge, solveT(t, pc))); r.StatusCode != 403 {
		t.Fatalf("a claim challenge admitted a creation: %d", r.StatusCode)
	}
	// That spent it; a fresh one from the claim start verifies.
	r = f.do("POST", "/v1/sandboxes/sbx1/claim", `{}`)
	_ = json.Unmarshal(r.body, &start)
	pc = start.Claim.PoW

	// Failures first: bad PoW, wrong code, unknown sandbox; then success;
	// then reuse. All failures are one answer.
	first := f.do("POST", DefaultVerifyPath, verifyBody(code, pc.Challenge, badNonce(t, pc)))
	if first.StatusCode != 404 || first.Header.Get("X-Backend") != "" {
		t.Fatalf("bad PoW: %d %v", first.StatusCode, first.Header)
	}
	cc := f.challenge(DefaultClaimChallengePath)
	wrongCode := f.do("POST", DefaultVerifyPath, verifyBody("RAPTOR-0000-0000-0000-0000", cc.Challenge, solveT(t, cc)))
	sameFailure(t, "wrong code", wrongCode, first)
	if wrongCode.Header.Get("Set-Cookie") != "" {
		t.Fatal("a backend failure's Set-Cookie reached the client")
	}
	createCh := f.challenge("/v1/sandboxes/challenge")
	sameFailure(t, "a creation challenge", f.do("POST", DefaultVerifyPath, verifyBody(code, createCh.Challenge, solveT(t, createCh))), first)
	sameFailure(t, "malformed", f.do("POST", DefaultVerifyPath, `{"code":1}`), first)
	sameFailure(t, "GET", f.do("GET", DefaultVerifyPath, ""), first)
	sameFailure(t, "unknown sandbox", f.do("POST", "/v1/sandboxes/missing/claim", `{}`), first)

	cc = f.challenge(DefaultClaimChallengePath)
	ok := f.do("POST", DefaultVerifyPath, verifyBody(code, cc.Challenge, solveT(t, cc)))
	if ok.StatusCode != 200 || string(ok.body) != `{"status":"claimed"}` {
		t.Fatalf("verify: %d %s", ok.StatusCode, ok.body)
	}
	if h := f.be.last().header.Get(AdmissionHeader); h != "verified; purpose=claim; difficulty=6" {
		t.Fatalf("backend saw admission %q", h)
	}
	cc = f.challenge(DefaultClaimChallengePath)
	sameFailure(t, "used", f.do("POST", DefaultVerifyPath, verifyBody(code, cc.Challenge, solveT(t, cc))), first)
}

// Progressive lockout through the handler, with an injected clock: the
// lock holds even for the right code, doubles, and is forgotten after
// Reset.
func TestClaimLockout(t *testing.T) {
	const code = "RAPTOR-AB12-CD34-EF56-GH78"
	f := newFixture(t, func(c *Config) {
		c.Lockout = Lockout{After: 3, Base: time.Minute, Max: 10 * time.Minute, Reset: time.Hour}
	})
	f.be.fn = claimBackend(code)
	try := func(c string) result {
		t.Helper()
		cc := f.challenge(DefaultClaimChallengePath)
		return f.do("POST", DefaultVerifyPath, verifyBody(c, cc.Challenge, solveT(t, cc)))
	}
	wrong := func(i int) string { return "RAPTOR-WRONG-" + jsonNum(i) }
	uniform := try(wrong(0))
	try(wrong(1))
	try(wrong(2)) // third failure: locked for a minute
	n := f.be.count()
	sameFailure(t, "locked, right code", try(code), uniform)
	if f.be.count() != n {
		t.Fatal("a locked-out verification reached the backend")
	}
	f.clk.Add(time.Minute)
	for i := range 3 {
		try(wrong(10 + i)) // locked again, for two minutes
	}
	f.clk.Add(time.Minute)
	sameFailure(t, "second lock, after one minute", try(code), uniform)
	f.clk.Add(time.Minute)
	if r := try(code); r.StatusCode != 200 {
		t.Fatalf("after the second lock: %d %s", r.StatusCode, r.body)
	}
	// Quiet for Reset: the level is forgotten, so the next lock is one
	// minute again, not four.
	f.clk.Add(time.Hour)
	for i := range 3 {
		try(wrong(20 + i))
	}
	n = f.be.count()
	sameFailure(t, "after Reset, locked again", try("RAPTOR-OTHER"), uniform)
	if f.be.count() != n {
		t.Fatal("a locked-out verification reached the backend")
	}
	f.clk.Add(time.Minute)
	try("RAPTOR-OTHER")
	if f.be.count() != n+1 {
		t.Fatal("after a one-minute lock the verification did not reach the backend: the level was not reset")
	}
	// Another client is not locked by this one's failures.
	for i := range 3 {
		try(wrong(30 + i))
	}
	n = f.be.count()
	cc := f.challenge(DefaultClaimChallengePath)
	f.do("POST", DefaultVerifyPath, verifyBody("RAPTOR-THIRD", cc.Challenge, solveT(t, cc)), "X-Test-Client", "203.0.113.50")
	if f.be.count() != n+1 {
		t.Fatal("another client was locked out")
	}
}

// Guesses sent at once meet the lockout as guesses sent one by one: of
// eight verifications from one client posted together, each with a code
// and a solved challenge of its own, three (After) reach the backend,
// which has answered none of them yet, and the other five get the uniform
// failure without reaching it. (The failure was recorded only after the
// backend's answer: all eight reached it.) A verified claim then leaves
// no failure counted: After more guesses reach the backend after it.
func TestClaimLockoutConcurrent(t *testing.T) {
	const after, n = 3, 8
	f := newFixture(t, func(c *Config) {
		c.Lockout = Lockout{After: after, Base: time.Minute, Max: time.Hour, Reset: 2 * time.Hour}
		c.Sleep = func(context.Context, time.Duration) {}
	})
	entered := make(chan struct{}, n)
	release := make(chan struct{})
	f.be.fn = func(w http.ResponseWriter, r *http.Request, body []byte) {
		entered <- struct{}{}
		<-release
		w.WriteHeader(401)
	}
	bodies := make([]string, n)
	for i := range bodies {
		cc := f.challenge(DefaultClaimChallengePath)
		bodies[i] = verifyBody("RAPTOR-GUESS-"+strconv.Itoa(i), cc.Challenge, solveT(t, cc))
	}
	answered := make(chan int, n)
	var wg sync.WaitGroup
	for _, body := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest("POST", DefaultVerifyPath, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			if err := f.h.ServeHTTP(w, r, f.be); err != nil {
				t.Error(err)
			}
			answered <- w.Code
		}()
	}
	// Until the backend answers, each request is either held there or
	// answered by the edge.
	held, refused := 0, 0
	for held+refused < n {
		select {
		case <-entered:
			held++
		case code := <-answered:
			refused++
			if code != 404 {
				t.Errorf("a guess refused by the edge: %d, want the uniform 404", code)
			}
		}
	}
	close(release)
	wg.Wait()
	if held != after || refused != n-after {
		t.Fatalf("%d guesses at once: %d reached the backend and %d were refused before it answered, want %d and %d", n, held, refused, after, n-after)
	}

	const code = "RAPTOR-AB12-CD34-EF56-GH78"
	f.be.fn = claimBackend(code)
	try := func(c string) result {
		t.Helper()
		cc := f.challenge(DefaultClaimChallengePath)
		return f.do("POST", DefaultVerifyPath, verifyBody(c, cc.Challenge, solveT(t, cc)))
	}
	f.clk.Add(time.Minute)
	if r := try(code); r.StatusCode != 200 {
		t.Fatalf("the right code after the lock: %d %s", r.StatusCode, r.body)
	}
	before := f.be.count()
	for i := range after + 1 {
		try("RAPTOR-WRONG-" + strconv.Itoa(i))
	}
	if got := f.be.count() - before; got != after {
		t.Fatalf("after a verified claim, %d of %d wrong codes reached the backend, want %d: the verified claim stayed counted as a failure", got, after+1, after)
	}
}

// Every failure on a uniform path is one answer, never sooner than the floor.
func TestUniformFailures(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Failure.Floor = 40 * time.Millisecond })
	statuses := map[string]int{"/v1/sandboxes/gone": 410, "/v1/sandboxes/none": 404, "/v1/sandboxes/forbidden": 403,
		"/v1/claims/x": 401, "/v1/sandboxes/broken": 500, "/exchange/used": 409}
	f.be.fn = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if s, ok := statuses[r.URL.Path]; ok {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Set-Cookie", "a=b")
			w.Header().Set("X-Sandbox-State", "expired")
			w.WriteHeader(s)
			_, _ = w.Write([]byte("<h1>" + r.URL.Path + "</h1>"))
			return
		}
		w.WriteHeader(200)
		_, _ = w.Write([]byte("fine"))
	}
	var answers []result
	for p := range statuses {
		method := "GET"
		if strings.HasPrefix(p, "/exchange/") {
			method = "POST"
		}
		answers = append(answers, f.do(method, p, ""))
	}
	// Variants of guarded paths are refused with the same answer, unforwarded.
	n := f.be.count()
	for _, p := range []string{"/v1/sandboxes/challenge/", "/V1/sandboxes", "/v1/claims/verify;x", "/v1//sandboxes/abc/claim", "/v1/sandboxes/%63hallenge", "/.well-known/agent-access/"} {
		answers = append(answers, f.do("GET", p, ""))
	}
	if f.be.count() != n {
		t.Fatal("a variant spelling reached the backend")
	}
	for i, a := range answers {
		sameFailure(t, "answer "+jsonNum(i), a, answers[0])
		if a.elapsed < 40*time.Millisecond {
			t.Errorf("answer %d left after %s, before the 40ms floor", i, a.elapsed)
		}
	}
	if answers[0].StatusCode != 404 || string(answers[0].body) != DefaultFailureBody {
		t.Fatalf("the uniform failure: %d %s", answers[0].StatusCode, answers[0].body)
	}
	// Success passes unchanged and is not delayed to the floor.
	r := f.do("GET", "/v1/sandboxes/fine", "")
	if r.StatusCode != 200 || string(r.body) != "fine" {
		t.Fatalf("success: %d %s", r.StatusCode, r.body)
	}
}

// The floor is measured from the request's arrival on the handler's
// clock: a backend slower than the floor adds nothing.
func TestFloorUsesInjectedSleep(t *testing.T) {
	var slept []time.Duration
	var mu sync.Mutex
	f := newFixture(t, func(c *Config) {
		c.Failure.Floor = time.Second
		c.Sleep = func(_ context.Context, d time.Duration) { mu.Lock(); slept = append(slept, d); mu.Unlock() }
	})
	f.be.fn = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.URL.Path == "/v1/sandboxes/slow" {
			f.clk.Add(3 * time.Second)
		} else {
			f.clk.Add(300 * time.Millisecond)
		}
		w.WriteHeader(404)
	}
	f.do("GET", "/v1/sandboxes/quick", "")
	f.do("GET", "/v1/sandboxes/slow", "")
	if len(slept) != 1 || slept[0] != 700*time.Millisecond {
		t.Fatalf("slept %v, want [700ms] (the quick failure waits the rest of the floor, the slow one nothing)", slept)
	}
}

func TestExchange(t *testing.T) {
	f := newFixture(t, nil)
	for _, m := range []string{"GET", "HEAD"} {
		r := f.do(m, "/exchange/rr_exch_SECRETCODE", "")
		if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") ||
			r.Header.Get("X-Frame-Options") != "DENY" || r.Header.Get("Referrer-Policy") != "no-referrer" ||
			!strings.Contains(r.Header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Fatalf("%s: %d %v", m, r.StatusCode, r.Header)
		}
		if m == "GET" && (!strings.Contains(string(r.body), `<form method="post">`) || strings.Contains(string(r.body), "<script") || strings.Contains(string(r.body), "SECRETCODE")) {
			t.Fatalf("page: %s", r.body)
		}
	}
	if f.be.count() != 0 {
		t.Fatal("GET of an exchange code reached the backend")
	}
	if r := f.do("PUT", "/exchange/abc", ""); r.StatusCode != 405 || f.be.count() != 0 {
		t.Fatalf("PUT: %d", r.StatusCode)
	}
	if r := f.do("POST", "/exchange/abc", ""); r.StatusCode != 200 || f.be.count() != 1 {
		t.Fatalf("POST: %d, backend calls %d", r.StatusCode, f.be.count())
	}
	f = newFixture(t, func(c *Config) { c.ExchangeGET = ExchangeRefuse })
	if r := f.do("GET", "/exchange/abc", ""); r.StatusCode != 405 || r.Header.Get("Allow") != "POST" || f.be.count() != 0 {
		t.Fatalf("refuse: %d %v", r.StatusCode, r.Header)
	}
}

// A page of another origin cannot make a visitor's browser spend an
// exchange code or a claim (spec §21, CSRF): a cross-site POST, by
// Sec-Fetch-Site or (older browsers) an Origin naming another host, gets
// the uniform failure and never reaches the backend. Same-origin posts,
// posts that are not a browser's, and posts from a trusted origin pass.
func TestCrossOriginPosts(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.TrustedOrigins = []string{"https://app.example.net"} })
	code := "RAPTOR-AB12-CD34-EF56-GH78"
	for _, path := range []string{"/exchange/abc", DefaultVerifyPath} {
		for _, c := range []struct {
			name    string
			headers []string
			pass    bool
		}{
			{"cross-site", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, false},
			{"same-site", []string{"Sec-Fetch-Site", "same-site", "Origin", "https://other.example.com"}, false},
			{"another origin, no Sec-Fetch-Site", []string{"Origin", "https://evil.example"}, false},
			{"Origin null", []string{"Origin", "null"}, false},
			{"same-origin", []string{"Sec-Fetch-Site", "same-origin", "Origin", "http://example.com"}, true},
			{"the same host, no Sec-Fetch-Site", []string{"Origin", "http://example.com"}, true},
			{"not a browser", nil, true},
			{"a trusted origin", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://app.example.net"}, true},
		} {
			body := ""
			if path == DefaultVerifyPath { // a claim the backend would see
				cc := f.challenge(DefaultClaimChallengePath)
				body = verifyBody(code, cc.Challenge, solveT(t, cc))
			}
			before := f.be.count()
			r := f.do("POST", path, body, c.headers...)
			reached := f.be.count() > before
			if reached != c.pass {
				t.Errorf("%s %s: reached the backend %v, want %v (%d %s)", path, c.name, reached, c.pass, r.StatusCode, r.body)
			}
			if !c.pass && r.StatusCode != 404 {
				t.Errorf("%s %s: %d %s, want the uniform failure", path, c.name, r.StatusCode, r.body)
			}
		}
	}
	if _, err := New(func() Config { c := f.cfg; c.TrustedOrigins = []string{"app.example.net"}; return c }()); err == nil ||
		!strings.Contains(err.Error(), "trusted origin") {
		t.Fatalf("an origin without a scheme: %v", err)
	}
}

// Concurrent submissions of one creation solution: one reaches the backend.
func TestDoubleSpendThroughHandler(t *testing.T) {
	f := newFixture(t, nil)
	c := f.challenge("/v1/sandboxes/challenge")
	body := admissionBody(c.Challenge, solveT(t, c))
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest("POST", "/v1/sandboxes", strings.NewReader(body))
			w := httptest.NewRecorder()
			_ = f.h.ServeHTTP(w, r, f.be)
			if w.Code == 200 {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || f.be.count() != 1 {
		t.Fatalf("%d admitted, %d reached the backend; want 1 and 1", ok.Load(), f.be.count())
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]func(*Config){
		"no provider":      func(c *Config) { c.Provider.Name = "" },
		"ceiling < base":   func(c *Config) { c.Difficulty = Difficulty{Base: 20, Ceiling: 10} },
		"long ttl":         func(c *Config) { c.ChallengeTTL = time.Hour },
		"duplicate path":   func(c *Config) { c.Paths.Verify = DefaultCreatePath },
		"bad pattern":      func(c *Config) { c.Paths.Claim = "v1/claim" },
		"wildcard create":  func(c *Config) { c.Paths.Create = "/v1/*/sandboxes" },
		"failure body":     func(c *Config) { c.Failure.Body = []byte("not json") },
		"failure status":   func(c *Config) { c.Failure.Status = 200 },
		"lockout":          func(c *Config) { c.Lockout = Lockout{After: 1, Base: time.Hour, Max: time.Minute} },
		"exchange policy":  func(c *Config) { c.ExchangeGET = "maybe" },
		"bad base URL":     func(c *Config) { c.Provider.BaseURL = "api.example.com" },
		"negative breaker": func(c *Config) { c.Difficulty.Breaker = -1 },
	}
	for name, edit := range cases {
		cfg := testConfig()
		cfg.Store = NewMemory(MemoryOptions{})
		edit(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A site that rewrites paths before the edge: the path the client sent is
// guarded too.
func TestRewrittenPaths(t *testing.T) {
	var original *url.URL
	f := newFixture(t, func(c *Config) {
		c.OriginalURL = func(r *http.Request) *url.URL {
			if original != nil {
				return original
			}
			return r.URL
		}
	})
	// The client sent the verify path exactly; a rewrite sends it elsewhere.
	original, _ = url.Parse("/v1/claims/verify")
	r := f.do("POST", "/internal/verify", `{"code":"x"}`)
	if r.StatusCode != 404 || f.be.count() != 0 {
		t.Fatalf("a rewritten verification without proof of work: %d, backend calls %d", r.StatusCode, f.be.count())
	}
	// The client sent a variant; the rewrite made it plain.
	original, _ = url.Parse("/V1/Sandboxes/challenge")
	if r := f.do("GET", "/somewhere", ""); r.StatusCode != 404 || f.be.count() != 0 {
		t.Fatalf("a variant rewritten to a plain path: %d", r.StatusCode)
	}
	// A rewrite onto a guarded path is guarded as well.
	original, _ = url.Parse("/api/verify")
	if r := f.do("POST", "/v1/claims/verify", `{}`); r.StatusCode != 404 || f.be.count() != 0 {
		t.Fatalf("a path rewritten onto verify: %d", r.StatusCode)
	}
	original = nil
	if r := f.do("GET", "/page", ""); r.StatusCode != 200 || f.be.count() != 1 {
		t.Fatalf("an unguarded page: %d", r.StatusCode)
	}
}

// Claim verification is limited per client and per claim code (spec
// §19.5): a code tried from many clients is stopped by its own limit, and
// the refusals are the uniform failure, before the backend.
func TestClaimRateLimits(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Limits.Code = limiter.Limit{Events: 2, Window: time.Hour}
		c.Limits.Verify = limiter.Limit{Events: 3, Window: time.Hour}
		c.Lockout = Lockout{After: 100}
	})
	f.be.fn = claimBackend("RAPTOR-RIGHT")
	try := func(code, client string) result {
		t.Helper()
		cc := f.challenge(DefaultClaimChallengePath)
		return f.do("POST", DefaultVerifyPath, verifyBody(code, cc.Challenge, solveT(t, cc)), "X-Test-Client", client)
	}
	uniform := try("RAPTOR-GUESS", "203.0.113.1")
	try("RAPTOR-GUESS", "203.0.113.2")
	n := f.be.count()
	sameFailure(t, "a third try of one code, from a third client", try("RAPTOR-GUESS", "203.0.113.3"), uniform)
	if f.be.count() != n {
		t.Fatal("a verification over the code's limit reached the backend")
	}
	// Per client: three codes from one client, the fourth is stopped.
	for i := range 3 {
		try("RAPTOR-OTHER-"+strconv.Itoa(i), "198.51.100.20")
	}
	n = f.be.count()
	sameFailure(t, "a fourth verification from one client", try("RAPTOR-RIGHT", "198.51.100.20"), uniform)
	if f.be.count() != n {
		t.Fatal("a verification over the client's limit reached the backend")
	}
	if r := try("RAPTOR-RIGHT", "198.51.100.21"); r.StatusCode != 200 {
		t.Fatalf("the right code from a fresh client: %d", r.StatusCode)
	}
}

// A claim page keeps DENY even when the backend says otherwise.
func TestClaimPageFrames(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Paths.ClaimPages = []string{"/claim"} })
	f.be.fn = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("X-Frame-Options", "SAMEORIGIN")
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(200)
		_, _ = w.Write([]byte("<form></form>"))
	}
	r := f.do("GET", "/claim", "")
	if got := r.Header.Values("X-Frame-Options"); len(got) != 1 || got[0] != "DENY" || r.StatusCode != 200 || string(r.body) != "<form></form>" {
		t.Fatalf("claim page: %d %v %s", r.StatusCode, r.Header, r.body)
	}
}

// On uniform paths the per-client limit runs before the backend (spec
// §10: rate limiting before existence checks): over it, 429 with
// Retry-After, no sooner than the floor, and the backend is not asked —
// on a plain uniform path, on a claim start and on an exchange POST, all
// counted in one window. Another client is not limited.
func TestUniformRateLimit(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Limits.Uniform = limiter.Limit{Events: 3, Window: time.Minute}
		c.Failure.Floor = 30 * time.Millisecond
	})
	for _, p := range []struct{ method, path string }{{"GET", "/v1/sandboxes/a"}, {"POST", "/v1/sandboxes/a/claim"}, {"POST", "/exchange/x"}} {
		if r := f.do(p.method, p.path, `{}`); r.StatusCode != 200 {
			t.Fatalf("%s %s under the limit: %d %s", p.method, p.path, r.StatusCode, r.body)
		}
	}
	n := f.be.count()
	if n != 3 {
		t.Fatalf("%d requests reached the backend, want 3", n)
	}
	for _, p := range []struct{ method, path string }{{"GET", "/v1/sandboxes/b"}, {"POST", "/v1/sandboxes/b/claim"}, {"POST", "/exchange/y"}, {"GET", "/v1/claims/z"}} {
		r := f.do(p.method, p.path, `{}`)
		var e struct{ Error string }
		if r.StatusCode != 429 || r.Header.Get("Retry-After") == "" || json.Unmarshal(r.body, &e) != nil || e.Error != "rate_limited" {
			t.Errorf("%s %s over the limit: %d %v %s", p.method, p.path, r.StatusCode, r.Header, r.body)
		}
		if r.elapsed < 30*time.Millisecond {
			t.Errorf("%s %s: the refusal left after %s, before the 30ms floor", p.method, p.path, r.elapsed)
		}
	}
	if f.be.count() != n {
		t.Fatal("a request over the uniform limit reached the backend")
	}
	if r := f.do("GET", "/v1/sandboxes/b", "", "X-Test-Client", "203.0.113.80"); r.StatusCode != 200 || f.be.count() != n+1 {
		t.Fatalf("another client: %d", r.StatusCode)
	}
	// Paths outside the uniform ones are not limited by it.
	if r := f.do("GET", "/about", ""); r.StatusCode != 200 {
		t.Fatalf("an unguarded path: %d", r.StatusCode)
	}
}

// Challenges are limited per client network as well as per client: the
// 65,536 /64s of one IPv6 /48 (each a client of its own) share one
// network window, so a /48 cannot make the store hold 65,536 clients'
// worth of challenges. A client refused by its own window spends nothing
// of its network's; another network is not limited.
func TestChallengeNetworkLimit(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Limits.Challenge = limiter.Limit{Events: 2, Window: time.Minute}
		c.Limits.ChallengeNetwork = limiter.Limit{Events: 4, Window: time.Minute}
	})
	get := func(ip string) result {
		return f.do("GET", DefaultChallengePath, "", "X-Test-Client", ip)
	}
	// One client past its own limit: refused, and its network is not spent.
	for i, want := range []int{200, 200, 429, 429, 429} {
		if r := get("2001:db8:1:1::1"); r.StatusCode != want {
			t.Fatalf("client request %d: %d %s, want %d", i, r.StatusCode, r.body, want)
		}
	}
	// Two more /64s of the same /48 take the network's other two.
	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:3::1"} {
		if r := get(ip); r.StatusCode != 200 {
			t.Fatalf("%s: %d %s", ip, r.StatusCode, r.body)
		}
	}
	r := get("2001:db8:1:4::1") // a fresh /64, its own window untouched
	var e struct{ Error string }
	if r.StatusCode != 429 || r.Header.Get("Retry-After") == "" || json.Unmarshal(r.body, &e) != nil || e.Error != "rate_limited" {
		t.Fatalf("a fifth challenge from one /48: %d %v %s, want 429 rate_limited", r.StatusCode, r.Header, r.body)
	}
	if r := get("2001:db8:2:1::1"); r.StatusCode != 200 {
		t.Fatalf("another /48: %d %s", r.StatusCode, r.body)
	}
	// IPv4: the network is the /24.
	for i, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"} {
		want := 200
		if i == 4 {
			want = 429
		}
		if r := get(ip); r.StatusCode != want {
			t.Fatalf("%s: %d, want %d", ip, r.StatusCode, want)
		}
	}
	// Creation and claims are not counted in it.
	if r := f.do("POST", DefaultCreatePath, `{}`, "X-Test-Client", "192.0.2.9"); r.StatusCode == 429 {
		t.Fatalf("creation from a network out of challenges was rate limited: %s", r.body)
	}
}

// Adaptive difficulty holds at admission (spec §11.2, §23.1): challenges
// stockpiled while quiet, or fetched from a quiet network, are refused
// once the policy asks more of the admitting network; the refusal tells
// the client to fetch a new challenge, and that one is admitted.
func TestAdmissionAtCurrentDifficulty(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Difficulty.NetworkStep = 2 }) // base 6, +1 per 2 creations of a network
	var pile []challengeAnswer
	for range 4 {
		pile = append(pile, f.challenge(DefaultChallengePath))
	}
	for i, c := range pile {
		r := f.do("POST", DefaultCreatePath, admissionBody(c.Challenge, solveExactly(t, c)))
		want := 200
		if i >= 2 { // two creations raised the network's difficulty to 7
			want = 403
		}
		if r.StatusCode != want {
			t.Fatalf("stockpiled challenge %d (%d bits): %d %s, want %d", i, c.Difficulty, r.StatusCode, r.body, want)
		}
		if want == 403 && !strings.Contains(string(r.body), "request a new challenge") {
			t.Fatalf("the refusal does not say how to recover: %s", r.body)
		}
	}
	fresh := f.challenge(DefaultChallengePath)
	if fresh.Difficulty != 7 {
		t.Fatalf("fresh challenge: %d bits, want 7", fresh.Difficulty)
	}
	if r := f.do("POST", DefaultCreatePath, admissionBody(fresh.Challenge, solveT(t, fresh))); r.StatusCode != 200 {
		t.Fatalf("a fresh challenge after the refusal: %d %s", r.StatusCode, r.body)
	}
	if got := f.be.last().header.Get(AdmissionHeader); got != "verified; purpose=create; difficulty=7" {
		t.Fatalf("admission header %q", got)
	}
	// Fetched from a quiet network, spent from the busy one (3 creations: 7).
	var quiet challengeAnswer
	q := f.do("GET", DefaultChallengePath, "", "X-Test-Client", "203.0.113.9")
	if err := json.Unmarshal(q.body, &quiet); err != nil || quiet.Difficulty != 6 {
		t.Fatalf("quiet network's challenge: %v %s", err, q.body)
	}
	if r := f.do("POST", DefaultCreatePath, admissionBody(quiet.Challenge, solveExactly(t, quiet))); r.StatusCode != 403 {
		t.Fatalf("a 6-bit challenge from a quiet network spent from a network at 7: %d %s", r.StatusCode, r.body)
	}
	if n := f.be.count(); n != 3 {
		t.Fatalf("backend saw %d creations, want 3", n)
	}
}

// solveExactly returns a nonce whose work is exactly c's difficulty (the
// smallest solution may do better by chance).
func solveExactly(t testing.TB, c challengeAnswer) string {
	t.Helper()
	for i := 0; i < 1<<24; i++ {
		n := strconv.Itoa(i)
		if Work(c.Challenge, n) == c.Difficulty {
			return n
		}
	}
	t.Fatalf("no nonce does exactly %d bits on %s", c.Difficulty, c.Challenge)
	return ""
}

// With verify off the edge verifies no claim, and says and does nothing
// that would suggest it: discovery has no claim method (§6.1 defines only
// code_plus_pow, the edge's two factors), no claim challenge is issued
// (none could be spent), and claim start answers pass unchanged. An
// explicit claim_challenge with verify off is a configuration error.
func TestVerifyOffClaimsNothing(t *testing.T) {
	var doc map[string]any
	on := newFixture(t, nil)
	if r := on.do("GET", DiscoveryPath, ""); json.Unmarshal(r.body, &doc) != nil || fmt.Sprint(doc["claim"]) != "map[challenge_endpoint:http://example.com/.well-known/agent-access/claim-challenge method:code_plus_pow verify_endpoint:http://example.com/v1/claims/verify]" {
		t.Fatalf("verify on: discovery %s", r.body)
	}
	f := newFixture(t, func(c *Config) { c.Paths.Verify = Off })
	r := f.do("GET", DiscoveryPath, "")
	doc = nil
	if err := json.Unmarshal(r.body, &doc); err != nil || r.StatusCode != 200 {
		t.Fatalf("discovery: %d %v %s", r.StatusCode, err, r.body)
	}
	if _, ok := doc["claim"]; ok || strings.Contains(string(r.body), "code_plus_pow") {
		t.Fatalf("verify off, discovery still claims a method: %s", r.body)
	}
	if r := f.do("GET", DefaultClaimChallengePath, ""); strings.Contains(string(r.body), `"challenge"`) || f.be.count() != 1 {
		t.Fatalf("verify off, the claim challenge path still issued (or was not passed on): %d %s", r.StatusCode, r.body)
	}
	f.be.fn = claimBackend("RAPTOR-AB12-CD34-EF56-GH78")
	r = f.do("POST", "/v1/sandboxes/sbx1/claim", `{}`, "Accept-Encoding", "gzip")
	if r.StatusCode != 201 || strings.Contains(string(r.body), "pow_challenge") || r.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("verify off, claim start: %d %v %s", r.StatusCode, r.Header, r.body)
	}
	if f.be.last().header.Get("Accept-Encoding") != "gzip" {
		t.Fatal("verify off, the claim start answer is not rewritten, yet its encoding was taken away")
	}
	cfg := testConfig()
	cfg.Store = NewMemory(MemoryOptions{})
	cfg.Paths.Verify, cfg.Paths.ClaimChallenge = Off, "/claim/challenge"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "claim_challenge /claim/challenge") || !strings.Contains(err.Error(), "claim_challenge off") {
		t.Fatalf("claim_challenge with verify off: %v", err)
	}
}

// Behind a TLS-terminating proxy the request reaches the edge over http:
// discovery takes the scheme from X-Forwarded-Proto when the peer is a
// trusted proxy (Config.TrustedProxy), and varies on it; from any other
// peer the header is the client's own and changes nothing.
func TestDiscoveryForwardedProto(t *testing.T) {
	const proxy = "192.0.2.1:4000"
	f := newFixture(t, func(c *Config) {
		c.TrustedProxy = func(r *http.Request) bool { return r.RemoteAddr == proxy }
	})
	get := func(peer, proto string) (discoveryDoc, result) {
		t.Helper()
		r := httptest.NewRequest("GET", "http://api.example.com"+DiscoveryPath, nil)
		r.RemoteAddr = peer
		if proto != "" {
			r.Header.Set("X-Forwarded-Proto", proto)
		}
		w := httptest.NewRecorder()
		if err := f.h.ServeHTTP(w, r, f.be); err != nil {
			t.Fatal(err)
		}
		res := w.Result()
		b, _ := io.ReadAll(res.Body)
		var doc discoveryDoc
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s", b)
		}
		return doc, result{Response: res, body: b}
	}
	for _, c := range []struct {
		peer, proto, want string
		vary              bool
	}{
		{proxy, "https", "https://api.example.com/v1/sandboxes", true},
		{proxy, "HTTPS, http", "https://api.example.com/v1/sandboxes", true},
		{proxy, "http", "http://api.example.com/v1/sandboxes", true},
		{proxy, "", "http://api.example.com/v1/sandboxes", true},
		{"203.0.113.9:5000", "https", "http://api.example.com/v1/sandboxes", false},
	} {
		doc, r := get(c.peer, c.proto)
		if doc.Sandbox.CreateEndpoint != c.want || !strings.HasPrefix(doc.Sandbox.ChallengeEndpoint, c.want[:strings.Index(c.want, ":")]+"://") {
			t.Errorf("peer %s, X-Forwarded-Proto %q: %s, %s; want %s", c.peer, c.proto, doc.Sandbox.CreateEndpoint, doc.Sandbox.ChallengeEndpoint, c.want)
		}
		if got := r.Header.Get("Vary") == "X-Forwarded-Proto"; got != c.vary {
			t.Errorf("peer %s, X-Forwarded-Proto %q: Vary %q", c.peer, c.proto, r.Header.Get("Vary"))
		}
	}

	// Without the function no peer is trusted; a base URL wins over all.
	f = newFixture(t, nil)
	if doc, _ := get(proxy, "https"); doc.Sandbox.CreateEndpoint != "http://api.example.com/v1/sandboxes" {
		t.Errorf("no TrustedProxy: %s", doc.Sandbox.CreateEndpoint)
	}
	f = newFixture(t, func(c *Config) {
		c.Provider.BaseURL = "https://api.example.net"
		c.TrustedProxy = func(*http.Request) bool { return true }
	})
	if doc, _ := get(proxy, "http"); doc.Sandbox.CreateEndpoint != "https://api.example.net/v1/sandboxes" {
		t.Errorf("base_url: %s", doc.Sandbox.CreateEndpoint)
	}
}

// The JSON endpoints take JSON: a creation with another Content-Type gets
// 415 with the handler's error body, unread and unforwarded; a claim
// verification with one gets the uniform failure, byte for byte and after
// the floor (no oracle), also unforwarded. No Content-Type is admitted.
func TestContentType(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Failure.Floor = 40 * time.Millisecond })
	send := func(path, ct, body string) result {
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		w := httptest.NewRecorder()
		start := time.Now()
		if err := f.h.ServeHTTP(w, r, f.be); err != nil {
			t.Fatal(err)
		}
		res := w.Result()
		b, _ := io.ReadAll(res.Body)
		return result{res, b, time.Since(start)}
	}
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
		c := f.challenge("/v1/sandboxes/challenge")
		n := f.be.count()
		r := send("/v1/sandboxes", ct, admissionBody(c.Challenge, solveT(t, c)))
		if r.StatusCode != 415 || r.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(r.body), `"error":"unsupported_media_type"`) || f.be.count() != n {
			t.Errorf("create as %s: %d %s (backend calls %d → %d)", ct, r.StatusCode, r.body, n, f.be.count())
		}
	}
	for _, ct := range []string{"", "application/json; charset=utf-8"} {
		c := f.challenge("/v1/sandboxes/challenge")
		if r := send("/v1/sandboxes", ct, admissionBody(c.Challenge, solveT(t, c))); r.StatusCode != 200 {
			t.Errorf("create with Content-Type %q: %d %s", ct, r.StatusCode, r.body)
		}
	}
	code := "RAPTOR-AB12-CD34-EF56-GH78"
	wrongCode := send(DefaultVerifyPath, "application/json", `{"code":"x"}`)
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded"} {
		cc := f.challenge(DefaultClaimChallengePath)
		n := f.be.count()
		r := send(DefaultVerifyPath, ct, verifyBody(code, cc.Challenge, solveT(t, cc)))
		sameFailure(t, "verify as "+ct, r, wrongCode)
		if r.elapsed < 40*time.Millisecond {
			t.Errorf("verify as %s left after %s, before the floor", ct, r.elapsed)
		}
		if f.be.count() != n {
			t.Errorf("verify as %s reached the backend", ct)
		}
	}
}

// Behind a trusted proxy discovery advertises the public host of
// X-Forwarded-Host (its first valid value) and varies on it; from any
// other peer, or with a base URL, the header changes nothing.
func TestDiscoveryForwardedHost(t *testing.T) {
	const proxy = "192.0.2.1:4000"
	get := func(f *fixture, peer, host string) (discoveryDoc, http.Header) {
		t.Helper()
		r := httptest.NewRequest("GET", "http://10.0.0.5:8080"+DiscoveryPath, nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-Proto", "https")
		if host != "" {
			r.Header.Set("X-Forwarded-Host", host)
		}
		w := httptest.NewRecorder()
		if err := f.h.ServeHTTP(w, r, f.be); err != nil {
			t.Fatal(err)
		}
		var doc discoveryDoc
		if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
			t.Fatalf("%s", w.Body.Bytes())
		}
		return doc, w.Result().Header
	}
	f := newFixture(t, func(c *Config) {
		c.TrustedProxy = func(r *http.Request) bool { return r.RemoteAddr == proxy }
	})
	for _, c := range []struct {
		peer, host, want string
	}{
		{proxy, "api.example.com", "https://api.example.com/v1/sandboxes"},
		{proxy, " api.example.com:8443 , 10.0.0.5", "https://api.example.com:8443/v1/sandboxes"},
		{proxy, "", "https://10.0.0.5:8080/v1/sandboxes"},
		{proxy, "bad/host", "https://10.0.0.5:8080/v1/sandboxes"},
		{"203.0.113.9:5000", "evil.example", "http://10.0.0.5:8080/v1/sandboxes"},
	} {
		doc, hd := get(f, c.peer, c.host)
		if doc.Sandbox.CreateEndpoint != c.want {
			t.Errorf("peer %s, X-Forwarded-Host %q: %s, want %s", c.peer, c.host, doc.Sandbox.CreateEndpoint, c.want)
		}
		trusted := c.peer == proxy
		if got := slices.Contains(hd.Values("Vary"), "X-Forwarded-Host"); got != trusted {
			t.Errorf("peer %s: Vary %q", c.peer, hd.Values("Vary"))
		}
	}
	f = newFixture(t, func(c *Config) {
		c.Provider.BaseURL = "https://api.example.net"
		c.TrustedProxy = func(*http.Request) bool { return true }
	})
	if doc, _ := get(f, proxy, "other.example"); doc.Sandbox.CreateEndpoint != "https://api.example.net/v1/sandboxes" {
		t.Errorf("base_url: %s", doc.Sandbox.CreateEndpoint)
	}
}
