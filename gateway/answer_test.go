package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/converse"
	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

var signals = []byte(`"content_signals":{"ai_input":true}`)

// withSignals is the spliced answer in one piece.
func (info answerInfo) withSignals(body, signals []byte) []byte {
	parts := info.spliceSignals(body, signals)
	return bytes.Join(parts[:], nil)
}

func TestInspectAnswer(t *testing.T) {
	tests := []struct {
		body        string
		ok          bool
		status, sid string
		tokens      int64
		hasSignals  bool
		spliced     string
	}{
		{`{"status":"success","session_id":"s1","response":{"answer":"x"},"meta":{"tokens_used":42}}`, true, "success", "s1", 42, false,
			`{"status":"success","session_id":"s1","response":{"answer":"x"},"meta":{"content_signals":{"ai_input":true},"tokens_used":42}}`},
		{`{"status":"success","response":{}}`, true, "success", "", 0, false,
			`{"status":"success","response":{},"meta":{"content_signals":{"ai_input":true}}}`},
		{`{"status":"success","meta":{}}`, true, "success", "", 0, false,
			`{"status":"success","meta":{"content_signals":{"ai_input":true}}}`},
		{`{}`, true, "", "", 0, false, `{"meta":{"content_signals":{"ai_input":true}}}`},
		{` { "meta" : { "content_signals" : {} , "tokens_used" : 7 } , "status" : "success" } `, true, "success", "", 7, true, ""},
		{`{"status":"success","session_id":null,"meta":null}`, true, "success", "", 0, false, ""},
		{`{"status":5,"meta":{"tokens_used":"many"}}`, true, "", "", 0, false, ""},
		{`{"meta":{"tokens_used":-3}}`, true, "", "", 0, false, ""},
		{`{"status":"success"`, false, "", "", 0, false, ""},
		{`[1,2]`, false, "", "", 0, false, ""},
		{``, false, "", "", 0, false, ""},
		{`{"a":1} {"b":2}`, false, "", "", 0, false, ""},
	}
	for _, tt := range tests {
		info, ok := inspectAnswer([]byte(tt.body))
		if ok != tt.ok {
			t.Errorf("%s: ok = %v", tt.body, ok)
			continue
		}
		if !ok {
			continue
		}
		if info.success != (tt.status == "success") || info.sessionID != tt.sid || info.tokens != tt.tokens || info.hasSignals != tt.hasSignals {
			t.Errorf("%s: got %+v", tt.body, info)
		}
		if tt.spliced == "" && tt.ok && info.canSplice() && !info.hasSignals && info.metaSeen && info.metaOpen < 0 {
			t.Errorf("%s: a non-object meta must not be spliced", tt.body)
		}
		if tt.spliced != "" {
			if got := string(info.withSignals([]byte(tt.body), signals)); got != tt.spliced {
				t.Errorf("%s: spliced\n got %s\nwant %s", tt.body, got, tt.spliced)
			}
		}
	}
}

// FuzzConciergeAnswer: concierge answers are untrusted input. Whatever the
// bytes, inspecting never panics; an answer it accepts comes out of the
// splice as valid JSON equal to the input plus meta.content_signals.
func FuzzConciergeAnswer(f *testing.F) {
	for _, s := range []string{`{"status":"success","meta":{"tokens_used":1}}`, `{}`, `{"meta":{}}`, `{"a":[{"meta":{}}],"meta":{"x":null}}`, `{"status":"success"`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		info, ok := inspectAnswer(body)
		if !ok || !info.canSplice() {
			return
		}
		var before map[string]any
		if err := json.Unmarshal(body, &before); err != nil {
			t.Fatalf("accepted a body encoding/json refuses: %v", err)
		}
		out := info.withSignals(body, signals)
		var after map[string]any
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("splice made invalid JSON: %v\n%s", err, out)
		}
		meta, _ := after["meta"].(map[string]any)
		if meta == nil || !reflect.DeepEqual(meta["content_signals"], map[string]any{"ai_input": true}) {
			t.Fatalf("no signals in meta: %s", out)
		}
		delete(meta, "content_signals")
		if m, _ := before["meta"].(map[string]any); m == nil && len(meta) == 0 {
			after["meta"] = before["meta"]
			if _, had := before["meta"]; !had {
				delete(after, "meta")
			}
		}
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("splice changed more than meta.content_signals:\n%s\n%s", body, out)
		}
	})
}

