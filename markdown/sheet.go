package markdown

import (
	"math/bits"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// The page's own <style> elements hide elements as inline styles do (see
// style.go for what hides). External stylesheets are not fetched: a
// conversion makes no requests. What is read:
//
//   - Rules whose selector is one compound selector (a type, *, #id,
//     .class, [attr], [attr=value] and the other attribute operators, in
//     a list or not) hide and show, with the cascade's order: !important,
//     inline over stylesheet, specificity, source order.
//   - Rules inside at-rules (@media, @supports, @layer, @container) and
//     <style media="..."> other than all, and rules whose selector has
//     combinators or pseudo-classes (.tabs > .tab.active, .x:hover), can
//     show an element, never hide it: they apply to some visitors, in some
//     states, which is enough to keep the text. Their rightmost compound
//     selector stands for them (it matches at least the elements they do).
//     A state the visitor puts that element itself in (.x:hover, :active,
//     :focus, :focus-visible, :focus-within, :target) shows it only if it
//     can enter the state, hidden as it is (see reach): a display:none
//     element is never hovered, an off-screen skip link is focused. A
//     state of an ancestor (.menu:hover .sub, a dropdown) shows as any
//     combinator does.
//   - Rules for pseudo-elements (::before) do not apply to the element.
//   - Nested rules, @import and the rest are not read.
//
// Bounds, so that a hostile page cannot make conversion slow: 256 KiB of
// style text, 4096 selectors of rules that set a property read, 128 of
// them that name no id, class or type (each is tried on every element),
// and 2^21 selector matches in all (4096 rules on one class, on 1000
// elements of that class, would be 4 million). A page over a bound is
// converted without its stylesheets (inline styles still count): reading
// part of them could miss the rule that shows an element.
//
// Why a reader of our own rather than cascadia (which goquery brings) or a
// CSS tokenizer: what a rule may do depends on its selector's shape (only
// a lone compound selector hides; combinators, pseudo-classes and at-rules
// only show, through their rightmost compound), which a full matcher does
// not tell; and the bounds above must hold while reading, before any
// matching. The subset read is small (compound selectors, the
// declarations style.go reads), and FuzzStyleSheet holds it.
const (
	maxSheetBytes   = 256 << 10
	maxSheetRules   = 4096
	maxUnkeyedRules = 128
	maxSheetMatches = 1 << 21
	maxAtRuleDepth  = 4
)

// A sheet is the page's rules that set a property read, indexed by the
// id, class or type their selector requires, as browsers index them.
type sheet struct {
	rules   []sheetRule
	byID    map[string][]int32
	byClass map[string][]int32
	byTag   map[string][]int32
	unkeyed []int32
	hides   bool            // some rule can hide
	fonts   bool            // some rule sets a font size
	reveals bool            // some rule sets visibility:visible (or initial)
	over    bool            // a bound was crossed: the sheet is not used
	targets map[string]bool // ids the page's links name (see reach)
	matches int             // selectors tried so far
}

type sheetRule struct {
	sel      compound
	decls    []decl
	prio     uint64 // specificity and order; see cascade
	showOnly bool
	hides    bool
	states   alts // the element's own states it needs
}

// addStyle reads one <style> element's text. showOnly: a media attribute
// other than "all".
func (sh *sheet) addStyle(css string, showOnly bool, budget *int) {
	if sh.over {
		return
	}
	if *budget -= len(css); *budget < 0 {
		sh.over = true
		return
	}
	if sh.rules == nil {
		// At most a selector per '{' or ',': one allocation, not a dozen.
		sh.rules = make([]sheetRule, 0, min(maxSheetRules, strings.Count(css, "{")+strings.Count(css, ",")))
	}
	sh.readRules(css, showOnly, 0)
}

// readRules reads a list of rules (a style element's text, or an at-rule's
// block).
func (sh *sheet) readRules(css string, showOnly bool, depth int) {
	for i := 0; i < len(css) && !sh.over; {
		c := css[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
			continue
		case strings.HasPrefix(css[i:], "<!--"):
			i += 4
			continue
		case strings.HasPrefix(css[i:], "-->"):
			i += 3
			continue
		case strings.HasPrefix(css[i:], "/*"):
			end := strings.Index(css[i+2:], "*/")
			if end < 0 {
				return
			}
			i += 2 + end + 2
			continue
		}
		// A prelude up to '{' (or ';' ending an at-rule statement), then the
		// block up to its '}'.
		stops := "{"
		if c == '@' {
			stops = "{;"
		}
		end, stop := scanTo(css, i, stops)
		prelude := css[i:end]
		if stop == ';' {
			i = end + 1
			continue
		}
		blockEnd, _ := scanTo(css, end+1, "}")
		var block string
		if end < len(css) {
			block = css[end+1 : blockEnd]
		}
		i = blockEnd + 1
		if c == '@' {
			switch strings.ToLower(atName(prelude)) {
			case "media", "supports", "layer", "container", "scope", "document", "-moz-document":
				if depth < maxAtRuleDepth {
					sh.readRules(block, true, depth+1)
				}
			}
			continue
		}
		sh.addRule(prelude, block, showOnly)
	}
}

func atName(prelude string) string {
	j := 1
	for j < len(prelude) && (isNameByte(prelude[j]) || prelude[j] >= utf8.RuneSelf) {
		j++
	}
	return prelude[1:j]
}

// scanTo returns the index of the first byte of stops at nesting depth 0
// at or after i, outside strings and comments, and that byte; len(s) and
// 0 when there is none (an open block runs to the end, as in a browser).
func scanTo(s string, i int, stops string) (int, byte) {
	// Jump from one byte that matters to the next: most are plain text.
	special := scanSpecials(stops)
	depth := 0
	for i < len(s) {
		j := strings.IndexAny(s[i:], special)
		if j < 0 {
			break
		}
		i += j
		c := s[i]
		switch {
		case c == '\\':
			i += 2
			continue
		case c == '"' || c == '\'':
			i++
			for i < len(s) && s[i] != c && s[i] != '\n' {
				if s[i] == '\\' {
					i++
				}
				i++
			}
		case c == '/':
			if i+1 < len(s) && s[i+1] == '*' {
				end := strings.Index(s[i+2:], "*/")
				if end < 0 {
					return len(s), 0
				}
				i += 2 + end + 1
			} else if depth == 0 && strings.IndexByte(stops, c) >= 0 {
				return i, c
			}
		case depth == 0 && strings.IndexByte(stops, c) >= 0:
			return i, c
		case c == '{' || c == '(' || c == '[':
			depth++
		case (c == '}' || c == ')' || c == ']') && depth > 0:
			depth--
		}
		i++
	}
	return len(s), 0
}

// scanSpecials is the set of bytes scanTo stops at for stops.
func scanSpecials(stops string) string {
	const base = `\"'/{}()[]`
	switch stops {
	case "{", "}", ")", "]", "/":
		return base
	case "{;":
		return base + ";"
	case ",":
		return base + ","
	}
	return base + " \t\n\r\f>+~"
}

// addRule adds a rule's selectors, if its block sets a property read.
func (sh *sheet) addRule(prelude, block string, showOnly bool) {
	decls := appendDecls(nil, block)
	if len(decls) == 0 {
		return
	}
	var hides, font, reveals bool
	for _, d := range decls {
		hides = hides || suspect(int(d.prop), d.value)
		font = font || d.prop == pFontSize
		reveals = reveals || d.prop == pVisibility && (is(d.value, "visible") || is(d.value, "initial"))
	}
	if strings.Contains(prelude, "/*") {
		prelude = stripComments(prelude)
	}
	for rest := prelude; rest != ""; {
		end, _ := scanTo(rest, 0, ",")
		sel := strings.TrimSpace(rest[:end])
		if end < len(rest) {
			rest = rest[end+1:]
		} else {
			rest = ""
		}
		c, spec, states, exact, ok := parseSelector(sel)
		if !ok {
			continue
		}
		if len(sh.rules) == maxSheetRules {
			sh.over = true
			return
		}
		idx := int32(len(sh.rules))
		r := sheetRule{sel: c, decls: decls, prio: spec<<20 | uint64(idx), showOnly: showOnly || !exact, states: states}
		r.hides = hides && !r.showOnly
		sh.hides = sh.hides || r.hides
		sh.fonts = sh.fonts || font
		sh.reveals = sh.reveals || reveals
		switch {
		case c.id != "":
			sh.byID = addIndex(sh.byID, c.id, idx)
		case len(c.classes) > 0:
			sh.byClass = addIndex(sh.byClass, c.classes[0], idx)
		case c.tag != "":
			sh.byTag = addIndex(sh.byTag, c.tag, idx)
		default:
			if len(sh.unkeyed) == maxUnkeyedRules {
				sh.over = true
				return
			}
			sh.unkeyed = append(sh.unkeyed, idx)
		}
		sh.rules = append(sh.rules, r)
	}
}

func addIndex(m map[string][]int32, key string, idx int32) map[string][]int32 {
	if m == nil {
		m = make(map[string][]int32)
	}
	m[key] = append(m[key], idx)
	return m
}

// stripComments removes comments outside strings; each separates tokens
// as a space would.
func stripComments(s string) string {
	var b strings.Builder
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			b.WriteByte(c)
			i++
			c = s[i]
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return b.String()
			}
			i += 2 + end + 1
			c = ' '
		}
		b.WriteByte(c)
	}
	return b.String()
}

