package webbotauth

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// What an unauthenticated client can make the verifier do: name any
// origin in a syntactically valid signature (no key needed) and so make
// it fetch. These tests check that it cannot thereby take verification
// away from others or grow what is kept without bound.

// suffixResolver resolves every name ending in suffix to 127.0.0.1.
type suffixResolver struct{ suffix string }

func (s suffixResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if strings.HasSuffix(host, s.suffix) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return nil, fmt.Errorf("no such host %s", host)
}

// tarpit makes ds serve the good directory at example.com and hold
// every other host's request until the test ends (or the fetch times
// out); arrived receives one value per held request.
func tarpit(t *testing.T, ds *dirServer, good string) (arrived chan string) {
	t.Helper()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	arrived = make(chan string, 64)
	ds.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Host, "example.com:") {
			arrived <- r.Host
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", MediaType)
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte(good))
	})
	return arrived
}

// from is a request from client address addr, signed by a as agent.
func from(addr string, a testAgent, agent string, now time.Time) *http.Request {
	r := newRequest(site, "/")
	r.RemoteAddr = addr
	a.signAs(r, agent, now)
	return r
}

// evilOrigin is the i-th attacker origin on ds's port.
func evilOrigin(ds *dirServer, i int) string {
	return fmt.Sprintf("https://evil%d.example.com:%d", i, ds.port())
}

// The review's scenario: a tarpit directory occupies the only fetch
// slot; a known agent whose cache entry just expired keeps verifying
// with the keys it had (within MaxStale) instead of becoming unverified.
func TestStaleKeysWhenSlotsAreFull(t *testing.T) {
	a := newAgent(t)
	ds := newDirServer(t, "")
	arrived := tarpit(t, ds, jwks(a))
	c := newClock()
	o := ds.options(c)
	o.MaxConcurrentFetches = 1
	o.FetchTimeout = 10 * time.Second
	o.Resolver = suffixResolver{"example.com"}
	v := mustNew(t, o)
	ctx := context.Background()
	expect(t, v.Verify(ctx, from("198.51.100.7:1", a, ds.origin, c.Now())), Verified, "")

	// The attacker, from another network, names a tarpit.
	go v.Verify(ctx, from("203.0.113.9:1", a, evilOrigin(ds, 1), c.Now()))
	<-arrived
	c.Advance(61 * time.Second) // the agent's entry expires (max-age=60)
	for range 3 {
		res := v.Verify(ctx, from("198.51.100.7:1", a, ds.origin, c.Now()))
		expect(t, res, Verified, "")
	}
	if n := ds.hits.Load(); n != 2 {
		t.Fatalf("%d requests reached the directory server, want 2 (the agent's first fetch, the tarpit)", n)
	}
	// The same from the attacker's own network, whose budget is spent
	// on the tarpit: the agent keeps its stale keys.
	c.Advance(busyRetry)
	expect(t, v.Verify(ctx, from("203.0.113.10:1", a, ds.origin, c.Now())), Verified, "")
}

// With no stale keys to serve, a full set of slots still refuses (the
// refusal is not cached).
func TestSlotsFullWithoutStaleKeys(t *testing.T) {
	a := newAgent(t)
	ds := newDirServer(t, "")
	arrived := tarpit(t, ds, jwks(a))
	c := newClock()
	o := ds.options(c)
	o.MaxConcurrentFetches = 1
	o.FetchTimeout = 10 * time.Second
	o.Resolver = suffixResolver{"example.com"}
	v := mustNew(t, o)
	ctx := context.Background()
	go v.Verify(ctx, from("203.0.113.9:1", a, evilOrigin(ds, 1), c.Now()))
	<-arrived
	expect(t, v.Verify(ctx, from("198.51.100.7:1", a, ds.origin, c.Now())), Unverified, "too many key directory fetches in flight")
	if e := v.dir.lookup(ds.origin + WellKnownPath); e != nil {
		t.Fatal("the refusal was cached")
	}
}

