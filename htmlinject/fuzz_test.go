package htmlinject

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/net/html"
)

func addSeeds(f *testing.F) {
	for i, tc := range spliceCases {
		f.Add([]byte(strings.Replace(tc.page, mark, "", 1)), uint64(i))
	}
	f.Add([]byte("<body><!-- x -- y --!> </body> --></body>"), uint64(1))
	f.Add([]byte("<script></script ></body><style>a</STYLE/></body "), uint64(2))
}

// checkSplice asserts the fuzzing properties of out, the output for doc.
func checkSplice(t *testing.T, in *Injector, doc, out []byte, inserted bool) {
	t.Helper()
	section := in.snippet
	if !inserted {
		if !bytes.Equal(out, doc) {
			t.Fatalf("no insertion, yet the output differs from the input")
		}
	} else if !isInsertion(out, doc, section) {
		t.Fatalf("the output is not the input plus one section:\nin  %q\nout %q", doc, out)
	}
	if in.marker.word != "" && in.require.word == "" && !bytes.Contains(doc, []byte(in.marker.word)) &&
		!refCannotClear(doc, len(doc)) && refIsDocument(doc) && !refForeignLead(doc) && !refJSONLead(doc) && (!inserted || bytes.Count(out, section) != bytes.Count(doc, section)+1) {
		t.Fatalf("a document in an ASCII-compatible encoding, without a notice, that does not end inside a tag must get exactly one: inserted %v, %d in output", inserted, bytes.Count(out, section))
	}
	if want := referenceSplice(doc, in); !bytes.Equal(out, want) {
		t.Fatalf("differs from the reference:\nin   %q\nout  %q\nwant %q", doc, out, want)
	}
}

// isInsertion reports whether out is in with section inserted at one place.
func isInsertion(out, in, section []byte) bool {
	if len(out) != len(in)+len(section) {
		return false
	}
	prefix := 0
	for prefix < len(in) && out[prefix] == in[prefix] {
		prefix++
	}
	suffix := 0
	for suffix < len(in) && out[len(out)-1-suffix] == in[len(in)-1-suffix] {
		suffix++
	}
	// The section went at some p with in[:p] = out[:p] and in[p:] = out[p+len(section):].
	for p := len(in) - suffix; p <= prefix; p++ {
		if bytes.Equal(out[p:p+len(section)], section) {
			return true
		}
	}
	return false
}

// FuzzInject: for any bytes and any way of cutting them into writes and
// flushes, the output is the input with the snippet inserted exactly once,
// where the reference puts it, or the input unchanged when it carries the
// marker or lacks Require; the seed picks one of testConfigs. Half the
// seeds shrink the window and the tag bound to a few dozen bytes, so that
// short inputs reach their edges.
func FuzzInject(f *testing.F) {
	addSeeds(f)
	var ins []*Injector
	for _, c := range testConfigs {
		ins = append(ins, mustNew(f, c()))
	}
	defaults := spliceLimits
	f.Fuzz(func(t *testing.T, doc []byte, seed uint64) {
		in := ins[(seed>>1)%uint64(len(ins))]
		r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
		withLimits(t, defaults)
		if seed&1 == 1 {
			spliceLimits = smallLimits(r)
		}
		out, s := spliceChunks(t, in, http.Header{}, doc, randomChunks(r, len(doc))...)
		checkSplice(t, in, doc, out, s.Inserted())
		if got := spliceRandomly(t, in, doc, r); !bytes.Equal(got, out) {
			t.Fatalf("with flushes:\nin   %q\nout  %q\nwant %q", doc, got, out)
		}
	})
}

// FuzzInjectGzip: the same through a gzip'd body, and, with a bound of 100
// bytes, the compressed bytes unchanged past it.
func FuzzInjectGzip(f *testing.F) {
	addSeeds(f)
	in := mustNew(f, noticeConfig())
	bounded := noticeConfig()
	bounded.MaxDecoded = 100
	small := mustNew(f, bounded)
	defaults := spliceLimits
	f.Fuzz(func(t *testing.T, doc []byte, seed uint64) {
		if len(doc) == 0 {
			return // an empty body stays empty, see TestUndecodableBodyPassesThrough
		}
		withLimits(t, defaults)
		if seed&1 == 1 {
			spliceLimits = smallLimits(rand.New(rand.NewPCG(seed, 1)))
		}
		var zipped bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&zipped, gzip.BestSpeed)
		zw.Write(doc)
		zw.Close()
		r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
		body := zipped.Bytes()
		out, s := spliceChunks(t, in, http.Header{"Content-Encoding": {"gzip"}}, body, randomChunks(r, len(body))...)
		zr, err := gzip.NewReader(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		var plain bytes.Buffer
		if _, err := plain.ReadFrom(zr); err != nil {
			t.Fatal(err)
		}
		checkSplice(t, in, doc, plain.Bytes(), s.Inserted())

		// Past a bound the compressed bytes go out as they came.
		out, s = spliceChunks(t, small, http.Header{"Content-Encoding": {"gzip"}}, body, randomChunks(r, len(body))...)
		if len(doc) > 100 || len(body) > 100 {
			if !bytes.Equal(out, body) || s.Inserted() {
				t.Fatalf("past the bound the body was changed")
			}
		} else if !bytes.Equal(out, body) || s.Inserted() {
			if zr, err = gzip.NewReader(bytes.NewReader(out)); err != nil {
				t.Fatal(err)
			}
			plain.Reset()
			if _, err := plain.ReadFrom(zr); err != nil {
				t.Fatal(err)
			}
			checkSplice(t, small, doc, plain.Bytes(), s.Inserted())
		}
	})
}

