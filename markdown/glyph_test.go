package markdown

import (
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// TestIconGlyphsDropped: an icon font's glyphs (private-use characters)
// never reach the Markdown: not beside the text they decorate, not as an
// emphasis of their own, not as a paragraph. They did, as "*\uf095*".
func TestIconGlyphsDropped(t *testing.T) {
	page := "<html><head><title>Shop \uf015</title></head><body><main><h1>Shop</h1>" +
		"<p><i class=\"fa fa-phone\">\uf095</i> 0117 496 0123</p><p><span class=\"icon\">&#xe900;</span></p>" +
		"<p>Text \U000F0001more, caf\u00e9 \u2615 \uFB01ne.</p></main></body></html>"
	md, err := New(Options{}).Convert([]byte(page), "text/html", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# Shop\n\n0117 496 0123\n\nText more, caf\u00e9 \u2615 \uFB01ne.\n"; string(md) != want {
		t.Errorf("Markdown %q\nwant     %q", md, want)
	}
	for _, s := range []string{"\uf095", "\ue900", "\U000F0001", "\uf015"} {
		if privateUse(s) != true || withoutPrivateUse("a"+s+"b") != "ab" {
			t.Errorf("%q is private use: privateUse %v, without %q", s, privateUse(s), withoutPrivateUse("a"+s+"b"))
		}
	}
	// Neighbours of the ranges stay: the last letter before, the first
	// presentation form after, a BOM, U+FFFD.
	for _, s := range []string{"\ud7a3", "\uf900", "\ufb01", "\ufeff", "\ufffd", "\U000E0100", "\U0010FFFE"} {
		if got := withoutPrivateUse(s); got != s {
			t.Errorf("withoutPrivateUse(%q) = %q, want it kept", s, got)
		}
	}
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	if title := Title(doc); title != "Shop" {
		t.Errorf("Title %q, want Shop", title)
	}
	if strings.Contains(string(md), "*") {
		t.Errorf("an emphasis left empty by a glyph was written: %q", md)
	}
}

// FuzzPrivateUse holds the byte scan to the runes: text it passes holds
// no private-use character, and withoutPrivateUse keeps every other byte,
// invalid UTF-8 included.
func FuzzPrivateUse(f *testing.F) {
	for _, s := range []string{"", "abc", "\uf095 0117", "\ue900", "\U000F0001", "caf\u00e9", "\xee\x80", "\xef\xbb\xbf", "\xf4\x8f\xbf\xbd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := withoutPrivateUse(s)
		var kept strings.Builder
		for i, r := range s {
			if !isPrivateUse(r) {
				_, size := utf8.DecodeRuneInString(s[i:])
				kept.WriteString(s[i : i+size])
			} else if !privateUse(s) {
				t.Fatalf("privateUse(%q) = false, but it holds %U", s, r)
			}
		}
		if out != kept.String() {
			t.Fatalf("withoutPrivateUse(%q) = %q, want %q", s, out, kept.String())
		}
	})
}
