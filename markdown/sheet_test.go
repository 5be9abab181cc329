package markdown

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// visibleText converts page and reports which of words reached the
// Markdown.
func convertPage(t *testing.T, page string) string {
	t.Helper()
	out, err := New(Options{}).Convert([]byte(page), "text/html", nil)
	if err != nil && !errors.Is(err, ErrEmpty) {
		t.Fatal(err)
	}
	return string(out)
}

func checkText(t *testing.T, name, out string, gone, kept []string) {
	t.Helper()
	for _, w := range gone {
		if strings.Contains(out, w) {
			t.Errorf("%s: %q reached the Markdown:\n%s", name, w, out)
		}
	}
	for _, w := range kept {
		if !strings.Contains(out, w) {
			t.Errorf("%s: %q is missing:\n%s", name, w, out)
		}
	}
}

// TestInlineHidingDropped: each inline way to hide text from visitors
// keeps it from the agent; the near misses (a faded element, a nudge)
// stay.
func TestInlineHidingDropped(t *testing.T) {
	page := `<html><body><main><h1>Oak care</h1><p>Oil it once a year.</p>
<p style="opacity:0">HID01</p>
<p style="opacity:0.5">SHOWN01</p>
<div style="font-size:0">HID02<span>HID03</span><span style="font-size:14px">SHOWN02</span><span style="font-size:2em">HID04</span></div>
<p style="font-size:0px"><img src="/a.png" alt="SHOWN03"></p>
<p style="font:0/0 a">HID05</p>
<p style="position:absolute;left:-9999px">HID06</p>
<p style="position:relative;left:-10px">SHOWN04</p>
<h2 style="text-indent:-9999px;overflow:hidden">HID07</h2>
<p style="position:absolute;clip:rect(0,0,0,0);width:1px;height:1px">HID08</p>
<p style="clip-path:inset(50%)">HID09</p>
<p style="width:0;height:0;overflow:hidden">HID10</p>
<p style="transform:scale(0)">HID11</p>
<p style="transform:scale(0.9)">SHOWN05</p>
<p><span class="sr-only">HID12</span><span class="visually-hidden">HID13</span><a class="screen-reader-text" href="/x">HID14</a>SHOWN06</p>
<p class="sr-only-focusable">SHOWN07</p>
</main></body></html>`
	out := convertPage(t, page)
	checkText(t, "inline", out,
		[]string{"HID01", "HID02", "HID03", "HID04", "HID05", "HID06", "HID07", "HID08", "HID09", "HID10", "HID11", "HID12", "HID13", "HID14"},
		[]string{"Oil it once a year.", "SHOWN01", "SHOWN02", "SHOWN03", "SHOWN04", "SHOWN05", "SHOWN06", "SHOWN07"})
}

