package markdown

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/transform"
)

// Parse parses an HTML page. contentType is the response's Content-Type:
// its charset parameter, a <meta charset> or a BOM select the decoder, so
// that legacy windows-1252 or Shift JIS pages read correctly; the default
// is UTF-8.
//
// A page in an encoding the WHATWG names only to refuse (ISO-2022-KR,
// HZ-GB-2312 and the like: its "replacement" decoder turns the page into
// one U+FFFD) returns ErrCharset.
func Parse(body []byte, contentType string) (*html.Node, error) {
	var r io.Reader = bytes.NewReader(body)
	if needsDecoding(body, contentType) {
		// charset.NewReader, less its copy of the first KB.
		switch e, name, _ := charset.DetermineEncoding(body, contentType); {
		case name == "replacement":
			return nil, ErrCharset
		case e != encoding.Nop:
			r = transform.NewReader(r, e.NewDecoder())
		}
	}
	return html.Parse(r)
}

// ErrCharset is returned by Parse for a page in an encoding that cannot
// be read.
var ErrCharset = errors.New("markdown: the page's charset cannot be decoded")

// needsDecoding reports whether a page may be in another charset than
// UTF-8. Most pages are UTF-8; skipping charset.NewReader for them avoids
// its copy of the whole body.
func needsDecoding(body []byte, contentType string) bool {
	if i := strings.Index(strings.ToLower(contentType), "charset="); i >= 0 {
		cs := strings.Trim(strings.ToLower(contentType[i+len("charset="):]), `"' `)
		return cs != "utf-8" && cs != "utf8"
	}
	// charset.NewReader looks at the first 1024 bytes for a BOM or <meta>.
	head := body[:min(len(body), 1024)]
	if len(head) >= 2 && (head[0] == 0xFE || head[0] == 0xFF) {
		return true // UTF-16 BOM
	}
	lower := bytes.ToLower(head)
	i := bytes.Index(lower, []byte("charset"))
	if i < 0 {
		return false
	}
	rest := bytes.TrimLeft(lower[i+len("charset"):], ` ="'`)
	return !bytes.HasPrefix(rest, []byte("utf-8")) && !bytes.HasPrefix(rest, []byte("utf8"))
}

// Title returns the text of the document's first <title>, with white space
// collapsed. An SVG's <title> is a tooltip, not the document's (and often
// in a hidden sprite).
func Title(doc *html.Node) string {
	t := find(doc, func(n *html.Node) bool { return n.DataAtom == atom.Title && n.Namespace == "" })
	if t == nil {
		return ""
	}
	text := Text(t)
	if privateUse(text) {
		text = withoutPrivateUse(text) // read before Strip, by the concierge
	}
	// Stray bytes in a page that claims UTF-8 become U+FFFD, as the
	// Markdown's are (the title heads it, written after that check).
	return strings.ToValidUTF8(strings.Join(strings.Fields(text), " "), "\uFFFD")
}

// Text returns the text content of n (no white space normalisation).
func Text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// Strip removes from the document what is not the page's content for an
// agent:
//
//   - scripts, styles, templates, embedded objects, SVG and canvas;
//   - what the browser itself hides or never renders: popovers, <video>
//     and <audio> fallback content, <rp>, <datalist>;
//   - navigation and complementary content (nav, aside, role=navigation,
//     role=complementary, role=search);
//   - the AHP in-page notice (class ahp-notice, or aria-label
//     "AI Agent Notice"): it is addressed to agents visiting the HTML page;
//   - elements hidden from visitors (text a visitor never sees must not
//     reach an agent: a channel for instructions): the hidden attribute,
//     aria-hidden="true", screen-reader-only classes (sr-only,
//     visually-hidden, screen-reader-text, visuallyhidden) unless another
//     class shows them (sm:not-sr-only, sr-only-focusable), and what the
//     element's inline style and the page's own <style> rules hide
//     (display:none, opacity:0 but for an entrance animation's start,
//     off-screen, clipped, zero size or scale; text at font-size 0 or
//     visibility:hidden, but for children that set a size or visible
//     again; see style.go and sheet.go for the rules);
//   - the site banner and footer: header and footer elements that are not
//     inside an article, main, section or aside (those are the article's
//     own header, with its title, and must stay), role=banner,
//     role=contentinfo (Convert takes the footer's contact details
//     first: footer.go);
//   - form controls, and forms unless they hold the page (legacy ASP.NET
//     pages wrap everything in one form);
//   - in pages laid out with divs, as most sites older than HTML5 are,
//     the elements their themes name header, menu, sidebar, footer, share
//     bar or comments, where the page does not mark the same in HTML5 (see
//     legacy.go for the names and the rules).
func Strip(doc *html.Node) {
	strip(doc, false, false)
}