// FuzzInspectAnswerAgrees: the one-pass scan accepts exactly the bodies
// json.Valid accepts whose value is an object, and reads the same status,
// session_id and content_signals as encoding/json does (the last of
// duplicate keys wins in both), and tokens_used as countOracle does.
func FuzzInspectAnswerAgrees(f *testing.F) {
	for _, s := range append([]string{`{"status":"success","session_id":"s\u00e9","meta":{"tokens_used":42,"content_signals":{}}}`,
		`{"status":"succ\u0065ss","meta":{"tokens_used":7}}`, ` {"meta":null,"status":"success"} `, `{"a":"` + strings.Repeat("x", 40) + `\"\\\n"}`,
		`{"status":"success","status":"failure"}`, `{"session_id":"a","session_id":5}`, `{"status":"accepted","status":"pend\u0069ng"}`, `{"meta":{"tokens_used":1.5E+2}}`,
		`{"meta":{"tokens_used":0.0001e4}}`, `{"meta":{"tokens_used":12345678901234567890123}}`, `{"meta":{"tokens_used":-0.5}}`,
		`{"meta":{"tokens_used":9223372036854775807.5}}`, `{"meta":{"tokens_used":1e-99999999}}`}, jsonCases...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		info, ok := inspectAnswer(body)
		var top map[string]json.RawMessage
		want := json.Valid(body) && json.Unmarshal(body, &top) == nil && top != nil
		if ok != want {
			t.Fatalf("inspectAnswer(%q) ok = %v; json.Valid and an object: %v", body, ok, want)
		}
		if !ok {
			return
		}
		var status, session string
		_ = json.Unmarshal(top["status"], &status)
		_ = json.Unmarshal(top["session_id"], &session)
		if info.success != (status == "success") || info.accepted != (status == "accepted") || info.pending != (status == "pending") || info.sessionID != session {
			t.Fatalf("%q: success %v, accepted %v, pending %v, session %q; encoding/json reads status %q, session %q",
				body, info.success, info.accepted, info.pending, info.sessionID, status, session)
		}
		var meta map[string]json.RawMessage
		if json.Unmarshal(top["meta"], &meta) == nil && meta != nil {
			_, signals := meta["content_signals"]
			n := countOracle(meta["tokens_used"])
			if info.hasSignals != signals || info.tokens != n {
				t.Fatalf("%q: signals %v tokens %d; encoding/json reads %v, %d", body, info.hasSignals, info.tokens, signals, n)
			}
		}
	})
}

// countOracle is what tokens_used counts, computed exactly with big.Rat:
// a non-negative number rounded up to a whole count, capped at MaxInt64;
// anything else 0.
func countOracle(raw json.RawMessage) int64 {
	lit := string(raw)
	if lit == "" || lit[0] < '0' || lit[0] > '9' {
		return 0
	}
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		// 10^e for a huge e is too big to build: the value is beyond
		// int64 or below 1, unless the mantissa is all zeros.
		e, err := strconv.Atoi(strings.TrimPrefix(lit[i+1:], "+"))
		if err != nil || e > 10000 || e < -10000 {
			if strings.Trim(lit[:i], "0.") == "" {
				return 0
			}
			if strings.HasPrefix(lit[i+1:], "-") {
				return 1
			}
			return math.MaxInt64
		}
	}
	v, ok := new(big.Rat).SetString(lit)
	if !ok {
		panic("not a number: " + lit)
	}
	q, m := new(big.Int).DivMod(v.Num(), v.Denom(), new(big.Int))
	if m.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return math.MaxInt64
	}
	return q.Int64()
}

