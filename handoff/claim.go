package handoff

import (
	"context"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// ClaimVerification is a claim verification request: the claim code and a
// proof of work on a claim challenge (spec §19.2), as
// {"code": "...", "proof_of_work": {"challenge": "...", "nonce": "..."}}
// ("claim_code" is accepted for "code").
type ClaimVerification struct {
	Code      string
	Challenge string
	Nonce     string
}

// MaxCodeLen bounds a claim code.
const MaxCodeLen = 256

// ParseClaimVerification reads a claim verification body. As with
// ParseAdmission, keys are exact and repeats are refused.
func ParseClaimVerification(body []byte) (ClaimVerification, error) {
	var v ClaimVerification
	var code, pow bool
	err := walkBody(body, func(s *scanner, key []byte) error {
		switch string(key) {
		case "code", "claim_code":
			if code {
				return parseErr("the claim code appears twice")
			}
			code = true
			c, err := s.stringValue(string(key))
			if err != nil {
				return err
			}
			v.Code = c
			return nil
		case "proof_of_work":
			if pow {
				return parseErr(`"proof_of_work" appears twice`)
			}
			pow = true
			return parsePoW(s, "proof_of_work", false, &v.Challenge, &v.Nonce)
		}
		for _, k := range [...]string{"code", "claim_code", "proof_of_work"} {
			if folds(key, k) {
				return nearKeyErr(key, k)
			}
		}
		if !s.skip(0) {
			return errSyntax
		}
		return nil
	})
	switch {
	case err != nil:
		return ClaimVerification{}, err
	case !code || v.Code == "":
		return ClaimVerification{}, parseErr(`missing "code"`)
	case len(v.Code) > MaxCodeLen:
		return ClaimVerification{}, parseErr(`"code" is too long`)
	case !utf8.ValidString(v.Code):
		return ClaimVerification{}, parseErr(`"code" is not valid UTF-8`)
	case !pow:
		return ClaimVerification{}, parseErr(`missing "proof_of_work": {"challenge": "...", "nonce": "..."}`)
	}
	return v, nil
}

// serveVerify is claim verification (spec §19): rate limits per client
// and per code, progressive lockout, and a claim proof of work verified and
// spent before the backend sees the code; every failure, the backend's
// included, is the uniform failure.
func (h *Handler) serveVerify(w http.ResponseWriter, r *http.Request, next Next, start time.Time) error {
	setNoFrames(w.Header())
	if r.Method != http.MethodPost {
		h.debug(r, "claim.method_refused")
		return h.failure(w, r, start)
	}
	if h.crossSite(r, "claim") {
		h.observer.Claim("cross_origin")
		return h.failure(w, r, start)
	}
	if !jsonBody(r) {
		// No oracle: a wrong Content-Type is one more claim failure, told
		// apart from the others only in the log.
		h.observer.Claim("malformed")
		h.log(r, "claim.content_type")
		return h.failure(w, r, start)
	}
	ip := h.clientIP(r)
	ck := clientKey(ip)
	buf, err := readBody(r, h.bodyLimit)
	if err != nil {
		h.observer.Claim("malformed")
		h.log(r, "claim.unreadable")
		return h.failure(w, r, start)
	}
	defer putBuffer(buf)
	v, err := ParseClaimVerification(buf.Bytes())
	if err != nil {
		h.observer.Claim("malformed")
		h.log(r, "claim.malformed")
		return h.failure(w, r, start)
	}
	code := codeKey(v.Code)
	res, err := h.check(r.Context(), tierVerify, ip, ck, code)
	if err != nil {
		h.storeError(r, err)
		h.observer.Claim("unavailable")
		return h.failure(w, r, start)
	}
	if !res.allowed {
		h.observer.RateLimited(string(res.tier))
		h.observer.Claim("rate_limited")
		h.log(r, "claim.rate_limited", zap.String("tier", string(res.tier)))
		return h.failure(w, r, start)
	}
	lockKeys := []string{"c:" + ck, "k:" + code}
	op := &AdmitOp{Purpose: PurposeClaim, Challenge: v.Challenge, Work: Work(v.Challenge, v.Nonce),
		Network: Network(ip), Now: h.now(), Policy: &h.difficulty, LockKeys: lockKeys, Lockout: &h.lockout}
	if err := h.store.Admit(r.Context(), op); err != nil {
		h.storeError(r, err)
		h.observer.Claim("unavailable")
		return h.failure(w, r, start)
	}
	switch op.Outcome {
	case Admitted:
	case Locked:
		h.observer.Claim("locked")
		h.log(r, "claim.locked", zap.Duration("remaining", op.RetryAfter))
		return h.failure(w, r, start)
	default:
		h.observer.Claim("refused")
		h.log(r, "claim.refused", zap.Bool("lock_started", op.LockStarted))
		return h.failure(w, r, start)
	}
	r.Header[AdmissionHeader] = []string{admissionValue(PurposeClaim, op.Difficulty)}
	replaceBody(r, buf.Bytes())
	iw := newInterceptWriter(w)
	err = next.ServeHTTP(iw, r)
	if iw.succeeded() {
		// Admission charged the claim as a failure (claims sent at once
		// meet the lockout as if sent one by one); the backend verified
		// it: give it back, even if the client has gone (the store call
		// has its own timeout). A refund that fails leaves the failure
		// counted.
		if rerr := h.store.Refund(context.WithoutCancel(r.Context()), op); rerr != nil {
			h.storeError(r, rerr)
		}
		h.observer.Claim("verified")
		h.log(r, "claim.verified", zap.Int("difficulty", op.Difficulty))
		return nil
	}
	// Already counted at admission: no store call on this path.
	h.observer.Claim("failed")
	h.log(r, "claim.failed", zap.Bool("lock_started", op.LockStarted))
	return h.finishUniform(w, r, iw, err, start)
}

// maxClaimAnswer is the largest claim start answer rewritten; a larger one
// passes unchanged (and without a claim challenge).
const maxClaimAnswer = 64 << 10

// serveClaimStart forwards a claim start (spec §19, Appendix A) and adds a
// fresh claim challenge, never the creation one, to its successful JSON
// answer: into its "claim" object when it has one, else at the top level,
// as "pow_challenge".
func (h *Handler) serveClaimStart(w http.ResponseWriter, r *http.Request, next Next, start time.Time, uniform bool) error {
	setNoFrames(w.Header())
	if uniform {
		if refused, err := h.limitUniform(w, r, start); refused || err != nil {
			return err
		}
	}
	iw := newInterceptWriter(w)
	iw.passFailures = !uniform
	// With verify off nothing would spend a claim challenge: the answer
	// passes unchanged.
	if r.Method == http.MethodPost && h.paths.Verify != "" {
		// The answer is rewritten: ask for it uncompressed.
		r.Header.Del("Accept-Encoding")
		iw.capture, iw.captureLimit = true, maxClaimAnswer
	}
	err := next.ServeHTTP(iw, r)
	if !iw.succeeded() {
		if !uniform {
			return err
		}
		return h.finishUniform(w, r, iw, err, start)
	}
	if !iw.captured {
		return err
	}
	iw.captured = false
	body := iw.buf.Bytes()
	ch, op, ierr := h.issue(r, PurposeClaim, h.clientIP(r))
	if ierr == nil {
		member := append([]byte(`"pow_challenge":`), appendChallenge(nil, ch, op.Difficulty, op.Now.Add(h.challengeTTL))...)
		if out, ok := injectMember(body, member); ok {
			body = out
			h.observer.Claim("challenge_added")
			h.log(r, "claim.challenge_added", zap.Int("difficulty", op.Difficulty))
		} else {
			h.log(r, "claim.answer_not_an_object")
		}
	}
	hd := iw.staged
	hd["Content-Length"] = []string{strconv.Itoa(len(body))}
	delete(hd, "Etag")
	iw.release()
	_, werr := iw.w.Write(body)
	if err == nil {
		err = werr
	}
	return err
}

// injectMember adds member (`"name":value`) at the end of the top-level
// object's "claim" object, or of the top-level object when it has no
// "claim" object; the rest of the body stays byte for byte. Last in its
// object, the member wins in parsers that keep the last of repeated keys.
func injectMember(body, member []byte) ([]byte, bool) {
	sc := &scanner{b: body}
	if sc.peek() != '{' {
		return nil, false
	}
	topEmpty := false
	if t := (&scanner{b: body, i: sc.i + 1}); t.peek() == '}' {
		topEmpty = true
	}
	claimAt, claimEmpty := -1, false
	err := sc.object(func(key []byte) error {
		if string(key) == "claim" && sc.peek() == '{' {
			empty := (&scanner{b: body, i: sc.i + 1}).peek() == '}'
			if !sc.skip(1) {
				return errSyntax
			}
			claimAt, claimEmpty = sc.i-1, empty // the closing brace
			return nil
		}
		if !sc.skip(1) {
			return errSyntax
		}
		return nil
	})
	if err != nil {
		return nil, false
	}
	topAt := sc.i - 1
	if sc.ws(); sc.i != len(body) {
		return nil, false
	}
	at, empty := topAt, topEmpty
	if claimAt >= 0 {
		at, empty = claimAt, claimEmpty
	}
	if at < 0 || at >= len(body) || body[at] != '}' {
		return nil, false
	}
	out := make([]byte, 0, len(body)+len(member)+1)
	out = append(out, body[:at]...)
	if !empty {
		out = append(out, ',')
	}
	out = append(out, member...)
	out = append(out, body[at:]...)
	return out, true
}