// match returns the indexes of the rules whose selector matches n,
// appended to dst.
func (sh *sheet) match(n *html.Node, dst []int32) []int32 {
	try := func(idx []int32) {
		sh.matches += len(idx)
		for _, i := range idx {
			if sh.rules[i].sel.match(n) {
				dst = append(dst, i)
			}
		}
	}
	for _, a := range n.Attr {
		if a.Namespace != "" {
			continue
		}
		switch a.Key {
		case "id":
			if sh.byID != nil {
				try(sh.byID[a.Val])
			}
		case "class":
			if sh.byClass != nil {
				for rest := a.Val; rest != ""; {
					var tok string
					tok, rest = nextToken(rest)
					try(sh.byClass[tok])
				}
			}
		}
	}
	if sh.byTag != nil {
		try(sh.byTag[n.Data])
	}
	try(sh.unkeyed)
	return dst
}

// nextToken splits off the first white-space-separated token of s.
func nextToken(s string) (tok, rest string) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	j := i
	for j < len(s) && !isSpace(s[j]) {
		j++
	}
	return s[i:j], s[j:]
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

// A compound selector: all of its parts must match.
type compound struct {
	tag     string // lower case; "" for any
	id      string
	classes []string
	attrs   []attrSel
}

// States an element enters by a visitor's action, which a rule for it
// needs (.x:hover): the rule shows an element only if the element, hidden
// as it is without it, can enter them (see sheet.reach).
const (
	stateHover       = 1 << iota // :hover, :active
	stateFocus                   // :focus, :focus-visible
	stateFocusWithin             // :focus-within
	stateTarget                  // :target, :target-within
	// stateNever: a state not read (nested past the bound, a descendant's
	// :target), which the element is taken never to enter: a rule that
	// needs it shows nothing, as a hidden element stays hidden.
	stateNever
)