// StripKeepingContact is Strip, and returns what Strip drops but Convert
// reads for contact details (see strip): the first site footer and the
// sidebars, each taken out of doc whole but less what Strip drops inside
// them (hidden text, forms, navigation); the sidebars in document order,
// none inside another or the footer. footer is nil when the page has
// none that visitors see. The caller reads the sidebars with
// SidebarContact. doc is left as Strip leaves it but for the legacy
// names, read as Convert reads them: a landmark inside the site footer (a
// <nav>), which Strip drops unread, counts as the page's, and the names
// of its kind (#menu) are not applied (see legacy.go); a sidebar's
// landmarks do not count (see walk).
func StripKeepingContact(doc *html.Node) (footer *html.Node, sidebars []*html.Node) {
	kept := strip(doc, true, false)
	if f := kept.footer; f != nil && f.Parent != nil && Attached(f, doc) {
		f.Parent.RemoveChild(f) // with the sidebars in it: the footer's
		footer = f
	}
	sidebars = kept.asides[:0]
	for _, a := range kept.asides {
		// Detached: dropped by a stylesheet rule, with the footer or a
		// legacy element, or inside a sidebar taken already.
		if a.Parent != nil && Attached(a, doc) {
			a.Parent.RemoveChild(a)
			sidebars = append(sidebars, a)
		}
	}
	return footer, sidebars
}

// keptParts is what strip kept for Convert, still in the document.
type keptParts struct {
	footer *html.Node   // the first site footer, read for contact details
	asides []*html.Node // the page's sidebars, read for contact details
	forms  []*html.Node // forms in the content, written as stubs
}

// strip is Strip; with keepContact, the first site footer (an HTML5 one
// or a legacy #footer) and the page's sidebars (an <aside> or
// role=complementary outside an article, section or aside; a legacy
// #sidebar, .sidebar, .widget-area ...) are not dropped for being
// one, less what Strip drops inside them, and are returned, still in doc,
// for the caller to read for contact details (footer.go); with
// keepForms, forms that do not hold the page stay, with their fields,
// returned for the caller to write as stubs (form.go).
func strip(doc *html.Node, keepContact, keepForms bool) keptParts {
	st := stripper{keepContact: keepContact, keepForms: keepForms}
	st.walk(doc, false, false, false)
	for _, n := range st.drop {
		n.Parent.RemoveChild(n)
	}
	if len(st.legacy) > 0 && legacyLandmarks {
		st.dropLegacy(doc)
	}
	sh := st.sheet
	if sh != nil {
		sh.targets = st.targets
	}
	if sh != nil && !sh.over && (sh.hides || st.partial || (sh.fonts || sh.reveals) && len(st.quiet) > 0) {
		// The stylesheet may hide more, complete an inline style that hides
		// (left:-9999px on a .x{position:absolute}), reset a zero font size
		// or make a child of an invisible element visible: a second pass,
		// for the pages that have one, decides with it.
		if sh.strip(doc) {
			return st.kept
		}
	}
	for _, n := range st.quiet {
		if n.Parent != nil { // nil: inside a legacy element dropped
			n.Parent.RemoveChild(n)
		}
	}
	return st.kept
}

