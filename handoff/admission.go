package handoff

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/internal/httpx"
)

// Admission is the proof of work of a creation request (spec §7.2):
// {"admission": {"type": "proof_of_work", "challenge": "...", "nonce": "..."}}.
type Admission struct {
	Challenge string
	Nonce     string
}

// ParseError is a malformed request body; its message names the field
// and what it must be, for the agent's 400.
type ParseError struct{ Message string }

func (e *ParseError) Error() string { return e.Message }

func parseErr(msg string) error { return &ParseError{Message: msg} }

// ParseAdmission reads the admission of a creation body. The body must be
// one JSON object; every other member is the backend's business and is
// only checked for syntax. Keys are matched exactly and a repeated
// "admission" (or repeated member inside it), or a spelling that only case
// folding makes "admission", is refused, so the edge and the backend
// cannot read different admissions from one body.
func ParseAdmission(body []byte) (Admission, error) {
	a, found, err := parseAdmission(body)
	if err == nil && !found {
		err = errNoAdmission
	}
	return a, err
}

var errNoAdmission = parseErr(`missing "admission": {"type": "proof_of_work", "challenge": "...", "nonce": "..."}; get a challenge first`)

// parseAdmission is ParseAdmission for a body whose admission may be
// absent (an exempt creation's): the same checks, and whether it was
// there.
func parseAdmission(body []byte) (a Admission, found bool, err error) {
	err = walkBody(body, func(s *scanner, key []byte) error {
		if string(key) != "admission" {
			if folds(key, "admission") {
				return nearKeyErr(key, "admission")
			}
			if !s.skip(0) {
				return errSyntax
			}
			return nil
		}
		if found {
			return parseErr(`"admission" appears twice`)
		}
		found = true
		return parsePoW(s, "admission", true, &a.Challenge, &a.Nonce)
	})
	if err != nil {
		return Admission{}, false, err
	}
	return a, found, nil
}

// parsePoW reads {"type": "proof_of_work", "challenge": ..., "nonce": ...}
// at the scanner's position; name is the member's name for messages.
// needType requires the type member (creation's admission does).
func parsePoW(s *scanner, name string, needType bool, challenge, nonce *string) error {
	switch s.peek() {
	case '{':
	case '"', '[', 't', 'f', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return parseErr(strconv.Quote(name) + ` must be an object: {"type": "proof_of_work", "challenge": "...", "nonce": "..."}`)
	default:
		return errSyntax
	}
	var seenType, seenChallenge, seenNonce bool
	err := s.object(func(key []byte) error {
		var dst *string
		var seen *bool
		var typ string
		switch string(key) {
		case "type":
			dst, seen = &typ, &seenType
		case "challenge":
			dst, seen = challenge, &seenChallenge
		case "nonce":
			dst, seen = nonce, &seenNonce
		default:
			for _, k := range [...]string{"type", "challenge", "nonce"} {
				if folds(key, k) {
					return nearKeyErr(key, k)
				}
			}
			if !s.skip(1) {
				return errSyntax
			}
			return nil
		}
		if *seen {
			return parseErr(name + "." + string(key) + " appears twice")
		}
		*seen = true
		v, err := s.stringValue(name + "." + string(key))
		if err != nil {
			return err
		}
		*dst = v
		if dst == &typ && v != "proof_of_work" {
			return parseErr(name + `.type must be "proof_of_work"`)
		}
		return nil
	})
	switch {
	case err != nil:
		return err
	case needType && !seenType:
		return parseErr(`missing ` + name + `.type: "proof_of_work"`)
	case !seenChallenge:
		return parseErr("missing " + name + ".challenge")
	case !seenNonce:
		return parseErr("missing " + name + ".nonce")
	case !ValidChallenge(*challenge):
		return parseErr(name + ".challenge must be the 64 lowercase hex digits of a challenge from the challenge endpoint")
	case !ValidNonce(*nonce):
		return parseErr(name + ".nonce must be a string of 1 to 20 decimal digits")
	}
	return nil
}

