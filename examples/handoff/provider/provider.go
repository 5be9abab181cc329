// Package provider is a stand-in Agent Handoff provider backend: an
// EXAMPLE, in memory, for trying the agent_handoff directive and for the
// integration tests. It is the backend a provider already has; the edge in
// front of it (package handoff, through Caddy) is what this repository
// builds.
//
// It keeps the sandbox lifecycle (spec §5): create (trusting the edge's
// X-Agent-Handoff-Admission header), FAQ content, publish with handle
// rotation, claim start and verification with handle rotation and token
// invalidation, preview exchange codes, deletion and expiry. Its failures
// are deliberately distinct (404, 409, 410, 401 …) so that one can watch
// the edge make them identical.
//
// Hosts: the API (APIBase), the published content ({handle}.ContentDomain)
// and the preview (PreviewBase) are told apart by the Host header.
package provider

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configures the provider.
type Options struct {
	// APIBase is the API's public URL, e.g. http://localhost:8080.
	APIBase string
	// ContentDomain is the published content's domain: a sandbox is at
	// http://{handle}.{ContentDomain}/, e.g. sandbox.localhost:8081.
	ContentDomain string
	// PreviewBase is the preview origin's URL, e.g.
	// http://preview.localhost:8082.
	PreviewBase string
	// TTL of a sandbox (default 48h), of a claim code (default 1h) and of
	// an exchange code (default 10m).
	TTL, ClaimTTL, ExchangeTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Provider is the backend. It is an http.Handler.
type Provider struct {
	o  Options
	mu sync.Mutex
	// by internal id, by public handle (current and tombstoned), by token,
	// by claim code hash, by exchange code hash.
	sandboxes map[string]*sandbox
	handles   map[string]string // handle -> sandbox id; "" once tombstoned
	tokens    map[string]string // agent token -> sandbox id
	claims    map[[32]byte]*claimCode
	exchanges map[[32]byte]*exchangeCode
	previews  map[string]string // preview session -> sandbox id
	faqs      map[string]string // faq id -> sandbox id
}

type sandbox struct {
	id, handle, token string
	state             string // active, published, claimed, deleted
	expires           time.Time
	title             string
	questions         []qa
	owner             string // workspace id once claimed
}

type qa struct{ Q, A string }

type claimCode struct {
	sandbox string
	expires time.Time
}

type exchangeCode struct {
	sandbox string
	expires time.Time
}

// New returns a provider.
func New(o Options) *Provider {
	if o.TTL <= 0 {
		o.TTL = 48 * time.Hour
	}
	if o.ClaimTTL <= 0 {
		o.ClaimTTL = time.Hour
	}
	if o.ExchangeTTL <= 0 {
		o.ExchangeTTL = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Provider{o: o, sandboxes: map[string]*sandbox{}, handles: map[string]string{}, tokens: map[string]string{},
		claims: map[[32]byte]*claimCode{}, exchanges: map[[32]byte]*exchangeCode{}, previews: map[string]string{}, faqs: map[string]string{}}
}

const (
	base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	base36 = "0123456789abcdefghijklmnopqrstuvwxyz"
)

// random returns n base62 characters (5.95 bits each): 22 hold 128 bits
// (spec §12.1), 43 hold 256.
func random(n int) string { return randomFrom(base62, n) }

// newHandle is a public handle: it is a DNS label ({handle}.domain), and
// DNS ignores case, so it is 25 lowercase base36 characters (129 bits)
// rather than the 22 base62 of spec §27.
func newHandle() string { return randomFrom(base36, 25) }

func randomFrom(alphabet string, n int) string {
	limit := byte(256 - 256%len(alphabet)) // no modulo bias
	out := make([]byte, 0, n)
	var b [1]byte
	for len(out) < n {
		_, _ = rand.Read(b[:])
		if b[0] < limit {
			out = append(out, alphabet[int(b[0])%len(alphabet)])
		}
	}
	return string(out)
}

// claimCodeString is RAPTOR-XXXX-XXXX-XXXX-XXXX in Crockford's base32:
// 16 characters, 80 bits (spec §19.1 recommends at least 80).
func claimCodeString() string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var b [16]byte
	_, _ = rand.Read(b[:])
	var sb strings.Builder
	sb.WriteString("RAPTOR")
	for i, c := range b {
		if i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(alphabet[c&31])
	}
	return sb.String()
}

func hashCode(code string) [32]byte { return sha256.Sum256([]byte(code)) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code})
}

