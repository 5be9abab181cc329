// Package sitetest is the site the front-door tests call into: a test
// manifest with every kind of capability, the real converse gateway built
// from it (real request rules, a key set, rate limits in a memory store
// whose charges are recorded), and a fake concierge behind it, as the
// gateway's Next, that records every request it receives.
package sitetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/auth"
	"github.com/caddy-ahp/caddy-ahp/converse"
	"github.com/caddy-ahp/caddy-ahp/discovery"
	"github.com/caddy-ahp/caddy-ahp/gateway"
	"github.com/caddy-ahp/caddy-ahp/limiter"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/ratelimit"
)

// Key is the one credential the site accepts.
const Key = "test-key-0123456789abcdef"

// ManifestJSON is the test site's manifest: MODE2 and MODE3 capabilities
// (query with an input_schema, action, async), a MODE1 capability the
// front doors must leave out, bearer auth, and MODE1 content.
const ManifestJSON = `{
  "ahp": "0.1",
  "name": "Test Shop",
  "description": "A shop for testing the front doors.",
  "endpoints": {"converse": "/agent/converse", "content": "/llms.txt"},
  "authentication": "bearer",
  "content_signals": {"ai_train": false, "ai_input": true},
  "async": {"supported": true},
  "capabilities": [
    {"name": "site_info", "description": "General information about this shop", "mode": "MODE2", "response_types": ["text/answer"]},
    {"name": "content_search", "description": "Find posts by topic", "mode": "MODE2", "response_types": ["application/feed", "text/answer"]},
    {"name": "inventory_check", "description": "Check stock levels for a product", "mode": "MODE3", "action_type": "query",
     "response_types": ["application/data", "text/answer"],
     "input_schema": {"type": "object",
       "properties": {"sku": {"type": "string", "description": "Product SKU"}, "qty": {"type": "integer", "minimum": 1}, "address": {"$ref": "#/definitions/address"}},
       "required": ["sku"],
       "definitions": {"address": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
     "output_schema": {"type": "object"}},
    {"name": "book_demo", "description": "Book a product demo", "mode": "MODE3", "action_type": "action",
     "input_schema": {"type": "object", "properties": {"date": {"type": "string"}}}, "output_schema": {"type": "object"}},
    {"name": "get_quote", "description": "Get a custom quote from a human", "mode": "MODE3", "action_type": "async",
     "input_schema": {"type": "object"}, "output_schema": {"type": "object"}},
    {"name": "contact", "description": "How to reach us", "mode": "MODE1", "response_types": ["application/data"]}
  ]
}`

// Manifest returns the test manifest, completed and validated as the
// plugin does at load.
func Manifest(t testing.TB) *manifest.Manifest {
	t.Helper()
	return Parse(t, ManifestJSON)
}

// Parse completes and validates a manifest given as JSON.
func Parse(t testing.TB, raw string) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("test manifest: %v", err)
	}
	m.Complete()
	if err := manifest.Validate(m); err != nil {
		t.Fatalf("test manifest: %v", err)
	}
	return m
}

// Content is the MODE1 document the site serves at /llms.txt.
const Content = "# Test Shop\n\nWe sell test things.\n"

// Recorded is one request as the concierge (the rest of the site behind
// the gateway) received it.
type Recorded struct {
	Method, Path, RawQuery, RequestURI string
	RemoteAddr                         string
	Header                             http.Header
	Body                               []byte
	ContentLength                      int64
	// Parsed is the converse request as the real validator read it.
	Parsed *converse.Request
}

// Options shape the test site.
type Options struct {
	// Unauthenticated and Static limit the client's tiers; zero means
	// a limit no test reaches.
	Unauthenticated, Static limiter.Limit
	// ContentFile serves the MODE1 content from this local file through
	// package discovery instead of through the site.
	ContentFile string
}

