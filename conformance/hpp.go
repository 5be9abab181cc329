package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The fields of the checker's Handshake Prompt session: the user filled
// email in the browser; the agent may fill name but not email.
const (
	hppUserValue  = "owner@example.com"
	hppAgentValue = "caddy-ahp-check"
)

// hpp checks the Handshake Prompt wire format (docs/handshake-prompt.md):
// a session, its context with and without the token, and the protection
// of a field the user filled.
func (r *runner) hpp(ctx context.Context) {
	if !r.opts.HPP {
		r.skipAll(GroupHPP, "opt-in: --hpp creates a Handshake Prompt session on the site")
		return
	}
	r.locate(ctx)
	prefix := r.opts.HPPPrefix
	sessURL := r.site.ResolveReference(&url.URL{Path: prefix + "/session"})
	body := mustJSON(map[string]any{
		"mode": "form-fill",
		"schema": []any{
			map[string]any{"key": "name", "label": "Name", "type": "string"},
			map[string]any{"key": "email", "label": "Email", "type": "string"},
		},
		"context": map[string]any{"email": hppUserValue},
		"meta":    map[string]any{"created_by": "caddy-ahp-check conformance run"},
	})
	ex := r.send(ctx, http.MethodPost, sessURL, body, "Content-Type", "application/json", "Accept", "application/json")
	fix := "answer POST " + sessURL.Path + " with {sessionId, token, contextUrl, actionUrl, expiresIn} (or point --hpp-prefix at the site's prefix)"
	switch {
	case ex.Err != nil:
		r.fail("hpp.session", ex.failed(), fix, ex)
		r.skipAllBecause(GroupHPP, ex, "no session")
		return
	case ex.Status == http.StatusForbidden:
		r.skipAll(GroupHPP, "the site refused to create a session (403, its session hook's veto: "+clip(string(ex.Body), 80)+"); check a deployment that lets the checker create one")
		return
	case ex.Status != http.StatusOK && ex.Status != http.StatusCreated:
		r.fail("hpp.session", describeAnswer(ex, ""), fix, ex)
		r.skipAllBecause(GroupHPP, ex, "no session")
		return
	}
	obj, err := decodeObject(ex.Body)
	if err != nil {
		r.fail("hpp.session", err.Error(), fix, ex)
		r.skipAll(GroupHPP, "no session")
		return
	}
	sid, token := str(obj["sessionId"]), str(obj["token"])
	var ps []string
	if sid == "" {
		ps = append(ps, "no sessionId")
	} else if len(sid) < 32 {
		ps = append(ps, fmt.Sprintf("sessionId has %d characters; HPP uses 128 random bits (32 hex)", len(sid)))
	}
	if token == "" {
		ps = append(ps, "no token")
	} else if len(token) < 32 {
		ps = append(ps, fmt.Sprintf("the token has %d characters; HPP uses 192 random bits (32 URL-safe characters)", len(token)))
	}
	for _, k := range []string{"contextUrl", "actionUrl"} {
		if str(obj[k]) == "" {
			ps = append(ps, "no "+k)
		}
	}
	if n, ok := obj["expiresIn"].(json.Number); !ok || n.String() == "0" || strings.HasPrefix(n.String(), "-") {
		ps = append(ps, "no positive expiresIn")
	}
	if len(ps) > 0 {
		r.fail("hpp.session", joinProblems(ps), fix, ex)
		if sid == "" || token == "" {
			r.skipAll(GroupHPP, "no session")
			return
		}
	} else {
		r.pass("hpp.session", "session created (the token is not shown)", ex)
	}
	ctxURL := r.hppURL(obj, "contextUrl", prefix+"/context/"+sid)
	actURL := r.hppURL(obj, "actionUrl", prefix+"/action/"+sid)

	// Without the token, and with a wrong one.
	noTok := r.get(ctx, ctxURL, "Accept", "application/json")
	wrongTok := r.get(ctx, ctxURL, "Accept", "application/json", "X-Handshake-Token", randomHex(16))
	var bad []string
	for _, c := range []struct {
		name string
		ex   *exchange
	}{{"without a token", noTok}, {"with a wrong token", wrongTok}} {
		switch {
		case c.ex.Err != nil:
			bad = append(bad, c.name+": "+c.ex.failed())
		case c.ex.Status != http.StatusForbidden:
			bad = append(bad, c.name+": "+describeAnswer(c.ex, ""))
		}
	}
	if len(bad) > 0 {
		r.fail("hpp.token_required", strings.Join(bad, "; "), `refuse context, action and diff requests without the session's token with 403 {"error":"invalid token"}`, evidence(noTok, noTok, wrongTok))
	} else {
		r.pass("hpp.token_required", "403 without a token and with a wrong one", noTok)
	}

	// With the token.
	got := r.get(ctx, ctxURL, "Accept", "application/json", "X-Handshake-Token", token)
	field, cerr := hppField(got, sid, "email")
	switch {
	case cerr != "":
		r.fail("hpp.context", cerr, "answer GET "+ctxURL.Path+" with the token (X-Handshake-Token) with {sessionId, mode, schema, context:{key:{value, by, at}}, missing}", got)
	case field["value"] != hppUserValue || field["by"] != "user":
		r.fail("hpp.context", fmt.Sprintf("context.email is %v; the session was created with the user's value %q", field, hppUserValue), "keep the values the browser sent, marked by \"user\"", got)
	default:
		r.pass("hpp.context", "the context shows the user's email, by user", got)
	}

	// The agent writes both fields: name is applied, email refused.
	act := r.send(ctx, http.MethodPost, actURL, mustJSON(map[string]any{"actions": []any{
		map[string]any{"type": "set", "key": "email", "value": "agent@example.invalid"},
		map[string]any{"type": "set", "key": "name", "value": hppAgentValue},
	}}), "Content-Type", "application/json", "Accept", "application/json", "X-Handshake-Token", token)
	after := r.get(ctx, ctxURL, "Accept", "application/json", "X-Handshake-Token", token)
	r.judgeProtection(act, after, sid)

	// An unknown session.
	unknown := r.site.ResolveReference(&url.URL{Path: prefix + "/context/" + randomHex(16)})
	un := r.get(ctx, unknown, "Accept", "application/json", "X-Handshake-Token", token)
	switch {
	case un.Err != nil:
		r.fail("hpp.unknown_session", un.failed(), "answer unknown sessions with 404", un)
	case un.Status == http.StatusNotFound:
		r.pass("hpp.unknown_session", "404 for an unknown session", un)
	default:
		r.fail("hpp.unknown_session", describeAnswer(un, ""), `answer an unknown or expired session with 404 {"error":"session not found or expired"}`, un)
	}
}