func TestParseCount(t *testing.T) {
	for lit, want := range map[string]int64{
		"0": 0, "150": 150, "150.0": 150, "1.5e2": 150, "1.5E+2": 150, "15000e-2": 150, "0.15e3": 150, "150.000001": 151,
		"0.5": 1, "1e-400": 1, "0.0": 0, "0e999": 0, "-0": 0, "-3": 0, "-1.5e2": 0, "-1e99": 0,
		"123456789012345678": 123456789012345678, "1234567890123456789": 1234567890123456789,
		"9223372036854775807": math.MaxInt64, "9223372036854775808": math.MaxInt64, "9223372036854775806.5": math.MaxInt64,
		"100000000000000000000": math.MaxInt64, "1e19": math.MaxInt64, "1e18": 1e18, "9.999999999999999999e18": math.MaxInt64, "9.2e18": 9200000000000000000,
		"1e999999999999999999999": math.MaxInt64, `"150"`: 0, "null": 0, "true": 0, "{}": 0, "[150]": 0,
	} {
		if got := parseCount([]byte(lit)); got != want {
			t.Errorf("parseCount(%s) = %d, want %d", lit, got, want)
		}
		if lit[0] >= '0' && lit[0] <= '9' || lit[0] == '-' {
			if o := countOracle(json.RawMessage(lit)); o != want {
				t.Errorf("countOracle(%s) = %d, want %d", lit, o, want)
			}
		}
	}
	plain := []byte("150")
	if n := testing.AllocsPerRun(100, func() { parseCount(plain) }); n != 0 {
		t.Errorf("parseCount of plain digits allocates %v times", n)
	}
	odd := []byte("1.5e2")
	if n := testing.AllocsPerRun(100, func() { parseCount(odd) }); n != 0 {
		t.Errorf("parseCount of 1.5e2 allocates %v times", n)
	}
}

// meta.tokens_used is a JSON Schema integer (response.json): 150.0 and
// 1.5e2 are integers too, and what a concierge that computes usage as a
// float sends. However written, the tokens count against the budget.
func TestTokensUsedInAnySpellingCount(t *testing.T) {
	for _, lit := range []string{"150", "150.0", "1.5e2", "1.5E+2", "100.5", "100000000000000000000", "1e400"} {
		g := testGateway(t, testOptions{limits: true, budget: 100})
		next := answering(`{"status":"success","session_id":"s1","response":{"answer":"x"},"meta":{"tokens_used":` + lit + `}}`)
		if w := call(g, `{"capability":"site_info","query":"hi"}`, next); w.Code != http.StatusOK {
			t.Fatalf("first call: %d %s", w.Code, w.Body)
		}
		w := call(g, `{"capability":"site_info","query":"again","session_id":"s1"}`, next)
		if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), `"session_tokens"`) {
			t.Errorf("tokens_used %s against a budget of 100: the next turn got %d %s, want 429 session_tokens", lit, w.Code, w.Body)
		}
	}
}

