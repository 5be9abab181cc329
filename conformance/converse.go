package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

// noCredentials ends the reason of a check skipped because the site
// rightly wants credentials for it.
const noCredentials = "the checker sends none (it has no option to send credentials), so it cannot check this"

// unknownCapability is a name no site declares (the probe's).
const unknownCapability = "ahp_check_unknown_capability"

// content checks endpoints.content (MODE1).
func (r *runner) content(ctx context.Context) {
	m := r.manifest
	switch {
	case m == nil:
		r.skipAllNoManifest(GroupContent)
		return
	case m.Content == "":
		r.fail("content.declared", "the manifest declares no endpoints.content", "add \"endpoints\": {\"content\": \"/llms.txt\"} (or the URL of the site's primary agent-readable content) to the manifest (spec §5.1: it SHOULD; MODE2 and MODE3 sites keep the MODE1 requirements)", r.manifestEx)
		r.skipAll(GroupContent, "the manifest declares no endpoints.content")
		return
	}
	r.pass("content.declared", "endpoints.content: "+clip(m.Content, maxItem), r.manifestEx)
	u, err := r.c.resolve(r.manifestURL, m.Content)
	if errors.Is(err, errOffSite) {
		r.skipAll(GroupContent, err.Error()+"; the checker sends requests only to the site it checks")
		return
	}
	if err != nil {
		r.fail("content.reachable", "endpoints.content "+err.Error(), "declare endpoints.content as a path such as /llms.txt or an absolute URL", r.manifestEx)
		r.skip("content.type", "no content URL")
		return
	}
	ex := r.get(ctx, u, "Accept", "text/markdown, text/plain;q=0.9, */*;q=0.1")
	if ex.Err != nil {
		r.fail("content.reachable", ex.failed(), "serve the content document the manifest declares at "+u.Path, ex)
		r.skipBecause("content.type", ex, "no content answer")
		return
	}
	r.keepAnswer("content", ex)
	if to, ok := r.offSiteRedirect(ex); ok {
		// Not the site's fault: agents follow it; the checker does not.
		r.skipAll(GroupContent, "endpoints.content redirects to "+clip(to.Redacted(), maxItem)+", another host, which the checker does not follow (it sends requests only to the site it checks)")
		return
	}
	if ex.Status != http.StatusOK {
		r.fail("content.reachable", statusText(ex.Status), "serve the content document at "+u.Path+" or fix endpoints.content in the manifest", ex)
		r.skipBecause("content.type", ex, "no content")
		return
	}
	r.pass("content.reachable", fmt.Sprintf("200, %d bytes", len(ex.Body)), ex)
	// §5.1: llms.txt, markdown pages or "a static JSON knowledge document".
	switch mt := ex.contentType(); {
	case mt == "text/plain", mt == "text/markdown", mt == "text/x-markdown", httpx.IsJSON(mt):
		r.pass("content.type", "Content-Type: "+ex.Header.Get("Content-Type"), ex)
	default:
		r.fail("content.type", "Content-Type: "+orUnknown(ex.Header.Get("Content-Type")), "serve the MODE1 content as plain text or markdown (text/plain or text/markdown), as llms.txt is, or as a JSON knowledge document (application/json) (spec §5.1, Appendix B)", ex)
	}
}

