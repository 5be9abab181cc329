package limiter

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis connection URLs.
//
// A URL is a secret: it may carry a password in its user info, and a
// Sentinel URL may carry the data node's in ?password=. So no error of
// NewRedisClient ever includes any part of the user info or of a secret
// parameter: the URL appears only as RedactURL shows it, the messages of
// net/url and go-redis lose their quoted fragments (net/url quotes pieces
// of the URL it could not read, which may be pieces of a password that
// holds a '/'), and a message that would still contain a secret is
// replaced by one without details.

// Client timeouts: a Redis that does not answer costs a request the
// store's own timeout (the client honours context deadlines); these bound
// what a context does not.
const (
	redisDialTimeout = time.Second
	redisIOTimeout   = 500 * time.Millisecond
)

// dialAttempts is one dial per connection unless the URL asks for more
// (?dialer_retries=, where go-redis reads it). go-redis's default is five,
// 100 ms apart: a Redis that is down (connection refused) then costs every
// decision its whole timeout instead of failing at once into the
// configured on_store_error policy, and a retry never fits the default
// 50 ms timeout anyway. Commands are still retried on a fresh connection
// (MaxRetries), which covers a pooled connection Redis closed.
func dialAttempts(fromURL int) int {
	if fromURL > 0 {
		return fromURL
	}
	return 1
}

// NewRedisClient builds a go-redis client from a URL:
//
//	redis://[[user]:password@]host[:port][/db][?options]     a single server
//	rediss://...                                               the same over TLS
//	redis+cluster://..., rediss+cluster://...                  Cluster; more seeds as ?addr=host:port
//	redis+sentinel://..., rediss+sentinel://...                Sentinel: ?master_name= (required),
//	                                                           the data nodes' ?password= and ?username=;
//	                                                           the user info is the Sentinels'
//
// with go-redis's URL options (ParseURL, ParseClusterURL, ParseFailoverURL).
// A password holding '/', '?', '#', '@' or '%' must be percent-encoded
// (%2F, %3F, %23, %40, %25).
//
// The client honours context deadlines (ContextTimeoutEnabled), so a Redis
// that hangs costs a request the store's timeout, not the socket's (see
// CheckClient); it dials once (see dialAttempts) within a second, reads
// and writes within 500ms, uses TLS 1.2 or later over rediss, and speaks
// RESP2 unless the URL asks otherwise (?protocol=3): the limiter needs
// nothing of RESP3, and RESP3's push-notification checks cost CPU on every
// command. Errors never hold the password (see above).
func NewRedisClient(rawURL string) (redis.UniversalClient, error) {
	c, err := newRedisClient(rawURL)
	if err != nil {
		return nil, safeURLError(rawURL, err)
	}
	return c, nil
}

const redisURLForms = "use redis://, rediss://, redis+cluster://, rediss+cluster://, redis+sentinel:// or rediss+sentinel://"

var schemeSyntax = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

