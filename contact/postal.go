package contact

import (
	"regexp"
	"strings"
)

// The ways of writing an address recognised, each a pattern run only when
// a scan of the text has found what it cannot match without (a street
// word, a postcode's shape). Run as one pattern over every paragraph of a
// site, they cost the concierge's index 88 µs for 350 bytes of prose; the
// scan costs about 1 µs and rarely lets one through.
type kind uint16

const (
	streetLine   kind = 1 << iota // "14 Quay Street"
	ukPostcode                    // "BS1 4AA"
	usZIP                         // ", NY 10001"
	caPostcode                    // "K1A 0B1"
	auPostcode                    // "NSW 2000"
	streetWord                    // "Hauptstraße 5", "Keizersgracht 123"
	streetApart                   // "Kölner Straße 5"
	frenchLine                    // "12 rue de la Paix"
	southernLine                  // "Via Roma 12"
)

var postal = [...]struct {
	kind kind
	re   *regexp.Regexp
}{
	// A street line, number first, as English-speaking countries write
	// it: "14 Quay Street", "221B Baker St.", "350 Fifth Avenue", "1600
	// Pennsylvania Avenue NW". A word that only names a street is enough;
	// one that names other things too (Way, Drive, Court, Place …) counts
	// where a line ends ("12 Kings Way, Leeds", not "2 Hard Drive for £40").
	{streetLine, regexp.MustCompile(`\b\d{1,5}[A-Za-z]?(?:[-–/]\d{1,5}[A-Za-z]?)?,?\s+(?:(?:\p{Lu}[\p{Ll}'’.-]*|\d{1,3}(?:st|nd|rd|th))\s+){1,4}` +
		`(?:(?:Street|Road|Avenue|Lane|Boulevard|Quay|Terrace|Crescent|Parade|Mews|Wharf|Square|Parkway|Highway|Rd|Ave|Blvd)\b|(?:St|Rd|Ave|Blvd)\.|` +
		`(?:St|Way|Drive|Dr|Place|Pl|Court|Ct|Close|Row|Walk|Hill|Gardens|Grove|Green|Circle|Plaza|Ln|Sq)\.?(?:\s*,|\s*$|\s+(?:NW|NE|SW|SE|N|S|E|W)\b))`)},
	// A British postcode ("BS1 4AA", "SW1A 1AA"; the inward code's
	// letters are never C, I, K, M, O or V).
	{ukPostcode, regexp.MustCompile(`\b(?:[A-Z]{1,2}\d[A-Z\d]?|GIR)\s\d[ABD-HJLNP-UW-Z]{2}\b`)},
	// A US state and ZIP code after a town ("New York, NY 10001").
	{usZIP, regexp.MustCompile(`,\s*(?:AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY)\s+\d{5}(?:-\d{4})?\b`)},
	// A Canadian postal code ("K1A 0B1"); an Australian state and
	// postcode ("Sydney NSW 2000").
	{caPostcode, regexp.MustCompile(`\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z]\s\d[ABCEGHJ-NPRSTV-Z]\d\b`)},
	{auPostcode, regexp.MustCompile(`\b(?:NSW|VIC|QLD|TAS|ACT)\s+\d{4}\b`)},
	// A street named in one word, number after, as German, Dutch and
	// Scandinavian addresses are ("Hauptstraße 5", "Keizersgracht 123",
	// "Drottninggatan 12"), or in two ("Kölner Straße 5").
	{streetWord, regexp.MustCompile(`\b\p{Lu}[\p{Ll}-]*(?:` + strings.Join(streetSuffixes, "|") + `)\s+\d{1,4}[a-z]?\b`)},
	{streetApart, regexp.MustCompile(`\b\p{Lu}\p{Ll}+\s+(?:Straße|Strasse|Weg|Gasse|Platz|Allee)\s+\d{1,4}[a-z]?\b`)},
	// French, number first ("12 rue de la Paix", "5 avenue Victor
	// Hugo"); a southern European street, name first ("Via Roma 12",
	// "Calle Mayor, 5", "Rua Augusta 100").
	{frenchLine, regexp.MustCompile(`\b\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?:` + capitalOrNot(frenchWords) + `)\s+(?:(?:de\s+la|de|du|des|la|le|les)\s+|l['’])?\p{Lu}`)},
	{southernLine, regexp.MustCompile(`\b(?:Via|Viale|Piazza|Piazzale|Corso|Calle|Avenida|Plaza|Paseo|Rua|Carrer|Praça|Largo)\s+(?:(?:d[aeio]|del|della|dei|de\s+la|dos|das)\s+)?\p{Lu}[\p{L}'’.]*(?:\s+\p{Lu}[\p{L}'’.]*){0,3},?\s+(?:n\.?\s*|nº\s*)?\d{1,4}\b`)},
}

