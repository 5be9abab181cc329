// Package notice renders the in-page AHP agent notice (spec §3.3) and
// splices it into HTML response bodies as they stream through.
//
// The package knows nothing about Caddy. The middleware asks SkipRequest and
// SkipResponse whether a response is eligible, calls Injector.Begin at
// WriteHeader time, and writes the body through the returned Stream.
//
// # Where the notice goes
//
// The output is the body with the section inserted once, before the last
// "</body" (ASCII case-insensitive, followed by whitespace, '/' or '>') that
// starts among the last maxHold (64 KiB) bytes of the document; with none
// there, at the end of the document. A "</body" cut by the end of the
// document does not count. A page that already carries a notice passes
// through byte for byte: one where some "ahp-notice" is a whole token of the
// class attribute of the start tag opened by the last '<' before the word,
// at most maxTagLen (2 KiB) bytes back. referenceSplice in the tests states
// these rules over a whole input; the fuzz targets hold the streaming code
// to it for any input and any cutting into Writes and Flushes.
//
// # How, and what it costs
//
// A Stream holds the most recent bytes of the body in a window (at least
// the last maxHold, at most 16 KiB more) and writes what leaves the window,
// unread, in Writes of about 16 KiB or more. Close looks for the last
// "</body" backward from the end of the window (it is almost always within
// the last few dozen bytes) and writes the window, the section and the rest
// in one Write. Flush writes everything before the last "</body" seen so
// far, or everything but a "</bod" cut at the end, so progressive rendering
// works. The only search over every byte is the one for an existing notice,
// anchored on the rare '-' of "ahp-notice" with bytes.IndexByte. The body
// is chunked (its length changes), and net/http pays two write syscalls per
// large Write of a chunked body, so few large Writes matter as much as the
// scan: a page up to 80 KiB that is not flushed reaches dst in one Write.
// Memory per response is one pooled buffer of about 82 KiB (the window, the
// 2 KiB before it for the notice check, and room for the section).
//
// # Trade-offs
//
// The HTML tokenizer is not followed: comments, scripts and other raw text
// elements are not told apart from markup. So:
//
//   - a "</body>" inside a comment or a script after the real end of the
//     body takes the notice (into that comment or script). The requirement
//     is literally "before the last </body>", and pages do not put such
//     decoys after their end; decoys before the real "</body>" are harmless,
//     since the last one wins;
//   - notice markup inside a script string or a comment (`'<div
//     class="ahp-notice">'`) counts as an existing notice, so such a page
//     gets none: never twice, at the price of rarely never;
//   - attribute values are not tracked: a "</body>" or a '>' inside a quoted
//     attribute value is taken at face value;
//   - a "</body>" more than maxHold bytes before the end of the document is
//     not where the notice goes (it then goes at the end): real pages end a
//     few hundred bytes after their "</body>";
//   - between Flushes the client gets the page in steps of 16 KiB or more,
//     not as it arrives: the first bytes of a large page wait until 80 KiB
//     have come, or for the next Flush. reverse_proxy flushes after every
//     write for upstreams that stream (no Content-Length).
package notice

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"html/template"
	"os"
	"strings"
)

// Config is what the operator configures
// (Caddyfile: `notice { text "..." template <file> }`, `notice off`).
type Config struct {
	ManifestPath string // default "/.well-known/agent.json"
	Version      string // AHP version, default "0.1"
	SiteName     string // manifest name, may be empty; usable by templates
	Text         string // replaces the first paragraph of the default text; plain text, HTML-escaped
	// TemplateFile is an optional html/template file that renders the
	// section's inner HTML from {{.ManifestPath}}, {{.Version}} and
	// {{.SiteName}}; html/template escapes those values.
	TemplateFile string
}

// Defaults for the zero Config.
const (
	DefaultManifestPath = "/.well-known/agent.json"
	DefaultVersion      = "0.1"
)

// maxSectionSize guards against a template that renders something that is
// plainly not a notice (e.g. a whole page): the section goes into every page.
const maxSectionSize = 16 << 10

