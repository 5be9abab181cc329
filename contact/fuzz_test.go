package contact

import "testing"

// FuzzPostalAddress holds the scan that chooses which patterns run to the
// patterns themselves: it may let through text no pattern matches, never
// hold back text one does. Page text is untrusted input.
func FuzzPostalAddress(f *testing.F) {
	for _, s := range []string{"14 Quay Street, Harbourton", "London SW1A 1AA", "London GIR 0AA", "Springfield, IL 62701", "Ottawa ON K1A 0B1",
		"Sydney NSW 2000", "Hauptstraße 5", "Lindenstr.\t12", "Kölner Straße 5", "12 rue de la Paix", "Via Roma 12",
		"Calle Mayor, 5", "2 Hard Drive for £40", "12 Kings Way,", "Find Us\u00a0at", "5\nAvenue Victor", "Find us at:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if PostalAddress(text) {
			return
		}
		for i := range postal {
			if postal[i].matches(text) {
				t.Fatalf("PostalAddress(%q) = false, but the %b pattern matches it", text, postal[i].kind)
			}
		}
	})
}
