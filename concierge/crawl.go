package concierge

import (
	"context"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/temoto/robotstxt"
	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/markdown"
)

// Fetch gets one path of the site (with its query, if any) as a visitor
// would: the caller runs the request through the site's own handler
// chain. It returns the final status, header and body; it should read at
// most IndexOptions.MaxPageBytes of the body (more is ignored). It is
// called from several goroutines at once, and should give up when ctx
// ends (Close cancels a build in progress).
type Fetch func(ctx context.Context, path string) (status int, header http.Header, body []byte, err error)

// kinds of queued documents.
const (
	kindPage    = iota // an HTML page (a text document only if it is a start page)
	kindStart          // a start page: HTML, a sitemap, or a text document
	kindSitemap        // a sitemap or sitemap index
	kindContent        // the manifest's content document
)

type queued struct {
	path  string
	kind  int
	depth int
}

// maxLinkDepth bounds how far links are followed from the start pages and
// the sitemap's pages.
const maxLinkDepth = 6

// maxSitemaps bounds the sitemap documents read (index nesting included).
const maxSitemaps = 50

// crawler reads the site once. It is used by one build at a time.
type crawler struct {
	fetch   Fetch
	opts    *IndexOptions
	hosts   map[string]bool
	logger  *zap.Logger
	visited map[string]bool
	queue   []queued
	// nav holds the links found on the start pages (the site's
	// navigation), read before the queue: a large sitemap must not spend
	// the page budget before the pages the site itself puts in front.
	nav     []queued
	pages   []*page
	text    int
	fetches int
	// maxFetches bounds the fetches of one crawl; a page link queued
	// beyond the fetches left could never be read, so none is.
	maxFetches int
	maps       int // sitemaps queued from sitemap indexes and robots.txt
	// robots is the site's robots.txt group for RobotsAgent (its own
	// group, else *); nil when the site has none or IgnoreRobots is set.
	robots *robotstxt.Group
	// What the build left out, for its log line: paths robots.txt
	// disallows, sitemap entries naming another host (read as this site's
	// paths), and links not queued because the fetch budget was spent.
	disallowed, otherHost, unqueued int
	// bound names the limit a build stopped at ("" when it read all).
	bound string
}

// RobotsAgent is the user-agent token the concierge obeys robots.txt as:
// a site's "User-agent: caddy-ahp-concierge" group, else its "*" group.
// The fetches' User-Agent header begins with it.
const RobotsAgent = "caddy-ahp-concierge"

// readRobots reads the site's /robots.txt once a build. Only a 2xx answer
// has rules: a site without one (404), or whose robots.txt fails (5xx),
// is read whole, as the operator configured the concierge over their own
// site (a search crawler would wait out a 5xx; a build cannot).
func (c *crawler) readRobots(ctx context.Context) {
	fctx, cancel := context.WithTimeout(ctx, c.opts.FetchTimeout)
	defer cancel()
	status, header, body, err := c.fetch(fctx, "/robots.txt")
	if err != nil || status < 200 || status >= 300 {
		return
	}
	if len(body) > c.opts.MaxPageBytes {
		body = body[:c.opts.MaxPageBytes]
	}
	if body, err = markdown.Decode(header, body, c.opts.MaxPageBytes); err != nil {
		return
	}
	data, err := robotstxt.FromBytes(body)
	if err != nil {
		c.logger.Debug("concierge: robots.txt unreadable; not obeyed", zap.Error(err))
		return
	}
	c.robots = data.FindGroup(RobotsAgent)
}