// TestStyleSheetHides: the page's own <style> rules hide as inline styles
// do, with the cascade's order; rules for some visitors or states only
// (media queries, combinators, pseudo-classes) show but do not hide.
func TestStyleSheetHides(t *testing.T) {
	page := `<html><head><style>
.x { display: none }
#y{visibility:hidden}
p.z, .w ,[data-agent] {opacity:0}
.tab { display:none } .tab.active { display:block }
.k { display:none !important } .k.shown { display:block }
.inl { display:none }
.cols { font-size: 0 } .col { font-size: 1rem }
.off { position: absolute; left: -9999px }
.sr { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0) }
/* .cmt { display:none } */ .cmt2/**/,/* a } */.cmt3 { display:none }
.a\:b { display:none }
[hidden] { display:none }
.pe::before, .pe:after { display:none }
.hov:hover, .list > .item, .nav .menu, :not(.q) .q2 { display:none }
@media print { .pm { display:none } }
@media screen and (max-width: 600px) { .mob { display:none } }
.resp { display:none } @media (min-width: 768px) { .md\:block { display:block } }
.s1 { display:none } .s1b > .s1 { display:block }
body { opacity: 0 }
</style></head><body><main><h1>Oak care</h1><p>Oil it once a year.</p>
<p class="x">HID01</p>
<p id="y">HID02</p>
<p class="z">HID03</p><div class="w">HID04</div><span data-agent="1">HID05</span>
<div class="z">SHOWN01</div>
<div class="tab">HID06</div><div class="tab active">SHOWN02</div>
<p class="k shown">HID07</p>
<p class="inl" style="display:block">SHOWN03</p>
<div class="cols"><span>HID08</span><span class="col">SHOWN04</span></div>
<p class="off">HID09</p>
<p class="sr">HID10</p>
<p class="cmt">SHOWN05</p><p class="cmt2">HID12</p><p class="cmt3">HID13</p>
<p class="a:b">HID11</p>
<p class="pe">SHOWN06</p>
<p class="hov">SHOWN07</p><div class="list"><p class="item">SHOWN08</p></div><p class="menu">SHOWN09</p>
<p class="pm">SHOWN10</p><p class="mob">SHOWN11</p>
<p class="resp md:block">SHOWN12</p>
<div class="s1b"><p class="s1">SHOWN13</p></div><p class="s1">SHOWN14</p>
</main></body></html>`
	out := convertPage(t, page)
	checkText(t, "sheet", out,
		[]string{"HID01", "HID02", "HID03", "HID04", "HID05", "HID06", "HID07", "HID08", "HID09", "HID10", "HID11", "HID12", "HID13"},
		// SHOWN14: a rule with a combinator shows what its rightmost
		// compound selector matches (.s1b > .s1 stands as .s1): erring
		// towards keeping text.
		[]string{"Oil it once a year.", "SHOWN01", "SHOWN02", "SHOWN03", "SHOWN04", "SHOWN05", "SHOWN06", "SHOWN07",
			"SHOWN08", "SHOWN09", "SHOWN10", "SHOWN11", "SHOWN12", "SHOWN13", "SHOWN14"})
}

// TestStyleSheetWherever: a <style> in the body, after what it hides, or
// inside a dropped element, applies; one with a media attribute shows only.
func TestStyleSheetWherever(t *testing.T) {
	page := `<html><body><header><style>.h1{display:none}</style>Site</header><main><h1>Oak care</h1><p>Oil it.</p>
<p class="h1">HID01</p><p class="b1">HID02</p><p class="m1">SHOWN01</p>
<style>.b1{opacity:0}</style><style media="print">.m1{display:none}</style>
</main></body></html>`
	checkText(t, "wherever", convertPage(t, page), []string{"HID01", "HID02"}, []string{"Oil it.", "SHOWN01"})

	// The sheet completes an inline style, which hides nothing alone.
	page = `<html><head><style>.abs{position:absolute}</style></head><body><main><h1>Oak care</h1><p>Oil it.</p>
<p class="abs" style="left:-9999px">HID01</p><p style="left:-9999px">SHOWN01</p></main></body></html>`
	checkText(t, "completed", convertPage(t, page), []string{"HID01"}, []string{"Oil it.", "SHOWN01"})
}

// TestStyleSheetBounds: a sheet over the bounds is not read (inline
// styles still count), and a page with many elements and rules converts
// quickly.
func TestStyleSheetBounds(t *testing.T) {
	var css strings.Builder
	for i := range maxSheetRules + 1 {
		css.WriteString(".r")
		css.WriteString(strings.Repeat("a", i%7))
		css.WriteString("{width:1px}")
	}
	page := `<html><head><style>` + css.String() + `.x{display:none}</style></head><body><main><h1>T</h1>` +
		`<p class="x">KEPT</p><p style="display:none">HID</p></main></body></html>`
	checkText(t, "over", convertPage(t, page), []string{"HID"}, []string{"KEPT"})

	page = `<html><head><style>` + strings.Repeat("*{display:block}", maxUnkeyedRules+1) + `.x{display:none}</style></head>` +
		`<body><main><h1>T</h1><p class="x">KEPT</p></main></body></html>`
	checkText(t, "unkeyed", convertPage(t, page), nil, []string{"KEPT"})

	page = `<html><head><style>` + strings.Repeat("/* padding */", maxSheetBytes/13+1) + `.x{display:none}</style></head>` +
		`<body><main><h1>T</h1><p class="x">KEPT</p></main></body></html>`
	checkText(t, "bytes", convertPage(t, page), nil, []string{"KEPT"})

	// Many rules on one class, many elements of that class: the matches
	// are bounded, then the sheet is given up, inline styles still count.
	css.Reset()
	for i := range maxSheetRules - 1 {
		fmt.Fprintf(&css, ".a.b%d{width:1px}", i)
	}
	page = `<html><head><style>` + css.String() + `.x{display:none}</style></head><body><main><h1>T</h1>` +
		strings.Repeat(`<p class="a x">KEPT</p>`, maxSheetMatches/maxSheetRules+1) +
		`<p style="font-size:0">HID</p></main></body></html>`
	checkText(t, "matches", convertPage(t, page), []string{"HID"}, []string{"KEPT"})
}

