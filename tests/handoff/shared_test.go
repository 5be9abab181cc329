package handoff_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/handoff"
	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
)

// One solution sent many times at once is admitted once, with the
// in-memory store and with Redis, and only that one reaches the backend.
func TestDoubleSpend(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			extra := ""
			if store == "redis" {
				// timeout 2s: under -race on a loaded CI machine a Redis
				// answer can take longer than the default 50 ms, and this
				// test is about one admission, not about deadlines (CI
				// once saw two 503s from on_store_error closed here).
				extra = "\t\tstore redis redis://" + redistest.Start(t).Addr() + "/0\n\t\ttimeout 2s"
			}
			e := startEdge(t, extra)
			for round := range 3 {
				c := e.challenge("/v1/sandboxes/challenge")
				body := admission(c, solve(t, c))
				before := e.be.count("POST /v1/sandboxes")
				statuses := sendConcurrently(t, e, 16, body)
				if statuses[201] != 1 || statuses[403] != 15 {
					t.Fatalf("round %d: answers %v, want one 201 and fifteen 403", round, statuses)
				}
				if n := e.be.count("POST /v1/sandboxes") - before; n != 1 {
					t.Fatalf("round %d: %d creations reached the backend", round, n)
				}
			}
		})
	}
}

func sendConcurrently(t *testing.T, e *edge, n int, body string) map[int]int {
	t.Helper()
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", e.URL("/v1/sandboxes"), strings.NewReader(body))
			req.Host = e.api()
			req.Header.Set("Content-Type", "application/json")
			<-start
			resp, err := caddyproc.Client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return statuses
}

// Two Caddy instances sharing one Redis share challenges (one issued by A
// is spent at B, once), lockouts (failures at A lock the client out at B)
// and velocity (creations through A raise the difficulty B issues).
func TestInstancesShareRedis(t *testing.T) {
	rs := redistest.Start(t)
	extra := `		store redis redis://` + rs.Addr() + `/0
		timeout 2s
		velocity {
			network_step 2
		}
		lockout {
			after 3
			base 1h
		}`
	a := startEdge(t, extra)
	b := startEdge(t, extra)

	// Challenges.
	c := a.challenge("/v1/sandboxes/challenge")
	body := admission(c, solve(t, c))
	if r := b.apiCall("POST", "/v1/sandboxes", body); r.StatusCode != 201 {
		t.Fatalf("a challenge from A spent at B: %d %s", r.StatusCode, r.Bytes)
	}
	if r := a.apiCall("POST", "/v1/sandboxes", body); r.StatusCode != 403 {
		t.Fatalf("replayed at A after B spent it: %d", r.StatusCode)
	}

	// Velocity: three creations (one above) from this network through A and
	// B: +1 bit per 2, so B now issues 9 bits, A too.
	for range 2 {
		c := a.challenge("/v1/sandboxes/challenge")
		if r := a.apiCall("POST", "/v1/sandboxes", admission(c, solve(t, c))); r.StatusCode != 201 {
			t.Fatalf("create at A: %d", r.StatusCode)
		}
	}
	if c := b.challenge("/v1/sandboxes/challenge"); c.Difficulty != 9 {
		t.Fatalf("B issues difficulty %d after three creations through both, want 9", c.Difficulty)
	}

	// Lockouts: three failed verifications at A lock this client at B, even
	// with a valid code there.
	s := b.create()
	b.publish(s)
	cs := b.startClaim(s)
	for i := range 3 {
		pc := a.challenge(handoff.DefaultClaimChallengePath)
		if r := a.apiCall("POST", "/v1/claims/verify", verification(fmt.Sprintf("RAPTOR-WRONG-%d", i), pc, solve(t, pc))); r.StatusCode != 404 {
			t.Fatalf("a wrong code at A: %d", r.StatusCode)
		}
	}
	before := b.be.count("POST /v1/claims/verify")
	pc := b.challenge(handoff.DefaultClaimChallengePath)
	if r := b.apiCall("POST", "/v1/claims/verify", verification(cs.Claim.Code, pc, solve(t, pc))); r.StatusCode != 404 {
		t.Fatalf("the right code at B while locked out at A: %d %s", r.StatusCode, r.Bytes)
	}
	if b.be.count("POST /v1/claims/verify") != before {
		t.Fatal("a locked-out verification reached B's backend")
	}
}

// Redis gone: on_store_error closed (the default) answers 503 to
// admission; open falls back to the instance's memory. Either way the
// failure is counted.
func TestRedisDown(t *testing.T) {
	for _, policy := range []string{"closed", "open"} {
		t.Run(policy, func(t *testing.T) {
			rs := redistest.Start(t)
			e := startEdge(t, "\t\tstore redis redis://"+rs.Addr()+"/0\n\t\ton_store_error "+policy)
			e.challenge("/v1/sandboxes/challenge")
			rs.Kill()
			r := e.apiCall("GET", "/v1/sandboxes/challenge", "")
			want := map[string]int{"closed": 503, "open": 200}[policy]
			if r.StatusCode != want {
				t.Fatalf("with Redis down: %d %s, want %d", r.StatusCode, r.Bytes, want)
			}
			if policy == "open" {
				var c challengeAnswer
				decode(t, r, &c)
				// Issued and spent on this instance's memory.
				if r := e.apiCall("POST", "/v1/sandboxes", admission(c, solve(t, c))); r.StatusCode != 201 {
					t.Fatalf("creation from memory: %d %s", r.StatusCode, r.Bytes)
				}
			}
			resp, err := caddyproc.Client.Get(fmt.Sprintf("http://localhost:%d/metrics", e.Admin))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), `caddy_ahp_handoff_store_errors_total{site="Test FAQ"}`) {
				t.Fatal("store errors are not counted")
			}
			if !strings.Contains(e.Logs.String(), "agent handoff store failing") && !strings.Contains(e.Logs.String(), "rate-limit store failing") {
				t.Fatal("the store failure is not logged")
			}
		})
	}
}