type stripper struct {
	kept keptParts
	// keepContact: keep the first site footer and the sidebars, see
	// strip; footerCand, asideCand: the element boilerplate just found to
	// be one.
	keepContact           bool
	footerCand, asideCand *html.Node
	// keepForms: keep forms and, inside them (inForm), their fields;
	// formCand: the form boilerplate just found.
	keepForms bool
	formCand  *html.Node
	inForm    int
	// inSidebar counts the kept sidebars being walked (see walk);
	// scoped, the articles, sections and asides (not <main>, which scopes
	// a header or footer but not a sidebar: Drupal's is in it).
	inSidebar, scoped int

	drop []*html.Node
	// quiet: text at font size zero or invisible, and invisible elements
	// with nothing visible inside, by inline styles; the second pass
	// decides them again when the sheet may show them.
	quiet []*html.Node
	// partial: an inline style has a declaration that hides with others.
	partial bool
	sheet   *sheet              // the page's <style> rules; nil when it has none
	css     int                 // style text budget left
	holders map[*html.Node]bool // see canFocus; nil until needed
	// targets: the ids the page's own links name (href="#id"): a visitor
	// who follows one puts the element in :target.
	targets map[string]bool
	decls   [8]decl

	// Legacy landmarks (see legacy.go). cand: the kinds the element
	// boilerplate just read names; seen: the kinds of HTML5 landmark the
	// page has; legacy: the elements named like boilerplate, outside
	// <main> and <article> (inMain counts those open), in document
	// order; open: the indexes in legacy of those being walked.
	cand   uint8
	seen   uint8
	inMain int
	legacy []legacyNode
	open   []int
}

// walk reads n's children. invisible: n is visibility:hidden; seen
// reports whether an element inside it is visible again.
func (st *stripper) walk(n *html.Node, sectioned, zero, invisible bool) (seen bool) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		switch c.Type {
		case html.CommentNode:
			st.drop = append(st.drop, c)
			continue
		case html.TextNode:
			if privateUse(c.Data) {
				c.Data = withoutPrivateUse(c.Data)
			}
			if (zero || invisible) && !blank(c.Data) {
				st.quiet = append(st.quiet, c)
			}
			continue
		case html.ElementNode:
		default:
			continue
		}
		drop, style := st.boilerplate(c, sectioned)
		z, inv := zero, invisible
		if !drop && style != "" && !document(c) {
			var cs cascade
			ds := appendDecls(st.decls[:0], style)
			cs.add(ds, prioInline, false)
			drop = cs.hides(c, style)
			z = cs.zeroFont(zero)
			inv = cs.invisible(invisible, c, style)
			for i := 0; i < len(ds) && !drop && !st.partial; i++ {
				st.partial = suspect(int(ds[i].prop), ds[i].value)
			}
		}
		sidebar := false
		switch {
		case drop:
		case st.footerCand == c:
			st.kept.footer = c
			st.seen |= kindContentinfo
		case st.asideCand == c:
			st.kept.asides = append(st.kept.asides, c)
			sidebar = true
		}
		form := !drop && st.formCand == c
		if form {
			st.kept.forms = append(st.kept.forms, c)
			st.inForm++
		}
		if drop {
			st.drop = append(st.drop, c)
			// A landmark its own markup hides (a cookie bar's <aside
			// style="display:none">, an off-canvas <nav hidden>) marks
			// nothing: the page shows its visitors no such landmark, so
			// a legacy name (#sidebar, #menu) still counts.
			if k := landmarkKind(c, sectioned); k != 0 && !st.concealed(c) {
				st.seen |= k
			}
			st.styles(c, followable(c))
			continue
		}
		if !inv && followable(c) {
			st.link(c)
		}
		s := sectioned
		html5, scope := false, false
		switch c.DataAtom {
		case atom.Article, atom.Main:
			html5 = c.Namespace == ""
			s = true
			scope = html5 && c.DataAtom == atom.Article
		case atom.Section, atom.Aside:
			s = true
			scope = c.Namespace == ""
		}
		// A sidebar kept for its contact details is read as if dropped
		// unread, as Strip drops it: its header or footer is its own
		// (HTML-AAM), and what it holds (a <nav>, an <article> widget)
		// neither marks a kind of landmark for the page (which would
		// switch a legacy name off) nor holds the page's main content.
		var seenOutside uint8
		if sidebar {
			s = true
			seenOutside = st.seen
			st.inSidebar++
		}
		cand := st.cand
		if html5 {
			cand |= kindMain
		}
		if cand&kindMain != 0 && len(st.open) > 0 && st.inSidebar == 0 {
			st.legacy[st.open[len(st.open)-1]].holdsMain = true
		}
		named := cand != 0 && cand&kindMain == 0 && st.inMain == 0 && !document(c)
		if named {
			outer := -1
			if len(st.open) > 0 {
				outer = st.open[len(st.open)-1]
			}
			st.open = append(st.open, len(st.legacy))
			st.legacy = append(st.legacy, legacyNode{n: c, kind: cand, outer: outer})
		}
		if html5 {
			st.inMain++
		}
		if scope {
			st.scoped++
		}
		if !inv {
			seen = seen || invisible
			st.walk(c, s, z, false)
		} else {
			mark := len(st.quiet)
			if st.walk(c, s, z, true) {
				seen = true
			} else {
				// Nothing inside is seen: the whole element goes (an image's alt
				// text too), not only its text.
				st.quiet = append(st.quiet[:mark], c)
			}
		}
		if html5 {
			st.inMain--
		}
		if scope {
			st.scoped--
		}
		if sidebar {
			st.inSidebar--
			st.seen = seenOutside | landmarkKind(c, sectioned)
		}
		if form {
			st.inForm--
		}
		if named {
			i := st.open[len(st.open)-1]
			st.open = st.open[:len(st.open)-1]
			if st.legacy[i].holdsMain && len(st.open) > 0 {
				st.legacy[st.open[len(st.open)-1]].holdsMain = true
			}
		}
	}
	return seen
}

