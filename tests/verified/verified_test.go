package verified_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
	"github.com/caddy-ahp/caddy-ahp/internal/redistest"
	"github.com/caddy-ahp/caddy-ahp/internal/webbotauthtest"
)

// world is one Caddy in front of one upstream, with agents:
//   - listed: its directory served by dir, named in `agents`;
//   - unlisted: its directory served by dir2, not named;
//   - pinned: its keys pinned from a file; its origin is a directory
//     server (pinDir) that must never be asked;
//   - lost: its directory's origin is a port nobody listens on.
type world struct {
	e                              *edge
	up                             *upstream
	dir, dir2, pinDir              *webbotauthtest.Directory
	listed, unlisted, pinned, lost *webbotauthtest.Agent
}

// The sites: verified.test (per_agent 3/minute, generous client tiers),
// tiers.test (unauthenticated 2/minute, verified 4/minute), strict.test
// (the directory address rules as they are: loopback is refused).
const sitesTemplate = `
(common) {
	rewrite /articles/* /index.html
	handle /whoami {
		@signed expression {ahp.agent.verified} == "true"
		respond @signed "verified {ahp.agent.id} ({ahp.agent.outcome})" 200
		respond "nobody ({ahp.agent.outcome})" 200
	}
	reverse_proxy %[1]s
}

http://verified.test:{{PORT}} {
	ahp {
		name "Verified Shop"
		content_signals {
			ai_input true
		}
		converse /agent/converse
		capability site_info {
			mode MODE2
			description "About the shop"
		}
		rate_limit {
			key {http.request.header.X-Client}
			unauthenticated 100/minute
			verified 100/minute
			per_agent 3/minute
			%[4]s
		}
		verified_agents {
			trusted_ca %[2]s
			allow_networks 127.0.0.0/8 ::1/128
			agents %[5]s
			pin %[6]s %[3]s
		}
	}
	import common
}

http://tiers.test:{{PORT}} {
	ahp {
		name "Tiers Shop"
		content_signals {
			ai_input true
		}
		converse /agent/converse
		capability site_info {
			mode MODE2
			description "About the shop"
		}
		rate_limit {
			key {http.request.header.X-Client}
			unauthenticated 2/minute
			verified 4/minute
		}
		verified_agents {
			trusted_ca %[2]s
			allow_networks 127.0.0.0/8
		}
	}
	import common
}

http://strict.test:{{PORT}} {
	ahp {
		name "Strict Shop"
		content_signals {
			ai_input true
		}
		verified_agents {
			trusted_ca %[2]s
		}
	}
	import common
}
`

// newWorld starts the agents' directories, the upstream and Caddy;
// rateLimitExtra goes into verified.test's rate_limit block.
func newWorld(t *testing.T, rateLimitExtra string) *world {
	t.Helper()
	return newWorldWith(t, rateLimitExtra, "")
}

// newWorldWith is newWorld with servers, the global options' servers
// block's body ("" for none).
func newWorldWith(t *testing.T, rateLimitExtra, servers string) *world {
	t.Helper()
	w := &world{up: newUpstream(t), dir: webbotauthtest.NewDirectory(t), dir2: webbotauthtest.NewDirectory(t), pinDir: webbotauthtest.NewDirectory(t)}
	w.listed = webbotauthtest.NewAgent(t, w.dir.Origin())
	w.unlisted = webbotauthtest.NewAgent(t, w.dir2.Origin())
	w.pinned = webbotauthtest.NewAgent(t, w.pinDir.Origin())
	w.lost = webbotauthtest.NewAgent(t, "https://127.0.0.1:"+strconv.Itoa(caddyproc.FreePort(t)))
	w.dir.Serve(w.listed)
	w.dir2.Serve(w.unlisted)
	// The pinned agent's directory would give a key that is not the
	// pinned one: verifying at all proves the pinned key was used.
	w.pinDir.Serve(webbotauthtest.NewAgent(t, w.pinDir.Origin()))
	ca := writeTemp(t, "ca.pem", append(append(append(w.dir.CAPEM(), w.dir2.CAPEM()...), w.pinDir.CAPEM()...), '\n'))
	pinFile := writeTemp(t, "pinned.jwks", []byte(w.pinned.JWKS()))
	cfg := fmt.Sprintf(sitesTemplate, w.up.Listener.Addr().String(), ca, pinFile, rateLimitExtra, w.listed.Origin, w.pinned.Origin)
	if servers == "" {
		w.e = &edge{caddyproc.Start(t, cfg)}
	} else {
		w.e = &edge{caddyproc.StartFull(t, "{\n\tadmin localhost:{{ADMIN}}\n\tauto_https off\n\tpersist_config off\n\tgrace_period 1s\n\tservers {\n"+servers+"\n\t}\n}\n"+cfg)}
	}
	return w
}

