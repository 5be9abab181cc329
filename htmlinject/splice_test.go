package htmlinject

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
)

const mark = "@@" // where the section must go, in the cases below

var spliceCases = []struct {
	name string
	page string // with mark where the section goes; none when the page must pass unchanged
	dom  bool   // a real page: check the parsed DOM too
}{
	{"plain", "<html><head><title>t</title></head><body><p>hi</p>@@</body></html>\n", true},
	{"uppercase", "<HTML><BODY><P>hi</P>@@</BODY></HTML>", true},
	{"mixed case", "<html><body>x@@</bOdY></html>", true},
	{"space before >", "<html><body>x@@</body ></html>", true},
	{"newline before >", "<html><body>x@@</body\n\t></html>", true},
	{"self-closing end tag", "<html><body>x@@</body/></html>", true},
	{"not body", "<html><body><bodyguard>x</bodyguard></bodyx><p>@@</body></html>", true},
	{"body in a comment before", "<html><body><!-- </body> -->x@@</body></html>", true},
	{"body in a script before", "<html><body><script>document.write('</body>')</script>x@@</body></html>", true},
	{"body in a script with attributes", "<html><body><script type=\"module\" src=x>let s = \"</body>\";</SCRIPT >x@@</body></html>", true},
	{"body in a style", "<html><body><style>/* </body> */</style>x@@</body></html>", true},
	{"body in a textarea", "<html><body><textarea></body></textarea>x@@</body></html>", true},
	{"body in a title", "<html><head><title></body></title></head><body>x@@</body></html>", true},
	{"script ends only at its end tag", "<html><body><script>a='<!--'; b='</scripts>'; c='</body>'</script>x@@</body></html>", true},
	{"body in a comment after: the last one wins", "<html><body>x</body><!-- @@</body> --></html>", false},
	{"two bodies: the last", "<html><body>x</body><body>y@@</body></html>", true},
	{"short comments", "<html><body><!--></body><!---></body>x@@</body></html>", true},
	{"no body end", "<html><body><p>no end@@", true},
	{"fragment", "<p>fragment</p>", false},
	{"table row fragment", "<tr><td>row 41</td></tr>", false},
	{"doctype only", "<!DOCTYPE html><title>t</title><p>x@@", true},
	{"head only", "<head><title>t</title></head><p>x@@", true},
	{"body tag cut by the end", "<p>x</p><body", false},
	{"empty", "", false},
	{"text only", "just text", false},
	// A document that ends inside a tag gets nothing: the snippet there
	// would end the tag (see TestNeverInsideATag).
	{"body end prefix at the end", "<html><body>x</bod", false},
	{"body end without >", "<html><body>x</body", false},
	{"body end cut before its last letter", "<html><body>x</bo", false},
	{"a lone < at the end", "<html><body>x<@@", false},
	{"body end with a tab", "<html><body>x@@</BoDy\t></html>", true},
	{"existing notice", `<html><body><section class="ahp-notice" aria-label="AI Agent Notice">hi</section></body></html>`, false},
	{"existing notice among classes", `<html><body><div id=n class="footer  ahp-notice	small">x</div></body></html>`, false},
	{"existing notice, single quotes", `<html><body><aside class='ahp-notice'>x</aside></body></html>`, false},
	{"existing notice, unquoted", `<html><body><aside data-x=1 CLASS=ahp-notice>x</aside></body></html>`, false},
	{"existing notice after body", `<html><body>x</body><div class="ahp-notice"></div></html>`, false},
	{"notice word in text", `<html><body><p>the class is ahp-notice</p><code>&lt;section class="ahp-notice"&gt;</code>@@</body></html>`, true},
	{"notice word in a script selector", `<html><body><script>q('section[class="ahp-notice"]')</script>@@</body></html>`, true},
	// Markup in scripts and comments is not told apart from real markup:
	// such a page is taken to carry a notice (never twice).
	{"notice markup in a script", `<html><body><script>x = '<div class="ahp-notice">'</script></body></html>`, false},
	{"notice markup in a comment", `<html><body><!-- <div class="ahp-notice"> --></body></html>`, false},
	{"notice word in another attribute", `<html><body><div id="ahp-notice" data-class="ahp-notice">x</div>@@</body></html>`, true},
	{"notice word not a token", `<html><body><div class="ahp-notices x-ahp-notice">x</div>@@</body></html>`, true},
	{"notice word as attribute name", `<html><body><div class ahp-notice>x</div>@@</body></html>`, true},

	// Never inside a tag: a </body> there sends the snippet to the end.
	{"body end in an attribute value", `<html><body><div title="</body><img src=x onerror=alert(1)>">x</div>@@`, true},
	{"body end in a value after a >", `<html><body><div title="a > b </body><img src=x onerror=alert(1)>">x</div>@@`, true},
	{"body end in a value after a tag", `<html><body><div title="<b>x</b></body><img src=x onerror=alert(1)>">x</div>@@`, true},
	{"body end in a single-quoted value", `<html><body><div title='</body><img src=x onerror=alert(1)>'>x</div>@@`, true},
	{"body end in a value, spaces around =", `<html><body><div title = "</body><img src=x onerror=alert(1)>">x</div>@@`, true},
	{"body end in an unquoted value", `<html><body><a href=/x</body/onmouseover=alert(1)>x</a>@@`, true},
	{"body end between attributes", `<html><body><div </body ="x><img src=x onerror=alert(1)>">y</div>@@`, true},
	{"body end in an end tag", `<html><body><p>x</p </body>y@@`, true},
	{"body end after the real one, in a value", `<html><body>x</body><div title="</body>">y</div>@@`, true},
	{"body end in a value and at the end", `<html><body><div title="</body>`, false},
	{"body end before an unterminated tag", `<html><body>x@@</body><img src=x onerror=alert(1)`, true},
	{"a value closed before the body end", `<html><body><div title="a</body>">x</div>@@</body></html>`, true},
	// A closing quote after a '=' does not keep the snippet out.
	{"nonce ending in =", `<html><body><p>x</p><script nonce="YWJjZGVmZ2hpams=">go()</script>@@</body></html>`, true},
	{"last value ending in =", `<html><body><img alt="" src="/i?v=">@@</body></html>`, true},
	{"text reading a=\"", `<html><body><p>a="</p>@@</body></html>`, true},
	// Never in raw text: a page without its optional </body> may hold its
	// only "</body>" in a script string or a textarea.
	{"minified, body end only in a script string", `<!doctype html><title>x</title><p>hi<script>var frame = "<html><body></body></html>";</script>@@`, true},
	{"minified, body end only in a textarea", `<!doctype html><title>x</title><p>Paste:<textarea name=h><body></body></textarea>@@`, true},
	{"body end in a style, uppercase", `<html><body><STYLE media=print>a::after{content:"</body>"}</STYLE>@@`, true},
	{"body end in a template", `<html><body><template><p>x</p></body></template>@@`, true},
	{"body end in a script, page cut inside it", `<html><body><script>var s = "</body>"`, false},
	{"a closed script before the body end", `<html><body><script>x()</script><p>y</p>@@</body></html>`, true},
	{"scripts is not script", `<html><body><scripts>x</scripts>@@</body></html>`, true},
	{"a tag in a comment", `<html><body><!-- <div title=" -->x@@</body></html>`, true},
	{"a value opened after a short comment", `<html><body><!--><div title=" -->x</div></body></html>`, false},
}

