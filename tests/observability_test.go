package tests

// Metrics and logs (issue 7, point 3): the plugin's Prometheus counters
// through Caddy's admin /metrics, and logs that never carry a secret.

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
)

// scrape reads the admin endpoint's /metrics (the Prometheus text
// format) into series → value; a series is the name with its labels as
// exposed, e.g. `caddy_ahp_rate_limited_total{scope="ip"}`, summed over
// sites and zones (every test here runs one site; TestMetricsPerSite
// checks those labels) and without dry="false".
func (s *caddyServer) scrape() map[string]float64 {
	m := map[string]float64{}
	for k, v := range s.scrapeRaw() {
		m[dropSiteLabels(k)] += v
	}
	return m
}

var siteLabels = regexp.MustCompile(`(site|zone)="[^"]*",?|dry="false",?`)

func dropSiteLabels(series string) string {
	i := strings.IndexByte(series, '{')
	if i < 0 {
		return series
	}
	labels := strings.TrimSuffix(siteLabels.ReplaceAllString(series[i+1:len(series)-1], ""), ",")
	if labels == "" {
		return series[:i]
	}
	return series[:i] + "{" + labels + "}"
}

// scrapeRaw is every series as exposed.
func (s *caddyServer) scrapeRaw() map[string]float64 {
	s.T().Helper()
	resp, err := client.Get(fmt.Sprintf("http://localhost:%d/metrics", s.admin))
	if err != nil {
		s.T().Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		s.T().Fatalf("GET /metrics: %d %v\n%s", resp.StatusCode, err, body)
	}
	m := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		// Label values may hold spaces ("not HTML"): the value is after
		// the last one (client_golang writes no timestamps).
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			s.T().Fatalf("unparsable metrics line %q", line)
		}
		m[line[:i]] = v
	}
	return m
}

// metricDeltas is after − before for every caddy_ahp_ series.
func metricDeltas(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		if strings.HasPrefix(k, "caddy_ahp_") {
			d[k] = v - before[k]
		}
	}
	return d
}

// checkFamily asserts the deltas of every series of one metric family
// (name, or name{...}): exactly want, every other series unchanged.
func checkFamily(t *testing.T, deltas map[string]float64, family string, want map[string]float64) {
	t.Helper()
	for k, v := range deltas {
		if (k == family || strings.HasPrefix(k, family+"{")) && v != want[k] {
			t.Errorf("%s grew by %v, want %v", k, v, want[k])
		}
	}
	for k, v := range want {
		if _, ok := deltas[k]; !ok && v != 0 {
			t.Errorf("%s is not exposed, want an increase of %v", k, v)
		}
	}
}

