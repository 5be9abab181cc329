package webbotauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/dunglas/httpsfv"
)

// bigDictionary is a valid structured-field dictionary of about size
// bytes: members m0=1, m1=1, ...
func bigDictionary(size int) string {
	var sb strings.Builder
	for i := 0; sb.Len() < size; i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "m%d=1", i)
	}
	return sb.String()
}

// requestCoveringBigField is a request any client can send, no key
// needed: four web-bot-auth signatures (random bytes, with a real
// agent's keyid), each covering 30 members of one large dictionary field
// ("x-big";key="mN").
func requestCoveringBigField(t testing.TB, c *clock, a testAgent, size int) *http.Request {
	r := newRequest(site, "/")
	r.Header.Set("X-Big", bigDictionary(size))
	r.Header.Set("Signature-Agent", `sig1="https://agent.example"`)
	sig := make([]byte, 64)
	if _, err := rand.Read(sig); err != nil {
		t.Fatal(err)
	}
	for s := 0; s < maxWBASigs; s++ {
		ids := []string{`"@authority"`, `"signature-agent";key="sig1"`}
		for k := 0; len(ids) < maxComponents; k++ {
			ids = append(ids, fmt.Sprintf(`"x-big";key="m%d"`, k))
		}
		label := fmt.Sprintf("s%d", s)
		r.Header.Add("Signature-Input", label+"=("+strings.Join(ids, " ")+")"+a.params(c.Now()))
		r.Header.Add("Signature", label+"=:"+base64.StdEncoding.EncodeToString(sig)+":")
	}
	return r
}

func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// The work one request makes Verify do, against one parse of its large
// field: a covered dictionary field is parsed once per request, however
// many members of it the request's signatures cover (parsing it per
// component made one header cost ~120 parses, with no key needed).
func TestCoveredFieldParsedOncePerRequest(t *testing.T) {
	c := newClock()
	a := newAgent(t)
	v := pinnedVerifier(t, c, a)
	const size = maxFieldBytes - 512 // within the bound: the field is read
	r := requestCoveringBigField(t, c, a, size)
	field := []string{r.Header.Get("X-Big")}
	once := allocated(func() {
		if _, err := httpsfv.UnmarshalDictionary(field); err != nil {
			t.Fatal(err)
		}
	})
	var res Result
	work := allocated(func() { res = v.Verify(context.Background(), r) })
	// Every base was built and checked: the signatures are random bytes.
	expect(t, res, Invalid, "signature does not verify")
	t.Logf("Verify allocated %d bytes, one parse of the field %d (%.1fx)", work, once, float64(work)/float64(once))
	if work > 4*once {
		t.Fatalf("one request made Verify do %.0fx the work of parsing its %d-byte field once", float64(work)/float64(once), size)
	}
}

// A covered field larger than the bound on the signature fields is not
// read at all: the signature is unverifiable (not wrong), and the
// request costs next to nothing.
func TestCoveredFieldTooLargeIsNotRead(t *testing.T) {
	c := newClock()
	a := newAgent(t)
	v := pinnedVerifier(t, c, a)
	const size = 32 << 10
	r := requestCoveringBigField(t, c, a, size)
	field := []string{r.Header.Get("X-Big")}
	once := allocated(func() {
		if _, err := httpsfv.UnmarshalDictionary(field); err != nil {
			t.Fatal(err)
		}
	})
	var res Result
	work := allocated(func() { res = v.Verify(context.Background(), r) })
	expect(t, res, Unverified, "covered field x-big is larger than 8 KiB")
	if work > once/4 {
		t.Fatalf("Verify allocated %d bytes for a field it must not read; one parse of it is %d", work, once)
	}
}

// Signatures over members and the whole of a sizeable field verify, each
// component with its own value from the one parse.
func TestCoveredFieldMembersVerify(t *testing.T) {
	c := newClock()
	a := newAgent(t)
	v := pinnedVerifier(t, c, a)
	r := newRequest(site, "/")
	big := bigDictionary(4 << 10)
	r.Header.Set("X-Big", big)
	r.Header.Set("X-Other", `m3=?0, z=(a b);p=1`)
	r.Header.Set("Signature-Agent", `sig1="https://agent.example"`)
	a.sign(r, "sig1", []comp{
		{`"@authority"`, site},
		{`"signature-agent";key="sig1"`, `"https://agent.example"`},
		{`"x-big";key="m3"`, "1"},
		{`"x-big";key="m40"`, "1"},
		{`"x-other";key="m3"`, "?0"},
		{`"x-other";key="z"`, "(a b);p=1"},
		{`"x-big"`, big},
	}, a.params(c.Now()))
	expect(t, v.Verify(context.Background(), r), Verified, "")
}

// The signature base is bounded as a whole: fields each within their own
// bound may not add up to more than maxBaseBytes.
func TestSignatureBaseBounded(t *testing.T) {
	c := newClock()
	a := newAgent(t)
	v := pinnedVerifier(t, c, a)
	r := newRequest(site, "/")
	r.Header.Set("Signature-Agent", `sig1="https://agent.example"`)
	comps := []comp{{`"@authority"`, site}, {`"signature-agent";key="sig1"`, `"https://agent.example"`}}
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("x-f%d", i)
		val := strings.Repeat("v", maxFieldBytes-100)
		r.Header.Set(name, val)
		comps = append(comps, comp{`"` + name + `"`, val})
	}
	a.sign(r, "sig1", comps, a.params(c.Now()))
	expect(t, v.Verify(context.Background(), r), Unverified, "signature base is larger than 16 KiB")
}