func TestSpliceCases(t *testing.T) {
	in := mustNew(t, noticeConfig())
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range spliceCases {
		t.Run(tc.name, func(t *testing.T) {
			input := []byte(strings.Replace(tc.page, mark, "", 1))
			want := input
			if strings.Contains(tc.page, mark) {
				want = []byte(strings.Replace(tc.page, mark, string(in.Snippet()), 1))
			}
			if ref := referenceSplice(input, in); !bytes.Equal(ref, want) {
				t.Fatalf("the reference disagrees with the case:\n%q\nwant %q", ref, want)
			}
			chunkings := [][]int{nil, {1}, {2}, {3}, {7}}
			for range 20 {
				chunkings = append(chunkings, randomChunks(r, len(input)))
			}
			for _, sizes := range chunkings {
				got, s := spliceChunks(t, in, http.Header{}, input, sizes...)
				if !bytes.Equal(got, want) {
					t.Fatalf("chunks %v:\ngot  %q\nwant %q", sizes, got, want)
				}
				if s.Inserted() != !bytes.Equal(want, input) {
					t.Fatalf("Inserted() = %v", s.Inserted())
				}
			}
			if tc.dom {
				checkNoticeDOM(t, want)
			}
		})
	}
}

func TestRealPage(t *testing.T) {
	page, err := os.ReadFile("testdata/page70k.html")
	if err != nil {
		t.Fatal(err)
	}
	in := mustNew(t, noticeConfig())
	end := bytes.LastIndex(page, []byte("</body>"))
	want := append(append(append([]byte{}, page[:end]...), in.Snippet()...), page[end:]...)
	r := rand.New(rand.NewPCG(5, 6))
	for _, sizes := range [][]int{nil, {1}, {32 << 10}, {4096}, randomChunks(r, len(page)), randomChunks(r, len(page))} {
		got, _ := spliceChunks(t, in, http.Header{}, page, sizes...)
		if !bytes.Equal(got, want) {
			t.Fatalf("chunks %v: output differs", sizes[:min(len(sizes), 5)])
		}
	}
	checkNoticeDOM(t, want)

	// Served again through a second injector, the page keeps one notice.
	again, s := spliceChunks(t, in, http.Header{}, want)
	if !bytes.Equal(again, want) || s.Inserted() {
		t.Fatal("a page with the notice was changed")
	}
}

// recorder is a destination that remembers every write.
type recorder struct {
	bytes.Buffer
	writes int
}

func (r *recorder) Write(p []byte) (int, error) {
	r.writes++
	return r.Buffer.Write(p)
}