// ServeHTTP routes by host, then path.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := strings.ToLower(r.Host)
	switch {
	case p.o.ContentDomain != "" && strings.HasSuffix(host, "."+strings.ToLower(p.o.ContentDomain)):
		p.serveContent(w, r, strings.TrimSuffix(host, "."+strings.ToLower(p.o.ContentDomain)))
	case p.o.PreviewBase != "" && host == strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(p.o.PreviewBase, "http://"), "https://")):
		p.servePreview(w, r)
	default:
		p.serveAPI(w, r)
	}
}

// segments splits a path: "/v1/sandboxes/x/claim" -> [v1 sandboxes x claim].
func segments(path string) []string { return strings.Split(strings.Trim(path, "/"), "/") }

func (p *Provider) serveAPI(w http.ResponseWriter, r *http.Request) {
	s := segments(r.URL.Path)
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/sandboxes":
		p.create(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/claims/verify":
		p.verifyClaim(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/faqs":
		p.addFAQ(w, r)
	case r.Method == http.MethodPost && len(s) == 4 && s[0] == "v1" && (s[1] == "faqs" || s[1] == "content") && s[3] == "publish":
		p.publish(w, r, s[1], s[2])
	case r.Method == http.MethodPost && len(s) == 4 && s[0] == "v1" && s[1] == "sandboxes" && s[3] == "claim":
		p.startClaim(w, r, s[2])
	case r.Method == http.MethodPost && len(s) == 4 && s[0] == "v1" && s[1] == "sandboxes" && s[3] == "preview":
		p.previewLink(w, r, s[2])
	case len(s) == 3 && s[0] == "v1" && s[1] == "sandboxes" && (r.Method == http.MethodGet || r.Method == http.MethodDelete):
		p.sandboxStatus(w, r, s[2])
	case r.Method == http.MethodGet && r.URL.Path == "/claim":
		p.claimPage(w)
	default:
		fail(w, http.StatusNotFound, "not_found")
	}
}

// authorized returns the sandbox whose agent token the request bears, if
// it is alive (tokens of claimed, deleted or expired sandboxes are dead).
func (p *Provider) authorized(r *http.Request) *sandbox {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil
	}
	id := p.tokens[tok]
	sb := p.sandboxes[id]
	if sb == nil || !p.alive(sb) {
		return nil
	}
	return sb
}

// alive: active or published and not expired (expiry happens lazily).
func (p *Provider) alive(sb *sandbox) bool {
	if (sb.state == "active" || sb.state == "published") && !p.o.Now().Before(sb.expires) {
		p.retire(sb, "expired")
	}
	return sb.state == "active" || sb.state == "published"
}

// retire ends a sandbox: tokens, handle, claim and exchange codes die.
func (p *Provider) retire(sb *sandbox, state string) {
	sb.state = state
	delete(p.tokens, sb.token)
	p.handles[sb.handle] = "" // tombstoned: never reused, never redirected
	for k, c := range p.claims {
		if c.sandbox == sb.id {
			delete(p.claims, k)
		}
	}
	for k, e := range p.exchanges {
		if e.sandbox == sb.id {
			delete(p.exchanges, k)
		}
	}
	for k, id := range p.previews {
		if id == sb.id {
			delete(p.previews, k)
		}
	}
}

func (p *Provider) endpoints(sb *sandbox) map[string]string {
	return map[string]string{
		"content": p.o.APIBase + "/v1/faqs",
		"preview": p.o.APIBase + "/v1/sandboxes/" + sb.id + "/preview",
		"claim":   p.o.APIBase + "/v1/sandboxes/" + sb.id + "/claim",
		"delete":  p.o.APIBase + "/v1/sandboxes/" + sb.id,
	}
}

func (p *Provider) create(w http.ResponseWriter, r *http.Request) {
	// The edge verified and spent the proof of work, or verified an agent
	// it lets create without one; only it can set this.
	adm := r.Header.Get("X-Agent-Handoff-Admission")
	if !strings.HasPrefix(adm, "verified; purpose=create") && !strings.HasPrefix(adm, "verified-agent; purpose=create;") {
		fail(w, http.StatusForbidden, "admission_required")
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<16))
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.o.Now()
	sb := &sandbox{id: "sbx_" + random(22), handle: newHandle(), token: "ex_sbx_" + random(43), state: "active", expires: now.Add(p.o.TTL)}
	p.sandboxes[sb.id] = sb
	p.handles[sb.handle] = sb.id
	p.tokens[sb.token] = sb.id
	exp := sb.expires.UTC().Format(time.RFC3339)
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": sb.id, "public_handle": sb.handle, "status": sb.state, "expires_at": exp,
		"agent_token": map[string]any{"token": sb.token, "expires_at": exp, "scopes": []string{"sandbox:manage", "content:write", "content:publish"}},
		"endpoints":   p.endpoints(sb),
	})
}

