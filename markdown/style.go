package markdown

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// What hides an element from visitors. Text a visitor never sees must not
// reach an agent: it is the usual way to slip instructions to agents
// alone. An element is hidden, as the cascade of its inline style and the
// page's own <style> rules resolves it (see sheet.go), by:
//
//   - display:none, visibility:hidden or collapse, content-visibility:hidden;
//   - opacity below 0.1 (0.5 is a faded element, 0.05 is not read by anyone);
//   - position:absolute or fixed with left or top at -1000px or further
//     (the classic -9999px; a -10px nudge is layout), or a text-indent that
//     far (image replacement), in px, em/rem (16px), pt, pc, in, cm, mm;
//   - a clip of rect() one pixel or less wide or high (absolute or fixed),
//     a clip-path of inset() closing it (50% from each side) or circle(0);
//   - width and height both 0 or at most 1px with overflow hidden or clip;
//   - transform scale()/scaleX()/scaleY()/scale3d() or scale with a zero
//     factor in x or y.
//
// That includes screen-reader-only text (Bootstrap's .sr-only: absolute,
// 1px, clip rect(0,0,0,0)): it is written for non-visual readers, but it
// labels controls an agent does not use ("Toggle navigation", "(opens in
// a new tab)") and, being a class every framework ships, it is the
// cheapest way to hide text from visitors. Strip drops the usual class
// names too (sr-only, visually-hidden, screen-reader-text, visuallyhidden),
// whose rules live in stylesheets that are not read, unless the list
// shows the element again (see hiddenClass in page.go).
//
// Opacity and visibility:hidden do not hide the start state of an
// entrance animation, which every visitor with JavaScript sees played:
// an element marked by an animation library (the attributes data-w-id of
// Webflow, data-framer-appear-id of Framer, data-aos, data-sal,
// data-scroll; the classes wow, elementor-invisible, animate__*), or
// whose inline style also sets transform, transition, animation or
// will-change (Framer Motion's server-rendered initial state). The other
// rules still apply to it. An injector can add a transition to opacity:0
// as easily: these rules filter the usual tricks, they are no boundary.
//
// visibility is inherited and can be undone: a child of a
// visibility:hidden element that sets visibility:visible (or initial) is
// seen, with what it holds; the rest of the element is not. display:none
// and opacity hide the whole subtree whatever the children say.
//
// A zero font size (font-size:0 in any unit, or a font shorthand with
// one) hides the element's own text, and its children's unless they set a
// size of their own that is not relative to it (px, rem, a keyword; em
// and % of zero are zero): font-size:0 on a row of inline blocks that
// reset it is a common layout trick, not hiding.
//
// Colour tricks (white on white, color:transparent) are not detected: the
// background is not known, and transparent text over background-clip:text
// is a gradient heading visitors read.

// The properties read, as indexes into cascade's arrays.
const (
	pDisplay = iota
	pVisibility
	pContentVisibility
	pOpacity
	pFontSize
	pPosition
	pLeft
	pTop
	pTextIndent
	pClip
	pClipPath
	pWidth
	pHeight
	pOverflow
	pTransform
	pScale
	nProps

	pFont = -2 // the shorthand, read for its size
)

// propIndex maps a property name, in any case, to its index, or -1.
func propIndex(name string) int {
	var buf [len("content-visibility")]byte
	if len(name) > len(buf) {
		return -1
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(name)]) {
	case "display":
		return pDisplay
	case "visibility":
		return pVisibility
	case "content-visibility":
		return pContentVisibility
	case "opacity":
		return pOpacity
	case "font-size":
		return pFontSize
	case "font":
		return pFont
	case "position":
		return pPosition
	case "left":
		return pLeft
	case "top":
		return pTop
	case "text-indent":
		return pTextIndent
	case "clip":
		return pClip
	case "clip-path":
		return pClipPath
	case "width":
		return pWidth
	case "height":
		return pHeight
	case "overflow":
		return pOverflow
	case "transform":
		return pTransform
	case "scale":
		return pScale
	}
	return -1
}

// A decl is one declaration of a property read.
type decl struct {
	value     string
	prop      uint8
	important bool
}

