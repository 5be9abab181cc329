package markdown

import "testing"

// Tests from the second review of hidden text (hiding2r), one per fix.

const h3head = `<html><body><main><h1>Home</h1><p>Welcome.</p>`
const h3tail = `</main></body></html>`

// A link no visitor can follow (hidden, inert, inside display:none or a
// closed <dialog>) must not make its target's :target rule "shown"; a
// link in a dropped <nav> is seen by visitors and still does.
func TestTargetNeedsFollowableLink(t *testing.T) {
	page := `<html><head><style>.t{display:none}.t:target{display:block}</style></head><body><main><h1>Home</h1><p>Welcome.</p>
<a href="#i1" hidden>x</a><div id="i1" class="t">INJECT01</div>
<span style="display:none"><a href="#i2">x</a></span><div id="i2" class="t">INJECT02</div>
<a href="#i3" inert aria-hidden="true"></a><div id="i3" class="t">INJECT03</div>
<template><a href="#i4">x</a></template><div id="i4" class="t">INJECT04</div>
<dialog><a href="#i5">x</a></dialog><div id="i5" class="t">INJECT05</div>
<video><a href="#i6">x</a></video><div id="i6" class="t">INJECT06</div>
<a href="#s1">Terms</a><div id="s1" class="t">SHOWN01</div>
<nav><a href="#s2">Tab</a></nav><div id="s2" class="t">SHOWN02</div>
` + h3tail
	checkText(t, "hidden link target", convertPage(t, page),
		[]string{"INJECT01", "INJECT02", "INJECT03", "INJECT04", "INJECT05", "INJECT06"},
		[]string{"Welcome.", "SHOWN01", "SHOWN02"})
}

// A link the browser never renders (inside a <video> fallback, a closed
// <dialog>, a <datalist>, a popover) cannot take focus, so it does not
// show a focus-within container.
func TestFocusWithinSkipsUnrenderedLink(t *testing.T) {
	page := h3head + `
<div class="visually-hidden-focusable">INJECT01<video><a href="/v">v</a></video></div>
<div class="visually-hidden-focusable">INJECT02<dialog><a href="/d">d</a></dialog></div>
<div class="sr-only focus-within:not-sr-only">INJECT03<datalist><a href="/l">l</a></datalist></div>
<div class="visually-hidden-focusable">INJECT04<div popover><a href="/p">p</a></div></div>
<div class="visually-hidden-focusable">INJECT05<audio><a href="/a">a</a></audio></div>
<div class="visually-hidden-focusable">SHOWN01<a href="/ok">ok</a></div>
<div class="visually-hidden-focusable">SHOWN02<dialog open><a href="/o">o</a></dialog></div>
` + h3tail
	checkText(t, "focus-within unrendered", convertPage(t, page),
		[]string{"INJECT01", "INJECT02", "INJECT03", "INJECT04", "INJECT05"}, []string{"Welcome.", "SHOWN01", "SHOWN02"})
}

// The sheet pass reads focus-within with the same rules: a :focus-within
// show rule needs a link the browser renders.
func TestSheetFocusWithinSkipsUnrenderedLink(t *testing.T) {
	page := `<html><head><style>.x{position:absolute;left:-9999px}.x:focus-within{left:0}</style></head><body><main><h1>Home</h1><p>Welcome.</p>
<div class="x">INJECT01<video><a href="/v">v</a></video></div>
<div class="x">INJECT02<dialog><a href="/d">d</a></dialog></div>
<div class="x">SHOWN01<a href="/ok">ok</a></div>
` + h3tail
	checkText(t, "sheet focus-within unrendered", convertPage(t, page),
		[]string{"INJECT01", "INJECT02"}, []string{"Welcome.", "SHOWN01"})
}

// States nested past the depth bound are not read: they must not read as
// "no state", which showed a display:none element on a hover-only rule.
func TestStateNestedPastDepthNeverMet(t *testing.T) {
	page := `<html><head><style>.x{display:none}
.a:is(:is(:is(:is(:is(:hover))))){display:block}
.b:not(:not(:not(:not(:not(:not(:hover)))))){display:block}
.c:is(:hover){display:block}
.d:is(:is(:is(.e))){display:block}
</style></head><body><main><h1>Home</h1><p>Welcome.</p>
<p class="x a">INJECT01</p><p class="x b">INJECT02</p><p class="x c">INJECT03</p><p class="x d e">SHOWN01</p>` + h3tail
	checkText(t, "nested depth", convertPage(t, page), []string{"INJECT01", "INJECT02", "INJECT03"}, []string{"Welcome.", "SHOWN01"})
}

