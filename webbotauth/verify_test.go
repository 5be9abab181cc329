package webbotauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

const site = "shop.example"

// pinnedVerifier verifies agent a as https://agent.example with pinned keys.
func pinnedVerifier(t *testing.T, c *clock, a ...testAgent) *Verifier {
	t.Helper()
	return mustNew(t, Options{NoFetch: true, Now: c.Now,
		Pinned: []Pinned{{Agent: "https://agent.example", JWKS: []byte(jwks(a...))}}})
}

func TestVerifyPinned(t *testing.T) {
	c := newClock()
	a := newAgent(t)
	v := pinnedVerifier(t, c, a)
	ctx := context.Background()

	t.Run("good", func(t *testing.T) {
		r := newRequest(site, "/products?id=1")
		a.signAs(r, "https://agent.example", c.Now())
		res := v.Verify(ctx, r)
		expect(t, res, Verified, "")
		if res.Agent != "https://agent.example" || res.KeyID != a.kid {
			t.Fatalf("got %+v", res)
		}
		// The agent may spell its origin with the default port, upper
		// case or the well-known path: it is the same agent.
		for _, spelling := range []string{"https://AGENT.example:443", "https://agent.example/", "https://agent.example" + WellKnownPath} {
			r := newRequest(site, "/")
			a.signAs(r, spelling, c.Now())
			if res := v.Verify(ctx, r); res.Outcome != Verified || res.Agent != "https://agent.example" {
				t.Fatalf("%s: %+v", spelling, res)
			}
		}
	})
	t.Run("expired", func(t *testing.T) {
		r := newRequest(site, "/")
		a.signAs(r, "https://agent.example", c.Now().Add(-10*time.Minute))
		expect(t, v.Verify(ctx, r), Invalid, "expired")
	})
	t.Run("expired within the skew", func(t *testing.T) {
		r := newRequest(site, "/")
		a.signAs(r, "https://agent.example", c.Now().Add(-330*time.Second)) // expired 30s ago
		expect(t, v.Verify(ctx, r), Verified, "")
	})
	t.Run("created in the future", func(t *testing.T) {
		r := newRequest(site, "/")
		a.signAs(r, "https://agent.example", c.Now().Add(2*time.Minute))
		expect(t, v.Verify(ctx, r), Invalid, "future")
	})
	t.Run("created in the future within the skew", func(t *testing.T) {
		r := newRequest(site, "/")
		a.signAs(r, "https://agent.example", c.Now().Add(40*time.Second))
		expect(t, v.Verify(ctx, r), Verified, "")
	})
	t.Run("validity window too long", func(t *testing.T) {
		r := newRequest(site, "/")
		r.Header.Set("Signature-Agent", `sig1="https://agent.example"`)
		a.sign(r, "sig1", []comp{{`"@authority"`, site}, {`"signature-agent";key="sig1"`, `"https://agent.example"`}},
			fmt.Sprintf(`;created=%d;expires=%d;keyid="%s";tag="web-bot-auth"`, c.Now().Unix(), c.Now().Add(25*time.Hour).Unix(), a.kid))
		expect(t, v.Verify(ctx, r), Invalid, "validity window")
	})
	t.Run("wrong authority", func(t *testing.T) {
		r := newRequest(site, "/")
		r.Header.Set("Signature-Agent", `sig1="https://agent.example"`)
		a.sign(r, "sig1", []comp{{`"@authority"`, "other.example"}, {`"signature-agent";key="sig1"`, `"https://agent.example"`}}, a.params(c.Now()))
		expect(t, v.Verify(ctx, r), Invalid, "does not verify")
	})
	t.Run("wrong key", func(t *testing.T) {
		mallory := newAgent(t)
		mallory.kid = a.kid // claims a's key, signs with its own
		r := newRequest(site, "/")
		mallory.signAs(r, "https://agent.example", c.Now())
		expect(t, v.Verify(ctx, r), Invalid, "does not verify")
	})
	t.Run("tampered covered component", func(t *testing.T) {
		r := newRequest(site, "/cart")
		r.Header.Set("Signature-Agent", `sig1="https://agent.example"`)
		a.sign(r, "sig1", []comp{{`"@method"`, "GET"}, {`"@authority"`, site}, {`"@path"`, "/cart"},
			{`"signature-agent";key="sig1"`, `"https://agent.example"`}}, a.params(c.Now()))
		expect(t, v.Verify(ctx, r), Verified, "")
		r.URL.Path, r.RequestURI = "/admin", "/admin"
		expect(t, v.Verify(ctx, r), Invalid, "does not verify")
		r.URL.Path, r.RequestURI = "/cart", "/cart"
		r.Method = http.MethodPost
		expect(t, v.Verify(ctx, r), Invalid, "does not verify")
	})
	t.Run("tampered Signature-Agent", func(t *testing.T) {
		// Pointing the signature at another agent's origin: the
		// signed member value no longer matches.
		r := newRequest(site, "/")
		a.signAs(r, "https://agent.example", c.Now())
		r.Header.Set("Signature-Agent", `sig1="https://agent.example/"`)
		expect(t, v.Verify(ctx, r), Invalid, "does not verify")
	})
	t.Run("unknown keyid", func(t *testing.T) {
		b := newAgent(t)
		r := newRequest(site, "/")
		b.signAs(r, "https://agent.example", c.Now())
		expect(t, v.Verify(ctx, r), Unverified, "unknown keyid")
	})
	t.Run("agent not pinned, fetching off", func(t *testing.T) {
		r := newRequest(site, "/")
		a.signAs(r, "https://other-agent.example", c.Now())
		expect(t, v.Verify(ctx, r), Unverified, "not pinned")
	})
	t.Run("legacy sf-string Signature-Agent", func(t *testing.T) {
		r := newRequest(site, "/")
		r.Header.Set("Signature-Agent", `"https://agent.example"`)
		a.sign(r, "sig1", []comp{{`"@authority"`, site}, {`"signature-agent"`, `"https://agent.example"`}}, a.params(c.Now()))
		res := v.Verify(ctx, r)
		expect(t, res, Verified, "")
		if res.Agent != "https://agent.example" {
			t.Fatalf("agent %q", res.Agent)
		}
	})
	t.Run("dictionary member keyed other than the label", func(t *testing.T) {
		r := newRequest(site, "/")
		r.Header.Set("Signature-Agent", `agent2="https://agent.example"`)
		a.sign(r, "sig2", []comp{{`"@authority"`, site}, {`"signature-agent";key="agent2"`, `"https://agent.example"`}}, a.params(c.Now()))
		expect(t, v.Verify(ctx, r), Verified, "")
	})
	t.Run("@target-uri instead of @authority", func(t *testing.T) {
		r := newRequest(site, "/a?b=c")
		r.Header.Set("Signature-Agent", `sig1="https://agent.example"`)
		a.sign(r, "sig1", []comp{{`"@target-uri"`, "https://" + site + "/a?b=c"}, {`"signature-agent";key="sig1"`, `"https://agent.example"`}}, a.params(c.Now()))
		expect(t, v.Verify(ctx, r), Verified, "")
	})
	t.Run("every supported component", func(t *testing.T) {
		r := newRequest(site, "/a/b%2Fc?x=1&y=%20")
		r.Method = http.MethodPost
		r.Header.Add("X-Intent", " browse ")
		r.Header.Add("X-Intent", "buy")
		r.Header.Set("Signature-Agent", `sig1="https://agent.example"`)
		a.sign(r, "sig1", []comp{
			{`"@method"`, "POST"}, {`"@authority"`, site}, {`"@scheme"`, "https"},
			{`"@target-uri"`, "https://" + site + "/a/b%2Fc?x=1&y=%20"},
			{`"@request-target"`, "/a/b%2Fc?x=1&y=%20"}, {`"@path"`, "/a/b%2Fc"}, {`"@query"`, "?x=1&y=%20"},
			{`"x-intent"`, "browse, buy"},
			{`"signature-agent";key="sig1"`, `"https://agent.example"`},
		}, a.params(c.Now())+`;alg="ed25519";nonce="abc"`)
		expect(t, v.Verify(ctx, r), Verified, "")
	})
}