func newRedisClient(raw string) (redis.UniversalClient, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || !schemeSyntax.MatchString(scheme) {
		return nil, ownError("not a URL; " + redisURLForms + ", e.g. redis://host:6379/0")
	}
	base, variant, _ := strings.Cut(strings.ToLower(scheme), "+")
	if base != "redis" && base != "rediss" || variant != "" && variant != "cluster" && variant != "sentinel" {
		return nil, ownError(fmt.Sprintf("unsupported scheme %q; %s", scheme, redisURLForms))
	}
	// An '@' after the end of the authority means user info that holds
	// '/', '?' or '#', which would be read as the path, query or fragment:
	// go-redis would then report (and use) pieces of the password. A '#'
	// is never part of a Redis URL: one in a ?password= would cut it short.
	if end := strings.IndexAny(rest, "/?#"); end >= 0 && strings.Contains(rest[end:], "@") {
		return nil, ownError("the user info (password) holds '/', '?' or '#', or the URL an '@' after the host: " +
			"percent-encode them in the password (/ as %2F, ? as %3F, # as %23, @ as %40, % as %25)")
	}
	if strings.Contains(rest, "#") {
		return nil, ownError("a Redis URL has no fragment: percent-encode a '#' in a password as %23")
	}
	url := base + "://" + rest
	switch variant {
	case "":
		o, err := redis.ParseURL(url)
		if err != nil {
			return nil, err
		}
		clientFields{&o.ContextTimeoutEnabled, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout,
			&o.DialerRetries, &o.Protocol, o.TLSConfig, &o.Dialer}.settle()
		return redis.NewClient(o), nil
	case "cluster":
		o, err := redis.ParseClusterURL(url)
		if err != nil {
			return nil, err
		}
		clientFields{&o.ContextTimeoutEnabled, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout,
			&o.DialerRetries, &o.Protocol, o.TLSConfig, &o.Dialer}.settle()
		return redis.NewClusterClient(o), nil
	default: // sentinel
		o, err := redis.ParseFailoverURL(url)
		if err != nil {
			return nil, err
		}
		if o.MasterName == "" {
			return nil, ownError("a Sentinel URL needs ?master_name=<name>")
		}
		clientFields{&o.ContextTimeoutEnabled, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout,
			&o.DialerRetries, &o.Protocol, o.TLSConfig, &o.Dialer}.settle()
		return redis.NewFailoverClient(o), nil
	}
}

// clientFields points at the fields go-redis's three options structs
// (Options, ClusterOptions, FailoverOptions) share, so that one function
// gives every kind of client the settings NewRedisClient documents.
type clientFields struct {
	contextTimeout                         *bool
	dialTimeout, readTimeout, writeTimeout *time.Duration
	dialerRetries, protocol                *int
	tlsConfig                              *tls.Config
	dialer                                 *func(context.Context, string, string) (net.Conn, error)
}

func (f clientFields) settle() {
	*f.contextTimeout = true
	*f.dialTimeout, *f.readTimeout, *f.writeTimeout = redisDialTimeout, redisIOTimeout, redisIOTimeout
	*f.dialerRetries = dialAttempts(*f.dialerRetries)
	tlsMin(f.tlsConfig)
	*f.dialer = dialOnce(*f.dialTimeout, f.tlsConfig)
	if *f.protocol == 0 {
		*f.protocol = 2
	}
}

// dialOnce is go-redis's own dialer, whose failures go-redis does not
// retry: it retries a command whose dial failed (MaxRetries, with backoff),
// so a Redis refusing connections cost each decision four dials and
// 60-150 ms, past the default 50 ms timeout, instead of failing at once
// into the on_store_error policy. Commands on a connection Redis closed
// are still retried.
func dialOnce(timeout time.Duration, tlsConf *tls.Config) func(context.Context, string, string) (net.Conn, error) {
	dial := redis.NewDialer(&redis.Options{DialTimeout: timeout, TLSConfig: tlsConf})
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, dialFailed{err}
		}
		return c, nil
	}
}

// dialFailed hides a dial error's *net.OpError from go-redis's retry test
// (no Unwrap); it still reads as a cancellation or a deadline.
type dialFailed struct{ err error }

func (e dialFailed) Error() string { return e.err.Error() }

func (e dialFailed) Is(target error) bool {
	return (target == context.Canceled || target == context.DeadlineExceeded) && errors.Is(e.err, target)
}

// tlsMin raises a TLS configuration to TLS 1.2 at least (go-redis sets no
// minimum for Cluster URLs).
func tlsMin(c *tls.Config) {
	if c != nil && c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
}

// ownError is a message of this file's own, which holds nothing of the
// URL but its scheme.
type ownError string

func (e ownError) Error() string { return string(e) }

