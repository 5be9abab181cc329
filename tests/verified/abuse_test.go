package verified_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
	"github.com/caddy-ahp/caddy-ahp/internal/webbotauthtest"
)

// What an unauthenticated client can make verification do (name any
// origin in a well-formed signature, no key needed), through a real Caddy.

// tarpit accepts TCP connections on every loopback address and never
// answers: a directory fetch from it hangs until fetch_timeout.
type tarpit struct {
	ln       net.Listener
	accepted atomic.Int64
}

func newTarpit(t *testing.T) *tarpit {
	t.Helper()
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tarpit{ln: ln}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tp.accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return tp
}

func (tp *tarpit) port() int { return tp.ln.Addr().(*net.TCPAddr).Port }

// A flood of signed requests naming 40 new origins (tarpits) from one
// client network holds at most its share of the directory fetch slots:
// an agent signing from another network meanwhile is fetched and
// verified. The client's network is {client_ip}, here from
// X-Forwarded-For through trusted_proxies.
func TestFloodFromOneClientNetwork(t *testing.T) {
	dir := webbotauthtest.NewDirectory(t)
	agent := webbotauthtest.NewAgent(t, dir.Origin())
	dir.Serve(agent)
	tp := newTarpit(t)
	ca := writeTemp(t, "ca.pem", dir.CAPEM())
	e := &edge{caddyproc.StartFull(t, fmt.Sprintf(`{
	admin localhost:{{ADMIN}}
	auto_https off
	persist_config off
	grace_period 1s
	servers {
		trusted_proxies static 127.0.0.1/32
		trusted_proxies_strict
	}
}

http://flood.test:{{PORT}} {
	ahp {
		name "Flooded"
		content_signals {
			ai_input true
		}
		verified_agents {
			trusted_ca %s
			allow_networks 127.0.0.0/8
			fetch_timeout 2s
		}
	}
	respond "{ahp.agent.outcome} {ahp.agent.id}" 200
}
`, ca))}

	const flood = 40
	var returned atomic.Int64
	var wg sync.WaitGroup
	outcomes := make(chan string, flood)
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			evil := webbotauthtest.NewAgent(t, fmt.Sprintf("https://127.0.0.%d:%d", i+2, tp.port()))
			req, _ := http.NewRequestWithContext(context.Background(), "GET", e.URL("/"), nil)
			req.Host = e.authority("flood.test")
			h := evil.Headers(req.Host, "/")
			for j := 0; j < len(h); j += 2 {
				req.Header.Set(h[j], h[j+1])
			}
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1))
			resp, err := caddyproc.Client.Do(req)
			returned.Add(1)
			if err != nil {
				outcomes <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			outcomes <- string(b)
		}()
	}
	// Every flood request is either refused (answered) or holding a
	// fetch slot (a connection to the tarpit).
	deadline := time.Now().Add(10 * time.Second)
	for returned.Load()+tp.accepted.Load() < flood {
		if time.Now().After(deadline) {
			t.Fatalf("%d answered, %d fetching", returned.Load(), tp.accepted.Load())
		}
		time.Sleep(5 * time.Millisecond) // polling counters, not waiting for time to pass
	}
	if n := tp.accepted.Load(); n > 2 {
		t.Errorf("one client network has %d directory fetches in flight, want at most 2", n)
	}
	r := e.signed(agent, "GET", "flood.test", "/", "", "X-Forwarded-For", "198.51.100.7")
	if got := string(r.Bytes); got != "verified "+agent.Origin {
		t.Errorf("an agent from another network during the flood: %q", got)
	}
	wg.Wait()
	close(outcomes)
	for o := range outcomes {
		if !strings.HasPrefix(o, "unverified ") {
			t.Errorf("a flood request: %q", o)
		}
	}
}

