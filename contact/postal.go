package contact

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The ways of writing an address recognised, each a pattern run only when
// a scan of the text has found what it cannot match without (a street
// word, a postcode's shape). Run as one pattern over every paragraph of a
// site, they cost the concierge's index 88 µs for 350 bytes of prose; the
// scan costs about 1 µs and rarely lets one through.
//
// Each is written to miss rather than to take a headline or a product for
// an address: a street line ends its line (or is followed by a comma)
// and starts one (or follows a comma, a colon or "at"), with no word of a
// headline in its name ("10 Best Road Bikes", "Top 10 Walks Near Box
// Hill" are none); a postcode is not a model's memory ("M2 1TB"); a state
// and postcode follow a town.
type kind uint16

const (
	streetLine   kind = 1 << iota // "14 Quay Street"
	ukPostcode                    // "BS1 4AA"
	usZIP                         // "New York, NY 10001"
	caPostcode                    // "K1A 0B1"
	auPostcode                    // "Sydney NSW 2000"
	streetWord                    // "Hauptstraße 5", "Keizersgracht 123"
	streetApart                   // "Kölner Straße 5"
	frenchLine                    // "12 rue de la Paix"
	southernLine                  // "Via Roma 12"
)

// A street line's end: a comma or full stop, the line's end, a compass
// quarter ("Avenue NW") or, after a house number, a postcode.
const lineEnd = `(?:[ \t]*[,;.]|[ \t]*$|[ \t]+(?:NW|NE|SW|SE|N|S|E|W)\b)`

type pattern struct {
	kind kind
	re   *regexp.Regexp
	// lead: the match must begin a line or follow a comma, a colon or
	// "at" (see led).
	lead bool
	// check, when set, must also accept the match (its submatch indexes).
	check func(text string, loc []int) bool
}

var postal = [...]pattern{
	// A street line, number first, as English-speaking countries write
	// it: "14 Quay Street,", "221B Baker St.", "350 Fifth Avenue" ending a
	// line, "1600 Pennsylvania Avenue NW".
	{kind: streetLine, lead: true, check: streetName, re: regexp.MustCompile(`(?m)\b\d{1,5}[A-Za-z]?(?:[-–/]\d{1,5}[A-Za-z]?)?,?[ \t]+((?:(?:\p{Lu}[\p{Ll}'’.-]*|\d{1,3}(?:st|nd|rd|th))[ \t]+){1,4})` +
		`(?:` + strings.Join(streetNames, "|") + `)\.?` + lineEnd)},
	// A British postcode ("BS1 4AA", "SW1A 1AA"; the inward code's
	// letters are never C, I, K, M, O or V), not a size ("M2 1TB").
	{kind: ukPostcode, check: notASize, re: regexp.MustCompile(`\b(?:[A-Z]{1,2}\d[A-Z\d]?|GIR)[ \t]\d[ABD-HJLNP-UW-Z]{2}\b`)},
	// A US state and ZIP code after a town ("New York, NY 10001",
	// "Springfield IL 62701").
	{kind: usZIP, re: regexp.MustCompile(`\b\p{Lu}[\p{Ll}.]+,?[ \t]+(?:AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY)[ \t]+\d{5}(?:-\d{4})?\b`)},
	// A Canadian postal code ("K1A 0B1"); an Australian state or
	// territory and its postcode after a town ("Sydney NSW 2000", "Perth
	// WA 6000"; the ACT's are never a year: "Data Protection Act 2018").
	{kind: caPostcode, re: regexp.MustCompile(`\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z][ \t]\d[ABCEGHJ-NPRSTV-Z]\d\b`)},
	{kind: auPostcode, re: regexp.MustCompile(`\b\p{Lu}\p{Ll}+,?[ \t]+(?:NSW[ \t]+[12]\d{3}|VIC[ \t]+[38]\d{3}|QLD[ \t]+[49]\d{3}|TAS[ \t]+7\d{3}|SA[ \t]+5\d{3}|WA[ \t]+6\d{3}|NT[ \t]+0[89]\d\d|ACT[ \t]+(?:02\d\d|26[01]\d|29[0-2]\d))\b`)},
	// A street named in one word, number after, as German, Dutch and
	// Scandinavian addresses are ("Hauptstraße 5,", "Keizersgracht 123",
	// "Drottninggatan 12" ending a line), or in two ("Kölner Straße 5").
	{kind: streetWord, re: regexp.MustCompile(`(?m)\b\p{Lu}[\p{Ll}-]*(?:` + strings.Join(streetSuffixes, "|") + `)[ \t]+\d{1,3}[a-z]?` + lineEnd)},
	{kind: streetApart, re: regexp.MustCompile(`(?m)\b\p{Lu}\p{Ll}+[ \t]+(?:Straße|Strasse|Weg|Gasse|Platz|Allee)[ \t]+\d{1,3}[a-z]?` + lineEnd)},
	// French, number first ("12 rue de la Paix", "5 avenue Victor Hugo";
	// capitalised only before an article: "12 Rue de Rivoli", never "Set
	// of 6 Place Mats"); a southern European street, name first ("Via
	// Roma 12,", "Calle Mayor, 5", "Rua Augusta 100" ending a line).
	{kind: frenchLine, lead: true, re: regexp.MustCompile(`\b\d{1,4}(?:[ \t]?(?:bis|ter))?,?[ \t]+(?:(?:` + strings.Join(frenchWords, "|") + `)[ \t]+(?:(?:de[ \t]+la|de|du|des|la|le|les)[ \t]+|[ld]['’])?|` +
		`(?:` + capitals(frenchWords) + `)[ \t]+(?:(?:de[ \t]+la|de|du|des|la|le|les)[ \t]+|[ld]['’]))\p{Lu}`)},
	{kind: southernLine, lead: true, re: regexp.MustCompile(`(?m)\b(?:Via|Viale|Piazza|Piazzale|Corso|Calle|Avenida|Plaza|Paseo|Rua|Carrer|Praça|Largo)[ \t]+(?:(?:d[aeio]|del|della|dei|de[ \t]+la|dos|das)[ \t]+)?\p{Lu}[\p{L}'’.]*(?:[ \t]+\p{Lu}[\p{L}'’.]*){0,3},?[ \t]+(?:n\.?[ \t]*|nº[ \t]*)?\d{1,4}(?:[ \t]*[,;.]|[ \t]*$|[ \t]+\d{5}\b)`)},
}

