package contact

import (
	"regexp"
	"slices"
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
// Each is written to miss rather than to take a headline, a price or a
// product for an address: a street line ends its line (or is followed by
// a comma or a separator) and starts one (or follows a separator, a lead
// word or a label's colon: led), with no word of a headline in its name
// ("10 Best Road Bikes", "Top 10 Walks Near Box Hill" are none); a
// postcode is not a model's memory ("M2 1TB"); a state and postcode
// follow a town and end the line.
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
	eircode                       // "Dublin 2, D02 X285"
)

// A street line's end: a comma or full stop, the line's end, a
// separator ("14 Quay Street | Harbourton", "· Harbourton", "(opposite
// the church)") or a compass quarter ("Avenue NW").
const lineEnd = `(?:[ \t]*[,;.]|[ \t]*$|[ \t]+[|·•–—(]|[ \t]+(?:NW|NE|SW|SE|N|S|E|W)\b)`

// A street line's end may also be the unit within the building, as US
// addresses write it on the street's line: "123 Main St Suite 100",
// "456 Oak Ave Apt 5B", "500 Market Street #300".
const unitEnd = `|[ \t]+(?:Suite|Ste\.?|Apt\.?|Unit|Floor|Fl\.?|Room|Rm\.?)[ \t]+#?\d{1,5}[A-Za-z]?\b|[ \t]+#\d{1,5}[A-Za-z]?\b`

// A town: a capitalised word, or one in capitals as the postal services
// write it ("SYDNEY NSW 2000").
const town = `\p{Lu}(?:\p{Ll}[\p{Ll}.]*|\p{Lu}+)`

type pattern struct {
	kind kind
	re   *regexp.Regexp
	// lead: the match must begin a line, or follow a separator or a
	// lead word (see led); town: or, as a town does, a street line or a
	// number ("123 Main St Springfield IL 62701", "PO Box 123 Sydney NSW
	// 2000").
	lead, town bool
	// check, when set, must also accept the match (its submatch indexes).
	check func(text string, loc []int) bool
}

