package concierge

import (
	"bufio"
	"bytes"
	"strings"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/caddy-ahp/caddy-ahp/contact"
	"github.com/caddy-ahp/caddy-ahp/markdown"
)

// page is one indexed page: its site path, title and text split into
// sections under its headings.
type page struct {
	path     string
	title    string
	sections []section
}

// section is the text under one heading (or before the first heading).
type section struct {
	heading string
	level   int // 1..6, 0 before the first heading
	// teaser is the path of another page that the heading is a link to
	// (a journal index listing its posts): the section only previews that
	// page, which should win over it.
	teaser string
	// footer marks the home page's footer (opening hours, address), the
	// one footer indexed: footers repeat on every page; and its sidebars'
	// contact details, which repeat as the footer does.
	footer bool
	// again marks the rest of a section after an FAQ entry: not listed
	// among its parent's contents a second time.
	again bool
	paras []para
}

// para is one paragraph (or list item, table row ...) of text.
type para struct {
	text string
	// teaser is the path of another page when the paragraph starts with a
	// link to it ("- [Contact](/contact.html): showroom address, phone"):
	// it describes that page. Its words also count for that page (anchor
	// text), and the page should win over the description.
	teaser string
	// head is the header row of the data table this paragraph is a row
	// of ("" if it is none): the row is a passage of its own, quoted
	// under its header ("Puncture repair | £12" answers one price).
	head string
	// address marks a paragraph of an <address> element: the site's
	// postal address, usually, which a "where are you?" is answered by
	// (a passage reading as one is marked too: see chunk).
	address bool
}

// extracted is what a fetched document yields: the page (nil if it is not
// to be indexed) and the same-site links to follow.
type extracted struct {
	page     *page
	links    []string
	noindex  bool
	nofollow bool
	// canonical is the page's rel=canonical path when it is same-site
	// and differs from the fetched path.
	canonical string
}

// resolver turns an href found on a page into a same-site path (with
// query), or reports false for other sites, other schemes and fragments.
type resolver func(href string) (string, bool)

// extractHTML reads an HTML page: robots meta, canonical link and links
// (from the whole page, navigation included: that is how pages are found),
// then the title and main content (markdown.Strip and markdown.Main: what
// an agent asking for Markdown gets), split into sections at headings.
// The home page's site footer is kept as a section of its own, and its
// sidebars' contact details as another. At most maxText bytes of text are
// kept.
func extractHTML(body []byte, contentType, path string, home bool, maxText int, resolve func(base string) resolver) extracted {
	var out extracted
	doc, err := markdown.Parse(body, contentType)
	if err != nil {
		return out
	}
	gq := goquery.NewDocumentFromNode(doc)
	gq.Find("meta[name]").Each(func(_ int, s *goquery.Selection) {
		name, _ := s.Attr("name")
		if !strings.EqualFold(name, "robots") {
			return
		}
		content, _ := s.Attr("content")
		content = strings.ToLower(content)
		out.noindex = out.noindex || strings.Contains(content, "noindex") || strings.Contains(content, "none")
		out.nofollow = out.nofollow || strings.Contains(content, "nofollow") || strings.Contains(content, "none")
	})
	base := path
	if href := markdown.BaseHref(doc); href != "" {
		if p, ok := resolve(path)(href); ok {
			base = p
		}
	}
	res := resolve(base)
	if href, ok := gq.Find(`link[rel="canonical"]`).First().Attr("href"); ok {
		if p, ok := res(href); ok && p != path {
			out.canonical = p
		}
	}
	if !out.nofollow {
		gq.Find("a[href], area[href]").Each(func(_ int, s *goquery.Selection) {
			if rel, _ := s.Attr("rel"); hasWord(rel, "nofollow") {
				return
			}
			href, _ := s.Attr("href")
			if p, ok := res(href); ok {
				out.links = append(out.links, p)
			}
		})
	}
	if out.noindex {
		return out
	}
	pg := &page{path: path, title: markdown.Title(doc)}
	var footer *html.Node
	var sidebars []*html.Node
	var structured []string
	if home {
		// The contact details the site states for search engines
		// (schema.org JSON-LD), read before Strip drops the scripts.
		gq.Find("script[type]").Each(func(_ int, s *goquery.Selection) {
			if t, _ := s.Attr("type"); isJSONLD(t) {
				structured = append(structured, s.Text())
			}
		})
		// The site footer (opening hours, address) and the sidebars' contact
		// details, as Markdown for agents chooses and reads them: less what
		// visitors do not see in them and their forms; read apart from the
		// main content below.
		footer, sidebars = markdown.StripKeepingContact(doc)
	} else {
		markdown.Strip(doc)
	}
	e := sectionizer{page: pg, max: maxText, resolve: res}
	e.walk(markdown.Main(doc), 0)
	e.flush()
	// The footer, then the sidebars' contact details, as far as the budget
	// goes; indexed in document order.
	var foot, side section
	used := e.text
	if footer != nil {
		if text, address := footerText(footer, res); text != "" && used+len(text) <= maxText {
			foot = section{footer: true, paras: []para{{text: text, address: address}}}
			used += len(text)
		} else {
			footer = nil // not indexed: it says nothing for the sidebars
		}
	}
	if text, address := sidebarText(sidebars, footer, res); text != "" && used+len(text) <= maxText {
		side = section{footer: true, paras: []para{{text: text, address: address}}}
		used += len(text)
	}
	// Then the structured data's, which a site may state nowhere else
	// (decision 35): a section as the footer is.
	var data section
	if text, address := contact.Structured(structured); text != "" && used+len(text) <= maxText {
		data = section{heading: structuredHeading, footer: true, paras: []para{{text: text, address: address}}}
	}
	pg.sections = append(pg.sections, side, foot, data) // dropEmpty takes out an empty one
	pg.sections = dropEmpty(contents(pg.sections))
	out.page = pg
	return out
}

