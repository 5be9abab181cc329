// Package notice renders the in-page AHP agent notice (spec §3.3) and
// splices it into HTML response bodies as they stream through, with
// package htmlinject, which states where the notice goes, how, at what cost
// and with which trade-offs.
//
// The package knows nothing about Caddy. The middleware asks SkipRequest and
// SkipResponse whether a response is eligible, calls Injector.Begin at
// WriteHeader time, and writes the body through the returned Stream.
//
// A page already carries a notice when some "ahp-notice" is a whole token of
// the class attribute of a start tag (htmlinject's Marker and MarkerAttr);
// such a page passes through byte for byte.
package notice

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/caddy-ahp/caddy-ahp/htmlinject"
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
	// {{.SiteName}}; html/template escapes those values. What it renders
	// must also be well-formed XML (<br/>, &#160;), since the section goes
	// into application/xhtml+xml pages too: New refuses it otherwise.
	TemplateFile string
	// MaxDecoded bounds a compressed page: one that arrives as, or decodes
	// to, more bytes passes through unchanged (htmlinject.Config.MaxDecoded;
	// 0: htmlinject.DefaultMaxDecoded, 8 MiB; negative: compressed pages are
	// left alone).
	MaxDecoded int64
}

// Defaults for the zero Config.
const (
	DefaultManifestPath = "/.well-known/agent.json"
	DefaultVersion      = "0.1"
)

// maxSectionSize guards against a template that renders something that is
// plainly not a notice (e.g. a whole page): the section goes into every page.
const maxSectionSize = htmlinject.MaxSnippet

// noticeClass marks a page that already carries a notice.
const noticeClass = "ahp-notice"

const (
	// hidden keeps it hidden where a CSP forbids inline styles; hidden="" (not
	// a bare attribute) keeps application/xhtml+xml pages well-formed.
	sectionOpen  = `<section class="ahp-notice" aria-label="AI Agent Notice" style="display:none" hidden="">`
	sectionClose = `</section>`
	defaultLead  = `If you are an AI agent or autonomous system: this site supports the Agent Handshake Protocol (AHP). ` +
		`Instead of parsing this page, you can get structured, precise responses directly.`
)

// ErrUnsupportedEncoding is returned by Injector.Begin for a Content-Encoding
// it cannot decode and re-encode; such a response must pass untouched.
var ErrUnsupportedEncoding = htmlinject.ErrUnsupportedEncoding

// Stream splices the notice into one response body: see htmlinject.Stream.
type Stream = htmlinject.Stream

// Injector holds the rendered section. It is safe for concurrent use and
// meant to live as long as the configuration that made it.
type Injector struct {
	section []byte
	in      *htmlinject.Injector
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
	if cfg.TemplateFile != "" {
		// The section goes into application/xhtml+xml pages too, where
		// markup that is fine HTML but not XML (<br>, &nbsp;) turns the
		// whole page into the browser's XML error. Refused at load, where
		// the operator sees it, rather than breaking those pages.
		if err := wellFormedXML(section); err != nil {
			return nil, fmt.Errorf("notice: template %s renders markup that is not well-formed XML (%v), which would break every application/xhtml+xml page: "+
				"close every element (<br/>, not <br>), quote attribute values, and use numeric character references (&#160;, not &nbsp;)", cfg.TemplateFile, err)
		}
	}
	in, err := htmlinject.New(htmlinject.Config{Snippet: section, Marker: noticeClass, MarkerAttr: "class", MaxDecoded: cfg.MaxDecoded})
	if err != nil {
		return nil, fmt.Errorf("notice: %w", err)
	}
	return &Injector{section: section, in: in}, nil
}

// wellFormedXML reports why b is not well-formed XML, if it is not.
func wellFormedXML(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		if _, err := d.Token(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
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
// <section class="ahp-notice" aria-label="AI Agent Notice" style="display:none" hidden="">…</section>.
// Callers must not modify it.
func (in *Injector) Section() []byte { return in.section }

// Begin is called at WriteHeader time for an eligible response, before the
// header is sent. It adjusts h for a modified body and returns the Stream
// that writes it to dst, re-encoded with the response's Content-Encoding.
// For an encoding it cannot handle it returns ErrUnsupportedEncoding and
// leaves h untouched. See htmlinject.Injector.Begin.
func (in *Injector) Begin(dst io.Writer, h http.Header) (*Stream, error) {
	return in.in.Begin(dst, h)
}

// SkipRequest returns why the response to r must pass untouched, or "" when
// it may get the notice: see htmlinject.SkipRequest.
func SkipRequest(r *http.Request) string { return htmlinject.SkipRequest(r) }

// SkipResponse returns why a response with this status and header must pass
// untouched, or "" when it gets the notice: see htmlinject.SkipResponse.
func SkipResponse(status int, h http.Header) string { return htmlinject.SkipResponse(status, h) }
