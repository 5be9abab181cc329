package markdown

import (
	"strings"

	"github.com/caddy-ahp/caddy-ahp/contact"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// footerHeading and sidebarHeading head the site footer's and the
// sidebars' contact details at the end of a page's Markdown.
const (
	footerHeading  = "## Contact (site footer)"
	sidebarHeading = "## Contact (sidebar)"
)

// ContactDetails takes from a site footer or a sidebar (as Strip leaves
// it: no nav, no forms, nothing hidden; the concierge reads the home
// page's footer with it too) the blocks that hold contact
// details: an
// <address>, a block with a tel: or mailto: link, schema.org contact
// microdata, or text that reads as opening hours, a phone number, an
// e-mail address or a postal address (package contact); each with the heading it falls under in its column
// (the last before it among its siblings or its ancestors' siblings: a
// widget's "Find us" heads its phone line past the street address; a
// heading alone in a wrapper, as block widgets
// write one, counts). The rest
// (newsletter boxes, link lists, copyright, "Powered by") is left. It
// returns a new element holding those blocks, moved out of footer, or nil.
// Headings become h3, below footerHeading.
func ContactDetails(footer *html.Node) *html.Node {
	var keep []*html.Node
	kept := map[*html.Node]bool{}
	// visit reads n's blocks; cur is the heading they fall under until one
	// of n's own comes.
	var visit func(n, cur *html.Node)
	visit = func(n, cur *html.Node) {
		wrapLoose(n)
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != html.ElementNode {
				continue
			}
			if h := headingOf(c); h != nil {
				cur = h
				continue
			}
			if c.DataAtom != atom.Address && hasBlockChild(c) && !plainGrid(c) && !contactList(c) {
				visit(c, cur)
				continue
			}
			if !contactBlock(c) {
				continue
			}
			if cur != nil && !kept[cur] {
				kept[cur] = true
				keep = append(keep, cur)
			}
			kept[c] = true
			keep = append(keep, c)
		}
	}
	if !hasBlockChild(footer) {
		if contactBlock(footer) {
			keep = append(keep, footer)
		}
	} else {
		visit(footer, nil)
	}
	if len(keep) == 0 {
		return nil
	}
	box := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	for _, n := range keep {
		if n.Parent != nil {
			n.Parent.RemoveChild(n)
		}
		if isHeading(n) {
			n.Data, n.DataAtom = "h3", atom.H3
		}
		if n == footer {
			n.Data, n.DataAtom = "div", atom.Div
		}
		box.AppendChild(n)
	}
	return box
}

// SidebarContact reads sidebars (taken out of the page, as
// StripKeepingContact returns them) for their contact details, as
// ContactDetails reads the footer, into one element, or nil: a block an
// earlier sidebar or footer (the footer's ContactDetails, or nil) says
// word for word is said once (a theme's address in both; a widget
// repeated in a copy of the sidebar for small screens), and a heading
// left heading nothing goes.
func SidebarContact(sidebars []*html.Node, footer *html.Node) *html.Node {
	var out *html.Node
	var said map[string]bool
	for _, s := range sidebars {
		box := ContactDetails(s)
		if box == nil {
			continue
		}
		if said == nil {
			said = make(map[string]bool)
			if footer != nil {
				for c := footer.FirstChild; c != nil; c = c.NextSibling {
					if !isHeading(c) {
						said[blockKey(c)] = true
					}
				}
			}
		}
		for c := box.FirstChild; c != nil; {
			next := c.NextSibling
			if !isHeading(c) {
				if k := blockKey(c); said[k] {
					box.RemoveChild(c)
				} else {
					said[k] = true
				}
			}
			c = next
		}
		for c := box.FirstChild; c != nil; {
			next := c.NextSibling
			if isHeading(c) && (next == nil || isHeading(next)) {
				box.RemoveChild(c)
			}
			c = next
		}
		if out == nil {
			out = box
		} else {
			for c := box.FirstChild; c != nil; c = box.FirstChild {
				box.RemoveChild(c)
				out.AppendChild(c)
			}
		}
	}
	if out != nil && out.FirstChild == nil {
		return nil
	}
	return out
}