// :has(:hover) / :has(:focus) needs a descendant of a display:none element
// to be hovered or focused: never. An off-screen block with a link shows
// on :has(:focus), as on :focus-within.
func TestStateInsideHas(t *testing.T) {
	page := `<html><head><style>.x{display:none}
.a:has(:hover){display:block}
.b:has(a:focus){display:block}
.c:has(:target){display:block}
.off{position:absolute;left:-9999px}.off:has(:focus-visible){left:0}
</style></head><body><main><h1>Home</h1><p>Welcome.</p>
<div class="x a"><p>INJECT01</p><span>y</span></div><div class="x b"><p>INJECT02</p><a href="/y">y</a></div>
<div class="x c"><p>INJECT03</p></div>
<div class="off">SHOWN01 <a href="/z">z</a></div>` + h3tail
	checkText(t, "has", convertPage(t, page), []string{"INJECT01", "INJECT02", "INJECT03"}, []string{"Welcome.", "SHOWN01"})
}

// An entrance-animated block (Webflow data-w-id, style="opacity:0") is
// kept as visible, and an off-screen link still takes keyboard focus:
// either shows a focus-within container. display:none or
// visibility:hidden inline takes a link out of the focus order.
func TestFocusWithinOffScreenOrAnimatedLink(t *testing.T) {
	page := h3head + `
<div class="visually-hidden-focusable">SHOWN01<div data-w-id="a1" style="opacity:0"><a href="/x">SHOWN02</a></div></div>
<div class="visually-hidden-focusable">SHOWN03<a href="/y" style="position:absolute;left:-9999px">y</a></div>
<div class="visually-hidden-focusable">INJECT01<a href="/z" style="display:none">z</a></div>
<div class="visually-hidden-focusable">INJECT02<span style="visibility:hidden"><a href="/w">w</a></span></div>
` + h3tail
	checkText(t, "focus-within animated", convertPage(t, page), []string{"INJECT01", "INJECT02"}, []string{"Welcome.", "SHOWN01", "SHOWN02", "SHOWN03"})
}

// :is()/:where() branches are alternatives: an off-screen skip link shown
// on :is(:focus, :hover) is seen by every keyboard visitor who focuses it.
// A display:none element can enter neither :hover nor :active.
func TestIsBranchesAreAlternatives(t *testing.T) {
	page := `<html><head><style>.skip{position:absolute;left:-9999px}.skip:is(:focus,:hover){left:0}
.skip2{position:absolute;left:-9999px}.skip2:where(:hover, :focus-visible):not(.y){left:0}
.x{display:none}.x:is(:hover,:active){display:block}
.z{display:none}.z:is(:hover,:focus):not(:not(:active)){display:block}</style></head><body><main><h1>Home</h1><p>Welcome.</p>
<a class="skip" href="#c">SHOWN01 skip to content</a><a class="skip2" href="#c">SHOWN02 skip</a>
<p class="x">INJECT01</p><p class="z" tabindex="0">INJECT02</p>` + h3tail
	checkText(t, "is alternatives", convertPage(t, page), []string{"INJECT01", "INJECT02"}, []string{"Welcome.", "SHOWN01", "SHOWN02"})
}

// Tailwind arbitrary variants for the element itself ([&]:, [&:focus]:)
// are not another box: a skip link using them stays. [&_a]:, [&>p]: and
// [&::after]: style another box; [&:hover]: is never met by a clipped
// pixel.
func TestTailwindArbitrarySelf(t *testing.T) {
	page := h3head + `<a class="sr-only [&:focus]:not-sr-only" href="#main">SHOWN01 skip</a>
<a class="sr-only md:[&:focus-visible]:not-sr-only" href="#main">SHOWN02 skip</a>
<p class="sr-only [&]:not-sr-only">SHOWN03 label</p>
<a class="sr-only [&_a]:not-sr-only" href="#x">INJECT01</a>
<a class="sr-only [&>p]:not-sr-only" href="#x">INJECT02</a>
<a class="sr-only [&::after]:not-sr-only" href="#x">INJECT03</a>
<a class="sr-only [&:hover]:not-sr-only" href="#x">INJECT04</a>
<p class="sr-only [&:focus]:not-sr-only">INJECT05</p>
` + h3tail
	checkText(t, "tw self", convertPage(t, page), []string{"INJECT01", "INJECT02", "INJECT03", "INJECT04", "INJECT05"}, []string{"Welcome.", "SHOWN01", "SHOWN02", "SHOWN03"})
}
