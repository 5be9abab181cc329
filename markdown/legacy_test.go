package markdown

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// kubrick is a single post in WordPress's old default theme (2005-2010):
// divs only, no ARIA roles.
const kubrick = `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN">
<html><head><title>Going tubeless &raquo; Kettle Journal</title></head>
<body class="single postid-12">
<div id="page">
<div id="header"><div id="headerimg"><h1><a href="/">Kettle Journal</a></h1><div class="description">SITENAME tagline</div></div></div>
<div id="menu"><a href="/">Home</a> | <a href="/services/">Services</a> | <a href="/blog/">Journal</a></div>
<div id="content" class="widecolumn">
 <div class="navigation"><div class="alignleft"><a href="/old">&laquo; Older post</a></div><div class="alignright"></div></div>
 <div class="post hentry" id="post-12">
  <h2>Going tubeless: a guide</h2>
  <div class="entry"><p>Tubeless tyres seal small punctures themselves.</p><p>You need 60 ml of sealant per tyre.</p></div>
  <div class="sharedaddy sd-sharing-enabled"><h3 class="sd-title">SHARE01 Share this:</h3><ul><li><a href="#">Facebook</a></li></ul></div>
  <p class="postmetadata">Filed under Maintenance.</p>
 </div>
 <h3 id="comments">COMMENTS01 3 Responses</h3>
 <ol class="commentlist"><li>COMMENTS02 Great tips, thanks! Dave</li></ol>
 <div id="respond"><h3>COMMENTS03 Leave a Reply</h3><form action="/wp-comments-post.php"><textarea></textarea></form></div>
</div>
<div id="sidebar"><ul><li><h2>SIDEBAR01 Categories</h2><ul><li><a href="/c/m">Maintenance</a></li></ul></li>
 <li><h2>SIDEBAR02 Archives</h2><ul><li><a href="/2023">2023</a></li></ul></li></ul></div>
<hr>
<div id="footer"><p>FOOTER01 Kettle Journal is proudly powered by WordPress</p></div>
</div>
</body></html>`

func TestLegacyLayoutKubrick(t *testing.T) {
	out := convertPage(t, kubrick)
	checkText(t, "kubrick", out,
		[]string{"Kettle Journal](", "SITENAME", "Services", "SHARE01", "Facebook", "COMMENTS01", "COMMENTS02", "COMMENTS03", "SIDEBAR01", "SIDEBAR02", "FOOTER01"},
		[]string{"# Going tubeless » Kettle Journal\n", "## Going tubeless: a guide", "seal small punctures", "60 ml of sealant", "Filed under Maintenance."})
	if !strings.HasPrefix(out, "# Going tubeless") {
		t.Errorf("the page title must head the Markdown, not the site name:\n%s", out)
	}
}

// twentyTen: WordPress's 2010 default theme: divs with ARIA roles. The
// roles already drop the banner, menu, widget areas and footer; the
// comments sit inside role=main and go by name.
const twentyTen = `<html><head><title>Hello | Site</title></head><body>
<div id="wrapper" class="hfeed">
 <div id="header"><div id="masthead"><div id="branding" role="banner"><h1 id="site-title"><a href="/">SITENAME</a></h1></div>
  <div id="access" role="navigation"><div class="menu"><ul><li><a href="/about">MENU01 About</a></li></ul></div></div></div></div>
 <div id="main">
  <div id="container"><div id="content" role="main">
   <div id="post-1" class="post-1 post type-post hentry"><h1 class="entry-title">Hello world</h1>
    <div class="entry-content"><p>Welcome to the workshop.</p></div></div>
   <div id="comments"><h3 id="comments-title">COMMENTS01 One Response</h3><ol class="commentlist"><li>COMMENTS02 Hi</li></ol></div>
  </div></div>
  <div id="primary" class="widget-area" role="complementary"><ul class="xoxo"><li class="widget-container">SIDEBAR01</li></ul></div>
 </div>
 <div id="footer" role="contentinfo"><div id="colophon">FOOTER01</div></div>
</div></body></html>`

