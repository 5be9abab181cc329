// Package handoff enforces the Agent Handoff Protocol 1.0-rc1 (seed 002)
// at the edge, in front of a provider's existing backend: discovery at
// /.well-known/agent-access, proof-of-work admission to sandbox creation
// with adaptive difficulty and a circuit breaker, claim verification with
// a fresh proof of work, rate limits and progressive lockout, one uniform
// failure (status, body, headers and a timing floor) on the paths where
// failures must not be told apart, scanner-safe exchange pages, and the
// rules of sandbox content and preview origins. A creation whose agent
// [Config.ProofExempt] names (a verified agent on the operator's list)
// skips the proof of work but not the rate limit, the velocities or the
// circuit breaker.
//
// The proof of work is the one fixed by docs/agent-handoff.md:
// SHA-256(challenge ‖ nonce) with at least `difficulty` leading zero bits,
// the challenge being 64 lowercase hex digits issued here and the nonce
// 1 to 20 decimal digits. [Solve] is the agent's side.
//
// The package knows no Caddy: [Handler.ServeHTTP] takes the next handler
// as a [Next], which caddyhttp.Handler satisfies, and state lives in a
// [Store] (in memory, or Redis shared by every instance) plus a
// limiter.Store for the per-client rate limits.
package handoff