// isJSONLD: a script type of JSON-LD, in any case, with parameters
// ("application/ld+json; charset=utf-8").
func isJSONLD(t string) bool {
	t, _, _ = strings.Cut(t, ";")
	return strings.EqualFold(strings.TrimSpace(t), "application/ld+json")
}

// structuredHeading heads the home page's contact details from its
// structured data.
const structuredHeading = "Contact details"

// footerText is the footer's text with its blocks and headings apart
// ("Visit us\n14 Quay Street", not "Visit us14 Quay Street"); address,
// whether it holds an <address> (one written as text is found in the
// passage that holds it, by chunk).
func footerText(footer *html.Node, res resolver) (text string, address bool) {
	fe := sectionizer{page: &page{}, max: 16 << 10, resolve: res}
	fe.walk(footer, 0)
	fe.flush()
	var lines []string
	for _, s := range fe.page.sections {
		if s.heading != "" {
			lines = append(lines, s.heading)
		}
		for _, p := range s.paras {
			lines = append(lines, p.text)
			address = address || p.address
		}
	}
	return strings.Join(lines, "\n"), address
}

// sidebarText reads the home page's sidebars (markdown.StripKeepingContact)
// for their contact details only (markdown.SidebarContact: the opening
// hours widget, not the recent posts and tag cloud beside it, which would
// match questions they do not answer), a block the footer or an earlier
// sidebar says word for word once, each block apart as in footerText.
// address: what is kept holds an <address> (footerText). footer is the footer indexed,
// nil for none; its text must have been read: its contact blocks are
// taken out of it to compare.
func sidebarText(sidebars []*html.Node, footer *html.Node, res resolver) (text string, address bool) {
	if len(sidebars) == 0 {
		return "", false
	}
	var said *html.Node
	if footer != nil {
		said = markdown.ContactDetails(footer)
	}
	box := markdown.SidebarContact(sidebars, said)
	if box == nil {
		return "", false
	}
	return footerText(box, res)
}

// contents gives a heading with no text of its own (a listing page's h1
// over its entries' h2s) the list of its subsections' headings as its
// text, so that the listing can be found and quoted as a whole.
func contents(ss []section) []section {
	for i := range ss {
		if len(ss[i].paras) > 0 || ss[i].heading == "" || ss[i].level == 0 {
			continue
		}
		var subs []string
		for j := i + 1; j < len(ss) && ss[j].level > ss[i].level && len(subs) < 20; j++ {
			if ss[j].heading != "" && !ss[j].again && (len(subs) == 0 || ss[j].level <= ss[i+1].level) {
				subs = append(subs, ss[j].heading)
			}
		}
		if len(subs) > 0 {
			ss[i].paras = []para{{text: strings.Join(subs, "; ")}}
		}
	}
	return ss
}

