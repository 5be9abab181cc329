package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddy-ahp/caddy-ahp/handoff"
)

// TestSolveOutput: `caddy ahp solve` prints one line, the bare nonce or,
// with --json, the admission object, each ending in a newline (so a shell
// prompt or the next `>>` line does not run on), and the nonce solves
// the challenge.
func TestSolveOutput(t *testing.T) {
	out, errOut, err := runAHP(t, "solve", "--json", "abc", "8")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if !strings.HasSuffix(out, "}\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("solve --json printed %q; want one JSON object and a newline", out)
	}
	var adm struct{ Type, Challenge, Nonce string }
	if err := json.Unmarshal([]byte(out), &adm); err != nil || adm.Type != "proof_of_work" || adm.Challenge != "abc" || !handoff.Verify("abc", adm.Nonce, 8) {
		t.Errorf("solve --json: %+v (%v)", adm, err)
	}
	out, errOut, err = runAHP(t, "solve", "abc", "8")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if out != adm.Nonce+"\n" {
		t.Errorf("solve printed %q; want the nonce %q and a newline", out, adm.Nonce)
	}
}