// document: the html and body elements, which styles do not hide here: a
// page hidden until it loads (body{opacity:0} that a script lifts) is
// not text hidden in a page.
func document(n *html.Node) bool {
	return n.DataAtom == atom.Html || n.DataAtom == atom.Body
}

// styles reads the <style> elements in a dropped subtree: a browser
// applies them wherever they are, inside an inline <svg>, a <button>,
// <canvas> or <object> fallback, and a MathML <mtext> (where the parser
// makes it an HTML element) too. Only <template> content is inert.
// reach: a visitor can follow a link in n (see followable).
func (st *stripper) styles(n *html.Node, reach bool) {
	if reach {
		st.link(n) // a dropped <nav> still opens a :target tab
	}
	switch {
	case n.DataAtom == atom.Style && n.Namespace != "math":
		st.style(n)
		return
	case n.DataAtom == atom.Template && n.Namespace == "":
		return
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode {
			st.styles(c, reach && followable(c))
		}
	}
}

// followable reports whether a visitor can follow a link in n, as far as
// n itself tells: not when it is hidden, inert, out of the focus order by
// its inline style, <template> content or what the browser never renders. A dropped
// <nav> or <footer> is still seen by visitors: its links count.
func followable(n *html.Node) bool {
	return !unreachable(n) && !fallback(n)
}

// fallback reports whether the browser never renders n's content, though
// it renders n: <video> and <audio> fallback, a <datalist>'s options.
func fallback(n *html.Node) bool {
	switch {
	case n.Namespace != "":
		return false
	case n.DataAtom == atom.Video, n.DataAtom == atom.Audio, n.DataAtom == atom.Datalist:
		return true
	}
	return false
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return true
		}
	}
	return false
}

