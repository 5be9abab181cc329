package handshake

import (
	"context"
	"encoding/json"
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

// TestSessionBytesBounded: with honest 16 KB values (MaxValueLen), one
// session created and filled without credentials held ~4 MB of values
// plus a change ring of 200 entries (From and To), ~8 MB, so
// MaxPerClient (1000) sessions from one address held gigabytes. Now the
// values and changes of a session stay within MaxSessionBytes: a new
// value past it is refused with the SDK's error format, and overwrites
// still succeed, forgetting the oldest changes.
func TestSessionBytesBounded(t *testing.T) {
	f := newFixture(t)
	s := f.create(contactForm)
	before := heapInUse()
	refused := 0
	for i := 0; i < MaxFields-7; i++ {
		v := `"` + strings.Repeat(string(rune('a'+i%26)), MaxValueLen-2-i%7) + `"`
		a := f.do("POST", "/handshake/notify/"+s.ID, `{"key":"k`+strconv.Itoa(i)+`","value":`+v+`}`)
		switch {
		case a.status == 200:
		case a.status == 400 && a.json["error"] == "too much data in the session":
			refused++
		default:
			t.Fatalf("notify %d: %d %s", i, a.status, a.body)
		}
	}
	if refused == 0 {
		t.Errorf("%d values of %d bytes all taken", MaxFields-7, MaxValueLen)
	}
	// and overwrite: the change ring keeps From and To of the last 200
	for i := 0; i < MaxChanges; i++ {
		v := `"` + strings.Repeat("z", MaxValueLen-2-i%5) + `"`
		a := f.do("POST", "/handshake/notify/"+s.ID, `{"key":"k`+strconv.Itoa(i%4)+`","value":`+v+`}`)
		if a.status != 200 && (a.status != 400 || a.json["error"] != "too much data in the session") {
			t.Fatalf("overwrite %d: %d %s", i, a.status, a.body)
		}
	}
	held := int64(heapInUse()) - int64(before)
	t.Logf("one session holds %d heap bytes (%d values refused); x MaxPerClient (%d) = %d MB from one address", held, refused, f.store.MaxPerClient, held*int64(f.store.MaxPerClient)>>20)
	if held > 1<<20 {
		t.Errorf("one unauthenticated session holds %d bytes (no per-session byte budget)", held)
	}
	runtime.KeepAlive(f)
}

// TestSessionBytesAgentAndTypist: an agent's write past the budget is a
// per-key error, the batch's other writes applied; a user typing in a
// large textarea (one notify per pause, the whole text each time) is
// never refused, the change log keeping the newest changes in order.
// Both stores.
func TestSessionBytesAgentAndTypist(t *testing.T) { forStores(t, testSessionBytesAgentAndTypist) }

func testSessionBytesAgentAndTypist(t *testing.T, kind string) {
	const budget = 40 << 10
	f := newFixtureOn(t, kind)
	if f.store != nil {
		f.store.MaxSessionBytes = budget
	} else {
		f.h.cfg.Store.(*RedisStore).MaxSessionBytes = budget
	}
	s := f.create(`{"mode":"generic"}`)
	v := func(c string) string { return `"` + strings.Repeat(c, 14<<10) + `"` }
	if a := f.do("POST", "/handshake/session", `{"mode":"generic","context":{"a":`+v("a")+`,"b":`+v("b")+`,"c":`+v("c")+`}}`); a.status != 400 || a.json["error"] != "too much data in the session" {
		t.Fatalf("a creation over the budget: %d %.300s", a.status, a.body)
	}
	a := f.agent("POST", s, "/handshake/action/", `{"stream":false,"actions":[{"key":"a","value":`+v("a")+`},{"key":"b","value":`+v("b")+`}]}`)
	if a.status != 200 || !strings.Contains(string(a.body), `"applied":["a","b"]`) {
		t.Fatalf("28 KiB in a session of 40: %d %.300s", a.status, a.body)
	}
	a = f.agent("POST", s, "/handshake/action/", `{"stream":false,"actions":[{"key":"c","value":`+v("c")+`},{"key":"d","value":1}]}`)
	if a.status != 200 || !strings.Contains(string(a.body), `"applied":["d"]`) || !strings.Contains(string(a.body), `{"key":"c","msg":"too much data in the session"}`) {
		t.Fatalf("a batch over the budget: %d %.300s", a.status, a.body)
	}
	s = f.create(`{"mode":"generic"}`)
	text := ""
	for i := 0; i < 150; i++ {
		text += strings.Repeat("x", 30) // 4.5 KB at the end
		if a := f.do("POST", "/handshake/notify/"+s.ID, `{"key":"t","value":"`+text+`"}`); a.status != 200 {
			t.Fatalf("edit %d of a %d-byte text: %d %s", i, len(text), a.status, a.body)
		}
	}
	rec := &Record{ID: s.ID, Form: false}
	ch, _, err := f.h.cfg.Store.Changes(context.Background(), rec)
	if err != nil || len(ch) == 0 {
		t.Fatalf("%d changes, %v", len(ch), err)
	}
	if last := ch[len(ch)-1]; last.Key != "t" || string(last.To) != `"`+text+`"` {
		t.Errorf("newest change %s = %.40s", last.Key, last.To)
	}
	if len(ch) < 4 {
		t.Errorf("%d changes kept of a 4.5 KB text in 40 KiB", len(ch))
	}
	for i := 1; i < len(ch); i++ {
		if len(ch[i].To) != len(ch[i-1].To)+30 || string(ch[i].From) != string(ch[i-1].To) {
			t.Fatalf("changes out of order at %d: %d then %d bytes", i, len(ch[i-1].To), len(ch[i].To))
		}
	}
	total := 0
	for _, c := range ch {
		total += len(c.Key) + len(c.From)
	}
	t.Logf("%d changes kept, %d bytes besides the values", len(ch), total)
	if total > budget {
		t.Errorf("the change log holds %d bytes, over the session's %d", total, budget)
	}
}

// TestMemoryChangeRingForgets: a ring that forgot its oldest changes for
// room, then fills again, keeps the newest changes in order, and its
// byte count is what it holds.
func TestMemoryChangeRingForgets(t *testing.T) {
	s := NewMemoryStore()
	defer s.Close()
	s.MaxSessionBytes = 16 << 10
	rec := &Record{ID: newSessionID(), Mode: "default", Schema: &Schema{Raw: json.RawMessage("[]")}, Meta: json.RawMessage("{}")}
	if err := s.Create(context.Background(), rec, &State{Data: map[string]json.RawMessage{}}, DefaultTTL); err != nil {
		t.Fatal(err)
	}
	n := 0
	write := func(key string, size int) {
		t.Helper()
		n++
		v := json.RawMessage(`"` + strconv.Itoa(n) + strings.Repeat("x", size) + `"`)
		if err := s.Notify(context.Background(), rec, key, v); err != nil {
			t.Fatalf("write %d: %v", n, err)
		}
	}
	check := func(what string) {
		t.Helper()
		ch, _, err := s.Changes(context.Background(), rec)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(ch); i++ {
			if ch[i-1].At > ch[i].At || strings.TrimLeft(string(ch[i].To[1:]), "0123456789") == string(ch[i].To[1:]) {
				t.Fatalf("%s: change %d out of order", what, i)
			}
		}
		a, _ := strconv.Atoi(strings.TrimRight(string(ch[len(ch)-1].To[1:]), `x"`))
		if a != n {
			t.Fatalf("%s: newest change is write %d, want %d", what, a, n)
		}
		ms, _ := s.get(rec.ID)
		values, logged := 0, 0
		for k, v := range ms.data {
			values += len(k) + len(v)
		}
		for _, c := range ms.log() {
			logged += changeBytes(c)
		}
		got := [2]int{ms.valueBytes, ms.logBytes}
		ms.mu.Unlock()
		if got != [2]int{values, logged} {
			t.Fatalf("%s: counted %v bytes, holds %v", what, got, [2]int{values, logged})
		}
		if values+logged > s.MaxSessionBytes {
			t.Fatalf("%s: %d bytes held, over %d", what, values+logged, s.MaxSessionBytes)
		}
		t.Logf("%s: %d changes, %d bytes", what, len(ch), values+logged)
	}
	for i := 0; i < MaxChanges+30; i++ {
		write("k"+strconv.Itoa(i%3), 10)
	}
	check("a full ring")
	for i := 0; i < 5; i++ {
		write("big", 3000)
	}
	check("big values")
	for i := 0; i < 3*MaxChanges; i++ {
		write("k"+strconv.Itoa(i%5), 10)
		if i%97 == 0 {
			check("refilling")
		}
	}
	check("refilled")
}

// TestCreateKeepsNoOptionHeaders: a creation body of 32,000 one-byte enum
// options (64 KB) cost its session ~930 KB, a slice header per option,
// without credentials; the options are kept as their bytes.
func TestCreateKeepsNoOptionHeaders(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.ClientIP = func(r *http.Request) string { return "198.51.100." + r.Header.Get("X-N") }
	})
	body := `{"mode":"form-fill","schema":[{"key":"a","type":"enum","options":[` + strings.TrimSuffix(strings.Repeat("1,", 32000), ",") + `]}]}`
	const n = 20
	before := heapInUse()
	var s session
	for i := 0; i < n; i++ {
		s = f.create(body, "X-N", strconv.Itoa(i))
	}
	per := (int64(heapInUse()) - int64(before)) / n
	t.Logf("%d bytes held per session created with a %d-byte body", per, len(body))
	if per > 5*int64(len(body)) { // ~2x held; ~14x before
		t.Errorf("each session holds %d bytes for a %d-byte body", per, len(body))
	}
	a := f.agent("POST", s, "/handshake/action/", `{"stream":false,"actions":[{"type":"set","key":"a","value":2}]}`)
	if !strings.Contains(string(a.body), `"msg":"value not in allowed options [1, 1, 1`) {
		t.Errorf("a value among no option: %d %.200s", a.status, a.body)
	}
	a = f.agent("POST", s, "/handshake/action/", `{"stream":false,"actions":[{"type":"set","key":"a","value":1.0}]}`)
	if !strings.Contains(string(a.body), `"applied":["a"]`) {
		t.Errorf("an option's value: %d %.200s", a.status, a.body)
	}
	runtime.KeepAlive(f)
}
