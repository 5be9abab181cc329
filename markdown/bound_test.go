package markdown

import (
	"net/url"
	"strings"
	"testing"
)

// TestConversionBounded: html-to-markdown's output (and its time) grew
// with nesting and table grids, not with the page: 773 bytes of spanning
// cells made 85 MB in two minutes, 13 KB of nested quotes 1.6 MB in 13 s,
// one wide cell over many rows a copy of it per row. The Markdown of a
// hostile page stays within a few times its size (a line per line, each
// indented at most maxNesting times); tables that fit stay
// tables.
func TestConversionBounded(t *testing.T) {
	c := New(Options{})
	page := &url.URL{Scheme: "https", Host: "shop.example", Path: "/"}
	for name, body := range map[string]string{
		"spans": `<main><p>x</p><table><tr><td colspan=1000 rowspan=100>x</td></tr></table></main>`,
		// 1000 × 65534 × 63 wraps a 32-bit int negative: no table
		"wrapping": `<main><table><tr><td colspan=1000 rowspan=65534>` + strings.Repeat("w", 60) + `</td></tr></table></main>`,
		"quotes":   "<main>" + strings.Repeat("<blockquote>", 100) + strings.Repeat("<p>x</p>", 200) + "</main>",
		"lists":    "<main>" + strings.Repeat("<ul><li>", 60) + "<pre>" + strings.Repeat("\n", 5000) + "x</pre></main>",
		"padding":  "<main><table><tr><td>" + strings.Repeat("w", 20000) + "</td></tr>" + strings.Repeat("<tr><td>y", 2000) + "</table></main>",
		"filling":  "<main><table><tr>" + strings.Repeat("<td>x", 900) + "</tr>" + strings.Repeat("<tr><td>y", 3000) + "</table></main>",
	} {
		out, err := c.Convert([]byte(body), "text/html", page)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(out) > 16*len(body)+4096 { // lists indent each line by up to 2 × maxNesting
			t.Errorf("%s: %d bytes of HTML made %d bytes of Markdown", name, len(body), len(out))
		}
	}
	table := "<main><table><tr><th>Service</th><th>Price</th></tr>" + strings.Repeat("<tr><td>Puncture repair</td><td>£12</td></tr>", 2000) + "</table></main>"
	out, err := c.Convert([]byte(table), "text/html", page)
	if err != nil || !strings.Contains(string(out), "| Puncture repair | £12   |") {
		t.Errorf("a large ordinary table is no table any more: %v\n%.300s", err, out)
	}
	nested := "<main>" + strings.Repeat("<ul><li>x", 6) + "</main>"
	if out, _ := c.Convert([]byte(nested), "text/html", page); !strings.Contains(string(out), "          - x") {
		t.Errorf("lists 6 deep are lists:\n%s", out)
	}
}
