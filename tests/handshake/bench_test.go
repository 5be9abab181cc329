package handshake_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

// BenchmarkCaddyAnswerRatio is the measure: context and action
// answers of handshake_prompt (memory store) against Caddy's own `respond`
// of a body of the same size with the same headers, through the same real
// Caddy, paired request by request (ABBA) so both see the same load:
//
//	go test -run - -bench CaddyAnswerRatio -benchtime 5000x ./tests/handshake
//
// ratio = baseline time / handler time (target >= 0.8).
func BenchmarkCaddyAnswerRatio(b *testing.B) {
	l := newLegacyTB(b)
	upstream := strings.TrimPrefix(l.URL, "http://")
	s := caddyproc.Start(b, fmt.Sprintf(`http://127.0.0.1:{{PORT}} {
	handshake_prompt {
		rate 1000000000/minute
	}
	reverse_proxy %s
}
`, upstream))
	r := s.Do("POST", "/handshake/session", strings.NewReader(form))
	var created struct{ SessionID, Token string }
	if err := jsonUnmarshal(r.Bytes, &created); err != nil || created.SessionID == "" {
		b.Fatalf("create: %s", r.Bytes)
	}
	se := sess{ID: created.SessionID, Token: created.Token}
	const action = `{"actions":[{"type":"set","key":"name","value":"Alice"},{"type":"set","key":"guests","value":3}],"stream":false}`
	ctx := s.Do("GET", "/handshake/context/"+se.ID, nil, "X-Handshake-Token", se.Token)
	act := s.Do("POST", "/handshake/action/"+se.ID, strings.NewReader(action), "X-Handshake-Token", se.Token)
	// The baselines: Caddy's respond of the same bodies, same headers.
	dir := b.TempDir()
	for name, body := range map[string][]byte{"context.json": ctx.Bytes, "action.json": act.Bytes} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	s.Reload(fmt.Sprintf(`http://127.0.0.1:{{PORT}} {
	handshake_prompt {
		rate 1000000000/minute
	}
	handle /baseline/context {
		header Content-Type application/json
		header Cache-Control no-store
		respond %q 200
	}
	handle /baseline/action {
		header Content-Type application/json
		header Cache-Control no-store
		respond %q 200
	}
	reverse_proxy %s
}
`, ctx.Bytes, act.Bytes, upstream))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Second}
	send := func(method, path, body string, tok bool) time.Duration {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, s.URL(path), rd)
		if tok {
			req.Header.Set("X-Handshake-Token", se.Token)
		}
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if resp.StatusCode != 200 {
			b.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
		return d
	}
	for _, c := range []struct{ name, method, path, base, body string }{
		{"context", "GET", "/handshake/context/" + se.ID, "/baseline/context", ""},
		{"action", "POST", "/handshake/action/" + se.ID, "/baseline/action", action},
	} {
		b.Run(c.name, func(b *testing.B) {
			send(c.method, c.path, c.body, true)
			send(c.method, c.base, c.body, false)
			var ours, base time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%2 == 0 {
					ours += send(c.method, c.path, c.body, true)
					base += send(c.method, c.base, c.body, false)
				} else {
					base += send(c.method, c.base, c.body, false)
					ours += send(c.method, c.path, c.body, true)
				}
			}
			b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N), "ns/handler")
			b.ReportMetric(float64(base.Nanoseconds())/float64(b.N), "ns/respond")
			b.ReportMetric(float64(base)/float64(ours), "ratio")
		})
	}
}
