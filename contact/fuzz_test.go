package contact

import "testing"

// FuzzPostalAddress holds the scan that chooses which patterns run to the
// patterns themselves: it may let through text no pattern matches, never
// hold back text one does. Page text is untrusted input.
func FuzzPostalAddress(f *testing.F) {
	for _, s := range []string{"14 Quay Street, Harbourton", "London SW1A 1AA", "Springfield, IL 62701", "Ottawa ON K1A 0B1",
		"Sydney NSW 2000", "Hauptstraße 5", "Lindenstr.\t12", "Kölner Straße 5", "12 rue de la Paix", "Via Roma 12",
		"Calle Mayor, 5", "2 Hard Drive for £40", "12 Kings Way,", "Find Us\u00a0at", "5\nAvenue Victor"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		got := PostalAddress(text)
		if got {
			return
		}
		for _, p := range postal {
			if p.re.MatchString(text) {
				t.Fatalf("PostalAddress(%q) = false, but the %b pattern matches it", text, p.kind)
			}
		}
		if findUsAt.MatchString(text) {
			t.Fatalf("PostalAddress(%q) = false, but it says find us at", text)
		}
	})
}