func TestVerifyUnsignedAndUnsupported(t *testing.T) {
	c := newClock()
	a := newAgent(t)
	v := pinnedVerifier(t, c, a)
	ctx := context.Background()
	sa := `sig1="https://agent.example"`
	saComp := comp{`"signature-agent";key="sig1"`, `"https://agent.example"`}
	for _, tc := range []struct {
		name   string
		build  func(r *http.Request)
		want   Outcome
		reason string
	}{
		{"no headers", func(r *http.Request) {}, Unsigned, ""},
		{"Signature-Agent alone", func(r *http.Request) { r.Header.Set("Signature-Agent", sa) }, Unsigned, ""},
		{"another scheme's signature", func(r *http.Request) {
			a.sign(r, "sig1", []comp{{`"@authority"`, site}}, fmt.Sprintf(`;created=%d;keyid="k"`, c.Now().Unix()))
		}, Unsigned, "no web-bot-auth"},
		{"malformed Signature-Input", func(r *http.Request) {
			r.Header.Set("Signature-Input", `sig1=("@authority";tag="web-bot-auth`)
			r.Header.Set("Signature", `sig1=:AA==:`)
		}, Invalid, "dictionary"},
		{"no Signature member", func(r *http.Request) {
			r.Header.Set("Signature-Agent", sa)
			a.sign(r, "sig1", []comp{{`"@authority"`, site}, saComp}, a.params(c.Now()))
			r.Header.Set("Signature", `other=:AA==:`)
		}, Invalid, "no member sig1"},
		{"Signature not 64 bytes", func(r *http.Request) {
			r.Header.Set("Signature-Agent", sa)
			a.sign(r, "sig1", []comp{{`"@authority"`, site}, saComp}, a.params(c.Now()))
			r.Header.Set("Signature", `sig1=:AAAA:`)
		}, Invalid, "64 bytes"},
		{"no keyid", func(r *http.Request) {
			r.Header.Set("Signature-Agent", sa)
			a.sign(r, "sig1", []comp{{`"@authority"`, site}, saComp}, fmt.Sprintf(`;created=%d;expires=%d;tag="web-bot-auth"`, c.Now().Unix(), c.Now().Unix()+60))
		}, Invalid, "keyid"},
		{"no expires", func(r *http.Request) {
			r.Header.Set("Signature-Agent", sa)
			a.sign(r, "sig1", []comp{{`"@authority"`, site}, saComp}, fmt.Sprintf(`;created=%d;keyid="%s";tag="web-bot-auth"`, c.Now().Unix(), a.kid))
		}, Invalid, "expires"},
		{"covers neither @authority nor @target-uri", func(r *http.Request) {
			r.Header.Set("Signature-Agent", sa)
			a.sign(r, "sig1", []comp{{`"@path"`, "/"}, saComp}, a.params(c.Now()))
		}, Invalid, "@authority"},
		{"covered field absent", func(r *http.Request) {
			r.Header.Set("Signature-Agent", sa)
			a.sign(r, "sig1", []comp{{`"@authority"`, site}, {`"x-missing"`, ""}, saComp}, a.params(c.Now()))
		}, Invalid, "absent"},
		{"component covered twice", func(r *http.Request) {
			r.Header.Set("Signature-Agent", sa)
			a.sign(r, "sig1", []comp{{`"@authority"`, site}, {`"@authority"`, site}, saComp}, a.params(c.Now()))
		}, Invalid, "twice"},
		{"another algorithm", func(r *http.Request) {
			r.Header.Set("Signature-Agent", sa)
			a.sign(r, "sig1", []comp{{`"@authority"`, site}, saComp}, a.params(c.Now())+`;alg="rsa-pss-sha512"`)
		}, Unverified, "rsa-pss-sha512"},
		{"unsupported component", func(r *http.Request) {
			r.Header.Set("Signature-Agent", sa)
			a.sign(r, "sig1", []comp{{`"@authority"`, site}, {`"@query-param";name="id"`, "1"}, saComp}, a.params(c.Now()))
		}, Unverified, "not supported"},
		{"unsupported field parameter", func(r *http.Request) {
			r.Header.Set("Signature-Agent", sa)
			r.Header.Set("X-A", "1")
			a.sign(r, "sig1", []comp{{`"@authority"`, site}, {`"x-a";bs`, ":MQ==:"}, saComp}, a.params(c.Now()))
		}, Unverified, "not supported"},
		{"no Signature-Agent", func(r *http.Request) {
			a.sign(r, "sig1", []comp{{`"@authority"`, site}}, a.params(c.Now()))
		}, Unverified, "Signature-Agent"},
		{"Signature-Agent not covered", func(r *http.Request) {
			r.Header.Set("Signature-Agent", sa)
			a.sign(r, "sig1", []comp{{`"@authority"`, site}}, a.params(c.Now()))
		}, Unverified, "does not cover"},
		{"Signature-Agent member with parameters", func(r *http.Request) {
			r.Header.Set("Signature-Agent", sa+`;x=1`)
			a.sign(r, "sig1", []comp{{`"@authority"`, site}, {`"signature-agent";key="sig1"`, `"https://agent.example";x=1`}}, a.params(c.Now()))
		}, Unverified, "parameters"},
		{"Signature-Agent over http", func(r *http.Request) {
			r.Header.Set("Signature-Agent", `sig1="http://agent.example"`)
			a.sign(r, "sig1", []comp{{`"@authority"`, site}, {`"signature-agent";key="sig1"`, `"http://agent.example"`}}, a.params(c.Now()))
		}, Unverified, "https"},
		{"Signature-Agent with a path", func(r *http.Request) {
			r.Header.Set("Signature-Agent", `sig1="https://agent.example/keys.json"`)
			a.sign(r, "sig1", []comp{{`"@authority"`, site}, {`"signature-agent";key="sig1"`, `"https://agent.example/keys.json"`}}, a.params(c.Now()))
		}, Unverified, "path"},
		{"oversized Signature-Input", func(r *http.Request) {
			r.Header.Set("Signature-Input", "sig1=(\"@authority\");tag=\"web-bot-auth\";x=\""+strings.Repeat("a", maxFieldBytes)+"\"")
			r.Header.Set("Signature", `sig1=:AA==:`)
		}, Invalid, "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRequest(site, "/")
			tc.build(r)
			expect(t, v.Verify(ctx, r), tc.want, tc.reason)
		})
	}
}

