package webbotauth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// slowResolver stands for directories that take the whole fetch timeout:
// every lookup moves the verifier's clock on by it, then fails.
type slowResolver struct {
	c       *clock
	took    time.Duration
	lookups atomic.Int64
}

func (s *slowResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	s.lookups.Add(1)
	s.c.Advance(s.took)
	return nil, errors.New("timed out")
}

// FetchTimeout is how long one request waits for directory fetches in
// all: a request carrying four web-bot-auth signatures that name four
// unknown origins starts one fetch, which uses the time up, not four one
// after the other (four times the bound, and four of its network's fetch
// burst, from one request).
func TestSeveralSignaturesShareOneFetchDeadline(t *testing.T) {
	c := newClock()
	const timeout = 6 * time.Second
	res := &slowResolver{c: c, took: timeout}
	v := mustNew(t, Options{Now: c.Now, CheckAddr: func(netip.Addr) error { return nil },
		Resolver: res, FetchTimeout: timeout})
	r := newRequest(site, "/")
	for i := 1; i <= maxWBASigs; i++ {
		a := newAgent(t)
		label := fmt.Sprintf("sig%d", i)
		origin := fmt.Sprintf("https://slow%d.example", i)
		r.Header.Add("Signature-Agent", label+`="`+origin+`"`)
		a.sign(r, label, []comp{{`"@authority"`, site}, {`"signature-agent";key="` + label + `"`, `"` + origin + `"`}}, a.params(c.Now()))
	}
	got := v.Verify(context.Background(), r)
	expect(t, got, Unverified, "")
	if n := res.lookups.Load(); n != 1 {
		t.Fatalf("one request started %d directory fetches after its fetch time (%v) was used up; want 1", n, timeout)
	}

	// A fetch that leaves time over lets the next signature fetch too.
	c2 := newClock()
	res2 := &slowResolver{c: c2, took: timeout / 3} // exactly: 2s
	v2 := mustNew(t, Options{Now: c2.Now, CheckAddr: func(netip.Addr) error { return nil },
		Resolver: res2, FetchTimeout: timeout})
	expect(t, v2.Verify(context.Background(), r), Unverified, "")
	if n := res2.lookups.Load(); n != 3 {
		t.Fatalf("%d fetches started, want 3 (each took a third of the time)", n)
	}
}