// alts is what a selector needs of the element's states, as
// alternatives: bit m set means the states of mask m (state* bits)
// suffice. A compound needs each of its pseudo-classes (and), :is() one
// of its branches (a union).
type alts uint32

// noState: the selector needs no state.
const noState alts = 1

// need returns the requirement of the states in mask.
func need(mask uint8) alts { return 1 << mask }

// free reports whether no state is needed.
func (a alts) free() bool { return a&noState != 0 }

// and returns what needs both a and b: each pair of alternatives joined.
func (a alts) and(b alts) alts {
	var r alts
	for x := a; x != 0; x &= x - 1 {
		i := bits.TrailingZeros32(uint32(x))
		for y := b; y != 0; y &= y - 1 {
			r |= 1 << (i | bits.TrailingZeros32(uint32(y)))
		}
	}
	return r
}

// met reports whether an element that can enter the states in can meets
// one of the alternatives.
func (a alts) met(can uint8) bool {
	for x := a; x != 0; x &= x - 1 {
		if uint8(bits.TrailingZeros32(uint32(x)))&^can == 0 {
			return true
		}
	}
	return false
}

type attrSel struct {
	key, val string
	op       byte // 0: present; '=', '~', '|', '^', '$', '*'
	fold     bool // the i flag
}

// parseSelector reads a complex selector's rightmost compound selector,
// the specificity of the whole (ids<<16 | classes<<8 | types, each at
// most 255), the states of the element it needs (state* bits), and
// whether the compound is the whole selector with no pseudo-class
// (exact). ok is false for what cannot be read and for
// pseudo-elements, which style another box than the element.
func parseSelector(sel string) (c compound, spec uint64, states alts, exact, ok bool) {
	states = noState
	if sel == "" {
		return c, 0, 0, false, false
	}
	// The rightmost compound starts after the last combinator at depth 0.
	start := 0
	for i := 0; i < len(sel); {
		end, stop := scanTo(sel, i, " \t\n\r\f>+~")
		if stop == 0 {
			break
		}
		i = end + 1
		start = i
	}
	exact = strings.TrimSpace(sel[:start]) == ""
	var ids, classes, types uint64
	countSpec := func(s string) {
		for i := 0; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '#':
				ids++
			case '.', '[':
				classes++
			case ':':
				if i+1 < len(s) && s[i+1] == ':' {
					types++
					i++
				} else {
					classes++
				}
			default:
				if (i == 0 || strings.IndexByte(" \t\n\r\f>+~(", s[i-1]) >= 0) && (isNameByte(s[i]) && s[i] != '-' || s[i] >= utf8.RuneSelf) {
					types++
				}
			}
		}
	}
	countSpec(sel[:start])
	s := sel[start:]
	i := 0
	if i < len(s) && s[i] == '*' {
		i++
	} else if name, j := ident(s, i); j > i {
		c.tag = strings.ToLower(name)
		i = j
	}
	for i < len(s) {
		switch s[i] {
		case '#', '.':
			name, j := ident(s, i+1)
			if j == i+1 {
				return c, 0, 0, false, false
			}
			if s[i] == '#' {
				c.id = name
				ids++
			} else {
				c.classes = append(c.classes, name)
				classes++
			}
			i = j
		case '[':
			a, j, good := parseAttrSel(s, i+1)
			if !good {
				return c, 0, 0, false, false
			}
			c.attrs = append(c.attrs, a)
			classes++
			i = j
		case ':':
			if i+1 < len(s) && s[i+1] == ':' {
				return c, 0, 0, false, false
			}
			name, j := ident(s, i+1)
			switch strings.ToLower(name) {
			case "before", "after", "first-line", "first-letter":
				return c, 0, 0, false, false // pseudo-elements in the old syntax
			}
			if j < len(s) && s[j] == '(' {
				end, _ := scanTo(s, j+1, ")")
				states = states.and(funcStates(name, s[j+1:end], false, 0))
				j = end + 1
			} else {
				states = states.and(need(userState(name)))
			}
			exact = false
			classes++
			i = j
		default:
			return c, 0, 0, false, false
		}
	}
	if c.tag != "" {
		types++
	}
	spec = min(ids, 255)<<16 | min(classes, 255)<<8 | min(types, 255)
	return c, spec, states, exact, true
}

