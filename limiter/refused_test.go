package limiter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

type dialCounter struct{ dials, commands atomic.Int32 }

func (h *dialCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		h.dials.Add(1)
		return next(ctx, network, addr)
	}
}

func (h *dialCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.commands.Add(1)
		return next(ctx, cmd)
	}
}

func (h *dialCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestRefusedRedisFailsAtOnce: a Redis that refuses connections (down,
// restarting) fails a command after one dial, with the refusal as its
// error, so a decision goes straight to the on_store_error policy instead
// of waiting out its timeout in go-redis's retries of the dial.
func TestRefusedRedisFailsAtOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: every dial is refused
	c, err := NewRedisClient("redis://" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := &dialCounter{}
	c.AddHook(h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Ping(ctx).Err()
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("ping of a closed port: %v, want the refusal", err)
	}
	if n := h.dials.Load(); n != 1 {
		t.Errorf("one command on a refusing Redis dialled %d times, want 1", n)
	}
}

// TestDialOnceSpeaksTLS: the dialer that replaces go-redis's keeps its TLS
// (rediss://): the handshake completes against a server the config trusts.
func TestDialOnceSpeaksTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	dial := dialOnce(time.Second, &tls.Config{RootCAs: roots, ServerName: "example.com", MinVersion: tls.VersionTLS12})
	c, err := dial(context.Background(), "tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if tc, ok := c.(*tls.Conn); !ok || !tc.ConnectionState().HandshakeComplete {
		t.Fatalf("%T: not a TLS connection with its handshake done", c)
	}
}