// streetNames end an English street's name.
var streetNames = []string{"Street", "Road", "Avenue", "Lane", "Boulevard", "Quay", "Terrace", "Crescent", "Parade", "Mews", "Wharf",
	"Square", "Parkway", "Highway", "Approach", "Yard", "Rd", "Ave", "Blvd", "St", "Way", "Drive", "Dr", "Place", "Pl", "Court", "Ct",
	"Close", "Row", "Walk", "Hill", "Gardens", "Grove", "Green", "Circle", "Plaza", "Ln", "Sq"}

// headlineWords never name a street, and headlines are full of them: "5
// Tips For Learning To Drive", "Top 10 Walks Near Box Hill", "100 Years Of
// St. Patrick's Day".
var headlineWords = map[string]bool{"A": true, "An": true, "The": true, "For": true, "To": true, "In": true, "On": true, "Of": true,
	"With": true, "And": true, "Or": true, "From": true, "By": true, "At": true, "Near": true, "Over": true, "Under": true,
	"Your": true, "Our": true, "My": true, "Best": true, "Top": true, "Tips": true, "Ways": true, "Things": true, "Reasons": true,
	"Days": true, "Years": true, "Weeks": true, "Months": true, "Hours": true, "Minutes": true, "Walks": true, "Steps": true}

// streetName: no word of a street line's name (its first submatch) is
// a headline's.
func streetName(text string, loc []int) bool {
	for _, w := range strings.Fields(text[loc[2]:loc[3]]) {
		if headlineWords[strings.TrimRight(w, ".,'’")] {
			return false
		}
	}
	return true
}

// notASize: a postcode-shaped match whose inward code is a size ("1TB",
// "8GB", "4WD") is a product's model, not a postcode.
func notASize(text string, loc []int) bool {
	switch text[loc[1]-2 : loc[1]] {
	case "KB", "MB", "GB", "TB", "WD":
		return false
	}
	return true
}

// leadWords may stand before a street line: "We are at 14 Quay Street",
// "Nous sommes au 12 rue…", "Siamo in Via Roma 12", "Address 14 …".
var leadWords = map[string]bool{"at": true, "au": true, "in": true, "address": true}

// led reports whether a match at start begins a line or follows a
// comma, a colon, other punctuation ("·", "|", "(") or a lead word.
func led(text string, start int) bool {
	i := start
	for i > 0 && (text[i-1] == ' ' || text[i-1] == '\t') {
		i--
	}
	if i == 0 {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(text[:i])
	if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
		return true
	}
	j := i
	for j > 0 && asciiLetter(text[j-1]) {
		j--
	}
	return i-j <= len("address") && leadWords[strings.ToLower(text[j:i])]
}

// matches reports whether p finds an address in text.
func (p *pattern) matches(text string) bool {
	if !p.lead && p.check == nil {
		return p.re.MatchString(text)
	}
	for _, loc := range p.re.FindAllStringSubmatchIndex(text, -1) {
		if (!p.lead || led(text, loc[0])) && (p.check == nil || p.check(text, loc)) {
			return true
		}
	}
	return false
}

// streetSuffixes end a one-word street name (regexp syntax).
var streetSuffixes = []string{`straße`, `strasse`, `str\.`, `weg`, `gasse`, `platz`, `allee`, `straat`, `laan`, `gracht`, `plein`, `kade`, `vej`, `gade`, `gatan`, `vägen`, `gata`, `veien`}

// frenchWords name a street in French.
var frenchWords = []string{"rue", "avenue", "boulevard", "bd", "place", "chemin", "allée", "quai", "impasse", "route", "cours"}

// capitals is ws capitalised, as alternatives.
func capitals(ws []string) string {
	c := make([]string, len(ws))
	for i, w := range ws {
		c[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(c, "|")
}

// words are the words without which a pattern cannot match, as written.
var words = map[string]kind{}

func init() {
	for _, w := range streetNames {
		words[w] |= streetLine
	}
	words["GIR"] |= ukPostcode
	for _, w := range []string{"NSW", "VIC", "QLD", "TAS", "SA", "WA", "NT", "ACT"} {
		words[w] |= auPostcode
	}
	for _, w := range []string{"Straße", "Strasse", "Weg", "Gasse", "Platz", "Allee"} {
		words[w] |= streetApart
	}
	for _, w := range frenchWords {
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