// converse probes the converse endpoint with requests the spec requires it
// to refuse, then asks each MODE2 capability one read-only question.
func (r *runner) converse(ctx context.Context) {
	m := r.manifest
	if m == nil {
		r.skipAllNoManifest(GroupConverse)
		return
	}
	path := m.conversePath()
	if path == "" {
		r.skipAll(GroupConverse, "the manifest declares no converse endpoint (a MODE1 site)")
		return
	}
	u, err := r.c.resolve(r.manifestURL, path)
	if err != nil {
		if errors.Is(err, errOffSite) {
			r.skipAll(GroupConverse, err.Error()+"; the checker sends requests only to the site it checks")
		} else {
			r.skipAll(GroupConverse, "endpoints.converse "+err.Error())
		}
		return
	}
	if !r.sel.runs(GroupConverse) {
		// Only the rate limit group runs: it needs one converse answer.
		r.probeURL = u
		r.probeBody = mustJSON(map[string]any{"ahp": "0.1", "capability": unknownCapability, "query": "caddy-ahp-check conformance probe: an unknown capability"})
		r.probe = r.post(ctx, u, r.probeBody)
		return
	}
	caps := m.conversable()
	declared := "declared"
	if m.Converse == "" {
		declared = "the spec's default for MODE2/MODE3 sites"
	}

	// An unknown capability.
	r.probeURL = u
	r.probeBody = mustJSON(map[string]any{"ahp": "0.1", "capability": unknownCapability, "query": "caddy-ahp-check conformance probe: an unknown capability"})
	ex := r.post(ctx, u, r.probeBody)
	r.probe = ex
	code, obj := r.judgeError(ex)
	switch {
	case ex.Err != nil:
		r.fail("converse.unknown_capability", ex.failed(), "serve the converse endpoint at "+u.Path+" ("+declared+")", ex)
	case ex.Status == http.StatusBadRequest && code == "unknown_capability":
		r.pass("converse.unknown_capability", "400 unknown_capability", ex)
	case ex.Status == http.StatusUnauthorized && code == "auth_required" && m.wantsCredentials():
		r.skip("converse.unknown_capability", "401 auth_required: the site (authentication "+strconv.Quote(m.Authentication)+") asks for credentials first; "+noCredentials)
	default:
		r.fail("converse.unknown_capability", describeAnswer(ex, code), `answer a capability the manifest does not declare with 400 {"status":"error","code":"unknown_capability","message":…,"available_capabilities":[…]} (spec §10)`, ex)
	}
	if code == "unknown_capability" {
		list, has := obj["available_capabilities"].([]any)
		var missing []string
		listed := map[string]bool{}
		for _, v := range list {
			if s, ok := v.(string); ok {
				listed[s] = true
			}
		}
		for _, c := range caps {
			if !listed[c.Name] {
				missing = append(missing, c.Name)
			}
		}
		switch {
		case !has:
			r.fail("converse.available_capabilities", "no available_capabilities array in the answer", "list the capabilities an agent may use in available_capabilities (spec §10)", ex)
		case len(missing) > 0:
			r.fail("converse.available_capabilities", "available_capabilities lacks "+joinNames(missing), "list every MODE2/MODE3 capability of the manifest", ex)
		default:
			r.pass("converse.available_capabilities", "lists "+plural(len(list), "capability"), ex)
		}
	} else {
		r.skipBecause("converse.available_capabilities", ex, "no unknown_capability answer")
	}

	// A request without its query, to a capability that needs no
	// credentials. When every capability needs them, the spec orders
	// neither check first, and a site may refuse the missing credentials
	// before the missing field: the probe leaves out capability instead
	// (an unknown capability would be refused as such first).
	missing, probe := "query", map[string]any{"ahp": "0.1"}
	if c, ok := firstWithout(caps); ok {
		probe["capability"] = c.Name
	} else {
		missing, probe["query"] = "capability", "caddy-ahp-check conformance probe: a request without capability"
	}
	ex = r.post(ctx, u, mustJSON(probe))
	code, _ = r.judgeError(ex)
	switch {
	case ex.Err != nil:
		r.fail("converse.missing_field", ex.failed(), "answer requests", ex)
	case ex.Status == http.StatusBadRequest && code == "missing_field":
		r.pass("converse.missing_field", "400 missing_field for a request without "+missing, ex)
	case ex.Status == http.StatusUnauthorized && code == "auth_required" && missing == "capability":
		r.skip("converse.missing_field", "401 auth_required for a request without capability: the site asks for credentials first, and every capability needs them; "+noCredentials)
	case ex.Status == http.StatusUnauthorized && code == "auth_required" && m.wantsCredentials():
		r.skip("converse.missing_field", "401 auth_required for a request without query: the site (authentication "+strconv.Quote(m.Authentication)+") asks for credentials first; "+noCredentials)
	default:
		r.fail("converse.missing_field", describeAnswer(ex, code)+" for a request without "+missing, `answer a request that lacks capability or query with 400 {"status":"error","code":"missing_field",…} (spec §10)`, ex)
	}

	// A 9 KB body; its capability is unknown, so a site without a cap
	// refuses it anyway and no concierge spends anything on it.
	big := mustJSON(map[string]any{"ahp": "0.1", "capability": unknownCapability, "query": strings.Repeat("caddy-ahp-check body cap probe. ", 9*1024/32+1)})
	ex = r.post(ctx, u, big)
	code, _ = r.judgeError(ex)
	switch {
	case ex.Err != nil:
		r.fail("converse.body_cap", fmt.Sprintf("a %d-byte body: %s", len(big), ex.failed()), "refuse bodies over 8 KB with 413 and the spec's JSON body, after reading at most the cap", ex)
		r.skipBecause("converse.too_large_body", ex, "no 413 answer")
	case ex.Status == http.StatusRequestEntityTooLarge:
		r.pass("converse.body_cap", fmt.Sprintf("413 for a %d-byte body", len(big)), ex)
		if code == "request_too_large" {
			r.pass("converse.too_large_body", "413 request_too_large, JSON", ex)
		} else {
			r.fail("converse.too_large_body", "the 413 is "+describeAnswer(ex, code), `send {"status":"error","code":"request_too_large","message":…} as application/json with the 413 (spec §10: all errors carry the JSON body; an HTML 413 from a body parser, as the reference implementation sends, breaks agents)`, ex)
		}
	default:
		r.fail("converse.body_cap", fmt.Sprintf("a %d-byte body was read: %s", len(big), describeAnswer(ex, code)), "cap converse bodies at 8 KB (spec §6.5) and refuse larger ones with 413 request_too_large", ex)
		r.skipBecause("converse.too_large_body", ex, "no 413 answer")
	}

	r.checkAuthRequired(ctx, u, caps)

	// A POST that asks for application/agent+json still reaches the
	// endpoint: negotiation is for GET (the reference implementation
	// redirects such POSTs to the manifest).
	ex = r.post(ctx, u, r.probeBody, "Accept", agentAccept)
	code, _ = r.judgeError(ex)
	switch {
	case ex.Err != nil:
		r.fail("converse.accept_agent_json", ex.failed(), "answer POSTs", ex)
	case isRedirect(ex.Status):
		r.fail("converse.accept_agent_json", statusText(ex.Status)+" to "+ex.Header.Get("Location"), "negotiate Accept: application/agent+json on GET and HEAD only; a POST to the converse endpoint must reach it whatever it accepts", ex)
	case httpx.IsJSON(ex.contentType()) && code != "":
		r.pass("converse.accept_agent_json", describeAnswer(ex, code)+", not a redirect", ex)
	default:
		r.fail("converse.accept_agent_json", describeAnswer(ex, code), "answer converse requests with the spec's JSON, whatever Accept says", ex)
	}

	r.checkErrorSchema()
	r.checkQueries(ctx, u, caps)
}