// A concierge behind reverse_proxy that sets its own rate-limit or CORS
// fields (reverse_proxy Adds the upstream's values to the answer's) must
// not leave the agent two values of each: it sees the gateway's. Fields
// the gateway did not set are the concierge's, untouched.
func TestConciergeDoesNotDuplicateGatewayHeaders(t *testing.T) {
	upstream := nextFunc(func(w http.ResponseWriter, r *http.Request) error {
		h := w.Header()
		for _, k := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Window", "Access-Control-Allow-Origin"} {
			h.Add(k, "1000")
		}
		h.Add("X-Concierge", "a")
		h.Add("X-Concierge", "b")
		h.Add("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, err := w.Write([]byte(`{"status":"success","response":{"answer":"x"}}`))
		return err
	})
	g := testGateway(t, testOptions{limits: true, cors: true})
	poll := httptest.NewRequest(http.MethodGet, "/agent/converse/status/job1", nil)
	poll.Header.Set("Authorization", "Bearer "+testKey)
	polled := httptest.NewRecorder()
	_ = g.ServeHTTP(polled, poll, StatusRoute, upstream)
	for name, w := range map[string]*httptest.ResponseRecorder{"call": call(g, `{"capability":"site_info","query":"hi"}`, upstream), "poll": polled} {
		h := w.Result().Header
		for _, k := range []string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "X-Ratelimit-Window", "Access-Control-Allow-Origin"} {
			if v := h[k]; len(v) != 1 || v[0] == "1000" {
				t.Errorf("%s: %s: %q, want the gateway's one value", name, k, v)
			}
		}
		if v := h["X-Concierge"]; len(v) != 2 {
			t.Errorf("%s: X-Concierge: %q, want the concierge's two values", name, v)
		}
	}
	// Without limits, the concierge's own rate-limit fields are its answer's.
	w := call(testGateway(t, testOptions{}), `{"capability":"site_info","query":"hi"}`, upstream)
	if v := w.Result().Header["X-Ratelimit-Limit"]; len(v) != 1 || v[0] != "1000" {
		t.Errorf("no limits at the gateway: X-RateLimit-Limit %q, want the concierge's", v)
	}
}