// sectionizer walks the main content and cuts it into sections and
// paragraphs.
type sectionizer struct {
	page    *page
	buf     strings.Builder
	text    int
	max     int
	resolve resolver
	// lead is the link the paragraph being collected starts with, "" if
	// none (or not yet known); leadDone once text has come before a link.
	lead     string
	leadDone bool
	// summary is the level a <summary> heads a section at inside the
	// <details> being read (0 outside one); resume is the section text
	// after that <details> belongs to again.
	summary int
	resume  *section
	// head is the header row (<th> cells only) of the table being read,
	// "" in a table without one (a layout table: its rows stay text).
	head string
	// row: the walk is in a row under head; inAddress, in an <address>.
	// Both hold for the whole element, not one paragraph: a <p> or <br>
	// inside an address flushes, and what follows is still in it.
	row       bool
	inAddress int
	// inCell: the walk is in a cell of a data table's row (or of its
	// header row), which stays one paragraph whatever blocks its cells
	// hold ("<td><p>Puncture repair</p></td><td>£12</td>" is one row).
	// A layout table's cells flush as any block: whole pages sit in them.
	inCell bool
	// cellAddress: an <address> was read in the row being collected.
	cellAddress bool
	// hasText: buf holds more than whitespace (kept as it is written: a
	// scan of buf at every cell would cost a row of n cells n²).
	hasText bool
}

// maxDepth bounds the walk: deeper markup (only hostile pages nest that
// far) is read as flat text.
const maxDepth = 512

func (e *sectionizer) walk(n *html.Node, depth int) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if e.text >= e.max {
			return
		}
		switch c.Type {
		case html.TextNode:
			if e.buf.Len() < e.max {
				e.buf.WriteString(c.Data)
				e.hasText = e.hasText || strings.TrimSpace(c.Data) != ""
			}
		case html.ElementNode:
			if level := headingLevel(c.DataAtom); level > 0 {
				e.flush()
				e.startSection(c, level)
				continue
			}
			if depth >= maxDepth {
				t := markdown.Text(c)
				e.buf.WriteString(t)
				e.hasText = e.hasText || strings.TrimSpace(t) != ""
				continue
			}
			switch {
			case c.DataAtom == atom.Details && e.summary == 0:
				// An FAQ entry: its <summary> is the question, heading a
				// section of its own one level below the one it is in, so
				// a question and its answer are one passage and the next
				// entry is another.
				e.flush()
				var outer section
				if e.resume != nil { // entries one after another
					outer = *e.resume
				} else if n := len(e.page.sections); n > 0 {
					last := e.page.sections[n-1]
					outer = section{heading: last.heading, level: last.level, again: true}
				}
				e.summary = min(outer.level+1, 6)
				before := len(e.page.sections)
				e.walk(c, depth+1)
				e.flush()
				e.summary = 0
				if len(e.page.sections) > before {
					e.resume = &outer
				}
			case c.DataAtom == atom.Summary && e.summary > 0:
				e.flush()
				e.startSection(c, e.summary)
			case c.DataAtom == atom.Br || c.DataAtom == atom.Hr:
				e.flush()
			case c.DataAtom == atom.Address:
				e.flush()
				e.inAddress++
				e.walk(c, depth+1)
				e.cellAddress = e.cellAddress || e.inCell
				e.flush()
				e.inAddress--
			case c.DataAtom == atom.Table:
				e.flush()
				outer := e.head
				e.head = ""
				e.walk(c, depth+1)
				e.flush()
				e.head = outer
			case c.DataAtom == atom.Tr && e.inCell:
				// A table inside a data row's cell: its rows are that
				// cell's text (its own rows would end the outer row).
				e.space()
				e.walk(c, depth+1)
			case c.DataAtom == atom.Tr:
				e.flush()
				header := headerRow(c)
				outerRow, outerCell := e.row, e.inCell
				e.row = !header && e.head != ""
				e.inCell = e.row || header
				e.walk(c, depth+1)
				e.inCell = false
				if header {
					e.head = collapse(e.buf.String())
				}
				e.flush()
				e.row, e.inCell = outerRow, outerCell
			case c.DataAtom == atom.Td || c.DataAtom == atom.Th:
				if e.hasText {
					e.buf.WriteString(" | ")
				}
				e.walk(c, depth+1)
			case c.DataAtom == atom.A:
				if !e.leadDone && strings.TrimSpace(e.buf.String()) == "" {
					if p, ok := e.resolve(attrOf(c, "href")); ok && p != e.page.path {
						e.lead = p
					}
					e.leadDone = true
				}
				e.walk(c, depth+1)
			case c.DataAtom == atom.Img:
				// Alt text is content a screen reader reads; keep it.
				if alt := attrOf(c, "alt"); alt != "" {
					e.buf.WriteString(" " + alt + " ")
					e.hasText = true
				}
			case markdown.IsBlock(c.DataAtom):
				e.flush()
				e.walk(c, depth+1)
				e.flush()
			default:
				e.walk(c, depth+1)
			}
		}
	}
}