// crawl fetches the start pages, the sitemap's pages and the links it
// finds, breadth first, and returns the pages to index, in the order
// found. It stops at MaxPages pages, at MaxTotalText bytes of text, after
// 2×MaxPages+maxSitemaps fetches, or when ctx ends.
func (c *crawler) crawl(ctx context.Context) []*page {
	c.visited = make(map[string]bool)
	c.maxFetches = 2*c.opts.MaxPages + maxSitemaps
	if !c.opts.IgnoreRobots {
		c.readRobots(ctx)
	}
	for _, p := range c.opts.StartPages {
		c.enqueue(p, kindStart, 0)
	}
	if c.opts.ContentPath != "" {
		c.enqueue(c.opts.ContentPath, kindContent, 0)
	}
	maxFetches := c.maxFetches
	type result struct {
		status int
		header http.Header
		body   []byte
		err    error
	}
	for c.pending() > 0 && ctx.Err() == nil {
		if c.bound = c.stopped(); c.bound != "" {
			break
		}
		n := min(c.pending(), c.opts.Concurrency, maxFetches-c.fetches, c.opts.MaxPages-len(c.pages)+1)
		batch := make([]queued, 0, n)
		k := min(n, len(c.nav))
		batch = append(batch, c.nav[:k]...)
		c.nav = c.nav[k:]
		batch = append(batch, c.queue[:n-k]...)
		c.queue = c.queue[n-k:]
		c.fetches += n
		results := make([]result, n)
		var wg sync.WaitGroup
		for i := range batch {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				fctx, cancel := context.WithTimeout(ctx, c.opts.FetchTimeout)
				defer cancel()
				r := &results[i]
				r.status, r.header, r.body, r.err = c.fetch(fctx, batch[i].path)
				if len(r.body) > c.opts.MaxPageBytes {
					r.body = r.body[:c.opts.MaxPageBytes]
				}
			}(i)
		}
		wg.Wait()
		// Results are handled in queue order, so the index does not depend
		// on which fetch finished first.
		for i, q := range batch {
			r := results[i]
			if r.err != nil {
				c.logger.Debug("concierge: fetch failed", zap.String("path", q.path), zap.Error(r.err))
				continue
			}
			c.handle(q, r.status, r.header, r.body)
			if len(c.pages) >= c.opts.MaxPages {
				break
			}
		}
	}
	if c.bound == "" && c.pending() > 0 {
		c.bound = c.stopped() // the last batch reached it
	}
	if c.bound == "" && c.unqueued > 0 {
		c.bound = "fetches" // links found past the budget were not queued
	}
	if c.bound != "" && c.pending() == 0 && c.unqueued == 0 {
		c.bound = "" // reached exactly as the site ran out
	}
	return c.pages
}

// pending counts the paths queued and not yet fetched.
func (c *crawler) pending() int { return len(c.nav) + len(c.queue) }

// stopped names the bound the crawl has reached, or "".
func (c *crawler) stopped() string {
	switch {
	case len(c.pages) >= c.opts.MaxPages:
		return "max_pages"
	case c.text >= c.opts.MaxTotalText:
		return "max_text"
	case c.fetches >= c.maxFetches:
		return "fetches"
	}
	return ""
}

func (c *crawler) enqueue(p string, kind, depth int) {
	c.enqueueOn(&c.queue, p, kind, depth)
}

// enqueueOn queues p on q (c.queue, or c.nav for the start pages' links).
func (c *crawler) enqueueOn(q *[]queued, p string, kind, depth int) {
	if c.visited[p] || len(p) > maxURLBytes {
		return
	}
	if kind == kindPage && skippedExtension(p) {
		return
	}
	if kind == kindPage && q == &c.nav && len(c.nav) < c.maxFetches-c.fetches && c.pending() >= c.maxFetches-c.fetches && len(c.queue) > 0 {
		// Navigation displaces the last queued path, which could no
		// longer be fetched anyway.
		last := c.queue[len(c.queue)-1]
		c.queue = c.queue[:len(c.queue)-1]
		delete(c.visited, last.path)
		c.unqueued++
	}
	if kind == kindPage && c.pending() >= c.maxFetches-c.fetches {
		// The queue already holds more than can be fetched: a page dense
		// with links (or many of them) must not grow it, nor the visited
		// set, with paths never read. Start pages, sitemaps (maxSitemaps)
		// and the content document are few and still queued.
		c.unqueued++
		return
	}
	if kind == kindPage && c.robots != nil && !c.robots.Test(p) {
		// The site asks crawlers to stay out; the operator's own start
		// pages and content document are read as configured.
		c.visited[p] = true
		c.disallowed++
		return
	}
	c.visited[p] = true
	*q = append(*q, queued{path: p, kind: kind, depth: depth})
}

