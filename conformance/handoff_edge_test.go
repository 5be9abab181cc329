package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/conformance"
	"github.com/caddy-ahp/caddy-ahp/conformance/standin"
	"github.com/caddy-ahp/caddy-ahp/handoff"
)

type nextFunc func(http.ResponseWriter, *http.Request) error

func (f nextFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }

// TestAgainstHandoffEdge runs the Agent Handoff checks against the
// plugin's own edge (package handoff) in front of a stand-in backend:
// every check passes, the replay is refused with the one uniform failure.
func TestAgainstHandoffEdge(t *testing.T) {
	created := 0
	backend := nextFunc(func(w http.ResponseWriter, r *http.Request) error {
		io.Copy(io.Discard, r.Body)
		switch {
		case r.Method == http.MethodPost && r.URL.Path == handoff.DefaultCreatePath:
			if !strings.HasPrefix(r.Header.Get(handoff.AdmissionHeader), "verified") {
				t.Errorf("the backend got a creation the edge did not verify")
			}
			created++
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":"sbx_1","public_handle":"h1","status":"active","expires_at":"2030-01-01T00:00:00Z",
				"agent_token":{"token":"secret-token","expires_at":"2030-01-01T00:00:00Z","scopes":["sandbox:manage"]}}`)
		default:
			http.NotFound(w, r)
		}
		return nil
	})
	h, err := handoff.New(handoff.Config{
		Provider:   handoff.Provider{Name: "Edge Test"},
		Difficulty: handoff.Difficulty{Base: 10, Ceiling: 10},
		Store:      handoff.NewMemory(handoff.MemoryOptions{}),
		Sleep:      func(context.Context, time.Duration) {}, // no timing floor in tests
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.ServeHTTP(w, r, backend); err != nil {
			t.Errorf("handler: %v", err)
		}
	}))
	defer srv.Close()
	rep, err := conformance.Run(context.Background(), conformance.Options{URL: srv.URL, Only: []string{"handoff"}, CreateSandbox: true, Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Status != conformance.Pass {
			t.Errorf("%s: %s: %s", r.ID, r.Status, r.Saw)
		}
		if strings.Contains(r.Saw, "secret-token") {
			t.Errorf("%s shows the agent token", r.ID)
		}
	}
	if created != 1 {
		t.Errorf("the backend created %d sandboxes, want 1", created)
	}
	if len(rep.Results) != 7 {
		t.Errorf("%d results", len(rep.Results))
	}
}

// TestUnknownChallengeAdmitted: a site that admits a challenge it never
// issued fails (Agent Handoff §9, §11), even though its replay refusal
// looks uniform.
func TestUnknownChallengeAdmitted(t *testing.T) {
	site := standin.New(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/sandboxes" {
			body, _ := io.ReadAll(r.Body)
			var req struct {
				Admission struct{ Challenge string } `json:"admission"`
			}
			json.Unmarshal(body, &req)
			if !site.Issued(req.Admission.Challenge) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				io.WriteString(w, `{"id":"sbx_x","public_handle":"h","status":"active","expires_at":"2099-01-01T00:00:00Z","agent_token":{"token":"t"}}`)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		site.ServeHTTP(w, r)
	}))
	defer srv.Close()
	rep, err := conformance.Run(context.Background(), conformance.Options{URL: srv.URL, Only: []string{"handoff"}, CreateSandbox: true, Rate: 1000, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK {
		t.Errorf("a site admitting a never-issued challenge passes:\n%s", dump(rep))
	}
	if got := failed(rep); strings.Join(got, " ") != "handoff.unknown_challenge" {
		t.Errorf("failed %v, want handoff.unknown_challenge", got)
	}
}

// TestUnknownChallengeSandboxDeleted: the sandbox a broken site creates
// for a never-issued challenge is deleted, like the solved admission's.
func TestUnknownChallengeSandboxDeleted(t *testing.T) {
	site := standin.New(t, standin.HandoffUnknown)
	rep, err := conformance.Run(context.Background(), conformance.Options{URL: site.URL, Only: []string{"handoff"}, CreateSandbox: true, Rate: 1000, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if n := site.Requests("DELETE /v1/sandboxes/{id}"); n != 2 {
		t.Errorf("%d sandboxes deleted, want 2 (the unknown challenge's and the solved one's)", n)
	}
	for _, r := range rep.Results {
		if r.ID == "handoff.unknown_challenge" && !strings.Contains(r.Saw, "deleted afterwards") {
			t.Errorf("%s: %q does not say the sandbox was deleted", r.ID, r.Saw)
		}
	}
}

// TestSecondChallengeTooHard: the checker solves no challenge above its
// ceiling, the second one included (a site asking 60 bits would keep
// every CPU busy until the deadline).
func TestSecondChallengeTooHard(t *testing.T) {
	site := standin.New(t)
	challenges := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/sandboxes/challenge" {
			site.ServeHTTP(w, r)
			return
		}
		challenges++
		rec := httptest.NewRecorder()
		site.ServeHTTP(rec, r)
		var ch map[string]any
		json.Unmarshal(rec.Body.Bytes(), &ch)
		if challenges > 1 {
			ch["difficulty"] = 60
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(ch)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := conformance.Run(ctx, conformance.Options{URL: srv.URL, Only: []string{"handoff"}, CreateSandbox: true, Rate: 1000, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("%v: the checker tried to solve the 60-bit challenge", err)
	}
	for _, r := range rep.Results {
		if r.ID == "handoff.admission" && (r.Status != conformance.Skip || !strings.Contains(r.Saw, "60 bits")) {
			t.Errorf("%s: %s %q, want a skip naming the difficulty", r.ID, r.Status, r.Saw)
		}
	}
}
