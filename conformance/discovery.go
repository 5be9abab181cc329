package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/schema"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

const (
	linkValue   = `Link: </.well-known/agent.json>; rel="ahp-manifest"; type="application/agent+json"`
	fixLink     = "send `" + linkValue + "` on every response (behind Caddy: the ahp directive does; behind nginx: add_header Link '…' always)"
	browserAcc  = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	agentAccept = "application/agent+json"
)

// discovery runs the §3 checks. The manifest it reads is what every later
// group builds on, so it runs (and fetches the manifest) whenever any of
// them does; only the results of selected checks are reported.
func (r *runner) discovery(ctx context.Context) {
	r.checkManifest(ctx)
	if !r.sel.runs(GroupDiscovery) {
		return
	}
	r.checkLinks(ctx)
	home := r.checkNotice(ctx)
	r.checkNegotiation(ctx, home)
}

func (r *runner) checkManifest(ctx context.Context) {
	ex := r.get(ctx, r.manifestURL, "Accept", "application/json")
	r.manifestEx = ex
	r.moveToHTTPS(ex)
	if ex.Err != nil {
		r.fail("discovery.manifest_status", ex.failed(), "serve the manifest at "+r.manifestURL.Path+" (spec §3.1); check that the site is reachable from here", ex)
		if !errors.Is(ex.Err, context.DeadlineExceeded) && ctx.Err() == nil {
			// Refused, TLS, DNS: the rest would fail alike (a timeout
			// may be one slow answer; three in a row stop the run).
			r.c.unreachable = fmt.Errorf("%w (%s)", errUnreachable, ex.failed())
		}
		r.skipNoManifest("discovery.manifest_content_type", "discovery.manifest_schema", "discovery.manifest_rules", "discovery.response_types")
		return
	}
	if ex.Status != http.StatusOK {
		saw := statusText(ex.Status)
		if len(ex.Hops) > 1 {
			saw += " after redirects from " + ex.Hops[0].URL
		}
		if isRedirect(ex.Status) && len(ex.Hops) > maxRedirects {
			kind := "too many redirects"
			seen := map[string]bool{}
			for _, h := range ex.Hops {
				if seen[h.URL] {
					kind = "a redirect loop"
				}
				seen[h.URL] = true
			}
			saw += fmt.Sprintf(": %s (the checker gave up after %d)", kind, maxRedirects)
		}
		fix := "serve the AHP manifest with 200 at " + r.manifestURL.Path + " (spec §3.1: the only MUST of discovery)"
		if to, ok := r.offSiteRedirect(ex); ok {
			// Not followed: the checker's requests stay on the site it was
			// given, and the site elsewhere is for its own run.
			saw += " redirecting to " + to.Redacted() + " (not followed: another host)"
			fix = "the manifest redirects to another host, which the checker does not follow: check that site (caddy ahp check " + (&url.URL{Scheme: to.Scheme, Host: siteHost(to)}).String() + "), or serve the manifest at " + r.manifestURL.Path + " on this one"
		}
		if ex.Status == http.StatusTooManyRequests {
			// Never a skip: an agent that cannot fetch the manifest meets
			// no AHP site, whatever the reason.
			saw += ": " + retryHint(ex)
			fix = "serve the manifest to agents (spec §3.1, the only MUST of discovery): exempt " + r.manifestURL.Path + " from rate limits tight enough to refuse one fetch, or run the check again once the limit has reset"
		}
		r.fail("discovery.manifest_status", saw, fix, ex)
		r.skipNoManifest("discovery.manifest_content_type", "discovery.manifest_schema", "discovery.manifest_rules", "discovery.response_types")
		return
	}
	r.keepAnswer("manifest", ex)
	saw := "200, " + fmt.Sprint(len(ex.Body)) + " bytes"
	if ex.Truncated {
		saw = "200, more than " + maxBodyText
	}
	if len(ex.Hops) > 1 {
		saw += " after " + fmt.Sprint(len(ex.Hops)-1) + " redirect(s) from " + ex.Hops[0].URL
	}
	r.pass("discovery.manifest_status", saw, ex)

	ct := ex.Header.Get("Content-Type")
	if httpx.MediaType(ct) == "application/json" {
		r.pass("discovery.manifest_content_type", "Content-Type: "+ct, ex)
	} else {
		fix := "serve " + r.manifestURL.Path + " with Content-Type: application/json (spec §3.1; application/agent+json is for answers to Accept: application/agent+json)"
		if ct == "" {
			r.fail("discovery.manifest_content_type", "no Content-Type", fix, ex)
		} else {
			r.fail("discovery.manifest_content_type", "Content-Type: "+ct, fix, ex)
		}
	}

	if ex.Truncated {
		// Not a syntax error of the site's: the checker stopped reading.
		why := "the manifest is larger than the checker reads (" + maxBodyText + "): not judged"
		r.skipUnchecked("discovery.manifest_schema", why)
		r.skipUnchecked("discovery.manifest_rules", why)
		r.skipUnchecked("discovery.response_types", why)
		return
	}
	m, err := parseSiteManifest(ex.Body)
	if err != nil {
		r.fail("discovery.manifest_schema", "the manifest is "+err.Error()+": "+clip(string(ex.Body), 80), "serve a JSON object that validates against https://agenthandshake.dev/schema/0.1/manifest.json", ex)
		r.skipNoManifest("discovery.manifest_rules", "discovery.response_types")
		return
	}
	r.manifest = m
	if m.AHP != "" && m.AHP != manifest.Version {
		// Not a failure: the schema judges the field's form, and §12 makes
		// minor versions backwards compatible; the reader should know the
		// checks are 0.1's.
		r.notes = append(r.notes, fmt.Sprintf("the manifest says ahp %q, a version this checker does not know: it checks the site against AHP %s", clip(m.AHP, 20), manifest.Version))
	}
	problems, err := schema.Check(schema.ManifestSchema, ex.Body)
	switch {
	case err != nil:
		r.fail("discovery.manifest_schema", "the checker's schema failed: "+err.Error(), "report this checker bug", ex)
	case len(problems) == 0:
		r.pass("discovery.manifest_schema", fmt.Sprintf("valid (ahp %q, modes %v, %d capabilities)", m.AHP, m.Modes, len(m.Capabilities)), ex)
	default:
		fix := "make the manifest valid against the AHP 0.1 schema (Appendix A); `integrations` and a capability's `auth_required` are admitted as the spec text uses them"
		if m.looksLikeA2A() {
			fix = "this looks like an A2A agent card, not an AHP manifest: A2A moved its card to /.well-known/agent-card.json; serve the AHP manifest here"
		}
		r.fail("discovery.manifest_schema", joinProblems(problemStrings(problems)), fix, ex)
	}
	r.checkResponseTypes(m, ex)
	if ps := m.rules(); len(ps) > 0 {
		r.fail("discovery.manifest_rules", joinProblems(ps), "fix the manifest as each problem says (spec §4.3, §5.2, §5.3)", ex)
	} else {
		r.pass("discovery.manifest_rules", "capabilities, modes, action types, schemas and authentication agree", ex)
	}
}

