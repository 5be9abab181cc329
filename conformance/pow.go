package conformance

import (
	"strconv"

	"github.com/caddy-ahp/caddy-ahp/handoff"
)

// The Agent Handoff proof of work is the one docs/agent-handoff.md fixes;
// the checker solves challenges with the plugin's own solver
// (handoff.Solve), which is checked against that document's vectors.

// maxPoWDifficulty is the most the checker solves: 28 bits is the spec's
// ceiling "under abuse" (§29), about 2^28 hashes, a minute or two.
const maxPoWDifficulty = 28

// unsolvedNonce is the smallest nonce that does not solve the challenge
// (for difficulty ≥ 1, almost always "0").
func unsolvedNonce(challenge string, difficulty int) string {
	for n := 0; ; n++ {
		s := strconv.Itoa(n)
		if !handoff.Verify(challenge, s, difficulty) {
			return s
		}
	}
}