// funcStates returns the states of the element a functional
// pseudo-class needs (state* bits): those of its argument list for :is(),
// :where() and :matches(), those under a second negation for :not()
// (:not(:not(:focus)) is :focus; :not(:hover) is the element at rest).
// neg: the list is already under a :not(). The branches of :is() are
// alternatives (:is(:focus, :hover) needs either): a branch with no state
// makes the list need none. Each branch is
// read by its rightmost compound: a state of an ancestor does not count.
// :has() is read by hasStates; lists nested past maxAtRuleDepth need
// stateNever.
func funcStates(name, list string, neg bool, depth int) alts {
	switch strings.ToLower(name) {
	case "is", "where", "matches", "-webkit-any", "-moz-any":
	case "not":
		neg = !neg
	case "has":
		if neg {
			return noState // :not(:has(:hover)): the element at rest
		}
		return need(hasStates(list))
	default:
		return noState
	}
	if depth >= maxAtRuleDepth {
		// Deeper nesting is not read (a bound, as for at-rules): the rule
		// must not read as needing no state, which would show the element.
		return need(stateNever)
	}
	// Under a negation the branches are all required (:not(a, b) is
	// neither); else they are alternatives.
	var all alts
	if neg {
		all = noState
	}
	for rest := list; rest != ""; {
		end, _ := scanTo(rest, 0, ",")
		branch := rest[:end]
		if end < len(rest) {
			rest = rest[end+1:]
		} else {
			rest = ""
		}
		// The rightmost compound starts after the last combinator.
		branch = strings.TrimSpace(branch)
		for i := 0; i < len(branch); {
			end, stop := scanTo(branch, i, " \t\n\r\f>+~")
			if stop == 0 {
				break
			}
			i = end + 1
			branch = branch[i:]
			i = 0
		}
		b := noState
		for i := 0; i < len(branch); i++ {
			switch branch[i] {
			case '\\':
				i++
			case '[':
				i, _ = scanTo(branch, i+1, "]")
			case ':':
				if i+1 < len(branch) && branch[i+1] == ':' {
					i++
					continue
				}
				pc, j := ident(branch, i+1)
				if j < len(branch) && branch[j] == '(' {
					end, _ := scanTo(branch, j+1, ")")
					b = b.and(funcStates(pc, branch[j+1:end], neg, depth+1))
					j = end
				} else if !neg {
					b = b.and(need(userState(pc)))
				}
				i = j - 1
			}
		}
		switch {
		case neg:
			all = all.and(b)
		case b.free():
			return noState
		default:
			all |= b
		}
	}
	if all == 0 {
		return noState // an empty list
	}
	return all
}

