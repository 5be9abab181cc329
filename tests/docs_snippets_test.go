package tests

// The ```caddyfile blocks of README.md and docs/*.md are what operators
// paste. TestDocsCaddyfileSnippets keeps each one honest with the Caddy
// built from this repository: it must be exactly what `caddy fmt` prints
// (Caddy warns "Caddyfile input is not formatted" otherwise), and it must
// pass `caddy validate` (adapt, then provision every module, without
// serving), whole or in the site it belongs to.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docSnippet is one ```caddyfile block of a Markdown file.
type docSnippet struct {
	file string // relative to the repository root
	line int    // the line of its opening fence
	text string // the block's lines without the fences (and without the fence's indentation), each ending in "\n"
}

func (s docSnippet) String() string { return fmt.Sprintf("%s:%d", s.file, s.line) }

// docsSnippetFiles are the files the snippets name, created in the
// directory each snippet is validated from (provisioning reads them). A
// relative path is created there; an absolute one is created under that
// directory and the snippet's text is pointed at it (validate would
// otherwise read the real /etc/caddy or create /var/log/caddy). Every
// entry must still be named by some snippet.
var docsSnippetFiles = []struct {
	path    string
	content string // "repo:<path>": that file of the repository
}{
	{"./agent.json", `{"name": "Example Site"}`},                                 // README: ahp { manifest ./agent.json }
	{"./schemas/book_demo.in.json", "repo:examples/schemas/book_demo.in.json"},   // README: input_schema
	{"./schemas/book_demo.out.json", "repo:examples/schemas/book_demo.out.json"}, // README: output_schema
	{"/etc/caddy/ahp-keys", "partner: docs-snippet-test-key-0123456789\n"},       // README: auth { keys_file }
	{"/var/log/caddy/access.log", ""},                                            // README: log { output file } (validate opens it)
}

// docsSnippetExceptions are the snippets that cannot pass `caddy validate`
// here, each with its reason and the error validate must give: when it
// validates, or fails for another reason, the test fails, so an entry
// cannot outlive its reason. They are still checked against `caddy fmt`.
// A snippet is named by its file and its first line (not its line number,
// which moves whenever the text above it changes).
var docsSnippetExceptions = []struct {
	file, first string
	reason      string
	wantErr     string // in validate's output
}{
	{
		"docs/handshake-prompt.md", "handshake_prompt [<matcher>] {",
		"the directive's syntax, with <placeholders> for the values, not a configuration",
		`takes no arguments on its own line (got \"[<matcher>]\")`,
	},
	{
		"README.md", "shop.example.com {",
		"the troubleshooting section's example of the mistake: `markdown` outside `ahp { }`",
		"unrecognized directive: markdown",
	},
	{
		"docs/deployment.md", "trusted_proxies cloudflare {",
		"the cloudflare IP source is a separate plugin (github.com/WeidiDeng/caddy-cloudflare-ip, built in with ./xcaddy.sh --with, as the text says) that this build does not include",
		"module not registered: http.ip_sources.cloudflare",
	},
}

// ahpOptions are the options of the `ahp` block (caddymodule/caddyfile.go):
// a fragment that starts with one goes inside an `ahp` block.
var ahpOptions = []string{
	"manifest", "name", "description", "modes", "content", "converse", "authentication",
	"content_signals", "capability", "async", "link", "discovery", "cache_control", "notice",
	"rate_limit", "body_limit", "max_tokens", "session", "auth", "echo_signals", "cors",
	"concierge_timeout", "mcp", "openapi", "concierge", "markdown", "verified_agents", "robots",
}

// serversOptions are Caddy's `servers` global options: a fragment that
// starts with one goes inside `{ servers { } }`.
var serversOptions = []string{
	"trusted_proxies", "trusted_proxies_strict", "client_ip_headers", "listener_wrappers",
	"timeouts", "max_header_size", "keepalive_interval", "protocols", "strict_sni_host", "log_credentials",
}

