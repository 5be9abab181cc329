// Package htmlinject inserts a fixed snippet of markup into HTML response
// bodies as they stream through, compressed bodies included: the AHP
// notice (package notice) and the Handshake Prompt's browser script are
// built on it.
//
// The package knows nothing about Caddy. A middleware asks SkipRequest and
// SkipResponse whether a response is eligible, calls Injector.Begin at
// WriteHeader time, and writes the body through the returned Stream:
//
//	in, err := htmlinject.New(htmlinject.Config{
//		Snippet: []byte(`<script src="/handshake/client.js" defer></script>`),
//		Marker:  "hpp-client", // a page already carrying it gets nothing
//		Require: "<form",      // only pages that contain a form
//	})
//	...
//	if htmlinject.SkipRequest(r) == "" && htmlinject.SkipResponse(status, hdr) == "" {
//		stream, err := in.Begin(w, hdr) // ErrUnsupportedEncoding: pass the body untouched
//		// stream.Write, stream.Flush ..., then stream.Close(); stream.Inserted()
//	}
//
// # Where the snippet goes
//
// The output is the body with the snippet inserted once, before the last
// "</body" (ASCII case-insensitive, followed by whitespace, '/' or '>') that
// starts among the last maxHold (64 KiB) bytes of the document; with none
// there, at the end of the document, if it is a document: some '<' in it
// starts a "!doctype", "html", "head" or "body" tag (ASCII
// case-insensitive, followed by whitespace, '/' or '>'), and it is not
// application/xhtml+xml (past the root element, XML no longer parses). A
// fragment or an empty body without a "</body" gets nothing. A "</body" cut by the end of the
// document does not count. Never inside a tag or an attribute value, nor
// in a bogus comment (`<?…`, `<!x…`, which end at the snippet's first
// '>'), nor in the text of a script, textarea or other raw text element (see intag.go
// for the tests): a last "</body" there sends the snippet to the end of
// the document, and a document whose end is there gets nothing. A page passes through byte for byte when:
//
//   - it already carries the marker: some Marker lies in the start tag
//     opened by the last '<' before the word, at most maxTagLen (2 KiB)
//     bytes back, after the tag's name (with MarkerAttr set, as a whole
//     whitespace-separated token of that attribute's value);
//   - Require is set and the body does not contain it (ASCII
//     case-insensitive);
//   - its encoding is not ASCII-compatible, so that the ASCII snippet
//     would corrupt it: its first two bytes hold a NUL, or its first is FE
//     or FF (UTF-16 or UTF-32, with or without a byte order mark; its
//     Content-Type's charset is checked by SkipResponse);
//   - it is JSON labelled as HTML (PHP's and Django's default type): its
//     first byte other than whitespace, after a UTF-8 byte order mark
//     opening it, is '{' or '['.
//
// referenceSplice in the tests states these rules over a whole input; the
// fuzz targets hold the streaming code to it for any input and any cutting
// into Writes and Flushes.
//
// # How, and what it costs
//
// A Stream holds the most recent bytes of the body in a window (at least
// the last maxHold, at most 16 KiB more) and writes what leaves the window,
// unread, in Writes of about 16 KiB or more. Close looks for the last
// "</body" backward from the end of the window (it is almost always within
// the last few dozen bytes) and writes the window, the snippet and the rest
// in one Write. Flush writes everything before the last "</body" seen so
// far, or everything but a "</bod" cut at the end, so progressive rendering
// works. The only searches over every byte are the one for the marker,
// anchored on its rarest byte (the '-' of "ahp-notice") with
// bytes.IndexByte, and, when set, the one for Require. Whether the splice
// point is inside a tag is decided at Close (and at Flush for a new
// "</body"), from the bytes just before it, and from a summary of the
// bytes that left the buffer, folded in as they leave: a few hundred bytes
// are looked at, except in a page without a single quote (or a double one), where
// bytes.IndexByte goes back through the buffer. The body is chunked
// (its length changes), and net/http pays two write syscalls per large
// Write of a chunked body, so few large Writes matter as much as the scan:
// a page up to 80 KiB that is not flushed reaches dst in one Write. Memory
// per response is one pooled buffer of about 82 KiB (the window, the 2 KiB
// before it for the marker check, and room for the snippet).
//
// # Trade-offs
//
// The HTML tokenizer is not followed over the whole page: it would cost a
// look at every byte. The inside-a-tag test follows tags, attribute values
// and comments near the splice point; the raw-text test looks back from it
// for the start tag of a script, style, textarea, title, xmp, iframe,
// noembed, noframes, noscript, plaintext or template element not followed
// by its end tag (intag.go). So:
//
//   - a "</body>" in a script string or a textarea (a minified page that
//     dropped its optional </body> has no other) sends the snippet to the
//     end, after that element, as long as the element's start tag lies
//     within 2 KiB before it; further back it is not seen, and the snippet
//     goes into that script or text. A "</body>" inside a comment after
//     the real end of the body takes the snippet (into that comment, where
//     it is inert). Decoys before the real "</body>" are harmless, since
//     the last one wins;
//   - a start tag of a raw text element inside a comment, within 2 KiB
//     before the "</body>" (`<!-- <script> -->`), sends the snippet to the
//     end, or, if the end cannot be cleared either, keeps the page
//     unchanged;
//   - marker markup inside a script string or a comment (`'<div
//     class="ahp-notice">'`) counts as the marker, so such a page gets
//     nothing: never twice, at the price of rarely never;
//   - the inside-a-tag test errs on the safe side: a "</body>" it cannot
//     clear sends the snippet to the end, and an end it cannot clear keeps
//     the page unchanged; markup-like text in a script just before the
//     splice point can sway it (intag.go);
//   - a "</body>" more than maxHold bytes before the end of the document is
//     not where the snippet goes (it then goes at the end): real pages end a
//     few hundred bytes after their "</body>";
//   - between Flushes the client gets the page in steps of 16 KiB or more,
//     not as it arrives: the first bytes of a large page wait until 80 KiB
//     have come, or for the next Flush. reverse_proxy flushes after every
//     write for upstreams that stream (no Content-Length).
//
// # Compressed bodies
//
// A gzip, deflate, br or zstd body is decoded, and re-encoded with the
// snippet in the same coding at Close. Until then it is held, as it came,
// compressed: a body that turns out not to get the snippet (it does not
// decode, decodes to more than Config.MaxDecoded, declares a decoder
// window above the bound, carries the marker, lacks Require) must go out
// byte for byte, and no byte of a re-encoded body may have gone out
// before. So:
//
//   - a compressed page is not rendered progressively: Flush writes
//     nothing of it, and the client gets it at Close, in one burst (or, on
//     a pass-through decision, at once, and the rest as it comes). Behind
//     Caddy's encode every page arrives compressed: a streamed page should
//     carry the marker early (then it streams once the marker is decoded),
//     or its route stay out of encode (docs/htmlinject.md);
//   - memory per compressed page in flight is its compressed bytes so far,
//     the decoder's window and the splicer's buffer; the encoder (0.35 to
//     0.5 MB) exists only during Close. Measured by TestMemoryPerPage, all
//     of a page written, not yet closed: 72 KB page, 17 KB gzip: 200 KB;
//     deflate 200 KB; br 370 KB; zstd with Caddy's 128 KiB window 420 KB.
//     A 300 KB page: gzip 240 KB, br 810 KB (its ring buffer grows with
//     the page), zstd 670 KB. Worst cases, with 2 MB pages: br 4.8 MB
//     (ring buffer capped by a 4 MiB window), zstd 3.9 MB (2 MiB window);
//     larger windows pass through. Before this design the encoder lived as
//     long as the page: 1.0 MB for the 300 KB page in gzip, 2.3 MB in zstd,
//     11 MB for a zstd stream with an 8 MiB window;
//   - a page that outgrew the splicer's window (about 80 KB decoded) is
//     decoded twice, once to decide and once to re-encode: on a 300 KB
//     gzip page that costs 46% more instructions than decoding once while
//     encoding (BenchmarkInjectGzipLarge); smaller pages are encoded from
//     the splicer's buffer and cost what they did (within 0.2%).
package htmlinject

