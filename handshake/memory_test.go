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

// since is read as a time in any RFC 3339 / ISO 8601 spelling, including
// an "at" pasted into the URL with its '+' unescaped (a space once the
// query is decoded).
func TestParseSince(t *testing.T) {
	at := time.Date(2026, 5, 1, 11, 0, 0, 0, time.UTC).UnixMicro()
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"2026-05-01T11:00:00.000000+00:00", at},
		{"2026-05-01T11:00:00.000000 00:00", at},
		{"2026-05-01 11:00:00.000000 00:00", at},
		{"2026-05-01T13:00:00 02:00", at},
		{"2026-05-01T13:00 02:00", at},
		{"2026-05-01T09:00:00-02:00", at},
		{"2026-05-01T11:00:00Z", at},
		{"2026-05-01T11:00:00", at},
		{"2026-05-01 11:00", at},
		{"2026-05-01", time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC).UnixMicro()},
	} {
		if got, ok := parseSince(c.in); !ok || got != c.want {
			t.Errorf("parseSince(%q) = %d, %v; want %d", c.in, got, ok, c.want)
		}
	}
	for _, in := range []string{"yesterday", "2026-05-01T11:00:00  00:00", "2026-05-01T11:00:00 0000", "2026-05-01T11:00:00 00:0x", "2026-05-01 11:00 00:00:00"} {
		if _, ok := parseSince(in); ok {
			t.Errorf("parseSince(%q) accepted", in)
		}
	}
}
