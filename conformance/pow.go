package conformance

import (
	"context"
	"crypto/sha256"
	"errors"
	"math/bits"
	"strconv"
)

// The Agent Handoff proof of work, exactly as docs/agent-handoff.md (the
// project's shared notes) defines sha256_leading_zeros: digest =
// SHA-256(UTF-8(challenge) ‖ UTF-8(nonce)), nonce a string of 1 to 20
// decimal digits, valid iff the digest has at least difficulty leading zero
// bits, most significant bit of byte 0 first. The checker must solve the
// site's challenges itself, so it carries its own small solver; the plugin's
// handoff package has its own for the server side.

// maxPoWDifficulty is the most the checker solves: 28 bits is the spec's
// ceiling "under abuse" (§29), about 2^28 hashes, a minute or two.
const maxPoWDifficulty = 28

// leadingZeroBits counts the digest's leading zero bits.
func leadingZeroBits(d [sha256.Size]byte) int {
	n := 0
	for _, b := range d {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// verifyPoW reports whether nonce solves the challenge at difficulty.
func verifyPoW(challenge, nonce string, difficulty int) bool {
	if len(nonce) == 0 || len(nonce) > 20 {
		return false
	}
	for i := 0; i < len(nonce); i++ {
		if nonce[i] < '0' || nonce[i] > '9' {
			return false
		}
	}
	return leadingZeroBits(sha256.Sum256([]byte(challenge+nonce))) >= difficulty
}

// solvePoW finds the smallest nonce, counting from 0, that solves the
// challenge; it gives up when ctx ends.
func solvePoW(ctx context.Context, challenge string, difficulty int) (string, error) {
	if difficulty < 0 || difficulty > 256 {
		return "", errors.New("difficulty out of range")
	}
	buf := make([]byte, 0, len(challenge)+20)
	buf = append(buf, challenge...)
	for n := uint64(0); ; n++ {
		if n&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return "", err
			}
		}
		b := strconv.AppendUint(buf, n, 10)
		if leadingZeroBits(sha256.Sum256(b)) >= difficulty {
			return string(b[len(challenge):]), nil
		}
	}
}

// unsolvedNonce is the smallest nonce that does not solve the challenge
// (for difficulty ≥ 1, almost always "0").
func unsolvedNonce(challenge string, difficulty int) string {
	for n := 0; ; n++ {
		s := strconv.Itoa(n)
		if !verifyPoW(challenge, s, difficulty) {
			return s
		}
	}
}
