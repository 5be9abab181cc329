package contact

import "testing"

func TestPostalAddress(t *testing.T) {
	for _, text := range []string{
		"14 Quay Street, Harbourton",
		"12 Mill Lane Bristol",
		"221B Baker St. London",
		"Unit 2, 5 Station Road",
		"350 Fifth Avenue, New York",
		"1600 Pennsylvania Avenue NW Washington",
		"12 Kings Way, Leeds",
		"10 Downing St",
		"4 Church Close",
		"Station Road, Kendal LA9 4AB",
		"The Old Mill, Kendal, LA9 4AB",
		"London SW1A 1AA",
		"123 Main Street New York, NY 10001",
		"Springfield, IL 62701",
		"Ottawa ON K1A 0B1",
		"Level 3, Sydney NSW 2000",
		"Hauptstraße 5, 10115 Berlin",
		"Lindenstr. 12",
		"Kölner Straße 5",
		"Keizersgracht 123, Amsterdam",
		"Drottninggatan 12",
		"12 rue de la Paix, Paris",
		"5 avenue Victor Hugo",
		"Via Roma 12, Milano",
		"Calle Mayor, 5",
		"Rua Augusta 100",
		"Address Unit 4, Riverside Estate, Kendal",
		"Our address: the old mill by the bridge",
		"Find us at the Saturday market.",
		"Visit Us At the old mill",
	} {
		if !PostalAddress(text) {
			t.Errorf("PostalAddress(%q) = false, want true", text)
		}
		if !Details(text) {
			t.Errorf("Details(%q) = false, want true", text)
		}
	}
	for _, text := range []string{
		"2 Hard Drive for £40",
		"2 TB Hard Drive",
		"Top 10 Road Bikes",
		"3 Way Valve",
		"Open 7 days a week",
		"We have served Bristol since 1985.",
		"Spring 2024 collection",
		"Chapter 12 Main Ideas",
		"Free delivery on orders over £50",
		"Via email, 24 hours a day",
		"Addresses of our branches are below",
		"Call the office on weekdays",
		"Issue 12, page 4",
		"ISO 9001 certified",
		"Version 2.1 Place holders",
	} {
		if PostalAddress(text) {
			t.Errorf("PostalAddress(%q) = true, want false", text)
		}
	}
}

func TestDetails(t *testing.T) {
	for text, want := range map[string]bool{
		"Open Tue–Sat, 10–6":                     true,
		"Monday to Friday \n8.00 to 17.30":       true,
		"Tel: 0117 496 0123":                     true,
		"+44 117 496 0123":                       true,
		"hello@example.com":                      true,
		"© 2024 Spoke & Chain, 14 Mill Lane":     false,
		"Powered by WordPress":                   false,
		"Newsletter monthly":                     false,
		"All our bikes are built by hand.":       false,
		"Copyright 2009 Vets. Tel: 0117 4960123": false,
	} {
		if got := Details(text); got != want {
			t.Errorf("Details(%q) = %v, want %v", text, got, want)
		}
	}
}

// BenchmarkPostalAddressProse is the concierge's cost per passage at
// index time: a paragraph of prose with numbers and no address.
func BenchmarkPostalAddressProse(b *testing.B) {
	text := "Our 2024 range has 12 new frames, from the 9 kg Audax to the Tourer, built in 3 weeks by 2 builders. " +
		"Every wheel is trued twice, and the first service after 6 weeks is free. Prices start at £1,200 for the " +
		"steel frame and rise to £3,400 with the Rohloff hub. Ask in the shop for a test ride on any of the 40 bikes."
	for b.Loop() {
		if PostalAddress(text) {
			b.Fatal("matched")
		}
	}
}

// candidates looks a word up only as long as maxWord.
func TestMaxWord(t *testing.T) {
	for w := range words {
		if len(w) > maxWord {
			t.Errorf("%q is longer than maxWord (%d bytes)", w, maxWord)
		}
	}
}
