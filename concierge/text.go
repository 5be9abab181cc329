package concierge

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxWordBytes drops "words" longer than this: hashes, base64, URLs run
// together. No English word a visitor asks about is that long.
const maxWordBytes = 40

// appendTerms appends the index terms of text to dst: words (runs of
// letters and digits, with apostrophes inside: "don't"), lower-cased,
// possessive 's removed ("workshop's" is "workshop"), English stopwords
// dropped, stemmed. Han, Hiragana and Katakana characters are one term
// each: those scripts do not separate words with spaces, and single
// characters are a fair keyword unit for them.
func appendTerms(dst []string, text string) []string {
	i := 0
	for i < len(text) {
		r, size := utf8.DecodeRuneInString(text[i:])
		if !isWordRune(r) {
			i += size
			continue
		}
		if isIdeograph(r) {
			dst = append(dst, text[i:i+size])
			i += size
			continue
		}
		start := i
		plain := true // ASCII letters and digits only
		for i < len(text) {
			r, size = utf8.DecodeRuneInString(text[i:])
			if isApostrophe(r) {
				// Inside a word only when a letter follows.
				if next, _ := utf8.DecodeRuneInString(text[i+size:]); i+size < len(text) && isWordRune(next) && !isIdeograph(next) {
					plain = false
					i += size
					continue
				}
				break
			}
			if !isWordRune(r) || isIdeograph(r) {
				break
			}
			if r >= utf8.RuneSelf {
				plain = false
			}
			i += size
		}
		word := text[start:i]
		if len(word) > maxWordBytes {
			continue
		}
		if plain {
			word = lowerASCII(word)
		} else {
			word = normalizeWord(word)
			if word == "" {
				continue
			}
		}
		if _, stop := stopwords[word]; stop {
			continue
		}
		if !plain {
			word = strings.ReplaceAll(word, "'", "")
		}
		dst = append(dst, stem(word))
	}
	return dst
}

// normalizeWord lower-cases a word with non-ASCII letters or apostrophes,
// writes every apostrophe as ' and drops a possessive 's.
func normalizeWord(w string) string {
	w = strings.ToLower(w)
	if strings.ContainsRune(w, '’') {
		w = strings.ReplaceAll(w, "’", "'")
	}
	if strings.HasSuffix(w, "'s") {
		w = w[:len(w)-2]
	}
	return w
}

func isApostrophe(r rune) bool { return r == '\'' || r == '’' }

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return isWordByte(byte(r))
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
}

func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isIdeograph(r rune) bool {
	return r >= 0x2E80 && unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana)
}

// lowerASCII lower-cases an ASCII word, allocating only if it has upper
// case letters.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// stem is a light English suffix stripper, applied to lower-case ASCII
// words alike at indexing and query time, so that "care", "cares",
// "caring" and "cared" meet ("car"), as do "table"/"tables" and
// "run"/"running". It is deliberately less aggressive than Porter's: it
// strips plural -s/-es/-ies, -ing, -ed, -ied and -ly, undoubles the
// consonant those leave ("running" → "run"), and drops a final e. A stem
// need not be a word; it must only be the same for the forms of one.
// Words of three letters or fewer, and non-ASCII words, are kept as they
// are.
func stem(w string) string {
	if len(w) <= 3 {
		return w
	}
	for i := 0; i < len(w); i++ {
		if w[i] < 'a' || w[i] > 'z' {
			return w
		}
	}
	switch {
	case strings.HasSuffix(w, "sses"):
		w = w[:len(w)-2]
	case strings.HasSuffix(w, "ies") && len(w) > 4:
		w = w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") && !strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is"):
		w = w[:len(w)-1]
	}
	stripped := false
	switch {
	case strings.HasSuffix(w, "ied") && len(w) > 4:
		w = w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "ing"):
		w, stripped = cut(w, 3)
	case strings.HasSuffix(w, "ed"):
		w, stripped = cut(w, 2)
	case strings.HasSuffix(w, "ly"):
		if s := w[:len(w)-2]; len(s) >= 3 && hasVowel(s) {
			w = s
		}
	}
	if stripped {
		if n := len(w); n >= 3 && w[n-1] == w[n-2] && !isVowel(w[n-1]) && w[n-1] != 'l' && w[n-1] != 's' && w[n-1] != 'z' {
			w = w[:n-1]
		}
	}
	if len(w) > 3 && w[len(w)-1] == 'e' {
		w = w[:len(w)-1]
	}
	return w
}

// cut removes an -ing/-ed suffix of n bytes when a stem with a vowel of at
// least three letters remains; a two-letter remainder gets its e back
// ("using" → "use", "used" → "use").
func cut(w string, n int) (string, bool) {
	s := w[:len(w)-n]
	switch {
	case len(s) >= 3 && hasVowel(s):
		return s, true
	case len(s) == 2 && hasVowel(s):
		return s + "e", false
	}
	return w, false
}

