package conformance_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/conformance"
	"github.com/caddy-ahp/caddy-ahp/conformance/standin"
	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// knownFindings are checks that fail against this plugin today, each with
// the reason; the lead's report lists the fix. The test fails when one of
// them starts passing, so that this list is kept honest.
var knownFindings = map[string]string{}

// TestCheckPluginSite: a site behind every directive of the plugin passes
// every check, with every opt-in on; the JSON report matches its schema.
func TestCheckPluginSite(t *testing.T) {
	u := newUpstreams(t)
	s := caddyproc.Start(t, u.site(""))

	out, code := ahp(t, "check", "--json", "--hpp", "--create-sandbox", "--rate", "200", s.URL("/"))
	rep := report(t, out)
	skipped := map[string]bool{"ratelimit.exceeded": true} // TestCheckPluginRateLimit drives it
	for _, r := range rep.Results {
		switch {
		case knownFindings[r.ID] != "":
			if r.Status != conformance.Fail {
				t.Errorf("%s now %s: remove it from knownFindings", r.ID, r.Status)
			}
		case skipped[r.ID]:
			if r.Status != conformance.Skip {
				t.Errorf("%s: %s (%s), want skip", r.ID, r.Status, r.Saw)
			}
		case r.Status != conformance.Pass:
			t.Errorf("%s [%s]: %s: %s", r.ID, r.Subject, r.Status, r.Saw)
		}
	}
	if code != 0 || !rep.OK {
		t.Errorf("exit code %d, ok %v", code, rep.OK)
	}
	if t.Failed() {
		t.Log(describe(rep))
	}
	// The one query the concierge got is the MODE2 capability's, read-only;
	// the action without credentials never reached it.
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, q := range u.queries {
		if q["capability"] != "site_info" {
			t.Errorf("the concierge got %v", q)
		}
	}
	if u.sandboxes != 1 {
		t.Errorf("%d sandboxes created, want 1 (the replay must not create one)", u.sandboxes)
	}
}

// TestCheckPluginRateLimit: --rate-limit drives the plugin to its 429,
// which has everything §11.1 asks.
func TestCheckPluginRateLimit(t *testing.T) {
	u := newUpstreams(t)
	s := caddyproc.Start(t, u.site("rate_limit {\n\t\t\tunauthenticated 12/minute\n\t\t}"))
	out, code := ahp(t, "check", "--json", "--only", "converse,ratelimit", "--rate-limit", "--rate", "200", s.URL("/"))
	rep := report(t, out)
	for _, r := range rep.Results {
		if r.Status != conformance.Pass && knownFindings[r.ID] == "" {
			t.Errorf("%s: %s: %s", r.ID, r.Status, r.Saw)
		}
		if r.ID == "ratelimit.matches_manifest" && !strings.Contains(r.Saw, "12 per 60s") {
			t.Errorf("matches_manifest saw %q", r.Saw)
		}
	}
	if code != 0 {
		t.Errorf("exit %d\n%s", code, describe(rep))
	}
	// The checker's address is now limited: it stopped at the first 429.
	if r := s.Do(http.MethodPost, "/agent/converse", strings.NewReader(`{"capability":"site_info","query":"x"}`), "Content-Type", "application/json"); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("after the check: %d, want 429", r.StatusCode)
	}
	// A second run in the window cannot check the converse endpoint: its
	// MUSTs are unchecked, and the run is inconclusive (exit 3), not a pass
	// a CI job would take for green.
	out, code = ahp(t, "check", "--json", "--only", "converse", "--rate", "200", s.URL("/"))
	rep = report(t, out)
	if code != 3 || rep.OK || rep.Verdict != conformance.VerdictInconclusive || rep.Summary.UncheckedMust == 0 || rep.Summary.FailedMust != 0 {
		t.Errorf("second run: exit %d, verdict %q, summary %+v; want 3, inconclusive\n%s", code, rep.Verdict, rep.Summary, describe(rep))
	}
	text, code := ahp(t, "check", "--only", "converse", "--rate", "200", s.URL("/"))
	if code != 3 || !strings.Contains(text, "INCONCLUSIVE: ") {
		t.Errorf("text: exit %d\n%s", code, text)
	}
}