// streetSuffixes end a one-word street name (regexp syntax).
var streetSuffixes = []string{`straße`, `strasse`, `str\.`, `weg`, `gasse`, `platz`, `allee`, `straat`, `laan`, `gracht`, `plein`, `kade`, `vej`, `gade`, `gatan`, `vägen`, `gata`, `veien`}

// frenchWords name a street in French (regexp syntax), written with a
// capital or without.
var frenchWords = []string{`rue`, `avenue`, `av\.`, `boulevard`, `bd`, `place`, `chemin`, `allée`, `quai`, `impasse`, `route`, `cours`}

func capitalOrNot(ws []string) string {
	var b strings.Builder
	for i, w := range ws {
		if i > 0 {
			b.WriteByte('|')
		}
		b.WriteString("[" + strings.ToUpper(w[:1]) + w[:1] + "]" + w[1:])
	}
	return b.String()
}

// words are the words without which a pattern cannot match, as written.
var words = map[string]kind{}

func init() {
	for _, w := range []string{"Street", "Road", "Avenue", "Lane", "Boulevard", "Quay", "Terrace", "Crescent", "Parade", "Mews", "Wharf",
		"Square", "Parkway", "Highway", "Rd", "Ave", "Blvd", "St", "Way", "Drive", "Dr", "Place", "Pl", "Court", "Ct", "Close", "Row",
		"Walk", "Hill", "Gardens", "Grove", "Green", "Circle", "Plaza", "Ln", "Sq"} {
		words[w] |= streetLine
	}
	for _, w := range []string{"NSW", "VIC", "QLD", "TAS", "ACT"} {
		words[w] |= auPostcode
	}
	for _, w := range []string{"Straße", "Strasse", "Weg", "Gasse", "Platz", "Allee"} {
		words[w] |= streetApart
	}
	for _, w := range frenchWords {
		w = strings.TrimSuffix(w, `\.`)
		words[w] |= frenchLine
		words[strings.ToUpper(w[:1])+w[1:]] |= frenchLine
	}
	for _, w := range []string{"Via", "Viale", "Piazza", "Piazzale", "Corso", "Calle", "Avenida", "Plaza", "Paseo", "Rua", "Carrer", "Praça", "Largo"} {
		words[w] |= southernLine
	}
}

// candidates scans text once for what each pattern needs: a word of
// words; a capital and a digit side by side (a British or Canadian
// postcode); five digits in a row (a ZIP code); a word ending as a
// street's name does before a number. Words are runs of ASCII letters,
// as the patterns' \b sees them, and also with the letters beyond ASCII
// that follow ("allée", "Straße").
func candidates(text string) kind {
	var k kind
	digits := 0
	// runEnd ends the run of letters, ASCII or not, that i is in: found
	// once a run, or text like "aéaéaé…" would be scanned over and over.
	runEnd := 0
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			if digits == 5 {
				k |= usZIP
			}
			if i > 0 && 'A' <= text[i-1] && text[i-1] <= 'Z' {
				k |= ukPostcode | caPostcode
			}
			i++
		case asciiLetter(c):
			digits = 0
			j := i + 1
			for j < len(text) && asciiLetter(text[j]) {
				j++
			}
			k |= words[text[i:j]]
			if runEnd < j {
				runEnd = j
				for runEnd < len(text) && (asciiLetter(text[runEnd]) || text[runEnd] >= 0x80) {
					runEnd++
				}
				if followedByNumber(text, runEnd) && oneWordStreet(text[:runEnd]) {
					k |= streetWord
				}
			}
			if runEnd > j && runEnd-i <= maxWord {
				k |= words[text[i:runEnd]]
			}
			i = j
		default:
			digits = 0
			i++
		}
	}
	return k
}

// maxWord is the longest of words, in bytes.
const maxWord = len("Boulevard")

func asciiLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// followedByNumber: text at i is white space (after a ".") and a digit.
func followedByNumber(text string, i int) bool {
	if i < len(text) && text[i] == '.' {
		i++
	}
	start := i
	for i < len(text) && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r' || text[i] == '\f') {
		i++
	}
	return i > start && i < len(text) && text[i] >= '0' && text[i] <= '9'
}

func oneWordStreet(w string) bool {
	for _, s := range streetSuffixes {
		if strings.HasSuffix(w, strings.TrimSuffix(s, `\.`)) {
			return true
		}
	}
	return false
}
