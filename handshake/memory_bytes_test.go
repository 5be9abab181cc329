package handshake

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// bytesStore is a memory store on a test clock with a store-wide bound.
func bytesStore(t *testing.T, maxBytes int64) (*MemoryStore, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	s := NewMemoryStore()
	s.SetClock(clock.now)
	s.SetMaxBytes(maxBytes)
	t.Cleanup(func() { _ = s.Close() })
	return s, clock
}

// genericSession creates a generic session of client with a schema of
// schemaBytes bytes (the record the store's bound counts).
func genericSession(s *MemoryStore, client string, schemaBytes int) (*Record, error) {
	raw := json.RawMessage(`"` + strings.Repeat("s", max(schemaBytes-2, 0)) + `"`)
	rec := &Record{ID: newSessionID(), Mode: "generic", Schema: &Schema{Raw: raw}, Meta: json.RawMessage("{}"), Client: client}
	return rec, s.Create(context.Background(), rec, &State{Data: map[string]json.RawMessage{}}, DefaultTTL)
}

// heldBytes is what the store's sessions hold, counted from their
// contents (not from their counters): the store's count must equal it.
func heldBytes(t *testing.T, s *MemoryStore) int64 {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int64
	for _, ms := range s.m {
		ms.mu.Lock()
		values, logged := 0, 0
		for k, v := range ms.data {
			values += len(k) + len(v)
		}
		for k, v := range ms.values {
			values += len(k) + len(v.Value)
		}
		if ms.n > 0 {
			for _, c := range ms.log() {
				logged += changeBytes(c)
			}
		}
		if values != ms.valueBytes || logged != ms.logBytes {
			t.Errorf("session %s counts %d+%d bytes, holds %d+%d", ms.rec.ID, ms.valueBytes, ms.logBytes, values, logged)
		}
		n += int64(values + logged + recordBytes(ms.rec))
		ms.mu.Unlock()
	}
	return n
}

func checkBytes(t *testing.T, s *MemoryStore, what string) {
	t.Helper()
	held := heldBytes(t, s)
	if got := s.Bytes(); got != held {
		t.Fatalf("%s: the store counts %d bytes, its sessions hold %d", what, got, held)
	}
	if m := s.MaxBytes(); m > 0 && held > m {
		t.Fatalf("%s: %d bytes held, over max_bytes %d", what, held, m)
	}
}

// TestMemoryBytesBoundCreate: nothing bounded the bytes of the store as a
// whole (10,000 sessions of ~600 KB each: ~6 GB, from a few networks).
// Sessions are refused as the store being full once their bytes would
// pass MaxBytes, whoever creates them, and expired sessions make room
// again.
func TestMemoryBytesBoundCreate(t *testing.T) {
	const schema = 10 << 10
	s, clock := bytesStore(t, 100<<10)
	created := 0
	var err error
	for i := 0; i < 50; i++ {
		// A new network each time: only the store-wide bound applies.
		if _, err = genericSession(s, "10."+strconv.Itoa(i)+".0.1", schema); err != nil {
			break
		}
		created++
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("%d sessions of a %d-byte schema in a store of 100 KiB: %v, want ErrFull", created, schema, err)
	}
	if created < 8 || created > 9 {
		t.Errorf("%d sessions of about 10 KiB fit in 100 KiB", created)
	}
	checkBytes(t, s, "full")
	// A small session still fits in what is left; then none does.
	if _, err := genericSession(s, "192.0.2.1", 100); err != nil {
		t.Errorf("a 100-byte session in a store with room for it: %v", err)
	}
	checkBytes(t, s, "small one")
	clock.add(DefaultTTL) // every session expired: the next creation sweeps
	if _, err := genericSession(s, "192.0.2.2", schema); err != nil {
		t.Fatalf("a creation once every session expired: %v", err)
	}
	if s.Len() != 1 {
		t.Errorf("%d sessions held after the sweep, want 1", s.Len())
	}
	checkBytes(t, s, "after the sweep")
}