// Site is a test AHP site: Gateway is the real converse gateway of M
// (authentication by Key, the real converse rules, rate limits in a memory
// store), Content its discovery handler, and Site itself the concierge
// and the rest of the site (the gateway's Next). The concierge answers:
//
//   - a query starting "error:<code>" answers that AHP error;
//   - "clarify" answers clarification_needed;
//   - get_quote answers accepted (async);
//   - content_search answers an application/feed payload;
//   - anything else answers success with the answer
//     "<capability> says: <query>".
//
// GET /llms.txt serves Content, GET {converse}/status/{id} a pending
// status ("gone" is a 404), anything else 404.
type Site struct {
	M       *manifest.Manifest
	Gateway *gateway.Gateway
	Limits  *ratelimit.Policy
	Content *discovery.Handler
	rules   *converse.Rules

	mu       sync.Mutex
	received []Recorded
	charged  []string
	rejected []string
}

var huge = limiter.Limit{Events: 1 << 40, Window: time.Minute}

// New returns the test site for m.
func New(t testing.TB, m *manifest.Manifest, opts ...Options) *Site {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Unauthenticated.Events == 0 {
		o.Unauthenticated = huge
	}
	if o.Static.Events == 0 {
		o.Static = huge
	}
	keys, err := auth.NewKeys(Key)
	if err != nil {
		t.Fatal(err)
	}
	s := &Site{M: m, rules: converse.NewRules(m, converse.Options{})}
	mem := limiter.NewMemory(limiter.MemoryOptions{})
	t.Cleanup(func() { mem.Close() })
	s.Limits = ratelimit.New(ratelimit.Config{Store: countingStore{mem, s}, Zone: "test",
		Static: o.Static, Unauthenticated: o.Unauthenticated, Authenticated: huge, Action: huge})
	if m.ConversePath() != "" {
		cfg := gateway.Config{Manifest: m, Rules: s.rules, Limits: s.Limits, EchoSignals: true, Observer: observer{s}}
		if m.Authentication == manifest.AuthBearer || m.Authentication == manifest.AuthAPIKey {
			cfg.Keys = keys
		}
		if s.Gateway, err = gateway.New(cfg); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := manifest.Render(m)
	if err != nil {
		t.Fatal(err)
	}
	if s.Content, err = discovery.New(discovery.Config{Manifest: m, Document: doc, ContentFile: o.ContentFile, Limits: s.Limits}); err != nil {
		t.Fatal(err)
	}
	return s
}

// countingStore records the tier of every window the site's limits
// decide, so tests can assert what a request was charged.
type countingStore struct {
	limiter.Store
	s *Site
}

func (c countingStore) Do(ctx context.Context, b *limiter.Batch) error {
	c.s.mu.Lock()
	for _, w := range b.Windows {
		tier := w.Key[strings.LastIndexByte(w.Key, '|')+1:]
		if strings.Contains(w.Key, "|agent|") {
			tier = "per_agent"
		}
		c.s.charged = append(c.s.charged, tier)
	}
	c.s.mu.Unlock()
	return c.Store.Do(ctx, b)
}

// Charged returns the tiers charged so far, in order ("static",
// "unauthenticated", "authenticated", "action", "per_agent"), and forgets
// them.
func (s *Site) Charged() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.charged
	s.charged = nil
	return out
}

// observer records what the gateway counts in caddy_ahp_converse_rejected_total.
type observer struct{ s *Site }

func (observer) ConverseAllowed() {}
func (o observer) ConverseRejected(code string) {
	o.s.mu.Lock()
	o.s.rejected = append(o.s.rejected, code)
	o.s.mu.Unlock()
}

// Rejected returns the codes counted as rejected calls so far (the
// rejected metric's labels), in order, and forgets them.
func (s *Site) Rejected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.rejected
	s.rejected = nil
	return out
}

// Received returns the requests the concierge saw so far.
func (s *Site) Received() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recorded(nil), s.received...)
}

// Last returns the last request the concierge saw; it fails the test if
// none came.
func (s *Site) Last(t testing.TB) Recorded {
	t.Helper()
	rs := s.Received()
	if len(rs) == 0 {
		t.Fatal("the concierge received no request")
	}
	return rs[len(rs)-1]
}