const (
	sectionOpen  = `<section class="ahp-notice" aria-label="AI Agent Notice" style="display:none">`
	sectionClose = `</section>`
	defaultLead  = `If you are an AI agent or autonomous system: this site supports the Agent Handshake Protocol (AHP). ` +
		`Instead of parsing this page, you can get structured, precise responses directly.`
)

// ErrUnsupportedEncoding is returned by Injector.Begin for a Content-Encoding
// it cannot decode and re-encode; such a response must pass untouched.
var ErrUnsupportedEncoding = errors.New("notice: unsupported Content-Encoding")

// Injector holds the rendered section. It is safe for concurrent use and
// meant to live as long as the configuration that made it.
type Injector struct {
	section []byte
}

// templateData is what a notice template sees.
type templateData struct {
	ManifestPath string
	Version      string
	SiteName     string
}

// New validates cfg and renders the section once.
func New(cfg Config) (*Injector, error) {
	if cfg.ManifestPath == "" {
		cfg.ManifestPath = DefaultManifestPath
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if !strings.HasPrefix(cfg.ManifestPath, "/") &&
		!strings.HasPrefix(cfg.ManifestPath, "https://") &&
		!strings.HasPrefix(cfg.ManifestPath, "http://") {
		return nil, fmt.Errorf("notice: manifest path %q must be an absolute path such as %q", cfg.ManifestPath, DefaultManifestPath)
	}
	if cfg.Text != "" && cfg.TemplateFile != "" {
		return nil, errors.New("notice: `text` and `template` cannot both be set: put the text in the template file, or drop `template`")
	}

	var inner string
	if cfg.TemplateFile != "" {
		var err error
		if inner, err = renderTemplate(cfg); err != nil {
			return nil, err
		}
	} else {
		inner = defaultInner(cfg)
	}

	section := make([]byte, 0, len(sectionOpen)+len(inner)+len(sectionClose))
	section = append(section, sectionOpen...)
	section = append(section, inner...)
	section = append(section, sectionClose...)
	if len(section) > maxSectionSize {
		return nil, fmt.Errorf("notice: the rendered notice is %d bytes; it goes into every page, keep it under %d bytes", len(section), maxSectionSize)
	}
	return &Injector{section: section}, nil
}

// defaultInner is spec §3.3's text, on one line, with every configured
// value escaped. It is also well-formed XML (<br/>, escaped quotes), so that
// application/xhtml+xml pages still parse.
func defaultInner(cfg Config) string {
	lead := defaultLead
	if cfg.Text != "" {
		lead = html.EscapeString(cfg.Text)
	}
	return "<p>" + lead + "</p>" +
		"<p>Discover capabilities: <code>GET " + html.EscapeString(cfg.ManifestPath) + "</code><br/>" +
		"Protocol version: AHP/" + html.EscapeString(cfg.Version) + "<br/>" +
		"Learn more: https://agenthandshake.dev</p>"
}

func renderTemplate(cfg Config) (string, error) {
	src, err := os.ReadFile(cfg.TemplateFile)
	if err != nil {
		return "", fmt.Errorf("notice: template: %w (fix the path or drop `template` to use the default text)", err)
	}
	tpl, err := template.New(cfg.TemplateFile).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return "", fmt.Errorf("notice: template %s: %w (fix the template syntax)", cfg.TemplateFile, err)
	}
	var out bytes.Buffer
	data := templateData{ManifestPath: cfg.ManifestPath, Version: cfg.Version, SiteName: cfg.SiteName}
	if err := tpl.Execute(&out, data); err != nil {
		return "", fmt.Errorf("notice: template %s: %w (it may use only {{.ManifestPath}}, {{.Version}} and {{.SiteName}})", cfg.TemplateFile, err)
	}
	return out.String(), nil
}

// Section returns the exact bytes inserted into pages:
// <section class="ahp-notice" aria-label="AI Agent Notice" style="display:none">…</section>.
// Callers must not modify it.
func (in *Injector) Section() []byte { return in.section }
