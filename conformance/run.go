package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Status is the outcome of a check.
type Status string

// Statuses. A skipped check was not applicable, not selected by an opt-in,
// or could not run (budget, an earlier failure it depends on); Saw says
// which, and Unchecked marks the skips that left the check unjudged.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Result is one check's outcome against the site.
type Result struct {
	ID    string `json:"id"`
	Group string `json:"group"`
	Level Level  `json:"level"`
	Spec  string `json:"spec"`
	Title string `json:"title"`
	// Subject narrows a check run more than once (a capability's name).
	Subject string `json:"subject,omitempty"`
	Status  Status `json:"status"`
	// Saw says what the checker observed: the evidence for the status.
	Saw string `json:"saw"`
	// Fix says how to make a failing check pass.
	Fix string `json:"fix,omitempty"`
	// Request names the request that showed it, e.g. "GET https://…/".
	Request string `json:"request,omitempty"`
	// Unchecked is set on a skip that says nothing about the site's
	// conformance either way: the check applied but could not be judged
	// (the site answered 429, the budget ran out, the site stopped
	// answering). A MUST left unchecked makes the verdict inconclusive.
	Unchecked bool `json:"unchecked,omitempty"`
}

// Summary counts results.
type Summary struct {
	Passed       int `json:"passed"`
	Failed       int `json:"failed"`
	FailedMust   int `json:"failed_must"`
	FailedShould int `json:"failed_should"`
	Skipped      int `json:"skipped"`
	// UncheckedMust counts the MUST checks skipped unjudged (Unchecked):
	// when no MUST failed, any of them makes the verdict inconclusive.
	UncheckedMust int `json:"unchecked_must"`
}

// Verdict is the outcome of a run.
type Verdict string

// Verdicts: pass when every MUST held; fail when one failed;
// inconclusive when none failed but some could not be checked (a 429,
// the budget, an unresponsive site), so the run proves nothing either way.
const (
	VerdictPass         Verdict = "pass"
	VerdictFail         Verdict = "fail"
	VerdictInconclusive Verdict = "inconclusive"
)

// Tool names the checker in a report.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// ReportFormat identifies the JSON report format; it changes only with an
// incompatible change to the format (fields may be added within it).
const ReportFormat = "caddy-ahp-check/1"