var postal = [...]pattern{
	// A street line, number first, as English-speaking countries write
	// it: "14 Quay Street,", "221B Baker St.", "350 Fifth Avenue" ending a
	// line, "1600 Pennsylvania Avenue NW". The name's words are as few as
	// match (so "22 Station Rd." ends at "Rd." whatever follows); the
	// house number has no "x" ("4x Rocky Road" is a count).
	{kind: streetLine, lead: true, check: streetName, re: regexp.MustCompile(`(?m)\b\d{1,5}[A-WYZa-wyz]?(?:[-–/]\d{1,5}[A-WYZa-wyz]?)?,?[ \t]+((?:(?:\p{Lu}[\p{Ll}'’.-]*|\d{1,3}(?:st|nd|rd|th))[ \t]+){1,4}?)` +
		`(?:` + strings.Join(streetNames, "|") + `)\.?(?:` + lineEnd + unitEnd + `)`)},
	// A British postcode ("BS1 4AA", "SW1A 1AA"; the inward code's
	// letters are never C, I, K, M, O or V), not a size or a model
	// ("M2 1TB", "4WD", "S3 5DR").
	{kind: ukPostcode, check: notASize, re: regexp.MustCompile(`\b(?:[A-Z]{1,2}\d[A-Z\d]?|GIR)[ \t]\d[ABD-HJLNP-UW-Z]{2}\b`)},
	// A US state and ZIP code after a town, ending its line ("New York,
	// NY 10001", "Springfield IL 62701"; Idaho's ID only after a comma:
	// "Order ID 12345" is none).
	{kind: usZIP, lead: true, town: true, check: notAnID, re: regexp.MustCompile(`(?m)\b` + town + `(?:[ \t]+` + town + `){0,2}(,?)[ \t]+(AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY)[ \t]+\d{5}(?:-\d{4})?(?:[ \t]*[,;.]|[ \t]*$|[ \t]+(?:USA|US|United States)\b)`)},
	// A Canadian postal code ("K1A 0B1"); an Australian state or
	// territory and its postcode after a town, ending its line ("Sydney
	// NSW 2000", "Perth WA 6000"; never "Business NSW 2024 Awards", and
	// the ACT's are never a year: "Data Protection Act 2018").
	// An Irish Eircode ("D02 X285", "A65 F4E2"; routing key and unique
	// identifier from Eircode's own alphabet, the identifier with a
	// letter) ending its line, on a line of its own or after a comma or
	// Dublin's district: "Dublin 2, D02 X285", "Baggot Street, Dublin
	// D02 X285"; not "Model T12 AC45".
	{kind: eircode, check: eircodePlace, re: regexp.MustCompile(`(?m)\b(?:[AC-FHKNPRTV-Y]\d\d|D6W)[ \t]([0-9AC-FHKNPRTV-Y]{4})(?:[ \t]*[,;.]|[ \t]*$|[ \t]+Ireland\b)`)},
	{kind: caPostcode, re: regexp.MustCompile(`\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z][ \t]\d[ABCEGHJ-NPRSTV-Z]\d\b`)},
	{kind: auPostcode, lead: true, town: true, re: regexp.MustCompile(`(?m)\b` + town + `(?:[ \t]+` + town + `){0,2},?[ \t]+(?:NSW[ \t]+[12]\d{3}|VIC[ \t]+[38]\d{3}|QLD[ \t]+[49]\d{3}|TAS[ \t]+7\d{3}|SA[ \t]+5\d{3}|WA[ \t]+6\d{3}|NT[ \t]+0[89]\d\d|ACT[ \t]+(?:02\d\d|26[01]\d|29[0-2]\d))(?:[ \t]*[,;.]|[ \t]*$|[ \t]+Australia\b)`)},
	// A street named in one word, number after, as German, Dutch and
	// Scandinavian addresses are ("Hauptstraße 5,", "Keizersgracht 123",
	// "Drottninggatan 12" ending a line, "Hauptstraße 5 10115 Berlin"),
	// or in two ("Kölner Straße 5"); a place in a table or a car park is
	// none ("Tabellenplatz 3", "Parkplatz 2", "Auf Platz 3").
	{kind: streetWord, lead: true, check: notAPlace, re: regexp.MustCompile(`(?m)\b\p{Lu}[\p{Ll}-]*(?:` + strings.Join(streetSuffixes, "|") + `)[ \t]+\d{1,3}[a-z]?(?:` + lineEnd + `|[ \t]+\d{4,5}\b)`)},
	{kind: streetApart, lead: true, check: notAPlace, re: regexp.MustCompile(`(?m)\b\p{Lu}\p{Ll}+[ \t]+(?:Straße|Strasse|Weg|Gasse|Platz|Allee)[ \t]+\d{1,3}[a-z]?(?:` + lineEnd + `|[ \t]+\d{4,5}\b)`)},
	// French, number first ("12 rue de la Paix", "5 avenue Victor Hugo";
	// capitalised only before an article: "12 Rue de Rivoli", never "Set
	// of 6 Place Mats"); a southern European street, name first ("Via
	// Roma 12,", "Calle Mayor, 5", "Rua Augusta 100" ending a line; a
	// house number of three digits at most, not a year: "Via Francigena
	// 2024"), not a way of reaching someone ("Via Zoom 2").
	{kind: frenchLine, lead: true, re: regexp.MustCompile(`\b\d{1,4}(?:[ \t]?(?:bis|ter))?,?[ \t]+(?:(?:` + strings.Join(frenchWords, "|") + `)[ \t]+(?:(?:de[ \t]+la|de|du|des|la|le|les)[ \t]+|[ld]['’])?|` +
		`(?:` + capitals(frenchWords) + `)[ \t]+(?:(?:de[ \t]+la|de|du|des|la|le|les)[ \t]+|[ld]['’]))\p{Lu}`)},
	{kind: southernLine, lead: true, check: notAMeans, re: regexp.MustCompile(`(?m)\b(?:Via|Viale|Piazza|Piazzale|Corso|Calle|Avenida|Plaza|Paseo|Rua|Carrer|Praça|Largo)[ \t]+(?:(?:d[aeio]|del|della|dei|de[ \t]+la|dos|das)[ \t]+)?(\p{Lu}[\p{L}'’.]*)(?:[ \t]+\p{Lu}[\p{L}'’.]*){0,3},?[ \t]+(?:n\.?[ \t]*|nº[ \t]*)?\d{1,3}(?:[ \t]*[,;.]|[ \t]*$|[ \t]+\d{5}\b)`)},
}