// checkAuthRequired sends each capability that needs credentials (up to
// maxCapabilityResults) a request without them: a site may guard one
// action and forget another, so one probe proves nothing for the rest.
// converse.www_authenticate judges every 401 the probes got.
func (r *runner) checkAuthRequired(ctx context.Context, u *url.URL, caps []capability) {
	seen := map[string]bool{}
	reported, more := 0, 0
	var unauthorized []*exchange
	var last *exchange
	var invalid []string
	for _, c := range caps {
		if !c.needsAuth() || seen[c.Name] {
			continue
		}
		seen[c.Name] = true
		switch {
		case !validCapabilityName(c.Name): // as converse.query: not sent, not echoed in full
			invalid = append(invalid, strconv.Quote(clip(c.Name, maxSubject)))
			continue
		case reported == maxCapabilityResults:
			more++
			continue
		}
		reported++
		ex := r.post(ctx, u, mustJSON(map[string]any{"ahp": "0.1", "capability": c.Name,
			"query": "caddy-ahp-check conformance probe without credentials: this request must be refused with 401 auth_required. Do not perform any action."}))
		last = ex
		code, _ := r.judgeError(ex)
		switch {
		case ex.Err != nil:
			r.record("converse.auth_required", c.Name, Fail, ex.failed(), "answer requests", ex)
		case ex.Status == http.StatusUnauthorized && code == "auth_required":
			r.record("converse.auth_required", c.Name, Pass, "401 auth_required without credentials", "", ex)
		case ex.Status >= 200 && ex.Status < 300:
			r.record("converse.auth_required", c.Name, Fail, statusText(ex.Status)+": the capability answered without credentials", "require credentials for action and async capabilities before the concierge runs them (spec §5.3, §8.2): answer 401 auth_required", ex)
		default:
			r.record("converse.auth_required", c.Name, Fail, describeAnswer(ex, code), `answer a request for an action capability without credentials with 401 {"status":"error","code":"auth_required",…} (spec §10)`, ex)
		}
		if ex.Err == nil && ex.Status == http.StatusUnauthorized {
			unauthorized = append(unauthorized, ex)
		}
	}
	if more > 0 {
		what := "1 more capability that needs credentials"
		if more > 1 {
			what = fmt.Sprintf("%d more capabilities that need credentials", more)
		}
		r.skip("converse.auth_required", what+" not probed: the checker checks at most "+fmt.Sprint(maxCapabilityResults)+" per run")
	}
	if len(invalid) > 0 {
		r.skip("converse.auth_required", fmt.Sprintf("%s not probed: %s, not capability names (^[a-z][a-z0-9_]*$, at most 64 characters; discovery.manifest_schema reports them)", plural(len(invalid), "capability"), joinNames(invalid)))
	}
	switch {
	case last == nil && len(invalid) > 0:
		r.skip("converse.www_authenticate", "no capability that needs credentials was probed")
	case last == nil:
		r.skip("converse.auth_required", "no capability needs credentials")
		r.skip("converse.www_authenticate", "no capability needs credentials")
	case len(unauthorized) == 0:
		r.skipBecause("converse.www_authenticate", last, "no 401")
	default:
		var without []string
		var first *exchange
		for _, ex := range unauthorized {
			if ex.Header.Get("WWW-Authenticate") == "" {
				without = append(without, ex.what())
				if first == nil {
					first = ex
				}
			}
		}
		if first != nil {
			r.fail("converse.www_authenticate", fmt.Sprintf("%d of %d 401 answers without WWW-Authenticate", len(without), len(unauthorized)), "send WWW-Authenticate with every 401 (RFC 9110 requires it), e.g. `Bearer realm=\"ahp\"` for bearer sites", first)
		} else {
			r.pass("converse.www_authenticate", "WWW-Authenticate: "+clip(unauthorized[0].Header.Get("WWW-Authenticate"), 80), unauthorized[0])
		}
	}
}

