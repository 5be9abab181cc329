package handshake

import (
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestNotifyKeepsNoPadding: an unauthenticated page (no
// token: notify needs none by default) sends notify bodies of 60 KB made
// of JSON whitespace around a one-byte value. The stored value is a slice
// of compact()'s buffer, grown to the body's length, so each one-byte
// value keeps the whole 60 KB alive (twice referenced: values and the
// change ring). 256 keys per session: ~15 MB held for 256 bytes of values.
func TestNotifyKeepsNoPadding(t *testing.T) {
	f := newFixture(t)
	s := f.create(contactForm)
	pad := strings.Repeat(" ", 60<<10)
	before := heapInUse()
	for i := 0; i < MaxFields-7; i++ {
		a := f.do("POST", "/handshake/notify/"+s.ID, `{"key":"k`+strconv.Itoa(i)+`","value":1`+pad+`}`)
		if a.status != 200 {
			t.Fatalf("notify %d: %d %s", i, a.status, a.body)
		}
	}
	held := int64(heapInUse()) - int64(before)
	t.Logf("one session holds %d more heap bytes after %d one-byte notifies", held, MaxFields-7)
	if held > 1<<20 {
		t.Errorf("one session holds %d bytes for %d one-byte values: the padded bodies are retained", held, MaxFields-7)
	}
	runtime.KeepAlive(f)
}

// TestCreateKeepsNoPadding: a creation body padded with JSON
// whitespace to 60 KB keeps the whole buffer alive in the session (its
// meta, schema and context values are slices of compact()'s buffer, grown
// to the body's length): ~60 KB a session instead of the documented
// ~3 KB, 600 MB for the memory store's 10,000 sessions, no credentials.
func TestCreateKeepsNoPadding(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.ClientIP = func(r *http.Request) string { return "198.51.100." + r.Header.Get("X-N") }
	})
	pad := strings.Repeat(" ", 60<<10)
	body := contactForm[:len(contactForm)-1] + pad + "}"
	const n = 100
	before := heapInUse()
	for i := 0; i < n; i++ {
		f.create(body, "X-N", strconv.Itoa(i))
	}
	per := (int64(heapInUse()) - int64(before)) / n
	t.Logf("%d bytes held per session created with a padded body", per)
	if per > 8<<10 {
		t.Errorf("each session holds %d bytes: the padded creation body is retained", per)
	}
	runtime.KeepAlive(f)
}

// TestActionKeepsNoPadding: an agent's one-byte values, each sent in a
// body padded to 60 KB with an ignored member, are kept without the body.
func TestActionKeepsNoPadding(t *testing.T) {
	f := newFixture(t)
	s := f.create(`{"mode":"generic"}`)
	pad := strings.Repeat("x", 60<<10)
	const n = 100
	before := heapInUse()
	for i := 0; i < n; i++ {
		f.clock.add(time.Minute) // past the agent's rate
		a := f.agent("POST", s, "/handshake/action/", `{"pad":"`+pad+`","stream":false,"actions":[{"key":"k`+strconv.Itoa(i)+`","value":1}]}`)
		if a.status != 200 {
			t.Fatalf("action %d: %d %s", i, a.status, a.body)
		}
	}
	held := int64(heapInUse()) - int64(before)
	t.Logf("one session holds %d more heap bytes after %d one-byte actions", held, n)
	if held > 1<<20 {
		t.Errorf("one session holds %d bytes for %d one-byte values: the padded bodies are retained", held, n)
	}
	runtime.KeepAlive(f)
}

// TestSocketsCappedPerClient: ws_max is the only instance-wide cap
// on sockets and nothing bounds one client's share of it. One client
// (one address) creates sessions without credentials (the create answer
// carries the token), opens ws_per_session sockets on each, and holds
// every socket slot: another visitor's page then gets 503 "too many
// sockets open". With the module's defaults (create_rate 30/min, ws_rate
// 120/min, 1000 sessions a client, ws_max 10,000) one address holds 8,000
// of the 10,000 sockets in about 70 minutes, two addresses all of them,
// kept alive by extend (24 h). The sessions themselves are capped per
// client and per network; the sockets should be too.
func TestSocketsCappedPerClient(t *testing.T) {
	const wsMax = 16
	f := newFixture(t, func(c *Config) {
		c.WSMax = wsMax
		c.ClientIP = func(r *http.Request) string {
			if v := r.Header.Get("X-Test-Client"); v != "" {
				return v
			}
			return "192.0.2.1"
		}
	})
	attacker := []string{"X-Test-Client", "198.51.100.7"}
	held := 0
	for s := 0; held < wsMax && s < 2*wsMax; s++ {
		sess := f.create(contactForm, attacker...)
		for i := 0; i < DefaultWSPerSession && held < wsMax; i++ {
			c, a := f.dialRaw(sess.ID, sess.Token, attacker...)
			if c == nil {
				t.Logf("attacker refused after %d sockets: %d %s", held, a.status, a.body)
				if a.status != http.StatusServiceUnavailable || a.json["error"] != "too many sockets open, try again later" {
					t.Errorf("a client past its share of sockets: %d %s, want ws_max's answer", a.status, a.body)
				}
				goto victim
			}
			held++
		}
	}
victim:
	victim := f.create(contactForm, "X-Test-Client", "203.0.113.9")
	c, a := f.dialRaw(victim.ID, victim.Token, "X-Test-Client", "203.0.113.9")
	t.Logf("one client holds %d of ws_max %d sockets; another client's socket: %d %s", held, wsMax, a.status, a.body)
	if c == nil {
		t.Errorf("one unauthenticated client holds all %d sockets of the instance; another visitor's page is refused (%d %s)", held, a.status, a.body)
	}
}
