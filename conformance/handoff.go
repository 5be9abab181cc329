package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/caddy-ahp/caddy-ahp/handoff"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

const agentAccessPath = "/.well-known/agent-access"

var hexPattern = regexp.MustCompile(`^[0-9a-fA-F]+$`)

// challenge is a parsed admission challenge.
type challenge struct {
	Challenge  string
	Difficulty int
	ExpiresAt  time.Time
}

// handoff checks Agent Handoff discovery and, with CreateSandbox, admission.
func (r *runner) handoff(ctx context.Context) {
	u := r.site.ResolveReference(&url.URL{Path: agentAccessPath})
	ex := r.get(ctx, u, "Accept", "application/json")
	// Run alone (--only handoff), this is the run's first GET: it may be
	// what moves it to https, and the document's endpoints resolve against
	// where it was found.
	r.moveToHTTPS(ex)
	if len(ex.Hops) > 0 {
		if final, err := url.Parse(ex.Hops[len(ex.Hops)-1].URL); err == nil {
			u = final
		}
	}
	switch {
	case ex.Err != nil:
		r.skipAll(GroupHandoff, agentAccessPath+" could not be fetched: "+ex.failed())
		return
	case ex.Status == http.StatusNotFound || ex.Status == http.StatusGone:
		r.skipAll(GroupHandoff, "no "+agentAccessPath+" ("+statusText(ex.Status)+"): the site does not offer Agent Handoff")
		return
	case ex.Status >= 500:
		r.fail("handoff.document", statusText(ex.Status), "serve the discovery document at "+agentAccessPath+" (Agent Handoff §6.1)", ex)
		r.skipAll(GroupHandoff, "no discovery document")
		return
	case ex.Status != http.StatusOK:
		r.skipAll(GroupHandoff, agentAccessPath+" answered "+statusText(ex.Status)+": taken as no Agent Handoff")
		return
	case isHTML(ex):
		r.skipAll(GroupHandoff, agentAccessPath+" is an HTML page (a catch-all?), not a discovery document: taken as no Agent Handoff")
		return
	}
	if err := compileSchemas(); err != nil {
		r.fail("handoff.document", "the checker's schema failed: "+err.Error(), "report this checker bug", ex)
		r.skipAll(GroupHandoff, "no schema")
		return
	}
	var ps []string
	if !httpx.IsJSON(ex.contentType()) {
		ps = append(ps, "Content-Type "+orUnknown(ex.Header.Get("Content-Type")))
	}
	ps = append(ps, checkAgainst(agentAccess, ex.Body)...)
	doc, derr := decodeObject(ex.Body)
	if len(ps) > 0 {
		r.fail("handoff.document", joinProblems(ps), "serve the §6.1 document as application/json: ahp_version, sandbox.enabled and, for an enabled sandbox, admission, create_endpoint and (for proof_of_work) challenge_endpoint", ex)
	}
	if derr != nil {
		r.skipAll(GroupHandoff, "no discovery document")
		return
	}
	sandbox, _ := doc["sandbox"].(map[string]any)
	if len(ps) == 0 {
		r.pass("handoff.document", fmt.Sprintf("ahp_version %q, sandbox enabled %v, admission %v", str(doc["ahp_version"]), sandbox["enabled"], strs(sandbox["admission"])), ex)
	}
	if sandbox["enabled"] != true || !contains(strs(sandbox["admission"]), "proof_of_work") {
		r.skipAll(GroupHandoff, "the sandbox is not enabled with proof_of_work admission")
		return
	}
	if str(sandbox["challenge_endpoint"]) == "" {
		r.skipAll(GroupHandoff, "the document names no challenge_endpoint")
		return
	}
	chURL, err := r.c.resolve(u, str(sandbox["challenge_endpoint"]))
	if err != nil {
		r.skipAll(GroupHandoff, "challenge_endpoint "+err.Error())
		return
	}
	createURL, cerr := r.c.resolve(u, str(sandbox["create_endpoint"]))
	if cerr == nil && str(sandbox["create_endpoint"]) == "" {
		cerr = errors.New("is missing from the document")
	}

	first, _, ok := r.fetchChallenge(ctx, chURL, true)
	if !ok {
		r.skipAll(GroupHandoff, "no challenge"+r.skipNote("handoff.challenge"))
		return
	}
	if !r.opts.CreateSandbox {
		r.skipAll(GroupHandoff, "opt-in: --create-sandbox solves a challenge and creates a sandbox on the site")
		return
	}
	if cerr != nil {
		r.skipAll(GroupHandoff, "create_endpoint "+cerr.Error())
		return
	}
	if first.Difficulty > maxPoWDifficulty {
		// (2^28 hashes is a minute or two; more is not a check, it is a siege.)
		r.skipAll(GroupHandoff, fmt.Sprintf("difficulty %d bits is more than the checker solves (%d)", first.Difficulty, maxPoWDifficulty))
		return
	}
	admit := func(ch, nonce string) *exchange {
		body := mustJSON(map[string]any{"admission": map[string]any{"type": "proof_of_work", "challenge": ch, "nonce": nonce}, "metadata": map[string]any{"created_by": "caddy-ahp-check conformance run"}})
		return r.send(ctx, http.MethodPost, createURL, body, "Content-Type", "application/json", "Accept", "application/json")
	}

	// An unsolved nonce for a real challenge.
	unsolved := admit(first.Challenge, unsolvedNonce(first.Challenge, first.Difficulty))
	r.judgeRefusal("handoff.unsolved", unsolved, "refuse admissions whose nonce does not solve the challenge (Agent Handoff §11), with the same answer as every other admission failure (§10)")

	if unsolved.Err == nil && unsolved.Status >= 200 && unsolved.Status < 300 {
		r.results[len(r.results)-1].Saw += r.deleteSandbox(ctx, unsolved) // judgeRefusal's
	}

	// A challenge the site never issued.
	unknown := admit(randomHex(32), "0")
	r.judgeRefusal("handoff.unknown_challenge", unknown, "refuse admissions for challenges the site never issued (Agent Handoff §9, §11): look the challenge up in the store of issued, unexpired, unused challenges before verifying the nonce")
	if unknown.Err == nil && unknown.Status >= 200 && unknown.Status < 300 {
		r.results[len(r.results)-1].Saw += r.deleteSandbox(ctx, unknown) // judgeRefusal's
	}

	// A solved one, then its replay.
	second, secondEx, ok := r.fetchChallenge(ctx, chURL, false)
	if !ok {
		r.skipBecause("handoff.admission", secondEx, "no second challenge")
		r.skip("handoff.replay", "no admission")
		r.skip("handoff.uniform_errors", "no admission")
		return
	}
	if second.Difficulty > maxPoWDifficulty { // each challenge may ask more
		r.skip("handoff.admission", fmt.Sprintf("the second challenge's difficulty of %d bits is more than the checker solves (%d)", second.Difficulty, maxPoWDifficulty))
		r.skip("handoff.replay", "no admission")
		r.skip("handoff.uniform_errors", "no admission")
		return
	}
	deadline := 2 * time.Minute
	if !second.ExpiresAt.IsZero() {
		if left := second.ExpiresAt.Sub(secondEx.Date); left > 0 && left < deadline { // the site's clock
			deadline = left
		}
	}
	sctx, cancel := context.WithTimeout(ctx, deadline)
	start := time.Now()
	nonce, err := handoff.Solve(sctx, second.Challenge, second.Difficulty)
	cancel()
	if err != nil {
		r.skip("handoff.admission", fmt.Sprintf("the %d-bit challenge was not solved in %s", second.Difficulty, deadline.Round(time.Second)))
		r.skip("handoff.replay", "no admission")
		r.skip("handoff.uniform_errors", "no admission")
		return
	}
	solved := fmt.Sprintf("solved %d bits in %s", second.Difficulty, time.Since(start).Round(time.Millisecond))
	created := admit(second.Challenge, nonce)
	if r.judgeAdmission(ctx, created, solved) {
		replay := admit(second.Challenge, nonce)
		r.judgeRefusal("handoff.replay", replay, "consume a challenge atomically with its verification, so that a solution admits once (Agent Handoff §9, §11)")
		if replay.Err == nil && replay.Status >= 200 && replay.Status < 300 {
			r.results[len(r.results)-1].Saw += r.deleteSandbox(ctx, replay) // judgeRefusal's
		}
		if replay.Err == nil && replay.Status >= 400 && replay.Status < 500 {
			r.judgeUniform(replay, unknown, unsolved)
		} else {
			r.skip("handoff.uniform_errors", "the replay was not refused")
		}
	} else {
		r.skip("handoff.replay", "the solved admission was not accepted")
		r.skip("handoff.uniform_errors", "the solved admission was not accepted")
	}
}