// A flood of new origins from one client network holds at most its
// share of the fetch slots and then runs out of budget; another
// network's agents are fetched and verified meanwhile.
func TestFloodFromOneNetwork(t *testing.T) {
	a := newAgent(t)
	ds := newDirServer(t, "")
	arrived := tarpit(t, ds, jwks(a))
	c := newClock()
	o := ds.options(c)
	o.MaxConcurrentFetches = 4
	o.FetchTimeout = 10 * time.Second
	o.Resolver = suffixResolver{"example.com"}
	var fetches sync.Map
	o.OnFetch = func(url string, err error) { fetches.Store(url, err) }
	v := mustNew(t, o)
	ctx := context.Background()

	// 40 origins from 40 addresses of one /24, all at once.
	var wg sync.WaitGroup
	results := make(chan Result, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- v.Verify(ctx, from(fmt.Sprintf("203.0.113.%d:4000", i+1), a, evilOrigin(ds, i), c.Now()))
		}()
	}
	<-arrived // the one fetch this network may have in flight (4/8, at least 1)
	refused := 0
	for range 39 {
		res := <-results
		expect(t, res, Unverified, "client's network")
		refused++
	}
	select {
	case h := <-arrived:
		t.Fatalf("a second tarpit fetch from the same network reached %s", h)
	default:
	}
	// Another network's new agent is fetched and verified at once.
	expect(t, v.Verify(ctx, from("198.51.100.7:1", a, ds.origin, c.Now())), Verified, "")

	// IPv6: one /48 is one network, whatever the /64.
	go v.Verify(ctx, from("[2001:db8:1:2::1]:1", a, evilOrigin(ds, 100), c.Now()))
	<-arrived
	expect(t, v.Verify(ctx, from("[2001:db8:1:ffff::2]:1", a, evilOrigin(ds, 101), c.Now())), Unverified, "client's network")
	go v.Verify(ctx, from("[2001:db8:2::1]:1", a, evilOrigin(ds, 102), c.Now()))
	<-arrived
}

// Beyond its in-flight share, a network's fetches are rated: a burst,
// then one per interval (on the verifier's clock).
func TestNetworkFetchRate(t *testing.T) {
	a := newAgent(t)
	ds := newDirServer(t, "")
	ds.setHandler(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
	c := newClock()
	o := ds.options(c)
	o.Resolver = suffixResolver{"example.com"}
	o.NetworkFetchBurst = 3
	o.NetworkFetchInterval = 10 * time.Second
	v := mustNew(t, o)
	ctx := context.Background()
	for i := range 3 {
		expect(t, v.Verify(ctx, from("203.0.113.1:1", a, evilOrigin(ds, i), c.Now())), Unverified, "status 404")
	}
	expect(t, v.Verify(ctx, from("203.0.113.200:1", a, evilOrigin(ds, 3), c.Now())), Unverified, "too many key directory fetches from the client's network")
	if n := ds.hits.Load(); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
	// Failures already fetched are served from the negative cache, free.
	expect(t, v.Verify(ctx, from("203.0.113.1:1", a, evilOrigin(ds, 0), c.Now())), Unverified, "status 404")
	// Another network has its own budget; the interval refills one.
	expect(t, v.Verify(ctx, from("203.0.114.1:1", a, evilOrigin(ds, 4), c.Now())), Unverified, "status 404")
	c.Advance(10 * time.Second)
	expect(t, v.Verify(ctx, from("203.0.113.1:1", a, evilOrigin(ds, 5), c.Now())), Unverified, "status 404")
	expect(t, v.Verify(ctx, from("203.0.113.1:1", a, evilOrigin(ds, 6), c.Now())), Unverified, "client's network")
	if n := ds.hits.Load(); n != 5 {
		t.Fatalf("%d fetches, want 5", n)
	}
}

// Tarpits from several networks can fill the slots for new directories,
// but a quarter stays for agents already known: a key rotation is still
// fetched.
func TestSlotsReservedForKnownAgents(t *testing.T) {
	a, rotated := newAgent(t), newAgent(t)
	ds := newDirServer(t, "")
	good := jwks(a)
	var mu sync.Mutex
	arrived := tarpit(t, ds, "")
	held := ds.handler
	ds.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Host, "example.com:") {
			mu.Lock()
			body := good
			mu.Unlock()
			w.Header().Set("Content-Type", MediaType)
			_, _ = w.Write([]byte(body))
			return
		}
		held(w, r)
	})
	c := newClock()
	o := ds.options(c)
	o.MaxConcurrentFetches = 4
	o.FetchTimeout = 10 * time.Second
	o.Resolver = suffixResolver{"example.com"}
	v := mustNew(t, o)
	ctx := context.Background()
	expect(t, v.Verify(ctx, from("198.51.100.7:1", a, ds.origin, c.Now())), Verified, "")

	for i := range 3 { // three networks, three of the four slots
		go v.Verify(ctx, from(fmt.Sprintf("203.0.%d.1:1", 113+i), a, evilOrigin(ds, i), c.Now()))
		<-arrived
	}
	// A fourth network's new origin finds no slot for new directories.
	expect(t, v.Verify(ctx, from("203.0.120.1:1", a, evilOrigin(ds, 9), c.Now())), Unverified, "too many key directory fetches in flight")
	// The agent rotates its key: the refetch it needs is made.
	mu.Lock()
	good = jwks(a, rotated)
	mu.Unlock()
	c.Advance(2 * time.Minute)
	expect(t, v.Verify(ctx, from("198.51.100.7:1", rotated, ds.origin, c.Now())), Verified, "")
}

