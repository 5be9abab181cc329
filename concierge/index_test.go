package concierge

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// TestIndexMemoryBound: on a generated 10,000-page site, the index keeps
// at most MaxTotalText bytes of text, stops fetching once full, and its
// memory (measured on the heap after the build) stays under
// indexBytesPerText times the text bound, the figure the docs state.
func TestIndexMemoryBound(t *testing.T) {
	const textBound = 2 << 20
	g := newGenSite(10000, 600)
	var calls atomic.Int64
	fetch := func(ctx context.Context, path string) (int, http.Header, []byte, error) {
		calls.Add(1)
		return g.fetch(ctx, path)
	}
	before := heapInUse()
	ix := NewIndex(fetch, IndexOptions{StartPages: []string{"/sitemap.xml"}, MaxPages: 10000, MaxTotalText: textBound})
	if err := ix.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := heapInUse()
	st := ix.Stats()
	used := int(after - before)
	t.Logf("%d pages, %d passages, %d terms, text %d B, estimated %d B, measured %d B (%.2f× the text), %d fetches",
		st.Pages, st.Passages, st.Terms, st.TextBytes, st.IndexBytes, used, float64(used)/float64(st.TextBytes), calls.Load())
	if st.TextBytes > textBound {
		t.Errorf("text %d B over the bound %d B", st.TextBytes, textBound)
	}
	if st.Pages >= 10000 || calls.Load() > int64(st.Pages)+10 {
		t.Errorf("%d pages after %d fetches: the crawl should stop when the text bound is reached", st.Pages, calls.Load())
	}
	if limit := indexBytesPerText * textBound; used > limit {
		t.Errorf("index uses %d B, over the stated bound %d B", used, limit)
	}
	if st.IndexBytes > indexBytesPerText*textBound {
		t.Errorf("estimate %d B over the stated bound", st.IndexBytes)
	}
	runtime.KeepAlive(ix)
}

// indexBytesPerText is the stated ratio of the index's memory to the
// text it keeps (docs/concierge.md): postings, terms and passage records
// come to about as much again as the text.
const indexBytesPerText = 3

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestBuildSwapsAtomically: a failed rebuild keeps the index that was
// answering; a good one replaces it whole; SetFetch takes effect on the
// next build.
func TestBuildSwapsAtomically(t *testing.T) {
	site := &fakeSite{docs: map[string]doc{"/": page200(`<main><h1>One</h1><p>First version.</p></main>`)}}
	ix := NewIndex(site.fetch, IndexOptions{StartPages: []string{"/"}})
	if err := ix.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := ix.snap.Load()
	ix.SetFetch(func(ctx context.Context, path string) (int, http.Header, []byte, error) {
		return 0, nil, nil, errors.New("upstream down")
	})
	if err := ix.Build(context.Background()); err == nil {
		t.Fatal("a build that fetched nothing must fail")
	}
	if ix.snap.Load() != first || ix.Stats().LastError == "" {
		t.Fatal("a failed build must keep the previous index and report the error")
	}
	site.docs["/"] = page200(`<main><h1>Two</h1><p>Second version.</p></main>`)
	ix.SetFetch(site.fetch)
	if err := ix.Build(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := ix.snap.Load(); s == first || s.text("/") != "[Two] Second version.\n" || ix.Stats().LastError != "" {
		t.Errorf("rebuilt index: %q", s.text("/"))
	}
}

// TestStartRefreshesAndCloses drives the background loop with a clock
// the test controls: a build at Start, another when the refresh interval
// passes, a quicker retry after a failure, nothing after Close.
func TestStartRefreshesAndCloses(t *testing.T) {
	site := &fakeSite{docs: map[string]doc{"/": page200(`<main><p>Hello.</p></main>`)}}
	var builds atomic.Int64
	fail := atomic.Bool{}
	fetch := func(ctx context.Context, path string) (int, http.Header, []byte, error) {
		if path == "/" { // each build reads robots.txt, then the page
			builds.Add(1)
		}
		if fail.Load() {
			return 0, nil, nil, errors.New("down")
		}
		return site.fetch(ctx, path)
	}
	ix := NewIndex(fetch, IndexOptions{StartPages: []string{"/"}, Refresh: time.Hour})
	waits := make(chan time.Duration, 10)
	tick := make(chan time.Time)
	ix.wait = func(d time.Duration) <-chan time.Time { waits <- d; return tick }
	ix.Start()
	ix.Start() // idempotent
	if d := <-waits; d != time.Hour || !ix.Ready() || builds.Load() != 1 {
		t.Fatalf("after start: wait %v ready %v builds %d", d, ix.Ready(), builds.Load())
	}
	fail.Store(true)
	tick <- time.Time{}
	if d := <-waits; d != 5*time.Second {
		t.Fatalf("after a failed refresh the retry waits %v, want 5s", d)
	}
	if !ix.Ready() {
		t.Fatal("a failed refresh dropped the index")
	}
	tick <- time.Time{}
	if d := <-waits; d != 10*time.Second {
		t.Fatalf("second retry waits %v, want 10s", d)
	}
	fail.Store(false)
	tick <- time.Time{}
	if d := <-waits; d != time.Hour {
		t.Fatalf("after a good build the wait is %v, want the refresh interval", d)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	n := builds.Load()
	select {
	case tick <- time.Time{}:
		t.Fatal("the loop still runs after Close")
	case <-time.After(10 * time.Millisecond):
	}
	if builds.Load() != n {
		t.Fatal("built after Close")
	}
	ix.Start() // after Close: does nothing
	if builds.Load() != n {
		t.Fatal("Start after Close built")
	}
}

// TestAnswerDuringRebuild: answers read whichever snapshot is current
// while builds swap it (run with -race).
func TestAnswerDuringRebuild(t *testing.T) {
	c, ix := demoConcierge(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 5; i++ {
			if err := ix.Build(context.Background()); err != nil {
				t.Error(err)
			}
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		rep := c.Answer(context.Background(), Request{Capability: "content_search", Query: "How do I care for oak?"})
		if rep.Status != 200 {
			t.Fatalf("%d %s", rep.Status, rep.Body)
		}
	}
}

// TestCleanTitlesEveryTemplate: each shared site-name segment goes, not
// only the commonest (a blog's own template keeps its suffix otherwise);
// a title is never emptied, and a segment two of many pages share stays.
func TestCleanTitlesEveryTemplate(t *testing.T) {
	var pages []*page
	for _, title := range []string{
		"Pricing | Kettle & Spoke Cycles", "Repairs | Kettle & Spoke Cycles", "Rentals | Kettle & Spoke Cycles", "Contact | Kettle & Spoke Cycles",
		"Tubeless guide - Kettle & Spoke Journal", "Group rides - Kettle & Spoke Journal", "Winter tyres - Kettle & Spoke Journal",
		"Kettle & Spoke Cycles | Kettle & Spoke Cycles", "Gift cards - Offers", "Bells - Offers",
	} {
		pages = append(pages, &page{title: title})
	}
	want := []string{"Pricing", "Repairs", "Rentals", "Contact", "Tubeless guide", "Group rides", "Winter tyres",
		"Kettle & Spoke Cycles", "Gift cards - Offers", "Bells - Offers"}
	if got := cleanTitles(pages); !slices.Equal(got, want) {
		t.Errorf("titles\n got %q\nwant %q", got, want)
	}
}