// TestMultipleSignatures: an agent's signature and a remote browser's;
// the first that verifies names the signer.
func TestMultipleSignatures(t *testing.T) {
	c := newClock()
	agent, browser := newAgent(t), newAgent(t)
	v := mustNew(t, Options{NoFetch: true, Now: c.Now, Pinned: []Pinned{
		{Agent: "https://browser.example", JWKS: []byte(jwks(browser))},
	}})
	r := newRequest(site, "/")
	r.Header.Set("Signature-Agent", `agent="https://agent.example", browser="https://browser.example"`)
	agent.sign(r, "agent", []comp{{`"@authority"`, site}, {`"signature-agent";key="agent"`, `"https://agent.example"`}}, agent.params(c.Now()))
	browser.sign(r, "browser", []comp{{`"@authority"`, site}, {`"signature-agent";key="browser"`, `"https://browser.example"`},
		{`"signature-agent";key="agent"`, `"https://agent.example"`}}, browser.params(c.Now()))
	res := v.Verify(context.Background(), r)
	if res.Outcome != Verified || res.Agent != "https://browser.example" {
		t.Fatalf("got %+v, want verified as the browser", res)
	}
	// Only the agent's (not pinned) signature: the first's result.
	r2 := newRequest(site, "/")
	r2.Header.Set("Signature-Agent", `agent="https://agent.example"`)
	agent.sign(r2, "agent", []comp{{`"@authority"`, site}, {`"signature-agent";key="agent"`, `"https://agent.example"`}}, agent.params(c.Now()))
	expect(t, v.Verify(context.Background(), r2), Unverified, "not pinned")
}