// A known sequence of requests moves each counter by exactly its share.
func TestMetricsCountOutcomes(t *testing.T) {
	c := newConcierge(t)
	up := legacyUpstream(t)
	s := startCaddy(t, withSiteRoutes(gatewaySite(c.Listener.Addr().String(), `rate_limit {
			key {http.request.header.X-Client}
			unauthenticated 2/hour
		}`), "reverse_proxy "+up.Listener.Addr().String()))

	before := s.scrape()
	for _, name := range []string{"caddy_ahp_manifest_served_total", "caddy_ahp_converse_allowed_total", "caddy_ahp_limiter_decision_seconds_count"} {
		if _, ok := before[name]; !ok {
			t.Fatalf("%s is not exposed by the admin /metrics", name)
		}
	}

	expect := func(what string, r response, status int) {
		t.Helper()
		if r.StatusCode != status {
			t.Fatalf("%s: %d, want %d: %s", what, r.StatusCode, status, r.body)
		}
	}
	expect("manifest", s.get("/.well-known/agent.json"), 200)
	expect("negotiated", s.get("/", "Accept", "application/agent+json"), 302)
	expect("converse accepted", s.converse(siteInfo, "X-Client", "one"), 200)
	expect("converse invalid", s.converse(`{"capability":"site_info","query":42}`, "X-Client", "two"), 400)
	expect("limited 1", s.converse(siteInfo, "X-Client", "three"), 200)
	expect("limited 2", s.converse(siteInfo, "X-Client", "three"), 200)
	limited := s.converse(siteInfo, "X-Client", "three")
	expect("limited 3", limited, 429)
	page := s.get("/")
	expect("HTML page", page, 200)
	if !strings.Contains(string(page.body), `class="ahp-notice"`) {
		t.Fatalf("the HTML page did not get the notice: %s", page.body)
	}
	expect("CSS", s.get("/preload"), 200)

	d := metricDeltas(before, s.scrape())
	checkFamily(t, d, "caddy_ahp_manifest_served_total", map[string]float64{"caddy_ahp_manifest_served_total": 1})
	checkFamily(t, d, "caddy_ahp_negotiated_total", map[string]float64{"caddy_ahp_negotiated_total": 1})
	checkFamily(t, d, "caddy_ahp_content_served_total", nil)
	checkFamily(t, d, "caddy_ahp_converse_allowed_total", map[string]float64{"caddy_ahp_converse_allowed_total": 3})
	checkFamily(t, d, "caddy_ahp_converse_rejected_total", map[string]float64{`caddy_ahp_converse_rejected_total{code="invalid_request"}`: 1})
	checkFamily(t, d, "caddy_ahp_rate_limited_total", map[string]float64{`caddy_ahp_rate_limited_total{scope="ip"}`: 1})
	checkFamily(t, d, "caddy_ahp_store_errors_total", nil)
	checkFamily(t, d, "caddy_ahp_store_fallbacks_total", nil)
	// One decision each: the manifest (static tier) and the five converse
	// requests (the invalid one is counted against its client too); the
	// negotiated GET and the pages are not limited.
	const decisions = 6
	if n := d["caddy_ahp_limiter_decision_seconds_count"]; n != decisions {
		t.Errorf("limiter_decision_seconds observed %v decisions, want %d", n, decisions)
	}
	if sum := d["caddy_ahp_limiter_decision_seconds_sum"]; sum <= 0 || sum > decisions {
		t.Errorf("limiter_decision_seconds_sum grew by %v s for %d memory-store decisions", sum, decisions)
	}
	if inf := d[`caddy_ahp_limiter_decision_seconds_bucket{le="+Inf"}`]; inf != decisions {
		t.Errorf(`limiter_decision_seconds_bucket{le="+Inf"} grew by %v, want %d`, inf, decisions)
	}

	t.Run("notice", func(t *testing.T) {
		t.Logf("notice deltas now: injected %v, skipped present %v, skipped not HTML %v", d["caddy_ahp_notice_injected_total"],
			d[`caddy_ahp_notice_skipped_total{reason="present"}`], d[`caddy_ahp_notice_skipped_total{reason="not HTML"}`])
		checkFamily(t, d, "caddy_ahp_notice_injected_total", map[string]float64{"caddy_ahp_notice_injected_total": 1})
		checkFamily(t, d, "caddy_ahp_notice_skipped_total", map[string]float64{`caddy_ahp_notice_skipped_total{reason="not HTML"}`: 1})
	})
}

// With Redis gone and on_store_error open, errors and fallbacks are
// counted; every converse request is counted under some outcome whatever
// the policy.
func TestMetricsStoreFailures(t *testing.T) {
	for _, policy := range []string{"open", "closed"} {
		t.Run(policy, func(t *testing.T) {
			rs := redistest.Start(t)
			c := newConcierge(t)
			s := startCaddy(t, gatewaySite(c.Listener.Addr().String(), `rate_limit {
			store redis redis://`+rs.Addr()+`/0
			unauthenticated 100000/minute
			on_store_error `+policy+`
		}`))
			if r := s.converse(siteInfo); r.StatusCode != 200 {
				t.Fatalf("with Redis: %d %s", r.StatusCode, r.body)
			}
			before := s.scrape()
			rs.Kill()
			const n = 5
			want := map[string]int{"open": 200, "closed": 503}[policy]
			for i := range n {
				if r := s.converse(siteInfo); r.StatusCode != want {
					t.Fatalf("request %d with Redis down: %d, want %d: %s", i, r.StatusCode, want, r.body)
				}
			}
			d := metricDeltas(before, s.scrape())
			if e := d["caddy_ahp_store_errors_total"]; e < 1 {
				t.Errorf("store_errors_total grew by %v with Redis down, want at least 1", e)
			}
			if policy == "open" {
				if f := d["caddy_ahp_store_fallbacks_total"]; f != n {
					t.Errorf("store_fallbacks_total grew by %v, want %d (one per decision the fallback answered)", f, n)
				}
				if a := d["caddy_ahp_converse_allowed_total"]; a != n {
					t.Errorf("converse_allowed_total grew by %v, want %d", a, n)
				}
				return
			}
			// closed: the agents got n refusals; the counters must say so.
			counted := d["caddy_ahp_converse_allowed_total"]
			for k, v := range d {
				if strings.HasPrefix(k, "caddy_ahp_converse_rejected_total{") || strings.HasPrefix(k, "caddy_ahp_rate_limited_total{") {
					counted += v
				}
			}
			t.Logf("with Redis down and on_store_error closed: %d refusals; converse_allowed + converse_rejected + rate_limited grew by %v, "+
				"store_fallbacks_total by %v, store_errors_total by %v", n, counted, d["caddy_ahp_store_fallbacks_total"], d["caddy_ahp_store_errors_total"])
			if counted != n {
				t.Errorf("%d converse requests were refused, the outcome counters grew by %v", n, counted)
			}
		})
	}
}