// Failures (which any client can cause) are capped on their own and never
// push an agent's keys out of memory.
func TestFailuresNeverEvictKeys(t *testing.T) {
	a := newAgent(t)
	ds := newDirServer(t, "")
	ds.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Host, "example.com:") {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", MediaType)
		_, _ = w.Write([]byte(jwks(a)))
	})
	c := newClock()
	o := ds.options(c)
	o.Resolver = suffixResolver{"example.com"}
	o.MaxEntries = 2
	o.MaxFailures = 3
	v := mustNew(t, o)
	ctx := context.Background()
	expect(t, v.Verify(ctx, from("198.51.100.7:1", a, ds.origin, c.Now())), Verified, "")
	for i := range 20 {
		addr := fmt.Sprintf("203.0.%d.1:1", i) // a network each: the budget is not what is tested
		expect(t, v.Verify(ctx, from(addr, a, evilOrigin(ds, i), c.Now())), Unverified, "status 404")
	}
	v.dir.mu.RLock()
	nEntries, nFailures := len(v.dir.entries), len(v.dir.failures)
	v.dir.mu.RUnlock()
	if nEntries != 1 || nFailures != 3 {
		t.Fatalf("%d directories and %d failures in memory, want 1 and 3", nEntries, nFailures)
	}
	hits := ds.hits.Load()
	expect(t, v.Verify(ctx, from("198.51.100.7:1", a, ds.origin, c.Now())), Verified, "")
	if ds.hits.Load() != hits {
		t.Fatal("the agent's directory was fetched again: its keys were evicted")
	}
}

// With many directories cached, eviction keeps the ones in use.
func TestEvictionKeepsKeysInUse(t *testing.T) {
	a := newAgent(t)
	ds := newDirServer(t, "")
	ds.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", MediaType)
		_, _ = w.Write([]byte(jwks(a)))
	})
	c := newClock()
	o := ds.options(c)
	o.Resolver = suffixResolver{"example.com"}
	o.MaxEntries = 8
	v := mustNew(t, o)
	ctx := context.Background()
	expect(t, v.Verify(ctx, from("198.51.100.7:1", a, ds.origin, c.Now())), Verified, "")
	for i := range 30 {
		c.Advance(time.Second)
		// The agent keeps working; the others are named once each.
		expect(t, v.Verify(ctx, from("198.51.100.7:1", a, ds.origin, c.Now())), Verified, "")
		expect(t, v.Verify(ctx, from(fmt.Sprintf("203.0.%d.1:1", i), a, evilOrigin(ds, i), c.Now())), Verified, "")
	}
	if e := v.dir.lookup(ds.origin + WellKnownPath); e == nil {
		t.Fatal("the directory in use was evicted")
	}
}

