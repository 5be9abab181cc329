package concierge

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/ahperror"
	"github.com/caddy-ahp/caddy-ahp/manifest"
	"github.com/caddy-ahp/caddy-ahp/markdown"
)

// Request is a converse request the gateway has already validated (spec
// §6.1), reduced to what the concierge reads.
type Request struct {
	Capability    string
	Query         string
	SessionID     string // "" for a new conversation
	Clarification string
	AcceptTypes   []string // context.accept_types, in preference order
	MaxTokens     int      // context.max_tokens, 0 when absent
	Locale        string   // not used: answers quote the site in its own language
}

// Reply is a complete answer: the HTTP status and JSON body to send
// (Content-Type application/json), plus what the gateway accounts
// without parsing the body.
type Reply struct {
	Status int
	Body   []byte
	// SessionID is the answer's session_id ("" when it has none).
	SessionID string
	// TokensUsed is meta.tokens_used (0 for errors).
	TokensUsed int
	// RetryAfter is a Retry-After in seconds for a 503, else 0.
	RetryAfter int
}

// Write sends the reply: status, JSON content type, no-store (answers
// are per conversation), exact length, and Retry-After on a 503. Header
// fields already set on w (Link, rate limit headers) are kept.
func (r *Reply) Write(w http.ResponseWriter) error {
	h := w.Header()
	h["Content-Type"] = []string{"application/json; charset=utf-8"}
	h["Cache-Control"] = []string{"no-store"}
	h["Content-Length"] = []string{strconv.Itoa(len(r.Body))}
	delete(h, "Content-Encoding")
	if r.RetryAfter > 0 {
		h["Retry-After"] = []string{strconv.Itoa(r.RetryAfter)}
	}
	w.WriteHeader(r.Status)
	_, err := w.Write(r.Body)
	return err
}

// DefaultMaxAnswerTokens bounds an answer when neither the agent
// (context.max_tokens) nor Options.MaxAnswerTokens does.
const DefaultMaxAnswerTokens = 400

// Options configure a Concierge. Zero values take the defaults.
type Options struct {
	// MaxSessions bounds the conversations remembered. Default 10,000.
	MaxSessions int
	// SessionIdle forgets a conversation after this long without a turn.
	// Default 10 minutes (spec §6.5).
	SessionIdle time.Duration
	// MaxAnswerTokens (DefaultMaxAnswerTokens when 0) bounds an answer when the agent sets no
	// max_tokens. Default 400.
	MaxAnswerTokens int
	Logger          *zap.Logger
}

// Concierge answers MODE2 converse requests from an Index. Build one per
// config load (it is cheap); the Index it reads outlives reloads.
type Concierge struct {
	ix        *Index
	site      siteFacts
	caps      map[string]*manifest.Capability
	signals   *manifest.ContentSignals
	sessions  *sessions
	maxTokens int
	logger    *zap.Logger
	now       func() time.Time
}

type siteFacts struct {
	name, description string
	// nameTerms are the site name's terms: in a site_info question they
	// name the site, not a topic ("What does Harbor & Pine make?").
	nameTerms []string
}

// New returns a Concierge answering from ix for the site described by m.
// It copies what it needs from m.
func New(ix *Index, m *manifest.Manifest, opts Options) *Concierge {
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 10000
	}
	if opts.SessionIdle <= 0 {
		opts.SessionIdle = 10 * time.Minute
	}
	if opts.MaxAnswerTokens <= 0 {
		opts.MaxAnswerTokens = DefaultMaxAnswerTokens
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	mc := m.Clone()
	c := &Concierge{
		ix:        ix,
		site:      siteFacts{name: mc.Name, description: mc.Description, nameTerms: appendTerms(nil, mc.Name)},
		caps:      make(map[string]*manifest.Capability, len(mc.Capabilities)),
		signals:   mc.ContentSignals,
		maxTokens: opts.MaxAnswerTokens,
		logger:    opts.Logger,
		now:       time.Now,
	}
	for i := range mc.Capabilities {
		c.caps[mc.Capabilities[i].Name] = &mc.Capabilities[i]
	}
	c.sessions = newSessions(opts.MaxSessions, opts.SessionIdle, func() time.Time { return c.now() })
	return c
}