func (e *sectionizer) startSection(h *html.Node, level int) {
	e.resume = nil
	s := section{heading: collapse(markdown.Text(h)), level: level}
	// A heading that is one link to another page previews that page.
	var links []*html.Node
	var find func(*html.Node)
	find = func(n *html.Node) {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && c.DataAtom == atom.A {
				links = append(links, c)
				continue
			}
			find(c)
		}
	}
	find(h)
	if len(links) == 1 && collapse(markdown.Text(links[0])) == s.heading {
		if p, ok := e.resolve(attrOf(links[0], "href")); ok && p != e.page.path {
			s.teaser = p
		}
	}
	e.text += len(s.heading)
	e.page.sections = append(e.page.sections, s)
}

// space keeps what follows apart from what buf holds, with one space.
func (e *sectionizer) space() {
	if b := e.buf.String(); b != "" && b[len(b)-1] != ' ' {
		e.buf.WriteByte(' ')
	}
}

// flush ends the paragraph being collected (in a data table's cell, it
// only keeps the cell's blocks apart).
func (e *sectionizer) flush() {
	if e.inCell {
		e.space()
		return
	}
	lead, head := e.lead, ""
	if e.row {
		head = e.head
	}
	address := e.inAddress > 0 || e.cellAddress
	e.lead, e.leadDone, e.cellAddress = "", false, false
	if e.buf.Len() == 0 {
		return
	}
	p := collapse(e.buf.String())
	e.buf.Reset()
	e.hasText = false
	if p == "" || e.text >= e.max {
		return
	}
	if room := e.max - e.text; len(p) > room {
		p = truncateUTF8(p, room)
	}
	e.text += len(p)
	if e.resume != nil {
		// Text after an FAQ entry is the enclosing section's again.
		e.page.sections = append(e.page.sections, *e.resume)
		e.resume = nil
	}
	if len(e.page.sections) == 0 {
		e.page.sections = append(e.page.sections, section{})
	}
	s := &e.page.sections[len(e.page.sections)-1]
	s.paras = append(s.paras, para{text: p, teaser: lead, head: head, address: address})
}

// headerRow reports whether a table row is a header: all its cells <th>.
func headerRow(tr *html.Node) bool {
	cells := 0
	for c := tr.FirstChild; c != nil; c = c.NextSibling {
		if c.Type != html.ElementNode {
			continue
		}
		if c.DataAtom != atom.Th {
			return false
		}
		cells++
	}
	return cells > 0
}

func headingLevel(a atom.Atom) int {
	switch a {
	case atom.H1:
		return 1
	case atom.H2:
		return 2
	case atom.H3:
		return 3
	case atom.H4:
		return 4
	case atom.H5:
		return 5
	case atom.H6:
		return 6
	}
	return 0
}

func attrOf(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key && a.Namespace == "" {
			return a.Val
		}
	}
	return ""
}

func hasWord(list, w string) bool {
	for _, f := range strings.Fields(list) {
		if strings.EqualFold(f, w) {
			return true
		}
	}
	return false
}

