package markdown

import (
	"bytes"
	"errors"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/JohannesKaufmann/html-to-markdown/v2/converter"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/base"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/commonmark"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/strikethrough"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/table"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// ErrEmpty is returned by Convert for a page with no text in its main
// content (an app shell that renders in the browser, say): Markdown of it
// would tell an agent less than the HTML does.
var ErrEmpty = errors.New("markdown: the page has no content to convert")

// newConverter builds the html-to-markdown converter: CommonMark plus GFM
// tables and strikethrough. It is safe for concurrent use (it locks only
// to read its options).
func newConverter() *converter.Converter {
	return converter.NewConverter(converter.WithPlugins(
		base.NewBasePlugin(),
		commonmark.NewCommonmarkPlugin(),
		table.NewTablePlugin(table.WithSpanCellBehavior(table.SpanBehaviorMirror)),
		strikethrough.NewStrikethroughPlugin(),
	))
}

// Convert turns an HTML page into Markdown: the main content only (see
// Strip and Main), links and images resolved against page (and the page's
// <base>) into absolute URLs, or into site-relative paths when page has no
// host; `javascript:`, `vbscript:` and `data:` links become plain text
// (and such images go). When the main content does
// not start with an h1, the page's <title> becomes the `# ` heading.
//
// contentType is the response's Content-Type (for the charset).
func (c *Converter) Convert(body []byte, contentType string, page *url.URL) ([]byte, error) {
	doc, err := Parse(body, contentType)
	if err != nil {
		return nil, err
	}
	title := Title(doc)
	baseURL := page
	if baseURL == nil {
		baseURL = &url.URL{Path: "/"}
	}
	if href := BaseHref(doc); href != "" {
		// A javascript: or data: base is ignored, as browsers ignore it:
		// every relative link would become one.
		if u, err := baseURL.Parse(strings.TrimSpace(href)); err == nil && !scriptOrDataURL(u.Scheme+":") {
			baseURL = u
		}
	}
	kept := strip(doc, true, true)
	footer := kept.footer
	if footer != nil && (footer.Parent == nil || !Attached(footer, doc)) {
		footer = nil // the stylesheet dropped it
	}
	absolute := page != nil && page.Host != ""
	var readOnly map[*html.Node]bool // the footer and sidebars: read for contact only
	if len(kept.forms) > 0 && (footer != nil || len(kept.asides) > 0) {
		readOnly = make(map[*html.Node]bool, len(kept.asides)+1)
		if footer != nil {
			readOnly[footer] = true
		}
		for _, a := range kept.asides {
			readOnly[a] = true
		}
	}
	for _, f := range kept.forms {
		attached, inReadOnly := placed(f, doc, readOnly)
		if !attached {
			continue
		}
		if inReadOnly {
			f.Parent.RemoveChild(f) // a newsletter box
			continue
		}
		stub := formStub(f, baseURL, absolute)
		if stub == "" {
			f.Parent.RemoveChild(f)
			continue
		}
		pre := &html.Node{Type: html.ElementNode, Data: "pre", DataAtom: atom.Pre}
		code := &html.Node{Type: html.ElementNode, Data: "code", DataAtom: atom.Code,
			Attr: []html.Attribute{{Key: "class", Val: "language-form"}}}
		code.AppendChild(&html.Node{Type: html.TextNode, Data: stub})
		pre.AppendChild(code)
		f.Parent.InsertBefore(pre, f)
		f.Parent.RemoveChild(f)
	}
	// The footer and sidebars are never part of the main content: out of
	// the document, each read for its contact details.
	var contact *html.Node
	if footer != nil {
		footer.Parent.RemoveChild(footer)
		contact = ContactDetails(footer)
	}
	var asides []*html.Node
	for _, a := range kept.asides {
		if a.Parent == nil || !Attached(a, doc) {
			continue // dropped by a stylesheet rule, inside a sidebar taken already, or in the footer
		}
		a.Parent.RemoveChild(a)
		asides = append(asides, a)
	}
	sidebars := SidebarContact(asides, contact)
	main := Main(doc)
	if resolveLinks(main, baseURL, absolute) {
		shape(main)
	}
	// Tables (the page's and its contact boxes') may render a few times
	// the page, not more.
	budget := 4*len(body) + 64<<10
	bound(main, 0, &budget)
	out, err := c.conv.ConvertNode(main)
	if err != nil {
		return nil, err
	}
	out = bytes.TrimSpace(out)
	if len(out) == 0 {
		return nil, ErrEmpty
	}
	out = c.appendContact(out, sidebarHeading, sidebars, baseURL, absolute, &budget)
	out = c.appendContact(out, footerHeading, contact, baseURL, absolute, &budget)
	if !utf8.Valid(out) {
		// Stray bytes in a page that claims UTF-8: the answer says
		// charset=utf-8, so they become U+FFFD as a browser shows them.
		out = bytes.ToValidUTF8(out, []byte("\uFFFD"))
	}
	if title != "" && !bytes.HasPrefix(out, []byte("# ")) {
		var b bytes.Buffer
		b.Grow(len(title) + len(out) + 4)
		b.WriteString("# ")
		b.WriteString(escapeHeading(title))
		b.WriteString("\n\n")
		b.Write(out)
		out = b.Bytes()
	}
	return append(out, '\n'), nil
}

// appendContact appends box, contact details read from a sidebar or the
// footer, to out under heading.
func (c *Converter) appendContact(out []byte, heading string, box *html.Node, base *url.URL, absolute bool, budget *int) []byte {
	if box == nil {
		return out
	}
	if resolveLinks(box, base, absolute) {
		shape(box) // a <dt> of the hours, bold as in the content
	}
	bound(box, 0, budget)
	md, err := c.conv.ConvertNode(box)
	if md = bytes.TrimSpace(md); err != nil || len(md) == 0 {
		return out
	}
	out = append(append(append(out, "\n\n"...), heading...), "\n\n"...)
	return append(out, md...)
}

// placed reports whether n is in doc's tree and whether it is inside one
// of roots, in one walk up (a page of thousands of forms and sidebars
// must not cost forms × sidebars walks).
func placed(n, doc *html.Node, roots map[*html.Node]bool) (attached, inRoot bool) {
	for ; n != nil; n = n.Parent {
		inRoot = inRoot || roots[n]
		if n == doc {
			return true, inRoot
		}
	}
	return false, inRoot
}

// Attached reports whether n is still in root's tree (Strip, or a rule
// of the page's stylesheet, may have dropped an element around it).
func Attached(n, root *html.Node) bool {
	for ; n != nil; n = n.Parent {
		if n == root {
			return true
		}
	}
	return false
}

// escapeHeading keeps a title on one line and stops a leading '#' from
// deepening the heading.
func escapeHeading(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if strings.HasPrefix(s, "#") {
		s = `\` + s
	}
	return s
}

// resolveLinks rewrites a/img/area URLs so that the Markdown does not
// depend on where the page was fetched from. It reports whether root
// holds an element shape rewrites (read in the same pass).
func resolveLinks(root *html.Node, baseURL *url.URL, absolute bool) (shaped bool) {
	find(root, func(n *html.Node) bool {
		var key string
		switch n.DataAtom {
		case atom.Summary, atom.Dt, atom.Caption:
			shaped = true
			return false
		case atom.A, atom.Area:
			if n.DataAtom == atom.A && n.Namespace == "" && !hasAttr(n, "href") {
				// A target, not a link (Drupal's skip-link target
				// <a id="main-content"></a> was "[]()"): its text, if any.
				n.DataAtom, n.Data, n.Attr = atom.Span, "span", nil
				return false
			}
			key = "href"
		case atom.Img:
			key = "src"
		default:
			return false
		}
		for i := 0; i < len(n.Attr); i++ {
			a := &n.Attr[i]
			if a.Key != key || a.Namespace != "" {
				continue
			}
			raw := strings.TrimSpace(a.Val)
			if scriptOrDataURL(raw) {
				// Not a place to go: keep the text, as a span.
				n.DataAtom, n.Data, n.Attr = atom.Span, "span", nil
				break
			}
			u, err := baseURL.Parse(raw)
			if err != nil {
				continue
			}
			if !absolute && u.Host == baseURL.Host && u.Scheme == baseURL.Scheme {
				u.Scheme, u.Host, u.User = "", "", nil
			}
			a.Val = u.String()
		}
		return false
	})
	return shaped
}

// scriptOrDataURL reports hrefs that run code or carry a document of
// their own (javascript:, vbscript:, data:), as a browser reads the
// scheme: leading C0 controls and spaces trimmed, tabs and newlines
// anywhere removed, any case ("java\tscript:" is javascript:).
func scriptOrDataURL(href string) bool {
	var scheme [len("javascript:")]byte
	n := 0
	for i := 0; i < len(href) && n < len(scheme); i++ {
		c := href[i]
		switch {
		case c == '\t' || c == '\n' || c == '\r' || (n == 0 && c <= ' '):
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		scheme[n] = c
		n++
		if c == ':' {
			break
		}
	}
	switch string(scheme[:n]) {
	case "javascript:", "vbscript:", "data:":
		return true
	}
	return false
}
