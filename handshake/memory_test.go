package handshake

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// The change log keeps the last MaxChanges, oldest first, whatever the
// ring's position.
func TestMemoryChangeRing(t *testing.T) {
	s := NewMemoryStore()
	defer s.Close()
	rec := &Record{ID: newSessionID(), Mode: "default", Schema: &Schema{Raw: json.RawMessage("[]")}, Meta: json.RawMessage("{}")}
	if err := s.Create(context.Background(), rec, &State{Data: map[string]json.RawMessage{}}, DefaultTTL); err != nil {
		t.Fatal(err)
	}
	const n = MaxChanges + 57
	for i := 0; i < n; i++ {
		if err := s.Notify(context.Background(), rec, "k", json.RawMessage(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	ch, _, err := s.Changes(context.Background(), rec)
	if err != nil || len(ch) != MaxChanges {
		t.Fatalf("%d changes, %v", len(ch), err)
	}
	for i, c := range ch {
		if want := strconv.Itoa(n - MaxChanges + i); string(c.To) != want {
			t.Fatalf("change %d = %s, want %s", i, c.To, want)
		}
	}
}

func TestAppendTime(t *testing.T) {
	for _, us := range []int64{0, 1, 999999, 1777777777123456, -1, 253402300799999999} {
		want := time.UnixMicro(us).UTC().Format("2006-01-02T15:04:05.000000+00:00")
		if got := string(appendTime(nil, us)); got != want {
			t.Errorf("%d: %s, want %s", us, got, want)
		}
	}
}
