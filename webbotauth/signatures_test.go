package webbotauth

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// One malformed web-bot-auth member in Signature-Input (a second
// signer's, or a client's junk) is that signature's own result: a sibling
// signature that verifies still names the agent, before or after it.
func TestMalformedSiblingDoesNotSpoilValidSignature(t *testing.T) {
	c := newClock()
	a := newAgent(t)
	v := pinnedVerifier(t, c, a)
	ctx := context.Background()
	many := make([]string, maxComponents+1)
	for i := range many {
		many[i] = fmt.Sprintf(`"x-%d"`, i)
	}
	for name, member := range map[string]string{
		"nonce not a string":   `rb=("@authority");created=%d;expires=%d;keyid="x";nonce=5;tag="web-bot-auth"`,
		"created is a decimal": `rb=("@authority");created=%d.5;expires=%d;keyid="x";tag="web-bot-auth"`,
		"too many components":  `rb=(` + strings.Join(many, " ") + `);created=%d;expires=%d;keyid="x";tag="web-bot-auth"`,
	} {
		bad := fmt.Sprintf(member, c.Now().Unix()-5, c.Now().Unix()+60)
		for _, first := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/malformed first=%v", name, first), func(t *testing.T) {
				r := newRequest(site, "/")
				if first {
					r.Header.Add("Signature-Input", bad)
					r.Header.Add("Signature", "rb=:AAAA:")
				}
				a.signAs(r, "https://agent.example", c.Now())
				if !first {
					r.Header.Add("Signature-Input", bad)
					r.Header.Add("Signature", "rb=:AAAA:")
				}
				res := v.Verify(ctx, r)
				if res.Outcome != Verified || res.Agent != "https://agent.example" {
					t.Fatalf("a valid agent signature next to a malformed one: %v (%s), want verified", res.Outcome, res.Reason)
				}
			})
		}
		t.Run(name+"/alone", func(t *testing.T) {
			r := newRequest(site, "/")
			r.Header.Add("Signature-Input", bad)
			r.Header.Add("Signature", "rb=:AAAA:")
			expect(t, v.Verify(ctx, r), Invalid, "signature rb")
		})
	}
}
