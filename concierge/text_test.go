package concierge

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestStem(t *testing.T) {
	groups := [][]string{
		{"care", "cares", "caring", "cared"},
		{"table", "tables"},
		{"run", "running"},
		{"ship", "ships", "shipped", "shipping"},
		{"family", "families"},
		{"box", "boxes"},
		{"use", "uses", "used", "using"},
		{"carry", "carried", "carries"},
		{"booking", "bookings", "book", "booked"},
		{"address", "addresses"},
		{"fall", "falling"},
	}
	for _, g := range groups {
		want := stem(g[0])
		for _, w := range g[1:] {
			if got := stem(w); got != want {
				t.Errorf("stem(%q) = %q, stem(%q) = %q: forms of one word must meet", w, got, g[0], want)
			}
		}
	}
	// Different words stay apart.
	for _, pair := range [][2]string{{"oak", "oat"}, {"desk", "disk"}, {"status", "state"}, {"glass", "glad"}} {
		if stem(pair[0]) == stem(pair[1]) {
			t.Errorf("%q and %q conflated", pair[0], pair[1])
		}
	}
	// Short, non-ASCII and mixed words are kept.
	for _, w := range []string{"bus", "is", "café", "m3s", "1987"} {
		if got := stem(w); got != w {
			t.Errorf("stem(%q) = %q, want it kept", w, got)
		}
	}
}

func TestAppendTerms(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"How do I care for oak?", []string{"car", "oak"}},
		{"The workshop's TABLES don't wobble", []string{"workshop", "tabl", "wobbl"}},
		{"Open Tue–Sat, 10–6.", []string{"open", "tue", "sat", "10", "6"}},
		{"Schöne Tische", []string{"schöne", "tisch"}},
		{"オーク材の手入れ", []string{"オ", "ー", "ク", "材", "の", "手", "入", "れ"}},
		{"don’t it’s", nil},
		{"rock'n'roll", []string{"rocknroll"}},
		{strings.Repeat("a", 41) + " ok", []string{"ok"}},
		{"", nil},
	}
	for _, tc := range cases {
		got := appendTerms(nil, tc.in)
		if !slices.Equal(got, tc.want) {
			t.Errorf("appendTerms(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzTerms: the tokenizer takes any string a visitor sends as a query.
// Terms are non-empty, valid UTF-8 (when the input is), free of white
// space and punctuation, and the same whatever text surrounds them.
func FuzzTerms(f *testing.F) {
	for _, s := range []string{"How do I care for oak?", "don't", "オーク材", "a'", "'s", "x’s’", "\xff\xfe", "Ünïcödé—dash", "1.5 cm", "e\u0301"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		terms := appendTerms(nil, s)
		for _, term := range terms {
			if term == "" {
				t.Fatalf("empty term from %q", s)
			}
			if utf8.ValidString(s) && !utf8.ValidString(term) {
				t.Fatalf("invalid UTF-8 term %q from %q", term, s)
			}
			if strings.ContainsAny(term, " \t\n.,;:!?\"") {
				t.Fatalf("term %q from %q holds a separator", term, s)
			}
		}
		// Tokens do not depend on what surrounds the text.
		again := appendTerms(nil, " "+s+" ")
		if !slices.Equal(terms, again) {
			t.Fatalf("%q: %q, padded %q", s, terms, again)
		}
	})
}

func TestStatesPrice(t *testing.T) {
	for text, want := range map[string]bool{
		"Puncture repair | £12 | While you wait": true,
		"from $1,200":                     true,
		"12 € a day":                      true,
		"30 EUR per brake":                true,
		"costs USD 40":                    true,
		"parts are charged at cost price": false,
		"EURO 2024 in Berlin":             false,
		"we open at 9:00 in 2026":         false,
		"$ signs and £ signs":             false,
	} {
		if got := statesPrice(text); got != want {
			t.Errorf("statesPrice(%q) = %v, want %v", text, got, want)
		}
	}
}

func TestAsksPrice(t *testing.T) {
	for text, want := range map[string]bool{
		"How much is a puncture repair?":  true,
		"What does a brake bleed cost?":   true,
		"wheel truing price":              true,
		"Do you charge for quotes?":       true,
		"How many mechanics do you have?": false,
		"How long does a repair take?":    false,
		"much ado":                        false,
	} {
		if got := asksPrice(text); got != want {
			t.Errorf("asksPrice(%q) = %v, want %v", text, got, want)
		}
	}
}

func TestAsksWhere(t *testing.T) {
	for text, want := range map[string]bool{
		"Where are you?":        true,
		"where's the shop":      true,
		"Whereabouts are you?":  true,
		"What is your address?": false,
		"Nowhere to park?":      false,
		"When are you open?":    false,
	} {
		if got := asksWhere(text); got != want {
			t.Errorf("asksWhere(%q) = %v, want %v", text, got, want)
		}
	}
}