// TestMemoryBytesBoundWrites: a write that would take the store past
// MaxBytes is refused as MaxSessionBytes refuses one (ErrSessionFull for
// a user edit, TooLarge for an agent's write), never silently dropped;
// writes that do not grow the store pass; the writer's own oldest
// changes are forgotten to make room before a write is refused, and give
// their bytes back.
func TestMemoryBytesBoundWrites(t *testing.T) {
	const limit = 64 << 10
	s, _ := bytesStore(t, limit)
	ctx := context.Background()
	a, err := genericSession(s, "198.51.100.1", 100)
	if err != nil {
		t.Fatal(err)
	}
	b, err := genericSession(s, "203.0.113.1", 100)
	if err != nil {
		t.Fatal(err)
	}
	val := func(c string, n int) json.RawMessage { return json.RawMessage(`"` + strings.Repeat(c, n-2) + `"`) }
	// a holds 50 KiB of values, well within its own 256 KiB budget.
	for i := 0; i < 5; i++ {
		if err := s.Notify(ctx, a, "a"+strconv.Itoa(i), val("a", 10<<10)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	checkBytes(t, s, "a filled")
	// b's 16 KiB does not fit in the store's remaining ~14 KiB.
	if err := s.Notify(ctx, b, "big", val("b", 16<<10)); !errors.Is(err, ErrSessionFull) {
		t.Fatalf("a user edit past the store's bound: %v, want ErrSessionFull", err)
	}
	batch := &Batch{Writes: []Write{{Key: "big", Value: val("b", 16<<10)}, {Key: "small", Value: json.RawMessage("1")}}}
	st, err := s.Apply(ctx, b, batch)
	if err != nil {
		t.Fatal(err)
	}
	if batch.Writes[0].Outcome != TooLarge || batch.Writes[1].Outcome != Applied {
		t.Fatalf("an agent batch past the store's bound: outcomes %v, want TooLarge then Applied", []Outcome{batch.Writes[0].Outcome, batch.Writes[1].Outcome})
	}
	if _, ok := st.Data["big"]; ok || string(st.Data["small"]) != "1" {
		t.Fatalf("state after the batch: %v", st.Data)
	}
	checkBytes(t, s, "refused")
	// Overwriting a value with one no larger grows the store by its
	// change alone, which a's own oldest changes make room for: a's edits
	// never stop, its history shortening instead.
	for i := 0; i < 20; i++ {
		if err := s.Notify(ctx, a, "a"+strconv.Itoa(i%5), val(string(rune('c'+i%5)), 10<<10)); err != nil {
			t.Fatalf("overwrite %d: %v", i, err)
		}
		checkBytes(t, s, "overwrite "+strconv.Itoa(i))
	}
	ch, _, err := s.Changes(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) == 0 || len(ch) >= 25 {
		t.Errorf("%d changes kept by a session in a full store", len(ch))
	}
	if last := ch[len(ch)-1]; last.Key != "a4" || string(last.To) != string(val("g", 10<<10)) {
		t.Errorf("the newest change is %s=%.10s, want the last write", last.Key, last.To)
	}
	// Shrinking a's values frees nothing while its changes keep the old
	// ones; once its ring forgets those changes (MaxChanges tiny edits),
	// their bytes go back to the store and b's write fits.
	for i := 0; i < 5; i++ {
		if err := s.Notify(ctx, a, "a"+strconv.Itoa(i), json.RawMessage("0")); err != nil {
			t.Fatal(err)
		}
	}
	checkBytes(t, s, "shrunk")
	if err := s.Notify(ctx, b, "big", val("b", 16<<10)); !errors.Is(err, ErrSessionFull) {
		t.Fatalf("b's write while a's changes hold its old values: %v", err)
	}
	before := s.Bytes()
	for i := 0; i < MaxChanges; i++ {
		if err := s.Notify(ctx, a, "t", json.RawMessage(strconv.Itoa(i%10))); err != nil {
			t.Fatal(err)
		}
	}
	checkBytes(t, s, "ring turned")
	if s.Bytes() > before-40<<10 {
		t.Errorf("store count %d once a forgot its old values' changes, %d before", s.Bytes(), before)
	}
	if err := s.Notify(ctx, b, "big", val("b", 16<<10)); err != nil {
		t.Errorf("b's write once a gave its bytes back: %v", err)
	}
	checkBytes(t, s, "b wrote")
}

// TestMemoryBytesReleasedOnSweep: expired sessions give their bytes back
// when swept, and a write racing their sweep finds them gone.
func TestMemoryBytesReleasedOnSweep(t *testing.T) {
	s, clock := bytesStore(t, 1<<20)
	ctx := context.Background()
	var recs []*Record
	for i := 0; i < 10; i++ {
		rec, err := genericSession(s, "10.0."+strconv.Itoa(i)+".1", 1000)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Notify(ctx, rec, "k", json.RawMessage(`"`+strings.Repeat("v", 5000)+`"`)); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	checkBytes(t, s, "ten sessions")
	if s.Bytes() < 10*6000 {
		t.Fatalf("ten sessions of 6 KB count %d bytes", s.Bytes())
	}
	clock.add(DefaultTTL / 2)
	if _, err := s.State(ctx, recs[0]); err != nil { // renewed: stays
		t.Fatal(err)
	}
	clock.add(DefaultTTL / 2)
	s.Sweep()
	if s.Len() != 1 {
		t.Fatalf("%d sessions after the sweep, want 1", s.Len())
	}
	checkBytes(t, s, "swept")
	clock.add(DefaultTTL)
	s.Sweep()
	if s.Bytes() != 0 {
		t.Errorf("an empty store counts %d bytes", s.Bytes())
	}
	// A session swept while a writer held it: its write is not counted.
	if err := s.Notify(ctx, recs[0], "k", json.RawMessage("1")); !errors.Is(err, ErrNotFound) {
		t.Errorf("a write to a swept session: %v", err)
	}
	if s.Bytes() != 0 {
		t.Errorf("an empty store counts %d bytes after a write to a swept session", s.Bytes())
	}
}

// TestMemoryBytesConcurrent: creations, writes, overwrites and sweeps
// from many goroutines keep the count exact and within the bound.
func TestMemoryBytesConcurrent(t *testing.T) {
	const limit = 256 << 10
	s, clock := bytesStore(t, limit)
	ctx := context.Background()
	var wg sync.WaitGroup
	var refusedCreate sync.Map
	stop := make(chan struct{})
	watched := make(chan int64)
	go func() { // the count never passes the bound, even mid-race
		top := int64(0)
		for {
			select {
			case <-stop:
				watched <- top
				return
			default:
				top = max(top, s.Bytes())
			}
		}
	}()
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				rec, err := genericSession(s, "10."+strconv.Itoa(g)+"."+strconv.Itoa(i)+".1", 2000)
				if err != nil {
					if !errors.Is(err, ErrFull) {
						t.Errorf("create: %v", err)
					}
					refusedCreate.Store(g, true)
					continue
				}
				for j := 0; j < 20; j++ {
					v := json.RawMessage(`"` + strings.Repeat("v", 100*(j%7)+1) + `"`)
					b := &Batch{Writes: []Write{{Key: "k" + strconv.Itoa(j%4), Value: v}}}
					if _, err := s.Apply(ctx, rec, b); err != nil && !errors.Is(err, ErrNotFound) {
						t.Errorf("apply: %v", err)
					}
					if err := s.Notify(ctx, rec, "u"+strconv.Itoa(j%3), v); err != nil && !errors.Is(err, ErrSessionFull) && !errors.Is(err, ErrNotFound) {
						t.Errorf("notify: %v", err)
					}
				}
				if i%10 == 9 {
					clock.add(DefaultTTL / 3)
					s.Sweep()
				}
			}
		}(g)
	}
	wg.Wait()
	close(stop)
	if top := <-watched; top > limit {
		t.Errorf("the count reached %d mid-race, over max_bytes %d", top, limit)
	}
	checkBytes(t, s, "after the race")
	n := 0
	refusedCreate.Range(func(any, any) bool { n++; return true })
	t.Logf("store counts %d bytes of %d; %d goroutines saw creations refused", s.Bytes(), limit, n)
	if n == 0 {
		t.Errorf("no creation refused: the test never filled the store")
	}
	clock.add(DefaultTTL)
	s.Sweep()
	if s.Bytes() != 0 || s.Len() != 0 {
		t.Errorf("%d sessions, %d bytes after everything expired", s.Len(), s.Bytes())
	}
}