// TestCheckAlways429: a site that answers 429 to every request fails
// (exit 1): its manifest cannot be fetched.
func TestCheckAlways429(t *testing.T) {
	site := standin.New(t, standin.Always429)
	out, code := ahp(t, "check", "--json", "--rate", "500", site.URL)
	rep := report(t, out)
	if code != 1 || rep.Verdict != conformance.VerdictFail || rep.Results[0].ID != "discovery.manifest_status" || rep.Results[0].Status != conformance.Fail {
		t.Errorf("exit %d, verdict %q\n%s", code, rep.Verdict, describe(rep))
	}
}

// TestCheckBrokenSites runs the binary against stand-in sites, each broken
// one way: the broken rule is reported by its own check(s), at their
// level, and the exit code is 1 exactly when a MUST failed.
func TestCheckBrokenSites(t *testing.T) {
	cases := []struct {
		brk  standin.Break
		fail []string
		exit int
	}{
		{standin.HTML413, []string{"converse.error_schema", "converse.too_large_body"}, 1}, // the reference implementation's 413
		{standin.ManifestSchema, []string{"discovery.manifest_schema"}, 1},
		{standin.ManifestType, []string{"discovery.manifest_content_type"}, 1},
		{standin.RedirectPOST, []string{"converse.accept_agent_json"}, 1}, // the reference implementation's redirect
		{standin.NoLink, []string{"discovery.link_head", "discovery.link_home", "discovery.link_manifest", "discovery.link_not_found"}, 0},
		{standin.NoticeTwice, []string{"discovery.notice_once"}, 0},
		{standin.NoticeVisible, []string{"discovery.notice_hidden"}, 0},
		{standin.NoNotice, []string{"discovery.notice_not_found", "discovery.notice_present"}, 0},
		{standin.NoVary, []string{"discovery.vary_accept"}, 0},
		{standin.NoAuth, []string{"converse.auth_required", "converse.auth_required"}, 1}, // book_demo and research, each probed
		{standin.RateNoWindow429, []string{"ratelimit.exceeded"}, 1},                      // the reference implementation's 429
		{standin.HandoffOracle, []string{"handoff.uniform_errors"}, 1},
		{standin.HPPOverwrite, []string{"hpp.user_field_protected"}, 1},
	}
	for _, tc := range cases {
		t.Run(string(tc.brk), func(t *testing.T) {
			t.Parallel()
			site := standin.New(t, tc.brk)
			out, code := ahp(t, "check", "--json", "--rate-limit", "--create-sandbox", "--hpp", "--rate", "500", site.URL)
			rep := report(t, out)
			if got := strings.Join(failedIDs(rep), " "); got != strings.Join(tc.fail, " ") {
				t.Errorf("failed %q, want %q\n%s", got, strings.Join(tc.fail, " "), describe(rep))
			}
			if code != tc.exit {
				t.Errorf("exit code %d, want %d", code, tc.exit)
			}
			for _, r := range rep.Results {
				c, _ := conformance.Lookup(r.ID)
				if r.Level != c.Level {
					t.Errorf("%s level %s, want %s", r.ID, r.Level, c.Level)
				}
			}
		})
	}
}

// TestCheckTextOutput: piped, the table is plain; --color always adds
// colour; the fix of a failure is printed under it.
func TestCheckTextOutput(t *testing.T) {
	site := standin.New(t, standin.HTML413)
	out, code := ahp(t, "check", "--only", "converse", "--rate", "500", site.URL)
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{"FAIL  MUST    converse.too_large_body", "fix: send {\"status\":\"error\",\"code\":\"request_too_large\"", "FAIL: 2 MUST check(s) failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colour codes in piped output")
	}
	colored, _ := ahp(t, "check", "--only", "converse", "--color", "always", "--rate", "500", site.URL)
	if !strings.Contains(colored, "\x1b[31mFAIL\x1b[0m") {
		t.Errorf("--color always: no red FAIL:\n%s", colored)
	}
}

