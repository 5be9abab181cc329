package concierge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/contact"
)

// IndexOptions configure an Index. Zero values take the defaults.
type IndexOptions struct {
	// StartPages are where the crawl starts: sitemaps (sitemap.xml,
	// robots.txt's Sitemap lines), text documents (llms.txt) and HTML
	// pages. Default: /sitemap.xml, /llms.txt, /.
	StartPages []string
	// ContentPath is the manifest's content document (endpoints.content),
	// indexed and used for site_info.
	ContentPath string
	// Hosts are the site's host names: absolute links to them are
	// same-site. Relative links always are, and so are the site's own
	// sitemap entries, whatever host they name (their paths are read).
	Hosts []string
	// IgnoreRobots reads pages the site's robots.txt disallows for
	// RobotsAgent. By default they are skipped (start pages and the
	// content document are read as configured).
	IgnoreRobots bool
	// MaxPages bounds the pages indexed. Default 500.
	MaxPages int
	// MaxPageBytes bounds the body read of one fetched document. Default
	// 1 MiB.
	MaxPageBytes int
	// MaxPageText bounds the text kept of one page. Default 64 KiB.
	MaxPageText int
	// MaxTotalText bounds the text kept of the whole site. Default 16 MiB.
	// The index's memory is about 2.5 times its text (see the package doc).
	MaxTotalText int
	// Concurrency is how many fetches run at once. Default 4.
	Concurrency int
	// FetchTimeout bounds one fetch. Default 15s.
	FetchTimeout time.Duration
	// Refresh is how often Start rebuilds the index; 0 means 1 hour, a
	// negative value never.
	Refresh time.Duration
	// Logger receives build results and failures; nil means none.
	Logger *zap.Logger
}

func (o *IndexOptions) defaults() {
	if len(o.StartPages) == 0 {
		o.StartPages = []string{"/sitemap.xml", "/llms.txt", "/"}
	}
	if o.MaxPages <= 0 {
		o.MaxPages = 500
	}
	if o.MaxPageBytes <= 0 {
		o.MaxPageBytes = 1 << 20
	}
	if o.MaxPageText <= 0 {
		o.MaxPageText = 64 << 10
	}
	if o.MaxTotalText <= 0 {
		o.MaxTotalText = 16 << 20
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = fetchTimeoutDefault
	}
	if o.Refresh == 0 {
		o.Refresh = time.Hour
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// Index is the site's search index, built from the site's own pages
// through a Fetch. Answers read the current snapshot without locks; a
// build makes a new snapshot and swaps it in whole, so a query never sees
// half an index, and a failed build keeps the previous one.
//
// An Index outlives config reloads (caddymodule keeps it in a UsagePool
// keyed by site): SetFetch gives it the new config's handler chain.
type Index struct {
	opts  IndexOptions
	fetch atomic.Pointer[Fetch]
	snap  atomic.Pointer[snapshot]

	buildMu sync.Mutex // one build at a time

	startOnce sync.Once
	stop      context.CancelFunc
	done      chan struct{}
	// wait returns a channel that fires after d; tests replace it.
	wait func(d time.Duration) <-chan time.Time

	lastErr atomic.Pointer[string]
}

// NewIndex returns an empty index that reads the site through fetch.
// Nothing is fetched until Build or Start.
func NewIndex(fetch Fetch, opts IndexOptions) *Index {
	opts.defaults()
	opts.StartPages = append([]string(nil), opts.StartPages...)
	ix := &Index{opts: opts, wait: time.After}
	ix.fetch.Store(&fetch)
	return ix
}

// SetFetch replaces the fetch function (after a config reload, the site's
// handler chain is a new one).
func (ix *Index) SetFetch(fetch Fetch) { ix.fetch.Store(&fetch) }

// ErrNoPages is returned by Build when the site yielded nothing to index.
var ErrNoPages = errors.New("concierge: no page of the site could be indexed")

// Build crawls the site once and swaps in the new index. On failure the
// previous index stays.
func (ix *Index) Build(ctx context.Context) error {
	ix.buildMu.Lock()
	defer ix.buildMu.Unlock()
	start := time.Now()
	hosts := make(map[string]bool, len(ix.opts.Hosts))
	for _, h := range ix.opts.Hosts {
		hosts[hostOnly(h)] = true
	}
	c := crawler{fetch: *ix.fetch.Load(), opts: &ix.opts, hosts: hosts, logger: ix.opts.Logger}
	pages := c.crawl(ctx)
	if err := ctx.Err(); err != nil {
		ix.setErr(err)
		return err
	}
	if len(pages) == 0 {
		err := ErrNoPages
		if c.disallowed > 0 {
			err = fmt.Errorf("%w: robots.txt disallows %d of its pages for %s (give the concierge a group of its own, `User-agent: %s` with `Allow: /`, or set `robots ignore` in the concierge block)",
				ErrNoPages, c.disallowed, RobotsAgent, RobotsAgent)
		}
		ix.setErr(err)
		return err
	}
	s := buildSnapshot(pages, ix.opts.ContentPath)
	s.built = time.Now()
	ix.snap.Store(s)
	ix.lastErr.Store(nil)
	ix.opts.Logger.Info("concierge index built",
		zap.Int("pages", len(s.pages)), zap.Int("passages", len(s.passages)),
		zap.Int("terms", len(s.terms)), zap.Int("text_bytes", s.textBytes),
		zap.Int("index_bytes", s.sizeBytes()), zap.Int("fetches", c.fetches),
		zap.Int("robots_disallowed", c.disallowed), zap.Int("sitemap_other_host", c.otherHost),
		zap.Duration("took", time.Since(start)))
	if c.bound != "" {
		// Pages the operator may expect were never read: say which bound.
		ix.opts.Logger.Warn("concierge index stopped at a bound; some of the site was not read (raise the bound, or list the pages that matter first in `pages`)",
			zap.String("bound", c.bound), zap.Int("max_pages", ix.opts.MaxPages), zap.Int("max_text", ix.opts.MaxTotalText),
			zap.Int("pages", len(s.pages)), zap.Int("known_paths_unread", c.pending()+c.unqueued))
	}
	return nil
}

func (ix *Index) setErr(err error) {
	msg := err.Error()
	ix.lastErr.Store(&msg)
}

// Start builds the index in the background now and then every
// IndexOptions.Refresh, until Close. A failed build is retried sooner
// (after 5s, doubling up to the refresh interval): the site's upstream may
// not be up yet when Caddy starts. Start is idempotent.
func (ix *Index) Start() {
	ix.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		ix.stop = cancel
		ix.done = make(chan struct{})
		go ix.loop(ctx)
	})
}

