// Package tests holds the integration tests: a real Caddy binary built from
// this repository, real HTTP upstreams, and (for the limiter and gateway) a
// real redis-server.
package tests

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/internal/caddyproc"
)

func TestMain(m *testing.M) { os.Exit(caddyproc.Main(m)) }

const raceEnabled = caddyproc.Race

var client = caddyproc.Client

func repoRoot() string          { return caddyproc.RepoRoot() }
func freePort(t testing.TB) int { return caddyproc.FreePort(t) }
func caddyBinary() string       { return caddyproc.Bin() }

// caddyServer is one running Caddy process (see package caddyproc).
type caddyServer struct {
	*caddyproc.Server
	port, admin int
	dir         string
	logs        *caddyproc.Logs
	cmd         *exec.Cmd
}

// startCaddy runs Caddy with a Caddyfile whose site listens on {{PORT}};
// the global options block (admin, no automatic HTTPS) is added for it.
func startCaddy(t testing.TB, caddyfile string) *caddyServer {
	t.Helper()
	p := caddyproc.Start(t, caddyfile)
	return &caddyServer{Server: p, port: p.Port, admin: p.Admin, dir: p.Dir, logs: p.Logs, cmd: p.Cmd}
}

// startCaddyGlobals is startCaddy with more global options (such as an
// `order` line).
func startCaddyGlobals(t testing.TB, globals, caddyfile string) *caddyServer {
	t.Helper()
	p := caddyproc.StartFull(t, "{\n\tadmin localhost:{{ADMIN}}\n\tauto_https off\n\tpersist_config off\n\tgrace_period 1s\n\t"+globals+"\n}\n"+caddyfile)
	return &caddyServer{Server: p, port: p.Port, admin: p.Admin, dir: p.Dir, logs: p.Logs, cmd: p.Cmd}
}

type response struct {
	*http.Response
	body []byte
}

func (s *caddyServer) do(method, path string, body io.Reader, headers ...string) response {
	s.T().Helper()
	r := s.Do(method, path, body, headers...)
	return response{r.Response, r.Bytes}
}

func (s *caddyServer) get(path string, headers ...string) response {
	s.T().Helper()
	return s.do(http.MethodGet, path, nil, headers...)
}

func (s *caddyServer) url(path string) string  { return s.URL(path) }
func (s *caddyServer) reload(caddyfile string) { s.Reload(caddyfile) }
func (s *caddyServer) stop()                   { s.Stop() }

// caddyCmd runs the built caddy binary with args and returns its output.
func caddyCmd(t testing.TB, dir string, args ...string) (string, error) {
	t.Helper()
	return caddyproc.Cmd(t, dir, args...)
}

type syncBuffer = caddyproc.Logs

// startExample runs Caddyfile.example exactly as the README does (from the
// repository root, on its fixed ports).
func startExample(t testing.TB) *exec.Cmd {
	t.Helper()
	logs := &syncBuffer{}
	cmd := exec.Command(caddyBinary(), "run", "--config", "Caddyfile.example", "--adapter", "caddyfile")
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
