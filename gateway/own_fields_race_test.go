package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Concurrent calls through a real reverse proxy (whose transport closes
// the forwarded body on its own goroutine, possibly after the handler
// returned), interleaved with refusals that reuse pooled admissions: each
// answer carries its own decision's rate-limit fields, exactly one value
// each, never another call's and never the concierge's; run with -race.
func TestConcurrentOwnFields(t *testing.T) {
	g := testGateway(t, testOptions{limits: true, cors: true})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Ratelimit-Remaining", "concierge")
		w.Header().Set("Access-Control-Allow-Origin", "https://concierge.example")
		if strings.Contains(r.URL.Path, "status") {
			fmt.Fprint(w, `{"status":"pending"}`)
			return
		}
		fmt.Fprint(w, `{"status":"success","response":{"answer":"x"},"meta":{"tokens_used":1}}`)
	}))
	defer upstream.Close()
	u, _ := url.Parse(upstream.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	next := nextFunc(func(w http.ResponseWriter, r *http.Request) error { rp.ServeHTTP(w, r); return nil })

	const workers, calls = 6, 60
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for wkr := 0; wkr < workers; wkr++ {
		wg.Add(1)
		go func(wkr int) {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				var r *http.Request
				route := ConverseRoute
				switch i % 3 {
				case 0:
					r = httptest.NewRequest(http.MethodPost, "/agent/converse", strings.NewReader(`{"capability":"site_info","query":"hi"}`))
				case 1:
					r = httptest.NewRequest(http.MethodPost, "/agent/converse", strings.NewReader(`{"capability":"nope"`))
				case 2:
					r = httptest.NewRequest(http.MethodGet, "/agent/converse/status/job", nil)
					r.Header.Set("Authorization", "Bearer "+testKey) // a poll needs a credential (CheckPoll)
					route = StatusRoute
				}
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Origin", "https://agent.example")
				rec := httptest.NewRecorder()
				_ = g.ServeHTTP(rec, r, route, next)
				h := rec.Result().Header
				rem := h.Values("X-Ratelimit-Remaining")
				if len(rem) != 1 || rem[0] == "concierge" {
					t.Errorf("worker %d call %d (kind %d): X-RateLimit-Remaining %q, status %d", wkr, i, i%3, rem, rec.Code)
					continue
				}
				if v := h.Values("Access-Control-Allow-Origin"); len(v) != 1 || v[0] != "*" {
					t.Errorf("worker %d call %d (kind %d): Access-Control-Allow-Origin %q", wkr, i, i%3, v)
				}
				mu.Lock()
				seen[rem[0]]++
				mu.Unlock()
			}
		}(wkr)
	}
	wg.Wait()
	for v, n := range seen {
		if n > 1 {
			t.Errorf("X-RateLimit-Remaining %s sent on %d answers: one decision's fields on another call", v, n)
		}
	}
}