// appendDecls appends block's declarations of the properties read.
// Comments and escapes are undone first, as a browser would, so
// `display:/**/n\6f ne` hides too; the words in other properties' values
// ("content: 'display:none'") do not count.
func appendDecls(dst []decl, block string) []decl {
	if strings.ContainsAny(block, `\/`) {
		block = unescapeCSS(block)
	}
	for rest := block; rest != ""; {
		var d string
		d, rest = nextDeclaration(rest)
		name, value, ok := strings.Cut(d, ":")
		if !ok {
			continue
		}
		p := propIndex(strings.TrimSpace(name))
		if p == -1 {
			continue
		}
		value, important := importance(strings.TrimSpace(value))
		if p == pFont {
			p, value = pFontSize, fontShorthandSize(value)
		}
		dst = append(dst, decl{value: value, prop: uint8(p), important: important})
	}
	return dst
}

// Priorities, highest wins: !important, then inline over stylesheet, then
// specificity, then source order (the low bits, see sheet.go).
const (
	prioImportant = 1 << 63
	prioInline    = 1 << 62
)

// A cascade holds, for one element, the winning value of each property
// read.
type cascade struct {
	val  [nProps]string
	prio [nProps]uint64
	set  uint32
}

// add applies declarations at priority prio; a later one of equal
// priority wins. showOnly skips those that could hide (a rule that only
// applies to some visitors, see sheet.go, may show an element, not hide it).
func (c *cascade) add(ds []decl, prio uint64, showOnly bool) {
	for _, d := range ds {
		if showOnly && suspect(int(d.prop), d.value) {
			continue
		}
		pr := prio
		if d.important {
			pr |= prioImportant
		}
		if c.set&(1<<d.prop) == 0 || pr >= c.prio[d.prop] {
			c.val[d.prop], c.prio[d.prop] = d.value, pr
			c.set |= 1 << d.prop
		}
	}
}

// hides reports whether the cascade hides element n and all it holds; n
// has the style attribute style (see the top of this file) and is nil for
// a style alone. visibility:hidden is not read here but by invisible: a
// child may make itself visible again.
func (c *cascade) hides(n *html.Node, style string) bool {
	if c.set == 0 {
		return false
	}
	if c.gone() {
		return true
	}
	// Checked last, and rarely: most elements are not faded.
	return lowOpacity(c.val[pOpacity]) && !entrance(n, style)
}

// invisible resolves visibility, which children inherit, given the
// parent's: hidden hides the element's own text, and its children's
// unless they set visible again (initial is visible). An entrance
// animation's start state does not count (see the top of this file).
func (c *cascade) invisible(parent bool, n *html.Node, style string) bool {
	if c.set&(1<<pVisibility) == 0 {
		return parent
	}
	switch v := c.val[pVisibility]; {
	case is(v, "hidden"):
		return !entrance(n, style)
	case is(v, "visible"), is(v, "initial"):
		return false
	}
	return parent
}

// gone reports whether the cascade hides the element by other means than
// its opacity or visibility, which an entrance animation starts from.
func (c *cascade) gone() bool {
	v := &c.val
	if is(v[pDisplay], "none") || is(v[pVisibility], "collapse") || is(v[pContentVisibility], "hidden") {
		return true
	}
	if is(v[pPosition], "absolute") || is(v[pPosition], "fixed") {
		if farNegative(v[pLeft]) || farNegative(v[pTop]) || emptyRect(v[pClip]) {
			return true
		}
	}
	if farNegative(v[pTextIndent]) || emptyClipPath(v[pClipPath]) {
		return true
	}
	if tiny(v[pWidth]) && tiny(v[pHeight]) && (is(v[pOverflow], "hidden") || is(v[pOverflow], "clip")) {
		return true
	}
	return scaledAway(v[pTransform]) || zeroScale(v[pScale])
}

// suspect reports whether a declaration hides, alone or with others: a
// rule with none cannot hide an element, so sheet.go matches rules with
// one first.
func suspect(p int, v string) bool {
	switch p {
	case pDisplay:
		return is(v, "none")
	case pVisibility:
		return is(v, "hidden") || is(v, "collapse")
	case pContentVisibility:
		return is(v, "hidden")
	case pOpacity:
		return lowOpacity(v)
	case pFontSize:
		return fontState(v) == fontZero
	case pLeft, pTop, pTextIndent:
		return farNegative(v)
	case pClip:
		return emptyRect(v)
	case pClipPath:
		return emptyClipPath(v)
	case pWidth, pHeight:
		return tiny(v)
	case pTransform:
		return scaledAway(v)
	case pScale:
		return zeroScale(v)
	}
	return false
}

