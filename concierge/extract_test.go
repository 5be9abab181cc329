package concierge

import (
	"slices"
	"strings"
	"testing"
)

// plainMarkdownByScans is plainMarkdown as it was, searching for the next
// ']' and ')' afresh at every '[': the reference the remembering version
// must agree with.
func plainMarkdownByScans(s string) (string, []string) {
	var links []string
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '[' {
			if close := strings.IndexByte(s[i:], ']'); close > 0 && i+close+1 < len(s) && s[i+close+1] == '(' {
				if end := strings.IndexByte(s[i+close+1:], ')'); end > 0 {
					target := strings.TrimSpace(s[i+close+2 : i+close+1+end])
					if sp := strings.IndexAny(target, " \t"); sp >= 0 {
						target = target[:sp]
					}
					links = append(links, strings.Trim(target, "<>"))
					b.WriteString(s[i+1 : i+close])
					i += close + 1 + end + 1
					continue
				}
			}
		}
		switch s[i] {
		case '*', '`':
			i++
			continue
		case '_':
			if (i == 0 || s[i-1] == ' ' || s[i-1] == '_') || (i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '_') {
				i++
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String(), links
}

var plainMarkdownSeeds = []string{
	"", "plain", "[Contact](/contact.html): showroom", "**bold** and `code` and _em_ snake_case",
	"[a](/x \"title\") [b](<https://e.x/y>) [c]", "[[nested](/n)]", "[a]](/b) [c](d", "[a] (b) [c](d)(e)",
	"[x](", "](", "[", strings.Repeat("[a](", 50), strings.Repeat("[", 50) + "](/z)",
}

// TestPlainMarkdown: links become their text (targets returned), emphasis
// and code markers go, as the reference does.
func TestPlainMarkdown(t *testing.T) {
	text, links := plainMarkdown("See [Contact](/contact.html \"Us\") and **[Hours](</hours>)**, _now_ here.")
	if text != "See Contact and Hours, now here." || !slices.Equal(links, []string{"/contact.html", "/hours"}) {
		t.Errorf("%q %q", text, links)
	}
	for _, s := range plainMarkdownSeeds {
		gotText, gotLinks := plainMarkdown(s)
		wantText, wantLinks := plainMarkdownByScans(s)
		if gotText != wantText || !slices.Equal(gotLinks, wantLinks) {
			t.Errorf("plainMarkdown(%q) = %q %q, want %q %q", s, gotText, gotLinks, wantText, wantLinks)
		}
	}
}

// FuzzPlainMarkdown: any line reads as the reference reads it.
func FuzzPlainMarkdown(f *testing.F) {
	for _, s := range plainMarkdownSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		gotText, gotLinks := plainMarkdown(s)
		wantText, wantLinks := plainMarkdownByScans(s)
		if gotText != wantText || !slices.Equal(gotLinks, wantLinks) {
			t.Fatalf("plainMarkdown(%q) = %q %q, want %q %q", s, gotText, gotLinks, wantText, wantLinks)
		}
	})
}

// BenchmarkPlainMarkdownBrackets: a 256 KiB line of unclosed links (the
// longest a text document's line may be) costs its length, not its
// square; compare with the reference, which rescans the rest of the line
// at every '['.
func BenchmarkPlainMarkdownBrackets(b *testing.B) {
	line := strings.Repeat("[a](", 64<<10)
	for _, f := range []struct {
		name string
		fn   func(string) (string, []string)
	}{{"remembering", plainMarkdown}, {"rescanning", plainMarkdownByScans}} {
		b.Run(f.name, func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				f.fn(line)
			}
		})
	}
}