func (p *Provider) addFAQ(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Title     string `json:"title"`
		Questions []struct {
			Question string `json:"question"`
			Answer   string `json:"answer"`
		} `json:"questions"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil || in.Title == "" || len(in.Title) > 100 {
		fail(w, http.StatusBadRequest, "invalid_faq")
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	sb := p.authorized(r)
	if sb == nil {
		fail(w, http.StatusUnauthorized, "invalid_token")
		return
	}
	sb.title, sb.questions = in.Title, nil
	for _, q := range in.Questions {
		sb.questions = append(sb.questions, qa{q.Question, q.Answer})
	}
	id := "faq_" + random(22)
	p.faqs[id] = sb.id
	writeJSON(w, http.StatusCreated, map[string]string{"faq_id": id, "sandbox_id": sb.id})
}

// publish rotates the handle (spec §7.3, §15): the old one is tombstoned.
func (p *Provider) publish(w http.ResponseWriter, r *http.Request, kind, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sb := p.authorized(r)
	if sb == nil {
		fail(w, http.StatusUnauthorized, "invalid_token")
		return
	}
	if (kind == "faqs" && p.faqs[id] != sb.id) || (kind == "content" && id != sb.id) || sb.title == "" {
		fail(w, http.StatusNotFound, "not_found")
		return
	}
	old := sb.handle
	p.handles[old] = ""
	sb.handle = newHandle()
	p.handles[sb.handle] = sb.id
	sb.state = "published"
	writeJSON(w, http.StatusOK, map[string]any{
		"id": id, "status": "published", "published_url": "http://" + sb.handle + "." + p.o.ContentDomain + "/",
		"previous_handle": old, "new_handle": sb.handle, "handle_rotated": true,
	})
}

// startClaim issues a claim code (spec §19.1); the edge adds the claim's
// proof-of-work challenge to this answer.
func (p *Provider) startClaim(w http.ResponseWriter, r *http.Request, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sb := p.authorized(r)
	if sb == nil || sb.id != id {
		fail(w, http.StatusNotFound, "sandbox_not_found")
		return
	}
	if sb.state != "published" {
		fail(w, http.StatusConflict, "not_published")
		return
	}
	code := claimCodeString()
	expires := p.o.Now().Add(p.o.ClaimTTL)
	p.claims[hashCode(code)] = &claimCode{sandbox: sb.id, expires: expires}
	writeJSON(w, http.StatusCreated, map[string]any{"claim": map[string]any{
		"code": code, "url": p.o.APIBase + "/claim", "expires_at": expires.UTC().Format(time.RFC3339),
	}})
}

// verifyClaim completes a claim (spec §19.4): the sandbox must still be
// published; the handle rotates; tokens, previews and exchange codes die.
func (p *Provider) verifyClaim(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("X-Agent-Handoff-Admission"), "verified; purpose=claim") {
		fail(w, http.StatusForbidden, "proof_of_work_required")
		return
	}
	var in struct {
		Code      string `json:"code"`
		ClaimCode string `json:"claim_code"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil {
		fail(w, http.StatusBadRequest, "invalid_request")
		return
	}
	code := in.Code
	if code == "" {
		code = in.ClaimCode
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// Codes are looked up by their SHA-256, never compared as strings:
	// the lookup's timing tells nothing about a code (spec §19.5).
	h := hashCode(code)
	c := p.claims[h]
	if c == nil {
		fail(w, http.StatusNotFound, "unknown_code")
		return
	}
	if !p.o.Now().Before(c.expires) {
		delete(p.claims, h)
		fail(w, http.StatusGone, "code_expired")
		return
	}
	sb := p.sandboxes[c.sandbox]
	if sb == nil || !p.alive(sb) || sb.state != "published" {
		fail(w, http.StatusConflict, "sandbox_not_claimable")
		return
	}
	delete(p.claims, h)
	workspace := "ws_" + random(22)
	p.retire(sb, "claimed") // tokens, previews, exchange codes, the handle
	sb.owner = workspace
	sb.handle = newHandle() // the workspace's own handle
	p.handles[sb.handle] = sb.id
	writeJSON(w, http.StatusOK, map[string]any{"status": "claimed", "workspace": map[string]string{"id": workspace}})
}

// previewLink issues a single-use exchange code (spec §17.1).
func (p *Provider) previewLink(w http.ResponseWriter, r *http.Request, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sb := p.authorized(r)
	if sb == nil || sb.id != id {
		fail(w, http.StatusNotFound, "sandbox_not_found")
		return
	}
	code := "ex_exch_" + random(22)
	p.exchanges[hashCode(code)] = &exchangeCode{sandbox: sb.id, expires: p.o.Now().Add(p.o.ExchangeTTL)}
	writeJSON(w, http.StatusCreated, map[string]string{"exchange_url": p.o.PreviewBase + "/exchange/" + code})
}

func (p *Provider) sandboxStatus(w http.ResponseWriter, r *http.Request, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sb := p.authorized(r)
	if sb == nil || sb.id != id {
		fail(w, http.StatusNotFound, "sandbox_not_found")
		return
	}
	if r.Method == http.MethodDelete {
		p.retire(sb, "deleted")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": sb.id, "status": sb.state, "public_handle": sb.handle,
		"expires_at": sb.expires.UTC().Format(time.RFC3339)})
}

