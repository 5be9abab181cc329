// Package conformance checks, from the outside and as an agent would,
// whether a website speaks the Agent Handshake Protocol (AHP 0.1) correctly,
// and, where the site offers them, Agent Handoff (1.0-rc1) and the Handshake
// Prompt Protocol. It knows nothing of Caddy or of this plugin: it works
// against any site on the internet, and `caddy ahp check` is a thin command
// around Run.
//
// Every check is named (Catalogue), has a level (MUST or SHOULD, from the
// spec's own words), names the spec section it tests, says what it saw and,
// when it fails, how to fix it. A Report passes (OK) when no MUST failed;
// SHOULD failures are reported but do not fail it.
//
// # Politeness
//
// The checker is a guest on the site it checks:
//   - every request carries a User-Agent naming the checker and its home;
//   - requests are sequential, paced (Options.Rate) and counted against a
//     budget (Options.Budget); when the budget runs out the remaining checks
//     are skipped, never silently passed nor failed;
//   - a 429 is the site's rate limit working: the check that met it is
//     skipped, saying when to retry, and after the converse endpoint's
//     first 429 no more converse probes are sent;
//   - redirects are followed only within the site (same host; http to https
//     allowed, and then the https site is the one checked) and only for
//     GET and HEAD;
//   - requests go only to the site's own host, even where the site's
//     documents name endpoints elsewhere;
//   - every request has a timeout, and bodies are read up to a cap; after
//     three requests in a row time out, no more are sent;
//   - nothing that changes state is sent without an explicit option: a
//     sandbox is created only with Options.CreateSandbox, a Handshake Prompt
//     session only with Options.HPP, and the site is driven to a 429 only
//     with Options.RateLimit. The converse probes are requests the spec
//     requires the site to refuse (unknown capability, missing field, an
//     oversized body, each action without credentials), plus one read-only
//     query per MODE2 capability.
//
// # Output
//
// A Report marshals to the documented, stable JSON format (ReportSchema,
// docs/conformance.md); WriteText renders the table a terminal shows.
package conformance