// zeroFont resolves the element's font-size state given its parent's:
// whether its own text is at size zero.
func (c *cascade) zeroFont(parent bool) bool {
	if c.set&(1<<pFontSize) == 0 {
		return parent
	}
	switch fontState(c.val[pFontSize]) {
	case fontZero:
		return true
	case fontShown:
		return false
	}
	return parent
}

// hiddenStyle reports whether an inline style attribute alone hides its
// element.
func hiddenStyle(style string) bool {
	var buf [8]decl
	var c cascade
	c.add(appendDecls(buf[:0], style), prioInline, false)
	return c.hides(nil, style) || c.invisible(false, nil, style)
}

// entrance reports whether element n (nil: none) is the start state of an
// entrance animation: a marker of an animation library, or an inline style
// that also sets a motion property (see the top of this file). Its opacity
// and visibility are then the animation's first frame: every visitor with
// JavaScript sees the element once it has played.
func entrance(n *html.Node, style string) bool {
	if n != nil {
		for _, a := range n.Attr {
			if a.Namespace != "" {
				continue
			}
			switch a.Key {
			case "data-w-id", "data-framer-appear-id", "data-aos", "data-sal", "data-scroll":
				return true
			case "class":
				for rest := a.Val; rest != ""; {
					var tok string
					tok, rest = nextToken(rest)
					if tok == "wow" || tok == "elementor-invisible" || strings.HasPrefix(tok, "animate__") {
						return true
					}
				}
			}
		}
	}
	if strings.ContainsAny(style, `\/`) {
		style = unescapeCSS(style)
	}
	for rest := style; rest != ""; {
		var d string
		d, rest = nextDeclaration(rest)
		name, value, ok := strings.Cut(d, ":")
		if ok && strings.TrimSpace(value) != "" && motionProperty(strings.TrimSpace(name)) {
			return true
		}
	}
	return false
}

// motionProperty: transform, transition, animation and will-change, their
// longhands (transition-delay) and vendor-prefixed forms
// (-webkit-transform, which Webflow writes).
func motionProperty(name string) bool {
	name = strings.ToLower(name)
	if strings.HasPrefix(name, "-") {
		for _, vendor := range [...]string{"-webkit-", "-moz-", "-ms-", "-o-"} {
			if strings.HasPrefix(name, vendor) {
				name = name[len(vendor):]
				break
			}
		}
	}
	switch name {
	case "transform", "will-change":
		return true
	}
	for _, p := range [...]string{"transition", "animation"} {
		if strings.HasPrefix(name, p) && (len(name) == len(p) || name[len(p)] == '-') {
			return true
		}
	}
	return false
}

func is(v, word string) bool { return strings.EqualFold(v, word) }

const (
	fontInherit = iota // relative to the parent's size, or no size
	fontZero
	fontShown
)

// fontState reads a font-size value: zero, a size of its own, or one
// relative to the parent's (em, %, larger: zero stays zero).
func fontState(v string) int {
	n, unit, ok := number(v)
	if !ok {
		switch strings.ToLower(v) {
		case "", "inherit", "unset", "larger", "smaller", "math":
			return fontInherit
		}
		return fontShown // medium, initial, calc(): taken as visible
	}
	switch {
	case n < 0:
		return fontInherit // invalid, ignored
	case n == 0:
		return fontZero
	}
	switch strings.ToLower(unit) {
	case "em", "ex", "ch", "%", "cap", "ic", "lh":
		return fontInherit
	case "":
		return fontInherit // invalid: a size needs a unit
	}
	return fontShown
}

// fontShorthandSize returns the size in a font shorthand ("bold 0/0 a"
// has "0"), or "medium" when it names none (a system font).
func fontShorthandSize(v string) string {
	for rest := v; rest != ""; {
		rest = strings.TrimLeft(rest, " \t\n\r\f")
		end := strings.IndexAny(rest, " \t\n\r\f")
		if end < 0 {
			end = len(rest)
		}
		tok := rest[:end]
		rest = rest[end:]
		if i := strings.IndexByte(tok, '/'); i >= 0 {
			tok = tok[:i]
		}
		if n, unit, ok := number(tok); ok {
			if unit == "" && n != 0 {
				continue // a weight
			}
			return tok
		}
		switch strings.ToLower(tok) {
		case "xx-small", "x-small", "small", "medium", "large", "x-large", "xx-large", "xxx-large", "larger", "smaller":
			return tok
		}
		if strings.HasPrefix(tok, `"`) || strings.HasPrefix(tok, "'") {
			break // the family: the size came before it
		}
	}
	return "medium"
}

