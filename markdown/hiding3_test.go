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
