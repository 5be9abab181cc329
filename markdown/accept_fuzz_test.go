package markdown

import (
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// FuzzWants holds Wants to a plain reading of RFC 9110 §12.5.1 (split at
// commas and semicolons, a qvalue by its grammar, the most specific range
// giving text/html its weight) on every Accept value without quotes, and
// checks that one value read as several header lines, split between its
// elements, asks for the same.
func FuzzWants(f *testing.F) {
	for _, s := range []string{"text/markdown", "TEXT/Markdown; charset=utf-8", "text/markdown, text/html, */*", "text/html, text/markdown",
		"text/html;q=0.9, text/markdown", "text/markdown;q=0.5, text/*;q=0.4, */*", "text/markdown;q=0.", "text/markdown;q=1.5",
		"text/markdown;Q=0.001;q=0, text/html;q=0.0005", "text/markdown;level=1;q=0.7, text/html;q=0.7;q=1", ` text/markdown ; q = 0.5 ,text/html;q=0.4`,
		`text/html;foo="a,text/markdown"`, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/markdown,,text/html"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Accept"] = []string{accept}
		got := Wants(r)
		if strings.ContainsAny(accept, "\"\\") {
			return // quoted parameters: Wants must only not panic
		}
		if want := referenceWants(accept); got != want {
			t.Fatalf("Wants(%q) = %v, the reference says %v", accept, got, want)
		}
		r.Header["Accept"] = strings.Split(accept, ",")
		if again := Wants(r); again != got {
			t.Fatalf("Wants(%q) = %v, as %d lines %v", accept, got, len(r.Header["Accept"]), again)
		}
	})
}

var qvalue = regexp.MustCompile(`^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$`)

func referenceWants(accept string) bool {
	type seen struct {
		ok  bool
		q   float64
		pos int
	}
	var md, html, textAny, anyType seen
	for pos, elem := range strings.Split(accept, ",") {
		parts := strings.Split(elem, ";")
		mt := asciiLower(strings.TrimSpace(parts[0]))
		if mt == "" {
			continue
		}
		q, valid := 1.0, true
		for _, p := range parts[1:] {
			name, v, _ := strings.Cut(p, "=")
			if asciiLower(strings.TrimSpace(name)) != "q" {
				continue
			}
			v = strings.TrimSpace(v)
			if valid = qvalue.MatchString(v); valid {
				q, _ = strconv.ParseFloat(strings.TrimSuffix(v, "."), 64)
			}
			break // the first q is the weight; what follows is accept-ext
		}
		var s *seen
		switch mt {
		case "text/markdown":
			s = &md
		case "text/html":
			s = &html
		case "text/*":
			s = &textAny
		case "*/*":
			s = &anyType
		}
		if s != nil && valid && (!s.ok || q > s.q) {
			*s = seen{true, q, pos}
		}
	}
	if !md.ok || md.q == 0 {
		return false
	}
	h := html
	for _, fallback := range []seen{textAny, anyType} {
		if !h.ok {
			h = fallback
		}
	}
	switch {
	case !h.ok:
		return true
	case md.q != h.q:
		return md.q > h.q
	}
	return !html.ok || md.pos < html.pos
}

// asciiLower folds ASCII letters only: media types and parameter names
// are ASCII (strings.ToLower would fold the Kelvin sign to k).
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
