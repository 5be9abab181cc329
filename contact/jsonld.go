package contact

import (
	"encoding/json"
	"html"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// Structured data: many business sites state their address, phone and
// opening hours for search engines as schema.org JSON-LD (<script
// type="application/ld+json">: a LocalBusiness, a Restaurant, an
// Organization), written by an SEO or local-business plugin, often where
// no visitor-facing page says them as plainly. Structured reads those
// fields of the site's own business, and only those, from a page's JSON-LD
// blocks, checks each is what its label says (a phone number is digits, an
// e-mail address one address, opening hours schema.org's grammar, an
// address has a number or reads as one) and writes them as labelled lines.
// Text it does not know (descriptions, reviews, offers) or that fails its
// check is never read, so the block is no way to put sentences before an
// agent; a name or an address is text as the site wrote it, bounded.

// Bounds: a block or a value past them is skipped, not cut.
const (
	maxJSONLD     = 64 << 10 // one script's text
	maxJSONLDAll  = 256 << 10
	maxValue      = 100         // one field's text
	maxNodes      = 3           // businesses described
	maxEach       = 14          // phones, e-mails or hours of one (a week's hours twice)
	maxAddresses  = 3           // addresses of one
	maxItems      = 2 * maxEach // values of one field read, before their checks
	maxTop        = 32          // top-level nodes looked at
	maxJSONLDDeep = 8
)

// clockTime is a time of day, 00:00 to 24:00.
const clockTime = `(?:(?:[01]?\d|2[0-3]):[0-5]\d|24:00)`

var (
	phoneValue = regexp.MustCompile(`^\+?[\d \t().\-/]{6,25}(?:[ \t]*(?:ext\.?|x)[ \t]*\d{1,6})?$`)
	emailValue = regexp.MustCompile(`^[\w.+-]+@[\w-]+(?:\.[\w-]+)+$`)
	// schema.org's openingHours: "Mo-Fr 09:00-17:30", "Mo,Tu,We
	// 09:00-12:00 13:00-17:00", "Mo-Su" (all day).
	hoursValue = regexp.MustCompile(`^(?:Mo|Tu|We|Th|Fr|Sa|Su)(?:[ \t]*[-,][ \t]*(?:Mo|Tu|We|Th|Fr|Sa|Su))*(?:[ \t]+` + clockTime + `[ \t]*-[ \t]*` + clockTime + `(?:[ \t]*,?[ \t]*` + clockTime + `[ \t]*-[ \t]*` + clockTime + `)*)?$`)
	timeValue  = regexp.MustCompile(`^(?:` + clockTime + `)`)
	// A postcode: letters, digits, a space or a hyphen ("BS1 4AA",
	// "10115", "94103-1234", "K1A 0B1").
	postcodeValue = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 -]{1,9}$`)
)

// notBusiness are the schema.org types of nodes that are not the site's
// business, though they may carry an address or a phone: pages, people
// (an author), events (a venue, an organiser), products and offers (a
// seller), reviews, and the parts a business is made of. A node of
// another type besides ("Person" and "Organization", as Yoast writes a
// personal brand) is read.
var notBusiness = map[string]bool{"Person": true, "WebSite": true, "WebPage": true, "CollectionPage": true, "AboutPage": true,
	"ContactPage": true, "FAQPage": true, "ItemPage": true, "ProfilePage": true, "SearchResultsPage": true, "ImageObject": true,
	"BreadcrumbList": true, "ListItem": true, "ItemList": true, "Product": true, "Offer": true, "AggregateOffer": true,
	"Review": true, "AggregateRating": true, "Article": true, "BlogPosting": true, "NewsArticle": true, "Recipe": true,
	"VideoObject": true, "PostalAddress": true, "ContactPoint": true, "SearchAction": true, "Place": true, "Country": true,
	"City": true, "GeoCoordinates": true, "OpeningHoursSpecification": true,
	// What a site lists rather than is: homes for sale or to let,
	// vehicles, trips, courses, jobs, works.
	"Accommodation": true, "House": true, "SingleFamilyResidence": true, "Apartment": true, "ApartmentComplex": true,
	"Residence": true, "Room": true, "Suite": true, "ProductGroup": true, "ProductModel": true, "IndividualProduct": true,
	"Vehicle": true, "Car": true, "UserReview": true, "CriticReview": true, "Trip": true, "TouristTrip": true, "Course": true,
	"CourseInstance": true, "JobPosting": true, "SoftwareApplication": true, "Book": true, "Movie": true, "MusicAlbum": true,
	"CreativeWork": true, "HowTo": true, "Question": true, "Answer": true, "Comment": true, "Photograph": true,
	"LandmarksOrHistoricalBuildings": true, "TouristAttraction": true}

// Structured returns the contact details the JSON-LD blocks state for the
// site's business, as lines ("Spoke & Chain Cycles", "Address: 14 Mill
// Lane, Bristol, BS1 4AA", "Phone: …", "Email: …", "Opening hours:
// Monday–Friday 09:00–17:30"), each business once, and whether they
// include an address; "" when there are none. The businesses are the
// blocks' top-level nodes (a block's object, its array's items, its
// @graph's), not nodes nested in others (an event's venue, a product's
// seller); a reference ({"@id": …}, as Yoast's local add-on writes an
// address) is followed to its node. Blocks that are not JSON, or too
// large, are skipped.
func Structured(blocks []string) (text string, address bool) {
	var top []map[string]any
	ids := map[string]map[string]any{}
	total := 0
	for _, b := range blocks {
		if len(b) > maxJSONLD || total+len(b) > maxJSONLDAll {
			continue
		}
		var v any
		if json.Unmarshal([]byte(b), &v) != nil {
			continue
		}
		total += len(b)
		top = topNodes(v, top, 0)
		indexIDs(v, ids, 0)
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range top[:min(len(top), maxTop)] {
		if len(out) >= maxNodes || !isBusiness(n) {
			continue
		}
		lines, addr := business(n, ids)
		if len(lines) == 0 {
			continue
		}
		if s := strings.Join(lines, "\n"); !seen[s] {
			seen[s] = true
			out = append(out, s)
			address = address || addr
		}
	}
	return strings.Join(out, "\n\n"), address
}

// topNodes appends v's top-level nodes: v itself, an array's items, a
// @graph's items.
func topNodes(v any, out []map[string]any, depth int) []map[string]any {
	if depth > 2 {
		return out
	}
	switch t := v.(type) {
	case []any:
		for _, e := range t {
			out = topNodes(e, out, depth+1)
		}
	case map[string]any:
		if g, ok := t["@graph"]; ok {
			return topNodes(g, out, depth) // a @graph is no level of its own
		}
		out = append(out, t)
	}
	return out
}

// indexIDs records every node in v that has an @id and more than it, the
// fullest of those sharing an @id (the first, in key order, of equals),
// for references to be followed.
func indexIDs(v any, ids map[string]map[string]any, depth int) {
	if depth > maxJSONLDDeep {
		return
	}
	switch t := v.(type) {
	case []any:
		for _, e := range t {
			indexIDs(e, ids, depth+1)
		}
	case map[string]any:
		if id, ok := t["@id"].(string); ok && len(t) > 1 {
			if had, ok := ids[id]; !ok || len(t) > len(had) {
				ids[id] = t
			}
		}
		for _, k := range slices.Sorted(maps.Keys(t)) {
			indexIDs(t[k], ids, depth+1)
		}
	}
}

// resolve is the node a reference names (an @id with at most a @type
// beside it), or a itself.
func resolve(a any, ids map[string]map[string]any) any {
	m, ok := a.(map[string]any)
	if !ok {
		return a
	}
	_, typed := m["@type"]
	if id, ok := m["@id"].(string); ok && (len(m) == 1 || len(m) == 2 && typed) {
		if n, ok := ids[id]; ok {
			return n
		}
	}
	return a
}

// types are a node's @type values without a schema.org prefix.
func types(m map[string]any) []string {
	ts := strs(m["@type"])
	for i, t := range ts {
		for _, p := range []string{"https://schema.org/", "http://schema.org/", "schema:"} {
			t = strings.TrimPrefix(t, p)
		}
		ts[i] = t
	}
	return ts
}

// isBusiness: a node with a type that is not notBusiness nor an event's.
func isBusiness(m map[string]any) bool {
	for _, t := range types(m) {
		if !notBusiness[t] && !strings.HasSuffix(t, "Event") {
			return true
		}
	}
	return false
}

// business is the contact lines of one business node: nothing unless it
// states an address, a phone number, an e-mail address or opening hours;
// its location's address (a Place, as Rank Math writes it) where it
// states none of its own, and its contact points' phone and e-mail.
func business(m map[string]any, ids map[string]map[string]any) (lines []string, address bool) {
	var addrs, phones, emails, hours []string
	read := func(n map[string]any) {
		for _, a := range list(n["address"]) {
			if s := postalAddress(resolve(a, ids)); s != "" {
				addrs = append(addrs, s)
			}
		}
		phones = appendPhones(phones, n["telephone"])
		emails = appendEmails(emails, n["email"])
		for _, h := range strs(n["openingHours"]) {
			if h = value(h); hoursValue.MatchString(h) {
				hours = append(hours, dayNames(h))
			}
		}
		for _, spec := range list(n["openingHoursSpecification"]) {
			if s := hoursSpec(resolve(spec, ids)); s != "" {
				hours = append(hours, s)
			}
		}
	}
	read(m)
	for _, cp := range list(m["contactPoint"]) {
		if c, ok := resolve(cp, ids).(map[string]any); ok {
			phones = appendPhones(phones, c["telephone"])
			emails = appendEmails(emails, c["email"])
		}
	}
	if len(addrs) == 0 {
		for _, l := range list(m["location"]) {
			switch place := resolve(l, ids).(type) {
			case string: // the location as text
				if s := postalAddress(place); s != "" {
					addrs = append(addrs, s)
				}
			case map[string]any:
				for _, a := range list(place["address"]) {
					if s := postalAddress(resolve(a, ids)); s != "" {
						addrs = append(addrs, s)
					}
				}
			}
		}
	}
	if len(addrs)+len(phones)+len(emails)+len(hours) == 0 {
		return nil, false
	}
	addrs, phones, emails, hours = addrs[:min(len(addrs), maxAddresses)], atMost(phones), atMost(emails), atMost(hours)
	if name := value(first(strs(m["name"]))); name != "" {
		lines = append(lines, "Name: "+name) // labelled, so a name cannot pose as another line
	}
	for _, a := range addrs {
		lines = append(lines, "Address: "+a)
	}
	if len(phones) > 0 {
		lines = append(lines, "Phone: "+strings.Join(phones, ", "))
	}
	if len(emails) > 0 {
		lines = append(lines, "Email: "+strings.Join(emails, ", "))
	}
	if len(hours) > 0 {
		lines = append(lines, "Opening hours: "+strings.Join(hours, "; "))
	}
	return lines, len(addrs) > 0
}

// appendPhones appends v's phone numbers ("tel:" links too): digits and
// "+()-./", six digits at least, an extension.
func appendPhones(out []string, v any) []string {
	for _, p := range strs(v) {
		if p = value(strings.TrimPrefix(p, "tel:")); phoneValue.MatchString(p) && countDigits(p) >= 6 {
			out = append(out, p)
		}
	}
	return out
}

// appendEmails appends v's e-mail addresses ("mailto:" links too, less
// their query).
func appendEmails(out []string, v any) []string {
	for _, e := range strs(v) {
		e, _, _ = strings.Cut(strings.TrimPrefix(e, "mailto:"), "?")
		if e = value(e); emailValue.MatchString(e) {
			out = append(out, e)
		}
	}
	return out
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			n++
		}
	}
	return n
}

// postalAddress is a schema.org address as one line: a PostalAddress's
// parts in the order they are written, or the text of one given as text;
// "" unless it has a number or reads as an address.
func postalAddress(a any) string {
	switch t := a.(type) {
	case string:
		// As text, it must read as an address (package contact's
		// patterns): a sentence with a number in it is none.
		if s := value(t); PostalAddress(s) {
			return s
		}
	case map[string]any:
		// As parts, each short: a street with a number, or a postcode of
		// letters and digits; a town, a region, a country of a few words.
		var parts []string
		street, postcode := false, false
		for _, k := range []string{"streetAddress", "addressLocality", "addressRegion", "postalCode", "addressCountry"} {
			v := t[k]
			if c, ok := v.(map[string]any); ok { // "addressCountry": {"@type": "Country", "name": "GB"}
				v = c["name"]
			}
			p, _ := v.(string)
			if p = value(p); p == "" {
				continue
			}
			switch k {
			case "streetAddress":
				if len(p) > 60 || !strings.ContainsAny(p, "0123456789") && !PostalAddress(p) {
					return ""
				}
				street = true
			case "postalCode":
				if !postcodeValue.MatchString(p) {
					return ""
				}
				postcode = true
			default:
				if len(p) > 40 || len(strings.Fields(p)) > 4 {
					return ""
				}
			}
			parts = append(parts, p)
		}
		if street || postcode {
			return strings.Join(parts, ", ")
		}
	}
	return ""
}

// hoursSpec is an OpeningHoursSpecification as "Monday, Tuesday:
// 09:00–17:30" ("closed" when it opens when it closes); "" for one that
// is seasonal (validFrom, validThrough: a holiday's hours are not the
// week's) or whose days or times are not schema.org's.
func hoursSpec(a any) string {
	m, ok := a.(map[string]any)
	if !ok || m["validFrom"] != nil || m["validThrough"] != nil {
		return ""
	}
	var days []string
	for _, d := range list(m["dayOfWeek"]) {
		if ref, ok := d.(map[string]any); ok {
			d = ref["@id"]
		}
		s, _ := d.(string)
		// "https://schema.org/Monday", "schema:Monday", "Monday".
		if i := strings.LastIndexAny(s, "/:"); i >= 0 {
			s = s[i+1:]
		}
		if weekdays[s] && len(days) < 8 {
			days = append(days, s)
		}
	}
	opens, closes := clock(first(strs(m["opens"]))), clock(first(strs(m["closes"])))
	if len(days) == 0 || opens == "" || closes == "" {
		return ""
	}
	if opens == closes {
		return strings.Join(days, ", ") + ": closed"
	}
	return strings.Join(days, ", ") + ": " + opens + "–" + closes
}

var weekdays = map[string]bool{"Monday": true, "Tuesday": true, "Wednesday": true, "Thursday": true, "Friday": true,
	"Saturday": true, "Sunday": true, "PublicHolidays": true}

// clock is a schema.org time as hours and minutes ("09:00:00+01:00" is
// "09:00"), or "" for what is none.
func clock(s string) string {
	m := timeValue.FindString(strings.TrimSpace(s))
	if m == "" {
		return ""
	}
	if len(m) == 4 { // "9:00"
		m = "0" + m
	}
	return m
}

// dayNames writes schema.org's opening hours ("Mo-Fr 09:00-17:30",
// hoursValue's grammar) in words ("Monday–Friday 09:00–17:30"), which a
// visitor's question uses.
func dayNames(h string) string {
	var b strings.Builder
	for i := 0; i < len(h); {
		if i+2 <= len(h) && asciiLetter(h[i]) {
			b.WriteString(days[h[i:i+2]])
			i += 2
			continue
		}
		switch h[i] {
		case '-':
			b.WriteString("–")
		case ',':
			b.WriteString(", ")
		case ' ', '\t':
			if i > 0 && h[i-1] != ',' {
				b.WriteByte(' ')
			}
		default:
			b.WriteByte(h[i])
		}
		i++
	}
	return b.String()
}

var days = map[string]string{"Mo": "Monday", "Tu": "Tuesday", "We": "Wednesday", "Th": "Thursday", "Fr": "Friday", "Sa": "Saturday", "Su": "Sunday"}

// value is a field's text, its character references decoded (WordPress
// writes "Joe&#039;s Caf&eacute;") and white space collapsed, or "" when
// it is too long to be a contact detail or holds a control or format
// character.
func value(s string) string {
	if len(s) > 4*maxValue {
		return "" // not decoded: a long value, read once per reference, would cost that often
	}
	s = strings.Join(strings.Fields(html.UnescapeString(s)), " ")
	if len(s) > maxValue || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) {
		return "" // controls, and format characters (U+202E turns text round)
	}
	return s
}

// strs is a JSON-LD value as strings: one string, or the strings of an
// array, at most maxItems: a field is read a bounded number of times
// however often references lead to it.
func strs(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, e := range t[:min(len(t), maxItems)] {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// list is a JSON-LD value as a list: one value, or an array's first
// maxItems.
func list(v any) []any {
	if a, ok := v.([]any); ok {
		return a[:min(len(a), maxItems)]
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

func atMost(s []string) []string { return s[:min(len(s), maxEach)] }

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