// collapse trims s and folds every run of white space into one space.
func collapse(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

func dropEmpty(ss []section) []section {
	out := ss[:0]
	for _, s := range ss {
		if len(s.paras) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// extractText reads a Markdown or plain text document (the content
// document, llms.txt): '#' lines are headings, the first h1 the title,
// paragraphs are separated by blank lines, list items are paragraphs of
// their own; link syntax becomes its text, and the link targets are
// followed.
func extractText(body []byte, path string, maxText int, res resolver) extracted {
	var out extracted
	pg := &page{path: path}
	e := sectionizer{page: pg, max: maxText, resolve: res}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 4096), 256<<10)
	inFence := false
	for sc.Scan() && e.text < maxText {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "```") || strings.HasPrefix(line, "~~~") {
			inFence = !inFence
			e.flush()
			continue
		}
		if inFence {
			e.buf.WriteString(line + " ")
			continue
		}
		if line == "" {
			e.flush()
			continue
		}
		if level := atxLevel(line); level > 0 {
			e.flush()
			text, links := plainMarkdown(strings.TrimSpace(strings.Trim(line[level:], "# ")))
			out.links = appendResolved(out.links, links, res)
			if level == 1 && pg.title == "" {
				pg.title = text
			}
			e.text += len(text)
			pg.sections = append(pg.sections, section{heading: text, level: level})
			continue
		}
		switch {
		case strings.HasPrefix(line, "- "), strings.HasPrefix(line, "* "), strings.HasPrefix(line, "+ "):
			e.flush()
			line = line[2:]
		case strings.HasPrefix(line, ">"):
			line = strings.TrimSpace(strings.TrimLeft(line, ">"))
		}
		text, links := plainMarkdown(line)
		out.links = appendResolved(out.links, links, res)
		if strings.HasPrefix(line, "[") && len(links) > 0 && strings.TrimSpace(e.buf.String()) == "" {
			if p, ok := res(links[0]); ok && p != path {
				e.lead = p
			}
		}
		e.buf.WriteString(text + " ")
	}
	e.flush()
	pg.sections = dropEmpty(pg.sections)
	out.page = pg
	return out
}

func appendResolved(dst, hrefs []string, res resolver) []string {
	for _, h := range hrefs {
		if p, ok := res(h); ok {
			dst = append(dst, p)
		}
	}
	return dst
}

// atxLevel is the level of a Markdown "# heading" line, or 0.
func atxLevel(line string) int {
	n := 0
	for n < len(line) && line[n] == '#' {
		n++
	}
	if n == 0 || n > 6 || (n < len(line) && line[n] != ' ' && line[n] != '\t') {
		return 0
	}
	return n
}

// plainMarkdown strips inline Markdown: [text](target) becomes text (the
// targets are returned), emphasis and code markers go. The next ']' and
// ')' are remembered, not searched for again at every '[' (a line of
// brackets would cost its length squared).
func plainMarkdown(s string) (string, []string) {
	var links []string
	var b strings.Builder
	nextClose, nextParen := -1, -1 // the next ']' and ')' at or after the last search; len(s): none
	next := func(cached *int, from int, c byte) int {
		if *cached < from {
			if j := strings.IndexByte(s[from:], c); j >= 0 {
				*cached = from + j
			} else {
				*cached = len(s)
			}
		}
		return *cached
	}
	for i := 0; i < len(s); {
		if s[i] == '[' {
			// Both searches start further on at each '[': the remembered
			// positions stay right.
			if close := next(&nextClose, i, ']'); close+1 < len(s) && s[close+1] == '(' {
				if end := next(&nextParen, close+1, ')'); end < len(s) {
					target := strings.TrimSpace(s[close+2 : end])
					if sp := strings.IndexAny(target, " \t"); sp >= 0 {
						target = target[:sp] // [x](/path "title")
					}
					links = append(links, strings.Trim(target, "<>"))
					b.WriteString(s[i+1 : close])
					i = end + 1
					continue
				}
			}
		}
		switch s[i] {
		case '*', '`':
			i++
			continue
		case '_':
			if (i == 0 || s[i-1] == ' ' || s[i-1] == '_') || (i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '_') {
				i++
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String(), links
}
