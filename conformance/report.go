package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// WriteJSON writes the report in the documented format (ReportSchema).
func WriteJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(rep)
}

// ANSI colours for WriteText on a terminal.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
)

// WriteText writes the report as a table: one line per check (status,
// level, id, what it saw), the fix under each failure, and a summary.
// color adds ANSI colours (for a terminal).
func WriteText(w io.Writer, rep *Report, color bool) error {
	paint := func(code, s string) string {
		if !color || code == "" {
			return s
		}
		return code + s + ansiReset
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s — %s (%d requests, %.1fs)\n", rep.Tool.Name, rep.Tool.Version, rep.Target, rep.Requests, float64(rep.DurationMS)/1000)
	if rep.Insecure {
		b.WriteString(paint(ansiRed+ansiBold, InsecureWarning) + "\n")
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "%s %s\n", paint(ansiBold, "note:"), oneLine(n))
	}
	b.WriteByte('\n')
	idWidth := 0
	for _, res := range rep.Results {
		if n := utf8.RuneCountInString(label(res)); n > idWidth {
			idWidth = min(n, maxLabelWidth)
		}
	}
	group := ""
	for _, res := range rep.Results {
		if res.Group != group {
			if group != "" {
				b.WriteByte('\n')
			}
			group = res.Group
		}
		status, code := "PASS", ansiGreen
		switch {
		case res.Status == Skip:
			status, code = "SKIP", ansiDim
		case res.Status == Fail && res.Level == Must:
			status, code = "FAIL", ansiRed
		case res.Status == Fail:
			status, code = "WARN", ansiYellow
		}
		fmt.Fprintf(&b, "%s  %-6s  %-*s  %s\n", paint(code, status), res.Level, idWidth, label(res), oneLine(res.Saw))
		if res.Status == Fail {
			indent := strings.Repeat(" ", 4+2+6+2)
			fmt.Fprintf(&b, "%s%s %s\n", indent, paint(ansiBold, "fix:"), oneLine(res.Fix))
			fmt.Fprintf(&b, "%s%s\n", indent, paint(ansiDim, res.Spec+" · "+res.Title))
		}
	}
	s := rep.Summary
	verdict := paint(ansiGreen+ansiBold, "PASS: every MUST holds")
	switch rep.Verdict {
	case VerdictFail:
		verdict = paint(ansiRed+ansiBold, fmt.Sprintf("FAIL: %d MUST check(s) failed", s.FailedMust))
	case VerdictInconclusive:
		verdict = paint(ansiYellow+ansiBold, fmt.Sprintf("INCONCLUSIVE: %d MUST check(s) could not be checked (rate limited, out of budget, no answer or no manifest: see their SKIP lines)", s.UncheckedMust))
	}
	fmt.Fprintf(&b, "\n%d passed, %d failed (%d MUST, %d SHOULD), %d skipped. %s\n", s.Passed, s.Failed, s.FailedMust, s.FailedShould, s.Skipped, verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

// InsecureWarning is the text report's line for a run with --insecure.
const InsecureWarning = "WARNING: --insecure: TLS certificates were NOT verified. Anyone on the path could have answered; this report proves nothing about who served the site."

// maxSubject bounds a result's subject: a capability name, which the
// manifest schema limits to 64 characters; a site's manifest may hold
// anything.
const maxSubject = 64

// maxLabelWidth caps the id column's padding, so that one long label
// cannot widen every line of the report.
const maxLabelWidth = len("discovery.manifest_content_type") + len(" [") + 24 + len("]")

// label is the id column: the check's id and its subject. The subject
// comes from the site's manifest: it is clipped and kept on one line.
func label(res Result) string {
	if res.Subject != "" {
		return res.ID + " [" + oneLine(clip(res.Subject, maxSubject)) + "]"
	}
	return res.ID
}

// oneLine keeps a report line on one line: sites' bodies may hold anything.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0): // no escape sequences from the site on the terminal
			return '�'
		case r == 0x2028 || r == 0x2029 || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069): // line separators, bidi overrides
			return '�'
		}
		return r
	}, s)
	return s
}

// WriteCatalogueJSON lists every check as a JSON array (for --list
// --json): id, group, level, spec, title and, for opt-in checks, opt_in.
func WriteCatalogueJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(Catalogue)
}

// WriteCatalogue lists every check (for --list).
func WriteCatalogue(w io.Writer) error {
	var b strings.Builder
	idWidth := 0
	for _, c := range Catalogue {
		if len(c.ID) > idWidth {
			idWidth = len(c.ID)
		}
	}
	group := ""
	for _, c := range Catalogue {
		if c.Group != group {
			if group != "" {
				b.WriteByte('\n')
			}
			group = c.Group
		}
		opt := ""
		if c.OptIn != "" {
			opt = " (" + c.OptIn + ")"
		}
		fmt.Fprintf(&b, "%-6s  %-*s  %s%s  [%s]\n", c.Level, idWidth, c.ID, c.Title, opt, c.Spec)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// plural is "1 tool", "2 tools", "1 capability", "3 capabilities".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	if strings.HasSuffix(noun, "y") {
		return fmt.Sprintf("%d %sies", n, noun[:len(noun)-1])
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