// TestDocsCaddyfileSnippets checks every ```caddyfile block of README.md
// and docs/*.md:
//
//   - fmt: the block is byte for byte what `caddy fmt` prints for it;
//   - validate: `caddy validate` accepts it, without errors or adapter
//     warnings (other than "not formatted", which the fmt check reports).
//
// What is validated:
//
//   - A complete Caddyfile (its first line is a global options block `{`,
//     or starts with a site address: a word holding a '.' or ':', such as
//     example.com, *.example.net, :8080, http://…) is validated as it is.
//   - A fragment is put where the docs put it: in the site block
//     `example.com { }`; inside `ahp { … }` in that site when its first word
//     is an option of the ahp block (rate_limit, mcp …); inside
//     `{ servers { } }` when it is a servers global option
//     (trusted_proxies …).
//   - `...` and `…` stand for what a snippet leaves out. A line of its own
//     directly inside an `ahp` block becomes the one option ahp requires
//     (`content_signals { ai_input true }`); anywhere else the word is
//     dropped (`trusted_proxies static 173.245.48.0/20 …` is validated
//     with the ranges it does name). So a snippet may leave out only what
//     the lines it shows do not depend on: a `verified` rate-limit tier
//     shows its `verified_agents`, `concierge builtin` its converse
//     endpoint and MODE2 capability.
//   - Snippets run from a temporary directory holding docsSnippetFiles;
//     docsSnippetExceptions lists the few that cannot validate here.
//
// Redis: `caddy validate` passes without a Redis. The rate limiter's,
// handoff's and verified_agents' clients connect lazily, but
// handshake_prompt's Redis store subscribes to its channel while it is
// provisioned, in validate too (handshake.NewRedisStore: it waits up to 1s
// for the confirmation, then retries in the background until Cleanup), so
// validating handshake-prompt.md's Redis snippet tries redis:6379 and
// carries on when nothing answers.
func TestDocsCaddyfileSnippets(t *testing.T) {
	snippets := docsCaddyfileSnippets(t)
	// A broken extraction must not pass by checking nothing.
	if len(snippets) < 20 {
		t.Fatalf("found %d ```caddyfile blocks in README.md and docs/*.md, want at least 20: %v", len(snippets), snippets)
	}

	// The tables must not rot: each entry names a snippet of today.
	for _, f := range docsSnippetFiles {
		if !slices.ContainsFunc(snippets, func(s docSnippet) bool { return strings.Contains(s.text, f.path) }) {
			t.Errorf("docsSnippetFiles: no snippet names %s any more; remove it", f.path)
		}
	}
	for _, e := range docsSnippetExceptions {
		n := 0
		for _, s := range snippets {
			if s.file == e.file && firstLine(s.text) == e.first {
				n++
			}
		}
		switch {
		case n == 0:
			t.Errorf("docsSnippetExceptions: no snippet of %s starts with %q any more; remove the entry", e.file, e.first)
		case n > 1:
			t.Errorf("docsSnippetExceptions: %d snippets of %s start with %q; an exception must name one", n, e.file, e.first)
		}
	}

	for _, s := range snippets {
		t.Run(strings.ReplaceAll(s.String(), "/", "_"), func(t *testing.T) {
			t.Parallel()
			t.Run("fmt", func(t *testing.T) { checkSnippetFormatted(t, s) })
			t.Run("validate", func(t *testing.T) { checkSnippetValidates(t, s) })
		})
	}
}

// docsCaddyfileSnippets reads README.md and docs/*.md and returns their
// ```caddyfile blocks in order. A fence spelled otherwise for a Caddyfile
// (```Caddyfile, ```caddy) fails the test, since it would escape it.
func docsCaddyfileSnippets(t *testing.T) []docSnippet {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(repoRoot(), "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"README.md"}
	for _, d := range docs {
		files = append(files, filepath.ToSlash(filepath.Join("docs", filepath.Base(d))))
	}
	var all []docSnippet
	for _, f := range files {
		all = append(all, markdownCaddyfileBlocks(t, f)...)
	}
	return all
}

var fenceOpen = regexp.MustCompile("^( *)(`{3,}|~{3,})[ \t]*([^ \t`]*)")

// markdownCaddyfileBlocks is the ```caddyfile blocks of one Markdown file
// (fences of ``` or ~~~, indented or not (in a list item), closed by a
// fence of the same character at least as long).
func markdownCaddyfileBlocks(t *testing.T, rel string) []docSnippet {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), rel))
	if err != nil {
		t.Fatal(err)
	}
	var (
		blocks []docSnippet
		open   []string // the open fence's submatches; nil outside a block
		cur    *docSnippet
		sc     = bufio.NewScanner(bytes.NewReader(b))
		n      int
	)
	for sc.Scan() {
		n++
		line := sc.Text()
		if open == nil {
			m := fenceOpen.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			open = m
			info := strings.ToLower(m[3])
			if info == "caddyfile" && m[3] != "caddyfile" || info == "caddy" {
				t.Errorf("%s:%d: write the fence as ```caddyfile, not ```%s, so that TestDocsCaddyfileSnippets checks it", rel, n, m[3])
			}
			if m[3] == "caddyfile" {
				cur = &docSnippet{file: rel, line: n}
			}
			continue
		}
		if c := strings.TrimSpace(line); len(c) >= len(open[2]) && strings.Trim(c, open[2][:1]) == "" {
			if cur != nil {
				blocks = append(blocks, *cur)
			}
			open, cur = nil, nil
			continue
		}
		if cur != nil {
			// Content lines lose up to the fence's own indentation.
			for i := 0; i < len(open[1]) && strings.HasPrefix(line, " "); i++ {
				line = line[1:]
			}
			cur.text += line + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Errorf("%s:%d: ```caddyfile block is never closed", rel, cur.line)
	}
	// Every fence that says caddyfile must have been read as one.
	if n := bytes.Count(b, []byte("```caddyfile")) + bytes.Count(b, []byte("~~~caddyfile")); n != len(blocks) {
		t.Errorf("%s: %d fences say caddyfile, but %d ```caddyfile blocks were read: the extraction missed some", rel, n, len(blocks))
	}
	return blocks
}

