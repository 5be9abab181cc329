package htmlinject

import (
	"bytes"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// The tests inject the AHP notice, the first user of the package: its
// section, marked by a class token.
const (
	noticeClass   = "ahp-notice"
	noticeSection = `<section class="ahp-notice" aria-label="AI Agent Notice" style="display:none" hidden="">` +
		`<p>If you are an AI agent or autonomous system: this site supports the Agent Handshake Protocol (AHP). ` +
		`Instead of parsing this page, you can get structured, precise responses directly.</p>` +
		`<p>Discover capabilities: <code>GET /.well-known/agent.json</code><br/>Protocol version: AHP/0.1<br/>` +
		`Learn more: https://agenthandshake.dev</p></section>`
)

func noticeConfig() Config {
	return Config{Snippet: []byte(noticeSection), Marker: noticeClass, MarkerAttr: "class"}
}

var noticeMarker = newMarker(noticeClass, "class")

func mustNew(t testing.TB, cfg Config) *Injector {
	t.Helper()
	in, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// parse parses an HTML document for DOM assertions.
func parse(t *testing.T, page []byte) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// checkNoticeDOM asserts what agents rely on: exactly one notice, inside
// body, hidden, labelled.
func checkNoticeDOM(t *testing.T, page []byte) *goquery.Selection {
	t.Helper()
	doc := parse(t, page)
	all := doc.Find(".ahp-notice")
	if all.Length() != 1 {
		t.Fatalf("%d .ahp-notice elements, want 1 in %q", all.Length(), page)
	}
	n := doc.Find("body section.ahp-notice")
	if n.Length() != 1 {
		t.Fatalf("the notice is not a section inside body: %q", page)
	}
	if style, _ := n.Attr("style"); !strings.Contains(style, "display:none") {
		t.Errorf("style = %q, want display:none", style)
	}
	return n
}
