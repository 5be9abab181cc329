package manifest

import (
	"strings"
	"testing"

	"github.com/dunglas/httpsfv"
)

// Every combination of the three signals that have terms, written out.
func TestRenderSignalsTable(t *testing.T) {
	y, n := boolp(true), boolp(false)
	for _, tc := range []struct {
		train, search, input *bool
		signal, usage        string
	}{
		{n, n, n, "ai-train=no, search=no, ai-input=no", "train-ai=n, ai-use=n, search=n"},
		{n, n, y, "ai-train=no, search=no, ai-input=yes", "train-ai=n, ai-use=y, search=n"},
		{n, y, n, "ai-train=no, search=yes, ai-input=no", "train-ai=n, ai-use=n, search=y"},
		{n, y, y, "ai-train=no, search=yes, ai-input=yes", "train-ai=n, ai-use=y, search=y"},
		{y, n, n, "ai-train=yes, search=no, ai-input=no", "train-ai=y, ai-use=n, search=n"},
		{y, n, y, "ai-train=yes, search=no, ai-input=yes", "train-ai=y, ai-use=y, search=n"},
		{y, y, n, "ai-train=yes, search=yes, ai-input=no", "train-ai=y, ai-use=n, search=y"},
		{y, y, y, "ai-train=yes, search=yes, ai-input=yes", "train-ai=y, ai-use=y, search=y"},
		// Unset signals are left out, not defaulted.
		{n, y, nil, "ai-train=no, search=yes", "train-ai=n, search=y"},
		{nil, nil, y, "ai-input=yes", "ai-use=y"},
		{nil, nil, nil, "", ""},
	} {
		for _, attribution := range []*bool{nil, y, n} {
			s := RenderSignals(&ContentSignals{AITrain: tc.train, Search: tc.search, AIInput: tc.input, AttributionRequired: attribution})
			if s.ContentSignal != tc.signal || s.ContentUsage != tc.usage {
				t.Errorf("train=%v search=%v input=%v: Content-Signal %q, Content-Usage %q; want %q, %q",
					str(tc.train), str(tc.search), str(tc.input), s.ContentSignal, s.ContentUsage, tc.signal, tc.usage)
			}
			wantRules := ""
			if tc.signal != "" {
				wantRules = "Content-Signal: " + tc.signal + "\nContent-Usage: / " + tc.usage + "\n"
			}
			if s.RobotsRules != wantRules {
				t.Errorf("robots rules %q, want %q", s.RobotsRules, wantRules)
			}
		}
	}
	if s := RenderSignals(nil); s != (Signals{}) {
		t.Errorf("nil signals rendered %+v", s)
	}
}

// TestRenderSignalsAgree parses every form back, for all 3^4 settings of
// the four signals (unset, false, true), and checks that each says what
// the manifest says: the header fields as structured-field dictionaries
// read the way the aipref vocabulary's processing algorithm reads them,
// and the robots.txt lines as their rules' values.
func TestRenderSignalsAgree(t *testing.T) {
	states := []*bool{nil, boolp(false), boolp(true)}
	for _, train := range states {
		for _, search := range states {
			for _, input := range states {
				for _, attr := range states {
					cs := &ContentSignals{AITrain: train, Search: search, AIInput: input, AttributionRequired: attr}
					s := RenderSignals(cs)
					name := "train=" + str(train) + " search=" + str(search) + " input=" + str(input) + " attribution=" + str(attr)
					checkDict(t, name, "Content-Signal", s.ContentSignal,
						[]string{"ai-train", "search", "ai-input"}, []*bool{train, search, input}, "yes", "no")
					checkDict(t, name, "Content-Usage", s.ContentUsage,
						[]string{"train-ai", "ai-use", "search"}, []*bool{train, input, search}, "y", "n")
					checkRobots(t, name, s)
				}
			}
		}
	}
}

// checkDict checks that field is a dictionary with exactly the set keys,
// in order, each a token yes or no as the signal says.
func checkDict(t *testing.T, name, field, value string, keys []string, vals []*bool, yes, no string) {
	t.Helper()
	var wantKeys []string
	for i, v := range vals {
		if v != nil {
			wantKeys = append(wantKeys, keys[i])
		}
	}
	if len(wantKeys) == 0 {
		if value != "" {
			t.Errorf("%s: %s %q with no signal set", name, field, value)
		}
		return
	}
	d, err := httpsfv.UnmarshalDictionary([]string{value})
	if err != nil {
		t.Fatalf("%s: %s %q is not a dictionary: %v", name, field, value, err)
	}
	if got := strings.Join(d.Names(), ","); got != strings.Join(wantKeys, ",") {
		t.Errorf("%s: %s keys %s, want %s", name, field, got, strings.Join(wantKeys, ","))
	}
	for i, k := range keys {
		if vals[i] == nil {
			continue
		}
		m, _ := d.Get(k)
		it, _ := m.(httpsfv.Item)
		want := httpsfv.Token(no)
		if *vals[i] {
			want = httpsfv.Token(yes)
		}
		if it.Value != want || len(it.Params.Names()) != 0 {
			t.Errorf("%s: %s %s = %v, want %v", name, field, k, it.Value, want)
		}
	}
	// Serialized canonically: parsing and re-serializing changes nothing.
	if again, _ := httpsfv.Marshal(d); again != value {
		t.Errorf("%s: %s %q is not canonical (%q)", name, field, value, again)
	}
}

func checkRobots(t *testing.T, name string, s Signals) {
	t.Helper()
	if s.ContentSignal == "" {
		if s.RobotsRules != "" || s.RobotsGroup != "" {
			t.Errorf("%s: robots.txt lines without signals", name)
		}
		return
	}
	rules := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(s.RobotsRules, "\n"), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("%s: robots line %q", name, line)
		}
		rules[strings.ToLower(k)] = strings.TrimSpace(v)
	}
	if rules["content-signal"] != s.ContentSignal {
		t.Errorf("%s: robots Content-Signal %q, header %q", name, rules["content-signal"], s.ContentSignal)
	}
	path, pref, _ := strings.Cut(rules["content-usage"], " ")
	if path != "/" || pref != s.ContentUsage {
		t.Errorf("%s: robots Content-Usage path %q pref %q, header %q", name, path, pref, s.ContentUsage)
	}
	if len(rules) != 2 {
		t.Errorf("%s: robots rules %q", name, s.RobotsRules)
	}
	lines := strings.Split(s.RobotsGroup, "\n")
	if !strings.HasPrefix(lines[0], "#") || lines[1] != "User-agent: *" || strings.Join(lines[2:], "\n") != s.RobotsRules {
		t.Errorf("%s: robots group %q", name, s.RobotsGroup)
	}
}

func str(b *bool) string {
	switch {
	case b == nil:
		return "unset"
	case *b:
		return "true"
	}
	return "false"
}
