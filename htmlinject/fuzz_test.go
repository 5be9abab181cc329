package htmlinject

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
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
		(!inserted || bytes.Count(out, section) != bytes.Count(doc, section)+1) {
		t.Fatalf("a page without a notice must get exactly one: inserted %v, %d in output", inserted, bytes.Count(out, section))
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

// FuzzInjectGzip: the same through a gzip'd body.
func FuzzInjectGzip(f *testing.F) {
	addSeeds(f)
	in := mustNew(f, noticeConfig())
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
	})
}