func isVowel(c byte) bool { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' }

func hasVowel(s string) bool {
	for i := 0; i < len(s); i++ {
		if isVowel(s[i]) || (s[i] == 'y' && i > 0) {
			return true
		}
	}
	return false
}

// stopwords are English function words and the filler of questions ("how
// do I", "tell me about", "can you find"): they carry no topic.
var stopwords = func() map[string]struct{} {
	words := strings.Fields(`
a about above after again against all also am an and any are aren't as at be because been before
being below between both but by can cannot could couldn't did didn't do does doesn't doing don't down
during each few for from further had hadn't has hasn't have haven't having he her here hers herself him
himself his how i if in into is isn't it its itself just let let's me more most mustn't my myself no
nor not of off on once only or other ought our ours ourselves out over own same shan't she should
shouldn't so some such than that that's the their theirs them themselves then there there's these they
this those through to too under until up very was wasn't we were weren't what what's when where where's
which while who who's whom why why's will with won't would wouldn't you your yours yourself yourselves
please tell know want need find show give get got may might must shall us anything something
everything thing things way ways much many lot really via etc`)
	m := make(map[string]struct{}, len(words))
	for _, w := range words {
		m[w] = struct{}{}
	}
	return m
}()

// weakWords are common English words that questions use without naming a
// topic ("What is your phone number?", "How big is the desk?"). When the
// site never uses one, a page matching the rest still answers the
// question (see qterm.cov). They are stemmed like every term.
var weakWords = func() map[string]struct{} {
	words := strings.Fields(`
number numbers use used using make made long big small large size many much time times kind kinds
type types good best better new old one two first last work works help go goes come look like see
take name names place day days year years people person part parts right left lot little great
important different possible able available exactly actually usually typically generally currently
info information detail details question questions answer site website page pages offer offers
provide provides anyone someone buy cost price prices`)
	m := make(map[string]struct{}, len(words))
	for _, w := range words {
		m[stem(w)] = struct{}{}
	}
	return m
}()

// currencySigns are the signs a price is written with before or after its
// amount (£12, 12 €).
const currencySigns = "$£€¥₹"

// currencyCodes are ISO 4217 codes written beside an amount (30 EUR).
var currencyCodes = []string{"USD", "EUR", "GBP", "CHF", "CAD", "AUD", "JPY", "SEK", "NOK", "DKK", "PLN", "INR"}

// statesPrice reports whether text states an amount of money: a currency
// sign or code next to a digit.
func statesPrice(text string) bool {
	for i, r := range text {
		if !strings.ContainsRune(currencySigns, r) {
			continue
		}
		next := text[i+utf8.RuneLen(r):]
		if next != "" && next[0] >= '0' && next[0] <= '9' {
			return true
		}
		prev := strings.TrimRight(text[:i], " ")
		if prev != "" && prev[len(prev)-1] >= '0' && prev[len(prev)-1] <= '9' {
			return true
		}
	}
	for _, code := range currencyCodes {
		for at := 0; ; {
			j := strings.Index(text[at:], code)
			if j < 0 {
				break
			}
			j += at
			before := strings.TrimRight(text[:j], " ")
			after := strings.TrimLeft(text[j+len(code):], " ")
			if before != "" && isDigit(before[len(before)-1]) || after != "" && isDigit(after[0]) {
				return true
			}
			at = j + len(code)
		}
	}
	return false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// asksPrice reports whether a question asks what something costs: "how
// much", or a word for a price (price, cost, charge, fee). It runs on
// every question, so it allocates nothing.
func asksPrice(text string) bool {
	prevHow := false
	for w := range words(text) {
		switch {
		case prevHow && strings.EqualFold(w, "much"):
			return true
		case hasPrefixFold(w, "price"), hasPrefixFold(w, "cost"), hasPrefixFold(w, "charg"),
			strings.EqualFold(w, "fee"), strings.EqualFold(w, "fees"):
			return true
		}
		prevHow = strings.EqualFold(w, "how")
	}
	return false
}

// words yields the runs of word characters of text.
func words(text string) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		start := -1
		for i, r := range text {
			if isWordRune(r) {
				if start < 0 {
					start = i
				}
				continue
			}
			if start >= 0 && !yield(text[start:i]) {
				return
			}
			start = -1
		}
		if start >= 0 {
			yield(text[start:])
		}
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// asksWhere reports whether a question asks where: "where", "where's",
// "whereabouts".
func asksWhere(text string) bool {
	for w := range words(text) {
		if strings.EqualFold(w, "where") || strings.EqualFold(w, "whereabouts") {
			return true // "where's" is "where" and "s" here
		}
	}
	return false
}
