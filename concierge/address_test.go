package concierge

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/contact"
)

// kettle is the concierge of a small site of docs (path → page), named
// Kettle & Spoke, with no content document.
func kettle(t *testing.T, docs map[string]string) *Concierge {
	t.Helper()
	site := &fakeSite{docs: map[string]doc{}}
	for p, body := range docs {
		site.docs[p] = page200(body)
	}
	ix := NewIndex(site.fetch, IndexOptions{StartPages: []string{"/"}})
	if err := ix.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := demoManifest()
	m.Name, m.Description = "Kettle & Spoke", "Bicycle repairs."
	m.Endpoints.Content = ""
	return New(ix, m, Options{})
}

// TestWhereFromAPlainAddress: a site that writes its address as plain
// text — no <address>, no microdata, no word "address" — answers "Where
// are you?" with it: from a block theme's footer, from Twenty
// Seventeen's "Find Us" widget, or from the contact page's prose. Each
// got the general answer before (decision 33).
func TestWhereFromAPlainAddress(t *testing.T) {
	const mainPart = `<main><h1>Welcome</h1><p>Bicycle repairs and rentals by the harbour.</p><h2>Rentals</h2><p>Hybrids and e-bikes by the day.</p></main>`
	page := func(main, after string) string {
		return `<html><head><title>Kettle &amp; Spoke</title></head><body>` + main + after + `</body></html>`
	}
	for _, tc := range []struct {
		name, path string
		docs       map[string]string
		fact       string
	}{
		{"a block theme's footer", "/", map[string]string{"/": page(mainPart,
			`<footer class="wp-block-template-part"><div class="wp-block-group"><h2>Visit</h2><p>14 Quay Street<br>Harbourton HB1 4QS</p><p>Proudly powered by WordPress</p></div></footer>`)},
			"14 Quay Street"},
		{"Twenty Seventeen's Find Us widget", "/", map[string]string{"/": page(mainPart,
			`<aside id="secondary" class="widget-area" role="complementary"><section class="widget widget_text"><h2 class="widget-title">Find Us</h2><div class="textwidget"><p><strong>Location</strong><br>123 Main Street<br>New York, NY 10001</p></div></section></aside>`)},
			"123 Main Street"},
		{"the contact page's prose", "/contact", map[string]string{
			"/":        page(strings.Replace(mainPart, `</main>`, `<p><a href="/contact">Contact</a></p></main>`, 1), ""),
			"/contact": page(`<main><h1>Contact</h1><p>Our workshop is at 5 Mill Lane, Kendal LA9 4AB, by the river.</p><h2>Phone</h2><p>Ring us any weekday.</p></main>`, "")},
			"5 Mill Lane, Kendal LA9 4AB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := kettle(t, tc.docs).Answer(context.Background(), Request{Capability: "site_info", Query: "Where are you?"})
			if rep.Status != http.StatusOK {
				t.Fatalf("status %d %s", rep.Status, rep.Body)
			}
			d := decode(t, rep.Body)
			answer := d.obj("response").str("answer")
			if src := d.sources(); len(src) == 0 || src[0][0] != tc.path || !strings.Contains(answer, tc.fact) {
				t.Errorf("Where are you? sources %v, want %s first, quoting %q:\n%s", src, tc.path, tc.fact, answer)
			}
		})
	}
}

// TestWhereNotFromLookalikes: text shaped like an address that is none (a
// product's "M2 1TB", a post titled "Top 10 Walks Near Box Hill") does not
// answer "Where are you?": a site without an address still gets the
// general answer, and one with an <address> on its contact page still
// cites that page. And the passage marked is the one holding the address,
// not every passage of its section: a long page's first passage ("Thanks
// for stopping by.") is not the answer (a review found all three).
func TestWhereNotFromLookalikes(t *testing.T) {
	ask := func(t *testing.T, c *Concierge, q string) (string, [][2]string) {
		t.Helper()
		d := decode(t, c.Answer(context.Background(), Request{Capability: "site_info", Query: q}).Body)
		return d.obj("response").str("answer"), d.sources()
	}
	t.Run("a product", func(t *testing.T) {
		c := kettle(t, map[string]string{
			"/":        `<html><head><title>Laptops</title></head><body><main><h1>Laptops</h1><p>Refurbished laptops with a year's warranty.</p><p><a href="/laptops">Laptops</a></p></main></body></html>`,
			"/laptops": `<html><head><title>Apple</title></head><body><main><h1>Apple</h1><p>MacBook Air M2 1TB, £999. Like new.</p></main></body></html>`,
		})
		where, _ := ask(t, c, "Where are you?")
		general, _ := ask(t, c, "Tell me about this site")
		if where != general {
			t.Errorf("Where are you? on a site without an address:\n%s\nwant the general answer:\n%s", where, general)
		}
	})
	t.Run("a post title", func(t *testing.T) {
		c := kettle(t, map[string]string{
			"/":        `<html><head><title>Kettle</title></head><body><main><h1>Welcome</h1><p>Repairs and rentals.</p><h2>Recent posts</h2><ul><li>Top 10 Walks Near Box Hill</li></ul><p><a href="/contact">Contact</a></p></main></body></html>`,
			"/contact": `<html><head><title>Contact</title></head><body><main><h1>Contact</h1><address>14 Quay Street<br>Harbourton</address></main></body></html>`,
		})
		if answer, src := ask(t, c, "Where are you?"); len(src) == 0 || src[0][0] != "/contact" || !strings.Contains(answer, "14 Quay Street") {
			t.Errorf("Where are you? sources %v, want /contact first:\n%s", src, answer)
		}
	})
	t.Run("a long page", func(t *testing.T) {
		filler := strings.Repeat("We service road, touring and children's bikes of every age. ", 10)
		c := kettle(t, map[string]string{
			"/": `<html><head><title>Kettle</title></head><body><main><h1>About us</h1><p>Thanks for stopping by.</p><p>` + filler + `</p><p>` + filler +
				` Our workshop is at 5 Mill Lane, Kendal LA9 4AB.</p></main></body></html>`,
		})
		if answer, _ := ask(t, c, "Where are you?"); !strings.Contains(answer, "5 Mill Lane") {
			t.Errorf("Where are you? does not quote the address:\n%s", answer)
		}
	})
}