func (ix *Index) loop(ctx context.Context) {
	defer close(ix.done)
	retry := 5 * time.Second
	for {
		next := ix.opts.Refresh
		if err := ix.Build(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			ix.opts.Logger.Warn("concierge index build failed; keeping the previous index", zap.Error(err))
			if next < 0 || retry < next {
				next = retry
			}
			retry = min(2*retry, max(ix.opts.Refresh, 5*time.Second))
		} else {
			retry = 5 * time.Second
		}
		if next < 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ix.wait(next):
		}
	}
}

// Close stops the background builds and waits for a build in progress to
// end. The index keeps answering from its last snapshot.
func (ix *Index) Close() error {
	ix.startOnce.Do(func() {}) // a Start after Close does nothing
	if ix.stop != nil {
		ix.stop()
		<-ix.done
	}
	return nil
}

// Destruct is Close, so an Index can live in a caddy.UsagePool as it is.
func (ix *Index) Destruct() error { return ix.Close() }

// Ready reports whether an index has been built.
func (ix *Index) Ready() bool { return ix.snap.Load() != nil }

// Stats describe the current index.
type Stats struct {
	Pages, Passages, Terms int
	// TextBytes is the text kept; IndexBytes estimates the whole index's
	// memory (text, postings, terms, passage records).
	TextBytes, IndexBytes int
	Built                 time.Time
	// LastError is the last build's error, "" after a good build.
	LastError string
}

// Stats returns the current index's figures.
func (ix *Index) Stats() Stats {
	var st Stats
	if e := ix.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	s := ix.snap.Load()
	if s == nil {
		return st
	}
	st.Pages, st.Passages, st.Terms = len(s.pages), len(s.passages), len(s.terms)
	st.TextBytes, st.IndexBytes, st.Built = s.textBytes, s.sizeBytes(), s.built
	return st
}