// TestCheckUnreachable: a site that does not answer fails its one MUST.
func TestCheckUnreachable(t *testing.T) {
	port := caddyproc.FreePort(t)
	out, code := ahp(t, "check", "--json", "--only", "discovery", "--timeout", "2s", "http://127.0.0.1:"+strconv.Itoa(port)+"/")
	rep := report(t, out)
	if code != 1 || rep.OK || rep.Results[0].ID != "discovery.manifest_status" || rep.Results[0].Status != conformance.Fail {
		t.Errorf("exit %d\n%s", code, describe(rep))
	}
}

// TestCheckInterrupted: Ctrl-C exits 130, not 1 (a failed MUST).
func TestCheckInterrupted(t *testing.T) {
	hang := make(chan struct{})
	asked := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case asked <- struct{}{}:
		default:
		}
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)
	cmd := exec.Command(caddyproc.Bin(), "ahp", "check", "--timeout", "30s", srv.URL)
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once the check is asking the site, so its handler is in
	// place (a fixed wait lost the race to a loaded machine's start-up:
	// the process died of the signal instead).
	select {
	case <-asked:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the check never asked the site")
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("after Ctrl-C: %v, want exit status 130", err)
	}
}

// TestCheckUsage: usage errors exit 2 with a message; --help lists the
// subcommands; --list and --json-schema print the catalogue and schema.
func TestCheckUsage(t *testing.T) {
	for _, args := range [][]string{
		{"check"},
		{"check", "a", "b"},
		{"check", "--only", "nonsense", "http://127.0.0.1:1"},
		{"check", "--bogus", "http://127.0.0.1:1"},
		{"check", "--budget", "0", "http://127.0.0.1:1"},
		{"check", "--color", "sometimes", "http://127.0.0.1:1"},
		{"check", "ftp://example.com"},
		{"key", "extra"},
		{"nonsense"},
		{},
	} {
		_, stderr, code := ahpIn(t, t.TempDir(), args...)
		if code != 2 || stderr == "" {
			t.Errorf("caddy ahp %s: exit %d, stderr %q; want 2 and a message", strings.Join(args, " "), code, stderr)
		}
	}
	help, _, code := ahpIn(t, t.TempDir(), "--help")
	if code != 0 {
		t.Errorf("--help exit %d", code)
	}
	subs := []string{"check", "manifest", "key", "version"}
	// solve is registered through the same hook by caddymodule/handoff_cmd.go.
	if _, err := os.Stat(filepath.Join(caddyproc.RepoRoot(), "caddymodule", "handoff_cmd.go")); err == nil {
		subs = append(subs, "solve")
	}
	for _, sub := range subs {
		if !strings.Contains(help, "  "+sub+" ") {
			t.Errorf("caddy ahp --help does not list %s:\n%s", sub, help)
		}
	}
	list, _, code := ahpIn(t, t.TempDir(), "check", "--list")
	if code != 0 || !strings.Contains(list, "converse.too_large_body") || !strings.Contains(list, "(--rate-limit)") {
		t.Errorf("--list: %d\n%s", code, list)
	}
	schema, _, code := ahpIn(t, t.TempDir(), "check", "--json-schema")
	if code != 0 || schema != string(conformance.ReportSchema) {
		t.Errorf("--json-schema: exit %d, %d bytes", code, len(schema))
	}
	version, _, code := ahpIn(t, t.TempDir(), "version")
	if code != 0 || !strings.HasPrefix(version, "caddy-ahp ") || !strings.Contains(version, "AHP 0.1") {
		t.Errorf("version: %d %q", code, version)
	}
}
