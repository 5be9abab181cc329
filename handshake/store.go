package handshake

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is a session that does not exist or expired.
var ErrNotFound = errors.New("handshake: session not found or expired")

// ErrFull is returned by Create when a store holds as many sessions as it
// may (the memory store's bound).
var ErrFull = errors.New("handshake: too many sessions")

// errClientFull: the creating client holds as many sessions as the memory
// store lets one client hold.
var errClientFull = fmt.Errorf("%w of this client", ErrFull)

// errNetworkFull: the memory store holds MaxPerNetwork sessions of the
// client's network (IPv4 /24, IPv6 /48).
var errNetworkFull = fmt.Errorf("%w of this network", ErrFull)

// Record is what never changes in a session after it is created. The
// Redis store's handler caches it per instance, so that the token is
// checked before the rate limit without a round trip of its own.
type Record struct {
	ID        string
	TokenHash [sha256.Size]byte
	Mode      string
	Form      bool // form-fill rules: schema checks, protection, context
	Schema    *Schema
	// Extra are the creation context's keys its schema does not list: a
	// form session whose schema lists fields takes these besides its
	// schema's (the site put them in the form's context), unchecked as
	// the SDK takes them, and refuses any other key.
	Extra []string
	Meta  json.RawMessage // a JSON object
	Owner string          // attached by the create hook
	// Binding is the SHA-256 of the browser credential (browser_auth
	// cookie) the session was created with; zero when none.
	Binding [sha256.Size]byte
	Bound   bool
	// Client is who created the session, as create_rate counts clients
	// (an IP address, an IPv6 /64): the memory store caps sessions per
	// client. Not kept by the Redis store (it has no such cap).
	Client string
}

// TokenOK compares a presented token with the session's in constant time.
func (r *Record) TokenOK(token string) bool {
	if token == "" {
		return false
	}
	h := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(h[:], r.TokenHash[:]) == 1
}

// BindingOK checks a browser credential against the session's binding.
func (r *Record) BindingOK(credential string) bool {
	if !r.Bound {
		return true
	}
	if credential == "" {
		return false
	}
	h := sha256.Sum256([]byte(credential))
	return subtle.ConstantTimeCompare(h[:], r.Binding[:]) == 1
}

// Entry is a form field's value with its provenance.
type Entry struct {
	Value json.RawMessage // compact JSON
	By    string          // empty, user, ai, user_edit
	At    int64           // Unix microseconds
}

// Provenance of values (the SDK's "by").
const (
	ByEmpty    = "empty"
	ByUser     = "user"
	ByAI       = "ai"
	ByUserEdit = "user_edit"
	ByAgent    = "agent" // generic modes' agent writes
)

// State is a session's mutable part.
type State struct {
	Keys      []string         // keys in answer order: schema order, then the others sorted
	Values    map[string]Entry // form modes
	Data      map[string]json.RawMessage
	ExpiresIn int64 // seconds
}

// Change is one entry of the change log.
type Change struct {
	Key      string
	From, To json.RawMessage
	By       string
	At       int64 // Unix microseconds
}

// Outcome of one write.
type Outcome uint8

const (
	Pending  Outcome = iota
	Applied          // written
	Rejected         // the field is the user's (or a hook vetoed it)
	TooMany          // the session holds MaxFields keys already
	TooLarge         // the session holds its budget of bytes (ErrSessionFull)
)

// Write is one agent write the store decides atomically with the others
// of its batch.
type Write struct {
	Key     string
	Value   json.RawMessage
	Outcome Outcome // Rejected on entry: vetoed before the store (listed, not written)
}

// Batch is an action request's writes. The store applies them in order,
// atomically, records the changes, renews the TTL and delivers the
// WebSocket frames (action frames when Stream, then done) to every
// instance's sockets of the session.
type Batch struct {
	Writes   []Write
	Stream   bool
	Interval time.Duration
	Required []string // the schema's required keys, for "missing"
}

