package concierge

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"io"
	"strings"

	"golang.org/x/net/html/charset"
)

// parseSitemap reads a sitemap (sitemaps.org): an XML <urlset> of page
// locations or a <sitemapindex> of further sitemaps, gzip-compressed or
// not, or a text sitemap (one URL a line). It also reads robots.txt's
// "Sitemap:" lines. It returns at most max locations in all; malformed XML
// yields what was read before the error (and the error).
func parseSitemap(body []byte, max int) (pages, sitemaps []string, err error) {
	var r io.Reader = bytes.NewReader(body)
	if len(body) >= 2 && body[0] == 0x1f && body[1] == 0x8b {
		zr, zerr := gzip.NewReader(r)
		if zerr != nil {
			return nil, nil, zerr
		}
		// Decompressed as it is parsed, never held whole: parsing stops
		// at max locations, and the protocol caps a sitemap at 50 MB
		// uncompressed. A body cut at the fetch cap yields what was read.
		r = io.LimitReader(zr, 50<<20)
	}
	br := bufio.NewReaderSize(r, 4096)
	head, _ := br.Peek(4096)
	trimmed := bytes.TrimLeft(head, " \t\r\n\ufeff")
	if !bytes.HasPrefix(trimmed, []byte("<")) {
		return parseTextSitemap(br, max)
	}
	// The decoder holds a token whole (a location, a comment, an
	// attribute): bounded, or a small gzip body could expand into one
	// token of 50 MB.
	tr := &tokenReader{r: br}
	d := xml.NewDecoder(tr)
	d.Strict = false
	d.CharsetReader = charset.NewReaderLabel
	var inLoc, inSitemap, inURL, tooLong bool
	var loc strings.Builder
	for len(pages)+len(sitemaps) < max {
		tr.n = 0
		tok, terr := d.Token()
		if terr != nil {
			if terr == io.EOF {
				return pages, sitemaps, nil
			}
			return pages, sitemaps, terr
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch strings.ToLower(t.Name.Local) {
			case "url":
				inURL = true
			case "sitemap":
				inSitemap = true
			case "loc":
				inLoc = inURL || inSitemap
				loc.Reset()
				tooLong = false
			}
		case xml.EndElement:
			switch strings.ToLower(t.Name.Local) {
			case "url":
				inURL = false
			case "sitemap":
				inSitemap = false
			case "loc":
				if inLoc && !tooLong {
					if s := strings.TrimSpace(loc.String()); s != "" && len(s) <= maxURLBytes {
						if inSitemap {
							sitemaps = append(sitemaps, s)
						} else {
							pages = append(pages, s)
						}
					}
				}
				inLoc = false
			}
		case xml.CharData:
			// A location over the protocol's limit is dropped, not cut.
			if inLoc && !tooLong {
				if loc.Len()+len(t) > maxURLBytes+256 { // room for the white space around it
					tooLong = true
				} else {
					loc.Write(t)
				}
			}
		}
	}
	return pages, sitemaps, nil
}

// maxURLBytes is the longest location kept (sitemaps.org: 2,048).
const maxURLBytes = 2048

// maxSitemapToken bounds the bytes the XML decoder reads for one token
// (with a charset's read-ahead): far above any location, and what it
// holds at most.
const maxSitemapToken = 64 << 10

var errSitemapToken = errors.New("concierge: sitemap token over 64 KiB")

// tokenReader is the XML decoder's input, failing once it has read
// maxSitemapToken bytes since n was last reset (at each token). It is an
// io.ByteReader, so the decoder reads it without a buffer of its own.
type tokenReader struct {
	r *bufio.Reader
	n int
}

func (t *tokenReader) ReadByte() (byte, error) {
	if t.n >= maxSitemapToken {
		return 0, errSitemapToken
	}
	t.n++
	return t.r.ReadByte()
}

func (t *tokenReader) Read(p []byte) (int, error) {
	if t.n >= maxSitemapToken {
		return 0, errSitemapToken
	}
	n, err := t.r.Read(p[:min(len(p), maxSitemapToken-t.n)])
	t.n += n
	return n, err
}

var errNoSitemap = errors.New("concierge: not a sitemap")

// parseTextSitemap reads one URL a line; in a robots.txt, the lines
// "Sitemap: <url>" name sitemaps and every other line is ignored.
func parseTextSitemap(body io.Reader, max int) (pages, sitemaps []string, err error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	robots := false
	for sc.Scan() && len(pages)+len(sitemaps) < max {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if name, value, ok := strings.Cut(line, ":"); ok && !strings.Contains(name, "/") && !isScheme(name) {
			robots = true
			if strings.EqualFold(strings.TrimSpace(name), "sitemap") {
				if v := strings.TrimSpace(value); v != "" && len(v) <= maxURLBytes {
					sitemaps = append(sitemaps, v)
				}
			}
			continue
		}
		if !robots && len(line) <= maxURLBytes && (isHTTPURL(line) || strings.HasPrefix(line, "/")) && !strings.ContainsAny(line, " \t") {
			pages = append(pages, line)
		}
	}
	if len(pages) == 0 && len(sitemaps) == 0 {
		return nil, nil, errNoSitemap
	}
	return pages, sitemaps, nil
}

func isScheme(s string) bool {
	return strings.EqualFold(s, "http") || strings.EqualFold(s, "https")
}

func isHTTPURL(s string) bool {
	l := len("https://")
	if len(s) < l {
		l = len(s)
	}
	head := strings.ToLower(s[:l])
	return strings.HasPrefix(head, "http://") || strings.HasPrefix(head, "https://")
}
