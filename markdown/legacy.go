package markdown

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Legacy landmarks: most sites older than HTML5 lay the page out with
// divs named by the theme (WordPress Kubrick and Twenty Ten, Drupal
// Garland and Bartik, Blogger's classic templates, phpBB), not with
// <header>, <nav>, <aside>, <footer> or <main>. Strip and Main read the
// names those themes use, case-insensitively, as whole ids or whole class
// tokens:
//
//   - banner: id header, masthead, branding, header-wrapper;
//   - navigation: id nav, navigation, navbar, menu, main-menu; class
//     navbar, navigation; only when at least half of its text is link
//     text, its links are short (at most 32 characters on average) and
//     it holds no heading: a restaurant's <div id="menu"> is its dishes,
//     linked for online ordering and grouped under "Starters";
//   - complementary: id sidebar; class sidebar, widget-area, sidebar-left,
//     sidebar-right, container-sidebar-left, container-sidebar-right
//     (Joomla 4's Cassiopeia);
//   - site footer: id footer, colophon, footer-wrapper, page-footer;
//   - share bars: class sharedaddy, share-buttons, social-share,
//     addthis_toolbox, a2a_kit;
//   - comments: id comments, respond, disqus_thread; class comments,
//     commentlist, comment-list;
//   - main content (Main): id content or main on a div, section or td;
//     else the only element with class hentry or post; else the only one
//     with class entry-content.
//
// A name counts only where the page does not say the same in HTML5: the
// banner, navigation, complementary and footer names only when the page
// has no element of that kind (a <nav>; a <header>, <aside> or <footer>
// not inside an <article>, <main>, <section> or <aside>; or the ARIA
// role; one its own markup hides does not count: a cookie bar's <aside
// style="display:none">, see concealed). Share bars and comments have no
// element of their own: their names always count. No name counts inside a <main> or <article>
// element, whose content stays as it is, and an element so named that
// holds the main content (a <main>, <article>, role=main, #content or
// #main) stays. When the names would leave the page with no text, none
// of them is applied.
const (
	kindBanner uint8 = 1 << iota
	kindNav
	kindComplementary
	kindContentinfo
	kindExtra // share bars and comments: no element or role marks them
	// kindMain: the element holds the main content (<main>, <article>,
	// role=main, #content, #main); never dropped by name.
	kindMain
)

// legacyLandmarks switches the legacy names on; tests turn it off to
// compare with the HTML5-only reading.
var legacyLandmarks = true

// legacyNode is an element named like boilerplate, dropped at the end of
// Strip if its kind applies.
type legacyNode struct {
	n    *html.Node
	kind uint8
	// holdsMain: the main content is inside; it stays.
	holdsMain bool
	// outer: the index in stripper.legacy of the nearest named element
	// around it, -1 for none.
	outer int
}

// linkyBudget bounds the nodes linky reads on one page: nested menus
// that are no menus would each read what the others hold.
const linkyBudget = 1 << 16

// idKind returns the legacy kinds an id names.
func idKind(id string) uint8 {
	switch len(id) {
	case 3:
		if strings.EqualFold(id, "nav") {
			return kindNav
		}
	case 4:
		switch {
		case strings.EqualFold(id, "menu"):
			return kindNav
		case strings.EqualFold(id, "main"):
			return kindMain
		}
	case 6:
		switch {
		case strings.EqualFold(id, "header"):
			return kindBanner
		case strings.EqualFold(id, "navbar"):
			return kindNav
		case strings.EqualFold(id, "footer"):
			return kindContentinfo
		}
	case 7:
		switch {
		case strings.EqualFold(id, "sidebar"):
			return kindComplementary
		case strings.EqualFold(id, "content"):
			return kindMain
		case strings.EqualFold(id, "respond"):
			return kindExtra
		}
	case 8:
		switch {
		case strings.EqualFold(id, "masthead"):
			return kindBanner
		case strings.EqualFold(id, "branding"):
			return kindBanner
		case strings.EqualFold(id, "colophon"):
			return kindContentinfo
		case strings.EqualFold(id, "comments"):
			return kindExtra
		}
	case 9:
		if strings.EqualFold(id, "main-menu") {
			return kindNav
		}
	case 10:
		if strings.EqualFold(id, "navigation") {
			return kindNav
		}
	case 11:
		if strings.EqualFold(id, "page-footer") {
			return kindContentinfo
		}
	case 13:
		if strings.EqualFold(id, "disqus_thread") {
			return kindExtra
		}
	case 14:
		switch {
		case strings.EqualFold(id, "header-wrapper"):
			return kindBanner
		case strings.EqualFold(id, "footer-wrapper"):
			return kindContentinfo
		}
	}
	return 0
}

