package handshake

import "sync"

// recordCacheSize bounds the records an instance caches: 10,000 records
// of a few hundred bytes (plus their schemas).
const recordCacheSize = 10000

// recordCacheBytes bounds what the cached records hold, as recordBytes
// counts them (schemas, meta, ids): a record's schema may be as large as
// a creation body, and anyone may create sessions, so 10,000 records
// could otherwise hold over a gigabyte of sessions long expired. A usual
// form's record counts about a kilobyte: 10,000 of them fit.
const recordCacheBytes = 32 << 20

// recordCache keeps sessions' immutable records on this instance, so a
// remote store's token check costs no round trip once an instance has
// seen a session. Records never change, so an entry is never stale; an
// expired session is still found missing by the store operation that
// follows. When full (by count or by bytes), the cache starts over:
// simple, and a miss costs only one lookup.
type recordCache struct {
	mu       sync.RWMutex
	max      int
	maxBytes int
	bytes    int // recordBytes of the records held
	m        map[string]*Record
}

func newRecordCache(max int) *recordCache {
	return &recordCache{max: max, maxBytes: recordCacheBytes, m: make(map[string]*Record)}
}

func (c *recordCache) get(sid string) *Record {
	c.mu.RLock()
	r := c.m[sid]
	c.mu.RUnlock()
	return r
}

func (c *recordCache) put(r *Record) {
	n := recordBytes(r)
	if n > c.maxBytes {
		return
	}
	c.mu.Lock()
	if old := c.m[r.ID]; old != nil {
		c.bytes -= recordBytes(old)
	}
	if len(c.m) >= c.max || c.bytes+n > c.maxBytes {
		c.m = make(map[string]*Record, c.max)
		c.bytes = 0
	}
	c.m[r.ID] = r
	c.bytes += n
	c.mu.Unlock()
}

func (c *recordCache) drop(sid string) {
	c.mu.Lock()
	if old := c.m[sid]; old != nil {
		c.bytes -= recordBytes(old)
		delete(c.m, sid)
	}
	c.mu.Unlock()
}