// checkErrorSchema judges every error answer the probes got.
func (r *runner) checkErrorSchema() {
	if len(r.errorAnswers) == 0 {
		r.skip("converse.error_schema", "no error answers")
		return
	}
	var bad []string
	var first *exchange
	for _, e := range r.errorAnswers {
		if len(e.problems) > 0 {
			bad = append(bad, statusText(e.ex.Status)+": "+strings.Join(e.problems, ", "))
			if first == nil {
				first = e.ex
			}
		}
	}
	if len(bad) > 0 {
		r.fail("converse.error_schema", fmt.Sprintf("%d of %d error answers: %s", len(bad), len(r.errorAnswers), joinListed(bad, "; ")), `answer every error with Content-Type: application/json and {"status":"error","code":<one of the spec's codes>,"message":…} (spec §10, response schema)`, first)
		return
	}
	r.pass("converse.error_schema", plural(len(r.errorAnswers), "error answer")+", all valid", r.errorAnswers[0].ex)
}

// maxCapabilityResults bounds the results of a check run per capability:
// a manifest may list thousands of capabilities, and neither the site nor
// the report should pay for each.
const maxCapabilityResults = 32

var capabilityNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// validCapabilityName: the manifest schema's rule for capability names.
func validCapabilityName(name string) bool {
	return len(name) <= maxSubject && capabilityNamePattern.MatchString(name)
}