// TestConciergeAnswerWithoutAHPBody: an agent reads the spec's JSON (§10),
// never a concierge's HTML error page or a misrouted page. A non-JSON
// answer becomes 500 concierge_error, or 503 unavailable (keeping the
// concierge's Retry-After) for a concierge that is down or busy; JSON
// answers, errors included, and SSE streams pass through; a HEAD poll is
// judged by its Content-Type alone (it has no body to judge).
func TestConciergeAnswerWithoutAHPBody(t *testing.T) {
	answer := func(status int, ctype, body string) nextFunc {
		return func(w http.ResponseWriter, r *http.Request) error {
			_, _ = io.Copy(io.Discard, r.Body)
			h := w.Header()
			if ctype != "" {
				h.Set("Content-Type", ctype)
			}
			h.Set("Etag", `"page"`)
			h.Set("Content-Length", strconv.Itoa(len(body)))
			if status == http.StatusTooManyRequests {
				h.Set("Retry-After", "7")
			}
			w.WriteHeader(status)
			if r.Method != http.MethodHead {
				_, _ = io.WriteString(w, body)
			}
			return nil
		}
	}
	const page = "<!doctype html><h1>Not Found</h1>"
	const jsonErr = `{"status":"error","code":"forbidden","message":"no"}`
	g := testGateway(t, testOptions{})
	for _, c := range []struct {
		name       string
		method     string // POST: a call; GET, HEAD: a poll
		status     int
		ctype      string
		body       string
		wantStatus int
		wantCode   string // "" for passed through unchanged
	}{
		{"500 page", http.MethodPost, 500, "text/html; charset=utf-8", page, 500, ahperror.ConciergeError},
		{"404 page", http.MethodPost, 404, "text/html", page, 500, ahperror.ConciergeError},
		{"401 plain", http.MethodPost, 401, "text/plain", "Unauthorized", 500, ahperror.ConciergeError},
		{"400 untyped", http.MethodPost, 400, "", "bad", 500, ahperror.ConciergeError},
		{"502 page", http.MethodPost, 502, "text/html", page, 503, ahperror.Unavailable},
		{"504 page", http.MethodPost, 504, "text/html", page, 503, ahperror.Unavailable},
		{"429 page", http.MethodPost, 429, "text/html", page, 503, ahperror.Unavailable},
		{"200 page", http.MethodPost, 200, "text/html", page, 500, ahperror.ConciergeError},
		{"200 untyped", http.MethodPost, 200, "", "plain words", 500, ahperror.ConciergeError},
		{"204", http.MethodPost, 204, "", "", 500, ahperror.ConciergeError},
		{"403 JSON", http.MethodPost, 403, "application/json", jsonErr, 403, ""},
		{"500 JSON", http.MethodPost, 500, "application/problem+json", `{"title":"x"}`, 500, ""},
		{"200 SSE", http.MethodPost, 200, "text/event-stream", "data: {}\n\n", 200, ""},
		{"304", http.MethodGet, 304, "", "", 304, ""},
		{"poll 404 page", http.MethodGet, 404, "text/html", page, 500, ahperror.ConciergeError},
		{"poll 200 page", http.MethodGet, 200, "text/html", page, 500, ahperror.ConciergeError},
		{"HEAD poll 404 page", http.MethodHead, 404, "text/html", page, 500, ahperror.ConciergeError},
		{"HEAD poll 200 page", http.MethodHead, 200, "text/html", page, 500, ahperror.ConciergeError},
		{"HEAD poll 200 untyped", http.MethodHead, 200, "", "", 200, ""},
		{"HEAD poll 404 untyped", http.MethodHead, 404, "", "", 404, ""},
		{"HEAD poll 503 untyped", http.MethodHead, 503, "", "", 503, ahperror.Unavailable},
	} {
		var w *httptest.ResponseRecorder
		next := answer(c.status, c.ctype, c.body)
		if c.method == http.MethodPost {
			w = call(g, `{"capability":"site_info","query":"hi"}`, next)
		} else {
			w = httptest.NewRecorder()
			r := httptest.NewRequest(c.method, "/agent/converse/status/job1", nil)
			r.Header.Set("Authorization", "Bearer "+testKey)
			_ = g.ServeHTTP(w, r, StatusRoute, next)
		}
		if w.Code != c.wantStatus {
			t.Errorf("%s: status %d, want %d (%q)", c.name, w.Code, c.wantStatus, w.Body)
			continue
		}
		h := w.Header()
		if c.wantCode == "" {
			if w.Body.String() != c.body || h.Get("Etag") != `"page"` {
				t.Errorf("%s: %q Etag %q, want the concierge's answer unchanged", c.name, w.Body, h.Get("Etag"))
			}
			continue
		}
		if h.Get("Content-Type") != "application/json; charset=utf-8" || h.Get("Etag") != "" {
			t.Errorf("%s: Content-Type %q Etag %q, want the spec's JSON error and no validator of the page", c.name, h.Get("Content-Type"), h.Get("Etag"))
		}
		if c.status == http.StatusTooManyRequests && h.Get("Retry-After") != "7" {
			t.Errorf("%s: Retry-After %q, want the concierge's 7", c.name, h.Get("Retry-After"))
		}
		if c.method == http.MethodHead {
			if w.Body.Len() != 0 {
				t.Errorf("%s: a HEAD answer with a body: %q", c.name, w.Body)
			}
			continue
		}
		var body struct{ Status, Code, Message string }
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Status != "error" || body.Code != c.wantCode || body.Message == "" {
			t.Errorf("%s: body %q, want the spec's %s error", c.name, w.Body, c.wantCode)
		}
		if h.Get("Content-Length") != strconv.Itoa(w.Body.Len()) {
			t.Errorf("%s: Content-Length %q for %d bytes", c.name, h.Get("Content-Length"), w.Body.Len())
		}
		if strings.Contains(w.Body.String(), "Not Found") {
			t.Errorf("%s: the concierge's page leaked into the error: %q", c.name, w.Body)
		}
	}
}

type statusError int

func (e statusError) Error() string { return "handler error " + strconv.Itoa(int(e)) }

