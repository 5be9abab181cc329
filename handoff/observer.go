package handoff

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-ahp/caddy-ahp/internal/jsonstr"
	"github.com/caddy-ahp/caddy-ahp/limiter"
)

// Observer is told what the handler decided, for metrics. Outcomes are
// short fixed strings (Prometheus label values).
type Observer interface {
	// ChallengeIssued: a challenge of purpose was issued at difficulty.
	ChallengeIssued(p Purpose, difficulty int)
	// Velocity reports the global admissions in the window and the
	// difficulty they set for a client of an unremarkable network.
	Velocity(global int64, difficulty int)
	// Admission: a creation attempt's outcome (admitted, exempt: admitted
	// without a proof of work, refused, malformed, too_large, tripped,
	// rate_limited, unavailable).
	Admission(outcome string)
	// Claim: a claim verification's outcome (verified, refused, locked,
	// failed, rate_limited, unavailable, cross_origin), or challenge_added when a claim
	// start's answer got its challenge.
	Claim(outcome string)
	// UniformFailure: the uniform failure was sent.
	UniformFailure()
	// RateLimited: a tier refused a request.
	RateLimited(tier string)
	// StoreError: a store (or the rate-limit store) failed. A resilient
	// store's ErrStoreUnavailable is not reported here: give its OnError
	// this call, as caddymodule does, to count the failures behind it.
	StoreError()
}

// NopObserver observes nothing.
type NopObserver struct{}

func (NopObserver) ChallengeIssued(Purpose, int) {}
func (NopObserver) Velocity(int64, int)          {}
func (NopObserver) Admission(string)             {}
func (NopObserver) Claim(string)                 {}
func (NopObserver) UniformFailure()              {}
func (NopObserver) RateLimited(string)           {}
func (NopObserver) StoreError()                  {}

var _ Observer = NopObserver{}

// storeError logs and counts a store failure. Errors of the handoff
// store and the limiter never hold a key's secret part (codes are hashed
// before they reach either). ErrStoreUnavailable is not counted: the
// resilient store that returns it counted (and logged) the real failure
// in its OnError, and returns it again without asking Redis while it
// skips the primary, so counting it here would count one failure twice
// under on_store_error closed and requests, not failures, after it.
func (h *Handler) storeError(r *http.Request, err error) {
	if errors.Is(err, ErrStoreUnavailable) || errors.Is(err, limiter.ErrStoreUnavailable) {
		h.debug(r, "store.unavailable")
		return
	}
	// A client that hung up is no store failure, and any client could
	// flood the count and the log by resetting its requests.
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		h.debug(r, "store.abandoned")
		return
	}
	h.observer.StoreError()
	h.log(r, "store.error", zap.Error(err))
}

// writeError writes a JSON error of the handler's own (not the uniform
// failure): {"error": code, "message": message}, with Retry-After when
// retry is positive.
func writeError(w http.ResponseWriter, status int, code, message string, retry time.Duration) {
	body := make([]byte, 0, 64+len(message))
	body = append(body, `{"error":`...)
	body = jsonstr.AppendString(body, code)
	body = append(body, `,"message":`...)
	body = jsonstr.AppendString(body, message)
	body = append(body, '}')
	hd := w.Header()
	hd["Content-Type"] = []string{"application/json"}
	hd["Content-Length"] = []string{strconv.Itoa(len(body))}
	hd["Cache-Control"] = []string{"no-store"}
	hd["X-Content-Type-Options"] = []string{"nosniff"}
	if retry > 0 {
		hd["Retry-After"] = []string{strconv.FormatInt(int64((retry+time.Second-1)/time.Second), 10)}
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