func TestLegacyLayoutTwentyTen(t *testing.T) {
	checkText(t, "twenty ten", convertPage(t, twentyTen),
		[]string{"SITENAME", "MENU01", "COMMENTS01", "COMMENTS02", "SIDEBAR01", "FOOTER01"},
		[]string{"# Hello world", "Welcome to the workshop."})
}

// TestLegacyLayoutBlogger: Blogger's classic templates put the posts in a
// .widget too (div.widget.Blog): .widget is not a boilerplate name.
func TestLegacyLayoutBlogger(t *testing.T) {
	page := `<html><head><title>Post</title></head><body>
<div id="outer-wrapper">
 <div id="header-wrapper"><div class="header section"><div class="widget Header"><h1>SITENAME</h1></div></div></div>
 <div id="content-wrapper">
  <div id="main-wrapper"><div class="main section" id="main"><div class="widget Blog" id="Blog1">
   <div class="post hentry"><h3 class="post-title">A post</h3><div class="post-body entry-content">Body of the post.</div></div>
   <div class="comments" id="comments"><h4>COMMENTS01 2 comments:</h4></div>
  </div></div></div>
  <div id="sidebar-wrapper"><div class="sidebar section" id="sidebar"><div class="widget BlogArchive"><h2>SIDEBAR01 Archive</h2></div></div></div>
 </div>
 <div id="footer-wrapper"><div class="footer section">FOOTER01</div></div>
</div></body></html>`
	checkText(t, "blogger", convertPage(t, page),
		[]string{"SITENAME", "COMMENTS01", "SIDEBAR01", "FOOTER01"},
		[]string{"### A post", "Body of the post."})
}

// TestLegacyOnlyWhereHTML5IsSilent: a name counts only for a kind of
// landmark the page does not mark itself, and never inside <main> or
// <article>.
func TestLegacyOnlyWhereHTML5IsSilent(t *testing.T) {
	// The page has a <nav>: its #menu is something else and stays. It
	// has no <aside>: #sidebar goes.
	page := `<html><body><nav><a href="/">NAV01</a></nav>
<div id="menu"><a href="/a">KEPT01</a> <a href="/b">Lunch</a></div>
<div id="sidebar">SIDEBAR01</div>
<div id="content"><h1>Dishes</h1><p>Text.</p></div>
<footer>FOOTER01</footer><div id="footer">KEPT02</div></body></html>`
	st := stripped(t, page)
	checkText(t, "mixed", st, []string{"NAV01", "SIDEBAR01", "FOOTER01"}, []string{"KEPT01", "KEPT02", "Text."})

	// Inside <main> and <article>, nothing goes by name: a modern page's
	// content is what it was.
	page = `<html><body><header>SITE</header><main><h1>Post</h1><p>Text.</p>
<div class="sidebar">KEPT01 a boxed aside</div><div id="comments">KEPT02</div><div class="share">KEPT03</div>
<article><div id="footer">KEPT04</div></article></main>
<div id="sidebar">SIDEBAR01</div></body></html>`
	checkText(t, "main", stripped(t, page), []string{"SITE", "SIDEBAR01"}, []string{"Text.", "KEPT01", "KEPT02", "KEPT03", "KEPT04"})
}