func TestWriteHoldsFlushReleases(t *testing.T) {
	in := mustNew(t, noticeConfig())
	var dst recorder
	s, _ := in.Begin(&dst, http.Header{})
	head := "<html><body><p>first</p>"
	s.Write([]byte(head))
	if dst.Len() != 0 {
		t.Fatalf("a Write of a short page wrote %q: it should wait for Flush or Close", dst.String())
	}
	s.Flush()
	if dst.String() != head {
		t.Fatalf("after Flush dst has %q, want everything", dst.String())
	}
	s.Write([]byte("<p>second</p></bo"))
	s.Flush()
	if want := head + "<p>second</p>"; dst.String() != want {
		t.Fatalf("dst has %q, want %q: only the cut </bo may wait", dst.String(), want)
	}
	s.Write([]byte("dy>\n</html>\n"))
	s.Flush()
	if want := head + "<p>second</p>"; dst.String() != want {
		t.Fatalf("after Flush dst has %q: the </body> tail must wait", dst.String())
	}
	s.Write([]byte("<p>more after body</p>"))
	s.Write([]byte("<p>and more</p></BODY></html>"))
	s.Flush()
	if want := head + "<p>second</p></body>\n</html>\n<p>more after body</p><p>and more</p>"; dst.String() != want {
		t.Fatalf("a later </body> releases the earlier one: dst has %q", dst.String())
	}
	writes := dst.writes
	s.Close()
	want := head + "<p>second</p></body>\n</html>\n<p>more after body</p><p>and more</p>" + string(in.Snippet()) + "</BODY></html>"
	if dst.String() != want {
		t.Fatalf("got %q\nwant %q", dst.String(), want)
	}
	if dst.writes != writes+1 {
		t.Errorf("Close made %d Writes, want one", dst.writes-writes)
	}
}

func TestOneWriteForAShortPage(t *testing.T) {
	in := mustNew(t, noticeConfig())
	page, _ := os.ReadFile("testdata/page70k.html") // 72 KB: more than maxHold, less than the window
	var dst recorder
	s, _ := in.Begin(&dst, http.Header{})
	writeInChunks(s, page)
	s.Close()
	if dst.writes != 1 {
		t.Fatalf("%d Writes for a page of %d bytes, want 1", dst.writes, len(page))
	}
	if want := referenceSplice(page, in); !bytes.Equal(dst.Bytes(), want) {
		t.Fatal("output differs from the reference")
	}
}

func TestFlushIsProgressive(t *testing.T) {
	// A page streamed in small flushes, like a server rendering as it goes.
	in := mustNew(t, noticeConfig())
	var dst recorder
	s, _ := in.Begin(&dst, http.Header{})
	sent := ""
	for i := range 50 {
		part := fmt.Sprintf("<li>item %d</li>\n", i)
		sent += part
		s.Write([]byte(part))
		s.Flush()
		if dst.String() != sent {
			t.Fatalf("after flush %d dst lags: %d of %d bytes", i, dst.Len(), len(sent))
		}
	}
	s.Close()
}

func TestHoldBackIsBounded(t *testing.T) {
	in := mustNew(t, noticeConfig())
	filler := bytes.Repeat([]byte("<p>after</p>\n"), 6000) // 78 KB

	// A tail of maxHold bytes from the </body> on: the notice goes before it.
	short := append([]byte("<html><body>x</body>"), filler[:maxHold-len("</body>")]...)
	got, _ := spliceChunks(t, in, http.Header{}, short, 4096)
	if want := referenceSplice(short, in); !bytes.Equal(got, want) || !bytes.Contains(got, append(in.Snippet(), "</body>"...)) {
		t.Fatal("a tail of maxHold bytes should keep the candidate")
	}

	// A longer one: the </body> left the window and the notice goes at the end.
	var long []byte
	long = append(long, "<html><body>x</body>"...)
	for len(long) < 3*maxHold {
		long = append(long, filler...)
	}
	var dst recorder
	s, _ := in.Begin(&dst, http.Header{})
	windowMax := spliceLimits.windowMax(in.Snippet())
	for p := long; len(p) > 0; {
		n := min(len(p), 1000)
		s.Write(p[:n])
		p = p[n:]
		if written := len(long) - len(p); written-dst.Len() > windowMax {
			t.Fatalf("%d bytes held back", written-dst.Len())
		}
		if cap(s.sp.buf) != spliceLimits.bufCap() {
			t.Fatalf("the buffer grew to %d bytes", cap(s.sp.buf))
		}
	}
	s.Close()
	if want := append(append([]byte{}, long...), in.Snippet()...); !bytes.Equal(dst.Bytes(), want) {
		t.Error("the notice should go at the end")
	}
	// Bytes leave the window at least bufSlack (less the section) at a time,
	// however small the Writes in.
	if most := len(long)/(bufSlack-len(in.Snippet())) + 1; dst.writes > most {
		t.Errorf("%d Writes to dst, want at most %d", dst.writes, most)
	}
}

// pageSource generates a large page piece by piece, never whole: rows, then
// the end of the page.
type pageSource struct {
	rows int
	tail string
	off  int
}

const pageRow = "<tr><td>cell</td><td><a href=\"/x\">link</a></td><!-- c --></tr>\n"

func (p *pageSource) size() int { return p.rows*len(pageRow) + len(p.tail) }

