package contact

import "testing"

func TestPostalAddress(t *testing.T) {
	for _, text := range []string{
		"14 Quay Street, Harbourton",
		"12 Mill Lane\nBristol",
		"8 Elm Way\nHarrogate",
		"123 Main St\nSuite 100",
		"221B Baker St.",
		"Unit 2, 5 Station Road",
		"350 Fifth Avenue, New York",
		"1600 Pennsylvania Avenue NW Washington",
		"12 Kings Way, Leeds",
		"10 Downing St",
		"4 Church Close",
		"5 Station Approach",
		"Our workshop is at 5 Mill Lane, Kendal, by the river.",
		"Spoke & Chain Cycles, 14 Mill Lane, Bristol",
		"The Old Mill · 3 Mill Yard",
		"Station Road, Kendal LA9 4AB",
		"The Old Mill, Kendal, LA9 4AB",
		"London SW1A 1AA",
		"London GIR 0AA",
		"123 Main Street\nNew York, NY 10001",
		"Springfield, IL 62701",
		"Springfield IL 62701",
		"Ottawa ON K1A 0B1",
		"Level 3, Sydney NSW 2000",
		"12 Hay St\nPerth WA 6000",
		"Adelaide SA 5000",
		"Darwin NT 0800",
		"Canberra ACT 2601",
		"Hauptstraße 5, 10115 Berlin",
		"Lindenstr. 12",
		"Kölner Straße 5",
		"Keizersgracht 123, Amsterdam",
		"Drottninggatan 12",
		"12 rue de la Paix, Paris",
		"Nous sommes au 5 avenue Victor Hugo.",
		"12, Rue de Rivoli",
		"Via Roma 12, Milano",
		"Siamo in Via Roma 12",
		"Calle Mayor, 5",
		"Rua Augusta 100",
		"Address\nUnit 4, Riverside Estate, Kendal",
		"Address: Unit 4, Riverside Estate, Kendal",
		"Our address: the old mill by the bridge",
		"Find us at the Saturday market.",
		"Visit Us At the old mill",
		"Find us at:\nthe old mill by the bridge",
		"find us at",
		// The second review's misses.
		"5 The Green, Kendal",
		"1 The Square\nKendal",
		"Unit 4 Station Road\nKendal",
		"Suite 5, 20 High Street",
		"No 5 High Street",
		"14 Quay Street | Harbourton",
		"14 Quay Street · Harbourton",
		"14 Quay Street (opposite the church)",
		"Musterfirma GmbH | Hauptstraße 5 | 10115 Berlin",
		"Hauptstraße 5 10115 Berlin",
		"SYDNEY NSW 2000",
		"12 HAY ST\nPERTH WA 6000",
		"NEW YORK, NY 10001",
		"Boise, ID 83702",
		"22 Station Rd. Behind The Green",
		"3 Marine Pde\nManly",
		"Visit us: 14 Quay Street, Harbourton",
		// The third review's: labels in other languages and offices,
		// separators, one-line US and Australian addresses, street names
		// that are also listing words, German compounds, real postcodes
		// that end as ordinals do.
		"Adresse: Hauptstraße 5, 10115 Berlin",
		"Anschrift: Hauptstraße 5",
		"Adresse : 12 rue de la Paix",
		"Indirizzo: Via Roma 12",
		"Dirección: Calle Mayor, 5",
		"Adres: Keizersgracht 123",
		"Showroom: 14 Quay Street",
		"Kettle & Spoke - 14 Quay Street",
		"Tel 0117 496 0555 / 14 Quay Street",
		"Come and see us! 14 Quay Street, Harbourton",
		"123 Main St Springfield IL 62701",
		"350 Fifth Avenue New York NY 10118",
		"PO Box 123 Springfield IL 62701",
		"100 George Street Sydney NSW 2000",
		"100 Front Street, Toronto",
		"10 Front St.",
		"1 Mile End Road, London",
		"12 Day Street,",
		"Parkstraße 12, 10115 Berlin",
		"Parkallee 5, 20144 Hamburg",
		"Parklaan 12",
		"Stellinger Weg 5",
		"Leeds LS1 4ST",
		"Harbourton BS1 2TH",
		"Manchester M1 1RD",
		"Bristol BS1 5ND",
		"Find us at Unit 4/5 Riverside Estate",
		"Find us at St.Mary's Hall",
		// Stop 38's misses: the unit on a US street's line, a flat's
		// number before the house's, Irish Eircodes.
		"123 Main St Suite 100",
		"123 Main St Ste. 100, Springfield, IL 62701",
		"456 Oak Ave Apt 5B",
		"500 Market Street #300",
		"We are at 123 Main St Suite 100 in Springfield",
		"Our office: 500 Market Street Floor 3",
		"Flat 2/14 Quay Street",
		"Flat 3 14 Quay Street",
		"Level 3 14 Quay Street, Sydney",
		"D02 X285",
		"Dublin 2, D02 X285",
		"Lower Baggot Street, Dublin D02 X285",
		"Dublin 6W D6W Y123",
		"Galway, H91 E2K3, Ireland",
	} {
		if !PostalAddress(text) {
			t.Errorf("PostalAddress(%q) = false, want true", text)
		}
		if !Details(text) {
			t.Errorf("Details(%q) = false, want true", text)
		}
	}
	// Headlines, products, titles and legal lines that look like one (a
	// review's list, each once true).
	for _, text := range []string{
		"2 Hard Drive for £40",
		"2 TB Hard Drive",
		"Top 10 Road Bikes",
		"10 Best Road Bikes",
		"The 10 Best London Street Food Markets",
		"Sunday 5 May Street Party",
		"Our 3 Favourite Abbey Road Cafés",
		"Top 10 Walks Near Box Hill",
		"5 Tips For Learning To Drive",
		"Chapter 5 The Long Walk",
		"Size 10 Forest Green",
		"Nike Air Max 90 Triple Green",
		"Win 2 Tickets For Wimbledon Centre Court",
		"Part 2 Over The Hill",
		"Top 10 Things To Do In St. Ives",
		"Celebrating 100 Years Of St. Patrick's Day",
		"3 Way Valve",
		"12 Mill Lane Bristol Bikes Sale",
		"MacBook Air M2 1TB, £999",
		"MacBook Pro M3 8GB",
		"PS5 1TB Console",
		"Galaxy S23 8GB RAM",
		"Audi Q7 4WD",
		"Set of 6 Place Mats",
		"Set of 4 Place Settings",
		"Top 10 Route Planners",
		"Spacious 2 bd Apartment in Leeds",
		"Ships Via DHL 2-3 Days",
		"Shipped Via Royal Mail 48 Hour Tracked",
		"Via Email, 24 Hours A Day",
		"Via email, 24 hours a day",
		"Contact Us Via WhatsApp 24/7",
		"MODERN SLAVERY ACT 2015 STATEMENT",
		"Data Protection Act 2018",
		"Jeep Renegade 2022 Limited",
		"Address any questions to our support team.",
		"Addresses of our branches are below",
		"Open 7 days a week",
		"We have served Bristol since 1985.",
		"Spring 2024 collection",
		"Chapter 12 Main Ideas",
		"Free delivery on orders over £50",
		"Call the office on weekdays",
		"Issue 12, page 4",
		"ISO 9001 certified",
		"Version 2.1 Place holders",
		"Arsenal 3 Crystal Palace 1",
		"Find us on Facebook",
		"Find us attractive",
		// The second review's lookalikes.
		"£3.50 Rocky Road",
		"$4.99 Rocky Road",
		"£40 Hard Drive",
		"RRP: £40 External Drive",
		"Brownie Box: 4x Rocky Road, 4x Millionaire's",
		"3x Quality Street, 2x Roses",
		"10:00 Nature Walk",
		"7.30 Ghost Walk",
		"12/05 Charity Walk",
		"FT: 3 Forest Green",
		"Drivetrain: 4 Wheel Drive",
		"Size: 10 Forest Green",
		"Seats: 2 Front Row",
		"Day 3: 18 Mile Walk",
		"Chapter 1: 4 Privet Drive",
		"Est. 1985 High Street",
		"No. 39 Pea Green",
		"iPhone 15, 128 Alpine Green",
		"3 Bed Terrace",
		"2 Bedroom Terrace",
		"2 Bed End Terrace",
		"We won Business NSW 2024 Awards",
		"Business NSW 2024 Awards",
		"Order ID 12345",
		"Ticket ID 10001",
		"Via Zoom 2",
		"Via Teams 3",
		"Via Francigena 2024",
		"Piazza Affari 2024",
		"Corso Base 2025",
		"Tabellenplatz 3",
		"Parkplatz 2",
		"Auf Platz 3",
		"Wir sind umgezogen Hauptstraße 5",
		"Ford Fiesta ST2 3DR",
		"Audi S3 5DR",
		"Mercury F5 5HP",
		"Visit us at www.kettle.example",
		"Find us at facebook.com/kettle",
		"Visit us at our online shop",
		"The Long Walk, 5 Chapter The Long Walk",
		"Swindon 2-1 Forest Green",
		"12/05 Charity Walk",
		"Via Email. 24 Hours",
		"U14 1ST XI",
		"Hobart 4TH Street",
		// Lookalikes of stop 38's additions.
		"Model T12 AC45",
		"Part No. A12 B345",
		"A12 2024",
		"Order T12 AC45.",
		"Our bestselling 5 Main Street #1 pick",
		"Ranked #1 on 5 Quay Street Tours",
		"Top 5 Union Street Bars Room 2",
		"Flat 3 14 Best Road Bikes",
		"Size 3 10 Forest Green",
		"Pack 3 10 Forest Green",
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
