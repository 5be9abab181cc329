package conformance

import (
	"bytes"
	"strconv"
	"strings"

	"golang.org/x/net/html"
)

// noticeScan is what the raw HTML of a page says about the agent notice
// (spec §3.3): a <section class="ahp-notice" aria-label="AI Agent Notice">.
type noticeScan struct {
	// Count is the number of notice elements (class ahp-notice, or
	// aria-label "AI Agent Notice") outside <template>.
	Count int
	// InTemplate counts notices inside <template>, which is not rendered.
	InTemplate int
	// OutsideBody counts notices before <body> or after </body>.
	OutsideBody int
	// Hidden is whether the first notice (or an element around it) is
	// hidden from human readers by markup the raw HTML shows.
	Hidden bool
	// HiddenBy says how ("style display:none", "hidden attribute", ...).
	HiddenBy string
	// Tag is the first notice's start tag, for the report.
	Tag string
	// Text is the first notice's text content, spaces collapsed, up to
	// maxNoticeText bytes.
	Text string
}

// maxNoticeText bounds what is kept of a notice's text.
const maxNoticeText = 4096

// Classes sites commonly use to hide content visually; a stylesheet can
// hide anything, but these are what a reader can judge from the markup.
var hidingClasses = map[string]bool{
	"sr-only": true, "visually-hidden": true, "visuallyhidden": true, "screen-reader-text": true,
	"screen-reader-only": true, "hidden": true, "d-none": true, "is-hidden": true, "u-hidden": true, "hide": true,
}

// openElement is one element the scan is inside.
type openElement struct {
	name     string
	hiddenBy string
}

// scanNotice tokenizes the page (comments, scripts and other raw text are
// skipped by the tokenizer) and judges its notices. It never fails: what
// cannot be parsed is not a notice.
func scanNotice(page []byte) noticeScan {
	var s noticeScan
	z := html.NewTokenizer(bytes.NewReader(page))
	var stack []openElement
	// Where each notice stood; judged at the end, once it is known whether
	// the page has a <body> tag at all (without one, the body is implied:
	// everything outside <head>).
	type place struct{ inBody, afterBody, inHead bool }
	var places []place
	sawBody, inBody, afterBody, inHead := false, false, false, false
	template := 0
	// The first notice's text is read while the stack holds its element
	// (noticeDepth elements deep).
	var text strings.Builder
	collecting, noticeDepth := false, 0
	for {
		tt := z.Next()
		if tt == html.TextToken && collecting && text.Len() < maxNoticeText {
			text.Write(z.Text())
			continue
		}
		if tt == html.ErrorToken {
			s.Text = strings.Join(strings.Fields(text.String()), " ")
			for _, p := range places {
				if sawBody && (!p.inBody || p.afterBody) || !sawBody && p.inHead {
					s.OutsideBody++
				}
			}
			return s
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken && tt != html.EndTagToken {
			continue
		}
		tok := z.Token()
		name := tok.Data
		if tt == html.EndTagToken {
			switch name {
			case "body":
				inBody, afterBody = false, true
			case "head":
				inHead = false
			case "template":
				if template > 0 {
					template--
				}
			}
			// pop to the matching element (tolerates unclosed children)
			for i := len(stack) - 1; i >= 0; i-- {
				if stack[i].name == name {
					stack = stack[:i]
					break
				}
			}
			if collecting && len(stack) < noticeDepth {
				collecting = false
			}
			continue
		}
		switch name {
		case "body":
			sawBody, inBody, afterBody = true, true, false
		case "head":
			inHead = true
		case "template":
			if tt == html.StartTagToken {
				template++
			}
		}
		hiddenBy := hiddenByMarkup(tok)
		if isNotice(tok) {
			if template > 0 {
				s.InTemplate++
			} else {
				s.Count++
				places = append(places, place{inBody, afterBody, inHead})
				if s.Count == 1 {
					s.Tag = clip(tok.String(), 200)
					s.Hidden, s.HiddenBy = hiddenBy != "", hiddenBy
					for i := len(stack) - 1; i >= 0 && !s.Hidden; i-- {
						if stack[i].hiddenBy != "" {
							s.Hidden, s.HiddenBy = true, stack[i].hiddenBy+" on an enclosing <"+stack[i].name+">"
						}
					}
				}
			}
		}
		if tt == html.StartTagToken && !voidElements[name] {
			stack = append(stack, openElement{name: name, hiddenBy: hiddenBy})
			if len(stack) > 512 { // pathological nesting: keep the scan bounded
				stack = stack[len(stack)-512:]
				collecting = false
			}
			if s.Count == 1 && noticeDepth == 0 && template == 0 && isNotice(tok) {
				collecting, noticeDepth = true, len(stack)
			}
		}
	}
}

var voidElements = map[string]bool{
	"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true, "img": true,
	"input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true,
}

// isNotice: the class the spec's markup uses, or its aria-label hook.
func isNotice(tok html.Token) bool {
	for _, a := range tok.Attr {
		switch strings.ToLower(a.Key) {
		case "class":
			for _, c := range strings.Fields(a.Val) {
				if c == "ahp-notice" {
					return true
				}
			}
		case "aria-label":
			if strings.EqualFold(strings.TrimSpace(a.Val), "AI Agent Notice") {
				return true
			}
		}
	}
	return false
}

// hiddenByMarkup says how an element is hidden from sight by its own
// attributes, or "".
func hiddenByMarkup(tok html.Token) string {
	for _, a := range tok.Attr {
		switch strings.ToLower(a.Key) {
		case "hidden":
			return "the hidden attribute"
		case "style":
			if d := hidingDeclaration(a.Val); d != "" {
				return "style " + d
			}
		case "class":
			for _, c := range strings.Fields(a.Val) {
				if hidingClasses[strings.ToLower(c)] {
					return "class " + c
				}
			}
		}
	}
	return ""
}

// hidingDeclaration finds a CSS declaration that hides an element visually.
func hidingDeclaration(style string) string {
	for _, decl := range strings.Split(style, ";") {
		k, v, ok := strings.Cut(decl, ":")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.ToLower(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "!important")))
		switch {
		case k == "display" && v == "none",
			k == "visibility" && (v == "hidden" || v == "collapse"),
			k == "clip" && strings.HasPrefix(v, "rect(0"),
			k == "clip-path" && strings.HasPrefix(v, "inset(50%"),
			(k == "left" || k == "top") && offScreen(v),
			k == "opacity" && (v == "0" || v == "0.0"):
			return k + ":" + v
		}
	}
	return ""
}

// offScreen: a negative offset large enough to move an element off any
// screen (sites use -9999px, -10000px, -100em … alike), not a nudge.
func offScreen(v string) bool {
	mag, ok := strings.CutPrefix(v, "-")
	if !ok {
		return false
	}
	unit := strings.TrimLeft(mag, "0123456789.")
	n, err := strconv.ParseFloat(mag[:len(mag)-len(unit)], 64)
	if err != nil {
		return false
	}
	switch unit {
	case "px":
		return n >= 1000
	case "em", "rem", "vw", "vh", "%":
		return n >= 100
	}
	return false
}
