// Package webbotauthtest plays Web Bot Auth agents for tests: an Ed25519
// key pair that signs requests as agents do (RFC 9421 over @authority,
// @path and Signature-Agent, tag "web-bot-auth"), and a key directory
// served over TLS on 127.0.0.1 by a test server whose certificate a Caddy
// under test trusts through `verified_agents { trusted_ca }` (with
// `allow_networks 127.0.0.0/8`, since loopback directories are refused
// otherwise; it also admits the servers' ports, which are not 443).
package webbotauthtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-ahp/caddy-ahp/webbotauth"
)

// Agent is a key pair and the origin the agent names in Signature-Agent.
type Agent struct {
	Origin string
	Key    ed25519.PrivateKey
	KeyID  string // the public key's JWK thumbprint (RFC 7638)
}

// NewAgent makes an agent with a fresh key.
func NewAgent(t testing.TB, origin string) *Agent {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Agent{Origin: origin, Key: priv, KeyID: webbotauth.Thumbprint(pub)}
}

// JWKS is the agent's public key as a key directory (a JWK Set).
func (a *Agent) JWKS() string {
	pub := a.Key.Public().(ed25519.PublicKey)
	return `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"` + a.KeyID + `","x":"` +
		base64.RawURLEncoding.EncodeToString(pub) + `","use":"sig"}]}`
}

// Headers signs a request to authority and path as agents do, valid from
// five seconds ago for five minutes; the signature base is written out by
// hand (RFC 9421 §2.5), independently of the verifier. It returns header
// name, value pairs (caddyproc.Server.Do takes them so).
func (a *Agent) Headers(authority, path string) []string {
	now := time.Now().Unix()
	input := fmt.Sprintf(`("@authority" "@path" "signature-agent";key="sig1");created=%d;expires=%d;keyid="%s";tag="web-bot-auth"`,
		now-5, now+300, a.KeyID)
	base := `"@authority": ` + authority + "\n" +
		`"@path": ` + path + "\n" +
		`"signature-agent";key="sig1": "` + a.Origin + `"` + "\n" +
		`"@signature-params": ` + input
	sig := ed25519.Sign(a.Key, []byte(base))
	return []string{
		"Signature-Agent", `sig1="` + a.Origin + `"`,
		"Signature-Input", "sig1=" + input,
		"Signature", "sig1=:" + base64.StdEncoding.EncodeToString(sig) + ":",
	}
}

// Directory serves an agent's key directory over TLS on 127.0.0.1 and
// counts the fetches. Its origin, https://127.0.0.1:<port>, is covered by
// the test certificate, so agents whose origin it is verify.
type Directory struct {
	srv   *httptest.Server
	hits  atomic.Int64
	mu    sync.Mutex
	body  string
	caPEM []byte
}

// NewDirectory starts a directory that serves nothing until Serve.
func NewDirectory(t testing.TB) *Directory {
	t.Helper()
	d := &Directory{}
	d.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != webbotauth.WellKnownPath {
			http.NotFound(w, r)
			return
		}
		d.hits.Add(1)
		d.mu.Lock()
		body := d.body
		d.mu.Unlock()
		w.Header().Set("Content-Type", webbotauth.MediaType)
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(d.srv.Close)
	d.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d.srv.Certificate().Raw})
	return d
}

// Origin is the directory's origin, the one its agents sign with.
func (d *Directory) Origin() string { return d.srv.URL }

// Serve makes the directory publish a's keys.
func (d *Directory) Serve(a *Agent) {
	d.mu.Lock()
	d.body = a.JWKS()
	d.mu.Unlock()
}

// Hits is how many times the directory was fetched.
func (d *Directory) Hits() int64 { return d.hits.Load() }

// CAPEM is the PEM of the certificate the directory's TLS server uses,
// for `trusted_ca`.
func (d *Directory) CAPEM() []byte { return d.caPEM }