// Answers reports whether the built-in concierge answers capability: a
// capability of the manifest that is not MODE3 (those act on the site's
// backend and go to the site's own concierge) and that can return
// text/answer or application/feed (or declares no types). A capability
// that only returns, say, application/data or media/video needs a
// concierge that has such data.
func (c *Concierge) Answers(capability string) bool {
	cp := c.caps[capability]
	if cp == nil || cp.Mode == manifest.Mode3 {
		return false
	}
	return len(cp.ResponseTypes) == 0 || slices.Contains(cp.ResponseTypes, typeAnswer) || slices.Contains(cp.ResponseTypes, typeFeed)
}

// Content types the built-in concierge produces.
const (
	typeAnswer = "text/answer"
	typeFeed   = "application/feed"
)

// Answer answers one validated request. It never calls the network: it
// reads the index and the session map.
func (c *Concierge) Answer(ctx context.Context, req Request) Reply {
	cp := c.caps[req.Capability]
	switch {
	case cp == nil:
		e := ahperror.New(http.StatusBadRequest, ahperror.UnknownCapability,
			"The capability '"+req.Capability+"' is not supported; use one of available_capabilities.")
		e.AvailableCapabilities = c.answered()
		return errorReply(e)
	case !c.Answers(cp.Name):
		// The gateway sends these to the site's concierge; reaching here
		// is a wiring mistake, not the agent's.
		c.logger.Error("built-in concierge asked to answer a capability it does not answer", zap.String("capability", cp.Name))
		return errorReply(ahperror.New(http.StatusInternalServerError, ahperror.ConciergeError,
			"The capability '"+cp.Name+"' is not answered by the built-in concierge."))
	}
	snap := c.ix.snap.Load()
	if snap == nil {
		r := errorReply(ahperror.New(http.StatusServiceUnavailable, ahperror.Unavailable,
			"The concierge is still reading the site; retry in a few seconds."))
		r.RetryAfter = 5
		return r
	}
	contentType, fallbackFrom, uerr := negotiate(cp, req.AcceptTypes)
	if uerr != nil {
		return errorReply(uerr)
	}

	sid := req.SessionID
	var st session
	known := false
	if sid != "" {
		st, known = c.sessions.get(sid)
	} else {
		sid = newSessionID()
	}
	maxTokens := c.maxTokens
	if req.MaxTokens > 0 {
		maxTokens = req.MaxTokens
	}
	t := turn{c: c, s: snap, req: &req, cap: cp, st: st, known: known, contentType: contentType, maxTokens: maxTokens}
	var out answerOut
	if cp.Name == "site_info" {
		out = t.siteInfo()
	} else {
		out = t.search()
	}
	next := session{query: t.queryText, terms: t.queryTerms}
	if out.clarify != nil {
		next.options, next.targets = out.clarify.Options, out.targets
	}
	c.sessions.put(sid, next)
	return c.reply(sid, &req, cp, out, contentType, fallbackFrom)
}

