package markdown

import (
	"strconv"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// html-to-markdown's output, and its time, grow with what a page nests
// and spans, not with its size: every line of a list or quote is prefixed
// once per level, and re-written at each; a table is a grid of rows ×
// columns, each cell padded to its column's widest and a spanning cell
// copied into every cell it covers. A few KB of hostile markup (cells of
// colspan and rowspan 1000, 400 nested quotes) took minutes and GBs per
// request. bound keeps both proportional to the page before conversion.

// maxNesting bounds lists and quotes within each other; deeper ones are
// read as plain blocks.
const maxNesting = 6

// bound flattens what would nest deeper than maxNesting, and tables whose
// grid would render over *budget bytes (taken from it), into blocks.
func bound(n *html.Node, depth int, budget *int) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type != html.ElementNode {
			continue
		}
		d := depth
		switch c.DataAtom {
		case atom.Ul, atom.Ol, atom.Menu, atom.Blockquote:
			if d++; d > maxNesting {
				rename(c, atom.Div)
			}
		case atom.Li:
			if p := c.Parent.DataAtom; p != atom.Ul && p != atom.Ol && p != atom.Menu {
				rename(c, atom.Div) // its list was flattened
			}
		case atom.Table:
			if cost := tableCost(c, *budget); cost > *budget {
				flattenTable(c)
			} else {
				*budget -= cost
			}
		}
		bound(c, d, budget)
	}
}

func rename(n *html.Node, a atom.Atom) {
	n.DataAtom, n.Data = a, a.String()
}

// maxColumns bounds a rendered table's width.
const maxColumns = 1000

// tableCost estimates the bytes html-to-markdown renders of table (its
// rows, not nested tables'), stopping once over limit: rows (with those
// rowspans add) × (the columns' widest cells and their separators), plus
// the copies of spanning cells. In int64: one cell of colspan 1000 and
// rowspan 65534 overflows a 32-bit int with 33 bytes of text.
func tableCost(table *html.Node, limit int) int {
	var colMax []int64
	var rows, extra, width, widths, copies int64
	over := int64(limit)
	for _, tr := range ownRows(table, nil) {
		rows++
		col := 0
		for cell := tr.FirstChild; cell != nil; cell = cell.NextSibling {
			if cell.Type != html.ElementNode || (cell.DataAtom != atom.Td && cell.DataAtom != atom.Th) {
				continue
			}
			cs, rs := span(cell, "colspan", 1000), span(cell, "rowspan", 65534)
			if col+cs > maxColumns {
				return limit + 1
			}
			n := int64(cellText(cell, limit))
			for j := col; j < col+cs; j++ {
				if j == len(colMax) {
					colMax = append(colMax, 0)
				}
				if n > colMax[j] {
					widths += n - colMax[j]
					colMax[j] = n
				}
			}
			col += cs
			extra = max(extra, int64(rs-1))
			if copies += int64(cs) * int64(rs) * (n + 3); copies > over {
				return limit + 1
			}
		}
		width = max(width, int64(col))
		if cost := (rows+extra)*(widths+3*width) + copies; cost > over {
			return limit + 1
		}
	}
	return int((rows+extra)*(widths+3*width) + copies)
}

// ownRows appends table's rows: its tr elements not inside a nested table.
func ownRows(n *html.Node, rows []*html.Node) []*html.Node {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type != html.ElementNode || c.DataAtom == atom.Table {
			continue
		}
		if c.DataAtom == atom.Tr {
			rows = append(rows, c)
			continue
		}
		rows = ownRows(c, rows)
	}
	return rows
}

// span reads a colspan or rowspan as browsers clamp it.
func span(cell *html.Node, key string, most int) int {
	v, err := strconv.Atoi(strings.TrimSpace(attr(cell, key)))
	if err != nil || v < 1 {
		return 1
	}
	return min(v, most)
}

// cellText is the bytes of text in n, counted up to limit.
func cellText(n *html.Node, limit int) int {
	total := 0
	for c := n.FirstChild; c != nil && total <= limit; c = c.NextSibling {
		if c.Type == html.TextNode {
			total += len(c.Data)
		} else {
			total += cellText(c, limit-total)
		}
	}
	return total
}

// flattenTable renders table as blocks: a row a paragraph, its cells
// apart.
func flattenTable(table *html.Node) {
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != html.ElementNode || c.DataAtom == atom.Table {
				continue
			}
			switch c.DataAtom {
			case atom.Thead, atom.Tbody, atom.Tfoot, atom.Caption, atom.Colgroup:
				rename(c, atom.Div)
			case atom.Tr:
				rename(c, atom.P)
			case atom.Td, atom.Th:
				rename(c, atom.Span)
				c.AppendChild(&html.Node{Type: html.TextNode, Data: " "})
			}
			walk(c)
		}
	}
	walk(table)
	rename(table, atom.Div)
}