// Directories are fetched from port 443 unless the operator allows
// another port, for any host (AllowPorts) or on its own networks
// (AnyPortOn). A refused port costs no lookup and no fetch.
func TestDirectoryPorts(t *testing.T) {
	a := newAgent(t)
	ctx := context.Background()
	c := newClock()
	ds := newDirServer(t, jwks(a))

	res := &fakeResolver{hosts: map[string][]netip.Addr{"example.com": {netip.MustParseAddr("127.0.0.1")}}}
	o := ds.options(c)
	o.AllowPorts = nil
	o.Resolver = res
	v := mustNew(t, o)
	expect(t, v.Verify(ctx, from("198.51.100.7:1", a, ds.origin, c.Now())), Unverified, fmt.Sprintf("port %d is not allowed", ds.port()))
	if ds.hits.Load() != 0 || res.lookups.Load() != 0 {
		t.Fatalf("a refused port was looked up (%d) or fetched (%d)", res.lookups.Load(), ds.hits.Load())
	}
	// Other ports allowed are not this one.
	o.AllowPorts = []uint16{443, 8443}
	v = mustNew(t, o)
	expect(t, v.Verify(ctx, from("198.51.100.7:1", a, ds.origin, c.Now())), Unverified, "is not allowed")
	// 443 (written or not) is always allowed: the fetch is attempted
	// (and fails, nothing listens there in the test).
	for _, origin := range []string{"https://example.com", "https://example.com:443"} {
		expect(t, v.Verify(ctx, from("198.51.100.7:1", a, origin, c.Now())), Unverified, "unreachable")
	}

	o.AllowPorts = []uint16{ds.port()}
	v = mustNew(t, o)
	expect(t, v.Verify(ctx, from("198.51.100.7:1", a, ds.origin, c.Now())), Verified, "")

	// Any port on the operator's own networks, and only there.
	o.AllowPorts = nil
	o.AnyPortOn = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	v = mustNew(t, o)
	expect(t, v.Verify(ctx, from("198.51.100.7:1", a, ds.origin, c.Now())), Verified, "")
	o.AnyPortOn = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	hits := ds.hits.Load()
	v = mustNew(t, o)
	expect(t, v.Verify(ctx, from("198.51.100.7:1", a, ds.origin, c.Now())), Unverified, "port")
	if ds.hits.Load() != hits {
		t.Fatal("a directory on a refused port was fetched")
	}

	if _, err := New(Options{CheckAddr: loopbackOnly, AllowPorts: []uint16{0}}); err == nil {
		t.Fatal("port 0 accepted")
	}
}

func TestNetworkOf(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.77":        "203.0.113.0/24",
		"::ffff:203.0.113.77": "203.0.113.0/24",
		"2001:db8:1:2:3::4":   "2001:db8:1::/48",
		"fe80::1%eth0":        "fe80::/48",
	} {
		if got := networkOf(netip.MustParseAddr(in)); got.String() != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
	if got := networkOf(netip.Addr{}); got.IsValid() {
		t.Errorf("the zero address: %s", got)
	}
	// ClientAddr decides, when given; else RemoteAddr.
	d := &directory{}
	r := newRequest(site, "/")
	r.RemoteAddr = "198.51.100.7:443"
	if got := d.clientNet(r).String(); got != "198.51.100.0/24" {
		t.Errorf("RemoteAddr: %s", got)
	}
	d.clientAddr = func(*http.Request) netip.Addr { return netip.MustParseAddr("192.0.2.9") }
	if got := d.clientNet(r).String(); got != "192.0.2.0/24" {
		t.Errorf("ClientAddr: %s", got)
	}
}

// The budget forgets networks whose budget has refilled, and refuses a
// new network only while every tracked one is still paying off.
func TestFetchBudgetBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b := newFetchBudget(1, 2, 10*time.Second, 2)
	n1, n2, n3 := networkOf(netip.MustParseAddr("192.0.2.1")), networkOf(netip.MustParseAddr("198.51.100.1")), networkOf(netip.MustParseAddr("203.0.113.1"))
	for _, n := range []netip.Prefix{n1, n2} {
		if why := b.acquire(n, now); why != "" {
			t.Fatal(why)
		}
		b.done(n)
	}
	if why := b.acquire(n3, now); !strings.Contains(why, "too many client networks") {
		t.Fatalf("a third network with two tracked: %q", why)
	}
	now = now.Add(10 * time.Second) // both refilled
	if why := b.acquire(n3, now); why != "" {
		t.Fatal(why)
	}
	if why := b.acquire(n3, now); !strings.Contains(why, "in flight") {
		t.Fatalf("a second fetch in flight: %q", why)
	}
	b.refund(n3)
	b.mu.Lock()
	tracked := len(b.nets)
	b.mu.Unlock()
	if tracked > 2 {
		t.Fatalf("%d networks tracked, at most 2", tracked)
	}
}

func TestURLPort(t *testing.T) {
	for u, want := range map[string]string{
		"https://a.example" + WellKnownPath:          "",
		"https://a.example:8443" + WellKnownPath:     "8443",
		"https://a.example:8443/keys.json?p=:1":      "8443",
		"https://[2001:db8::1]" + WellKnownPath:      "",
		"https://[2001:db8::1]:8443" + WellKnownPath: "8443",
		"https://127.0.0.1:1" + WellKnownPath:        "1",
		"https://a1.example/" + WellKnownPath:        "",
		"https://[::ffff:1.2.3.4]/x":                 "",
	} {
		if got := urlPort(u); got != want {
			t.Errorf("%s: %q, want %q", u, got, want)
		}
	}
}