// streetNames end an English street's name.
var streetNames = []string{"Street", "Road", "Avenue", "Lane", "Boulevard", "Quay", "Terrace", "Crescent", "Parade", "Mews", "Wharf",
	"Square", "Parkway", "Highway", "Approach", "Yard", "Esplanade", "Strand", "Broadway", "Rd", "Ave", "Blvd", "Hwy", "Cres", "Tce",
	"Pde", "St", "Way", "Drive", "Dr", "Place", "Pl", "Court", "Ct", "Close", "Row", "Walk", "Hill", "Gardens", "Grove", "Green",
	"Circle", "Plaza", "Ln", "Sq"}

// headlineWords never name a street, and headlines, listings and labels
// are full of them: "5 Tips For Learning To Drive", "Top 10 Walks Near
// Box Hill", "3 Bed Terrace", "18 Mile Walk", "4 Wheel Drive".
var headlineWords = map[string]bool{"A": true, "An": true, "For": true, "To": true, "In": true, "On": true, "Of": true,
	"With": true, "And": true, "Or": true, "From": true, "By": true, "At": true, "Near": true, "Over": true, "Under": true,
	"Your": true, "Our": true, "My": true, "Best": true, "Top": true, "Tips": true, "Ways": true, "Things": true, "Reasons": true,
	"Days": true, "Years": true, "Weeks": true, "Months": true, "Hours": true, "Minutes": true, "Walks": true, "Steps": true,
	"Minute": true, "Hour": true, "Miles": true, "Bed": true, "Beds": true, "Bedroom": true, "Bedrooms": true,
	"Wheel": true, "Seater": true, "Pack": true, "Pair": true, "Size": true, "Rear": true,
	"Charity": true, "Guided": true, "Ghost": true, "Nature": true, "Fun": true, "Sponsored": true}

// colours name a green that is a colour, not a village green: "128
// Alpine Green", "Size 10 Forest Green".
var colours = map[string]bool{"Alpine": true, "Forest": true, "Pea": true, "Sage": true, "Olive": true, "Lime": true, "Mint": true,
	"Emerald": true, "Bottle": true, "Racing": true, "Dark": true, "Light": true, "Pale": true, "Bright": true, "Neon": true}

// streetName: no word of a street line's name (its first submatch) is
// a headline's; "The" only alone ("5 The Green", not "The Long Walk");
// a colour's Green is none.
func streetName(text string, loc []int) bool {
	ws := strings.Fields(text[loc[2]:loc[3]])
	for _, w := range ws {
		w = strings.TrimRight(w, ".,'’")
		if headlineWords[w] || w == "The" && len(ws) > 1 {
			return false
		}
	}
	return !strings.HasPrefix(text[loc[3]:], "Green") || !colours[ws[len(ws)-1]]
}

// notASize: a postcode-shaped match whose inward code reads as a size,
// a model or an ordinal ("1TB", "8GB", "4WD", "5DR", "3TS", "5HP", "1ST
// XI") is a product or a team, not a postcode.
func notASize(text string, loc []int) bool {
	switch in := text[loc[1]-3 : loc[1]]; in[1:] {
	case "KB", "MB", "GB", "TB", "WD", "DR", "TS", "HP":
		return false
	case "ST":
		return in[0] != '1'
	case "ND":
		return in[0] != '2'
	case "RD":
		return in[0] != '3'
	case "TH":
		return in[0] < '4' && in[0] != '0'
	}
	return true
}

