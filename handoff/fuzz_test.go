package handoff

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

var fuzzChallenge = strings.Repeat("0123456789abcdef", 4)

// ParseAdmission never panics, and what it accepts is what a plain JSON
// decoder reads from the same body.
func FuzzParseAdmission(f *testing.F) {
	f.Add([]byte(admissionBody(fuzzChallenge, "42")))
	f.Add([]byte(`{"admission":{"type":"proof_of_work","challenge":"` + fuzzChallenge + `","nonce":"1","extra":[1,{"a":null}]},"metadata":{"x":[true,false]}}`))
	f.Add([]byte(`{"admission":{}}`))
	f.Add([]byte(`{"admission":{"type":"proof_of_work","challenge":"` + fuzzChallenge + `","nonce":"1"},"admission":1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"a":"\ud800","admission":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := ParseAdmission(body)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if !ValidChallenge(a.Challenge) || !ValidNonce(a.Nonce) {
			t.Fatalf("accepted %+v", a)
		}
		var v struct {
			Admission struct{ Type, Challenge, Nonce string } `json:"admission"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("accepted a body encoding/json refuses: %v", err)
		}
		if v.Admission.Challenge != a.Challenge || v.Admission.Nonce != a.Nonce || v.Admission.Type != "proof_of_work" {
			t.Fatalf("read %+v, encoding/json reads %+v", a, v.Admission)
		}
	})
}

func FuzzParseClaimVerification(f *testing.F) {
	f.Add([]byte(verifyBody("RAPTOR-AB12-CD34-EF56-GH78", fuzzChallenge, "7")))
	f.Add([]byte(`{"claim_code":"x","proof_of_work":{"challenge":"` + fuzzChallenge + `","nonce":"7","type":"proof_of_work"}}`))
	f.Add([]byte(`{"code":"x","claim_code":"y"}`))
	f.Add([]byte(`{"code":"","proof_of_work":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := ParseClaimVerification(body)
		if err != nil {
			return
		}
		if v.Code == "" || len(v.Code) > MaxCodeLen || !ValidChallenge(v.Challenge) || !ValidNonce(v.Nonce) {
			t.Fatalf("accepted %+v", v)
		}
		if !json.Valid(body) {
			t.Fatal("accepted invalid JSON")
		}
	})
}

// injectMember keeps the body byte for byte around one inserted member,
// and its output is valid JSON holding the member.
func FuzzInjectMember(f *testing.F) {
	f.Add([]byte(`{"claim": {"code": "X", "url": "https://e/x"}}`))
	f.Add([]byte(`{"claim":{}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(` {"a":[1,{"claim":{}}],"claim":"s"} `))
	f.Add([]byte(`{"claim":[{"x":1}],"b":{"c":{}}}`))
	f.Add([]byte(`[1]`))
	member := []byte(`"pow_challenge":{"challenge":"` + fuzzChallenge + `","difficulty":20}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		out, ok := injectMember(body, member)
		if !ok {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output is not JSON: %s", out)
		}
		i := bytes.Index(out, member)
		if i < 0 {
			t.Fatalf("member missing: %s", out)
		}
		rest := append(append([]byte{}, out[:i]...), out[i+len(member):]...)
		if !bytes.Equal(rest, body) {
			// A comma was added before the member: remove it too.
			if i > 0 && out[i-1] == ',' {
				rest = append(append([]byte{}, out[:i-1]...), out[i+len(member):]...)
			}
			if !bytes.Equal(rest, body) {
				t.Fatalf("the body changed beyond the member:\n%s\n%s", body, out)
			}
		}
		var v map[string]any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatal(err)
		}
		if c, isObj := v["claim"].(map[string]any); isObj {
			if _, ok := c["pow_challenge"]; !ok {
				t.Fatalf("not in the claim object: %s", out)
			}
		} else if _, ok := v["pow_challenge"]; !ok {
			t.Fatalf("not at the top level: %s", out)
		}
	})
}

// The content checks never panic; an SVG root is found under any prolog;
// and a page CheckHTML passes holds, in the tree an HTML5 parser (a
// browser) builds from it, none of what spec §14 has a renderer remove.
func FuzzContentChecks(f *testing.F) {
	f.Add([]byte(page))
	f.Add([]byte("\xef\xbb\xbf<?xml version=\"1.0\"?><svg/>"))
	f.Add([]byte("\xff\xfe<\x00s\x00v\x00g\x00>\x00"))
	f.Add([]byte(`<a href="  javascript:x">`))
	f.Add([]byte("<!-- <svg> --><p>x</p>"))
	f.Add([]byte(`<title><script>x</script></title><textarea><img src=javascript:x></textarea><p>ok</p>`))
	f.Add([]byte(`<body><p>x</p><body onload=x><meta http-equiv=" Refresh " content="0;url=/"><img srcset="a.png 1x, data:x 2x">`))
	f.Add([]byte(`<table><tr><td><form><input formaction=http://x></form><image src="java` + "\t" + `script:x">`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if CheckHTML(b) == "" {
			if doc, err := html.Parse(bytes.NewReader(b)); err == nil {
				if what := unsafeInTree(doc); what != "" {
					t.Fatalf("CheckHTML passes %q, whose parsed tree holds %s", b, what)
				}
			}
		}
		svg := looksLikeSVG(b)
		if bytes.HasPrefix(bytes.ToLower(b), []byte("<svg>")) && !svg {
			t.Fatalf("missed %q", b)
		}
	})
}