// tampered is a's signature for another path: invalid.
func (w *world) tampered(method, host, path, body string, headers ...string) caddyproc.Response {
	w.e.T().Helper()
	return w.e.call(method, host, path, body, append(w.listed.Headers(w.e.authority(host), "/somewhere-else"), headers...)...)
}

// A signed request is recognised, in placeholders a Caddy route matches
// on and in the header the upstream trusts, as the agent sent it even
// after the site's rewrite; unsigned, badly signed and unverifiable ones
// are nobody; a client's own X-AHP-Verified-Agent never reaches the site.
func TestRecognised(t *testing.T) {
	w := newWorld(t, "")
	e := w.e
	for _, c := range []struct {
		name string
		r    caddyproc.Response
		want string
	}{
		{"signed", e.signed(w.listed, "GET", "verified.test", "/whoami", ""), "verified " + w.listed.Origin + " (verified)"},
		{"pinned", e.signed(w.pinned, "GET", "verified.test", "/whoami", ""), "verified " + w.pinned.Origin + " (verified)"},
		{"unsigned", e.call("GET", "verified.test", "/whoami", ""), "nobody (unsigned)"},
		{"tampered", w.tampered("GET", "verified.test", "/whoami", ""), "nobody (invalid)"},
		{"another authority", e.call("GET", "verified.test", "/whoami", "", w.listed.Headers("tiers.test:"+strconv.Itoa(e.Port), "/whoami")...), "nobody (invalid)"},
		{"directory unreachable", e.signed(w.lost, "GET", "verified.test", "/whoami", ""), "nobody (unverified)"},
		{"directory on a refused address", e.signed(w.listed, "GET", "strict.test", "/whoami", ""), "nobody (unverified)"},
		{"spoofed header alone", e.call("GET", "verified.test", "/whoami", "", "X-AHP-Verified-Agent", w.listed.Origin), "nobody (unsigned)"},
	} {
		if c.r.StatusCode != 200 || string(c.r.Bytes) != c.want {
			t.Errorf("%s: %d %q, want %q", c.name, c.r.StatusCode, c.r.Bytes, c.want)
		}
	}
	if n := w.pinDir.Hits(); n != 0 {
		t.Errorf("the pinned agent's directory was fetched %d times", n)
	}
	if n := w.dir.Hits(); n != 1 {
		t.Errorf("the listed agent's directory was fetched %d times, want once (then cached)", n)
	}

	// What the upstream sees: the verified origin, once, only when the
	// signature verified, whatever the client sent in the header.
	for _, c := range []struct {
		name string
		send func() caddyproc.Response
		path string
		want []string
	}{
		{"signed page, rewritten", func() caddyproc.Response {
			return e.signed(w.listed, "GET", "verified.test", "/articles/7", "", "X-AHP-Verified-Agent", "https://forged.example")
		}, "/index.html", []string{w.listed.Origin}},
		{"signed capability call", func() caddyproc.Response {
			return e.signed(w.listed, "POST", "verified.test", "/agent/converse", converseBody("x"), "X-Client", "c0", "X-AHP-Verified-Agent", "https://forged.example")
		}, "/agent/converse", []string{w.listed.Origin}},
		{"unsigned page with the header", func() caddyproc.Response {
			return e.call("GET", "verified.test", "/articles/8", "", "X-AHP-Verified-Agent", w.listed.Origin, "x-ahp-verified-agent", "https://other.example")
		}, "/index.html", nil},
		// Caddy drops names with '_' or '.' (no allowlist here); the
		// plugin then deletes the canonical name only (TestVerifiedHeaderInEverySpelling
		// has an allowlist).
		{"unsigned page with the header spelled with '_' and '.'", func() caddyproc.Response {
			return e.call("GET", "verified.test", "/articles/8", "", "X_Ahp_Verified_Agent", w.listed.Origin, "X.Ahp.Verified.Agent", w.listed.Origin)
		}, "/index.html", nil},
		{"unsigned call with the header", func() caddyproc.Response {
			return e.call("POST", "verified.test", "/agent/converse", converseBody("x"), "X-Client", "c0", "X-AHP-Verified-Agent", w.listed.Origin)
		}, "/agent/converse", nil},
		{"tampered page with the header", func() caddyproc.Response {
			return w.tampered("GET", "verified.test", "/articles/9", "", "X-AHP-Verified-Agent", w.listed.Origin)
		}, "/index.html", nil},
		{"unverifiable page with the header", func() caddyproc.Response {
			return e.signed(w.lost, "GET", "verified.test", "/articles/9", "", "X-AHP-Verified-Agent", w.lost.Origin)
		}, "/index.html", nil},
		{"strict site", func() caddyproc.Response {
			return e.signed(w.listed, "GET", "strict.test", "/articles/9", "", "X-AHP-Verified-Agent", w.listed.Origin)
		}, "/index.html", nil},
	} {
		before := w.up.count()
		if r := c.send(); r.StatusCode != 200 {
			t.Errorf("%s: %d %s", c.name, r.StatusCode, r.Bytes)
			continue
		}
		got := w.up.last()
		if w.up.count() != before+1 || got.path != c.path || strings.Join(got.verified, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: the upstream saw %s with X-Ahp-Verified-Agent %q, want %s with %q", c.name, got.path, got.verified, c.path, c.want)
		}
	}
}