func TestNewConfigErrors(t *testing.T) {
	a := newAgent(t)
	for name, o := range map[string]Options{
		"fetching without CheckAddr": {},
		"pinned agent not https":     {NoFetch: true, Pinned: []Pinned{{Agent: "http://a.example", JWKS: []byte(jwks(a))}}},
		"pinned agent with a path":   {NoFetch: true, Pinned: []Pinned{{Agent: "https://a.example/k.json", JWKS: []byte(jwks(a))}}},
		"pinned keys not JSON":       {NoFetch: true, Pinned: []Pinned{{Agent: "https://a.example", JWKS: []byte("-----BEGIN")}}},
		"pinned twice":               {NoFetch: true, Pinned: []Pinned{{Agent: "https://a.example", JWKS: []byte(jwks(a))}, {Agent: "https://A.example:443/", JWKS: []byte(jwks(a))}}},
		"pinned RFC test key":        {NoFetch: true, Pinned: []Pinned{{Agent: "https://a.example", JWKS: []byte(rfcEd25519JWK)}}},
		"extra CAs not PEM":          {CheckAddr: loopbackOnly, ExtraCAsPEM: []byte("nope")},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	// A single JWK, not a set, pins too.
	if _, err := New(Options{NoFetch: true, Pinned: []Pinned{{Agent: "https://a.example", JWKS: []byte(a.jwk())}}}); err != nil {
		t.Errorf("single JWK: %v", err)
	}
}

func TestDirectoryFetch(t *testing.T) {
	a := newAgent(t)
	ctx := context.Background()

	t.Run("fetched once, then from memory", func(t *testing.T) {
		c := newClock()
		ds := newDirServer(t, jwks(a))
		o := ds.options(c)
		var fetched []string
		o.OnFetch = func(url string, err error) {
			if err != nil {
				t.Errorf("fetch %s: %v", url, err)
			}
			fetched = append(fetched, url)
		}
		v := mustNew(t, o)
		for range 3 {
			r := newRequest(site, "/")
			a.signAs(r, ds.origin, c.Now())
			res := v.Verify(ctx, r)
			expect(t, res, Verified, "")
			if res.Agent != ds.origin {
				t.Fatalf("agent %q, want %q", res.Agent, ds.origin)
			}
		}
		if n := ds.hits.Load(); n != 1 {
			t.Fatalf("%d fetches, want 1", n)
		}
		// Cache-Control max-age=3600: refetched once it has passed.
		c.Advance(59 * time.Minute)
		r := newRequest(site, "/")
		a.signAs(r, ds.origin, c.Now())
		expect(t, v.Verify(ctx, r), Verified, "")
		if n := ds.hits.Load(); n != 1 {
			t.Fatalf("%d fetches before max-age passed, want 1", n)
		}
		c.Advance(2 * time.Minute)
		r = newRequest(site, "/")
		a.signAs(r, ds.origin, c.Now())
		expect(t, v.Verify(ctx, r), Verified, "")
		if n := ds.hits.Load(); n != 2 {
			t.Fatalf("%d fetches after max-age passed, want 2", n)
		}
		if len(fetched) != 2 || fetched[0] != ds.origin+WellKnownPath {
			t.Fatalf("OnFetch saw %q", fetched)
		}
	})
	t.Run("concurrent requests share one fetch", func(t *testing.T) {
		c := newClock()
		ds := newDirServer(t, jwks(a))
		release := make(chan struct{})
		ds.setHandler(func(w http.ResponseWriter, r *http.Request) {
			<-release
			w.Header().Set("Content-Type", MediaType)
			_, _ = w.Write([]byte(jwks(a)))
		})
		v := mustNew(t, ds.options(c))
		var wg sync.WaitGroup
		results := make([]Result, 20)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := newRequest(site, "/")
				a.signAs(r, ds.origin, c.Now())
				results[i] = v.Verify(ctx, r)
			}()
		}
		time.Sleep(50 * time.Millisecond) // let them queue on the fetch; not a correctness wait
		close(release)
		wg.Wait()
		for _, res := range results {
			expect(t, res, Verified, "")
		}
		if n := ds.hits.Load(); n != 1 {
			t.Fatalf("%d fetches, want 1", n)
		}
	})
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		reason  string
	}{
		{"non-200", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", MediaType)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(jwks(a)))
		}, "status 503"},
		{"redirecting", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://example.com/elsewhere", http.StatusFound)
		}, "redirects are not followed"},
		{"oversized", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", MediaType)
			_, _ = w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", 64<<10) + `"}`))
		}, "larger than"},
		{"oversized without Content-Length", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", MediaType)
			for range 80 {
				_, _ = w.Write([]byte(strings.Repeat(" ", 1024)))
				w.(http.Flusher).Flush()
			}
		}, "larger than"},
		{"HTML instead of a directory", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(jwks(a)))
		}, "media type"},
		{"no media type", func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil
			_, _ = w.Write([]byte(jwks(a)))
		}, "media type"},
		{"not a JWKS", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", MediaType)
			_, _ = w.Write([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
		}, "no Ed25519"},
		{"private key published", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", MediaType)
			_, _ = w.Write([]byte(`{"keys":[` + strings.TrimSuffix(a.jwk(), "}") + `,"d":"secret"}]}`))
		}, "private part"},
		{"RFC 9421 example key", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", MediaType)
			_, _ = w.Write([]byte(`{"keys":[` + a.jwk() + `,` + rfcEd25519JWK + `]}`))
		}, "RFC 9421 example key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			ds := newDirServer(t, "")
			ds.setHandler(tc.handler)
			v := mustNew(t, ds.options(c))
			r := newRequest(site, "/")
			a.signAs(r, ds.origin, c.Now())
			expect(t, v.Verify(ctx, r), Unverified, tc.reason)
			// Negative-cached: the next request does not refetch ...
			r = newRequest(site, "/")
			a.signAs(r, ds.origin, c.Now())
			expect(t, v.Verify(ctx, r), Unverified, tc.reason)
			if n := ds.hits.Load(); n != 1 {
				t.Fatalf("%d fetches, want 1", n)
			}
			// ... until NegativeTTL (1 minute) has passed.
			c.Advance(61 * time.Second)
			ds.serveJWKS(jwks(a), "")
			r = newRequest(site, "/")
			a.signAs(r, ds.origin, c.Now())
			expect(t, v.Verify(ctx, r), Verified, "")
		})
	}
	t.Run("media types", func(t *testing.T) {
		for _, ct := range []string{MediaType, MediaType + "; charset=utf-8", "application/jwk-set+json", "application/json"} {
			c := newClock()
			ds := newDirServer(t, "")
			ds.setHandler(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ct)
				_, _ = w.Write([]byte(jwks(a)))
			})
			v := mustNew(t, ds.options(c))
			r := newRequest(site, "/")
			a.signAs(r, ds.origin, c.Now())
			if res := v.Verify(ctx, r); res.Outcome != Verified {
				t.Errorf("%s: %+v", ct, res)
			}
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		c := newClock()
		ds := newDirServer(t, jwks(a))
		origin := ds.origin
		ds.srv.Close()
		v := mustNew(t, ds.options(c))
		r := newRequest(site, "/")
		a.signAs(r, origin, c.Now())
		expect(t, v.Verify(ctx, r), Unverified, "unreachable")
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		c := newClock()
		ds := newDirServer(t, jwks(a))
		o := ds.options(c)
		o.ExtraCAsPEM = nil
		v := mustNew(t, o)
		r := newRequest(site, "/")
		a.signAs(r, ds.origin, c.Now())
		expect(t, v.Verify(ctx, r), Unverified, "certificate")
		if n := ds.hits.Load(); n != 0 {
			t.Fatalf("%d requests reached the server", n)
		}
	})
	t.Run("address refused", func(t *testing.T) {
		c := newClock()
		ds := newDirServer(t, jwks(a))
		o := ds.options(c)
		o.CheckAddr = func(a netip.Addr) error { return errors.New("a loopback address") }
		v := mustNew(t, o)
		for _, origin := range []string{ds.origin, strings.Replace(ds.origin, "example.com", "127.0.0.1", 1)} {
			r := newRequest(site, "/")
			a.signAs(r, origin, c.Now())
			expect(t, v.Verify(ctx, r), Unverified, "refused")
		}
		if n := ds.hits.Load(); n != 0 {
			t.Fatalf("%d requests reached the server", n)
		}
	})
	t.Run("one resolved address refused", func(t *testing.T) {
		c := newClock()
		ds := newDirServer(t, jwks(a))
		o := ds.options(c)
		o.Resolver = &fakeResolver{hosts: map[string][]netip.Addr{"example.com": {
			netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.0.0.1")}}}
		v := mustNew(t, o)
		r := newRequest(site, "/")
		a.signAs(r, ds.origin, c.Now())
		expect(t, v.Verify(ctx, r), Unverified, "10.0.0.1")
		if n := ds.hits.Load(); n != 0 {
			t.Fatalf("%d requests reached the server", n)
		}
	})
	t.Run("host refused before lookup", func(t *testing.T) {
		c := newClock()
		ds := newDirServer(t, jwks(a))
		o := ds.options(c)
		res := &fakeResolver{hosts: map[string][]netip.Addr{}}
		o.Resolver = res
		o.CheckHost = func(h string) error { return errors.New("internal name") }
		v := mustNew(t, o)
		r := newRequest(site, "/")
		a.signAs(r, ds.origin, c.Now())
		expect(t, v.Verify(ctx, r), Unverified, "internal name")
		if res.lookups.Load() != 0 {
			t.Fatal("the refused host was looked up")
		}
	})
	t.Run("slow directory", func(t *testing.T) {
		c := newClock()
		ds := newDirServer(t, jwks(a))
		ds.setHandler(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		o := ds.options(c)
		o.FetchTimeout = 100 * time.Millisecond
		v := mustNew(t, o)
		r := newRequest(site, "/")
		a.signAs(r, ds.origin, c.Now())
		expect(t, v.Verify(ctx, r), Unverified, "")
	})
	t.Run("caller gives up waiting", func(t *testing.T) {
		c := newClock()
		ds := newDirServer(t, jwks(a))
		release := make(chan struct{})
		defer close(release)
		ds.setHandler(func(w http.ResponseWriter, r *http.Request) { <-release })
		v := mustNew(t, ds.options(c))
		r := newRequest(site, "/")
		a.signAs(r, ds.origin, c.Now())
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		expect(t, v.Verify(cctx, r), Unverified, "gave up waiting")
	})
}

func TestDirectoryRotationAndOutage(t *testing.T) {
	ctx := context.Background()
	old, next := newAgent(t), newAgent(t)
	c := newClock()
	ds := newDirServer(t, jwks(old))
	v := mustNew(t, ds.options(c))
	verify := func(a testAgent) Result {
		r := newRequest(site, "/")
		a.signAs(r, ds.origin, c.Now())
		return v.Verify(ctx, r)
	}
	expect(t, verify(old), Verified, "")

	// A new key before the cached directory expires: one refetch, but
	// only once MinTTL (1 minute) has passed since the last.
	ds.serveJWKS(jwks(old, next), "max-age=3600")
	expect(t, verify(next), Unverified, "unknown keyid")
	if n := ds.hits.Load(); n != 1 {
		t.Fatalf("%d fetches: refetched within MinTTL", n)
	}
	c.Advance(2 * time.Minute)
	expect(t, verify(next), Verified, "")
	if n := ds.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	// Unknown keyids do not refetch again and again.
	stranger := newAgent(t)
	for range 5 {
		expect(t, verify(stranger), Unverified, "unknown keyid")
	}
	if n := ds.hits.Load(); n != 2 {
		t.Fatalf("%d fetches after unknown keyids, want 2", n)
	}

	// The directory goes down after expiry: its keys keep verifying
	// (an outage is no revocation), refetched at most every NegativeTTL.
	ds.setHandler(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	c.Advance(61 * time.Minute)
	expect(t, verify(old), Verified, "")
	expect(t, verify(next), Verified, "")
	if n := ds.hits.Load(); n != 3 {
		t.Fatalf("%d fetches during the outage, want 3", n)
	}
	// ... but not beyond MaxStale (24 hours) past expiry.
	c.Advance(25 * time.Hour)
	expect(t, verify(old), Unverified, "status 502")

	// The directory is back without the old key: it stops verifying.
	ds.serveJWKS(jwks(next), "max-age=3600")
	c.Advance(2 * time.Minute)
	expect(t, verify(next), Verified, "")
	expect(t, verify(old), Unverified, "unknown keyid")
}

func TestDirectoryURLs(t *testing.T) {
	a := newAgent(t)
	c := newClock()
	ds := newDirServer(t, "")
	ds.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/bots/keys.json" || r.URL.RawQuery != "v=2" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write([]byte(jwks(a)))
	})
	o := ds.options(c)
	o.DirectoryURLs = true
	v := mustNew(t, o)
	r := newRequest(site, "/")
	a.signAs(r, ds.origin+"/bots/keys.json?v=2", c.Now())
	res := v.Verify(context.Background(), r)
	expect(t, res, Verified, "")
	if res.Agent != ds.origin+"/bots/keys.json?v=2" {
		t.Fatalf("agent %q: the directory fetched, query included, names the agent", res.Agent)
	}
}

// Two directory URLs that differ only in their query may serve two key
// sets (a key service's tenants): each signer is its own agent, so one
// tenant never gets another's limits, skip_proof_of_work entry or label.
func TestDirectoryURLQueryNamesTheAgent(t *testing.T) {
	good, evil := newAgent(t), newAgent(t)
	c := newClock()
	ds := newDirServer(t, "")
	ds.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		switch r.URL.Query().Get("tenant") {
		case "good":
			_, _ = w.Write([]byte(jwks(good)))
		case "evil":
			_, _ = w.Write([]byte(jwks(evil)))
		default:
			http.NotFound(w, r)
		}
	})
	o := ds.options(c)
	o.DirectoryURLs = true
	v := mustNew(t, o)
	verify := func(a testAgent, dir string) Result {
		r := newRequest(site, "/")
		a.signAs(r, dir, c.Now())
		res := v.Verify(context.Background(), r)
		expect(t, res, Verified, "")
		return res
	}
	res1 := verify(good, ds.origin+"/dir?tenant=good")
	res2 := verify(evil, ds.origin+"/dir?tenant=evil")
	listed, err := NormalizeAgent(ds.origin+"/dir?tenant=good", true)
	if err != nil {
		t.Fatal(err)
	}
	if res1.Agent != listed || res2.Agent == listed || res1.Agent == res2.Agent {
		t.Fatalf("agents %q and %q (listed %q): two directories with different keys must be two agents", res1.Agent, res2.Agent, listed)
	}
}

func TestAgentID(t *testing.T) {
	for raw, want := range map[string][2]string{
		"https://chatgpt.com":                    {"https://chatgpt.com", "https://chatgpt.com" + WellKnownPath},
		"https://ChatGPT.com:443/":               {"https://chatgpt.com", "https://chatgpt.com" + WellKnownPath},
		"HTTPS://chatgpt.com?x=1":                {"https://chatgpt.com", "https://chatgpt.com" + WellKnownPath},
		"https://a.example:8443" + WellKnownPath: {"https://a.example:8443", "https://a.example:8443" + WellKnownPath},
		"https://[2001:db8::1]":                  {"https://[2001:db8::1]", "https://[2001:db8::1]" + WellKnownPath},
		"http://chatgpt.com":                     {},
		"https://user@chatgpt.com":               {},
		"https://chatgpt.com#frag":               {},
		"https://chatgpt.com:":                   {},
		"https://":                               {},
		"https:chatgpt.com":                      {},
		"https://chat gpt.com":                   {},
		"https://chatgpt.com/keys":               {},
		"//chatgpt.com":                          {},
		"":                                       {},
	} {
		id, fetch, f := agentID(raw, false)
		if want[0] == "" {
			if f == nil {
				t.Errorf("%q accepted as %s", raw, id)
			}
			continue
		}
		if f != nil || id != want[0] || fetch != want[1] {
			t.Errorf("%q: %q %q %v, want %q %q", raw, id, fetch, f, want[0], want[1])
		}
	}
	for raw, want := range map[string]string{
		"https://a.example/k/../x.json": "",
		"https://a.example/k/./x.json":  "",
		"https://a.example/k.json?v=1":  "https://a.example/k.json?v=1",
		"https://A.example:443/k.json":  "https://a.example/k.json",
		// Under the bound as written, over it escaped (^ is %5E): refused,
		// or the identity would not normalize to itself.
		"https://a.example/" + strings.Repeat("^", 400): "",
		"https://a.example/" + strings.Repeat("^", 300): "https://a.example/" + strings.Repeat("%5E", 300),
	} {
		id, _, f := agentID(raw, true)
		if (f == nil) != (want != "") || id != want {
			t.Errorf("DirectoryURLs %q: %q %v, want %q", raw, id, f, want)
		}
	}
}

func TestNormalizeAgent(t *testing.T) {
	if id, err := NormalizeAgent("https://ChatGPT.com:443/", false); err != nil || id != "https://chatgpt.com" {
		t.Fatalf("%q %v", id, err)
	}
	if _, err := NormalizeAgent("chatgpt.com", false); err == nil {
		t.Fatal("a bare host name was accepted")
	}
}

func TestCacheTTL(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	lo, hi, def := time.Minute, 24*time.Hour, time.Hour
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{}, def},
		{http.Header{"Cache-Control": {"max-age=600"}}, 10 * time.Minute},
		{http.Header{"Cache-Control": {"public, max-age=600, s-maxage=7200"}}, 2 * time.Hour},
		{http.Header{"Cache-Control": {"max-age=600"}, "Age": {"100"}}, 500 * time.Second},
		{http.Header{"Cache-Control": {"max-age=5"}}, lo},
		{http.Header{"Cache-Control": {"max-age=9999999"}}, hi},
		{http.Header{"Cache-Control": {"no-store"}}, lo},
		{http.Header{"Cache-Control": {"max-age=600, no-cache"}}, lo},
		{http.Header{"Cache-Control": {"max-age=abc"}}, def},
		{http.Header{"Expires": {now.Add(3 * time.Hour).Format(http.TimeFormat)}}, 3 * time.Hour},
		{http.Header{"Expires": {now.Add(3 * time.Hour).Format(http.TimeFormat)}, "Date": {now.Add(time.Hour).Format(http.TimeFormat)}}, 2 * time.Hour},
		{http.Header{"Expires": {"0"}}, lo},
	} {
		if got := cacheTTL(tc.h, now, def, lo, hi); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.h, got, tc.want)
		}
	}
}

func TestParseJWKS(t *testing.T) {
	a, b := newAgent(t), newAgent(t)
	ks, err := ParseJWKS([]byte(jwks(a, b)), false)
	if err != nil || ks.Len() != 2 {
		t.Fatalf("%v %d", err, ks.Len())
	}
	// Keys for other uses and algorithms are skipped, not fatal.
	mixed := `{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b"},{"kty":"OKP","crv":"X25519","x":"` + strings.Repeat("A", 43) + `"},` +
		strings.Replace(b.jwk(), `"use":"sig"`, `"use":"enc"`, 1) + `,` + a.jwk() + `]}`
	if ks, err := ParseJWKS([]byte(mixed), false); err != nil || ks.Len() != 1 || ks.Thumbprints()[0] != a.kid {
		t.Fatalf("mixed set: %v", err)
	}
	now := time.Now()
	timed := strings.TrimSuffix(a.jwk(), "}") + fmt.Sprintf(`,"nbf":%d,"exp":%d}`, now.Unix()+10, now.Unix()+100)
	ks, err = ParseJWKS([]byte(timed), false)
	if err != nil {
		t.Fatal(err)
	}
	if pub, _ := ks.lookup(a.kid, now); pub != nil {
		t.Error("key used before nbf")
	}
	if pub, _ := ks.lookup(a.kid, now.Add(50*time.Second)); pub == nil {
		t.Error("key not used between nbf and exp")
	}
	if pub, _ := ks.lookup(a.kid, now.Add(100*time.Second)); pub != nil {
		t.Error("key used after exp")
	}
	many := make([]testAgent, MaxKeys+1)
	for i := range many {
		many[i] = a
	}
	for name, doc := range map[string]string{
		"not JSON":          `keys`,
		"array":             `[]`,
		"empty set":         `{"keys":[]}`,
		"keys not an array": `{"keys":{}}`,
		"no kty":            `{"x":"y"}`,
		"short x":           `{"kty":"OKP","crv":"Ed25519","x":"AAAA"}`,
		"padded x":          `{"kty":"OKP","crv":"Ed25519","x":"` + base64Std(a) + `"}`,
		"private key":       strings.TrimSuffix(a.jwk(), "}") + `,"d":"x"}`,
		"too many keys":     jwks(many...),
		"negative nbf":      strings.TrimSuffix(a.jwk(), "}") + `,"nbf":-1}`,
		"string exp":        strings.TrimSuffix(a.jwk(), "}") + `,"exp":"soon"}`,
		"RFC 9421 test key": rfcEd25519JWK,
	} {
		if _, err := ParseJWKS([]byte(doc), false); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func base64Std(a testAgent) string { return base64.URLEncoding.EncodeToString(a.pub) }

func TestDirectoryBounds(t *testing.T) {
	a := newAgent(t)
	ctx := context.Background()
	c := newClock()
	ds := newDirServer(t, "")
	release, arrived := make(chan struct{}), make(chan struct{})
	ds.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow.json" {
			close(arrived)
			<-release
		}
		w.Header().Set("Content-Type", MediaType)
		_, _ = w.Write([]byte(jwks(a)))
	})
	o := ds.options(c)
	o.DirectoryURLs = true
	o.MaxEntries = 2
	o.MaxConcurrentFetches = 1
	v := mustNew(t, o)
	verify := func(path string) Result {
		r := newRequest(site, "/")
		a.signAs(r, ds.origin+path, c.Now())
		return v.Verify(ctx, r)
	}
	// The memory cache holds MaxEntries directories.
	for _, p := range []string{"/1.json", "/2.json", "/3.json"} {
		expect(t, verify(p), Verified, "")
	}
	v.dir.mu.RLock()
	n := len(v.dir.entries)
	v.dir.mu.RUnlock()
	if n != 2 {
		t.Fatalf("%d directories cached, want 2", n)
	}
	// One fetch in flight at most: another directory waits for none.
	done := make(chan Result)
	go func() { done <- verify("/slow.json") }()
	<-arrived
	expect(t, verify("/4.json"), Unverified, "too many")
	close(release)
	expect(t, <-done, Verified, "")
	expect(t, verify("/4.json"), Verified, "") // the refusal was not cached
}