// TestConciergeRouteErrors: an error returned by the concierge's route
// before any answer (`error 404`, a file_server miss) would reach the
// agent as the site's handle_errors page; the agent gets the spec's JSON
// instead. A client that went away is left to Caddy.
func TestConciergeRouteErrors(t *testing.T) {
	g := testGateway(t, testOptions{status: func(err error) int {
		var s statusError
		if errors.As(err, &s) {
			return int(s)
		}
		return 0
	}})
	for _, c := range []struct {
		err        error
		wantStatus int
		wantCode   string
		wantErr    bool
	}{
		{statusError(404), 500, ahperror.ConciergeError, false},
		{statusError(403), 500, ahperror.ConciergeError, false},
		{errors.New("no status"), 500, ahperror.ConciergeError, false},
		{statusError(502), 503, ahperror.Unavailable, false},
		{statusError(429), 503, ahperror.Unavailable, false},
		{statusError(499), 0, "", true},
		{fmt.Errorf("proxy: %w", context.Canceled), 0, "", true},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/agent/converse", strings.NewReader(`{"capability":"site_info","query":"hi"}`))
		r.Header.Set("Content-Type", "application/json")
		err := g.ServeHTTP(w, r, ConverseRoute, nextFunc(func(http.ResponseWriter, *http.Request) error { return c.err }))
		if c.wantErr {
			if err == nil || w.Code != http.StatusOK || w.Body.Len() != 0 {
				t.Errorf("%v: returned %v, wrote %d %q; want the error back to Caddy, nothing written", c.err, err, w.Code, w.Body)
			}
			continue
		}
		if err != nil || w.Code != c.wantStatus || !strings.Contains(w.Body.String(), `"code":"`+c.wantCode+`"`) {
			t.Errorf("%v: returned %v, answered %d %q; want %d %s", c.err, err, w.Code, w.Body, c.wantStatus, c.wantCode)
		}
	}
}

// headerLenAtWrite records how many fields the answer's header holds when
// the server writes it.
type headerLenAtWrite struct {
	*httptest.ResponseRecorder
	fields int
}

func (w *headerLenAtWrite) WriteHeader(status int) {
	w.fields = len(w.Header())
	w.ResponseRecorder.WriteHeader(status)
}

// A proxied concierge answer has five fields (Cache-Control,
// Content-Length, Content-Type, Date, Via); the spec's four rate-limit
// fields and discovery's Link make ten, and a Go map grows past eight
// (holdOwnHeaders). The gateway's fields wait until the concierge's are
// in, and an answer the gateway composes leaves its Date and, when small,
// its Content-Length to the server, which writes both itself: the map
// stays within eight. A larger answer keeps an exact Content-Length; one
// streamed past the read cap keeps the concierge's Date and length.
func TestAnswerHeaderStaysWithinOneMapGroup(t *testing.T) {
	const date = "Mon, 02 Jan 2006 15:04:05 GMT"
	concierge := func(body string, seen *int) nextFunc {
		return func(w http.ResponseWriter, r *http.Request) error {
			_, _ = io.Copy(io.Discard, r.Body)
			h := w.Header()
			h["Cache-Control"] = []string{"no-cache"}
			h["Content-Length"] = []string{strconv.Itoa(len(body))}
			h["Content-Type"] = []string{"application/json"}
			h["Date"] = []string{date}
			h["Via"] = []string{"1.1 Caddy"}
			*seen = len(h)
			w.WriteHeader(http.StatusOK)
			_, err := io.WriteString(w, body)
			return err
		}
	}
	small := `{"status":"success","response":{"answer":"x"}}`
	large := `{"status":"success","response":{"answer":"` + strings.Repeat("x", 2*autoLengthMax) + `"}}`
	g := testGateway(t, testOptions{limits: true})
	for _, c := range []struct {
		name       string
		body       string
		readCap    int64
		wantLength bool // Content-Length in the header map
		wantDate   bool
	}{
		{"small answer", small, 0, false, false},
		{"large answer", large, 0, true, false},
		{"answer past the read cap", large, 100, true, true},
	} {
		g.responseLimit = DefaultResponseLimit
		if c.readCap > 0 {
			g.responseLimit = c.readCap
		}
		var seen int
		r := httptest.NewRequest(http.MethodPost, "/agent/converse", strings.NewReader(`{"capability":"site_info","query":"hi"}`))
		r.Header.Set("Content-Type", "application/json")
		w := &headerLenAtWrite{ResponseRecorder: httptest.NewRecorder()}
		_ = g.ServeHTTP(w, r, ConverseRoute, concierge(c.body, &seen))
		h := w.Header()
		if seen != 5 {
			t.Errorf("%s: the concierge's WriteHeader saw %d fields, want its own 5 (the gateway's held back)", c.name, seen)
		}
		if w.Code != http.StatusOK || !strings.HasPrefix(w.Body.String(), `{"status":"success"`) {
			t.Fatalf("%s: %d %.80s", c.name, w.Code, w.Body)
		}
		for _, k := range []string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "X-Ratelimit-Window"} {
			if len(h[k]) != 1 {
				t.Errorf("%s: %s %q, want the gateway's one value", c.name, k, h[k])
			}
		}
		if got := h["Content-Length"]; c.wantLength != (got != nil) || got != nil && got[0] != strconv.Itoa(w.Body.Len()) {
			t.Errorf("%s: Content-Length %q for %d bytes; want it set: %v", c.name, got, w.Body.Len(), c.wantLength)
		}
		if got := h["Date"]; c.wantDate != (got != nil) || got != nil && got[0] != date {
			t.Errorf("%s: Date %q; want the concierge's: %v", c.name, got, c.wantDate)
		}
		if c.name == "small answer" && w.fields > 7 {
			t.Errorf("%s: %d fields when written (%v); with discovery's Link that is past the 8 of a map's first group", c.name, w.fields, h)
		}
	}
}

