package concierge

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/markdown"
	"github.com/caddy-ahp/caddy-ahp/schema"
)

// successBranch compiles the response schema's success_response
// definition on its own (with the manifest schema its meta refers to).
func successBranch(t *testing.T) *jsonschema.Schema {
	t.Helper()
	const base = "https://agenthandshake.dev/schema/0.1/"
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	for _, n := range []string{schema.ManifestSchema, schema.ResponseSchema} {
		doc, err := schema.Document(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddResource(base+n, doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile(base + schema.ResponseSchema + "#/definitions/success_response")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkSchema validates an answer against the official response schema.
// One disagreement between the schema file and the spec text is known
// (ahp-schema/NOTES.md): a success answer with a string session_id, which
// spec §6.2 shows, matches both the success and the pending branch of the
// schema's oneOf. For such an answer the test checks instead that it is a
// valid success_response and that the whole schema accepts it with
// session_id null, so that nothing else can hide behind the exception.
func checkSchema(t *testing.T, body []byte) {
	t.Helper()
	problems, err := schema.Check(schema.ResponseSchema, body)
	if err != nil {
		t.Fatal(err)
	}
	if problems == nil {
		return
	}
	var d map[string]any
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	sid, isString := d["session_id"].(string)
	if d["status"] != "success" || !isString || sid == "" {
		t.Fatalf("answer does not validate against the response schema: %v\n%s", problems, body)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if p := schema.CheckValue(successBranch(t), inst); p != nil {
		t.Fatalf("success answer is not a valid success_response: %v\n%s", p, body)
	}
	d["session_id"] = nil
	nulled, _ := json.Marshal(d)
	if p, _ := schema.Check(schema.ResponseSchema, nulled); p != nil {
		t.Fatalf("success answer fails the response schema beyond the session_id oneOf ambiguity: %v\n%s", p, body)
	}
}

// TestAnswerKindsValidate runs every kind of answer through the official
// response schema, and checks that Reply's accounting fields say what the
// body says.
func TestAnswerKindsValidate(t *testing.T) {
	c, _ := demoConcierge(t)
	ctx := context.Background()
	cases := []struct {
		name   string
		req    Request
		status int
		kind   string // body status
	}{
		{"text answer", Request{Capability: "content_search", Query: "How do I care for oak?"}, 200, "success"},
		{"site info", Request{Capability: "site_info", Query: "When is the showroom open?"}, 200, "success"},
		{"site info, general", Request{Capability: "site_info", Query: "Tell me about this site"}, 200, "success"},
		{"feed", Request{Capability: "content_search", Query: "walnut", AcceptTypes: []string{"application/feed", "text/answer"}}, 200, "success"},
		{"empty feed", Request{Capability: "content_search", Query: "bamboo", AcceptTypes: []string{"application/feed"}}, 200, "success"},
		{"fallback", Request{Capability: "content_search", Query: "walnut desk", AcceptTypes: []string{"media/video"}}, 200, "success"},
		{"not found", Request{Capability: "content_search", Query: "Do you sell bamboo chairs?"}, 200, "success"},
		{"clarification", Request{Capability: "content_search", Query: "hard wax oil"}, 200, "clarification_needed"},
		{"tiny budget", Request{Capability: "content_search", Query: "How do I care for oak?", MaxTokens: 20}, 200, "success"},
		{"unknown capability", Request{Capability: "nope", Query: "x"}, 400, "error"},
		{"MODE3", Request{Capability: "book_demo", Query: "Book me a demo"}, 500, "error"},
		{"unsupported type", Request{Capability: "site_info", Query: "x", AcceptTypes: []string{"application/feed"}}, 400, "error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := c.Answer(ctx, tc.req)
			if rep.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", rep.Status, tc.status, rep.Body)
			}
			checkSchema(t, rep.Body)
			d := decode(t, rep.Body)
			if d.str("status") != tc.kind {
				t.Fatalf("body status %q, want %q: %s", d.str("status"), tc.kind, rep.Body)
			}
			if tc.kind == "error" {
				if rep.SessionID != "" || rep.TokensUsed != 0 {
					t.Errorf("error reply accounts session %q, %d tokens", rep.SessionID, rep.TokensUsed)
				}
				return
			}
			if d.str("session_id") == "" || d.str("session_id") != rep.SessionID {
				t.Errorf("Reply.SessionID %q, body session_id %v", rep.SessionID, d["session_id"])
			}
			meta := d.obj("meta")
			if tok, _ := meta["tokens_used"].(float64); int(tok) != rep.TokensUsed || rep.TokensUsed <= 0 {
				t.Errorf("Reply.TokensUsed %d, meta.tokens_used %v", rep.TokensUsed, meta["tokens_used"])
			}
			if meta.str("capability_used") != tc.req.Capability || meta.str("mode") != "MODE2" {
				t.Errorf("meta %v", meta)
			}
			sig := meta.obj("content_signals")
			if sig["ai_train"] != false || sig["ai_input"] != true || sig["attribution_required"] != true {
				t.Errorf("meta.content_signals %v, want the manifest's", sig)
			}
		})
	}
}

// TestErrorsSayWhy pins the refusals' codes and lists.
func TestErrorsSayWhy(t *testing.T) {
	c, _ := demoConcierge(t)
	ctx := context.Background()
	d := decode(t, c.Answer(ctx, Request{Capability: "nope", Query: "x"}).Body)
	if d.str("code") != "unknown_capability" || len(d.list("available_capabilities")) != 2 {
		t.Errorf("unknown capability: %v (MODE3 book_demo must not be offered)", d)
	}
	d = decode(t, c.Answer(ctx, Request{Capability: "site_info", Query: "x", AcceptTypes: []string{"application/feed"}}).Body)
	if d.str("code") != "unsupported_type" || len(d.list("available_types")) != 1 || d.list("available_types")[0] != "text/answer" {
		t.Errorf("unsupported type: %v", d)
	}
	if c.Answers("book_demo") || !c.Answers("content_search") || !c.Answers("site_info") || c.Answers("nope") {
		t.Error("Answers must be true exactly for the manifest's MODE1/MODE2 capabilities")
	}
	// A MODE2 capability returning only types this concierge cannot make
	// is left to the site's concierge, as MODE3 ones are.
	m := demoManifest()
	m.Capabilities = append(m.Capabilities,
		manifest.Capability{Name: "get_video", Mode: "MODE2", ResponseTypes: []string{"media/video"}, AcceptFallback: true},
		manifest.Capability{Name: "contact", Mode: "MODE1", ResponseTypes: []string{"application/data"}},
		manifest.Capability{Name: "faq", Mode: "MODE2"},
		manifest.Capability{Name: "clips", Mode: "MODE2", ResponseTypes: []string{"media/video", "text/answer"}})
	c2 := New(c.ix, m, Options{})
	for name, want := range map[string]bool{"get_video": false, "contact": false, "faq": true, "clips": true} {
		if c2.Answers(name) != want {
			t.Errorf("Answers(%q) = %v, want %v", name, !want, want)
		}
	}
	rep := c2.Answer(ctx, Request{Capability: "get_video", Query: "x"})
	if rep.Status != 500 || decode(t, rep.Body).str("code") != "concierge_error" {
		t.Errorf("a capability it does not answer: %d %s", rep.Status, rep.Body)
	}
	// clips: the agent takes only video, there is no fallback: refused,
	// naming what this concierge can send.
	d = decode(t, c2.Answer(ctx, Request{Capability: "clips", Query: "x", AcceptTypes: []string{"media/video"}}).Body)
	if d.str("code") != "unsupported_type" || len(d.list("available_types")) != 1 || d.list("available_types")[0] != "text/answer" {
		t.Errorf("clips: %v", d)
	}
}

func TestNotReadyIsUnavailable(t *testing.T) {
	ix := NewIndex(demoFetch(), IndexOptions{})
	c := New(ix, demoManifest(), Options{})
	rep := c.Answer(context.Background(), Request{Capability: "content_search", Query: "oak"})
	if rep.Status != http.StatusServiceUnavailable || rep.RetryAfter <= 0 {
		t.Fatalf("before the first build: %d retry %d %s", rep.Status, rep.RetryAfter, rep.Body)
	}
	checkSchema(t, rep.Body)
	if decode(t, rep.Body).str("code") != "unavailable" {
		t.Errorf("%s", rep.Body)
	}
}

func TestFeed(t *testing.T) {
	c, _ := demoConcierge(t)
	rep := c.Answer(context.Background(), Request{Capability: "content_search", Query: "walnut desk",
		AcceptTypes: []string{"application/feed", "text/answer"}})
	d := decode(t, rep.Body)
	resp := d.obj("response")
	if resp.str("content_type") != "application/feed" || d.obj("meta").str("content_type") != "application/feed" {
		t.Fatalf("content type: %s", rep.Body)
	}
	payload := resp.obj("payload")
	items := payload.list("items")
	total, _ := payload["total"].(float64)
	if len(items) == 0 || int(total) < len(items) {
		t.Fatalf("items %d total %v", len(items), payload["total"])
	}
	first := items[0].(map[string]any)
	if first["url"] != "/blog/walnut-desk.html" || first["title"] == "" || first["description"] == "" {
		t.Errorf("first item %v", first)
	}
	if !strings.Contains(resp.str("answer"), "The Willamette desk") {
		t.Errorf("answer should summarise the items: %s", resp.str("answer"))
	}
	// text/answer first: the feed is not what the agent prefers.
	rep = c.Answer(context.Background(), Request{Capability: "content_search", Query: "walnut desk",
		AcceptTypes: []string{"text/answer", "application/feed"}})
	if ct := decode(t, rep.Body).obj("response").str("content_type"); ct != "text/answer" {
		t.Errorf("agent preferring text/answer got %s", ct)
	}
}

func TestFallback(t *testing.T) {
	c, _ := demoConcierge(t)
	rep := c.Answer(context.Background(), Request{Capability: "content_search", Query: "walnut desk",
		AcceptTypes: []string{"media/video"}})
	d := decode(t, rep.Body)
	// The agent takes neither declared type; the capability would have
	// served a feed.
	if d.obj("response").str("content_type") != "text/answer" || d.obj("meta").str("fallback_from") != "application/feed" {
		t.Errorf("accept_fallback capability: %s", rep.Body)
	}
}

func TestMaxTokensBoundsTheAnswer(t *testing.T) {
	c, _ := demoConcierge(t)
	full := decode(t, c.Answer(context.Background(), Request{Capability: "content_search", Query: "How do I care for oak?"}).Body)
	short := decode(t, c.Answer(context.Background(), Request{Capability: "content_search", Query: "How do I care for oak?", MaxTokens: 40}).Body)
	fa, sa := full.obj("response").str("answer"), short.obj("response").str("answer")
	if markdown.Tokens(sa) > 40 || len(sa) >= len(fa) || !strings.HasSuffix(sa, "…") {
		t.Errorf("max_tokens 40: %d tokens, %q", markdown.Tokens(sa), sa)
	}
	if short.sources()[0][0] != "/blog/caring-for-oak.html" {
		t.Errorf("a short answer still cites its page: %v", short.sources())
	}
}

// TestTokensUsedIsTheEstimate: tokens_used counts the question and the
// response object, at markdown.Tokens' rate (no LLM runs).
func TestTokensUsedIsTheEstimate(t *testing.T) {
	c, _ := demoConcierge(t)
	q := "How do I care for oak?"
	rep := c.Answer(context.Background(), Request{Capability: "content_search", Query: q})
	var env struct {
		Response json.RawMessage `json:"response"`
	}
	if err := json.Unmarshal(rep.Body, &env); err != nil {
		t.Fatal(err)
	}
	want := markdown.Tokens(q) + markdown.Tokens(env.Response)
	if rep.TokensUsed != want {
		t.Errorf("tokens_used %d, want %d", rep.TokensUsed, want)
	}
}

// TestClarificationRoundTrip: an ambiguous question gets options; the
// option sent back (by label, by number, or as free text) answers from
// that section; the session id stays.
func TestClarificationRoundTrip(t *testing.T) {
	c, _ := demoConcierge(t)
	ctx := context.Background()
	for _, answer := range []string{"Caring for an oak table through the winter", "caring for an oak table through the WINTER ", "2", "oak table"} {
		first := c.Answer(ctx, Request{Capability: "content_search", Query: "hard wax oil"})
		d := decode(t, first.Body)
		if d.str("status") != "clarification_needed" {
			t.Fatalf("want a clarification: %s", first.Body)
		}
		cl := d.obj("clarification")
		opts := cl.list("options")
		if len(opts) != 2 || opts[0] != "About the workshop" || opts[1] != "Caring for an oak table through the winter" || cl["free_form"] != true {
			t.Fatalf("options %v", cl)
		}
		sid := d.str("session_id")
		second := c.Answer(ctx, Request{Capability: "content_search", Query: "hard wax oil", SessionID: sid, Clarification: answer})
		checkSchema(t, second.Body)
		d2 := decode(t, second.Body)
		if d2.str("status") != "success" || d2.str("session_id") != sid || second.SessionID != sid {
			t.Fatalf("clarification %q: %s", answer, second.Body)
		}
		if src := d2.sources(); len(src) == 0 || src[0] != [2]string{"/blog/caring-for-oak.html", "direct"} {
			t.Errorf("clarification %q: sources %v", answer, src)
		}
	}
	// Choosing the other option answers from the other page.
	first := decode(t, c.Answer(ctx, Request{Capability: "content_search", Query: "hard wax oil"}).Body)
	second := decode(t, c.Answer(ctx, Request{Capability: "content_search", Query: "hard wax oil",
		SessionID: first.str("session_id"), Clarification: "About the workshop"}).Body)
	if src := second.sources(); len(src) == 0 || src[0][0] != "/about.html" {
		t.Errorf("chose About: %v", src)
	}
}

// TestClarificationWithoutSession: a clarification in a session this
// concierge does not know (another instance, expired) refines the
// question instead of failing, and is never answered with another
// clarification.
func TestClarificationWithoutSession(t *testing.T) {
	c, _ := demoConcierge(t)
	rep := c.Answer(context.Background(), Request{Capability: "content_search", Query: "hard wax oil",
		SessionID: "from-another-instance", Clarification: "winter table care"})
	d := decode(t, rep.Body)
	if d.str("status") != "success" || d.str("session_id") != "from-another-instance" {
		t.Fatalf("%s", rep.Body)
	}
	if src := d.sources(); len(src) == 0 || src[0][0] != "/blog/caring-for-oak.html" {
		t.Errorf("refined question: %v", src)
	}
}

// TestFollowUpCarriesTheQuestion: a short follow-up in a session is read
// with the previous question ("and the desk?" after a care question).
func TestFollowUpCarriesTheQuestion(t *testing.T) {
	c, _ := demoConcierge(t)
	ctx := context.Background()
	first := decode(t, c.Answer(ctx, Request{Capability: "content_search", Query: "How long is the lead time for custom orders?"}).Body)
	sid := first.str("session_id")
	more := decode(t, c.Answer(ctx, Request{Capability: "content_search", Query: "Tell me more", SessionID: sid}).Body)
	if more.str("status") != "success" || len(more.sources()) == 0 {
		t.Fatalf("a follow-up with no terms of its own reuses the question: %v", more)
	}
	if more.sources()[0] != first.sources()[0] {
		t.Errorf("follow-up %v, first %v", more.sources(), first.sources())
	}
	// Without the session the same words find nothing.
	alone := decode(t, c.Answer(ctx, Request{Capability: "content_search", Query: "Tell me more"}).Body)
	if len(alone.sources()) != 0 {
		t.Errorf("no session: %v", alone.sources())
	}
}

// TestSessionsExpireAndStayBounded uses an injected clock.
func TestSessionsExpireAndStayBounded(t *testing.T) {
	ix := NewIndex(demoFetch(), IndexOptions{ContentPath: "/llms.txt"})
	if err := ix.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := New(ix, demoManifest(), Options{MaxSessions: 50, SessionIdle: time.Minute})
	now := time.Unix(1_700_000_000, 0)
	c.now = func() time.Time { return now }
	ctx := context.Background()
	d := decode(t, c.Answer(ctx, Request{Capability: "content_search", Query: "hard wax oil"}).Body)
	sid := d.str("session_id")
	now = now.Add(50 * time.Second)
	if st, ok := c.sessions.get(sid); !ok || len(st.options) != 2 {
		t.Fatalf("session within its idle time: %v %+v", ok, st)
	}
	now = now.Add(61 * time.Second) // idle past the limit
	if _, ok := c.sessions.get(sid); ok {
		t.Fatal("session kept past its idle time")
	}
	// The options are gone: "2" is read as a word, not as the second
	// option, and gets an answer (not an error, not a clarification).
	rep := decode(t, c.Answer(ctx, Request{Capability: "content_search", Query: "hard wax oil", SessionID: sid, Clarification: "2"}).Body)
	if rep.str("status") != "success" {
		t.Fatalf("expired session: %v", rep)
	}
	for i := 0; i < 500; i++ {
		c.Answer(ctx, Request{Capability: "content_search", Query: "oak"})
		now = now.Add(time.Millisecond)
	}
	if n := c.sessions.len(); n > 50 {
		t.Errorf("%d sessions kept, bound 50", n)
	}
}

func TestReplyWrite(t *testing.T) {
	c, _ := demoConcierge(t)
	rep := c.Answer(context.Background(), Request{Capability: "content_search", Query: "oak"})
	rec := httptest.NewRecorder()
	rec.Header().Set("Link", `</.well-known/agent.json>; rel="ahp-manifest"`)
	if err := rep.Write(rec); err != nil {
		t.Fatal(err)
	}
	h := rec.Header()
	if rec.Code != 200 || h.Get("Content-Type") != "application/json; charset=utf-8" || h.Get("Cache-Control") != "no-store" ||
		h.Get("Content-Length") != strconv.Itoa(len(rep.Body)) || h.Get("Link") == "" || !bytes.Equal(rec.Body.Bytes(), rep.Body) {
		t.Errorf("%d %v", rec.Code, h)
	}
	unavailable := Reply{Status: 503, Body: []byte(`{}`), RetryAfter: 5}
	rec = httptest.NewRecorder()
	unavailable.Write(rec)
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "5" {
		t.Errorf("503: %d %v", rec.Code, rec.Header())
	}
}

// TestCitationsAndFollowUp holds the citation rules on every question of
// the demo table: the first source is the one quoted first (direct), other
// quoted pages are indirect and come next, other good hits are background
// and are not quoted; every source has a title; follow_up's suggested
// queries are few, and each, asked in turn, is answered from the site
// rather than with the honest miss. The table must show background
// sources and suggestions somewhere, so that neither can quietly vanish.
func TestCitationsAndFollowUp(t *testing.T) {
	c, _ := demoConcierge(t)
	ctx := context.Background()
	raw, err := os.ReadFile("testdata/questions.tsv")
	if err != nil {
		t.Fatal(err)
	}
	var backgrounds, indirects, suggestions int
	asked := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, "\t")
		capability, question := f[0], f[1]
		d := decode(t, c.Answer(ctx, Request{Capability: capability, Query: question}).Body)
		resp := d.obj("response")
		answer := resp.str("answer")
		rank := 0 // 0 direct, 1 indirect, 2 background: never decreasing
		for i, s := range resp.list("sources") {
			m := s.(map[string]any)
			url, rel, title := m["url"].(string), m["relevance"].(string), m["title"].(string)
			quoted := strings.Contains(answer, "("+url+"):")
			r := map[string]int{"direct": 0, "indirect": 1, "background": 2}[rel]
			switch {
			case title == "":
				t.Errorf("%q: source %s has no title", question, url)
			case (i == 0) != (rel == "direct"):
				t.Errorf("%q: source %d %s is %s", question, i, url, rel)
			case rel == "background" && quoted, rel != "background" && !quoted:
				t.Errorf("%q: %s source %s, quoted %v:\n%s", question, rel, url, quoted, answer)
			case r < rank:
				t.Errorf("%q: %s source %s after a %d-rank one", question, rel, url, rank)
			}
			rank = r
			switch rel {
			case "indirect":
				indirects++
			case "background":
				backgrounds++
			}
		}
		qs := resp.obj("follow_up").list("suggested_queries")
		if len(qs) > maxFollowUp {
			t.Errorf("%q: %d suggested queries", question, len(qs))
		}
		for _, q := range qs {
			s, _ := q.(string)
			suggestions++
			if s == "" || asked[s] {
				continue
			}
			asked[s] = true
			next := decode(t, c.Answer(ctx, Request{Capability: capability, Query: s}).Body)
			if next.str("status") == "success" && len(next.sources()) == 0 {
				t.Errorf("%q suggested %q, which the site does not answer: %s", question, s, next.obj("response").str("answer"))
			}
		}
	}
	t.Logf("%d background and %d indirect sources, %d suggested queries (%d distinct)", backgrounds, indirects, suggestions, len(asked))
	if backgrounds == 0 || suggestions == 0 {
		t.Errorf("the demo table shows %d background sources and %d suggested queries; both should appear", backgrounds, suggestions)
	}
}