// TestLegacyHiddenLandmarkIsSilent: a landmark the page hides by its own
// markup says nothing of the page's layout: a cookie bar's <aside
// style="display: none;"> (Moove GDPR's) leaves a Divi-like page's
// #sidebar a sidebar, an off-canvas <nav hidden> leaves #menu a menu.
// Both were switched off, so the sidebar's archives and the menu's links
// stayed in the content, and the sidebar's opening hours had no contact
// section.
func TestLegacyHiddenLandmarkIsSilent(t *testing.T) {
	page := `<html><body><nav class="mobile" hidden><a href="/">NAV01</a></nav>
<div id="menu"><a href="/a">MENU01</a> <a href="/b">Shop</a></div>
<div id="content"><h1>Bikes</h1><p>Text.</p></div>
<div id="sidebar"><div class="et_pb_widget"><h4>Opening hours</h4><p>Mon–Fri 9am–5pm</p></div><div class="et_pb_widget"><h4>ARCHIVE01 Archives</h4><ul><li><a href="/2023">2023</a></li></ul></div></div>
<aside id="moove_gdpr_cookie_info_bar" class="moove-gdpr-info-bar-hidden" aria-label="GDPR Cookie Banner" style="display: none;"><p>COOKIE01 This website uses cookies.</p></aside></body></html>`
	checkText(t, "hidden landmarks", stripped(t, page), []string{"NAV01", "MENU01", "ARCHIVE01", "COOKIE01", "Opening hours"}, []string{"Text."})
	md, err := New(Options{}).Convert([]byte(page), "text/html", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# Bikes\n\nText.\n\n" + sidebarHeading + "\n\n### Opening hours\n\nMon–Fri 9am–5pm\n"; string(md) != want {
		t.Errorf("Markdown:\n%s\nwant:\n%s", md, want)
	}
	// visibility:hidden hides it as well as display:none.
	invisible := strings.Replace(page, `style="display: none;"`, `style="visibility: hidden"`, 1)
	checkText(t, "an invisible aside", stripped(t, invisible), []string{"ARCHIVE01", "COOKIE01"}, []string{"Text."})
	// A landmark visitors see still switches the name off, as before.
	shown := strings.Replace(page, ` style="display: none;"`, "", 1)
	checkText(t, "a shown aside", stripped(t, shown), []string{"COOKIE01"}, []string{"ARCHIVE01", "Text."})

	// The same bar inside the site footer, which Markdown keeps for its
	// contact details (an aside there is read with it).
	inFooter := strings.Replace(strings.Replace(page, `<aside id="moove`, `<footer><p>Tel: 0117 496 0123</p><aside id="moove`, 1), `</aside>`, `</aside></footer>`, 1)
	md, err = New(Options{}).Convert([]byte(inFooter), "text/html", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# Bikes\n\nText.\n\n" + sidebarHeading + "\n\n### Opening hours\n\nMon–Fri 9am–5pm\n\n" + footerHeading + "\n\nTel: 0117 496 0123\n"; string(md) != want {
		t.Errorf("with the bar in the footer, Markdown:\n%s\nwant:\n%s", md, want)
	}
}

// TestLegacyNamesAreWhole: whole ids and class tokens, any case; a token
// that only contains a name is not it.
func TestLegacyNamesAreWhole(t *testing.T) {
	page := `<html><body>
<div id="SideBar">GONE01</div><div class="x NavBar y"><a href="/">GONE02</a></div><div class="Share-Buttons">GONE03</div>
<div id="sidebar-toggle">KEPT01</div><div class="navbar-brand">KEPT02</div><div class="shared-drive">KEPT03</div>
<div id="footer-note">KEPT04</div><div class="post-meta">KEPT05</div><div id="headers">KEPT06</div>
<p>Body text.</p></body></html>`
	checkText(t, "names", stripped(t, page),
		[]string{"GONE01", "GONE02", "GONE03"},
		[]string{"KEPT01", "KEPT02", "KEPT03", "KEPT04", "KEPT05", "KEPT06", "Body text."})
}

// TestLegacyMenuOfDishes: a navigation name drops only a block that is
// mostly short links with no heading.
func TestLegacyMenuOfDishes(t *testing.T) {
	page := `<html><body><div id="header"><h1>Trattoria</h1></div>
<div id="nav"><a href="/">Home</a> · <a href="/menu">Menu</a> · <a href="/book">Book</a></div>
<div id="menu"><h2>Our menu</h2><p>Pappardelle with wild boar ragù, 14 euros. <a href="/allergens">Allergens</a></p></div>
<div id="footer">FOOTER01</div></body></html>`
	checkText(t, "dishes", convertPage(t, page),
		[]string{"Trattoria", "Home", "Book", "FOOTER01"},
		[]string{"## Our menu", "Pappardelle with wild boar", "[Allergens](/allergens)"})
}

