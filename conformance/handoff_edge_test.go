package conformance_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/conformance"
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
	if len(rep.Results) != 6 {
		t.Errorf("%d results", len(rep.Results))
	}
}