// TestMemoryBytesLogged: refusals for max_bytes are logged at warn, once
// a minute however many, so the operator learns why users see "full".
func TestMemoryBytesLogged(t *testing.T) {
	s, clock := bytesStore(t, 8<<10)
	core, logs := observer.New(zapcore.InfoLevel)
	s.SetLogger(zap.New(core))
	rec, err := genericSession(s, "192.0.2.1", 4000)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := genericSession(s, "192.0.2.2", 5000); !errors.Is(err, ErrFull) {
			t.Fatalf("creation %d: %v", i, err)
		}
		if err := s.Notify(context.Background(), rec, "k", json.RawMessage(`"`+strings.Repeat("v", 5000)+`"`)); !errors.Is(err, ErrSessionFull) {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if n := logs.Len(); n != 1 {
		t.Fatalf("%d log lines for 20 refusals in a minute, want 1", n)
	}
	e := logs.All()[0]
	if e.Level != zapcore.WarnLevel || !strings.Contains(e.Message, "max_bytes") || e.ContextMap()["max_bytes"] != int64(8<<10) {
		t.Errorf("log: %s %q %v", e.Level, e.Message, e.ContextMap())
	}
	clock.add(fullLogEvery)
	if _, err := genericSession(s, "192.0.2.2", 5000); !errors.Is(err, ErrFull) {
		t.Fatal(err)
	}
	if n := logs.Len(); n != 2 || logs.All()[1].ContextMap()["suppressed"] != int64(19) {
		t.Errorf("after a minute: %d lines, %v", n, logs.All()[n-1].ContextMap())
	}
	// Refusals of other bounds are no max_bytes warning.
	s.SetMaxBytes(0)
	s.MaxPerClient = 1
	clock.add(fullLogEvery)
	if _, err := genericSession(s, "192.0.2.1", 100); !errors.Is(err, ErrFull) {
		t.Fatal(err)
	}
	if logs.Len() != 2 {
		t.Errorf("a per-client refusal logged as max_bytes")
	}
}

// TestMemoryBytesHandler: through the handler, a store at its max_bytes
// answers a creation 503 "too many sessions" and a user edit 400 "too
// much data in the session", the SDK's answers for those.
func TestMemoryBytesHandler(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.ClientIP = func(r *http.Request) string { return "10." + r.Header.Get("X-N") + ".0.1" }
	})
	f.store.SetMaxBytes(12 << 10)
	s := f.create(contactForm, "X-N", "1")
	a := f.do("POST", "/handshake/notify/"+s.ID, `{"key":"notes","value":"`+strings.Repeat("n", 15<<10)+`"}`)
	if a.status != 400 || a.json["error"] != msgSessionFull {
		t.Fatalf("a notify past the store's bound: %d %s", a.status, a.body)
	}
	if a := f.do("POST", "/handshake/notify/"+s.ID, `{"key":"notes","value":"`+strings.Repeat("n", 10<<10)+`"}`); a.status != 200 {
		t.Fatalf("a notify within it: %d %s", a.status, a.body)
	}
	n := 2
	for ; n < 20; n++ {
		a = f.do("POST", "/handshake/session", contactForm, "X-N", strconv.Itoa(n))
		if a.status != 200 {
			break
		}
	}
	if a.status != 503 || a.json["error"] != "too many sessions, try again later" {
		t.Fatalf("creation %d in a store at its max_bytes: %d %s", n, a.status, a.body)
	}
	checkBytes(t, f.store, "handler")
}

// TestMemoryBytesExactUnderContention: sessions written at once, each
// write growing or shrinking the store's count, leave it exactly what
// the sessions hold: no update of the shared count is lost.
func TestMemoryBytesExactUnderContention(t *testing.T) {
	s, _ := bytesStore(t, 0) // no bound: every write moves the count
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		rec, err := genericSession(s, "10.0."+strconv.Itoa(g)+".1", 10)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20000; i++ {
				v := json.RawMessage(strconv.Itoa(i * i))
				if err := s.Notify(ctx, rec, "k"+strconv.Itoa(i%50), v); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	checkBytes(t, s, "after the race")
}
