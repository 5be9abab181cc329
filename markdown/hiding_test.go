package markdown

import "testing"

// TestSVGStyleSheet: a <style> inside an inline <svg> styles the whole
// document; a MathML one styles nothing.
func TestSVGStyleSheet(t *testing.T) {
	page := `<html><body><main><h1>Oak care</h1><p>Oil it once a year.</p>
<svg width="0" height="0"><style>.s1{display:none}</style></svg>
<svg><style><![CDATA[.s2{opacity:0}]]></style><style>/* a */<!-- b -->.s3{display:none}</style></svg>
<svg><foreignObject><style>.s4{display:none}</style></foreignObject></svg>
<math><style>.m1{display:none}</style></math>
<p class="s1">HID01</p><p class="s2">HID02</p><p class="s3">HID03</p><p class="s4">HID04</p>
<p class="m1">SHOWN01</p>
</main></body></html>`
	checkText(t, "svg style", convertPage(t, page),
		[]string{"HID01", "HID02", "HID03", "HID04"}, []string{"Oil it once a year.", "SHOWN01"})
}

// TestVisibleChildOfInvisibleParent: visibility is inherited, and a child
// may set it back to visible: that child is seen, the rest of the parent
// is not. display:none and opacity hide the whole subtree whatever the
// children say.
func TestVisibleChildOfInvisibleParent(t *testing.T) {
	body := `<main><h1>Oak care</h1><p>Oil it once a year.</p>
<div style="visibility:hidden">HID01<p>HID02</p><p style="visibility:visible">SHOWN01 <b>SHOWN02</b></p><img alt="HID03" src="/a.png"></div>
<div style="visibility:hidden"><div><p style="visibility:initial">SHOWN03</p><p style="visibility:inherit">HID04</p></div></div>
<div style="display:none"><p style="visibility:visible">HID05</p></div>
<div style="opacity:0"><p style="visibility:visible">HID06</p></div>
<div style="visibility:hidden"><p style="visibility:visible"><span style="visibility:hidden">HID07</span>SHOWN04</p></div>
<div style="visibility:hidden">HID08</div>
`
	// Inline styles alone (no <style>: one pass).
	page := `<html><body>` + body + `</main></body></html>`
	checkText(t, "inline", convertPage(t, page),
		[]string{"HID01", "HID02", "HID03", "HID04", "HID05", "HID06", "HID07", "HID08"},
		[]string{"Oil it once a year.", "SHOWN01", "SHOWN02", "SHOWN03", "SHOWN04"})

	// With the page's <style>: its rules hide a parent or show a child.
	page = `<html><head><style>.vh{visibility:hidden} .vv{visibility:visible} .gone{display:none}</style></head><body>` + body +
		`<div class="vh">HID11<span class="vv">SHOWN11</span><span>HID12</span></div>
<div style="visibility:hidden"><p class="vv">SHOWN12</p></div>
<div class="vh"><p style="visibility:visible">SHOWN13</p></div>
<div class="gone"><p class="vv">HID13</p></div>
</main></body></html>`
	checkText(t, "sheet", convertPage(t, page),
		[]string{"HID01", "HID02", "HID03", "HID04", "HID05", "HID06", "HID07", "HID08", "HID11", "HID12", "HID13"},
		[]string{"Oil it once a year.", "SHOWN01", "SHOWN02", "SHOWN03", "SHOWN04", "SHOWN11", "SHOWN12", "SHOWN13"})
}