// hasStates reads the argument of :has(): a focused descendant is the
// element's :focus-within, a hovered one hovers the element too; a
// descendant's :target is not followed here, so it is never met.
func hasStates(list string) uint8 {
	var states uint8
	for i := 0; i < len(list); i++ {
		switch list[i] {
		case '\\':
			i++
		case ':':
			name, j := ident(list, i+1)
			switch st := userState(name); st {
			case stateFocus, stateFocusWithin:
				states |= stateFocusWithin
			case stateHover:
				states |= stateHover
			case stateTarget:
				states |= stateNever
			}
			i = j - 1
		}
	}
	return states
}

// userState returns the state bit of a pseudo-class a visitor's action
// puts the element in, 0 for the others.
func userState(name string) uint8 {
	switch strings.ToLower(name) {
	case "hover", "active":
		return stateHover
	case "focus", "focus-visible":
		return stateFocus
	case "focus-within":
		return stateFocusWithin
	case "target", "target-within":
		return stateTarget
	}
	return 0
}

// ident reads a CSS identifier at s[i:], escapes resolved; j is where it
// ends (i when there is none).
func ident(s string, i int) (string, int) {
	j := i
	escaped := false
scan:
	for j < len(s) {
		switch c := s[j]; {
		case c == '\\' && j+1 < len(s) && s[j+1] != '\n':
			escaped = true
			j += 2
		case isNameByte(c) || c >= utf8.RuneSelf:
			j++
		default:
			break scan
		}
	}
	if !escaped {
		return s[i:j], j
	}
	return unescapeIdent(s[i:j]), j
}