// TestLegacyNeverEmpties: names that would leave the page with no text
// are not applied; an element named like boilerplate that holds the
// content stays.
func TestLegacyNeverEmpties(t *testing.T) {
	cases := []struct{ name, page string }{
		{"all in a sidebar", `<html><body><div id="header">Trattoria</div><div class="sidebar"><h1>Dishes</h1><p>KEPT01 Pappardelle.</p></div></body></html>`},
		{"header wraps content", `<html><body><div id="header"><h1>Logo</h1><div id="content"><p>KEPT01 The text.</p></div></div><div id="sidebar">SIDEBAR01</div></body></html>`},
		{"footer wraps main", `<html><body><div id="footer"><main><p>KEPT01 The text.</p></main></div></body></html>`},
		{"only comments", `<html><body><div id="comments"><p>KEPT01 Guestbook entry.</p></div></body></html>`},
	}
	for _, c := range cases {
		checkText(t, c.name, convertPage(t, c.page), []string{"SIDEBAR01"}, []string{"KEPT01"})
	}
}

// TestLegacyMain: the theme's content element is the main content when
// the page has no <main>, role=main or <article>.
func TestLegacyMain(t *testing.T) {
	cases := []struct {
		name, page string
		gone, kept []string
	}{
		{"#content holds the sidebar",
			`<body><div id="wrap"><div class="promo">PROMO01</div><div id="content"><h2>Post</h2><p>Text one.</p><div class="sidebar">SIDEBAR01</div><p>Text two.</p></div></div></body>`,
			[]string{"PROMO01", "SIDEBAR01"}, []string{"Text one.", "Text two."}},
		{"#main wraps everything",
			`<body><div id="main"><div id="header">SITE01</div><div class="box"><h2>Post</h2><p>Text one.</p></div><div id="sidebar">SIDEBAR01</div><div id="footer">FOOTER01</div></div></body>`,
			[]string{"SITE01", "SIDEBAR01", "FOOTER01"}, []string{"Text one."}},
		{"post on the body is not taken",
			`<body class="post"><div class="banner">BANNER01 kept: the body is the content</div><p>Text one.</p></body>`,
			nil, []string{"BANNER01", "Text one."}},
		{"the only .post",
			`<body><div class="crumbs">CRUMB01</div><div class="post"><h2>Post</h2><p>Text one, long enough to be the page.</p></div></body>`,
			[]string{"CRUMB01"}, []string{"Text one"}},
		{"several .post: the body",
			`<body><div class="intro">INTRO01</div><div class="post"><p>One.</p></div><div class="post"><p>Two.</p></div></body>`,
			nil, []string{"INTRO01", "One.", "Two."}},
		{"a small #content is not the page",
			`<body><div id="content">Logo</div><div class="text"><p>The real text of the page is here, and it is long.</p></div></body>`,
			nil, []string{"Logo", "The real text"}},
		{"#main on a list is no container",
			`<body><ul id="main"><li>One</li></ul><p>Text of the page.</p></body>`,
			nil, []string{"One", "Text of the page."}},
		{"an <article> keeps the old rules",
			`<body><div class="x">KEPT01</div><div id="content"><article><p>A.</p></article><article><p>B.</p></article></div></body>`,
			nil, []string{"KEPT01", "A.", "B."}},
	}
	for _, c := range cases {
		checkText(t, c.name, convertPage(t, "<html><head><title>T</title></head>"+c.page+"</html>"), c.gone, c.kept)
	}
}

// TestLegacyDeepNesting: hostile nesting inside named elements neither
// overflows nor takes long.
func TestLegacyDeepNesting(t *testing.T) {
	// The parser stops nesting at 512 elements; many siblings at each
	// level make the subtrees large.
	level := `<p>` + strings.Repeat(`prose, not links `, 20) + `</p>`
	deep := strings.Repeat(`<div id="sidebar"><div class="menu">`, 200) + "x" + strings.Repeat("</div>", 400)
	deepNav := strings.Repeat(`<div id="nav">`+strings.Repeat(level, 5), 450) + strings.Repeat("</div>", 450)
	page := `<html><body><div id="content"><p>Text.</p>` + deep + `</div>` + deepNav + `</body></html>`
	start := time.Now()
	out := convertPage(t, page)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("deep nesting took %v", d)
	}
	if !strings.Contains(out, "Text.") {
		t.Errorf("lost the content:\n%.300s", out)
	}
}

func stripped(t *testing.T, page string) string {
	t.Helper()
	doc, err := Parse([]byte(page), "text/html")
	if err != nil {
		t.Fatal(err)
	}
	Strip(doc)
	return Text(Main(doc))
}