// quoted matches the values net/url and go-redis quote in their messages.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// safeURLError is err about raw, with nothing of raw's secrets in it.
func safeURLError(raw string, err error) error {
	var ue *neturl.Error
	if errors.As(err, &ue) {
		// Its URL is the whole URL; its message may quote pieces of it.
		err = ue.Err
	}
	detail := strings.TrimPrefix(err.Error(), "redis: ")
	if _, own := err.(ownError); own {
		return errors.New("redis URL " + RedactURL(raw) + ": " + detail)
	}
	if ue != nil {
		detail = "it does not parse as a URL (" + quoted.ReplaceAllString(detail, "") +
			"); percent-encode '/', '?', '#', '@' and '%' in the password"
	}
	for _, s := range urlSecrets(raw) {
		// As written, or as a message quotes it (strconv's `parsing
		// "…"` escapes a '"' or '\\' in it).
		if q := strconv.Quote(s); strings.Contains(detail, s) || strings.Contains(detail, q[1:len(q)-1]) {
			return fmt.Errorf("redis URL %s is invalid (details withheld: they would show its password); %s", RedactURL(raw), redisURLForms)
		}
	}
	return errors.New("redis URL " + RedactURL(raw) + ": " + detail)
}

// urlSecrets lists the strings of raw that must never be shown: the user
// info and the values of secret parameters, whole, in pieces, as written
// and decoded (see secretRegions).
func urlSecrets(raw string) []string {
	var out []string
	add := func(s string) {
		if s == "" {
			return
		}
		out = append(out, s)
		if d, err := neturl.QueryUnescape(s); err == nil && d != s && d != "" {
			out = append(out, d)
		}
		if d, err := neturl.PathUnescape(s); err == nil && d != s && d != "" {
			out = append(out, d)
		}
	}
	_, rest, _ := strings.Cut(raw, "://")
	userEnd, secretFrom := secretRegions(rest)
	regions := []string{rest[:max(userEnd, 0)]}
	if secretFrom >= 0 {
		regions = append(regions, rest[secretFrom:])
	}
	for _, r := range regions {
		add(r)
		for _, piece := range strings.FieldsFunc(r, func(c rune) bool { return strings.ContainsRune(":/?#&=@", c) }) {
			add(piece)
		}
	}
	return out
}

// secretRegions finds, in the part of a URL after "://", the end of the
// user info (the last '@', whatever a URL parser would make of the bytes
// before it; -1 without one) and the start of the value of the first
// secret parameter (-1 without one). A password may hold unencoded '&',
// '@' or '#', so nothing after that start can be trusted not to be part of
// it.
func secretRegions(rest string) (userEnd, secretFrom int) {
	userEnd, secretFrom = strings.LastIndexByte(rest, '@'), -1
	for i := 0; i < len(rest); i++ {
		if rest[i] != '?' && rest[i] != '&' {
			continue
		}
		name, _, ok := strings.Cut(rest[i+1:], "=")
		if ok && !strings.ContainsAny(name, "&?#") && secretParam(name) {
			secretFrom = i + 1 + len(name) + 1
			break
		}
	}
	return userEnd, secretFrom
}

// secretParam reports a query parameter that holds a secret: the Sentinel
// URL's password, and any name that says so.
func secretParam(name string) bool {
	name = strings.ToLower(name)
	for _, w := range []string{"pass", "secret", "token", "auth", "key"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// RedactURL returns raw fit for logs and errors: its user info (everything
// between "://" and the last '@') becomes "<redacted>", and so does
// everything from the value of the first secret query parameter on
// (password, sentinel_password, any name holding pass, secret, token, auth
// or key): a password may hold an unencoded '&', so what follows it cannot
// be told from it. Something that is not a URL becomes "<redacted>".
func RedactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || !schemeSyntax.MatchString(scheme) {
		return "<redacted>"
	}
	userEnd, secretFrom := secretRegions(rest)
	out := scheme + "://"
	if secretFrom >= 0 && secretFrom <= userEnd {
		return out + "<redacted>"
	}
	if userEnd >= 0 {
		out += "<redacted>@"
	}
	if secretFrom < 0 {
		return out + rest[userEnd+1:]
	}
	return out + rest[userEnd+1:secretFrom] + "<redacted>"
}
