package handshake

import "sync"

// recordCacheSize bounds the records an instance caches: 10,000 records
// of a few hundred bytes (plus their schemas).
const recordCacheSize = 10000

// recordCache keeps sessions' immutable records on this instance, so a
// remote store's token check costs no round trip once an instance has
// seen a session. Records never change, so an entry is never stale; an
// expired session is still found missing by the store operation that
// follows. When full, the cache starts over: simple, and a miss costs
// only one lookup.
type recordCache struct {
	mu  sync.RWMutex
	max int
	m   map[string]*Record
}

func newRecordCache(max int) *recordCache {
	return &recordCache{max: max, m: make(map[string]*Record)}
}

func (c *recordCache) get(sid string) *Record {
	c.mu.RLock()
	r := c.m[sid]
	c.mu.RUnlock()
	return r
}

func (c *recordCache) put(r *Record) {
	c.mu.Lock()
	if len(c.m) >= c.max {
		c.m = make(map[string]*Record, c.max)
	}
	c.m[r.ID] = r
	c.mu.Unlock()
}

func (c *recordCache) drop(sid string) {
	c.mu.Lock()
	delete(c.m, sid)
	c.mu.Unlock()
}