// eircodePlace: an Eircode's unique identifier has a letter (four
// digits are a model's number or a year more often: "A12 2024"), and it
// begins its line, follows a comma or follows "Dublin" (with or without
// its district's number).
func eircodePlace(text string, loc []int) bool {
	if !strings.ContainsFunc(text[loc[2]:loc[3]], func(r rune) bool { return r >= 'A' && r <= 'Z' }) {
		return false
	}
	i := loc[0]
	for i > 0 && (text[i-1] == ' ' || text[i-1] == '\t') {
		i--
	}
	if i == 0 || text[i-1] == '\n' || text[i-1] == '\r' || text[i-1] == ',' {
		return true
	}
	if j := i; isDigit(text[i-1]) || text[i-1] == 'W' || text[i-1] == 'w' {
		// "Dublin 6W D6W …", "Dublin 2 D02 …"
		for j > 0 && i-j < 3 && (isDigit(text[j-1]) || text[j-1] == 'W' || text[j-1] == 'w') {
			j--
		}
		for i = j; i > 0 && (text[i-1] == ' ' || text[i-1] == '\t'); {
			i--
		}
	}
	return strings.HasSuffix(text[:i], "Dublin")
}

// notAnID: Idaho's code only after a comma ("Boise, ID 83702"): "Order
// ID 12345", "Ticket ID 10001" are identifiers.
func notAnID(text string, loc []int) bool {
	return text[loc[4]:loc[5]] != "ID" || loc[3] > loc[2]
}

// notAPlace: a German compound in -platz or -weg that is no street (a
// place in a table, a car park, a seat, a playground, a way back or to
// a solution), or "Auf Platz 3" (third place); "Parkstraße 12" is one.
func notAPlace(text string, loc []int) bool {
	m := text[loc[0]:loc[1]]
	w, _, _ := strings.Cut(m, " ")
	switch w {
	case "Parkplatz", "Stellplatz", "Sitzplatz", "Startplatz", "Spielplatz", "Liegeplatz", "Listenplatz", "Tabellenplatz",
		"Rückweg", "Lösungsweg", "Auf", "Im":
		return false
	}
	return true
}

// notAMeans: "Via Zoom 2", "Via Email, 24" name a way of reaching
// someone, not a street.
func notAMeans(text string, loc []int) bool {
	switch strings.TrimRight(text[loc[2]:loc[3]], ".") {
	case "Zoom", "Teams", "Email", "Skype", "WhatsApp", "Post", "Phone", "Telegram", "Signal", "Base", "Avanzato":
		return false
	}
	return true
}

// leadWords may stand before a number that begins an address: "We are
// at 14 Quay Street", "Nous sommes au 12 rue…", "Siamo in Via Roma 12",
// "Unit 4 Station Road", "Suite 5, …".
var leadWords = map[string]bool{"at": true, "au": true, "in": true, "address": true, "unit": true, "units": true,
	"suite": true, "shop": true, "flat": true, "apt": true, "no": true, "level": true}

// labelWords may stand before a colon that leads an address, in the
// languages whose streets are read: "Address: 14 …", "Visit us: …",
// "Showroom: …", "Adresse : 12 rue…", "Anschrift: Hauptstraße 5",
// "Indirizzo: Via Roma 12"; not "Size: 10 Forest Green".
var labelWords = map[string]bool{"address": true, "location": true, "us": true, "here": true, "visit": true, "find": true,
	"office": true, "showroom": true, "studio": true, "shop": true, "store": true, "workshop": true, "contact": true,
	"adresse": true, "anschrift": true, "indirizzo": true, "sede": true, "dirección": true, "direccion": true,
	"endereço": true, "endereco": true, "adres": true, "adress": true, "besöksadress": true, "postadresse": true}

