package middleware

import "time"

// Observer is told what the pipeline did, for metrics. Implementations
// must be cheap and safe for concurrent use.
type Observer interface {
	ManifestServed()
	Negotiated()
	ContentServed()
	NoticeInjected()
	// NoticeSkipped gives the reason a page kept its body unchanged.
	NoticeSkipped(reason string)
	ConverseAllowed()
	// ConverseRejected gives the AHP error code of a refused request.
	ConverseRejected(code string)
	// RateLimited gives the scope of a 429 (ip, agent, session_tokens).
	RateLimited(scope string)
	// StoreError counts failed limit decisions and accounting writes.
	StoreError()
	// StoreFallback counts decisions answered by the fallback store.
	StoreFallback()
	// LimiterDecision times one store decision.
	LimiterDecision(time.Duration)
}

// NopObserver observes nothing.
type NopObserver struct{}

func (NopObserver) ManifestServed()               {}
func (NopObserver) Negotiated()                   {}
func (NopObserver) ContentServed()                {}
func (NopObserver) NoticeInjected()               {}
func (NopObserver) NoticeSkipped(string)          {}
func (NopObserver) ConverseAllowed()              {}
func (NopObserver) ConverseRejected(string)       {}
func (NopObserver) RateLimited(string)            {}
func (NopObserver) StoreError()                   {}
func (NopObserver) StoreFallback()                {}
func (NopObserver) LimiterDecision(time.Duration) {}
