package concierge

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/manifest"
)

// demoDir is the bundled demo site the README example serves.
var demoDir = filepath.Join("..", "examples", "site")

// handlerFetch fetches through an http.Handler in memory, as caddymodule
// fetches through the site's handler chain.
func handlerFetch(h http.Handler, calls *atomic.Int64) Fetch {
	return func(ctx context.Context, path string) (int, http.Header, []byte, error) {
		if calls != nil {
			calls.Add(1)
		}
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil)
		req.Header.Set("Accept", "text/html,text/plain;q=0.9,*/*;q=0.8")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Header(), rec.Body.Bytes(), nil
	}
}

// demoFetch serves the demo site's files as its file server does.
func demoFetch() Fetch { return handlerFetch(http.FileServer(http.Dir(demoDir)), nil) }

func tru() *bool { b := true; return &b }
func fls() *bool { b := false; return &b }

// demoManifest is the manifest of Caddyfile.example.
func demoManifest() *manifest.Manifest {
	return &manifest.Manifest{
		AHP:         "0.1",
		Name:        "Harbor & Pine Furniture Co.",
		Description: "Hand-built oak and walnut furniture from a family workshop in Portland, Oregon.",
		Modes:       []string{"MODE1", "MODE2", "MODE3"},
		Endpoints:   &manifest.Endpoints{Converse: "/agent/converse", Content: "/llms.txt"},
		Capabilities: []manifest.Capability{
			{Name: "site_info", Mode: "MODE2", Description: "General information about the workshop, its hours and its promise", ResponseTypes: []string{"text/answer"}},
			{Name: "content_search", Mode: "MODE2", Description: "Find journal posts and care guides by topic", ResponseTypes: []string{"text/answer", "application/feed"}, AcceptFallback: true},
			{Name: "book_demo", Mode: "MODE3", ActionType: "action", Description: "Book a showroom demo of a furniture piece"},
		},
		Authentication: "bearer",
		ContentSignals: &manifest.ContentSignals{AITrain: fls(), AIInput: tru(), Search: tru(), AttributionRequired: tru()},
	}
}

// demoConcierge builds the index of the demo site and a concierge on it.
func demoConcierge(t testing.TB) (*Concierge, *Index) {
	t.Helper()
	if _, err := os.Stat(demoDir); err != nil {
		t.Fatalf("demo site missing: %v", err)
	}
	ix := NewIndex(demoFetch(), IndexOptions{ContentPath: "/llms.txt", Hosts: []string{"localhost"}})
	if err := ix.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	return New(ix, demoManifest(), Options{}), ix
}

// decoded is an answer body as generic JSON.
type decoded map[string]any

func decode(t testing.TB, body []byte) decoded {
	t.Helper()
	var d decoded
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, body)
	}
	return d
}

func (d decoded) obj(k string) decoded {
	m, _ := d[k].(map[string]any)
	return m
}

func (d decoded) str(k string) string { s, _ := d[k].(string); return s }

func (d decoded) list(k string) []any { l, _ := d[k].([]any); return l }

// sources returns the answer's sources as (url, relevance) pairs.
func (d decoded) sources() [][2]string {
	var out [][2]string
	for _, s := range d.obj("response").list("sources") {
		m := s.(map[string]any)
		u, _ := m["url"].(string)
		r, _ := m["relevance"].(string)
		out = append(out, [2]string{u, r})
	}
	return out
}
