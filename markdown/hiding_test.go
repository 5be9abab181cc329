package markdown

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// TestStateRulesShowOnlyWhatCanEnterTheState: a rule for a state of the
// element itself shows it only if the element, hidden as it is, can enter
// that state. A display:none element is never hovered, active or focused,
// and :target needs a fragment no visitor arrives with; a link off screen
// takes keyboard focus (a skip link), and a transparent element can be
// hovered. A state of an ancestor (a dropdown under a hovered menu) still
// shows, as before.
func TestStateRulesShowOnlyWhatCanEnterTheState(t *testing.T) {
	page := `<html><head><style>
.hov{display:none} .hov:hover{display:block}
.act{display:none} .act:active{display:block}
.tgt{display:none} .tgt:target{display:block}
.fw{display:none} .fw:focus-within{display:block}
.fdiv{position:absolute;left:-9999px} .fdiv:focus{left:0}
.fvis{position:absolute;left:-9999px} .fvis:focus-visible{left:0}
.vh{visibility:hidden} a.vh:focus{visibility:visible}
.skip{position:absolute;left:-9999px} .skip:focus{left:0}
.skipnav{position:absolute;left:-9999px} .skipnav:focus-within{left:0}
.rev{opacity:0} .rev:hover{opacity:1}
.sub{display:none} li:hover > .sub{display:block}
.drop{display:none} .nav:hover .drop{display:block}
.fine{display:none} .fine:not(.x){display:block}
</style></head><body><main><h1>Oak care</h1><p>Oil it once a year.</p>
<p class="hov">HID01</p>
<p class="act">HID02</p>
<div class="tgt" id="t">HID03</div>
<div class="fw"><a href="/x">HID04</a></div>
<div class="fdiv">HID05</div>
<div class="fvis">HID06</div>
<a class="vh" href="/v">HID07</a>
<a class="skip" href="#c">SHOWN01</a>
<div class="skipnav"><a href="#c">SHOWN02</a></div>
<p class="rev">SHOWN03</p>
<ul><li>Menu<ul class="sub"><li>SHOWN04</li></ul></li></ul>
<div class="nav"><div class="drop">SHOWN05</div></div>
<span class="fdiv" tabindex="0">SHOWN06</span>
<p class="fine">SHOWN07</p>
<a class="fvis" href="/f">SHOWN08</a>
</main></body></html>`
	checkText(t, "states", convertPage(t, page),
		[]string{"HID01", "HID02", "HID03", "HID04", "HID05", "HID06", "HID07"},
		[]string{"Oil it once a year.", "SHOWN01", "SHOWN02", "SHOWN03", "SHOWN04", "SHOWN05", "SHOWN06", "SHOWN07", "SHOWN08"})
}

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

// TestFocusWithinBounded: looking for something focusable inside each
// element under a :focus-within rule counts towards the sheet's matches,
// so nested elements cannot make a page quadratic: over the bound, the
// sheet is given up (inline styles still count).
func TestFocusWithinBounded(t *testing.T) {
	// Each nested element looks through the leaves for the link after
	// them: over maxSheetMatches in all.
	const depth, leaves = 500, 5000
	page := `<html><head><style>.fw{position:absolute;left:-9999px} .fw:focus-within{left:0} .x{display:none}</style></head><body>` +
		`<p class="x">KEPT</p>` + strings.Repeat(`<div class="fw">`, depth) + strings.Repeat(`<i>x</i>`, leaves) + `<a href="/">link</a>` +
		strings.Repeat(`</div>`, depth) + `<p style="display:none">HID</p></body></html>`
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	Strip(doc)
	text := Text(doc)
	if !strings.Contains(text, "KEPT") || strings.Contains(text, "HID") {
		t.Errorf("want the sheet given up, inline styles read: %q", text[:min(len(text), 200)])
	}
}

// TestScreenReaderClassShownOnlyByFocus: a class that shows a
// screen-reader-only element again in a state of the element itself keeps
// it only if the element can enter that state: a focusable skip link, or
// a block holding one, takes focus; a span does not, and a clipped pixel
// is never hovered. Variants of other elements (group-hover) or of the
// screen (md) still keep it.
func TestScreenReaderClassShownOnlyByFocus(t *testing.T) {
	page := `<html><body><main><h1>Home</h1><p>Welcome.</p>
<a class="sr-only focus:not-sr-only" href="#c">SHOWN01</a>
<div class="visually-hidden visually-hidden-focusable"><a href="#c">SHOWN02</a></div>
<span class="sr-only group-hover:not-sr-only">SHOWN03</span>
<span class="sr-only md:not-sr-only">SHOWN04</span>
<span class="sr-only focus-within:not-sr-only"><a href="/y">SHOWN05</a></span>
<span class="sr-only md:focus:not-sr-only" tabindex="0">SHOWN06</span>
<span class="sr-only hover:not-sr-only focus:not-sr-only sm:not-sr-only">SHOWN07</span>
<span class="sr-only focus:not-sr-only">HID01</span>
<span class="sr-only hover:not-sr-only">HID02</span>
<a class="sr-only hover:not-sr-only" href="/x">HID03</a>
<div class="visually-hidden visually-hidden-focusable">HID04</div>
<span class="sr-only sr-only-focusable">HID05</span>
<span class="sr-only target:not-sr-only" id="t">HID06</span>
<span class="sr-only focus:hover:not-sr-only" tabindex="0">HID07</span>
</main></body></html>`
	checkText(t, "focus classes", convertPage(t, page),
		[]string{"HID01", "HID02", "HID03", "HID04", "HID05", "HID06", "HID07"},
		[]string{"Welcome.", "SHOWN01", "SHOWN02", "SHOWN03", "SHOWN04", "SHOWN05", "SHOWN06", "SHOWN07"})
}

// TestFocusableLookLinear: which elements hold something focusable is
// found once for the page, so nested elements that a focus-within class
// would show again cost no more than their number, and no bound lets a
// page switch the check off: after them, an element holding nothing
// focusable is still dropped, and the nested ones, which hold a link,
// are kept.
func TestFocusableLookLinear(t *testing.T) {
	const depth, leaves = 500, 5000
	page := `<html><body>` + strings.Repeat(`<div class="visually-hidden visually-hidden-focusable">`, depth) +
		strings.Repeat(`<i>x</i>`, leaves) + `<a href="/">link</a>` + strings.Repeat(`</div>`, depth) +
		`<div class="visually-hidden visually-hidden-focusable">LATE</div></body></html>`
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	Strip(doc)
	text := Text(doc)
	if strings.Contains(text, "LATE") || !strings.Contains(text, "link") {
		t.Errorf("want LATE dropped and the nested link kept: %q", text[max(0, len(text)-200):])
	}
}
