package handoff

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// newChallengeString returns the lowercase hex of 32 random bytes.
func newChallengeString() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	var out [ChallengeLen]byte
	hex.Encode(out[:], b[:])
	return string(out[:])
}

// appendChallenge renders spec §7.1's challenge answer, with the proof of
// work's definition beside it (docs/agent-handoff.md).
func appendChallenge(b []byte, challenge string, difficulty int, expires time.Time) []byte {
	b = append(b, `{"challenge":"`...)
	b = append(b, challenge...)
	b = append(b, `","difficulty":`...)
	b = strconv.AppendInt(b, int64(difficulty), 10)
	b = append(b, `,"algorithm":"sha256_leading_zeros","input":"challenge+nonce","nonce_format":"decimal","expires_at":"`...)
	b = expires.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, `","note":"Difficulty is adaptive and may change"}`...)
	return b
}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// serveChallenge issues a challenge (spec §7.1) for creation, or for a
// claim from the claim-challenge path the browser solver asks.
func (h *Handler) serveChallenge(w http.ResponseWriter, r *http.Request, p Purpose) error {
	if r.Method != http.MethodGet {
		w.Header()["Allow"] = []string{"GET"}
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Use GET to obtain a challenge.", 0)
		return nil
	}
	ip := h.clientIP(r)
	res, err := h.check(r.Context(), tierChallenge, ip, clientKey(ip), "")
	if err != nil {
		h.storeError(r, err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "The service is unavailable; retry later.", time.Second)
		return nil
	}
	if !res.allowed {
		h.observer.RateLimited(string(res.tier))
		h.debug(r, "challenge.rate_limited", zap.Stringer("purpose", p))
		writeError(w, http.StatusTooManyRequests, "rate_limited", "Too many challenge requests; retry later.", res.retryAfter)
		return nil
	}
	ch, op, err := h.issue(r, p, ip)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "The service is unavailable; retry later.", time.Second)
		return nil
	}
	if op.Tripped {
		h.observer.Admission("tripped")
		h.log(r, "challenge.tripped", zap.Int64("velocity", op.GlobalVelocity))
		writeError(w, http.StatusServiceUnavailable, "unavailable", "Sandbox creation is paused while too many sandboxes are being created; retry later.", op.RetryAfter)
		return nil
	}
	bp := bodyPool.Get().(*[]byte)
	body := appendChallenge((*bp)[:0], ch, op.Difficulty, op.Now.Add(h.challengeTTL))
	hd := w.Header()
	hd["Content-Type"] = []string{"application/json"}
	hd["Content-Length"] = []string{strconv.Itoa(len(body))}
	hd["Cache-Control"] = []string{"no-store"}
	if p == PurposeClaim {
		setNoFrames(hd)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	*bp = body
	bodyPool.Put(bp)
	return nil
}

// issue stores a fresh challenge of purpose p and reports it: the string
// the store issued, which a falling-back store replaces.
func (h *Handler) issue(r *http.Request, p Purpose, ip string) (string, *IssueOp, error) {
	ch := newChallengeString()
	op := &IssueOp{Purpose: p, Challenge: ch, Network: Network(ip), Now: h.now(), TTL: h.challengeTTL, Policy: &h.difficulty}
	if err := h.store.Issue(r.Context(), op); err != nil {
		h.storeError(r, err)
		return "", nil, err
	}
	h.observer.Velocity(op.GlobalVelocity, h.difficulty.For(op.GlobalVelocity, 0))
	if !op.Tripped {
		h.observer.ChallengeIssued(p, op.Difficulty)
		h.debug(r, "challenge.issued", zap.Stringer("purpose", p), zap.Int("difficulty", op.Difficulty), zap.Bool("degraded", op.Degraded))
	}
	return op.Challenge, op, nil
}
