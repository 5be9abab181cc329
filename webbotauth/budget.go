package webbotauth

import (
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// fetchBudget bounds the directory fetches one client network may cause.
// A directory fetch is the one thing an unauthenticated client can make
// this package do with a signed-looking request (no key is needed to name
// a new origin), so each network gets: at most perNet fetches in flight,
// and a rate of one fetch per every after a burst (GCRA). Networks are
// /24 for IPv4 and /48 for IPv6, the blocks one client usually holds.
// Only fetches over the network are charged: memory and shared-cache
// hits are free.
type fetchBudget struct {
	perNet int
	burst  time.Duration // burst * every: how far a network's tat may run ahead of now
	every  time.Duration
	max    int // networks tracked at once
	mu     sync.Mutex
	nets   map[netip.Prefix]*netBudget
}

type netBudget struct {
	tat      time.Time // theoretical arrival time of the next fetch (GCRA)
	inFlight int
}

func newFetchBudget(perNet, burst int, every time.Duration, max int) *fetchBudget {
	return &fetchBudget{perNet: perNet, burst: time.Duration(burst) * every, every: every, max: max,
		nets: make(map[netip.Prefix]*netBudget)}
}

// acquire charges one fetch to network p; it returns why not when p has
// no budget left. A successful acquire is followed by done or refund.
func (b *fetchBudget) acquire(p netip.Prefix, now time.Time) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	nb := b.nets[p]
	if nb == nil {
		if len(b.nets) >= b.max {
			b.pruneLocked(now)
		}
		if len(b.nets) >= b.max {
			// Every tracked network is still paying off its fetches: a
			// new one waits rather than reset someone's budget.
			return "too many client networks are fetching key directories"
		}
		nb = &netBudget{}
		b.nets[p] = nb
	}
	if nb.inFlight >= b.perNet {
		return "too many key directory fetches in flight for the client's network"
	}
	tat := nb.tat
	if tat.Before(now) {
		tat = now
	}
	if tat.Add(b.every).Sub(now) > b.burst {
		return "too many key directory fetches from the client's network"
	}
	nb.tat = tat.Add(b.every)
	nb.inFlight++
	return ""
}

// done ends a fetch acquire admitted.
func (b *fetchBudget) done(p netip.Prefix) {
	b.mu.Lock()
	if nb := b.nets[p]; nb != nil && nb.inFlight > 0 {
		nb.inFlight--
	}
	b.mu.Unlock()
}

// refund undoes an acquire whose fetch did not happen (no slot was free).
func (b *fetchBudget) refund(p netip.Prefix) {
	b.mu.Lock()
	if nb := b.nets[p]; nb != nil {
		if nb.inFlight > 0 {
			nb.inFlight--
		}
		nb.tat = nb.tat.Add(-b.every)
	}
	b.mu.Unlock()
}

// pruneLocked forgets networks with nothing in flight whose budget has
// refilled: remembering them would change nothing.
func (b *fetchBudget) pruneLocked(now time.Time) {
	for p, nb := range b.nets {
		if nb.inFlight == 0 && !nb.tat.After(now) {
			delete(b.nets, p)
		}
	}
}

// clientNet is the network a request came from (/24, /48); the zero
// Prefix when the address is unknown, so that all such requests share
// one budget.
func (d *directory) clientNet(r *http.Request) netip.Prefix {
	var a netip.Addr
	switch {
	case d.clientAddr != nil:
		a = d.clientAddr(r)
	case r != nil:
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			a = ap.Addr()
		} else {
			a, _ = netip.ParseAddr(r.RemoteAddr)
		}
	}
	return networkOf(a)
}

func networkOf(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	bits := 48
	if a.Is4() {
		bits = 24
	} else if !a.Is6() {
		return netip.Prefix{}
	}
	p, _ := a.Prefix(bits)
	return p
}
