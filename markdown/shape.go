package markdown

import (
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// shape rewrites, in the main content about to be converted, what the
// converter would write in a way that loses its role:
//
//   - a <details>'s <summary>, the question of an FAQ entry, becomes a
//     heading one level below the heading it comes under (and one more
//     per <details> it is nested in; h6 at most), so that each entry
//     reads as a section of its own: an agent (or a splitter cutting the
//     Markdown at headings) keeps the question with its answer. Where a
//     heading cannot go, it is bold: a paragraph of its own in a list
//     item, definition or quote, inline in a table cell. A summary
//     holding a heading already, or no text, is left as it is;
//   - a <dt> is bold, as a term over its definition, unless it is bold
//     already or holds blocks;
//   - a table's <caption> is written before the table, not after it as
//     the table converter places it (not for a table in a table cell,
//     where blocks would break the outer table).
func shape(root *html.Node) {
	type op struct {
		n     *html.Node
		level int // summary: heading level; 0: bold paragraph; -1: bold inline
	}
	var ops []op
	var inline []*html.Node // the summaries being walked whose content is inline
	base := 1               // the page's title heads the Markdown (see Convert)
	details, cells, items := 0, 0, 0
	walkTree(root, func(n *html.Node) bool {
		if n.Type != html.ElementNode {
			return n.Type == html.DocumentNode
		}
		if n.Namespace != "" {
			return false
		}
		switch n.DataAtom {
		case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
			if details == 0 && cells == 0 && items == 0 {
				base = int(n.Data[1] - '0')
			}
			return false
		case atom.Details:
			details++
		case atom.Td, atom.Th, atom.Caption, atom.P, atom.A:
			cells++
		case atom.Li, atom.Dd, atom.Blockquote:
			items++
		case atom.Summary:
			if n.Parent == nil || n.Parent.DataAtom != atom.Details || firstChild(n.Parent, atom.Summary) != n || !plain(n) {
				break
			}
			switch {
			case cells > 0:
				ops = append(ops, op{n, -1})
			case items > 0:
				ops = append(ops, op{n, 0})
			default:
				ops = append(ops, op{n, min(6, base+details)})
			}
			cells++ // what it holds is inline
			inline = append(inline, n)
		case atom.Dt:
			if plain(n) && !bold(n) {
				if cells > 0 {
					ops = append(ops, op{n, -1})
				} else {
					ops = append(ops, op{n, 0})
				}
			}
			items++
		case atom.Table:
			if cells == 0 && n != root && n.Parent != nil {
				if c := firstChild(n, atom.Caption); c != nil {
					ops = append(ops, op{c, 0})
				}
			}
		}
		return true
	}, func(n *html.Node) {
		if n.Type != html.ElementNode || n.Namespace != "" {
			return
		}
		switch n.DataAtom {
		case atom.Details:
			details--
		case atom.Td, atom.Th, atom.Caption, atom.P, atom.A:
			cells--
		case atom.Li, atom.Dd, atom.Blockquote, atom.Dt:
			items--
		case atom.Summary:
			if len(inline) > 0 && inline[len(inline)-1] == n {
				inline = inline[:len(inline)-1]
				cells--
			}
		}
	})
	for _, o := range ops {
		n := o.n
		switch {
		case n.DataAtom == atom.Caption:
			// Before the table, as a paragraph.
			t := n.Parent
			t.RemoveChild(n)
			n.DataAtom, n.Data, n.Attr = atom.Div, "div", nil
			t.Parent.InsertBefore(n, t)
		case n.DataAtom == atom.Summary && o.level > 0:
			n.DataAtom, n.Data, n.Attr = headings[o.level-1], headings[o.level-1].String(), nil
		default:
			embolden(n, o.level == 0)
		}
	}
}

var headings = [6]atom.Atom{atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6}

// embolden puts n's content in <strong>; block: n becomes a paragraph
// (a summary) or stays the block it is (a dt); else n becomes a span
// followed by a space.
func embolden(n *html.Node, block bool) {
	s := &html.Node{Type: html.ElementNode, DataAtom: atom.Strong, Data: "strong"}
	for c := n.FirstChild; c != nil; c = n.FirstChild {
		n.RemoveChild(c)
		s.AppendChild(c)
	}
	n.AppendChild(s)
	n.Attr = nil
	switch {
	case block && n.DataAtom == atom.Summary:
		n.DataAtom, n.Data = atom.P, "p"
	case !block:
		n.DataAtom, n.Data = atom.Span, "span"
		n.AppendChild(&html.Node{Type: html.TextNode, Data: " "})
	}
}

func firstChild(n *html.Node, a atom.Atom) *html.Node {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && c.DataAtom == a && c.Namespace == "" {
			return c
		}
	}
	return nil
}

// plain reports whether n has text and holds only phrasing content: no
// heading (it is set apart already) and no block that a heading or bold
// text would run together.
func plain(n *html.Node) bool {
	text := false
	ok := true
	walkTree(n, func(c *html.Node) bool {
		switch {
		case !ok:
			return false
		case c.Type == html.TextNode:
			text = text || !blank(c.Data)
		case c.Type == html.ElementNode && c != n:
			switch c.DataAtom {
			case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.P, atom.Div,
				atom.Ul, atom.Ol, atom.Dl, atom.Table, atom.Pre, atom.Blockquote, atom.Details,
				atom.Section, atom.Article, atom.Header, atom.Footer, atom.Hr, atom.Figure:
				ok = false
				return false
			}
		}
		return true
	}, nil)
	return ok && text
}

// bold reports whether all of n's text is in one <strong> or <b>.
func bold(n *html.Node) bool {
	var b *html.Node
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		switch {
		case c.Type == html.TextNode && blank(c.Data):
		case c.Type == html.ElementNode && (c.DataAtom == atom.Strong || c.DataAtom == atom.B) && b == nil:
			b = c
		default:
			return false
		}
	}
	return b != nil
}