import (
	"errors"
	"fmt"
	"strings"
)

// Config says what to insert and into which pages.
type Config struct {
	// Snippet is the markup inserted, at most MaxSnippet bytes. It should
	// be balanced markup that also parses as XML (e.g. <br/>), so that
	// application/xhtml+xml pages still parse.
	Snippet []byte

	// Marker, if set, is a word (3 to 64 bytes, no whitespace, quotes, '<',
	// '>' or '=') whose presence in a start tag shows that the page already
	// carries the snippet: such a page passes through unchanged. Matching is
	// case-sensitive.
	Marker string

	// MarkerAttr, if set, restricts Marker to a whole whitespace-separated
	// token of this attribute's value (name matched ASCII
	// case-insensitively), as "class" does for the AHP notice. Empty: the
	// marker counts anywhere after the tag's name (an attribute name or
	// value, or part of one: `id="hpp-client"`, `data-hpp-client`).
	MarkerAttr string

	// Require, if set (1 to 64 bytes), is text the body must contain, ASCII
	// case-insensitively, for the snippet to go in (e.g. "<form").
	Require string

	// MaxDecoded bounds a compressed body (gzip, deflate, br, zstd): one
	// that arrives as, or decodes to, more bytes passes through unchanged,
	// compressed bytes as they came. A compressed body is held until its
	// end or this bound (see "Compressed bodies" in the package comment).
	// 0 means DefaultMaxDecoded (8 MiB); a negative value leaves every
	// compressed body alone (Begin returns ErrUnsupportedEncoding).
	MaxDecoded int64
}