// snapshot is one immutable index.
//
// Its layout is chosen for memory: the terms are one sorted slice (binary
// search on lookup, 16 bytes a term plus the bytes of one shared string)
// rather than a map (about 50 bytes a term), and the postings one flat
// array cut by offsets rather than a slice per term (no 24-byte headers,
// no append slack).
type snapshot struct {
	pages     []pageInfo
	passages  []passage
	terms     []string  // sorted; a term's id is its index
	offsets   []int32   // term i's postings are postings[offsets[i]:offsets[i+1]]
	postings  []posting // by term, then by passage
	avgLen    float32
	home      int32 // page index of "/", or -1
	content   int32 // page index of the content document, or -1
	byPath    map[string]int32
	textBytes int
	built     time.Time
	// pool of scoring scratch space sized for this snapshot.
	scratch sync.Pool
}

type pageInfo struct {
	path  string
	title string
	// first and end delimit the page's passages.
	first, end int32
}

// passage is a piece of one section: the unit of retrieval and of
// answers.
type passage struct {
	page    int32
	section int32 // section number within the page
	heading string
	text    string
	length  float32 // weighted term count, for BM25's length normalisation
	boost   float32
	// teaser is the index of the page this passage previews (a listing's
	// entry, a content document's link), notTeaser when it previews
	// nothing, unindexedPage when the page it previews is not indexed.
	teaser int32
	footer bool
	// price marks a passage that states an amount of money ("£12",
	// "$1,200", "30 EUR"): what a question asking a price wants.
	price bool
	// row marks a data table's row: a fact of its own, not one more
	// passage of its section (see chunk).
	row bool
}

const (
	notTeaser     = -1
	unindexedPage = -2
)

func (p *passage) isTeaser() bool { return p.teaser != notTeaser }

type posting struct {
	passage int32
	tf      float32
}

// Term weights: a word in the section's heading counts three times, one
// in the page title twice (pages are usually asked about by their
// subject), text once.
const (
	headingWeight = 3
	titleWeight   = 2
	// teaserBoost lowers a section that only previews another page, so
	// the page itself is cited.
	teaserBoost = 0.5
	// passageBytes is the target size of a passage: a few sentences, what
	// an extractive answer quotes.
	passageBytes = 600
)

// addressTerm is the term a passage holding an address (see chunk) is
// also found by.
const addressTerm = "address"

// builder accumulates postings per term while passages are added.
type builder struct {
	ids      map[string]int32
	lists    [][]posting
	termText []string
}

func (b *builder) termID(t string) int32 {
	if id, ok := b.ids[t]; ok {
		return id
	}
	id := int32(len(b.lists))
	b.ids[t] = id
	b.termText = append(b.termText, t)
	b.lists = append(b.lists, nil)
	return id
}

func buildSnapshot(pages []*page, contentPath string) *snapshot {
	s := &snapshot{
		byPath:  make(map[string]int32, len(pages)),
		home:    -1,
		content: -1,
	}
	for pi, p := range pages {
		s.byPath[p.path] = int32(pi)
	}
	b := &builder{ids: make(map[string]int32)}
	titles := cleanTitles(pages)
	anchors := anchorTerms(pages)
	tf := make(map[int32]float32)
	var totalLen float64
	var termBuf []string
	for pi, p := range pages {
		info := pageInfo{path: p.path, title: titles[pi], first: int32(len(s.passages))}
		if info.title == "" {
			info.title = p.path
		}
		if p.path == "/" {
			s.home = int32(pi)
		}
		if contentPath != "" && p.path == contentPath {
			s.content = int32(pi)
		}
		titleTerms := appendTerms(nil, info.title)
		for si, sec := range p.sections {
			headTerms := appendTerms(nil, sec.heading)
			for _, pc := range chunk(sec.paras, passageBytes) {
				clear(tf)
				termBuf = appendTerms(termBuf[:0], pc.text)
				length := float32(len(termBuf))
				for _, t := range termBuf {
					tf[b.termID(t)]++
				}
				for _, t := range headTerms {
					tf[b.termID(t)] += headingWeight
				}
				for _, t := range titleTerms {
					tf[b.termID(t)] += titleWeight
				}
				length += headingWeight*float32(len(headTerms)) + titleWeight*float32(len(titleTerms))
				if pc.address {
					// An address is one whether or not it says so.
					tf[b.termID(addressTerm)]++
					length++
				}
				if len(s.passages) == int(info.first) {
					// What other pages say of this one counts for its
					// first passage (anchor text).
					for _, t := range anchors[p.path] {
						tf[b.termID(t)]++
					}
					length += float32(len(anchors[p.path]))
				}
				id := int32(len(s.passages))
				for t, f := range tf {
					b.lists[t] = append(b.lists[t], posting{passage: id, tf: f})
				}
				teaser := int32(notTeaser)
				if target := cmp.Or(sec.teaser, pc.teaser); target != "" {
					teaser = unindexedPage
					if ti, ok := s.byPath[target]; ok {
						teaser = ti
					}
				}
				boost := float32(1)
				if teaser != notTeaser {
					boost = teaserBoost
				}
				s.passages = append(s.passages, passage{
					page: int32(pi), section: int32(si), heading: sec.heading, text: pc.text,
					length: length, boost: boost, teaser: teaser, footer: sec.footer, price: statesPrice(pc.text), row: pc.row,
				})
				s.textBytes += len(pc.text)
				totalLen += float64(length)
			}
		}
		info.end = int32(len(s.passages))
		s.pages = append(s.pages, info)
	}
	s.passages = slices.Clip(s.passages)
	if len(s.passages) > 0 {
		s.avgLen = float32(totalLen / float64(len(s.passages)))
	}
	s.finish(b)
	n := len(s.passages)
	s.scratch.New = func() any { return &scratch{scores: make([]float32, n), matched: make([]uint32, n)} }
	return s
}

