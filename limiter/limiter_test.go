package limiter

import (
	"strings"
	"testing"
	"time"
)

func TestParseLimit(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Limit
		str  string
	}{
		{"120/minute", Limit{120, time.Minute}, "120/minute"},
		{"30/second", Limit{30, time.Second}, "30/second"},
		{"1000/hour", Limit{1000, time.Hour}, "1000/hour"},
		{"1000000/hour", Limit{1_000_000, time.Hour}, "1000000/hour"},
		{"5/day", Limit{5, 24 * time.Hour}, "5/day"},
		{" 10 / Minutes ", Limit{10, time.Minute}, "10/minute"},
		{"9007199254740992/hour", Limit{1 << 53, time.Hour}, "9007199254740992/hour"}, // MaxEvents
	} {
		got, err := ParseLimit(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseLimit(%q) = %v, %v; want %v", c.in, got, err, c.want)
			continue
		}
		if s := got.String(); s != c.str {
			t.Errorf("String() = %q, want %q", s, c.str)
		}
	}
	for _, in := range []string{"", "120", "120/", "/minute", "0/minute", "-1/minute", "1.5/minute", "12O/minute", "10/fortnight", "10/1m", "99999999999999999999/hour", "9007199254740993/hour", "1/minute/extra"} {
		_, err := ParseLimit(in)
		if err == nil {
			t.Errorf("ParseLimit(%q) accepted", in)
			continue
		}
		if !strings.Contains(err.Error(), `"N/minute"`) {
			t.Errorf("ParseLimit(%q) error %q does not say the accepted forms", in, err)
		}
	}
}

func TestLimitStringOtherWindows(t *testing.T) {
	if s := (Limit{10, 90 * time.Second}).String(); s != "10/1m30s" {
		t.Fatalf("String() = %q", s)
	}
}

func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"120/minute", "1000000/hour", "5/days", "0/second", "/", "1/ second"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLimit(s)
		if err != nil {
			return
		}
		if l.validate() != nil {
			t.Fatalf("ParseLimit(%q) = %v, an invalid limit", s, l)
		}
		back, err := ParseLimit(l.String())
		if err != nil || back != l {
			t.Fatalf("ParseLimit(%q) = %v, whose String %q parses to %v, %v", s, l, l.String(), back, err)
		}
	})
}
