// Package contact recognises a business's contact details in the text of
// a page: opening hours, phone numbers, e-mail addresses and postal
// addresses, and the credits line that is none of them; and the
// contact details a page's schema.org JSON-LD states (Structured).
// Markdown for agents reads it to keep a footer's or sidebar's contact
// blocks, the built-in concierge to know which passage answers "Where are
// you?" and to index the home page's structured contact details.
//
// The patterns are deliberately narrow: a block they miss is dropped from
// the Markdown (as before they existed) or ranked as any other passage,
// while a block they wrongly take is kept beside the content or answers a
// question it should not. So an address is recognised by its street line
// or its postcode written as a country writes it, not by a town's name or
// a lone number.
package contact

import (
	"regexp"
	"strings"
)

var (
	// Opening hours: a day name or range next to a time, or "open"/"hours"
	// next to one ("Open Tue–Sat, 10–6", "Mon-Fri 9am-5pm"), across a line
	// break ("Monday to Friday<br>\n8.00 to 17.30", as WordPress writes).
	hoursText = regexp.MustCompile(`(?is)\b(mon|tue|wed|thu|fri|sat|sun|weekdays|daily|open|hours)[a-z]*\b.{0,40}\d{1,2}([:.]\d\d)?\s*(am|pm|h|–|-|—|to)`)
	// A phone number named as one ("Tel", "Telephone", "Mobile", "T:"), or
	// in international form.
	phoneText = regexp.MustCompile(`(?i)(\b(tel|telephone|phone|call|fax|mobile)\b[.:]?\s*|\bT:\s*|\+)\(?\d[\d\s().-]{6,}\d`)
	emailText = regexp.MustCompile(`[\w.+-]+@[\w-]+\.[\w.-]+`)
	// A copyright or credits line is not contact, whatever it holds.
	creditsText = regexp.MustCompile(`(?i)^\s*(©|\(c\)|copyright|powered by|all rights reserved)`)
	// A block that says it is an address: "Address: Unit 4, Riverside",
	// "Address" above its lines (Twenty Seventeen's "Find Us" widget),
	// "Our address 14 …"; not "Address any questions to …".
	addressLabel = regexp.MustCompile(`(?i)^[ \t\r\n]*(?:(?:our|postal|street|shop|office)[ \t]+)?address(?:[ \t]*:[ \t\r\n]*\S|[ \t]*\r?\n[ \t\r\n]*\S|[ \t]+\d)`)
)

// Details reports whether text holds contact details: opening hours, a
// phone number, an e-mail address or a postal address. A credits line
// ("© 2024 …", "Powered by …") holds none, whatever it says.
func Details(text string) bool {
	if Credits(text) {
		return false
	}
	return hoursText.MatchString(text) || phoneText.MatchString(text) || emailText.MatchString(text) || PostalAddress(text)
}

// Credits reports whether text is a copyright or credits line.
func Credits(text string) bool { return creditsText.MatchString(text) }

// PostalAddress reports whether text holds a postal address: a street
// line or a postcode written as its country writes it, or a block that
// says it is one ("Address: …", "Find us at …"). Text is what a visitor
// reads, a line break as a newline: a street line ends its line.
func PostalAddress(text string) bool {
	if addressLabel.MatchString(text) || findUsAt(text) {
		return true
	}
	kinds := candidates(text)
	for i := range postal {
		if kinds&postal[i].kind != 0 && postal[i].matches(text) {
			return true
		}
	}
	return false
}

// findUsAt reports whether text says "find us at" or "visit us at", as
// words, in any ASCII case, and not of a web address, a social network
// or the site itself ("Visit us at www.kettle.example", "Find us at
// facebook.com/…", "Visit us at our online shop").
func findUsAt(text string) bool {
	for i := 0; i < len(text); i++ {
		if i > 0 && asciiLetter(text[i-1]) {
			continue
		}
		for _, p := range [...]string{"find us at", "visit us at"} {
			if hasPrefixFold(text[i:], p) && (len(text) == i+len(p) || !asciiLetter(text[i+len(p)]) && !isDigit(text[i+len(p)])) &&
				!online(text[i+len(p):]) {
				return true
			}
		}
	}
	return false
}

// online reports whether the next two words of s name a place on the web:
// a web or e-mail address, or a website or social network by name ("our
// online shop"); "Unit 4/5 Riverside", "St.Mary's Hall" are none.
func online(s string) bool {
	ws := strings.Fields(s[:min(len(s), 80)]) // two words, not the rest of the text
	for _, w := range ws[:min(len(ws), 2)] {
		w = strings.ToLower(strings.TrimRight(w, ".,;:!"))
		if webAddress.MatchString(w) {
			return true
		}
		switch w {
		case "website", "online", "facebook", "instagram", "twitter", "linkedin", "youtube", "tiktok", "www", "web":
			return true
		}
	}
	return false
}

// webAddress: a URL, a www. name, an e-mail address, or a name with a
// common top-level domain ("kettle.example", "facebook.com/kettle").
var webAddress = regexp.MustCompile(`^(?:https?://|www\.)|@|\.(?:com|org|net|co|uk|io|de|fr|it|es|nl|au|ca|us|ie|nz|info|biz|shop|store|example)(?:$|[/.])`)

// hasPrefixFold: s begins with the lower-case ASCII prefix, in any case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c, want := s[i], prefix[i]
		if c != want && !(asciiLetter(c) && c|0x20 == want) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