// blockKey is a contact block's text, white space collapsed: what makes
// two blocks the same.
func blockKey(n *html.Node) string {
	return strings.Join(strings.Fields(Text(n)), " ")
}

func isHeading(n *html.Node) bool {
	switch n.DataAtom {
	case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		return n.Namespace == ""
	}
	return false
}

// hasBlockChild reports whether n holds block elements, whose own text is
// judged apart.
func hasBlockChild(n *html.Node) bool {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if isBlock(c) {
			return true
		}
	}
	return false
}

func isBlock(n *html.Node) bool {
	return n.Type == html.ElementNode && n.Namespace == "" && IsBlock(n.DataAtom)
}

// IsBlock reports whether elements named a are blocks: what ends a run of
// text (a paragraph, a table's row or cell, a heading, a list item ...),
// for this package's footer reading and the concierge's passages alike.
func IsBlock(a atom.Atom) bool {
	switch a {
	case atom.P, atom.Div, atom.Ul, atom.Ol, atom.Li, atom.Dl, atom.Dt, atom.Dd, atom.Address,
		atom.Section, atom.Article, atom.Main, atom.Header, atom.Footer, atom.Aside, atom.Nav,
		atom.Table, atom.Caption, atom.Thead, atom.Tbody, atom.Tfoot, atom.Tr, atom.Td, atom.Th,
		atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Blockquote, atom.Pre,
		atom.Figure, atom.Figcaption, atom.Details, atom.Summary, atom.Fieldset, atom.Legend, atom.Form:
		return true
	}
	return false
}

// wrapLoose puts each run of text and inline elements that sits beside
// blocks in n, and holds contact details, into a <p> of its own, so it is
// kept as a block: in "<div><h4>Hours</h4>Tue–Sat 10–6<br>Sun closed</div>"
// the hours are loose text after the heading, and were never looked at.
// A run without contact details stays as it was (wrapped, it would stand
// between a heading and the block the heading names). An element holding
// blocks (a link around a card) ends a run: visit goes inside it.
func wrapLoose(n *html.Node) {
	if !hasBlockChild(n) {
		return
	}
	boundary := func(c *html.Node) bool { return isBlock(c) || c.Type == html.ElementNode && hasBlockChild(c) }
	for c := n.FirstChild; c != nil; {
		if boundary(c) {
			c = c.NextSibling
			continue
		}
		start, empty := c, true
		for c != nil && !boundary(c) {
			switch c.Type {
			case html.TextNode:
				empty = empty && blank(c.Data)
			case html.ElementNode:
				empty = empty && blank(Text(c))
			}
			c = c.NextSibling
		}
		if empty {
			continue
		}
		p := &html.Node{Type: html.ElementNode, Data: "p", DataAtom: atom.P}
		n.InsertBefore(p, start)
		for m := start; m != c; {
			next := m.NextSibling
			n.RemoveChild(m)
			p.AppendChild(m)
			m = next
		}
		if !contactBlock(p) {
			for m := p.FirstChild; m != nil; m = p.FirstChild {
				p.RemoveChild(m)
				n.InsertBefore(m, p)
			}
			n.RemoveChild(p)
		}
	}
}

// plainGrid reports whether n is a table or a definition list of plain
// cells (no block inside a cell), judged whole as a block: a table of
// opening hours has "Monday–Friday" in one cell and "8:30–19:00" in the
// next, neither contact alone, and "Sunday | closed" belongs with them.
func plainGrid(n *html.Node) bool {
	if n.Namespace != "" || n.DataAtom != atom.Table && n.DataAtom != atom.Dl {
		return false
	}
	plain := true
	walkTree(n, func(c *html.Node) bool {
		if !plain || c.Type != html.ElementNode {
			return false
		}
		if c != n && isBlock(c) {
			switch c.DataAtom {
			case atom.Thead, atom.Tbody, atom.Tfoot, atom.Tr, atom.Td, atom.Th, atom.Caption, atom.Dt, atom.Dd:
			default:
				plain = false
				return false
			}
		}
		return true
	}, nil)
	return plain
}