func (p *pageSource) Read(b []byte) (int, error) {
	body := p.rows * len(pageRow)
	n := 0
	for n < len(b) && p.off < body {
		k := copy(b[n:min(len(b), n+body-p.off)], pageRow[p.off%len(pageRow):])
		n += k
		p.off += k
	}
	if p.off >= body {
		k := copy(b[n:], p.tail[p.off-body:])
		n += k
		p.off += k
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// countingTail counts what it is given and keeps only the end.
type countingTail struct {
	n, writes int
	tail      []byte
}

func (c *countingTail) Write(p []byte) (int, error) {
	c.n += len(p)
	c.writes++
	c.tail = append(c.tail, p...)
	if len(c.tail) > 8<<10 {
		c.tail = append(c.tail[:0], c.tail[len(c.tail)-4<<10:]...)
	}
	return len(p), nil
}

func TestFiftyMegabytePageStreams(t *testing.T) {
	rows := 50 << 20 / len(pageRow)
	if testing.Short() {
		rows /= 10
	}
	in := mustNew(t, noticeConfig())
	src := &pageSource{rows: rows, tail: "</table></body></html>\n"}
	size := src.size()
	var dst countingTail
	s, _ := in.Begin(&dst, http.Header{})
	buf := make([]byte, 32<<10)
	written, firstSeen, writes := 0, false, 0
	for {
		n, err := src.Read(buf)
		if n > 0 {
			s.Write(buf[:n])
			written += n
			writes++
			if !firstSeen && dst.n > 0 {
				firstSeen = true
				if written > maxHold+bufSlack+len(buf) {
					t.Errorf("the first bytes reached dst only after %d bytes", written)
				}
			}
			if written-dst.n > maxHold+bufSlack {
				t.Fatalf("%d bytes held back after %d written", written-dst.n, written)
			}
		}
		if err == io.EOF {
			break
		}
	}
	if err := s.Close(); err != nil || !s.Inserted() {
		t.Fatal(err)
	}
	if dst.writes > writes+1 {
		t.Errorf("%d Writes to dst for %d Writes of the page", dst.writes, writes)
	}
	if dst.n != size+len(in.Snippet()) {
		t.Fatalf("dst got %d bytes, want %d", dst.n, size+len(in.Snippet()))
	}
	if want := string(in.Snippet()) + "</body></html>\n"; !strings.HasSuffix(string(dst.tail), want) {
		t.Fatalf("page ends %q", dst.tail[len(dst.tail)-200:])
	}
}

var errBroken = errors.New("broken pipe")

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after < len(p) {
		n := max(f.after, 0)
		f.after = 0
		return n, errBroken
	}
	f.after -= len(p)
	return len(p), nil
}

func TestWriteErrorsStick(t *testing.T) {
	in := mustNew(t, noticeConfig())
	s, _ := in.Begin(&failingWriter{after: 10}, http.Header{})
	if n, err := s.Write([]byte("<html><body>0123456789abcdef")); err != nil || n != 28 {
		t.Fatalf("Write = %d, %v; want 28 bytes held", n, err)
	}
	if err := s.Flush(); !errors.Is(err, errBroken) {
		t.Fatalf("Flush = %v, want broken pipe", err)
	}
	if _, err := s.Write([]byte("more")); !errors.Is(err, errBroken) {
		t.Fatalf("second Write: %v", err)
	}
	if err := s.Close(); !errors.Is(err, errBroken) {
		t.Fatalf("Close: %v", err)
	}
	if s.Inserted() {
		t.Error("Inserted after a failed write")
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, errClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if err := s.Flush(); !errors.Is(err, errClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, errClosed) {
		t.Fatalf("second Close: %v", err)
	}

	// A Write that pushes bytes out of the window meets the error itself.
	s, _ = in.Begin(&failingWriter{after: 100}, http.Header{})
	page := bytes.Repeat([]byte("<p>x</p>"), maxHold/8+bufSlack/8)[:spliceLimits.windowMax(in.Snippet())]
	if n, err := s.Write(page); err != nil || n != len(page) {
		t.Fatalf("Write = %d, %v; want the whole window held", n, err)
	}
	if n, err := s.Write(page[:200]); !errors.Is(err, errBroken) || n != 0 {
		t.Fatalf("Write = %d, %v; want 0, broken pipe", n, err)
	}
	if err := s.Close(); !errors.Is(err, errBroken) || s.Inserted() {
		t.Fatalf("Close = %v, Inserted %v", err, s.Inserted())
	}
}

func TestInsertedSurvivesClose(t *testing.T) {
	in := mustNew(t, noticeConfig())
	_, s := spliceChunks(t, in, http.Header{}, []byte("<body></body>"))
	// The pooled state is reused by the next stream; s keeps its answer.
	spliceChunks(t, in, http.Header{}, []byte(`<body class="x"><i class="ahp-notice"></i></body>`))
	if !s.Inserted() {
		t.Fatal("Inserted() changed after Close")
	}
}

func TestIdentityPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items at random")
	}
	in := mustNew(t, noticeConfig())
	page, _ := os.ReadFile("testdata/page70k.html")
	h := http.Header{"Content-Type": {"text/html"}}
	allocs := testing.AllocsPerRun(50, func() {
		s, _ := in.Begin(io.Discard, h)
		writeInChunks(s, page)
		s.Close()
	})
	if allocs > 1 { // the Stream itself, which must outlive Close for Inserted
		t.Fatalf("%v allocations per page", allocs)
	}
}