// finish lays the builder's terms and postings out compactly: the terms
// sorted, their bytes in one string, the postings in one array.
func (s *snapshot) finish(b *builder) {
	order := make([]int32, len(b.termText))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(x, y int32) int { return strings.Compare(b.termText[x], b.termText[y]) })
	var all strings.Builder
	total, count := 0, 0
	for _, id := range order {
		total += len(b.termText[id])
		count += len(b.lists[id])
	}
	all.Grow(total)
	for _, id := range order {
		all.WriteString(b.termText[id])
	}
	packed := all.String()
	s.terms = make([]string, len(order))
	s.offsets = make([]int32, len(order)+1)
	s.postings = make([]posting, 0, count)
	at := 0
	for i, id := range order {
		n := len(b.termText[id])
		s.terms[i] = packed[at : at+n]
		at += n
		s.offsets[i] = int32(len(s.postings))
		s.postings = append(s.postings, b.lists[id]...)
	}
	s.offsets[len(order)] = int32(len(s.postings))
}

// lookup returns a term's id.
func (s *snapshot) lookup(t string) (int32, bool) {
	i, ok := slices.BinarySearch(s.terms, t)
	return int32(i), ok
}

// df is the number of passages holding term id.
func (s *snapshot) df(id int32) int32 { return s.offsets[id+1] - s.offsets[id] }

// sizeBytes estimates the snapshot's memory: text, terms (string header
// and bytes, offset), postings (8 bytes each), passage and page records.
func (s *snapshot) sizeBytes() int {
	n := s.textBytes + 8*len(s.postings)
	for _, t := range s.terms {
		n += 16 + 4 + len(t)
	}
	n += len(s.passages) * int(unsafe.Sizeof(passage{}))
	for _, p := range s.pages {
		n += len(p.path) + len(p.title) + int(unsafe.Sizeof(pageInfo{})) + 48 // + byPath entry
	}
	return n
}

// maxAnchorTerms bounds the anchor terms a page collects from others.
const maxAnchorTerms = 64

// anchorTerms collects, per page path, the terms of the teasers that
// describe it on other pages (listing headings, content document entries).
func anchorTerms(pages []*page) map[string][]string {
	out := make(map[string][]string)
	add := func(path, text string) {
		if len(out[path]) < maxAnchorTerms {
			terms := appendTerms(out[path], text)
			out[path] = terms[:min(len(terms), maxAnchorTerms)]
		}
	}
	for _, p := range pages {
		for _, sec := range p.sections {
			if sec.teaser != "" {
				add(sec.teaser, sec.heading)
				continue
			}
			for _, pa := range sec.paras {
				if pa.teaser != "" {
					add(pa.teaser, pa.text)
				}
			}
		}
	}
	return out
}

