package handshake

import (
	"fmt"
	"strings"
	"testing"
)

// TestRecordCacheBoundedByBytes: with the Redis store every instance
// caches the records of the sessions it sees, creations included, and
// kept 10,000 whatever their size. A record holds its schema (up to the
// body limit, 64 KiB by default, and more parsed): anyone creating
// sessions with large schemas filled an instance's heap with about
// 1.6 GB of records of sessions long expired. The cache now also starts
// over past a bound on the bytes its records hold.
func TestRecordCacheBoundedByBytes(t *testing.T) {
	schema, err := ParseSchema([]byte(`[{"key":"a","type":"enum","options":[` + strings.TrimSuffix(strings.Repeat(`"abcdefgh",`, 6000), ",") + `]}]`))
	if err != nil {
		t.Fatal(err)
	}
	c := newRecordCache(recordCacheSize)
	for i := 0; i < recordCacheSize; i++ {
		c.put(&Record{ID: fmt.Sprintf("%032x", i), Schema: schema, Meta: []byte("{}")})
	}
	held := 0
	for _, r := range c.m {
		held += recordBytes(r)
	}
	if held > 64<<20 {
		t.Errorf("the record cache holds %d records of %d bytes in all", len(c.m), held)
	}
	// A record cached twice (two lookups racing) is counted once.
	c = newRecordCache(recordCacheSize)
	r := &Record{ID: strings.Repeat("a", 32), Schema: schema}
	c.put(r)
	c.put(r)
	if c.bytes != recordBytes(r) {
		t.Errorf("one record counted %d bytes, want %d", c.bytes, recordBytes(r))
	}
}
