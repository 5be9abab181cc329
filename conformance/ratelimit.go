package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

// rateLimits judges the X-RateLimit-* headers every AHP answer of the run
// carried, then (opt-in) drives the site to a 429.
func (r *runner) rateLimits(ctx context.Context) {
	m := r.manifest
	var limitedOn, problems []string
	seen := map[string]bool{}
	converseAnswers, converseLimited := 0, 0
	var first *exchange
	for _, t := range r.ahpAnswers {
		rh := parseRateHeaders(t.ex.Header, t.ex.Date)
		if t.endpoint == "converse" {
			converseAnswers++
		}
		if !rh.any() {
			continue
		}
		if t.endpoint == "converse" {
			converseLimited++
		}
		if !seen[t.endpoint] {
			seen[t.endpoint] = true
			limitedOn = append(limitedOn, t.endpoint)
		}
		if first == nil {
			first = t.ex
		}
		for _, p := range rh.problems {
			problems = append(problems, statusText(t.ex.Status)+" "+t.ex.what()+": "+p)
		}
	}
	limited := len(limitedOn) > 0
	declared := m != nil && m.DeclaresLimits
	if m != nil && declared && converseAnswers > 0 && converseLimited < converseAnswers {
		problems = append(problems, fmt.Sprintf("%d of %d converse answers carry no X-RateLimit-* headers although the manifest declares limits", converseAnswers-converseLimited, converseAnswers))
	}

	switch {
	case m == nil:
		r.skipNoManifest("ratelimit.declared")
	case declared:
		what := "rate_limit " + str(m.raw["rate_limit"])
		if _, ok := m.raw["rate_limits"]; ok {
			what = "rate_limits"
			if m.UnauthRequests != "" {
				what += " (unauthenticated " + m.UnauthRequests + ")"
			}
		}
		r.pass("ratelimit.declared", "the manifest declares "+what, r.manifestEx)
	case limited:
		r.fail("ratelimit.declared", "X-RateLimit-* headers on "+strings.Join(limitedOn, ", ")+" answers, but the manifest declares no rate_limits", `declare the limits in the manifest: "rate_limits": {"unauthenticated": {"requests": "30/minute"}, …} (spec §11.5)`, r.manifestEx)
	default:
		r.skip("ratelimit.declared", "no limits seen and none declared")
	}

	if m == nil {
		r.skipNoManifest("ratelimit.active")
	} else if limited {
		r.pass("ratelimit.active", "X-RateLimit-* headers on "+strings.Join(limitedOn, ", ")+" answers", first)
	} else if r.c.refused > 0 {
		r.skipUnchecked("ratelimit.active", fmt.Sprintf("none of %d AHP endpoint answers carries X-RateLimit-* headers, but the budget ran out before every endpoint was asked: raise --budget", len(r.ahpAnswers)))
	} else if len(r.ahpAnswers) > 0 {
		r.fail("ratelimit.active", fmt.Sprintf("none of %d AHP endpoint answers carries X-RateLimit-* headers", len(r.ahpAnswers)), "rate limit the AHP endpoints and say so with X-RateLimit-Limit, -Remaining, -Reset and -Window (spec §11.1, §13; behind Caddy the ahp directive does, 30/minute unauthenticated by default)", r.ahpAnswers[0].ex)
	} else {
		r.skip("ratelimit.active", "no AHP endpoint answered")
	}

	switch {
	case len(problems) > 0:
		r.fail("ratelimit.headers", joinProblems(problems), "send all four headers on every answer of a limited endpoint: X-RateLimit-Limit, X-RateLimit-Remaining (0 ≤ remaining ≤ limit), X-RateLimit-Reset (Unix seconds) and X-RateLimit-Window (seconds) (spec §11.1)", first)
	case limited:
		r.pass("ratelimit.headers", "all four, coherent, on every limited answer ("+strings.Join(limitedOn, ", ")+")", first)
	default:
		r.skip("ratelimit.headers", "no rate limiting seen")
	}

	r.matchesManifest()
	r.exceed(ctx)
}