// contactList reports whether n is a list of plain items of which more
// than half hold contact details by themselves, kept whole: opening hours
// by day keep their bullets and "Sunday closed" with them, while a link
// list with one tel: link among its pages is read item by item.
func contactList(n *html.Node) bool {
	if n.Namespace != "" || n.DataAtom != atom.Ul && n.DataAtom != atom.Ol {
		return false
	}
	items := 0
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode {
			if c.DataAtom != atom.Li || hasBlockChild(c) {
				return false
			}
			items++
		}
	}
	// Judged until the answer is known: a link list is read again item by
	// item, so it stops at about half.
	contact, left := 0, items
	for c := n.FirstChild; c != nil && 2*contact <= items && 2*(contact+left) > items; c = c.NextSibling {
		if c.Type == html.ElementNode {
			left--
			if contactBlock(c) {
				contact++
			}
		}
	}
	return 2*contact > items
}

// headingOf returns n if it is a heading, or the heading that is all a
// wrapper holds (<section class="widget_block"><h2>Visit us</h2></section>,
// a few levels deep), else nil.
func headingOf(n *html.Node) *html.Node {
	for range 4 {
		if isHeading(n) {
			return n
		}
		var only *html.Node
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			switch {
			case c.Type == html.ElementNode:
				if only != nil {
					return nil
				}
				only = c
			case c.Type == html.TextNode && !blank(c.Data):
				return nil
			}
		}
		if only == nil {
			return nil
		}
		n = only
	}
	return nil
}

// maxContactText is the longest block text read for contact details: an
// address, a phone line or a week's hours are a few hundred bytes, and
// the patterns cost up to a microsecond a byte, on the request path.
const maxContactText = 4 << 10

// contactBlock reports whether a footer block holds contact details. A
// longer text than maxContactText is no contact block by its words (an
// <address> or a tel: link still makes it one).
func contactBlock(b *html.Node) bool {
	text := spacedText(b)
	if strings.TrimSpace(text) == "" || contact.Credits(text) {
		return false
	}
	if b.DataAtom == atom.Address || find(b, contactElement) != nil {
		return true
	}
	return len(text) <= maxContactText && contact.Details(text)
}

// spacedText is n's text with a line break for each <br> and around
// each block, as a visitor reads it: "Station Road<br>Phone 01539 720
// 000" is two lines, not "RoadPhone", which no word boundary finds, and
// "12 Mill Lane<br>Bristol" a street line that ends its line (package
// contact). The source's own line breaks and no-break spaces are spaces,
// as a browser shows them.
func spacedText(n *html.Node) string {
	var b strings.Builder
	walkTree(n, func(c *html.Node) bool {
		switch {
		case c.Type == html.TextNode:
			b.WriteString(strings.Map(asSpace, c.Data))
		case c.Type == html.ElementNode && (c.DataAtom == atom.Br || isBlock(c)):
			b.WriteByte('\n')
		}
		return true
	}, func(c *html.Node) {
		if c.Type == html.ElementNode && isBlock(c) {
			b.WriteByte('\n')
		}
	})
	return b.String()
}

// asSpace maps the source's line breaks and the no-break spaces
// (&nbsp; in "8&nbsp;Elm Way") to a space, as a browser lays them out.
func asSpace(r rune) rune {
	switch r {
	case '\n', '\r', '\f', '\u00a0', '\u202f':
		return ' '
	}
	return r
}

// contactElement: a tel: or mailto: link, an <address>, or an element
// whose schema.org microdata names contact details.
func contactElement(n *html.Node) bool {
	if n.Namespace != "" {
		return false
	}
	switch n.DataAtom {
	case atom.Address:
		return true
	case atom.A:
		href := strings.ToLower(strings.TrimSpace(attr(n, "href")))
		return strings.HasPrefix(href, "tel:") || strings.HasPrefix(href, "mailto:")
	}
	switch attr(n, "itemprop") {
	case "address", "streetAddress", "telephone", "email", "openingHours", "openingHoursSpecification":
		return true
	}
	return false
}
