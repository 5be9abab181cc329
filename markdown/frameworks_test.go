package markdown

import "testing"

// Framework patterns that look like hidden text and are not: every visitor
// (or every visitor on a wide screen, or with JavaScript) reads the text.
// Dropping it loses a page's main copy, which is as bad as a miss.

// Tailwind's own documented pattern for not-sr-only: a label hidden on
// phones and shown from the sm breakpoint up. Desktop visitors read it.
func TestTailwindNotSrOnlyShown(t *testing.T) {
	page := `<html><head><style>
.sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border-width:0}
@media (min-width:640px){.sm\:not-sr-only{position:static;width:auto;height:auto;padding:0;margin:0;overflow:visible;clip:auto;white-space:normal}}
</style></head><body><main><h1>Account</h1><p>Manage your account here.</p>
<p><a href="/settings"><span class="sr-only sm:not-sr-only">SETTINGSLABEL</span></a></p>
</main></body></html>`
	checkText(t, "tailwind not-sr-only", convertPage(t, page), nil, []string{"SETTINGSLABEL"})
}

// Framer Motion (Next.js) server-renders its entrance animations'
// initial state inline: every visitor with JavaScript reads the text.
func TestFramerMotionInitialOpacity(t *testing.T) {
	page := `<html><body><main><h1>Acme</h1>
<div style="opacity:0;transform:translateY(20px)"><p>HEROCOPY: the fastest way to ship.</p></div>
</main></body></html>`
	checkText(t, "framer motion", convertPage(t, page), nil, []string{"HEROCOPY"})
}

// Bootstrap and Tailwind responsive visibility from an inlined sheet.
func TestResponsiveUtilities(t *testing.T) {
	page := `<html><head><style>
.d-none{display:none!important}
.hidden{display:none}
@media (min-width:992px){.d-lg-block{display:block!important}}
@media (min-width:768px){.md\:block{display:block}}
</style></head><body><main><h1>Shop</h1><p>Welcome.</p>
<div class="d-none d-lg-block">BSDESKTOP</div>
<div class="hidden md:block">TWDESKTOP</div>
</main></body></html>`
	checkText(t, "responsive", convertPage(t, page), nil, []string{"BSDESKTOP", "TWDESKTOP"})
}

// A show rule with a combinator keeps its full specificity in the cascade:
// here (0,2,0) beats the lone .menu (0,1,0) whatever the order.
func TestShowRuleSpecificity(t *testing.T) {
	page := `<html><head><style>
@media (min-width:768px){.site-header .menu{display:flex}}
.menu{display:none}
</style></head><body><main><h1>Home</h1><p>Welcome.</p>
<div class="site-header"><ul class="menu"><li>MENUITEM</li></ul></div>
</main></body></html>`
	checkText(t, "specificity", convertPage(t, page), nil, []string{"MENUITEM"})
}

// Webflow's interactions publish the start state of an entrance animation
// inline: the hero heading and its copy are what every visitor reads.
func TestWebflowEntranceAnimation(t *testing.T) {
	page := `<html><body><main>
<h1 data-w-id="6f1c2a" style="opacity:0;-webkit-transform:translate3d(0, 20px, 0) scale3d(1, 1, 1);transform:translate3d(0, 20px, 0) scale3d(1, 1, 1)" class="hero-heading">WEBFLOWHERO</h1>
<p data-w-id="6f1c2b" style="opacity:0" class="hero-paragraph">WEBFLOWCOPY we build furniture.</p>
<p>Footer text.</p>
</main></body></html>`
	checkText(t, "webflow", convertPage(t, page), nil, []string{"WEBFLOWHERO", "WEBFLOWCOPY"})
}

// A page that fades in with CSS alone: every visitor sees it after the
// animation; opacity 0 is only its first frame.
func TestCSSFadeInPage(t *testing.T) {
	page := `<html><head><style>
@keyframes fadein{from{opacity:0}to{opacity:1}}
body{opacity:0;animation:fadein .4s ease-in forwards}
</style></head><body><main><h1>FADEHEADING</h1><p>FADEBODY text of the page.</p></main></body></html>`
	checkText(t, "css fade-in", convertPage(t, page), nil, []string{"FADEHEADING", "FADEBODY"})
}

// Elementor marks elements with an entrance animation elementor-invisible
// until its script animates them in; with the rule inlined (Elementor's
// inline-CSS loading, WP Rocket's critical CSS) the section's text goes.
func TestElementorInvisible(t *testing.T) {
	page := `<html><head><style>.elementor-invisible{visibility:hidden}</style></head><body><main>
<h1>Studio</h1><div class="elementor-element elementor-invisible" data-settings='{"_animation":"fadeInUp"}'><p>ELEMENTORTEXT our services.</p></div>
</main></body></html>`
	checkText(t, "elementor", convertPage(t, page), nil, []string{"ELEMENTORTEXT"})
}