// checkResponseTypes warns of response types that are neither in the core
// registry nor x- extensions (Appendix C): the schema's pattern admits
// e.g. application/pdf, which no agent can know the payload of.
func (r *runner) checkResponseTypes(m *siteManifest, ex *exchange) {
	declared := false
	var odd []string
	for _, c := range m.Capabilities {
		for _, t := range c.ResponseTypes {
			declared = true
			if !manifest.RegisteredResponseType(t) {
				odd = append(odd, c.Name+": "+t)
			}
		}
	}
	switch {
	case !declared:
		r.skip("discovery.response_types", "no capability declares response_types")
	case len(odd) > 0:
		r.fail("discovery.response_types", "not in the registry and not x-: "+joinNames(odd),
			"use a core type ("+strings.Join(manifest.CoreResponseTypes, ", ")+") or name a custom type x-vendor/type (spec Appendix C.3)", ex)
	default:
		r.pass("discovery.response_types", "every response type is a registry type or an x- extension", ex)
	}
}

// checkLinks looks for the ahp-manifest Link on the home page (every hop),
// a 404, a HEAD and the manifest itself.
func (r *runner) checkLinks(ctx context.Context) {
	home := r.site
	ex := r.get(ctx, home, "Accept", browserAcc)
	r.linkCheck("discovery.link_home", ex, true)

	nf := r.site.ResolveReference(&url.URL{Path: "/ahp-check-" + randomHex(6) + "-not-found"})
	ex404 := r.get(ctx, nf, "Accept", browserAcc)
	r.linkCheck("discovery.link_not_found", ex404, true)
	if ex404.Err == nil && ex404.Status == http.StatusOK {
		r.results[len(r.results)-1].Saw += " (the site answers 200 for a page that does not exist)"
	}
	r.notFound = ex404

	head := r.c.do(ctx, request{Method: http.MethodHead, URL: home, Header: headerOf("Accept", browserAcc)})
	r.linkCheck("discovery.link_head", head, false)

	if r.manifestEx != nil && r.manifestEx.Err == nil && r.manifestEx.Status == http.StatusOK {
		r.linkCheck("discovery.link_manifest", r.manifestEx, false)
	} else {
		r.skip("discovery.link_manifest", "no manifest answer")
	}
	r.home = ex
}

