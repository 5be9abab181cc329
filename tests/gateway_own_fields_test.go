package tests

// The gateway holds its own fields (rate limits, CORS) out of the
// answer's header while the concierge writes its answer, and puts them on
// the final answer (gateway's holdOwnHeaders). These check the answer a
// real Caddy sends after a concierge's 1xx, with an agent's Expect, and
// what a `header` directive can still edit.

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

const ownFieldsAnswer = `{"status":"success","session_id":null,"response":{"content_type":"text/answer","answer":"We are open Tuesday to Saturday."},"meta":{"tokens_used":10,"mode":"MODE2"}}`

// hintsConcierge sends 103 Early Hints before its JSON answer, as a
// concierge that preloads its assets does (Caddy's reverse_proxy relays
// 1xx since 2.8).
func hintsConcierge(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Link", "</app.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		fmt.Fprint(w, ownFieldsAnswer)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// After a concierge's 103 the answer still has the gateway's rate-limit
// and CORS fields: Caddy's 1xx hook snapshots the header map while the
// gateway holds them out and puts the snapshot back after the 103, so the
// gateway puts its fields on the final answer only (once lost them all).
func TestEarlyHintsKeepOwnFields(t *testing.T) {
	c := hintsConcierge(t)
	s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), "cors"))
	r := s.converse(`{"ahp":"0.1","capability":"site_info","query":"When are you open?"}`, "Origin", "https://agent.example")
	if r.StatusCode != 200 || !strings.Contains(string(r.body), "Tuesday") {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	assertRateHeaders(t, "converse after 103", r)
	if r.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("converse after 103: Access-Control-Allow-Origin missing (headers %v)", r.Header)
	}

	// The OpenAPI door (a recorder under the gateway) loses them the same way.
	file := t.TempDir() + "/llms.txt"
	writeFile(t, file, "# content\n")
	s2 := startCaddy(t, gatewaySite(c.Listener.Addr().String(), "openapi /openapi.json\n\t\tcontent /llms.txt "+file))
	r = s2.do(http.MethodPost, "/capabilities/site_info", strings.NewReader(`{"query":"When are you open?"}`), "Content-Type", "application/json")
	if r.StatusCode != 200 || !strings.Contains(string(r.body), "Tuesday") {
		t.Fatalf("openapi: status %d: %s", r.StatusCode, r.body)
	}
	assertRateHeaders(t, "openapi capability call after 103", r)

	// And the MCP door's tools/call.
	s3 := startCaddy(t, gatewaySite(c.Listener.Addr().String(), "mcp /mcp"))
	r = s3.do(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"When are you open?"}}}`),
		"Content-Type", "application/json", "Accept", "application/json, text/event-stream", "Mcp-Protocol-Version", "2025-06-18")
	if r.StatusCode != 200 || !strings.Contains(string(r.body), "Tuesday") {
		t.Fatalf("mcp: status %d: %s", r.StatusCode, r.body)
	}
	assertRateHeaders(t, "mcp tools/call after 103", r)
}

// A `header` directive inside the concierge's route edits the
// concierge's answer before the gateway's own fields go on: it cannot
// take them off or change them (one value, the gateway's). The same edits
// outside ahp (the site's `header`, ordered before ahp) apply: that is
// where an operator changes the gateway's fields.
func TestHeaderDirectiveAndOwnFields(t *testing.T) {
	const edits = "header -X-RateLimit-Window\n\theader >Access-Control-Allow-Origin https://only.example\n"
	c := newConcierge(t)
	site := gatewaySite(c.Listener.Addr().String(), "cors")
	for _, p := range []struct {
		where, site    string
		window, origin []string
	}{
		{"in the concierge's route", strings.Replace(site, "\t\treverse_proxy", "\t\t"+strings.ReplaceAll(edits, "\t", "\t\t")+"\t\treverse_proxy", 1),
			[]string{"60"}, []string{"*"}},
		{"outside ahp", strings.Replace(site, "\tahp {", "\t"+edits+"\tahp {", 1), nil, []string{"https://only.example"}},
	} {
		s := startCaddy(t, p.site)
		r := s.converse(`{"ahp":"0.1","capability":"site_info","query":"When are you open?"}`, "Origin", "https://agent.example")
		if r.StatusCode != 200 {
			t.Fatalf("%s: status %d: %s", p.where, r.StatusCode, r.body)
		}
		if v := r.Header.Values("X-RateLimit-Window"); !slices.Equal(v, p.window) {
			t.Errorf("`header -X-RateLimit-Window` %s: the agent gets %q, want %q", p.where, v, p.window)
		}
		if v := r.Header.Values("Access-Control-Allow-Origin"); !slices.Equal(v, p.origin) {
			t.Errorf("`header >Access-Control-Allow-Origin` %s: the agent gets %q, want %q", p.where, v, p.origin)
		}
	}
}

// An agent's `Expect: 100-continue` (curl sends it for large bodies) is
// not forwarded: the gateway has read the body. (Forwarded, the
// concierge's 100 Continue took the same 1xx path as a 103.)
func TestExpectContinueNotForwarded(t *testing.T) {
	c := newConcierge(t)
	s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), ""))
	r := s.converse(`{"ahp":"0.1","capability":"site_info","query":"When are you open?"}`, "Expect", "100-continue")
	if r.StatusCode != 200 || !strings.Contains(string(r.body), "Tuesday") {
		t.Fatalf("status %d: %s", r.StatusCode, r.body)
	}
	if v := c.last().header.Get("Expect"); v != "" {
		t.Errorf("the concierge got Expect %q", v)
	}
	assertRateHeaders(t, "converse with Expect: 100-continue", r)
}

// The doors (recorders under the gateway): every tools/call and
// capability call carries the rate-limit fields and an exact length,
// success, passed-through JSON error, replaced HTML error and the
// rate-limit refusal alike.
func TestDoorsKeepRateHeaders(t *testing.T) {
	c := newConcierge(t)
	s := startCaddy(t, frontDoorSite(t, c, "# content\n", "rate_limit {\n\t\t\tunauthenticated 4/minute\n\t\t}"))
	mcpCall := func() response {
		return s.do(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"site_info","arguments":{"query":"q"}}}`),
			"Content-Type", "application/json", "Accept", "application/json, text/event-stream", "Mcp-Protocol-Version", "2025-06-18")
	}
	apiCall := func() response {
		return s.do(http.MethodPost, "/capabilities/site_info", strings.NewReader(`{"query":"q"}`), "Content-Type", "application/json")
	}
	check := func(what string, r response, wantErr bool, wantText string) {
		t.Helper()
		assertRateHeaders(t, what, r)
		if r.ContentLength != int64(len(r.body)) {
			t.Errorf("%s: Content-Length %d for %d bytes", what, r.ContentLength, len(r.body))
		}
		if !strings.Contains(string(r.body), wantText) {
			t.Errorf("%s: body %s lacks %q", what, r.body, wantText)
		}
		if strings.Contains(r.Request.URL.Path, "mcp") && strings.Contains(string(r.body), `"isError":true`) != wantErr {
			t.Errorf("%s: isError %v wanted, body %s", what, wantErr, r.body)
		}
	}
	check("mcp success", mcpCall(), false, "Tuesday")
	check("openapi success", apiCall(), false, "Tuesday")
	c.setAnswer(func(map[string]any) (int, string, string) {
		return 404, "application/json", `{"status":"error","error":{"code":"not_found","message":"no such thing"}}`
	})
	check("mcp JSON error", mcpCall(), true, "not_found")
	c.setAnswer(func(map[string]any) (int, string, string) { return 500, "text/html", "<h1>oops</h1>" })
	check("openapi HTML error", apiCall(), false, "concierge_error")
	r := mcpCall()
	check("mcp refused (rate limited)", r, true, "rate_limited")
}
