package webbotauth

import "testing"

// A percent-encoded host is refused: url.Parse would decode it into a
// Unicode identity, a lookalike of a known agent in the trusted header,
// placeholders and logs (chatg%D1%80t.com as "chatgрt.com", Cyrillic er),
// or fold it to ASCII through lower-casing (KELVIN SIGN as "k").
func TestAgentIDRefusesPercentEncodedHost(t *testing.T) {
	for _, raw := range []string{
		"https://chatg%D1%80t.com",
		"https://k%E2%84%AAy.example",
		"https://chatgpt%2ecom",
		"https://[fe80::1%25eth0]",
		"https://chatgpt.com%3A8443",
	} {
		for _, dirURLs := range []bool{false, true} {
			if id, fetch, f := agentID(raw, dirURLs); f == nil {
				t.Errorf("%s: accepted as agent %q (directory %q); want it refused like a raw non-ASCII byte", raw, id, fetch)
			}
		}
		if id, err := NormalizeAgent(raw, true); err == nil {
			t.Errorf("NormalizeAgent(%s) = %q, want an error", raw, id)
		}
	}
	// Percent-escapes after the host are not the identity's host.
	for raw, want := range map[string]string{
		"https://a.example?x=%20":             "https://a.example",
		"https://a.example/k%20s.json":        "https://a.example/k%20s.json",
		"https://a.example/k.json?t=%C3%A9":   "https://a.example/k.json?t=%C3%A9",
		"https://xn--chatgt-frf.com":          "https://xn--chatgt-frf.com",
		"https://xn--chatgt-frf.com:8443/%2F": "https://xn--chatgt-frf.com:8443/%2F",
	} {
		dirURLs := want != "https://a.example"
		if id, _, f := agentID(raw, dirURLs); f != nil || id != want {
			t.Errorf("%s: %q %v, want %q", raw, id, f, want)
		}
	}
}