// number parses a CSS number with an optional unit ("-9999px", ".5",
// "0%"); exponents and functions are not read.
func number(v string) (n float64, unit string, ok bool) {
	i := 0
	if i < len(v) && (v[i] == '-' || v[i] == '+') {
		i++
	}
	digits := 0
	for ; i < len(v) && ('0' <= v[i] && v[i] <= '9' || v[i] == '.'); i++ {
		if v[i] != '.' {
			digits++
		}
	}
	if digits == 0 {
		return 0, "", false
	}
	n, err := strconv.ParseFloat(v[:i], 64)
	if err != nil {
		return 0, "", false
	}
	unit = v[i:]
	for j := 0; j < len(unit); j++ {
		if c := unit[j] | 0x20; (c < 'a' || c > 'z') && unit[j] != '%' {
			return 0, "", false
		}
	}
	return n, unit, true
}

// px converts an absolute length to CSS pixels (em and rem at the
// default 16px); ok is false for other units and bare non-zero numbers.
func px(v string) (float64, bool) {
	n, unit, ok := number(v)
	if !ok {
		return 0, false
	}
	switch strings.ToLower(unit) {
	case "px":
		return n, true
	case "":
		return 0, n == 0
	case "em", "rem":
		return n * 16, true
	case "pt":
		return n * 4 / 3, true
	case "pc":
		return n * 16, true
	case "in":
		return n * 96, true
	case "cm":
		return n * 96 / 2.54, true
	case "mm":
		return n * 96 / 25.4, true
	}
	return 0, false
}

// farNegative: a left, top or text-indent that puts the element off the
// page (-9999px), not a nudge (-10px).
func farNegative(v string) bool {
	n, ok := px(v)
	return ok && n <= -1000
}

// tiny: a width or height of zero in any unit, or of at most 1px.
func tiny(v string) bool {
	n, unit, ok := number(v)
	if !ok {
		return false
	}
	return n == 0 || strings.EqualFold(unit, "px") && n >= 0 && n <= 1
}

func lowOpacity(v string) bool {
	n, unit, ok := number(v)
	switch {
	case !ok:
		return false
	case unit == "%":
		n /= 100
	case unit != "":
		return false
	}
	return n < 0.1
}

// args returns the arguments of v if it is the call name(...), in any
// case, split at commas or white space; nil otherwise.
func args(v, name string, buf []string) []string {
	if len(v) < len(name)+2 || !strings.EqualFold(v[:len(name)], name) || v[len(name)] != '(' {
		return nil
	}
	in, _, ok := strings.Cut(v[len(name)+1:], ")")
	if !ok {
		return nil
	}
	return appendFields(buf[:0], in)
}

// appendFields splits s at commas and white space.
func appendFields(dst []string, s string) []string {
	for s != "" {
		i := strings.IndexAny(s, ", \t\n\r\f")
		if i < 0 {
			return append(dst, s)
		}
		if i > 0 {
			dst = append(dst, s[:i])
		}
		s = s[i+1:]
	}
	return dst
}

// emptyRect: clip: rect(top, right, bottom, left) with no area left.
func emptyRect(v string) bool {
	var buf [4]string
	a := args(v, "rect", buf[:])
	if len(a) != 4 {
		return false
	}
	var e [4]float64
	var auto [4]bool
	for i, s := range a {
		if is(s, "auto") {
			auto[i] = true
			continue
		}
		n, ok := px(s)
		if !ok {
			return false
		}
		e[i] = n
	}
	// auto is the box's edge: top and left 0, right and bottom unknown.
	return !auto[1] && e[1]-e[3] <= 1 || !auto[2] && e[2]-e[0] <= 1
}

// emptyClipPath: inset() with opposite sides meeting (in %), or circle(0).
func emptyClipPath(v string) bool {
	var buf [8]string
	if a := args(v, "circle", buf[:]); len(a) > 0 {
		n, _, ok := number(a[0])
		return ok && n == 0
	}
	a := args(v, "inset", buf[:])
	if len(a) == 0 {
		return false
	}
	var s [4]float64
	k := 0
	for _, f := range a {
		if is(f, "round") {
			break
		}
		n, unit, ok := number(f)
		if !ok || k == 4 || unit != "%" && n != 0 {
			return false
		}
		s[k] = n
		k++
	}
	switch k { // as margins: top [right [bottom [left]]]
	case 1:
		s[1], s[2], s[3] = s[0], s[0], s[0]
	case 2:
		s[2], s[3] = s[0], s[1]
	case 3:
		s[3] = s[1]
	}
	return s[0]+s[2] >= 100 || s[1]+s[3] >= 100
}

