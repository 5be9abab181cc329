package webbotauth

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"testing"
)

// unsignedRequest is a typical browser request without a signature.
func unsignedRequest() *http.Request {
	r := newRequest("shop.example", "/products/42?ref=home")
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36")
	r.Header.Set("Accept", "text/html,application/xhtml+xml")
	r.Header.Set("Accept-Language", "en-GB,en;q=0.9")
	r.Header.Set("Cookie", "session=abc")
	return r
}

// TestUnsignedAllocatesNothing: the unsigned path is a header lookup.
func TestUnsignedAllocatesNothing(t *testing.T) {
	v := mustNew(t, Options{NoFetch: true})
	r := unsignedRequest()
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		if v.Verify(ctx, r).Outcome != Unsigned {
			t.Fatal("not unsigned")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per unsigned request", n)
	}
}

func BenchmarkVerifyUnsigned(b *testing.B) {
	v := mustNew(b, Options{NoFetch: true})
	r := unsignedRequest()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if v.Verify(ctx, r).Outcome != Unsigned {
			b.Fatal("not unsigned")
		}
	}
}

// BenchmarkVerifyCachedKey verifies a signed request whose agent's
// directory was fetched over TLS once and is now in memory: the steady
// state for a verified agent. Compare with BenchmarkEd25519Verify, the
// bare signature check it contains.
func BenchmarkVerifyCachedKey(b *testing.B) {
	a := newAgent(b)
	c := newClock()
	ds := newDirServer(b, jwks(a))
	v := mustNew(b, ds.options(c))
	r := unsignedRequest()
	a.signAs(r, ds.origin, c.Now())
	ctx := context.Background()
	if res := v.Verify(ctx, r); res.Outcome != Verified {
		b.Fatalf("%+v", res)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if v.Verify(ctx, r).Outcome != Verified {
			b.Fatal("not verified")
		}
	}
	if ds.hits.Load() != 1 {
		b.Fatalf("%d fetches", ds.hits.Load())
	}
}

// BenchmarkEd25519Verify is the baseline: ed25519.Verify alone over the
// signature base of the request BenchmarkVerifyCachedKey verifies.
func BenchmarkEd25519Verify(b *testing.B) {
	a := newAgent(b)
	c := newClock()
	r := unsignedRequest()
	a.signAs(r, "https://agent.example", c.Now())
	ins, _ := parseSignatureInput(r.Header["Signature-Input"])
	sa, _ := parseSignatureAgent(r.Header["Signature-Agent"])
	p, _ := partsOf(r)
	base, f := signatureBase(r, &p, &ins[0], &fieldCache{saDict: sa.dict})
	if f != nil {
		b.Fatal(f.reason)
	}
	sig, _ := parseSignature(r.Header["Signature"], "sig1")
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(a.pub, base, sig) {
			b.Fatal("does not verify")
		}
	}
}
