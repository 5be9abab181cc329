package webbotauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// SharedCache shares fetched key directories between instances (see
// NewRedisCache). Values are the directory bodies as fetched (a JWKS) or,
// for a failed fetch, NegativePrefix followed by the reason; they expire
// at expires. Errors are logged and the fetch goes on without the cache.
type SharedCache interface {
	// Get returns the value stored for key and when it expires; ok is
	// false when there is none.
	Get(ctx context.Context, key string) (value []byte, expires time.Time, ok bool, err error)
	// Set stores value for key until expires.
	Set(ctx context.Context, key string, value []byte, expires time.Time) error
}

// NegativePrefix starts a SharedCache value that records a failed fetch.
// A JWKS is a JSON object and never starts with it.
const NegativePrefix = "!"

// directory fetches and caches key directories, per fetch URL.
type directory struct {
	now         func() time.Time
	client      *http.Client
	checkAddr   func(netip.Addr) error
	checkHost   func(string) error
	resolver    Resolver
	timeout     time.Duration
	maxBytes    int64
	defTTL      time.Duration
	minTTL      time.Duration
	maxTTL      time.Duration
	negTTL      time.Duration
	maxStale    time.Duration
	maxEntries  int
	shared      SharedCache
	userAgent   string
	onFetch     func(string, error)
	allowTest   bool
	log         *zap.Logger
	sem         chan struct{}
	group       singleflight.Group
	mu          sync.RWMutex
	entries     map[string]*dirEntry
	acceptValue string
}

// dirEntry is one cached directory or failure. Entries are replaced,
// never modified, once published in the map.
type dirEntry struct {
	keys       *KeySet   // nil: the last fetch failed and nothing usable is held
	reason     string    // why keys is nil
	fetched    time.Time // when keys were fetched
	checked    time.Time // when this entry was produced: forced refetches wait MinTTL after it
	expires    time.Time // refetch after this
	staleUntil time.Time // keys may serve until then while refetches fail
}