// Caddy drops request fields spelled with '_' or '.' unless the operator
// allowlists them (expected_underscore_headers, expected_dot_headers), as
// a site whose clients send such names must. PHP reads X_Ahp_Verified_Agent
// and X.Ahp.Verified.Agent as X-Ahp-Verified-Agent: with those spellings
// allowed through Caddy, the plugin still lets no client's value reach
// the site under the verified agent's name.
func TestVerifiedHeaderInEverySpelling(t *testing.T) {
	w := newWorldWith(t, "", "\t\texpected_underscore_headers X_Ahp_Verified_Agent x_ahp_verified_agent\n\t\texpected_dot_headers X.Ahp.Verified.Agent")
	e := w.e
	for _, c := range []struct {
		name string
		send func() caddyproc.Response
		want []string
	}{
		{"unsigned, '_'", func() caddyproc.Response {
			return e.call("GET", "verified.test", "/articles/1", "", "X_Ahp_Verified_Agent", w.listed.Origin)
		}, nil},
		{"unsigned, '.'", func() caddyproc.Response {
			return e.call("GET", "verified.test", "/articles/2", "", "X.Ahp.Verified.Agent", w.listed.Origin)
		}, nil},
		{"signed, '_' in lower case", func() caddyproc.Response {
			return e.signed(w.listed, "GET", "verified.test", "/articles/3", "", "x_ahp_verified_agent", "https://forged.example")
		}, []string{w.listed.Origin}},
		{"signed, '.'", func() caddyproc.Response {
			return e.signed(w.listed, "GET", "verified.test", "/articles/4", "", "X.Ahp.Verified.Agent", "https://forged.example")
		}, []string{w.listed.Origin}},
	} {
		before := w.up.count()
		if r := c.send(); r.StatusCode != 200 {
			t.Errorf("%s: %d %s", c.name, r.StatusCode, r.Bytes)
			continue
		}
		got := w.up.last()
		if w.up.count() != before+1 || strings.Join(got.verified, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: the upstream saw %q as PHP reads X-Ahp-Verified-Agent, want %q", c.name, got.verified, c.want)
		}
	}
}

type refusal struct {
	Code  string `json:"code"`
	Scope string `json:"scope"`
}

func decodeRefusal(t *testing.T, r caddyproc.Response) refusal {
	t.Helper()
	var b refusal
	if err := json.Unmarshal(r.Bytes, &b); err != nil {
		t.Fatalf("%d %q: %v", r.StatusCode, r.Bytes, err)
	}
	return b
}

