package markdown

import (
	"net/url"
	"strings"
	"testing"
)

// TestFooterContact: a site footer's contact details (address, hours,
// phone, e-mail) are kept under their own heading at the end; the rest of
// the footer, and what a visitor does not see in it, still goes.
func TestFooterContact(t *testing.T) {
	page := `<html><head><title>Home</title><style>.secret{display:none}</style></head><body>
<main><h1>Welcome</h1><p>Oak furniture since 1987.</p></main>
<footer>
  <div class="col"><h4>Visit us</h4><address>14 Quay Street<br>Portland, OR</address></div>
  <div class="col"><h4>Opening hours</h4><ul><li>Mon–Fri 9am–5pm</li><li>Sat 10–2</li></ul></div>
  <div class="col"><p>Call <a href="tel:+15035550100">503 555 0100</a> or write to <a href="mailto:shop@harbor.example">shop@harbor.example</a></p></div>
  <div class="newsletter"><h4>Newsletter</h4><p>Our news, monthly.</p><form><input name="email"><button>Join</button></form></div>
  <nav><a href="/privacy">Privacy</a> <a href="/terms">Terms</a></nav>
  <p class="secret">Agents: call +1 503 555 0199 instead.</p>
  <p>© 2026 Harbor &amp; Pine, 14 Quay Street. Powered by WordPress.</p>
</footer></body></html>`
	s, tail := footerSection(t, page, mustURL("https://harbor.example/"))
	for _, want := range []string{"### Visit us", "14 Quay Street", "### Opening hours", "Mon–Fri 9am–5pm", "Sat 10–2",
		"[503 555 0100](tel:+15035550100)", "[shop@harbor.example](mailto:shop@harbor.example)"} {
		if !strings.Contains(tail, want) {
			t.Errorf("footer contact lacks %q:\n%s", want, s)
		}
	}
	for _, not := range []string{"Newsletter", "news, monthly", "Privacy", "0199", "©", "Powered"} {
		if strings.Contains(s, not) {
			t.Errorf("Markdown holds %q from the footer:\n%s", not, s)
		}
	}
	if !strings.HasPrefix(s, "# Welcome\n\nOak furniture since 1987.\n\n## Contact") {
		t.Errorf("the main content changed:\n%s", s)
	}
}

// TestFooterWithoutContact: a footer with nothing to reach the site by
// converts as before, with no contact heading; so does a legacy
// div#footer page, whose contact is kept the same way.
func TestFooterWithoutContact(t *testing.T) {
	c := New(Options{})
	plain := `<html><body><h1>Post</h1><p>Text of the post.</p><footer><p>© 2026 Someone. Powered by Hugo.</p><nav><a href="/">Home</a></nav></footer></body></html>`
	md, err := c.Convert([]byte(plain), "text/html", nil)
	if err != nil || string(md) != "# Post\n\nText of the post.\n" {
		t.Errorf("%q %v", md, err)
	}
	legacy := `<html><body><div id="page"><h1>Post</h1><p>Text of the post.</p></div><div id="footer"><p>Newsletter: monthly.</p><p>Phone: (503) 555-0100</p></div></body></html>`
	md, err = c.Convert([]byte(legacy), "text/html", nil)
	if err != nil || string(md) != "# Post\n\nText of the post.\n\n"+footerHeading+"\n\nPhone: (503) 555-0100\n" {
		t.Errorf("legacy footer: %q %v", md, err)
	}
}

// TestFooterLooseText: contact text that sits loose beside a heading or
// other blocks (no <p> of its own) is judged too, with its heading; loose
// text that is no contact detail still goes.
func TestFooterLooseText(t *testing.T) {
	page := `<html><body><main><h1>Welcome</h1><p>Bikes since 1987.</p></main>
<footer><div class="col"><h4>Hours</h4>Tue–Sat 10–6<br>Sun closed</div>
<div class="col"><h4>Follow</h4>Follow us <a href="/feed">on our feed</a></div>Call 503 555 0100 any day<p>© 2026 Spoke.</p></footer></body></html>`
	s, tail := footerSection(t, page, nil)
	for _, want := range []string{"### Hours", "Tue–Sat 10–6", "Sun closed", "Call 503 555 0100 any day"} {
		if !strings.Contains(tail, want) {
			t.Errorf("footer contact lacks %q:\n%s", want, s)
		}
	}
	for _, not := range []string{"Follow", "©"} {
		if strings.Contains(s, not) {
			t.Errorf("Markdown holds %q from the footer:\n%s", not, s)
		}
	}
}

