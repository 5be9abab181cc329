package caddymodule

import (
	"fmt"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"
)

// With `on_invalid refuse`, a request that carries the agent's valid
// signature and a second, malformed web-bot-auth signature (a remote
// browser's, say) reaches the site as the agent: the malformed one is
// only its own failure.
func TestRefuseKeepsValidSignatureNextToMalformedOne(t *testing.T) {
	agent := newWBAAgent(t, "https://agent.example")
	step := provisionStep(t, "verified_agents {\n pin https://agent.example "+writeFile(t, "a.jwk", agent.jwk)+"\n fetch off\n on_invalid refuse\n}")

	r, repl := caddyRequest("GET", "/products/42")
	now := time.Now()
	agent.sign(r.Header, "shop.example", "/products/42", now)
	r.Header.Add("Signature-Input", fmt.Sprintf(`rb=("@authority");created=%d;expires=%d;keyid="x";nonce=5;tag="web-bot-auth"`, now.Unix()-5, now.Unix()+60))
	r.Header.Add("Signature", "rb=:AAAA:")
	w := httptest.NewRecorder()
	if step.serve(w, r) != nil {
		t.Fatalf("a request with a valid agent signature was refused: %d %s", w.Code, w.Body)
	}
	if got := placeholders(repl); got != "true|https://agent.example|verified" {
		t.Fatalf("placeholders %q, want the agent verified", got)
	}
}

// Any page request carrying Signature-Input is verified before
// discovery, pages and limits. Within Caddy's default 16 KiB header
// limit, a crafted request (no key, nothing fetched) covering one large
// dictionary header member by member in four signatures costs the step
// about one parse of that header, not one per member (it cost ~120), and
// nothing for a header above the covered-field bound.
func TestCraftedPageRequestCostsOneParse(t *testing.T) {
	agent := newWBAAgent(t, "https://agent.example")
	step := provisionStep(t, "verified_agents {\n pin https://agent.example "+writeFile(t, "a.jwk", agent.jwk)+"\n fetch off\n}")
	for _, fieldSize := range []int{7 << 10, 12 << 10} {
		r, _ := caddyRequest("GET", "/")
		var sb strings.Builder
		for i := 0; sb.Len() < fieldSize; i++ {
			if i > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "m%d=1", i)
		}
		r.Header.Set("X-Big", sb.String())
		r.Header.Set("Signature-Agent", `sig1="https://agent.example"`)
		now := time.Now()
		for s := 0; s < 4; s++ {
			ids := []string{`"@authority"`, `"signature-agent";key="sig1"`}
			for k := 0; len(ids) < 32; k++ {
				ids = append(ids, fmt.Sprintf(`"x-big";key="m%d"`, k))
			}
			label := fmt.Sprintf("s%d", s)
			r.Header.Add("Signature-Input", fmt.Sprintf("%s=(%s);created=%d;expires=%d;keyid=%q;tag=\"web-bot-auth\"",
				label, strings.Join(ids, " "), now.Unix()-5, now.Unix()+60, agent.kid))
			r.Header.Add("Signature", label+"=:"+strings.Repeat("A", 86)+"==:")
		}
		size := 0
		for k, vs := range r.Header {
			for _, v := range vs {
				size += len(k) + len(v) + 4
			}
		}
		if size > 16<<10 {
			t.Fatalf("headers are %d bytes, more than Caddy's default limit", size)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, _ = httpsfv.UnmarshalDictionary([]string{sb.String()})
		runtime.ReadMemStats(&after)
		once := after.TotalAlloc - before.TotalAlloc
		runtime.GC()
		runtime.ReadMemStats(&before)
		step.serve(httptest.NewRecorder(), r)
		runtime.ReadMemStats(&after)
		work := after.TotalAlloc - before.TotalAlloc
		t.Logf("headers %d bytes: the step allocated %d bytes; one parse of X-Big %d bytes (%.1fx)", size, work, once, float64(work)/float64(once))
		if work > 4*once {
			t.Fatalf("one %d-byte page request cost %.0fx a parse of its header", size, float64(work)/float64(once))
		}
	}
}