// piece is one passage's text; teaser is set when it is a paragraph
// describing another page.
type piece struct {
	text, teaser string
	row          bool
	// address: the passage holds an address: a paragraph of an
	// <address>, or a line reading as one (package contact: "14 Quay
	// Street, Harbourton", "Bristol BS1 4AA"), so "Where are you?" finds
	// it (decision 33). Judged per passage, not per section: a long page
	// with its address at the end is not an answer in every part.
	address bool
}

// chunk groups paragraphs into passages of about target bytes; a longer
// paragraph is cut at sentence ends. A paragraph describing another page
// (a teaser) is a passage of its own.
func chunk(paras []para, target int) []piece {
	var out []piece
	var group []string // the pieces of the passage being filled
	size, address := 0, false
	// lines: the passage as a visitor reads it, for contact.PostalAddress:
	// its paragraphs on lines of their own, a paragraph's sentences on
	// one (a cut in a run-on paragraph is no line's end).
	var lines strings.Builder
	emit := func() {
		if len(group) > 0 {
			// Join allocates exactly (a Builder would keep up to twice the
			// bytes), and a lone paragraph is kept as it is.
			text := strings.Join(group, "\n")
			out = append(out, piece{text: text, address: address || contact.PostalAddress(lines.String())})
			group, size, address = group[:0], 0, false
			lines.Reset()
		}
	}
	for _, p := range paras {
		if p.teaser != "" {
			emit()
			text := truncateUTF8(p.text, target)
			out = append(out, piece{text: text, teaser: p.teaser, address: p.address || contact.PostalAddress(text)})
			continue
		}
		if p.head != "" && len(p.head)+1+len(p.text) <= target {
			// A data table's row is one fact (a price, a date): a passage
			// of its own under the header that names its columns, so the
			// row that answers is quoted rather than the whole table.
			emit()
			out = append(out, piece{text: p.head + "\n" + p.text, row: true, address: p.address || contact.PostalAddress(p.text)})
			continue
		}
		prev := ""
		for i, s := range sentences(p.text, target) {
			if size > 0 && size+1+len(s) > target {
				if i > 0 {
					// Cut inside the paragraph: its next word follows, so the
					// cut reads as no line's end.
					lines.WriteByte(' ')
					lines.WriteString(firstWord(s))
				}
				emit()
			}
			if size > 0 {
				size++
			}
			switch {
			case lines.Len() == 0 && i > 0:
				// Begun inside the paragraph: its words before (a town's
				// pattern reaches back three), so the passage's start
				// reads as no line's start.
				lines.WriteString(lastWords(prev, 4))
				lines.WriteByte(' ')
			case lines.Len() == 0:
			case i == 0: // a new paragraph
				lines.WriteByte('\n')
			default:
				lines.WriteByte(' ')
			}
			lines.WriteString(s)
			prev = s
			group = append(group, s)
			size += len(s)
			address = address || p.address
		}
	}
	emit()
	return out
}

// sentences cuts p into pieces of at most about target bytes at ". ",
// "! ", "? " (or at a space, for a run-on sentence).
func sentences(p string, target int) []string {
	if len(p) <= target {
		return []string{p}
	}
	var out []string
	for len(p) > target {
		cut := -1
		for i := target; i > target/3; i-- {
			if p[i] == ' ' && (p[i-1] == '.' || p[i-1] == '!' || p[i-1] == '?') {
				cut = i
				break
			}
		}
		if cut < 0 {
			cut = strings.LastIndexByte(p[:target], ' ')
		}
		if cut <= 0 {
			cut = len(truncateUTF8(p, target))
			if cut == 0 {
				cut = target
			}
		}
		out = append(out, strings.TrimSpace(p[:cut]))
		p = strings.TrimSpace(p[cut:])
	}
	if p != "" {
		out = append(out, p)
	}
	return out
}

// firstWord is s's first word; lastWords its last n.
func firstWord(s string) string {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i]
	}
	return s
}

func lastWords(s string, n int) string {
	if n <= 0 || s == "" {
		return ""
	}
	i := len(s)
	for ; n > 0 && i > 0; n-- {
		i = strings.LastIndexByte(s[:i], ' ')
		if i < 0 {
			return s
		}
	}
	return s[i+1:]
}

// titleSeparators split "Page | Site" titles.
var titleSeparators = []string{" | ", " – ", " — ", " - ", " · ", " :: ", " » "}

