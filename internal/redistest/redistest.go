// Package redistest runs real redis-server processes for tests: a single
// server, a three-node Redis Cluster, and a fake server that never answers.
//
// Servers listen on free loopback ports, keep nothing on disk beyond a
// temporary directory, and are killed when the test ends. When redis-server
// is not installed the test is skipped, unless the CI environment variable
// is set, in which case it fails: CI must not pass without the Redis tests.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to accept commands.
const startTimeout = 10 * time.Second

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Addr is the server's "host:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Start starts a redis-server on a free loopback port; it is killed when the
// test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, nil)
}

// RedisServer returns the path of redis-server, skipping t if it is missing
// (failing instead when CI is set).
func RedisServer(t testing.TB) string {
	t.Helper()
	return lookPath(t, "redis-server")
}

func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found but CI is set: the Redis tests must run in CI (apt-get install -y redis-server): %v", name, err)
	}
	t.Skipf("%s not found, skipping (install redis-server to run this test; with CI set it fails instead): %v", name, err)
	return ""
}

func start(t testing.TB, extra []string) *Server {
	t.Helper()
	bin := RedisServer(t)
	cluster := len(extra) > 0
	var lastErr error
	// A free port can be taken between probing it and the server binding
	// it (tests of other packages run at the same time): retry elsewhere.
	for range 5 {
		s := &Server{t: t, bin: bin, dir: t.TempDir(), port: freePort(t, cluster), args: extra}
		if lastErr = s.launch(); lastErr == nil {
			t.Cleanup(s.Kill)
			return s
		}
	}
	t.Fatalf("redistest: %v", lastErr)
	return nil
}

// launch starts the process and waits until it answers PING.
func (s *Server) launch() error {
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--logfile", "redis.log",
		"--daemonize", "no",
	}
	cmd := exec.Command(s.bin, append(args, s.args...)...)
	cmd.Dir = s.dir
	setDeathSignal(cmd) // no orphaned servers if the test binary dies
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server on port %d exited at start (%v); log:\n%s", s.port, err, s.log())
		default:
		}
		if reply, err := s.Command("PING"); err == nil && reply == "+PONG" {
			s.mu.Lock()
			s.cmd = cmd
			s.mu.Unlock()
			go s.reap(cmd, exited)
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on port %d did not answer PING within %s; log:\n%s", s.port, startTimeout, s.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// reap forgets cmd once it exited, so Kill and Stop know it is gone.
func (s *Server) reap(cmd *exec.Cmd, exited chan error) {
	<-exited
	s.mu.Lock()
	if s.cmd == cmd {
		s.cmd = nil
	}
	s.mu.Unlock()
}

func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Kill kills the server with SIGKILL, as a crash would, and waits until its
// port is closed. Killing a stopped server does nothing.
func (s *Server) Kill() { s.halt(os.Kill) }

// Stop shuts the server down with SIGTERM and waits until its port is
// closed.
func (s *Server) Stop() { s.halt(stopSignal) }

func (s *Server) halt(sig os.Signal) {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond)
		if err != nil {
			s.mu.Lock()
			gone := s.cmd != cmd
			s.mu.Unlock()
			if gone {
				return
			}
		} else {
			c.Close()
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.t.Errorf("redistest: redis-server on port %d still running %s after %v", s.port, startTimeout, sig)
}

// Restart starts the server again on the same port, empty, after Stop or
// Kill.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	// The port was ours a moment ago; another process may grab it, but
	// retrying a few times covers a slow release.
	for range 20 {
		if err = s.launch(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart: %v", err)
}

// Command sends one command in RESP and returns the first line of the reply
// (for a bulk string, its payload), so tests need no client to check a
// server.
func (s *Server) Command(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write(b.Bytes()); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "$") {
		return line, nil
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return line, err
	}
	payload := make([]byte, n+2)
	if _, err := io.ReadFull(r, payload); err != nil {
		return "", err
	}
	return string(payload[:n]), nil
}

// freePort returns a loopback port that is free now; for a cluster node the
// cluster bus port (port+10000) must be free too.
func freePort(t testing.TB, cluster bool) int {
	t.Helper()
	for range 100 {
		// Below the usual ephemeral range, so port+10000 is valid and
		// outgoing connections rarely take it.
		p := 20000 + rand.IntN(12000)
		if !portFree(p) || cluster && !portFree(p+10000) {
			continue
		}
		return p
	}
	t.Fatal("redistest: no free loopback port found")
	return 0
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
