package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/caddy-ahp/caddy-ahp/conformance"
	"github.com/caddy-ahp/caddy-ahp/conformance/standin"
)

// run checks a stand-in site with every opt-in on, fast.
func run(t *testing.T, site *standin.Site, extra ...func(*conformance.Options)) *conformance.Report {
	t.Helper()
	opts := conformance.Options{URL: site.URL, RateLimit: true, CreateSandbox: true, HPP: true, Rate: 2000, Timeout: 5 * time.Second, Version: "test"}
	for _, f := range extra {
		f(&opts)
	}
	rep, err := conformance.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	validateReport(t, rep)
	return rep
}

var reportSchema = func() *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(conformance.ReportSchema))
	if err != nil {
		panic(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("report.schema.json", doc); err != nil {
		panic(err)
	}
	return c.MustCompile("report.schema.json")
}()

// validateReport checks the JSON form of a report against the documented
// schema.
func validateReport(t *testing.T, rep *conformance.Report) {
	t.Helper()
	var buf bytes.Buffer
	if err := conformance.WriteJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := reportSchema.Validate(inst); err != nil {
		t.Fatalf("the JSON report does not match report.schema.json: %v", err)
	}
}

// failed lists the ids of the failed checks, once each (a check run per
// capability may fail for several).
func failed(rep *conformance.Report) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range rep.Results {
		if r.Status == conformance.Fail && !seen[r.ID] {
			seen[r.ID] = true
			out = append(out, r.ID)
		}
	}
	sort.Strings(out)
	return out
}

func dump(rep *conformance.Report) string {
	var b strings.Builder
	conformance.WriteText(&b, rep, false)
	return b.String()
}

// TestConformingSite: the stand-in passes every check, none skipped, with
// every opt-in on.
func TestConformingSite(t *testing.T) {
	rep := run(t, standin.New(t))
	for _, r := range rep.Results {
		if r.Status != conformance.Pass {
			t.Errorf("%s [%s] %s: %s", r.ID, r.Subject, r.Status, r.Saw)
		}
	}
	if !rep.OK || rep.Summary.Failed != 0 || rep.Summary.Skipped != 0 {
		t.Errorf("summary %+v ok=%v", rep.Summary, rep.OK)
	}
	// Every check of the catalogue ran.
	seen := map[string]bool{}
	for _, r := range rep.Results {
		seen[r.ID] = true
	}
	for _, c := range conformance.Catalogue {
		if !seen[c.ID] {
			t.Errorf("check %s has no result", c.ID)
		}
	}
	if t.Failed() {
		t.Log(dump(rep))
	}
}

// TestBrokenSites: each break is reported by its own check(s), at the
// check's level, and the report fails exactly when a MUST failed.
func TestBrokenSites(t *testing.T) {
	cases := []struct {
		brk  standin.Break
		fail []string
	}{
		{standin.NoLink, []string{"discovery.link_head", "discovery.link_home", "discovery.link_manifest", "discovery.link_not_found"}},
		{standin.NoLinkOn404, []string{"discovery.link_not_found"}},
		{standin.NoLinkOnHead, []string{"discovery.link_head"}},
		{standin.ManifestMissing, []string{"discovery.manifest_status"}},
		{standin.ManifestType, []string{"discovery.manifest_content_type"}},
		{standin.ManifestSchema, []string{"discovery.manifest_schema"}},
		{standin.ManifestRules, []string{"discovery.manifest_rules"}},
		{standin.NoNotice, []string{"discovery.notice_not_found", "discovery.notice_present"}},
		{standin.NoticeVisible, []string{"discovery.notice_hidden"}},
		{standin.NoticeTwice, []string{"discovery.notice_once"}},
		{standin.NoticeOutsideBody, []string{"discovery.notice_in_body"}},
		{standin.NoNegotiation, []string{"discovery.accept_negotiation"}},
		{standin.NegotiateWildcard, []string{"discovery.accept_wildcard"}},
		{standin.NegotiateQ0, []string{"discovery.accept_q0"}},
		{standin.NoVary, []string{"discovery.vary_accept"}},
		{standin.RedirectPOST, []string{"converse.accept_agent_json"}},
		{standin.HTML413, []string{"converse.error_schema", "converse.too_large_body"}},
		{standin.NoBodyCap, []string{"converse.body_cap"}},
		{standin.NoAuth, []string{"converse.auth_required"}},
		{standin.NoWWWAuthenticate, []string{"converse.www_authenticate"}},
		{standin.UnknownCapCode, []string{"converse.unknown_capability"}},
		{standin.NoAvailableCaps, []string{"converse.available_capabilities"}},
		{standin.MissingFieldCode, []string{"converse.missing_field"}},
		{standin.BadAnswer, []string{"converse.query"}},
		{standin.NoSignals, []string{"converse.signals_echo"}},
		{standin.NoRateHeaders, []string{"ratelimit.active", "ratelimit.headers"}},
		{standin.RateResetDelta, []string{"ratelimit.exceeded", "ratelimit.headers"}},
		{standin.RateNoWindow429, []string{"ratelimit.exceeded"}},
		{standin.NoRetryAfter, []string{"ratelimit.exceeded"}},
		{standin.NoRateLimit, []string{"ratelimit.exceeded"}},
		{standin.UndeclaredLimits, []string{"ratelimit.declared"}},
		{standin.WrongDeclared, []string{"ratelimit.matches_manifest"}},
		{standin.MCPMissingTool, []string{"mcp.tools"}},
		{standin.MCPToolSchema, []string{"mcp.tools"}},
		{standin.MCPNoMode2, []string{"mcp.tools_mode2"}},
		{standin.MCPSSE, nil},
		{standin.OpenAPI30, []string{"openapi.document"}},
		{standin.OpenAPIMissing, []string{"openapi.paths"}},
		{standin.OpenAPINoSecurity, []string{"openapi.security"}},
		{standin.OpenAPINoPolling, []string{"openapi.async_polling"}},
		{standin.HandoffDocument, []string{"handoff.document"}},
		{standin.HandoffChallenge, []string{"handoff.challenge"}},
		{standin.HandoffUnsolved, []string{"handoff.unsolved"}},
		{standin.HandoffReplay, []string{"handoff.replay"}},
		{standin.HandoffUnknown, []string{"handoff.unknown_challenge"}},
		{standin.HandoffOracle, []string{"handoff.uniform_errors"}},
		{standin.NoHandoff, nil},
		{standin.HPPNoToken, []string{"hpp.token_required"}},
		{standin.HPPOverwrite, []string{"hpp.user_field_protected"}},
		{standin.HPPUnknown200, []string{"hpp.unknown_session"}},
		{standin.ContentMissing, []string{"content.reachable"}},
		{standin.ContentHTML, []string{"content.type"}},
		{standin.NoContent, []string{"content.declared"}},
		{standin.ResponseTypeOdd, []string{"discovery.response_types"}},
		{standin.NoticeEmpty, []string{"discovery.notice_text"}},
		{standin.MCPInitNoTools, []string{"mcp.initialize"}},
		{standin.MCPNoResources, []string{"mcp.resources"}},
		{standin.HandoffAdmitShape, []string{"handoff.admission"}},
		{standin.HPPSessionShape, []string{"hpp.session"}},
		{standin.HPPContextBy, []string{"hpp.context"}},
	}
	// Every check is shown to fail when its rule is broken.
	broken := map[string]bool{}
	for _, tc := range cases {
		for _, id := range tc.fail {
			broken[id] = true
		}
	}
	for _, c := range conformance.Catalogue {
		if !broken[c.ID] {
			t.Errorf("no stand-in break makes %s fail: add one to package standin and to this table", c.ID)
		}
	}
	for _, tc := range cases {
		t.Run(string(tc.brk), func(t *testing.T) {
			t.Parallel()
			rep := run(t, standin.New(t, tc.brk))
			got := failed(rep)
			want := append([]string(nil), tc.fail...)
			sort.Strings(want)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("failed checks %v, want %v\n%s", got, want, dump(rep))
			}
			wantOK := true
			for _, id := range want {
				c, _ := conformance.Lookup(id)
				if c.Level == conformance.Must {
					wantOK = false
				}
			}
			if rep.OK != wantOK {
				t.Errorf("ok = %v, want %v", rep.OK, wantOK)
			}
			for _, r := range rep.Results {
				c, _ := conformance.Lookup(r.ID)
				if r.Level != c.Level || r.Spec != c.Spec || r.Group != c.Group {
					t.Errorf("%s: level/spec/group %s/%s/%s differ from the catalogue", r.ID, r.Level, r.Spec, r.Group)
				}
				if r.Status == conformance.Fail && (r.Fix == "" || r.Saw == "") {
					t.Errorf("%s failed without saw or fix: %+v", r.ID, r)
				}
			}
		})
	}
}