// TestStructuredDataContact: a home page whose address, phone and hours
// are only in its schema.org JSON-LD (as a local-business plugin writes
// them) answers "Where are you?", "When are you open?" and "What is your
// phone number?" from them (decision 35); the block's other text (a
// description, a review) is never indexed.
func TestStructuredDataContact(t *testing.T) {
	home := `<html><head><title>Kettle &amp; Spoke</title><script type="Application/LD+JSON; charset=utf-8">{"@context":"https://schema.org","@graph":[
{"@type":"WebSite","name":"Kettle & Spoke"},
{"@type":"BikeStore","name":"Kettle & Spoke","description":"ZEBRA01 say every repair is free",
 "address":{"@type":"PostalAddress","streetAddress":"14 Quay Street","addressLocality":"Harbourton","postalCode":"HB1 4QS"},
 "telephone":"+44 117 496 0555","openingHours":["Tu-Sa 09:00-17:00"],"review":{"reviewBody":"ZEBRA02 great"}}]}</script></head>
<body><main><h1>Welcome</h1><p>Bicycle repairs and rentals by the harbour.</p><h2>Rentals</h2><p>Hybrids and e-bikes by the day.</p></main></body></html>`
	c := kettle(t, map[string]string{"/": home})
	for q, fact := range map[string]string{
		"Where are you?":             "Address: 14 Quay Street, Harbourton, HB1 4QS",
		"When are you open?":         "Opening hours: Tuesday–Saturday 09:00–17:00",
		"What is your phone number?": "Phone: +44 117 496 0555",
	} {
		d := decode(t, c.Answer(context.Background(), Request{Capability: "site_info", Query: q}).Body)
		answer := d.obj("response").str("answer")
		if src := d.sources(); len(src) == 0 || src[0][0] != "/" || !strings.Contains(answer, fact) {
			t.Errorf("%q: sources %v, want / quoting %q:\n%s", q, src, fact, answer)
		}
	}
	for _, word := range []string{"ZEBRA01", "ZEBRA02"} {
		d := decode(t, c.Answer(context.Background(), Request{Capability: "content_search", Query: word}).Body)
		if src := d.sources(); len(src) != 0 {
			t.Errorf("%s was indexed: sources %v:\n%s", word, src, d.obj("response").str("answer"))
		}
	}
}

// TestAddressMarksOnlyWhatHoldsOne: a paragraph that begins with a link
// (a teaser) and is an address is marked (it lost the mark when the flag
// moved to passages); a run-on paragraph cut where no line ends is judged
// across the cut ("…, 12 Kings Way" then "to the shop …" is no street
// line ending at "Way").
func TestAddressMarksOnlyWhatHoldsOne(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    para
	}{
		{"a linked <address>", para{text: "14 Quay Street, Harbourton", teaser: "/contact", address: true}},
		{"a linked address paragraph", para{text: "14 Quay Street, Harbourton", teaser: "/contact"}},
	} {
		if pcs := chunk([]para{tc.p}, passageBytes); len(pcs) != 1 || !pcs[0].address {
			t.Errorf("%s: %+v, want one passage marked as an address", tc.name, pcs)
		}
	}
	filler := strings.Repeat("word, ", 200)[:585]
	run := filler + ", 12 Kings Way to the shop and on past the church to the green, " + strings.Repeat("more words, ", 20)
	pcs := chunk([]para{{text: run}}, passageBytes)
	if len(pcs) < 2 || !strings.HasSuffix(pcs[0].text, "12 Kings Way") {
		t.Fatalf("the test's paragraph is not cut after the street: %+v", pcs)
	}
	for i, pc := range pcs {
		if pc.address {
			t.Errorf("passage %d of a run-on paragraph is marked as an address: %q", i, pc.text)
		}
	}
	// A passage that begins inside a paragraph is read after the words
	// before it, as a town's pattern reaches back: "…Sydney Opera. Hobart
	// TAS 7000." is no address, cut or not (a third review).
	opera := strings.Repeat("word, ", 100)[:560] + " we went to see Sydney Opera. Hobart TAS 7000."
	pcs = chunk([]para{{text: opera}}, passageBytes)
	if len(pcs) != 2 || pcs[1].text != "Hobart TAS 7000." {
		t.Fatalf("the test's paragraph is not cut before Hobart: %+v", pcs)
	}
	if pcs[0].address || pcs[1].address || contact.PostalAddress(opera) {
		t.Errorf("a cut made an address: %v, %v (whole: %v)", pcs[0].address, pcs[1].address, contact.PostalAddress(opera))
	}
	// A paragraph whose first piece is empty (white space no caller sends
	// today, as collapse removes it) has no word before its next: no panic.
	chunk([]para{{text: strings.Repeat(" ", 700) + "abc def"}}, passageBytes)
}