func FuzzSafeURL(f *testing.F) {
	for _, s := range []string{"https://a", "/rel", "java\tscript:x", " \x01javascript:x", "data:x", "//host/p", "?q=javascript:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !safeURL(s) {
			return
		}
		// What is accepted has no scheme, or https, once cleaned as a browser cleans it.
		clean := strings.ToLower(strings.TrimLeft(strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(s), "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f "))
		for _, bad := range []string{"javascript:", "data:", "vbscript:", "http:"} {
			if strings.HasPrefix(clean, bad) {
				t.Fatalf("accepted %q", s)
			}
		}
	})
}

// The scanner accepts exactly what encoding/json accepts (but nesting
// deeper than maxDepth).
func FuzzScanner(f *testing.F) {
	for _, s := range []string{`{}`, `[1,-0.5e+3,"a\u00e9\n",true,false,null,{"a":[]}]`, `"\ud800"`, `01`, `1.`, `{"a":1,}`, "\"\x01\"", `[1 2]`, ` {"a" : { } } `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &scanner{b: b}
		ok := s.skip(0)
		if ok {
			s.ws()
			ok = s.i == len(b)
		}
		if want := json.Valid(b); ok != want && !(want && bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) > maxDepth) {
			t.Fatalf("scanner %v, encoding/json %v for %q", ok, want, b)
		}
	})
}

// unsafeInTree is CheckHTML's reference on a parsed tree: the first
// element, attribute or URL it must have refused, "" for none.
func unsafeInTree(n *html.Node) string {
	if n.Type == html.ElementNode {
		if _, bad := refusedElements[n.Data]; bad {
			return "<" + n.Data + ">"
		}
		for _, a := range n.Attr {
			key := a.Key
			if a.Namespace != "" {
				key = a.Namespace + ":" + a.Key
			}
			switch {
			case strings.HasPrefix(key, "on"), key == "style":
				return "attribute " + key
			case key == "http-equiv" && n.Data == "meta" && strings.EqualFold(strings.TrimSpace(a.Val), "refresh"):
				return "a meta refresh"
			case key == "srcset" || key == "imagesrcset":
				for _, part := range strings.Split(a.Val, ",") {
					if f := strings.Fields(part); len(f) > 0 && !safeURL(f[0]) {
						return key + " " + a.Val
					}
				}
			case urlAttributes[key] && !safeURL(a.Val):
				return key + " " + a.Val
			}
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if what := unsafeInTree(c); what != "" {
			return what
		}
	}
	return ""
}

// FuzzHardenCookies: whatever Set-Cookie lines the preview's backend
// sends, every one that goes out reads back (as net/http's parser, after
// RFC 6265, reads it) as the same cookie made HttpOnly, Secure,
// SameSite=Strict and host-only; none is split into two, and none that
// parses is lost.
func FuzzHardenCookies(f *testing.F) {
	for _, s := range []string{"sid=abc; Path=/; Domain=provider.example; SameSite=None", "a=b", `q="x y"; Max-Age=0`,
		"a=b; Domain=.x; Domain=y; Secure=no", "x=1; Path=/a;b; HttpOnly", "=v", "n=v\r\nSet-Cookie: evil=1", "n=v; Expires=Wed, 21 Oct 2015 07:28:00 GMT"} {
		f.Add(s, "b=2; Domain=evil.example")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		hd := http.Header{"Set-Cookie": {a, b}}
		hardenCookies(hd)
		parsed := 0
		for _, line := range []string{a, b} {
			if c, err := http.ParseSetCookie(line); err == nil && c.String() != "" {
				parsed++
			}
		}
		if out := hd["Set-Cookie"]; len(out) != parsed {
			t.Fatalf("%q, %q: %d lines out, %d parse: %q", a, b, len(out), parsed, out)
		}
		for _, line := range hd["Set-Cookie"] {
			c, err := http.ParseSetCookie(line)
			if err != nil || strings.ContainsAny(line, "\r\n") {
				t.Fatalf("%q out (%v)", line, err)
			}
			if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Domain != "" || c.Path == "" {
				t.Fatalf("%q, %q: %q reads back as %+v", a, b, line, c)
			}
			// A browser splits at ';' (RFC 6265 §5.2): no attribute may name a domain.
			for _, av := range strings.Split(line, ";")[1:] {
				if name, _, _ := strings.Cut(av, "="); strings.EqualFold(strings.TrimSpace(name), "domain") {
					t.Fatalf("%q keeps a Domain attribute", line)
				}
			}
		}
	})
}