// unescapeIdent resolves the escapes of an identifier (`md\:hidden` is
// the class md:hidden).
func unescapeIdent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i + 1
		for j < len(s) && j < i+7 && isHex(s[j]) {
			j++
		}
		if j == i+1 {
			r, size := utf8.DecodeRuneInString(s[j:])
			b.WriteRune(r)
			i = j + size
			continue
		}
		var cp rune
		for _, h := range s[i+1 : j] {
			cp = cp<<4 | rune(hexVal(byte(h)))
		}
		if cp == 0 || cp > utf8.MaxRune || cp >= 0xD800 && cp <= 0xDFFF {
			cp = utf8.RuneError
		}
		b.WriteRune(cp)
		i = j
	}
	return b.String()
}

func hexVal(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// parseAttrSel reads an attribute selector after its '['.
func parseAttrSel(s string, i int) (a attrSel, j int, ok bool) {
	end, stop := scanTo(s, i, "]")
	if stop == 0 {
		return a, 0, false
	}
	in := strings.TrimSpace(s[i:end])
	name, k := ident(in, 0)
	if k == 0 {
		return a, 0, false
	}
	a.key = strings.ToLower(name)
	rest := strings.TrimSpace(in[k:])
	if rest == "" {
		return a, end + 1, true
	}
	if rest[0] == '=' {
		a.op, rest = '=', rest[1:]
	} else if len(rest) > 1 && rest[1] == '=' && strings.IndexByte("~|^$*", rest[0]) >= 0 {
		a.op, rest = rest[0], rest[2:]
	} else {
		return a, 0, false
	}
	rest = strings.TrimSpace(rest)
	if rest != "" && (rest[0] == '"' || rest[0] == '\'') {
		q := strings.IndexByte(rest[1:], rest[0])
		if q < 0 {
			return a, 0, false
		}
		a.val, rest = rest[1:1+q], rest[2+q:]
		if strings.IndexByte(a.val, '\\') >= 0 {
			a.val = unescapeIdent(a.val)
		}
	} else {
		var k int
		a.val, k = ident(rest, 0)
		if k == 0 {
			return a, 0, false
		}
		rest = rest[k:]
	}
	switch f := strings.TrimSpace(rest); {
	case f == "":
	case is(f, "i"):
		a.fold = true
	case is(f, "s"):
	default:
		return a, 0, false
	}
	return a, end + 1, true
}

func (c *compound) match(n *html.Node) bool {
	if c.tag != "" && n.Data != c.tag {
		return false
	}
	if c.id != "" && attr(n, "id") != c.id {
		return false
	}
	if len(c.classes) > 0 {
		list := attr(n, "class")
		for _, cl := range c.classes {
			if !hasToken(list, cl) {
				return false
			}
		}
	}
	for _, a := range c.attrs {
		if !a.match(n) {
			return false
		}
	}
	return true
}

func (a *attrSel) match(n *html.Node) bool {
	for _, at := range n.Attr {
		if at.Namespace != "" || at.Key != a.key {
			continue
		}
		v, want := at.Val, a.val
		if a.fold {
			v, want = strings.ToLower(v), strings.ToLower(want)
		}
		switch a.op {
		case 0:
			return true
		case '=':
			return v == want
		case '~':
			return want != "" && hasToken(v, want)
		case '|':
			return v == want || strings.HasPrefix(v, want+"-")
		case '^':
			return want != "" && strings.HasPrefix(v, want)
		case '$':
			return want != "" && strings.HasSuffix(v, want)
		case '*':
			return want != "" && strings.Contains(v, want)
		}
	}
	return false
}

// strip drops what the sheet and inline styles hide, and the text of
// elements at font size zero. Strip has removed the rest. It changes
// nothing and reports false when the page takes more than
// maxSheetMatches.
func (sh *sheet) strip(doc *html.Node) bool {
	var drop []*html.Node
	var m []int32
	var inline [8]decl
	// walk reads n's children; see stripper.walk for invisible and seen.
	var walk func(n *html.Node, zero, invisible bool) (seen bool)
	walk = func(n *html.Node, zero, invisible bool) (seen bool) {
		for c := n.FirstChild; c != nil && sh.matches <= maxSheetMatches; c = c.NextSibling {
			switch c.Type {
			case html.TextNode:
				if (zero || invisible) && !blank(c.Data) {
					drop = append(drop, c)
				}
			case html.ElementNode:
				if document(c) {
					seen = walk(c, zero, invisible) || seen
					continue
				}
				m = sh.match(c, m[:0])
				style := attr(c, "style")
				hides, states := false, false
				for _, i := range m {
					hides = hides || sh.rules[i].hides
					states = states || !sh.rules[i].states.free()
				}
				z, inv := zero, invisible
				if hides || style != "" || (zero || invisible) && len(m) > 0 {
					var cs cascade
					for _, i := range m {
						if r := &sh.rules[i]; r.states.free() {
							cs.add(r.decls, r.prio, r.showOnly)
						}
					}
					if style != "" {
						cs.add(appendDecls(inline[:0], style), prioInline, false)
					}
					if states {
						// Rare: the rules for states the element can enter,
						// hidden as it is without them.
						can := sh.reach(&cs, c, invisible)
						for _, i := range m {
							if r := &sh.rules[i]; !r.states.free() && r.states.met(can) {
								cs.add(r.decls, r.prio, r.showOnly)
							}
						}
					}
					if cs.hides(c, style) {
						drop = append(drop, c)
						continue
					}
					z = cs.zeroFont(zero)
					inv = cs.invisible(invisible, c, style)
				}
				if !inv {
					seen = seen || invisible
					walk(c, z, false)
					continue
				}
				mark := len(drop)
				if walk(c, z, true) {
					seen = true
					continue
				}
				drop = append(drop[:mark], c)
			}
		}
		return seen
	}
	walk(doc, false, false)
	if sh.matches > maxSheetMatches {
		sh.over = true
		return false
	}
	for _, n := range drop {
		n.Parent.RemoveChild(n)
	}
	return true
}

// reach returns the states (state* bits) element n can enter, as the
// cascade c has it without the rules for its states; invisible: its parent
// is visibility:hidden. An element not rendered (display:none, invisible)
// enters none. One moved or clipped out of view still takes keyboard
// focus if it can take focus (an off-screen skip link), or holds what
// can (:focus-within). Only a transparent one can also be hovered or
// pressed. :target, rendered or not, only when a link in the page names
// the element's id (a CSS-only tab or modal): else no visitor arrives
// with the page's URL naming it, and an agent never does.
func (sh *sheet) reach(c *cascade, n *html.Node, invisible bool) uint8 {
	var can uint8
	if id := attr(n, "id"); id != "" && sh.targets[id] {
		can = stateTarget
	}
	v := &c.val
	if is(v[pDisplay], "none") || is(v[pContentVisibility], "hidden") || is(v[pVisibility], "collapse") ||
		c.invisible(invisible, n, attr(n, "style")) {
		return can
	}
	if !c.gone() {
		can |= stateHover
	}
	if focusable(n) {
		can |= stateFocus | stateFocusWithin
	} else if holdsFocusable(n, func(cost int) bool {
		// Each element looked at counts as a match: a page of nested
		// elements under a :focus-within rule stays within the bound.
		sh.matches += cost
		return sh.matches > maxSheetMatches
	}) {
		can |= stateFocusWithin
	}
	return can
}

// holdsFocusable reports whether an element inside n (n excluded) can take
// focus. Subtrees a visitor never reaches are skipped: hidden or inert,
// out of the focus order by their inline style, <template> content, what
// the browser never renders (see unreachable, fallback). over is called for
// each element looked at with its cost (1, more for a long style
// attribute, read each time: nested containers look at the same
// elements); when it returns true the search stops and reports true (the
// callers' bound). The walk is iterative: hostile pages nest deeply.
func holdsFocusable(n *html.Node, over func(cost int) bool) bool {
	if over(1) { // n counts, as the elements inside do
		return true
	}
	for c := n.FirstChild; c != nil; {
		enter := false
		if c.Type == html.ElementNode {
			if over(1 + len(attr(c, "style"))/64) {
				return true
			}
			if !unreachable(c) {
				if focusable(c) {
					return true
				}
				enter = c.FirstChild != nil && !fallback(c)
			}
		}
		if enter {
			c = c.FirstChild
			continue
		}
		for c != n && c.NextSibling == nil {
			c = c.Parent
		}
		if c == n {
			return false
		}
		c = c.NextSibling
	}
	return false
}

// unreachable reports whether nothing in element n can take focus, by its
// markup and inline style alone. A closed <dialog> and a popover are not
// rendered until a script or a button opens them (a popover opened by a
// button stays dropped: see Strip).
func unreachable(n *html.Node) bool {
	if n.Namespace == "" && (n.DataAtom == atom.Template || n.DataAtom == atom.Dialog && !hasAttr(n, "open")) ||
		inert(n) || hasAttr(n, "popover") {
		return true
	}
	style := attr(n, "style")
	return style != "" && unrenderedStyle(n, style)
}

// unrenderedStyle reports whether an inline style takes its element out
// of the focus order: display:none, visibility:hidden (but for an
// entrance animation's start) or collapse, content-visibility:hidden. An
// element moved off screen, clipped or transparent still takes focus (a
// skip link).
func unrenderedStyle(n *html.Node, style string) bool {
	var buf [8]decl
	var c cascade
	c.add(appendDecls(buf[:0], style), prioInline, false)
	v := &c.val
	return is(v[pDisplay], "none") || is(v[pVisibility], "collapse") || is(v[pContentVisibility], "hidden") ||
		is(v[pVisibility], "hidden") && !entrance(n, style)
}

// inert reports whether n has the hidden or inert attribute: neither it
// nor what it holds takes focus.
func inert(n *html.Node) bool {
	for _, a := range n.Attr {
		if a.Namespace == "" && (a.Key == "hidden" || a.Key == "inert") {
			return true
		}
	}
	return false
}

// focusable reports whether a visitor can focus n, by keyboard or pointer.
// Its ancestors and its style are not looked at (see holdsFocusable; the
// callers have n's style).
func focusable(n *html.Node) bool {
	if n.Namespace != "" || inert(n) {
		return false
	}
	disabled := false
	for _, a := range n.Attr {
		if a.Namespace != "" {
			continue
		}
		switch a.Key {
		case "tabindex":
			return true
		case "contenteditable":
			if !is(strings.TrimSpace(a.Val), "false") {
				return true
			}
		case "href":
			if n.DataAtom == atom.A || n.DataAtom == atom.Area {
				return true
			}
		case "controls":
			if n.DataAtom == atom.Audio || n.DataAtom == atom.Video {
				return true
			}
		case "disabled":
			disabled = true
		case "type":
			if n.DataAtom == atom.Input && is(strings.TrimSpace(a.Val), "hidden") {
				return false
			}
		}
	}
	switch n.DataAtom {
	case atom.Button, atom.Input, atom.Select, atom.Textarea:
		return !disabled
	case atom.Summary, atom.Iframe:
		return true
	}
	return false
}

func blank(s string) bool {
	return strings.TrimLeft(s, " \t\n\r\f") == ""
}
