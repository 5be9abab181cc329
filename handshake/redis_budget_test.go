package handshake

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// redisHeld is what Redis holds for a session: MEMORY USAGE of its hash
// and change list, every element sampled.
func redisHeld(t *testing.T, rs *RedisStore, sid string) int64 {
	t.Helper()
	var held int64
	for _, k := range rs.keys(sid) {
		n, err := rs.client.MemoryUsage(context.Background(), k, 0).Result()
		if err != nil && err.Error() != "redis: nil" {
			t.Fatal(err)
		}
		held += n
	}
	return held
}

// TestRedisSessionBytesBounded: with `store redis`, one session created
// and filled without credentials through notify (honest 16 KiB values in
// 249 keys, then 200 overwrites whose change log keeps the replaced
// values) held ~8 MB of the Redis every instance and the rate limiter
// share; create_rate's 30 sessions a minute, kept 30 minutes, made that
// ~7 GB from one client. The Redis store keeps the memory store's budget.
func TestRedisSessionBytesBounded(t *testing.T) {
	f := newFixtureOn(t, "redis")
	rs := f.h.cfg.Store.(*RedisStore)
	s := f.create(contactForm)
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
	for i := 0; i < MaxChanges; i++ {
		v := `"` + strings.Repeat("z", MaxValueLen-2-i%5) + `"`
		a := f.do("POST", "/handshake/notify/"+s.ID, `{"key":"k`+strconv.Itoa(i%4)+`","value":`+v+`}`)
		if a.status != 200 && (a.status != 400 || a.json["error"] != "too much data in the session") {
			t.Fatalf("overwrite %d: %d %s", i, a.status, a.body)
		}
	}
	held := redisHeld(t, rs, s.ID)
	t.Logf("one session holds %d bytes of Redis (%d values refused)", held, refused)
	if refused == 0 {
		t.Errorf("%d values of %d bytes all taken", MaxFields-7, MaxValueLen)
	}
	if held > 1<<20 {
		t.Errorf("one unauthenticated session holds %d bytes of Redis (no per-session byte budget)", held)
	}
}

// storeStep is one write of the parity test.
type storeStep struct {
	notify bool   // a user edit, else an agent batch of one write
	key    string // key
	size   int    // bytes of the string value's letters
}

