// Package contact recognises a business's contact details in the text of
// a page: opening hours, phone numbers, e-mail addresses and postal
// addresses, and the credits line that is none of them. Markdown for
// agents reads it to keep a footer's or sidebar's contact blocks, the
// built-in concierge to know which passage answers "Where are you?".
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
	// "Find us at the old mill".
	addressLabel = regexp.MustCompile(`(?i)^\s*(?:(?:our|postal|street|shop|office)\s+)?address\b\s*:?\s*\S`)
	findUsAt     = regexp.MustCompile(`(?i)\b(?:find|visit) us at\b`)
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
// says it is one ("Address: …"). Text is what a visitor reads, line
// breaks as spaces.
func PostalAddress(text string) bool {
	if addressLabel.MatchString(text) || hasUsAt(text) && findUsAt.MatchString(text) {
		return true
	}
	kinds := candidates(text)
	for i := range postal {
		if kinds&postal[i].kind != 0 && postal[i].re.MatchString(text) {
			return true
		}
	}
	return false
}

// hasUsAt reports whether text has " us at " in any case: whether
// findUsAt, unanchored and so slow on long text, can match.
func hasUsAt(text string) bool {
	for i := strings.IndexByte(text, ' '); i >= 0 && i+7 <= len(text); {
		if strings.EqualFold(text[i:i+7], " us at ") {
			return true
		}
		j := strings.IndexByte(text[i+1:], ' ')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}