// classKind returns the legacy kinds a class token names (see the list
// above). The length switch keeps the cost of a modern page's many
// utility classes to a comparison or two each.
func classKind(tok string) uint8 {
	switch len(tok) {
	case 5:
		// (not "share": an investor page's share price box)
	case 6:
		if strings.EqualFold(tok, "navbar") {
			return kindNav
		}
	case 7:
		switch {
		case strings.EqualFold(tok, "sidebar"):
			return kindComplementary
		case strings.EqualFold(tok, "a2a_kit"):
			return kindExtra
		}
	case 8:
		if strings.EqualFold(tok, "comments") {
			return kindExtra
		}
	case 10:
		switch {
		case strings.EqualFold(tok, "navigation"):
			return kindNav
		case strings.EqualFold(tok, "sharedaddy"):
			return kindExtra
		}
	case 11:
		switch {
		case strings.EqualFold(tok, "widget-area"):
			return kindComplementary
		case strings.EqualFold(tok, "commentlist"):
			return kindExtra
		}
	case 12:
		switch {
		case strings.EqualFold(tok, "sidebar-left"):
			return kindComplementary
		case strings.EqualFold(tok, "social-share"):
			return kindExtra
		case strings.EqualFold(tok, "comment-list"):
			return kindExtra
		}
	case 13:
		switch {
		case strings.EqualFold(tok, "sidebar-right"):
			return kindComplementary
		case strings.EqualFold(tok, "share-buttons"):
			return kindExtra
		}
	case 15:
		if strings.EqualFold(tok, "addthis_toolbox") {
			return kindExtra
		}
	case 22, 23:
		// Joomla 4's Cassiopeia: the module column and its card.
		if strings.EqualFold(tok, "container-sidebar-left") || strings.EqualFold(tok, "container-sidebar-right") {
			return kindComplementary
		}
	}
	return 0
}

// landmarkKind returns the kind of landmark a dropped element is in
// HTML5 terms (see Strip), 0 for none.
func landmarkKind(n *html.Node, sectioned bool) uint8 {
	if n.Namespace != "" {
		return 0
	}
	var k uint8
	switch n.DataAtom {
	case atom.Nav:
		k = kindNav
	case atom.Aside:
		// In an article or section it is a pull quote or a note, not the
		// page's sidebar (as for header and footer; HTML-AAM maps it so).
		if !sectioned {
			k = kindComplementary
		}
	case atom.Header:
		if !sectioned {
			k = kindBanner
		}
	case atom.Footer:
		if !sectioned {
			k = kindContentinfo
		}
	}
	switch strings.ToLower(strings.TrimSpace(attr(n, "role"))) {
	case "navigation", "search":
		k |= kindNav
	case "complementary":
		k |= kindComplementary
	case "banner":
		k |= kindBanner
	case "contentinfo":
		k |= kindContentinfo
	}
	return k
}

// mainCandidate: an element whose id says it holds the main content.
func mainCandidate(n *html.Node) bool {
	if n.Namespace != "" {
		return false
	}
	switch n.DataAtom {
	case atom.Div, atom.Section, atom.Td:
		return true
	}
	return false
}

// dropLegacy removes the elements named like boilerplate whose kind the
// page does not mark in HTML5, unless that would leave the page without
// text.
func (st *stripper) dropLegacy(doc *html.Node) {
	var drops []*html.Node
	legacyFooter, asides := false, len(st.kept.asides)
	dropped := make([]bool, len(st.legacy))
	budget := linkyBudget
	for i, l := range st.legacy {
		k := l.kind &^ st.seen &^ kindMain
		switch {
		case k == 0 || l.holdsMain:
			continue
		case l.outer >= 0 && dropped[l.outer]:
			dropped[i] = true // goes with it
			continue
		case k == kindNav && !linky(l.n, &budget):
			continue
		case k == kindContentinfo && st.keepContact && st.kept.footer == nil:
			st.kept.footer, legacyFooter = l.n, true // kept for its contact details (see strip)
			continue
		case k == kindComplementary && st.keepContact:
			st.kept.asides = append(st.kept.asides, l.n) // as the footer
			continue
		}
		dropped[i] = true
		drops = append(drops, l.n)
	}
	legacyAsides := len(st.kept.asides) > asides
	if len(drops) == 0 && !legacyFooter && !legacyAsides {
		return
	}
	skip := make(map[*html.Node]bool, len(drops)+len(st.quiet))
	for _, n := range drops {
		skip[n] = true
	}
	for _, n := range st.quiet {
		skip[n] = true
	}
	if st.kept.footer != nil {
		skip[st.kept.footer] = true
	}
	for _, n := range st.kept.asides {
		skip[n] = true
	}
	if !hasText(doc, skip) {
		if legacyFooter {
			st.kept.footer = nil // it stays content, as the rest
		}
		st.kept.asides = st.kept.asides[:asides]
		return // the content is all in boilerplate-named elements: keep them
	}
	for _, n := range drops {
		if n.Parent != nil {
			n.Parent.RemoveChild(n)
		}
	}
}