// hppURL resolves a URL the session answer gave, or the default path.
func (r *runner) hppURL(obj map[string]any, key, fallback string) *url.URL {
	if v := str(obj[key]); v != "" {
		if u, err := r.c.resolve(r.site, v); err == nil {
			return u
		}
	}
	return r.site.ResolveReference(&url.URL{Path: fallback})
}

// hppField reads one field of a context answer, or says what is wrong.
func hppField(ex *exchange, sid, key string) (map[string]any, string) {
	if ex.Err != nil {
		return nil, ex.failed()
	}
	if ex.Status != http.StatusOK {
		return nil, describeAnswer(ex, "")
	}
	obj, err := decodeObject(ex.Body)
	if err != nil {
		return nil, err.Error()
	}
	if str(obj["sessionId"]) != sid {
		return nil, "sessionId is not the session's"
	}
	c, ok := obj["context"].(map[string]any)
	if !ok {
		return nil, "no context object"
	}
	f, ok := c[key].(map[string]any)
	if !ok {
		return nil, "context." + key + " is not a {value, by, at} object"
	}
	return f, ""
}

func (r *runner) judgeProtection(act, after *exchange, sid string) {
	fix := "refuse an agent's write to a field the user filled (by user or user_edit): list it in rejected and keep the user's value"
	if act.Err != nil {
		r.fail("hpp.user_field_protected", act.failed(), fix, act)
		return
	}
	if act.Status != http.StatusOK {
		r.fail("hpp.user_field_protected", "the action answer is "+describeAnswer(act, ""), fix, act)
		return
	}
	obj, err := decodeObject(act.Body)
	if err != nil {
		r.fail("hpp.user_field_protected", err.Error(), fix, act)
		return
	}
	var ps []string
	if !contains(strs(obj["rejected"]), "email") {
		ps = append(ps, fmt.Sprintf("rejected is %v, without email", strs(obj["rejected"])))
	}
	if !contains(strs(obj["applied"]), "name") {
		ps = append(ps, fmt.Sprintf("applied is %v, without name (an empty field the agent may fill)", strs(obj["applied"])))
	}
	if why, ok := unjudged(after, ""); ok {
		if len(ps) == 0 { // the action answer was right; the context could not be read
			r.skip("hpp.user_field_protected", "the context afterwards: "+why)
			return
		}
	} else if f, why := hppField(after, sid, "email"); why != "" {
		ps = append(ps, "the context afterwards: "+why)
	} else if f["value"] != hppUserValue {
		ps = append(ps, fmt.Sprintf("the user's email was overwritten with %v", f["value"]))
	}
	if len(ps) > 0 {
		r.fail("hpp.user_field_protected", joinProblems(ps), fix, act)
		return
	}
	r.pass("hpp.user_field_protected", "email (the user's) rejected and kept, name (empty) applied", act)
}