// The gateway's fields held back while the concierge answers go on every
// answer, also when the concierge writes nothing or its route fails
// before writing (the proxy's 502 becomes the spec's 503).
func TestHeldHeadersOnAnswersTheConciergeNeverWrote(t *testing.T) {
	g := testGateway(t, testOptions{limits: true, status: func(error) int { return http.StatusBadGateway }})
	for name, next := range map[string]nextFunc{
		"nothing written": func(w http.ResponseWriter, r *http.Request) error { return nil },
		"proxy error":     func(w http.ResponseWriter, r *http.Request) error { return errors.New("dial tcp: refused") },
	} {
		w := call(g, `{"capability":"site_info","query":"hi"}`, next)
		for _, k := range []string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "X-Ratelimit-Window"} {
			if len(w.Header()[k]) != 1 {
				t.Errorf("%s: %d answer without %s (%v)", name, w.Code, k, w.Header())
			}
		}
	}
}

// holdOwnHeaders looks up only the fields ownHeadersOf names: they must
// be exactly the fields the gateway's rate-limit policy and CORS write,
// in each header mode, or a field would be left to grow the map (or a
// concierge's duplicate of it would reach the agent).
func TestOwnHeadersOfMatchesWhatIsWritten(t *testing.T) {
	huge := limiter.Limit{Events: 1 << 40, Window: time.Minute}
	for _, mode := range []ratelimit.Headers{ratelimit.HeadersAHP, ratelimit.HeadersIETF, ratelimit.HeadersBoth} {
		for _, cors := range []bool{false, true} {
			store := limiter.NewMemory(limiter.MemoryOptions{})
			p := ratelimit.New(ratelimit.Config{Store: store, Zone: "test", Headers: mode, Static: huge, Unauthenticated: huge, Authenticated: huge})
			h := http.Header{}
			p.WriteHeaders(h, p.Static, &limiter.Decision{Allowed: true, Remaining: 1, Reset: time.Now()})
			if cors {
				setCORS(h)
			}
			var want []string
			for k := range h {
				want = append(want, k)
			}
			var got []string
			for i, k := range ownHeaders {
				if ownHeadersOf(p, cors)&(1<<i) != 0 {
					got = append(got, k)
				}
			}
			sort.Strings(want)
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Errorf("headers mode %d, cors %v: held %v, written %v", mode, cors, got, want)
			}
			store.Close()
		}
	}
	if own := ownHeadersOf(nil, false); own != 0 {
		t.Errorf("no limits, no cors: holds %08b", own)
	}
}

