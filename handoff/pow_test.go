package handoff

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The vectors of docs/agent-handoff.md (../shared/docs): challenge
// 4f2a8c1e9b3d7a6c5e0f1a2b3c4d5e6f, smallest nonce from 0.
const vectorChallenge = "4f2a8c1e9b3d7a6c5e0f1a2b3c4d5e6f"

var vectors = []struct {
	difficulty int
	nonce      string
	digest     string // full, or the prefix the notes give
}{
	{8, "325", "00b1b7b689063cb239ae85e21147b4aac19e3c8339884e483f48540670f43095"},
	{12, "4757", "0008257f1caa605d020b74e6dfd7b6de64ca9632c12b2d7d84f2e87e97b9e7e2"},
	{16, "57918", "00009173ae91"},
	{20, "3777611", "00000efa66b8"},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		d := Digest(vectorChallenge, v.nonce)
		if got := hex.EncodeToString(d[:]); !strings.HasPrefix(got, v.digest) {
			t.Errorf("SHA-256(challenge ‖ %s) = %s, want %s…", v.nonce, got, v.digest)
		}
		if !Verify(vectorChallenge, v.nonce, v.difficulty) {
			t.Errorf("nonce %s rejected at difficulty %d", v.nonce, v.difficulty)
		}
		n, _ := strconv.Atoi(v.nonce)
		if Verify(vectorChallenge, strconv.Itoa(n-1), v.difficulty) && v.difficulty > 8 {
			t.Errorf("nonce %d accepted at %d; the vector says %s is the smallest", n-1, v.difficulty, v.nonce)
		}
	}
}

// Nonce 237 gives exactly 7 leading zero bits, 725 exactly 10: a check
// that counts hex digits rejects 725 at 10, one that rounds accepts 237 at 8.
func TestLeadingZeroBitsEdges(t *testing.T) {
	if w := Work(vectorChallenge, "237"); w != 7 {
		t.Fatalf("Work(237) = %d, want 7", w)
	}
	if Verify(vectorChallenge, "237", 8) {
		t.Error("237 (7 zero bits) accepted at difficulty 8")
	}
	if !Verify(vectorChallenge, "237", 7) {
		t.Error("237 rejected at difficulty 7")
	}
	if w := Work(vectorChallenge, "725"); w != 10 {
		t.Fatalf("Work(725) = %d, want 10", w)
	}
	if !Verify(vectorChallenge, "725", 10) {
		t.Error("725 (10 zero bits) rejected at difficulty 10")
	}
	if Verify(vectorChallenge, "725", 11) {
		t.Error("725 accepted at difficulty 11")
	}
	var d [sha256.Size]byte
	if n := LeadingZeroBits(&d); n != 256 {
		t.Errorf("all-zero digest: %d bits, want 256", n)
	}
	d[31] = 1
	if n := LeadingZeroBits(&d); n != 255 {
		t.Errorf("digest ending in 01: %d bits, want 255", n)
	}
	d[0] = 0x80
	if n := LeadingZeroBits(&d); n != 0 {
		t.Errorf("digest starting with 80: %d bits, want 0", n)
	}
}

func TestSolveVectors(t *testing.T) {
	for _, v := range vectors {
		workerCounts := []int{1, 2, 7}
		if v.difficulty > 16 {
			workerCounts = []int{2} // 3.8 million hashes: once is enough
		}
		for _, workers := range workerCounts {
			got, err := solve(context.Background(), vectorChallenge, v.difficulty, 0, workers)
			if err != nil || got != v.nonce {
				t.Errorf("solve(difficulty %d, %d workers) = %q, %v; want %s", v.difficulty, workers, got, err, v.nonce)
			}
		}
	}
	if got, err := Solve(context.Background(), vectorChallenge, 7); err != nil || got != "237" {
		t.Errorf("Solve at 7 = %q, %v; want 237", got, err)
	}
	if got, err := Solve(context.Background(), vectorChallenge, 10); err != nil || got != "725" {
		t.Errorf("Solve at 10 = %q, %v; want 725", got, err)
	}
	if got, err := Solve(context.Background(), vectorChallenge, 0); err != nil || got != "0" {
		t.Errorf("Solve at 0 = %q, %v; want 0", got, err)
	}
}

func TestSolveStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := Solve(ctx, vectorChallenge, 60)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Solve at 60 bits with a 20ms deadline: %v, want the deadline", err)
	}
	if _, err := Solve(context.Background(), vectorChallenge, 65); !errors.Is(err, ErrDifficulty) {
		t.Fatalf("difficulty 65: %v", err)
	}
}

func TestFormats(t *testing.T) {
	for _, s := range []string{"0", "007", "12345678901234567890"} {
		if !ValidNonce(s) {
			t.Errorf("ValidNonce(%q) = false", s)
		}
	}
	for _, s := range []string{"", "-1", "1.5", " 1", "123456789012345678901", "１", "0x1"} {
		if ValidNonce(s) {
			t.Errorf("ValidNonce(%q) = true", s)
		}
	}
	ok := strings.Repeat("0123456789abcdef", 4)
	if !ValidChallenge(ok) {
		t.Errorf("ValidChallenge(%q) = false", ok)
	}
	for _, s := range []string{"", ok[:63], ok + "0", strings.ToUpper(ok), strings.Replace(ok, "a", "g", 1)} {
		if ValidChallenge(s) {
			t.Errorf("ValidChallenge(%q) = true", s)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	c := strings.Repeat("ab", 32)
	for b.Loop() {
		_ = Work(c, "3777611")
	}
}
