package redistest

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestStartKillRestart(t *testing.T) {
	s := Start(t)
	if r, err := s.Command("SET", "k", "v"); err != nil || r != "+OK" {
		t.Fatalf("SET: %q %v", r, err)
	}
	if r, err := s.Command("GET", "k"); err != nil || r != "v" {
		t.Fatalf("GET: %q %v", r, err)
	}
	s.Kill()
	if _, err := s.Command("PING"); err == nil {
		t.Fatal("PING answered after Kill")
	}
	s.Restart()
	if r, err := s.Command("GET", "k"); err != nil || r != "$-1" {
		t.Fatalf("GET after restart = %q, %v; want an empty server ($-1)", r, err)
	}
	s.Stop()
	if _, err := s.Command("PING"); err == nil {
		t.Fatal("PING answered after Stop")
	}
	s.Restart()
	if r, err := s.Command("PING"); err != nil || r != "+PONG" {
		t.Fatalf("PING after second restart: %q %v", r, err)
	}
}

func TestCluster(t *testing.T) {
	c := StartCluster(t)
	for _, n := range c.Nodes {
		info, err := n.Command("CLUSTER", "INFO")
		if err != nil || !strings.Contains(info, "cluster_state:ok") {
			t.Fatalf("%s: %v %s", n.Addr(), err, info)
		}
	}
}

func TestUnresponsive(t *testing.T) {
	addr := Unresponsive(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); err == nil || n > 0 {
		t.Fatalf("read %d bytes, err %v; want a timeout", n, err)
	}
}