// link notes the id an in-page link (href="#id") names.
func (st *stripper) link(n *html.Node) {
	if n.DataAtom != atom.A && n.DataAtom != atom.Area || n.Namespace != "" {
		return
	}
	href := strings.TrimSpace(attr(n, "href"))
	if len(href) < 2 || href[0] != '#' {
		return
	}
	if st.targets == nil {
		st.targets = make(map[string]bool)
	}
	id := href[1:]
	st.targets[id] = true
	if u, err := url.PathUnescape(id); err == nil {
		st.targets[u] = true // the browser matches the decoded fragment too
	}
}

// style reads one <style> element, HTML or SVG. An HTML one holds one
// text node; an SVG one is parsed as markup, its CDATA sections and text
// between comments being separate text nodes, which a browser joins. They
// are joined into one builder, checked against the budget as it grows:
// joining them one by one was quadratic, seconds of CPU for a page of
// `a<g/>a<g/>…`.
func (st *stripper) style(n *html.Node) {
	if t := strings.TrimSpace(attr(n, "type")); t != "" && !is(t, "text/css") {
		return // not a stylesheet: browsers ignore it
	}
	var css string
	if c := n.FirstChild; c != nil && c.NextSibling == nil {
		if c.Type == html.TextNode {
			css = c.Data // the usual HTML <style>: no copy
		}
	} else {
		var b strings.Builder
		budget := maxSheetBytes
		if st.sheet != nil {
			budget = st.css
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != html.TextNode {
				continue
			}
			if b.Len()+len(c.Data) > budget {
				if st.sheet == nil {
					st.sheet = &sheet{}
				}
				st.sheet.over = true
				return
			}
			b.WriteString(c.Data)
		}
		css = b.String()
	}
	if css == "" {
		return
	}
	if st.sheet == nil {
		st.sheet, st.css = &sheet{}, maxSheetBytes
	}
	media := strings.TrimSpace(attr(n, "media"))
	st.sheet.addStyle(css, media != "" && !is(media, "all"), &st.css)
}

// boilerplate reports whether n is not content (see Strip), and returns
// its style attribute for the caller to read.
//
// It also sets st.cand to the legacy kinds n's id and classes name (see
// legacy.go).
func (st *stripper) boilerplate(n *html.Node, sectioned bool) (bool, string) {
	st.cand = 0
	st.footerCand, st.asideCand, st.formCand = nil, nil, nil
	switch n.DataAtom {
	case atom.Select, atom.Input, atom.Textarea:
		if st.inForm == 0 {
			return true, "" // a form's fields stay for its stub only
		}
	case atom.Script, atom.Style, atom.Noscript, atom.Template, atom.Iframe, atom.Object,
		atom.Embed, atom.Svg, atom.Canvas, atom.Nav, atom.Dialog,
		atom.Button, atom.Link, atom.Meta,
		// What the browser's own stylesheet hides or never renders: media
		// fallback content, ruby parentheses, a datalist's options.
		atom.Video, atom.Audio, atom.Rp, atom.Datalist:
		return true, ""
	case atom.Header, atom.Footer:
		if !sectioned {
			if !st.siteFooter(n) {
				return true, ""
			}
		}
	case atom.Aside:
		if !st.sidebar(n) {
			return true, ""
		}
	case atom.Form:
		if find(n, pageHolder) == nil {
			if !st.keepForms || st.inForm > 0 {
				return true, ""
			}
			st.formCand = n
		}
	}
	if n.Namespace == "svg" || n.Namespace == "math" {
		return true, ""
	}
	var style string
	for _, a := range n.Attr {
		switch a.Key {
		case "hidden", "popover":
			// A popover is overlay UI, hidden until opened, as a dialog is.
			return true, ""
		case "style":
			style = a.Val
		case "aria-hidden":
			if strings.EqualFold(strings.TrimSpace(a.Val), "true") {
				return true, ""
			}
		case "aria-label":
			if strings.EqualFold(strings.TrimSpace(a.Val), "AI Agent Notice") {
				return true, ""
			}
		case "class":
			hide, needs, kind := classScan(a.Val)
			if hide || needs != 0 && !st.canFocus(n, needs) {
				return true, ""
			}
			st.cand |= kind
		case "id":
			if k := idKind(strings.TrimSpace(a.Val)); k != kindMain || mainCandidate(n) {
				st.cand |= k
			}
		case "role":
			switch strings.ToLower(strings.TrimSpace(a.Val)) {
			case "contentinfo":
				if sectioned || !st.siteFooter(n) {
					return true, ""
				}
			case "complementary":
				if !st.sidebar(n) {
					return true, ""
				}
			case "navigation", "search", "banner", "dialog", "alertdialog":
				return true, ""
			case "main":
				st.cand |= kindMain
			}
		}
	}
	return false, style
}