// A verified agent is limited as itself, whatever name it types and from
// whichever client; badly signed and unsigned requests are limited as
// anyone (by the name they type), never against the agent's budget.
func TestLimitedAsTheVerifiedAgent(t *testing.T) {
	w := newWorld(t, "")
	e := w.e
	call := func(send func(body string, hdr ...string) caddyproc.Response, client, name string) caddyproc.Response {
		t.Helper()
		return send(converseBody(name), "X-Client", client)
	}
	signed := func(body string, hdr ...string) caddyproc.Response {
		return e.signed(w.listed, "POST", "verified.test", "/agent/converse", body, hdr...)
	}
	unsigned := func(body string, hdr ...string) caddyproc.Response {
		return e.call("POST", "verified.test", "/agent/converse", body, hdr...)
	}
	tampered := func(body string, hdr ...string) caddyproc.Response {
		return w.tampered("POST", "verified.test", "/agent/converse", body, hdr...)
	}
	lost := func(body string, hdr ...string) caddyproc.Response {
		return e.signed(w.lost, "POST", "verified.test", "/agent/converse", body, hdr...)
	}

	// per_agent 3/minute: three calls under three names from three
	// clients, then the fourth is the agent's fourth.
	for i := 1; i <= 3; i++ {
		if r := call(signed, "c"+strconv.Itoa(i), "name-"+strconv.Itoa(i)); r.StatusCode != 200 {
			t.Fatalf("verified call %d: %d %s", i, r.StatusCode, r.Bytes)
		}
	}
	r := call(signed, "c4", "name-4")
	if r.StatusCode != 429 || decodeRefusal(t, r).Scope != "agent" {
		t.Fatalf("the verified agent's 4th call under a 4th name: %d %s", r.StatusCode, r.Bytes)
	}
	r = call(signed, "c5", "")
	if r.StatusCode != 429 || decodeRefusal(t, r).Scope != "agent" {
		t.Fatalf("the verified agent's call without a name: %d %s", r.StatusCode, r.Bytes)
	}

	// Not the agent's budget: a bad signature claiming the agent, an
	// unverifiable one, an unsigned call typing the agent's origin.
	for _, c := range []struct {
		name string
		send func(string, ...string) caddyproc.Response
		as   string
	}{
		{"tampered", tampered, "name-5"},
		{"unverifiable", lost, "name-6"},
		{"unsigned, typing the origin", unsigned, w.listed.Origin},
		{"unsigned", unsigned, "name-7"},
	} {
		if r := call(c.send, "c-"+c.name, c.as); r.StatusCode != 200 {
			t.Errorf("%s: %d %s (charged to the verified agent?)", c.name, r.StatusCode, r.Bytes)
		}
	}

	// Anyone is limited by the name it types, as before: a bad signature
	// adds nothing to it.
	for i := 1; i <= 4; i++ {
		send := unsigned
		if i%2 == 0 {
			send = tampered
		}
		r := call(send, "n"+strconv.Itoa(i), "shared-name")
		switch {
		case i <= 3 && r.StatusCode != 200:
			t.Fatalf("call %d as shared-name: %d %s", i, r.StatusCode, r.Bytes)
		case i == 4 && (r.StatusCode != 429 || decodeRefusal(t, r).Scope != "agent"):
			t.Fatalf("4th call as shared-name: %d %s", r.StatusCode, r.Bytes)
		}
	}
}

// The verified tier: a verified agent's calls count against `verified`,
// everyone else's against `unauthenticated`, per client.
func TestVerifiedTier(t *testing.T) {
	w := newWorld(t, "")
	e := w.e
	for _, c := range []struct {
		name  string
		send  func(client string) caddyproc.Response
		limit int
	}{
		{"verified", func(client string) caddyproc.Response {
			return e.signed(w.listed, "POST", "tiers.test", "/agent/converse", converseBody("bot"), "X-Client", client)
		}, 4},
		{"unsigned", func(client string) caddyproc.Response {
			return e.call("POST", "tiers.test", "/agent/converse", converseBody("bot"), "X-Client", client)
		}, 2},
		{"tampered", func(client string) caddyproc.Response {
			return w.tampered("POST", "tiers.test", "/agent/converse", converseBody("bot"), "X-Client", client)
		}, 2},
		{"unverifiable", func(client string) caddyproc.Response {
			return e.signed(w.lost, "POST", "tiers.test", "/agent/converse", converseBody("bot"), "X-Client", client)
		}, 2},
		{"forged header", func(client string) caddyproc.Response {
			return e.call("POST", "tiers.test", "/agent/converse", converseBody("bot"), "X-Client", client, "X-AHP-Verified-Agent", w.listed.Origin)
		}, 2},
	} {
		client := "client-" + c.name
		for i := 1; i <= c.limit; i++ {
			r := c.send(client)
			if r.StatusCode != 200 || r.Header.Get("X-RateLimit-Limit") != strconv.Itoa(c.limit) {
				t.Fatalf("%s call %d: %d, X-RateLimit-Limit %q, want 200 under %d", c.name, i, r.StatusCode, r.Header.Get("X-RateLimit-Limit"), c.limit)
			}
		}
		r := c.send(client)
		if r.StatusCode != 429 || decodeRefusal(t, r).Scope != "ip" {
			t.Fatalf("%s call %d: %d %s, want 429 for the client", c.name, c.limit+1, r.StatusCode, r.Bytes)
		}
	}
}