// hasText reports whether the page, less the skip subtrees and <head>,
// has text that is not white space.
func hasText(root *html.Node, skip map[*html.Node]bool) bool {
	found := false
	walkTree(root, func(n *html.Node) bool {
		switch {
		case found:
			return false
		case n.Type == html.TextNode:
			found = !blank(n.Data)
			return false
		case n.Type == html.ElementNode && (n.DataAtom == atom.Head || skip[n]):
			return false
		}
		return true
	}, nil)
	return found
}

// linky reports whether n reads as a menu of links, not content named
// "menu": at least half of its text (white space aside) is link text, its
// links are short (at most maxMenuLink characters on average: "Home",
// "About us", not dish names), and it holds no heading (a restaurant
// menu's "Starters"). Each node read takes one from budget; when none is
// left, n is not taken as a menu.
func linky(n *html.Node, budget *int) bool {
	var all, linked, inLink, links int
	heading := false
	walkTree(n, func(c *html.Node) bool {
		if *budget--; *budget < 0 {
			return false
		}
		switch c.Type {
		case html.TextNode:
			k := len(c.Data) - spaces(c.Data)
			all += k
			if inLink > 0 {
				linked += k
			}
		case html.ElementNode:
			switch c.DataAtom {
			case atom.A:
				inLink++
				links++
			case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
				heading = true
			}
		}
		return true
	}, func(c *html.Node) {
		if c.Type == html.ElementNode && c.DataAtom == atom.A {
			inLink--
		}
	})
	return *budget >= 0 && !heading && links > 0 && 2*linked >= all && linked <= maxMenuLink*links
}

// maxMenuLink is the longest average link text (white space aside) of a
// menu linky takes as one.
const maxMenuLink = 32

// spaces counts the ASCII white space bytes of s.
func spaces(s string) int {
	k := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\n', '\r', '\f':
			k++
		}
	}
	return k
}

// textLen is the length of n's text, white space aside.
func textLen(n *html.Node) int {
	k := 0
	walkTree(n, func(c *html.Node) bool {
		if c.Type == html.TextNode {
			k += len(c.Data) - spaces(c.Data)
		}
		return true
	}, nil)
	return k
}

// legacyMain returns the element of a page with no <main>, role=main or
// <article> that its theme names as the main content (see the list
// above), or nil. It must hold at least half of root's text: a small
// #content beside the real text is not taken.
func legacyMain(root *html.Node) *html.Node {
	var byID, post, entry *html.Node
	var posts, entries int
	walkTree(root, func(n *html.Node) bool {
		if n.Type != html.ElementNode {
			return n.Type == html.DocumentNode
		}
		if byID != nil {
			return false
		}
		for _, a := range n.Attr {
			if a.Namespace != "" {
				continue
			}
			switch a.Key {
			case "id":
				if idKind(strings.TrimSpace(a.Val)) == kindMain && mainCandidate(n) {
					byID = n
					return false
				}
			case "class":
				if n.DataAtom == atom.Body || n.DataAtom == atom.Html {
					continue
				}
				p, e := false, false
				for list := a.Val; list != ""; {
					var tok string
					tok, list = nextToken(list)
					p = p || strings.EqualFold(tok, "hentry") || strings.EqualFold(tok, "post")
					e = e || strings.EqualFold(tok, "entry-content")
				}
				if p {
					posts++
					if post == nil {
						post = n
					}
				}
				if e {
					entries++
					if entry == nil {
						entry = n
					}
				}
			}
		}
		return true
	}, nil)
	m := byID
	switch {
	case m != nil:
	case posts == 1:
		m = post
	case entries == 1:
		m = entry
	default:
		return nil
	}
	if 2*textLen(m) < textLen(root) {
		return nil
	}
	return m
}

// walkTree visits root's subtree in document order without recursion
// (hostile pages nest deeply): enter is called on each node and returns
// whether to visit its children; leave, if not nil, is called after a
// node's children were visited (or skipped).
func walkTree(root *html.Node, enter func(*html.Node) bool, leave func(*html.Node)) {
	n := root
	for {
		if enter(n) && n.FirstChild != nil {
			n = n.FirstChild
			continue
		}
		for {
			if leave != nil {
				leave(n)
			}
			if n == root {
				return
			}
			if n.NextSibling != nil {
				n = n.NextSibling
				break
			}
			n = n.Parent
		}
	}
}
