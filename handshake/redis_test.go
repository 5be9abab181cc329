package handshake

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every use renews both keys of a session to its TTL (sliding expiry, on
// Redis's own clock); a session whose keys expired is a 404.
func TestRedisExpiry(t *testing.T) {
	f := newFixtureOn(t, "redis")
	rs := f.h.cfg.Store.(*RedisStore)
	s := f.create(contactForm)
	f.do("POST", "/handshake/notify/"+s.ID, `{"key":"name","value":"x"}`) // creates the change list
	keys := rs.keys(s.ID)
	ctx := context.Background()
	ttl := func(k string) time.Duration {
		d, err := rs.client.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, k := range keys {
		if d := ttl(k); d < 1790*time.Second || d > 1800*time.Second {
			t.Fatalf("%s ttl %s", k, d)
		}
		rs.client.Expire(ctx, k, 100*time.Second)
	}
	if a := f.agent("GET", s, "/handshake/context/", ""); a.status != 200 {
		t.Fatal(a.status)
	}
	for _, k := range keys {
		if d := ttl(k); d < 1790*time.Second {
			t.Fatalf("%s not renewed by a read: %s", k, d)
		}
	}
	// extend grows the TTL of both keys
	f.do("POST", "/handshake/session/"+s.ID+"/extend", `{"extraSeconds":600}`, "X-Handshake-Token", s.Token)
	for _, k := range keys {
		if d := ttl(k); d < 2390*time.Second {
			t.Fatalf("%s after extend: %s", k, d)
		}
	}
	// The keys expire: every endpoint says 404 (the record is cached, the
	// operation still finds the session gone).
	rs.client.Del(ctx, keys...)
	for _, ep := range []string{"/handshake/context/", "/handshake/diff/"} {
		if a := f.agent("GET", s, ep, ""); a.status != 404 {
			t.Errorf("%s after expiry: %d", ep, a.status)
		}
	}
	if a := f.agent("POST", s, "/handshake/action/", `{"actions":[]}`); a.status != 404 {
		t.Errorf("action after expiry: %d", a.status)
	}
	if a := f.do("POST", "/handshake/notify/"+s.ID, `{"key":"a","value":1}`); a.status != 404 {
		t.Errorf("notify after expiry: %d", a.status)
	}
	// The change list is capped.
	s2 := f.create(`{"mode":"form-fill"}`)
	for i := 0; i < MaxChanges+5; i++ {
		f.do("POST", "/handshake/notify/"+s2.ID, `{"key":"k","value":`+strconv.Itoa(i)+`}`)
	}
	if n, _ := rs.client.LLen(ctx, rs.keys(s2.ID)[1]).Result(); n != MaxChanges {
		t.Errorf("change list holds %d", n)
	}
	d := f.agent("GET", s2, "/handshake/diff/", "")
	if !strings.Contains(string(d.body), `"to":`+strconv.Itoa(MaxChanges+4)+`,`) {
		t.Errorf("diff lacks the last change")
	}
	// Only the token's hash is stored.
	all, _ := rs.client.HGetAll(ctx, rs.keys(s2.ID)[0]).Result()
	for k, v := range all {
		if strings.Contains(v, s2.Token) {
			t.Errorf("field %s holds the token", k)
		}
	}
}
