package handoff_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// BenchmarkChallengeVsRespond: issuing a challenge through Caddy against
// Caddy's respond of a same-size body with the same headers, over
// keep-alive connections, in alternating blocks so that both see the same
// machine. Reported per request: wall time and Caddy's own CPU time of
// each, and their ratios respond/challenge (the target: >= 0.9).
//
//	go test -run '^$' -bench ChallengeVsRespond -benchtime 20000x ./tests/handoff
func BenchmarkChallengeVsRespond(b *testing.B) {
	probe := caddyproc.Start(b, `http://api.localhost:{{PORT}} {
	agent_handoff {
		provider Bench
		rate_limit {
			challenge off
		}
	}
	respond 404
}
`)
	sample := probe.Do("GET", "/v1/sandboxes/challenge", nil, "Host", fmt.Sprintf("api.localhost:%d", probe.Port))
	body := strings.ReplaceAll(string(sample.Bytes), `"`, `\"`)
	probe.Stop()

	s := caddyproc.Start(b, `http://api.localhost:{{PORT}} {
	agent_handoff {
		provider Bench
		rate_limit {
			challenge off
		}
	}
	respond 404
}

http://plain.localhost:{{PORT}} {
	header Content-Type application/json
	header Cache-Control no-store
	respond "`+body+`" 200
}
`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	get := func(host, path string) time.Duration {
		req, _ := http.NewRequest("GET", s.URL(path), nil)
		req.Host = fmt.Sprintf("%s:%d", host, s.Port)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != 200 || n != int64(len(sample.Bytes)) {
			b.Fatalf("%s%s: %d, %d bytes (want %d)", host, path, resp.StatusCode, n, len(sample.Bytes))
		}
		return d
	}
	for range 200 { // warm up connections and both paths
		get("api.localhost", "/v1/sandboxes/challenge")
		get("plain.localhost", "/")
	}
	// Blocks of requests alternate between the two kinds; each block's wall
	// time and Caddy's own CPU time (which a busy machine disturbs far less)
	// are summed per kind.
	const block = 100
	var challenge, respond time.Duration
	var challengeCPU, respondCPU time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += block {
		n := min(block, b.N-done)
		cpu := s.CPU()
		for range n {
			challenge += get("api.localhost", "/v1/sandboxes/challenge")
		}
		challengeCPU += s.CPU() - cpu
		cpu = s.CPU()
		for range n {
			respond += get("plain.localhost", "/")
		}
		respondCPU += s.CPU() - cpu
	}
	b.StopTimer()
	b.ReportMetric(float64(challenge.Nanoseconds())/float64(b.N), "ns/challenge")
	b.ReportMetric(float64(respond.Nanoseconds())/float64(b.N), "ns/respond")
	b.ReportMetric(float64(respond)/float64(challenge), "ratio")
	b.ReportMetric(float64(challengeCPU)/float64(b.N), "caddy-cpu-ns/challenge")
	b.ReportMetric(float64(respondCPU)/float64(b.N), "caddy-cpu-ns/respond")
	b.ReportMetric(float64(respondCPU)/float64(challengeCPU), "cpu-ratio")
}
