package contact

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
)

// Structured data: many business sites state their address, phone and
// opening hours for search engines as schema.org JSON-LD (<script
// type="application/ld+json">: a LocalBusiness, a Restaurant, an
// Organization), written by an SEO or local-business plugin, often where
// no visitor-facing page says them as plainly. Structured reads those
// fields, and only those, from a page's JSON-LD blocks and writes them
// as plain lines; text it does not know (descriptions, reviews, offers)
// is never read, so the block is no way to put other words before an
// agent.

// Bounds: a block or a value past them is skipped, not cut.
const (
	maxJSONLD     = 64 << 10 // one script's text
	maxJSONLDAll  = 256 << 10
	maxValue      = 200 // one field's text
	maxNodes      = 3   // businesses described
	maxEach       = 14  // addresses, phones, e-mails or hours of one (a week's hours twice)
	maxJSONLDDeep = 8
)

// Structured returns the contact details the JSON-LD blocks state, as
// lines ("Spoke & Chain Cycles", "Address: 14 Mill Lane, Bristol, BS1
// 4AA", "Phone: …", "Email: …", "Opening hours: Monday–Friday
// 09:00–17:30"), each business once, and whether they include an
// address; "" when there are none. Blocks that are not JSON, or too
// large, are skipped.
func Structured(blocks []string) (text string, address bool) {
	var out []string
	seen := map[string]bool{}
	total := 0
	for _, b := range blocks {
		if total += len(b); len(b) > maxJSONLD || total > maxJSONLDAll {
			continue
		}
		var v any
		if json.Unmarshal([]byte(b), &v) != nil {
			continue
		}
		walkJSONLD(v, 0, func(m map[string]any) {
			if len(seen) >= maxNodes {
				return
			}
			lines, addr := business(m)
			if len(lines) == 0 {
				return
			}
			if s := strings.Join(lines, "\n"); !seen[s] {
				seen[s] = true
				out = append(out, s)
				address = address || addr
			}
		})
	}
	return strings.Join(out, "\n\n"), address
}

// walkJSONLD calls f for every object in v, depth first (a @graph, a
// WebPage's "about", a LocalBusiness nested in an Organization).
func walkJSONLD(v any, depth int, f func(map[string]any)) {
	if depth > maxJSONLDDeep {
		return
	}
	switch t := v.(type) {
	case []any:
		for _, e := range t {
			walkJSONLD(e, depth+1, f)
		}
	case map[string]any:
		f(t)
		// In key order: the lines come out the same every time.
		for _, k := range slices.Sorted(maps.Keys(t)) {
			if k != "address" { // a business's own address is read with it
				walkJSONLD(t[k], depth+1, f)
			}
		}
	}
}

// business is the contact lines of one schema.org node: nothing unless
// it states an address, a phone number, an e-mail address or opening
// hours; a person's (an author's) are not the site's.
func business(m map[string]any) (lines []string, address bool) {
	for _, t := range strs(m["@type"]) {
		switch t {
		case "Person", "PostalAddress", "ContactPoint", "WebSite", "WebPage", "ImageObject", "BreadcrumbList", "ListItem":
			return nil, false
		}
	}
	var addrs, phones, emails, hours []string
	for _, a := range list(m["address"]) {
		if s := postalAddress(a); s != "" {
			addrs = append(addrs, s)
		}
	}
	for _, p := range strs(m["telephone"]) {
		if p = value(p); p != "" && strings.ContainsAny(p, "0123456789") {
			phones = append(phones, p)
		}
	}
	for _, e := range strs(m["email"]) {
		if e = value(strings.TrimPrefix(e, "mailto:")); emailText.MatchString(e) {
			emails = append(emails, e)
		}
	}
	for _, h := range strs(m["openingHours"]) {
		if h = value(h); h != "" {
			hours = append(hours, dayNames(h))
		}
	}
	for _, spec := range list(m["openingHoursSpecification"]) {
		if s := hoursSpec(spec); s != "" {
			hours = append(hours, s)
		}
	}
	if len(addrs)+len(phones)+len(emails)+len(hours) == 0 {
		return nil, false
	}
	addrs, phones, emails, hours = atMost(addrs), atMost(phones), atMost(emails), atMost(hours)
	if name := value(first(strs(m["name"]))); name != "" {
		lines = append(lines, name)
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

// postalAddress is a schema.org address as one line: a PostalAddress's
// parts in the order they are written, or the text of one given as
// text.
func postalAddress(a any) string {
	switch t := a.(type) {
	case string:
		return value(t)
	case map[string]any:
		var parts []string
		for _, k := range []string{"streetAddress", "addressLocality", "addressRegion", "postalCode", "addressCountry"} {
			v := t[k]
			if c, ok := v.(map[string]any); ok { // "addressCountry": {"@type": "Country", "name": "GB"}
				v = c["name"]
			}
			if s, ok := v.(string); ok {
				if s = value(s); s != "" {
					parts = append(parts, s)
				}
			}
		}
		return strings.Join(parts, ", ")
	}
	return ""
}

// hoursSpec is an OpeningHoursSpecification as "Monday, Tuesday:
// 09:00–17:30".
func hoursSpec(a any) string {
	m, ok := a.(map[string]any)
	if !ok {
		return ""
	}
	var days []string
	for _, d := range strs(m["dayOfWeek"]) {
		// "https://schema.org/Monday", "schema:Monday", "Monday".
		if i := strings.LastIndexAny(d, "/:"); i >= 0 {
			d = d[i+1:]
		}
		if d = value(d); d != "" && len(days) < 7 {
			days = append(days, d)
		}
	}
	opens, closes := value(first(strs(m["opens"]))), value(first(strs(m["closes"])))
	if len(days) == 0 || opens == "" || closes == "" {
		return ""
	}
	opens, closes = strings.TrimSuffix(opens, ":00"), strings.TrimSuffix(closes, ":00")
	if len(opens) < 5 { // "09:00:00" trimmed to "09:00"; "09:00" to "09"
		opens += ":00"
	}
	if len(closes) < 5 {
		closes += ":00"
	}
	if opens == closes {
		return strings.Join(days, ", ") + ": closed"
	}
	return strings.Join(days, ", ") + ": " + opens + "–" + closes
}

// dayNames writes schema.org's two-letter days ("Mo-Fr 09:00-17:30") as
// words ("Monday–Friday 09:00–17:30"), which a visitor's question uses.
func dayNames(h string) string {
	var b strings.Builder
	for i := 0; i < len(h); {
		if i+2 <= len(h) && (i == 0 || !asciiLetter(h[i-1])) && (i+2 == len(h) || !asciiLetter(h[i+2])) {
			if name, ok := days[h[i:i+2]]; ok {
				b.WriteString(name)
				i += 2
				continue
			}
		}
		if h[i] == '-' {
			b.WriteString("–")
		} else {
			b.WriteByte(h[i])
		}
		i++
	}
	return b.String()
}

var days = map[string]string{"Mo": "Monday", "Tu": "Tuesday", "We": "Wednesday", "Th": "Thursday", "Fr": "Friday", "Sa": "Saturday", "Su": "Sunday"}

// value is a field's text, white space collapsed, or "" when it is too
// long to be a contact detail or holds a control character.
func value(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxValue || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return ""
	}
	return s
}

// strs is a JSON-LD value as strings: one string, or the strings of an
// array.
func strs(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// list is a JSON-LD value as a list: one value, or an array's.
func list(v any) []any {
	if a, ok := v.([]any); ok {
		return a
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