// TestHiddenClass: a screen-reader-only class drops its element unless
// another class in the list shows it again for some visitors or in some
// state (a breakpoint, keyboard focus), as a show rule in a <style> does.
func TestHiddenClass(t *testing.T) {
	for list, want := range map[string]bool{
		"sr-only":                                   true,
		" visually-hidden ":                         true,
		"skip-link screen-reader-text":              true, // WordPress: nothing tells its skip link apart
		"visuallyhidden":                            true,
		"ahp-notice":                                true,
		"ahp-notice sm:not-sr-only":                 true, // the notice is never content
		"sr-only sm:not-sr-only":                    false,
		"sm:not-sr-only sr-only":                    false,
		"sr-only focus:not-sr-only":                 false, // Tailwind's skip link
		"sr-only group-hover:not-sr-only":           false,
		"sr-only md:!not-sr-only":                   false, // Tailwind 3's important
		"sr-only md:not-sr-only!":                   false, // Tailwind 4's
		"sr-only not-sr-only":                       false,
		"sr-only sr-only-focusable":                 false, // Bootstrap 3/4's skip link
		"visually-hidden-focusable":                 false, // Bootstrap 5's (never a name rule)
		"visually-hidden visually-hidden-focusable": false,
		"sr-only-focusable":                         false,
		"sr-only md:block":                          true, // shows display, not what sr-only hides
		"sr-only not-sr-only-x":                     true,
		"sr-only sr-only-focusable-x":               true,
		"md:sr-only":                                false, // not the name rule's: its rule is not read
		"":                                          false,
	} {
		if got := hiddenClass(list); got != want {
			t.Errorf("hiddenClass(%q) = %v, want %v", list, got, want)
		}
	}
}

// TestSkipLinkShownOnFocus: a skip link hidden until focused is kept
// (keyboard visitors read it), the label beside it is not.
func TestSkipLinkShownOnFocus(t *testing.T) {
	// No <main>: the body is the page (with one, a skip link before it is
	// left out with the rest of the chrome).
	page := `<html><body><a class="sr-only sr-only-focusable" href="#top">SKIPBS</a>
<a class="sr-only focus:not-sr-only" href="#top">SKIPTW</a><div id="top"><h1>Home</h1><p>Welcome.</p>
<p><a href="/cart">Cart<span class="sr-only">HIDLABEL</span></a></p></div></body></html>`
	checkText(t, "skip link", convertPage(t, page), []string{"HIDLABEL"}, []string{"SKIPBS", "SKIPTW", "Welcome."})
}

// TestEntranceAnimationMarkers: each library's marker keeps its element's
// text through an opacity or visibility start state, inline or from the
// page's <style>; the other hiding rules, and unmarked elements, still
// drop.
func TestEntranceAnimationMarkers(t *testing.T) {
	page := `<html><head><style>
[data-aos^=fade][data-aos^=fade]{opacity:0;transition-property:opacity,transform}
[data-sal|=slide]{opacity:0}
.wow{visibility:hidden}
.fade{opacity:0}
.gone{display:none}
</style></head><body><main><h1>Studio</h1><p>Welcome.</p>
<div data-aos="fade-up"><p>SHOWN01</p></div>
<div data-sal="slide-up" data-sal-delay="300">SHOWN02</div>
<p class="wow fadeInUp">SHOWN03</p>
<p class="animate__animated animate__fadeIn" style="opacity:0">SHOWN04</p>
<p data-framer-appear-id="x1" style="opacity:0.001">SHOWN05</p>
<p data-scroll data-scroll-speed="2" class="fade">SHOWN06</p>
<p data-w-id="a1" style="visibility:hidden">SHOWN07</p>
<p class="fade" style="will-change:opacity">SHOWN08</p>
<p style="opacity:0">HID01</p>
<p class="fade">HID02</p>
<p class="wowza" style="opacity:0">HID03</p>
<div data-aos="fade-up"><p style="opacity:0">HID04</p></div>
<p data-aos="fade" class="gone">HID05</p>
<p data-w-id="a2" style="position:absolute;left:-9999px;opacity:0">HID06</p>
<p class="wow" style="transform:scale(0)">HID07</p>
<p data-sal="fade" style="font-size:0">HID08</p>
<p data-aos="fade" style="display:none">HID09</p>
</main></body></html>`
	checkText(t, "markers", convertPage(t, page),
		[]string{"HID01", "HID02", "HID03", "HID04", "HID05", "HID06", "HID07", "HID08", "HID09"},
		[]string{"Welcome.", "SHOWN01", "SHOWN02", "SHOWN03", "SHOWN04", "SHOWN05", "SHOWN06", "SHOWN07", "SHOWN08"})

	// Without any <style>: the inline pass alone decides.
	page = `<html><body><main><h1>Studio</h1><p>Welcome.</p>
<p data-aos="fade-up" style="opacity:0">SHOWN01</p>
<p style="opacity:0;transition:opacity .6s">SHOWN02</p>
<p style="opacity:0">HID01</p>
<p data-aos="fade-up" style="display:none">HID02</p>
</main></body></html>`
	checkText(t, "inline only", convertPage(t, page), []string{"HID01", "HID02"}, []string{"Welcome.", "SHOWN01", "SHOWN02"})
}
