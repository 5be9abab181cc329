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
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/caddy-ahp/caddy-ahp/internal/logthrottle"
)

// SharedCache shares agents' keys between instances (see NewRedisCache).
// A value is an agent's Ed25519 keys as this package encodes them (a few
// dozen bytes a key, never the directory as fetched), stored only once a
// signature has verified with them, until the directory's cache expiry.
// Failed fetches are not shared. Errors are logged and verification goes
// on without the cache.
type SharedCache interface {
	// Get returns the value stored for key and when it expires; ok is
	// false when there is none.
	Get(ctx context.Context, key string) (value []byte, expires time.Time, ok bool, err error)
	// Set stores value for key until expires. An implementation bounds
	// how much it holds: each value names an origin any client may pick.
	Set(ctx context.Context, key string, value []byte, expires time.Time) error
}

// busyRetry is how long stale keys are served without retrying a refresh
// that could not start (no fetch slot or no budget for the client's
// network): each retry costs a shared-cache lookup.
const busyRetry = 5 * time.Second

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
	maxFailures int
	shared      SharedCache
	userAgent   string
	onFetch     func(string, error)
	onShared    func(error)
	sharedLog   logthrottle.Throttle // a dead shared cache would otherwise log once per request
	allowTest   bool
	log         *zap.Logger
	clientAddr  func(*http.Request) netip.Addr
	budget      *fetchBudget
	ports       []string       // ports besides 443 any directory host may use
	anyPortOn   []netip.Prefix // hosts all of whose addresses are in these may use any port
	sem         chan struct{}  // every fetch holds one
	newSem      chan struct{}  // a fetch of a directory with no usable keys holds one too
	group       singleflight.Group
	mu          sync.RWMutex
	entries     map[string]*dirEntry // directories with usable keys
	failures    map[string]*dirEntry // failed fetches with nothing usable (negative cache)
	acceptValue string
}

// dirEntry is one cached directory or failure. Entries are replaced,
// never modified, once published in the maps (but for the atomics).
type dirEntry struct {
	keys       *KeySet   // nil: the last fetch failed and nothing usable is held
	reason     string    // why keys is nil
	fetched    time.Time // when keys were fetched
	checked    time.Time // when this entry was produced: forced refetches wait MinTTL after it
	expires    time.Time // refetch after this
	staleUntil time.Time // keys may serve until then while refetches fail
	// used is the Unix second keys were last looked up: eviction keeps
	// the directories in use.
	used atomic.Int64
	// unshared: fetched over the network and not yet in the shared
	// cache; stored there when a signature first verifies with it.
	unshared atomic.Bool
	// limited: a refusal for want of budget of network limitedNet; a
	// caller from another network tries for itself. Never published.
	limited    bool
	limitedNet netip.Prefix
}

// usableAt reports whether e holds keys that may still serve at now.
func (e *dirEntry) usableAt(now time.Time) bool {
	return e != nil && e.keys != nil && now.Before(e.staleUntil)
}