// Metrics count every request of the site by outcome, verified ones by
// agent: the listed and pinned agents by name, others as "other"; and the
// directory fetches.
func TestMetricsByOutcome(t *testing.T) {
	w := newWorld(t, "")
	e := w.e
	before := e.scrape("caddy_ahp_verified_agents_")
	for range 2 {
		e.signed(w.listed, "GET", "verified.test", "/whoami", "")
	}
	e.signed(w.pinned, "GET", "verified.test", "/whoami", "")
	e.signed(w.unlisted, "GET", "verified.test", "/whoami", "")
	e.signed(w.unlisted, "GET", "verified.test", "/articles/1", "")
	w.tampered("GET", "verified.test", "/whoami", "")
	e.signed(w.lost, "GET", "verified.test", "/whoami", "")
	for range 3 {
		e.call("GET", "verified.test", "/", "")
	}
	e.call("GET", "tiers.test", "/", "") // another site

	after := e.scrape("caddy_ahp_verified_agents_")
	site := `site="Verified Shop"`
	want := map[string]float64{
		`caddy_ahp_verified_agents_requests_total{agent="` + w.listed.Origin + `",outcome="verified",` + site + `}`: 2,
		`caddy_ahp_verified_agents_requests_total{agent="` + w.pinned.Origin + `",outcome="verified",` + site + `}`: 1,
		`caddy_ahp_verified_agents_requests_total{agent="other",outcome="verified",` + site + `}`:                   2,
		`caddy_ahp_verified_agents_requests_total{agent="",outcome="invalid",` + site + `}`:                         1,
		`caddy_ahp_verified_agents_requests_total{agent="",outcome="unverified",` + site + `}`:                      1,
		`caddy_ahp_verified_agents_requests_total{agent="",outcome="unsigned",` + site + `}`:                        3,
		`caddy_ahp_verified_agents_directory_fetches_total{result="ok",` + site + `}`:                               2,
		`caddy_ahp_verified_agents_directory_fetches_total{result="error",` + site + `}`:                            1,
	}
	for k, v := range want {
		if got := after[k] - before[k]; got != v {
			t.Errorf("%s grew by %v, want %v", k, got, v)
		}
	}
	for k, v := range after {
		if _, ok := want[k]; !ok && strings.Contains(k, site) && v != before[k] {
			t.Errorf("%s grew by %v, want 0", k, v-before[k])
		}
	}
	if got := after[`caddy_ahp_verified_agents_requests_total{agent="",outcome="unsigned",site="Tiers Shop"}`] -
		before[`caddy_ahp_verified_agents_requests_total{agent="",outcome="unsigned",site="Tiers Shop"}`]; got != 1 {
		t.Errorf("the other site counted %v unsigned requests, want 1", got)
	}
}

// With the rate limits in Redis, instances share the agents' directories
// through it: the second instance verifies without fetching.
func TestDirectorySharedThroughRedis(t *testing.T) {
	rs := redistest.Start(t)
	dir := webbotauthtest.NewDirectory(t)
	a := webbotauthtest.NewAgent(t, dir.Origin())
	dir.Serve(a)
	ca := writeTemp(t, "ca.pem", dir.CAPEM())
	up := newUpstream(t)
	cfg := fmt.Sprintf(`
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
	handle /whoami {
		respond "{ahp.agent.outcome} {ahp.agent.id}" 200
	}
	reverse_proxy %s
}
`, rs.Addr(), ca, up.Listener.Addr())
	first := &edge{caddyproc.Start(t, cfg)}
	second := &edge{caddyproc.Start(t, cfg)}
	for i, e := range []*edge{first, second, first, second} {
		r := e.signed(a, "GET", "shared.test", "/whoami", "")
		if string(r.Bytes) != "verified "+a.Origin {
			t.Fatalf("request %d: %q", i, r.Bytes)
		}
	}
	if n := dir.Hits(); n != 1 {
		t.Fatalf("two instances sharing Redis fetched the directory %d times, want once", n)
	}
	out, err := rs.Command("EXISTS", "ahp:wba:{keys}:"+a.Origin+"/.well-known/http-message-signatures-directory")
	if err != nil || out != ":1" {
		t.Fatalf("the directory is not in Redis: %q %v", out, err)
	}
}