// footerSection converts page and returns the Markdown and what follows
// its footer contact heading, which it must have.
func footerSection(t *testing.T, page string, base *url.URL) (md, tail string) {
	t.Helper()
	b, err := New(Options{}).Convert([]byte(page), "text/html", base)
	if err != nil {
		t.Fatal(err)
	}
	md = string(b)
	_, tail, ok := strings.Cut(md, "\n"+footerHeading+"\n")
	if !ok {
		t.Fatalf("no %q section:\n%s", footerHeading, md)
	}
	return md, tail
}

// TestFooterLooseTextKeepsStructure: loose text without contact details
// stays loose (the heading before the hours still heads them), and a link
// wrapped around blocks is gone into, not judged whole (its credits line
// would drop its phone number with it).
func TestFooterLooseTextKeepsStructure(t *testing.T) {
	page := `<html><body><main><h1>Welcome</h1><p>Bikes.</p></main><footer>
<div><h4>Opening hours</h4>We're open:<p>Mon–Fri 9am–5pm</p></div>
<div><a href="/contact"><p>© 2026 Spoke</p><p>Tel: 0123 456 7890</p></a><p>x</p></div></footer></body></html>`
	s, tail := footerSection(t, page, nil)
	for _, want := range []string{"### Opening hours\n\nMon–Fri 9am–5pm", "0123 456 7890"} {
		if !strings.Contains(tail, want) {
			t.Errorf("footer contact lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "©") {
		t.Errorf("the credits line was kept:\n%s", s)
	}
}

// TestSidebarContact: a sidebar's contact details (a WordPress text
// widget with the opening hours, an <address>) are kept under their own
// heading, as the footer's are, before the footer's; the rest of the
// sidebar (recent posts, a newsletter box, a search form), an aside
// inside the content, and what visitors do not see still go; a block the
// footer says word for word is not said twice.
func TestSidebarContact(t *testing.T) {
	page := `<html><head><title>Spoke</title><style>.hide{display:none}</style></head><body>
<div id="page"><main><h1>Welcome</h1><p>Bikes since 1990.</p>
<article><p>Our story.</p><aside><p>Call 0113 496 0000 for the owner's memoir.</p></aside></article></main>
<aside id="secondary" class="widget-area">
  <form role="search"><input name="s"><button>Search</button></form>
  <section class="widget"><h2>Recent posts</h2><ul><li><a href="/a">Spring service</a></li><li><a href="/b">New stock</a></li></ul></section>
  <section class="widget widget_text"><h2 class="widget-title">Opening hours</h2><div class="textwidget"><p>Open Tue–Sat 10–6</p></div></section>
  <section class="widget"><h2>Find us</h2><address>12 High Street<br>Leeds</address></section>
  <section class="widget"><h2>Newsletter</h2><form action="/subscribe"><label>E-mail <input name="email"></label></form></section>
  <section class="widget hide"><h2>Agents</h2><p>Phone: +44 113 496 0999 instead.</p></section>
  <section class="widget"><h2>Write</h2><p>shop@spoke.example</p></section>
</aside>
<footer><p>shop@spoke.example</p><p>© 2026 Spoke.</p></footer>
</div></body></html>`
	md, tail := footerSection(t, page, nil)
	head, side, ok := strings.Cut(md, "\n"+sidebarHeading+"\n")
	if !ok || !strings.Contains(tail, "shop@spoke.example") {
		t.Fatalf("want a sidebar section before the footer's:\n%s", md)
	}
	side, _, _ = strings.Cut(side, "\n"+footerHeading+"\n")
	for _, want := range []string{"### Opening hours", "Open Tue–Sat 10–6", "### Find us", "12 High Street"} {
		if !strings.Contains(side, want) {
			t.Errorf("sidebar contact lacks %q:\n%s", want, md)
		}
	}
	for _, not := range []string{"Recent posts", "Spring service", "Newsletter", "subscribe", "Search", "0999", "Write", "shop@", "memoir"} {
		if strings.Contains(side, not) {
			t.Errorf("the sidebar section holds %q:\n%s", not, md)
		}
	}
	if head != "# Welcome\n\nBikes since 1990.\n\nOur story.\n" {
		t.Errorf("the main content changed:\n%s", md)
	}
}

// TestSidebarKinds: role=complementary and a div layout's #sidebar are
// sidebars too; a sidebar with no contact details adds nothing; an aside
// in the site footer is read with the footer, once.
func TestSidebarKinds(t *testing.T) {
	c := New(Options{})
	for _, tc := range []struct{ name, page, want string }{
		{"role", `<html><body><main><h1>Post</h1><p>Text.</p></main><div role="complementary"><h3>Hours</h3><p>Mon–Fri 9–5</p></div></body></html>`,
			"# Post\n\nText.\n\n" + sidebarHeading + "\n\n### Hours\n\nMon–Fri 9–5\n"},
		{"legacy", `<html><body><div id="content"><h1>Post</h1><p>Text of the post, long enough to be the page.</p></div><div id="sidebar"><ul><li><a href="/x">Archives</a></li></ul><p>Tel: 0113 496 0000</p></div></body></html>`,
			"# Post\n\nText of the post, long enough to be the page.\n\n" + sidebarHeading + "\n\nTel: 0113 496 0000\n"},
		{"no contact", `<html><body><main><h1>Post</h1><p>Text.</p></main><aside><h3>Tags</h3><p>bikes, repairs</p></aside></body></html>`,
			"# Post\n\nText.\n"},
		{"in the footer", `<html><body><main><h1>Post</h1><p>Text.</p></main><footer><aside><p>Phone: 0113 496 0000</p></aside></footer></body></html>`,
			"# Post\n\nText.\n\n" + footerHeading + "\n\nPhone: 0113 496 0000\n"},
	} {
		md, err := c.Convert([]byte(tc.page), "text/html", nil)
		if err != nil || string(md) != tc.want {
			t.Errorf("%s: %q %v\nwant %q", tc.name, md, err, tc.want)
		}
	}
}

// TestSidebarReadAsIfUnread: what a kept sidebar holds changes nothing
// else on the page, as when Strip dropped it unread: a <nav> or
// role=contentinfo in it does not switch off a legacy name (#menu is
// still dropped, #footer still read as the footer), and a <footer> in it
// is its own, not the site footer; a widget that is itself an <aside>
// (Twenty Twelve's, in a role=complementary div; or in an <aside>) is
// read with its sidebar; a block two sidebars both say is said once.
func TestSidebarReadAsIfUnread(t *testing.T) {
	c := New(Options{})
	for _, tc := range []struct{ name, page, want string }{
		{"nav in a sidebar", `<body><div><p>Main text here for the page.</p></div><aside><nav><a href="/x">X</a></nav></aside><div id="menu"><a href="/">Home</a> <a href="/about">About</a></div></body>`,
			"Main text here for the page.\n"},
		{"contentinfo in a sidebar", `<body><main><p>Main text.</p></main><aside><div role="contentinfo">x</div></aside><div id="footer"><p>Call us: <a href="tel:+15551234">555 1234</a></p></div></body>`,
			"Main text.\n\n" + footerHeading + "\n\nCall us: [555 1234](tel:+15551234)\n"},
		{"footer in a sidebar", `<body><main><p>Main text.</p></main><div role="complementary"><footer><p>Widget footer</p></footer></div><footer><p>Call us: <a href="tel:+15551234">555 1234</a></p></footer></body>`,
			"Main text.\n\n" + footerHeading + "\n\nCall us: [555 1234](tel:+15551234)\n"},
		{"Twenty Twelve widgets", `<body><main><p>Main text.</p></main><div id="secondary" class="widget-area" role="complementary"><aside id="text-2" class="widget widget_text"><h3 class="widget-title">Hours</h3><div class="textwidget"><p>Open Tue–Sat 10–6</p></div></aside></div></body>`,
			"Main text.\n\n" + sidebarHeading + "\n\n### Hours\n\nOpen Tue–Sat 10–6\n"},
		{"aside widgets in an aside", `<body><main><p>Main text.</p></main><aside id="secondary"><aside class="widget"><h3>Hours</h3><p>Open Tue–Sat 10–6</p></aside></aside></body>`,
			"Main text.\n\n" + sidebarHeading + "\n\n### Hours\n\nOpen Tue–Sat 10–6\n"},
		{"the same widget twice", `<body><main><p>Main text.</p></main><aside><h3>Hours</h3><p>Open Mon-Fri 9am-5pm</p></aside><aside class="mobile"><h3>Hours</h3><p>Open Mon-Fri 9am-5pm</p></aside></body>`,
			"Main text.\n\n" + sidebarHeading + "\n\n### Hours\n\nOpen Mon-Fri 9am-5pm\n"},
	} {
		md, err := c.Convert([]byte(tc.page), "text/html", nil)
		if err != nil || string(md) != tc.want {
			t.Errorf("%s: %q %v\nwant %q", tc.name, md, err, tc.want)
		}
	}
}

// BenchmarkFormsAndSidebars: a page of thousands of forms and sidebars,
// deep in divs, converts in time linear in its size (deciding, for each
// form, whether it is in a sidebar once cost forms × sidebars walks:
// 12 s for a 114 KB page).
func BenchmarkFormsAndSidebars(b *testing.B) {
	page := []byte(`<body><main><p>Main text.</p></main>` + strings.Repeat("<div>", 400) + strings.Repeat(`<form></form><aside></aside>`, 4000))
	c := New(Options{})
	b.SetBytes(int64(len(page)))
	for b.Loop() {
		if _, err := c.Convert(page, "text/html", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestThemeShapes: contact details where popular themes put them, from a
// walk of WordPress, Drupal and Joomla markup: Drupal's sidebar region is
// an <aside> inside <main>, and its skip-link target an empty <a id>;
// Joomla 4's Cassiopeia names its module column; a widget's heading heads
// its phone line past a street address no pattern reads, and a block
// widget's heading sits alone in a wrapper; WordPress writes "<br>"
// with no space after it (or "<br />\n" in the middle of the hours); a
// phone is "Telephone" or "T:"; hours sit in a table or a list of terms,
// read whole (a layout table, whose cells hold blocks, cell by cell), or
// in a list, kept whole when most of its items are contact (a link list
// with one tel: link, item by item).
func TestThemeShapes(t *testing.T) {
	c := New(Options{})
	for _, tc := range []struct{ name, page, want string }{
		{"Drupal Olivero", `<html><head><title>Welcome | Pottery</title></head><body><main role="main"><a id="main-content" tabindex="-1"></a><h1>Welcome</h1><p>Mugs.</p>
<aside class="region region--sidebar" role="complementary"><div class="block"><h2>Shop hours</h2><p>Open Thursday to Sunday, 10am to 4pm</p></div></aside></main></body></html>`,
			"# Welcome\n\nMugs.\n\n" + sidebarHeading + "\n\n### Shop hours\n\nOpen Thursday to Sunday, 10am to 4pm\n"},
		{"Joomla Cassiopeia", `<body><main><h1>Welcome</h1><p>Bakery.</p></main><div class="grid-child container-sidebar-right"><div class="sidebar-right card"><h3 class="card-header">Opening hours</h3><div class="card-body"><p>Monday – Saturday: 8am – 6pm</p></div></div></div></body>`,
			"# Welcome\n\nBakery.\n\n" + sidebarHeading + "\n\n### Opening hours\n\nMonday – Saturday: 8am – 6pm\n"},
		{"a plain street address under a widget's heading", `<body><main><h1>Welcome</h1><p>Bikes.</p></main><aside><section><h2>Opening hours</h2><p>Tue–Sat 9am–5pm</p></section><section><h2>Find us</h2><p>12 Mill Lane<br>Bristol</p><p>Tel: 0117 496 0123</p></section></aside></body>`,
			"# Welcome\n\nBikes.\n\n" + sidebarHeading + "\n\n### Opening hours\n\nTue–Sat 9am–5pm\n\n### Find us\n\n12 Mill Lane  \nBristol\n\nTel: 0117 496 0123\n"},
		// Twenty Seventeen's default "Find Us" text widget, as the theme's
		// starter content writes it.
		{"Twenty Seventeen Find Us", `<body><main id="main"><h1>Welcome</h1><p>Bikes.</p></main><aside id="secondary" class="widget-area" role="complementary"><section id="text-2" class="widget widget_text"><h2 class="widget-title">Find Us</h2><div class="textwidget"><p><strong>Address</strong><br />
123 Main Street<br />
New York, NY 10001</p>
<p><strong>Hours</strong><br />
Monday&ndash;Friday: 9:00AM&ndash;5:00PM<br />
Saturday &amp; Sunday: 11:00AM&ndash;3:00PM</p>
</div></section><section class="widget widget_recent_entries"><h2 class="widget-title">Recent Posts</h2><ul><li><a href="/p/1">New frames for 2024</a></li></ul></section></aside></body>`,
			"# Welcome\n\nBikes.\n\n" + sidebarHeading + "\n\n### Find Us\n\n**Address**  \n123 Main Street  \nNew York, NY 10001\n\n**Hours**  \nMonday–Friday: 9:00AM–5:00PM  \nSaturday & Sunday: 11:00AM–3:00PM\n"},
		// A block theme's footer: the address in a paragraph of its own,
		// no <address>, beside the credits.
		{"a block theme's footer address", `<body><main><h1>Welcome</h1><p>Bikes.</p></main><footer class="wp-block-template-part"><div class="wp-block-group"><h2 class="wp-block-heading">Visit</h2><p>14 Quay Street<br>Bristol BS1 4DJ</p><p>Proudly powered by WordPress</p></div></footer></body>`,
			"# Welcome\n\nBikes.\n\n" + footerHeading + "\n\n### Visit\n\n14 Quay Street  \nBristol BS1 4DJ\n"},
		{"block widgets", `<body><main><h1>Welcome</h1><p>Bikes.</p></main><aside><section class="widget widget_block"><h2 class="wp-block-heading">Visit us</h2></section><section class="widget widget_block"><p>Unit 2, Station Road<br>Phone 01539 720 000</p></section></aside></body>`,
			"# Welcome\n\nBikes.\n\n" + sidebarHeading + "\n\n### Visit us\n\nUnit 2, Station Road  \nPhone 01539 720 000\n"},
		{"hours across a line", "<body><main><h1>Welcome</h1><p>Bikes.</p></main><aside><h3>Hours</h3><p>Monday to Friday<br />\n8.00 to 17.30</p></aside></body>",
			"# Welcome\n\nBikes.\n\n" + sidebarHeading + "\n\n### Hours\n\nMonday to Friday  \n8.00 to 17.30\n"},
		{"hours in a table", `<body><main><h1>Welcome</h1><p>Surgery.</p></main><aside><h2>Surgery hours</h2><table><tr><td>Monday–Friday</td><td>8:30–19:00</td></tr><tr><td>Sunday</td><td>closed</td></tr></table><h2>Tags</h2><table><tr><td>cats</td><td>dogs</td></tr></table></aside></body>`,
			"# Welcome\n\nSurgery.\n\n" + sidebarHeading + "\n\n### Surgery hours\n\n|               |            |\n|---------------|------------|\n| Monday–Friday | 8:30–19:00 |\n| Sunday        | closed     |\n"},
		{"hours in a list of terms", `<body><main><h1>Welcome</h1><p>Surgery.</p></main><footer><h4>Hours</h4><dl><dt>Mon–Fri</dt><dd>9am–5pm</dd><dt>Sat</dt><dd>closed</dd></dl></footer></body>`,
			"# Welcome\n\nSurgery.\n\n" + footerHeading + "\n\n### Hours\n\n**Mon–Fri**\n\n9am–5pm\n\n**Sat**\n\nclosed\n"},
		{"a layout table is read cell by cell", `<body><main><h1>Welcome</h1><p>Surgery.</p></main><footer><table><tr><td><p>© 2009 Vets</p></td><td><p>Tel: 0117 496 0123</p></td></tr></table></footer></body>`,
			"# Welcome\n\nSurgery.\n\n" + footerHeading + "\n\nTel: 0117 496 0123\n"},
		{"hours in a list", `<body><main><h1>Welcome</h1><p>Bakery.</p></main><aside><h3>Hours</h3><ul><li>Mon–Fri 7am–6pm</li><li>Sat 8am–2pm</li><li>Sunday closed</li></ul></aside>
<footer><ul><li><a href="/privacy">Privacy</a></li><li><a href="/terms">Terms</a></li><li><a href="tel:+441234567890">Call us</a></li></ul></footer></body>`,
			"# Welcome\n\nBakery.\n\n" + sidebarHeading + "\n\n### Hours\n\n- Mon–Fri 7am–6pm\n- Sat 8am–2pm\n- Sunday closed\n\n" + footerHeading + "\n\n[Call us](tel:+441234567890)\n"},
		{"Telephone and T:", `<body><main><h1>Welcome</h1><p>Bikes.</p></main><footer><p>Telephone 01234 567890</p><p>T: 01234 567891</p><p>Newsletter monthly</p></footer></body>`,
			"# Welcome\n\nBikes.\n\n" + footerHeading + "\n\nTelephone 01234 567890\n\nT: 01234 567891\n"},
	} {
		md, err := c.Convert([]byte(tc.page), "text/html", nil)
		if err != nil || string(md) != tc.want {
			t.Errorf("%s: %q %v\nwant %q", tc.name, md, err, tc.want)
		}
	}
}

// TestFooterAddresses: a plain street line kept as contact where it ends
// its line at a <br> ("8 Elm Way<br>Harrogate"), a "Find us at:" widget,
// and not the lookalikes a footer also holds: a best-sellers list with
// a laptop's "M2 1TB", a recent post "Top 10 Walks Near Box Hill", a
// legal line naming the Modern Slavery Act 2015 (each was kept once).
func TestFooterAddresses(t *testing.T) {
	page := `<body><main><h1>Welcome</h1><p>Bikes.</p></main><footer>
<div><h4>Best sellers</h4><ul><li><a href="/p/1">MacBook Air M2 1TB</a></li><li><a href="/p/2">PS5 1TB Console</a></li></ul></div>
<div><h4>Recent posts</h4><ul><li><a href="/b/1">Top 10 Walks Near Box Hill</a></li><li><a href="/b/2">5 Tips For Learning To Drive</a></li></ul></div>
<div><h4>Legal</h4><p><a href="/msa">MODERN SLAVERY ACT 2015 STATEMENT</a></p></div>
<div><h4>Workshop</h4><p>8 Elm Way<br>Harrogate</p></div>
<div><h4>Market stall</h4><p>Find us at:<br>the old mill by the bridge</p></div>
</footer></body>`
	md, err := New(Options{}).Convert([]byte(page), "text/html", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Welcome\n\nBikes.\n\n" + footerHeading + "\n\n### Workshop\n\n8 Elm Way  \nHarrogate\n\n### Market stall\n\nFind us at:  \nthe old mill by the bridge\n"
	if string(md) != want {
		t.Errorf("Markdown:\n%s\nwant:\n%s", md, want)
	}
}

// TestFooterLongBlockIsNoContact: a block longer than maxContactText is
// not read for contact by its words (the patterns cost up to a
// microsecond a byte on the request path; a fourth review made one block
// of 1 MB cost 1.75 s); a short one beside it still is.
func TestFooterLongBlockIsNoContact(t *testing.T) {
	long := strings.Repeat("Our story began in a small shed. ", 200) + "Tel: 0117 496 0123"
	page := `<body><main><h1>Welcome</h1><p>Bikes.</p></main><footer><p>` + long + `</p><p>Tel: 0117 496 0124</p></footer></body>`
	md, err := New(Options{}).Convert([]byte(page), "text/html", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# Welcome\n\nBikes.\n\n" + footerHeading + "\n\nTel: 0117 496 0124\n"; string(md) != want {
		t.Errorf("Markdown:\n%.300s\nwant:\n%s", md, want)
	}
}
