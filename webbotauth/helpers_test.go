package webbotauth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testAgent is a signing agent with a fresh Ed25519 key.
type testAgent struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
	kid  string
}

func newAgent(t testing.TB) testAgent {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testAgent{pub: pub, priv: priv, kid: Thumbprint(pub)}
}

// jwk is the agent's public key as a JWK (kid = thumbprint, as the
// draft asks of well-known directories).
func (a testAgent) jwk() string {
	return `{"kty":"OKP","crv":"Ed25519","kid":"` + a.kid + `","x":"` +
		base64.RawURLEncoding.EncodeToString(a.pub) + `","use":"sig"}`
}

func jwks(agents ...testAgent) string {
	keys := make([]string, len(agents))
	for i, a := range agents {
		keys[i] = a.jwk()
	}
	return `{"keys":[` + strings.Join(keys, ",") + `]}`
}

// comp is one covered component: its serialized identifier and the
// value the signer saw. Tests write both out by hand, so the signature
// base here does not depend on the code under test.
type comp struct{ id, value string }

// sign adds Signature-Input and Signature members for label. params is
// the parameter list as it goes on the wire (";created=...;...").
func (a testAgent) sign(r *http.Request, label string, comps []comp, params string) {
	ids := make([]string, len(comps))
	var base strings.Builder
	for i, c := range comps {
		ids[i] = c.id
		base.WriteString(c.id + ": " + c.value + "\n")
	}
	input := "(" + strings.Join(ids, " ") + ")" + params
	base.WriteString(`"@signature-params": ` + input)
	sig := ed25519.Sign(a.priv, []byte(base.String()))
	r.Header.Add("Signature-Input", label+"="+input)
	r.Header.Add("Signature", label+"=:"+base64.StdEncoding.EncodeToString(sig)+":")
}

// params are the usual Web Bot Auth parameters: created a few seconds
// before now, expiring five minutes after.
func (a testAgent) params(now time.Time) string {
	return fmt.Sprintf(`;created=%d;expires=%d;keyid="%s";tag="web-bot-auth"`,
		now.Unix()-5, now.Unix()+300, a.kid)
}

// signAs signs r the way agents do: Signature-Agent sig1=<agent> and a
// signature over @authority and that member.
func (a testAgent) signAs(r *http.Request, agent string, now time.Time) {
	r.Header.Set("Signature-Agent", `sig1="`+agent+`"`)
	a.sign(r, "sig1", []comp{
		{`"@authority"`, r.Host},
		{`"signature-agent";key="sig1"`, `"` + agent + `"`},
	}, a.params(now))
}

// newRequest is a request as a TLS server receives it.
func newRequest(host, target string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Host = host
	r.TLS = &tls.ConnectionState{}
	return r
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeResolver answers from a map; other names do not resolve.
type fakeResolver struct {
	lookups atomic.Int64
	hosts   map[string][]netip.Addr
}

func (f *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	f.lookups.Add(1)
	if a, ok := f.hosts[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

// loopbackOnly admits loopback addresses only, standing in for the
// project's public-address rules in tests that serve on 127.0.0.1.
func loopbackOnly(a netip.Addr) error {
	if a.Unmap().IsLoopback() {
		return nil
	}
	return errors.New("not loopback")
}

// dirServer is an agent's key directory on an httptest TLS server,
// reached as https://example.com:<port> through fakeResolver.
type dirServer struct {
	srv     *httptest.Server
	hits    atomic.Int64
	mu      sync.Mutex
	handler http.HandlerFunc
	origin  string
	caPEM   []byte
}

func newDirServer(t testing.TB, body string) *dirServer {
	ds := &dirServer{}
	ds.serveJWKS(body, "max-age=3600")
	ds.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ds.hits.Add(1)
		ds.mu.Lock()
		h := ds.handler
		ds.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(ds.srv.Close)
	ds.origin = "https://example.com:" + strings.TrimPrefix(ds.srv.URL[strings.LastIndexByte(ds.srv.URL, ':'):], ":")
	ds.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ds.srv.Certificate().Raw})
	return ds
}

func (ds *dirServer) setHandler(h http.HandlerFunc) {
	ds.mu.Lock()
	ds.handler = h
	ds.mu.Unlock()
}

// serveJWKS serves body at the well-known path with the directory media
// type and the given Cache-Control.
func (ds *dirServer) serveJWKS(body, cacheControl string) {
	ds.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != WellKnownPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", MediaType)
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		_, _ = w.Write([]byte(body))
	})
}

// options are Options that reach ds (its port allowed) and keep time
// on c.
func (ds *dirServer) options(c *clock) Options {
	return Options{
		Now:         c.Now,
		CheckAddr:   loopbackOnly,
		Resolver:    &fakeResolver{hosts: map[string][]netip.Addr{"example.com": {netip.MustParseAddr("127.0.0.1")}}},
		ExtraCAsPEM: ds.caPEM,
		AllowPorts:  []uint16{ds.port()},
	}
}

// port is the port ds listens on.
func (ds *dirServer) port() uint16 {
	return netip.MustParseAddrPort(ds.srv.Listener.Addr().String()).Port()
}

func mustNew(t testing.TB, o Options) *Verifier {
	t.Helper()
	v, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func expect(t testing.TB, res Result, want Outcome, reason string) {
	t.Helper()
	if res.Outcome != want {
		t.Fatalf("outcome %v (%s), want %v", res.Outcome, res.Reason, want)
	}
	if reason != "" && !strings.Contains(res.Reason, reason) {
		t.Fatalf("reason %q does not say %q", res.Reason, reason)
	}
}