func TestIndexNotice(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for range iterations(20000) {
		// Dense or sparse in '-', short or long enough for the word-wise runs.
		alphabet := []byte("-n-ahp-notice <>\"x")
		if r.IntN(2) == 0 {
			alphabet = []byte("abcdefghijklmnopqrstuvwxyz <>=\"-")
		}
		b := make([]byte, r.IntN([]int{40, 300, 12000}[r.IntN(3)]))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		for range r.IntN(3) {
			if len(b) >= len(noticeClass) {
				copy(b[r.IntN(len(b)-len(noticeClass)+1):], noticeClass)
			}
		}
		from := r.IntN(len(b) + 1)
		want := bytes.Index(b[from:], []byte(noticeClass))
		if want >= 0 {
			want += from
		}
		if got := noticeMarker.index(b, from); got != want {
			t.Fatalf("indexNotice(%q, %d) = %d, want %d", b, from, got, want)
		}
		if len(b) < len(noticeClass) {
			continue
		}
		// Any sub-range of '-' positions.
		lo := noticeMarker.anchor + r.IntN(len(b)-len(noticeClass)+1)
		hi := lo + r.IntN(len(b)-len(noticeClass)+noticeMarker.anchor+2-lo)
		want = -1
		for q := lo - noticeMarker.anchor; q < hi-noticeMarker.anchor; q++ {
			if string(b[q:q+len(noticeClass)]) == noticeClass {
				want = q
				break
			}
		}
		if got := noticeMarker.indexWords(b, lo, hi); got != want {
			t.Fatalf("indexNoticeWords(%q, %d, %d) = %d, want %d", b, lo, hi, got, want)
		}
	}
}

func TestLongTagBound(t *testing.T) {
	in := mustNew(t, noticeConfig())
	for _, extra := range []int{0, 1} {
		pad := maxTagLen - len(`<div data-x="" class="`) + extra
		page := []byte(`<html><body><div data-x="` + strings.Repeat("x", pad) + `" class="ahp-notice">x</div></body></html>`)
		for _, sizes := range [][]int{nil, {1}, {100}} {
			got, s := spliceChunks(t, in, http.Header{}, page, sizes...)
			if s.Inserted() != (extra == 1) || !bytes.Equal(got, referenceSplice(page, in)) {
				t.Fatalf("class %d bytes into its tag: inserted %v", maxTagLen+extra, s.Inserted())
			}
		}
	}
}