var contentTypePattern = regexp.MustCompile(`^(text|application|media|file|x-[a-z][a-z0-9-]*)/[a-z][a-z0-9_-]*$`)

// checkQueries asks each MODE2 capability that needs no credentials one
// question and judges the answer.
func (r *runner) checkQueries(ctx context.Context, u *url.URL, caps []capability) {
	asked := false
	var signalsFrom *exchange
	var signalsObj map[string]any
	var invalid []string
	seen := map[string]bool{}
	reported, more := 0, 0
	for _, c := range caps {
		if c.Mode != "MODE2" || seen[c.Name] {
			continue
		}
		seen[c.Name] = true
		switch {
		case !validCapabilityName(c.Name):
			invalid = append(invalid, strconv.Quote(clip(c.Name, maxSubject)))
			continue
		case reported == maxCapabilityResults:
			more++
			continue
		}
		reported++
		if c.needsAuth() {
			r.record("converse.query", c.Name, Skip, "the capability needs credentials; the checker sends none", "", nil)
			continue
		}
		asked = true
		accept := []string{}
		for _, t := range append(append([]string{}, c.ResponseTypes...), "text/answer") {
			if contentTypePattern.MatchString(t) && !contains(accept, t) {
				accept = append(accept, t)
			}
		}
		body := mustJSON(map[string]any{"ahp": "0.1", "capability": c.Name,
			"query":   "What is this site about? Answer in one sentence. (caddy-ahp-check conformance probe)",
			"context": map[string]any{"requesting_agent": clip("caddy-ahp-check/"+r.opts.Version, 128), "accept_types": accept}})
		var ex *exchange
		if r.converseLimited != nil {
			ex = r.notSentLimited(http.MethodPost, u)
		} else {
			ex = r.c.do(ctx, request{Method: http.MethodPost, URL: u, Body: body, Timeout: 2 * r.opts.Timeout,
				Header: headerOf("Content-Type", "application/json", "Accept", "application/json")})
			r.noteLimited(ex)
		}
		if ex.Err == nil {
			r.keepAnswer("converse", ex)
		}
		if ex.Err != nil {
			r.record("converse.query", c.Name, Fail, ex.failed(), "answer queries to declared MODE2 capabilities (spec §5.2)", ex)
			continue
		}
		obj, err := decodeObject(ex.Body)
		status := ""
		if err == nil {
			status, _ = obj["status"].(string)
		}
		code, _ := obj["code"].(string)
		if ex.Status == http.StatusUnauthorized && code == "auth_required" && r.manifest.wantsCredentials() {
			r.record("converse.query", c.Name, Skip, "401 auth_required: the site (authentication "+strconv.Quote(r.manifest.Authentication)+") wants credentials for this capability too; "+noCredentials, "", ex)
			continue
		}
		if ex.Status != http.StatusOK || (status != "success" && status != "clarification_needed") {
			fix := "answer a well-formed query to a declared MODE2 capability with 200 and status success (or clarification_needed) (spec §5.2, §6.2)"
			r.record("converse.query", c.Name, Fail, describeAnswer(ex, code), fix, ex)
			continue
		}
		var ps []string
		if !httpx.IsJSON(ex.contentType()) {
			ps = append(ps, "Content-Type "+orUnknown(ex.Header.Get("Content-Type")))
		}
		ps = append(ps, checkResponse(ex.Body)...)
		if len(ps) > 0 {
			r.record("converse.query", c.Name, Fail, "200 "+status+", but: "+joinProblems(ps), "answer with the spec's response body (spec §6.2, response schema): the concierge's answer is what the agent gets", ex)
			continue
		}
		saw := "200 " + status
		if resp, ok := obj["response"].(map[string]any); ok {
			if a, ok := resp["answer"].(string); ok {
				saw += ": " + clip(a, 60)
			} else {
				saw += " (no response.answer, which §6.6 says SHOULD be present)"
			}
		}
		r.record("converse.query", c.Name, Pass, saw, "", ex)
		if status == "success" && signalsFrom == nil {
			signalsFrom, signalsObj = ex, obj
		}
	}
	if len(invalid) > 0 {
		r.skip("converse.query", fmt.Sprintf("%s not queried: %s, not capability names (^[a-z][a-z0-9_]*$, at most 64 characters; discovery.manifest_schema reports them)", plural(len(invalid), "capability"), joinNames(invalid)))
	}
	if more > 0 {
		r.skip("converse.query", fmt.Sprintf("%s more not queried: the checker checks at most %d per run", plural(more, "MODE2 capability"), maxCapabilityResults))
	}
	if !asked && !r.has("converse.query") {
		r.skip("converse.query", "no MODE2 capability")
	}
	switch {
	case signalsFrom == nil:
		r.skip("converse.signals_echo", "no success answer")
	default:
		meta, _ := signalsObj["meta"].(map[string]any)
		if _, ok := meta["content_signals"].(map[string]any); ok {
			r.pass("converse.signals_echo", "meta.content_signals present", signalsFrom)
		} else {
			r.fail("converse.signals_echo", "the success answer has no meta.content_signals", "echo the manifest's content_signals in meta.content_signals of answers (spec §7; behind Caddy the ahp directive adds them)", signalsFrom)
		}
	}
}