// cleanTitles drops the site name that pages repeat in their titles
// ("Caring for oak | Harbor & Pine" → "Caring for oak"): each first or
// last title segment shared by at least 3 pages, or by all of 2. Each,
// not only the commonest: a site's blog often has a template of its own
// ("… - Harbor & Pine Journal").
func cleanTitles(pages []*page) []string {
	titles := make([]string, len(pages))
	counts := make(map[string]int)
	for i, p := range pages {
		titles[i] = p.title
		if titles[i] == "" {
			for _, s := range p.sections {
				if s.heading != "" {
					titles[i] = s.heading
					break
				}
			}
		}
		first, last, ok := splitTitle(titles[i])
		if ok {
			counts["<"+first]++
			if last != first {
				counts[">"+last]++
			}
		}
	}
	shared := func(k string) bool {
		n := counts[k]
		return n >= 3 || n == 2 && len(pages) == 2
	}
	for i, t := range titles {
		first, last, ok := splitTitle(t)
		if !ok {
			continue
		}
		// One segment a title: the last when it is shared (the site
		// name is usually there), else a shared first ("Blog - …"),
		// and never the whole title.
		if shared(">" + last) {
			if rest := trimSeparator(strings.TrimSpace(t[:len(t)-len(last)]), false); rest != "" {
				t = rest
			}
		} else if shared("<"+first) && first != last {
			if rest := trimSeparator(strings.TrimSpace(t[len(first):]), true); rest != "" {
				t = rest
			}
		}
		titles[i] = t
	}
	return titles
}

func splitTitle(t string) (first, last string, ok bool) {
	for _, sep := range titleSeparators {
		if i := strings.Index(t, sep); i > 0 {
			j := strings.LastIndex(t, sep)
			return strings.TrimSpace(t[:i]), strings.TrimSpace(t[j+len(sep):]), true
		}
	}
	return "", "", false
}

func trimSeparator(t string, leading bool) string {
	for _, sep := range titleSeparators {
		s := strings.TrimSpace(sep)
		if leading {
			t = strings.TrimSpace(strings.TrimPrefix(t, s))
		} else {
			t = strings.TrimSpace(strings.TrimSuffix(t, s))
		}
	}
	return t
}

// --- retrieval ---

// BM25 parameters (the usual ones).
const (
	bm25K1 = 1.2
	bm25B  = 0.75
	// maxQueryTerms bounds the distinct terms a query is scored on (a
	// 4 KiB query could hold hundreds): the first ones, where questions
	// put their subject.
	maxQueryTerms = 32
)

// qterm is one distinct query term.
type qterm struct {
	text   string
	id     int32   // -1: not in the index
	weight float32 // in scores: 1, less for terms carried over from earlier turns
	own    bool    // a term of this turn's question
	// cov is the term's weight in coverage: 1, or weakWeight for a
	// common word the site never uses.
	cov float32
	idf float32
}

// weakWeight is what a common English word that the site never uses
// ("number" in "What is your phone number?") counts for in coverage: the
// question is still answered by a page with its other words. It is also
// the share of its score a passage keeps when it matches only such words
// of a question that has others.
const weakWeight = 0.25

type query struct {
	terms []qterm
	// total is the idf weight of this turn's terms, found or not: what a
	// passage matching them all would cover. Terms carried over from
	// earlier turns only help ranking.
	total float32
	// weak has bit i set when term i is one of this turn's weakWords;
	// strong is set when the turn has a term that is not.
	weak   uint32
	strong bool
}

// hit is one scored passage.
type hit struct {
	passage int32
	score   float32
	// matched has bit i set when query term i occurs in the passage.
	matched uint32
}

type scratch struct {
	scores  []float32
	matched []uint32
	touched []int32
}

// idf is BM25's inverse document frequency. A term found nowhere counts
// as found once: as rare as the rarest, and no more, so that one unknown
// word (a paraphrase: "dimensions" for "150 cm wide") does not outweigh
// the rest of a question that the site does answer.
func (s *snapshot) idf(df int32) float32 {
	df = max(df, 1)
	n := float64(len(s.passages))
	return float32(math.Log(1 + (n-float64(df)+0.5)/(float64(df)+0.5)))
}

