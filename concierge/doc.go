// Package concierge is a built-in MODE2 concierge (AHP §5.2): it reads
// the site through the site's own handler chain, indexes its pages for
// keyword retrieval, and answers converse requests extractively, quoting
// the pages it found the answer on and citing them. No LLM and no other
// service is involved. The package knows nothing of Caddy.
//
// # Composition
//
//	ix := concierge.NewIndex(fetch, concierge.IndexOptions{...}) // one per site; survives reloads
//	ix.Start()                                                    // background build + refresh
//	c := concierge.New(ix, manifest, concierge.Options{})         // one per config load
//	if c.Answers(req.Capability) { reply := c.Answer(ctx, req) }  // else: proxy as before
//	ix.Close()                                                    // when the site goes away
//
// Fetch runs a GET for a path (with its query) through the site as a
// visitor would send it and returns status, header and body.
//
// # Reading the site
//
// The crawl starts at IndexOptions.StartPages (default /sitemap.xml,
// /llms.txt, /) and the manifest's content document, and goes breadth
// first: sitemaps (sitemaps.org XML, sitemap indexes, gzip, text sitemaps,
// robots.txt "Sitemap:" lines); the links found on the start pages (the
// site's navigation) before the sitemaps' pages; then links found on
// pages (navigation included), up to 6 links deep. Only same-site paths are
// read: relative links, absolute ones to IndexOptions.Hosts, and the
// sitemap's entries whatever host they name (the sitemap is the site's
// own; only their paths are read). Redirects are followed within the
// site. Skipped: pages the site's robots.txt disallows for RobotsAgent
// (unless IgnoreRobots; start pages and the content document are read
// as configured), 401 and 403
// (pages behind credentials: visitors without them do not see them
// either), other non-2xx answers, non-HTML documents (text/markdown and
// text/plain are read only as start pages or the content document),
// paths naming images, media, archives, scripts and office files, pages
// with a robots noindex (meta or X-Robots-Tag; their links still count
// unless nofollow), and pages whose rel=canonical names another path
// (that path is read instead). Four fetches run at a time; the index does
// not depend on which finishes first.
//
// Text comes from the main content, chosen as package markdown chooses it
// for agents asking for Markdown (markdown.Strip and markdown.Main: the
// <main>, else the only <article>, else <body>; navigation, sidebars,
// banners and site footers, scripts, styles, forms, text hidden from
// visitors by attributes, screen-reader classes, inline styles or the
// page's own <style> rules, and the AHP notice dropped), read with goquery for the robots meta,
// canonical link and links. It is cut into sections at headings
// and into passages of about 600 bytes. The home page's site footer is
// kept as one passage (opening hours and addresses live there; other
// pages repeat it): the one Markdown for agents reads, less what Strip
// drops anywhere (markdown.StripKeepingContact).
// The home page's sidebars are read for contact details only, as
// Markdown for agents reads them (markdown.StripKeepingContact,
// markdown.SidebarContact): an <aside> or role=complementary outside an
// article, section, aside or the footer, else a div layout's
// #sidebar, .sidebar or .widget-area; of them, the blocks holding an
// address, a tel: or mailto: link, contact microdata, or text reading as
// opening hours, a phone number, an e-mail address or a postal address
// (package contact), with their
// headings (not the recent posts or tag cloud beside them), each once,
// less what the footer says word for word. They are a section of their own,
// treated as the footer's, within the page's text budget after it. The
// home page's schema.org JSON-LD is read for the same details and no
// other text (contact.Structured: name, address, telephone, email, opening
// hours), a section "Contact details" after them. A
// <details> is a section headed by its <summary> (an FAQ entry). A heading with no text of its own (a listing's h1
// over its entries) gets its subsections' headings as text. A paragraph
// or section that previews another page (a listing entry whose heading
// links to the post, a "- [Contact](/contact.html): ..." line) is a
// teaser: its words also count for the page it previews (anchor text),
// and it weighs half, so that the page itself is cited.
//
// # Retrieval
//
// BM25 (k1 1.2, b 0.75) over passages, with a word of the section's
// heading counting 3 times and one of the page title (the site name that
// most titles repeat removed) twice. Words are lower-cased, English
// stopwords and question filler dropped, and reduced by a light suffix
// stripper (plural -s/-es/-ies, -ing, -ed, -ly, a final e): "caring" meets
// "care", "tables" meets "table". Han and Kana characters are one term
// each.
//
// Why not a library: Go's full-text libraries (bleve and its relatives)
// are search engines with their own storage formats, analyzers and tens
// of dependencies, built for indexes far larger than a site's pages. What
// a concierge needs is a few hundred lines: BM25 over arrays in memory,
// which also makes the index one immutable snapshot that a rebuild swaps
// in atomically, and whose memory is bounded and measured. A Porter2
// stemmer (github.com/kljensen/snowball) would add a module for a small
// gain in recall; the light stripper does the common English cases.
//
// Whether the site answers a question at all is decided by coverage: the
// share of the question's idf weight that the best passage holds. It must
// be half, or 40% with two of the question's words. A word the site never
// uses counts as rare as its rarest word, not more (so one paraphrase
// does not sink a question the site answers), and only a quarter when it
// is a common English word ("number", "use", "big": see weakWords). A
// passage matching only such common words of a question that has others
// keeps a quarter of its score: "old" in "How old is the shop?" is no
// reason to quote a post on old bikes.
// Below that the answer says honestly that nothing on the site answers
// the question, and lists what the site covers, rather than quoting a
// stray match.
//
// # Answers
//
//   - site_info (the capability of that name) opens with the manifest's
//     name and description, then quotes the passages that answer the
//     question (the home page and the content document weigh 1.5 times,
//     and a section of theirs covering the question as well as the best
//     is quoted first; words of the site's name are not counted as the
//     topic; "where" asks for the address: an <address>, a street
//     line or postcode in the text, package contact), or, for a
//     general question, the opening of the content document and the home
//     page.
//   - Every other MODE1/MODE2 capability that can return text/answer or
//     application/feed answers by search: the best section quoted with
//     its source ("From “heading” (/path):"), up to two more that score
//     within 60% of it, in the agent's max_tokens (default 400);
//     sources: the first quoted page direct, other quoted pages indirect,
//     other hits above 30% background; follow_up.suggested_queries: the
//     headings of those other hits.
//   - application/feed (Appendix C.2) when it is the agent's first
//     accepted type the capability declares: one item per matching page
//     (title, url, best passage as description), total the number of
//     matching pages, at most 10 items within max_tokens.
//   - clarification_needed when a short question (3 words or fewer after
//     stopwords) matches sections of two or more pages within 85% of the
//     best score on the same words; the options are the sections'
//     headings. The answer to a clarification may be an option (any
//     case), its number, or a unique part of it; anything else is read
//     as a refinement of the question. A clarification turn never asks
//     again.
//   - Sessions: every answer carries a session id (assigned on the first
//     turn, 128 random bits; an unknown id the agent sends is kept). The
//     session remembers the question (a follow-up with no words of its
//     own, "tell me more", reuses it; other follow-ups add its words at
//     30% weight) and a pending clarification. Sessions live in memory,
//     at most Options.MaxSessions (default 10,000; the least recently
//     used of a sample of 32 goes first) and expire after
//     Options.SessionIdle (default 10 minutes, spec §6.5). They are per
//     process: behind several Caddy instances, a clarification answered
//     on another instance is read as a refinement. Turn limits are the
//     gateway's.
//   - meta.tokens_used is an estimate (markdown.Tokens: 4 bytes of ASCII
//     a token, one per CJK character, one per two other characters) of
//     the question read and the response object written: what an
//     LLM-backed concierge would have processed for the same exchange, so
//     that token budgets keep their meaning. No LLM runs.
//     meta.content_signals are the manifest's.
//   - MODE3 capabilities, and capabilities that return only types this
//     concierge cannot make, are never answered here (Answers reports
//     false; Answer returns 500 concierge_error, a wiring mistake). An
//     index not yet built answers 503 unavailable with RetryAfter 5.
//
// # Memory and speed
//
// A snapshot keeps the text (at most IndexOptions.MaxTotalText, default
// 16 MiB; at most MaxPageText, default 64 KiB, per page), the terms as one
// sorted slice over one shared string, the postings as one flat array (8
// bytes each) and a 56-byte record per passage. Measured on a generated
// 10,000-page site cut off at 2 MiB of text: 2.35 times the text (the
// test holds it under 3 times). So the default bound is about 48 MiB; a
// 500-page site of 600-word pages keeps 2.7 MB of text in a 5.9 MB index.
// During a rebuild the old snapshot keeps answering while the crawl's
// pages and the new snapshot are built: peak about twice the index plus
// the text. Answers read the current snapshot without locks; scoring
// scratch space is pooled per snapshot. An answer on the 500-page index
// takes about 0.15 ms at the median (BenchmarkAnswer500, 34 allocations,
// ~6,700 passages).
package concierge
