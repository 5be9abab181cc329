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
