// Package tests holds the integration tests: a real Caddy binary built from
// this repository, real HTTP upstreams, and (for the limiter and gateway) a
// real redis-server.
package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
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

// caddyBin is the Caddy built from ./cmd/caddy for this test run.
var caddyBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "caddy-ahp-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	caddyBin = filepath.Join(dir, "caddy")
	args := []string{"build", "-o", caddyBin}
	if raceEnabled {
		// The module runs inside this binary, so that is where the race
		// detector has to be.
		args = append(args, "-race")
	}
	args = append(args, "./cmd/caddy")
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building caddy for the integration tests:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "built %s in %s (race=%v)\n", caddyBin, time.Since(start).Round(time.Second), raceEnabled)
	return m.Run()
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// caddyServer is one running Caddy process.
type caddyServer struct {
	t       testing.TB
	cmd     *exec.Cmd
	port    int
	admin   int
	dir     string
	logs    *syncBuffer
	done    chan struct{}
	waitErr error
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// expand fills the placeholders every test Caddyfile may use.
func (s *caddyServer) expand(caddyfile string) string {
	r := strings.NewReplacer(
		"{{PORT}}", fmt.Sprint(s.port),
		"{{ADMIN}}", fmt.Sprint(s.admin),
		"{{REPO}}", repoRoot(),
		"{{DIR}}", s.dir,
	)
	return r.Replace(caddyfile)
}

// startCaddy runs Caddy with a Caddyfile whose site listens on {{PORT}};
// the global options block (admin, no automatic HTTPS) is added here.
func startCaddy(t testing.TB, caddyfile string) *caddyServer {
	t.Helper()
	s := &caddyServer{t: t, port: freePort(t), admin: freePort(t), dir: t.TempDir(), logs: &syncBuffer{}, done: make(chan struct{})}
	full := s.expand("{\n\tadmin localhost:{{ADMIN}}\n\tauto_https off\n\tpersist_config off\n\tgrace_period 1s\n}\n" + caddyfile)
	path := filepath.Join(s.dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(caddyBin, "run", "--config", path, "--adapter", "caddyfile")
	s.cmd.Dir = repoRoot()
	s.cmd.Env = append(os.Environ(), "HOME="+s.dir, "XDG_DATA_HOME="+s.dir, "XDG_CONFIG_HOME="+s.dir)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("caddy logs:\n%s", s.logs.String())
		}
	})
	s.waitReady()
	return s
}

func (s *caddyServer) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			s.t.Fatalf("caddy exited: %v\n%s", s.waitErr, s.logs.String())
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("caddy did not listen on %d in time\n%s", s.port, s.logs.String())
}

func (s *caddyServer) stop() {
	if s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// reload loads a new Caddyfile into the running server through the admin
// API, the way `caddy reload` does.
func (s *caddyServer) reload(caddyfile string) {
	s.t.Helper()
	full := s.expand("{\n\tadmin localhost:{{ADMIN}}\n\tauto_https off\n\tpersist_config off\n\tgrace_period 1s\n}\n" + caddyfile)
	path := filepath.Join(s.dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		s.t.Fatal(err)
	}
	out, err := exec.Command(caddyBin, "reload", "--config", path, "--adapter", "caddyfile", "--address", fmt.Sprintf("localhost:%d", s.admin)).CombinedOutput()
	if err != nil {
		s.t.Fatalf("caddy reload: %v\n%s", err, out)
	}
}

func (s *caddyServer) url(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.port, path)
}

// client never follows redirects: tests look at them.
var client = &http.Client{
	Timeout:       20 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
}

type response struct {
	*http.Response
	body []byte
}

func (s *caddyServer) do(method, path string, body io.Reader, headers ...string) response {
	s.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, s.url(path), body)
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
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{resp, b}
}

func (s *caddyServer) get(path string, headers ...string) response {
	s.t.Helper()
	return s.do(http.MethodGet, path, nil, headers...)
}

// caddyCmd runs the built caddy binary with args and returns its output.
func caddyCmd(t testing.TB, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(caddyBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startExample runs Caddyfile.example exactly as the README does (from the
// repository root, on its fixed ports).
func startExample(t testing.TB) *exec.Cmd {
	t.Helper()
	logs := &syncBuffer{}
	cmd := exec.Command(caddyBin, "run", "--config", "Caddyfile.example", "--adapter", "caddyfile")
	cmd.Dir = repoRoot()
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("example logs:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:8080", 100*time.Millisecond); err == nil {
			c.Close()
			return cmd
		}
		select {
		case <-done:
			t.Fatalf("example exited:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("example did not listen on 8080:\n%s", logs.String())
	return nil
}

func readAll(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