// concealed reports whether n's own markup hides it from visitors: the
// hidden or popover attribute, aria-hidden, a class that hides it (as
// boilerplate reads one), or its inline style. The page's <style> rules
// are not read here: they are applied after the legacy names.
func (st *stripper) concealed(n *html.Node) bool {
	for _, a := range n.Attr {
		switch a.Key {
		case "hidden", "popover":
			return true
		case "aria-hidden":
			if strings.EqualFold(strings.TrimSpace(a.Val), "true") {
				return true
			}
		case "class":
			if hide, needs, _ := classScan(a.Val); hide || needs != 0 && !st.canFocus(n, needs) {
				return true
			}
		case "style":
			var cs cascade
			cs.add(appendDecls(st.decls[:0], a.Val), prioInline, false)
			if cs.hides(n, a.Val) || cs.invisible(false, n, a.Val) {
				return true
			}
		}
	}
	return false
}

// siteFooter reports whether n, a site footer, is the one strip keeps.
func (st *stripper) siteFooter(n *html.Node) bool {
	if !st.keepContact || st.kept.footer != nil || n.DataAtom == atom.Header && n.Namespace == "" {
		return false
	}
	st.footerCand = n
	return true
}

// sidebar reports whether strip keeps n, complementary content: a
// sidebar outside an article, section or aside (inside one it is a pull
// quote or a note, not the page's sidebar; HTML-AAM maps an aside in
// <body> or <main> to complementary, and Drupal's themes put the sidebar
// region in <main>), one inside a kept sidebar (a theme's widget: Twenty
// Twelve's are asides in a role=complementary div), read with it, or one
// inside the kept footer, read with the footer.
func (st *stripper) sidebar(n *html.Node) bool {
	switch {
	case !st.keepContact || n.Namespace != "":
		return false
	case st.inSidebar > 0:
		return true
	case st.scoped > 0:
		return false
	case st.kept.footer != nil && Attached(n, st.kept.footer):
		if !st.concealed(n) {
			st.seen |= kindComplementary // as when it was dropped
		}
		return true
	}
	st.asideCand = n
	return true
}

// hiddenClass reports whether a class list drops its element: the AHP
// notice, or a screen-reader-only class (whose rule lives in a stylesheet
// that is not read) unless another class in the list shows the element
// again for some visitors or in some state, as a show rule in a <style>
// does: Tailwind's not-sr-only with any variant (sm:not-sr-only, a label
// shown from the sm breakpoint up; focus:not-sr-only, a skip link), and
// Bootstrap's sr-only-focusable and visually-hidden-focusable (a skip
// link shown on keyboard focus). The states are taken as reachable here;
// classHides tells which the element needs.
func hiddenClass(list string) bool {
	hide, _ := classHides(list)
	return hide
}

// classHides is hiddenClass, and, when only a state of the element itself
// shows it again, the weakest state needed (stateFocus or
// stateFocusWithin; see sheet.reach): an element screen-reader-only, a
// clipped pixel, can take focus if it is focusable, or hold what is, but
// is never hovered or pressed (hover:not-sr-only), nor targeted.
func classHides(list string) (hide bool, needs uint8) {
	hide, needs, _ = classScan(list)
	return hide, needs
}