// touch records a lookup (one atomic load, a store once a second).
func (e *dirEntry) touch(now time.Time) {
	if s := now.Unix(); e.used.Load() != s {
		e.used.Store(s)
	}
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
		maxFailures: o.MaxFailures,
		shared:      o.Shared,
		userAgent:   o.UserAgent,
		onFetch:     o.OnFetch,
		onShared:    o.OnSharedCacheError,
		allowTest:   o.AllowTestKeys,
		log:         o.Logger,
		clientAddr:  o.ClientAddr,
		anyPortOn:   o.AnyPortOn,
		entries:     make(map[string]*dirEntry),
		failures:    make(map[string]*dirEntry),
		acceptValue: MediaType + ", application/jwk-set+json;q=0.9, application/json;q=0.8",
	}
	for _, p := range o.AllowPorts {
		if p == 0 {
			return nil, errors.New("webbotauth: AllowPorts lists port 0")
		}
		if p != 443 {
			d.ports = append(d.ports, strconv.Itoa(int(p)))
		}
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
	if d.maxFailures <= 0 {
		d.maxFailures = 1024
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
	// Directories nobody has keys from yet (every attacker-named origin
	// among them) share three quarters of the slots: the rest stay for
	// refreshing the keys of agents already known (a key rotation).
	d.newSem = make(chan struct{}, max(1, n*3/4))
	perNet := o.MaxFetchesPerNetwork
	if perNet <= 0 {
		perNet = max(1, n/8)
	}
	burst := o.NetworkFetchBurst
	if burst <= 0 {
		burst = 8
	}
	d.budget = newFetchBudget(perNet, burst, orDefault(o.NetworkFetchInterval, 10*time.Second), 4096)
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

// lookup is the cached entry for fetchURL, nil for none.
func (d *directory) lookup(fetchURL string) *dirEntry {
	d.mu.RLock()
	e := d.entries[fetchURL]
	if e == nil {
		e = d.failures[fetchURL]
	}
	d.mu.RUnlock()
	return e
}

// keys returns the entry holding the key set at fetchURL, fetching it
// when the cache holds none fresh. force refetches a directory fetched
// more than MinTTL ago even if fresh (a signature named a key it lacks).
// r is the request that needs the keys: a fetch is charged to its
// client's network. deadline (on the verifier's clock) ends the wait,
// for this and the request's other signatures together: past it no fetch
// is started, only what is cached serves. Failures are Unverified: a
// directory that cannot be fetched is not evidence about the signer.
func (d *directory) keys(ctx context.Context, r *http.Request, fetchURL string, force bool, deadline time.Time) (*dirEntry, *failure) {
	now := d.now()
	e := d.lookup(fetchURL)
	if e != nil && now.Before(e.expires) && (!force || now.Sub(e.checked) < d.minTTL) {
		// Fresh; or a forced refetch too soon after the last attempt:
		// unknown keyids must not cause a storm of refetches.
		if e.keys == nil {
			return nil, unverified(e.reason)
		}
		e.touch(now)
		return e, nil
	}
	wait := deadline.Sub(now)
	if wait <= 0 {
		// An earlier signature of this request used the time up.
		if e.usableAt(now) {
			return e, nil
		}
		return nil, unverified("no time left in this request to fetch the key directory")
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	netw := d.clientNet(r)
	for retried := false; ; retried = true {
		ch := d.group.DoChan(fetchURL, func() (any, error) {
			return d.refresh(fetchURL, force, netw), nil
		})
		select {
		case res := <-ch:
			got := res.Val.(*dirEntry)
			if got.limited && got.limitedNet != netw && !retried {
				// We joined another network's refresh, refused for its
				// budget: that says nothing about ours.
				continue
			}
			if got.keys == nil {
				return nil, unverified(got.reason)
			}
			got.touch(now)
			return got, nil
		case <-ctx.Done():
			if e.usableAt(now) {
				return e, nil
			}
			return nil, unverified("gave up waiting for the key directory: " + ctx.Err().Error())
		}
	}
}

// refresh obtains the directory (shared cache, else network) and
// publishes the new entry. It runs once per URL at a time; netw is the
// client network of the request that started it.
func (d *directory) refresh(fetchURL string, force bool, netw netip.Prefix) *dirEntry {
	now := d.now()
	old := d.lookup(fetchURL)
	// A caller that queued behind a refresh that just finished finds
	// the fresh entry here.
	if old != nil && now.Before(old.expires) && (!force || now.Sub(old.checked) < d.minTTL) {
		return old
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	if d.shared != nil && !force {
		sctx, scancel := context.WithTimeout(ctx, d.timeout/5) // a slow Redis must leave time to fetch
		val, exp, ok, err := d.shared.Get(sctx, fetchURL)
		scancel()
		switch {
		case err != nil:
			d.sharedFailed(fetchURL, err, now)
		case ok && exp.After(now):
			ks, err := decodeKeys(val, d.allowTest)
			if err == nil {
				return d.publish(fetchURL, old, &dirEntry{keys: ks}, now, exp)
			}
			d.log.Warn("web bot auth: unusable shared key cache entry", zap.String("url", fetchURL), zap.Error(err))
		}
	}
	// A fetch: the client's network must have budget, and a slot must be
	// free (two, for a directory nobody has keys from).
	if why := d.budget.acquire(netw, now); why != "" {
		got := d.cannotFetch(fetchURL, old, now, why)
		if got.keys == nil {
			got.limited, got.limitedNet = true, netw
		}
		return got
	}
	var newSlot chan struct{}
	if !old.usableAt(now) {
		newSlot = d.newSem
		select {
		case newSlot <- struct{}{}:
		default:
			d.budget.refund(netw)
			return d.cannotFetch(fetchURL, old, now, "too many key directory fetches in flight")
		}
	}
	select {
	case d.sem <- struct{}{}:
	default:
		if newSlot != nil {
			<-newSlot
		}
		d.budget.refund(netw)
		return d.cannotFetch(fetchURL, old, now, "too many key directory fetches in flight")
	}
	body, ttl, err := d.fetch(ctx, fetchURL, now)
	<-d.sem
	if newSlot != nil {
		<-newSlot
	}
	d.budget.done(netw)
	if d.onFetch != nil {
		d.onFetch(fetchURL, err)
	}
	var ks *KeySet
	if err == nil {
		if ks, err = ParseJWKS(body, d.allowTest); err != nil {
			err = errors.New("key directory is not a usable JWKS: " + err.Error())
		}
	}
	if err != nil {
		d.log.Debug("web bot auth: key directory fetch failed", zap.String("url", fetchURL), zap.Error(err))
		return d.publish(fetchURL, old, &dirEntry{reason: "key directory " + fetchURL + ": " + err.Error()}, now, now.Add(d.negTTL))
	}
	d.log.Debug("web bot auth: key directory fetched", zap.String("url", fetchURL),
		zap.Int("keys", ks.Len()), zap.Duration("ttl", ttl))
	got := &dirEntry{keys: ks}
	got.unshared.Store(d.shared != nil)
	return d.publish(fetchURL, old, got, now, now.Add(ttl))
}

// cannotFetch answers a refresh that could not start (why): the old keys
// while within MaxStale, published to serve for busyRetry so that the
// requests meanwhile neither wait nor ask the shared cache again; else a
// failure that is not cached (the next request tries again).
func (d *directory) cannotFetch(fetchURL string, old *dirEntry, now time.Time, why string) *dirEntry {
	if !old.usableAt(now) {
		return &dirEntry{reason: why}
	}
	d.log.Debug("web bot auth: cannot refresh a key directory now, serving the keys fetched before",
		zap.String("url", fetchURL), zap.String("reason", why), zap.Time("fetched", old.fetched))
	exp := now.Add(busyRetry)
	if exp.After(old.staleUntil) {
		exp = old.staleUntil
	}
	e := &dirEntry{keys: old.keys, fetched: old.fetched, checked: old.checked, expires: exp, staleUntil: old.staleUntil}
	e.used.Store(old.used.Load())
	d.store(fetchURL, e, now)
	return e
}

// publish stores got for fetchURL. A failure does not evict keys that
// are still within MaxStale: an agent's outage must not revoke its keys
// everywhere at once. A directory that was fetched but lacks a key does
// replace the old set: that is how a removed key stops verifying.
func (d *directory) publish(fetchURL string, old, got *dirEntry, now, exp time.Time) *dirEntry {
	e := &dirEntry{keys: got.keys, reason: got.reason, fetched: now, checked: now, expires: exp}
	if e.keys != nil {
		e.staleUntil = exp.Add(d.maxStale)
		e.unshared.Store(got.unshared.Load())
		if old != nil {
			e.used.Store(old.used.Load())
		}
	} else if old.usableAt(now) {
		d.log.Info("web bot auth: key directory unavailable, still using the keys fetched before",
			zap.String("url", fetchURL), zap.String("reason", got.reason), zap.Time("fetched", old.fetched))
		e.keys, e.reason, e.fetched, e.staleUntil = old.keys, "", old.fetched, old.staleUntil
		e.used.Store(old.used.Load())
	}
	d.store(fetchURL, e, now)
	return e
}

// store puts e in the map for its kind, making room if need be: keys in
// entries (MaxEntries), failures in failures (MaxFailures), so that
// failures, which any client can cause, never push out keys.
func (d *directory) store(fetchURL string, e *dirEntry, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e.keys != nil {
		delete(d.failures, fetchURL)
		if _, ok := d.entries[fetchURL]; !ok && len(d.entries) >= d.maxEntries {
			evictLocked(d.entries, now)
		}
		d.entries[fetchURL] = e
		return
	}
	delete(d.entries, fetchURL)
	if _, ok := d.failures[fetchURL]; !ok && len(d.failures) >= d.maxFailures {
		evictLocked(d.failures, now)
	}
	d.failures[fetchURL] = e
}

// evictLocked makes room in m: among the first few entries looked at
// (map order is random), one that can serve no more if any, else the
// one least recently used. The maps are bounded, not LRUs; sampling
// keeps directories in use (verified agents) over ones named once.
func evictLocked(m map[string]*dirEntry, now time.Time) {
	victim, oldest, n := "", int64(0), 0
	for k, e := range m {
		if !now.Before(e.expires) && !e.usableAt(now) {
			victim = k
			break
		}
		if u := e.used.Load(); victim == "" || u < oldest {
			victim, oldest = k, u
		}
		if n++; n >= 16 {
			break
		}
	}
	delete(m, victim)
}

// share stores e's keys in the shared cache, once: called when a
// signature verified with them, so that only keys that proved useful
// (never a failure, never a directory as fetched) reach the shared store.
func (d *directory) share(fetchURL string, e *dirEntry) {
	if d.shared == nil || !e.unshared.CompareAndSwap(true, false) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout/5)
	err := d.shared.Set(ctx, fetchURL, encodeKeys(e.keys), e.expires)
	cancel()
	if err != nil {
		d.sharedFailed(fetchURL, err, d.now())
	}
}

// SharedCacheLogEvery is the least time between two log lines about a
// failing shared cache: while Redis is down every request naming a new
// Signature-Agent asks it (before the per-network fetch budget), and
// each would log a line.
const SharedCacheLogEvery = 10 * time.Second

// sharedFailed counts every failure of the shared cache and logs it at
// most once per SharedCacheLogEvery, with the number left unlogged.
func (d *directory) sharedFailed(fetchURL string, err error, now time.Time) {
	if d.onShared != nil {
		d.onShared(err)
	}
	if n, ok := d.sharedLog.Allow(now, SharedCacheLogEvery); ok {
		d.log.Warn("web bot auth: shared key cache unavailable", zap.String("url", fetchURL), zap.Error(err),
			zap.Int("suppressed_since_last", n))
	}
}

// portAllowed reports whether the directory at fetchURL (https://host
// [:port]/...) may be fetched as far as its port goes: 443 (written as
// no port) always, AllowPorts for any host, any port when AnyPortOn may
// admit the host (decided at dial time, on its addresses).
func (d *directory) portAllowed(fetchURL string) (string, bool) {
	port := urlPort(fetchURL)
	return port, port == "" || len(d.anyPortOn) > 0 || d.portListed(port)
}

// urlPort is the port of an https://authority/... URL as agentID builds
// it, "" when it names none (443).
func urlPort(u string) string {
	rest := strings.TrimPrefix(u, "https://")
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	// Digits back to a ':' (an IPv6 literal ends in ']', a name in a
	// letter): a scan of the port alone, on every signed request.
	for i := len(rest) - 1; i >= 0; i-- {
		switch c := rest[i]; {
		case c == ':':
			return rest[i+1:]
		case c < '0' || c > '9':
			return ""
		}
	}
	return ""
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
	// Port 443 or an allowed one; any port only on the operator's own
	// directory networks (every address in AnyPortOn).
	if port != 443 && !d.portListed(portStr) {
		for _, a := range addrs {
			if !inAny(a, d.anyPortOn) {
				return nil, fmt.Errorf("port %d refused: key directories are fetched from port 443", port)
			}
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

func (d *directory) portListed(port string) bool {
	for _, p := range d.ports {
		if p == port {
			return true
		}
	}
	return false
}

func inAny(a netip.Addr, nets []netip.Prefix) bool {
	a = a.Unmap().WithZone("")
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}