// MaxSnippet bounds Config.Snippet: the snippet goes into every page, and
// the buffer keeps room for it.
const MaxSnippet = 16 << 10

// maxWordLen bounds Marker and Require.
const maxWordLen = 64

// ErrUnsupportedEncoding is returned by Injector.Begin for a
// Content-Encoding it cannot decode and re-encode; such a response must
// pass untouched.
var ErrUnsupportedEncoding = errors.New("htmlinject: unsupported Content-Encoding")

// Injector holds one validated Config. It is safe for concurrent use and
// meant to live as long as the configuration that made it.
type Injector struct {
	snippet    []byte
	marker     marker
	require    require
	maxDecoded int64
}

// New validates cfg and keeps a copy of the snippet.
func New(cfg Config) (*Injector, error) {
	switch {
	case len(cfg.Snippet) == 0:
		return nil, errors.New("htmlinject: the snippet is empty")
	case len(cfg.Snippet) > MaxSnippet:
		return nil, fmt.Errorf("htmlinject: the snippet is %d bytes; it goes into every page, keep it under %d bytes", len(cfg.Snippet), MaxSnippet)
	}
	in := &Injector{snippet: append([]byte(nil), cfg.Snippet...), maxDecoded: cfg.MaxDecoded}
	if in.maxDecoded == 0 {
		in.maxDecoded = DefaultMaxDecoded
	}
	if cfg.Marker != "" {
		if len(cfg.Marker) < 3 || len(cfg.Marker) > maxWordLen || strings.ContainsAny(cfg.Marker, " \t\n\f\r\"'<>=") {
			return nil, fmt.Errorf("htmlinject: marker %q must be 3 to %d bytes without whitespace, quotes, '<', '>' or '='", cfg.Marker, maxWordLen)
		}
		if cfg.MarkerAttr != "" && (len(cfg.MarkerAttr) > maxWordLen || strings.ContainsAny(cfg.MarkerAttr, " \t\n\f\r\"'<>=/")) {
			return nil, fmt.Errorf("htmlinject: marker attribute %q is not an attribute name", cfg.MarkerAttr)
		}
		in.marker = newMarker(cfg.Marker, cfg.MarkerAttr)
	} else if cfg.MarkerAttr != "" {
		return nil, errors.New("htmlinject: MarkerAttr without a Marker")
	}
	if cfg.Require != "" {
		if len(cfg.Require) > maxWordLen {
			return nil, fmt.Errorf("htmlinject: Require is %d bytes, at most %d", len(cfg.Require), maxWordLen)
		}
		in.require = newRequire(cfg.Require)
	}
	return in, nil
}

// Snippet returns the bytes inserted into pages. Callers must not modify it.
func (in *Injector) Snippet() []byte { return in.snippet }