// scaledAway: a transform list with a scale function that flattens x or y.
func scaledAway(v string) bool {
	for rest := v; rest != ""; {
		i := indexFold(rest, "scale")
		if i < 0 {
			return false
		}
		rest = rest[i:]
		var buf [4]string
		for _, fn := range [...]string{"scale", "scaleX", "scaleY", "scale3d"} {
			a := args(rest, fn, buf[:])
			if len(a) == 0 {
				continue
			}
			switch {
			case len(a) == 1 || fn == "scaleX" || fn == "scaleY":
				if zero(a[0]) {
					return true
				}
			default: // x, y (and z, which does not flatten the page)
				if zero(a[0]) || zero(a[1]) {
					return true
				}
			}
		}
		rest = rest[len("scale"):]
	}
	return false
}

// indexFold is strings.Index for a lower-case ASCII word, in any case.
func indexFold(s, word string) int {
	for i := 0; i+len(word) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(word)], word) {
			return i
		}
	}
	return -1
}

// zeroScale: the scale property, "x [y [z]]", with x or y zero.
func zeroScale(v string) bool {
	var buf [3]string
	a := appendFields(buf[:0], v)
	return len(a) > 0 && (zero(a[0]) || len(a) > 1 && zero(a[1]))
}

func zero(s string) bool {
	n, unit, ok := number(s)
	return ok && n == 0 && (unit == "" || unit == "%")
}

// nextDeclaration splits off the declaration before the first ';' that is
// outside quotes and brackets (a url("a;b") is one value).
func nextDeclaration(s string) (decl, rest string) {
	var quote byte
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(' || c == '[' || c == '{':
			depth++
		case (c == ')' || c == ']' || c == '}') && depth > 0:
			depth--
		case c == ';' && depth == 0:
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// importance strips a trailing !important (any case, spaces allowed
// around the '!') from a declaration's value.
func importance(v string) (string, bool) {
	const word = "important"
	if len(v) < len(word)+1 || !strings.EqualFold(v[len(v)-len(word):], word) {
		return v, false
	}
	head := strings.TrimRight(v[:len(v)-len(word)], " \t\n\r\f")
	if !strings.HasSuffix(head, "!") {
		return v, false
	}
	return strings.TrimSpace(head[:len(head)-1]), true
}

// unescapeCSS removes comments (outside strings) and resolves backslash
// escapes (CSS Syntax §4.3.7): a hex code point of up to six digits and
// one optional white space after it, an escaped newline (nothing), or the
// character itself. An escaped character is never syntax: one that would
// be (`\;`, `\"`, `\!`, `\ `) becomes U+FFFD, which no name or keyword
// holds, so it can neither split a declaration nor open a string.
func unescapeCSS(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	var quote byte
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			j := i + 1
			for j < len(s) && j < i+7 && isHex(s[j]) {
				j++
			}
			var r rune
			if j == i+1 {
				if s[j] == '\n' {
					i = j + 1 // a line continuation inside a string
					continue
				}
				var size int
				r, size = utf8.DecodeRuneInString(s[j:])
				j += size
			} else {
				cp, _ := strconv.ParseUint(s[i+1:j], 16, 32)
				r = rune(cp)
				if cp == 0 || cp > utf8.MaxRune || (cp >= 0xD800 && cp <= 0xDFFF) {
					r = utf8.RuneError
				}
				if j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n') {
					j++
				}
			}
			if r < utf8.RuneSelf && !isNameByte(byte(r)) {
				r = utf8.RuneError
			}
			b.WriteRune(r)
			i = j
		case quote != 0:
			if c == quote {
				quote = 0
			}
			b.WriteByte(c)
			i++
		case c == '"' || c == '\'':
			quote = c
			b.WriteByte(c)
			i++
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return b.String() // an open comment runs to the end
			}
			i += 2 + end + 2
			b.WriteByte(' ') // a comment separates tokens: disp/**/lay is not display
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
