package concierge

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestParseSitemap(t *testing.T) {
	urlset := `<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>https://example.com/</loc><lastmod>2024-01-01</lastmod></url>
  <url><loc>
     https://example.com/blog/caring-for-oak.html
  </loc></url>
  <url><loc>https://example.com/a?x=1&amp;y=2</loc></url>
</urlset>`
	index := `<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>https://example.com/sitemap-posts.xml</loc></sitemap>
  <sitemap><loc>/sitemap-pages.xml.gz</loc></sitemap>
</sitemapindex>`
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(urlset))
	zw.Close()
	cases := []struct {
		name        string
		body        []byte
		max         int
		pages, maps []string
	}{
		{"urlset", []byte(urlset), 100, []string{"https://example.com/", "https://example.com/blog/caring-for-oak.html", "https://example.com/a?x=1&y=2"}, nil},
		{"index", []byte(index), 100, nil, []string{"https://example.com/sitemap-posts.xml", "/sitemap-pages.xml.gz"}},
		{"gzip", gz.Bytes(), 100, []string{"https://example.com/", "https://example.com/blog/caring-for-oak.html", "https://example.com/a?x=1&y=2"}, nil},
		{"capped", []byte(urlset), 2, []string{"https://example.com/", "https://example.com/blog/caring-for-oak.html"}, nil},
		{"text", []byte("https://example.com/one\n\n/two\nnot a url\n# comment\n"), 100, []string{"https://example.com/one", "/two"}, nil},
		{"robots", []byte("User-agent: *\nDisallow: /admin\nSitemap: https://example.com/sitemap.xml\n"), 100, nil, []string{"https://example.com/sitemap.xml"}},
		{"loc outside url", []byte(`<urlset><loc>/stray</loc><url><loc>/ok</loc></url></urlset>`), 100, []string{"/ok"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pages, maps, err := parseSitemap(tc.body, tc.max)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pages, tc.pages) || !slices.Equal(maps, tc.maps) {
				t.Errorf("pages %q sitemaps %q, want %q %q", pages, maps, tc.pages, tc.maps)
			}
		})
	}
	// Broken XML: what came before the break is kept, with the error.
	pages, _, err := parseSitemap([]byte(`<urlset><url><loc>/a</loc></url><url><loc>/b</loc></url><url><loc`), 100)
	if err == nil || !slices.Equal(pages, []string{"/a", "/b"}) {
		t.Errorf("broken XML: %q %v", pages, err)
	}
	if _, _, err := parseSitemap([]byte("<html>not a sitemap</html>"), 100); err != nil {
		t.Errorf("HTML is read as XML with no locations, not an error: %v", err)
	}
}

// FuzzSitemap: sitemaps come from the site, which may serve anything
// there. The parser never panics, never returns more than max locations,
// and no location longer than maxURLBytes or empty.
func FuzzSitemap(f *testing.F) {
	f.Add([]byte(`<urlset><url><loc>/a</loc></url></urlset>`), 3)
	f.Add([]byte(`<sitemapindex><sitemap><loc>/s.xml</loc></sitemap></sitemapindex>`), 3)
	f.Add([]byte("Sitemap: /x.xml\n/y\n"), 2)
	f.Add([]byte{0x1f, 0x8b, 0, 0}, 1)
	f.Add([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?><urlset><url><loc>/caf`+"\xe9"+`</loc></url></urlset>`), 5)
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "aaaa">]><urlset><url><loc>&a;&a;</loc></url></urlset>`), 5)
	f.Fuzz(func(t *testing.T, body []byte, max int) {
		if max < 0 || max > 1000 {
			return
		}
		pages, maps, _ := parseSitemap(body, max)
		if len(pages)+len(maps) > max {
			t.Fatalf("%d locations, max %d", len(pages)+len(maps), max)
		}
		for _, l := range append(pages, maps...) {
			if l == "" || len(strings.TrimSpace(l)) != len(l) || len(l) > maxURLBytes {
				t.Fatalf("bad location %q", l)
			}
		}
	})
}

// TestGzipSitemapStreamed: a gzip sitemap is parsed as it decompresses:
// reading max locations of a large one never holds it whole (the docs
// promise 1 MiB read of each document; its 50 MB uncompressed would be
// fifty times that), and one cut at the fetch cap yields what it held.
func TestGzipSitemapStreamed(t *testing.T) {
	var x bytes.Buffer
	x.WriteString(`<urlset>`)
	for i := 0; x.Len() < 16<<20; i++ {
		fmt.Fprintf(&x, "<url><loc>/p%d</loc></url>\n", i)
	}
	x.WriteString(`</urlset>`)
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	zw.Write(x.Bytes())
	zw.Close()
	body := z.Bytes()

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	pages, _, err := parseSitemap(body, 100)
	runtime.ReadMemStats(&after)
	if err != nil || len(pages) != 100 || pages[99] != "/p99" {
		t.Fatalf("%d pages (last %q), %v", len(pages), pages[len(pages)-1], err)
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 2<<20 {
		t.Errorf("reading 100 locations of a %d MiB sitemap allocated %d KiB", x.Len()>>20, grown>>10)
	}

	cut := body[:len(body)/2]
	pages, _, err = parseSitemap(cut, 1<<30)
	if err == nil || len(pages) < 1000 || pages[0] != "/p0" {
		t.Errorf("a sitemap cut in half: %d pages, %v", len(pages), err)
	}
}

// TestGzipSitemapHugeToken: one token of a gzip sitemap (a location, a
// comment, an attribute) is held whole by the XML decoder, so a 50 KB
// body decompressing to one 49 MiB location took 128 MB and two seconds.
// A token is bounded: the sitemap is read up to it, and no further.
func TestGzipSitemapHugeToken(t *testing.T) {
	for _, open := range []string{"<loc>", "<!--", `<url a="`} {
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		zw.Write([]byte(`<urlset><url><loc>/first</loc></url><url>` + open))
		chunk := bytes.Repeat([]byte("a"), 1<<20)
		for range 49 {
			zw.Write(chunk)
		}
		zw.Write([]byte(`</loc></url><url><loc>/after</loc></url></urlset>`))
		zw.Close()

		// The decoder held the token whole: the sitemap ends at it (no
		// byte of it is read past maxSitemapToken), the location before
		// it kept. Told by what is returned, not by the process's
		// allocation count, which other goroutines may move.
		pages, _, err := parseSitemap(z.Bytes(), 1000)
		if len(pages) != 1 || pages[0] != "/first" || !errors.Is(err, errSitemapToken) {
			t.Errorf("%s: a %d KB sitemap holding one 49 MiB token: %q, %v; want [/first] and the token bound", open, z.Len()>>10, pages, err)
		}
	}
}