// fetchChallenge gets and (when judge) judges a challenge.
func (r *runner) fetchChallenge(ctx context.Context, u *url.URL, judge bool) (challenge, *exchange, bool) {
	ex := r.get(ctx, u, "Accept", "application/json")
	fix := `answer GET ` + u.Path + ` with {"challenge":<hex>,"difficulty":<bits>,"algorithm":"sha256_leading_zeros","expires_at":<RFC 3339>} (Agent Handoff §7.1)`
	if ex.Err != nil {
		if judge {
			r.fail("handoff.challenge", ex.failed(), fix, ex)
		}
		return challenge{}, ex, false
	}
	if ex.Status != http.StatusOK {
		if judge {
			r.fail("handoff.challenge", describeAnswer(ex, ""), fix, ex)
		}
		return challenge{}, ex, false
	}
	obj, err := decodeObject(ex.Body)
	if err != nil {
		if judge {
			r.fail("handoff.challenge", err.Error(), fix, ex)
		}
		return challenge{}, ex, false
	}
	var ch challenge
	var ps []string
	ch.Challenge = str(obj["challenge"])
	switch {
	case ch.Challenge == "":
		ps = append(ps, "no challenge string")
	case !hexPattern.MatchString(ch.Challenge):
		ps = append(ps, "the challenge is not hex")
	case len(ch.Challenge) < 32:
		ps = append(ps, fmt.Sprintf("the challenge has %d bits; issue at least 128 random bits", len(ch.Challenge)*4))
	}
	if d, ok := obj["difficulty"].(json.Number); ok {
		n, err := d.Int64()
		if err != nil || n < 1 || n > 256 {
			ps = append(ps, "difficulty "+d.String()+" is not a number of bits from 1 to 256")
		} else {
			ch.Difficulty = int(n)
		}
	} else {
		ps = append(ps, "no integer difficulty")
	}
	if a := str(obj["algorithm"]); a != "sha256_leading_zeros" {
		ps = append(ps, fmt.Sprintf("algorithm %q, not sha256_leading_zeros", a))
	}
	note := ""
	if e := str(obj["expires_at"]); e == "" {
		ps = append(ps, "no expires_at")
	} else if t, err := time.Parse(time.RFC3339, e); err != nil {
		ps = append(ps, "expires_at "+e+" is not an ISO 8601 (RFC 3339) time")
	} else {
		ch.ExpiresAt = t
		switch ttl := t.Sub(ex.Date); {
		case ttl <= 0:
			ps = append(ps, "expires_at is already past")
		case ttl > 5*time.Minute+5*time.Second:
			note = fmt.Sprintf("; it lives %s, longer than the 5 minutes §29 and the project's notes advise", ttl.Round(time.Second))
		}
	}
	if !judge {
		return ch, ex, len(ps) == 0
	}
	if len(ps) > 0 {
		r.fail("handoff.challenge", joinProblems(ps), fix, ex)
		return ch, ex, false
	}
	r.pass("handoff.challenge", fmt.Sprintf("%d-bit challenge, %d bits of difficulty%s", len(ch.Challenge)*4, ch.Difficulty, note), ex)
	return ch, ex, true
}