// led reports whether a match at start begins a line, follows a
// separator (",", ";", "(", "|", "·", "•", "–", "—"; " - " and " / "
// between spaces; a sentence's "!" or "?"), a lead word or a label's
// colon. Not a price, a time, a score, a date or any other label ("£3.50
// Rocky Road", "10:00 Nature Walk", "2-1 Forest Green", "12/05 Charity
// Walk", "Size: 10 Forest Green").
func led(text string, start int) bool {
	i := start
	for i > 0 && (text[i-1] == ' ' || text[i-1] == '\t') {
		i--
	}
	if i == 0 {
		return true
	}
	spaced := i < start
	r, size := utf8.DecodeLastRuneInString(text[:i])
	switch r {
	case '\n', '\r', ',', ';', '(', '|', '·', '•', '–', '—':
		return true
	case '-', '/':
		return spaced && i-size > 0 && (text[i-size-1] == ' ' || text[i-size-1] == '\t')
	case '!', '?':
		return spaced
	case ':':
		return precedingWord(text, i-size, labelWords)
	}
	if spaced && r < utf8.RuneSelf && isDigit(byte(r)) {
		// the number of a flat or unit before the house's: "Flat 3 14
		// Quay Street"
		j := i
		for j > 0 && isDigit(text[j-1]) {
			j--
		}
		return i-j <= 4 && precedingWord(text, j, unitWords)
	}
	return unicode.IsLetter(r) && precedingWord(text, i, leadWords)
}

// unitWords name the flat or unit whose number may precede the house's.
var unitWords = map[string]bool{"flat": true, "unit": true, "apt": true, "apartment": true, "suite": true, "shop": true, "level": true, "floor": true}

// precedingWord reports whether the word ending at i (after white space)
// is one of ws, in any case.
func precedingWord(text string, i int, ws map[string]bool) bool {
	for i > 0 && (text[i-1] == ' ' || text[i-1] == '\t') {
		i--
	}
	j := i
	for j > 0 && i-j <= 16 {
		r, size := utf8.DecodeLastRuneInString(text[:j])
		if !unicode.IsLetter(r) {
			break
		}
		j -= size
	}
	if j == i || i-j > 16 {
		return false
	}
	if j > 0 {
		if r, _ := utf8.DecodeLastRuneInString(text[:j]); unicode.IsDigit(r) {
			return false
		}
	}
	return ws[strings.ToLower(text[j:i])]
}

// matches reports whether p finds an address in text. A match its checks
// refuse may hide a shorter one that starts at a later word ("123 Main
// St Springfield IL 62701": the town pattern's first try starts at
// "Main", unled), so the search goes on from each next word.
func (p *pattern) matches(text string) bool {
	if !p.lead && p.check == nil {
		return p.re.MatchString(text)
	}
	for pos := 0; pos < len(text); {
		loc := p.re.FindStringSubmatchIndex(text[pos:])
		if loc == nil {
			return false
		}
		for k := range loc {
			if loc[k] >= 0 {
				loc[k] += pos
			}
		}
		if (!p.lead || led(text, loc[0]) || p.town && afterStreet(text, loc[0])) && (p.check == nil || p.check(text, loc)) {
			return true
		}
		pos = nextWord(text, loc[0])
	}
	return false
}

// afterStreet reports whether a town at start follows a street word or a
// number.
func afterStreet(text string, start int) bool {
	i := start
	for i > 0 && (text[i-1] == ' ' || text[i-1] == '\t' || text[i-1] == '.') {
		i--
	}
	if i > 0 && isDigit(text[i-1]) {
		return true
	}
	j := i
	for j > 0 && asciiLetter(text[j-1]) {
		j--
	}
	return j < i && slices.Contains(streetNames, text[j:i])
}

// nextWord is the start of the word after the one at i: past its letters
// and digits, then past what is neither, to a letter or digit after a
// space or a separator, so that the patterns' \b holds where the search
// starts again.
func nextWord(text string, i int) int {
	for i < len(text) && wordByte(text[i]) {
		i++
	}
	for i < len(text) && !wordByte(text[i]) {
		i++
	}
	return i
}

// wordByte: an ASCII letter or digit, or a byte of a character beyond
// ASCII (a letter, as the patterns read names).
func wordByte(c byte) bool { return asciiLetter(c) || isDigit(c) || c >= utf8.RuneSelf }

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
				k |= ukPostcode | caPostcode | eircode
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