// has reports whether a result for id was recorded.
func (r *runner) has(id string) bool {
	for _, res := range r.results {
		if res.ID == id {
			return true
		}
	}
	return false
}

// post sends a converse request; error answers are kept for
// converse.error_schema and every answer for the rate limit checks.
func (r *runner) post(ctx context.Context, u *url.URL, body []byte, header ...string) *exchange {
	h := append([]string{"Content-Type", "application/json"}, header...)
	if !contains(header, "Accept") {
		h = append(h, "Accept", "application/json")
	}
	if r.converseLimited != nil {
		return r.notSentLimited(http.MethodPost, u)
	}
	ex := r.send(ctx, http.MethodPost, u, body, h...)
	r.noteLimited(ex)
	if ex.Err == nil {
		r.keepAnswer("converse", ex)
		if ex.Status >= 400 && ex.Status != http.StatusTooManyRequests {
			var ps []string
			if !httpx.IsJSON(ex.contentType()) {
				ps = append(ps, "Content-Type "+orUnknown(ex.Header.Get("Content-Type")))
			}
			ps = append(ps, checkResponse(ex.Body)...)
			r.errorAnswers = append(r.errorAnswers, judgedError{ex.summary(), ps})
		}
	}
	return ex
}

// noteLimited remembers a converse 429: after one, the checker sends no
// more converse probes (each would spend the site's limit and the budget
// to be refused again).
func (r *runner) noteLimited(ex *exchange) {
	if ex.Err == nil && ex.Status == http.StatusTooManyRequests && r.converseLimited == nil {
		r.converseLimited = ex
	}
}

// notSentLimited stands for a converse request not sent after a 429.
func (r *runner) notSentLimited(method string, u *url.URL) *exchange {
	l := r.converseLimited
	return &exchange{Method: method, URL: u.String(), Err: fmt.Errorf("%w with a 429 to %s: %s", errRateLimited, l.what(), retryHint(l))}
}

// judgeError reads an error answer's code (or "").
func (r *runner) judgeError(ex *exchange) (string, map[string]any) {
	if ex.Err != nil {
		return "", nil
	}
	obj, err := decodeObject(ex.Body)
	if err != nil {
		return "", nil
	}
	code, _ := obj["code"].(string)
	return code, obj
}

// describeAnswer is "400 invalid_request (application/json)" or
// "413 text/html: <html>…".
func describeAnswer(ex *exchange, code string) string {
	if ex.Err != nil {
		return ex.failed()
	}
	ct := orUnknown(ex.Header.Get("Content-Type"))
	if code != "" {
		return statusText(ex.Status) + " " + code + " (" + ct + ")"
	}
	if len(ex.Body) == 0 {
		return statusText(ex.Status) + ", empty body (" + ct + ")"
	}
	return statusText(ex.Status) + " " + ct + ": " + clip(string(ex.Body), 80)
}

// firstWithout is the first capability that needs no credentials.
func firstWithout(caps []capability) (capability, bool) {
	for _, c := range caps {
		if !c.needsAuth() {
			return c, true
		}
	}
	return capability{}, false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
