package markdown

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// TestStripKeepingContact: the document is left as Strip leaves it (on
// pages with no landmark inside a sidebar or the footer), and
// the sidebars come back whole, less what Strip drops inside them: those
// Convert reads (not one inside an article or section, nor one in a
// site footer; a legacy name only on a div layout), one inside another
// only once, none a stylesheet hides.
func TestStripKeepingContact(t *testing.T) {
	for _, c := range []struct {
		name, page string
		want       []string // each sidebar's text, white space collapsed (blocks run together)
	}{
		{"html5", `<body><header>Banner</header><main><p>Main.</p><aside>Note</aside></main>
<article><p>Post.</p><aside>Pull quote</aside></article><section><aside>Section note</aside></section>
<aside id="secondary" class="widget-area"><h2>Hours</h2><p>Open Tue-Sat 9-5</p><p hidden>Hidden</p><p class="sr-only">Screen reader</p>
<form><input value="q"><button>Search</button></form><nav><a href="/a">A link</a></nav></aside>
<footer><aside>In the footer</aside><p>Tel +44 1 234 5678</p></footer><footer><aside>In a second footer</aside></footer></body>`,
			[]string{"Note", "HoursOpen Tue-Sat 9-5"}}, // an aside in <main> is a sidebar (Drupal's are)
		{"nested", `<body><main><p>Main.</p></main><div role="complementary"><aside><p>Inner</p></aside><p>Outer</p></div><aside><p>Second</p></aside></body>`,
			[]string{"InnerOuter", "Second"}},
		{"legacy", `<body><div id="content"><p>Main text here.</p></div><div id="sidebar"><div class="widget-area"><p>Call +1 555 0100</p></div></div>
<div id="footer"><div class="sidebar">Footer widgets</div></div></body>`,
			[]string{"Call +1 555 0100"}},
		{"legacy with html5 aside", `<body><div id="content"><p>Main text here.</p></div><div class="sidebar">Legacy</div><aside>HTML5</aside></body>`,
			[]string{"HTML5"}},
		{"hidden by the stylesheet", `<head><style>#s{display:none}</style></head><body><main><p>Main.</p></main><aside id="s">Hidden sidebar</aside></body>`,
			nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			want, err := html.Parse(strings.NewReader(c.page))
			if err != nil {
				t.Fatal(err)
			}
			Strip(want)
			doc, _ := html.Parse(strings.NewReader(c.page))
			_, sidebars := StripKeepingContact(doc)
			if got, want := render(t, doc), render(t, want); got != want {
				t.Errorf("the document differs from Strip's:\n got %s\nwant %s", got, want)
			}
			var got []string
			for _, s := range sidebars {
				if s.Parent != nil {
					t.Errorf("a sidebar still in the document: %s", render(t, s))
				}
				got = append(got, strings.Join(strings.Fields(Text(s)), " "))
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("sidebars %q, want %q", got, c.want)
			}
		})
	}
}

func render(t *testing.T, n *html.Node) string {
	t.Helper()
	var b strings.Builder
	if err := html.Render(&b, n); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