// FuzzStyleSheet: any stylesheet parses, and a later rule that shows the
// element with !important and the highest specificity wins over it.
func FuzzStyleSheet(f *testing.F) {
	for _, s := range []string{".x{display:none}", "@media print{p{opacity:0}}", `.a\:b,#t{font:0/0 a}`, "p{", "/*", `"`,
		"[a=\"b\" i]{clip-path:inset(50%)}", ".x:not(.y){display:none}", "@import url(x.css);p{width:0;height:0;overflow:hidden}",
		"[data-a^=b]{opacity:0}", ".x{visibility:hidden;transition:opacity 1s}", ".x{opacity:0}.x:hover{opacity:1}",
		"#t{visibility:hidden}.y{visibility:visible}", ".x{position:absolute;left:-9999px}.x:focus-within,.y:target{left:0}",
		".x{display:none}.x:is(:hover,.y){display:block}", ".x:not(:not(:is(.a:focus, [b=\")\"]:hover))){opacity:0}", ".x:where(:is(:is(:is(:is(:is(:target))))))"} {
		f.Add(s)
	}
	reset := strings.Repeat("#t", 300) + "{" + showAll + "}"
	f.Fuzz(func(t *testing.T, css string) {
		if strings.Contains(css, "<") {
			return // it would end the <style> element
		}
		page := `<html><head><style>` + css + `</style><style>` + reset + `</style></head>` +
			`<body><p id="t" class="x y" data-a="b">Visible text</p></body></html>`
		doc, err := html.Parse(strings.NewReader(page))
		if err != nil {
			t.Fatal(err)
		}
		Strip(doc)
		if !strings.Contains(Text(doc), "Visible text") {
			t.Fatalf("hidden despite the important reset: %q", css)
		}
	})
}

// BenchmarkMarkdownPageStyled is BenchmarkMarkdownPage with a 20 KB
// <style> in the head: 400 rules, 40 of them hiding, so that the second
// pass runs.
func BenchmarkMarkdownPageStyled(b *testing.B) {
	page := strings.Replace(string(benchPage(b)), "</head>", "<style>"+benchCSS()+"</style></head>", 1)
	c := New(Options{})
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Convert([]byte(page), "text/html", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStrip times Strip alone on the 72 KB page (no <style>, some
// style attributes) and on it with the 20 KB stylesheet of
// BenchmarkMarkdownPageStyled.
//
//	go test -run '^$' -bench Strip -benchmem ./markdown
func BenchmarkStrip(b *testing.B) {
	plain := benchPage(b)
	styled := []byte(strings.Replace(string(plain), "</head>", "<style>"+benchCSS()+"</style></head>", 1))
	for _, bc := range []struct {
		name string
		page []byte
	}{{"plain", plain}, {"styled", styled}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				doc, err := Parse(bc.page, "text/html")
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				Strip(doc)
			}
		})
	}
}

func benchCSS() string {
	var css strings.Builder
	for i := range 400 {
		fmt.Fprintf(&css, ".c%d, #i%d > p { margin: 0 auto; width: %dpx; font-size: 14px }\n", i, i, i)
		if i%10 == 0 {
			fmt.Fprintf(&css, ".h%d { position: absolute; left: -9999px }\n", i)
		}
	}
	return css.String()
}