func (c *crawler) handle(q queued, status int, header http.Header, body []byte) {
	switch {
	case status >= 300 && status < 400:
		if loc := header.Get("Location"); loc != "" {
			if p, ok := c.resolver(q.path, false)(loc); ok {
				c.enqueue(p, q.kind, q.depth)
			}
		}
		return
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		// Behind auth: visitors without credentials do not see it either.
		c.logger.Debug("concierge: page needs credentials; not indexed", zap.String("path", q.path))
		return
	case status < 200 || status >= 300:
		return
	}
	// Fetches should ask for identity; a body compressed anyway is
	// decoded here rather than indexed as noise.
	body, err := markdown.Decode(header, body, c.opts.MaxPageBytes)
	if err != nil {
		c.logger.Debug("concierge: undecodable body; not indexed", zap.String("path", q.path), zap.Error(err))
		return
	}
	ct := header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	noindex, nofollow := robotsHeader(header)
	switch {
	case q.kind == kindSitemap || ((q.kind == kindStart) && looksLikeSitemap(q.path, mt)):
		c.sitemap(q, body)
	case mt == "text/html" || mt == "application/xhtml+xml":
		ex := extractHTML(body, ct, q.path, q.path == "/", c.opts.MaxPageText, func(base string) resolver { return c.resolver(base, false) })
		if !nofollow && !ex.nofollow && q.depth < maxLinkDepth {
			links := &c.queue
			if q.kind == kindStart {
				links = &c.nav // navigation: read before sitemap-only pages
			}
			for _, l := range ex.links {
				c.enqueueOn(links, l, kindPage, q.depth+1)
			}
		}
		if noindex || ex.noindex || ex.page == nil {
			return
		}
		if ex.canonical != "" {
			// The site says this page lives elsewhere (?utm=... variants,
			// print views): index that one, once.
			c.enqueue(ex.canonical, kindPage, q.depth)
			return
		}
		c.add(ex.page)
	case (q.kind == kindStart || q.kind == kindContent) && (mt == "text/markdown" || mt == "text/plain" || mt == "text/x-markdown"):
		ex := extractText(body, q.path, c.opts.MaxPageText, c.resolver(q.path, false))
		for _, l := range ex.links {
			c.enqueue(l, kindPage, q.depth+1)
		}
		if !noindex {
			c.add(ex.page)
		}
	}
}

func (c *crawler) add(p *page) {
	if p == nil || len(p.sections) == 0 {
		return
	}
	n := 0
	for _, s := range p.sections {
		n += len(s.heading)
		for _, para := range s.paras {
			n += len(para.text)
		}
	}
	if c.text+n > c.opts.MaxTotalText {
		c.text = c.opts.MaxTotalText // full: stop here
		return
	}
	c.text += n
	c.pages = append(c.pages, p)
}

func (c *crawler) sitemap(q queued, body []byte) {
	pages, maps, err := parseSitemap(body, 2*c.opts.MaxPages+maxSitemaps)
	if err != nil {
		c.logger.Debug("concierge: sitemap partly unreadable", zap.String("path", q.path), zap.Error(err))
	}
	// Entries of the site's own sitemap are its pages whatever host they
	// name: a sitemap written for www.example.com read at example.com,
	// or for production on a staging host, names the paths of this site.
	// Only paths are read, and only through this site.
	res := c.resolver(q.path, true)
	for _, m := range maps {
		if c.maps >= maxSitemaps {
			break
		}
		if p, ok := res(m); ok && !c.visited[p] {
			c.maps++
			c.countHost(m)
			c.enqueue(p, kindSitemap, q.depth)
		}
	}
	for _, pg := range pages {
		if p, ok := res(pg); ok {
			c.countHost(pg)
			c.enqueue(p, kindPage, 1)
		}
	}
}