func (r *runner) linkCheck(id string, ex *exchange, allHops bool) {
	if ex.Err != nil {
		if len(ex.Hops) == 0 {
			r.fail(id, ex.failed(), fixLink, ex)
			return
		}
	}
	hops := ex.Hops
	if !allHops && len(hops) > 1 {
		hops = hops[len(hops)-1:] // the answer itself, not the redirects to it
	}
	for _, h := range hops {
		base, _ := url.Parse(h.URL)
		if ok, why := manifestLink(h.Header, base, r.manifestURL); !ok {
			saw := why + " on " + statusText(h.Status) + " " + h.URL
			r.fail(id, saw, fixLink, ex)
			return
		}
	}
	saw := fmt.Sprintf("rel=\"ahp-manifest\" on %s", statusText(ex.Status))
	if len(hops) > 1 {
		saw = fmt.Sprintf("rel=\"ahp-manifest\" on all %d responses (redirects included)", len(hops))
	}
	r.pass(id, saw, ex)
}

// checkNotice judges the notice of the home page and of the 404 page; it
// returns the home page answer for the negotiation checks.
func (r *runner) checkNotice(ctx context.Context) *exchange {
	home := r.home
	ids := []string{"discovery.notice_present", "discovery.notice_once", "discovery.notice_in_body", "discovery.notice_hidden", "discovery.notice_text"}
	switch {
	case home == nil || home.Err != nil:
		for _, id := range ids {
			r.skip(id, "the home page could not be fetched: "+unavailable(home))
		}
	case !isHTML(home):
		for _, id := range ids {
			r.skip(id, "the home page is not HTML ("+orUnknown(home.Header.Get("Content-Type"))+")")
		}
	default:
		s := scanNotice(home.Body)
		fixAdd := `add <section class="ahp-notice" aria-label="AI Agent Notice" style="display:none">…</section> before </body> of every page (spec §3.3; behind Caddy the ahp directive inserts it)`
		switch {
		case s.Count == 0 && s.InTemplate > 0:
			r.fail(ids[0], "the notice is only inside <template>, which browsers do not render", fixAdd, home)
		case s.Count == 0:
			r.fail(ids[0], "no element with class ahp-notice or aria-label \"AI Agent Notice\" in the raw HTML ("+fmt.Sprint(len(home.Body))+" bytes)", fixAdd, home)
		default:
			r.pass(ids[0], "found "+s.Tag, home)
		}
		if s.Count == 0 {
			for _, id := range ids[1:] {
				r.skip(id, "no notice")
			}
		} else {
			if s.Count == 1 {
				r.pass(ids[1], "one notice", home)
			} else {
				r.fail(ids[1], fmt.Sprintf("%d notices in one page", s.Count), "keep one notice per page: a page that already has one must not get another (check for a template and an injector both adding it)", home)
			}
			if s.OutsideBody == 0 {
				r.pass(ids[2], "inside <body>", home)
			} else {
				r.fail(ids[2], fmt.Sprintf("%d notice(s) outside <body> (in <head> or after </body>)", s.OutsideBody), "put the notice in the page's body, e.g. just before </body>", home)
			}
			if s.Hidden {
				r.pass(ids[3], "hidden by "+s.HiddenBy, home)
			} else {
				r.fail(ids[3], "the notice has no display:none, hidden attribute or hiding class in the raw HTML: "+s.Tag, `add style="display:none" to the notice (spec §3.3: hidden from humans, present in the DOM); if a stylesheet hides it, this is a false alarm`, home)
			}
			// §3.3: the notice exists to tell an agent reading the page
			// where the manifest is; an empty element tells it nothing.
			fixText := "write in the notice, for an agent reading the page, that the site supports AHP and where: `GET /.well-known/agent.json` (spec §3.3)"
			switch {
			case s.Text == "":
				r.fail(ids[4], "the notice has no text: "+s.Tag, fixText, home)
			case !strings.Contains(s.Text, "agent.json"):
				r.fail(ids[4], "the notice does not mention /.well-known/agent.json: "+clip(s.Text, 120), fixText, home)
			default:
				r.pass(ids[4], "names the manifest: "+clip(s.Text, 120), home)
			}
		}
	}
	nf := r.notFound
	switch {
	case nf == nil || nf.Err != nil:
		r.skip("discovery.notice_not_found", "the 404 page could not be fetched: "+unavailable(nf))
	case !isHTML(nf):
		r.skip("discovery.notice_not_found", "the "+statusText(nf.Status)+" page is not HTML ("+orUnknown(nf.Header.Get("Content-Type"))+")")
	default:
		if s := scanNotice(nf.Body); s.Count > 0 {
			r.pass("discovery.notice_not_found", "the "+statusText(nf.Status)+" page has the notice", nf)
		} else {
			r.fail("discovery.notice_not_found", "the "+statusText(nf.Status)+" page has no notice", "add the notice to error pages too: an agent following a broken link should still discover AHP (spec §3.3)", nf)
		}
	}
	return home
}

