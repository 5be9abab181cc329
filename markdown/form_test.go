package markdown

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// TestFormStub: a contact form becomes a ```form block naming its method,
// action and fields, and nothing typed or hidden in it.
func TestFormStub(t *testing.T) {
	page := `<html><body><main><h1>Contact</h1><p>Write to us.</p>
<form method="post" action="/contact/send">
  <input type="hidden" name="csrf_token" value="tok-SECRET-1">
  <label for="n">Your name</label> <input id="n" name="name" required value="Jane SECRET-2">
  <label>Email <input type="email" name="email" aria-required="true"></label>
  <select name="topic" aria-label="Topic"><option value="" disabled>Choose</option><option value="rep-SECRET-3" selected>Repairs</option><option>Custom order</option></select>
  <fieldset><legend>Reply by</legend><label><input type="radio" name="reply" value="SECRET-4"> Phone</label><label><input type="radio" name="reply"> Email</label></fieldset>
  <textarea name="message" placeholder="Your message">SECRET-5 draft</textarea>
  <input type="password" name="pw" value="SECRET-6">
  <input name="website" style="display:none">
  <button>Send</button>
</form></main></body></html>`
	md, err := New(Options{}).Convert([]byte(page), "text/html", mustURL("https://harbor.example/contact"))
	if err != nil {
		t.Fatal(err)
	}
	want := "```form\nPOST https://harbor.example/contact/send\n" +
		"- Your name (name): text, required\n" +
		"- Email (email): email, required\n" +
		"- Topic (topic): select [Repairs | Custom order]\n" +
		"- Reply by (reply): radio [Phone | Email]\n" +
		"- Your message (message): textarea\n" +
		"- (pw): password\n```"
	if !strings.Contains(string(md), want) {
		t.Errorf("Markdown lacks the form's stub %q:\n%s", want, md)
	}
	for _, not := range []string{"SECRET", "csrf", "website", "Send", "Choose"} {
		if strings.Contains(string(md), not) {
			t.Errorf("Markdown holds %q:\n%s", not, md)
		}
	}
}

// TestFormStubNone: hidden forms, dialogs and forms with no field get no
// stub; a form around the whole page stays the page.
func TestFormStubNone(t *testing.T) {
	for name, page := range map[string]string{
		"hidden":      `<main><h1>A</h1><p>x</p><form hidden><input name="q"></form></main>`,
		"dialog":      `<main><h1>A</h1><p>x</p><form method="dialog"><input name="q"></form></main>`,
		"button only": `<main><h1>A</h1><p>x</p><form action="/cart"><input type="hidden" name="id" value="7"><button>Add</button></form></main>`,
		"in nav":      `<nav><form><input name="q"></form></nav><main><h1>A</h1><p>x</p></main>`,
	} {
		md, err := New(Options{}).Convert([]byte(page), "text/html", nil)
		if err != nil || string(md) != "# A\n\nx\n" {
			t.Errorf("%s: %q %v", name, md, err)
		}
	}
	md, _ := New(Options{}).Convert([]byte(`<form action="/x.aspx"><h1>A</h1><p>x</p><input name="q"></form>`), "text/html", nil)
	if string(md) != "# A\n\nx\n" {
		t.Errorf("page form: %q", md)
	}
}

// FuzzFormStub: any form's stub is lines of bounded length with no
// backtick, and holds none of what the page puts in values, textareas
// or hidden inputs.
func FuzzFormStub(f *testing.F) {
	f.Add(`<form method=post action="/c"><label for=a>Name</label><input id=a name=n required><select name=s><option>One<option>Two</select><textarea name=m></textarea></form>`)
	f.Add("<form><label>X\n```\n<input name=\"a`b\"></label><input type=radio name=r><input type=radio name=r></form>")
	f.Add(`<form action="javascript:alert(1)"><input name=x placeholder="` + strings.Repeat("é", 200) + `"></form>`)
	const secret = "zq9SECRET"
	base := mustURL("https://shop.example/p")
	f.Fuzz(func(t *testing.T, page string) {
		doc, err := html.Parse(strings.NewReader(page))
		if err != nil {
			return
		}
		var forms []*html.Node
		walkTree(doc, func(n *html.Node) bool {
			switch {
			case n.Type != html.ElementNode:
			case n.DataAtom == atom.Form:
				forms = append(forms, n)
			case n.DataAtom == atom.Input && strings.EqualFold(attr(n, "type"), "hidden"):
				n.Attr = append(n.Attr[:0], html.Attribute{Key: "type", Val: "hidden"},
					html.Attribute{Key: "name", Val: secret}, html.Attribute{Key: "value", Val: secret})
			case n.DataAtom == atom.Textarea:
				n.FirstChild, n.LastChild = nil, nil
				n.AppendChild(&html.Node{Type: html.TextNode, Data: secret})
			case n.DataAtom == atom.Input || n.DataAtom == atom.Option || n.DataAtom == atom.Select:
				for i := range n.Attr {
					if n.Attr[i].Key == "value" {
						n.Attr[i].Val = secret
					}
				}
				if !hasAttr(n, "value") {
					n.Attr = append(n.Attr, html.Attribute{Key: "value", Val: secret})
				}
			}
			return true
		}, nil)
		for _, form := range forms {
			stub := formStub(form, base, true)
			if strings.Contains(stub, secret) || strings.Contains(stub, "`") {
				t.Fatalf("stub %q of %q", stub, page)
			}
			for _, l := range strings.Split(stub, "\n") {
				if len([]rune(l)) > 3*maxStubText+20+maxStubOptions*(maxStubText+3) {
					t.Fatalf("line of %d characters in %q", len([]rune(l)), stub)
				}
			}
		}
	})
}