func newDirectory(o *Options, now func() time.Time) (*directory, error) {
	d := &directory{
		now:         now,
		checkAddr:   o.CheckAddr,
		checkHost:   o.CheckHost,
		resolver:    o.Resolver,
		timeout:     orDefault(o.FetchTimeout, 5*time.Second),
		maxBytes:    o.MaxDirectoryBytes,
		defTTL:      orDefault(o.DefaultTTL, time.Hour),
		minTTL:      orDefault(o.MinTTL, time.Minute),
		maxTTL:      orDefault(o.MaxTTL, 24*time.Hour),
		negTTL:      orDefault(o.NegativeTTL, time.Minute),
		maxStale:    orDefault(o.MaxStale, 24*time.Hour),
		maxEntries:  o.MaxEntries,
		shared:      o.Shared,
		userAgent:   o.UserAgent,
		onFetch:     o.OnFetch,
		allowTest:   o.AllowTestKeys,
		log:         o.Logger,
		entries:     make(map[string]*dirEntry),
		acceptValue: MediaType + ", application/jwk-set+json;q=0.9, application/json;q=0.8",
	}
	if d.resolver == nil {
		d.resolver = net.DefaultResolver
	}
	if d.maxBytes <= 0 {
		d.maxBytes = 64 << 10
	}
	if d.maxEntries <= 0 {
		d.maxEntries = 10000
	}
	if d.userAgent == "" {
		d.userAgent = "caddy-ahp-webbotauth"
	}
	if d.log == nil {
		d.log = zap.NewNop()
	}
	if d.minTTL > d.maxTTL {
		return nil, errors.New("webbotauth: MinTTL is longer than MaxTTL")
	}
	n := o.MaxConcurrentFetches
	if n <= 0 {
		n = 16
	}
	d.sem = make(chan struct{}, n)
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if len(o.ExtraCAsPEM) > 0 && !pool.AppendCertsFromPEM(o.ExtraCAsPEM) {
		return nil, errors.New("webbotauth: ExtraCAsPEM holds no PEM certificate")
	}
	tr := &http.Transport{
		// No proxy from the environment: a proxy would connect for us,
		// past CheckAddr.
		Proxy:                  nil,
		DialContext:            d.dial,
		TLSClientConfig:        &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    d.timeout,
		ResponseHeaderTimeout:  d.timeout,
		MaxResponseHeaderBytes: 16 << 10,
		MaxIdleConns:           32,
		MaxIdleConnsPerHost:    1,
		IdleConnTimeout:        30 * time.Second,
		ForceAttemptHTTP2:      true,
	}
	d.client = &http.Client{
		Transport: tr,
		// The draft forbids following redirects: a 3xx is a failure.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return d, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// keys returns the key set at fetchURL, fetching it when the cache holds
// none fresh. force refetches a directory fetched more than MinTTL ago
// even if fresh (a signature named a key it lacks). Failures are
// Unverified: a directory that cannot be fetched is not evidence about
// the signer.
func (d *directory) keys(ctx context.Context, fetchURL string, force bool) (*KeySet, *failure) {
	now := d.now()
	d.mu.RLock()
	e := d.entries[fetchURL]
	d.mu.RUnlock()
	if e != nil {
		fresh := now.Before(e.expires)
		if fresh && (!force || now.Sub(e.checked) < d.minTTL) {
			// Fresh; or a forced refetch too soon after the last attempt:
			// unknown keyids must not cause a storm of refetches.
			if e.keys == nil {
				return nil, unverified(e.reason)
			}
			return e.keys, nil
		}
	}
	ch := d.group.DoChan(fetchURL, func() (any, error) {
		return d.refresh(fetchURL, force), nil
	})
	select {
	case res := <-ch:
		e := res.Val.(*dirEntry)
		if e.keys == nil {
			return nil, unverified(e.reason)
		}
		return e.keys, nil
	case <-ctx.Done():
		return nil, unverified("gave up waiting for the key directory: " + ctx.Err().Error())
	}
}

// refresh obtains the directory (shared cache, else network) and
// publishes the new entry. It runs once per URL at a time.
func (d *directory) refresh(fetchURL string, force bool) *dirEntry {
	now := d.now()
	d.mu.RLock()
	old := d.entries[fetchURL]
	d.mu.RUnlock()
	// A caller that queued behind a refresh that just finished finds
	// the fresh entry here.
	if old != nil && now.Before(old.expires) && (!force || now.Sub(old.checked) < d.minTTL) {
		return old
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	key := fetchURL
	if d.shared != nil && !force {
		sctx, scancel := context.WithTimeout(ctx, d.timeout/5) // a slow Redis must leave time to fetch
		val, exp, ok, err := d.shared.Get(sctx, key)
		scancel()
		if err != nil {
			d.log.Warn("web bot auth: shared directory cache unavailable", zap.String("url", fetchURL), zap.Error(err))
		} else if ok && exp.After(now) {
			return d.publish(fetchURL, old, d.fromValue(val), now, exp)
		}
	}
	select {
	case d.sem <- struct{}{}:
	default:
		// Not cached: another request will try again soon.
		return &dirEntry{reason: "too many key directory fetches in flight"}
	}
	body, ttl, err := d.fetch(ctx, fetchURL, now)
	<-d.sem
	if d.onFetch != nil {
		d.onFetch(fetchURL, err)
	}
	var got *dirEntry
	var value []byte
	if err == nil {
		got = d.fromValue(body)
		value = body
		if got.keys == nil {
			err = errors.New(got.reason)
		}
	}
	if err != nil {
		ttl = d.negTTL
		got = &dirEntry{reason: "key directory " + fetchURL + ": " + err.Error()}
		value = []byte(NegativePrefix + got.reason)
		d.log.Debug("web bot auth: key directory fetch failed", zap.String("url", fetchURL), zap.Error(err))
	} else {
		d.log.Debug("web bot auth: key directory fetched", zap.String("url", fetchURL),
			zap.Int("keys", got.keys.Len()), zap.Duration("ttl", ttl))
	}
	exp := now.Add(ttl)
	if d.shared != nil {
		sctx, scancel := context.WithTimeout(context.Background(), d.timeout/5)
		err := d.shared.Set(sctx, key, value, exp)
		scancel()
		if err != nil {
			d.log.Warn("web bot auth: shared directory cache unavailable", zap.String("url", fetchURL), zap.Error(err))
		}
	}
	return d.publish(fetchURL, old, got, now, exp)
}

// fromValue turns a cached or fetched value into an entry (without times).
func (d *directory) fromValue(val []byte) *dirEntry {
	if len(val) > 0 && val[0] == NegativePrefix[0] {
		return &dirEntry{reason: string(val[1:])}
	}
	ks, err := ParseJWKS(val, d.allowTest)
	if err != nil {
		return &dirEntry{reason: "key directory is not a usable JWKS: " + err.Error()}
	}
	return &dirEntry{keys: ks}
}

// publish stores got for fetchURL. A failure does not evict keys that
// are still within MaxStale: an agent's outage must not revoke its keys
// everywhere at once. A directory that was fetched but lacks a key does
// replace the old set: that is how a removed key stops verifying.
func (d *directory) publish(fetchURL string, old, got *dirEntry, now, exp time.Time) *dirEntry {
	e := &dirEntry{keys: got.keys, reason: got.reason, fetched: now, checked: now, expires: exp}
	if e.keys != nil {
		e.staleUntil = exp.Add(d.maxStale)
	} else if old != nil && old.keys != nil && now.Before(old.staleUntil) {
		d.log.Info("web bot auth: key directory unavailable, still using the keys fetched before",
			zap.String("url", fetchURL), zap.String("reason", got.reason), zap.Time("fetched", old.fetched))
		e.keys, e.reason, e.fetched, e.staleUntil = old.keys, "", old.fetched, old.staleUntil
	}
	d.mu.Lock()
	if _, ok := d.entries[fetchURL]; !ok && len(d.entries) >= d.maxEntries {
		d.evictLocked(now)
	}
	d.entries[fetchURL] = e
	d.mu.Unlock()
	return e
}

// evictLocked makes room: an expired entry if one is among the first
// few looked at, else any. The map is bounded, not an LRU.
func (d *directory) evictLocked(now time.Time) {
	victim, n := "", 0
	for k, e := range d.entries {
		if victim == "" || now.After(e.expires) {
			victim = k
		}
		if n++; n >= 16 || now.After(e.expires) {
			break
		}
	}
	delete(d.entries, victim)
}

// fetch GETs a directory: https only (the URL is built so), no
// redirects, 200 only, a JSON media type, at most maxBytes after
// decoding. It returns the body and how long to cache it.
func (d *directory) fetch(ctx context.Context, fetchURL string, now time.Time) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fetchURL, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", d.acceptValue)
	req.Header.Set("User-Agent", d.userAgent)
	resp, err := d.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop net/http's "Get <url>:" prefix: the URL is logged anyway
		}
		return nil, 0, fmt.Errorf("unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return nil, 0, fmt.Errorf("status %d (redirects are not followed)", resp.StatusCode)
		}
		return nil, 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	if err := checkMediaType(resp.Header.Get("Content-Type")); err != nil {
		return nil, 0, err
	}
	if resp.ContentLength > d.maxBytes {
		return nil, 0, fmt.Errorf("larger than %d bytes", d.maxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, d.maxBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("reading the body: %w", err)
	}
	if int64(len(body)) > d.maxBytes {
		return nil, 0, fmt.Errorf("larger than %d bytes", d.maxBytes)
	}
	return body, cacheTTL(resp.Header, now, d.defTTL, d.minTTL, d.maxTTL), nil
}

// checkMediaType admits the directory media type and, leniently, the
// JWKS and JSON types some directories are served with; anything else
// (an HTML error page, a captive portal) is refused.
func checkMediaType(ct string) error {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("media type %q is not a key directory", ct)
	}
	switch mt {
	case MediaType, "application/jwk-set+json", "application/json":
		return nil
	}
	return fmt.Errorf("media type %q is not a key directory (%s)", mt, MediaType)
}

// cacheTTL is how long to keep a directory, from Cache-Control (s-maxage,
// then max-age, less Age; no-store and no-cache mean the minimum) or
// Expires, bounded by [min, max].
func cacheTTL(h http.Header, now time.Time, def, lo, hi time.Duration) time.Duration {
	ttl, found := time.Duration(0), false
	var sMaxAge, maxAge time.Duration = -1, -1
	for _, line := range h.Values("Cache-Control") {
		for _, dir := range strings.Split(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return lo
			case "s-maxage":
				sMaxAge = seconds(val)
			case "max-age":
				maxAge = seconds(val)
			}
		}
	}
	switch {
	case sMaxAge >= 0:
		ttl, found = sMaxAge, true
	case maxAge >= 0:
		ttl, found = maxAge, true
	}
	if found {
		if age := seconds(h.Get("Age")); age > 0 {
			ttl -= age
		}
	} else if exp := h.Get("Expires"); exp != "" {
		found = true
		t, err := http.ParseTime(exp)
		if err == nil {
			base := now
			if date, err := http.ParseTime(h.Get("Date")); err == nil {
				base = date
			}
			ttl = t.Sub(base)
		} // an invalid Expires means already expired (RFC 9111 §5.3)
	}
	if !found {
		ttl = def
	}
	return min(max(ttl, lo), hi)
}

// seconds parses a delta-seconds value, -1 when it is not one.
func seconds(s string) time.Duration {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	if n > int64(365*24*time.Hour/time.Second) {
		n = int64(365 * 24 * time.Hour / time.Second)
	}
	return time.Duration(n) * time.Second
}

// dial connects to a directory host only through addresses CheckAddr
// admits. It resolves the name itself and dials the checked address, so
// that DNS cannot answer differently between the check and the connect.
func (d *directory) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port %q", portStr)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		if d.checkHost != nil {
			if err := d.checkHost(host); err != nil {
				return nil, fmt.Errorf("host %s refused: %w", host, err)
			}
		}
		addrs, err = d.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("%s has no address", host)
		}
	}
	// Every answer counts: refusing one that resolves anywhere internal
	// keeps a name from pointing half at the Internet, half inside.
	for _, a := range addrs {
		if err := d.checkAddr(a); err != nil {
			return nil, fmt.Errorf("address %s refused: %w", a, err)
		}
	}
	var dialer net.Dialer
	var last error
	for _, a := range addrs {
		c, err := dialer.DialContext(ctx, network, netip.AddrPortFrom(a.Unmap(), uint16(port)).String())
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}
