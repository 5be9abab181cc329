package limiter

import (
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Redis that is down (connection refused) fails a decision at once, into
// the on_store_error policy: with go-redis's default of five dials 100 ms
// apart, per command attempt, it took over a second, more than any
// decision timeout, until the pool had counted enough failed dials.
func TestDeadRedisFailsAtOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c, err := NewRedisClient("redis://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	s := NewRedis(c, RedisOptions{Timeout: 10 * time.Second})
	defer s.Close()
	start := time.Now()
	b := Batch{Windows: []WindowCheck{{Key: "k", Limit: Limit{10, time.Minute}}}}
	if err := s.Do(context.Background(), &b); err == nil {
		t.Fatal("a decision with nothing listening succeeded")
	}
	// One dial per command attempt: tens of milliseconds (go-redis's
	// command retries back off 8–40 ms); the bound leaves room for a
	// loaded machine.
	if d := time.Since(start); d > 700*time.Millisecond {
		t.Errorf("a refused connection failed the decision after %v", d)
	}
}

// TestNewRedisClientForms: every URL form builds a client with the
// limiter's settings.
func TestNewRedisClientForms(t *testing.T) {
	type settings struct {
		ctxTimeout           bool
		dial, read, write    time.Duration
		protocol             int
		tls                  *tls.Config
		addrs                []string
		user, password, name string
		db                   int
		dialAttempts         int // 0: want one
	}
	for _, tc := range []struct {
		url  string
		want settings
	}{
		{"redis://localhost:6379/2", settings{addrs: []string{"localhost:6379"}, db: 2}},
		{"redis://:QZ7%2FXK9@10.0.0.5", settings{addrs: []string{"10.0.0.5:6379"}, password: "QZ7/XK9"}},
		{"redis://app:pw@cache.internal:6380/0?protocol=3", settings{addrs: []string{"cache.internal:6380"}, user: "app", password: "pw", protocol: 3}},
		{"rediss://cache.example:6380", settings{addrs: []string{"cache.example:6380"}, tls: &tls.Config{}}},
		{"REDISS://cache.example", settings{addrs: []string{"cache.example:6379"}, tls: &tls.Config{}}},
		{"redis+cluster://:pw@n1:7000?addr=n2:7000&addr=n3:7000", settings{addrs: []string{"n1:7000", "n2:7000", "n3:7000"}, password: "pw"}},
		{"rediss+cluster://n1:7000", settings{addrs: []string{"n1:7000"}, tls: &tls.Config{}}},
		{"redis+sentinel://:sentinelpw@s1:26379/1?master_name=main&password=datapw&addr=s2:26379", settings{name: "main", password: "datapw", db: 1}},
		{"rediss+sentinel://s1:26379?master_name=main", settings{name: "main", tls: &tls.Config{}}},
		{"redis+cluster://n1:7000?dialer_retries=3", settings{addrs: []string{"n1:7000"}, dialAttempts: 3}},
		{"redis+sentinel://s1:26379?master_name=main&dialer_retries=2", settings{name: "main", dialAttempts: 2}},
	} {
		c, err := NewRedisClient(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		var got settings
		switch c := c.(type) {
		case *redis.Client: // single node, and Sentinel's failover client
			o := c.Options()
			got = settings{o.ContextTimeoutEnabled, o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.Protocol, o.TLSConfig,
				[]string{o.Addr}, o.Username, o.Password, "", o.DB, o.DialerRetries}
			if tc.want.name != "" {
				got.addrs, got.name = nil, tc.want.name // the failover client hides its Sentinels
			}
		case *redis.ClusterClient:
			o := c.Options()
			got = settings{o.ContextTimeoutEnabled, o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.Protocol, o.TLSConfig,
				o.Addrs, o.Username, o.Password, "", 0, o.DialerRetries}
		default:
			t.Fatalf("%s: client %T", tc.url, c)
		}
		c.Close()
		want := tc.want
		if want.protocol == 0 {
			want.protocol = 2
		}
		if want.dialAttempts == 0 {
			want.dialAttempts = 1
		}
		if !got.ctxTimeout || got.dial != time.Second || got.read != 500*time.Millisecond || got.write != 500*time.Millisecond {
			t.Errorf("%s: timeouts %v %v %v, context %v", tc.url, got.dial, got.read, got.write, got.ctxTimeout)
		}
		if got.protocol != want.protocol || got.dialAttempts != want.dialAttempts || got.user != want.user || got.password != want.password || got.db != want.db ||
			want.addrs != nil && strings.Join(got.addrs, ",") != strings.Join(want.addrs, ",") {
			t.Errorf("%s: got %+v, want %+v", tc.url, got, want)
		}
		if (want.tls != nil) != (got.tls != nil) || got.tls != nil && got.tls.MinVersion < tls.VersionTLS12 {
			t.Errorf("%s: TLS %+v", tc.url, got.tls)
		}
	}
}

// nastyPasswords hold every character that breaks a URL, around two
// markers that must never show in an error.
var nastyPasswords = []string{
	"QZ7/XK9", "QZ7?XK9", "QZ7#XK9", "QZ7@XK9", "QZ7%XK9", "QZ7%zzXK9", "QZ7:XK9", "QZ7 XK9", "QZ7\"XK9",
	"QZ7\\XK9", "QZ7%2FXK9", "QZ7&XK9", "QZ7=XK9", "QZ7ÿXK9", "QZ7\x00XK9", "QZ7\nXK9", "QZ7XK9", "QZ7//XK9@", "QZ7[XK9]",
}

// badURLs are URL shapes that fail, each with a password slot.
var badURLs = []string{
	"redis://:%s@cache.example:6379/0",
	"redis://:%s@cache.example:6379/notadb",
	"redis://app:%s@cache.example:6379/0/1",
	"redis://:%s@cache.example:6379/0?dial_timeout=soon",
	"redis://:%s@cache.example:6379/0?bogus=1",
	"redis://:%s@cache.example:notaport/0",
	"redis://%s@cache.example/0?pool_fifo=maybe",
	"rediss://:%s@[::1/0",
	"redis+cluster://:%s@n1:7000?addr=broken",
	"redis+cluster://:%s@n1:7000?max_redirects=x",
	"redis+sentinel://s1:26379?password=%s",
	"redis+sentinel://s1:26379?master_name=m&password=%s&db=x",
	"redis+sentinel://s1:26379?master_name=m&sentinel_password=%s",
	"redis+sentinel://:%s@s1:26379?master_name=m&route_randomly=perhaps",
	"redis+sentinel://:%s@s1:26379",
	"redis+sentinel://s1:26379?master_name=m&password=%s&addr=bad",
	"redis+unknown://:%s@host",
	"redis:/:%s@host",
	"%s",
	"redis://:%s@host?client_name=x#frag",
}

// TestRedisURLErrorsHideThePassword: whatever is wrong with a URL, its
// error names the problem without any part of the password.
func TestRedisURLErrorsHideThePassword(t *testing.T) {
	for _, pw := range nastyPasswords {
		for _, shape := range badURLs {
			for _, p := range []string{pw, url.PathEscape(pw), url.QueryEscape(pw)} {
				raw := strings.Replace(shape, "%s", p, 1)
				c, err := NewRedisClient(raw)
				if err == nil {
					c.Close() // the password escaped, or one go-redis reads whole
					continue
				}
				msg := err.Error()
				if strings.Contains(msg, "QZ7") || strings.Contains(msg, "XK9") {
					t.Errorf("%q: the error shows the password: %s", raw, msg)
				}
				if shape != "%s" && !strings.HasPrefix(msg, "redis URL ") && !strings.Contains(msg, "not a URL") {
					t.Errorf("%q: %s", raw, msg)
				}
			}
		}
	}
}

// TestRedisURLErrorsAreUseful: the message still says what is wrong.
func TestRedisURLErrorsAreUseful(t *testing.T) {
	for raw, want := range map[string]string{
		"redis://:pa/ss@host":                                  "percent-encode them in the password (/ as %2F",
		"redis://:pa?ss@host":                                  "percent-encode",
		"redis://:pa#ss@host":                                  "percent-encode",
		"cache.example:6379":                                   "not a URL",
		"http://cache.example":                                 `unsupported scheme "http"`,
		"redis+shard://h":                                      `unsupported scheme "redis+shard"`,
		"redis://:pw@host/abc":                                 `invalid database number: "abc"`,
		"redis://:pw@host/0?bogus=1&other=2":                   "unexpected option: bogus, other",
		"redis://:pw@host:99x/0":                               "does not parse as a URL (invalid port  after host)",
		"redis+sentinel://:pw@s:26379":                         "?master_name=",
		"redis+sentinel://s:26379?master_name=m&password=":     "", // an empty password is fine
		"redis+sentinel://s:26379?master_name=m&password=pw#x": "has no fragment",
		"redis://:pw@host/0#x":                                 "has no fragment",
		"redis+sentinel://s?password=QZ7@XK9":                  "percent-encode",
		"redis://:QZ7%zzXK9@host":                              "does not parse as a URL",
		"redis://host/0?dial_timeout=1parsec":                  "invalid dial_timeout duration",
	} {
		c, err := NewRedisClient(raw)
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", raw, err)
			} else {
				c.Close()
			}
			continue
		}
		if err == nil {
			c.Close()
			t.Errorf("%q: accepted", raw)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", raw, err, want)
		}
		if strings.Contains(err.Error(), ":pw@") || strings.Contains(err.Error(), "pa/ss") {
			t.Errorf("%q: %v shows the user info", raw, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for raw, want := range map[string]string{
		"redis://:secret@host:6379/0":                                "redis://<redacted>@host:6379/0",
		"redis://user:pa/ss@host:6379/0":                             "redis://<redacted>@host:6379/0",
		"rediss://u:p@ss@host":                                       "rediss://<redacted>@host",
		"redis://host:6379/0":                                        "redis://host:6379/0",
		"redis+sentinel://s:26379?master_name=m&password=pw&db=1":    "redis+sentinel://s:26379?master_name=m&password=<redacted>",
		"redis+sentinel://s?db=1&sentinel_password=pw&Password=x#f":  "redis+sentinel://s?db=1&sentinel_password=<redacted>",
		"redis://h/0?pool=10&auth_token=t&api_key=k&client_secret=s": "redis://h/0?pool=10&auth_token=<redacted>",
		"redis+sentinel://s:26379?master_name=m&password=QZ7&XK9":    "redis+sentinel://s:26379?master_name=m&password=<redacted>",
		"redis+sentinel://s:26379?password=QZ7@XK9":                  "redis+sentinel://<redacted>",
		"redis://:a@b@h?password=c":                                  "redis://<redacted>@h?password=<redacted>",
		"not a url with secret":                                      "<redacted>",
		"pa:ss://x":                                                  "<redacted>",
	} {
		if got := RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// FuzzRedisURLError: for any URL with a password in its user info or in
// a secret parameter, whatever surrounds it, no error shows the password's
// markers, and neither does RedactURL.
func FuzzRedisURLError(f *testing.F) {
	for i, pw := range nastyPasswords {
		f.Add(uint8(i), pw, "cache.example:6379/0", "?db=x")
	}
	f.Add(uint8(0), "/", "h/0", "#f")
	f.Add(uint8(1), "&db=", "s:26379", "&addr=bad")
	schemes := []string{"redis", "rediss", "redis+cluster", "rediss+sentinel", "redis+sentinel", "REDIS", "http", "redis+x"}
	f.Fuzz(func(t *testing.T, form uint8, pw, host, tail string) {
		if strings.Contains(host+tail, "QZ7") || strings.Contains(host+tail, "XK9") {
			return
		}
		secret := "QZ7" + pw + "XK9"
		scheme := schemes[int(form>>1)%len(schemes)]
		raw := scheme + "://:" + secret + "@" + host + tail
		if form&1 == 1 { // in a query parameter
			raw = scheme + "://" + host + "?master_name=m&password=" + secret + tail
		}
		if r := RedactURL(raw); strings.Contains(r, "QZ7") || strings.Contains(r, "XK9") {
			t.Fatalf("RedactURL(%q) = %q", raw, r)
		}
		c, err := NewRedisClient(raw)
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "QZ7") || strings.Contains(msg, "XK9") {
				t.Fatalf("%q: the error shows the password: %s", raw, msg)
			}
			return
		}
		c.Close()
	})
}