// matchesManifest compares the unauthenticated probe's limit with the
// declared unauthenticated rate.
func (r *runner) matchesManifest() {
	m := r.manifest
	if m == nil || m.UnauthRequests == "" {
		r.skip("ratelimit.matches_manifest", "no unauthenticated request rate declared")
		return
	}
	n, window, ok := parseRate(m.UnauthRequests)
	if !ok {
		r.skip("ratelimit.matches_manifest", "the declared rate "+strconv.Quote(m.UnauthRequests)+" is not N/period")
		return
	}
	if r.probe == nil || r.probe.Err != nil {
		r.skip("ratelimit.matches_manifest", "no converse answer to compare")
		return
	}
	rh := parseRateHeaders(r.probe.Header, r.probe.Date)
	if !rh.any() {
		r.skip("ratelimit.matches_manifest", "the converse answer carries no X-RateLimit-* headers")
		return
	}
	if rh.limit == n && rh.window == window {
		r.pass("ratelimit.matches_manifest", fmt.Sprintf("%d per %ds, as declared (%s)", n, window, m.UnauthRequests), r.probe)
		return
	}
	r.fail("ratelimit.matches_manifest", fmt.Sprintf("an unauthenticated converse request is limited to %d per %ds; the manifest declares %s", rh.limit, rh.window, m.UnauthRequests), "declare the limits the site enforces (spec §11.5: the declaration is for transparency)", r.probe)
}

// retryAfter reads how long a 429 asks the client to wait: Retry-After
// (seconds, or an HTTP date, taken against the answer's Date so that the
// checker's clock does not matter), else the body's retry_after, else
// X-RateLimit-Reset against Date.
func retryAfter(ex *exchange) (time.Duration, bool) {
	if ra := strings.TrimSpace(ex.Header.Get("Retry-After")); ra != "" {
		if n, err := strconv.ParseInt(ra, 10, 64); err == nil && n >= 0 {
			return time.Duration(n) * time.Second, true
		}
		if t, err := http.ParseTime(ra); err == nil {
			return max(t.Sub(ex.Date), 0), true
		}
	}
	if obj, err := decodeObject(ex.Body); err == nil {
		if n, ok := obj["retry_after"].(json.Number); ok {
			if v, err := n.Int64(); err == nil && v >= 0 {
				return time.Duration(v) * time.Second, true
			}
		}
	}
	if rh := parseRateHeaders(ex.Header, ex.Date); rh.reset > 1_000_000_000 {
		return max(time.Unix(rh.reset, 0).Sub(ex.Date), 0), true
	}
	return 0, false
}

// rateLimitedSaw is the "saw" of a check skipped for a 429.
func rateLimitedSaw(ex *exchange) string {
	return "rate limited (429 to " + ex.what() + "): " + retryHint(ex)
}

// retryHint says how to get a check stopped by a 429 to run.
func retryHint(ex *exchange) string {
	wait := "retry once its window has passed"
	if d, ok := retryAfter(ex); ok {
		wait = fmt.Sprintf("retry after %d s", int64(d.Round(time.Second)/time.Second))
	}
	return wait + ", or check from an address with room in its limit"
}

// parseRate reads "30/minute".
func parseRate(s string) (n, window int64, ok bool) {
	num, period, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, 0, false
	}
	switch period {
	case "second":
		window = 1
	case "minute":
		window = 60
	case "hour":
		window = 3600
	case "day":
		window = 86400
	default:
		return 0, 0, false
	}
	return n, window, true
}

