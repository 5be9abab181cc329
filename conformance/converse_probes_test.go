package conformance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/conformance"
)

// converseRequest is what the test sites read of a converse body.
type converseRequest struct{ Capability, Query *string }

// converseSite serves manifest and hands converse POSTs, decoded, to
// answer; everything else is a 404.
func converseSite(t *testing.T, manifest string, answer func(w http.ResponseWriter, r *http.Request, req converseRequest, size int)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/.well-known/agent.json":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, manifest)
		case r.URL.Path == "/agent/converse" && r.Method == http.MethodPost:
			body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<10+1))
			var req converseRequest
			if len(body) <= 8<<10 && json.Unmarshal(body, &req) != nil {
				ahpErr(w, http.StatusBadRequest, "invalid_request", "")
				return
			}
			answer(w, r, req, len(body))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func ahpErr(w http.ResponseWriter, status int, code string, extra string) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ahp"`)
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"status":"error","code":%q,"message":"m"%s}`, code, extra)
}

func success(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"status":"success","session_id":null,"response":{"content_type":"text/answer","answer":"done"},"meta":{"tokens_used":1,"mode":"MODE2","content_signals":{"ai_input":true}}}`)
}

func results(rep *conformance.Report, id string) map[string]conformance.Result {
	out := map[string]conformance.Result{}
	for _, r := range rep.Results {
		if r.ID == id {
			out[r.Subject] = r
		}
	}
	return out
}