// countHost counts a sitemap entry naming a host that is not one of the
// site's, for the build's log line.
func (c *crawler) countHost(entry string) {
	if len(c.hosts) == 0 || !isHTTPURL(entry) {
		return
	}
	if u, err := url.Parse(entry); err == nil && u.Host != "" && !c.hosts[hostOnly(u.Host)] {
		c.otherHost++
	}
}

func looksLikeSitemap(p, mt string) bool {
	lp := strings.ToLower(p)
	if i := strings.IndexByte(lp, '?'); i >= 0 {
		lp = lp[:i]
	}
	return strings.HasSuffix(lp, ".xml") || strings.HasSuffix(lp, ".xml.gz") || strings.HasSuffix(lp, "/robots.txt") ||
		mt == "application/xml" || mt == "text/xml" || mt == "application/gzip" || mt == "application/x-gzip"
}

// robotsHeader reads X-Robots-Tag (without a user agent prefix, or for
// all).
func robotsHeader(h http.Header) (noindex, nofollow bool) {
	for _, v := range h.Values("X-Robots-Tag") {
		v = strings.ToLower(v)
		if i := strings.IndexByte(v, ':'); i >= 0 && !strings.Contains(v[:i], ",") && !strings.Contains(v[:i], "noindex") {
			continue // "otherbot: noindex" is for another crawler
		}
		noindex = noindex || strings.Contains(v, "noindex") || strings.Contains(v, "none")
		nofollow = nofollow || strings.Contains(v, "nofollow") || strings.Contains(v, "none")
	}
	return noindex, nofollow
}

// resolver resolves hrefs found in the document at base into same-site
// paths: the path (cleaned of dot segments, trailing slash kept) and
// query; fragments dropped. Absolute URLs count as same-site when their
// host is one of IndexOptions.Hosts, or any host when anyHost is set.
func (c *crawler) resolver(base string, anyHost bool) resolver {
	baseURL, err := url.Parse(base)
	if err != nil {
		baseURL = &url.URL{Path: "/"}
	}
	return func(href string) (string, bool) {
		href = strings.TrimSpace(href)
		if href == "" || href[0] == '#' || len(href) > maxURLBytes {
			return "", false
		}
		u, err := baseURL.Parse(href)
		if err != nil {
			return "", false
		}
		if u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https" {
			return "", false
		}
		if u.Host != "" && !anyHost && !c.hosts[hostOnly(u.Host)] {
			return "", false
		}
		p := u.EscapedPath()
		if p == "" {
			p = "/"
		}
		if p[0] != '/' {
			return "", false
		}
		clean := path.Clean(p)
		if strings.HasSuffix(p, "/") && clean != "/" {
			clean += "/"
		}
		if u.RawQuery != "" {
			clean += "?" + u.RawQuery
		}
		return clean, true
	}
}

func hostOnly(h string) string {
	h = strings.ToLower(h)
	if host, _, ok := strings.Cut(h, ":"); ok && !strings.Contains(h, "]") {
		return host
	}
	if i := strings.LastIndex(h, "]:"); i >= 0 {
		return h[:i+1]
	}
	return h
}

// skippedExtension reports paths that name files no agent question is
// answered from (images, media, archives, code): fetching them would
// only spend the page budget.
func skippedExtension(p string) bool {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	dot := strings.LastIndexByte(p, '.')
	if dot < 0 || dot < strings.LastIndexByte(p, '/') {
		return false
	}
	switch strings.ToLower(p[dot+1:]) {
	case "jpg", "jpeg", "png", "gif", "webp", "avif", "svg", "ico", "bmp", "tif", "tiff",
		"css", "js", "mjs", "map", "json", "woff", "woff2", "ttf", "otf", "eot",
		"mp3", "mp4", "m4a", "m4v", "mov", "avi", "webm", "ogg", "wav", "flac",
		"zip", "gz", "tgz", "bz2", "xz", "7z", "rar", "tar", "dmg", "exe", "msi", "deb", "rpm", "iso",
		"pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "csv", "rss", "atom":
		return true
	}
	return false
}

// fetchTimeoutDefault bounds one fetch through the site.
const fetchTimeoutDefault = 15 * time.Second
