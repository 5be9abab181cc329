package markdown

import (
	"strings"
	"testing"
)

// TestFAQSummariesAreHeadings: each <summary> heads its entry, one level
// below the heading it comes under and one more per <details> around it.
func TestFAQSummariesAreHeadings(t *testing.T) {
	page := `<html><head><title>FAQ</title></head><body><main><h1>Help</h1><h2>Payments</h2>
<details><summary>Can I pay <em>cash</em>?</summary><p>No, card only.</p></details>
<details open><summary>Do you take vouchers?</summary><p>Yes.</p>
 <details><summary>Which ones?</summary><p>Cyclescheme.</p></details></details>
<details><summary>After a nested one</summary><p>Same level.</p></details>
<h3>Parking</h3><details><summary>Can I park?</summary><p>No.</p></details>
<details><summary><h4>Already a heading</h4></summary><p>Kept.</p></details>
<details><summary>   </summary><p>No question.</p></details>
<details><p>No summary.</p></details>
<details><summary>First</summary><summary>Second summary</summary><p>x</p></details>
</main></body></html>`
	out := convertPage(t, page)
	for _, want := range []string{
		"## Payments\n\n### Can I pay *cash*?\n\nNo, card only.\n",
		"### Do you take vouchers?\n\nYes.\n\n#### Which ones?\n\nCyclescheme.\n",
		"### After a nested one\n\nSame level.",
		"### Parking\n\n#### Can I park?\n\nNo.",
		"#### Already a heading\n\nKept.",
		"No question.", "No summary.",
		"#### First\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "# Second summary") || strings.Contains(out, "**Second summary") {
		t.Errorf("only a details' first summary is its question:\n%s", out)
	}
}

// TestSummaryWhereNoHeadingGoes: in a list, a definition or a quote the
// question is a bold paragraph; in a table cell, bold inline (a block
// would break the table); no heading before: under the page title.
func TestSummaryWhereNoHeadingGoes(t *testing.T) {
	page := `<html><head><title>T</title></head><body><main>
<details><summary>Top question</summary><p>Top answer.</p></details>
<ul><li><details><summary>Listed question</summary>Listed answer.</details></li></ul>
<blockquote><details><summary>Quoted question</summary>Quoted answer.</details></blockquote>
<table><tr><th>Item</th><th>Notes</th></tr><tr><td>Pump</td><td><details><summary>More</summary>Track pump</details></td></tr></table>
</main></body></html>`
	out := convertPage(t, page)
	for _, want := range []string{
		"# T\n\n## Top question\n\nTop answer.",
		"- **Listed question**\n  \n  Listed answer.",
		"> **Quoted question**",
		"| Pump | **More** Track pump |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, out)
		}
	}
}

// TestDeepDetails: the level stops at h6, and deep nesting takes no
// time.
func TestDeepDetails(t *testing.T) {
	page := `<main><h5>Deep</h5>` + strings.Repeat(`<details><summary>Q</summary>`, 250) + "a" + strings.Repeat(`</details>`, 250) + `</main>`
	out := convertPage(t, page)
	if !strings.Contains(out, "###### Q") || strings.Contains(out, "####### ") {
		t.Errorf("levels past h6:\n%.400s", out)
	}
}

func TestDefinitionTermsAreBold(t *testing.T) {
	page := `<main><h1>Glossary</h1><dl>
<dt>Bottom bracket</dt><dd>The bearing the cranks turn in.</dd>
<dt><b>Already bold</b></dt><dd>x</dd>
<dt><p>Block term</p></dt><dd>y</dd>
<dt>Headset <em>(steerer)</em></dt><dd>z</dd>
</dl></main>`
	out := convertPage(t, page)
	for _, want := range []string{
		"**Bottom bracket**\n\nThe bearing the cranks turn in.",
		"**Already bold**\n\nx", "Block term\n\ny",
		"**Headset *(steerer)***",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "****") {
		t.Errorf("bold twice:\n%s", out)
	}
}

// TestCaptionBeforeTable: a table's caption reads before it, as in the
// page; a table in a table cell keeps its caption inside.
func TestCaptionBeforeTable(t *testing.T) {
	page := `<main><h1>Prices</h1><p>Intro.</p><table><caption>Service menu (from <b>March</b>)</caption>
<tr><th>Service</th><th>Price</th></tr><tr><td>Full</td><td>£140</td></tr></table><p>After.</p></main>`
	out := convertPage(t, page)
	if !strings.Contains(out, "Intro.\n\nService menu (from **March**)\n\n| Service | Price |") {
		t.Errorf("the caption must come before its table:\n%s", out)
	}
	nested := `<main><table><tr><td><table><caption>Inner</caption><tr><td>a</td></tr></table></td></tr></table></main>`
	if out := convertPage(t, nested); !strings.Contains(out, "Inner") {
		t.Errorf("nested table lost its caption:\n%s", out)
	}
	// The table is the main content itself: nothing goes outside it.
	role := `<table role="main"><caption>Cap</caption><tr><td>a</td></tr></table>`
	if out := convertPage(t, role); !strings.Contains(out, "Cap") {
		t.Errorf("a main table lost its caption:\n%s", out)
	}
}
