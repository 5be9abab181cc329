package webbotauth

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"
)

// RFC 9421 Appendix B.1.4, "test-key-ed25519" (JWK form).
const (
	rfcEd25519X = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"
	rfcEd25519D = "n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU"
	// Its JWK thumbprint, as the Web Bot Auth draft's vectors give it.
	rfcEd25519Thumbprint = "poqkLGiymh_W0uP6PZFw-dvez3QJT5SolqXBCW38r0U"
	rfcEd25519JWK        = `{"kty":"OKP","crv":"Ed25519","kid":"test-key-ed25519","x":"` + rfcEd25519X + `"}`
)

func rfcKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	x, err := base64.RawURLEncoding.DecodeString(rfcEd25519X)
	if err != nil {
		t.Fatal(err)
	}
	d, err := base64.RawURLEncoding.DecodeString(rfcEd25519D)
	if err != nil {
		t.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(d)
	if !priv.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(x)) {
		t.Fatal("RFC 9421 B.1.4: d and x do not match")
	}
	return ed25519.PublicKey(x), priv
}

// readRequest parses a raw HTTP/1.1 request as a server would, so that
// RequestURI and the header map are what Verify sees in production.
func readRequest(t testing.TB, raw string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(strings.ReplaceAll(raw, "\n", "\r\n"))))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The test request of RFC 9421 Appendix B.2.
const rfcTestRequest = `POST /foo?param=Value&Pet=dog HTTP/1.1
Host: example.com
Date: Tue, 20 Apr 2021 02:07:55 GMT
Content-Type: application/json
Content-Digest: sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:
Content-Length: 18

{"hello": "world"}`

func parseOneInput(t *testing.T, field string) sigInput {
	t.Helper()
	d, err := httpsfv.UnmarshalDictionary([]string{field})
	if err != nil {
		t.Fatal(err)
	}
	label := d.Names()[0]
	m, _ := d.Get(label)
	in, f := parseMember(label, m.(httpsfv.InnerList))
	if f != nil {
		t.Fatal(f.reason)
	}
	return in
}

// TestRFC9421B26 rebuilds the signature base of RFC 9421 Appendix B.2.6
// byte for byte and verifies the RFC's signature with the RFC's key.
func TestRFC9421B26(t *testing.T) {
	r := readRequest(t, rfcTestRequest)
	r.TLS = &tls.ConnectionState{}
	in := parseOneInput(t, `sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`)
	p, f := partsOf(r)
	if f != nil {
		t.Fatal(f.reason)
	}
	base, f := signatureBase(r, &p, &in, &fieldCache{})
	if f != nil {
		t.Fatal(f.reason)
	}
	want := `"date": Tue, 20 Apr 2021 02:07:55 GMT
"@method": POST
"@path": /foo
"@authority": example.com
"content-type": application/json
"content-length": 18
"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`
	if string(base) != want {
		t.Fatalf("signature base:\n%s\nwant:\n%s", base, want)
	}
	sig, f := parseSignature([]string{`sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:`}, "sig-b26")
	if f != nil {
		t.Fatal(f.reason)
	}
	pub, priv := rfcKey(t)
	if !ed25519.Verify(pub, base, sig) {
		t.Fatal("the RFC's signature does not verify over the rebuilt base")
	}
	// Ed25519 is deterministic: signing the base gives the RFC's bytes.
	if got := ed25519.Sign(priv, base); string(got) != string(sig) {
		t.Fatal("signing the base does not reproduce the RFC's signature")
	}
	// Not a Web Bot Auth signature (no tag): Verify leaves it alone.
	v, _ := New(Options{NoFetch: true})
	r.Header.Set("Signature-Input", `sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`)
	r.Header.Set("Signature", `sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:`)
	if res := v.Verify(context.Background(), r); res.Outcome != Unsigned {
		t.Fatalf("untagged RFC signature: %v (%s), want unsigned", res.Outcome, res.Reason)
	}
}

