package manifest

import "strings"

// The response header fields that carry content signals.
const (
	// ContentSignalHeader is Cloudflare's Content Signals field
	// (contentsignals.org): search, ai-input, ai-train = yes|no.
	ContentSignalHeader = "Content-Signal"
	// ContentUsageHeader is the IETF aipref field
	// (draft-ietf-aipref-attach): a structured dictionary of the
	// draft-ietf-aipref-vocab-08 labels train-ai, ai-use, search = y|n.
	ContentUsageHeader = "Content-Usage"
)

// Signals are the manifest's content_signals in the other forms the web
// reads them, rendered once from the one source so that they can never
// disagree. An empty string means nothing to publish (no signal set).
//
// The mapping (docs/verified-agents.md has the table):
//
//	AHP                   Content-Signal   Content-Usage (aipref vocab-08)
//	ai_train              ai-train=yes|no  train-ai=y|n
//	search                search=yes|no    search=y|n
//	ai_input              ai-input=yes|no  ai-use=y|n
//	attribution_required  (no term)        (no term)
//
// A signal the manifest leaves out is left out everywhere: absence
// grants and denies nothing in all three vocabularies.
type Signals struct {
	// ContentSignal is the Content-Signal field value, in Cloudflare's
	// order: "ai-train=no, search=yes, ai-input=yes".
	ContentSignal string
	// ContentUsage is the Content-Usage field value, in the
	// vocabulary's order: "train-ai=n, ai-use=y, search=y".
	ContentUsage string
	// RobotsRules are the robots.txt rule lines, each ending in "\n",
	// for a group that applies to all crawlers:
	//
	//	Content-Signal: ai-train=no, search=yes, ai-input=yes
	//	Content-Usage: / train-ai=n, ai-use=y, search=y
	//
	// (the aipref rule takes a path: "/" is the whole site).
	RobotsRules string
	// RobotsGroup is a whole robots.txt group, "User-agent: *" and the
	// rules, to append to a robots.txt after a blank line: RFC 9309
	// §2.2.1 merges groups that name the same user agent, so it adds
	// the signals without changing what may be crawled.
	RobotsGroup string
}

// RenderSignals renders cs (nil means none) for headers and robots.txt.
func RenderSignals(cs *ContentSignals) Signals {
	if cs == nil {
		return Signals{}
	}
	var s Signals
	s.ContentSignal = joinSet(
		term("ai-train", cs.AITrain, "yes", "no"),
		term("search", cs.Search, "yes", "no"),
		term("ai-input", cs.AIInput, "yes", "no"),
	)
	s.ContentUsage = joinSet(
		term("train-ai", cs.AITrain, "y", "n"),
		term("ai-use", cs.AIInput, "y", "n"),
		term("search", cs.Search, "y", "n"),
	)
	// attribution_required has no term in either vocabulary.
	if s.ContentSignal == "" {
		return s
	}
	s.RobotsRules = "Content-Signal: " + s.ContentSignal + "\nContent-Usage: / " + s.ContentUsage + "\n"
	s.RobotsGroup = "# Content signals from this site's AHP manifest (" + WellKnownPath + ")\nUser-agent: *\n" + s.RobotsRules
	return s
}

// term is "key=yes" or "key=no" for a set signal, "" for an unset one.
func term(key string, v *bool, yes, no string) string {
	switch {
	case v == nil:
		return ""
	case *v:
		return key + "=" + yes
	default:
		return key + "=" + no
	}
}

// joinSet joins the non-empty members with ", ".
func joinSet(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p)
	}
	return b.String()
}