// randomSecret is a unique, key-shaped string that no log may contain.
func randomSecret(t *testing.T, what string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return what + "S3cr3t" + hex.EncodeToString(b)
}

// startPasswordRedis runs a redis-server that requires a password
// (redistest cannot pass it one); kill stops it as a crash would.
func startPasswordRedis(t *testing.T, password string) (addr string, kill func()) {
	t.Helper()
	bin := redistest.RedisServer(t)
	port := freePort(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--requirepass", password,
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	kill = func() {
		_ = cmd.Process.Kill()
		<-done
	}
	t.Cleanup(kill)
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Any answer to PING (here -NOAUTH) means it is serving.
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte("PING\r\n"))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && strings.HasPrefix(line, "-NOAUTH") {
				return addr, kill
			}
		}
		select {
		case <-done:
			t.Fatalf("redis-server exited at start")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server with a password did not answer on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Debug logging, access logs, and requests carrying every kind of secret,
// accepted and refused, with Redis failing: no secret reaches a log.
func TestLogsHoldNoSecrets(t *testing.T) {
	var (
		bearerGood   = randomSecret(t, "bearerGood")
		bearerWrong  = randomSecret(t, "bearerWrong")
		bodyGood     = randomSecret(t, "bodyGood")
		bodyWrong    = randomSecret(t, "bodyWrong")
		apiKeyGood   = randomSecret(t, "apiKeyGood")
		apiKeyWrong  = randomSecret(t, "apiKeyWrong")
		apiBodyGood  = randomSecret(t, "apiBodyGood")
		apiBodyWrong = randomSecret(t, "apiBodyWrong")
		strayAPIKey  = randomSecret(t, "strayApiKey") // X-AHP-Key on a bearer site
		unusedKey    = randomSecret(t, "unusedKey")
		cookie       = randomSecret(t, "cookie")
		redisPass    = randomSecret(t, "redisPass")
		wrongPass    = randomSecret(t, "wrongRedisPass")
	)
	secrets := map[string]string{
		"bearer token (accepted)": bearerGood, "bearer token (refused)": bearerWrong,
		"body auth (accepted)": bodyGood, "body auth (refused)": bodyWrong,
		"X-AHP-Key (accepted)": apiKeyGood, "X-AHP-Key (refused)": apiKeyWrong,
		"body auth on api_key site (accepted)": apiBodyGood, "body auth on api_key site (refused)": apiBodyWrong,
		"X-AHP-Key on a bearer site": strayAPIKey, "unused key in keys_file": unusedKey,
		"cookie": cookie, "Redis password": redisPass, "wrong Redis password": wrongPass,
	}

	redisAddr, killRedis := startPasswordRedis(t, redisPass)
	c := newConcierge(t)
	keysA := writeKeys(t, bearerGood, "named: "+bodyGood, unusedKey)
	keysB := writeKeys(t, apiKeyGood, apiBodyGood)
	portB := freePort(t)
	siteA := withSiteRoutes(gatewaySite(c.Listener.Addr().String(), `auth {
			keys_file `+keysA+`
		}
		rate_limit {
			store redis redis://:`+redisPass+`@`+redisAddr+`/0
		}`), `log {
		output file {{DIR}}/access-a.log
		format filter {
			request>headers>X-Ahp-Key replace REDACTED
		}
	}
	respond "legacy site" 200`)
	// Site B: api_key authentication, and a Redis URL with a wrong
	// password, so that authentication errors are logged.
	siteB := strings.NewReplacer(
		"http://127.0.0.1:{{PORT}}", fmt.Sprintf("http://127.0.0.1:%d", portB),
		"authentication bearer", "authentication api_key",
		`name "Gateway Test"`, `name "Gateway Test B"`,
		"access-a.log", "access-b.log",
		keysA, keysB,
		":"+redisPass+"@", ":"+wrongPass+"@",
	).Replace(siteA)
	s := startCaddy(t, siteA+"\n"+siteB)

	// Debug logging for everything, through the admin API (the harness
	// owns the global options block); the load re-provisions the module,
	// so its provisioning logs are at debug level too.
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/config/logging/logs/default/level", s.admin), strings.NewReader(`"DEBUG"`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("turning debug logging on: %d %s", resp.StatusCode, b)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.logs.String(), `"level":"debug"`); {
		if time.Now().After(deadline) {
			t.Fatal("no debug log line after turning debug logging on")
		}
		time.Sleep(20 * time.Millisecond)
	}

	const book = `{"capability":"book_demo","query":"Book a demo on Tuesday"`
	urlB := fmt.Sprintf("http://127.0.0.1:%d/agent/converse", portB)
	lc := newLoadClient(1)
	postB := func(body string, headers ...string) outcome {
		return send(lc, http.MethodPost, urlB, body, append([]string{"Content-Type", "application/json"}, headers...)...)
	}
	steps := []struct {
		what   string
		do     func() (int, []byte)
		status int
	}{
		// A credential in the other scheme's header is refused, never
		// forwarded unverified (security review, point 3).
		{"A: site_info with every header", func() (int, []byte) {
			r := s.converse(siteInfo, "Authorization", "Bearer "+bearerGood, "Cookie", "session="+cookie, "X-AHP-Key", strayAPIKey)
			return r.StatusCode, r.body
		}, 401},
		{"A: site_info, bearer and cookie", func() (int, []byte) {
			r := s.converse(siteInfo, "Authorization", "Bearer "+bearerGood, "Cookie", "session="+cookie)
			return r.StatusCode, r.body
		}, 200},
		{"A: action, right bearer", func() (int, []byte) {
			r := s.converse(book+"}", "Authorization", "Bearer "+bearerGood, "Cookie", "session="+cookie)
			return r.StatusCode, r.body
		}, 200},
		{"A: action, wrong bearer", func() (int, []byte) {
			r := s.converse(book+"}", "Authorization", "Bearer "+bearerWrong)
			return r.StatusCode, r.body
		}, 403},
		{"A: action, body auth", func() (int, []byte) {
			r := s.converse(book + `,"auth":"Bearer ` + bodyGood + `"}`)
			return r.StatusCode, r.body
		}, 200},
		{"A: action, wrong body auth", func() (int, []byte) {
			r := s.converse(book + `,"auth":"Bearer ` + bodyWrong + `"}`)
			return r.StatusCode, r.body
		}, 403},
		{"A: page with credentials", func() (int, []byte) {
			r := s.get("/", "Authorization", "Bearer "+bearerWrong, "Cookie", "session="+cookie)
			return r.StatusCode, r.body
		}, 200},
		{"B: action, right key", func() (int, []byte) { o := postB(book+"}", "X-AHP-Key", apiKeyGood); return o.status, o.body }, 200},
		{"B: action, wrong key", func() (int, []byte) { o := postB(book+"}", "X-AHP-Key", apiKeyWrong); return o.status, o.body }, 403},
		{"B: action, body auth", func() (int, []byte) { o := postB(book + `,"auth":"` + apiBodyGood + `"}`); return o.status, o.body }, 200},
		{"B: action, wrong body auth", func() (int, []byte) { o := postB(book + `,"auth":"` + apiBodyWrong + `"}`); return o.status, o.body }, 403},
	}
	run := func() {
		for _, st := range steps {
			if status, body := st.do(); status != st.status {
				t.Fatalf("%s: %d, want %d: %s", st.what, status, st.status, body)
			}
		}
	}
	run()
	killRedis() // store errors on site A, with the password in its URL
	run()
	for deadline := time.Now().Add(10 * time.Second); strings.Count(s.logs.String(), "rate-limit store failing") < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("want store failures of both sites logged:\n%s", s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	logs := map[string]string{"Caddy's stdout/stderr": s.logs.String()}
	for _, f := range []string{"access-a.log", "access-b.log"} {
		b, err := os.ReadFile(filepath.Join(s.dir, f))
		if err != nil || len(b) == 0 {
			t.Fatalf("access log %s: %v (%d bytes)", f, err, len(b))
		}
		logs[f] = string(b)
	}
	// X-AHP-Key values are judged apart: see the skip below.
	apiKeys := map[string]bool{strayAPIKey: true, apiKeyGood: true, apiKeyWrong: true, apiBodyGood: true, apiBodyWrong: true}
	var leaks, keyLeaks []string
	for where, text := range logs {
		for what, secret := range secrets {
			if i := strings.Index(text, secret); i >= 0 {
				from, to := max(0, i-300), min(len(text), i+len(secret)+100)
				leak := fmt.Sprintf("%s in %s: ...%s...", what, where, text[from:to])
				if apiKeys[secret] {
					keyLeaks = append(keyLeaks, leak)
				} else {
					leaks = append(leaks, leak)
				}
			}
		}
	}
	for _, l := range leaks {
		t.Error(l)
	}
	// The logs did record what could have leaked.
	if !strings.Contains(logs["access-a.log"], `"Authorization":["REDACTED"]`) || !strings.Contains(logs["access-a.log"], `"Cookie":["REDACTED"]`) {
		t.Errorf("access log A does not show the redacted credentials:\n%.2000s", logs["access-a.log"])
	}

	t.Run("Redis authentication failure names its cause", func(t *testing.T) {
		if !strings.Contains(logs["Caddy's stdout/stderr"], "WRONGPASS") {
			t.Errorf("the Redis authentication failure of site B is not logged with its cause")
		}
	})

	// Caddy redacts Authorization and Cookie in its logs, not X-AHP-Key:
	// the README tells operators of api_key sites to add the filter these
	// access logs use, and with it no key reaches them. At debug level,
	// Caddy's reverse_proxy logs the headers it forwards ("upstream
	// roundtrip"), X-AHP-Key included; that is Caddy's debug output, not
	// the plugin's, and is judged apart.
	t.Run("X-AHP-Key", func(t *testing.T) {
		for _, l := range keyLeaks {
			if strings.Contains(l, "access-") {
				t.Error(l)
			}
		}
		for _, line := range strings.Split(logs["Caddy's stdout/stderr"], "\n") {
			for secret := range apiKeys {
				if strings.Contains(line, secret) && !strings.Contains(line, `"msg":"upstream roundtrip"`) {
					t.Errorf("an X-AHP-Key value in a log line that is not reverse_proxy's debug roundtrip:\n%.600s", line)
				}
			}
		}
		if !strings.Contains(logs["access-b.log"], `"X-Ahp-Key":"REDACTED"`) {
			t.Errorf("the filter did not apply to access log B:\n%.1500s", logs["access-b.log"])
		}
	})
}

// Config errors name the problem, never the secret: a Redis URL with a
// password that does not parse, and a keys file with a malformed line.
func TestConfigErrorsHoldNoSecrets(t *testing.T) {
	pass := randomSecret(t, "redisPass")
	// A key with a space in it is malformed; both halves are secret.
	badLeft, badRight := randomSecret(t, "badKeyLeft"), randomSecret(t, "badKeyRight")
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.WriteFile(keys, []byte("fine: "+randomSecret(t, "fineKey")+"\n"+badLeft+" "+badRight+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct{ extra string }{
		"Redis URL with a bad port": {`rate_limit {
			store redis redis://:` + pass + `@127.0.0.1:notaport/0
		}`},
		"Redis URL with a bad escape": {`rate_limit {
			store redis redis://:` + pass + `%zz@127.0.0.1:6379/0
		}`},
		"keys file with a malformed line": {`auth {
			keys_file ` + keys + `
		}`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			extra := tc.extra
			path := filepath.Join(dir, "Caddyfile")
			cfg := strings.ReplaceAll(gatewaySite("127.0.0.1:9", extra), "{{PORT}}", strconv.Itoa(freePort(t)))
			cfg = strings.ReplaceAll(cfg, "{{REPO}}", repoRoot())
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := caddyCmd(t, dir, "validate", "--config", path, "--adapter", "caddyfile")
			if err == nil {
				t.Fatalf("caddy validate accepted the config:\n%s", out)
			}
			for _, secret := range []string{pass, badLeft, badRight} {
				if strings.Contains(out, secret) {
					t.Errorf("caddy validate output holds a secret (%q):\n%s", secret, out)
				}
			}
		})
	}
}