// Directories are fetched from port 443 only, unless allow_ports (or
// allow_networks) says otherwise: a Signature-Agent naming another port
// costs no fetch. (203.0.113.1 is refused by the address rules anyway;
// what is counted is whether a fetch was attempted.)
func TestDirectoryPortRefused(t *testing.T) {
	site := func(host, extra string) string {
		return fmt.Sprintf(`
http://%s:{{PORT}} {
	ahp {
		name %q
		content_signals {
			ai_input true
		}
		verified_agents {
			fetch_timeout 1s
			%s
		}
	}
	respond "{ahp.agent.outcome}" 200
}
`, host, host, extra)
	}
	e := &edge{caddyproc.Start(t, site("default.test", "")+site("allowed.test", "allow_ports 8443"))}
	a := webbotauthtest.NewAgent(t, "https://203.0.113.1:8443")
	before := e.scrape("caddy_ahp_verified_agents_directory_fetches_total")
	for _, host := range []string{"default.test", "allowed.test"} {
		if r := e.signed(a, "GET", host, "/", ""); string(r.Bytes) != "unverified" {
			t.Fatalf("%s: %q", host, r.Bytes)
		}
	}
	after := e.scrape("caddy_ahp_verified_agents_directory_fetches_total")
	fetches := func(site string) float64 {
		k := `caddy_ahp_verified_agents_directory_fetches_total{result="error",site="` + site + `"}`
		return after[k] - before[k]
	}
	if n := fetches("default.test"); n != 0 {
		t.Errorf("port 8443 was fetched %v times by default", n)
	}
	if n := fetches("allowed.test"); n != 1 {
		t.Errorf("port 8443 was fetched %v times with allow_ports 8443, want 1", n)
	}
}

// Through the rate limit's Redis, only keys a signature verified with are
// shared, encoded (the agent's keys, never the directory as fetched), and
// never a failure.
func TestSharedCacheHoldsOnlyVerifiedKeys(t *testing.T) {
	rs := redistest.Start(t)
	dir, dir2 := webbotauthtest.NewDirectory(t), webbotauthtest.NewDirectory(t)
	a, b := webbotauthtest.NewAgent(t, dir.Origin()), webbotauthtest.NewAgent(t, dir2.Origin())
	dir.Serve(a)
	dir2.Serve(b)
	lost := webbotauthtest.NewAgent(t, "https://127.0.0.1:"+fmt.Sprint(caddyproc.FreePort(t)))
	ca := writeTemp(t, "ca.pem", append(dir.CAPEM(), dir2.CAPEM()...))
	e := &edge{caddyproc.Start(t, fmt.Sprintf(`
http://shared.test:{{PORT}} {
	ahp {
		name "Shared"
		content_signals {
			ai_input true
		}
		rate_limit {
			store redis redis://%s/0
		}
		verified_agents {
			trusted_ca %s
			allow_networks 127.0.0.0/8
		}
	}
	respond "{ahp.agent.outcome}" 200
}
`, rs.Addr(), ca))}
	const wk = "/.well-known/http-message-signatures-directory"
	exists := func(origin string) string {
		out, err := rs.Command("EXISTS", "ahp:wba:{keys}:"+origin+wk)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// b's signature for another path: b's directory is fetched, the
	// signature does not verify, nothing is shared.
	if r := e.call("GET", "shared.test", "/", "", b.Headers(e.authority("shared.test"), "/elsewhere")...); string(r.Bytes) != "invalid" {
		t.Fatalf("tampered: %q", r.Bytes)
	}
	if r := e.signed(lost, "GET", "shared.test", "/", ""); string(r.Bytes) != "unverified" {
		t.Fatalf("lost: %q", r.Bytes)
	}
	if dir2.Hits() != 1 || exists(b.Origin) != ":0" || exists(lost.Origin) != ":0" {
		t.Fatalf("fetched %d; shared: tampered %s, failure %s", dir2.Hits(), exists(b.Origin), exists(lost.Origin))
	}
	if r := e.signed(a, "GET", "shared.test", "/", ""); string(r.Bytes) != "verified" {
		t.Fatalf("a: %q", r.Bytes)
	}
	if exists(a.Origin) != ":1" {
		t.Fatal("verified keys were not shared")
	}
	size, err := rs.Command("STRLEN", "ahp:wba:{keys}:"+a.Origin+wk)
	if err != nil || size != ":49" { // one key: version byte, 32 bytes, nbf, exp
		t.Fatalf("shared value of %s bytes (%v), want 49", size, err)
	}
}