type resolverFunc func(host string) []netip.Addr

func (f resolverFunc) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return f(host), nil
}

type answererFunc func(w http.ResponseWriter) error

func (answererFunc) Answers(string) bool { return true }
func (f answererFunc) Answer(_ context.Context, w http.ResponseWriter, _ *converse.Request) (string, int64, error) {
	return "", 0, f(w)
}

// An admitted call's rate-limit fields wait for the concierge's answer
// (admission.fields); every other answer of an admitted or refused call
// carries them too: a refusal by the limit, a callback refused by its
// lookup after admission, and the built-in concierge's answer.
func TestHeldRateLimitFieldsOnEveryAnswer(t *testing.T) {
	private := resolverFunc(func(string) []netip.Addr { return []netip.Addr{netip.MustParseAddr("10.0.0.7")} })
	builtIn := answererFunc(func(w http.ResponseWriter) error {
		w.Header().Set("Content-Type", "application/json")
		_, err := io.WriteString(w, `{"status":"success","response":{"answer":"built in"}}`)
		return err
	})
	for _, c := range []struct {
		name   string
		o      testOptions
		body   string
		calls  int // the answer checked is the last one's
		status int
	}{
		{"forwarded", testOptions{limits: true}, `{"capability":"site_info","query":"hi"}`, 1, http.StatusOK},
		{"over the limit", testOptions{limits: true, unauth: limiter.Limit{Events: 1, Window: time.Minute}},
			`{"capability":"site_info","query":"hi"}`, 2, http.StatusTooManyRequests},
		{"callback refused by its lookup", testOptions{limits: true, resolver: private},
			`{"capability":"site_info","query":"hi","context":{"callback_url":"https://hooks.example.com/cb"}}`, 1, http.StatusBadRequest},
		{"built-in concierge", testOptions{limits: true, answerer: builtIn}, `{"capability":"site_info","query":"hi"}`, 1, http.StatusOK},
	} {
		g := testGateway(t, c.o)
		var w *httptest.ResponseRecorder
		for range c.calls {
			w = call(g, c.body, conciergeNext)
		}
		if w.Code != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, w.Code, w.Body, c.status)
			continue
		}
		for _, k := range []string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "X-Ratelimit-Window"} {
			if len(w.Header()[k]) != 1 {
				t.Errorf("%s: %s %q, want one value", c.name, k, w.Header()[k])
			}
		}
	}
}

// A finished job's result is the standard success answer (§9.1), so its
// poll echoes the content signals (§7) as a call's answer does, with
// limits or without; a pending status and a HEAD poll are left alone.
func TestPolledResultEchoesContentSignals(t *testing.T) {
	for _, limits := range []bool{false, true} {
		g := testGateway(t, testOptions{limits: limits})
		for _, c := range []struct {
			method, answer string
			echoed         bool
		}{
			{http.MethodGet, `{"status":"success","session_id":"job1","response":{"answer":"done"},"meta":{"tokens_used":3}}`, true},
			{http.MethodGet, `{"status":"pending","session_id":"job1","eta_seconds":30}`, false},
			{http.MethodHead, `{"status":"success","session_id":"job1","response":{"answer":"done"}}`, false},
		} {
			r := httptest.NewRequest(c.method, "/agent/converse/status/job1", nil)
			r.Header.Set("Authorization", "Bearer "+testKey)
			w := httptest.NewRecorder()
			_ = g.ServeHTTP(w, r, StatusRoute, answering(c.answer))
			got := strings.Contains(w.Body.String(), `"content_signals":{"ai_input":true}`)
			if w.Code != http.StatusOK || got != c.echoed {
				t.Errorf("limits %v, %s %s: %d %s, want the signals echoed: %v", limits, c.method, c.answer, w.Code, w.Body, c.echoed)
			}
			if c.echoed && !json.Valid(w.Body.Bytes()) {
				t.Errorf("limits %v: the polled result is no longer JSON: %s", limits, w.Body)
			}
		}
	}
}