// nearKeyErr refuses a key that is want only under case folding
// ("Admission", "admiſſion"): decoders that fold case (Go's encoding/json
// among them) would read it as want, so the edge and a backend could
// disagree on what the body says.
func nearKeyErr(key []byte, want string) error {
	return parseErr(strconv.Quote(string(key)) + ": write it " + strconv.Quote(want))
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// errTooLarge: the body is over the limit.
var errTooLarge = errors.New("body too large")

// readBody reads at most limit bytes of the body into a pooled buffer;
// a declared or actual size over the limit is refused without reading
// more. Give the buffer back with putBuffer.
func readBody(r *http.Request, limit int64) (*bytes.Buffer, error) {
	if r.ContentLength > limit {
		return nil, errTooLarge
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	if r.Body == nil {
		return buf, nil
	}
	n, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		putBuffer(buf)
		return nil, err
	}
	if n > limit {
		putBuffer(buf)
		return nil, errTooLarge
	}
	return buf, nil
}

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > 1<<20 {
		return
	}
	bufPool.Put(b)
}

// replaceBody gives the next handler the body that was read, unchanged.
func replaceBody(r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
	r.Header["Content-Length"] = []string{strconv.Itoa(len(body))}
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}

// admissionValue is the AdmissionHeader's value.
func admissionValue(p Purpose, difficulty int) string {
	return "verified; purpose=" + p.String() + "; difficulty=" + strconv.Itoa(difficulty)
}

// exemptValue is the AdmissionHeader's value for a creation exempt from
// the proof of work. It does not begin with "verified;", so a backend
// that predates exemptions refuses it rather than taking it for a proof.
func exemptValue(agent string) string {
	return "verified-agent; purpose=create; agent=" + agent
}

// serveCreate verifies and spends the admission of a creation request
// (spec §7.2, §11) and only then forwards it, body unchanged.
func (h *Handler) serveCreate(w http.ResponseWriter, r *http.Request, next Next) error {
	ip := h.clientIP(r)
	res, err := h.check(r.Context(), tierCreate, ip, clientKey(ip), "")
	if err != nil {
		h.storeError(r, err)
		h.observer.Admission("unavailable")
		writeError(w, http.StatusServiceUnavailable, "unavailable", "The service is unavailable; retry later.", time.Second)
		return nil
	}
	if !res.allowed {
		h.observer.RateLimited(string(res.tier))
		h.observer.Admission("rate_limited")
		h.log(r, "create.rate_limited")
		writeError(w, http.StatusTooManyRequests, "rate_limited", "Too many creation attempts; retry later.", res.retryAfter)
		return nil
	}
	if !jsonBody(r) {
		h.observer.Admission("malformed")
		h.log(r, "create.content_type")
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Send the body as application/json.", 0)
		return nil
	}
	buf, err := readBody(r, h.bodyLimit)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			h.observer.Admission("too_large")
			h.log(r, "create.too_large")
			writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", "The body is larger than "+strconv.FormatInt(h.bodyLimit, 10)+" bytes.", 0)
			return nil
		}
		h.observer.Admission("malformed")
		writeError(w, http.StatusBadRequest, "invalid_request", "The body could not be read.", 0)
		return nil
	}
	defer putBuffer(buf)
	agent := ""
	if h.proofExempt != nil {
		agent = h.proofExempt(r)
	}
	// An exempt creation's body is checked like any other: the edge and
	// the backend must read the same body. An admission in it is neither
	// required nor spent.
	a, found, err := parseAdmission(buf.Bytes())
	if err == nil && !found && agent == "" {
		err = errNoAdmission
	}
	if err != nil {
		h.observer.Admission("malformed")
		h.log(r, "create.malformed")
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error(), 0)
		return nil
	}
	if agent != "" {
		return h.serveExemptCreate(w, r, next, buf.Bytes(), ip, agent)
	}
	op := &AdmitOp{Purpose: PurposeCreate, Challenge: a.Challenge, Work: Work(a.Challenge, a.Nonce),
		Network: Network(ip), Now: h.now(), Policy: &h.difficulty}
	if err := h.store.Admit(r.Context(), op); err != nil {
		h.storeError(r, err)
		h.observer.Admission("unavailable")
		writeError(w, http.StatusServiceUnavailable, "unavailable", "The service is unavailable; retry later.", time.Second)
		return nil
	}
	switch op.Outcome {
	case Tripped:
		h.observer.Velocity(op.GlobalVelocity, h.difficulty.For(op.GlobalVelocity, 0))
		h.observer.Admission("tripped")
		h.log(r, "create.tripped", zap.Int64("velocity", op.GlobalVelocity))
		writeError(w, http.StatusServiceUnavailable, "unavailable", "Sandbox creation is paused while too many sandboxes are being created; retry later.", op.RetryAfter)
		return nil
	case Admitted:
	default:
		h.observer.Admission("refused")
		h.log(r, "create.refused")
		writeError(w, http.StatusForbidden, "admission_refused",
			"The proof of work was not accepted: request a new challenge (the difficulty may have risen since this one was issued), solve it and send it once.", 0)
		return nil
	}
	h.observer.Velocity(op.GlobalVelocity, h.difficulty.For(op.GlobalVelocity, 0))
	h.observer.Admission("admitted")
	h.log(r, "create.admitted", zap.Int("difficulty", op.Difficulty), zap.Int64("velocity", op.GlobalVelocity), zap.Bool("degraded", op.Degraded))
	r.Header[AdmissionHeader] = []string{admissionValue(PurposeCreate, op.Difficulty)}
	replaceBody(r, buf.Bytes())
	return next.ServeHTTP(w, r)
}

