package webbotauth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"
)

func FuzzSignatureInput(f *testing.F) {
	for _, s := range []string{
		`sig1=("@authority" "signature-agent";key="sig1");created=1735689600;expires=1735693200;keyid="k";tag="web-bot-auth"`,
		`sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519";tag="web-bot-auth"`,
		`a=("@query-param";name="x" "@target-uri");tag="web-bot-auth", b=();tag="other"`,
		`sig1=("x-a";key="k" "x-b";sf "@request-target" "@scheme" "@query");tag="web-bot-auth";alg="ed25519";nonce="n"`,
		`sig1=?1;tag="web-bot-auth"`, `sig1=("@path" "@path");tag="web-bot-auth"`, ``, `,`, `sig1=(`,
	} {
		f.Add(s)
	}
	r := newRequest("example.com", "/p?q=1")
	r.Header.Set("X-A", `k=1, j=(a b);c`)
	r.Header.Set("Signature-Agent", `sig1="https://agent.example"`)
	sa, _ := parseSignatureAgent(r.Header["Signature-Agent"])
	parts, _ := partsOf(r)
	f.Fuzz(func(t *testing.T, field string) {
		ins, fl := parseSignatureInput([]string{field})
		if fl != nil {
			if fl.outcome != Invalid {
				t.Fatalf("a parse failure is %v", fl.outcome)
			}
			return
		}
		if len(ins) > maxWBASigs {
			t.Fatalf("%d signatures kept", len(ins))
		}
		for i := range ins {
			in := &ins[i]
			if in.bad != nil {
				// A malformed member is its signature's own failure.
				if in.bad.outcome != Invalid {
					t.Fatalf("a malformed member is %v", in.bad.outcome)
				}
				continue
			}
			if len(in.components) > maxComponents || in.tag != WebBotAuthTag {
				t.Fatalf("kept %+v", in)
			}
			// @signature-params re-serializes to something that parses
			// back to the same serialization.
			d, err := httpsfv.UnmarshalDictionary([]string{"x=" + in.params})
			if err != nil {
				t.Fatalf("params %q do not parse: %v", in.params, err)
			}
			m, _ := d.Get("x")
			again, err := httpsfv.Marshal(m.(httpsfv.InnerList))
			if err != nil || again != in.params {
				t.Fatalf("params %q re-serialize as %q (%v)", in.params, again, err)
			}
			base, fl := signatureBase(r, &parts, in, &fieldCache{saDict: sa.dict})
			if fl == nil && !strings.HasSuffix(string(base), `"@signature-params": `+in.params) {
				t.Fatalf("base does not end with the params: %q", base)
			}
			_, _ = sa.agentURL(in)
		}
	})
}

func FuzzSignature(f *testing.F) {
	for _, s := range []string{`sig1=:AAAA:`, `sig1=:RdNFx5Bj6au3YgAMQL/RzmUlZE8QZLIaXGRpw985hWnwPfMxT228NMk6ehRS1PSl4e8PhbNZACSanGdhEwYCCg==:, sig2=?0`, `sig1="x"`, `sig1=(:AA==:)`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, field string) {
		b, fl := parseSignature([]string{field}, "sig1")
		if fl == nil && b == nil {
			t.Fatal("no signature and no failure")
		}
	})
}

func FuzzSignatureAgent(f *testing.F) {
	for _, s := range []string{
		`sig1="https://agent.example"`, `"https://chatgpt.com"`, `a="https://a.example", b="https://b.example:8443/"`,
		`sig1="https://a.example";p=1`, `sig1=("https://a")`, `sig1=?1`, ` "x"`, `"https://[::1]:443/.well-known/http-message-signatures-directory"`,
		`sig1="https://user@a.example"`, `sig1="HTTPS://A.EXAMPLE:443/?q#f"`, `sig1="https://chatg%D1%80t.com"`, `sig1="https://[fe80::1%25x]/k?%41"`,
	} {
		f.Add(s, "sig1")
	}
	f.Fuzz(func(t *testing.T, field, key string) {
		sa, fl := parseSignatureAgent([]string{field})
		if fl != nil {
			return
		}
		for _, c := range []httpsfv.Item{{Value: "signature-agent", Params: httpsfv.NewParams()}, keyed(key)} {
			in := &sigInput{label: "sig1", components: []httpsfv.Item{c}}
			raw, fl := sa.agentURL(in)
			if fl != nil {
				continue
			}
			for _, dirURLs := range []bool{false, true} {
				id, fetch, fl := agentID(raw, dirURLs)
				if fl != nil {
					continue
				}
				// An origin's id holds no query; a directory URL's id is the
				// URL fetched, query included (two queries, two key sets).
				if !strings.HasPrefix(id, "https://") || strings.ContainsAny(id, "# ") || !strings.HasPrefix(fetch, id) ||
					(strings.Contains(id, "?") && (!dirURLs || id != fetch)) {
					t.Fatalf("%q -> id %q fetch %q", raw, id, fetch)
				}
				// The identity is ASCII with no escape in its host: no
				// Unicode lookalike of another agent.
				for i := 0; i < len(id); i++ {
					if id[i] >= 0x80 {
						t.Fatalf("%q -> non-ASCII id %q", raw, id)
					}
				}
				if host, _, _ := strings.Cut(strings.TrimPrefix(id, "https://"), "/"); strings.Contains(host, "%") {
					t.Fatalf("%q -> id %q with an escaped host", raw, id)
				}
				if id2, fetch2, fl := agentID(id, dirURLs); fl != nil || id2 != id || fetch2 != fetch {
					t.Fatalf("id %q does not normalize to itself: %q %q %v", id, id2, fetch2, fl)
				}
			}
		}
	})
}