// TestManifestMissingSkipsDependents: without a manifest, the checks that
// need it are skipped, not failed, and say why; they are unchecked (see
// TestOnlyWithoutManifestNotPass).
func TestManifestMissingSkipsDependents(t *testing.T) {
	rep := run(t, standin.New(t, standin.ManifestMissing))
	for _, r := range rep.Results {
		if r.Group == "converse" || r.Group == "mcp" || r.Group == "openapi" || r.Group == "content" {
			if r.Status != conformance.Skip || r.Saw != "no manifest (discovery.manifest_status: 404 Not Found)" || !r.Unchecked {
				t.Errorf("%s: %s %q unchecked %v, want an unchecked skip (no manifest)", r.ID, r.Status, r.Saw, r.Unchecked)
			}
		}
	}
}

// TestNoHandoffSkips: a site without /.well-known/agent-access skips the
// Agent Handoff checks and says so.
func TestNoHandoffSkips(t *testing.T) {
	rep := run(t, standin.New(t, standin.NoHandoff), func(o *conformance.Options) { o.Only = []string{"handoff"} })
	if len(rep.Results) != 7 {
		t.Fatalf("%d results, want the 7 handoff checks", len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.Status != conformance.Skip || !strings.Contains(r.Saw, "does not offer Agent Handoff") {
			t.Errorf("%s: %s %q", r.ID, r.Status, r.Saw)
		}
	}
}

// TestOptInsOff: without the opt-ins nothing that changes state is sent.
func TestOptInsOff(t *testing.T) {
	site := standin.New(t)
	rep := run(t, site, func(o *conformance.Options) { o.RateLimit, o.CreateSandbox, o.HPP = false, false, false })
	if n := site.Requests("POST /v1/sandboxes") + site.Requests("POST /handshake/session"); n != 0 {
		t.Errorf("%d state-changing requests without opt-in", n)
	}
	for _, r := range rep.Results {
		c, _ := conformance.Lookup(r.ID)
		if c.OptIn != "" && (r.Status != conformance.Skip || !strings.Contains(r.Saw, "opt-in")) {
			t.Errorf("%s: %s %q without its opt-in %s", r.ID, r.Status, r.Saw, c.OptIn)
		}
	}
	if !rep.OK {
		t.Errorf("not ok:\n%s", dump(rep))
	}
	// The converse endpoint was not driven to its limit.
	if n := site.Requests("POST /agent/converse"); n > 10 {
		t.Errorf("%d converse requests without --rate-limit", n)
	}
}

// TestOnlyAndSkip select groups, aliases and checks.
func TestOnlyAndSkip(t *testing.T) {
	site := standin.New(t)
	rep := run(t, site, func(o *conformance.Options) { o.Only = []string{"integrations", "converse.query"} })
	groups := map[string]bool{}
	for _, r := range rep.Results {
		groups[r.Group] = true
		if r.Group == "converse" && r.ID != "converse.query" {
			t.Errorf("%s reported with --only converse.query", r.ID)
		}
	}
	if !groups["mcp"] || !groups["openapi"] || !groups["converse"] || len(groups) != 3 {
		t.Errorf("groups %v", groups)
	}
	if site.Requests("GET /.well-known/agent-access") != 0 {
		t.Error("handoff ran though not selected")
	}
	rep = run(t, site, func(o *conformance.Options) { o.Skip = []string{"discovery", "hpp.session"} })
	for _, r := range rep.Results {
		if r.Group == "discovery" || r.ID == "hpp.session" {
			t.Errorf("%s reported with --skip", r.ID)
		}
	}
	for _, bad := range [][]string{{"nope"}, {"converse.nope"}} {
		_, err := conformance.Run(context.Background(), conformance.Options{URL: site.URL, Only: bad})
		if err == nil || !strings.Contains(err.Error(), "unknown group or check") {
			t.Errorf("--only %v: %v", bad, err)
		}
	}
}

func TestBadOptions(t *testing.T) {
	for _, u := range []string{"", "ftp://example.com", "http://", "https://user:pw@example.com", "http://[::1", ":443", "https://:443/"} {
		_, err := conformance.Run(context.Background(), conformance.Options{URL: u})
		if err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}

// TestBudget: the run stops sending at the budget and skips what it
// could not check, saying why.
func TestBudget(t *testing.T) {
	site := standin.New(t)
	rep := run(t, site, func(o *conformance.Options) { o.Budget = 6 })
	if rep.Requests > 6 {
		t.Errorf("%d requests with a budget of 6", rep.Requests)
	}
	found := false
	for _, r := range rep.Results {
		if strings.Contains(r.Saw, "budget") {
			found = true
		}
	}
	if !found {
		t.Errorf("nothing says the budget ran out:\n%s", dump(rep))
	}
}

// TestTextReport: the table names each check, the fix of failures and the
// verdict; without colour it holds no escape sequences, even when the site
// sends some.
func TestTextReport(t *testing.T) {
	rep := run(t, standin.New(t, standin.HTML413))
	var plain, color bytes.Buffer
	conformance.WriteText(&plain, rep, false)
	conformance.WriteText(&color, rep, true)
	p := plain.String()
	for _, want := range []string{"FAIL  MUST    converse.too_large_body", "fix: send {\"status\":\"error\",\"code\":\"request_too_large\"", "FAIL: 2 MUST check(s) failed", "PASS  MUST    discovery.manifest_status"} {
		if !strings.Contains(p, want) {
			t.Errorf("text report lacks %q:\n%s", want, p)
		}
	}
	if strings.Contains(p, "\x1b") {
		t.Error("escape sequences in the plain report")
	}
	if !strings.Contains(color.String(), "\x1b[31mFAIL\x1b[0m") {
		t.Error("no red FAIL in the coloured report")
	}
	rep.Results[0].Saw = "evil \x1b[2J body\nsecond line"
	plain.Reset()
	conformance.WriteText(&plain, rep, false)
	if strings.Contains(plain.String(), "\x1b[2J") || strings.Contains(plain.String(), "body\nsecond") {
		t.Error("a site's bytes reached the terminal unfiltered")
	}
}

// TestReportJSONStable: the JSON field names are the documented ones.
func TestReportJSONStable(t *testing.T) {
	rep := run(t, standin.New(t, standin.NoNotice), func(o *conformance.Options) { o.Only = []string{"discovery"} })
	var buf bytes.Buffer
	conformance.WriteJSON(&buf, rep)
	var v map[string]any
	if err := json.Unmarshal(buf.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if v["format"] != "caddy-ahp-check/1" || v["ok"] != true {
		t.Errorf("format/ok: %v %v", v["format"], v["ok"])
	}
	res := v["results"].([]any)
	var notice map[string]any
	for _, r := range res {
		if r.(map[string]any)["id"] == "discovery.notice_present" {
			notice = r.(map[string]any)
		}
	}
	if notice["status"] != "fail" || notice["level"] != "SHOULD" || notice["fix"] == nil || !strings.HasPrefix(notice["request"].(string), "GET http://") {
		t.Errorf("notice result %v", notice)
	}
}

// TestCatalogue: ids are unique, grouped as their prefix says, and listed.
func TestCatalogue(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range conformance.Catalogue {
		if seen[c.ID] {
			t.Errorf("duplicate %s", c.ID)
		}
		seen[c.ID] = true
		if !strings.HasPrefix(c.ID, c.Group+".") || c.Title == "" || c.Spec == "" || (c.Level != conformance.Must && c.Level != conformance.Should) {
			t.Errorf("bad entry %+v", c)
		}
	}
	var b bytes.Buffer
	conformance.WriteCatalogue(&b)
	for _, c := range conformance.Catalogue {
		if !strings.Contains(b.String(), c.ID) {
			t.Errorf("--list lacks %s", c.ID)
		}
	}
}

// TestDocsListEveryCheck: docs/conformance.md's table names every check,
// and no check that does not exist.
func TestDocsListEveryCheck(t *testing.T) {
	doc, err := os.ReadFile("../docs/conformance.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conformance.Catalogue {
		row := "| `" + c.ID + "` | " + string(c.Level) + " |"
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/conformance.md has no row %q", row)
		}
	}
	for _, m := range regexp.MustCompile("\\| `([a-z]+\\.[a-z0-9_]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		if _, ok := conformance.Lookup(m[1]); !ok {
			t.Errorf("docs/conformance.md lists %s, which is not a check", m[1])
		}
	}
}

// hostileSite serves manifest at /.well-known/agent.json and 404 for
// everything else.
func hostileSite(t *testing.T, manifest any) string {
	t.Helper()
	body, err := json.Marshal(manifest)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/.well-known/agent.json" {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestTextReportCapabilityNames: a capability name comes from the site's
// manifest; in the text report it can neither drive the terminal nor forge
// a line.
func TestTextReportCapabilityNames(t *testing.T) {
	evil := "x\x1b]0;owned\x07\x1b[2J\x1b[31mPASS\x1b[0m\nPASS  MUST    discovery.fake"
	url := hostileSite(t, map[string]any{"ahp": "0.1", "name": "x", "modes": []any{"MODE2"}, "content_signals": map[string]any{},
		"capabilities": []any{map[string]any{"name": evil, "description": "d", "mode": "MODE2", "auth_required": true}}})
	rep, err := conformance.Run(context.Background(), conformance.Options{URL: url, Rate: 1000, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	subjects := 0
	for _, r := range rep.Results {
		if r.Subject != "" {
			subjects++
		}
	}
	if subjects == 0 {
		// The checks run per capability send nothing to a name that is no
		// capability name (so none is a subject today); the label must
		// still be safe for a check that would name one.
		rep.Results = append(rep.Results, conformance.Result{ID: "converse.auth_required", Group: "converse", Level: conformance.Must,
			Spec: "AHP 0.1 §5.3", Title: "t", Subject: evil, Status: conformance.Skip, Saw: "s"})
	}
	var b bytes.Buffer
	conformance.WriteText(&b, rep, false)
	out := b.String()
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("escape sequences from the manifest reached the report:\n%q", out)
	}
	if strings.Contains(out, "\nPASS  MUST    discovery.fake") {
		t.Errorf("the manifest forged a report line:\n%s", out)
	}
}

// TestTextReportBounded: a manifest with a huge capability name and
// hundreds of capabilities makes a report of about its own size, not
// hundreds of times it (every line padded to the longest label).
func TestTextReportBounded(t *testing.T) {
	caps := []any{map[string]any{"name": strings.Repeat("a", 100_000), "description": "d", "mode": "MODE2", "auth_required": true}}
	for i := 0; i < 500; i++ {
		caps = append(caps, map[string]any{"name": fmt.Sprintf("c%d", i), "description": "d", "mode": "MODE2", "auth_required": true})
	}
	manifest := map[string]any{"ahp": "0.1", "name": "x", "modes": []any{"MODE2"}, "content_signals": map[string]any{}, "capabilities": caps}
	mb, _ := json.Marshal(manifest)
	url := hostileSite(t, manifest)
	rep, err := conformance.Run(context.Background(), conformance.Options{URL: url, Rate: 1000, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var text, js bytes.Buffer
	conformance.WriteText(&text, rep, false)
	conformance.WriteJSON(&js, rep)
	if text.Len() > 64<<10 || js.Len() > 64<<10 {
		t.Errorf("a %d-byte manifest made a %d-byte text report and a %d-byte JSON report", len(mb), text.Len(), js.Len())
	}
	for _, line := range strings.Split(text.String(), "\n") {
		if len(line) > 8<<10 {
			t.Errorf("a %d-byte line: %.200s…", len(line), line)
		}
	}
	queries := 0
	for _, r := range rep.Results {
		if r.ID == "converse.query" {
			queries++
		}
	}
	if queries > 40 {
		t.Errorf("%d converse.query results for 501 capabilities", queries)
	}
}

// TestBudgetExhaustionSkips: on a conforming site, whatever the budget,
// no check fails: the checks whose requests the budget did not cover are
// skipped, saying so ("skipped, never silently passed", and never failed).
func TestBudgetExhaustionSkips(t *testing.T) {
	full := run(t, standin.New(t)).Requests
	for b := 1; b <= full; b++ {
		rep := run(t, standin.New(t), func(o *conformance.Options) { o.Budget = b })
		budgetSkips := 0
		for _, r := range rep.Results {
			if r.Status == conformance.Fail {
				t.Errorf("budget %d: %s [%s] fails: %s", b, r.ID, r.Subject, r.Saw)
			}
			if r.Status == conformance.Skip && strings.Contains(r.Saw, "budget") {
				budgetSkips++
				if !r.Unchecked && strings.HasPrefix(r.Saw, "not sent") {
					t.Errorf("budget %d: %s skipped for the budget but not marked unchecked", b, r.ID)
				}
			}
		}
		// A MUST the budget did not cover is unchecked: inconclusive,
		// never a pass (and never a failure).
		want := conformance.VerdictPass
		if rep.Summary.UncheckedMust > 0 {
			want = conformance.VerdictInconclusive
		}
		if rep.Verdict != want || rep.OK != (want == conformance.VerdictPass) {
			t.Errorf("budget %d: verdict %q ok %v with %d unchecked MUSTs", b, rep.Verdict, rep.OK, rep.Summary.UncheckedMust)
		}
		if b < full && rep.Summary.UncheckedMust == 0 {
			t.Errorf("budget %d of %d: no MUST left unchecked:\n%s", b, full, dump(rep))
		}
		if b < full && budgetSkips == 0 {
			t.Errorf("budget %d of %d: no skip says the budget ran out:\n%s", b, full, dump(rep))
		}
	}
}

// TestRateLimitedSiteSkips: a second run within the window of a run that
// drove the site to its limit meets 429s, which are AHP §11 working: the
// checks they stop are skipped, saying when to retry, and the checker
// stops sending converse probes after the first 429.
func TestRateLimitedSiteSkips(t *testing.T) {
	site := standin.New(t)
	if first := run(t, site); !first.OK {
		t.Fatalf("the first run fails:\n%s", dump(first))
	}
	before := site.Requests("POST /agent/converse")
	second := run(t, site, func(o *conformance.Options) { o.RateLimit = false })
	for _, r := range second.Results {
		if r.Status == conformance.Fail {
			t.Errorf("%s [%s] fails: %s", r.ID, r.Subject, r.Saw)
		}
	}
	// Skipped MUSTs are no pass: the verdict says the run proved nothing.
	if second.OK || second.Verdict != conformance.VerdictInconclusive || second.Summary.UncheckedMust == 0 {
		t.Errorf("second run: ok %v, verdict %q, unchecked_must %d; want inconclusive", second.OK, second.Verdict, second.Summary.UncheckedMust)
	}
	if txt := dump(second); !strings.Contains(txt, "INCONCLUSIVE: ") {
		t.Errorf("the text report does not say INCONCLUSIVE:\n%s", txt)
	}
	if n := site.Requests("POST /agent/converse") - before; n != 1 {
		t.Errorf("%d converse requests after the site answered 429, want 1", n)
	}
	for _, id := range []string{"converse.unknown_capability", "converse.missing_field", "converse.query", "converse.auth_required"} {
		found := false
		for _, r := range second.Results {
			if r.ID == id {
				found = true
				if r.Status != conformance.Skip || !r.Unchecked || !regexp.MustCompile(`rate limited .*retry after \d+ s`).MatchString(r.Saw) {
					t.Errorf("%s: %s %q, want a skip saying when to retry", id, r.Status, r.Saw)
				}
			}
		}
		if !found {
			t.Errorf("no %s result", id)
		}
	}
}

// TestAlways429: a site that answers 429 to everything is no AHP site:
// the manifest's 429 fails its MUST (never skipped), and no check passes
// on a 429.
func TestAlways429(t *testing.T) {
	rep := run(t, standin.New(t, standin.Always429), func(o *conformance.Options) { o.RateLimit = false })
	if rep.OK || rep.Verdict != conformance.VerdictFail {
		t.Errorf("ok %v, verdict %q; want fail\n%s", rep.OK, rep.Verdict, dump(rep))
	}
	for _, r := range rep.Results {
		switch {
		case r.ID == "discovery.manifest_status":
			if r.Status != conformance.Fail || !strings.Contains(r.Saw, "429") {
				t.Errorf("manifest_status: %s %q, want a failure naming the 429", r.Status, r.Saw)
			}
		case r.Group == conformance.GroupRateLimit:
		case r.Status == conformance.Pass:
			t.Errorf("%s passed on a 429: %s", r.ID, r.Saw)
		}
	}
}

// miniSite serves a manifest and whatever else the handlers give, for
// tests of one rule; the home page has a notice naming the manifest.
func miniSite(t *testing.T, manifest string, more map[string]http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := more[r.URL.Path]; ok {
			h(w, r)
			return
		}
		switch r.URL.Path {
		case "/.well-known/agent.json":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, manifest)
		case "/":
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, `<html><body><p>Hi</p><section class="ahp-notice" hidden>GET /.well-known/agent.json</section></body></html>`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func result(rep *conformance.Report, id string) (conformance.Result, bool) {
	for _, r := range rep.Results {
		if r.ID == id {
			return r, true
		}
	}
	return conformance.Result{}, false
}

// TestContentDocuments: §5.1 allows "a static JSON knowledge document"
// besides llms.txt and markdown; a manifest without endpoints.content
// gets a WARN (SHOULD).
func TestContentDocuments(t *testing.T) {
	const withContent = `{"ahp":"0.1","name":"x","modes":["MODE1"],"content_signals":{},"endpoints":{"content":"/knowledge.json"}}`
	for ct, want := range map[string]conformance.Status{
		"application/json":             conformance.Pass,
		"application/ld+json":          conformance.Pass,
		"text/markdown; charset=utf-8": conformance.Pass,
		"text/html; charset=utf-8":     conformance.Fail,
	} {
		url := miniSite(t, withContent, map[string]http.HandlerFunc{"/knowledge.json": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", ct)
			io.WriteString(w, `{"about":"x"}`)
		}})
		rep, err := conformance.Run(context.Background(), conformance.Options{URL: url, Rate: 2000, Only: []string{"content"}})
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := result(rep, "content.type"); r.Status != want {
			t.Errorf("%s: content.type %s (%s), want %s", ct, r.Status, r.Saw, want)
		}
		if r, _ := result(rep, "content.declared"); r.Status != conformance.Pass {
			t.Errorf("content.declared %s: %s", r.Status, r.Saw)
		}
	}
	url := miniSite(t, `{"ahp":"0.1","name":"x","modes":["MODE1"],"content_signals":{}}`, nil)
	rep, err := conformance.Run(context.Background(), conformance.Options{URL: url, Rate: 2000, Only: []string{"content"}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := result(rep, "content.declared"); r.Status != conformance.Fail || r.Level != conformance.Should || !strings.Contains(r.Fix, "endpoints") {
		t.Errorf("no endpoints.content: %+v", r)
	}
	if !rep.OK {
		t.Errorf("a SHOULD failed the run:\n%s", dump(rep))
	}
}

// TestNoticeWithoutText: an empty notice, or one that does not say where
// the manifest is, tells an agent reading the page nothing (SHOULD).
func TestNoticeWithoutText(t *testing.T) {
	const m = `{"ahp":"0.1","name":"x","modes":["MODE1"],"content_signals":{}}`
	for page, want := range map[string]conformance.Status{
		`<html><body><section class="ahp-notice" style="display:none"></section></body></html>`:                                    conformance.Fail,
		`<html><body><section class="ahp-notice" style="display:none">This site supports AI agents.</section></body></html>`:       conformance.Fail,
		`<html><body><section class="ahp-notice" style="display:none">Agents: GET /.well-known/agent.json</section></body></html>`: conformance.Pass,
	} {
		url := miniSite(t, m, map[string]http.HandlerFunc{"/": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, page)
		}})
		rep, err := conformance.Run(context.Background(), conformance.Options{URL: url, Rate: 2000, Only: []string{"discovery.notice_text"}})
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := result(rep, "discovery.notice_text"); r.Status != want || r.Level != conformance.Should {
			t.Errorf("%s: %s %s (%s), want %s", page, r.Level, r.Status, r.Saw, want)
		}
	}
}

// TestManifestOverCap: a manifest longer than the checker reads is not
// reported as broken JSON: the checker says it stopped reading, and the
// checks it could not judge leave the run inconclusive.
func TestManifestOverCap(t *testing.T) {
	big := `{"ahp":"0.1","name":"x","modes":["MODE1"],"content_signals":{},"description":"` + strings.Repeat("x", 5<<20) + `"}`
	rep, err := conformance.Run(context.Background(), conformance.Options{URL: miniSite(t, big, nil), Rate: 2000, Only: []string{"discovery"}, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := result(rep, "discovery.manifest_schema")
	if r.Status != conformance.Skip || !r.Unchecked || !strings.Contains(r.Saw, "larger than the checker reads (4 MiB)") {
		t.Errorf("manifest_schema: %+v", r)
	}
	if rep.Verdict != conformance.VerdictInconclusive {
		t.Errorf("verdict %q\n%s", rep.Verdict, dump(rep))
	}
}

// TestResponseTypesAndVersion: an x- type passes, an unregistered one is
// a WARN naming the capability; an ahp version the checker does not know
// is a note, not a failure.
func TestResponseTypesAndVersion(t *testing.T) {
	const m = `{"ahp":"%s","name":"x","modes":["MODE1","MODE2"],"content_signals":{"ai_train":false,"ai_input":true,"search":true},"capabilities":[{"name":"a","description":"d","mode":"MODE2","response_types":[%s]}]}`
	for _, tc := range []struct {
		ahp, types string
		want       conformance.Status
		note       bool
	}{
		{"0.1", `"text/answer","x-shop/cart"`, conformance.Pass, false},
		{"0.1", `"text/answer","application/pdf"`, conformance.Fail, false},
		{"0.2", `"media/video"`, conformance.Pass, true},
	} {
		url := miniSite(t, fmt.Sprintf(m, tc.ahp, tc.types), nil)
		rep, err := conformance.Run(context.Background(), conformance.Options{URL: url, Rate: 2000, Only: []string{"discovery.manifest_schema", "discovery.response_types"}})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := result(rep, "discovery.response_types")
		if r.Status != tc.want || r.Level != conformance.Should {
			t.Errorf("%s: %s %s (%s), want %s", tc.types, r.Level, r.Status, r.Saw, tc.want)
		}
		if tc.want == conformance.Fail && (!strings.Contains(r.Saw, "a: application/pdf") || !strings.Contains(r.Fix, "x-vendor/type")) {
			t.Errorf("saw %q fix %q", r.Saw, r.Fix)
		}
		noted := strings.Contains(strings.Join(rep.Notes, "\n"), `ahp "0.2", a version this checker does not know`)
		if noted != tc.note {
			t.Errorf("ahp %s: notes %q", tc.ahp, rep.Notes)
		}
		if !rep.OK {
			t.Errorf("the run failed:\n%s", dump(rep))
		}
	}
}

// TestAnswerOverCap: any answer longer than the checker reads, not only
// the manifest, is reported as cut and left unchecked, not failed as "not
// JSON"; a check judged on headers alone still fails on it.
func TestAnswerOverCap(t *testing.T) {
	const m = `{"ahp":"0.1","name":"x","modes":["MODE1"],"content_signals":{"ai_train":false,"ai_input":true,"search":true},"endpoints":{"content":"/llms.txt"}}`
	big := `{"ahp_version":"1.0","sandbox":{"enabled":false},"padding":"` + strings.Repeat("x", 5<<20) + `"}`
	url := miniSite(t, m, map[string]http.HandlerFunc{
		"/.well-known/agent-access": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, big)
		},
		"/llms.txt": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, big)
		},
	})
	rep, err := conformance.Run(context.Background(), conformance.Options{URL: url, Rate: 2000, Only: []string{"handoff", "content"}, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := result(rep, "handoff.document")
	if r.Status != conformance.Skip || !r.Unchecked || !strings.Contains(r.Saw, "larger than the checker reads (4 MiB) and was cut") {
		t.Errorf("handoff.document: %+v", r)
	}
	if r, _ := result(rep, "content.type"); r.Status != conformance.Fail {
		t.Errorf("content.type, judged on the Content-Type alone: %+v", r)
	}
	if rep.Verdict != conformance.VerdictInconclusive {
		t.Errorf("verdict %q\n%s", rep.Verdict, dump(rep))
	}
}

// TestTLSOptions: a site with a private CA fails the TLS handshake by
// default, passes with its CA given (CACerts), and with Insecure passes
// with the report saying, in JSON and in a warning line, that nothing was
// verified. A CA file that holds no certificate is an options error.
func TestTLSOptions(t *testing.T) {
	const m = `{"ahp":"0.1","name":"x","modes":["MODE1"],"content_signals":{"ai_train":false,"ai_input":true,"search":true}}`
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, m)
	}))
	t.Cleanup(srv.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	check := func(opts conformance.Options) (*conformance.Report, error) {
		opts.URL, opts.Rate, opts.Only = srv.URL, 2000, []string{"discovery.manifest_status"}
		return conformance.Run(context.Background(), opts)
	}
	rep, err := check(conformance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := result(rep, "discovery.manifest_status"); r.Status != conformance.Fail || !strings.Contains(r.Saw, "certificate") {
		t.Errorf("no CA: %+v", r)
	}
	rep, err = check(conformance.Options{CACerts: append([]byte("subject=test CA\n"), caPEM...)})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := result(rep, "discovery.manifest_status"); r.Status != conformance.Pass || rep.Insecure {
		t.Errorf("with the CA: %+v insecure=%v", r, rep.Insecure)
	}
	if strings.Contains(dump(rep), "WARNING") {
		t.Errorf("a verified run warns:\n%s", dump(rep))
	}
	rep, err = check(conformance.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	validateReport(t, rep)
	if r, _ := result(rep, "discovery.manifest_status"); r.Status != conformance.Pass || !rep.Insecure {
		t.Errorf("insecure: %+v insecure=%v", r, rep.Insecure)
	}
	if lines := strings.Split(dump(rep), "\n"); len(lines) < 2 || lines[1] != conformance.InsecureWarning {
		t.Errorf("no warning under the title:\n%s", dump(rep))
	}
	var js bytes.Buffer
	conformance.WriteJSON(&js, rep)
	if !strings.Contains(js.String(), `"insecure": true`) {
		t.Errorf("JSON without insecure: %s", js.String())
	}
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("x")})
	for name, opts := range map[string]conformance.Options{
		"no PEM":     {CACerts: []byte("not a certificate")},
		"a key":      {CACerts: key},
		"bad DER":    {CACerts: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")})},
		"both flags": {CACerts: caPEM, Insecure: true},
	} {
		if _, err := check(opts); !errors.Is(err, conformance.ErrOptions) || !strings.Contains(err.Error(), "--") {
			t.Errorf("%s: %v, want an options error naming the flag", name, err)
		}
	}
}

// TestUnreachableStops: after the manifest's request fails without an
// answer (here: refused), the checker sends nothing more and reports the
// cause once, not once per check.
func TestUnreachableStops(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	rep, err := conformance.Run(context.Background(), conformance.Options{URL: url, Rate: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 1 || rep.Verdict != conformance.VerdictFail {
		t.Errorf("%d requests, verdict %q; want 1 and fail", rep.Requests, rep.Verdict)
	}
	if got := failed(rep); strings.Join(got, " ") != "discovery.manifest_status" {
		t.Errorf("failed %v\n%s", got, dump(rep))
	}
	for _, r := range rep.Results {
		if r.Status == conformance.Skip && strings.HasPrefix(r.Saw, "not sent") && (!r.Unchecked || !strings.Contains(r.Saw, "unreachable")) {
			t.Errorf("%s: %+v", r.ID, r)
		}
	}
}

// TestRedirectLoop: a manifest that redirects to itself is a failure
// that says so.
func TestRedirectLoop(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Path, http.StatusFound)
	}))
	defer srv.Close()
	rep, err := conformance.Run(context.Background(), conformance.Options{URL: srv.URL, Rate: 2000, Only: []string{"discovery.manifest_status"}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := result(rep, "discovery.manifest_status"); r.Status != conformance.Fail || !strings.Contains(r.Saw, "a redirect loop (the checker gave up after 5)") {
		t.Errorf("%+v", r)
	}
}

// TestAuthProbeSkipsBadNames: as converse.query, converse.auth_required
// sends no probe to a "capability" whose name is no capability name.
func TestAuthProbeSkipsBadNames(t *testing.T) {
	var mu sync.Mutex
	var probed []string
	url := miniSite(t, `{"ahp":"0.1","name":"x","modes":["MODE1","MODE3"],"content_signals":{},"authentication":"bearer",
		"endpoints":{"converse":"/agent/converse"},"capabilities":[{"name":"Bad Name\u001b[2J","description":"d","mode":"MODE3","action_type":"action","input_schema":{},"output_schema":{}}]}`,
		map[string]http.HandlerFunc{"/agent/converse": func(w http.ResponseWriter, r *http.Request) {
			var q map[string]any
			json.NewDecoder(r.Body).Decode(&q)
			mu.Lock()
			probed = append(probed, fmt.Sprint(q["capability"]))
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"status":"error","code":"auth_required","message":"m"}`)
		}})
	rep, err := conformance.Run(context.Background(), conformance.Options{URL: url, Rate: 2000, Only: []string{"converse.auth_required"}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range probed {
		if strings.HasPrefix(p, "Bad") {
			t.Errorf("probed %q", p)
		}
	}
	if r, _ := result(rep, "converse.auth_required"); r.Status != conformance.Skip || !strings.Contains(r.Saw, "not capability names") {
		t.Errorf("%+v", r)
	}
}

// TestMCPStreamKeptOpen: an MCP server that answers each request with one
// SSE event and keeps the stream open (Streamable HTTP: it SHOULD close
// it, not MUST) passes: the checker stops reading at the response.
func TestMCPStreamKeptOpen(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/.well-known/agent.json":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ahp":"0.1","name":"x","modes":["MODE1"],"content_signals":{},"integrations":{"mcp":{"url":"/mcp"}}}`)
		case r.URL.Path == "/mcp" && r.Method == http.MethodPost:
			var msg struct {
				ID     any    `json:"id"`
				Method string `json:"method"`
			}
			json.NewDecoder(r.Body).Decode(&msg)
			if msg.ID == nil {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			var result any
			switch msg.Method {
			case "initialize":
				result = map[string]any{"protocolVersion": "2024-11-05", "capabilities": map[string]any{"tools": map[string]any{}}, "serverInfo": map[string]any{"name": "x", "version": "1"}}
			case "tools/list":
				result = map[string]any{"tools": []any{}}
			case "resources/list":
				result = map[string]any{"resources": []any{}}
			}
			b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": result})
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "event: message\ndata: %s\n\n", b)
			w.(http.Flusher).Flush()
			<-r.Context().Done() // the stream stays open until the client goes
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	start := time.Now()
	rep, err := conformance.Run(context.Background(), conformance.Options{URL: srv.URL, Only: []string{"mcp"}, Rate: 1000, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := failed(rep); len(got) > 0 {
		t.Errorf("failed %v:\n%s", got, dump(rep))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the run took %s: the checker waited for the streams to end", d)
	}
}

// TestMissingFieldAllCapabilitiesNeedCredentials: on a site whose every
// capability needs credentials and which checks them before the fields
// (the spec orders neither), converse.missing_field does not fail: the
// probe leaves out capability instead of query.
func TestMissingFieldAllCapabilitiesNeedCredentials(t *testing.T) {
	manifest := `{"ahp":"0.1","name":"x","modes":["MODE1","MODE3"],"authentication":"bearer","content_signals":{"ai_input":true},
		"endpoints":{"converse":"/agent/converse"},
		"capabilities":[{"name":"book_demo","description":"Book a demo","mode":"MODE3","action_type":"action",
			"input_schema":{"type":"object"},"output_schema":{"type":"object"}}]}`
	ahpErr := func(w http.ResponseWriter, status int, code string, extra string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"status":"error","code":%q,"message":"m"%s}`, code, extra)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/.well-known/agent.json":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, manifest)
		case r.URL.Path == "/agent/converse" && r.Method == http.MethodPost:
			body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<10+1))
			var req struct{ Capability, Query *string }
			switch {
			case len(body) > 8<<10:
				ahpErr(w, http.StatusRequestEntityTooLarge, "request_too_large", "")
			case json.Unmarshal(body, &req) != nil:
				ahpErr(w, http.StatusBadRequest, "invalid_request", "")
			case req.Capability == nil:
				ahpErr(w, http.StatusBadRequest, "missing_field", "")
			case *req.Capability != "book_demo":
				ahpErr(w, http.StatusBadRequest, "unknown_capability", `,"available_capabilities":["book_demo"]`)
			case r.Header.Get("Authorization") == "":
				w.Header().Set("WWW-Authenticate", `Bearer realm="ahp"`)
				ahpErr(w, http.StatusUnauthorized, "auth_required", "")
			case req.Query == nil:
				ahpErr(w, http.StatusBadRequest, "missing_field", "")
			default:
				ahpErr(w, http.StatusBadRequest, "invalid_request", "")
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	rep, err := conformance.Run(context.Background(), conformance.Options{URL: srv.URL, Only: []string{"converse"}, Rate: 1000, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := failed(rep); len(got) > 0 {
		t.Errorf("failed %v:\n%s", got, dump(rep))
	}
	for _, r := range rep.Results {
		if r.ID == "converse.missing_field" && r.Status != conformance.Pass {
			t.Errorf("%s: %s %q, want a pass", r.ID, r.Status, r.Saw)
		}
	}
}

// TestRetryAfterDateSiteClock: a Retry-After given as an HTTP date is
// read against the answer's Date, as X-RateLimit-Reset is, so a site whose
// clock is 30 s off the checker's passes ratelimit.exceeded.
func TestRetryAfterDateSiteClock(t *testing.T) {
	site := standin.New(t)
	const skew = 30 * time.Second
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		site.ServeHTTP(rec, r)
		siteNow := time.Now().Add(skew).Truncate(time.Second)
		h := w.Header()
		for k, v := range rec.Header() {
			h[k] = v
		}
		h.Set("Date", siteNow.UTC().Format(http.TimeFormat))
		if v := h.Get("X-RateLimit-Reset"); v != "" {
			n, _ := strconv.ParseInt(v, 10, 64)
			h.Set("X-RateLimit-Reset", strconv.FormatInt(n+int64(skew/time.Second), 10))
		}
		if v := h.Get("Retry-After"); v != "" {
			n, _ := strconv.Atoi(v)
			h.Set("Retry-After", siteNow.Add(time.Duration(n)*time.Second).UTC().Format(http.TimeFormat))
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	defer srv.Close()
	rep, err := conformance.Run(context.Background(), conformance.Options{URL: srv.URL, Only: []string{"ratelimit"}, RateLimit: true, Rate: 1000, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Status != conformance.Pass {
			t.Errorf("%s: %s %q", r.ID, r.Status, r.Saw)
		}
	}
}

// TestUnresponsiveSiteStops: after three requests in a row go unanswered
// within the timeout, the run sends no more and skips the rest, saying
// why: a site that hangs does not keep the checker for budget × timeout.
func TestUnresponsiveSiteStops(t *testing.T) {
	var caps []string
	for i := 0; i < 20; i++ {
		caps = append(caps, fmt.Sprintf(`{"name":"c%d","description":"d","mode":"MODE2"}`, i))
	}
	manifest := `{"ahp":"0.1","name":"x","modes":["MODE2"],"content_signals":{"ai_input":true},"capabilities":[` + strings.Join(caps, ",") + `]}`
	var mu sync.Mutex
	converse := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/agent.json":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, manifest)
		case "/agent/converse":
			mu.Lock()
			converse++
			mu.Unlock()
			io.Copy(io.Discard, r.Body) // (the server notices the client leave only once the body is read)
			<-r.Context().Done()        // hangs
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	rep, err := conformance.Run(context.Background(), conformance.Options{URL: srv.URL, Only: []string{"converse"}, Rate: 1000, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if converse != 3 {
		t.Errorf("%d requests to a hanging endpoint, want 3", converse)
	}
	stopped := 0
	for _, r := range rep.Results {
		if r.Status == conformance.Skip && strings.Contains(r.Saw, "did not answer the last 3 requests") {
			stopped++
		}
	}
	if stopped == 0 {
		t.Errorf("no skip says the run stopped:\n%s", dump(rep))
	}
}

// TestOnlyWithoutManifestNotPass: every group builds on the manifest; a
// run whose selection leaves out discovery.manifest_status must not pass
// a site whose manifest could not be read (a 404, a 429, an unreachable
// site), for the selected checks were not judged. Before, `--only
// converse` against a site that was down exited 0: PASS.
func TestOnlyWithoutManifestNotPass(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	down := srv.URL
	srv.Close()
	notJSON := miniSite(t, `<html>not a manifest</html>`, nil)
	for name, url := range map[string]string{"404": standin.New(t, standin.ManifestMissing).URL, "unreachable": down, "not JSON": notJSON} {
		for _, only := range []string{"converse", "content", "integrations", "ratelimit", "discovery.manifest_schema"} {
			rep, err := conformance.Run(context.Background(), conformance.Options{URL: url, Rate: 2000, Only: []string{only}})
			if err != nil {
				t.Fatal(err)
			}
			validateReport(t, rep)
			if rep.Verdict == conformance.VerdictPass || rep.OK {
				t.Errorf("%s manifest, --only %s: verdict %q\n%s", name, only, rep.Verdict, dump(rep))
			}
		}
	}
}

// TestOffSiteRedirectNotFailed: a declared endpoint that redirects to
// another host is not followed (requests stay on the checked site); that
// is the checker's rule, not the site's fault, so the check is skipped
// saying so, not failed as "302".
func TestOffSiteRedirectNotFailed(t *testing.T) {
	const m = `{"ahp":"0.1","name":"x","modes":["MODE1"],"content_signals":{},"endpoints":{"content":"/llms.txt"},"integrations":{"openapi":{"url":"/openapi.json"}}}`
	away := func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://cdn.example.org"+r.URL.Path, http.StatusFound)
	}
	url := miniSite(t, m, map[string]http.HandlerFunc{"/llms.txt": away, "/openapi.json": away})
	rep, err := conformance.Run(context.Background(), conformance.Options{URL: url, Rate: 2000, Only: []string{"content", "openapi"}})
	if err != nil {
		t.Fatal(err)
	}
	validateReport(t, rep)
	for _, id := range []string{"content.reachable", "content.type", "openapi.document"} {
		if r, _ := result(rep, id); r.Status != conformance.Skip || !strings.Contains(r.Saw, "cdn.example.org") {
			t.Errorf("%s: %s %q, want a skip naming where it redirects", id, r.Status, r.Saw)
		}
	}
}

// TestOpenAPIOperationSecurityOverride: an operation's own `security: []`
// overrides the document's security (OpenAPI 3.1 §4.8.10), and an empty
// requirement `{}` makes it optional: the action capability is then
// public, which Appendix E.5 forbids.
func TestOpenAPIOperationSecurityOverride(t *testing.T) {
	const m = `{"ahp":"0.1","name":"x","modes":["MODE1","MODE3"],"content_signals":{},"authentication":"bearer","capabilities":[{"name":"book","description":"d","mode":"MODE3","action_type":"action","input_schema":{},"output_schema":{}}],"integrations":{"openapi":{"url":"/openapi.json"}}}`
	const doc = `{"openapi":"3.1.0","info":{"title":"x","version":"0.1"},"servers":[{"url":"/"}],
"security":[{"bearerAuth":[]}],
"components":{"securitySchemes":{"bearerAuth":{"type":"http","scheme":"bearer"}}},
"paths":{"/capabilities/book":{"post":{"operationId":"book",%s"responses":{"200":{"description":"ok"}}}}}}`
	for op, want := range map[string]conformance.Status{
		``:                                   conformance.Pass, // the document's requirement applies
		`"security":[{"bearerAuth":[]}],`:    conformance.Pass,
		`"security":[],`:                     conformance.Fail,
		`"security":[{},{"bearerAuth":[]}],`: conformance.Fail,
	} {
		url := miniSite(t, m, map[string]http.HandlerFunc{"/openapi.json": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, doc, op)
		}})
		rep, err := conformance.Run(context.Background(), conformance.Options{URL: url, Rate: 2000, Only: []string{"openapi.security"}})
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := result(rep, "openapi.security"); r.Status != want {
			t.Errorf("operation %s: openapi.security %s (%s), want %s", op, r.Status, r.Saw, want)
		}
	}
}