// claimPage is where the human claims: the edge's solver does the proof
// of work in the browser (no script of the page's own).
func (p *Provider) claimPage(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Claim your FAQ</title>
<script src="/.well-known/agent-access/solver.js" defer></script></head>
<body><main><h1>Claim your FAQ</h1>
<p>Enter the claim code your agent gave you. Your browser does a little work to prove you are here.</p>
<form data-agent-handoff-claim action="/v1/claims/verify">
<label>Claim code <input name="code" required autocomplete="off" placeholder="RAPTOR-XXXX-XXXX-XXXX-XXXX"></label>
<button type="submit">Claim</button>
<output data-agent-handoff-status></output>
</form></main></body></html>
`)
}

// serveContent is the published content origin: the current published
// handle serves its FAQ; any other (old, unknown, unpublished) is 404,
// never a redirect (spec §15.1).
func (p *Provider) serveContent(w http.ResponseWriter, r *http.Request, handle string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sb := p.sandboxes[p.handles[handle]]
	if sb == nil || handle == "" || !p.alive(sb) || sb.state != "published" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "<!DOCTYPE html><title>Not found</title><p>Not found.</p>\n")
		return
	}
	switch r.URL.Path {
	case "/assets/faq.css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		_, _ = io.WriteString(w, "body{font-family:sans-serif;max-width:40rem;margin:2rem auto}dt{font-weight:bold}\n")
		return
	case "/":
	default:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "<!DOCTYPE html><title>Not found</title><p>Not found.</p>\n")
		return
	}
	// Everything the agent wrote is escaped: no raw HTML, no styles, no
	// URLs (spec §14).
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title>"+
		"<link rel=\"stylesheet\" href=\"/assets/faq.css\"></head><body><h1>%s</h1><dl>\n", html.EscapeString(sb.title), html.EscapeString(sb.title))
	for _, q := range sb.questions {
		fmt.Fprintf(&b, "<dt>%s</dt><dd>%s</dd>\n", html.EscapeString(q.Q), html.EscapeString(q.A))
	}
	b.WriteString("</dl></body></html>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Set-Cookie", "analytics=1") // the edge strips it (spec §13.1)
	_, _ = io.WriteString(w, b.String())
}

// servePreview: POST /exchange/{code} consumes the code (once, within
// its TTL) and starts a preview session; GET /preview shows the sandbox.
func (p *Provider) servePreview(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if code, ok := strings.CutPrefix(r.URL.Path, "/exchange/"); ok {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			fail(w, http.StatusMethodNotAllowed, "post_only")
			return
		}
		h := hashCode(code)
		e := p.exchanges[h]
		if e == nil {
			fail(w, http.StatusNotFound, "unknown_code")
			return
		}
		delete(p.exchanges, h) // single use, even when expired
		if !p.o.Now().Before(e.expires) {
			fail(w, http.StatusGone, "code_expired")
			return
		}
		session := random(43)
		p.previews[session] = e.sandbox
		// The edge makes this cookie HttpOnly, Secure, SameSite=Strict and
		// host-only, whatever it says here.
		w.Header().Set("Set-Cookie", "preview_session="+session+"; Path=/")
		w.Header().Set("Location", "/preview")
		w.WriteHeader(http.StatusSeeOther)
		return
	}
	if r.URL.Path != "/preview" || r.Method != http.MethodGet {
		fail(w, http.StatusNotFound, "not_found")
		return
	}
	c, err := r.Cookie("preview_session")
	var sb *sandbox
	if err == nil {
		sb = p.sandboxes[p.previews[c.Value]]
	}
	if sb == nil || !p.alive(sb) {
		fail(w, http.StatusNotFound, "not_found")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!DOCTYPE html><title>Preview</title><h1>Preview: %s</h1><p>%d questions, %s.</p>\n",
		html.EscapeString(sb.title), len(sb.questions), sb.state)
}
