package verified_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// BenchmarkThroughCaddy measures what verification costs a request
// through a real Caddy: one Caddy, two sites answering from `respond`
// behind ahp, on.test with verified_agents (the agent's keys pinned, as
// a cached directory would be), off.test without. The same signed bytes
// go to both, so signed-on / signed-off is the verification's cost, and
// unsigned-on / unsigned-off what the feature costs everyone else.
//
//	go test -run '^$' -bench ThroughCaddy -benchtime 3000x ./tests/verified/
//
// (without -race: the Caddy under test is built like the test binary).
func BenchmarkThroughCaddy(b *testing.B) {
	a := newAgent(b, "https://agent.example")
	keys := writeTemp(b, "agent.jwks", []byte(a.jwks()))
	site := func(host, extra string) string {
		return fmt.Sprintf(`
http://%s:{{PORT}} {
	ahp {
		name %q
		content_signals {
			ai_input true
		}
		rate_limit off
		notice off
		%s
	}
	respond "ok" 200
}
`, host, host, extra)
	}
	e := &edge{caddyproc.Start(b, site("on.test", "verified_agents {\n\t\t\tpin "+a.origin+" "+keys+"\n\t\t\tfetch off\n\t\t}")+site("off.test", ""))}

	for _, c := range []struct {
		name, host string
		signed     bool
	}{
		{"unsigned-off", "off.test", false},
		{"unsigned-on", "on.test", false},
		{"signed-off", "off.test", true},
		{"signed-on", "on.test", true},
	} {
		b.Run(c.name, func(b *testing.B) {
			req, err := http.NewRequest("GET", e.URL("/whoami"), nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Host = e.authority(c.host)
			if c.signed {
				h := a.headers(req.Host, "/whoami")
				for i := 0; i+1 < len(h); i += 2 {
					req.Header.Set(h[i], h[i+1])
				}
			}
			pid := e.Cmd.Process.Pid
			cpu0 := cpuNanos(b, pid)
			b.ResetTimer()
			for b.Loop() {
				resp, err := caddyproc.Client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("%d", resp.StatusCode)
				}
			}
			// Caddy's own CPU time per request: the wall time above is
			// mostly the client and the loopback, and noisy on a busy
			// machine.
			b.ReportMetric(float64(cpuNanos(b, pid)-cpu0)/float64(b.N), "caddy-cpu-ns/op")
		})
	}
}

// cpuNanos is the CPU time process pid has run, in nanoseconds: the sum
// of its threads' /proc/<pid>/task/<tid>/schedstat (Linux).
func cpuNanos(b *testing.B, pid int) int64 {
	b.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		b.Fatalf("no schedstat for %d: %v", pid, err)
	}
	var sum int64
	for _, f := range tasks {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that just exited
		}
		n, err := strconv.ParseInt(strings.Fields(string(data))[0], 10, 64)
		if err != nil {
			b.Fatalf("%s: %q", f, data)
		}
		sum += n
	}
	return sum
}