func runOpts(t *testing.T, opts conformance.Options) *conformance.Report {
	t.Helper()
	if opts.Rate == 0 {
		opts.Rate = 2000
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	opts.Version = "test"
	rep, err := conformance.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	validateReport(t, rep)
	return rep
}

func actionCap(name string) string {
	return fmt.Sprintf(`{"name":%q,"description":"d","mode":"MODE3","action_type":"action","input_schema":{"type":"object"},"output_schema":{"type":"object"}}`, name)
}

// TestAuthRequiredEveryCapability: every capability that needs
// credentials is probed, not only the first: a site that guards one
// action and runs another without credentials fails for that one.
func TestAuthRequiredEveryCapability(t *testing.T) {
	manifest := `{"ahp":"0.1","name":"x","modes":["MODE1","MODE3"],"authentication":"bearer","content_signals":{"ai_input":true},
		"capabilities":[` + actionCap("book_demo") + `,` + actionCap("refund") + `]}`
	srv := converseSite(t, manifest, func(w http.ResponseWriter, r *http.Request, req converseRequest, size int) {
		switch {
		case size > 8<<10:
			ahpErr(w, http.StatusRequestEntityTooLarge, "request_too_large", "")
		case req.Capability == nil || req.Query == nil:
			ahpErr(w, http.StatusBadRequest, "missing_field", "")
		case *req.Capability == "book_demo" && r.Header.Get("Authorization") == "":
			ahpErr(w, http.StatusUnauthorized, "auth_required", "")
		case *req.Capability == "refund":
			success(w) // the broken one: an action run without credentials
		default:
			ahpErr(w, http.StatusBadRequest, "unknown_capability", `,"available_capabilities":["book_demo","refund"]`)
		}
	})
	rep := runOpts(t, conformance.Options{URL: srv.URL, Only: []string{"converse"}})
	got := results(rep, "converse.auth_required")
	if got["book_demo"].Status != conformance.Pass || got["refund"].Status != conformance.Fail || len(got) != 2 {
		t.Errorf("converse.auth_required: %+v, want book_demo passing and refund failing\n%s", got, dump(rep))
	}
	if www := results(rep, "converse.www_authenticate")[""]; www.Status != conformance.Pass {
		t.Errorf("converse.www_authenticate: %s %q", www.Status, www.Saw)
	}
}

// TestAuthRequiredCapped: the per-capability auth probes are bounded like
// the queries; one skip counts the rest.
func TestAuthRequiredCapped(t *testing.T) {
	var caps []string
	for i := 0; i < 40; i++ {
		caps = append(caps, actionCap(fmt.Sprintf("act%d", i)))
	}
	manifest := `{"ahp":"0.1","name":"x","modes":["MODE1","MODE3"],"authentication":"bearer","content_signals":{"ai_input":true},"capabilities":[` + strings.Join(caps, ",") + `]}`
	var probes atomic.Int32
	srv := converseSite(t, manifest, func(w http.ResponseWriter, r *http.Request, req converseRequest, size int) {
		switch {
		case size > 8<<10:
			ahpErr(w, http.StatusRequestEntityTooLarge, "request_too_large", "")
		case req.Capability == nil || req.Query == nil:
			ahpErr(w, http.StatusBadRequest, "missing_field", "")
		case strings.HasPrefix(*req.Capability, "act"):
			probes.Add(1)
			ahpErr(w, http.StatusUnauthorized, "auth_required", "")
		default:
			ahpErr(w, http.StatusBadRequest, "unknown_capability", `,"available_capabilities":[]`)
		}
	})
	rep := runOpts(t, conformance.Options{URL: srv.URL, Only: []string{"converse.auth_required"}})
	got := results(rep, "converse.auth_required")
	if probes.Load() != 32 || len(got) != 33 {
		t.Errorf("%d probes, %d results, want 32 probes and 32 results plus one skip", probes.Load(), len(got))
	}
	if rest := got[""]; rest.Status != conformance.Skip || !strings.Contains(rest.Saw, "8 more") {
		t.Errorf("the rest: %s %q", rest.Status, rest.Saw)
	}
	if len(failed(rep)) > 0 {
		t.Errorf("failed %v", failed(rep))
	}
}

// bearerEverywhere is a manifest whose site wants credentials for every
// capability, the MODE2 one included (authentication bearer).
const bearerEverywhere = `{"ahp":"0.1","name":"x","modes":["MODE1","MODE2","MODE3"],"authentication":%q,"content_signals":{"ai_input":true},
	"capabilities":[{"name":"site_info","description":"About","mode":"MODE2"},` + `{"name":"book_demo","description":"Book","mode":"MODE3","action_type":"action","input_schema":{"type":"object"},"output_schema":{"type":"object"}}]}`

// authFirstSite refuses every request without credentials with 401
// auth_required once it knows the capability, before the fields.
func authFirstSite(t *testing.T, authentication string) *httptest.Server {
	return converseSite(t, fmt.Sprintf(bearerEverywhere, authentication), func(w http.ResponseWriter, r *http.Request, req converseRequest, size int) {
		switch {
		case size > 8<<10:
			ahpErr(w, http.StatusRequestEntityTooLarge, "request_too_large", "")
		case req.Capability == nil:
			ahpErr(w, http.StatusBadRequest, "missing_field", "")
		case *req.Capability != "site_info" && *req.Capability != "book_demo":
			ahpErr(w, http.StatusBadRequest, "unknown_capability", `,"available_capabilities":["site_info","book_demo"]`)
		case r.Header.Get("Authorization") == "":
			ahpErr(w, http.StatusUnauthorized, "auth_required", "")
		case req.Query == nil:
			ahpErr(w, http.StatusBadRequest, "missing_field", "")
		default:
			success(w)
		}
	})
}

// TestBearerEverywhere: a site with authentication bearer that wants
// credentials for every capability answers the checker's credential-less
// query and missing-field probe with 401 auth_required, correctly: those
// checks are skipped, saying why, not failed.
func TestBearerEverywhere(t *testing.T) {
	rep := runOpts(t, conformance.Options{URL: authFirstSite(t, "bearer").URL, Only: []string{"converse"}})
	if got := failed(rep); len(got) > 0 {
		t.Errorf("failed %v:\n%s", got, dump(rep))
	}
	for _, id := range []string{"converse.query", "converse.missing_field"} {
		for subject, r := range results(rep, id) {
			if r.Status != conformance.Skip || !strings.Contains(r.Saw, "credentials") {
				t.Errorf("%s [%s]: %s %q, want a skip saying it needs credentials", id, subject, r.Status, r.Saw)
			}
		}
	}
	// A site that declares no authentication has no business answering a
	// MODE2 query 401: that still fails.
	rep = runOpts(t, conformance.Options{URL: authFirstSite(t, "none").URL, Only: []string{"converse.query", "converse.missing_field"}})
	if got := strings.Join(failed(rep), " "); got != "converse.missing_field converse.query" {
		t.Errorf("with authentication none: failed %q, want missing_field and query", got)
	}
}

// TestSlowQuerySaysRaiseTimeout: a concierge slower than the timeout is
// reported with the way out: raise --timeout.
func TestSlowQuerySaysRaiseTimeout(t *testing.T) {
	manifest := `{"ahp":"0.1","name":"x","modes":["MODE2"],"content_signals":{"ai_input":true},"capabilities":[{"name":"site_info","description":"d","mode":"MODE2"}]}`
	srv := converseSite(t, manifest, func(w http.ResponseWriter, r *http.Request, req converseRequest, size int) {
		if req.Query != nil && req.Capability != nil && *req.Capability == "site_info" {
			<-r.Context().Done() // the concierge is slow
			return
		}
		ahpErr(w, http.StatusBadRequest, "missing_field", "")
	})
	rep := runOpts(t, conformance.Options{URL: srv.URL, Only: []string{"converse.query"}, Timeout: 50 * time.Millisecond})
	r := results(rep, "converse.query")["site_info"]
	if !strings.Contains(r.Saw, "raise --timeout") {
		t.Errorf("converse.query: %s %q, want it to say raise --timeout", r.Status, r.Saw)
	}
}

// TestCredentialsBeforeAnything: a site that declares authentication and
// asks every request for credentials before it reads the capability
// answers the unknown-capability probe 401 auth_required: a skip, not a
// failure.
func TestCredentialsBeforeAnything(t *testing.T) {
	srv := converseSite(t, fmt.Sprintf(bearerEverywhere, "bearer"), func(w http.ResponseWriter, r *http.Request, req converseRequest, size int) {
		if r.Header.Get("Authorization") == "" {
			ahpErr(w, http.StatusUnauthorized, "auth_required", "")
			return
		}
		success(w)
	})
	rep := runOpts(t, conformance.Options{URL: srv.URL, Only: []string{"converse.unknown_capability"}})
	r := results(rep, "converse.unknown_capability")[""]
	if r.Status != conformance.Skip || !strings.Contains(r.Saw, "credentials") {
		t.Errorf("converse.unknown_capability: %s %q, want a skip saying it needs credentials\n%s", r.Status, r.Saw, dump(rep))
	}
}
