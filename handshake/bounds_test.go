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
