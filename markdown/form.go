package markdown

import (
	"net/url"
	"strings"
	"unicode"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Form stubs: a form in the main content is written as a short fenced
// block (```form) that tells an agent the form is there and what it asks
// for, never what is in it:
//
//	POST https://shop.example/contact
//	- Your name (name): text, required
//	- Topic (topic): select [Repairs | Custom order]
//	- Message (message): textarea
//
// Field values, textarea content, hidden inputs (CSRF tokens among them)
// and the values of options are never read; option labels, labels,
// aria-labels, placeholders and names are, each on one line and cut at
// maxStubText characters. A form with no field (a button alone) gets no
// stub, and method="dialog" forms, which submit nothing, none either.

const (
	maxStubText    = 80
	maxStubFields  = 40
	maxStubOptions = 20
)

// formStub writes form's stub ("" for none), its action resolved against
// base (kept site-relative unless absolute, as links are).
func formStub(form *html.Node, base *url.URL, absolute bool) string {
	method := strings.ToUpper(strings.TrimSpace(attr(form, "method")))
	switch method {
	case "POST":
	case "DIALOG":
		return ""
	default:
		method = "GET" // as browsers read a missing or unknown method
	}
	labels := map[string]string{}
	find(form, func(n *html.Node) bool {
		if n.DataAtom == atom.Label && n.Namespace == "" {
			if id := attr(n, "for"); id != "" {
				if _, ok := labels[id]; !ok {
					labels[id] = stubText(ownText(n))
				}
			}
		}
		return false
	})
	var b strings.Builder
	b.WriteString(method)
	if action := stubAction(attr(form, "action"), base, absolute); action != "" {
		b.WriteByte(' ')
		b.WriteString(action)
	}
	fields := 0
	radios := map[string]int{} // name → index in lines
	type line struct {
		label, name, kind, flags string
		opts                     []string
	}
	var lines []line
	find(form, func(n *html.Node) bool {
		if n.Namespace != "" || fields >= maxStubFields {
			return false
		}
		var kind string
		switch n.DataAtom {
		case atom.Input:
			kind = strings.ToLower(strings.TrimSpace(attr(n, "type")))
			switch kind {
			case "hidden", "submit", "reset", "button", "image":
				return false
			case "text", "email", "tel", "url", "number", "password", "search", "date", "time",
				"datetime-local", "month", "week", "color", "range", "checkbox", "radio", "file":
			default:
				kind = "text"
			}
		case atom.Textarea:
			kind = "textarea"
		case atom.Select:
			kind = "select"
			if hasAttr(n, "multiple") {
				kind = "select multiple"
			}
		default:
			return false
		}
		name := stubText(attr(n, "name"))
		label := fieldLabel(n, labels)
		flags := ""
		if hasAttr(n, "required") || strings.EqualFold(strings.TrimSpace(attr(n, "aria-required")), "true") {
			flags = ", required"
		}
		if kind == "radio" && name != "" {
			if i, ok := radios[name]; ok {
				if len(lines[i].opts) < maxStubOptions && label != "" {
					lines[i].opts = append(lines[i].opts, label)
				}
				return false
			}
			radios[name] = len(lines)
			l := line{label: groupLabel(n), name: name, kind: kind, flags: flags}
			if label != "" {
				l.opts = []string{label}
			}
			lines = append(lines, l)
			fields++
			return false
		}
		if label == "" && name == "" {
			return false // neither sent nor named: nothing to tell
		}
		l := line{label: label, name: name, kind: kind, flags: flags}
		if n.DataAtom == atom.Select {
			find(n, func(o *html.Node) bool {
				if o.DataAtom == atom.Option && len(l.opts) < maxStubOptions && !hasAttr(o, "disabled") && !hasAttr(o, "hidden") {
					if t := stubText(optionLabel(o)); t != "" {
						l.opts = append(l.opts, t)
					}
				}
				return false
			})
		}
		lines = append(lines, l)
		fields++
		return false
	})
	if fields == 0 {
		return ""
	}
	for _, l := range lines {
		b.WriteString("\n- ")
		switch {
		case l.label != "" && l.name != "":
			b.WriteString(l.label + " (" + l.name + ")")
		case l.label != "":
			b.WriteString(l.label)
		default:
			b.WriteString("(" + l.name + ")")
		}
		b.WriteString(": " + l.kind + l.flags)
		if len(l.opts) > 0 {
			b.WriteString(" [" + strings.Join(l.opts, " | ") + "]")
		}
	}
	return b.String()
}

// stubAction resolves a form's action; "" for a script's or one that
// does not parse. An empty action submits to the page itself.
func stubAction(raw string, base *url.URL, absolute bool) string {
	raw = strings.TrimSpace(raw)
	if scriptOrDataURL(raw) {
		return ""
	}
	u, err := base.Parse(raw)
	if err != nil {
		return ""
	}
	if !absolute && u.Host == base.Host && u.Scheme == base.Scheme {
		u.Scheme, u.Host = "", ""
	}
	u.User = nil // credentials in an action are nobody's business
	return stubText(u.String())
}

// fieldLabel: the <label for=id>, the label around the field, its
// aria-label, title or placeholder.
func fieldLabel(n *html.Node, labels map[string]string) string {
	if id := attr(n, "id"); id != "" && labels[id] != "" {
		return labels[id]
	}
	for p := n.Parent; p != nil; p = p.Parent {
		if p.DataAtom == atom.Label {
			return stubText(ownText(p))
		}
		if p.DataAtom == atom.Form {
			break
		}
	}
	for _, k := range []string{"aria-label", "title", "placeholder"} {
		if t := stubText(attr(n, k)); t != "" {
			return t
		}
	}
	return ""
}

// groupLabel: a radio group's fieldset legend, if any.
func groupLabel(n *html.Node) string {
	for p := n.Parent; p != nil && p.DataAtom != atom.Form; p = p.Parent {
		if p.DataAtom == atom.Fieldset {
			if l := find(p, func(c *html.Node) bool { return c.DataAtom == atom.Legend }); l != nil {
				return stubText(ownText(l))
			}
			return ""
		}
	}
	return ""
}

// ownText is a label's text less its fields' (a <select>'s options, a
// <textarea>'s content).
func ownText(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			switch {
			case c.Type == html.TextNode:
				b.WriteString(c.Data)
			case c.DataAtom == atom.Select, c.DataAtom == atom.Textarea:
			default:
				walk(c)
			}
		}
	}
	walk(n)
	return b.String()
}

// optionLabel: an option's label attribute or its text (never its value).
func optionLabel(o *html.Node) string {
	if l := attr(o, "label"); strings.TrimSpace(l) != "" {
		return l
	}
	return ownText(o)
}

// stubText puts s on one line of at most maxStubText characters, without
// control characters or backticks (a fence must not close early).
func stubText(s string) string {
	var b strings.Builder
	n, space := 0, false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r) || r == '`' || r == unicode.ReplacementChar || !unicode.IsPrint(r):
			continue
		}
		if n >= maxStubText {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