// classScan is classHides, and the legacy kinds the list's tokens name
// (see legacy.go), read in the same pass.
func classScan(list string) (hide bool, needs uint8, kind uint8) {
	srOnly := false
	var shown uint8 // 1: shown; else the weakest state bit that shows it
	for list != "" {
		var tok string
		tok, list = nextToken(list)
		switch tok {
		case "ahp-notice":
			return true, 0, 0
		case "sr-only", "visually-hidden", "screen-reader-text", "visuallyhidden":
			srOnly = true
		case "sr-only-focusable": // Bootstrap 3/4: :focus and :active
			shown = weakest(shown, stateFocus)
		case "visually-hidden-focusable":
			// Bootstrap 5: hidden by itself but for :focus or :focus-within
			// (its docs use it alone).
			srOnly = true
			shown = weakest(shown, stateFocusWithin)
		default:
			// A trailing '!' is Tailwind 4's !important (v3 leads with it).
			if t := strings.TrimSuffix(tok, "!"); strings.HasSuffix(t, "not-sr-only") {
				shown = weakest(shown, variantNeeds(t[:len(t)-len("not-sr-only")]))
			} else {
				kind |= classKind(tok)
			}
		}
	}
	switch {
	case !srOnly || shown == 1:
		return false, 0, kind
	case shown == stateFocus || shown == stateFocusWithin:
		return false, shown, kind
	}
	return true, 0, 0
}

// variantNeeds reads Tailwind variants ("md:focus:") as a requirement:
// 1 when none is a state of the element itself (a breakpoint; group-hover
// is an ancestor's), stateFocus or stateFocusWithin, or 0 when one can
// never be met (hover, active, target) or styles another box than the
// element (see otherBox).
func variantNeeds(variants string) uint8 {
	var needs uint8
	for variants != "" {
		var v string
		v, variants = cutVariant(variants)
		v = strings.TrimPrefix(v, "!")
		if otherBox(v) {
			return 0
		}
		needs |= userState(v) | selfState(v)
	}
	switch {
	case needs == 0:
		return 1
	case needs&^(stateFocus|stateFocusWithin) != 0:
		return 0
	case needs&stateFocus != 0:
		return stateFocus // focused, it has focus within too
	}
	return needs
}

// cutVariant returns the first variant of a list ("md:[&:focus]:") and
// the rest: an arbitrary variant's brackets may hold colons.
func cutVariant(s string) (v, rest string) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ':':
			if depth <= 0 {
				return s[:i], s[i+1:]
			}
		}
	}
	return s, ""
}

// otherBox reports whether a Tailwind variant styles another box than the
// element: its children (*), descendants (**), a pseudo-element, or an
// arbitrary selector where & is followed by a combinator or a
// pseudo-element ([&>p], [&_a], [&::after]; [&:focus] and [&] are the
// element itself, [@media…] a media query). Such a not-sr-only leaves the
// element itself a clipped pixel.
func otherBox(v string) bool {
	switch v {
	case "*", "**", "before", "after", "marker", "file", "placeholder", "selection",
		"first-letter", "first-line", "backdrop", "details-content":
		return true
	}
	if !strings.HasPrefix(v, "[&") {
		return false
	}
	inner := strings.TrimSuffix(v[2:], "]")
	return strings.ContainsAny(inner, " _>+~") || strings.Contains(inner, "::")
}

// selfState reads an arbitrary variant for the element itself
// ([&:focus]) as the state it needs (see variantNeeds), 0 for none.
func selfState(v string) uint8 {
	if !strings.HasPrefix(v, "[&") {
		return 0
	}
	a := funcStates("is", "*"+strings.TrimSuffix(v[2:], "]"), false, 0)
	switch {
	case a.free():
		return 0
	case a.met(stateFocusWithin):
		return stateFocusWithin
	case a.met(stateFocus | stateFocusWithin):
		return stateFocus
	}
	return stateHover // a state a hidden element never enters
}