// rawTextElements are where the package does not follow the tokenizer (see
// the trade-offs in the package comment), and foreign content, whose CDATA
// sections it does not follow either.
var rawTextElements = [][]byte{[]byte("<script"), []byte("<style"), []byte("<textarea"), []byte("<title"),
	[]byte("<xmp"), []byte("<iframe"), []byte("<noembed"), []byte("<noframes"), []byte("<noscript"),
	[]byte("<plaintext"), []byte("<svg"), []byte("<math")}

// FuzzNeverInsideATag holds the splice point to the real tokenizer
// (golang.org/x/net/html): the snippet never lands strictly inside a tag
// or DOCTYPE token of the page, for any input without raw text elements.
func FuzzNeverInsideATag(f *testing.F) {
	addSeeds(f)
	f.Add([]byte(`<body><div title="</body><img src=x onerror=alert(1)>">x</div>`), uint64(0))
	f.Add([]byte(`<body><div title='a > b</body>'>x</div></body>`), uint64(0))
	f.Add([]byte(`<body><p x="y"z="</body>">x</p></body>`), uint64(0))
	in := mustNew(f, noticeConfig())
	f.Fuzz(func(t *testing.T, doc []byte, seed uint64) {
		lower := bytes.ToLower(doc)
		for _, e := range rawTextElements {
			if bytes.Contains(lower, e) {
				return
			}
		}
		at, ok := refSplicePos(doc, in)
		out, s := spliceChunks(t, in, http.Header{}, doc, randomChunks(rand.New(rand.NewPCG(seed, 1)), len(doc))...)
		if s.Inserted() != ok || !bytes.Equal(out, referenceSplice(doc, in)) {
			t.Fatalf("differs from the reference: %q", out)
		}
		if !ok {
			return
		}
		z := html.NewTokenizer(bytes.NewReader(doc))
		for start := 0; start < at; {
			tt := z.Next()
			if tt == html.ErrorToken {
				break
			}
			end := start + len(z.Raw())
			if start < at && at < end {
				switch tt {
				case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken, html.DoctypeToken:
					t.Fatalf("the snippet went inside %v token %q at %d", tt, doc[start:end], at-start)
				}
			}
			start = end
		}
	})
}

// FuzzCompressedBytes: any bytes labelled with a content coding never
// panic or hang, and come out either unchanged (not inserted) or as a body
// in that coding that decodes to the input's decoding with the snippet
// where the reference puts it.
func FuzzCompressedBytes(f *testing.F) {
	page := []byte("<html><body><p>x</p></body></html>")
	for i, c := range testCodecs {
		var b bytes.Buffer
		w := c.encode(&b)
		w.Write(page)
		w.Close()
		f.Add(b.Bytes(), uint8(i))
		f.Add(append(b.Bytes(), "junk"...), uint8(i))
		f.Add(b.Bytes()[:b.Len()/2], uint8(i))
	}
	cfg := noticeConfig()
	cfg.MaxDecoded = 4 << 10
	in := mustNew(f, cfg)
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		c := testCodecs[int(which)%len(testCodecs)]
		out, s := spliceChunks(t, in, http.Header{"Content-Encoding": {c.name}}, data, 1+int(which)%97)
		if !s.Inserted() {
			if !bytes.Equal(out, data) {
				t.Fatalf("%s: not inserted, yet changed", c.name)
			}
			return
		}
		r, err := c.decode(bytes.NewReader(data))
		if err != nil {
			return // the reference decoder reads this differently
		}
		plain, err := io.ReadAll(io.LimitReader(r, 8<<10))
		if err != nil {
			return
		}
		r2, err := c.decode(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("%s: output does not decode: %v", c.name, err)
		}
		got, err := io.ReadAll(r2)
		if err != nil {
			t.Fatalf("%s: output does not decode: %v", c.name, err)
		}
		if want := referenceSplice(plain, in); !bytes.Equal(got, want) {
			t.Fatalf("%s: decoded output %q, want %q", c.name, got, want)
		}
	})
}