// judgeRefusal: a refused admission is a 4xx.
func (r *runner) judgeRefusal(id string, ex *exchange, fix string) {
	switch {
	case ex.Err != nil:
		r.fail(id, ex.failed(), fix, ex)
	case ex.Status >= 400 && ex.Status < 500:
		r.pass(id, "refused: "+describeAnswer(ex, ""), ex)
	case ex.Status >= 200 && ex.Status < 300:
		r.fail(id, statusText(ex.Status)+": admitted", fix, ex)
	default:
		r.fail(id, describeAnswer(ex, ""), fix+"; answer with a 4xx, not an error or redirect", ex)
	}
}

// judgeAdmission checks the created sandbox, then deletes it when the site
// says how (the checker's sandbox should not outlive the check).
func (r *runner) judgeAdmission(ctx context.Context, ex *exchange, solved string) bool {
	fix := "accept an admission whose nonce solves a fresh challenge with 201 and the sandbox (Agent Handoff §7.2)"
	if ex.Err != nil {
		r.fail("handoff.admission", solved+"; "+ex.failed(), fix, ex)
		return false
	}
	if ex.Status != http.StatusCreated && ex.Status != http.StatusOK {
		r.fail("handoff.admission", solved+"; "+describeAnswer(ex, ""), fix, ex)
		return false
	}
	obj, err := decodeObject(ex.Body)
	if err != nil {
		r.fail("handoff.admission", solved+"; "+statusText(ex.Status)+" but "+err.Error(), fix, ex)
		return true
	}
	var ps []string
	for _, k := range []string{"id", "public_handle", "expires_at"} {
		if str(obj[k]) == "" {
			ps = append(ps, "no "+k)
		}
	}
	tok, _ := obj["agent_token"].(map[string]any)
	token := str(tok["token"])
	if token == "" {
		ps = append(ps, "no agent_token.token")
	}
	if ex.Status != http.StatusCreated {
		ps = append(ps, "status "+statusText(ex.Status)+", §7.2 answers 201")
	}
	saw := solved + "; " + statusText(ex.Status) + r.deleteSandbox(ctx, ex)
	if len(ps) > 0 {
		r.fail("handoff.admission", saw+"; "+joinProblems(ps), fix, ex)
		return true
	}
	r.pass("handoff.admission", saw, ex)
	return true
}