// Report is the outcome of one run.
type Report struct {
	Format string `json:"format"`
	Tool   Tool   `json:"tool"`
	// Target is the checked site's root: the https one when the http
	// site redirected the checker there.
	Target     string    `json:"target"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS int64     `json:"duration_ms"`
	// Requests is how many HTTP requests the run sent.
	Requests int `json:"requests"`
	// OK is true when the verdict is pass: no MUST check failed and none
	// was left unchecked.
	OK      bool    `json:"ok"`
	Verdict Verdict `json:"verdict"`
	Summary Summary `json:"summary"`
	// Insecure: TLS certificates were not verified (--insecure).
	Insecure bool `json:"insecure,omitempty"`
	// Notes tell the reader how the run read its target: a path it left
	// out, a move to https, an ahp version it does not know. They are not
	// results.
	Notes   []string `json:"notes,omitempty"`
	Results []Result `json:"results"`
}

// Options configure a run. The zero value of each field means its default.
type Options struct {
	// URL of the site: its root (a path is ignored, and the report notes
	// it: the spec's endpoints are at fixed paths or declared in the
	// manifest). A default port (:443, :80) is the same site without it.
	// An http site whose manifest redirects to https on the same host is
	// checked as the https site from then on.
	URL string
	// Only and Skip select checks by group ("discovery", "converse",
	// "integrations" …) or id ("converse.query").
	Only, Skip []string
	// RateLimit drives the converse endpoint (or the manifest) to a 429.
	RateLimit bool
	// CreateSandbox lets the Agent Handoff checks solve a challenge and
	// create a sandbox (and try to delete it afterwards).
	CreateSandbox bool
	// HPP creates a Handshake Prompt session under HPPPrefix (default
	// /handshake) and drives it.
	HPP       bool
	HPPPrefix string
	// Budget is the most requests the run may send (default 200).
	Budget int
	// Rate is the most requests per second (default 10).
	Rate float64
	// Timeout bounds each request (default 15s); converse queries get
	// twice as long. Solving a proof of work is bounded apart from it: two
	// minutes, or less when the challenge expires sooner. After three
	// requests in a row go unanswered within it, the run sends no more and
	// skips the rest, saying so.
	Timeout time.Duration
	// CACerts is PEM: certificates trusted besides the system's roots
	// (a staging site with a private CA). Every PEM block must be a
	// certificate, and there must be one.
	CACerts []byte
	// Insecure skips TLS certificate verification. The report says so
	// (Report.Insecure, and a warning line in the text report): such a
	// run proves nothing about who answered.
	Insecure bool
	// Version is the checker's version, for the User-Agent and the report.
	Version string
	// UserAgent overrides the default
	// "caddy-ahp-check/<version> (+https://github.com/caddy-ahp/caddy-ahp)".
	UserAgent string
	// HTTPClient sends the requests (its redirect policy and cookie jar
	// are replaced); nil means a client like http.DefaultClient's.
	HTTPClient *http.Client
	// Now is the clock (tests).
	Now func() time.Time
}

// Defaults.
const (
	DefaultBudget    = 200
	DefaultRate      = 10
	DefaultTimeout   = 15 * time.Second
	DefaultHPPPrefix = "/handshake"
	Home             = "https://github.com/caddy-ahp/caddy-ahp"
)

// ErrOptions wraps every error about the options (a usage error).
var ErrOptions = errors.New("invalid options")

// complete fills in the defaults and returns the site's root; ignored is
// the path (and query) of o.URL that the run leaves out, for a note.
func (o *Options) complete() (site *url.URL, ignored string, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrOptions, fmt.Sprintf(format, args...))
	}
	raw := strings.TrimSpace(o.URL)
	if raw == "" {
		return nil, "", bad("a site URL is required, e.g. https://example.com")
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", bad("%q is not a URL: %v", o.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, "", bad("%q: only http and https sites can be checked", o.URL)
	}
	if u.Hostname() == "" { // "https://:443" too
		return nil, "", bad("%q has no host", o.URL)
	}
	if u.User != nil {
		return nil, "", bad("%q: credentials in the URL are not sent; remove them", u.Redacted())
	}
	site = &url.URL{Scheme: u.Scheme, Host: siteHost(u), Path: "/"}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		ignored = u.EscapedPath()
		if u.RawQuery != "" {
			ignored += "?…" // not echoed: a query may hold a token
		}
	}
	if o.Budget == 0 {
		o.Budget = DefaultBudget
	}
	if o.Budget < 0 {
		return nil, "", bad("--budget must be positive")
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.Rate < 0 {
		return nil, "", bad("--rate must be positive")
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Timeout < 0 {
		return nil, "", bad("--timeout must be positive")
	}
	if o.HPPPrefix == "" {
		o.HPPPrefix = DefaultHPPPrefix
	}
	if !strings.HasPrefix(o.HPPPrefix, "/") {
		return nil, "", bad("--hpp-prefix %q must be a path such as /handshake", o.HPPPrefix)
	}
	o.HPPPrefix = strings.TrimSuffix(o.HPPPrefix, "/")
	if len(o.CACerts) > 0 && o.Insecure {
		return nil, "", bad("--cacert and --insecure together: --insecure verifies no certificate, so the CA would be ignored; give one of them")
	}
	if len(o.CACerts) > 0 {
		if _, err := parseCACerts(o.CACerts); err != nil {
			return nil, "", bad("--cacert: %v", err)
		}
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.UserAgent == "" {
		o.UserAgent = "caddy-ahp-check/" + o.Version + " (+" + Home + ")"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return site, ignored, nil
}

// runner holds one run's state.
type runner struct {
	opts    Options
	sel     selection
	c       *client
	site    *url.URL
	results []Result
	notes   []string // Report.Notes

	manifestURL *url.URL
	manifest    *siteManifest // nil when none could be read
	manifestEx  *exchange
	home        *exchange // GET / as a browser asks for it
	notFound    *exchange // GET of a page that does not exist

	// ahpAnswers are answers of AHP endpoints (manifest, content,
	// converse, front doors), for the rate limit checks: their status and
	// rate limit headers only (keepAnswer), not their bodies.
	ahpAnswers []taggedExchange
	// errorAnswers are converse error answers, judged when they arrive,
	// for converse.error_schema.
	errorAnswers []judgedError
	// probe is the converse endpoint's answer to the unknown capability
	// probe: cheap to repeat, it drives ratelimit.exceeded.
	probe     *exchange
	probeBody []byte
	probeURL  *url.URL
	// converseLimited is the converse endpoint's first 429 of the run:
	// later converse probes are not sent.
	converseLimited *exchange
	// located is set once a GET of the site has shown whether it lives
	// on https (moveToHTTPS).
	located bool
}

type taggedExchange struct {
	endpoint string // "manifest", "converse" …
	ex       *exchange
}

// judgedError is an error answer (without its body) and what is wrong
// with it.
type judgedError struct {
	ex       *exchange
	problems []string
}

// keepAnswer keeps what the rate limit checks need of an AHP endpoint's
// answer: a run may get hundreds of answers of up to maxBody each.
func (r *runner) keepAnswer(endpoint string, ex *exchange) {
	r.ahpAnswers = append(r.ahpAnswers, taggedExchange{endpoint, ex.summary()})
}

// Run checks the site and reports. The error is non-nil only for invalid
// options (it wraps ErrOptions) or a cancelled context; a site that is
// down or wrong is a report with failures.
func Run(ctx context.Context, opts Options) (*Report, error) {
	site, ignored, err := opts.complete()
	if err != nil {
		return nil, err
	}
	sel, err := newSelection(opts.Only, opts.Skip)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOptions, err)
	}
	start := opts.Now()
	c, err := newClient(site, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOptions, err)
	}
	r := &runner{opts: opts, sel: sel, site: site, c: c}
	r.manifestURL = site.ResolveReference(&url.URL{Path: "/.well-known/agent.json"})
	if ignored != "" {
		r.notes = append(r.notes, "the path "+clip(ignored, 80)+" of the site URL is ignored: the checker checks the site at "+site.String()+" (the manifest is at /.well-known/agent.json, the other endpoints where the manifest says)")
	}

	steps := []struct {
		groups []string
		run    func(context.Context)
	}{
		{[]string{GroupDiscovery, GroupContent, GroupConverse, GroupMCP, GroupOpenAPI, GroupRateLimit}, r.discovery},
		{[]string{GroupContent}, r.content},
		{[]string{GroupConverse, GroupRateLimit}, r.converse},
		{[]string{GroupMCP}, r.mcp},
		{[]string{GroupOpenAPI}, r.openapi},
		{[]string{GroupHandoff}, r.handoff},
		{[]string{GroupHPP}, r.hpp},
		{[]string{GroupRateLimit}, r.rateLimits},
	}
	for _, st := range steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if sel.runsAny(st.groups...) {
			st.run(ctx)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	rep := &Report{
		Format:     ReportFormat,
		Tool:       Tool{Name: "caddy-ahp-check", Version: opts.Version},
		Target:     r.site.String(),
		Notes:      r.notes,
		Insecure:   opts.Insecure,
		StartedAt:  start.UTC().Truncate(time.Millisecond),
		DurationMS: opts.Now().Sub(start).Milliseconds(),
		Requests:   r.c.used,
		Results:    []Result{},
	}
	for _, res := range r.results {
		if sel.reports(res.ID) {
			rep.Results = append(rep.Results, res)
		}
	}
	sortResults(rep.Results)
	for _, res := range rep.Results {
		switch res.Status {
		case Pass:
			rep.Summary.Passed++
		case Skip:
			rep.Summary.Skipped++
			if res.Unchecked && res.Level == Must {
				rep.Summary.UncheckedMust++
			}
		case Fail:
			rep.Summary.Failed++
			if res.Level == Must {
				rep.Summary.FailedMust++
			} else {
				rep.Summary.FailedShould++
			}
		}
	}
	switch {
	case rep.Summary.FailedMust > 0:
		rep.Verdict = VerdictFail
	case rep.Summary.UncheckedMust > 0:
		rep.Verdict = VerdictInconclusive
	default:
		rep.Verdict = VerdictPass
	}
	rep.OK = rep.Verdict == VerdictPass
	return rep, nil
}

// moveToHTTPS makes the https site the checked one when ex, a GET of the
// http site, was redirected to https on the same host: that is where the
// site lives, and its endpoints resolved against the http URL would meet
// redirects that no POST follows.
func (r *runner) moveToHTTPS(ex *exchange) {
	r.located = true
	if r.site.Scheme != "http" || len(ex.Hops) < 2 {
		return
	}
	final, err := url.Parse(ex.Hops[len(ex.Hops)-1].URL)
	if err != nil || final.Scheme != "https" || !strings.EqualFold(final.Hostname(), r.site.Hostname()) {
		return
	}
	site := &url.URL{Scheme: "https", Host: siteHost(final), Path: "/"}
	r.notes = append(r.notes, r.site.String()+" redirects to https: the checker checks "+site.String())
	r.site, r.c.site = site, site
	r.manifestURL = site.ResolveReference(&url.URL{Path: "/.well-known/agent.json"})
}

// locate asks an http site where it lives, when no GET of this run has
// yet: a group whose first request is a POST (Handshake Prompt) would meet
// the redirect to https that no POST follows.
func (r *runner) locate(ctx context.Context) {
	if r.site.Scheme == "http" && !r.located {
		r.moveToHTTPS(r.get(ctx, r.site, "Accept", "text/html"))
	}
}

// record adds a result for a catalogue check.
func (r *runner) record(id, subject string, st Status, saw, fix string, ex *exchange) {
	c, ok := catalogueByID[id]
	if !ok {
		panic("conformance: no check " + id) // a programming error, caught by the tests
	}
	if len(subject) > maxSubject { // a capability name from the site's manifest
		subject = clip(subject, maxSubject)
	}
	unchecked := false
	// A 429 (or a request not sent) is no evidence either way: a check
	// that would pass or fail on it is left unchecked. Not the manifest's
	// status: a manifest the checker cannot fetch is the one failure of
	// discovery that no later run can excuse (§3.1).
	if ex != nil && id != "discovery.manifest_status" {
		if why, ok := unjudged(ex, c.Group); ok {
			unchecked = true
			if st != Skip {
				st = Skip
				if !strings.Contains(saw, why) {
					saw = why
				}
			}
		}
	}
	// An answer longer than the checker reads was cut at maxBody: a check
	// that failed on it may have failed on the cut ("not JSON", a schema
	// error at the end), which is the checker's limit, not the site's
	// fault. It is left unchecked, saying so, as the manifest's schema is.
	if st == Fail && ex != nil && ex.Truncated && !headerOnly[id] {
		st, unchecked = Skip, true
		saw = "the answer is larger than the checker reads (" + maxBodyText + ") and was cut: not judged (on the first " + maxBodyText + ": " + saw + ")"
	}
	res := Result{ID: id, Group: c.Group, Level: c.Level, Spec: c.Spec, Title: c.Title, Subject: subject, Status: st, Saw: saw, Unchecked: unchecked}
	if st == Fail {
		res.Fix = fix
		if res.Fix == "" {
			res.Fix = "see " + c.Spec + ": " + c.Title
		}
	}
	if ex != nil {
		res.Request = ex.what()
	}
	r.results = append(r.results, res)
}

func (r *runner) pass(id, saw string, ex *exchange) { r.record(id, "", Pass, saw, "", ex) }
func (r *runner) fail(id, saw, fix string, ex *exchange) {
	r.record(id, "", Fail, saw, fix, ex)
}
func (r *runner) skip(id, why string) { r.record(id, "", Skip, why, "", nil) }

// skipUnchecked skips a check that applies but could not be judged (the
// budget does not cover it): unchecked, whatever exchange it names.
func (r *runner) skipUnchecked(id, why string) {
	r.record(id, "", Skip, why, "", nil)
	r.results[len(r.results)-1].Unchecked = true
}

// skipNoManifest skips checks that need the manifest, which could not be
// read: unchecked, since nothing about them was judged. A run whose
// --only leaves out the manifest's own failure must not pass on them.
func (r *runner) skipNoManifest(ids ...string) {
	why := "no manifest"
	for _, res := range r.results {
		if res.Status == Fail && (res.ID == "discovery.manifest_status" || res.ID == "discovery.manifest_schema") {
			why += " (" + res.ID + ": " + clip(res.Saw, 120) + ")"
			break
		}
	}
	for _, id := range ids {
		r.skipUnchecked(id, why)
	}
}

// skipAllNoManifest is skipNoManifest for every check of a group that
// has no result yet.
func (r *runner) skipAllNoManifest(group string) {
	have := map[string]bool{}
	for _, res := range r.results {
		have[res.ID] = true
	}
	var ids []string
	for _, c := range Catalogue {
		if c.Group == group && !have[c.ID] {
			ids = append(ids, c.ID)
		}
	}
	r.skipNoManifest(ids...)
}

// skipBecause skips a check that depends on ex: unchecked, saying why,
// when ex was not sent or rate limited; else for why (not applicable).
func (r *runner) skipBecause(id string, ex *exchange, why string) {
	r.record(id, "", Skip, because(ex, why), "", ex)
}

// skipAllBecause is skipAll for the checks of a group that depend on ex.
func (r *runner) skipAllBecause(group string, ex *exchange, why string) {
	have := map[string]bool{}
	for _, res := range r.results {
		have[res.ID] = true
	}
	for _, c := range Catalogue {
		if c.Group == group && !have[c.ID] {
			r.skipBecause(c.ID, ex, why)
		}
	}
}

// headerOnly lists the checks judged on an answer's status and headers
// alone: a cut body does not excuse their failures.
var headerOnly = map[string]bool{
	"discovery.manifest_status":       true,
	"discovery.manifest_content_type": true,
	"discovery.link_home":             true,
	"discovery.link_not_found":        true,
	"discovery.link_head":             true,
	"discovery.link_manifest":         true,
	"content.reachable":               true,
	"content.type":                    true,
	"converse.www_authenticate":       true,
	"ratelimit.headers":               true,
	"ratelimit.active":                true,
}

// unjudged says why an exchange is no evidence against the site, when it
// is none: the request was not sent (the budget ran out, or the site had
// already rate limited the checker), or the site answered 429, which is
// AHP §11 working, not a failure of the check that sent it (the ratelimit
// checks judge 429s themselves). A check that would fail on such an
// exchange is skipped, saying why and how to get it to run.
func unjudged(ex *exchange, group string) (string, bool) {
	switch {
	case ex.notSent():
		return ex.failed(), true
	case ex.Err == nil && ex.Status == http.StatusTooManyRequests && group != GroupRateLimit:
		return rateLimitedSaw(ex), true
	}
	return "", false
}

// because is why checks that depend on ex are skipped: why, unless ex
// was not sent or rate limited, which the reader should hear about.
func because(ex *exchange, why string) string {
	if ex == nil {
		return why
	}
	if s, ok := unjudged(ex, ""); ok {
		return s
	}
	return why
}

// evidence picks, of the exchanges a check judged, the one to report:
// the first that is no evidence (not sent, rate limited), else def.
func evidence(def *exchange, exs ...*exchange) *exchange {
	for _, ex := range exs {
		if _, ok := unjudged(ex, ""); ok {
			return ex
		}
	}
	return def
}

// skipNote is ": <saw>" when check id was skipped, for the reasons of the
// checks that depend on it.
func (r *runner) skipNote(id string) string {
	for i := len(r.results) - 1; i >= 0; i-- {
		if r.results[i].ID == id {
			if r.results[i].Status == Skip {
				return ": " + r.results[i].Saw
			}
			return ""
		}
	}
	return ""
}

// skipAll skips every check of a group that has no result yet.
func (r *runner) skipAll(group, why string) {
	have := map[string]bool{}
	for _, res := range r.results {
		have[res.ID] = true
	}
	for _, c := range Catalogue {
		if c.Group == group && !have[c.ID] {
			r.skip(c.ID, why)
		}
	}
}

// get sends a GET (following same-site redirects) with extra headers as
// name, value pairs.
func (r *runner) get(ctx context.Context, u *url.URL, header ...string) *exchange {
	return r.c.do(ctx, request{Method: http.MethodGet, URL: u, Header: headerOf(header...), Follow: true})
}

func (r *runner) send(ctx context.Context, method string, u *url.URL, body []byte, header ...string) *exchange {
	return r.c.do(ctx, request{Method: method, URL: u, Body: body, Header: headerOf(header...)})
}

func headerOf(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// unavailable is the "saw" of a check that could not run for want of ex.
func unavailable(ex *exchange) string {
	if ex == nil {
		return "not checked"
	}
	return ex.failed()
}

// randomHex is n random bytes, hex encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// statusText is "404 Not Found".
func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprint(code)
}
