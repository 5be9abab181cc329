package handoff

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// discard is a ResponseWriter that keeps nothing, so benchmarks measure
// the handler, not a recorder's buffer.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func benchHandler(b *testing.B, edit func(*Config)) *Handler {
	b.Helper()
	mem := limiter.NewMemory(limiter.MemoryOptions{})
	b.Cleanup(func() { mem.Close() })
	cfg := Config{
		Provider:   Provider{Name: "Bench"},
		Difficulty: Difficulty{Base: 20, Ceiling: 28, GlobalStep: 50, NetworkStep: 5},
		Store:      NewMemory(MemoryOptions{}),
		Limits: &RateLimits{Store: mem,
			Challenge: limiter.Limit{Events: 1 << 40, Window: time.Minute},
			Create:    limiter.Limit{Events: 1 << 40, Window: time.Minute}},
	}
	if edit != nil {
		edit(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// Issuing a challenge against writing a body of the same size with the
// same headers (a stand-in for Caddy's respond) in one process: the
// handler's own cost, without HTTP. The end-to-end ratio through Caddy is
// tests/handoff's BenchmarkChallengeVsRespond.
func BenchmarkChallengeIssue(b *testing.B) {
	h := benchHandler(b, nil)
	var next nextFunc = func(http.ResponseWriter, *http.Request) error { return nil }
	sample := httptest.NewRecorder()
	_ = h.ServeHTTP(sample, httptest.NewRequest("GET", DefaultChallengePath, nil), next)
	body := sample.Body.Bytes()
	b.Run("challenge", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r := httptest.NewRequest("GET", DefaultChallengePath, nil)
			r.RemoteAddr = "198.51.100.7:1234"
			w := &discard{h: http.Header{}}
			for pb.Next() {
				clear(w.h)
				_ = h.ServeHTTP(w, r, next)
			}
		})
	})
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			w := &discard{h: http.Header{}}
			for pb.Next() {
				clear(w.h)
				hd := w.Header()
				hd["Content-Type"] = []string{"application/json"}
				hd["Content-Length"] = []string{strconv.Itoa(len(body))}
				hd["Cache-Control"] = []string{"no-store"}
				w.WriteHeader(200)
				_, _ = w.Write(body)
			}
		})
	})
}

// The cost of refusing or admitting a creation, backend excluded: read
// and parse the body, one SHA-256, one store operation. exempt is a
// listed verified agent's creation: no admission, no SHA-256, the
// velocity counted.
func BenchmarkAdmission(b *testing.B) {
	for _, kind := range []string{"admit", "refuse", "exempt"} {
		b.Run(kind, func(b *testing.B) {
			h := benchHandler(b, func(c *Config) {
				c.Difficulty = Difficulty{Base: 1, Ceiling: 1}
				if kind == "exempt" {
					c.ProofExempt = func(*http.Request) string { return "https://agent.example" }
				}
			})
			var next nextFunc = func(http.ResponseWriter, *http.Request) error { return nil }
			bodies := make([]string, b.N)
			for i := range bodies {
				if kind == "exempt" {
					bodies[i] = `{"metadata":{"name":"bench"}}`
					continue
				}
				ch := newChallengeString()
				op := &IssueOp{Purpose: PurposeCreate, Challenge: ch, Network: "n", Now: time.Now(), TTL: time.Minute, Policy: &h.difficulty}
				if err := h.store.Issue(context.Background(), op); err != nil {
					b.Fatal(err)
				}
				nonce := "0"
				for n := 0; ; n++ {
					s := strconv.Itoa(n)
					if ok := Verify(ch, s, 1); ok == (kind == "admit") {
						nonce = s
						break
					}
				}
				bodies[i] = `{"admission":{"type":"proof_of_work","challenge":"` + ch + `","nonce":"` + nonce + `"},"metadata":{"name":"bench"}}`
			}
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := httptest.NewRequest("POST", DefaultCreatePath, strings.NewReader(bodies[i]))
				clear(w.h)
				_ = h.ServeHTTP(w, r, next)
			}
		})
	}
}

// One Redis round trip per admission: the store's script, on a real
// redis-server over loopback.
func BenchmarkRedisAdmit(b *testing.B) {
	rs := redistest.Start(b)
	c := redis.NewClient(&redis.Options{Addr: rs.Addr(), Protocol: 2})
	b.Cleanup(func() { c.Close() })
	s := NewRedis(c, RedisOptions{Zone: "bench", Timeout: time.Second})
	pol := &Difficulty{Base: 1, Ceiling: 1}
	challenges := make([]string, b.N)
	for i := range challenges {
		challenges[i] = newChallengeString()
		if err := s.Issue(context.Background(), &IssueOp{Purpose: PurposeCreate, Challenge: challenges[i], Network: "n", Now: time.Now(), TTL: time.Minute, Policy: pol}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		op := &AdmitOp{Purpose: PurposeCreate, Challenge: challenges[i], Work: 64, Network: "n", Now: time.Now(), Policy: pol}
		if err := s.Admit(context.Background(), op); err != nil || op.Outcome != Admitted {
			b.Fatalf("%v %s", err, op.Outcome)
		}
	}
}

// An exempt creation's store operation in Redis: one round trip.
func BenchmarkRedisAdmitExempt(b *testing.B) {
	rs := redistest.Start(b)
	c := redis.NewClient(&redis.Options{Addr: rs.Addr(), Protocol: 2})
	b.Cleanup(func() { c.Close() })
	s := NewRedis(c, RedisOptions{Zone: "bench", Timeout: time.Second})
	pol := &Difficulty{Base: 1, Ceiling: 1}
	for b.Loop() {
		op := &ExemptOp{Network: "n", Now: time.Now(), Policy: pol}
		if err := s.AdmitExempt(context.Background(), op); err != nil || op.Outcome != Admitted {
			b.Fatalf("%v %s", err, op.Outcome)
		}
	}
}
