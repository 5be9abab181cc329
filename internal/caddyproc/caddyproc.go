// Package caddyproc runs real Caddy processes for integration tests: a
// binary built once per test binary from ./cmd/caddy (with -race when the
// tests run with it, since the module runs inside that binary), started
// with a Caddyfile on free loopback ports, reloaded through its admin API,
// and stopped when the test ends.
//
// Each integration test package calls Main from its TestMain. Go's build
// cache makes the second package's build a link step, so protocols keep
// their integration tests in packages of their own (tests/, tests/handoff
// …) without paying for a full build each.
package caddyproc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var bin string

// Bin is the Caddy binary built for this test run.
func Bin() string { return bin }

// Main builds Caddy, then runs the tests; use it as
// `func TestMain(m *testing.M) { os.Exit(caddyproc.Main(m)) }`.
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "caddy-ahp-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "caddy")
	args := []string{"build", "-o", bin}
	if Race {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/caddy")
	cmd := exec.Command("go", args...)
	cmd.Dir = RepoRoot()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building caddy for the integration tests:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "built %s in %s (race=%v)\n", bin, time.Since(start).Round(time.Second), Race)
	return m.Run()
}

// RepoRoot is the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// FreePort returns a TCP port that was free a moment ago, on every
// address (Caddy binds the wildcard address).
//
// It is drawn at random below the kernel's ephemeral range (32768 and up
// on Linux) rather than taken from bind(":0"): Caddy listens with
// SO_REUSEPORT, so two test processes (packages run in parallel) that
// were each handed the same just-freed ephemeral port would both bind it,
// and the kernel would share the connections between two unrelated
// Caddies. Ports the kernel hands other processes' test servers never fall
// in this range, and one a running Caddy holds fails the bind check here
// (this socket has no SO_REUSEPORT).
func FreePort(t testing.TB) int {
	t.Helper()
	for range 1000 {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("caddyproc: no free port in 20000-31999")
	return 0
}

// Logs collects a process's output; safe for concurrent use.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Logs) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Logs) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Server is one running Caddy process.
type Server struct {
	t     testing.TB
	Cmd   *exec.Cmd
	Port  int // the site's port, {{PORT}} in Caddyfiles
	Admin int // the admin API's port, {{ADMIN}}
	Dir   string
	Logs  *Logs

	done    chan struct{}
	waitErr error
}

// Expand fills the placeholders every test Caddyfile may use: {{PORT}},
// {{ADMIN}}, {{REPO}} and {{DIR}} (the server's temporary directory).
func (s *Server) Expand(caddyfile string) string {
	return strings.NewReplacer(
		"{{PORT}}", fmt.Sprint(s.Port),
		"{{ADMIN}}", fmt.Sprint(s.Admin),
		"{{REPO}}", RepoRoot(),
		"{{DIR}}", s.Dir,
	).Replace(caddyfile)
}

const globals = "{\n\tadmin localhost:{{ADMIN}}\n\tauto_https off\n\tpersist_config off\n\tgrace_period 1s\n}\n"

// Start runs Caddy with a Caddyfile whose site listens on {{PORT}}; the
// global options block (admin, no automatic HTTPS) is added here, so the
// Caddyfile must not have one. Use StartFull for one that does.
func Start(t testing.TB, caddyfile string) *Server {
	t.Helper()
	return StartFull(t, globals+caddyfile)
}

// StartFull runs Caddy with a whole Caddyfile, global options included
// (which must set `admin localhost:{{ADMIN}}`).
func StartFull(t testing.TB, caddyfile string) *Server {
	t.Helper()
	s := &Server{t: t, Port: FreePort(t), Admin: FreePort(t), Dir: t.TempDir(), Logs: &Logs{}, done: make(chan struct{})}
	path := filepath.Join(s.Dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(s.Expand(caddyfile)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Cmd = exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	s.Cmd.Dir = RepoRoot()
	s.Cmd.Env = append(os.Environ(), "HOME="+s.Dir, "XDG_DATA_HOME="+s.Dir, "XDG_CONFIG_HOME="+s.Dir)
	s.Cmd.Stdout, s.Cmd.Stderr = s.Logs, s.Logs
	if err := s.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.waitErr = s.Cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("caddy logs:\n%s", s.Logs.String())
		}
	})
	s.waitReady()
	return s
}

func (s *Server) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			s.t.Fatalf("caddy exited: %v\n%s", s.waitErr, s.Logs.String())
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("caddy did not listen on %d in time\n%s", s.Port, s.Logs.String())
}

// Stop ends the process (SIGTERM, then SIGKILL after 10s).
func (s *Server) Stop() {
	if s.Cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.Cmd.Process.Kill()
		<-s.done
	}
}

// Reload loads a new Caddyfile (without global options, as Start) into the
// running server through the admin API, the way `caddy reload` does.
func (s *Server) Reload(caddyfile string) {
	s.t.Helper()
	path := filepath.Join(s.Dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(s.Expand(globals+caddyfile)), 0o600); err != nil {
		s.t.Fatal(err)
	}
	out, err := exec.Command(bin, "reload", "--config", path, "--adapter", "caddyfile", "--address", fmt.Sprintf("localhost:%d", s.Admin)).CombinedOutput()
	if err != nil {
		s.t.Fatalf("caddy reload: %v\n%s", err, out)
	}
}

// URL is the absolute URL of path on the site.
func (s *Server) URL(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.Port, path)
}

// Client never follows redirects (tests look at them) and never
// decompresses.
var Client = &http.Client{
	Timeout:       20 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
}

// Response is an answer with its body read.
type Response struct {
	*http.Response
	Bytes []byte
}

// Do sends a request; headers are name, value pairs ("Host" sets the
// request's Host).
func (s *Server) Do(method, path string, body io.Reader, headers ...string) Response {
	s.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL(path), body)
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := Client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return Response{resp, b}
}

// Get sends a GET.
func (s *Server) Get(path string, headers ...string) Response {
	s.t.Helper()
	return s.Do(http.MethodGet, path, nil, headers...)
}

// Cmd runs the built caddy binary with args in dir and returns its output.
func Cmd(t testing.TB, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// T is the test that started the server.
func (s *Server) T() testing.TB { return s.t }