// TestRFC9421DerivedComponents checks the derived components against the
// examples of RFC 9421 §2.2.
func TestRFC9421DerivedComponents(t *testing.T) {
	r := readRequest(t, "POST /path?param=value HTTP/1.1\nHost: www.example.com\n\n")
	r.TLS = &tls.ConnectionState{}
	p, f := partsOf(r)
	if f != nil {
		t.Fatal(f.reason)
	}
	for name, want := range map[string]string{
		"@method":         "POST",
		"@target-uri":     "https://www.example.com/path?param=value",
		"@authority":      "www.example.com",
		"@scheme":         "https",
		"@request-target": "/path?param=value",
		"@path":           "/path",
		"@query":          "?param=value",
	} {
		got, f := derivedValue(name, nil, &p)
		if f != nil || got != want {
			t.Errorf("%s = %q (%v), want %q", name, got, f, want)
		}
	}
	for target, want := range map[string]string{ // §2.2.7
		"/path?param=value&foo=bar&baz=bat%2Dman": "?param=value&foo=bar&baz=bat%2Dman",
		"/path?queryString":                       "?queryString",
		"/path":                                   "?",
		"/path?":                                  "?",
	} {
		r := readRequest(t, "GET "+target+" HTTP/1.1\nHost: www.example.com\n\n")
		p, _ := partsOf(r)
		if p.query != want {
			t.Errorf("@query of %s = %q, want %q", target, p.query, want)
		}
	}
	// Absent query: no "?" in @target-uri; an empty one keeps it. An
	// absolute-form target with no path has the path "/".
	for target, want := range map[string]string{
		"/path":                          "http://www.example.com:8080/path",
		"/path?":                         "http://www.example.com:8080/path?",
		"http://www.example.com:8080":    "http://www.example.com:8080/",
		"http://www.example.com:8080/?x": "http://www.example.com:8080/?x",
	} {
		r := readRequest(t, "GET "+target+" HTTP/1.1\nHost: WWW.Example.com:8080\n\n")
		p, f := partsOf(r)
		if f != nil {
			t.Fatal(f.reason)
		}
		if got, _ := derivedValue("@target-uri", nil, &p); got != want {
			t.Errorf("@target-uri of %q = %q, want %q", target, got, want)
		}
	}
	// Default ports are dropped from @authority, others kept.
	for host, want := range map[string]string{"Example.COM:443": "example.com", "example.com:8443": "example.com:8443"} {
		r := readRequest(t, "GET / HTTP/1.1\nHost: "+host+"\n\n")
		r.TLS = &tls.ConnectionState{}
		if p, _ := partsOf(r); p.authority != want {
			t.Errorf("@authority of %s = %q, want %q", host, p.authority, want)
		}
	}
}

// TestThumbprint checks RFC 7638 thumbprints of OKP keys: the example of
// RFC 8037 Appendix A.3 and the RFC 9421 key as the draft names it.
func TestThumbprint(t *testing.T) {
	for x, want := range map[string]string{
		"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
		rfcEd25519X: rfcEd25519Thumbprint,
	} {
		pub, _ := base64.RawURLEncoding.DecodeString(x)
		if got := Thumbprint(pub); got != want {
			t.Errorf("Thumbprint(%s) = %s, want %s", x, got, want)
		}
	}
}

// The Ed25519 test vectors of draft-ietf-webbotauth-httpsig-protocol-01
// (Appendix "Test Vectors"), dictionary and legacy sf-string forms, run
// through Verify with the RFC key pinned for the draft's agent.
func TestDraftVectors(t *testing.T) {
	const created = 1735689600
	for _, tc := range []struct {
		name, agent, input, sig string
		maxValidity             time.Duration
	}{
		{
			name:  "dictionary Signature-Agent",
			agent: `agent2="https://signature-agent.test"`,
			input: `sig2=("@authority" "signature-agent";key="agent2");created=1735689600;keyid="poqkLGiymh_W0uP6PZFw-dvez3QJT5SolqXBCW38r0U";alg="ed25519";expires=4889289600;nonce="n9p433xm+NJ3ph3upfBIGmsuwHw387YV7Q/F+6BSpGCVjYCqQw6rznNA8PVVLySrAWsv0hQtFioQb6E1YsauiA==";tag="web-bot-auth"`,
			sig:   `sig2=:RdNFx5Bj6au3YgAMQL/RzmUlZE8QZLIaXGRpw985hWnwPfMxT228NMk6ehRS1PSl4e8PhbNZACSanGdhEwYCCg==:`,
			// The vector's window is a century, so that it never ages.
			maxValidity: 101 * 365 * 24 * time.Hour,
		},
		{
			name:  "legacy sf-string Signature-Agent",
			agent: `"https://signature-agent.test"`,
			input: `sig2=("@authority" "signature-agent");created=1735689600;keyid="poqkLGiymh_W0uP6PZFw-dvez3QJT5SolqXBCW38r0U";alg="ed25519";expires=1735693200;nonce="e8N7S2MFd/qrd6T2R3tdfAuuANngKI7LFtKYI/vowzk4lAZYadIX6wW25MwG7DCT9RUKAJ0qVkU0mEeLElW1qg==";tag="web-bot-auth"`,
			sig:   `sig2=:jdq0SqOwHdyHr9+r5jw3iYZH6aNGKijYp/EstF4RQTQdi5N5YYKrD+mCT1HA1nZDsi6nJKuHxUi/5Syp3rLWBA==:`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(Options{
				NoFetch:       true,
				AllowTestKeys: true,
				MaxValidity:   tc.maxValidity,
				Now:           func() time.Time { return time.Unix(created+600, 0) },
				Pinned:        []Pinned{{Agent: "https://signature-agent.test", JWKS: []byte(rfcEd25519JWK)}},
			})
			if err != nil {
				t.Fatal(err)
			}
			r := readRequest(t, "GET / HTTP/1.1\nHost: example.com\nSignature-Agent: "+tc.agent+
				"\nSignature-Input: "+tc.input+"\nSignature: "+tc.sig+"\n\n")
			res := v.Verify(context.Background(), r)
			if res.Outcome != Verified || res.Agent != "https://signature-agent.test" || res.KeyID != rfcEd25519Thumbprint {
				t.Fatalf("got %+v, want verified as https://signature-agent.test", res)
			}
			// The same bytes on another authority do not verify.
			r.Host = "example.org"
			if res := v.Verify(context.Background(), r); res.Outcome != Invalid {
				t.Fatalf("other authority: got %+v, want invalid", res)
			}
		})
	}
}