// firstLine is a snippet's first line that is neither blank nor a comment.
func firstLine(text string) string {
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	return ""
}

// snippetCaddy runs the built caddy binary in dir, as caddyCmd does, with
// its output and errors apart (caddy fmt prints its result to stdout). A
// binary built with -race sleeps a second before it exits, to let other
// goroutines report races (GORACE atexit_sleep_ms): these short runs skip
// that sleep, which is most of their time; a race is still reported, and
// fails the run (exit status 66).
func snippetCaddy(dir string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(caddyBinary(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir,
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// checkSnippetFormatted runs `caddy fmt` on the snippet and compares.
func checkSnippetFormatted(t *testing.T, s docSnippet) {
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(s.text), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := snippetCaddy(dir, "fmt", path)
	// caddy fmt prints the formatted text, and exits 1 when it differs from
	// the input.
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1 && strings.Contains(stderr, "not formatted")) {
		t.Fatalf("%s: caddy fmt: %v\n%s", s, err, stderr)
	}
	if out == s.text {
		if err != nil {
			t.Fatalf("%s: caddy fmt printed the block unchanged but says it is not formatted:\n%s", s, stderr)
		}
		return
	}
	t.Errorf("%s: not what `caddy fmt` prints (Caddy warns \"Caddyfile input is not formatted\"); replace the block with caddy fmt's output:\n%s",
		s, lineDiff(strings.Split(strings.TrimSuffix(s.text, "\n"), "\n"), strings.Split(strings.TrimSuffix(out, "\n"), "\n"), s.line+1))
}

// lineDiff is a short diff of the block (want: its lines, the first at
// line first of its file) against caddy fmt's output: "-" lines are the
// document's (with their line numbers), "+" lines caddy fmt's.
func lineDiff(doc, fmted []string, first int) string {
	// Longest common subsequence, by dynamic programming (blocks are short).
	lcs := make([][]int, len(doc)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(fmted)+1)
	}
	for i := len(doc) - 1; i >= 0; i-- {
		for j := len(fmted) - 1; j >= 0; j-- {
			if doc[i] == fmted[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	shown, more := 0, 0
	emit := func(format string, args ...any) {
		if shown >= 16 {
			more++
			return
		}
		shown++
		fmt.Fprintf(&b, format, args...)
	}
	// Each change: the document's lines, then caddy fmt's.
	for i, j := 0, 0; i < len(doc) || j < len(fmted); {
		if i < len(doc) && j < len(fmted) && doc[i] == fmted[j] {
			i, j = i+1, j+1
			continue
		}
		i0, j0 := i, j
		for i < len(doc) || j < len(fmted) {
			if i < len(doc) && j < len(fmted) && doc[i] == fmted[j] {
				break
			}
			if j < len(fmted) && (i == len(doc) || lcs[i][j+1] >= lcs[i+1][j]) {
				j++
			} else {
				i++
			}
		}
		for k := i0; k < i; k++ {
			emit("  -%5d %q\n", first+k, doc[k])
		}
		for k := j0; k < j; k++ {
			emit("  +      %q\n", fmted[k])
		}
	}
	if more > 0 {
		fmt.Fprintf(&b, "  … %d more changed lines\n", more)
	}
	return b.String()
}

// checkSnippetValidates runs `caddy validate` on the snippet as
// TestDocsCaddyfileSnippets describes.
func checkSnippetValidates(t *testing.T, s docSnippet) {
	dir := t.TempDir()
	text := snippetCaddyfile(s.text)
	for _, f := range docsSnippetFiles {
		content := f.content
		if repoFile, ok := strings.CutPrefix(content, "repo:"); ok {
			b, err := os.ReadFile(filepath.Join(repoRoot(), repoFile))
			if err != nil {
				t.Fatal(err)
			}
			content = string(b)
		}
		at := filepath.Join(dir, f.path)
		if filepath.IsAbs(f.path) {
			text = strings.ReplaceAll(text, f.path, at)
		}
		if err := os.MkdirAll(filepath.Dir(at), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(at, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := snippetCaddy(dir, "validate", "--adapter", "caddyfile", "--config", path)
	// Caddy's informational lines say nothing about the snippet.
	var kept []string
	for _, l := range strings.Split(stdout+stderr, "\n") {
		if !strings.Contains(l, `"level":"info"`) {
			kept = append(kept, l)
		}
	}
	out := strings.Join(kept, "\n")

	for _, e := range docsSnippetExceptions {
		if e.file != s.file || e.first != firstLine(s.text) {
			continue
		}
		switch {
		case err == nil:
			t.Fatalf("%s: listed in docsSnippetExceptions (%s), but it validates now: remove the entry", s, e.reason)
		case !strings.Contains(out, e.wantErr):
			t.Fatalf("%s: listed in docsSnippetExceptions (%s) with an error naming %q, but validate failed otherwise:\n%s\nvalidated:\n%s", s, e.reason, e.wantErr, out, text)
		}
		t.Logf("%s: not validated: %s", s, e.reason)
		return
	}

	if err != nil || !strings.Contains(out, "Valid configuration") {
		t.Fatalf("%s: caddy validate: %v\n%s\nvalidated:\n%s", s, err, out, text)
	}
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(l, `"level":"warn"`) && strings.Contains(l, "not formatted"):
			// The fmt check reports it, with a diff.
		case strings.Contains(l, `"level":"error"`),
			strings.Contains(l, `"level":"warn"`) && strings.Contains(l, `"adapter":"caddyfile"`):
			t.Errorf("%s: caddy validate: %s\nvalidated:\n%s", s, l, text)
		case strings.Contains(l, `"level":"warn"`):
			t.Logf("%s: caddy validate (a module's warning): %s", s, l)
		}
	}
}

// snippetCaddyfile is the Caddyfile validated for a snippet: the snippet,
// wrapped when it is a fragment, with its elisions filled in.
func snippetCaddyfile(snippet string) string {
	first := firstLine(snippet)
	word, _, _ := strings.Cut(first, " ")
	switch {
	case first == "{" || strings.ContainsAny(word, ".:"):
		// complete
	case slices.Contains(ahpOptions, word):
		snippet = "example.com {\n\tahp {\n\t\t...\n" + indent(snippet, 2) + "\t}\n}\n"
	case slices.Contains(serversOptions, word):
		snippet = "{\n\tservers {\n" + indent(snippet, 2) + "\t}\n}\n"
	default:
		snippet = "example.com {\n" + indent(snippet, 1) + "}\n"
	}
	return fillElisions(snippet)
}

func indent(text string, tabs int) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(text, "\n") {
		if strings.TrimSpace(l) != "" {
			b.WriteString(strings.Repeat("\t", tabs))
		}
		b.WriteString(l)
	}
	return b.String()
}

// caddyfileCode is a line without its comment: a '#' that starts a word
// outside quotes starts one, as in Caddy's lexer.
func caddyfileCode(line string) string {
	quoted := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == '#' && !quoted && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[:i]
		}
	}
	return line
}

func isElision(word string) bool { return word == "..." || word == "…" }

// fillElisions replaces `...` and `…` (see TestDocsCaddyfileSnippets).
func fillElisions(text string) string {
	var (
		b      strings.Builder
		blocks []string // the first word of each open block's line
	)
	for _, l := range strings.SplitAfter(text, "\n") {
		words := strings.Fields(caddyfileCode(l))
		if len(words) == 1 && isElision(words[0]) {
			if len(blocks) > 0 && blocks[len(blocks)-1] == "ahp" {
				in := l[:len(l)-len(strings.TrimLeft(l, "\t "))]
				b.WriteString(in + "content_signals {\n" + in + "\tai_input true\n" + in + "}\n")
			}
			continue
		}
		if slices.ContainsFunc(words, isElision) {
			in := l[:len(l)-len(strings.TrimLeft(l, "\t "))]
			words = slices.DeleteFunc(words, isElision)
			l = in + strings.Join(words, " ") + "\n"
		}
		switch {
		case len(words) > 0 && words[len(words)-1] == "{":
			blocks = append(blocks, words[0])
		case len(words) == 1 && words[0] == "}" && len(blocks) > 0:
			blocks = blocks[:len(blocks)-1]
		}
		b.WriteString(l)
	}
	return b.String()
}