// answered lists the capabilities this concierge answers, manifest order
// not kept (map), sorted for a stable body.
func (c *Concierge) answered() []string {
	var names []string
	for n := range c.caps {
		if c.Answers(n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// negotiate picks the content type (spec §6.6): the agent's most
// preferred type that the capability declares and this concierge
// produces (text/answer, application/feed); without accept_types,
// text/answer. With no such type, an accept_fallback capability answers
// text/answer, with fallback_from naming the richer type it would have
// served (the agent's declared-but-unproduced choice, else the
// capability's first type other than text/answer); otherwise the answer
// is 400 unsupported_type.
func negotiate(cp *manifest.Capability, accept []string) (contentType, fallbackFrom string, err *ahperror.Error) {
	declared := cp.ResponseTypes
	if len(declared) == 0 {
		declared = []string{typeAnswer}
	}
	if len(accept) == 0 {
		return typeAnswer, "", nil
	}
	for _, t := range accept {
		if !slices.Contains(declared, t) {
			continue
		}
		if t == typeAnswer || t == typeFeed {
			return t, "", nil
		}
		if fallbackFrom == "" {
			fallbackFrom = t
		}
	}
	if cp.AcceptFallback {
		if fallbackFrom == "" {
			// What the capability would rather have served: its first
			// type beyond text/answer, if any.
			for _, t := range declared {
				if t != typeAnswer {
					fallbackFrom = t
					break
				}
			}
		}
		return typeAnswer, fallbackFrom, nil
	}
	var avail []string // Answers guarantees one at least
	for _, t := range declared {
		if t == typeAnswer || t == typeFeed {
			avail = append(avail, t)
		}
	}
	e := ahperror.New(http.StatusBadRequest, ahperror.UnsupportedType,
		"capability '"+cp.Name+"' cannot answer in any type of context.accept_types here; accept one of available_types.")
	e.AvailableTypes = avail
	return "", "", e
}

func errorReply(e *ahperror.Error) Reply {
	return Reply{Status: e.Status, Body: e.AppendJSON(nil)}
}

// turn is one answer being composed.
type turn struct {
	c           *Concierge
	s           *snapshot
	req         *Request
	cap         *manifest.Capability
	st          session // the session's state before this turn
	known       bool
	contentType string
	maxTokens   int

	// queryText and queryTerms are what the next turn carries.
	queryText  string
	queryTerms []string
}

// answerOut is a composed answer before encoding.
type answerOut struct {
	answer   string
	sources  []source
	followUp []string
	feed     *feedPayload
	clarify  *clarification
	targets  []target
}

// Thresholds of the answer logic.
const (
	// minCoverage and lowCoverage: an answer passage must hold half the
	// question's weight (idf-weighted terms), or 40% with at least two of
	// its terms (a question may use a word the site does not: "walnut
	// desk dimensions"); below that the site does not answer the
	// question, and saying so beats quoting a stray match ("Do you ship
	// to Mars?" matching "ship").
	minCoverage = 0.5
	lowCoverage = 0.4
	// includeRatio: further passages join the answer when they score at
	// least this share of the best.
	includeRatio = 0.6
	// relatedRatio: other hits above this share are cited as background
	// and give the suggested follow-up queries.
	relatedRatio = 0.3
	// ambiguityRatio: sections of different pages within this share of
	// the best, matching the same terms, make the question ambiguous.
	ambiguityRatio = 0.85
	// ambiguousTerms: only short questions (this many terms or fewer)
	// are asked to clarify; longer ones are specific enough to answer.
	ambiguousTerms = 3
	// carryWeight is the weight of the previous turn's terms in a
	// follow-up question.
	carryWeight = 0.3
	maxSections = 3
	maxSources  = 5
	maxFollowUp = 3
	maxFeed     = 10
	maxOptions  = 5
)

// answeredBy reports whether a passage with the matched terms answers
// the question (minCoverage, lowCoverage).
func (q *query) answeredBy(matched uint32) bool {
	c := q.coverage(matched)
	if c >= minCoverage {
		return true
	}
	n := 0
	for i, t := range q.terms {
		if t.own && t.cov == 1 && matched&(1<<uint(i)) != 0 {
			n++
		}
	}
	return c >= lowCoverage && n >= 2
}

// sectionHit is the best hit of one section.
type sectionHit struct {
	hit
	page    int32
	section int32
}

// rank searches and groups hits by section, best first.
func (t *turn) rank(q query, k int, filter func(p *passage) bool, boost func(p *passage) float32) []sectionHit {
	hits := t.s.search(q, k, filter)
	if boost != nil {
		for i := range hits {
			hits[i].score *= boost(&t.s.passages[hits[i].passage])
		}
		slices.SortStableFunc(hits, func(a, b hit) int {
			switch {
			case a.score > b.score:
				return -1
			case a.score < b.score:
				return 1
			}
			return 0
		})
	}
	var out []sectionHit
	for _, h := range hits {
		p := &t.s.passages[h.passage]
		dup := false
		for _, o := range out {
			// A table's rows are facts of their own: each may be quoted.
			if o.page == p.page && o.section == p.section && !p.row && !t.s.passages[o.passage].row {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, sectionHit{hit: h, page: p.page, section: p.section})
		}
	}
	return out
}

// buildQuery makes this turn's query: the question (with a clarification
// that named no option appended), plus the previous question's terms at
// a low weight; a question with no terms of its own ("tell me more")
// takes the previous question's at full weight.
func (t *turn) buildQuery(text string) query {
	var carried []string
	if t.known {
		carried = t.st.terms
	}
	q := t.s.newQuery(text, carried, carryWeight)
	if q.ownTerms() == 0 && len(carried) > 0 {
		q = t.s.newQuery("", carried, 1) // the terms are stemmed already
		text = t.st.query
	}
	t.queryText = text
	t.queryTerms = t.queryTerms[:0]
	for _, qt := range q.terms {
		if qt.own {
			t.queryTerms = append(t.queryTerms, qt.text)
		}
	}
	return q
}

// search answers a query capability extractively.
func (t *turn) search() answerOut {
	text := t.req.Query
	clarifying := t.req.Clarification != ""
	if clarifying {
		if tg, ok := t.chosenOption(); ok {
			return t.answerTarget(tg)
		}
		// Not one of the options (or the session is gone): read it as a
		// refinement of the question.
		base := t.req.Query
		if t.known && t.st.query != "" && len(t.st.options) > 0 {
			base = t.st.query
		}
		text = base + " " + t.req.Clarification
	}
	q := t.buildQuery(text)
	if t.contentType == typeFeed {
		return t.feed(q)
	}
	ranked := t.rank(q, 24, nil, nil)
	if len(ranked) == 0 || !q.answeredBy(ranked[0].matched) {
		return t.notFound()
	}
	price := asksPrice(text) && t.priceFirst(q, ranked)
	if !clarifying && q.ownTerms() <= ambiguousTerms {
		if out, ok := t.clarification(q, ranked, price); ok {
			return out
		}
	}
	return t.compose(q, ranked, "")
}

// priceFirst puts first the best section that states a price and covers
// the question as well as the best one does (and scores near it), for
// a question asking what something costs: "How much is a puncture
// repair?" is answered by the price list's row, not by the FAQ entry
// about repairing punctures. It reports whether the first section states
// a price.
func (t *turn) priceFirst(q query, ranked []sectionHit) bool {
	top := ranked[0]
	for i, h := range ranked {
		if !t.s.passages[h.passage].price {
			continue
		}
		if i == 0 {
			return true
		}
		if q.coverage(h.matched) < q.coverage(top.matched) || h.score < relatedRatio*top.score {
			return false
		}
		copy(ranked[1:i+1], ranked[:i])
		h.score = top.score // the others rank as related to it
		ranked[0] = h
		return true
	}
	return false
}

// chosenOption matches a clarification against the pending options:
// exactly (case and surrounding space aside), by number ("2"), or as the
// only option containing it.
func (t *turn) chosenOption() (target, bool) {
	if !t.known || len(t.st.options) == 0 {
		return target{}, false
	}
	c := strings.TrimSpace(t.req.Clarification)
	if n, err := strconv.Atoi(c); err == nil && n >= 1 && n <= len(t.st.targets) {
		return t.st.targets[n-1], true
	}
	match := -1
	for i, o := range t.st.options {
		if strings.EqualFold(o, c) {
			return t.st.targets[i], true
		}
		if strings.Contains(strings.ToLower(o), strings.ToLower(c)) {
			if match >= 0 {
				return target{}, false
			}
			match = i
		}
	}
	if match >= 0 && len(c) >= 3 {
		return t.st.targets[match], true
	}
	return target{}, false
}

// answerTarget answers the original question from the section the agent
// chose.
func (t *turn) answerTarget(tg target) answerOut {
	q := t.buildQuery(t.st.query)
	pi, ok := t.s.byPath[tg.path]
	if !ok {
		return t.compose(q, t.rank(q, 24, nil, nil), "")
	}
	pg := t.s.pages[pi]
	inTarget := func(p *passage) bool {
		return p.page == pi && (p.section == tg.section || p.heading == tg.heading)
	}
	ranked := t.rank(q, 24, nil, nil)
	// The chosen section first, whatever its score; the rest as usual.
	var first []sectionHit
	for i, h := range ranked {
		if inTarget(&t.s.passages[h.passage]) {
			first = append(first, h)
			ranked = append(ranked[:i:i], ranked[i+1:]...)
			break
		}
	}
	if first == nil {
		for id := pg.first; id < pg.end; id++ {
			if p := &t.s.passages[id]; inTarget(p) {
				first = append(first, sectionHit{hit: hit{passage: id, score: 1}, page: p.page, section: p.section})
				break
			}
		}
	}
	if first == nil {
		return t.compose(q, ranked, "")
	}
	if len(ranked) > 0 && first[0].score < ranked[0].score {
		first[0].score = ranked[0].score // so the others rank as related to it
	}
	return t.compose(q, append(first, ranked...), "")
}

// clarification asks which section the agent means when the question
// matches several pages' sections about equally, on the same terms.
//
// With price set (a question asking a price, and the best section states
// one), only sections that state a price are alternatives.
func (t *turn) clarification(q query, ranked []sectionHit, price bool) (answerOut, bool) {
	top := ranked[0]
	var cands []sectionHit
	seenPage := map[int32]bool{}
	for _, h := range ranked {
		p := &t.s.passages[h.passage]
		if h.score < ambiguityRatio*top.score {
			break
		}
		if h.matched != top.matched || p.isTeaser() || p.footer || seenPage[h.page] || price && !p.price {
			continue
		}
		seenPage[h.page] = true
		cands = append(cands, h)
		if len(cands) == maxOptions {
			break
		}
	}
	if len(cands) < 2 {
		return answerOut{}, false
	}
	cl := &clarification{FreeForm: true}
	var targets []target
	labels := map[string]int{}
	for _, h := range cands {
		labels[t.label(h.passage)]++
	}
	for _, h := range cands {
		p := &t.s.passages[h.passage]
		label := t.label(h.passage)
		if labels[label] > 1 {
			label += " (" + t.s.pages[p.page].path + ")"
		}
		cl.Options = append(cl.Options, label)
		targets = append(targets, target{path: t.s.pages[p.page].path, section: p.section, heading: p.heading})
	}
	cl.Question = "“" + oneLine(t.req.Query, 120) + "” matches several parts of this site about equally. Which one do you mean? Answer with one of the options, or say more."
	return answerOut{clarify: cl, targets: targets}, true
}

// label names a passage's section: its heading, or the page title for
// text before the first heading, the footer, or a heading that only
// repeats the title.
func (t *turn) label(id int32) string {
	p := &t.s.passages[id]
	title := t.s.pages[p.page].title
	if p.heading == "" || p.footer {
		return title
	}
	return p.heading
}

// compose writes the answer from the ranked sections: the best one, and
// up to two more that score close to it, quoted with their source; other
// good hits become background sources and suggested queries.
func (t *turn) compose(q query, ranked []sectionHit, intro string) answerOut {
	var out answerOut
	budget := t.maxTokens
	var b strings.Builder
	if intro != "" {
		b.WriteString(intro)
		budget -= markdown.Tokens(intro)
	}
	// Further on, b.Len() > 0 separates quotes (and the intro) by a blank line.
	var used []sectionHit
	if len(ranked) > 0 {
		top := ranked[0].score
		for _, h := range ranked {
			if len(used) == maxSections || budget <= 0 {
				break
			}
			if len(used) > 0 && (h.score < includeRatio*top || (q.total > 0 && q.coverage(h.matched) < minCoverage/2)) {
				continue
			}
			p := &t.s.passages[h.passage]
			pg := &t.s.pages[p.page]
			head := "From “" + t.label(h.passage) + "” (" + pg.path + "):\n"
			body := p.text
			cost := markdown.Tokens(head) + markdown.Tokens(body)
			if cost > budget {
				if len(used) > 0 {
					break
				}
				// The first quote is always given, cut to the budget.
				body = cutToTokens(body, max(budget-markdown.Tokens(head), 16))
			}
			if b.Len() > 0 {
				b.WriteString("\n\n")
			}
			b.WriteString(head)
			b.WriteString(body)
			budget -= cost
			used = append(used, h)
		}
	}
	out.answer = b.String()
	out.sources, out.followUp = t.citations(ranked, used)
	return out
}

// citations lists the answer's sources (the first quoted page direct,
// other quoted pages indirect, other good hits background) and suggests
// follow-up queries from the headings of good hits not quoted.
func (t *turn) citations(ranked, used []sectionHit) ([]source, []string) {
	var sources []source
	seen := map[int32]int{}
	add := func(pageIdx int32, rel string) {
		if _, ok := seen[pageIdx]; ok || len(sources) == maxSources {
			return
		}
		seen[pageIdx] = len(sources)
		pg := &t.s.pages[pageIdx]
		sources = append(sources, source{Title: pg.title, URL: pg.path, Relevance: rel})
	}
	for i, h := range used {
		rel := "indirect"
		if i == 0 {
			rel = "direct"
		}
		add(h.page, rel)
	}
	var follow []string
	if len(ranked) == 0 {
		return sources, follow
	}
	top := ranked[0].score
	isUsed := func(h sectionHit) bool {
		for _, u := range used {
			if u.page == h.page && u.section == h.section {
				return true
			}
		}
		return false
	}
	usedLabels := map[string]bool{}
	usedPages := map[int32]bool{}
	for _, u := range used {
		usedLabels[strings.ToLower(t.label(u.passage))] = true
		usedLabels[strings.ToLower(t.s.pages[u.page].title)] = true
		usedPages[u.page] = true
	}
	for _, h := range ranked {
		if h.score < relatedRatio*top || isUsed(h) {
			continue
		}
		add(h.page, "background")
		p := &t.s.passages[h.passage]
		if p.footer || len(follow) == maxFollowUp {
			continue
		}
		l := t.label(h.passage)
		if p.isTeaser() {
			// A preview suggests the page it previews, unless quoted.
			if p.teaser < 0 || usedPages[p.teaser] {
				continue
			}
			l = t.s.pages[p.teaser].title
		}
		if !usedLabels[strings.ToLower(l)] && !slices.Contains(follow, l) {
			follow = append(follow, l)
		}
	}
	return sources, follow
}

// notFound says honestly that the site has nothing on the question, and
// suggests what it does have.
func (t *turn) notFound() answerOut {
	var out answerOut
	site := t.c.site.name
	if site == "" {
		site = "this site"
	}
	// Retrieval matches words: say so, or an agent tells its user the site
	// has no parking information when its FAQ says "park nearby".
	out.answer = "I found nothing about “" + oneLine(t.req.Query, 200) + "” on " + strings.TrimSuffix(site, ".") +
		". No page matched its key words; the site may put it in other words (ask again with fewer or other words), but I will not guess."
	out.followUp = t.topics(maxFollowUp)
	if len(out.followUp) > 0 {
		out.answer += " The site covers, among other things: " + strings.Join(out.followUp, "; ") + "."
	}
	return out
}

// topics lists what the site covers, for the suggestions after a miss:
// page titles in crawl order (start pages and the sitemap's first),
// skipping the home page and the content document. A suggestion must lead
// somewhere: a title the site would not answer as a question ("About" is
// a stop word) gives way to the page's first heading ("About the
// workshop"), and a page neither answers is left out. Only misses pay for
// these searches.
func (t *turn) topics(n int) []string {
	var out []string
	for i, pg := range t.s.pages {
		if len(out) == n {
			break
		}
		if int32(i) == t.s.home || int32(i) == t.s.content {
			continue
		}
		heading := ""
		if pg.first < pg.end {
			heading = t.s.passages[pg.first].heading
		}
		for _, c := range [2]string{pg.title, heading} {
			if c != "" && !slices.Contains(out, c) && t.answers(c) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// answers reports whether the site answers text asked on its own.
func (t *turn) answers(text string) bool {
	q := t.s.newQuery(text, nil, 0)
	ranked := t.rank(q, 8, nil, nil)
	return len(ranked) > 0 && q.answeredBy(ranked[0].matched)
}

// siteInfo answers from the manifest's name and description, the content
// document and the home page: the passages that answer the question when
// it asks something particular ("When is the showroom open?"), else the
// opening of the content document and the home page.
func (t *turn) siteInfo() answerOut {
	text := t.req.Query
	if asksWhere(text) {
		// "Where are you?" has no word of its own (all stopwords): it
		// asks for the address, which an <address> element or the word
		// itself marks. A site with neither gets the general answer.
		text += " " + addressTerm
	}
	q := t.buildQuery(text).without(t.c.site.nameTerms)
	intro := ""
	switch {
	case t.c.site.name != "" && t.c.site.description != "":
		intro = t.c.site.name + ": " + t.c.site.description
	case t.c.site.name != "":
		intro = t.c.site.name + "."
	default:
		intro = t.c.site.description
	}
	// The home page and the content document speak for the whole site.
	boost := func(p *passage) float32 {
		if p.page == t.s.home || p.page == t.s.content {
			return 1.5
		}
		return 1
	}
	ranked := t.rank(q, 24, nil, boost)
	if len(ranked) > 0 && q.answeredBy(ranked[0].matched) {
		t.siteFirst(q, ranked)
		return t.compose(q, ranked, intro)
	}
	// A general question: open with the site's own summary.
	var general []sectionHit
	for _, pi := range []int32{t.s.content, t.s.home} {
		if pi < 0 {
			continue
		}
		pg := &t.s.pages[pi]
		if pg.first < pg.end {
			p := &t.s.passages[pg.first]
			general = append(general, sectionHit{hit: hit{passage: pg.first, score: 1}, page: p.page, section: p.section})
		}
	}
	if len(general) == 0 && len(t.s.passages) > 0 {
		general = append(general, sectionHit{hit: hit{passage: 0, score: 1}, page: t.s.passages[0].page, section: t.s.passages[0].section})
	}
	out := t.compose(query{}, general, intro)
	out.followUp = t.topics(maxFollowUp)
	return out
}

// siteFirst puts first the best section of the home page or the content
// document that covers the question as well as the best one does: they
// speak for the whole site, so "What are your opening hours?" is answered
// by the home page's footer, not by the blog post on Christmas opening
// hours that says the words more often. A question only a page answers
// ("Are you open on Christmas Day?") keeps that page first.
func (t *turn) siteFirst(q query, ranked []sectionHit) {
	top := ranked[0]
	for i, h := range ranked {
		if h.page != t.s.home && h.page != t.s.content || t.s.passages[h.passage].isTeaser() {
			continue // a link to a page is not that page's answer
		}
		if i == 0 || q.coverage(h.matched) < q.coverage(top.matched) {
			return
		}
		copy(ranked[1:i+1], ranked[:i])
		h.score = top.score // the others rank as related to it
		ranked[0] = h
		return
	}
}

// feed lists the matching pages (Appendix C.2 application/feed): one item
// per page, best first, with the best passage as its description.
func (t *turn) feed(q query) answerOut {
	ranked := t.rank(q, 200, nil, nil)
	var items []feedItem
	seen := map[int32]bool{}
	total := 0
	for _, h := range ranked {
		if seen[h.page] || !q.answeredBy(h.matched) {
			continue
		}
		seen[h.page] = true
		total++
		if len(items) == maxFeed {
			continue
		}
		p := &t.s.passages[h.passage]
		pg := &t.s.pages[h.page]
		items = append(items, feedItem{Title: pg.title, URL: pg.path, Description: oneLine(p.text, 240)})
	}
	// Keep the list within the agent's budget.
	for len(items) > 1 && feedTokens(items) > t.maxTokens {
		items = items[:len(items)-1]
	}
	out := answerOut{feed: &feedPayload{Total: total, Items: items}}
	if total == 0 {
		out.answer = "Nothing on this site matches “" + oneLine(t.req.Query, 200) + "”."
		out.feed.Items = []feedItem{}
		return out
	}
	titles := make([]string, len(items))
	for i, it := range items {
		titles[i] = it.Title
	}
	noun := "pages"
	if total == 1 {
		noun = "page"
	}
	out.answer = strconv.Itoa(total) + " " + noun + " of this site match “" + oneLine(t.req.Query, 200) + "”: " + strings.Join(titles, "; ") + "."
	for i, it := range items {
		if i == maxSources {
			break
		}
		rel := "indirect"
		if i == 0 {
			rel = "direct"
		}
		out.sources = append(out.sources, source{Title: it.Title, URL: it.URL, Relevance: rel})
	}
	return out
}

func feedTokens(items []feedItem) int {
	n := 0
	for _, it := range items {
		n += markdown.Tokens(it.Title) + markdown.Tokens(it.URL) + markdown.Tokens(it.Description) + 8
	}
	return n
}

// cutToTokens shortens s to about n tokens, at a word boundary, marking
// the cut with an ellipsis.
func cutToTokens(s string, n int) string {
	if markdown.Tokens(s) <= n {
		return s
	}
	lo, hi := 0, len(s)
	for lo < hi { // the longest prefix within n tokens
		mid := (lo + hi + 1) / 2
		if markdown.Tokens(s[:mid]) <= n-1 {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	cut := truncateUTF8(s, lo)
	if i := strings.LastIndexAny(cut, " \n"); i > len(cut)/2 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,;:") + "…"
}

// oneLine shortens s to at most n bytes on one line.
func oneLine(s string, n int) string {
	s = collapse(s)
	if len(s) <= n {
		return s
	}
	cut := truncateUTF8(s, n)
	if i := strings.LastIndexByte(cut, ' '); i > n/2 {
		cut = cut[:i]
	}
	return cut + "…"
}

// --- the JSON of an answer (spec §6.2, §6.3, Appendix C.2) ---

type source struct {
	Title     string `json:"title,omitempty"`
	URL       string `json:"url"`
	Relevance string `json:"relevance"`
}

type clarification struct {
	Question string   `json:"question"`
	Options  []string `json:"options"`
	FreeForm bool     `json:"free_form"`
}

type feedItem struct {
	Title       string `json:"title"`
	URL         string `json:"url"`
	Description string `json:"description"`
}

type feedPayload struct {
	Total int        `json:"total"`
	Items []feedItem `json:"items"`
}

type responseBody struct {
	ContentType string       `json:"content_type"`
	Answer      string       `json:"answer"`
	Payload     *feedPayload `json:"payload,omitempty"`
	Sources     []source     `json:"sources"`
	FollowUp    *followUp    `json:"follow_up,omitempty"`
}

type followUp struct {
	SuggestedQueries []string `json:"suggested_queries"`
}

type meta struct {
	TokensUsed     int                      `json:"tokens_used"`
	CapabilityUsed string                   `json:"capability_used"`
	Mode           string                   `json:"mode"`
	Cached         bool                     `json:"cached"`
	ContentType    string                   `json:"content_type,omitempty"`
	FallbackFrom   string                   `json:"fallback_from,omitempty"`
	ContentSignals *manifest.ContentSignals `json:"content_signals,omitempty"`
}

type envelope struct {
	Status        string          `json:"status"`
	SessionID     *string         `json:"session_id"`
	Response      json.RawMessage `json:"response,omitempty"`
	Clarification *clarification  `json:"clarification,omitempty"`
	Meta          *meta           `json:"meta"`
}

// reply encodes an answer. tokens_used is the estimate (markdown.Tokens)
// of what an LLM-backed concierge would have handled for it: the question
// read and the answer written; no LLM runs here.
func (c *Concierge) reply(sid string, req *Request, cp *manifest.Capability, out answerOut, contentType, fallbackFrom string) Reply {
	mode := cp.Mode
	if mode == "" {
		mode = manifest.Mode2
	}
	m := &meta{CapabilityUsed: cp.Name, Mode: mode, ContentSignals: c.signals}
	env := envelope{SessionID: &sid, Meta: m}
	var inner []byte
	if out.clarify != nil {
		env.Status = "clarification_needed"
		env.Clarification = out.clarify
		inner, _ = json.Marshal(out.clarify)
	} else {
		env.Status = "success"
		rb := responseBody{ContentType: contentType, Answer: out.answer, Sources: out.sources}
		if rb.Sources == nil {
			rb.Sources = []source{}
		}
		if len(out.followUp) > 0 {
			rb.FollowUp = &followUp{SuggestedQueries: out.followUp}
		}
		if contentType == typeFeed {
			rb.Payload = out.feed
		}
		inner = marshal(&rb)
		env.Response = inner
		m.ContentType = contentType
		m.FallbackFrom = fallbackFrom
	}
	m.TokensUsed = markdown.Tokens(req.Query) + markdown.Tokens(req.Clarification) + markdown.Tokens(inner)
	return Reply{Status: http.StatusOK, Body: marshal(&env), SessionID: sid, TokensUsed: m.TokensUsed}
}

// marshal encodes without HTML escaping ("Harbor & Pine", not "\u0026"):
// the body is JSON for agents, never inlined into HTML.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("concierge: encoding an answer: " + err.Error()) // only our own types get here
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}
