package handoff

import (
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"hash"
	"math/bits"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

// Algorithm is the proof-of-work algorithm of spec §7.1.
const Algorithm = "sha256_leading_zeros"

// MaxDifficulty is the highest difficulty this package issues or solves,
// in bits. 64 bits is far beyond any solver; the bound keeps arithmetic
// and configuration sane.
const MaxDifficulty = 64

// MaxNonceLen is the longest nonce accepted: 20 decimal digits holds
// every uint64.
const MaxNonceLen = 20

// ChallengeLen is the length of a challenge issued here: the lowercase hex
// of 32 random bytes (256 bits).
const ChallengeLen = 64

// LeadingZeroBits counts the leading zero bits of a digest, most
// significant bit of byte 0 first.
func LeadingZeroBits(digest *[sha256.Size]byte) int {
	n := 0
	for _, b := range digest {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// Digest is SHA-256(challenge ‖ nonce): UTF-8 bytes, no separator.
func Digest(challenge, nonce string) [sha256.Size]byte {
	// One buffer on the stack for the usual sizes: 64 + 20 bytes.
	var buf [ChallengeLen + MaxNonceLen]byte
	b := append(buf[:0], challenge...)
	b = append(b, nonce...)
	return sha256.Sum256(b)
}

// Work is the number of leading zero bits of SHA-256(challenge ‖ nonce):
// the difficulty the pair satisfies. It is computed before any store is
// asked, so that verification costs one SHA-256 and one store round trip.
func Work(challenge, nonce string) int {
	d := Digest(challenge, nonce)
	return LeadingZeroBits(&d)
}

// Verify reports whether nonce solves challenge at difficulty (bits): the
// digest has at least difficulty leading zero bits and the nonce is 1 to
// 20 decimal digits.
func Verify(challenge, nonce string, difficulty int) bool {
	return ValidNonce(nonce) && Work(challenge, nonce) >= difficulty
}

// ValidNonce reports whether s is a nonce of the format this package
// accepts: 1 to 20 ASCII decimal digits.
func ValidNonce(s string) bool {
	if len(s) == 0 || len(s) > MaxNonceLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ValidChallenge reports whether s has the form of a challenge issued
// here: 64 lowercase hex digits.
func ValidChallenge(s string) bool {
	if len(s) != ChallengeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ErrDifficulty is returned by Solve for a difficulty outside 0..MaxDifficulty.
var ErrDifficulty = errors.New("handoff: difficulty must be between 0 and 64 bits")

// solveChunk is how many nonces a solver goroutine tries per claim of
// work; small enough that finding the smallest nonce wastes little.
const solveChunk = 1 << 14

// Solve finds the smallest decimal nonce, counting from 0, such that
// SHA-256(challenge ‖ nonce) has at least difficulty leading zero bits
// (the definition in docs/agent-handoff.md). It uses every CPU; the
// answer does not depend on how many there are. It stops when ctx is done.
func Solve(ctx context.Context, challenge string, difficulty int) (string, error) {
	return solve(ctx, challenge, difficulty, 0, runtime.GOMAXPROCS(0))
}

func solve(ctx context.Context, challenge string, difficulty int, from uint64, workers int) (string, error) {
	if difficulty < 0 || difficulty > MaxDifficulty {
		return "", ErrDifficulty
	}
	// The hash state after the challenge is computed once: for a 64-byte
	// challenge each nonce then costs one SHA-256 block, not two.
	h := sha256.New()
	h.Write([]byte(challenge))
	mid, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return "", err
	}
	var (
		next    atomic.Uint64 // next chunk index to claim
		best    atomic.Uint64 // smallest nonce found so far; MaxUint64: none
		stopped atomic.Bool
		wg      sync.WaitGroup
	)
	best.Store(^uint64(0))
	done := ctx.Done()
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newSolver(mid)
			for !stopped.Load() {
				chunk := next.Add(1) - 1
				lo := from + chunk*solveChunk
				if lo < from || lo >= best.Load() { // overflow, or every later nonce is larger
					return
				}
				select {
				case <-done:
					stopped.Store(true)
					return
				default:
				}
				hi := lo + solveChunk
				if hi < lo {
					hi = ^uint64(0)
				}
				if n, ok := s.search(lo, hi, difficulty); ok {
					for {
						b := best.Load()
						if n >= b || best.CompareAndSwap(b, n) {
							break
						}
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := best.Load(); n != ^uint64(0) {
		return strconv.FormatUint(n, 10), nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return "", errors.New("handoff: no nonce found")
}

// solver is one goroutine's hashing state.
type solver struct {
	mid    []byte
	h      hash.Hash
	un     encoding.BinaryUnmarshaler
	digits [MaxNonceLen]byte
	sum    [sha256.Size]byte
}

func newSolver(mid []byte) *solver {
	h := sha256.New()
	return &solver{mid: mid, h: h, un: h.(encoding.BinaryUnmarshaler)}
}

// search tries nonces lo..hi-1 in order and returns the first that works.
func (s *solver) search(lo, hi uint64, difficulty int) (uint64, bool) {
	for n := lo; n < hi; n++ {
		if err := s.un.UnmarshalBinary(s.mid); err != nil {
			panic(err) // the state came from the same hash implementation
		}
		s.h.Write(strconv.AppendUint(s.digits[:0], n, 10))
		s.h.Sum(s.sum[:0])
		if LeadingZeroBits(&s.sum) >= difficulty {
			return n, true
		}
	}
	return 0, false
}
