package concierge_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// TestQuestionTable: the retrieval table the concierge package holds on
// the demo site read from files gives the same first sources when the
// index is built through a real Caddy in front of a real upstream.
func TestQuestionTable(t *testing.T) {
	s := startSite(t, generousLimits)
	f, err := os.Open(filepath.Join(caddyproc.RepoRoot(), "concierge", "testdata", "questions.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Split(line, "\t")
		capability, question, want := fields[0], fields[1], fields[2]
		n++
		r, a := s.converse(fmt.Sprintf(`{"capability":%q,"query":%q}`, capability, question))
		if r.StatusCode != 200 {
			t.Errorf("%q: %d %s", question, r.StatusCode, r.Bytes)
			continue
		}
		checkSchema(t, r.Bytes)
		src := a.sources()
		if want == "-" {
			if len(src) != 0 {
				t.Errorf("%q: want no source, got %v", question, src)
			}
			continue
		}
		if len(src) == 0 || src[0] != [2]string{want, "direct"} {
			t.Errorf("%q: first source %v, want %s direct", question, src, want)
		}
	}
	if n < 20 {
		t.Fatalf("only %d questions", n)
	}
}

// TestIndexReadsTheSiteAsAVisitor: the concierge reads the site through
// Caddy as an anonymous visitor: the site's Host, no credentials, the
// crawler's own address; a page behind the site's basic_auth (which runs
// before ahp) is never fetched from the upstream nor answered from; a
// page compressed by the upstream is read.
func TestIndexReadsTheSiteAsAVisitor(t *testing.T) {
	s := startSite(t, generousLimits)
	crawled := s.up.crawled()
	for _, want := range []string{"/sitemap.xml", "/llms.txt", "/", "/blog/rocking-chair.html", "/gz.html"} {
		if !slices.Contains(crawled, want) {
			t.Errorf("the concierge did not read %s through the site; it read %v", want, crawled)
		}
	}
	if slices.Contains(crawled, "/private/vault.html") {
		t.Errorf("a page behind basic_auth reached the upstream for the concierge")
	}
	// The sitemap's entry naming the production host is read as this
	// site's path; the draft robots.txt disallows is not read at all.
	if !slices.Contains(crawled, "/robots.txt") || !slices.Contains(crawled, "/offcuts.html") || slices.Contains(crawled, "/drafts/spring-sale.html") {
		t.Errorf("robots.txt and the sitemap's other host: the concierge read %v", crawled)
	}
	if _, a := s.converse(`{"capability":"content_search","query":"What do you do with offcuts?"}`); len(a.sources()) == 0 || a.sources()[0][0] != "/offcuts.html" {
		t.Errorf("the page the sitemap lists under the production host was not answered from: %v", a)
	}
	if _, a := s.converse(`{"capability":"content_search","query":"Is there a spring sale?"}`); strings.Contains(fmt.Sprint(a), "half price") {
		t.Errorf("the concierge answered from a page robots.txt disallows: %v", a)
	}
	host := fmt.Sprintf("127.0.0.1:%d", s.Port)
	for _, r := range s.up.seen() {
		if !strings.HasPrefix(r.ua, "caddy-ahp-concierge/") {
			continue
		}
		if r.host != host || r.forwardedFor != "192.0.2.1" || r.method != http.MethodGet {
			t.Errorf("concierge request %+v: want GET, Host %s, from 192.0.2.1", r, host)
		}
	}
	_, a := s.converse(`{"capability":"content_search","query":"What is the vault combination?"}`)
	if strings.Contains(fmt.Sprint(a), "7405") || len(a.sources()) != 0 {
		t.Errorf("the concierge answered from a page behind basic_auth: %v", a)
	}
	// The credentialed visitor still gets the page: the site is unchanged.
	if r := s.Get("/private/vault.html", "Authorization", "Basic YWxpY2U6c2VjcmV0"); r.StatusCode != 200 || !strings.Contains(string(r.Bytes), vaultSecret) {
		t.Errorf("alice's page: %d", r.StatusCode)
	}
	_, gz := s.converse(`{"capability":"content_search","query":"Do you sell gift cards?"}`)
	if src := gz.sources(); len(src) == 0 || src[0][0] != "/gz.html" {
		t.Errorf("the gzip-compressed page was not indexed: %v", gz)
	}
	// The concierge's requests leave no trace of the plugin's own
	// budgets: the static window of a real client starts full.
	if r := s.Get("/llms.txt"); r.Header.Get("X-Ratelimit-Remaining") != "9999" {
		t.Errorf("a client's first static request: remaining %q", r.Header.Get("X-Ratelimit-Remaining"))
	}
}

// TestSessionsAndTurnLimits: sessions carry across turns (a clarification
// answered by its number), and the gateway's turn limit still applies to
// built-in answers.
func TestSessionsAndTurnLimits(t *testing.T) {
	s := startSite(t, generousLimits+"\n\t\tsession {\n\t\t\tmax_turns 3\n\t\t}")
	r, first := s.converse(`{"capability":"content_search","query":"hard wax oil"}`)
	checkSchema(t, r.Bytes)
	if first.str("status") != "clarification_needed" {
		t.Fatalf("hard wax oil: %s", r.Bytes)
	}
	sid := first.str("session_id")
	opts := first.obj("clarification").list("options")
	idx := slices.IndexFunc(opts, func(o any) bool { return o == "Caring for an oak table through the winter" })
	if idx < 0 {
		t.Fatalf("options %v", opts)
	}
	r, second := s.converse(fmt.Sprintf(`{"capability":"content_search","query":"hard wax oil","session_id":%q,"clarification":"%d"}`, sid, idx+1))
	checkSchema(t, r.Bytes)
	if second.str("session_id") != sid || len(second.sources()) == 0 || second.sources()[0][0] != "/blog/caring-for-oak.html" {
		t.Fatalf("option %d in the session: %s", idx+1, r.Bytes)
	}
	r, third := s.converse(fmt.Sprintf(`{"capability":"content_search","query":"What humidity should the room have?","session_id":%q}`, sid))
	if r.StatusCode != 200 || len(third.sources()) == 0 {
		t.Fatalf("third turn: %d %s", r.StatusCode, r.Bytes)
	}
	r, fourth := s.converse(fmt.Sprintf(`{"capability":"content_search","query":"And walnut?","session_id":%q}`, sid))
	if r.StatusCode != 400 || fourth.str("code") != "invalid_request" || !strings.Contains(fourth.str("message"), "session") {
		t.Errorf("a fourth turn with max_turns 3: %d %s", r.StatusCode, r.Bytes)
	}
	checkSchema(t, r.Bytes)
}

// TestTokenBudget: the concierge's meta.tokens_used is accounted by the
// gateway, so a session's token budget ends a conversation with the
// built-in concierge as it would one with a proxied concierge.
func TestTokenBudget(t *testing.T) {
	s := startSite(t, `		rate_limit {
			unauthenticated 10000/minute
			token_budget 300/session
		}`)
	r, first := s.converse(`{"capability":"content_search","query":"How do I care for oak?"}`)
	if r.StatusCode != 200 || first.tokens() < 150 || first.tokens() >= 300 {
		t.Fatalf("first answer: %d tokens (want 150-299 for this test) %s", first.tokens(), r.Bytes)
	}
	sid := first.str("session_id")
	r, second := s.converse(fmt.Sprintf(`{"capability":"content_search","query":"How often should I re-oil the table?","session_id":%q}`, sid))
	if r.StatusCode != 200 {
		t.Fatalf("second turn, %d of 300 tokens spent: %d %s", first.tokens(), r.StatusCode, r.Bytes)
	}
	if first.tokens()+second.tokens() < 300 {
		t.Fatalf("the two answers spent %d tokens; the test needs 300", first.tokens()+second.tokens())
	}
	r, third := s.converse(fmt.Sprintf(`{"capability":"content_search","query":"walnut desk","session_id":%q}`, sid))
	if r.StatusCode != 429 || third.str("code") != "rate_limited" || third.str("scope") != "session_tokens" {
		t.Errorf("over the budget (%d tokens spent): %d %s", first.tokens()+second.tokens(), r.StatusCode, r.Bytes)
	}
	checkSchema(t, r.Bytes)
	// Another session starts afresh.
	if r, _ := s.converse(`{"capability":"content_search","query":"walnut desk"}`); r.StatusCode != 200 {
		t.Errorf("a new session: %d %s", r.StatusCode, r.Bytes)
	}
}

// TestMaxTokensCeilingWithoutTheHint: max_tokens is a hard ceiling (spec
// §11.4), also for an agent that sends no context.max_tokens (the built-in
// concierge's own bound, 400, would otherwise apply).
func TestMaxTokensCeilingWithoutTheHint(t *testing.T) {
	answer := func(s *site, body string) string {
		t.Helper()
		r, a := s.converse(body)
		if r.StatusCode != 200 {
			t.Fatalf("%s: %d %s", body, r.StatusCode, r.Bytes)
		}
		return a.obj("response")["answer"].(string)
	}
	const q = `{"capability":"content_search","query":"How do I care for oak?"`
	long := answer(startSite(t, ""), q+`}`)
	s := startSite(t, "\t\tmax_tokens 40")
	hinted := answer(s, q+`,"context":{"max_tokens":40}}`)
	unhinted := answer(s, q+`}`)
	if len(hinted) >= len(long) {
		t.Fatalf("the test needs an answer that 40 tokens cut short: %q", long)
	}
	if unhinted != hinted {
		t.Errorf("no max_tokens under a ceiling of 40: %q, want the 40-token answer %q", unhinted, hinted)
	}
}

// TestMode3GoesToTheSite: MODE3 calls are never answered by the built-in
// concierge: after the gateway's checks they reach the site's own service
// with the verified-scheme credential; MODE2 calls never do.
func TestMode3GoesToTheSite(t *testing.T) {
	s := startSite(t, generousLimits)
	s.converse(`{"capability":"content_search","query":"walnut desk"}`)
	s.converse(`{"capability":"site_info","query":"Where is the showroom?"}`)
	if n := s.book.calls.Load(); n != 0 {
		t.Fatalf("MODE2 calls reached the site's service %d times", n)
	}
	if r, _ := s.converse(`{"capability":"book_demo","query":"Book a demo"}`); r.StatusCode != 401 || s.book.calls.Load() != 0 {
		t.Errorf("book_demo without credentials: %d, service calls %d", r.StatusCode, s.book.calls.Load())
	}
	r, a := s.converse(`{"capability":"book_demo","query":"Book a demo","context":{"user_intent":"see the desk"}}`, "Authorization", "Bearer agent-key-0123456789")
	if r.StatusCode != 200 || s.book.calls.Load() != 1 || a.obj("response").str("answer") != "Booked: HP-DEMO-7" {
		t.Errorf("book_demo: %d %s, service calls %d", r.StatusCode, r.Bytes, s.book.calls.Load())
	}
	if got := *s.book.auth.Load(); got != "Bearer agent-key-0123456789" {
		t.Errorf("the service got Authorization %q", got)
	}
	checkSchema(t, r.Bytes)
}

// TestReloadKeepsTheIndex: `caddy reload` keeps the index and the
// sessions: right after a reload, with the upstream hanging (so no new
// index could be built), the concierge still answers, and a clarification
// asked before the reload is answered by its number after it.
func TestReloadKeepsTheIndex(t *testing.T) {
	s := startSite(t, generousLimits)
	_, cl := s.converse(`{"capability":"content_search","query":"hard wax oil"}`)
	if cl.str("status") != "clarification_needed" {
		t.Fatalf("hard wax oil: %v", cl)
	}
	opts := cl.obj("clarification").list("options")
	idx := slices.IndexFunc(opts, func(o any) bool { return o == "Caring for an oak table through the winter" })
	unblock := s.up.block(t)
	before := len(s.up.seen())
	// Another manifest cache lifetime: the configuration changes, the
	// manifest and the concierge's options do not.
	s.Reload(siteConfig(s.up, s.book, generousLimits+"\n\t\tcache_control \"public, max-age=60\""))
	r, a := s.converse(`{"capability":"content_search","query":"How big is the walnut desk?"}`)
	if r.StatusCode != 200 || len(a.sources()) == 0 || a.sources()[0][0] != "/blog/walnut-desk.html" {
		t.Fatalf("after the reload, with the upstream hanging: %d %s", r.StatusCode, r.Bytes)
	}
	r, chosen := s.converse(fmt.Sprintf(`{"capability":"content_search","query":"hard wax oil","session_id":%q,"clarification":"%d"}`, cl.str("session_id"), idx+1))
	if r.StatusCode != 200 || len(chosen.sources()) == 0 || chosen.sources()[0][0] != "/blog/caring-for-oak.html" {
		t.Errorf("the session's clarification after the reload: %d %s", r.StatusCode, r.Bytes)
	}
	// The new configuration reads the site again in the background.
	deadline := time.Now().Add(10 * time.Second)
	for len(s.up.seen()) == before {
		if time.Now().After(deadline) {
			t.Fatalf("no new read of the site after the reload")
		}
		time.Sleep(20 * time.Millisecond)
	}
	unblock()
	if !strings.Contains(s.Logs.String(), "keeping the index") {
		t.Errorf("the reload did not say it kept the index")
	}
}