// Store keeps sessions. Every method that uses a session renews its TTL
// (sliding expiry) and answers ErrNotFound for a missing or expired one.
type Store interface {
	// Create stores a new session with its initial state.
	Create(ctx context.Context, rec *Record, initial *State, ttl time.Duration) error
	// Lookup returns a session's immutable record.
	Lookup(ctx context.Context, sid string) (*Record, error)
	// State returns the values, renewing the TTL.
	State(ctx context.Context, rec *Record) (*State, error)
	// Apply applies an agent batch (see Batch) and returns the state after it.
	Apply(ctx context.Context, rec *Record, b *Batch) (*State, error)
	// Notify records a user edit of key.
	Notify(ctx context.Context, rec *Record, key string, value json.RawMessage) error
	// Changes returns the kept change log, oldest first, and the TTL left.
	Changes(ctx context.Context, rec *Record) ([]Change, int64, error)
	// Extend adds extra to the session's TTL unless that makes it longer
	// than limit; it tells the session's sockets. granted is false when
	// refused, and seconds is then the session's TTL as it stays (the
	// handler tells the agent what is left of the limit); else the TTL
	// from now.
	Extend(ctx context.Context, rec *Record, extra, limit time.Duration) (seconds int64, granted bool, err error)
	// Remaining is the time session sid has left, without renewing it
	// (ErrNotFound when it is gone): the hub asks it when a session with
	// sockets here reaches its expiry, so the page hears of the end at
	// once, and a session renewed meanwhile (through any instance) is
	// followed to its new expiry.
	Remaining(ctx context.Context, sid string) (time.Duration, error)
	// Hub is where this store delivers frames for the sockets of this
	// instance.
	Hub() *Hub
	// Close stops the store's goroutines and closes its sockets.
	Close() error
}

// micros is Unix microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

// appendTime formats Unix microseconds like Python's isoformat of an
// aware UTC datetime: 2026-01-02T15:04:05.123456+00:00.
// Written by hand: every context answer formats one per field, and
// time.Time.AppendFormat is several times slower.
func appendTime(dst []byte, us int64) []byte {
	t := time.UnixMicro(us).UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	frac := us % 1e6
	if frac < 0 {
		frac += 1e6
	}
	if y < 0 || y > 9999 {
		return t.AppendFormat(dst, "2006-01-02T15:04:05.000000+00:00")
	}
	var b [32]byte
	put := func(i, v, n int) {
		for j := i + n - 1; j >= i; j-- {
			b[j] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, y, 4)
	b[4] = '-'
	put(5, int(mo), 2)
	b[7] = '-'
	put(8, d, 2)
	b[10] = 'T'
	put(11, h, 2)
	b[13] = ':'
	put(14, mi, 2)
	b[16] = ':'
	put(17, s, 2)
	b[19] = '.'
	put(20, int(frac), 6)
	copy(b[26:], "+00:00")
	return append(dst, b[:]...)
}

// parseSince reads diff's since: RFC 3339 / ISO 8601 with 'T' or ' ',
// with or without fraction and offset (none means UTC), or a bare date.
// A space before a final HH:MM after the time is a '+': the offset of an
// "at" pasted into the URL unescaped, which query decoding turns into a
// space (2026-01-02T15:04:05.123456 00:00).
func parseSince(s string) (int64, bool) {
	layouts := [...]string{
		"2006-01-02T15:04:05.999999999Z07:00",
		"2006-01-02T15:04:05.999999999",
		"2006-01-02T15:04:05Z07:00",
		"2006-01-02T15:04Z07:00",
		"2006-01-02T15:04",
		"2006-01-02",
	}
	t := []byte(s)
	if len(t) > 10 && t[10] == ' ' {
		t[10] = 'T'
	}
	if n := len(t); n >= 16+6 && t[n-6] == ' ' && isDigit(t[n-5]) && isDigit(t[n-4]) && t[n-3] == ':' && isDigit(t[n-2]) && isDigit(t[n-1]) {
		t[n-6] = '+'
	}
	for _, l := range layouts {
		if v, err := time.Parse(l, string(t)); err == nil {
			return v.UnixMicro(), true
		}
	}
	return 0, false
}

// ErrTooManyFields is a user edit of a new key in a session that holds
// MaxFields keys.
var ErrTooManyFields = errors.New("handshake: too many fields in the session")

// ErrSessionFull is a write (or a creation's context) that would take a
// session past a store's MaxSessionBytes.
var ErrSessionFull = errors.New("handshake: too much data in the session")

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