// weakest returns whichever of two requirements (see variantNeeds) is
// the easiest to meet.
func weakest(a, b uint8) uint8 {
	rank := func(x uint8) int {
		switch x {
		case 1:
			return 3
		case stateFocusWithin:
			return 2
		case stateFocus:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// canFocus reports whether n meets needs (stateFocus: it can take focus;
// stateFocusWithin: it or an element inside can). Which elements hold
// something focusable is found once for the whole page, bottom up: a
// search under each element was quadratic in the nesting, and a bound on
// it let a page switch the check off.
func (st *stripper) canFocus(n *html.Node, needs uint8) bool {
	if focusable(n) {
		return true
	}
	if needs != stateFocusWithin {
		return false
	}
	if st.holders == nil {
		root := n
		for root.Parent != nil {
			root = root.Parent
		}
		st.holders = focusHolders(root)
	}
	return st.holders[n]
}

// focusHolders returns the elements under root that hold something
// focusable, with holdsFocusable's rules (subtrees a visitor never reaches
// are skipped), in one pass. The walk is iterative: hostile pages nest
// deeply.
func focusHolders(root *html.Node) map[*html.Node]bool {
	m := make(map[*html.Node]bool)
	c := root
	for {
		// Enter c's children unless c is an element nothing in which takes
		// focus.
		if c.FirstChild != nil && (c.Type != html.ElementNode || c == root || followable(c)) {
			c = c.FirstChild
			continue
		}
		// Leave c, and each ancestor whose last child it is: all they hold
		// has been seen.
		for {
			if c == root {
				return m
			}
			if c.Type == html.ElementNode && !unreachable(c) && (m[c] || focusable(c)) {
				m[c.Parent] = true
			}
			if c.NextSibling != nil {
				c = c.NextSibling
				break
			}
			c = c.Parent
		}
	}
}

func pageHolder(n *html.Node) bool {
	switch n.DataAtom {
	case atom.Main, atom.Article, atom.H1, atom.H2:
		return true
	}
	return false
}

// hasToken reports whether a white-space-separated list holds token.
func hasToken(list, token string) bool {
	for list != "" {
		var tok string
		tok, list = nextToken(list)
		if tok == token {
			return true
		}
	}
	return false
}

// Main returns the element holding the page's main content: the first
// <main> or role=main element, else the only <article>, else, in a page
// with no <article>, the element its theme names as the content (#content
// or #main, or the only .hentry or .post, or the only .entry-content; see
// legacy.go) if it holds at least half of the body's text, else <body>,
// else doc itself. Call it after Strip.
func Main(doc *html.Node) *html.Node {
	if m := find(doc, func(n *html.Node) bool {
		return n.DataAtom == atom.Main || strings.EqualFold(attr(n, "role"), "main")
	}); m != nil {
		return m
	}
	var articles int
	var article *html.Node
	find(doc, func(n *html.Node) bool {
		if n.DataAtom == atom.Article {
			articles++
			if article == nil {
				article = n
			}
		}
		return false
	})
	if articles == 1 {
		return article
	}
	root := find(doc, func(n *html.Node) bool { return n.DataAtom == atom.Body })
	if root == nil {
		root = doc
	}
	if articles == 0 && legacyLandmarks {
		if m := legacyMain(root); m != nil {
			return m
		}
	}
	return root
}

// BaseHref returns the href of the document's first <base> element, or "".
func BaseHref(doc *html.Node) string {
	if b := find(doc, func(n *html.Node) bool { return n.DataAtom == atom.Base && attr(n, "href") != "" }); b != nil {
		return attr(b, "href")
	}
	return ""
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// find returns the first element in document order (n included) for which
// match is true. The walk is iterative: hostile pages nest deeply.
func find(n *html.Node, match func(*html.Node) bool) *html.Node {
	for c := n; c != nil; {
		if c.Type == html.ElementNode && match(c) {
			return c
		}
		if c.FirstChild != nil {
			c = c.FirstChild
			continue
		}
		for c != n && c.NextSibling == nil {
			c = c.Parent
		}
		if c == n {
			return nil
		}
		c = c.NextSibling
	}
	return nil
}