// exceed repeats the cheapest limited request until the site answers 429,
// as many times as X-RateLimit-Remaining says (plus a little), then judges
// the 429. It runs last: afterwards the checker's address is limited.
func (r *runner) exceed(ctx context.Context) {
	const id = "ratelimit.exceeded"
	if !r.opts.RateLimit {
		r.skip(id, "opt-in: --rate-limit spends the site's limit for this address until it answers 429")
		return
	}
	type target struct {
		what string
		ex   *exchange
		send func() *exchange
	}
	var t *target
	if r.probe != nil && r.probe.Err == nil && parseRateHeaders(r.probe.Header, r.probe.Date).any() {
		t = &target{"the converse endpoint", r.probe, func() *exchange {
			return r.send(ctx, http.MethodPost, r.probeURL, r.probeBody, "Content-Type", "application/json", "Accept", "application/json")
		}}
	} else if r.manifestEx != nil && r.manifestEx.Err == nil && parseRateHeaders(r.manifestEx.Header, r.manifestEx.Date).any() {
		t = &target{"the manifest", r.manifestEx, func() *exchange {
			return r.c.do(ctx, request{Method: http.MethodGet, URL: r.manifestURL, Header: headerOf("Accept", "application/json")})
		}}
	}
	if t == nil {
		r.skip(id, "no X-RateLimit-* headers on the converse endpoint or the manifest: nothing to drive")
		return
	}
	last := t.ex
	sent := 0
	// At most what X-RateLimit-Remaining says, plus some slack for a
	// sliding window that refills while the checker sends.
	start := parseRateHeaders(last.Header, last.Date).remaining
	most := start + max(3, start/10)
	if last.Status != http.StatusTooManyRequests && most > int64(r.c.remaining()) {
		r.skipUnchecked(id, fmt.Sprintf("%s has %d requests left in its window; the budget leaves %d: raise --budget", t.what, start, r.c.remaining()))
		return
	}
	for last.Status != http.StatusTooManyRequests {
		if int64(sent) >= most {
			r.fail(id, fmt.Sprintf("no 429 from %s after %d requests; X-RateLimit-Remaining said %d before them and %d after", t.what, sent, start, parseRateHeaders(last.Header, last.Date).remaining), "refuse requests past the limit with 429 (spec §11)", last)
			return
		}
		ex := t.send()
		sent++
		if ex.Err != nil {
			r.fail(id, ex.failed(), "answer requests past the limit with 429", ex)
			return
		}
		last = ex
	}
	var ps []string
	ra := strings.TrimSpace(last.Header.Get("Retry-After"))
	raSecs := int64(-1)
	if ra == "" {
		ps = append(ps, "no Retry-After")
	} else if n, err := strconv.ParseInt(ra, 10, 64); err == nil && n >= 0 {
		raSecs = n
	} else if t, err := http.ParseTime(ra); err == nil {
		raSecs = int64(t.Sub(last.Date).Seconds()) // the site's clock, as for X-RateLimit-Reset
	} else {
		ps = append(ps, "Retry-After "+strconv.Quote(ra)+" is not a number of seconds")
	}
	rh := parseRateHeaders(last.Header, last.Date)
	if !rh.any() {
		ps = append(ps, "no X-RateLimit-* headers on the 429")
	}
	ps = append(ps, rh.problems...)
	if !httpx.IsJSON(last.contentType()) {
		ps = append(ps, "Content-Type "+orUnknown(last.Header.Get("Content-Type")))
	}
	obj, err := decodeObject(last.Body)
	if err != nil {
		ps = append(ps, "body "+err.Error())
	} else {
		if c := str(obj["code"]); c != "rate_limited" {
			ps = append(ps, fmt.Sprintf("code %q, not rate_limited", c))
		}
		ps = append(ps, checkResponse(last.Body)...)
		switch v := obj["retry_after"].(type) {
		case json.Number:
			if n, err := v.Int64(); err == nil && raSecs >= 0 && (n < raSecs-1 || n > raSecs+1) {
				ps = append(ps, fmt.Sprintf("retry_after %d disagrees with Retry-After %d", n, raSecs))
			}
		case nil:
			if _, present := obj["retry_after"]; present && str(obj["scope"]) != "session_tokens" {
				ps = append(ps, "retry_after is null, which §11.4 reserves for an exhausted session budget")
			}
		}
	}
	sort.Strings(ps)
	if len(ps) > 0 {
		r.fail(id, fmt.Sprintf("429 after %d requests to %s, but: %s", sent, t.what, joinProblems(ps)), `answer past the limit with 429, Retry-After (seconds), all four X-RateLimit-* headers and {"status":"error","code":"rate_limited","message":…,"retry_after":<seconds>} (spec §10, §11.1)`, last)
		return
	}
	r.pass(id, fmt.Sprintf("429 after %d requests to %s: Retry-After %s, X-RateLimit-* and rate_limited", sent, t.what, ra), last)
}