func keyed(key string) httpsfv.Item {
	p := httpsfv.NewParams()
	p.Add("key", key)
	return httpsfv.Item{Value: "signature-agent", Params: p}
}

func FuzzJWKS(f *testing.F) {
	a := newAgent(f)
	for _, s := range []string{jwks(a), a.jwk(), rfcEd25519JWK, `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`, `{"keys":null}`, `[]`, `{"kty":"OKP","nbf":1e3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := ParseJWKS(data, true)
		if err != nil {
			return
		}
		if ks.Len() < 1 || ks.Len() > MaxKeys {
			t.Fatalf("%d keys", ks.Len())
		}
		for _, tp := range ks.Thumbprints() {
			if len(tp) != 43 {
				t.Fatalf("thumbprint %q", tp)
			}
		}
	})
}

// FuzzVerify runs whole requests through Verify with a pinned agent:
// whatever the headers, it must not panic, and without the agent's
// private key nothing verifies.
func FuzzVerify(f *testing.F) {
	a := newAgent(f)
	now := time.Unix(1735689700, 0)
	r := newRequest("example.com", "/")
	a.signAs(r, "https://agent.example", now)
	f.Add(r.Header.Get("Signature-Input"), r.Header.Get("Signature"), r.Header.Get("Signature-Agent"), "/")
	f.Add(`sig2=("@authority" "signature-agent");created=1735689600;keyid="`+a.kid+`";expires=1735693200;tag="web-bot-auth"`,
		`sig2=:jdq0SqOwHdyHr9+r5jw3iYZH6aNGKijYp/EstF4RQTQdi5N5YYKrD+mCT1HA1nZDsi6nJKuHxUi/5Syp3rLWBA==:`, `"https://agent.example"`, "/x?y")
	seedSig, _ := parseSignature(r.Header["Signature"], "sig1")
	v, err := New(Options{NoFetch: true, Now: func() time.Time { return now },
		Pinned: []Pinned{{Agent: "https://agent.example", JWKS: []byte(jwks(a))}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, input, sig, agent, target string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n#") {
			target = "/"
		}
		r := newRequest("example.com", "/")
		r.RequestURI = target
		r.Header["Signature-Input"] = []string{input}
		r.Header["Signature"] = []string{sig}
		r.Header["Signature-Agent"] = []string{agent}
		res := v.Verify(context.Background(), r)
		if res.Outcome == Verified && !holds(sig, seedSig) {
			t.Fatalf("verified a signature the agent did not make: %q", sig)
		}
	})
}

// holds reports whether a Signature field carries the signature want.
func holds(field string, want []byte) bool {
	d, err := httpsfv.UnmarshalDictionary([]string{field})
	if err != nil {
		return false
	}
	for _, l := range d.Names() {
		if b, f := parseSignature([]string{field}, l); f == nil && string(b) == string(want) {
			return true
		}
	}
	return false
}

// FuzzDecodeKeys: a shared-cache value (another instance wrote it, or
// anything that can write to that Redis) either decodes to 1 to MaxKeys
// keys that encode back to the same keys, or is refused.
func FuzzDecodeKeys(f *testing.F) {
	ks, _ := ParseJWKS([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","nbf":1,"exp":4102444800}]}`), false)
	f.Add(encodeKeys(ks))
	f.Add([]byte{keysVersion})
	f.Add([]byte("{\"keys\":[]}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := decodeKeys(b, false)
		if err != nil {
			return
		}
		if ks.Len() < 1 || ks.Len() > MaxKeys {
			t.Fatalf("%d keys", ks.Len())
		}
		again, err := decodeKeys(encodeKeys(ks), false)
		if err != nil || again.Len() != ks.Len() {
			t.Fatalf("re-encoded: %v keys, %v", again.Len(), err)
		}
		for id, k := range ks.keys {
			if k2, ok := again.keys[id]; !ok || !k2.pub.Equal(k.pub) || k2.nbf != k.nbf || k2.exp != k.exp {
				t.Fatalf("key %s changed", id)
			}
		}
	})
}