// newQuery looks up the terms of text (weight 1) and of carried (earlier
// turns of the session, weight carryWeight).
func (s *snapshot) newQuery(text string, carried []string, carryWeight float32) query {
	var q query
	var buf [maxQueryTerms]qterm
	q.terms = buf[:0]
	add := func(t string, w float32) {
		id, ok := s.lookup(t)
		if !ok {
			id = -1
		}
		for i := range q.terms {
			if q.terms[i].text == t {
				return
			}
		}
		if len(q.terms) == maxQueryTerms {
			return
		}
		idf := s.idf(0)
		if id >= 0 {
			idf = s.idf(s.df(id))
		}
		qt := qterm{text: t, id: id, weight: w, own: w == 1, idf: idf}
		if qt.own {
			qt.cov = 1
			if _, weak := weakWords[t]; weak {
				if id < 0 {
					qt.cov = weakWeight
				}
				q.weak |= 1 << uint(len(q.terms))
			} else {
				q.strong = true
			}
			q.total += qt.cov * idf
		}
		q.terms = append(q.terms, qt)
	}
	var tb [16]string
	for _, t := range appendTerms(tb[:0], text) {
		add(t, 1)
	}
	for _, t := range carried {
		add(t, carryWeight)
	}
	return q
}

// search scores every passage containing a query term and returns the k
// best, best first.
func (s *snapshot) search(q query, k int, filter func(p *passage) bool) []hit {
	sc := s.scratch.Get().(*scratch)
	defer s.scratch.Put(sc)
	touched := sc.touched[:0]
	for qi, t := range q.terms {
		if t.id < 0 {
			continue
		}
		for _, p := range s.postings[s.offsets[t.id]:s.offsets[t.id+1]] {
			if sc.scores[p.passage] == 0 && sc.matched[p.passage] == 0 {
				touched = append(touched, p.passage)
			}
			pl := s.passages[p.passage].length
			norm := bm25K1 * (1 - bm25B + bm25B*pl/s.avgLen)
			sc.scores[p.passage] += t.weight * t.idf * p.tf * (bm25K1 + 1) / (p.tf + norm)
			sc.matched[p.passage] |= 1 << uint(qi)
		}
	}
	hits := make([]hit, 0, min(len(touched), 4*k))
	for _, id := range touched {
		h := hit{passage: id, score: sc.scores[id] * s.passages[id].boost, matched: sc.matched[id]}
		if q.strong && h.matched&^q.weak == 0 {
			// Only the question's common words ("old" in "How old is
			// the shop?", "cost"): an incidental match, which must not
			// outrank a passage on the question's subject.
			h.score *= weakWeight
		}
		sc.scores[id], sc.matched[id] = 0, 0
		if filter != nil && !filter(&s.passages[id]) {
			continue
		}
		hits = insertTop(hits, h, 4*k)
	}
	sc.touched = touched[:0]
	if len(hits) > k {
		hits = hits[:k]
	}
	return hits
}

// insertTop keeps hits sorted best first and at most n long. Ties go to
// the earlier passage, so results do not depend on map order.
func insertTop(hits []hit, h hit, n int) []hit {
	i := sort.Search(len(hits), func(i int) bool {
		return hits[i].score < h.score || (hits[i].score == h.score && hits[i].passage > h.passage)
	})
	if i >= n {
		return hits
	}
	if len(hits) < n {
		hits = append(hits, hit{})
	}
	copy(hits[i+1:], hits[i:])
	hits[i] = h
	return hits
}

// coverage is the share of this turn's idf weight that a passage with
// the matched terms covers: 1 when it has every term of the question.
func (q *query) coverage(matched uint32) float32 {
	if q.total == 0 {
		return 0
	}
	var c float32
	for i, t := range q.terms {
		if t.own && matched&(1<<uint(i)) != 0 {
			c += t.cov * t.idf
		}
	}
	return c / q.total
}

// without returns q without the given terms.
func (q query) without(terms []string) query {
	out := query{terms: make([]qterm, 0, len(q.terms))}
	for i, t := range q.terms {
		if slices.Contains(terms, t.text) {
			continue
		}
		if q.weak&(1<<uint(i)) != 0 {
			out.weak |= 1 << uint(len(out.terms))
		} else if t.own {
			out.strong = true
		}
		out.terms = append(out.terms, t)
		if t.own {
			out.total += t.cov * t.idf
		}
	}
	return out
}

// ownTerms counts this turn's terms.
func (q *query) ownTerms() int {
	n := 0
	for _, t := range q.terms {
		if t.own {
			n++
		}
	}
	return n
}