// jsonBody: the request's body is declared JSON, or not declared at all
// (an agent's client may send no Content-Type; the body is parsed strictly
// either way). A form or text body is refused before it is read. This is
// no defence against cross-site requests (a browser can POST with no
// Content-Type and no preflight): the proof of work and the claim's
// cross-site checks are.
func jsonBody(r *http.Request) bool {
	ct := r.Header["Content-Type"]
	return len(ct) == 0 || (len(ct) == 1 && httpx.IsJSON(ct[0]))
}

// serveExemptCreate admits a creation whose agent may skip the proof of
// work: rate limited (already) and counted toward the velocities and the
// circuit breaker like a solved one, then forwarded with the agent named.
func (h *Handler) serveExemptCreate(w http.ResponseWriter, r *http.Request, next Next, body []byte, ip, agent string) error {
	op := &ExemptOp{Network: Network(ip), Now: h.now(), Policy: &h.difficulty}
	if err := h.store.AdmitExempt(r.Context(), op); err != nil {
		h.storeError(r, err)
		h.observer.Admission("unavailable")
		writeError(w, http.StatusServiceUnavailable, "unavailable", "The service is unavailable; retry later.", time.Second)
		return nil
	}
	h.observer.Velocity(op.GlobalVelocity, h.difficulty.For(op.GlobalVelocity, 0))
	if op.Outcome == Tripped {
		h.observer.Admission("tripped")
		h.log(r, "create.tripped", zap.Int64("velocity", op.GlobalVelocity), zap.String("agent", agent))
		writeError(w, http.StatusServiceUnavailable, "unavailable", "Sandbox creation is paused while too many sandboxes are being created; retry later.", op.RetryAfter)
		return nil
	}
	h.observer.Admission("exempt")
	h.log(r, "create.exempt", zap.String("agent", agent), zap.Int64("velocity", op.GlobalVelocity), zap.Bool("degraded", op.Degraded))
	r.Header[AdmissionHeader] = []string{exemptValue(agent)}
	replaceBody(r, body)
	return next.ServeHTTP(w, r)
}