// storeTrace runs steps against st and returns what a client would see:
// each write's answer, then the change log kept (by, key, sizes).
func storeTrace(t *testing.T, st Store, form bool, steps []storeStep) []string {
	t.Helper()
	ctx := context.Background()
	rec := &Record{ID: newSessionID(), Mode: "generic", Form: form, Schema: &Schema{Raw: json.RawMessage("[]")}, Meta: json.RawMessage("{}")}
	initial := &State{Data: map[string]json.RawMessage{"init": json.RawMessage(`"` + strings.Repeat("i", 1000) + `"`)}, Keys: []string{"init"}}
	if form {
		initial = &State{Values: map[string]Entry{"init": {Value: initial.Data["init"], By: ByUser, At: 1}}, Keys: []string{"init"}}
	}
	if err := st.Create(ctx, rec, initial, DefaultTTL); err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, s := range steps {
		v := json.RawMessage(`"` + strconv.Itoa(i) + strings.Repeat("x", s.size) + `"`)
		if s.notify {
			err := st.Notify(ctx, rec, s.key, v)
			out = append(out, fmt.Sprintf("notify %s %d: %v", s.key, s.size, err))
			continue
		}
		b := &Batch{Writes: []Write{{Key: s.key, Value: v}}}
		_, err := st.Apply(ctx, rec, b)
		out = append(out, fmt.Sprintf("apply %s %d: %v %d", s.key, s.size, err, b.Writes[0].Outcome))
	}
	ch, _, err := st.Changes(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ch {
		out = append(out, fmt.Sprintf("change %s %s %d->%d", c.By, c.Key, len(c.From), len(c.To)))
	}
	return out
}

// TestStoresSessionBytesAlike: the memory and the Redis store refuse the
// same writes past a session's budget and forget the same changes to
// make room, for agent writes and user edits, form and generic sessions.
func TestStoresSessionBytesAlike(t *testing.T) {
	const budget = 16 << 10
	var steps []storeStep
	for i := 0; i < 40; i++ { // small edits fill the log
		steps = append(steps, storeStep{notify: i%3 != 0, key: "k" + strconv.Itoa(i%4), size: 40 + i})
	}
	for i := 0; i < 12; i++ { // large values take the room of old changes, then are refused
		steps = append(steps, storeStep{notify: i%2 == 0, key: "big" + strconv.Itoa(i%5), size: 2500 + 300*i})
	}
	for i := 0; i < MaxChanges+20; i++ { // a full log of small changes
		steps = append(steps, storeStep{notify: i%2 == 1, key: "k" + strconv.Itoa(i%7), size: i % 13})
	}
	steps = append(steps, storeStep{key: "huge", size: budget}, storeStep{notify: true, key: "huge", size: budget})
	for _, form := range []bool{false, true} {
		t.Run(fmt.Sprintf("form=%v", form), func(t *testing.T) {
			mem := NewMemoryStore()
			defer mem.Close()
			mem.MaxSessionBytes = budget
			rs := newRedisStore(t)
			rs.MaxSessionBytes = budget
			want := storeTrace(t, mem, form, steps)
			got := storeTrace(t, rs, form, steps)
			refused := 0
			for i := 0; i < max(len(want), len(got)); i++ {
				var w, g string
				if i < len(want) {
					w = want[i]
				}
				if i < len(got) {
					g = got[i]
				}
				if w != g {
					t.Fatalf("line %d: redis %q, memory %q", i, g, w)
				}
				if strings.Contains(w, ErrSessionFull.Error()) || strings.HasSuffix(w, " "+strconv.Itoa(int(TooLarge))) {
					refused++
				}
			}
			if refused < 2 {
				t.Errorf("%d writes refused: the steps do not reach the budget", refused)
			}
			t.Logf("%d lines alike, %d writes refused", len(want), refused)
		})
	}
}

// redisCounts checks a Redis session's byte count against what it holds:
// vb is its keys and values, lc one cost per kept change, lb their sum,
// all within budget; it returns the changes kept.
func redisCounts(t *testing.T, rs *RedisStore, sid string, budget int) int {
	t.Helper()
	ctx := context.Background()
	k := rs.keys(sid)
	all, err := rs.client.HGetAll(ctx, k[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	values := 0
	for f, v := range all {
		switch f[:min(2, len(f))] {
		case "f:":
			e, err := parseEntry(v)
			if err != nil {
				t.Fatal(err)
			}
			values += len(f) - 2 + len(e.Value)
		case "d:":
			values += len(f) - 2 + len(v)
		}
	}
	n, err := rs.client.LLen(ctx, k[1]).Result()
	if err != nil {
		t.Fatal(err)
	}
	costs := strings.Fields(all["lc"])
	logged := 0
	for _, c := range costs {
		x, _ := strconv.Atoi(c)
		logged += x
	}
	if all["vb"] != strconv.Itoa(values) || all["lb"] != strconv.Itoa(logged) || len(costs) != int(n) {
		t.Fatalf("counted vb %s lb %s and %d costs; holds %d bytes of values, %d of costs, %d changes", all["vb"], all["lb"], len(costs), values, logged, n)
	}
	if values+logged > budget {
		t.Fatalf("%d bytes counted, over %d", values+logged, budget)
	}
	return int(n)
}

// TestRedisSessionBytesOlderWriters: a session written by an older
// version has no byte count, and an older instance (in a rolling
// upgrade) writes without updating it: the next write counts the session
// once, its kept changes at their whole length, and forgets the oldest of
// them to bring it within the budget.
func TestRedisSessionBytesOlderWriters(t *testing.T) {
	const budget = 16 << 10
	ctx := context.Background()
	rs := newRedisStore(t)
	rs.MaxSessionBytes = -1 // an older version: no budget
	rec := &Record{ID: newSessionID(), Mode: "generic", Schema: &Schema{Raw: json.RawMessage("[]")}, Meta: json.RawMessage("{}")}
	if err := rs.Create(ctx, rec, &State{Data: map[string]json.RawMessage{}}, DefaultTTL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < MaxChanges; i++ {
		v := json.RawMessage(`"` + strings.Repeat("o", 1000+i) + `"`)
		if err := rs.Notify(ctx, rec, "k"+strconv.Itoa(i%5), v); err != nil {
			t.Fatal(err)
		}
	}
	k := rs.keys(rec.ID)
	rs.client.HDel(ctx, k[0], "vb", "lb", "lc", "lt")
	rs.MaxSessionBytes = budget
	if err := rs.Notify(ctx, rec, "new", json.RawMessage(`"fits"`)); err != nil {
		t.Fatalf("a small write to an older session: %v", err)
	}
	kept := redisCounts(t, rs, rec.ID, budget)
	t.Logf("an older session of %d changes keeps %d once counted", MaxChanges, kept)
	if kept >= MaxChanges || kept == 0 {
		t.Errorf("%d changes kept", kept)
	}
	ch, _, err := rs.Changes(ctx, rec)
	if err != nil || len(ch) != kept || ch[len(ch)-1].Key != "new" {
		t.Fatalf("%d changes, %v", len(ch), err)
	}
	// An older instance's user edits in a full change list (as many
	// changes as before): their values and changes, no count.
	for i := 0; i < MaxChanges; i++ {
		if err := rs.Notify(ctx, rec, "s", json.RawMessage(strconv.Itoa(i%10))); err != nil {
			t.Fatal(err)
		}
	}
	if n := redisCounts(t, rs, rec.ID, budget); n != MaxChanges {
		t.Fatalf("%d small changes kept", n)
	}
	for i := 0; i < 3; i++ {
		v := `"` + strings.Repeat("p", 3000) + `"`
		old, _ := rs.client.HGet(ctx, k[0], "d:k0").Result()
		rs.client.HSet(ctx, k[0], "d:k"+strconv.Itoa(i), v)
		rs.client.RPush(ctx, k[1], `[`+strconv.Itoa(1e15+i)+`,"user","k`+strconv.Itoa(i)+`",`+old+`,`+v+`]`)
		rs.client.LTrim(ctx, k[1], -MaxChanges, -1)
	}
	if err := rs.Notify(ctx, rec, "new", json.RawMessage(`"again"`)); err != nil {
		t.Fatalf("a write after an older instance's: %v", err)
	}
	redisCounts(t, rs, rec.ID, budget)
	// Past the budget even with no change kept: refused, nothing changed.
	before, _ := rs.client.HGetAll(ctx, k[0]).Result()
	if err := rs.Notify(ctx, rec, "huge", json.RawMessage(`"`+strings.Repeat("h", budget)+`"`)); err != ErrSessionFull {
		t.Fatalf("a write past the budget: %v", err)
	}
	after, _ := rs.client.HGetAll(ctx, k[0]).Result()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("a refused write changed the session")
	}
}