// deleteSandbox deletes the sandbox an admission answer created, when the
// answer names its delete endpoint and token (the checker's sandboxes
// should not outlive the check); it says how that went, for "saw", and
// never shows the token.
func (r *runner) deleteSandbox(ctx context.Context, created *exchange) string {
	obj, err := decodeObject(created.Body)
	if err != nil {
		return ""
	}
	tok, _ := obj["agent_token"].(map[string]any)
	token := str(tok["token"])
	ep, _ := obj["endpoints"].(map[string]any)
	if token == "" || str(ep["delete"]) == "" {
		return "; the answer names no delete endpoint: the sandbox is left to expire"
	}
	du, err := r.c.resolve(r.site, str(ep["delete"]))
	if err != nil {
		return "; the sandbox was not deleted: its delete endpoint " + err.Error()
	}
	d := r.send(ctx, http.MethodDelete, du, nil, "Authorization", "Bearer "+token)
	if d.Err != nil {
		return "; the sandbox was not deleted: " + d.failed()
	}
	return "; the sandbox was deleted afterwards (" + statusText(d.Status) + ")"
}

// judgeUniform compares the replay's answer with an unknown challenge's
// and an unsolved nonce's (§10: identical in shape, status and timing).
func (r *runner) judgeUniform(replay, unknown, unsolved *exchange) {
	var diffs, compared []string
	for _, other := range []struct {
		name string
		ex   *exchange
	}{{"an unknown challenge", unknown}, {"an unsolved nonce", unsolved}} {
		if other.ex.Err != nil || other.ex.Status < 400 || other.ex.Status >= 500 {
			continue // not a refusal: handoff.unsolved or handoff.unknown_challenge reports it
		}
		compared = append(compared, other.name)
		if d := answerDifference(replay, other.ex); d != "" {
			diffs = append(diffs, "the replay and "+other.name+" differ: "+d)
		}
	}
	switch {
	case len(compared) == 0:
		r.skip("handoff.uniform_errors", "no other refusal to compare the replay with")
	case len(diffs) > 0:
		r.fail("handoff.uniform_errors", strings.Join(diffs, "; "), "answer every admission failure (unknown, expired, used, unsolved) with one status and one body, so none is an oracle (Agent Handoff §10)", replay)
	default:
		r.pass("handoff.uniform_errors", "the replay, "+strings.Join(compared, " and ")+": "+describeAnswer(replay, ""), replay)
	}
}

// answerDifference says how two answers differ in status, media type or
// body shape ("" when they do not). JSON bodies are compared by structure
// and by the values of their code, error, message and status fields;
// other fields (a request id) may differ.
func answerDifference(a, b *exchange) string {
	if a.Status != b.Status {
		return fmt.Sprintf("status %d vs %d", a.Status, b.Status)
	}
	if a.contentType() != b.contentType() {
		return fmt.Sprintf("Content-Type %q vs %q", a.contentType(), b.contentType())
	}
	var va, vb any
	if json.Unmarshal(a.Body, &va) != nil || json.Unmarshal(b.Body, &vb) != nil {
		if string(a.Body) != string(b.Body) {
			return "the bodies differ"
		}
		return ""
	}
	sa, sb := jsonShape(va, ""), jsonShape(vb, "")
	if strings.Join(sa, ",") != strings.Join(sb, ",") {
		return fmt.Sprintf("body shape %s vs %s", clip(strings.Join(sa, ","), 120), clip(strings.Join(sb, ","), 120))
	}
	return ""
}

// jsonShape lists a value's paths and kinds, plus the values of fields
// that tell failures apart.
func jsonShape(v any, path string) []string {
	switch x := v.(type) {
	case map[string]any:
		var out []string
		for k, e := range x {
			p := path + "." + k
			if s, ok := e.(string); ok && (k == "code" || k == "error" || k == "message" || k == "status") {
				out = append(out, p+"="+s)
				continue
			}
			out = append(out, jsonShape(e, p)...)
		}
		sort.Strings(out)
		return out
	case []any:
		return []string{path + ":array"}
	default:
		return []string{path + ":" + jsonKind(x)}
	}
}