// TestLegacyPullQuoteIsNoSidebar: an <aside> inside the post is a pull
// quote, not the page's complementary landmark: #sidebar still goes.
func TestLegacyPullQuoteIsNoSidebar(t *testing.T) {
	page := `<html><body><div id="content"><div class="post"><section><p>Text.</p><aside>QUOTE01</aside></section></div></div>
<div id="sidebar">SIDEBAR01</div></body></html>`
	checkText(t, "pull quote", stripped(t, page), []string{"QUOTE01", "SIDEBAR01"}, []string{"Text."})
}

// BenchmarkLegacyPage converts a Kubrick post with 40 comments and a long
// sidebar (about 40 KB), with the legacy names and without (the HTML5
// reading alone, as before them).
//
//	go test -run '^$' -bench LegacyPage -benchmem ./markdown
func BenchmarkLegacyPage(b *testing.B) {
	var post, comments, widgets strings.Builder
	for i := range 40 {
		fmt.Fprintf(&post, "<p>Paragraph %d of the post, on tyres, sealant and pressures, long enough to be prose.</p>", i)
		fmt.Fprintf(&comments, `<li class="comment"><cite>Reader %d</cite> says: <p>Thanks, this helped with my tubeless setup.</p></li>`, i)
		fmt.Fprintf(&widgets, `<li><a href="/archive/%d">Archive %d</a></li>`, i, i)
	}
	page := strings.Replace(kubrick, "<p>You need 60 ml of sealant per tyre.</p>", post.String(), 1)
	page = strings.Replace(page, "<li>COMMENTS02 Great tips, thanks! Dave</li>", comments.String(), 1)
	page = strings.Replace(page, `<li><a href="/2023">2023</a></li>`, widgets.String(), 1)
	c := New(Options{})
	for _, on := range []bool{true, false} {
		name := "names"
		if !on {
			name = "html5-only"
		}
		b.Run(name, func(b *testing.B) {
			legacyLandmarks = on
			defer func() { legacyLandmarks = true }()
			b.SetBytes(int64(len(page)))
			b.ReportAllocs()
			var n int
			for b.Loop() {
				md, err := c.Convert([]byte(page), "text/html", nil)
				if err != nil {
					b.Fatal(err)
				}
				n = len(md)
			}
			b.ReportMetric(float64(n), "md-bytes")
		})
	}
}

// TestLegacyNamesKeepContent: names that also name content are not taken
// for boilerplate: a restaurant's #menu of linked dishes under headings,
// one whose links are dish names, and a "share" box of a share price.
func TestLegacyNamesKeepContent(t *testing.T) {
	for name, c := range map[string]struct{ page, want string }{
		"linked dishes under a heading": {`<html><body><div id="header"><h1>Trattoria</h1></div><h2>Order online</h2><p>Collection from 5pm.</p>
<div id="menu"><h2>Starters</h2><ul><li><a href="/dish/1">Burrata with peaches and basil</a> 9</li><li><a href="/dish/2">Grilled octopus with chickpeas</a> 12</li></ul></div>
</body></html>`, "Burrata"},
		"linked dish names": {`<html><body><h1>Order</h1><p>Collection from 5pm.</p>
<div id="menu"><ul><li><a href="/dish/1">Burrata with peaches, basil and aged balsamic</a> 9</li><li><a href="/dish/2">Grilled octopus with chickpeas and smoked paprika</a> 12</li></ul></div>
</body></html>`, "octopus"},
		"share price": {`<html><body><h1>Investors</h1><p>Results for 2024.</p>
<div class="share"><h2>Share price</h2><p>LSE: KTL 412.5p, up 1.2%</p></div></body></html>`, "412.5p"},
	} {
		checkText(t, name, stripped(t, c.page), nil, []string{c.want})
	}
	// A menu of short links is still one.
	checkText(t, "menu", stripped(t, `<html><body><div id="menu"><a href="/">Home</a> | <a href="/about">About us</a> | <a href="/faq">Frequently asked questions</a></div><p>Body text.</p></body></html>`),
		[]string{"About us"}, []string{"Body text."})
}
