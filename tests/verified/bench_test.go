package verified_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
	"github.com/caddy-ahp/caddy-ahp/internal/webbotauthtest"
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
	a := webbotauthtest.NewAgent(b, "https://agent.example")
	keys := writeTemp(b, "agent.jwks", []byte(a.JWKS()))
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
	e := &edge{caddyproc.Start(b, site("on.test", "verified_agents {\n\t\t\tpin "+a.Origin+" "+keys+"\n\t\t\tfetch off\n\t\t}")+site("off.test", ""))}

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
				h := a.Headers(req.Host, "/whoami")
				for i := 0; i+1 < len(h); i += 2 {
					req.Header.Set(h[i], h[i+1])
				}
			}
			cpu0 := e.CPU()
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
			b.ReportMetric(float64(e.CPU()-cpu0)/float64(b.N), "caddy-cpu-ns/op")
		})
	}
}