// offSiteRedirect is where ex's final answer redirects when that is off
// the site (so the client did not follow it).
func (r *runner) offSiteRedirect(ex *exchange) (*url.URL, bool) {
	if !isRedirect(ex.Status) {
		return nil, false
	}
	base, err := url.Parse(ex.URL)
	if err != nil {
		return nil, false
	}
	to, err := base.Parse(ex.Header.Get("Location"))
	if err != nil || ex.Header.Get("Location") == "" || r.c.sameSite(to) {
		return nil, false
	}
	return to, true
}

func isHTML(ex *exchange) bool {
	mt := ex.contentType()
	return mt == "text/html" || mt == "application/xhtml+xml"
}

func orUnknown(ct string) string {
	if ct == "" {
		return "no Content-Type"
	}
	return ct
}

// checkNegotiation asks the home page for application/agent+json in
// several ways.
func (r *runner) checkNegotiation(ctx context.Context, home *exchange) {
	neg := r.send(ctx, http.MethodGet, r.site, nil, "Accept", agentAccept)
	negotiates := false
	switch {
	case neg.Err != nil:
		r.fail("discovery.accept_negotiation", neg.failed(), "answer Accept: application/agent+json", neg)
	case (neg.Status == http.StatusMovedPermanently || neg.Status == http.StatusPermanentRedirect) && r.isManifestAnswer(neg):
		negotiates = true
		r.fail("discovery.accept_negotiation", statusText(neg.Status)+" to "+neg.Header.Get("Location")+": a permanent redirect is cached and replayed for browsers too", "answer with 302 to "+r.manifestURL.Path+" or 200 with the manifest (spec §3.4)", neg)
	case r.isManifestAnswer(neg):
		negotiates = true
		r.pass("discovery.accept_negotiation", r.describeManifestAnswer(neg), neg)
	default:
		r.fail("discovery.accept_negotiation", "answered "+statusText(neg.Status)+" ("+orUnknown(neg.Header.Get("Content-Type"))+"), not the manifest", "answer Accept: application/agent+json on GET with 302 to "+r.manifestURL.Path+" or 200 with the manifest (spec §3.4)", neg)
	}

	q0 := r.send(ctx, http.MethodGet, r.site, nil, "Accept", "application/agent+json;q=0, text/html")
	switch {
	case q0.Err != nil:
		r.fail("discovery.accept_q0", q0.failed(), "answer such requests with the page", q0)
	case r.isManifestAnswer(q0):
		r.fail("discovery.accept_q0", "q=0 was answered with "+r.describeManifestAnswer(q0), "treat application/agent+json;q=0 as \"not acceptable\" (RFC 9110 §12.4.2): serve the page", q0)
	default:
		r.pass("discovery.accept_q0", "the page ("+statusText(q0.Status)+")", q0)
	}

	var hijacked []string
	var wild *exchange
	for _, acc := range []string{"*/*", browserAcc} {
		ex := r.send(ctx, http.MethodGet, r.site, nil, "Accept", acc)
		wild = ex
		if ex.Err != nil {
			r.fail("discovery.accept_wildcard", ex.failed(), "serve pages to browsers", ex)
			hijacked = nil
			wild = nil
			break
		}
		if r.isManifestAnswer(ex) {
			hijacked = append(hijacked, "Accept: "+acc+" got "+r.describeManifestAnswer(ex))
		}
	}
	if wild != nil {
		if len(hijacked) > 0 {
			r.fail("discovery.accept_wildcard", strings.Join(hijacked, "; "), "negotiate only on an explicit application/agent+json with q > 0: wildcards are what browsers send", wild)
		} else {
			r.pass("discovery.accept_wildcard", "*/* and a browser's Accept get the page", wild)
		}
	}

	switch {
	case neg.Err != nil:
		r.skip("discovery.vary_accept", "no answer to Accept: application/agent+json: "+neg.failed())
	case !negotiates:
		r.skip("discovery.vary_accept", "the site does not negotiate on Accept")
	default:
		var missing []string
		for _, ex := range []*exchange{neg, home} {
			if ex == nil || ex.Err != nil {
				continue
			}
			first := ex.Hops[0]
			if !hasToken(first.Header, "Vary", "Accept") && !hasToken(first.Header, "Vary", "*") {
				missing = append(missing, statusText(first.Status)+" "+first.URL+" (Vary: "+orEmpty(first.Header.Get("Vary"))+")")
			}
		}
		if len(missing) > 0 {
			r.fail("discovery.vary_accept", "no Vary: Accept on "+strings.Join(missing, " and "), "add Vary: Accept to every response whose content depends on Accept (the page and the negotiated answer), so caches keep them apart", neg)
		} else {
			r.pass("discovery.vary_accept", "Vary: Accept on the negotiated answer and the page", neg)
		}
	}
}

func orEmpty(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// isManifestAnswer: a redirect to the manifest, or a 200 JSON body that is
// the manifest (same ahp version and name).
func (r *runner) isManifestAnswer(ex *exchange) bool {
	if isRedirect(ex.Status) {
		loc, err := url.Parse(ex.Header.Get("Location"))
		if err != nil {
			return false
		}
		base, _ := url.Parse(ex.URL)
		t := base.ResolveReference(loc)
		return sameHost(t, r.manifestURL) && t.Path == r.manifestURL.Path
	}
	if ex.Status != http.StatusOK || !httpx.IsJSON(ex.contentType()) {
		return false
	}
	var v map[string]any
	if json.Unmarshal(ex.Body, &v) != nil {
		return false
	}
	_, hasAHP := v["ahp"]
	return hasAHP
}

func (r *runner) describeManifestAnswer(ex *exchange) string {
	if isRedirect(ex.Status) {
		return statusText(ex.Status) + " to " + ex.Header.Get("Location")
	}
	return "200 with the manifest (" + ex.Header.Get("Content-Type") + ")"
}