// TestHandshakeConfig: a script for pages with a form, unless the page
// already names the marker in a start tag.
func TestHandshakeConfig(t *testing.T) {
	in := mustNew(t, handshakeConfig())
	script := string(in.Snippet())
	for _, tc := range []struct {
		name, page string // mark where the snippet goes; none: unchanged
	}{
		{"form", `<html><body><form action="/x"><input name=q></form>@@</body></html>`},
		{"form in capitals", `<HTML><BODY><FORM METHOD=post></FORM>@@</BODY></HTML>`},
		{"form after the body end", `<html><body>x@@</body><form></form></html>`},
		{"no form", `<html><body><p>no form here, only a formula</p></body></html>`},
		{"form cut short", `<html><body><p>&lt;form</p>x</body><for`},
		{"marker as id", `<html><body><form></form><script id="hpp-client" src="/other.js"></script></body></html>`},
		{"marker as class token", `<html><body><form></form><div class="a hpp-client b"></div></body></html>`},
		{"marker as attribute name", `<html><body><form></form><i data-hpp-client></i></body></html>`},
		{"marker inside a value", `<html><body><form></form><script src="/js/hpp-client.js"></script></body></html>`},
		{"marker after a slash", `<html><body><form></form><br/hpp-client></body></html>`},
		{"marker in text", `<html><body><form></form><p>hpp-client</p>@@</body></html>`},
		{"marker as tag name", `<html><body><form></form><hpp-client></hpp-client>@@</body></html>`},
		{"marker after the tag ended", `<html><body><form></form><p>x hpp-client</p>@@</body></html>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			input := []byte(strings.Replace(tc.page, mark, "", 1))
			want := input
			if strings.Contains(tc.page, mark) {
				want = []byte(strings.Replace(tc.page, mark, script, 1))
			}
			if ref := referenceSplice(input, in); !bytes.Equal(ref, want) {
				t.Fatalf("the reference disagrees:\n%q\nwant %q", ref, want)
			}
			for _, sizes := range [][]int{nil, {1}, {2}, {3}, {5}} {
				got, s := spliceChunks(t, in, http.Header{}, input, sizes...)
				if !bytes.Equal(got, want) || s.Inserted() != !bytes.Equal(want, input) {
					t.Fatalf("chunks %v: got %q (inserted %v)\nwant %q", sizes, got, s.Inserted(), want)
				}
			}
		})
	}
}

// TestRequireLongBeforeTheEnd: a form that left the window long ago still
// counts, however the page is cut.
func TestRequireLongBeforeTheEnd(t *testing.T) {
	in := mustNew(t, handshakeConfig())
	var rest []byte
	for len(rest) < 5*maxHold {
		rest = append(rest, "<p>padding paragraph</p>\n"...)
	}
	rest = append(rest, "</body></html>"...)
	for _, head := range []string{"<html><body><fo", "<html><body><form>"} {
		doc := append([]byte(head), rest...)
		want := referenceSplice(doc, in)
		if inserted := !bytes.Equal(want, doc); inserted != strings.Contains(head, "<form") {
			t.Fatalf("%q: the reference inserted %v", head, inserted)
		}
		for _, sizes := range [][]int{nil, {1000}, {4}} {
			if got, _ := spliceChunks(t, in, http.Header{}, doc, sizes...); !bytes.Equal(got, want) {
				t.Fatalf("%q, chunks %v: output differs from the reference", head, sizes)
			}
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "snippet is empty"},
		{Config{Snippet: make([]byte, MaxSnippet+1)}, "keep it under"},
		{Config{Snippet: []byte("x"), Marker: "ab"}, "3 to 64 bytes"},
		{Config{Snippet: []byte("x"), Marker: "a b c"}, "without whitespace"},
		{Config{Snippet: []byte("x"), Marker: `a"bc`}, "without whitespace"},
		{Config{Snippet: []byte("x"), Marker: strings.Repeat("m", 65)}, "3 to 64 bytes"},
		{Config{Snippet: []byte("x"), Marker: "abc", MarkerAttr: "a b"}, "not an attribute name"},
		{Config{Snippet: []byte("x"), MarkerAttr: "class"}, "without a Marker"},
		{Config{Snippet: []byte("x"), Require: strings.Repeat("r", 65)}, "at most 64"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", tc.cfg, err, tc.want)
		}
	}
	in := mustNew(t, Config{Snippet: []byte("<b>x</b>")})
	if got, _ := spliceChunks(t, in, http.Header{}, []byte("<body>y</body>")); string(got) != "<body>y<b>x</b></body>" {
		t.Fatalf("no marker, no requirement: %q", got)
	}
}

// TestMarkerIndex: the anchored search agrees with bytes.Index for markers
// anchored on punctuation or on letters, dense or sparse.
func TestMarkerIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, word := range []string{"hpp-client", "abc", "zebra", "x_y", "qqqq"} {
		m := newMarker(word, "")
		for range iterations(2000) {
			alphabet := []byte(word + " <>\"")
			if r.IntN(2) == 0 {
				alphabet = []byte("abcdefghijklmnopqrstuvwxyz <>=\"-_")
			}
			b := make([]byte, r.IntN([]int{20, 300, 9000}[r.IntN(3)]))
			for i := range b {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
			if len(b) >= len(word) && r.IntN(2) == 0 {
				copy(b[r.IntN(len(b)-len(word)+1):], word)
			}
			from := r.IntN(len(b) + 1)
			want := bytes.Index(b[from:], []byte(word))
			if want >= 0 {
				want += from
			}
			if got := m.index(b, from); got != want {
				t.Fatalf("%s: index(%q, %d) = %d, want %d", word, b, from, got, want)
			}
		}
	}
}

// TestRequireIndex: the case-insensitive search agrees with a plain one.
func TestRequireIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, word := range []string{"<form", "Body", "x", "<A/"} {
		q := newRequire(word)
		for range iterations(2000) {
			alphabet := []byte(strings.ToUpper(word) + strings.ToLower(word) + " ab<")
			b := make([]byte, r.IntN([]int{10, 200, 5000}[r.IntN(3)]))
			for i := range b {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
			from := r.IntN(len(b) + 1)
			want := bytes.Index(bytes.ToLower(b[from:]), bytes.ToLower([]byte(word)))
			if want >= 0 {
				want += from
			}
			if got := q.index(b, from); got != want {
				t.Fatalf("%s: index(%q, %d) = %d, want %d", word, b, from, got, want)
			}
		}
	}
}

// TestNeverInsideATag: a </body> in an attribute value, however long the
// value and however the page is cut, does not take the snippet: the value's
// text stays text in the DOM.
func TestNeverInsideATag(t *testing.T) {
	in := mustNew(t, noticeConfig())
	attack := `</body><img src=x onerror=alert(1)>`
	for _, pad := range []int{0, 100, 3000, 100 << 10} {
		for _, quote := range []string{`"`, `'`} {
			value := strings.Repeat("a", pad) + attack
			page := []byte(`<html><body><p>hi</p><div title=` + quote + value + quote + `>x</div>`)
			want := append(append([]byte{}, page...), in.Snippet()...)
			if ref := referenceSplice(page, in); !bytes.Equal(ref, want) {
				t.Fatalf("pad %d %s: the reference should put the notice at the end", pad, quote)
			}
			for _, sizes := range [][]int{nil, {1000}, {4093}} {
				got, s := spliceChunks(t, in, http.Header{}, page, sizes...)
				if !bytes.Equal(got, want) || !s.Inserted() {
					t.Fatalf("pad %d %s, chunks %v: the notice is not at the end", pad, quote, sizes)
				}
			}
			doc := parse(t, want)
			if doc.Find("img").Length() != 0 || doc.Find("div").AttrOr("title", "") != value {
				t.Fatalf("pad %d %s: the attribute's text became markup", pad, quote)
			}
			checkNoticeDOM(t, want)

			// Cut inside the value: nothing goes in.
			cut := page[:bytes.Index(page, []byte(attack))+len(attack)]
			if got, s := spliceChunks(t, in, http.Header{}, cut, 999); !bytes.Equal(got, cut) || s.Inserted() {
				t.Fatalf("pad %d %s: a page that ends inside a value was changed", pad, quote)
			}
		}
	}
}

// TestNeverInABogusComment: a bogus comment (`<?…`, `<!x…`, `<![CDATA[…` in
// HTML content, `</` and no letter) ends at the first '>', which in the
// snippet is its opening tag's: spliced into one, the opening tag with its
// display:none and hidden would be swallowed, and the notice's paragraphs
// shown to every visitor. Such a "</body>" sends the snippet to the end; a
// page that ends inside one is left alone.
func TestNeverInABogusComment(t *testing.T) {
	in := mustNew(t, noticeConfig())
	for _, tail := range []string{`<? echo "</body>"; ?>`, `<![CDATA[ </body> ]]>`, `<!</body>`, `<!-</body>`, `</</body>`} {
		page := []byte(`<!doctype html><html><body><p>hi</p>` + tail)
		want := append(append([]byte{}, page...), in.Snippet()...)
		for _, sizes := range [][]int{nil, {1}, {7}} {
			got, s := spliceChunks(t, in, http.Header{}, page, sizes...)
			if !bytes.Equal(got, want) || !s.Inserted() {
				t.Errorf("%q, chunks %v: got %q", tail, sizes, got)
			}
		}
		if ref := referenceSplice(page, in); !bytes.Equal(ref, want) {
			t.Errorf("%q: the reference puts the notice elsewhere", tail)
		}
		checkNoticeDOM(t, want)
		if doc := parse(t, want); doc.Find("body > p").Length() != 1 {
			t.Errorf("%q: the notice's text shows: %q", tail, want)
		}
		// Cut inside the comment: nothing goes in.
		cut := page[:bytes.LastIndex(page, []byte("</body"))+len("</body")]
		if got, s := spliceChunks(t, in, http.Header{}, cut, 5); !bytes.Equal(got, cut) || s.Inserted() {
			t.Errorf("%q: a page that ends inside a bogus comment was changed: %q", tail, got)
		}
	}
}

func TestLastIndexByte(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for range iterations(5000) {
		b := make([]byte, r.IntN([]int{10, 300, 9000}[r.IntN(3)]))
		for i := range b {
			b[i] = "ab'\"\x00\x01\x80\xff"[r.IntN(8)]
		}
		if r.IntN(2) == 0 {
			for i := range b {
				if b[i] == '\'' {
					b[i] = 'a'
				}
			}
			if len(b) > 0 && r.IntN(2) == 0 {
				b[r.IntN(len(b))] = '\''
			}
		}
		for _, c := range []byte("'\"\x00\x01") {
			if got, want := lastIndexByte(b, c), bytes.LastIndexByte(b, c); got != want {
				t.Fatalf("lastIndexByte(%q, %q) = %d, want %d", b, c, got, want)
			}
		}
	}
}

// iterations is n, or a tenth of it under the race detector, which makes
// these pure-computation loops ten times slower and adds nothing to them.
func iterations(n int) int {
	if raceEnabled {
		return n / 10
	}
	return n
}

// TestForeignEncodingsPassThrough: a body whose first bytes show UTF-16 or
// UTF-32 (a byte order mark, or a NUL beside the first '<') passes through
// unchanged, whatever its Content-Type says and however it is cut, and
// compressed; UTF-8 with its byte order mark gets the snippet.
func TestForeignEncodingsPassThrough(t *testing.T) {
	in := mustNew(t, noticeConfig())
	page := "<html><body><p>hi</p></body></html>\n"
	wide := func(order binary.ByteOrder, bom bool, bytesPerUnit int) []byte {
		var out []byte
		if bom {
			out = append(out, make([]byte, bytesPerUnit)...)
			if bytesPerUnit == 2 {
				order.PutUint16(out, 0xFEFF)
			} else {
				order.PutUint32(out, 0xFEFF)
			}
		}
		for _, r := range page {
			u := make([]byte, bytesPerUnit)
			if bytesPerUnit == 2 {
				order.PutUint16(u, uint16(r))
			} else {
				order.PutUint32(u, uint32(r))
			}
			out = append(out, u...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"UTF-16LE with BOM", wide(binary.LittleEndian, true, 2)},
		{"UTF-16BE with BOM", wide(binary.BigEndian, true, 2)},
		{"UTF-16LE", wide(binary.LittleEndian, false, 2)},
		{"UTF-16BE", wide(binary.BigEndian, false, 2)},
		{"UTF-32LE with BOM", wide(binary.LittleEndian, true, 4)},
		{"UTF-32BE with BOM", wide(binary.BigEndian, true, 4)},
	} {
		for _, sizes := range [][]int{nil, {1}, {3}} {
			out, s := spliceChunks(t, in, http.Header{"Content-Type": {"text/html"}}, tc.body, sizes...)
			if !bytes.Equal(out, tc.body) || s.Inserted() || s.Reason() != ReasonCharset {
				t.Errorf("%s, chunks %v: %d bytes in, %d out, reason %q", tc.name, sizes, len(tc.body), len(out), s.Reason())
			}
		}
		z := compress(t, testCodecs[0], tc.body)
		out, s := spliceChunks(t, in, http.Header{"Content-Encoding": {testCodecs[0].name}}, z)
		if !bytes.Equal(out, z) || s.Inserted() {
			t.Errorf("%s, %s: changed", tc.name, testCodecs[0].name)
		}
	}
	utf8BOM := append([]byte("\xEF\xBB\xBF"), page...)
	if out, s := spliceChunks(t, in, http.Header{}, utf8BOM, 1); !s.Inserted() || !bytes.HasPrefix(out, utf8BOM[:20]) {
		t.Errorf("UTF-8 with its byte order mark: inserted %v", s.Inserted())
	}
}

// TestJSONLabelledHTMLPassesThrough: a JSON body labelled text/html (the
// default Content-Type of PHP, Django's HttpResponse, CGI scripts) whose
// strings hold page markup passes through unchanged, however it is cut and
// compressed: the snippet before a "</body>" in a string, or after the
// document it names, is no longer JSON (the snippet's quotes end the
// string). Browsers' fetch() is skipped by Sec-Fetch-Dest; API clients,
// agents and old browsers send none.
func TestJSONLabelledHTMLPassesThrough(t *testing.T) {
	in := mustNew(t, noticeConfig())
	for _, body := range []string{
		`{"html":"<!doctype html><html><body><p>hi</p></body></html>"}`,
		`{"template":"<body>"}`,
		"\r\n  [\"<html>\", \"</body>\"]\n",
	} {
		for _, sizes := range [][]int{nil, {1}, {3}} {
			out, s := spliceChunks(t, in, http.Header{"Content-Type": {"text/html"}}, []byte(body), sizes...)
			if string(out) != body || s.Inserted() || s.Reason() != ReasonNotHTML {
				t.Errorf("%q, chunks %v: out %q, reason %q", body, sizes, out, s.Reason())
			}
		}
		z := compress(t, testCodecs[0], []byte(body))
		if out, s := spliceChunks(t, in, http.Header{"Content-Encoding": {testCodecs[0].name}}, z); !bytes.Equal(out, z) || s.Inserted() {
			t.Errorf("%q, %s: changed", body, testCodecs[0].name)
		}
	}
	// A page that opens with text, not with JSON, still gets it.
	if _, s := spliceChunks(t, in, http.Header{}, []byte("\n Hello <!doctype html><body>x</body>"), 1); !s.Inserted() {
		t.Errorf("a page opening with text: not inserted")
	}
}

// TestJSONWithByteOrderMarkPassesThrough: PHP sends the UTF-8 byte order
// mark of a script saved with one before anything it prints, so JSON
// labelled text/html may open with EF BB BF: still JSON (fetch's json() and
// Python's json.loads of bytes skip it), which the snippet would break. A mark not whole,
// or one after white space, is text.
func TestJSONWithByteOrderMarkPassesThrough(t *testing.T) {
	in := mustNew(t, noticeConfig())
	const body = "\xEF\xBB\xBF\n{\"html\":\"<!doctype html><html><body><p>hi</p></body></html>\"}"
	for _, sizes := range [][]int{nil, {1}, {2}} {
		out, s := spliceChunks(t, in, http.Header{"Content-Type": {"text/html"}}, []byte(body), sizes...)
		if string(out) != body || s.Inserted() || s.Reason() != ReasonNotHTML {
			t.Errorf("chunks %v: out %q, reason %q", sizes, out, s.Reason())
		}
	}
	for _, lead := range []string{"\xEF\xBB", " \xEF\xBB\xBF", "\xEF\xBB\xBF\xEF\xBB\xBF"} {
		doc := []byte(lead + `{"a":1} <!doctype html><body>x</body>`)
		if ref := referenceSplice(doc, in); bytes.Equal(ref, doc) {
			t.Errorf("%q: the reference inserts nothing", lead)
		}
		for _, sizes := range [][]int{nil, {1}} {
			if _, s := spliceChunks(t, in, http.Header{}, doc, sizes...); !s.Inserted() {
				t.Errorf("%q, chunks %v: not inserted", lead, sizes)
			}
		}
	}
}

// TestXHTMLNeverPastTheRoot: an application/xhtml+xml page gets the
// snippet before its </body> or not at all: at its end it would follow the
// root element, and the page would no longer parse as XML.
func TestXHTMLNeverPastTheRoot(t *testing.T) {
	in := mustNew(t, noticeConfig())
	xhtml := http.Header{"Content-Type": {"application/xhtml+xml; charset=utf-8"}}
	for _, tc := range []struct{ name, page string }{
		{"prefixed", `<?xml version="1.0"?><h:html xmlns:h="http://www.w3.org/1999/xhtml"><h:body><h:p>x</h:p></h:body></h:html>`},
		{"body end in an attribute only", `<html xmlns="http://www.w3.org/1999/xhtml"><body><p title="</body>">x</p></html>`},
	} {
		for _, sizes := range [][]int{nil, {1}} {
			out, s := spliceChunks(t, in, xhtml, []byte(tc.page), sizes...)
			if string(out) != tc.page || s.Inserted() || s.Reason() != ReasonNotDocument {
				t.Errorf("%s: inserted %v, reason %q:\n%s", tc.name, s.Inserted(), s.Reason(), out)
			}
		}
	}
	page := `<html xmlns="http://www.w3.org/1999/xhtml"><body><p>x</p></body></html>`
	if out, s := spliceChunks(t, in, xhtml, []byte(page)); !s.Inserted() || !strings.Contains(string(out), string(in.Snippet())+"</body>") {
		t.Errorf("an XHTML page with its </body>: %s", out)
	}
}

// TestEmptyBodyStaysEmpty, identity or compressed.
func TestEmptyBodyStaysEmpty(t *testing.T) {
	in := mustNew(t, noticeConfig())
	for _, h := range []http.Header{{"Content-Type": {"text/html"}}, {"Content-Encoding": {"gzip"}}} {
		if out, s := spliceChunks(t, in, h, nil); len(out) != 0 || s.Inserted() {
			t.Errorf("%v: an empty body became %d bytes", h, len(out))
		}
	}
}