// ErrorStatus is the HTTP status of each AHP error code (spec §10).
var ErrorStatus = map[string]int{
	ahperror.InvalidRequest:    400,
	ahperror.UnknownCapability: 400,
	ahperror.MissingField:      400,
	ahperror.UnsupportedType:   400,
	ahperror.AuthRequired:      401,
	ahperror.Forbidden:         403,
	ahperror.RequestTooLarge:   413,
	ahperror.RateLimited:       429,
	ahperror.ConciergeError:    500,
	ahperror.Unavailable:       503,
}

// ServeHTTP is the rest of the site behind the gateway (a gateway.Next):
// the concierge, the content document and the status path.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	_ = r.Body.Close()
	rec := Recorded{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, RequestURI: r.RequestURI,
		RemoteAddr: r.RemoteAddr, Header: r.Header.Clone(), Body: body, ContentLength: r.ContentLength}
	defer func() {
		s.mu.Lock()
		s.received = append(s.received, rec)
		s.mu.Unlock()
	}()
	w.Header().Set("Link", `</.well-known/agent.json>; rel="ahp-manifest"`)

	conversePath := s.M.ConversePath()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == s.M.ContentPath():
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, Content)
		return nil
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, conversePath+"/status/"):
		id := strings.TrimPrefix(r.URL.Path, conversePath+"/status/")
		if id == "gone" {
			ahperror.Write(w, ahperror.New(404, ahperror.InvalidRequest, "no such session"))
			return nil
		}
		writeJSON(w, 200, map[string]any{"status": "pending", "session_id": id, "progress": "Waiting for a human", "eta_seconds": 60})
		return nil
	case r.Method == http.MethodPost && r.URL.Path == conversePath:
	default:
		http.NotFound(w, r)
		return nil
	}

	// The concierge: the gateway admitted the call; read it as it did.
	var req converse.Request
	if e := s.rules.Parse(body, &req); e != nil {
		ahperror.Write(w, ahperror.New(500, ahperror.ConciergeError, "the gateway forwarded a request its own rules refuse: "+e.Message))
		return nil
	}
	rec.Parsed = &req
	q := req.Query
	switch {
	case strings.HasPrefix(q, "error:"):
		code := strings.TrimPrefix(q, "error:")
		if i := strings.IndexByte(code, '\n'); i >= 0 {
			code = code[:i]
		}
		e := ahperror.New(ErrorStatus[code], code, "the concierge refused: "+code)
		if code == ahperror.RateLimited {
			e = ahperror.RateLimit(ahperror.ScopeSession, "the concierge refused: "+code, 7)
		}
		ahperror.Write(w, e)
	case q == "clarify":
		writeJSON(w, 200, map[string]any{"status": "clarification_needed", "session_id": "abc-123",
			"clarification": map[string]any{"question": "Blog posts or projects?", "options": []string{"blog_posts", "projects"}, "free_form": true}})
	case req.Capability == "get_quote":
		writeJSON(w, 202, map[string]any{"status": "accepted", "session_id": "xyz-456", "eta_seconds": 120, "poll": conversePath + "/status/xyz-456"})
	case req.Capability == "content_search":
		writeJSON(w, 200, map[string]any{"status": "success", "session_id": nil,
			"response": map[string]any{"content_type": "application/feed", "answer": "Two posts found.",
				"payload": map[string]any{"total": 2, "items": []map[string]any{{"title": "A", "url": "/a"}, {"title": "B", "url": "/b"}}}},
			"meta": map[string]any{"capability_used": "content_search", "mode": "MODE2"}})
	default:
		sid := req.SessionID
		if sid == "" {
			sid = "s-1"
		}
		writeJSON(w, 200, map[string]any{"status": "success", "session_id": sid,
			"response": map[string]any{"answer": req.Capability + " says: " + q},
			"meta":     map[string]any{"capability_used": req.Capability, "tokens_used": 12}})
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Bearer is the Authorization header value carrying Key.
var Bearer = "Bearer " + Key

// JSON decodes b into a generic value; it fails the test on bad JSON.
func JSON(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, b)
	}
	return v
}
