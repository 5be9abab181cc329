// Package conformance_test runs `caddy ahp` — the binary built from this
// repository — against a real Caddy with the plugin (every check passes),
// against stand-in sites broken one rule at a time (each reported by its
// own check, with the right level and exit code), and on Caddyfiles
// (manifest) and keys files (key).
package conformance_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/caddy-ahp/caddy-ahp/conformance"
	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

func TestMain(m *testing.M) { os.Exit(caddyproc.Main(m)) }

// ahp runs `caddy ahp args...` in a directory of its own and returns
// stdout and the exit code; stderr is logged.
func ahp(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, stderr, code := ahpIn(t, t.TempDir(), args...)
	if stderr != "" {
		t.Logf("caddy ahp %s: stderr:\n%s", strings.Join(args, " "), stderr)
	}
	return out, code
}

// ahpIn runs `caddy ahp args...` in dir (relative config paths resolve
// there) and returns stdout, stderr and the exit code.
func ahpIn(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(caddyproc.Bin(), append([]string{"ahp"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

var reportSchema = func() *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(conformance.ReportSchema))
	if err != nil {
		panic(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("report.schema.json", doc); err != nil {
		panic(err)
	}
	return c.MustCompile("report.schema.json")
}()

// report validates the --json output against the documented schema and
// decodes it.
func report(t *testing.T, out string) *conformance.Report {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if err := reportSchema.Validate(inst); err != nil {
		t.Fatalf("--json output does not match docs' report.schema.json: %v\n%s", err, out)
	}
	var rep conformance.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	return &rep
}

func failedIDs(rep *conformance.Report) []string {
	var out []string
	for _, r := range rep.Results {
		if r.Status == conformance.Fail {
			out = append(out, r.ID)
		}
	}
	sort.Strings(out)
	return out
}

func describe(rep *conformance.Report) string {
	var b strings.Builder
	conformance.WriteText(&b, rep, false)
	return b.String()
}

// upstreams are the sites behind Caddy: the legacy site (pages, and the
// sandbox backend behind agent_handoff) and the concierge.
type upstreams struct {
	legacy, concierge *httptest.Server
	mu                sync.Mutex
	queries           []map[string]any
	sandboxes         int
	authHeaders       []string
	llms              string // the content document's file
}

func newUpstreams(t *testing.T) *upstreams {
	// Before Caddy starts: a missing content file fails the load.
	u := &upstreams{llms: filepath.Join(t.TempDir(), "llms.txt")}
	writeFile(t, u.llms, "# Conformance Test\n\n> A legacy site behind caddy-ahp.\n")
	u.legacy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/sandboxes":
			io.Copy(io.Discard, r.Body)
			u.mu.Lock()
			u.sandboxes++
			n := u.sandboxes
			u.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"id":"sbx_%d","public_handle":"handle%d","status":"active","expires_at":"2030-01-01T00:00:00Z",`+
				`"agent_token":{"token":"tok-%d","expires_at":"2030-01-01T00:00:00Z","scopes":["sandbox:manage"]},`+
				`"endpoints":{"delete":"/v1/sandboxes/sbx_%d"}}`, n, n, n, n)
		case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/v1/sandboxes/"):
			w.WriteHeader(http.StatusNoContent)
		case r.URL.Path == "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, "<!doctype html><html><head><title>Legacy</title></head><body><h1>Harbor &amp; Pine</h1><p>Furniture.</p></body></html>")
		default:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "<!doctype html><html><head><title>Not found</title></head><body><h1>Not found</h1></body></html>")
		}
	}))
	u.concierge = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var q map[string]any
		json.NewDecoder(r.Body).Decode(&q)
		u.mu.Lock()
		u.queries = append(u.queries, q)
		u.authHeaders = append(u.authHeaders, r.Header.Get("Authorization"))
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"success","session_id":null,"response":{"content_type":"text/answer","answer":"Harbor & Pine sells furniture."},"meta":{"tokens_used":9,"mode":"MODE2"}}`)
	}))
	t.Cleanup(u.legacy.Close)
	t.Cleanup(u.concierge.Close)
	return u
}

func hostport(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// site is the Caddyfile of a site behind every directive of the plugin;
// extra goes into the ahp block.
func (u *upstreams) site(extra string) string {
	return fmt.Sprintf(`http://127.0.0.1:{{PORT}} {
	ahp {
		name "Conformance Test"
		description "A legacy site behind caddy-ahp, checked by caddy ahp check."
		content /llms.txt `+u.llms+`
		converse /agent/converse
		authentication bearer
		content_signals {
			ai_train false
			ai_input true
			search true
		}
		capability site_info {
			mode MODE2
			description "About the site"
			response_types text/answer
		}
		capability book_demo {
			mode MODE3
			action_type action
			description "Book a demo"
			input_schema {{REPO}}/examples/schemas/book_demo.in.json
			output_schema {{REPO}}/examples/schemas/book_demo.out.json
		}
		capability research {
			mode MODE3
			action_type async
			description "Deep research, answered later"
			input_schema {{REPO}}/examples/schemas/book_demo.in.json
			output_schema {{REPO}}/examples/schemas/book_demo.out.json
		}
		async {
			supported true
		}
		mcp /mcp
		openapi /openapi.json
		%s
	}
	handshake_prompt
	agent_handoff {
		provider "Conformance Test"
		difficulty 10
	}
	handle /agent/* {
		reverse_proxy %s
	}
	reverse_proxy %s
}
`, extra, hostport(u.concierge), hostport(u.legacy))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
