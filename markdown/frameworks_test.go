package markdown

import "testing"

// Framework patterns that look like hidden text and are not: every visitor
// (or every visitor on a wide screen) reads the text.
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

// A page that fades in with CSS alone: every visitor sees it after the
// animation; opacity 0 is only its first frame.
func TestCSSFadeInPage(t *testing.T) {
	page := `<html><head><style>
@keyframes fadein{from{opacity:0}to{opacity:1}}
body{opacity:0;animation:fadein .4s ease-in forwards}
</style></head><body><main><h1>FADEHEADING</h1><p>FADEBODY text of the page.</p></main></body></html>`
	checkText(t, "css fade-in", convertPage(t, page), nil, []string{"FADEHEADING", "FADEBODY"})
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
